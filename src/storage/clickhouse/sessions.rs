//! Sessions: not a table but a view over `traces`, the traces that share a `session_id`.

use chrono::{DateTime, Utc};
use clickhouse::serde::chrono::datetime64::millis;
use serde::Deserialize;

use super::sql::{latest_versions, page_of, Bound, Sql};
use super::traces::TRACE_COLUMNS;
use crate::domain::project::ProjectId;

/// A session: the traces that share a `session_id`.
#[derive(Debug, Clone, Deserialize, clickhouse::Row)]
pub struct SessionView {
    pub id: String,
    #[serde(with = "millis")]
    pub created_at: DateTime<Utc>,
    pub environment: String,
}

/// One page of sessions, newest first, and how many match.
pub async fn list(
    ch: &clickhouse::Client,
    project: &ProjectId,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    environments: &[String],
    page: u64,
    limit: u64,
) -> anyhow::Result<(Vec<SessionView>, u64)> {
    let mut base = Sql::new(
        "SELECT assumeNotNull(session_id) AS id, min(timestamp) AS created_at, any(environment) AS environment FROM (",
    );
    base.append(latest_versions(
        project,
        "traces",
        TRACE_COLUMNS,
        Sql::default(),
    ));
    base.text(") WHERE session_id IS NOT NULL AND session_id != ''");
    if !environments.is_empty() {
        base.text(" AND environment IN ");
        base.bind(Bound::Texts(environments.to_vec()));
    }
    base.text(" GROUP BY session_id HAVING 1 = 1");
    if let Some(t) = from {
        base.text(" AND created_at >= fromUnixTimestamp64Milli(");
        base.bind(Bound::Int(t.timestamp_millis()));
        base.text(")");
    }
    if let Some(t) = to {
        base.text(" AND created_at < fromUnixTimestamp64Milli(");
        base.bind(Bound::Int(t.timestamp_millis()));
        base.text(")");
    }
    page_of(ch, base, "created_at DESC, id DESC", page, limit).await
}
