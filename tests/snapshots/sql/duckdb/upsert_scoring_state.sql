DELETE FROM "raw"."bggscore_scoring_state" AS t WHERE t."stage_partition" IN (SELECT UNNEST($partitions_0)) AND EXISTS(SELECT 1 FROM "bggscore_stage_0" AS b WHERE t."stage" = b."stage" AND t."game_id" = b."game_id");

INSERT INTO "raw"."bggscore_scoring_state" ("stage", "game_id", "feature_hash", "model_key", "upstream_key", "job_id", "score_ts", "input_hash", "stage_partition") SELECT "b"."stage", "b"."game_id", "b"."feature_hash", "b"."model_key", "b"."upstream_key", "b"."job_id", "b"."score_ts", "b"."input_hash", "b"."stage_partition" FROM "bggscore_stage_0" AS b;
