DELETE FROM "predictions"."bgg_description_embeddings" AS t WHERE EXISTS(SELECT 1 FROM "bggscore_stage_0" AS b WHERE t."game_id" = b."game_id");

INSERT INTO "predictions"."bgg_description_embeddings" ("game_id", "embedding") SELECT "b"."game_id", "b"."embedding" FROM "bggscore_stage_0" AS b;
