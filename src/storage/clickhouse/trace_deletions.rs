//! The deletion records: `trace_deletions` (`sql/clickhouse/0002_entity_events.sql`), for each
//! deleted trace when it was deleted, and `entity_deletions` (`0003_entity_deletions.sql`), the
//! same for single entities of any other kind (a deleted score). The API records deletions; the
//! worker reads both with its lookups and leaves out every event of a deleted entity (and of the
//! children of a deleted trace) received up to then.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use clickhouse::serde::chrono::datetime64::millis;
use serde::{Deserialize, Serialize};

use super::sql::{Bound, Sql};
use crate::domain::entity::EntityKind;
use crate::domain::project::ProjectId;
use crate::storage::queue::EntityRef;

/// Records the deletion of traces at `at`: their events, and those of their observations and
/// scores, received up to then are deleted by the worker that next rebuilds them.
pub async fn record(
    ch: &clickhouse::Client,
    project: &ProjectId,
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
                project_id: project.as_str(),
                trace_id,
                deleted_at: at,
            })
            .await?;
    }
    insert.end().await?;
    Ok(())
}

/// Records the deletion of single entities of one kind at `at`: their own events received up to
/// then are deleted by the worker that next rebuilds them. A trace's deletion, which reaches its
/// children too, is [`record`]'s.
pub async fn record_entities(
    ch: &clickhouse::Client,
    project: &ProjectId,
    kind: EntityKind,
    entity_ids: &[String],
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    #[derive(Serialize, clickhouse::Row)]
    struct Deletion<'a> {
        project_id: &'a str,
        kind: &'a str,
        entity_id: &'a str,
        #[serde(with = "millis")]
        deleted_at: DateTime<Utc>,
    }
    let mut insert = ch.insert("entity_deletions")?;
    for entity_id in entity_ids {
        insert
            .write(&Deletion {
                project_id: project.as_str(),
                kind: kind.as_str(),
                entity_id,
                deleted_at: at,
            })
            .await?;
    }
    insert.end().await?;
    Ok(())
}

/// The latest deletion of every entity deleted at or after `since`: traces and single entities
/// alike, keyed by the entity deleted. Deletions are few, and those that matter are recent, so they
/// are fetched by time rather than by key.
pub(super) async fn since(
    ch: &clickhouse::Client,
    since: DateTime<Utc>,
) -> anyhow::Result<BTreeMap<EntityRef, DateTime<Utc>>> {
    #[derive(Deserialize, clickhouse::Row)]
    struct Deleted {
        project_id: String,
        kind: String,
        entity_id: String,
        #[serde(with = "millis")]
        latest: DateTime<Utc>,
    }
    let since = Bound::Int(since.timestamp_millis());
    let mut sql = Sql::new(
        "SELECT project_id, kind, entity_id, max(deleted_at) AS latest FROM (\
         SELECT project_id, 'trace' AS kind, trace_id AS entity_id, deleted_at FROM trace_deletions \
         WHERE deleted_at >= fromUnixTimestamp64Milli(",
    );
    sql.bind(since.clone());
    sql.text(
        ") UNION ALL SELECT project_id, toString(kind) AS kind, entity_id, deleted_at \
         FROM entity_deletions WHERE deleted_at >= fromUnixTimestamp64Milli(",
    );
    sql.bind(since);
    sql.text(")) GROUP BY project_id, kind, entity_id");
    let rows: Vec<Deleted> = sql.query(ch).fetch_all().await?;
    Ok(rows
        .into_iter()
        // A kind this version does not know was recorded by a newer one; its entities are not
        // rebuilt here either.
        .filter_map(|row| {
            let entity = EntityRef {
                project_id: row.project_id,
                kind: row.kind.parse().ok()?,
                entity_id: row.entity_id,
            };
            Some((entity, row.latest))
        })
        .collect())
}
