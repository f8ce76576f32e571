SELECT DISTINCT s.score_ts FROM "raw"."bggscore_scoring_state" AS s WHERE s.stage_partition = $partition AND s.stage = $stage;
