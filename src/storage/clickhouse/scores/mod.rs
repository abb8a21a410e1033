//! The `scores` table: the row the worker inserts, the view reads return, and the queries of the
//! v1/v2 API; the v3 list's cursor pages are in [`cursor_page`].
//!
//! Every read keeps the newest version of each score before it looks at any mutable column
//! ([`super::sql::latest_versions`]).

pub mod cursor_page;

use chrono::{DateTime, Utc};
use clickhouse::serde::chrono::datetime64::millis;
use serde::{Deserialize, Serialize};

use super::pairs;
use super::sql::{latest_matching, latest_versions, page_of, Bound, Sql};
use super::traces::{self, TraceView};
use crate::domain::project::ProjectId;
use crate::ingest::merge::ScoreRecord;

/// A row as inserted; field order matches the table.
#[derive(Debug, Clone, Serialize, clickhouse::Row)]
pub struct ScoreRow {
    pub id: String,
    #[serde(with = "millis")]
    pub timestamp: DateTime<Utc>,
    pub project_id: String,
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
    pub author_user_id: Option<String>,
    pub config_id: Option<String>,
    pub data_type: String,
    pub string_value: Option<String>,
    pub queue_id: Option<String>,
    #[serde(with = "millis")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "millis")]
    pub updated_at: DateTime<Utc>,
    #[serde(with = "millis")]
    pub event_ts: DateTime<Utc>,
    pub is_deleted: u8,
}

impl From<ScoreRecord> for ScoreRow {
    fn from(s: ScoreRecord) -> Self {
        ScoreRow {
            id: s.id,
            timestamp: s.timestamp,
            project_id: s.project_id,
            environment: s.environment,
            trace_id: s.trace_id,
            session_id: s.session_id,
            dataset_run_id: s.dataset_run_id,
            observation_id: s.observation_id,
            name: s.name,
            value: s.value,
            source: s.source,
            comment: s.comment,
            metadata: pairs(s.metadata),
            author_user_id: s.author_user_id,
            config_id: s.config_id,
            data_type: s.data_type.as_str().to_string(),
            string_value: s.string_value,
            queue_id: s.queue_id,
            created_at: s.created_at,
            updated_at: s.updated_at,
            event_ts: s.event_ts,
            is_deleted: 0,
        }
    }
}

impl ScoreRow {
    /// What ReplacingMergeTree keeps one row per (after the project): see the table's `ORDER BY`
    /// (ClickHouse runs in UTC, as Langfuse requires, so its `toDate` is the UTC date).
    pub fn sorting_key(&self) -> (chrono::NaiveDate, &str) {
        (self.timestamp.date_naive(), &self.name)
    }

    /// A deleted copy of this row under its sorting key, for when `newer` is written under
    /// another: see `ObservationRow::tombstone_before`.
    pub fn tombstone_before(&self, newer: &ScoreRow) -> ScoreRow {
        ScoreRow {
            id: self.id.clone(),
            timestamp: self.timestamp,
            project_id: self.project_id.clone(),
            environment: self.environment.clone(),
            trace_id: self.trace_id.clone(),
            session_id: self.session_id.clone(),
            dataset_run_id: self.dataset_run_id.clone(),
            observation_id: self.observation_id.clone(),
            name: self.name.clone(),
            value: 0.0,
            source: self.source.clone(),
            comment: None,
            metadata: Vec::new(),
            author_user_id: None,
            config_id: None,
            data_type: self.data_type.clone(),
            string_value: None,
            queue_id: None,
            created_at: self.created_at,
            updated_at: newer.updated_at - chrono::TimeDelta::milliseconds(1),
            event_ts: newer.event_ts,
            is_deleted: 1,
        }
    }
}

/// A score as reads return it.
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
    pub author_user_id: Option<String>,
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
    author_user_id, config_id, toString(data_type) AS data_type, string_value, queue_id, created_at, updated_at";

/// The score `score_id`, newest version, unless deleted.
pub async fn get(
    ch: &clickhouse::Client,
    project: &ProjectId,
    score_id: &str,
) -> anyhow::Result<Option<ScoreView>> {
    let mut by_id = Sql::new("AND id = ");
    by_id.bind(Bound::Text(score_id.to_string()));
    Ok(latest_versions(project, "scores", SCORE_COLUMNS, by_id)
        .query(ch)
        .fetch_optional()
        .await?)
}

/// Deletes scores: every version of their rows, for real.
pub async fn delete(
    ch: &clickhouse::Client,
    project: &ProjectId,
    score_ids: &[String],
) -> anyhow::Result<()> {
    let mut sql = Sql::new("DELETE FROM scores WHERE project_id = ");
    sql.bind(Bound::Text(project.to_string()));
    sql.text(" AND id IN ");
    sql.bind(Bound::Texts(score_ids.to_vec()));
    sql.query(ch).execute().await?;
    Ok(())
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

/// One page of scores, newest first, and the total number matching.
pub async fn list(
    ch: &clickhouse::Client,
    project: &ProjectId,
    filter: &ScoreFilter,
    page: u64,
    limit: u64,
) -> anyhow::Result<(Vec<ScoreView>, u64)> {
    let mut base = Sql::new("SELECT * FROM (");
    base.append(latest_versions(
        project,
        "scores",
        SCORE_COLUMNS,
        Sql::default(),
    ));
    base.text(") WHERE 1 = 1");
    for (value, column) in [
        (&filter.name, "name"),
        (&filter.source, "source"),
        (&filter.data_type, "data_type"),
        (&filter.config_id, "config_id"),
        (&filter.queue_id, "queue_id"),
        (&filter.trace_id, "trace_id"),
        (&filter.observation_id, "observation_id"),
        (&filter.session_id, "session_id"),
        (&filter.dataset_run_id, "dataset_run_id"),
    ] {
        if let Some(value) = value {
            base.text(&format!(" AND {column} = "));
            base.bind(Bound::Text(value.clone()));
        }
    }
    if !filter.score_ids.is_empty() {
        base.text(" AND id IN ");
        base.bind(Bound::Texts(filter.score_ids.clone()));
    }
    if !filter.environments.is_empty() {
        base.text(" AND environment IN ");
        base.bind(Bound::Texts(filter.environments.clone()));
    }
    if let Some(t) = filter.from_timestamp {
        base.text(" AND timestamp >= fromUnixTimestamp64Milli(");
        base.bind(Bound::Int(t.timestamp_millis()));
        base.text(")");
    }
    if let Some(t) = filter.to_timestamp {
        base.text(" AND timestamp < fromUnixTimestamp64Milli(");
        base.bind(Bound::Int(t.timestamp_millis()));
        base.text(")");
    }
    if let Some((operator, value)) = filter.value {
        base.text(&format!(" AND value {operator} "));
        base.bind(Bound::Float(value));
    }
    if filter.trace_user_id.is_some() || !filter.trace_tags.is_empty() {
        base.text(" AND trace_id IN (SELECT id FROM (");
        base.append(latest_versions(
            project,
            "traces",
            "id, user_id, tags",
            Sql::default(),
        ));
        base.text(") WHERE 1 = 1");
        if let Some(user) = &filter.trace_user_id {
            base.text(" AND user_id = ");
            base.bind(Bound::Text(user.clone()));
        }
        if !filter.trace_tags.is_empty() {
            base.text(" AND hasAll(tags, ");
            base.bind(Bound::Texts(filter.trace_tags.clone()));
            base.text(")");
        }
        base.text(")");
    }
    page_of(ch, base, "timestamp DESC, id DESC", page, limit).await
}

/// One page of scores, each with the newest version of its trace (`None` for a score of a
/// session or a dataset run, or whose trace is gone), and the total number matching.
pub async fn list_with_traces(
    ch: &clickhouse::Client,
    project: &ProjectId,
    filter: &ScoreFilter,
    page: u64,
    limit: u64,
) -> anyhow::Result<(Vec<(ScoreView, Option<TraceView>)>, u64)> {
    let (scores, total) = list(ch, project, filter, page, limit).await?;
    let trace_ids: Vec<String> = scores.iter().filter_map(|s| s.trace_id.clone()).collect();
    let traces = traces::by_ids(ch, project, &trace_ids).await?;
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

/// The scores of a trace, oldest first.
pub async fn of_trace(
    ch: &clickhouse::Client,
    project: &ProjectId,
    trace_id: &str,
) -> anyhow::Result<Vec<ScoreView>> {
    let mut of_trace = Sql::new("AND trace_id = ");
    of_trace.bind(Bound::Text(trace_id.to_string()));
    let mut sql = latest_matching(project, "scores", SCORE_COLUMNS, &of_trace);
    sql.text(" ORDER BY timestamp, id");
    Ok(sql.query(ch).fetch_all().await?)
}
