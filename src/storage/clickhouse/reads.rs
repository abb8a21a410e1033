//! Reads of traces, observations and scores, scoped to one project and correct before ClickHouse
//! has merged duplicate versions: every query keeps the newest version of each id
//! (`ORDER BY event_ts DESC LIMIT 1 BY id`) before it looks at `is_deleted` or at any mutable column.
//! (`FINAL` alone is not enough: the sorting key holds the date of the start time, so versions of
//! one id written with different times are different keys to ClickHouse.)

use chrono::{DateTime, Utc};
use clickhouse::serde::chrono::datetime64::millis;
use serde::Deserialize;

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
    pub tags: Vec<String>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub session_id: Option<String>,
    #[serde(with = "millis")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "millis")]
    pub updated_at: DateTime<Utc>,
}

const TRACE_COLUMNS: &str = "id, timestamp, name, user_id, CAST(metadata, 'Array(Tuple(String, String))') AS metadata, \
    release, version, toString(environment) AS environment, public, tags, input, output, session_id, created_at, updated_at";

#[derive(Debug, Clone, Deserialize, clickhouse::Row)]
pub struct ObservationView {
    pub id: String,
    pub trace_id: String,
    pub environment: String,
    pub observation_type: String,
    pub parent_observation_id: Option<String>,
    #[serde(with = "millis")]
    pub start_time: DateTime<Utc>,
    #[serde(with = "millis::option")]
    pub end_time: Option<DateTime<Utc>>,
    pub name: String,
    pub metadata: Vec<(String, String)>,
    pub level: String,
    pub status_message: Option<String>,
    pub version: Option<String>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub model: Option<String>,
    pub model_parameters: Option<String>,
    pub usage_details: Vec<(String, u64)>,
    pub cost_details: Vec<(String, f64)>,
    pub total_cost: Option<f64>,
    #[serde(with = "millis::option")]
    pub completion_start_time: Option<DateTime<Utc>>,
    pub prompt_name: Option<String>,
    pub prompt_version: Option<u16>,
}

const OBSERVATION_COLUMNS: &str = "id, trace_id, toString(environment) AS environment, toString(type) AS observation_type, \
    parent_observation_id, start_time, end_time, name, CAST(metadata, 'Array(Tuple(String, String))') AS metadata, \
    toString(level) AS level, status_message, version, input, output, provided_model_name AS model, model_parameters, \
    CAST(usage_details, 'Array(Tuple(String, UInt64))') AS usage_details, \
    arrayMap(x -> (x.1, toFloat64(x.2)), CAST(cost_details, 'Array(Tuple(String, Decimal64(12)))')) AS cost_details, \
    toFloat64(total_cost) AS total_cost, completion_start_time, prompt_name, prompt_version";

#[derive(Debug, Clone, Deserialize, clickhouse::Row)]
pub struct ScoreView {
    pub id: String,
    #[serde(with = "millis")]
    pub timestamp: DateTime<Utc>,
    pub environment: String,
    pub trace_id: Option<String>,
    pub session_id: Option<String>,
    pub dataset_run_id: Option<String>,
    pub observation_id: Option<String>,
    pub name: String,
    pub value: f64,
    pub source: String,
    pub comment: Option<String>,
    pub metadata: Vec<(String, String)>,
    pub config_id: Option<String>,
    pub data_type: String,
    pub string_value: Option<String>,
    pub queue_id: Option<String>,
    #[serde(with = "millis")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "millis")]
    pub updated_at: DateTime<Utc>,
}

const SCORE_COLUMNS: &str = "id, timestamp, toString(environment) AS environment, trace_id, session_id, dataset_run_id, \
    observation_id, name, value, toString(source) AS source, comment, CAST(metadata, 'Array(Tuple(String, String))') AS metadata, \
    config_id, toString(data_type) AS data_type, string_value, queue_id, created_at, updated_at";

/// One page of `base` in `order_by` order, and how many rows `base` has in all.
async fn page_of<T>(
    ch: &clickhouse::Client,
    base: &str,
    order_by: &str,
    bind_all: impl Fn(clickhouse::query::Query) -> clickhouse::query::Query,
    page: u64,
    limit: u64,
) -> anyhow::Result<(Vec<T>, u64)>
where
    T: clickhouse::Row + for<'b> Deserialize<'b>,
{
    let total: u64 = bind_all(ch.query(&format!("SELECT count() FROM ({base})")))
        .fetch_one()
        .await?;
    let rows = bind_all(ch.query(&format!("{base} ORDER BY {order_by} LIMIT ? OFFSET ?")))
        .bind(limit)
        .bind(page.saturating_sub(1) * limit)
        .fetch_all()
        .await?;
    Ok((rows, total))
}

/// The newest live version of each row of `table` in the project, restricted by `where_clause`
/// before the newest version is picked: only for columns every version of a row agrees on (`id`).
/// Placeholders are bound by the caller, after the project id.
pub(crate) fn latest_versions(table: &str, columns: &str, where_clause: &str) -> String {
    format!(
        "SELECT {columns} FROM (\
            SELECT * FROM {table} WHERE project_id = ? {where_clause} \
            ORDER BY event_ts DESC, updated_at DESC LIMIT 1 BY id\
         ) WHERE is_deleted = 0"
    )
}

/// The newest live version of each row of `table` in the project, kept when that version matches
/// `where_clause`. Any column may change between the versions of a row (an event that arrives late
/// can even move the start time or the trace of an observation), so the clause is checked on the
/// newest version; it first narrows the rows to those with *some* matching version, which is what
/// lets ClickHouse use its indexes. The caller binds: project id, project id, the clause's values,
/// the clause's values again.
pub(crate) fn latest_matching(table: &str, columns: &str, where_clause: &str) -> String {
    format!(
        "SELECT {columns} FROM (\
            SELECT * FROM {table} WHERE project_id = ? AND id IN \
                (SELECT id FROM {table} WHERE project_id = ? {where_clause}) \
            ORDER BY event_ts DESC, updated_at DESC LIMIT 1 BY id\
         ) WHERE is_deleted = 0 {where_clause}"
    )
}

pub async fn trace(
    ch: &clickhouse::Client,
    project_id: &str,
    trace_id: &str,
) -> anyhow::Result<Option<TraceView>> {
    Ok(ch
        .query(&latest_versions("traces", TRACE_COLUMNS, "AND id = ?"))
        .bind(project_id)
        .bind(trace_id)
        .fetch_optional()
        .await?)
}

pub async fn observations_of_trace(
    ch: &clickhouse::Client,
    project_id: &str,
    trace_id: &str,
) -> anyhow::Result<Vec<ObservationView>> {
    let sql = format!(
        "{} ORDER BY start_time, id",
        latest_matching("observations", OBSERVATION_COLUMNS, "AND trace_id = ?")
    );
    Ok(ch
        .query(&sql)
        .bind(project_id)
        .bind(project_id)
        .bind(trace_id)
        .bind(trace_id)
        .fetch_all()
        .await?)
}

pub async fn observation(
    ch: &clickhouse::Client,
    project_id: &str,
    observation_id: &str,
) -> anyhow::Result<Option<ObservationView>> {
    Ok(ch
        .query(&latest_versions(
            "observations",
            OBSERVATION_COLUMNS,
            "AND id = ?",
        ))
        .bind(project_id)
        .bind(observation_id)
        .fetch_optional()
        .await?)
}

pub async fn scores_of_trace(
    ch: &clickhouse::Client,
    project_id: &str,
    trace_id: &str,
) -> anyhow::Result<Vec<ScoreView>> {
    let sql = format!(
        "{} ORDER BY timestamp, id",
        latest_matching("scores", SCORE_COLUMNS, "AND trace_id = ?")
    );
    Ok(ch
        .query(&sql)
        .bind(project_id)
        .bind(project_id)
        .bind(trace_id)
        .bind(trace_id)
        .fetch_all()
        .await?)
}

/// Filters of the trace list. Every value is bound, never spliced into SQL.
#[derive(Debug, Clone, Default)]
pub struct TraceFilter {
    pub user_id: Option<String>,
    pub name: Option<String>,
    pub session_id: Option<String>,
    pub release: Option<String>,
    pub version: Option<String>,
    pub tags: Vec<String>,
    pub environments: Vec<String>,
    pub from_timestamp: Option<DateTime<Utc>>,
    pub to_timestamp: Option<DateTime<Utc>>,
}

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
        let descending = match direction {
            "asc" | "ASC" => false,
            "desc" | "DESC" => true,
            _ => {
                return Err(format!(
                    "orderBy: direction must be asc or desc, not {direction:?}"
                ))
            }
        };
        Ok(TraceOrder { column, descending })
    }
}

/// One page of traces and the total number matching.
pub async fn traces(
    ch: &clickhouse::Client,
    project_id: &str,
    filter: &TraceFilter,
    order: TraceOrder,
    page: u64,
    limit: u64,
) -> anyhow::Result<(Vec<TraceView>, u64)> {
    // The time range narrows the candidates by the sorting key, and is checked again on the newest
    // version with the other filters.
    let mut before = String::new();
    if filter.from_timestamp.is_some() {
        before.push_str(" AND timestamp >= fromUnixTimestamp64Milli(?)");
    }
    if filter.to_timestamp.is_some() {
        before.push_str(" AND timestamp < fromUnixTimestamp64Milli(?)");
    }
    let mut after = String::new();
    for (value, column) in [
        (&filter.user_id, "user_id"),
        (&filter.name, "name"),
        (&filter.session_id, "session_id"),
        (&filter.release, "release"),
        (&filter.version, "version"),
    ] {
        if value.is_some() {
            after.push_str(&format!(" AND {column} = ?"));
        }
    }
    if !filter.tags.is_empty() {
        after.push_str(" AND hasAll(tags, ?)");
    }
    if !filter.environments.is_empty() {
        after.push_str(" AND environment IN ?");
    }
    let base = format!(
        "SELECT * FROM ({}) WHERE 1 = 1{after}",
        latest_matching("traces", TRACE_COLUMNS, &before)
    );
    let bind_all = |mut q: clickhouse::query::Query| {
        q = q.bind(project_id).bind(project_id);
        for _ in 0..2 {
            if let Some(t) = filter.from_timestamp {
                q = q.bind(t.timestamp_millis());
            }
            if let Some(t) = filter.to_timestamp {
                q = q.bind(t.timestamp_millis());
            }
        }
        for value in [
            &filter.user_id,
            &filter.name,
            &filter.session_id,
            &filter.release,
            &filter.version,
        ]
        .into_iter()
        .flatten()
        {
            q = q.bind(value);
        }
        if !filter.tags.is_empty() {
            q = q.bind(&filter.tags);
        }
        if !filter.environments.is_empty() {
            q = q.bind(&filter.environments);
        }
        q
    };
    let direction = if order.descending { "DESC" } else { "ASC" };
    let order_by = format!("{} {direction}, id {direction}", order.column);
    page_of(ch, &base, &order_by, bind_all, page, limit).await
}

/// Filters of the observation list.
#[derive(Debug, Clone, Default)]
pub struct ObservationFilter {
    pub name: Option<String>,
    pub observation_type: Option<String>,
    pub trace_id: Option<String>,
    pub level: Option<String>,
    pub parent_observation_id: Option<String>,
    pub version: Option<String>,
    pub environments: Vec<String>,
    pub from_start_time: Option<DateTime<Utc>>,
    pub to_start_time: Option<DateTime<Utc>>,
}

pub async fn observations(
    ch: &clickhouse::Client,
    project_id: &str,
    filter: &ObservationFilter,
    page: u64,
    limit: u64,
) -> anyhow::Result<(Vec<ObservationView>, u64)> {
    let mut before = String::new();
    if filter.trace_id.is_some() {
        before.push_str(" AND trace_id = ?");
    }
    if filter.from_start_time.is_some() {
        before.push_str(" AND start_time >= fromUnixTimestamp64Milli(?)");
    }
    if filter.to_start_time.is_some() {
        before.push_str(" AND start_time < fromUnixTimestamp64Milli(?)");
    }
    let mut after = String::new();
    for (value, column) in [
        (&filter.name, "name"),
        (&filter.observation_type, "observation_type"),
        (&filter.level, "level"),
        (&filter.parent_observation_id, "parent_observation_id"),
        (&filter.version, "version"),
    ] {
        if value.is_some() {
            after.push_str(&format!(" AND {column} = ?"));
        }
    }
    if !filter.environments.is_empty() {
        after.push_str(" AND environment IN ?");
    }
    let base = format!(
        "SELECT * FROM ({}) WHERE 1 = 1{after}",
        latest_matching("observations", OBSERVATION_COLUMNS, &before)
    );
    let bind_all = |mut q: clickhouse::query::Query| {
        q = q.bind(project_id).bind(project_id);
        for _ in 0..2 {
            if let Some(t) = &filter.trace_id {
                q = q.bind(t);
            }
            if let Some(t) = filter.from_start_time {
                q = q.bind(t.timestamp_millis());
            }
            if let Some(t) = filter.to_start_time {
                q = q.bind(t.timestamp_millis());
            }
        }
        for value in [
            &filter.name,
            &filter.observation_type,
            &filter.level,
            &filter.parent_observation_id,
            &filter.version,
        ]
        .into_iter()
        .flatten()
        {
            q = q.bind(value);
        }
        if !filter.environments.is_empty() {
            q = q.bind(&filter.environments);
        }
        q
    };
    page_of(ch, &base, "start_time DESC, id DESC", bind_all, page, limit).await
}

/// What a trace list shows of each trace's observations and scores.
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

/// Observation ids, latency and cost, and score ids, of the given traces.
pub async fn trace_summaries(
    ch: &clickhouse::Client,
    project_id: &str,
    trace_ids: &[String],
) -> anyhow::Result<(Vec<TraceSummary>, Vec<TraceScores>)> {
    if trace_ids.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let observations = format!(
        "SELECT trace_id, groupArray(id) AS observation_ids, \
            toInt64(dateDiff('millisecond', min(start_time), max(coalesce(end_time, start_time)))) AS latency_ms, \
            toFloat64(sum(coalesce(total_cost, 0))) AS total_cost \
         FROM ({}) GROUP BY trace_id",
        latest_matching(
            "observations",
            "id, trace_id, start_time, end_time, total_cost",
            "AND trace_id IN ?"
        )
    );
    let scores = format!(
        "SELECT assumeNotNull(trace_id) AS trace_id, groupArray(id) AS score_ids FROM ({}) GROUP BY trace_id",
        latest_matching("scores", "id, trace_id", "AND trace_id IN ?")
    );
    let (summaries, scores) = futures::try_join!(
        ch.query(&observations)
            .bind(project_id)
            .bind(project_id)
            .bind(trace_ids)
            .bind(trace_ids)
            .fetch_all::<TraceSummary>(),
        ch.query(&scores)
            .bind(project_id)
            .bind(project_id)
            .bind(trace_ids)
            .bind(trace_ids)
            .fetch_all::<TraceScores>(),
    )?;
    Ok((summaries, scores))
}

/// The ids of a trace's observations and scores, every version (for deletion).
pub async fn children_of_traces(
    ch: &clickhouse::Client,
    project_id: &str,
    trace_ids: &[String],
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let observations: Vec<String> = ch
        .query("SELECT DISTINCT id FROM observations WHERE project_id = ? AND trace_id IN ?")
        .bind(project_id)
        .bind(trace_ids)
        .fetch_all()
        .await?;
    let scores: Vec<String> = ch
        .query("SELECT DISTINCT id FROM scores WHERE project_id = ? AND trace_id IN ?")
        .bind(project_id)
        .bind(trace_ids)
        .fetch_all()
        .await?;
    Ok((observations, scores))
}

/// Deletes traces with their observations and scores: every version of every row, for real.
pub async fn delete_traces(
    ch: &clickhouse::Client,
    project_id: &str,
    trace_ids: &[String],
) -> anyhow::Result<()> {
    for (table, column) in [
        ("observations", "trace_id"),
        ("scores", "trace_id"),
        ("traces", "id"),
    ] {
        ch.query(&format!(
            "DELETE FROM {table} WHERE project_id = ? AND {column} IN ?"
        ))
        .bind(project_id)
        .bind(trace_ids)
        .execute()
        .await?;
    }
    Ok(())
}

/// A session: the traces that share a `session_id`.
#[derive(Debug, Clone, Deserialize, clickhouse::Row)]
pub struct SessionView {
    pub id: String,
    #[serde(with = "millis")]
    pub created_at: DateTime<Utc>,
    pub environment: String,
}

/// One page of sessions, newest first, and how many match.
pub async fn sessions(
    ch: &clickhouse::Client,
    project_id: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    environments: &[String],
    page: u64,
    limit: u64,
) -> anyhow::Result<(Vec<SessionView>, u64)> {
    let env_filter = if environments.is_empty() {
        ""
    } else {
        " AND environment IN ?"
    };
    let mut having = String::from("1 = 1");
    if from.is_some() {
        having.push_str(" AND created_at >= fromUnixTimestamp64Milli(?)");
    }
    if to.is_some() {
        having.push_str(" AND created_at < fromUnixTimestamp64Milli(?)");
    }
    let base = format!(
        "SELECT assumeNotNull(session_id) AS id, min(timestamp) AS created_at, any(environment) AS environment \
         FROM ({}) WHERE session_id IS NOT NULL AND session_id != ''{env_filter} \
         GROUP BY session_id HAVING {having}",
        latest_versions("traces", TRACE_COLUMNS, "")
    );
    let bind_all = |mut q: clickhouse::query::Query| {
        q = q.bind(project_id);
        if !environments.is_empty() {
            q = q.bind(environments);
        }
        if let Some(t) = from {
            q = q.bind(t.timestamp_millis());
        }
        if let Some(t) = to {
            q = q.bind(t.timestamp_millis());
        }
        q
    };
    page_of(ch, &base, "created_at DESC, id DESC", bind_all, page, limit).await
}

/// The traces of one session, oldest first.
pub async fn traces_of_session(
    ch: &clickhouse::Client,
    project_id: &str,
    session_id: &str,
) -> anyhow::Result<Vec<TraceView>> {
    let sql = format!(
        "SELECT * FROM ({}) WHERE session_id = ? ORDER BY timestamp, id",
        latest_versions("traces", TRACE_COLUMNS, "")
    );
    Ok(ch
        .query(&sql)
        .bind(project_id)
        .bind(session_id)
        .fetch_all()
        .await?)
}

/// Filters of the score list (`GET /api/public/v2/scores`).
#[derive(Debug, Clone, Default)]
pub struct ScoreFilter {
    pub name: Option<String>,
    pub source: Option<String>,
    pub data_type: Option<String>,
    pub config_id: Option<String>,
    pub queue_id: Option<String>,
    pub trace_id: Option<String>,
    pub observation_id: Option<String>,
    pub session_id: Option<String>,
    pub dataset_run_id: Option<String>,
    pub score_ids: Vec<String>,
    pub environments: Vec<String>,
    pub from_timestamp: Option<DateTime<Utc>>,
    pub to_timestamp: Option<DateTime<Utc>>,
    /// `value <operator> x`, the operator from a closed set.
    pub value: Option<(&'static str, f64)>,
    /// Scores of traces of this user / carrying all these tags.
    pub trace_user_id: Option<String>,
    pub trace_tags: Vec<String>,
}

pub async fn scores(
    ch: &clickhouse::Client,
    project_id: &str,
    filter: &ScoreFilter,
    page: u64,
    limit: u64,
) -> anyhow::Result<(Vec<ScoreView>, u64)> {
    let mut after = String::new();
    let text_filters = [
        (&filter.name, "name"),
        (&filter.source, "source"),
        (&filter.data_type, "data_type"),
        (&filter.config_id, "config_id"),
        (&filter.queue_id, "queue_id"),
        (&filter.trace_id, "trace_id"),
        (&filter.observation_id, "observation_id"),
        (&filter.session_id, "session_id"),
        (&filter.dataset_run_id, "dataset_run_id"),
    ];
    for (value, column) in text_filters {
        if value.is_some() {
            after.push_str(&format!(" AND {column} = ?"));
        }
    }
    if !filter.score_ids.is_empty() {
        after.push_str(" AND id IN ?");
    }
    if !filter.environments.is_empty() {
        after.push_str(" AND environment IN ?");
    }
    if filter.from_timestamp.is_some() {
        after.push_str(" AND timestamp >= fromUnixTimestamp64Milli(?)");
    }
    if filter.to_timestamp.is_some() {
        after.push_str(" AND timestamp < fromUnixTimestamp64Milli(?)");
    }
    if let Some((operator, _)) = filter.value {
        after.push_str(&format!(" AND value {operator} ?"));
    }
    let trace_filtered = filter.trace_user_id.is_some() || !filter.trace_tags.is_empty();
    if trace_filtered {
        let mut trace_where = String::new();
        if filter.trace_user_id.is_some() {
            trace_where.push_str(" AND user_id = ?");
        }
        if !filter.trace_tags.is_empty() {
            trace_where.push_str(" AND hasAll(tags, ?)");
        }
        after.push_str(&format!(
            " AND trace_id IN (SELECT id FROM ({}) WHERE 1 = 1{trace_where})",
            latest_versions("traces", "id, user_id, tags", "")
        ));
    }
    let base = format!(
        "SELECT * FROM ({}) WHERE 1 = 1{after}",
        latest_versions("scores", SCORE_COLUMNS, "")
    );
    let bind_all = |mut q: clickhouse::query::Query| {
        q = q.bind(project_id);
        for value in text_filters.iter().filter_map(|(v, _)| v.as_ref()) {
            q = q.bind(value);
        }
        if !filter.score_ids.is_empty() {
            q = q.bind(&filter.score_ids);
        }
        if !filter.environments.is_empty() {
            q = q.bind(&filter.environments);
        }
        if let Some(t) = filter.from_timestamp {
            q = q.bind(t.timestamp_millis());
        }
        if let Some(t) = filter.to_timestamp {
            q = q.bind(t.timestamp_millis());
        }
        if let Some((_, value)) = filter.value {
            q = q.bind(value);
        }
        if trace_filtered {
            q = q.bind(project_id);
            if let Some(user) = &filter.trace_user_id {
                q = q.bind(user);
            }
            if !filter.trace_tags.is_empty() {
                q = q.bind(&filter.trace_tags);
            }
        }
        q
    };
    page_of(ch, &base, "timestamp DESC, id DESC", bind_all, page, limit).await
}

/// One page of scores, each with the newest version of its trace (`None` for a score of a
/// session or a dataset run, or whose trace is gone), and the total number matching.
pub async fn scores_with_traces(
    ch: &clickhouse::Client,
    project_id: &str,
    filter: &ScoreFilter,
    page: u64,
    limit: u64,
) -> anyhow::Result<(Vec<(ScoreView, Option<TraceView>)>, u64)> {
    let (scores, total) = self::scores(ch, project_id, filter, page, limit).await?;
    let trace_ids: Vec<String> = scores.iter().filter_map(|s| s.trace_id.clone()).collect();
    let traces = traces_by_ids(ch, project_id, &trace_ids).await?;
    let joined = scores
        .into_iter()
        .map(|score| {
            let trace = score
                .trace_id
                .as_ref()
                .and_then(|id| traces.iter().find(|t| &t.id == id))
                .cloned();
            (score, trace)
        })
        .collect();
    Ok((joined, total))
}

/// The traces with the given ids (newest versions), for attaching trace data to scores.
pub async fn traces_by_ids(
    ch: &clickhouse::Client,
    project_id: &str,
    ids: &[String],
) -> anyhow::Result<Vec<TraceView>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(ch
        .query(&latest_versions("traces", TRACE_COLUMNS, "AND id IN ?"))
        .bind(project_id)
        .bind(ids)
        .fetch_all()
        .await?)
}
