//! The cursor-paged observation list behind `GET /api/public/v2/observations`: the columns its
//! filters can address, filter conditions compiled to SQL with every value bound, and the query.
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

use super::sql::{latest_versions, Bound, Sql};
use crate::domain::project::ProjectId;

/// A column a filter can address. The SQL of each reads the newest observation version as `o`
/// and, for trace columns, the newest version of its trace as `t` (absent trace: empty values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    Id,
    TraceId,
    Type,
    Name,
    StartTime,
    EndTime,
    Environment,
    Level,
    StatusMessage,
    Version,
    ParentObservationId,
    IsRootObservation,
    HasParentObservation,
    Model,
    ModelId,
    PromptName,
    PromptVersion,
    Input,
    Output,
    HasInput,
    HasOutput,
    Metadata,
    EvaluatorId,
    RuleId,
    Latency,
    TimeToFirstToken,
    TokensPerSecond,
    InputTokens,
    OutputTokens,
    TotalTokens,
    InputCost,
    OutputCost,
    TotalCost,
    UserId,
    SessionId,
    Release,
    TraceTags,
    TraceName,
}

/// An observation is a logical root when it has no parent. (Langfuse also counts spans its SDK
/// marks as app roots; this schema has no such mark.)
const IS_ROOT: &str = "(ifNull(o.parent_observation_id, '') = '')";

impl Column {
    /// The SQL expression; constant text, never built from input.
    pub fn sql(self) -> &'static str {
        match self {
            Column::Id => "o.id",
            Column::TraceId => "o.trace_id",
            Column::Type => "o.type",
            Column::Name => "o.name",
            Column::StartTime => "o.start_time",
            Column::EndTime => "o.end_time",
            Column::Environment => "o.environment",
            Column::Level => "o.level",
            Column::StatusMessage => "o.status_message",
            Column::Version => "o.version",
            Column::ParentObservationId => "o.parent_observation_id",
            Column::IsRootObservation => IS_ROOT,
            Column::HasParentObservation => "(ifNull(o.parent_observation_id, '') != '')",
            Column::Model => "o.provided_model_name",
            Column::ModelId => "o.internal_model_id",
            Column::PromptName => "o.prompt_name",
            Column::PromptVersion => "o.prompt_version",
            Column::Input => "o.input",
            Column::Output => "o.output",
            Column::HasInput => "(ifNull(o.input, '') != '')",
            Column::HasOutput => "(ifNull(o.output, '') != '')",
            Column::Metadata => "o.metadata",
            // The metadata keys Langfuse's evaluators write on the observations they run.
            Column::EvaluatorId => "o.metadata['evaluator_id']",
            Column::RuleId => {
                "if(o.metadata['evaluation_rule_id'] != '', o.metadata['evaluation_rule_id'], \
                 o.metadata['job_configuration_id'])"
            }
            Column::Latency => {
                "if(isNull(o.end_time), NULL, \
                 dateDiff('millisecond', o.start_time, assumeNotNull(o.end_time)) / 1000)"
            }
            Column::TimeToFirstToken => {
                "if(isNull(o.completion_start_time), NULL, \
                 dateDiff('millisecond', o.start_time, assumeNotNull(o.completion_start_time)) / 1000)"
            }
            Column::TokensPerSecond => {
                "if(isNull(o.end_time), NULL, \
                 arraySum(mapValues(mapFilter((k, v) -> positionCaseInsensitive(k, 'output') > 0, o.usage_details))) \
                 / (dateDiff('millisecond', o.start_time, assumeNotNull(o.end_time)) / 1000))"
            }
            Column::InputTokens => {
                "arraySum(mapValues(mapFilter((k, v) -> positionCaseInsensitive(k, 'input') > 0, o.usage_details)))"
            }
            Column::OutputTokens => {
                "arraySum(mapValues(mapFilter((k, v) -> positionCaseInsensitive(k, 'output') > 0, o.usage_details)))"
            }
            Column::TotalTokens => {
                "if(mapContains(o.usage_details, 'total'), o.usage_details['total'], NULL)"
            }
            Column::InputCost => {
                "arraySum(mapValues(mapFilter((k, v) -> positionCaseInsensitive(k, 'input') > 0, o.cost_details)))"
            }
            Column::OutputCost => {
                "arraySum(mapValues(mapFilter((k, v) -> positionCaseInsensitive(k, 'output') > 0, o.cost_details)))"
            }
            Column::TotalCost => {
                "if(mapContains(o.cost_details, 'total'), o.cost_details['total'], NULL)"
            }
            Column::UserId => "t.user_id",
            Column::SessionId => "t.session_id",
            Column::Release => "t.release",
            Column::TraceTags => "t.tags",
            // The trace's name; for a root observation of a trace without one, its own name.
            Column::TraceName => {
                "coalesce(nullIf(t.name, ''), if(ifNull(o.parent_observation_id, '') = '', nullIf(o.name, ''), NULL))"
            }
        }
    }

    /// Whether the column comes from the trace, so the query must join traces.
    pub fn of_trace(self) -> bool {
        matches!(
            self,
            Column::UserId
                | Column::SessionId
                | Column::Release
                | Column::TraceTags
                | Column::TraceName
        )
    }

    /// Columns where an empty string and NULL mean the same (no parent, no release).
    fn empty_equals_null(self) -> bool {
        matches!(self, Column::ParentObservationId | Column::Release)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    Eq,
    Gt,
    Lt,
    Gte,
    Lte,
}

impl Compare {
    fn sql(self) -> &'static str {
        match self {
            Compare::Eq => "=",
            Compare::Gt => ">",
            Compare::Lt => "<",
            Compare::Gte => ">=",
            Compare::Lte => "<=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOp {
    Equals,
    Contains,
    NotContains,
    StartsWith,
    EndsWith,
    /// Literal search: the text occurs, and each of its tokens is a whole token of the value.
    Matches,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrayOp {
    AnyOf,
    NoneOf,
    AllOf,
}

/// One filter condition on one column; conditions are ANDed.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Time {
        column: Column,
        compare: Compare,
        at: DateTime<Utc>,
    },
    Text {
        column: Column,
        op: TextOp,
        value: String,
    },
    Number {
        column: Column,
        compare: Compare,
        value: f64,
    },
    /// `any of` (or, negated, `none of`) a list of values.
    OneOf {
        column: Column,
        negated: bool,
        values: Vec<String>,
    },
    Array {
        column: Column,
        op: ArrayOp,
        values: Vec<String>,
    },
    Flag {
        column: Column,
        equals: bool,
        value: bool,
    },
    Null {
        column: Column,
        is_null: bool,
    },
    MetadataText {
        key: String,
        op: TextOp,
        value: String,
    },
    MetadataNumber {
        key: String,
        compare: Compare,
        value: f64,
    },
    MetadataOneOf {
        key: String,
        negated: bool,
        values: Vec<String>,
    },
    MetadataFlag {
        key: String,
        equals: bool,
        value: bool,
    },
}

impl Condition {
    pub fn column(&self) -> Column {
        match self {
            Condition::Time { column, .. }
            | Condition::Text { column, .. }
            | Condition::Number { column, .. }
            | Condition::OneOf { column, .. }
            | Condition::Array { column, .. }
            | Condition::Flag { column, .. }
            | Condition::Null { column, .. } => *column,
            Condition::MetadataText { .. }
            | Condition::MetadataNumber { .. }
            | Condition::MetadataOneOf { .. }
            | Condition::MetadataFlag { .. } => Column::Metadata,
        }
    }

    /// Appends the condition as one parenthesised boolean expression.
    fn compile(&self, sql: &mut Sql) {
        sql.text("(");
        match self {
            Condition::Time {
                column,
                compare,
                at,
            } => {
                sql.text(&format!(
                    "{} {} fromUnixTimestamp64Milli(toInt64(",
                    column.sql(),
                    compare.sql()
                ));
                sql.bind(Bound::Int(at.timestamp_millis()));
                sql.text("))");
            }
            Condition::Text { column, op, value } => text_condition(sql, *column, *op, value),
            Condition::Number {
                column,
                compare,
                value,
            } => {
                sql.text(&format!("toFloat64({}) {} ", column.sql(), compare.sql()));
                sql.bind(Bound::Float(*value));
            }
            Condition::OneOf {
                column,
                negated,
                values,
            } => one_of(sql, *column, *negated, values),
            Condition::Array { column, op, values } => {
                let expr = column.sql();
                match op {
                    ArrayOp::AnyOf => {
                        sql.text("hasAny(");
                        sql.bind(Bound::Texts(values.clone()));
                        sql.text(&format!(", {expr})"));
                    }
                    ArrayOp::NoneOf => {
                        sql.text("NOT hasAny(");
                        sql.bind(Bound::Texts(values.clone()));
                        sql.text(&format!(", {expr})"));
                    }
                    ArrayOp::AllOf => {
                        sql.text(&format!("hasAll({expr}, "));
                        sql.bind(Bound::Texts(values.clone()));
                        sql.text(")");
                    }
                }
            }
            Condition::Flag {
                column,
                equals,
                value,
            } => {
                let op = if *equals { "=" } else { "!=" };
                sql.text(&format!("{} {op} ", column.sql()));
                sql.bind(Bound::Flag(*value));
            }
            Condition::Null { column, is_null } => {
                let expr = column.sql();
                let text = match (column.empty_equals_null(), is_null) {
                    (true, true) => format!("{expr} = '' OR {expr} IS NULL"),
                    (true, false) => format!("{expr} != '' AND {expr} IS NOT NULL"),
                    (false, true) => format!("{expr} IS NULL"),
                    (false, false) => format!("{expr} IS NOT NULL"),
                };
                sql.text(&text);
            }
            Condition::MetadataText { key, op, value } => metadata_text(sql, key, *op, value),
            Condition::MetadataNumber {
                key,
                compare,
                value,
            } => {
                metadata_has(sql, key);
                sql.text(" AND toFloat64OrNull(o.metadata[");
                sql.bind(Bound::Text(key.clone()));
                sql.text(&format!("]) {} ", compare.sql()));
                sql.bind(Bound::Float(*value));
            }
            Condition::MetadataOneOf {
                key,
                negated,
                values,
            } => {
                if *negated {
                    sql.text("NOT (");
                }
                metadata_has(sql, key);
                sql.text(" AND o.metadata[");
                sql.bind(Bound::Text(key.clone()));
                sql.text("] IN ");
                sql.bind(Bound::Texts(values.clone()));
                if *negated {
                    sql.text(")");
                }
            }
            Condition::MetadataFlag { key, equals, value } => {
                // Metadata values are stored as text: a boolean is `true` or `false`.
                if !*equals {
                    sql.text("NOT (");
                }
                metadata_has(sql, key);
                sql.text(" AND lower(o.metadata[");
                sql.bind(Bound::Text(key.clone()));
                sql.text("]) = ");
                sql.bind(Bound::Text(value.to_string()));
                if !*equals {
                    sql.text(")");
                }
            }
        }
        sql.text(")");
    }
}

fn text_condition(sql: &mut Sql, column: Column, op: TextOp, value: &str) {
    let expr = column.sql();
    if column.empty_equals_null() && value.is_empty() {
        match op {
            TextOp::Equals | TextOp::Contains | TextOp::StartsWith | TextOp::EndsWith => {
                sql.text(&format!("{expr} = '' OR {expr} IS NULL"));
                return;
            }
            TextOp::NotContains => sql.text(&format!("{expr} != '' AND ")),
            TextOp::Matches => {}
        }
    }
    let value = Bound::Text(value.to_string());
    match op {
        TextOp::Equals => {
            sql.text(&format!("{expr} = "));
            sql.bind(value);
        }
        TextOp::Contains | TextOp::NotContains => {
            sql.text(&format!("position({expr}, "));
            sql.bind(value);
            let rest = if op == TextOp::Contains {
                ") > 0"
            } else {
                ") = 0"
            };
            sql.text(rest);
        }
        TextOp::StartsWith | TextOp::EndsWith => {
            let function = if op == TextOp::StartsWith {
                "startsWith"
            } else {
                "endsWith"
            };
            sql.text(&format!("{function}({expr}, "));
            sql.bind(value);
            sql.text(")");
        }
        TextOp::Matches => {
            // Case-insensitive, as Langfuse's text index lower-cases input and output. At most
            // 64 distinct tokens of the searched text count, as Langfuse's index takes no more.
            sql.text(&format!("position(lower(ifNull({expr}, '')), lower("));
            sql.bind(value.clone());
            sql.text(&format!(
                ")) > 0 AND hasAll(tokens(lower(ifNull({expr}, ''))), arraySlice(arrayDistinct(tokens(lower("
            ));
            sql.bind(value);
            sql.text("))), 1, 64))");
        }
    }
}

fn metadata_has(sql: &mut Sql, key: &str) {
    // A missing key reads as '' from the map, which must not count as a match.
    sql.text("mapContains(o.metadata, ");
    sql.bind(Bound::Text(key.to_string()));
    sql.text(")");
}

fn metadata_text(sql: &mut Sql, key: &str, op: TextOp, value: &str) {
    metadata_has(sql, key);
    sql.text(" AND ");
    let key = Bound::Text(key.to_string());
    let value_bound = Bound::Text(value.to_string());
    let accessor = |sql: &mut Sql| {
        sql.text("o.metadata[");
        sql.bind(key.clone());
        sql.text("]");
    };
    match op {
        TextOp::Equals => {
            accessor(sql);
            sql.text(" = ");
            sql.bind(value_bound);
        }
        TextOp::Contains | TextOp::NotContains => {
            sql.text("position(");
            accessor(sql);
            sql.text(", ");
            sql.bind(value_bound);
            sql.text(if op == TextOp::Contains {
                ") > 0"
            } else {
                ") = 0"
            });
        }
        TextOp::StartsWith | TextOp::EndsWith => {
            sql.text(if op == TextOp::StartsWith {
                "startsWith("
            } else {
                "endsWith("
            });
            accessor(sql);
            sql.text(", ");
            sql.bind(value_bound);
            sql.text(")");
        }
        TextOp::Matches => {
            // Case-sensitive; the tokens may come from any metadata value, as in Langfuse's
            // index over all values, and the text itself must occur in the key's value.
            sql.text(
                "hasAll(arrayFlatten(arrayMap(v -> tokens(v), mapValues(o.metadata))), \
                 arraySlice(arrayDistinct(tokens(",
            );
            sql.bind(value_bound.clone());
            sql.text(")), 1, 64)) AND position(");
            accessor(sql);
            sql.text(", ");
            sql.bind(value_bound);
            sql.text(") > 0");
        }
    }
}

fn one_of(sql: &mut Sql, column: Column, negated: bool, values: &[String]) {
    let expr = column.sql();
    let list = Bound::Texts(values.to_vec());
    if column == Column::TraceTags {
        // A list of tags: any of / none of the given values.
        sql.text(if negated { "NOT hasAny(" } else { "hasAny(" });
        sql.bind(list);
        sql.text(&format!(", {expr})"));
        return;
    }
    let has_empty = values.iter().any(String::is_empty);
    sql.text(&format!(
        "{expr} {} ",
        if negated { "NOT IN" } else { "IN" }
    ));
    sql.bind(list);
    if column.empty_equals_null() {
        match (negated, has_empty) {
            (false, true) => sql.text(&format!(" OR {expr} IS NULL")),
            (true, true) => sql.text(&format!(" AND {expr} IS NOT NULL")),
            (true, false) => sql.text(&format!(" AND {expr} != ''")),
            (false, false) => {}
        }
    }
}

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
         prompt_id, prompt_name, prompt_version FROM (SELECT o.* FROM (",
    );
    sql.append(latest_versions(
        project,
        "observations",
        "*",
        Sql::default(),
    ));
    sql.text(") AS o");
    if conditions.iter().any(|c| c.column().of_trace()) {
        sql.text(" LEFT JOIN (");
        sql.append(latest_versions(
            project,
            "traces",
            "id, name, user_id, session_id, release, tags",
            Sql::default(),
        ));
        sql.text(") AS t ON t.id = o.trace_id");
    }
    sql.text(" WHERE 1 = 1");
    for condition in conditions {
        sql.text(" AND ");
        let mut part = Sql::default();
        condition.compile(&mut part);
        sql.append(part);
    }
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

/// The newest versions of the given traces.
pub async fn trace_contexts(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(condition: Condition) -> Sql {
        let mut sql = Sql::default();
        condition.compile(&mut sql);
        sql
    }

    fn text(value: &str) -> Bound {
        Bound::Text(value.to_string())
    }

    #[test]
    fn values_are_placeholders_never_sql() {
        let sql = compiled(Condition::Text {
            column: Column::Name,
            op: TextOp::Equals,
            value: "x' OR 1 = 1 --".into(),
        });
        assert_eq!(sql.text, "(o.name = ?)");
        assert_eq!(sql.binds, vec![text("x' OR 1 = 1 --")]);
        let sql = compiled(Condition::MetadataText {
            key: "k'".into(),
            op: TextOp::Contains,
            value: "v".into(),
        });
        assert_eq!(
            sql.text,
            "(mapContains(o.metadata, ?) AND position(o.metadata[?], ?) > 0)"
        );
        assert_eq!(sql.binds, vec![text("k'"), text("k'"), text("v")]);
    }

    #[test]
    fn text_operators() {
        for (op, expected) in [
            (TextOp::Contains, "(position(o.name, ?) > 0)"),
            (TextOp::NotContains, "(position(o.name, ?) = 0)"),
            (TextOp::StartsWith, "(startsWith(o.name, ?))"),
            (TextOp::EndsWith, "(endsWith(o.name, ?))"),
        ] {
            let sql = compiled(Condition::Text {
                column: Column::Name,
                op,
                value: "a".into(),
            });
            assert_eq!(sql.text, expected);
        }
        let sql = compiled(Condition::Text {
            column: Column::Output,
            op: TextOp::Matches,
            value: "Needle".into(),
        });
        assert_eq!(
            sql.text,
            "(position(lower(ifNull(o.output, '')), lower(?)) > 0 AND hasAll(tokens(lower(ifNull(o.output, ''))), \
             arraySlice(arrayDistinct(tokens(lower(?))), 1, 64)))"
        );
        assert_eq!(sql.binds.len(), 2);
    }

    #[test]
    fn empty_means_null_where_langfuse_says_so() {
        let no_parent = compiled(Condition::Text {
            column: Column::ParentObservationId,
            op: TextOp::Equals,
            value: String::new(),
        });
        assert_eq!(
            no_parent.text,
            "(o.parent_observation_id = '' OR o.parent_observation_id IS NULL)"
        );
        assert!(no_parent.binds.is_empty());
        let named = compiled(Condition::Text {
            column: Column::Name,
            op: TextOp::Equals,
            value: String::new(),
        });
        assert_eq!(named.text, "(o.name = ?)");
        let release = compiled(Condition::OneOf {
            column: Column::Release,
            negated: true,
            values: vec!["1".into()],
        });
        assert_eq!(release.text, "(t.release NOT IN ? AND t.release != '')");
        let null = compiled(Condition::Null {
            column: Column::Release,
            is_null: true,
        });
        assert_eq!(null.text, "(t.release = '' OR t.release IS NULL)");
    }

    #[test]
    fn tags_and_metadata_lists() {
        let any = compiled(Condition::OneOf {
            column: Column::TraceTags,
            negated: false,
            values: vec!["a".into()],
        });
        assert_eq!(any.text, "(hasAny(?, t.tags))");
        let all = compiled(Condition::Array {
            column: Column::TraceTags,
            op: ArrayOp::AllOf,
            values: vec!["a".into(), "b".into()],
        });
        assert_eq!(all.text, "(hasAll(t.tags, ?))");
        let none = compiled(Condition::MetadataOneOf {
            key: "k".into(),
            negated: true,
            values: vec!["v".into()],
        });
        assert_eq!(
            none.text,
            "(NOT (mapContains(o.metadata, ?) AND o.metadata[?] IN ?))"
        );
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
                column: Column::UserId,
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
