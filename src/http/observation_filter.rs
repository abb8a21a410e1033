//! The structured `filter` parameter of `GET /api/public/v2/observations`: a JSON array of
//! `{type, column, operator, value, key?}` conditions, parsed into storage conditions.
//!
//! Pure code. It accepts what Langfuse's filter schema accepts, resolves columns by id or display
//! name as Langfuse does, and refuses with a message what this schema cannot answer (columns of
//! data it does not store, `positionInTrace`). Where Langfuse's own checks reject a combination,
//! the message is Langfuse's.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use crate::domain::time::parse_time;
use crate::storage::clickhouse::observations_v2::{ArrayOp, Column, Compare, Condition, TextOp};

/// Which filter types a column takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Free text: `string` (and `stringOptions`).
    Text,
    /// Text from a small set of values: `stringOptions` (and `string`).
    Options,
    /// A list of strings: `arrayOptions` (and `stringOptions`).
    Tags,
    Time,
    Number,
    Flag,
    /// Key-value metadata: `stringObject`, `numberObject`, `categoryOptions`, `booleanObject`.
    Object,
}

impl Kind {
    /// The type name Langfuse reports for the column.
    fn name(self) -> &'static str {
        match self {
            Kind::Text => "string",
            Kind::Options => "stringOptions",
            Kind::Tags => "arrayOptions",
            Kind::Time => "datetime",
            Kind::Number => "number",
            Kind::Flag => "boolean",
            Kind::Object => "stringObject",
        }
    }

    fn accepts(self, filter_type: &str) -> bool {
        filter_type == "null"
            || match self {
                Kind::Text | Kind::Options => matches!(filter_type, "string" | "stringOptions"),
                Kind::Tags => matches!(filter_type, "arrayOptions" | "stringOptions"),
                Kind::Time => filter_type == "datetime",
                Kind::Number => filter_type == "number",
                Kind::Flag => filter_type == "boolean",
                Kind::Object => matches!(
                    filter_type,
                    "stringObject" | "numberObject" | "categoryOptions" | "booleanObject"
                ),
            }
    }
}

enum Target {
    Column(Column, Kind),
    /// A column Langfuse has that this server stores no data for; the text says what is missing.
    Unsupported(&'static str),
}

const NO_INGESTION_DETAILS: &str = "ingestion API keys, SDK names and versions are not stored";
const NO_EXPERIMENTS: &str = "experiment data is not stored on observations";
const NO_TOOLS: &str = "tool definitions and tool calls are not stored";

/// Every column Langfuse's observation filter knows, by id and by display name.
const COLUMNS: &[(&str, &str, Target)] = &[
    (
        "environment",
        "Environment",
        Target::Column(Column::Environment, Kind::Options),
    ),
    (
        "ingestionApiKey",
        "API Key",
        Target::Unsupported(NO_INGESTION_DETAILS),
    ),
    (
        "ingestionSdkName",
        "SDK Name",
        Target::Unsupported(NO_INGESTION_DETAILS),
    ),
    (
        "ingestionSdkVersion",
        "SDK Version",
        Target::Unsupported(NO_INGESTION_DETAILS),
    ),
    (
        "ingestionSource",
        "Ingestion Source",
        Target::Unsupported(NO_INGESTION_DETAILS),
    ),
    ("type", "Type", Target::Column(Column::Type, Kind::Options)),
    ("id", "ID", Target::Column(Column::Id, Kind::Options)),
    ("name", "Name", Target::Column(Column::Name, Kind::Options)),
    (
        "traceId",
        "Trace ID",
        Target::Column(Column::TraceId, Kind::Text),
    ),
    (
        "startTime",
        "Start Time",
        Target::Column(Column::StartTime, Kind::Time),
    ),
    (
        "endTime",
        "End Time",
        Target::Column(Column::EndTime, Kind::Time),
    ),
    (
        "timeToFirstToken",
        "Time To First Token (s)",
        Target::Column(Column::TimeToFirstToken, Kind::Number),
    ),
    (
        "latency",
        "Latency (s)",
        Target::Column(Column::Latency, Kind::Number),
    ),
    (
        "tokensPerSecond",
        "Tokens per second",
        Target::Column(Column::TokensPerSecond, Kind::Number),
    ),
    (
        "inputCost",
        "Input Cost ($)",
        Target::Column(Column::InputCost, Kind::Number),
    ),
    (
        "outputCost",
        "Output Cost ($)",
        Target::Column(Column::OutputCost, Kind::Number),
    ),
    (
        "totalCost",
        "Total Cost ($)",
        Target::Column(Column::TotalCost, Kind::Number),
    ),
    (
        "level",
        "Level",
        Target::Column(Column::Level, Kind::Options),
    ),
    (
        "statusMessage",
        "Status Message",
        Target::Column(Column::StatusMessage, Kind::Text),
    ),
    (
        "model",
        "Model",
        Target::Column(Column::Model, Kind::Options),
    ),
    (
        "providedModelName",
        "Provided Model Name",
        Target::Column(Column::Model, Kind::Options),
    ),
    (
        "modelId",
        "Model ID",
        Target::Column(Column::ModelId, Kind::Options),
    ),
    (
        "inputTokens",
        "Input Tokens",
        Target::Column(Column::InputTokens, Kind::Number),
    ),
    (
        "outputTokens",
        "Output Tokens",
        Target::Column(Column::OutputTokens, Kind::Number),
    ),
    (
        "totalTokens",
        "Total Tokens",
        Target::Column(Column::TotalTokens, Kind::Number),
    ),
    (
        "tokens",
        "Tokens",
        Target::Column(Column::TotalTokens, Kind::Number),
    ),
    (
        "metadata",
        "Metadata",
        Target::Column(Column::Metadata, Kind::Object),
    ),
    (
        "evaluatorId",
        "Evaluator ID",
        Target::Column(Column::EvaluatorId, Kind::Options),
    ),
    (
        "ruleId",
        "Rule ID",
        Target::Column(Column::RuleId, Kind::Options),
    ),
    (
        "version",
        "Version",
        Target::Column(Column::Version, Kind::Text),
    ),
    (
        "release",
        "Release",
        Target::Column(Column::Release, Kind::Text),
    ),
    (
        "promptName",
        "Prompt Name",
        Target::Column(Column::PromptName, Kind::Options),
    ),
    (
        "promptVersion",
        "Prompt Version",
        Target::Column(Column::PromptVersion, Kind::Number),
    ),
    ("input", "Input", Target::Column(Column::Input, Kind::Text)),
    (
        "output",
        "Output",
        Target::Column(Column::Output, Kind::Text),
    ),
    (
        "sessionId",
        "Session ID",
        Target::Column(Column::SessionId, Kind::Text),
    ),
    (
        "traceName",
        "Trace Name",
        Target::Column(Column::TraceName, Kind::Options),
    ),
    (
        "userId",
        "User ID",
        Target::Column(Column::UserId, Kind::Text),
    ),
    (
        "traceTags",
        "Trace Tags",
        Target::Column(Column::TraceTags, Kind::Tags),
    ),
    (
        "tags",
        "Tags",
        Target::Column(Column::TraceTags, Kind::Tags),
    ),
    (
        "traceEnvironment",
        "Trace Environment",
        Target::Column(Column::Environment, Kind::Options),
    ),
    (
        "hasParentObservation",
        "Has Parent Observation",
        Target::Column(Column::HasParentObservation, Kind::Flag),
    ),
    (
        "isRootObservation",
        "Is Root Observation",
        Target::Column(Column::IsRootObservation, Kind::Flag),
    ),
    (
        "hasInput",
        "Has Input",
        Target::Column(Column::HasInput, Kind::Flag),
    ),
    (
        "hasOutput",
        "Has Output",
        Target::Column(Column::HasOutput, Kind::Flag),
    ),
    (
        "parentObservationId",
        "Parent Observation ID",
        Target::Column(Column::ParentObservationId, Kind::Text),
    ),
    (
        "experimentDatasetId",
        "Experiment Dataset ID",
        Target::Unsupported(NO_EXPERIMENTS),
    ),
    (
        "experimentId",
        "Experiment ID",
        Target::Unsupported(NO_EXPERIMENTS),
    ),
    (
        "experimentName",
        "Experiment Name",
        Target::Unsupported(NO_EXPERIMENTS),
    ),
    (
        "isExperimentItemRootSpan",
        "Is Experiment Item Root Span",
        Target::Unsupported(NO_EXPERIMENTS),
    ),
    (
        "toolDefinitions",
        "Available Tools",
        Target::Unsupported(NO_TOOLS),
    ),
    ("toolCalls", "Tool Calls", Target::Unsupported(NO_TOOLS)),
    ("toolNames", "Tool Names", Target::Unsupported(NO_TOOLS)),
    (
        "calledToolNames",
        "Called Tool Names",
        Target::Unsupported(NO_TOOLS),
    ),
];

fn find_column(name: &str) -> Option<&'static Target> {
    COLUMNS
        .iter()
        .find(|(id, display, _)| *id == name || *display == name)
        .map(|(_, _, target)| target)
}

/// One element of the array, checked against its type's shape but not yet against its column.
struct Raw {
    filter_type: String,
    column: String,
    operator: String,
    value: Value,
    key: Option<String>,
}

const TYPES: &[&str] = &[
    "datetime",
    "string",
    "number",
    "stringOptions",
    "categoryOptions",
    "arrayOptions",
    "stringObject",
    "numberObject",
    "booleanObject",
    "boolean",
    "null",
    "positionInTrace",
];

fn operators(filter_type: &str) -> &'static [&'static str] {
    const TEXT: &[&str] = &[
        "=",
        "contains",
        "does not contain",
        "starts with",
        "ends with",
        "matches",
    ];
    const NUMBER: &[&str] = &["=", ">", "<", ">=", "<="];
    match filter_type {
        "datetime" => &[">", "<", ">=", "<="],
        "string" | "stringObject" => TEXT,
        "number" | "numberObject" => NUMBER,
        "stringOptions" | "categoryOptions" => &["any of", "none of"],
        "arrayOptions" => &["any of", "none of", "all of"],
        "boolean" | "booleanObject" => &["=", "<>"],
        "null" => &["is null", "is not null"],
        "positionInTrace" => &["="],
        _ => &[],
    }
}

fn invalid(index: usize, what: impl std::fmt::Display) -> String {
    format!("Invalid query parameters: filter[{index}]: {what}")
}

fn shape(index: usize, element: &Value) -> Result<Raw, String> {
    let object: &Map<String, Value> = element
        .as_object()
        .ok_or_else(|| invalid(index, "each condition must be an object"))?;
    let text = |field: &str| -> Result<String, String> {
        match object.get(field) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(invalid(index, format!("{field} must be a string"))),
        }
    };
    let filter_type = text("type")?;
    if !TYPES.contains(&filter_type.as_str()) {
        return Err(invalid(
            index,
            format!("type {filter_type:?} is not one of {}", TYPES.join(", ")),
        ));
    }
    let column = text("column")?;
    let operator = text("operator")?;
    let allowed = operators(&filter_type);
    if !allowed.contains(&operator.as_str()) {
        return Err(invalid(
            index,
            format!(
                "operator {operator:?} is not one of {} for type {filter_type}",
                allowed
                    .iter()
                    .map(|o| format!("{o:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let needs_key = matches!(
        filter_type.as_str(),
        "stringObject" | "numberObject" | "categoryOptions" | "booleanObject" | "positionInTrace"
    );
    let key = if needs_key { Some(text("key")?) } else { None };
    let value = object.get("value").cloned().unwrap_or(Value::Null);
    let value_ok = match filter_type.as_str() {
        "datetime" => time_value(&value).is_some(),
        "string" | "stringObject" => value.is_string(),
        "number" | "numberObject" => value.is_number(),
        "boolean" | "booleanObject" => value.is_boolean(),
        "stringOptions" => strings(&value).is_some_and(|v| !v.is_empty()),
        "categoryOptions" => strings(&value).is_some(),
        "arrayOptions" => strings(&value)
            .is_some_and(|v| !v.is_empty() || operator == "all of" || operator == "none of"),
        "null" => value == Value::String(String::new()),
        _ => true,
    };
    if !value_ok {
        let expected = match filter_type.as_str() {
            "datetime" => "an ISO 8601 date-time",
            "string" | "stringObject" => "a string",
            "number" | "numberObject" => "a number",
            "boolean" | "booleanObject" => "true or false",
            "stringOptions" => "a non-empty array of strings",
            "arrayOptions" => "an array of strings, not empty for \"any of\"",
            "null" => "the empty string",
            _ => "an array of strings",
        };
        return Err(invalid(index, format!("value must be {expected}")));
    }
    Ok(Raw {
        filter_type,
        column,
        operator,
        value,
        key,
    })
}

/// A date-time as Langfuse's filter coerces one: a date-time or date string, or epoch ms.
fn time_value(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(s) => parse_time(s).or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap().and_utc())
        }),
        Value::Number(n) => n
            .as_f64()
            .filter(|ms| ms.is_finite())
            .and_then(|ms| DateTime::from_timestamp_millis(ms as i64)),
        _ => None,
    }
}

fn strings(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn compare(operator: &str) -> Compare {
    match operator {
        ">" => Compare::Gt,
        "<" => Compare::Lt,
        ">=" => Compare::Gte,
        "<=" => Compare::Lte,
        _ => Compare::Eq,
    }
}

fn text_op(operator: &str) -> TextOp {
    match operator {
        "contains" => TextOp::Contains,
        "does not contain" => TextOp::NotContains,
        "starts with" => TextOp::StartsWith,
        "ends with" => TextOp::EndsWith,
        "matches" => TextOp::Matches,
        _ => TextOp::Equals,
    }
}

fn is_io(column: Column) -> bool {
    matches!(column, Column::Input | Column::Output)
}

/// A `matches` search needs a letter or digit to search for.
fn has_search_token(value: &str) -> bool {
    value.chars().any(char::is_alphanumeric)
}

/// Parses the `filter` parameter; an empty parameter is no filter. The error is the message.
pub fn parse(param: &str) -> Result<Vec<Condition>, String> {
    if param.is_empty() {
        return Ok(Vec::new());
    }
    let json: Value =
        serde_json::from_str(param).map_err(|_| "Invalid JSON in filter parameter".to_string())?;
    let elements = json.as_array().ok_or_else(|| {
        "Invalid query parameters: filter must be a JSON array of conditions".to_string()
    })?;
    let raws = elements
        .iter()
        .enumerate()
        .map(|(i, e)| shape(i, e))
        .collect::<Result<Vec<_>, _>>()?;
    // Input and output are searched by text only (Langfuse checks this before anything else).
    for raw in &raws {
        if let Some(Target::Column(column, _)) = find_column(&raw.column) {
            if is_io(*column) && raw.filter_type != "string" {
                return Err("Input/output filters only support filter type `string`.".into());
            }
        }
    }
    let conditions = raws.iter().map(resolve).collect::<Result<Vec<_>, _>>()?;
    // Langfuse refuses input/output filters that only scan (contains, starts with, ...): one
    // of them must be an exact or a token search.
    let io: Vec<&Condition> = conditions.iter().filter(|c| is_io(c.column())).collect();
    let searched = io.iter().any(|c| {
        matches!(
            c,
            Condition::Text {
                op: TextOp::Equals | TextOp::Matches,
                ..
            }
        )
    });
    if !io.is_empty() && !searched {
        return Err(
            "Input/output filters require at least one `matches` or `=` operator.".to_string(),
        );
    }
    Ok(conditions)
}

fn resolve(raw: &Raw) -> Result<Condition, String> {
    if raw.filter_type == "positionInTrace" {
        return Err(format!(
            "Filter type 'positionInTrace' (column '{}') is not supported by this server",
            raw.column
        ));
    }
    let (column, kind) = match find_column(&raw.column) {
        None => {
            return Err(format!(
                "Column {} does not match a UI / CH table mapping.",
                raw.column
            ))
        }
        Some(Target::Unsupported(why)) => {
            return Err(format!(
                "Column {} cannot be filtered on by this server: {why}.",
                raw.column
            ))
        }
        Some(Target::Column(column, kind)) => (*column, *kind),
    };
    if !kind.accepts(&raw.filter_type) {
        return Err(format!(
            "Invalid filter type '{}' for column '{}'. Expected filter type '{}'.",
            raw.filter_type,
            raw.column,
            kind.name()
        ));
    }
    if raw.operator == "matches" {
        let value = raw.value.as_str().unwrap_or_default();
        if !has_search_token(value) {
            return Err("`matches` requires at least one search token.".into());
        }
        let searchable = match raw.filter_type.as_str() {
            "string" => is_io(column),
            _ => column == Column::Metadata,
        };
        if !searchable {
            return Err(
                "`matches` is only supported for input, output, and metadata filters.".into(),
            );
        }
    }
    let text_value = || raw.value.as_str().unwrap_or_default().to_string();
    let number = || raw.value.as_f64().unwrap_or_default();
    let flag = || raw.value.as_bool().unwrap_or_default();
    let list = || strings(&raw.value).unwrap_or_default();
    let key = || raw.key.clone().unwrap_or_default();
    let op = raw.operator.as_str();
    Ok(match raw.filter_type.as_str() {
        "datetime" => Condition::Time {
            column,
            compare: compare(op),
            at: time_value(&raw.value).expect("checked by shape"),
        },
        "string" => Condition::Text {
            column,
            op: text_op(op),
            value: text_value(),
        },
        "number" => Condition::Number {
            column,
            compare: compare(op),
            value: number(),
        },
        "stringOptions" if kind == Kind::Tags => Condition::Array {
            column,
            op: if op == "none of" {
                ArrayOp::NoneOf
            } else {
                ArrayOp::AnyOf
            },
            values: list(),
        },
        "stringOptions" => Condition::OneOf {
            column,
            negated: op == "none of",
            values: list(),
        },
        "arrayOptions" => Condition::Array {
            column,
            op: match op {
                "all of" => ArrayOp::AllOf,
                "none of" => ArrayOp::NoneOf,
                _ => ArrayOp::AnyOf,
            },
            values: list(),
        },
        "boolean" => Condition::Flag {
            column,
            equals: op == "=",
            value: flag(),
        },
        "null" => Condition::Null {
            column,
            is_null: op == "is null",
        },
        "stringObject" => Condition::MetadataText {
            key: key(),
            op: text_op(op),
            value: text_value(),
        },
        "numberObject" => Condition::MetadataNumber {
            key: key(),
            compare: compare(op),
            value: number(),
        },
        "categoryOptions" => Condition::MetadataOneOf {
            key: key(),
            negated: op == "none of",
            values: list(),
        },
        "booleanObject" => Condition::MetadataFlag {
            key: key(),
            equals: op == "=",
            value: flag(),
        },
        other => unreachable!("type {other} checked by shape"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(filter: Value) -> Result<Condition, String> {
        parse(&json!([filter]).to_string()).map(|mut c| c.remove(0))
    }

    fn error(filter: Value) -> String {
        parse(&json!([filter]).to_string()).unwrap_err()
    }

    #[test]
    fn empty_is_no_filter_and_bad_json_is_refused() {
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse("[]").unwrap(), vec![]);
        assert_eq!(parse("[{").unwrap_err(), "Invalid JSON in filter parameter");
        assert!(parse("{}").unwrap_err().contains("JSON array"));
    }

    #[test]
    fn every_type_becomes_its_condition() {
        let at = DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            one(
                json!({"type": "datetime", "column": "startTime", "operator": ">=", "value": "2024-05-01T10:00:00.000Z"})
            ),
            Ok(Condition::Time {
                column: Column::StartTime,
                compare: Compare::Gte,
                at
            })
        );
        assert_eq!(
            one(
                json!({"type": "datetime", "column": "End Time", "operator": "<", "value": "2024-05-01"})
            ),
            Ok(Condition::Time {
                column: Column::EndTime,
                compare: Compare::Lt,
                at: at - chrono::Duration::hours(10)
            })
        );
        assert_eq!(
            one(
                json!({"type": "string", "column": "name", "operator": "starts with", "value": "ret"})
            ),
            Ok(Condition::Text {
                column: Column::Name,
                op: TextOp::StartsWith,
                value: "ret".into()
            })
        );
        assert_eq!(
            one(json!({"type": "number", "column": "latency", "operator": ">", "value": 1.5})),
            Ok(Condition::Number {
                column: Column::Latency,
                compare: Compare::Gt,
                value: 1.5
            })
        );
        assert_eq!(
            one(
                json!({"type": "stringOptions", "column": "type", "operator": "none of", "value": ["SPAN"]})
            ),
            Ok(Condition::OneOf {
                column: Column::Type,
                negated: true,
                values: vec!["SPAN".into()]
            })
        );
        assert_eq!(
            one(
                json!({"type": "stringOptions", "column": "tags", "operator": "any of", "value": ["a"]})
            ),
            Ok(Condition::Array {
                column: Column::TraceTags,
                op: ArrayOp::AnyOf,
                values: vec!["a".into()]
            })
        );
        assert_eq!(
            one(
                json!({"type": "arrayOptions", "column": "traceTags", "operator": "all of", "value": []})
            ),
            Ok(Condition::Array {
                column: Column::TraceTags,
                op: ArrayOp::AllOf,
                values: vec![]
            })
        );
        assert_eq!(
            one(
                json!({"type": "boolean", "column": "isRootObservation", "operator": "<>", "value": true})
            ),
            Ok(Condition::Flag {
                column: Column::IsRootObservation,
                equals: false,
                value: true
            })
        );
        assert_eq!(
            one(
                json!({"type": "null", "column": "release", "operator": "is not null", "value": ""})
            ),
            Ok(Condition::Null {
                column: Column::Release,
                is_null: false
            })
        );
        assert_eq!(
            one(
                json!({"type": "stringObject", "column": "metadata", "key": "k", "operator": "matches", "value": "v"})
            ),
            Ok(Condition::MetadataText {
                key: "k".into(),
                op: TextOp::Matches,
                value: "v".into()
            })
        );
        assert_eq!(
            one(
                json!({"type": "numberObject", "column": "metadata", "key": "n", "operator": "<=", "value": 3})
            ),
            Ok(Condition::MetadataNumber {
                key: "n".into(),
                compare: Compare::Lte,
                value: 3.0
            })
        );
        assert_eq!(
            one(
                json!({"type": "categoryOptions", "column": "metadata", "key": "k", "operator": "any of", "value": ["a"]})
            ),
            Ok(Condition::MetadataOneOf {
                key: "k".into(),
                negated: false,
                values: vec!["a".into()]
            })
        );
        assert_eq!(
            one(
                json!({"type": "booleanObject", "column": "metadata", "key": "f", "operator": "=", "value": false})
            ),
            Ok(Condition::MetadataFlag {
                key: "f".into(),
                equals: true,
                value: false
            })
        );
    }

    #[test]
    fn aliases_and_display_names_resolve_to_one_column() {
        for name in ["model", "providedModelName", "Provided Model Name", "Model"] {
            let c = one(json!({"type": "string", "column": name, "operator": "=", "value": "m"}));
            assert_eq!(c.unwrap().column(), Column::Model, "{name}");
        }
        for name in ["environment", "traceEnvironment"] {
            let c = one(json!({"type": "string", "column": name, "operator": "=", "value": "e"}));
            assert_eq!(c.unwrap().column(), Column::Environment);
        }
        let c = one(json!({"type": "number", "column": "tokens", "operator": "=", "value": 1}));
        assert_eq!(c.unwrap().column(), Column::TotalTokens);
    }

    #[test]
    fn shapes_are_checked() {
        for (filter, expected) in [
            (json!("x"), "must be an object"),
            (
                json!({"column": "name", "operator": "=", "value": "x"}),
                "type must be a string",
            ),
            (
                json!({"type": "regex", "column": "name", "operator": "=", "value": "x"}),
                "is not one of",
            ),
            (
                json!({"type": "string", "operator": "=", "value": "x"}),
                "column must be a string",
            ),
            (
                json!({"type": "string", "column": "name", "operator": ">", "value": "x"}),
                "operator \">\"",
            ),
            (
                json!({"type": "string", "column": "name", "operator": "=", "value": 1}),
                "value must be a string",
            ),
            (
                json!({"type": "number", "column": "latency", "operator": "=", "value": "1"}),
                "value must be a number",
            ),
            (
                json!({"type": "datetime", "column": "startTime", "operator": ">", "value": "soon"}),
                "date-time",
            ),
            (
                json!({"type": "boolean", "column": "hasInput", "operator": "=", "value": "true"}),
                "true or false",
            ),
            (
                json!({"type": "stringOptions", "column": "name", "operator": "any of", "value": []}),
                "non-empty",
            ),
            (
                json!({"type": "arrayOptions", "column": "tags", "operator": "any of", "value": []}),
                "any of",
            ),
            (
                json!({"type": "null", "column": "name", "operator": "is null"}),
                "empty string",
            ),
            (
                json!({"type": "stringObject", "column": "metadata", "operator": "=", "value": "v"}),
                "key must be a string",
            ),
        ] {
            let message = error(filter.clone());
            assert!(message.contains(expected), "{filter}: {message}");
            assert!(
                message.starts_with("Invalid query parameters: filter[0]"),
                "{message}"
            );
        }
    }

    #[test]
    fn columns_and_types_are_checked_as_langfuse_does() {
        assert_eq!(
            error(json!({"type": "string", "column": "nope", "operator": "=", "value": "x"})),
            "Column nope does not match a UI / CH table mapping."
        );
        assert_eq!(
            error(json!({"type": "number", "column": "name", "operator": "=", "value": 1})),
            "Invalid filter type 'number' for column 'name'. Expected filter type 'stringOptions'."
        );
        assert_eq!(
            error(json!({"type": "string", "column": "metadata", "operator": "=", "value": "x"})),
            "Invalid filter type 'string' for column 'metadata'. Expected filter type 'stringObject'."
        );
        assert_eq!(
            error(json!({"type": "stringObject", "column": "name", "key": "k", "operator": "=", "value": "x"})),
            "Invalid filter type 'stringObject' for column 'name'. Expected filter type 'stringOptions'."
        );
        assert!(error(
            json!({"type": "string", "column": "experimentId", "operator": "=", "value": "x"})
        )
        .contains("cannot be filtered on by this server"));
        assert!(error(
            json!({"type": "positionInTrace", "column": "x", "key": "root", "operator": "="})
        )
        .contains("not supported"));
        // Any column takes a null check.
        assert!(one(
            json!({"type": "null", "column": "latency", "operator": "is null", "value": ""})
        )
        .is_ok());
    }

    #[test]
    fn input_output_and_matches_rules() {
        assert_eq!(
            error(json!({"type": "null", "column": "output", "operator": "is null", "value": ""})),
            "Input/output filters only support filter type `string`."
        );
        assert_eq!(
            error(
                json!({"type": "string", "column": "output", "operator": "contains", "value": "x"})
            ),
            "Input/output filters require at least one `matches` or `=` operator."
        );
        let together = json!([
            {"type": "string", "column": "output", "operator": "matches", "value": "needle"},
            {"type": "string", "column": "input", "operator": "contains", "value": "hay"},
        ]);
        assert_eq!(parse(&together.to_string()).unwrap().len(), 2);
        assert_eq!(
            error(
                json!({"type": "string", "column": "output", "operator": "matches", "value": "!!"})
            ),
            "`matches` requires at least one search token."
        );
        assert_eq!(
            error(json!({"type": "string", "column": "name", "operator": "matches", "value": "x"})),
            "`matches` is only supported for input, output, and metadata filters."
        );
    }
}
