SELECT r.job_id, r.command, r.stage, r.status, r.games, r.started_at, r.finished_at FROM "raw"."bggscore_runs" AS r WHERE r.job_id = $job_id;
