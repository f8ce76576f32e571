SELECT COUNT(*) AS n FROM `bgg-predictive-models`.`raw`.`bggscore_runs`;
