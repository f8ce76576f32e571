SELECT DISTINCT t."complexity_model_name", t."complexity_model_version" FROM "raw"."complexity_predictions" AS t WHERE t.job_id = $job_id;
