DROP TABLE IF EXISTS shadow_experiments;
