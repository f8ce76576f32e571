SELECT DISTINCT s.score_ts FROM `bgg-predictive-models`.`raw`.`bggscore_scoring_state` AS s WHERE s.stage_partition = @partition AND s.stage = @stage AND s.model_key = @model_key;
