DELETE FROM "raw"."bggscore_leases" WHERE job_id = $lease_job;
