UPDATE `bgg-predictive-models`.`raw`.`bggscore_runs` SET status = @failed, message = @message, finished_at = @lease_now WHERE job_id IN UNNEST(@stale_jobs) AND status = @running;
