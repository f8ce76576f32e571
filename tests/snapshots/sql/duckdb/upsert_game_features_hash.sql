DELETE FROM "staging"."game_features_hash" AS t WHERE EXISTS(SELECT 1 FROM "bggscore_stage_0" AS b WHERE t."game_id" = b."game_id");

INSERT INTO "staging"."game_features_hash" ("game_id", "name", "feature_hash", "last_updated") SELECT "b"."game_id", "b"."name", "b"."feature_hash", "b"."last_updated" FROM "bggscore_stage_0" AS b;
