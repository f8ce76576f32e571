SELECT DISTINCT t.`embedding_model`, t.`embedding_version` FROM `bgg-predictive-models`.`raw`.`game_embeddings` AS t WHERE t.job_id = @job_id;
