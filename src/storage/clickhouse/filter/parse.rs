//! Langfuse's structured `filter` parameter: a JSON array of `{type, column, operator, value,
//! key?}` conditions, parsed into conditions on the columns of a view.
//!
//! Pure code. It accepts what Langfuse's filter schema accepts, resolves columns by id or display
//! name as Langfuse does, and refuses with a message what this server cannot answer (columns of
//! data it does not store, `positionInTrace`). Where Langfuse's own checks reject a combination,
//! the message is Langfuse's.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use super::{ArrayOp, Column, Compare, Condition, Kind, Search, Target, TextOp, View};
use crate::domain::time::parse_time;

impl Kind {
    /// The type name Langfuse reports for the column.
    fn name(self) -> &'static str {
        match self {
            Kind::Text => "string",
            Kind::Options => "stringOptions",
            Kind::List => "arrayOptions",
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
                Kind::List => matches!(filter_type, "arrayOptions" | "stringOptions"),
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

/// Input, output: large texts Langfuse only searches, never scans alone.
fn is_full_text(column: &Column) -> bool {
    column.search == Search::FullText
}

/// A `matches` search needs a letter or digit to search for.
fn has_search_token(value: &str) -> bool {
    value.chars().any(char::is_alphanumeric)
}

/// Parses the `filter` parameter into conditions on the columns of `view`; an empty parameter
/// is no filter. The error is the message.
pub fn parse(view: &View, param: &str) -> Result<Vec<Condition>, String> {
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
        if let Some(Target::Column(column)) = view.find(&raw.column) {
            if is_full_text(column) && raw.filter_type != "string" {
                return Err("Input/output filters only support filter type `string`.".into());
            }
        }
    }
    let conditions = raws
        .iter()
        .map(|raw| resolve(view, raw))
        .collect::<Result<Vec<_>, _>>()?;
    // Langfuse refuses input/output filters that only scan (contains, starts with, ...): one
    // of them must be an exact or a token search.
    let io: Vec<&Condition> = conditions
        .iter()
        .filter(|c| is_full_text(c.column()))
        .collect();
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

fn resolve(view: &View, raw: &Raw) -> Result<Condition, String> {
    if raw.filter_type == "positionInTrace" {
        return Err(format!(
            "Filter type 'positionInTrace' (column '{}') is not supported by this server",
            raw.column
        ));
    }
    let column = match view.find(&raw.column) {
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
        Some(Target::Column(column)) => column,
    };
    let kind = column.kind;
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
        // The kind check leaves `string` filters on text columns and `stringObject` ones on
        // maps: the column says whether it is searched by token.
        if column.search == Search::None {
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
        "stringOptions" if kind == Kind::List => Condition::Array {
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
            column,
            key: key(),
            op: text_op(op),
            value: text_value(),
        },
        "numberObject" => Condition::MetadataNumber {
            column,
            key: key(),
            compare: compare(op),
            value: number(),
        },
        "categoryOptions" => Condition::MetadataOneOf {
            column,
            key: key(),
            negated: op == "none of",
            values: list(),
        },
        "booleanObject" => Condition::MetadataFlag {
            column,
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
    use crate::storage::clickhouse::filter::observations::*;
    use serde_json::json;

    fn one(filter: Value) -> Result<Condition, String> {
        parse(&OBSERVATIONS, &json!([filter]).to_string()).map(|mut c| c.remove(0))
    }

    fn error(filter: Value) -> String {
        parse(&OBSERVATIONS, &json!([filter]).to_string()).unwrap_err()
    }

    #[test]
    fn empty_is_no_filter_and_bad_json_is_refused() {
        assert_eq!(parse(&OBSERVATIONS, "").unwrap(), vec![]);
        assert_eq!(parse(&OBSERVATIONS, "[]").unwrap(), vec![]);
        assert_eq!(
            parse(&OBSERVATIONS, "[{").unwrap_err(),
            "Invalid JSON in filter parameter"
        );
        assert!(parse(&OBSERVATIONS, "{}")
            .unwrap_err()
            .contains("JSON array"));
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
                column: &START_TIME,
                compare: Compare::Gte,
                at
            })
        );
        assert_eq!(
            one(
                json!({"type": "datetime", "column": "End Time", "operator": "<", "value": "2024-05-01"})
            ),
            Ok(Condition::Time {
                column: &END_TIME,
                compare: Compare::Lt,
                at: at - chrono::Duration::hours(10)
            })
        );
        assert_eq!(
            one(
                json!({"type": "string", "column": "name", "operator": "starts with", "value": "ret"})
            ),
            Ok(Condition::Text {
                column: &NAME,
                op: TextOp::StartsWith,
                value: "ret".into()
            })
        );
        assert_eq!(
            one(json!({"type": "number", "column": "latency", "operator": ">", "value": 1.5})),
            Ok(Condition::Number {
                column: &LATENCY,
                compare: Compare::Gt,
                value: 1.5
            })
        );
        assert_eq!(
            one(
                json!({"type": "stringOptions", "column": "type", "operator": "none of", "value": ["SPAN"]})
            ),
            Ok(Condition::OneOf {
                column: &TYPE,
                negated: true,
                values: vec!["SPAN".into()]
            })
        );
        assert_eq!(
            one(
                json!({"type": "stringOptions", "column": "tags", "operator": "any of", "value": ["a"]})
            ),
            Ok(Condition::Array {
                column: &TRACE_TAGS,
                op: ArrayOp::AnyOf,
                values: vec!["a".into()]
            })
        );
        assert_eq!(
            one(
                json!({"type": "arrayOptions", "column": "traceTags", "operator": "all of", "value": []})
            ),
            Ok(Condition::Array {
                column: &TRACE_TAGS,
                op: ArrayOp::AllOf,
                values: vec![]
            })
        );
        assert_eq!(
            one(
                json!({"type": "boolean", "column": "isRootObservation", "operator": "<>", "value": true})
            ),
            Ok(Condition::Flag {
                column: &IS_ROOT_OBSERVATION,
                equals: false,
                value: true
            })
        );
        assert_eq!(
            one(
                json!({"type": "null", "column": "release", "operator": "is not null", "value": ""})
            ),
            Ok(Condition::Null {
                column: &RELEASE,
                is_null: false
            })
        );
        assert_eq!(
            one(
                json!({"type": "stringObject", "column": "metadata", "key": "k", "operator": "matches", "value": "v"})
            ),
            Ok(Condition::MetadataText {
                column: &METADATA,
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
                column: &METADATA,
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
                column: &METADATA,
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
                column: &METADATA,
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
            assert_eq!(c.unwrap().column(), &MODEL, "{name}");
        }
        for name in ["environment", "traceEnvironment"] {
            let c = one(json!({"type": "string", "column": name, "operator": "=", "value": "e"}));
            assert_eq!(c.unwrap().column(), &ENVIRONMENT);
        }
        let c = one(json!({"type": "number", "column": "tokens", "operator": "=", "value": 1}));
        assert_eq!(c.unwrap().column(), &TOTAL_TOKENS);
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
            json!({"type": "string", "column": "toolNames", "operator": "=", "value": "x"})
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
        assert_eq!(
            parse(&OBSERVATIONS, &together.to_string()).unwrap().len(),
            2
        );
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
