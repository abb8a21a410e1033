-- Where every accepted event of an entity is stored: what the worker rebuilds records from.
--
-- The web role writes the events of one request as one object in blob storage, a line per entity
-- (see src/storage/raw_events.rs). For each entity, this table lists the byte ranges of those
-- objects that hold its events: (object key, offset, length, received at). The worker writes an
-- entity's complete list before the record built from it and before it acknowledges the queue
-- entries, so whatever the queue no longer holds is listed here.
--
-- A key-value table (ClickHouse's EmbeddedRocksDB engine), not a MergeTree: the worker looks up
-- thousands of entities at a time, scattered over the whole table, and a MergeTree reads a granule
-- of every part for each key, which grows with the table. Here a lookup is a point read whatever
-- the size. The key is the JSON array [project id, entity kind, entity id], so it starts with the
-- project as every table's order does. The list can always be rebuilt from blob storage, which
-- holds the same events. Writes go through RocksDB's memtable and log (optimize_for_bulk_insert = 0):
-- the worker upserts a few thousand rows a second in small statements, for which the bulk path's one
-- sorted file per statement is slower to write and to read. (The setting exists since ClickHouse 24.5;
-- the engine is not available on ClickHouse Cloud.)

CREATE TABLE IF NOT EXISTS entity_events (
    key String,
    trace_id String,
    segments Array(Tuple(object_key String, byte_offset UInt64, byte_length UInt64, received_at DateTime64(3)))
) ENGINE = EmbeddedRocksDB
PRIMARY KEY key
SETTINGS optimize_for_bulk_insert = 0;

-- Deletions of traces: every event of the trace, its observations and its scores received up to
-- deleted_at is deleted, however late it reaches a worker (it may still be in the queue when the
-- trace is deleted). Workers fetch the deletions since the oldest event they are rebuilding, which
-- are few: a row per deleted trace.
CREATE TABLE IF NOT EXISTS trace_deletions (
    project_id String,
    trace_id String,
    deleted_at DateTime64(3)
) ENGINE = ReplacingMergeTree
ORDER BY (project_id, trace_id, deleted_at);
