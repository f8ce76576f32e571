SELECT s.game_id, s.job_id, s.score_ts FROM "raw"."bggscore_scoring_state" AS s WHERE s.stage_partition = $partition AND s.stage = $stage AND s.game_id IN (SELECT UNNEST($game_ids));
