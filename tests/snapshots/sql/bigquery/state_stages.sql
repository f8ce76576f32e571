SELECT DISTINCT s.stage FROM `bgg-predictive-models`.`raw`.`bggscore_scoring_state` AS s ORDER BY s.stage;
