//! The `trace_deletions` table (`sql/clickhouse/0002_entity_events.sql`): for each deleted trace,
//! when it was deleted. The API records deletions; the worker reads them with its lookups and
//! leaves out every event of a deleted trace (and of its children) received up to then.

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

/// The latest deletion of every trace deleted at or after `since`. Deletions are few, and those
/// that matter are recent, so they are fetched by time rather than by key.
pub(super) async fn since(
    ch: &clickhouse::Client,
    since: DateTime<Utc>,
) -> anyhow::Result<BTreeMap<EntityRef, DateTime<Utc>>> {
    #[derive(Deserialize, clickhouse::Row)]
    struct Deleted {
        project_id: String,
        trace_id: String,
        #[serde(with = "millis")]
        latest: DateTime<Utc>,
    }
    let mut sql = Sql::new(
        "SELECT project_id, trace_id, max(deleted_at) AS latest FROM trace_deletions \
         WHERE deleted_at >= fromUnixTimestamp64Milli(",
    );
    sql.bind(Bound::Int(since.timestamp_millis()));
    sql.text(") GROUP BY project_id, trace_id");
    let rows: Vec<Deleted> = sql.query(ch).fetch_all().await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let trace = EntityRef {
                project_id: row.project_id,
                kind: EntityKind::Trace,
                entity_id: row.trace_id,
            };
            (trace, row.latest)
        })
        .collect())
}
