SELECT COUNT(*) AS n, MAX(s.score_ts) AS last_ts, MAX(s.job_id) AS last_job FROM `bgg-predictive-models`.`raw`.`bggscore_scoring_state` AS s WHERE s.stage = @stage AND s.model_key = @model_key;
