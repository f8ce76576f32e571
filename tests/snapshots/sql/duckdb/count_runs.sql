SELECT COUNT(*) AS n FROM "raw"."bggscore_runs";
