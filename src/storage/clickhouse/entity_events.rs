//! The `entity_events` table (`sql/clickhouse/0002_entity_events.sql`): for each entity, where its
//! events are stored. A lookup also brings the recent trace deletions (`trace_deletions`).
//!
//! The worker looks up every entity of a round (coalesced over all its rounds) in one query, and
//! writes each entity's complete list back before the records built from it, so that a record is
//! always rebuilt from all of the entity's events, whichever request and whichever worker brought
//! them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::sql::{Bound, Sql};
use crate::storage::queue::EntityRef;

/// One stored segment as the table holds it: object key, byte offset, byte length, received at
/// (Unix milliseconds).
pub type SegmentTuple = (String, u64, u64, i64);

/// One row; field order matches the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct EntityEventsRow {
    pub key: String,
    pub trace_id: String,
    pub segments: Vec<SegmentTuple>,
}

/// Entities per lookup query, and the `max_query_size` their keys need (the default is 256 KiB).
const LOOKUP_CHUNK: usize = 10_000;
const LOOKUP_MAX_QUERY_SIZE: &str = "16777216";
/// Keys text up to which a lookup fits ClickHouse's default `max_query_size` with room for the
/// rest of the statement: such a lookup sends no setting, which the development stand-in would
/// otherwise apply and undo as two statements of its own around each lookup.
const DEFAULT_QUERY_SIZE_ROOM: usize = 200 * 1024;

/// What the table holds about one entity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recorded {
    /// Stored events: (object, byte range, received at).
    pub segments: Vec<RecordedSegment>,
    /// The trace of an observation or score, as recorded with its segments.
    pub trace_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordedSegment {
    pub object: String,
    pub offset: u64,
    pub length: u64,
    pub received_at: DateTime<Utc>,
}

/// The table's key of an entity: `[project id, kind, entity id]` as JSON, unambiguous whatever the
/// ids contain.
pub fn key_of(entity: &EntityRef) -> String {
    let key = (&entity.project_id, entity.kind.as_str(), &entity.entity_id);
    serde_json::to_string(&key).expect("strings always serialize")
}

fn entity_of(key: &str) -> Option<EntityRef> {
    let (project_id, kind, entity_id): (String, String, String) = serde_json::from_str(key).ok()?;
    Some(EntityRef {
        project_id,
        kind: kind.parse().ok()?,
        entity_id,
    })
}

/// What a worker needs before it rebuilds entities: where their events are, and which traces were
/// deleted since a moment.
#[derive(Debug, Default)]
pub struct Lookup {
    pub recorded: BTreeMap<EntityRef, Recorded>,
    /// The latest deletion of each trace deleted at or after the moment asked for.
    pub deleted_at: BTreeMap<EntityRef, DateTime<Utc>>,
}

/// Everything recorded about `entities`, and the traces deleted since `deletions_since`. The keys
/// travel as one string literal of newline-separated keys, split by ClickHouse: spelling thousands
/// of keys out as SQL literals costs more to parse than the lookup itself. A key is compact JSON,
/// which never holds a raw newline, so the separator is unambiguous; the keys need only the
/// literal's escaping (a handful of characters), where hex doubled every byte ClickHouse parses and
/// pushed a usual round's lookup past its default `max_query_size`.
pub async fn lookup(
    ch: &clickhouse::Client,
    entities: &[EntityRef],
    deletions_since: Option<DateTime<Utc>>,
) -> anyhow::Result<Lookup> {
    let mut out = Lookup::default();
    for chunk in entities.chunks(LOOKUP_CHUNK) {
        let keys: Vec<String> = chunk.iter().map(key_of).collect();
        let mut sql = Sql::new(
            "SELECT ?fields FROM entity_events WHERE key IN \
             (SELECT arrayJoin(splitByChar('\\n', ",
        );
        let keys = keys.join("\n");
        let needs_larger_query_size = literal_len(&keys) > DEFAULT_QUERY_SIZE_ROOM;
        sql.bind(Bound::Text(keys));
        sql.text(")))");
        let mut query = sql.query(ch);
        if needs_larger_query_size {
            query = query.with_option("max_query_size", LOOKUP_MAX_QUERY_SIZE);
        }
        let rows: Vec<EntityEventsRow> = query.fetch_all().await?;
        for row in rows {
            let Some(entity) = entity_of(&row.key) else {
                continue;
            };
            let recorded = Recorded {
                segments: row
                    .segments
                    .into_iter()
                    .map(|(object, offset, length, received_at_ms)| RecordedSegment {
                        object,
                        offset,
                        length,
                        received_at: DateTime::from_timestamp_millis(received_at_ms)
                            .unwrap_or_default(),
                    })
                    .collect(),
                trace_id: (!row.trace_id.is_empty()).then_some(row.trace_id),
            };
            out.recorded.insert(entity, recorded);
        }
    }
    if let Some(since) = deletions_since {
        out.deleted_at = super::trace_deletions::since(ch, since).await?;
    }
    Ok(out)
}

/// The length of `text` as the `clickhouse` crate spells it in a string literal: a backslash before
/// each of the characters it escapes.
fn literal_len(text: &str) -> usize {
    let escaped = text
        .bytes()
        .filter(|b| matches!(b, b'\\' | b'\'' | b'`' | b'\t' | b'\n'))
        .count();
    text.len() + escaped
}

/// Writes entities' complete lists, replacing what the table held for them, in one statement.
pub async fn upsert(ch: &clickhouse::Client, rows: &[EntityEventsRow]) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = ch.insert("entity_events")?;
    for row in rows {
        insert.write(row).await?;
    }
    insert.end().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::entity::EntityKind;

    #[test]
    fn keys_round_trip_whatever_the_ids_contain() {
        let entity = EntityRef {
            project_id: "p\"1".into(),
            kind: EntityKind::Observation,
            entity_id: "a,b]\n\\c".into(),
        };
        let key = key_of(&entity);
        assert!(key.starts_with("[\"p\\\"1\""));
        assert!(
            !key.contains('\n'),
            "the lookup separates keys with newlines"
        );
        assert_eq!(entity_of(&key), Some(entity));
    }
}
