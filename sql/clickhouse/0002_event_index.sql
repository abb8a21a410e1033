-- Where every accepted event of an entity is stored: the index the worker rebuilds records from.
--
-- The web role writes the events of one request as one object in blob storage, a line per entity
-- (see src/storage/raw_events.rs). Each row here says "entity X has events in bytes
-- [byte_offset, byte_offset + byte_length) of object_key, received at received_at". The worker
-- inserts these rows before the records built from them and before it acknowledges the queue
-- entries, so whatever the queue no longer holds is listed here.
--
-- trace_id is the trace of an observation or score ('' for traces), for finding the children of a
-- deleted trace.
--
-- The worker looks entities up by key, thousands at a time, scattered over the whole table: small
-- granules (256 rows instead of 8192) make each key cost a few hundred rows read, whatever the
-- size of the table. ReplacingMergeTree only collapses the duplicate rows a redelivered queue
-- entry writes; readers never depend on it.

CREATE TABLE IF NOT EXISTS event_index (
    project_id String,
    entity_kind LowCardinality(String),
    entity_id String,
    trace_id String,
    object_key String,
    byte_offset UInt64,
    byte_length UInt64,
    received_at DateTime64(3),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (project_id, entity_kind, entity_id, received_at, object_key, byte_offset)
SETTINGS index_granularity = 256;

-- Deletions of traces: every event of the trace, its observations and its scores received up to
-- deleted_at is deleted, however late it reaches a worker (it may still be in the queue when the
-- trace is deleted). The worker checks the traces of every entity it rebuilds against this table,
-- which stays small: a row per deleted trace.
CREATE TABLE IF NOT EXISTS trace_deletions (
    project_id String,
    trace_id String,
    deleted_at DateTime64(3)
) ENGINE = ReplacingMergeTree
ORDER BY (project_id, trace_id, deleted_at);
