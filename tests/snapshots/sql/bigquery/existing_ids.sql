SELECT f.game_id FROM `bgg-data-warehouse`.`analytics`.`games_features` AS f WHERE f.game_id IN UNNEST(@game_ids);
