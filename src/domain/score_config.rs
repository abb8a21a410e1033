//! Score configs, as Langfuse validates them: what `POST /api/public/score-configs` and
//! `PATCH /api/public/score-configs/{configId}` accept. Pure: the table is read and written in
//! `storage::score_configs`, the API is `http::api::score_configs`.
//!
//! Rules, from Langfuse's behaviour:
//! - A name has 1 to 35 characters: letters, digits, underscores, spaces, periods, parentheses
//!   and hyphens.
//! - NUMERIC: optional `minValue` and `maxValue`; when both are set, the maximum is greater than
//!   the minimum. No categories.
//! - CATEGORICAL: at least one category `{label, value}`, labels unique, values unique; no range.
//! - BOOLEAN: the categories are always `True` = 1 and `False` = 0, made here; a request that
//!   sends categories is refused. TEXT: neither categories nor a range.
//! - An update names at least one field; the config it leaves must still satisfy the rules of its
//!   data type, which an update never changes.
//!
//! A score that names a config ([`ConfigFields::check_score`]) takes the config's name and data
//! type (a data type it names must be the config's); an archived config takes no new scores; a
//! NUMERIC score lies within the config's range, a CATEGORICAL one is one of its labels (and
//! gets that category's value), a BOOLEAN one is 0 or 1 (`False`, `True`), a TEXT one has 1 to
//! 500 characters. The refusals say what Langfuse's say.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The data type of a config's scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigDataType {
    Numeric,
    Categorical,
    Boolean,
    Text,
}

impl ConfigDataType {
    pub const ALL: [ConfigDataType; 4] = [
        ConfigDataType::Numeric,
        ConfigDataType::Categorical,
        ConfigDataType::Boolean,
        ConfigDataType::Text,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConfigDataType::Numeric => "NUMERIC",
            ConfigDataType::Categorical => "CATEGORICAL",
            ConfigDataType::Boolean => "BOOLEAN",
            ConfigDataType::Text => "TEXT",
        }
    }

    pub fn parse(text: &str) -> Option<ConfigDataType> {
        ConfigDataType::ALL.into_iter().find(|d| d.as_str() == text)
    }
}

/// One labelled value of a categorical or boolean config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Category {
    pub label: String,
    pub value: f64,
}

/// The fields of a config a request may set (everything but its identity and times).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigFields {
    pub name: String,
    pub data_type: ConfigDataType,
    pub is_archived: bool,
    pub min_value: Option<f64>,
    pub max_value: Option<f64>,
    pub categories: Option<Vec<Category>>,
    pub description: Option<String>,
}

pub const MAX_NAME_CHARS: usize = 35;

const CATEGORIES_SHAPE: &str = "Category must be an array of objects with label value pairs, where labels and values are unique.";

fn valid_name(value: &Value) -> Result<String, String> {
    let name = value.as_str().ok_or("name must be a string")?;
    if name.is_empty() {
        return Err("name must not be empty".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "name must have at most {MAX_NAME_CHARS} characters"
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || " _-.()".contains(c);
    if !name.chars().all(allowed) {
        return Err("name may only contain letters, numbers, underscores, spaces, periods, parentheses and hyphens".into());
    }
    Ok(name.to_string())
}

fn number(key: &str, value: &Value) -> Result<f64, String> {
    value
        .as_f64()
        .filter(|n| n.is_finite())
        .ok_or_else(|| format!("{key} must be a number"))
}

fn categories(value: &Value) -> Result<Vec<Category>, String> {
    let items = value.as_array().ok_or(CATEGORIES_SHAPE)?;
    let mut out: Vec<Category> = Vec::with_capacity(items.len());
    for item in items {
        let object = item.as_object().ok_or(CATEGORIES_SHAPE)?;
        let label = object
            .get("label")
            .and_then(Value::as_str)
            .filter(|l| !l.is_empty())
            .ok_or(CATEGORIES_SHAPE)?;
        let value = object
            .get("value")
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite())
            .ok_or(CATEGORIES_SHAPE)?;
        if out.iter().any(|c| c.label == label) {
            return Err("Category labels must be unique.".to_string());
        }
        if out.iter().any(|c| c.value == value) {
            return Err("Category values must be unique.".to_string());
        }
        out.push(Category {
            label: label.to_string(),
            value,
        });
    }
    Ok(out)
}

/// The categories every boolean config has.
pub fn boolean_categories() -> Vec<Category> {
    vec![
        Category {
            label: "True".into(),
            value: 1.0,
        },
        Category {
            label: "False".into(),
            value: 0.0,
        },
    ]
}

/// `key` of `object` unless absent or null.
fn present<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|v| !v.is_null())
}

impl ConfigFields {
    /// Reads the body of `POST /api/public/score-configs` (`CreateScoreConfigRequest`).
    pub fn from_create(body: &Value) -> Result<ConfigFields, String> {
        let object = body
            .as_object()
            .ok_or("the body must be a JSON object (CreateScoreConfigRequest)")?;
        let name = valid_name(present(object, "name").ok_or("name is required")?)?;
        let data_type = match present(object, "dataType") {
            Some(Value::String(s)) => ConfigDataType::parse(s).ok_or_else(|| {
                format!(
                    "dataType {s:?} is not one of {}",
                    ConfigDataType::ALL.map(ConfigDataType::as_str).join(", ")
                )
            })?,
            Some(_) => return Err("dataType must be a string".into()),
            None => return Err("dataType is required".into()),
        };
        let min_value = present(object, "minValue")
            .map(|v| number("minValue", v))
            .transpose()?;
        let max_value = present(object, "maxValue")
            .map(|v| number("maxValue", v))
            .transpose()?;
        let categories = present(object, "categories").map(categories).transpose()?;
        let description = match present(object, "description") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err("description must be a string".into()),
        };
        let fields = ConfigFields {
            name,
            data_type,
            is_archived: false,
            min_value,
            max_value,
            categories,
            description,
        };
        fields.checked(true)
    }

    /// This config changed by the body of `PATCH /api/public/score-configs/{configId}`
    /// (`UpdateScoreConfigRequest`); null fields are not changed.
    pub fn updated(&self, body: &Value) -> Result<ConfigFields, String> {
        let object = body
            .as_object()
            .ok_or("the body must be a JSON object (UpdateScoreConfigRequest)")?;
        const KEYS: [&str; 6] = [
            "isArchived",
            "name",
            "minValue",
            "maxValue",
            "categories",
            "description",
        ];
        if !KEYS.iter().any(|k| present(object, k).is_some()) {
            return Err(
                "Request body cannot be empty. At least one field must be provided for update."
                    .into(),
            );
        }
        let mut next = self.clone();
        if let Some(v) = present(object, "isArchived") {
            next.is_archived = v.as_bool().ok_or("isArchived must be a boolean")?;
        }
        if let Some(v) = present(object, "name") {
            next.name = valid_name(v)?;
        }
        if let Some(v) = present(object, "minValue") {
            next.min_value = Some(number("minValue", v)?);
        }
        if let Some(v) = present(object, "maxValue") {
            next.max_value = Some(number("maxValue", v)?);
        }
        let sent_categories = present(object, "categories").is_some();
        if let Some(v) = present(object, "categories") {
            next.categories = Some(categories(v)?);
        }
        if let Some(v) = present(object, "description") {
            next.description = Some(
                v.as_str()
                    .ok_or("description must be a string")?
                    .to_string(),
            );
        }
        if next.data_type == ConfigDataType::Boolean && sent_categories {
            return Err("Categories of a BOOLEAN config are always True (1) and False (0) and cannot be changed".into());
        }
        next.checked(false)
    }

    /// The rules of the data type; on creation, a boolean config's categories are made here.
    fn checked(mut self, creating: bool) -> Result<ConfigFields, String> {
        let has_range = self.min_value.is_some() || self.max_value.is_some();
        match self.data_type {
            ConfigDataType::Numeric => {
                if self.categories.is_some() {
                    return Err(
                        "Custom categories are only allowed for categorical data types.".into(),
                    );
                }
                if let (Some(min), Some(max)) = (self.min_value, self.max_value) {
                    if max <= min {
                        return Err("Maximum value must be greater than Minimum value".into());
                    }
                }
            }
            ConfigDataType::Categorical => {
                if has_range {
                    return Err("minValue and maxValue are only allowed for NUMERIC configs".into());
                }
                match &self.categories {
                    Some(c) if !c.is_empty() => {}
                    _ => {
                        return Err(
                            "At least one category is required for categorical data types.".into(),
                        )
                    }
                }
            }
            ConfigDataType::Boolean => {
                if creating && self.categories.is_some() {
                    return Err("Custom categories are only allowed for categorical data types and are made for boolean data types: True (1) and False (0).".into());
                }
                if has_range {
                    return Err("minValue and maxValue are only allowed for NUMERIC configs".into());
                }
                self.categories = Some(boolean_categories());
            }
            ConfigDataType::Text => {
                if self.categories.is_some() {
                    return Err(
                        "Custom categories are only allowed for categorical data types.".into(),
                    );
                }
                if has_range {
                    return Err("minValue and maxValue are only allowed for NUMERIC configs".into());
                }
            }
        }
        Ok(self)
    }
}

/// The value of a score as sent: a number or a string.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SentValue<'a> {
    Number(f64),
    Text(&'a str),
}

/// A score as its config makes it: the config's data type, and the numeric and string values to
/// store.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfiguredScore {
    pub data_type: ConfigDataType,
    pub value: f64,
    pub string_value: Option<String>,
}

/// The longest TEXT score, in characters (Langfuse's `TEXT_SCORE_MAX_LENGTH`).
pub const MAX_TEXT_SCORE_CHARS: usize = 500;

/// The message of a score naming no config of its project (none, or another project's).
pub const UNKNOWN_CONFIG: &str =
    "The configId you provided does not match a valid config in this project";

const AGAINST_CONFIG: &str = "Ingested score body not valid against provided config";

impl ConfigFields {
    /// Checks a score that names this config: `sent_type` is the data type the score named, if
    /// any; `value` its value. The refusal is the message to answer.
    pub fn check_score(
        &self,
        sent_type: Option<&str>,
        value: SentValue<'_>,
    ) -> Result<ConfiguredScore, String> {
        let expected = self.data_type.as_str();
        if let Some(sent) = sent_type {
            if sent != expected {
                return Err(format!(
                    "Data type mismatch based on config: expected {expected}, got {sent}"
                ));
            }
        }
        if self.is_archived {
            return Err("Config is archived and cannot be used to create new scores. Please restore the config first.".into());
        }
        let refuse = |why: String| Err(format!("{AGAINST_CONFIG}: {why}"));
        let scored = |value: f64, string_value: Option<String>| {
            Ok(ConfiguredScore {
                data_type: self.data_type,
                value,
                string_value,
            })
        };
        match (self.data_type, value) {
            (ConfigDataType::Numeric, SentValue::Number(v)) => {
                if let Some(max) = self.max_value.filter(|max| v > *max) {
                    return refuse(format!(
                        "Value exceeds maximum value of {max} defined in config"
                    ));
                }
                if let Some(min) = self.min_value.filter(|min| v < *min) {
                    return refuse(format!(
                        "Value is below minimum value of {min} defined in config"
                    ));
                }
                scored(v, None)
            }
            (ConfigDataType::Numeric, SentValue::Text(_)) => {
                refuse("the value of a NUMERIC score must be a number".into())
            }
            (ConfigDataType::Categorical, SentValue::Text(label)) => {
                let categories = self.categories.as_deref().unwrap_or_default();
                match categories.iter().find(|c| c.label == label) {
                    Some(category) => scored(category.value, Some(label.to_string())),
                    None => refuse(format!(
                        "Value {label} does not map to a valid category. Pass a valid category value."
                    )),
                }
            }
            (ConfigDataType::Categorical, SentValue::Number(_)) => refuse(
                "the value of a CATEGORICAL score must be a string: one of the config's category labels".into(),
            ),
            (ConfigDataType::Boolean, SentValue::Number(v)) if v == 0.0 || v == 1.0 => {
                let label = if v == 1.0 { "True" } else { "False" };
                scored(v, Some(label.to_string()))
            }
            (ConfigDataType::Boolean, _) => refuse("Value must be either 0 or 1".into()),
            (ConfigDataType::Text, SentValue::Text(text)) => {
                let length = text.chars().count();
                if !(1..=MAX_TEXT_SCORE_CHARS).contains(&length) {
                    return refuse(format!(
                        "the value of a TEXT score must have 1 to {MAX_TEXT_SCORE_CHARS} characters"
                    ));
                }
                scored(0.0, Some(text.to_string()))
            }
            (ConfigDataType::Text, SentValue::Number(_)) => {
                refuse("the value of a TEXT score must be a string".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scores_take_their_configs_rules() {
        let numeric =
            create(json!({"name": "acc", "dataType": "NUMERIC", "minValue": 0, "maxValue": 1}))
                .unwrap();
        let n = |v| numeric.check_score(None, SentValue::Number(v));
        assert_eq!(n(0.5).unwrap().value, 0.5);
        assert_eq!(n(1.0).unwrap().data_type, ConfigDataType::Numeric);
        assert!(n(1.5)
            .unwrap_err()
            .ends_with("provided config: Value exceeds maximum value of 1 defined in config"));
        assert!(n(-0.1).unwrap_err().contains("below minimum value of 0"));
        assert!(numeric
            .check_score(None, SentValue::Text("high"))
            .unwrap_err()
            .contains("must be a number"));
        assert_eq!(
            numeric
                .check_score(Some("CATEGORICAL"), SentValue::Number(0.5))
                .unwrap_err(),
            "Data type mismatch based on config: expected NUMERIC, got CATEGORICAL"
        );

        let cats = json!([{"label": "good", "value": 2}, {"label": "bad", "value": 0}]);
        let categorical =
            create(json!({"name": "q", "dataType": "CATEGORICAL", "categories": cats})).unwrap();
        let good = categorical
            .check_score(Some("CATEGORICAL"), SentValue::Text("good"))
            .unwrap();
        assert_eq!(
            (good.value, good.string_value.as_deref()),
            (2.0, Some("good"))
        );
        assert!(categorical
            .check_score(None, SentValue::Text("meh"))
            .unwrap_err()
            .contains("Value meh does not map to a valid category"));
        assert!(categorical
            .check_score(None, SentValue::Number(2.0))
            .is_err());

        let boolean = create(json!({"name": "ok", "dataType": "BOOLEAN"})).unwrap();
        let yes = boolean.check_score(None, SentValue::Number(1.0)).unwrap();
        assert_eq!(
            (yes.data_type, yes.string_value.as_deref()),
            (ConfigDataType::Boolean, Some("True"))
        );
        let no = boolean.check_score(None, SentValue::Number(0.0)).unwrap();
        assert_eq!(no.string_value.as_deref(), Some("False"));
        assert!(boolean.check_score(None, SentValue::Number(0.5)).is_err());
        assert!(boolean.check_score(None, SentValue::Text("True")).is_err());

        let text = create(json!({"name": "note", "dataType": "TEXT"})).unwrap();
        assert!(text.check_score(None, SentValue::Text("fine")).is_ok());
        assert!(text.check_score(None, SentValue::Text("")).is_err());
        assert!(text
            .check_score(None, SentValue::Text(&"x".repeat(501)))
            .is_err());

        let archived = numeric.updated(&json!({"isArchived": true})).unwrap();
        assert!(archived
            .check_score(None, SentValue::Number(0.5))
            .unwrap_err()
            .starts_with("Config is archived"));
    }

    fn create(body: Value) -> Result<ConfigFields, String> {
        ConfigFields::from_create(&body)
    }

    #[test]
    fn numeric_ranges_need_a_maximum_above_the_minimum() {
        let c = create(
            json!({"name": "accuracy", "dataType": "NUMERIC", "minValue": 0, "maxValue": 1}),
        )
        .unwrap();
        assert_eq!((c.min_value, c.max_value), (Some(0.0), Some(1.0)));
        assert!(create(json!({"name": "a", "dataType": "NUMERIC"})).is_ok());
        let e = create(json!({"name": "a", "dataType": "NUMERIC", "minValue": 1, "maxValue": 1}))
            .unwrap_err();
        assert!(e.contains("greater than"), "{e}");
        assert!(create(json!({"name": "a", "dataType": "NUMERIC", "categories": []})).is_err());
    }

    #[test]
    fn categories_are_unique_and_booleans_get_theirs() {
        let ok = json!([{"label": "good", "value": 1}, {"label": "bad", "value": 0}]);
        let c = create(json!({"name": "q", "dataType": "CATEGORICAL", "categories": ok})).unwrap();
        assert_eq!(c.categories.unwrap().len(), 2);
        for bad in [
            json!([{"label": "a", "value": 1}, {"label": "a", "value": 2}]),
            json!([{"label": "a", "value": 1}, {"label": "b", "value": 1}]),
            json!([{"label": "a"}]),
            json!("a,b"),
            json!([]),
        ] {
            assert!(
                create(json!({"name": "q", "dataType": "CATEGORICAL", "categories": bad})).is_err(),
                "{bad}"
            );
        }
        assert!(create(json!({"name": "q", "dataType": "CATEGORICAL"})).is_err());
        let b = create(json!({"name": "ok", "dataType": "BOOLEAN"})).unwrap();
        assert_eq!(b.categories, Some(boolean_categories()));
        assert!(create(
            json!({"name": "ok", "dataType": "BOOLEAN", "categories": [{"label": "y", "value": 1}]})
        )
        .is_err());
    }

    #[test]
    fn names_are_short_and_plain() {
        assert!(
            create(json!({"name": "Helpfulness (v2) - draft_1.0", "dataType": "TEXT"})).is_ok()
        );
        for bad in [
            json!(""),
            json!("a".repeat(36)),
            json!("a/b"),
            json!("ä"),
            json!(3),
        ] {
            assert!(
                create(json!({"name": bad, "dataType": "TEXT"})).is_err(),
                "{bad}"
            );
        }
        assert!(create(json!({"dataType": "TEXT"})).is_err());
        assert!(create(json!({"name": "x", "dataType": "LIST"})).is_err());
    }

    #[test]
    fn updates_keep_the_rules_of_the_data_type() {
        let c = create(json!({"name": "n", "dataType": "NUMERIC", "minValue": 0, "maxValue": 10}))
            .unwrap();
        assert!(c.updated(&json!({})).is_err());
        assert!(c.updated(&json!({"name": null})).is_err());
        let archived = c.updated(&json!({"isArchived": true})).unwrap();
        assert!(archived.is_archived);
        assert_eq!(archived.max_value, Some(10.0));
        assert!(c.updated(&json!({"minValue": 10})).is_err());
        assert!(c
            .updated(&json!({"categories": [{"label": "a", "value": 1}]}))
            .is_err());
        let b = create(json!({"name": "b", "dataType": "BOOLEAN"})).unwrap();
        assert!(b.updated(&json!({"description": "yes or no"})).is_ok());
        assert!(b
            .updated(&json!({"categories": [{"label": "a", "value": 1}]}))
            .is_err());
    }
}
