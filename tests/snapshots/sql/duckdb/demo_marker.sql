SELECT COUNT(*) AS n FROM "raw"."bggscore_runs" AS r WHERE r.job_id = $job_id AND r.command = $command;
