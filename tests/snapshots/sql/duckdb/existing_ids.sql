SELECT f.game_id FROM "analytics"."games_features" AS f WHERE f.game_id IN (SELECT UNNEST($game_ids));
