//! Experiments as the observations of their runs record them (the experiment columns of
//! `observations`): the experiments list (observations grouped by experiment id) and the
//! experiment items list (each item's root observation), both cursor-paged, and the scores each
//! shows. Conditions are those of the filter views `EXPERIMENTS` and `EXPERIMENT_ITEMS`, over
//! the newest version of each observation.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use clickhouse::serde::chrono::datetime64::millis;
use serde::Deserialize;

use super::filter::{self, Condition, View};
use super::scores::cursor_page::{ScoreV3Row, COLUMNS as SCORE_COLUMNS};
use super::sql::{latest_matching, Bound, Sql};
use crate::domain::project::ProjectId;

/// The position after which the next page starts: the last row's time (an experiment's latest
/// start, an item's start), then its trace and id (items) or its experiment id (experiments).
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentCursor {
    pub time: DateTime<Utc>,
    pub trace_id: String,
    pub id: String,
    pub experiment_id: String,
}

#[derive(Debug, Clone, Deserialize, clickhouse::Row)]
pub struct ExperimentSummary {
    pub experiment_id: String,
    pub name: String,
    pub description: Option<String>,
    pub dataset_id: Option<String>,
    #[serde(with = "millis")]
    pub start_time: DateTime<Utc>,
    #[serde(with = "millis")]
    pub end_time: DateTime<Utc>,
    pub item_count: u64,
    pub metadata: Vec<(String, String)>,
    /// The latest start of its observations: the list's order.
    #[serde(with = "millis")]
    pub last_activity: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, clickhouse::Row)]
pub struct ExperimentItemRow {
    pub id: String,
    pub trace_id: String,
    #[serde(with = "millis")]
    pub start_time: DateTime<Utc>,
    #[serde(with = "millis::option")]
    pub end_time: Option<DateTime<Utc>>,
    pub level: String,
    pub environment: String,
    pub experiment_id: String,
    pub experiment_name: String,
    pub experiment_item_id: String,
    pub experiment_dataset_id: Option<String>,
    #[serde(with = "millis::option")]
    pub experiment_item_version: Option<DateTime<Utc>>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub expected_output: Option<String>,
    pub metadata: Vec<(String, String)>,
    pub item_metadata: Vec<(String, String)>,
    pub experiment_metadata: Vec<(String, String)>,
    pub experiment_description: Option<String>,
}

/// The observations of the view matching every condition, with an experiment id.
fn experiment_rows(view: &View, project: &ProjectId, conditions: &[Condition]) -> Sql {
    let mut sql = view.narrowed_from_sql(project, conditions);
    filter::push_where_all(&mut sql, conditions);
    sql.text(" AND ifNull(o.experiment_id, '') != ''");
    sql
}

fn after_time(sql: &mut Sql, time: DateTime<Utc>) {
    sql.text("fromUnixTimestamp64Milli(toInt64(");
    sql.bind(Bound::Int(time.timestamp_millis()));
    sql.text("))");
}

pub fn summaries_sql(
    project: &ProjectId,
    conditions: &[Condition],
    cursor: Option<&ExperimentCursor>,
    fetch: u64,
) -> Sql {
    let mut sql = Sql::new(
        "SELECT assumeNotNull(o.experiment_id) AS experiment_id, \
         ifNull(any(o.experiment_name), '') AS name, \
         any(o.experiment_description) AS description, \
         any(o.experiment_dataset_id) AS dataset_id, \
         min(o.start_time) AS start_time, \
         max(coalesce(o.end_time, o.start_time)) AS end_time, \
         countIf(ifNull(o.experiment_item_root_observation_id, '') = o.id) AS item_count, \
         CAST(argMax(o.experiment_metadata, length(mapKeys(o.experiment_metadata))), \
              'Array(Tuple(String, String))') AS metadata, \
         max(o.start_time) AS last_activity FROM ",
    );
    sql.append(experiment_rows(&filter::EXPERIMENTS, project, conditions));
    sql.text(" GROUP BY experiment_id");
    if let Some(cursor) = cursor {
        sql.text(" HAVING (last_activity, experiment_id) < (");
        after_time(&mut sql, cursor.time);
        sql.text(", ");
        sql.bind(Bound::Text(cursor.experiment_id.clone()));
        sql.text(")");
    }
    sql.text(" ORDER BY last_activity DESC, experiment_id DESC LIMIT ");
    sql.bind(Bound::Int(fetch as i64));
    sql
}

/// Up to `fetch` experiments after `cursor`, the most recently active first; their figures
/// count only the observations matching `conditions` (the time range among them).
pub async fn summaries(
    ch: &clickhouse::Client,
    project: &ProjectId,
    conditions: &[Condition],
    cursor: Option<&ExperimentCursor>,
    fetch: u64,
) -> anyhow::Result<Vec<ExperimentSummary>> {
    Ok(summaries_sql(project, conditions, cursor, fetch)
        .query(ch)
        .fetch_all()
        .await?)
}

pub fn items_sql(
    project: &ProjectId,
    conditions: &[Condition],
    cursor: Option<&ExperimentCursor>,
    fetch: u64,
) -> Sql {
    let mut sql = Sql::new(
        "SELECT o.id AS id, o.trace_id AS trace_id, o.start_time AS start_time, \
         o.end_time AS end_time, toString(o.level) AS level, \
         toString(o.environment) AS environment, \
         assumeNotNull(o.experiment_id) AS experiment_id, \
         ifNull(o.experiment_name, '') AS experiment_name, \
         ifNull(o.experiment_item_id, '') AS experiment_item_id, \
         o.experiment_dataset_id AS experiment_dataset_id, \
         o.experiment_item_version AS experiment_item_version, \
         o.input AS input, o.output AS output, \
         o.experiment_item_expected_output AS expected_output, \
         CAST(o.metadata, 'Array(Tuple(String, String))') AS metadata, \
         CAST(o.experiment_item_metadata, 'Array(Tuple(String, String))') AS item_metadata, \
         CAST(o.experiment_metadata, 'Array(Tuple(String, String))') AS experiment_metadata, \
         o.experiment_description AS experiment_description FROM ",
    );
    sql.append(experiment_rows(
        &filter::EXPERIMENT_ITEMS,
        project,
        conditions,
    ));
    sql.text(" AND ifNull(o.experiment_item_root_observation_id, '') = o.id");
    if let Some(cursor) = cursor {
        sql.text(" AND (o.start_time, o.trace_id, o.id) < (");
        after_time(&mut sql, cursor.time);
        sql.text(", ");
        sql.bind(Bound::Text(cursor.trace_id.clone()));
        sql.text(", ");
        sql.bind(Bound::Text(cursor.id.clone()));
        sql.text(")");
    }
    sql.text(" ORDER BY o.start_time DESC, o.trace_id DESC, o.id DESC LIMIT ");
    sql.bind(Bound::Int(fetch as i64));
    sql
}

/// Up to `fetch` experiment items (the root observation of each item of each run) after
/// `cursor`, the latest started first.
pub async fn items(
    ch: &clickhouse::Client,
    project: &ProjectId,
    conditions: &[Condition],
    cursor: Option<&ExperimentCursor>,
    fetch: u64,
) -> anyhow::Result<Vec<ExperimentItemRow>> {
    Ok(items_sql(project, conditions, cursor, fetch)
        .query(ch)
        .fetch_all()
        .await?)
}

/// The scores attached to each of these experiments (`dataset_run_id`), newest first, at most
/// `per_experiment` each.
pub async fn scores_of_experiments(
    ch: &clickhouse::Client,
    project: &ProjectId,
    experiment_ids: &[String],
    per_experiment: u64,
) -> anyhow::Result<HashMap<String, Vec<ScoreV3Row>>> {
    if experiment_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut clause = Sql::new("AND dataset_run_id IN ");
    clause.bind(Bound::Texts(experiment_ids.to_vec()));
    let mut sql = latest_matching(project, "scores", SCORE_COLUMNS, &clause);
    sql.text(" ORDER BY timestamp DESC, id DESC LIMIT ");
    sql.bind(Bound::Int(per_experiment as i64));
    sql.text(" BY dataset_run_id");
    let rows: Vec<ScoreV3Row> = sql.query(ch).fetch_all().await?;
    let mut by_experiment: HashMap<String, Vec<ScoreV3Row>> = HashMap::new();
    for row in rows {
        if let Some(id) = row.dataset_run_id.clone() {
            by_experiment.entry(id).or_default().push(row);
        }
    }
    Ok(by_experiment)
}

/// The scores of each item: those of its trace as a whole and those of its root observation,
/// newest first, at most `per_item` each; keyed by the item's observation id.
pub async fn scores_of_items(
    ch: &clickhouse::Client,
    project: &ProjectId,
    items: &[(String, String)],
    per_item: u64,
) -> anyhow::Result<HashMap<String, Vec<ScoreV3Row>>> {
    if items.is_empty() {
        return Ok(HashMap::new());
    }
    let traces: Vec<String> = items.iter().map(|(_, t)| t.clone()).collect();
    let mut clause = Sql::new("AND trace_id IN ");
    clause.bind(Bound::Texts(traces));
    let mut sql = latest_matching(project, "scores", SCORE_COLUMNS, &clause);
    sql.text(" ORDER BY timestamp DESC, id DESC");
    let rows: Vec<ScoreV3Row> = sql.query(ch).fetch_all().await?;
    let mut by_item: HashMap<String, Vec<ScoreV3Row>> = HashMap::new();
    for (item, trace) in items {
        let scores: Vec<ScoreV3Row> = rows
            .iter()
            .filter(|s| {
                s.trace_id.as_deref() == Some(trace.as_str())
                    && s.observation_id.as_deref().is_none_or(|o| o == item)
            })
            .take(per_item as usize)
            .cloned()
            .collect();
        by_item.insert(item.clone(), scores);
    }
    Ok(by_item)
}
