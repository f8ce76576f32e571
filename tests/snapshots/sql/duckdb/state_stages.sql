SELECT DISTINCT s.stage FROM "raw"."bggscore_scoring_state" AS s ORDER BY s.stage NULLS FIRST;
