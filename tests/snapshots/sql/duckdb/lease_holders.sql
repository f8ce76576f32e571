SELECT l.stage, l.holder, l.job_id, l.command, l.acquired_at, l.expires_at FROM "raw"."bggscore_leases" AS l WHERE l.stage IN (SELECT UNNEST($lease_stages)) ORDER BY l.stage NULLS FIRST;
