SELECT h.game_id, h.feature_hash, h.last_updated FROM "staging"."game_features_hash" AS h;
