SELECT f.name, f.year_published FROM "analytics"."games_features" AS f WHERE f.game_id = $id;
