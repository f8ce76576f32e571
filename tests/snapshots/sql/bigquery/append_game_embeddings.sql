DECLARE write_bounds ARRAY<TIMESTAMP> DEFAULT (SELECT [MIN(b.`created_ts`), MAX(b.`created_ts`)] FROM `bgg-predictive-models`.`raw`.`_bggscore_stage_00000000000000000000000000000000_0` AS b);

DECLARE since_0 TIMESTAMP DEFAULT write_bounds[OFFSET(0)];

DECLARE until_0 TIMESTAMP DEFAULT write_bounds[OFFSET(1)];

INSERT INTO `bgg-predictive-models`.`raw`.`game_embeddings` (`game_id`, `name`, `year_published`, `embedding`, `embedding_8`, `embedding_16`, `embedding_32`, `embedding_model`, `embedding_version`, `embedding_dim`, `algorithm`, `created_ts`, `job_id`, `coordinates_2d`, `feature_hash`) SELECT `b`.`game_id`, `b`.`name`, `b`.`year_published`, `b`.`embedding`, `b`.`embedding_8`, `b`.`embedding_16`, `b`.`embedding_32`, `b`.`embedding_model`, `b`.`embedding_version`, `b`.`embedding_dim`, `b`.`algorithm`, `b`.`created_ts`, `b`.`job_id`, `b`.`coordinates_2d`, `b`.`feature_hash` FROM `bgg-predictive-models`.`raw`.`_bggscore_stage_00000000000000000000000000000000_0` AS b WHERE NOT EXISTS(SELECT 1 FROM `bgg-predictive-models`.`raw`.`game_embeddings` AS t WHERE t.`created_ts` >= since_0 AND t.`created_ts` <= until_0 AND t.`job_id` = b.`job_id` AND t.`game_id` = b.`game_id`);
