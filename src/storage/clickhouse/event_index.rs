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

/// What a worker needs before it rebuilds entities: where their events are, and which traces were
/// deleted since a moment.
#[derive(Debug, Default)]
pub struct Lookup {
    pub recorded: BTreeMap<EntityRef, Recorded>,
    /// The latest deletion of each trace deleted at or after the moment asked for.
    pub deleted_at: BTreeMap<EntityRef, DateTime<Utc>>,
}

/// Everything recorded about `entities`, and the traces deleted since `deletions_since`, in one
/// query per chunk of entities. Deletions are few (a row per deleted trace) and recent ones are
/// what matters, so they are fetched by time rather than by key.
pub async fn lookup(
    ch: &clickhouse::Client,
    entities: &[EntityRef],
    deletions_since: Option<DateTime<Utc>>,
) -> anyhow::Result<Lookup> {
    #[derive(Deserialize, clickhouse::Row)]
    struct Found {
        /// 0: an event_index row; 1: a trace_deletions row.
        source: u8,
        project_id: String,
        kind: String,
        entity_id: String,
        trace_id: String,
        object_key: String,
        byte_offset: u64,
        byte_length: u64,
        #[serde(with = "millis")]
        received_at: DateTime<Utc>,
    }
    const SEGMENTS: &str =
        "SELECT toUInt8(0) AS source, project_id, toString(entity_kind) AS kind, \
        entity_id, trace_id, object_key, byte_offset, byte_length, received_at FROM event_index \
        WHERE (project_id, entity_kind, entity_id) IN \
        (SELECT p, k, i FROM format(JSONEachRow, 'p String, k String, i String', ?))";
    const DELETIONS: &str = "SELECT toUInt8(1), project_id, 'trace', trace_id, '', '', \
        toUInt64(0), toUInt64(0), deleted_at FROM trace_deletions \
        WHERE deleted_at >= fromUnixTimestamp64Milli(?)";

    let mut out = Lookup::default();
    let mut chunks: Vec<&[EntityRef]> = entities.chunks(LOOKUP_CHUNK).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    for (n, chunk) in chunks.into_iter().enumerate() {
        let with_deletions = deletions_since.filter(|_| n == 0);
        let sql = match (chunk.is_empty(), with_deletions.is_some()) {
            (false, true) => format!("{SEGMENTS} UNION ALL {DELETIONS}"),
            (false, false) => SEGMENTS.to_string(),
            (true, true) => DELETIONS.to_string(),
            (true, false) => continue,
        };
        let mut query = ch
            .query(&sql)
            .with_option("max_query_size", LOOKUP_MAX_QUERY_SIZE);
        if !chunk.is_empty() {
            query = query.bind(json_lines(chunk.iter().map(
                |e| serde_json::json!({"p": e.project_id, "k": e.kind.as_str(), "i": e.entity_id}),
            )));
        }
        if let Some(since) = with_deletions {
            query = query.bind(since.timestamp_millis());
        }
        let rows: Vec<Found> = query.fetch_all().await?;
        for row in rows {
            let Ok(kind) = row.kind.parse::<EntityKind>() else {
                continue;
            };
            let entity = EntityRef {
                project_id: row.project_id,
                kind,
                entity_id: row.entity_id,
            };
            if row.source == 1 {
                let latest = out.deleted_at.entry(entity).or_insert(row.received_at);
                *latest = (*latest).max(row.received_at);
                continue;
            }
            let recorded = out.recorded.entry(entity).or_default();
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
