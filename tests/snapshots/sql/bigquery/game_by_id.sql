SELECT f.game_id, f.name FROM `bgg-data-warehouse`.`analytics`.`games_features` AS f WHERE f.game_id = @game_id;
