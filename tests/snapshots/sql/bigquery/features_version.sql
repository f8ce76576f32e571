SELECT COUNT(*) AS n, MAX(f.load_timestamp) AS last_load FROM `bgg-data-warehouse`.`analytics`.`games_features` AS f;
