SELECT COUNT(*) AS n, MIN(r.game_id) AS example FROM (SELECT t.`game_id` FROM `bgg-data-warehouse`.`analytics`.`games_features` AS t GROUP BY t.`game_id` HAVING COUNT(*) > 1) AS r;
