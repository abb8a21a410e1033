//! Row structs of the `traces`, `observations` and `scores` tables, as the worker inserts them.
//! Column names match `sql/clickhouse/`; `Map` columns travel as arrays of pairs, `Decimal64(12)` as
//! the integer count of 10⁻¹² units, `DateTime64(3)` as milliseconds.

use chrono::{DateTime, Utc};
use clickhouse::serde::chrono::datetime64::millis;
use serde::Serialize;

use crate::ingest::merge::{ObservationRecord, ScoreRecord, TraceRecord};

const DECIMAL_SCALE: f64 = 1e12;

fn decimal(value: f64) -> i64 {
    (value * DECIMAL_SCALE).round() as i64
}

fn pairs<V>(map: std::collections::BTreeMap<String, V>) -> Vec<(String, V)> {
    map.into_iter().collect()
}

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
    pub model_parameters: Option<String>,
    pub provided_usage_details: Vec<(String, u64)>,
    pub usage_details: Vec<(String, u64)>,
    pub provided_cost_details: Vec<(String, i64)>,
    pub cost_details: Vec<(String, i64)>,
    pub total_cost: Option<i64>,
    #[serde(with = "millis::option")]
    pub completion_start_time: Option<DateTime<Utc>>,
    pub prompt_name: Option<String>,
    pub prompt_version: Option<u16>,
    #[serde(with = "millis")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "millis")]
    pub updated_at: DateTime<Utc>,
    #[serde(with = "millis")]
    pub event_ts: DateTime<Utc>,
    pub is_deleted: u8,
}

impl From<ObservationRecord> for ObservationRow {
    fn from(o: ObservationRecord) -> Self {
        let costs: Vec<(String, i64)> = o
            .cost_details
            .into_iter()
            .map(|(k, v)| (k, decimal(v)))
            .collect();
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
            model_parameters: o.model_parameters,
            provided_usage_details: usage.clone(),
            usage_details: usage,
            provided_cost_details: costs.clone(),
            cost_details: costs,
            total_cost: o.total_cost.map(decimal),
            completion_start_time: o.completion_start_time,
            prompt_name: o.prompt_name,
            prompt_version: o.prompt_version,
            created_at: o.created_at,
            updated_at: o.updated_at,
            event_ts: o.event_ts,
            is_deleted: 0,
        }
    }
}

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

/// One flush: every row of every table, written as one insert per table.
#[derive(Debug, Default)]
pub struct RowBatch {
    pub traces: Vec<TraceRow>,
    pub observations: Vec<ObservationRow>,
    pub scores: Vec<ScoreRow>,
}

impl RowBatch {
    pub fn len(&self) -> usize {
        self.traces.len() + self.observations.len() + self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inserts each non-empty table's rows in one statement. Succeeds only when ClickHouse
    /// confirmed every insert; a retry after a partial failure re-inserts rows that
    /// ReplacingMergeTree folds into one.
    pub async fn insert(&self, client: &clickhouse::Client) -> anyhow::Result<()> {
        async fn insert_all<T: clickhouse::Row + Serialize>(
            client: &clickhouse::Client,
            table: &str,
            rows: &[T],
        ) -> anyhow::Result<()> {
            if rows.is_empty() {
                return Ok(());
            }
            let mut insert = client.insert(table)?;
            for row in rows {
                insert.write(row).await?;
            }
            insert.end().await?;
            Ok(())
        }
        insert_all(client, "traces", &self.traces).await?;
        insert_all(client, "observations", &self.observations).await?;
        insert_all(client, "scores", &self.scores).await?;
        Ok(())
    }
}
