DELETE FROM `bgg-predictive-models`.`raw`.`bggscore_leases` WHERE job_id = @lease_job;
