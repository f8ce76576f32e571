SELECT f.game_id, MD5(COALESCE(f.description, '')) AS input_hash FROM "analytics"."games_features" AS f WHERE f.game_id IN (SELECT UNNEST($game_ids));
