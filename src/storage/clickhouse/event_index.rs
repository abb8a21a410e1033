//! The `event_index` and `trace_deletions` tables (`sql/clickhouse/0002_event_index.sql`): for
//! each entity, where its events are stored; for each deleted trace, when it was deleted.
//!
//! The worker writes a row per segment it processes, before the records built from them; it looks
//! up every entity of a round in one query, so that a record is always rebuilt from all of the
//! entity's events, whichever request and whichever worker brought them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use clickhouse::serde::chrono::datetime64::millis;
use serde::{Deserialize, Serialize};

use crate::ingest::event::EntityKind;
use crate::storage::queue::EntityRef;

/// One row; field order matches the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct IndexRow {
    pub project_id: String,
    pub entity_kind: String,
    pub entity_id: String,
    pub trace_id: String,
    pub object_key: String,
    pub byte_offset: u64,
    pub byte_length: u64,
    #[serde(with = "millis")]
    pub received_at: DateTime<Utc>,
}

/// Entities per lookup query, and the `max_query_size` their keys need (the default is 256 KiB).
const LOOKUP_CHUNK: usize = 10_000;
const LOOKUP_MAX_QUERY_SIZE: &str = "16777216";

/// What the index holds about one entity.
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

/// Everything recorded about `entities`, in one query per chunk of them.
pub async fn lookup(
    ch: &clickhouse::Client,
    entities: &[EntityRef],
) -> anyhow::Result<BTreeMap<EntityRef, Recorded>> {
    let mut out: BTreeMap<EntityRef, Recorded> = BTreeMap::new();
    for chunk in entities.chunks(LOOKUP_CHUNK) {
        // The keys travel as one string of JSON lines that ClickHouse parses as a table: spelling
        // thousands of tuples out in SQL costs far more to parse than the lookup itself.
        let mut keys = String::with_capacity(chunk.len() * 64);
        for e in chunk {
            let line =
                serde_json::json!({"p": e.project_id, "k": e.kind.as_str(), "i": e.entity_id});
            keys.push_str(&line.to_string());
            keys.push('\n');
        }
        let query = ch
            .query(
                "SELECT ?fields FROM event_index WHERE (project_id, entity_kind, entity_id) IN \
                 (SELECT p, k, i FROM format(JSONEachRow, 'p String, k String, i String', ?))",
            )
            .bind(keys)
            .with_option("max_query_size", LOOKUP_MAX_QUERY_SIZE);
        let rows: Vec<IndexRow> = query.fetch_all().await?;
        for row in rows {
            let Ok(kind) = row.entity_kind.parse::<EntityKind>() else {
                continue;
            };
            let entity = EntityRef {
                project_id: row.project_id,
                kind,
                entity_id: row.entity_id,
            };
            let recorded = out.entry(entity).or_default();
            if !row.trace_id.is_empty() {
                recorded.trace_id = Some(row.trace_id);
            }
            recorded.segments.push(RecordedSegment {
                object: row.object_key,
                offset: row.byte_offset,
                length: row.byte_length,
                received_at: row.received_at,
            });
        }
    }
    Ok(out)
}

/// Inserts rows in one statement.
pub async fn insert(ch: &clickhouse::Client, rows: &[IndexRow]) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = ch.insert("event_index")?;
    for row in rows {
        insert.write(row).await?;
    }
    insert.end().await?;
    Ok(())
}

/// Records the deletion of traces at `at`: their events, and those of their observations and
/// scores, received up to then are deleted by the worker that next rebuilds them.
pub async fn record_trace_deletions(
    ch: &clickhouse::Client,
    project_id: &str,
    trace_ids: &[String],
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    #[derive(Serialize, clickhouse::Row)]
    struct Deletion<'a> {
        project_id: &'a str,
        trace_id: &'a str,
        #[serde(with = "millis")]
        deleted_at: DateTime<Utc>,
    }
    let mut insert = ch.insert("trace_deletions")?;
    for trace_id in trace_ids {
        insert
            .write(&Deletion {
                project_id,
                trace_id,
                deleted_at: at,
            })
            .await?;
    }
    insert.end().await?;
    Ok(())
}

/// The latest deletion of each of these traces that was deleted at or after `since`.
pub async fn trace_deletions(
    ch: &clickhouse::Client,
    traces: &[EntityRef],
    since: DateTime<Utc>,
) -> anyhow::Result<BTreeMap<EntityRef, DateTime<Utc>>> {
    #[derive(Deserialize, clickhouse::Row)]
    struct Deleted {
        project_id: String,
        trace_id: String,
        #[serde(with = "millis")]
        latest: DateTime<Utc>,
    }
    let mut out = BTreeMap::new();
    for chunk in traces.chunks(LOOKUP_CHUNK) {
        let keys = json_lines(
            chunk
                .iter()
                .map(|t| serde_json::json!({"p": t.project_id, "t": t.entity_id})),
        );
        let rows: Vec<Deleted> = ch
            .query(
                "SELECT project_id, trace_id, max(deleted_at) AS latest FROM trace_deletions \
                 WHERE (project_id, trace_id) IN \
                 (SELECT p, t FROM format(JSONEachRow, 'p String, t String', ?)) \
                 AND deleted_at >= fromUnixTimestamp64Milli(?) GROUP BY project_id, trace_id",
            )
            .bind(keys)
            .bind(since.timestamp_millis())
            .with_option("max_query_size", LOOKUP_MAX_QUERY_SIZE)
            .fetch_all()
            .await?;
        for row in rows {
            let trace = EntityRef {
                project_id: row.project_id,
                kind: EntityKind::Trace,
                entity_id: row.trace_id,
            };
            out.insert(trace, row.latest);
        }
    }
    Ok(out)
}

/// Keys as one string of JSON lines, which ClickHouse reads as a table with `format()`: spelling
/// thousands of tuples out in SQL costs far more to parse than the lookup itself.
fn json_lines(values: impl Iterator<Item = serde_json::Value>) -> String {
    let mut out = String::new();
    for value in values {
        out.push_str(&value.to_string());
        out.push('\n');
    }
    out
}

/// The observations and scores recorded as belonging to these traces.
pub async fn children_of_traces(
    ch: &clickhouse::Client,
    project_id: &str,
    trace_ids: &[String],
) -> anyhow::Result<Vec<EntityRef>> {
    #[derive(Deserialize, clickhouse::Row)]
    struct Child {
        entity_kind: String,
        entity_id: String,
    }
    let children: Vec<Child> = ch
        .query(
            "SELECT DISTINCT entity_kind, entity_id FROM event_index \
             WHERE project_id = ? AND trace_id IN ?",
        )
        .bind(project_id)
        .bind(trace_ids)
        .fetch_all()
        .await?;
    Ok(children
        .into_iter()
        .filter_map(|c| {
            Some(EntityRef {
                project_id: project_id.to_string(),
                kind: c.entity_kind.parse().ok()?,
                entity_id: c.entity_id,
            })
        })
        .collect())
}
