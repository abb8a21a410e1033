//! The `traces` table: the row the worker inserts, the view reads return, and the queries.
//!
//! Every read keeps the newest version of each trace before it looks at any mutable column
//! ([`super::sql::latest_versions`]), so it is right before ClickHouse merges duplicates.

use chrono::{DateTime, Utc};
use clickhouse::serde::chrono::datetime64::millis;
use serde::{Deserialize, Serialize};

use super::filter::{self, Condition, TRACES};
use super::pairs;
use super::sql::{latest_matching, latest_versions, page_of, Bound, Sql};
use crate::domain::project::ProjectId;
use crate::ingest::merge::TraceRecord;

/// A row as inserted; field order matches the table.
#[derive(Debug, Clone, Serialize, clickhouse::Row)]
pub struct TraceRow {
    pub id: String,
    #[serde(with = "millis")]
    pub timestamp: DateTime<Utc>,
    pub name: String,
    pub user_id: Option<String>,
    pub metadata: Vec<(String, String)>,
    pub release: Option<String>,
    pub version: Option<String>,
    pub project_id: String,
    pub environment: String,
    pub public: bool,
    pub bookmarked: bool,
    pub tags: Vec<String>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub session_id: Option<String>,
    #[serde(with = "millis")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "millis")]
    pub updated_at: DateTime<Utc>,
    #[serde(with = "millis")]
    pub event_ts: DateTime<Utc>,
    pub is_deleted: u8,
}

impl From<TraceRecord> for TraceRow {
    fn from(t: TraceRecord) -> Self {
        TraceRow {
            id: t.id,
            timestamp: t.timestamp,
            name: t.name.unwrap_or_default(),
            user_id: t.user_id,
            metadata: pairs(t.metadata),
            release: t.release,
            version: t.version,
            project_id: t.project_id,
            environment: t.environment,
            public: t.public,
            bookmarked: false,
            tags: t.tags,
            input: t.input,
            output: t.output,
            session_id: t.session_id,
            created_at: t.created_at,
            updated_at: t.updated_at,
            event_ts: t.event_ts,
            is_deleted: 0,
        }
    }
}

impl TraceRow {
    /// What ReplacingMergeTree keeps one row per (after the project): see the table's `ORDER BY`
    /// (ClickHouse runs in UTC, as Langfuse requires, so its `toDate` is the UTC date).
    pub fn sorting_key(&self) -> chrono::NaiveDate {
        self.timestamp.date_naive()
    }

    /// A deleted copy of this row under its sorting key, for when `newer` is written under
    /// another: see `ObservationRow::tombstone_before`.
    pub fn tombstone_before(&self, newer: &TraceRow) -> TraceRow {
        TraceRow {
            id: self.id.clone(),
            timestamp: self.timestamp,
            name: String::new(),
            user_id: None,
            metadata: Vec::new(),
            release: None,
            version: None,
            project_id: self.project_id.clone(),
            environment: self.environment.clone(),
            public: false,
            bookmarked: false,
            tags: Vec::new(),
            input: None,
            output: None,
            session_id: None,
            created_at: self.created_at,
            updated_at: newer.updated_at - chrono::TimeDelta::milliseconds(1),
            event_ts: newer.event_ts,
            is_deleted: 1,
        }
    }
}

/// A trace as reads return it.
#[derive(Debug, Clone, Deserialize, clickhouse::Row)]
pub struct TraceView {
    pub id: String,
    #[serde(with = "millis")]
    pub timestamp: DateTime<Utc>,
    pub name: String,
    pub user_id: Option<String>,
    pub metadata: Vec<(String, String)>,
    pub release: Option<String>,
    pub version: Option<String>,
    pub environment: String,
    pub public: bool,
    pub bookmarked: bool,
    pub tags: Vec<String>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub session_id: Option<String>,
    #[serde(with = "millis")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "millis")]
    pub updated_at: DateTime<Utc>,
}

pub(super) const TRACE_COLUMNS: &str = "id, timestamp, name, user_id, CAST(metadata, 'Array(Tuple(String, String))') AS metadata, \
    release, version, toString(environment) AS environment, public, bookmarked, tags, input, output, session_id, created_at, updated_at";

/// The column and direction a trace list is ordered by, from a closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceOrder {
    pub column: &'static str,
    pub descending: bool,
}

impl Default for TraceOrder {
    fn default() -> Self {
        TraceOrder {
            column: "timestamp",
            descending: true,
        }
    }
}

impl TraceOrder {
    /// Langfuse's `orderBy=field.asc|desc`.
    pub fn parse(value: &str) -> Result<TraceOrder, String> {
        let (field, direction) = value.split_once('.').unwrap_or((value, "desc"));
        let column = match field {
            "id" => "id",
            "timestamp" => "timestamp",
            "name" => "name",
            "userId" => "user_id",
            "release" => "release",
            "version" => "version",
            "public" => "public",
            "bookmarked" => "bookmarked",
            "sessionId" => "session_id",
            _ => return Err(format!("orderBy: cannot order by {field:?}")),
        };
        // Langfuse upper-cases the direction before it checks it.
        let descending = match direction.to_ascii_uppercase().as_str() {
            "ASC" => false,
            "DESC" => true,
            _ => {
                return Err(format!(
                    "orderBy: direction must be asc or desc, not {direction:?}"
                ))
            }
        };
        Ok(TraceOrder { column, descending })
    }
}

/// One page of traces matching every condition (on the traces view of the filter language,
/// [`TRACES`]), and the total number matching. Without `io`, input, output and metadata are
/// left unread: null, null and empty.
pub async fn list(
    ch: &clickhouse::Client,
    project: &ProjectId,
    conditions: &[Condition],
    order: TraceOrder,
    io: bool,
    page: u64,
    limit: u64,
) -> anyhow::Result<(Vec<TraceView>, u64)> {
    let direction = if order.descending { "DESC" } else { "ASC" };
    let order_by = format!("{} {direction}, id {direction}", order.column);
    page_of(
        ch,
        list_sql(project, conditions, io),
        &order_by,
        page,
        limit,
    )
    .await
}

/// The traces matching every condition, each in its newest version, unordered.
fn list_sql(project: &ProjectId, conditions: &[Condition], io: bool) -> Sql {
    let mut sql = Sql::new(&format!("SELECT {TRACE_COLUMNS} FROM (SELECT t.* "));
    if !io {
        sql.text(
            "REPLACE (CAST(NULL, 'Nullable(String)') AS input, \
             CAST(NULL, 'Nullable(String)') AS output, \
             CAST(map(), 'Map(LowCardinality(String), String)') AS metadata) ",
        );
    }
    sql.text("FROM ");
    sql.append(TRACES.narrowed_from_sql(project, conditions));
    filter::push_where_all(&mut sql, conditions);
    sql.text(")");
    sql
}

/// The trace `trace_id`, newest version, unless deleted.
pub async fn get(
    ch: &clickhouse::Client,
    project: &ProjectId,
    trace_id: &str,
) -> anyhow::Result<Option<TraceView>> {
    let mut by_id = Sql::new("AND id = ");
    by_id.bind(Bound::Text(trace_id.to_string()));
    Ok(latest_versions(project, "traces", TRACE_COLUMNS, by_id)
        .query(ch)
        .fetch_optional()
        .await?)
}

/// The traces with the given ids (newest versions).
pub async fn by_ids(
    ch: &clickhouse::Client,
    project: &ProjectId,
    ids: &[String],
) -> anyhow::Result<Vec<TraceView>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut by_ids = Sql::new("AND id IN ");
    by_ids.bind(Bound::Texts(ids.to_vec()));
    Ok(latest_versions(project, "traces", TRACE_COLUMNS, by_ids)
        .query(ch)
        .fetch_all()
        .await?)
}

/// What an observation shows of its trace.
#[derive(Debug, Clone, Deserialize, clickhouse::Row)]
pub struct TraceContext {
    pub id: String,
    pub name: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub release: Option<String>,
    pub tags: Vec<String>,
    pub public: bool,
    pub bookmarked: bool,
}

/// What the v2 observation list shows of the given traces (newest versions).
pub async fn contexts(
    ch: &clickhouse::Client,
    project: &ProjectId,
    trace_ids: &[String],
) -> anyhow::Result<Vec<TraceContext>> {
    if trace_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut by_ids = Sql::new("AND id IN ");
    by_ids.bind(Bound::Texts(trace_ids.to_vec()));
    let sql = latest_versions(
        project,
        "traces",
        "id, name, user_id, session_id, release, tags, public, bookmarked",
        by_ids,
    );
    Ok(sql.query(ch).fetch_all().await?)
}

/// The traces of one session, oldest first.
pub async fn of_session(
    ch: &clickhouse::Client,
    project: &ProjectId,
    session_id: &str,
) -> anyhow::Result<Vec<TraceView>> {
    let mut sql = Sql::new("SELECT * FROM (");
    sql.append(latest_versions(
        project,
        "traces",
        TRACE_COLUMNS,
        Sql::default(),
    ));
    sql.text(") WHERE session_id = ");
    sql.bind(Bound::Text(session_id.to_string()));
    sql.text(" ORDER BY timestamp, id");
    Ok(sql.query(ch).fetch_all().await?)
}

/// What a trace list shows of each trace's observations.
#[derive(Debug, Clone, Default, Deserialize, clickhouse::Row)]
pub struct TraceSummary {
    pub trace_id: String,
    pub observation_ids: Vec<String>,
    pub latency_ms: i64,
    pub total_cost: f64,
}

#[derive(Debug, Clone, Default, Deserialize, clickhouse::Row)]
pub struct TraceScores {
    pub trace_id: String,
    pub score_ids: Vec<String>,
}

/// Observation ids, latency and cost of the given traces.
pub async fn summaries(
    ch: &clickhouse::Client,
    project: &ProjectId,
    trace_ids: &[String],
) -> anyhow::Result<Vec<TraceSummary>> {
    if trace_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut of_traces = Sql::new("AND trace_id IN ");
    of_traces.bind(Bound::Texts(trace_ids.to_vec()));
    let mut observations = Sql::new(
        "SELECT trace_id, groupArray(id) AS observation_ids, \
            toInt64(dateDiff('millisecond', min(start_time), max(coalesce(end_time, start_time)))) AS latency_ms, \
            toFloat64(sum(coalesce(total_cost, 0))) AS total_cost FROM (",
    );
    observations.append(latest_matching(
        project,
        "observations",
        "id, trace_id, start_time, end_time, total_cost",
        &of_traces,
    ));
    observations.text(") GROUP BY trace_id");
    Ok(observations.query(ch).fetch_all().await?)
}

/// The score ids of the given traces.
pub async fn score_ids(
    ch: &clickhouse::Client,
    project: &ProjectId,
    trace_ids: &[String],
) -> anyhow::Result<Vec<TraceScores>> {
    if trace_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut of_traces = Sql::new("AND trace_id IN ");
    of_traces.bind(Bound::Texts(trace_ids.to_vec()));
    let mut scores =
        Sql::new("SELECT assumeNotNull(trace_id) AS trace_id, groupArray(id) AS score_ids FROM (");
    scores.append(latest_matching(
        project,
        "scores",
        "id, trace_id",
        &of_traces,
    ));
    scores.text(") GROUP BY trace_id");
    Ok(scores.query(ch).fetch_all().await?)
}

/// The ids of the traces' observations and scores, of every version (what a deletion rebuilds).
pub async fn children(
    ch: &clickhouse::Client,
    project: &ProjectId,
    trace_ids: &[String],
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let ids_of = |table: &str| {
        let mut sql = Sql::new(&format!(
            "SELECT DISTINCT id FROM {table} WHERE project_id = "
        ));
        sql.bind(Bound::Text(project.to_string()));
        sql.text(" AND trace_id IN ");
        sql.bind(Bound::Texts(trace_ids.to_vec()));
        sql
    };
    let (observations, scores) = (ids_of("observations"), ids_of("scores"));
    let (observations, scores) = futures::try_join!(
        observations.query(ch).fetch_all::<String>(),
        scores.query(ch).fetch_all::<String>(),
    )?;
    Ok((observations, scores))
}

/// Deletes traces with their observations and scores: every version of every row, for real.
pub async fn delete_with_children(
    ch: &clickhouse::Client,
    project: &ProjectId,
    trace_ids: &[String],
) -> anyhow::Result<()> {
    for (table, column) in [
        ("observations", "trace_id"),
        ("scores", "trace_id"),
        ("traces", "id"),
    ] {
        let mut sql = Sql::new(&format!("DELETE FROM {table} WHERE project_id = "));
        sql.bind(Bound::Text(project.to_string()));
        sql.text(&format!(" AND {column} IN "));
        sql.bind(Bound::Texts(trace_ids.to_vec()));
        sql.query(ch).execute().await?;
    }
    Ok(())
}
