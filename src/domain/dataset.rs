//! Datasets, their items and runs, as Langfuse validates them: what the dataset endpoints of the
//! public API accept. Pure: the tables are read and written in `storage::postgres::datasets`.
//!
//! Rules, from Langfuse's behaviour:
//! - A dataset name is not empty, has no HTML tag, does not start or end with `/` and has no
//!   `//` (a `/` makes folders in the UI). Leading and trailing spaces are trimmed.
//! - A dataset may carry a JSON Schema for its items' input and one for their expected output.
//!   A schema must itself be a valid JSON Schema; references to other documents (by URL or
//!   file) are refused rather than fetched. Once set, every item written must satisfy it (a
//!   missing value is checked as `null`), and setting it on a dataset is refused while an
//!   existing item does not.
//! - An item id, given by the client or made here, has 1 to 255 characters and is unique in the
//!   project, across its datasets.
//! - Writing an item that exists changes only the fields the request sends (`null` counts as not
//!   sent, as in Langfuse), and the result is checked against the schemas as a whole.

use serde_json::Value;

/// Whether an item takes part in new runs. Archived items stay readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemStatus {
    Active,
    Archived,
}

impl ItemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Active => "ACTIVE",
            ItemStatus::Archived => "ARCHIVED",
        }
    }

    pub fn parse(text: &str) -> Option<ItemStatus> {
        match text {
            "ACTIVE" => Some(ItemStatus::Active),
            "ARCHIVED" => Some(ItemStatus::Archived),
            _ => None,
        }
    }
}

pub const MAX_ITEM_ID_CHARS: usize = 255;

/// Checks a dataset name and returns it trimmed.
pub fn dataset_name(raw: &str) -> Result<String, String> {
    let invalid = |why: &str| Err(format!("Dataset name not valid. {why}"));
    if raw.starts_with('/') {
        return invalid("Name cannot start with a slash");
    }
    if raw.contains("//") {
        return invalid("Name cannot contain consecutive slashes");
    }
    if raw.ends_with('/') {
        return invalid("Name cannot end with a slash");
    }
    if contains_html_tag(raw) {
        return invalid("Text cannot contain HTML tags");
    }
    let name = raw.trim();
    if name.is_empty() {
        return invalid("Name cannot be empty");
    }
    Ok(name.to_string())
}

/// `<`, then anything but angle brackets, then `>`: what Langfuse calls an HTML tag in a name.
fn contains_html_tag(text: &str) -> bool {
    let mut open = false;
    for c in text.chars() {
        match c {
            '<' => open = true,
            '>' if open => return true,
            _ => {}
        }
    }
    false
}

/// Checks an item id a client chose.
pub fn item_id(raw: &str) -> Result<String, String> {
    let chars = raw.chars().count();
    if chars == 0 {
        return Err("Dataset item id must not be empty".to_string());
    }
    if chars > MAX_ITEM_ID_CHARS {
        return Err(format!(
            "Dataset item id must be at most {MAX_ITEM_ID_CHARS} characters"
        ));
    }
    Ok(raw.to_string())
}

/// The id of a dataset's run of this name, as Langfuse derives it and the SDKs' experiment
/// runners compute it on their own (as the experiment id their spans and run-level scores carry):
/// the first 16 hex characters of the SHA-256 of the JSON array `["langfuse-experiment-v1",
/// project, dataset, run name]`, written without spaces. So a run made by `dataset-run-items`
/// and one made from an SDK's experiment spans have the same id whichever comes first.
pub fn run_id(project_id: &str, dataset_id: &str, run_name: &str) -> String {
    use sha2::{Digest, Sha256};
    let payload =
        serde_json::to_string(&["langfuse-experiment-v1", project_id, dataset_id, run_name])
            .expect("an array of strings serializes");
    hex::encode(Sha256::digest(payload.as_bytes()))[..16].to_string()
}

/// Which of an item's values a schema applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaField {
    Input,
    ExpectedOutput,
}

impl SchemaField {
    /// The field's name in the API.
    pub fn api_name(self) -> &'static str {
        match self {
            SchemaField::Input => "input",
            SchemaField::ExpectedOutput => "expectedOutput",
        }
    }

    fn schema_name(self) -> &'static str {
        match self {
            SchemaField::Input => "inputSchema",
            SchemaField::ExpectedOutput => "expectedOutputSchema",
        }
    }
}

/// A dataset's schemas, compiled once to check any number of items.
pub struct ItemSchemas {
    input: Option<jsonschema::Validator>,
    expected_output: Option<jsonschema::Validator>,
}

/// One way a value fails a schema: where in the value, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    pub field: SchemaField,
    /// A JSON Pointer into the value (`""`: the value itself).
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(f, "{} at {}: {}", self.field.api_name(), at, self.message)
    }
}

/// At most this many violations are reported per item: enough to fix the item, bounded however
/// large the value.
const MAX_VIOLATIONS: usize = 10;

impl ItemSchemas {
    /// Compiles a dataset's schemas. `None` or JSON `null`: no schema for that field.
    pub fn compile(
        input_schema: Option<&Value>,
        expected_output_schema: Option<&Value>,
    ) -> Result<ItemSchemas, String> {
        Ok(ItemSchemas {
            input: compile_one(SchemaField::Input, input_schema)?,
            expected_output: compile_one(SchemaField::ExpectedOutput, expected_output_schema)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.input.is_none() && self.expected_output.is_none()
    }

    /// The ways an item's values fail the schemas; empty when they satisfy them. A missing
    /// value is checked as `null`.
    pub fn violations(
        &self,
        input: Option<&Value>,
        expected_output: Option<&Value>,
    ) -> Vec<SchemaViolation> {
        let mut found = Vec::new();
        for (field, validator, value) in [
            (SchemaField::Input, &self.input, input),
            (
                SchemaField::ExpectedOutput,
                &self.expected_output,
                expected_output,
            ),
        ] {
            let Some(validator) = validator else { continue };
            let value = value.unwrap_or(&Value::Null);
            for error in validator.iter_errors(value) {
                if found.len() == MAX_VIOLATIONS {
                    return found;
                }
                found.push(SchemaViolation {
                    field,
                    path: error.instance_path().as_str().to_string(),
                    message: error.to_string(),
                });
            }
        }
        found
    }

    /// The refusal of an item that fails the schemas, naming every violation found.
    pub fn check(
        &self,
        input: Option<&Value>,
        expected_output: Option<&Value>,
    ) -> Result<(), String> {
        let violations = self.violations(input, expected_output);
        if violations.is_empty() {
            return Ok(());
        }
        Err(format!(
            "Dataset item validation failed: {}",
            describe(&violations)
        ))
    }
}

/// Violations as one line of text.
pub fn describe(violations: &[SchemaViolation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn compile_one(
    field: SchemaField,
    schema: Option<&Value>,
) -> Result<Option<jsonschema::Validator>, String> {
    let Some(schema) = schema.filter(|s| !s.is_null()) else {
        return Ok(None);
    };
    if !schema.is_object() && !schema.is_boolean() {
        return Err(format!(
            "{} must be a JSON Schema (an object)",
            field.schema_name()
        ));
    }
    if let Some(reference) = external_reference(schema) {
        return Err(format!(
            "{} is not a valid JSON Schema: references to other documents are not supported ({reference})",
            field.schema_name()
        ));
    }
    jsonschema::validator_for(schema)
        .map(Some)
        .map_err(|e| format!("{} is not a valid JSON Schema: {e}", field.schema_name()))
}

/// The first `$ref` (or `$dynamicRef`) that leaves the schema itself: anything but a fragment.
/// Such a reference would make the server fetch a URL or read a file a stranger named.
fn external_reference(schema: &Value) -> Option<String> {
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "$ref" || key == "$dynamicRef" || key == "$recursiveRef" {
                    if let Value::String(target) = value {
                        if !target.starts_with('#') {
                            return Some(target.clone());
                        }
                    }
                }
                if let Some(found) = external_reference(value) {
                    return Some(found);
                }
            }
            None
        }
        Value::Array(values) => values.iter().find_map(external_reference),
        _ => None,
    }
}

/// An item's fields as a write sends them; `None`: not sent (or `null`), so an existing item
/// keeps its value and a new one has none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemChanges {
    pub input: Option<Value>,
    pub expected_output: Option<Value>,
    pub metadata: Option<Value>,
    pub source_trace_id: Option<String>,
    pub source_observation_id: Option<String>,
    pub status: Option<ItemStatus>,
}

/// An item's fields as stored in one version.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemFields {
    pub input: Option<Value>,
    pub expected_output: Option<Value>,
    pub metadata: Option<Value>,
    pub source_trace_id: Option<String>,
    pub source_observation_id: Option<String>,
    pub status: ItemStatus,
}

impl ItemChanges {
    /// The fields of the version this write makes, on top of the current one (if any).
    pub fn applied_to(self, current: Option<&ItemFields>) -> ItemFields {
        match current {
            None => ItemFields {
                input: self.input,
                expected_output: self.expected_output,
                metadata: self.metadata,
                source_trace_id: self.source_trace_id,
                source_observation_id: self.source_observation_id,
                status: self.status.unwrap_or(ItemStatus::Active),
            },
            Some(current) => ItemFields {
                input: self.input.or_else(|| current.input.clone()),
                expected_output: self
                    .expected_output
                    .or_else(|| current.expected_output.clone()),
                metadata: self.metadata.or_else(|| current.metadata.clone()),
                source_trace_id: self
                    .source_trace_id
                    .or_else(|| current.source_trace_id.clone()),
                source_observation_id: self
                    .source_observation_id
                    .or_else(|| current.source_observation_id.clone()),
                status: self.status.unwrap_or(current.status),
            },
        }
    }
}

/// What PostgreSQL's `text` and `jsonb` cannot hold: the NUL character. Langfuse removes control
/// characters from item values; here only NUL is removed (the one PostgreSQL refuses), so every
/// other character a client sent is kept as sent.
pub fn without_nul(value: Value) -> Value {
    match value {
        Value::String(s) if s.contains('\0') => Value::String(s.replace('\0', "")),
        Value::Array(values) => Value::Array(values.into_iter().map(without_nul).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.replace('\0', ""), without_nul(v)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn run_ids_are_the_ones_the_sdks_compute() {
        // Values computed the way the Python SDK 5.x's experiment runner computes them.
        assert_eq!(run_id("proj", "ds-1", "run 1"), "a9f4b06bdf054763");
        assert_eq!(run_id("p", "d", "naïve \"q\" \\ \n"), "0517e56bc793cf06");
    }

    #[test]
    fn names_may_hold_folders_but_not_empty_segments() {
        assert_eq!(dataset_name("evals/qa/v1").unwrap(), "evals/qa/v1");
        assert_eq!(dataset_name("  spaced ").unwrap(), "spaced");
        assert!(dataset_name("/lead")
            .unwrap_err()
            .contains("start with a slash"));
        assert!(dataset_name("trail/")
            .unwrap_err()
            .contains("end with a slash"));
        assert!(dataset_name("a//b").unwrap_err().contains("consecutive"));
        assert!(dataset_name("   ").unwrap_err().contains("empty"));
        assert!(dataset_name("<b>x</b>").unwrap_err().contains("HTML"));
        assert_eq!(
            dataset_name("a < b > c").unwrap_err(),
            "Dataset name not valid. Text cannot contain HTML tags"
        );
        assert!(dataset_name("1 < 2").is_ok());
    }

    #[test]
    fn item_ids_are_bounded() {
        assert!(item_id("").is_err());
        assert!(item_id(&"x".repeat(255)).is_ok());
        assert!(item_id(&"x".repeat(256)).is_err());
    }

    #[test]
    fn schemas_name_the_field_and_the_place_that_fails() {
        let schemas = ItemSchemas::compile(
            Some(&json!({
                "type": "object",
                "properties": {"question": {"type": "string"}},
                "required": ["question"]
            })),
            None,
        )
        .unwrap();
        assert!(schemas
            .check(Some(&json!({"question": "why?"})), None)
            .is_ok());
        let refusal = schemas
            .check(Some(&json!({"question": 42})), Some(&json!("anything")))
            .unwrap_err();
        assert!(refusal.contains("input at /question"), "{refusal}");
        let missing = schemas.check(None, None).unwrap_err();
        assert!(missing.contains("input at /"), "{missing}");
    }

    #[test]
    fn invalid_and_remote_schemas_are_refused() {
        let bad = ItemSchemas::compile(Some(&json!({"type": 12})), None)
            .err()
            .unwrap();
        assert!(
            bad.starts_with("inputSchema is not a valid JSON Schema"),
            "{bad}"
        );
        let remote = ItemSchemas::compile(
            None,
            Some(&json!({"properties": {"a": {"$ref": "https://example.com/s.json"}}})),
        )
        .err()
        .unwrap();
        assert!(remote.contains("expectedOutputSchema"), "{remote}");
        assert!(remote.contains("other documents"), "{remote}");
        assert!(ItemSchemas::compile(Some(&json!("text")), None).is_err());
        let local = ItemSchemas::compile(
            Some(&json!({"$defs": {"s": {"type": "string"}}, "$ref": "#/$defs/s"})),
            None,
        )
        .unwrap();
        assert!(local.check(Some(&json!("ok")), None).is_ok());
        assert!(local.check(Some(&json!(1)), None).is_err());
    }

    #[test]
    fn violations_are_bounded() {
        let schemas = ItemSchemas::compile(
            Some(&json!({"type": "array", "items": {"type": "string"}})),
            None,
        )
        .unwrap();
        let many: Vec<i32> = (0..100).collect();
        assert_eq!(
            schemas.violations(Some(&json!(many)), None).len(),
            MAX_VIOLATIONS
        );
    }

    #[test]
    fn an_update_keeps_what_it_does_not_send() {
        let current = ItemFields {
            input: Some(json!({"q": 1})),
            expected_output: Some(json!("a")),
            metadata: None,
            source_trace_id: Some("t1".into()),
            source_observation_id: None,
            status: ItemStatus::Active,
        };
        let changed = ItemChanges {
            expected_output: Some(json!("b")),
            status: Some(ItemStatus::Archived),
            ..ItemChanges::default()
        }
        .applied_to(Some(&current));
        assert_eq!(changed.input, Some(json!({"q": 1})));
        assert_eq!(changed.expected_output, Some(json!("b")));
        assert_eq!(changed.source_trace_id.as_deref(), Some("t1"));
        assert_eq!(changed.status, ItemStatus::Archived);
        let fresh = ItemChanges::default().applied_to(None);
        assert_eq!(fresh.status, ItemStatus::Active);
        assert_eq!(fresh.input, None);
    }

    #[test]
    fn nul_characters_are_removed_everywhere() {
        assert_eq!(
            without_nul(json!({"a\u{0}": ["x\u{0}y", 1]})),
            json!({"a": ["xy", 1]})
        );
    }
}
