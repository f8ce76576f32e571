DECLARE write_bounds ARRAY<TIMESTAMP> DEFAULT (SELECT [MIN(b.`created_ts`), MAX(b.`created_ts`)] FROM `bgg-predictive-models`.`raw`.`_bggscore_stage_00000000000000000000000000000000_0` AS b);

DECLARE since_0 TIMESTAMP DEFAULT write_bounds[OFFSET(0)];

DECLARE until_0 TIMESTAMP DEFAULT write_bounds[OFFSET(1)];

INSERT INTO `bgg-predictive-models`.`raw`.`description_embeddings` (`game_id`, `name`, `embedding`, `embedding_model`, `embedding_version`, `embedding_dim`, `algorithm`, `document_method`, `created_ts`, `job_id`, `feature_hash`) SELECT `b`.`game_id`, `b`.`name`, `b`.`embedding`, `b`.`embedding_model`, `b`.`embedding_version`, `b`.`embedding_dim`, `b`.`algorithm`, `b`.`document_method`, `b`.`created_ts`, `b`.`job_id`, `b`.`feature_hash` FROM `bgg-predictive-models`.`raw`.`_bggscore_stage_00000000000000000000000000000000_0` AS b WHERE NOT EXISTS(SELECT 1 FROM `bgg-predictive-models`.`raw`.`description_embeddings` AS t WHERE t.`created_ts` >= since_0 AND t.`created_ts` <= until_0 AND t.`job_id` = b.`job_id` AND t.`game_id` = b.`game_id`);
