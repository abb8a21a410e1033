//! Model definitions and their prices, as Langfuse has them: which model an observation's model
//! name matches, which pricing tier its usage falls in, and what a new model definition must
//! satisfy. Pure: the tables are read in `storage::models`, the API is `http::api::models`.
//!
//! Rules, from Langfuse's behaviour:
//! - A model's `matchPattern` is a regular expression searched in the observation's model name;
//!   patterns are case-sensitive unless they say `(?i)`, which the shipped ones do.
//! - A project's own models come before the shipped ones; among the candidates that match (and
//!   whose start date is not after the observation's start), the newest start date wins, a model
//!   without a start date last.
//! - Tiers other than the default are tried by ascending priority; the first whose conditions all
//!   hold is chosen, otherwise the default tier. A usage condition sums the usage values whose
//!   keys its pattern finds (case-insensitive unless `caseSensitive`) and compares the sum; an
//!   attribute condition holds when the top-level model parameter or metadata key is a string
//!   among its values. A condition that cannot be evaluated does not hold.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The unit a model's usage is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Unit {
    Tokens,
    Characters,
    Milliseconds,
    Seconds,
    Requests,
    Images,
}

impl Unit {
    pub const ALL: [Unit; 6] = [
        Unit::Tokens,
        Unit::Characters,
        Unit::Milliseconds,
        Unit::Seconds,
        Unit::Requests,
        Unit::Images,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Tokens => "TOKENS",
            Unit::Characters => "CHARACTERS",
            Unit::Milliseconds => "MILLISECONDS",
            Unit::Seconds => "SECONDS",
            Unit::Requests => "REQUESTS",
            Unit::Images => "IMAGES",
        }
    }

    pub fn parse(text: &str) -> Option<Unit> {
        Unit::ALL.into_iter().find(|u| u.as_str() == text)
    }
}

/// The tokenizers Langfuse knows.
pub const TOKENIZERS: [&str; 2] = ["openai", "claude"];

/// Comparison of a usage condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operator {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
    Neq,
}

impl Operator {
    pub fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Operator::Gt => left > right,
            Operator::Gte => left >= right,
            Operator::Lt => left < right,
            Operator::Lte => left <= right,
            Operator::Eq => left == right,
            Operator::Neq => left != right,
        }
    }
}

/// Where an attribute condition looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeSource {
    ModelParameters,
    Metadata,
}

/// One condition of a pricing tier, in the JSON shape Langfuse stores and answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TierCondition {
    #[serde(rename_all = "camelCase")]
    Attribute {
        source: AttributeSource,
        key: String,
        /// Always `in`.
        operator: String,
        values: Vec<String>,
    },
    #[serde(rename_all = "camelCase")]
    Usage {
        usage_detail_pattern: String,
        operator: Operator,
        value: f64,
        #[serde(default)]
        case_sensitive: bool,
    },
}

/// A price in USD per unit, as exact decimal text (`"0.0000025"`): never a float on its way to
/// PostgreSQL's `numeric`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Price(String);

impl Price {
    /// A non-negative decimal number: digits, an optional fraction, an optional exponent.
    pub fn parse(text: &str) -> Option<Price> {
        let (mantissa, exponent) = match text.find(['e', 'E']) {
            Some(at) => (&text[..at], Some(&text[at + 1..])),
            None => (text, None),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        let mantissa_ok = !(whole.is_empty() && fraction.is_empty())
            && digits(whole)
            && digits(fraction)
            && !(mantissa.ends_with('.') && fraction.is_empty() && whole.is_empty());
        let exponent_ok = exponent.is_none_or(|e| {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && e.len() <= 3 && digits(e)
        });
        (mantissa_ok && exponent_ok).then(|| Price(text.to_string()))
    }

    /// From a JSON number of a request: finite and not negative.
    pub fn from_json(value: &Value) -> Option<Price> {
        let n = value.as_f64()?;
        if !n.is_finite() || n < 0.0 {
            return None;
        }
        Price::parse(&value.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number the API answers (a JSON double, as Langfuse's).
    pub fn to_f64(&self) -> f64 {
        self.0.parse().unwrap_or(0.0)
    }
}

/// A pricing tier with its prices by usage type.
#[derive(Debug, Clone, PartialEq)]
pub struct PricingTier {
    pub id: String,
    pub name: String,
    pub is_default: bool,
    pub priority: i32,
    pub conditions: Vec<TierCondition>,
    pub prices: BTreeMap<String, Price>,
}

/// A model definition as stored: a project's (`project_id` set) or shipped.
#[derive(Debug, Clone)]
pub struct ModelDefinition {
    pub id: String,
    pub project_id: Option<String>,
    pub model_name: String,
    pub match_pattern: String,
    pub start_date: Option<DateTime<Utc>>,
    pub unit: Option<Unit>,
    pub tokenizer_id: Option<String>,
    pub tokenizer_config: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// By ascending priority; the default tier first.
    pub tiers: Vec<PricingTier>,
}

impl ModelDefinition {
    pub fn default_tier(&self) -> Option<&PricingTier> {
        self.tiers.iter().find(|t| t.is_default)
    }
}

/// Regular expressions larger than this when compiled are refused (the regex engine runs in
/// linear time, so the only risk of a pattern is its size).
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// Compiles a model's match pattern as written (`(?i)` in it makes it case-insensitive).
pub fn compile_match_pattern(pattern: &str) -> Result<Regex, String> {
    if pattern.is_empty() {
        return Err("matchPattern must not be empty".into());
    }
    RegexBuilder::new(pattern)
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("matchPattern is not a valid regular expression: {e}"))
}

/// A model definition with its pattern compiled, ready to be matched.
#[derive(Debug, Clone)]
pub struct Matchable<M> {
    pub model: M,
    pub regex: Regex,
}

impl Matchable<ModelDefinition> {
    /// `None` when the stored pattern does not compile here (it can then match nothing).
    pub fn new(model: ModelDefinition) -> Option<Matchable<ModelDefinition>> {
        let regex = compile_match_pattern(&model.match_pattern).ok()?;
        Some(Matchable { model, regex })
    }
}

/// What the matcher needs of a model definition.
pub trait Candidate {
    fn start_date(&self) -> Option<DateTime<Utc>>;
    fn id(&self) -> &str;
}

impl<T: Candidate> Candidate for std::sync::Arc<T> {
    fn start_date(&self) -> Option<DateTime<Utc>> {
        (**self).start_date()
    }
    fn id(&self) -> &str {
        (**self).id()
    }
}

impl Candidate for ModelDefinition {
    fn start_date(&self) -> Option<DateTime<Utc>> {
        self.start_date
    }
    fn id(&self) -> &str {
        &self.id
    }
}

/// The model an observation's `model_name`, started at `at`, is priced by: the project's models
/// first, then the shipped ones; within each, the newest start date not after `at` (a model
/// without one last). Without a start time, start dates do not exclude a model.
pub fn match_model<'a, M: Candidate>(
    project_models: &'a [Matchable<M>],
    shipped_models: &'a [Matchable<M>],
    model_name: &str,
    at: Option<DateTime<Utc>>,
) -> Option<&'a M> {
    if model_name.is_empty() {
        return None;
    }
    best_of(project_models, model_name, at).or_else(|| best_of(shipped_models, model_name, at))
}

fn best_of<'a, M: Candidate>(
    models: &'a [Matchable<M>],
    model_name: &str,
    at: Option<DateTime<Utc>>,
) -> Option<&'a M> {
    models
        .iter()
        .filter(|m| match (m.model.start_date(), at) {
            (Some(start), Some(at)) => start <= at,
            _ => true,
        })
        .filter(|m| m.regex.is_match(model_name))
        .map(|m| &m.model)
        // Newest start date first, no start date last; the smaller id on a tie, so the choice
        // never depends on the order rows were read in.
        .min_by(|a, b| {
            b.start_date()
                .cmp(&a.start_date())
                .then_with(|| a.id().cmp(b.id()))
        })
}

/// The tier an observation's usage is priced by: the first non-default tier, by ascending
/// priority, whose conditions all hold; else the default tier.
pub fn choose_tier<'a>(
    tiers: &'a [PricingTier],
    usage: &BTreeMap<String, f64>,
    model_parameters: Option<&Map<String, Value>>,
    metadata: Option<&Map<String, Value>>,
) -> Option<&'a PricingTier> {
    let mut conditional: Vec<&PricingTier> = tiers.iter().filter(|t| !t.is_default).collect();
    conditional.sort_by_key(|t| t.priority);
    conditional
        .into_iter()
        .find(|t| {
            // A tier without conditions never matches: only the default tier is unconditional.
            !t.conditions.is_empty()
                && t.conditions
                    .iter()
                    .all(|c| condition_holds(c, usage, model_parameters, metadata))
        })
        .or_else(|| tiers.iter().find(|t| t.is_default))
}

fn condition_holds(
    condition: &TierCondition,
    usage: &BTreeMap<String, f64>,
    model_parameters: Option<&Map<String, Value>>,
    metadata: Option<&Map<String, Value>>,
) -> bool {
    match condition {
        TierCondition::Attribute {
            source,
            key,
            values,
            ..
        } => {
            let attributes = match source {
                AttributeSource::ModelParameters => model_parameters,
                AttributeSource::Metadata => metadata,
            };
            match attributes.and_then(|a| a.get(key)) {
                Some(Value::String(v)) => values.iter().any(|x| x == v),
                _ => false,
            }
        }
        TierCondition::Usage {
            usage_detail_pattern,
            operator,
            value,
            case_sensitive,
        } => {
            let Ok(regex) = RegexBuilder::new(usage_detail_pattern)
                .case_insensitive(!case_sensitive)
                .size_limit(PATTERN_SIZE_LIMIT)
                .build()
            else {
                return false;
            };
            let sum: f64 = usage
                .iter()
                .filter(|(k, _)| regex.is_match(k))
                .map(|(_, v)| *v)
                .sum();
            operator.holds(sum, *value)
        }
    }
}

/// A pricing tier of a new model, before it has an id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTier {
    pub name: String,
    pub is_default: bool,
    pub priority: i32,
    pub conditions: Vec<TierCondition>,
    pub prices: BTreeMap<String, Price>,
}

/// A project's new model definition, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NewModel {
    pub model_name: String,
    pub match_pattern: String,
    pub start_date: Option<DateTime<Utc>>,
    pub unit: Option<Unit>,
    pub tokenizer_id: Option<String>,
    pub tokenizer_config: Option<Value>,
    /// The default tier first. Flat prices become one default tier named "Standard".
    pub tiers: Vec<NewTier>,
}

/// The name of the default tier made from flat prices, as Langfuse names it.
pub const STANDARD_TIER: &str = "Standard";

impl NewModel {
    /// Reads the body of `POST /api/public/models` (`CreateModelRequest`). The message of a
    /// refusal names the field.
    pub fn from_request(body: &Value) -> Result<NewModel, String> {
        let object = body
            .as_object()
            .ok_or("the body must be a JSON object (CreateModelRequest)")?;
        let present = |key: &str| object.get(key).filter(|v| !v.is_null());

        let model_name = match present("modelName") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::String(_)) => return Err("modelName must not be empty".into()),
            Some(_) => return Err("modelName must be a string".into()),
            None => return Err("modelName is required".into()),
        };
        let match_pattern = match present("matchPattern") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err("matchPattern must be a string".into()),
            None => return Err("matchPattern is required".into()),
        };
        compile_match_pattern(&match_pattern)?;
        let start_date = match present("startDate") {
            None => None,
            Some(Value::String(s)) => Some(
                crate::domain::time::parse_time(s)
                    .ok_or_else(|| format!("startDate {s:?} is not an ISO 8601 date-time"))?,
            ),
            Some(_) => return Err("startDate must be an ISO 8601 date-time string".into()),
        };
        let unit = match present("unit") {
            None => None,
            Some(Value::String(s)) => Some(Unit::parse(s).ok_or_else(|| {
                format!(
                    "unit {s:?} is not one of {}",
                    Unit::ALL.map(Unit::as_str).join(", ")
                )
            })?),
            Some(_) => return Err("unit must be a string".into()),
        };
        let tokenizer_id = match present("tokenizerId") {
            None => None,
            Some(Value::String(s)) if TOKENIZERS.contains(&s.as_str()) => Some(s.clone()),
            Some(other) => {
                return Err(format!(
                    "tokenizerId {other} is not one of {}",
                    TOKENIZERS.join(", ")
                ))
            }
        };
        let tokenizer_config = present("tokenizerConfig").cloned();

        let flat_price = |key: &str| -> Result<Option<Price>, String> {
            match present(key) {
                None => Ok(None),
                Some(v) => Price::from_json(v)
                    .map(Some)
                    .ok_or_else(|| format!("{key} must be a non-negative number, not {v}")),
            }
        };
        let input = flat_price("inputPrice")?;
        let output = flat_price("outputPrice")?;
        let total = flat_price("totalPrice")?;
        let tiers = match present("pricingTiers") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, t)| parse_tier(t).map_err(|e| format!("pricingTiers[{i}].{e}")))
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err("pricingTiers must be an array".into()),
        };
        let has_flat = input.is_some() || output.is_some() || total.is_some();
        let tiers = match (has_flat, tiers.is_empty()) {
            (true, false) => {
                return Err("Must provide either flat prices (inputPrice/outputPrice/totalPrice) or pricingTiers, not both".into())
            }
            (false, true) => {
                return Err("Must provide either flat prices (inputPrice/outputPrice/totalPrice) or pricingTiers".into())
            }
            (true, true) => {
                if total.is_some() && (input.is_some() || output.is_some()) {
                    return Err(
                        "totalPrice must be null when inputPrice or outputPrice is set".into(),
                    );
                }
                let prices = [("input", input), ("output", output), ("total", total)]
                    .into_iter()
                    .filter_map(|(k, p)| p.map(|p| (k.to_string(), p)))
                    .collect();
                vec![NewTier {
                    name: STANDARD_TIER.to_string(),
                    is_default: true,
                    priority: 0,
                    conditions: Vec::new(),
                    prices,
                }]
            }
            (false, false) => {
                validate_tiers(&tiers).map_err(|e| format!("pricingTiers: {e}"))?;
                let mut tiers = tiers;
                tiers.sort_by_key(|t| (!t.is_default, t.priority));
                tiers
            }
        };
        Ok(NewModel {
            model_name,
            match_pattern,
            start_date,
            unit,
            tokenizer_id,
            tokenizer_config,
            tiers,
        })
    }
}

fn parse_tier(value: &Value) -> Result<NewTier, String> {
    let object = value.as_object().ok_or("must be an object")?;
    let name = match object.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.trim().len() <= 100 => {
            s.trim().to_string()
        }
        _ => return Err("name must be a string of 1 to 100 characters".into()),
    };
    let is_default = match object.get("isDefault") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("isDefault must be a boolean".into()),
    };
    let priority = object
        .get("priority")
        .and_then(Value::as_i64)
        .filter(|p| (0..=999).contains(p))
        .ok_or("priority must be an integer from 0 to 999")? as i32;
    let conditions = match object.get("conditions") {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, c)| parse_condition(c).map_err(|e| format!("conditions[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err("conditions must be an array".into()),
    };
    let prices = match object.get("prices") {
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| {
                Price::from_json(v)
                    .map(|p| (k.clone(), p))
                    .ok_or_else(|| format!("prices.{k} must be a non-negative number, not {v}"))
            })
            .collect::<Result<BTreeMap<_, _>, _>>()?,
        _ => return Err("prices must be an object of numbers by usage type".into()),
    };
    Ok(NewTier {
        name,
        is_default,
        priority,
        conditions,
        prices,
    })
}

fn parse_condition(value: &Value) -> Result<TierCondition, String> {
    let condition: TierCondition = serde_json::from_value(value.clone()).map_err(|_| {
        "must be {usageDetailPattern, operator (gt, gte, lt, lte, eq, neq), value, caseSensitive} \
         or {source (model_parameters, metadata), key, operator: \"in\", values}"
            .to_string()
    })?;
    match &condition {
        TierCondition::Usage {
            usage_detail_pattern,
            value,
            ..
        } => {
            if usage_detail_pattern.is_empty() || usage_detail_pattern.len() > 200 {
                return Err("usageDetailPattern must have 1 to 200 characters".into());
            }
            Regex::new(usage_detail_pattern).map_err(|e| {
                format!("usageDetailPattern is not a valid regular expression: {e}")
            })?;
            if !value.is_finite() || *value < 0.0 {
                return Err("value must be a non-negative number".into());
            }
        }
        TierCondition::Attribute {
            key,
            operator,
            values,
            ..
        } => {
            if operator != "in" {
                return Err("operator of an attribute condition must be \"in\"".into());
            }
            if key.is_empty() || key.len() > 200 {
                return Err("key must have 1 to 200 characters".into());
            }
            if values.is_empty() || values.iter().any(String::is_empty) {
                return Err("values must be a non-empty list of non-empty strings".into());
            }
        }
    }
    Ok(condition)
}

/// Langfuse's rules for a model's tiers: exactly one default tier, with priority 0 and no
/// conditions; every other tier has conditions; unique priorities and names; every tier has a
/// price, and all tiers price the same usage types.
pub fn validate_tiers(tiers: &[NewTier]) -> Result<(), String> {
    let defaults: Vec<&NewTier> = tiers.iter().filter(|t| t.is_default).collect();
    let default = match defaults.as_slice() {
        [] => return Err("exactly one pricing tier must have isDefault: true".into()),
        [one] => *one,
        more => {
            return Err(format!(
                "only one pricing tier can have isDefault: true, found {}",
                more.len()
            ))
        }
    };
    if default.priority != 0 {
        return Err("the default pricing tier must have priority 0".into());
    }
    if !default.conditions.is_empty() {
        return Err("the default pricing tier must have an empty conditions array".into());
    }
    if let Some(t) = tiers
        .iter()
        .find(|t| !t.is_default && t.conditions.is_empty())
    {
        return Err(format!(
            "non-default pricing tier {:?} must have at least one condition",
            t.name
        ));
    }
    let mut priorities: Vec<i32> = tiers.iter().map(|t| t.priority).collect();
    priorities.sort_unstable();
    priorities.dedup();
    if priorities.len() != tiers.len() {
        return Err("pricing tier priorities must be unique within a model".into());
    }
    let mut names: Vec<&str> = tiers.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    if names.len() != tiers.len() {
        return Err("pricing tier names must be unique".into());
    }
    if let Some(t) = tiers.iter().find(|t| t.prices.is_empty()) {
        return Err(format!(
            "pricing tier {:?} must have at least one price",
            t.name
        ));
    }
    let keys = |t: &NewTier| t.prices.keys().cloned().collect::<Vec<_>>();
    let expected = keys(default);
    if let Some(t) = tiers.iter().find(|t| keys(t) != expected) {
        return Err(format!(
            "pricing tier {:?} must price the same usage types as the default tier: expected [{}], got [{}]",
            t.name,
            expected.join(", "),
            keys(t).join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use serde_json::json;

    fn tier(name: &str, default: bool, priority: i32, conditions: Value) -> PricingTier {
        PricingTier {
            id: name.to_string(),
            name: name.to_string(),
            is_default: default,
            priority,
            conditions: serde_json::from_value(conditions).unwrap(),
            prices: BTreeMap::from([("input".to_string(), Price::parse("1").unwrap())]),
        }
    }

    fn model(id: &str, pattern: &str, start: Option<i32>) -> Matchable<ModelDefinition> {
        let at = Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap();
        Matchable::new(ModelDefinition {
            id: id.to_string(),
            project_id: None,
            model_name: id.to_string(),
            match_pattern: pattern.to_string(),
            start_date: start.map(|y| Utc.with_ymd_and_hms(y, 1, 1, 0, 0, 0).unwrap()),
            unit: Some(Unit::Tokens),
            tokenizer_id: None,
            tokenizer_config: None,
            created_at: at,
            updated_at: at,
            tiers: Vec::new(),
        })
        .unwrap()
    }

    fn year(y: i32) -> Option<DateTime<Utc>> {
        Some(Utc.with_ymd_and_hms(y, 6, 1, 0, 0, 0).unwrap())
    }

    fn picked<'a>(
        project: &'a [Matchable<ModelDefinition>],
        shipped: &'a [Matchable<ModelDefinition>],
        name: &str,
        at: Option<DateTime<Utc>>,
    ) -> Option<&'a str> {
        match_model(project, shipped, name, at).map(|m| m.id.as_str())
    }

    #[test]
    fn project_models_come_before_shipped_ones() {
        let shipped = [model("shipped", "(?i)^(openai/)?gpt-4o$", Some(2024))];
        let project = [model("mine", "(?i)^gpt-4o$", None)];
        assert_eq!(
            picked(&project, &shipped, "gpt-4o", year(2025)),
            Some("mine")
        );
        assert_eq!(
            picked(&project, &shipped, "openai/gpt-4o", year(2025)),
            Some("shipped")
        );
        assert_eq!(picked(&[], &shipped, "GPT-4O", year(2025)), Some("shipped"));
        assert_eq!(picked(&project, &shipped, "gpt-4o-mini", year(2025)), None);
    }

    #[test]
    fn the_newest_start_date_not_after_the_observation_wins() {
        let shipped = [
            model("none", "^m$", None),
            model("2023", "^m$", Some(2023)),
            model("2025", "^m$", Some(2025)),
        ];
        for (at, expected) in [
            (year(2022), "none"),
            (year(2023), "2023"),
            (year(2024), "2023"),
            (year(2026), "2025"),
            (None, "2025"),
        ] {
            assert_eq!(picked(&[], &shipped, "m", at), Some(expected), "{at:?}");
        }
    }

    #[test]
    fn patterns_are_case_sensitive_unless_they_say_otherwise() {
        let shipped = [model("a", "^Claude$", None)];
        assert_eq!(picked(&[], &shipped, "Claude", None), Some("a"));
        assert_eq!(picked(&[], &shipped, "claude", None), None);
        // Searched, not anchored, as PostgreSQL's `~` does.
        let loose = [model("b", "gpt", None)];
        assert_eq!(picked(&[], &loose, "azure-gpt-x", None), Some("b"));
        assert_eq!(picked(&[], &loose, "", None), None);
    }

    proptest! {
        /// Whatever the order of the rows, the same model is chosen, and it is one that matches
        /// and is not newer than the observation.
        #[test]
        fn matching_ignores_row_order_and_respects_start_dates(
            starts in proptest::collection::vec(proptest::option::of(2000i32..2030), 1..8),
            at in 2000i32..2030,
            rotate in 0usize..8,
        ) {
            let models: Vec<_> = starts.iter().enumerate()
                .map(|(i, s)| model(&format!("m{i}"), "^x$", *s)).collect();
            let mut rotated = models.clone();
            rotated.rotate_left(rotate % models.len());
            let a = picked(&[], &models, "x", year(at)).map(str::to_string);
            let b = picked(&[], &rotated, "x", year(at)).map(str::to_string);
            prop_assert_eq!(&a, &b);
            if let Some(id) = a {
                let chosen = models.iter().find(|m| m.model.id == id).unwrap();
                prop_assert!(chosen.model.start_date.is_none_or(|s| Some(s) <= year(at)));
                // No other eligible model has a newer start date.
                for m in &models {
                    if let (Some(s), Some(c)) = (m.model.start_date, chosen.model.start_date) {
                        prop_assert!(Some(s) > year(at) || s <= c);
                    }
                    if m.model.start_date.is_some_and(|s| Some(s) <= year(at)) {
                        prop_assert!(chosen.model.start_date.is_some());
                    }
                }
            } else {
                prop_assert!(starts.iter().all(|s| s.is_some_and(|s| Some(Utc.with_ymd_and_hms(s, 1, 1, 0, 0, 0).unwrap()) > year(at))));
            }
        }
    }

    fn usage(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn tiers_are_chosen_by_usage_sums_in_priority_order() {
        let tiers = vec![
            tier("Standard", true, 0, json!([])),
            tier(
                "Large",
                false,
                2,
                json!([{"usageDetailPattern": "input", "operator": "gt", "value": 100000, "caseSensitive": false}]),
            ),
            tier(
                "Huge",
                false,
                1,
                json!([{"usageDetailPattern": "(input|cache)", "operator": "gt", "value": 200000, "caseSensitive": false}]),
            ),
        ];
        let chosen = |u: &[(&str, f64)]| {
            choose_tier(&tiers, &usage(u), None, None)
                .unwrap()
                .name
                .clone()
        };
        // Table: usage → tier.
        for (u, expected) in [
            (vec![("input", 10.0), ("output", 5.0)], "Standard"),
            (vec![("input", 150_000.0)], "Large"),
            (vec![("input", 150_000.0), ("cache_read", 60_000.0)], "Huge"),
            (vec![("INPUT", 250_000.0)], "Huge"),
            (vec![("input", 100_000.0)], "Standard"),
            (vec![], "Standard"),
        ] {
            assert_eq!(chosen(&u), expected, "{u:?}");
        }
    }

    #[test]
    fn operators_and_case_sensitivity() {
        for (op, sum, hold) in [
            ("gt", 5.0, false),
            ("gte", 5.0, true),
            ("lt", 4.0, true),
            ("lte", 6.0, false),
            ("eq", 5.0, true),
            ("neq", 5.0, false),
        ] {
            let tiers = vec![
                tier("Standard", true, 0, json!([])),
                tier(
                    "T",
                    false,
                    1,
                    json!([{"usageDetailPattern": "^in", "operator": op, "value": 5, "caseSensitive": true}]),
                ),
            ];
            let name = &choose_tier(&tiers, &usage(&[("input", sum)]), None, None)
                .unwrap()
                .name;
            assert_eq!(name == "T", hold, "{op} {sum}");
            // Case-sensitive: "INPUT" is not found, the sum is 0.
            let upper = &choose_tier(&tiers, &usage(&[("INPUT", sum)]), None, None)
                .unwrap()
                .name;
            assert_eq!(
                upper == "T",
                op == "lt" || op == "lte" || op == "neq",
                "{op}"
            );
        }
    }

    #[test]
    fn attribute_conditions_match_string_values_exactly() {
        let tiers = vec![
            tier("Standard", true, 0, json!([])),
            tier(
                "Fast",
                false,
                1,
                json!([{"source": "model_parameters", "key": "service_tier", "operator": "in", "values": ["fast", "priority"]}]),
            ),
        ];
        let params = |v: Value| json!({ "service_tier": v }).as_object().cloned().unwrap();
        let pick = |p: Option<&Map<String, Value>>| {
            choose_tier(&tiers, &BTreeMap::new(), p, None)
                .unwrap()
                .name
                .clone()
        };
        assert_eq!(pick(Some(&params(json!("priority")))), "Fast");
        assert_eq!(pick(Some(&params(json!("Priority")))), "Standard");
        assert_eq!(pick(Some(&params(json!(1)))), "Standard");
        assert_eq!(pick(None), "Standard");
        // Metadata is another source.
        let meta = params(json!("fast"));
        assert_eq!(
            choose_tier(&tiers, &BTreeMap::new(), None, Some(&meta))
                .unwrap()
                .name,
            "Standard"
        );
    }

    #[test]
    fn a_bad_usage_pattern_never_holds() {
        let tiers = vec![
            tier("Standard", true, 0, json!([])),
            tier(
                "Bad",
                false,
                1,
                json!([{"usageDetailPattern": "(", "operator": "gte", "value": 0, "caseSensitive": false}]),
            ),
        ];
        assert_eq!(
            choose_tier(&tiers, &usage(&[("input", 1.0)]), None, None)
                .unwrap()
                .name,
            "Standard"
        );
        assert!(choose_tier(&tiers[1..], &BTreeMap::new(), None, None).is_none());
    }

    #[test]
    fn prices_are_decimal_text() {
        for ok in ["0", "1", "0.0000025", "2.5e-6", "1E+3", ".5", "3."] {
            assert!(Price::parse(ok).is_some(), "{ok}");
        }
        for bad in ["", "-1", "1e", "abc", "1.2.3", "NaN", "1e1000", "."] {
            assert!(Price::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(
            Price::from_json(&json!(0.0000025)).unwrap().to_f64(),
            0.0000025
        );
        assert!(Price::from_json(&json!(-0.1)).is_none());
        assert!(Price::from_json(&json!("1")).is_none());
    }

    #[test]
    fn a_request_with_flat_prices_makes_one_standard_tier() {
        let m = NewModel::from_request(&json!({
            "modelName": "m", "matchPattern": "(?i)^m$", "unit": "TOKENS",
            "inputPrice": 0.000001, "outputPrice": 0.000002, "startDate": "2025-01-01T00:00:00Z"
        }))
        .unwrap();
        assert_eq!(m.tiers.len(), 1);
        assert_eq!(m.tiers[0].name, STANDARD_TIER);
        assert!(m.tiers[0].is_default);
        assert_eq!(
            m.tiers[0].prices.keys().collect::<Vec<_>>(),
            vec!["input", "output"]
        );
        assert!(m.start_date.is_some());
    }

    #[test]
    fn refusals_name_the_field() {
        let base =
            json!({"modelName": "m", "matchPattern": "^m$", "unit": "TOKENS", "inputPrice": 1});
        let with = |key: &str, value: Value| {
            let mut b = base.clone();
            b[key] = value;
            NewModel::from_request(&b).unwrap_err()
        };
        assert!(with("matchPattern", json!("(")).contains("matchPattern"));
        assert!(with("unit", json!("LITRES")).contains("unit"));
        assert!(with("inputPrice", json!(-1)).contains("inputPrice"));
        assert!(with("modelName", json!("")).contains("modelName"));
        assert!(with("startDate", json!("yesterday")).contains("startDate"));
        assert!(with("tokenizerId", json!("llama")).contains("tokenizerId"));
        assert!(with("totalPrice", json!(1)).contains("totalPrice"));
        assert!(with("pricingTiers", json!([{"name": "S", "isDefault": true, "priority": 0, "conditions": [], "prices": {"input": 1}}]))
            .contains("not both"));
        let mut no_price = base.clone();
        no_price.as_object_mut().unwrap().remove("inputPrice");
        assert!(NewModel::from_request(&no_price)
            .unwrap_err()
            .contains("flat prices"));
    }

    #[test]
    fn tier_rules_are_langfuses() {
        let tiers = |t: Value| {
            NewModel::from_request(
                &json!({"modelName": "m", "matchPattern": "^m$", "pricingTiers": t}),
            )
        };
        let std = json!({"name": "Standard", "isDefault": true, "priority": 0, "conditions": [], "prices": {"input": 1, "output": 2}});
        let cond = json!([{"usageDetailPattern": "input", "operator": "gt", "value": 200000, "caseSensitive": false}]);
        let large = json!({"name": "Large", "isDefault": false, "priority": 1, "conditions": cond, "prices": {"input": 2, "output": 4}});
        let ok = tiers(json!([large.clone(), std.clone()])).unwrap();
        assert_eq!(ok.tiers[0].name, "Standard");
        assert_eq!(ok.tiers[1].name, "Large");

        let edit = |v: &Value, path: &[&str], to: Value| {
            let mut v = v.clone();
            let mut at = &mut v;
            for p in path {
                at = match p.parse::<usize>() {
                    Ok(i) => &mut at[i],
                    Err(_) => &mut at[*p],
                };
            }
            *at = to;
            v
        };
        for (case, expected) in [
            (json!([large.clone()]), "isDefault"),
            (json!([std.clone(), std.clone()]), "only one"),
            (
                json!([std.clone(), edit(&large, &["priority"], json!(0))]),
                "priorities",
            ),
            (
                json!([std.clone(), edit(&large, &["name"], json!("Standard"))]),
                "names",
            ),
            (
                json!([std.clone(), edit(&large, &["conditions"], json!([]))]),
                "at least one condition",
            ),
            (
                json!([std.clone(), edit(&large, &["prices"], json!({"input": 1}))]),
                "same usage types",
            ),
            (
                json!([
                    std.clone(),
                    edit(&large, &["conditions", "0", "operator"], json!("between"))
                ]),
                "pricingTiers[1].conditions[0]",
            ),
            (
                json!([
                    std.clone(),
                    edit(
                        &large,
                        &["conditions", "0", "usageDetailPattern"],
                        json!("(in")
                    )
                ]),
                "usageDetailPattern",
            ),
            (
                json!([edit(&std, &["prices", "input"], json!(-1))]),
                "prices.input",
            ),
        ] {
            let err = tiers(case).unwrap_err();
            assert!(err.contains(expected), "{err} lacks {expected}");
            assert!(err.contains("pricingTiers"), "{err}");
        }
    }
}
