SELECT job_id, command, stage, status, games, started_at, finished_at, message FROM `bgg-predictive-models`.`raw`.`bggscore_runs` ORDER BY started_at DESC, job_id DESC LIMIT @limit;
