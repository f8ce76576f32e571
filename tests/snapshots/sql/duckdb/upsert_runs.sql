DELETE FROM "raw"."bggscore_runs" AS t WHERE EXISTS(SELECT 1 FROM "bggscore_stage_0" AS b WHERE t."job_id" = b."job_id" AND t."stage" = b."stage");

INSERT INTO "raw"."bggscore_runs" ("job_id", "command", "stage", "status", "games", "started_at", "finished_at", "message", "source_environment") SELECT "b"."job_id", "b"."command", "b"."stage", "b"."status", "b"."games", "b"."started_at", "b"."finished_at", "b"."message", "b"."source_environment" FROM "bggscore_stage_0" AS b;
