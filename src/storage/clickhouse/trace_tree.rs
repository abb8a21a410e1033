//! The web UI's trace page: the observations of a trace as its tree needs them, without their
//! input, output and metadata (the page of a trace of 10,000 observations carries its tree, and
//! each observation's values are read when it is opened, by `observations::get`).

use chrono::{DateTime, Utc};
use clickhouse::serde::chrono::datetime64::millis;
use serde::Deserialize;

use super::sql::{latest_matching, Bound, Sql};
use crate::domain::project::ProjectId;

/// What the tree and the timeline show of an observation.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct ObservationOutline {
    pub id: String,
    pub observation_type: String,
    pub parent_observation_id: Option<String>,
    #[serde(with = "millis")]
    pub start_time: DateTime<Utc>,
    #[serde(with = "millis::option")]
    pub end_time: Option<DateTime<Utc>>,
    pub name: String,
    pub level: String,
    pub model: Option<String>,
    pub total_tokens: u64,
    pub total_cost: Option<f64>,
}

/// The columns read: none of the large ones.
const OUTLINE_COLUMNS: &str = "id, toString(type) AS observation_type, parent_observation_id, \
    start_time, end_time, name, toString(level) AS level, provided_model_name AS model, \
    usage_details['total'] AS total_tokens, toFloat64(total_cost) AS total_cost";

fn outline_sql(project: &ProjectId, trace_id: &str) -> Sql {
    let mut of_trace = Sql::new("AND trace_id = ");
    of_trace.bind(Bound::Text(trace_id.to_string()));
    let mut sql = latest_matching(project, "observations", OUTLINE_COLUMNS, &of_trace);
    sql.text(" ORDER BY start_time, id");
    sql
}

/// The observations of a trace, by start time, without their values.
pub async fn of_trace(
    ch: &clickhouse::Client,
    project: &ProjectId,
    trace_id: &str,
) -> anyhow::Result<Vec<ObservationOutline>> {
    Ok(outline_sql(project, trace_id).query(ch).fetch_all().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outline_is_scoped_bound_and_leaves_the_values_unread() {
        let sql = outline_sql(&ProjectId::authenticated("p"), "t'1");
        assert_eq!(sql.text.matches('?').count(), sql.binds.len());
        assert!(!sql.text.contains("t'1"));
        for large in ["input", "output", "metadata"] {
            assert!(!OUTLINE_COLUMNS.contains(large), "{large}");
        }
    }
}
