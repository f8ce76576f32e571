SELECT f.game_id FROM "analytics"."games_features" AS f WHERE NOT f.year_published IS NULL ORDER BY f.users_rated DESC, f.game_id NULLS FIRST LIMIT 1;
