SELECT h.game_id, h.feature_hash, h.last_updated FROM `bgg-data-warehouse`.`staging`.`game_features_hash` AS h WHERE h.game_id IN UNNEST(@game_ids);
