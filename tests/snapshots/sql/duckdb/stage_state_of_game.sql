SELECT s.game_id FROM "raw"."bggscore_scoring_state" AS s WHERE s.stage_partition = $partition AND s.stage = $stage AND s.game_id = $game_id;
