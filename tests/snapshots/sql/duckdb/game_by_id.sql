SELECT f.game_id, f.name FROM "analytics"."games_features" AS f WHERE f.game_id = $game_id;
