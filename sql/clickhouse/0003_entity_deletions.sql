-- Deletions of single entities (a score, for now), beside trace_deletions, which deletes a trace with
-- everything under it: every event of the entity received up to deleted_at is deleted, however late it
-- reaches a worker, and the worker that rebuilds the entity overwrites those events in blob storage.
-- Events received after the deletion make a new record, as they do for a deleted trace. Workers read
-- both tables with one question, the deletions since a moment; they are few, a row per deletion.
CREATE TABLE IF NOT EXISTS entity_deletions (
    project_id String,
    kind LowCardinality(String),
    entity_id String,
    deleted_at DateTime64(3)
) ENGINE = ReplacingMergeTree
ORDER BY (project_id, kind, entity_id, deleted_at);
