SELECT COUNT(*) AS n, MIN(r.game_id) AS example FROM (SELECT t."stage", t."game_id" FROM "raw"."bggscore_scoring_state" AS t GROUP BY t."stage", t."game_id" HAVING COUNT(*) > 1) AS r;
