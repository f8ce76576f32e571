UPDATE "raw"."bggscore_leases" SET expires_at = $lease_expires WHERE job_id = $lease_job;
