SELECT COUNT(*) AS n, MAX(f.load_timestamp) AS last_load FROM "analytics"."games_features" AS f;
