DECLARE write_bounds ARRAY<TIMESTAMP> DEFAULT (SELECT [MIN(b.`score_ts`), MAX(b.`score_ts`)] FROM `bgg-predictive-models`.`raw`.`_bggscore_stage_00000000000000000000000000000000_0` AS b);

DECLARE since_0 TIMESTAMP DEFAULT write_bounds[OFFSET(0)];

DECLARE until_0 TIMESTAMP DEFAULT write_bounds[OFFSET(1)];

INSERT INTO `bgg-predictive-models`.`raw`.`complexity_predictions` (`game_id`, `name`, `year_published`, `predicted_complexity`, `complexity_model_name`, `complexity_model_version`, `complexity_experiment`, `score_ts`, `job_id`, `source_environment`, `feature_hash`, `model_fingerprint`, `predicted_complexity_raw`) SELECT `b`.`game_id`, `b`.`name`, `b`.`year_published`, `b`.`predicted_complexity`, `b`.`complexity_model_name`, `b`.`complexity_model_version`, `b`.`complexity_experiment`, `b`.`score_ts`, `b`.`job_id`, `b`.`source_environment`, `b`.`feature_hash`, `b`.`model_fingerprint`, `b`.`predicted_complexity_raw` FROM `bgg-predictive-models`.`raw`.`_bggscore_stage_00000000000000000000000000000000_0` AS b WHERE NOT EXISTS(SELECT 1 FROM `bgg-predictive-models`.`raw`.`complexity_predictions` AS t WHERE t.`score_ts` >= since_0 AND t.`score_ts` <= until_0 AND t.`job_id` = b.`job_id` AND t.`game_id` = b.`game_id`);
