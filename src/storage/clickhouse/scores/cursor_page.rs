//! The cursor-paged score list behind `GET /api/public/v3/scores`.
//!
//! Newest version of each score first, then the filters and the cursor; order newest timestamp
//! first, then id, both descending, as Langfuse pages it.

use chrono::{DateTime, Utc};
use clickhouse::serde::chrono::datetime64::millis;
use serde::Deserialize;

use crate::domain::project::ProjectId;
use crate::storage::clickhouse::sql::{latest_matching, latest_versions, Bound, Sql};

/// Exact values a score must have: numbers (NUMERIC, BOOLEAN as 0/1) or category labels.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueFilter {
    Numbers(Vec<f64>),
    Labels(Vec<String>),
}

/// Every filter of the list; an empty list means no filter. Lists match any of their values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreV3Filter {
    pub ids: Vec<String>,
    pub names: Vec<String>,
    pub sources: Vec<String>,
    pub data_types: Vec<String>,
    pub environments: Vec<String>,
    pub config_ids: Vec<String>,
    pub queue_ids: Vec<String>,
    pub author_user_ids: Vec<String>,
    pub trace_ids: Vec<String>,
    pub session_ids: Vec<String>,
    pub observation_ids: Vec<String>,
    pub dataset_run_ids: Vec<String>,
    /// Scores of the traces of these users (the trace's newest version decides).
    pub trace_user_ids: Vec<String>,
    pub from_timestamp: Option<DateTime<Utc>>,
    pub to_timestamp: Option<DateTime<Utc>>,
    pub value_min: Option<f64>,
    pub value_max: Option<f64>,
    pub values: Option<ValueFilter>,
}

/// The position after which the next page starts.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreCursor {
    pub timestamp: DateTime<Utc>,
    pub id: String,
}

#[derive(Debug, Clone, Deserialize, clickhouse::Row)]
pub struct ScoreV3Row {
    pub id: String,
    #[serde(with = "millis")]
    pub timestamp: DateTime<Utc>,
    pub environment: String,
    pub name: String,
    pub value: f64,
    pub string_value: Option<String>,
    pub source: String,
    pub data_type: String,
    #[serde(with = "millis")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "millis")]
    pub updated_at: DateTime<Utc>,
    pub comment: Option<String>,
    pub metadata: Vec<(String, String)>,
    pub config_id: Option<String>,
    pub trace_id: Option<String>,
    pub observation_id: Option<String>,
    pub session_id: Option<String>,
    pub dataset_run_id: Option<String>,
    pub author_user_id: Option<String>,
    pub queue_id: Option<String>,
}

pub const COLUMNS: &str = "id, timestamp, toString(environment) AS environment, name, value, string_value, \
    toString(source) AS source, toString(data_type) AS data_type, created_at, updated_at, comment, \
    CAST(metadata, 'Array(Tuple(String, String))') AS metadata, config_id, trace_id, observation_id, \
    session_id, dataset_run_id, author_user_id, queue_id";

pub fn page_sql(
    project: &ProjectId,
    filter: &ScoreV3Filter,
    cursor: Option<&ScoreCursor>,
    fetch: u64,
) -> Sql {
    let mut sql = Sql::default();
    sql.text("SELECT * FROM (");
    sql.append(latest_versions(project, "scores", COLUMNS, Sql::default()));
    sql.text(") WHERE 1 = 1");
    for (values, column) in [
        (&filter.ids, "id"),
        (&filter.names, "name"),
        (&filter.sources, "source"),
        (&filter.data_types, "data_type"),
        (&filter.environments, "environment"),
        (&filter.config_ids, "config_id"),
        (&filter.queue_ids, "queue_id"),
        (&filter.author_user_ids, "author_user_id"),
        (&filter.trace_ids, "trace_id"),
        (&filter.session_ids, "session_id"),
        (&filter.observation_ids, "observation_id"),
        (&filter.dataset_run_ids, "dataset_run_id"),
    ] {
        if !values.is_empty() {
            sql.text(&format!(" AND {column} IN "));
            sql.bind(Bound::Texts(values.clone()));
        }
    }
    if !filter.trace_user_ids.is_empty() {
        let mut users = Sql::new("AND user_id IN ");
        users.bind(Bound::Texts(filter.trace_user_ids.clone()));
        sql.text(" AND trace_id IN (");
        sql.append(latest_matching(project, "traces", "id", &users));
        sql.text(")");
    }
    if let Some(t) = filter.from_timestamp {
        sql.text(" AND timestamp >= fromUnixTimestamp64Milli(toInt64(");
        sql.bind(Bound::Int(t.timestamp_millis()));
        sql.text("))");
    }
    if let Some(t) = filter.to_timestamp {
        sql.text(" AND timestamp < fromUnixTimestamp64Milli(toInt64(");
        sql.bind(Bound::Int(t.timestamp_millis()));
        sql.text("))");
    }
    if let Some(min) = filter.value_min {
        sql.text(" AND value >= ");
        sql.bind(Bound::Float(min));
    }
    if let Some(max) = filter.value_max {
        sql.text(" AND value <= ");
        sql.bind(Bound::Float(max));
    }
    match &filter.values {
        None => {}
        Some(ValueFilter::Numbers(numbers)) => {
            sql.text(" AND value IN ");
            sql.bind(Bound::Floats(numbers.clone()));
        }
        Some(ValueFilter::Labels(labels)) => {
            sql.text(" AND string_value IN ");
            sql.bind(Bound::Texts(labels.clone()));
        }
    }
    if let Some(cursor) = cursor {
        sql.text(" AND (timestamp, id) < (fromUnixTimestamp64Milli(toInt64(");
        sql.bind(Bound::Int(cursor.timestamp.timestamp_millis()));
        sql.text(")), ");
        sql.bind(Bound::Text(cursor.id.clone()));
        sql.text(")");
    }
    sql.text(" ORDER BY timestamp DESC, id DESC LIMIT ");
    sql.bind(Bound::Int(fetch as i64));
    sql
}

/// Up to `fetch` scores after `cursor`, in the list's order.
pub async fn page(
    ch: &clickhouse::Client,
    project: &ProjectId,
    filter: &ScoreV3Filter,
    cursor: Option<&ScoreCursor>,
    fetch: u64,
) -> anyhow::Result<Vec<ScoreV3Row>> {
    let sql = page_sql(project, filter, cursor, fetch);
    Ok(sql.query(ch).fetch_all().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_bound_in_placeholder_order() {
        let filter = ScoreV3Filter {
            names: vec!["a".into(), "b".into()],
            trace_ids: vec!["t".into()],
            value_min: Some(0.5),
            values: Some(ValueFilter::Labels(vec!["good".into()])),
            ..Default::default()
        };
        let cursor = ScoreCursor {
            timestamp: DateTime::from_timestamp_millis(7).unwrap(),
            id: "s".into(),
        };
        let project = ProjectId::authenticated("p");
        let sql = page_sql(&project, &filter, Some(&cursor), 11);
        assert_eq!(sql.text.matches('?').count(), sql.binds.len());
        assert_eq!(
            sql.binds,
            vec![
                Bound::Text("p".into()),
                Bound::Texts(vec!["a".into(), "b".into()]),
                Bound::Texts(vec!["t".into()]),
                Bound::Float(0.5),
                Bound::Texts(vec!["good".into()]),
                Bound::Int(7),
                Bound::Text("s".into()),
                Bound::Int(11),
            ]
        );
        assert!(sql.text.contains(" AND string_value IN ?"));
        let plain = page_sql(&project, &ScoreV3Filter::default(), None, 2);
        assert_eq!(plain.binds, vec![Bound::Text("p".into()), Bound::Int(2)]);
    }
}
