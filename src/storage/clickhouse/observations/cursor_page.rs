//! The cursor-paged observation list behind `GET /api/public/v2/observations`: the query over the
//! observations view of the filter language (`filter::OBSERVATIONS`), whose conditions it takes.
//!
//! Like every read, it keeps the newest version of each observation (and of each trace it joins)
//! before it looks at any column, filters and the cursor included: in this schema even the start
//! time and the trace id of an observation may differ between versions.
//!
//! Order and cursor follow Langfuse: newest start time first, then `xxHash32(trace_id)`, then the
//! id, all descending; the cursor is the position of the last row of a page in that order.

use chrono::{DateTime, Utc};
use clickhouse::serde::chrono::datetime64::millis;
use serde::Deserialize;

use crate::domain::project::ProjectId;
use crate::storage::clickhouse::filter::{self, Condition, OBSERVATIONS};
use crate::storage::clickhouse::sql::{Bound, Sql};

/// The position after which the next page starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    pub start_time: DateTime<Utc>,
    pub trace_id: String,
    pub id: String,
}

/// Which of the heavy columns to read.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub io: bool,
    /// `Some(keys)`: metadata, values cut to 200 characters except under these keys.
    pub metadata: Option<Vec<String>>,
}

/// How long a metadata value may be unless its key is expanded (Langfuse's limit).
pub const METADATA_VALUE_LIMIT: usize = 200;

#[derive(Debug, Clone, Deserialize, clickhouse::Row)]
pub struct ObservationV2Row {
    pub id: String,
    pub trace_id: String,
    #[serde(with = "millis")]
    pub start_time: DateTime<Utc>,
    #[serde(with = "millis::option")]
    pub end_time: Option<DateTime<Utc>>,
    pub parent_observation_id: Option<String>,
    pub observation_type: String,
    pub name: String,
    pub level: String,
    pub status_message: Option<String>,
    pub version: Option<String>,
    pub environment: String,
    #[serde(with = "millis::option")]
    pub completion_start_time: Option<DateTime<Utc>>,
    #[serde(with = "millis")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "millis")]
    pub updated_at: DateTime<Utc>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub metadata: Vec<(String, String)>,
    pub model: Option<String>,
    pub internal_model_id: Option<String>,
    pub model_parameters: Option<String>,
    pub usage_details: Vec<(String, u64)>,
    pub cost_details: Vec<(String, f64)>,
    pub usage_pricing_tier_id: Option<String>,
    pub usage_pricing_tier_name: Option<String>,
    pub prompt_id: Option<String>,
    pub prompt_name: Option<String>,
    pub prompt_version: Option<u16>,
}

/// The query for up to `fetch` rows after `cursor` matching all `conditions`.
pub fn page_sql(
    project: &ProjectId,
    conditions: &[Condition],
    cursor: Option<&Cursor>,
    fetch: u64,
    selection: &Selection,
) -> Sql {
    let mut sql = Sql::default();
    sql.text(
        "SELECT id, trace_id, start_time, end_time, parent_observation_id, toString(type), name, \
         toString(level), status_message, version, toString(environment), completion_start_time, \
         created_at, updated_at, ",
    );
    if selection.io {
        sql.text("input, output, ");
    } else {
        sql.text("CAST(NULL, 'Nullable(String)'), CAST(NULL, 'Nullable(String)'), ");
    }
    match &selection.metadata {
        None => sql.text("CAST([], 'Array(Tuple(String, String))'), "),
        Some(expand) if expand.is_empty() => sql.text(&format!(
            "CAST(mapApply((k, v) -> (k, leftUTF8(v, {METADATA_VALUE_LIMIT})), metadata), \
             'Array(Tuple(String, String))'), "
        )),
        Some(expand) => {
            sql.text("CAST(mapApply((k, v) -> (k, if(has(");
            sql.bind(Bound::Texts(expand.clone()));
            sql.text(&format!(
                ", k), v, leftUTF8(v, {METADATA_VALUE_LIMIT}))), metadata), \
                 'Array(Tuple(String, String))'), "
            ));
        }
    }
    sql.text(
        "provided_model_name, internal_model_id, model_parameters, \
         CAST(usage_details, 'Array(Tuple(String, UInt64))'), \
         arrayMap(x -> (x.1, toFloat64(x.2)), CAST(cost_details, 'Array(Tuple(String, Decimal64(12)))')), \
         usage_pricing_tier_id, usage_pricing_tier_name, \
         prompt_id, prompt_name, prompt_version FROM (SELECT o.* FROM ",
    );
    sql.append(OBSERVATIONS.from_sql(project, conditions));
    filter::push_where_all(&mut sql, conditions);
    if let Some(cursor) = cursor {
        sql.text(
            " AND (o.start_time, xxHash32(o.trace_id), o.id) < (fromUnixTimestamp64Milli(toInt64(",
        );
        sql.bind(Bound::Int(cursor.start_time.timestamp_millis()));
        sql.text(")), xxHash32(");
        sql.bind(Bound::Text(cursor.trace_id.clone()));
        sql.text("), ");
        sql.bind(Bound::Text(cursor.id.clone()));
        sql.text(")");
    }
    sql.text(" ORDER BY o.start_time DESC, xxHash32(o.trace_id) DESC, o.id DESC LIMIT ");
    sql.bind(Bound::Int(fetch as i64));
    sql.text(") ORDER BY start_time DESC, xxHash32(trace_id) DESC, id DESC");
    sql
}

/// Up to `fetch` observations after `cursor`, in the list's order.
pub async fn page(
    ch: &clickhouse::Client,
    project: &ProjectId,
    conditions: &[Condition],
    cursor: Option<&Cursor>,
    fetch: u64,
    selection: &Selection,
) -> anyhow::Result<Vec<ObservationV2Row>> {
    let sql = page_sql(project, conditions, cursor, fetch, selection);
    Ok(sql.query(ch).fetch_all().await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::clickhouse::filter::{observations, TextOp};

    fn text(value: &str) -> Bound {
        Bound::Text(value.to_string())
    }

    #[test]
    fn the_page_binds_in_placeholder_order() {
        let cursor = Cursor {
            start_time: DateTime::from_timestamp_millis(1_000).unwrap(),
            trace_id: "t".into(),
            id: "o".into(),
        };
        let project = ProjectId::authenticated("p");
        let sql = page_sql(
            &project,
            &[Condition::Text {
                column: &observations::USER_ID,
                op: TextOp::Equals,
                value: "u".into(),
            }],
            Some(&cursor),
            51,
            &Selection {
                io: true,
                metadata: Some(vec!["big".into()]),
            },
        );
        assert_eq!(sql.text.matches('?').count(), sql.binds.len());
        assert_eq!(
            sql.binds,
            vec![
                Bound::Texts(vec!["big".into()]),
                text("p"),
                text("p"),
                text("u"),
                Bound::Int(1_000),
                text("t"),
                text("o"),
                Bound::Int(51),
            ]
        );
        assert!(sql.text.contains("LEFT JOIN"));
        let plain = page_sql(&project, &[], None, 2, &Selection::default());
        assert!(!plain.text.contains("JOIN"), "no trace column, no join");
        assert_eq!(plain.binds, vec![text("p"), Bound::Int(2)]);
    }
}
