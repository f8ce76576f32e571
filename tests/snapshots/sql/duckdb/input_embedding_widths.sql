SELECT COUNT(*) AS n, MIN(ARRAY_LENGTH(e.embedding)) AS lo, MAX(ARRAY_LENGTH(e.embedding)) AS hi FROM "predictions"."bgg_description_embeddings" AS e WHERE ARRAY_LENGTH(e.embedding) > 0;
