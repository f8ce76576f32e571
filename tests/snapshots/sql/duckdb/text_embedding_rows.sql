SELECT e.game_id, e.job_id, e.embedding AS description_embedding FROM "raw"."description_embeddings" AS e WHERE e.created_ts IN (SELECT UNNEST($stamps)) AND e.game_id IN (SELECT UNNEST($game_ids));
