-- What the spans of an experiment run say of their experiment (dataset run) and dataset item: the
-- `langfuse.experiment.*` attributes the SDKs' experiment runners set. The experiments API reads
-- them, the observations list filters on them, and the worker links the observation that stands
-- for an item (`id = experiment_item_root_observation_id`) to its dataset run in PostgreSQL.
-- Every statement may run again after a kill half way.
ALTER TABLE observations ADD COLUMN IF NOT EXISTS experiment_id Nullable(String);

ALTER TABLE observations ADD COLUMN IF NOT EXISTS experiment_name Nullable(String);

ALTER TABLE observations ADD COLUMN IF NOT EXISTS experiment_description Nullable(String);

ALTER TABLE observations ADD COLUMN IF NOT EXISTS experiment_metadata Map(LowCardinality(String), String);

ALTER TABLE observations ADD COLUMN IF NOT EXISTS experiment_dataset_id Nullable(String);

ALTER TABLE observations ADD COLUMN IF NOT EXISTS experiment_item_id Nullable(String);

ALTER TABLE observations ADD COLUMN IF NOT EXISTS experiment_item_version Nullable(DateTime64(3));

ALTER TABLE observations ADD COLUMN IF NOT EXISTS experiment_item_root_observation_id Nullable(String);

ALTER TABLE observations ADD COLUMN IF NOT EXISTS experiment_item_expected_output Nullable(String) CODEC(ZSTD(3));

ALTER TABLE observations ADD COLUMN IF NOT EXISTS experiment_item_metadata Map(LowCardinality(String), String);

ALTER TABLE observations ADD INDEX IF NOT EXISTS idx_experiment_id experiment_id TYPE bloom_filter() GRANULARITY 1;
