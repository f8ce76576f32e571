SELECT DISTINCT t."embedding_model", t."embedding_version" FROM "raw"."description_embeddings" AS t WHERE t.job_id = $job_id;
