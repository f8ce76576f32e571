SELECT f.game_id, TO_HEX(MD5(COALESCE(f.description, ''))) AS input_hash FROM `bgg-data-warehouse`.`analytics`.`games_features` AS f WHERE f.game_id IN UNNEST(@game_ids);
