//! The `observations` table: the row the worker inserts, the view reads return, and the queries
//! of the v1 API; the v2 list's cursor pages are in [`cursor_page`].
//!
//! Every read keeps the newest version of each observation before it looks at any mutable
//! column ([`super::sql::latest_versions`]): in this schema even the start time and the trace id
//! of an observation may differ between versions.

pub mod cursor_page;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use clickhouse::serde::chrono::datetime64::millis;
use serde::{Deserialize, Serialize};

use super::filter::{self, Condition, OBSERVATIONS};
use super::sql::{latest_matching, latest_versions, page_of, Bound, Sql};
use super::{decimal, pairs};
use crate::domain::project::ProjectId;
use crate::ingest::merge::{ObservationRecord, TierAttributes};

/// A row as inserted; field order matches the table.
#[derive(Debug, Clone, Serialize, clickhouse::Row)]
pub struct ObservationRow {
    pub id: String,
    pub trace_id: String,
    pub project_id: String,
    pub environment: String,
    #[serde(rename = "type")]
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
    pub provided_model_name: Option<String>,
    /// The model that matched `provided_model_name`, which the worker sets after the merge.
    pub internal_model_id: Option<String>,
    pub model_parameters: Option<String>,
    pub provided_usage_details: Vec<(String, u64)>,
    pub usage_details: Vec<(String, u64)>,
    pub provided_cost_details: Vec<(String, i64)>,
    pub cost_details: Vec<(String, i64)>,
    pub total_cost: Option<i64>,
    /// The pricing tier of the matched model the usage was priced by (set with the cost).
    pub usage_pricing_tier_id: Option<String>,
    pub usage_pricing_tier_name: Option<String>,
    #[serde(with = "millis::option")]
    pub completion_start_time: Option<DateTime<Utc>>,
    /// The id of the prompt version named by `prompt_name` and `prompt_version`, which the worker
    /// looks up in PostgreSQL after the merge; `None` when there is no such prompt.
    pub prompt_id: Option<String>,
    pub prompt_name: Option<String>,
    pub prompt_version: Option<u16>,
    #[serde(with = "millis")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "millis")]
    pub updated_at: DateTime<Utc>,
    #[serde(with = "millis")]
    pub event_ts: DateTime<Utc>,
    pub is_deleted: u8,
    /// The experiment fields of its spans (`sql/clickhouse/0005_observation_experiments.sql`).
    pub experiment_id: Option<String>,
    pub experiment_name: Option<String>,
    pub experiment_description: Option<String>,
    pub experiment_metadata: Vec<(String, String)>,
    pub experiment_dataset_id: Option<String>,
    pub experiment_item_id: Option<String>,
    #[serde(with = "millis::option")]
    pub experiment_item_version: Option<DateTime<Utc>>,
    pub experiment_item_root_observation_id: Option<String>,
    pub experiment_item_expected_output: Option<String>,
    pub experiment_item_metadata: Vec<(String, String)>,
    /// Not a column: what the worker's pricing checks tier conditions against (the merge's
    /// [`TierAttributes`]).
    #[serde(skip)]
    pub tier_attributes: Option<TierAttributes>,
}

impl From<ObservationRecord> for ObservationRow {
    fn from(o: ObservationRecord) -> Self {
        let amounts = |costs: BTreeMap<String, f64>| -> Vec<(String, i64)> {
            costs.into_iter().map(|(k, v)| (k, decimal(v))).collect()
        };
        let usage = pairs(o.usage_details);
        ObservationRow {
            id: o.id,
            trace_id: o.trace_id,
            project_id: o.project_id,
            environment: o.environment,
            observation_type: o.observation_type.as_str().to_string(),
            parent_observation_id: o.parent_observation_id,
            start_time: o.start_time,
            end_time: o.end_time,
            name: o.name.unwrap_or_default(),
            metadata: pairs(o.metadata),
            level: o.level.as_str().to_string(),
            status_message: o.status_message,
            version: o.version,
            input: o.input,
            output: o.output,
            provided_model_name: o.model,
            internal_model_id: None,
            model_parameters: o.model_parameters,
            provided_usage_details: usage.clone(),
            usage_details: usage,
            provided_cost_details: amounts(o.provided_cost_details),
            cost_details: amounts(o.cost_details),
            total_cost: o.total_cost.map(decimal),
            usage_pricing_tier_id: None,
            usage_pricing_tier_name: None,
            completion_start_time: o.completion_start_time,
            prompt_id: None,
            prompt_name: o.prompt_name,
            prompt_version: o.prompt_version,
            created_at: o.created_at,
            updated_at: o.updated_at,
            event_ts: o.event_ts,
            is_deleted: 0,
            experiment_id: o.experiment.id,
            experiment_name: o.experiment.name,
            experiment_description: o.experiment.description,
            experiment_metadata: pairs(o.experiment.metadata.unwrap_or_default()),
            experiment_dataset_id: o.experiment.dataset_id,
            experiment_item_id: o.experiment.item_id,
            experiment_item_version: o.experiment.item_version,
            experiment_item_root_observation_id: o.experiment.item_root_observation_id,
            experiment_item_expected_output: o.experiment.item_expected_output,
            experiment_item_metadata: pairs(o.experiment.item_metadata.unwrap_or_default()),
            tier_attributes: o.tier_attributes,
        }
    }
}

impl ObservationRow {
    /// What ReplacingMergeTree keeps one row per (after the project): see the table's `ORDER BY`
    /// (ClickHouse runs in UTC, as Langfuse requires, so its `toDate` is the UTC date).
    pub fn sorting_key(&self) -> (&str, chrono::NaiveDate) {
        (&self.observation_type, self.start_time.date_naive())
    }

    /// A deleted copy of this row, under this row's sorting key, that replaces it there when
    /// `newer` (the entity's row under another key) is written: `FINAL` then keeps `newer`
    /// alone. It is as new as `newer` (so it outranks every earlier version under this key) but
    /// updated just before it, so a read that picks each id's newest version still picks `newer`.
    /// Only the key and the ids are kept: nothing reads a deleted row's content.
    pub fn tombstone_before(&self, newer: &ObservationRow) -> ObservationRow {
        ObservationRow {
            id: self.id.clone(),
            trace_id: self.trace_id.clone(),
            project_id: self.project_id.clone(),
            environment: self.environment.clone(),
            observation_type: self.observation_type.clone(),
            parent_observation_id: None,
            start_time: self.start_time,
            end_time: None,
            name: String::new(),
            metadata: Vec::new(),
            level: self.level.clone(),
            status_message: None,
            version: None,
            input: None,
            output: None,
            provided_model_name: None,
            internal_model_id: None,
            model_parameters: None,
            provided_usage_details: Vec::new(),
            usage_details: Vec::new(),
            provided_cost_details: Vec::new(),
            cost_details: Vec::new(),
            total_cost: None,
            usage_pricing_tier_id: None,
            usage_pricing_tier_name: None,
            completion_start_time: None,
            prompt_id: None,
            prompt_name: None,
            prompt_version: None,
            experiment_id: None,
            experiment_name: None,
            experiment_description: None,
            experiment_metadata: Vec::new(),
            experiment_dataset_id: None,
            experiment_item_id: None,
            experiment_item_version: None,
            experiment_item_root_observation_id: None,
            experiment_item_expected_output: None,
            experiment_item_metadata: Vec::new(),
            created_at: self.created_at,
            updated_at: newer.updated_at - chrono::TimeDelta::milliseconds(1),
            event_ts: newer.event_ts,
            is_deleted: 1,
            tier_attributes: None,
        }
    }
}

/// An observation as reads return it.
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
    pub prompt_id: Option<String>,
    pub prompt_name: Option<String>,
    pub prompt_version: Option<u16>,
    /// The model the worker matched, and the pricing tier it priced the usage by.
    pub internal_model_id: Option<String>,
    pub usage_pricing_tier_id: Option<String>,
    pub usage_pricing_tier_name: Option<String>,
}

const OBSERVATION_COLUMNS: &str = "id, trace_id, toString(environment) AS environment, toString(type) AS observation_type, \
    parent_observation_id, start_time, end_time, name, CAST(metadata, 'Array(Tuple(String, String))') AS metadata, \
    toString(level) AS level, status_message, version, input, output, provided_model_name AS model, model_parameters, \
    CAST(usage_details, 'Array(Tuple(String, UInt64))') AS usage_details, \
    arrayMap(x -> (x.1, toFloat64(x.2)), CAST(cost_details, 'Array(Tuple(String, Decimal64(12)))')) AS cost_details, \
    toFloat64(total_cost) AS total_cost, completion_start_time, prompt_id, prompt_name, prompt_version, \
    internal_model_id, usage_pricing_tier_id, usage_pricing_tier_name";

/// One page of observations matching every condition (on the observations view of the filter
/// language, [`OBSERVATIONS`]), newest start time first, and the total number matching.
pub async fn list(
    ch: &clickhouse::Client,
    project: &ProjectId,
    conditions: &[Condition],
    page: u64,
    limit: u64,
) -> anyhow::Result<(Vec<ObservationView>, u64)> {
    page_of(
        ch,
        list_sql(project, conditions),
        "start_time DESC, id DESC",
        page,
        limit,
    )
    .await
}

/// The observations matching every condition, each in its newest version, unordered.
fn list_sql(project: &ProjectId, conditions: &[Condition]) -> Sql {
    let mut sql = Sql::new(&format!(
        "SELECT {OBSERVATION_COLUMNS} FROM (SELECT o.* FROM "
    ));
    sql.append(OBSERVATIONS.narrowed_from_sql(project, conditions));
    filter::push_where_all(&mut sql, conditions);
    sql.text(")");
    sql
}

/// The observation `observation_id`, newest version, unless deleted.
pub async fn get(
    ch: &clickhouse::Client,
    project: &ProjectId,
    observation_id: &str,
) -> anyhow::Result<Option<ObservationView>> {
    let mut by_id = Sql::new("AND id = ");
    by_id.bind(Bound::Text(observation_id.to_string()));
    Ok(
        latest_versions(project, "observations", OBSERVATION_COLUMNS, by_id)
            .query(ch)
            .fetch_optional()
            .await?,
    )
}

/// The observations of a trace, by start time.
pub async fn of_trace(
    ch: &clickhouse::Client,
    project: &ProjectId,
    trace_id: &str,
) -> anyhow::Result<Vec<ObservationView>> {
    let mut of_trace = Sql::new("AND trace_id = ");
    of_trace.bind(Bound::Text(trace_id.to_string()));
    let mut sql = latest_matching(project, "observations", OBSERVATION_COLUMNS, &of_trace);
    sql.text(" ORDER BY start_time, id");
    Ok(sql.query(ch).fetch_all().await?)
}
