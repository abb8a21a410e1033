//! Costs computed from a model's prices, as Langfuse computes them at ingestion, over a catalog
//! compiled once per change: every pattern (match patterns and the usage patterns of tier
//! conditions) compiled when the catalog is loaded, every price parsed into an exact decimal,
//! and the models a model name matches remembered per name, so pricing an observation is a hash
//! lookup, a scan of a few candidates and a few integer multiplications.
//!
//! Rules, from Langfuse's behaviour:
//! - An observation's model is matched by its provided model name and start time
//!   ([`super::model::match_model`]'s rules: the project's models first, the newest start date
//!   not after the start time).
//! - The tier is chosen when the model has tiers and the observation has usage
//!   ([`super::model::choose_tier`]'s rules).
//! - Cost per usage type = units × the tier's price of that type, for the types the tier prices;
//!   when a `total` usage is priced its cost is the total, otherwise the total is the sum of the
//!   costs (and is added as `total`). No usage priced: no cost.
//! - Amounts are in ClickHouse's `Decimal64(12)` units (10⁻¹² USD), computed in integers: a price
//!   of `0.0000025` × 3 tokens is exactly `0.0000075`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use regex::{Regex, RegexBuilder};

use super::model::{
    compile_match_pattern, AttributeSource, Candidate, Matchable, ModelDefinition, Operator,
    TierCondition,
};
use super::tokens::Tokenizer;

/// The scale of stored amounts: `Decimal64(12)`.
pub const AMOUNT_SCALE: u32 = 12;

/// A price as an exact decimal: `mantissa` × 10^-`scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExactPrice {
    mantissa: u128,
    scale: u32,
}

impl ExactPrice {
    /// Reads decimal text as [`super::model::Price`] accepts it (`"0.0000025"`, `"2.5e-6"`).
    pub fn parse(text: &str) -> Option<ExactPrice> {
        let (number, exponent) = match text.find(['e', 'E']) {
            Some(at) => (&text[..at], text[at + 1..].parse::<i64>().ok()?),
            None => (text, 0),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let digits = format!("{whole}{fraction}");
        let digits = digits.trim_start_matches('0');
        let mantissa: u128 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        let scale = fraction.len() as i64 - exponent;
        if scale >= 0 {
            Some(ExactPrice {
                mantissa,
                scale: u32::try_from(scale).ok()?,
            })
        } else {
            let factor = 10u128.checked_pow(u32::try_from(-scale).ok()?)?;
            Some(ExactPrice {
                mantissa: mantissa.checked_mul(factor)?,
                scale: 0,
            })
        }
    }

    /// The cost of `units` at this price, in 10⁻¹² USD, rounded half up when the price has more
    /// than twelve decimals; an amount beyond `Decimal64(12)` is held at its largest value.
    pub fn cost_of(self, units: u64) -> i64 {
        let Some(product) = self.mantissa.checked_mul(u128::from(units)) else {
            return i64::MAX;
        };
        let exact = if self.scale <= AMOUNT_SCALE {
            10u128
                .checked_pow(AMOUNT_SCALE - self.scale)
                .and_then(|f| product.checked_mul(f))
        } else {
            match 10u128.checked_pow(self.scale - AMOUNT_SCALE) {
                Some(divisor) => {
                    Some(product / divisor + u128::from(product % divisor >= divisor.div_ceil(2)))
                }
                // Smaller than 10⁻³⁸ of a unit per unit: nothing at this scale.
                None => Some(0),
            }
        };
        exact.map_or(i64::MAX, |v| i64::try_from(v).unwrap_or(i64::MAX))
    }
}

/// A tier condition with its usage pattern compiled.
#[derive(Debug, Clone)]
enum Condition {
    Attribute {
        source: AttributeSource,
        key: String,
        values: Vec<String>,
    },
    /// `regex` is `None` when the pattern does not compile: the condition never holds.
    Usage {
        regex: Option<Regex>,
        operator: Operator,
        value: f64,
    },
}

impl Condition {
    fn compile(condition: &TierCondition) -> Condition {
        match condition {
            TierCondition::Attribute {
                source,
                key,
                values,
                ..
            } => Condition::Attribute {
                source: *source,
                key: key.clone(),
                values: values.clone(),
            },
            TierCondition::Usage {
                usage_detail_pattern,
                operator,
                value,
                case_sensitive,
            } => Condition::Usage {
                regex: RegexBuilder::new(usage_detail_pattern)
                    .case_insensitive(!case_sensitive)
                    .size_limit(1 << 20)
                    .build()
                    .ok(),
                operator: *operator,
                value: *value,
            },
        }
    }

    fn holds(
        &self,
        usage: &[(String, u64)],
        attribute: &dyn Fn(AttributeSource, &str) -> Option<String>,
    ) -> bool {
        match self {
            Condition::Attribute {
                source,
                key,
                values,
            } => attribute(*source, key).is_some_and(|v| values.contains(&v)),
            Condition::Usage {
                regex,
                operator,
                value,
            } => {
                let Some(regex) = regex else { return false };
                let sum: f64 = usage
                    .iter()
                    .filter(|(k, _)| regex.is_match(k))
                    .map(|(_, v)| *v as f64)
                    .sum();
                operator.holds(sum, *value)
            }
        }
    }
}

/// A pricing tier ready to price usage.
#[derive(Debug, Clone)]
pub struct Tier {
    pub id: String,
    pub name: String,
    is_default: bool,
    priority: i32,
    conditions: Vec<Condition>,
    prices: Vec<(String, ExactPrice)>,
}

/// What pricing an observation's usage came to: the cost per usage type and the total, in
/// 10⁻¹² USD. Empty when the tier prices none of the usage types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cost {
    pub details: Vec<(String, i64)>,
    pub total: Option<i64>,
}

impl Tier {
    /// Units × price for each usage type the tier prices; the total as Langfuse takes it.
    pub fn cost(&self, usage: &[(String, u64)]) -> Cost {
        let mut details: Vec<(String, i64)> = usage
            .iter()
            .filter_map(|(key, units)| {
                let (_, price) = self.prices.iter().find(|(k, _)| k == key)?;
                Some((key.clone(), price.cost_of(*units)))
            })
            .collect();
        let total = match details.iter().find(|(k, _)| k == "total") {
            Some((_, total)) => Some(*total),
            None if details.is_empty() => None,
            None => {
                let sum = details.iter().fold(0i64, |a, (_, v)| a.saturating_add(*v));
                details.push(("total".to_string(), sum));
                details.sort();
                Some(sum)
            }
        };
        Cost { details, total }
    }
}

/// A model definition with its tiers compiled.
#[derive(Debug)]
pub struct PricedModel {
    pub definition: Arc<ModelDefinition>,
    /// What counts the tokens of observations sent without usage; `None` when nothing does.
    pub tokenizer: Option<Tokenizer>,
    /// The conditional tiers by ascending priority.
    conditional: Vec<Tier>,
    default: Option<Tier>,
}

impl Candidate for PricedModel {
    fn start_date(&self) -> Option<DateTime<Utc>> {
        self.definition.start_date
    }
    fn id(&self) -> &str {
        &self.definition.id
    }
}

impl PricedModel {
    /// Compiles a stored definition; `None` when its match pattern does not compile here.
    pub fn compile(definition: ModelDefinition) -> Option<Matchable<Arc<PricedModel>>> {
        let regex = compile_match_pattern(&definition.match_pattern).ok()?;
        let tier = |t: &super::model::PricingTier| Tier {
            id: t.id.clone(),
            name: t.name.clone(),
            is_default: t.is_default,
            priority: t.priority,
            conditions: t.conditions.iter().map(Condition::compile).collect(),
            // A price that cannot be read exactly prices nothing (prices are validated on write).
            prices: t
                .prices
                .iter()
                .filter_map(|(k, p)| Some((k.clone(), ExactPrice::parse(p.as_str())?)))
                .collect(),
        };
        let mut conditional: Vec<Tier> = definition
            .tiers
            .iter()
            .filter(|t| !t.is_default)
            .map(tier)
            .collect();
        conditional.sort_by_key(|t| t.priority);
        let default = definition.tiers.iter().find(|t| t.is_default).map(tier);
        Some(Matchable {
            model: Arc::new(PricedModel {
                tokenizer: Tokenizer::of(
                    definition.tokenizer_id.as_deref(),
                    definition.tokenizer_config.as_ref(),
                ),
                definition: Arc::new(definition),
                conditional,
                default,
            }),
            regex,
        })
    }

    /// The tier `usage` is priced by: the first conditional tier whose conditions all hold, else
    /// the default tier. `attribute` answers a top-level model parameter or metadata value.
    pub fn tier_for(
        &self,
        usage: &[(String, u64)],
        attribute: &dyn Fn(AttributeSource, &str) -> Option<String>,
    ) -> Option<&Tier> {
        self.conditional
            .iter()
            .find(|t| {
                !t.conditions.is_empty() && t.conditions.iter().all(|c| c.holds(usage, attribute))
            })
            .or(self.default.as_ref())
    }

    /// Whether any conditional tier looks at model parameters or metadata.
    pub fn reads_attributes(&self) -> bool {
        self.conditional.iter().any(|t| {
            t.conditions
                .iter()
                .any(|c| matches!(c, Condition::Attribute { .. }))
        })
    }
}

impl Tier {
    pub fn is_default(&self) -> bool {
        self.is_default
    }
    pub fn priority(&self) -> i32 {
        self.priority
    }
}

/// A list of compiled models (a project's, or the shipped ones).
pub type Models = Arc<Vec<Matchable<Arc<PricedModel>>>>;

/// Distinct model names remembered per index; past it, the memory starts over.
const MEMO_LIMIT: usize = 4096;

/// The models that price one project's observations: its own, then the shipped ones, with the
/// candidates of each model name seen remembered.
#[derive(Debug)]
pub struct ModelIndex {
    project: Models,
    shipped: Models,
    /// By model name: the project's and the shipped models the name matches, each newest start
    /// date first (none last), then by id.
    memo: Mutex<HashMap<String, Arc<Candidates>>>,
}

#[derive(Debug)]
struct Candidates {
    project: Vec<Arc<PricedModel>>,
    shipped: Vec<Arc<PricedModel>>,
}

impl ModelIndex {
    pub fn new(project: Models, shipped: Models) -> ModelIndex {
        ModelIndex {
            project,
            shipped,
            memo: Mutex::new(HashMap::new()),
        }
    }

    /// The model `model_name`, of an observation started at `at`, is priced by (the rules of
    /// [`super::model::match_model`]).
    pub fn find(&self, model_name: &str, at: Option<DateTime<Utc>>) -> Option<Arc<PricedModel>> {
        if model_name.is_empty() {
            return None;
        }
        let candidates = self.candidates(model_name);
        let eligible = |m: &&Arc<PricedModel>| match (m.start_date(), at) {
            (Some(start), Some(at)) => start <= at,
            _ => true,
        };
        candidates
            .project
            .iter()
            .find(eligible)
            .or_else(|| candidates.shipped.iter().find(eligible))
            .cloned()
    }

    fn candidates(&self, model_name: &str) -> Arc<Candidates> {
        if let Some(c) = self.memo.lock().expect("model memo").get(model_name) {
            return c.clone();
        }
        let matching = |models: &Models| {
            let mut found: Vec<Arc<PricedModel>> = models
                .iter()
                .filter(|m| m.regex.is_match(model_name))
                .map(|m| m.model.clone())
                .collect();
            found.sort_by(|a, b| {
                b.start_date()
                    .cmp(&a.start_date())
                    .then_with(|| a.id().cmp(b.id()))
            });
            found
        };
        let candidates = Arc::new(Candidates {
            project: matching(&self.project),
            shipped: matching(&self.shipped),
        });
        let mut memo = self.memo.lock().expect("model memo");
        if memo.len() >= MEMO_LIMIT {
            memo.clear();
        }
        memo.insert(model_name.to_string(), candidates.clone());
        candidates
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{match_model, Price, PricingTier, Unit};
    use chrono::TimeZone;
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn cost(price: &str, units: u64) -> i64 {
        ExactPrice::parse(price).unwrap().cost_of(units)
    }

    #[test]
    fn costs_are_exact_decimals() {
        // 0.0000025 × 3 = 0.0000075 USD, exactly 7,500,000 × 10⁻¹².
        assert_eq!(cost("0.0000025", 3), 7_500_000);
        assert_eq!(cost("2.5e-6", 3), 7_500_000);
        assert_eq!(cost("2.5E-6", 3), 7_500_000);
        // A float would drift: 0.1 × 3.
        assert_eq!(cost("0.1", 3), 300_000_000_000);
        assert_eq!(cost("0.00000015", 1_000_000), 150_000_000_000);
        assert_eq!(cost("3", 2), 6_000_000_000_000);
        assert_eq!(cost("1e3", 1), 1_000_000_000_000_000);
        assert_eq!(cost("0", 5), 0);
        assert_eq!(cost("0.0000025", 0), 0);
        // Past twelve decimals: rounded half up.
        assert_eq!(cost("0.0000000000004", 1), 0);
        assert_eq!(cost("0.0000000000005", 1), 1);
        assert_eq!(cost("0.0000000000005", 3), 2);
        assert_eq!(cost("1e-400", 1), 0);
        // Beyond Decimal64(12): held at its largest value.
        assert_eq!(cost("1000000", u64::MAX), i64::MAX);
    }

    proptest! {
        /// The integer cost is the exact product of price and units, rounded to 10⁻¹²: it never
        /// differs from the decimal product by half a unit or more.
        #[test]
        fn costs_match_the_decimal_product(mantissa in 0u64..10_000_000, scale in 0u32..18, units in 0u64..100_000_000) {
            let text = if scale == 0 { mantissa.to_string() } else {
                let digits = format!("{mantissa:0>width$}", width = scale as usize + 1);
                let (w, f) = digits.split_at(digits.len() - scale as usize);
                format!("{w}.{f}")
            };
            let got = cost(&text, units) as i128;
            let exact_scaled = (mantissa as i128) * (units as i128); // × 10^-scale
            // got × 10^-12 ≈ exact_scaled × 10^-scale.
            if scale <= 12 {
                prop_assert_eq!(got, (exact_scaled * 10i128.pow(12 - scale)).min(i64::MAX as i128));
            } else {
                let d = 10i128.pow(scale - 12);
                prop_assert!((got * d - exact_scaled).abs() * 2 <= d);
            }
        }
    }

    fn definition(
        id: &str,
        pattern: &str,
        start: Option<i32>,
        tiers: Vec<PricingTier>,
    ) -> ModelDefinition {
        let at = Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap();
        ModelDefinition {
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
            tiers,
        }
    }

    fn tier(
        name: &str,
        default: bool,
        priority: i32,
        conditions: serde_json::Value,
        prices: &[(&str, &str)],
    ) -> PricingTier {
        PricingTier {
            id: format!("{name}-id"),
            name: name.to_string(),
            is_default: default,
            priority,
            conditions: serde_json::from_value(conditions).unwrap(),
            prices: prices
                .iter()
                .map(|(k, v)| (k.to_string(), Price::parse(v).unwrap()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn usage(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn no_attributes(_: AttributeSource, _: &str) -> Option<String> {
        None
    }

    #[test]
    fn usage_is_priced_per_type_and_totalled() {
        let m = PricedModel::compile(definition(
            "m",
            "^m$",
            None,
            vec![tier(
                "Standard",
                true,
                0,
                json!([]),
                &[("input", "0.0000025"), ("output", "0.00001")],
            )],
        ))
        .unwrap()
        .model;
        let t = m
            .tier_for(
                &usage(&[("input", 3), ("output", 2), ("total", 5)]),
                &no_attributes,
            )
            .unwrap();
        let c = t.cost(&usage(&[("input", 3), ("output", 2), ("total", 5)]));
        assert_eq!(
            c.details,
            vec![
                ("input".into(), 7_500_000),
                ("output".into(), 20_000_000),
                ("total".into(), 27_500_000)
            ]
        );
        assert_eq!(c.total, Some(27_500_000));
        // Nothing priced: no cost at all.
        assert_eq!(t.cost(&usage(&[("images", 2)])), Cost::default());
        // A priced `total` usage is the total.
        let per_total = PricedModel::compile(definition(
            "t",
            "^t$",
            None,
            vec![tier("Standard", true, 0, json!([]), &[("total", "0.5")])],
        ))
        .unwrap()
        .model;
        let c = per_total
            .default
            .as_ref()
            .unwrap()
            .cost(&usage(&[("input", 1), ("total", 2)]));
        assert_eq!(c.total, Some(1_000_000_000_000));
        assert_eq!(c.details, vec![("total".into(), 1_000_000_000_000)]);
    }

    #[test]
    fn tiers_are_chosen_by_compiled_conditions() {
        let m = PricedModel::compile(definition(
            "m",
            "^m$",
            None,
            vec![
                tier("Standard", true, 0, json!([]), &[("input", "1")]),
                tier(
                    "Large",
                    false,
                    1,
                    json!([{"usageDetailPattern": "input", "operator": "gt", "value": 200000, "caseSensitive": false}]),
                    &[("input", "2")],
                ),
                tier(
                    "Priority",
                    false,
                    2,
                    json!([{"source": "model_parameters", "key": "service_tier", "operator": "in", "values": ["priority"]}]),
                    &[("input", "3")],
                ),
            ],
        ))
        .unwrap()
        .model;
        let pick = |u: &[(&str, u64)], tier: Option<&str>| {
            let attr = |s: AttributeSource, k: &str| {
                (s == AttributeSource::ModelParameters && k == "service_tier")
                    .then(|| tier.map(str::to_string))
                    .flatten()
            };
            m.tier_for(&usage(u), &attr).unwrap().name.clone()
        };
        assert_eq!(pick(&[("input", 200_000)], None), "Standard");
        assert_eq!(pick(&[("input", 200_001)], None), "Large");
        assert_eq!(
            pick(&[("input_cached", 150_000), ("input", 60_000)], None),
            "Large"
        );
        assert_eq!(pick(&[("input", 10)], Some("priority")), "Priority");
        assert_eq!(pick(&[("input", 10)], Some("flex")), "Standard");
        assert!(m.reads_attributes());
    }

    proptest! {
        /// The index picks what `match_model` picks, whatever the names and start times.
        #[test]
        fn the_index_agrees_with_match_model(
            project in proptest::collection::vec((0usize..3, proptest::option::of(2000i32..2030)), 0..4),
            shipped in proptest::collection::vec((0usize..3, proptest::option::of(2000i32..2030)), 0..6),
            name in 0usize..4,
            at in proptest::option::of(2000i32..2030),
        ) {
            let patterns = ["^a$", "(?i)^a", "b"];
            let names = ["a", "A-x", "ab", "zzz"];
            let build = |list: &[(usize, Option<i32>)], prefix: &str| -> Vec<ModelDefinition> {
                list.iter().enumerate()
                    .map(|(i, (p, s))| definition(&format!("{prefix}{i}"), patterns[*p], *s, vec![]))
                    .collect()
            };
            let (p, s) = (build(&project, "p"), build(&shipped, "s"));
            let at = at.map(|y| Utc.with_ymd_and_hms(y, 6, 1, 0, 0, 0).unwrap());
            let plain = |d: &[ModelDefinition]| -> Vec<Matchable<ModelDefinition>> {
                d.iter().cloned().map(|d| Matchable::new(d).unwrap()).collect()
            };
            let expected = match_model(&plain(&p), &plain(&s), names[name], at).map(|m| m.id.clone());
            let compiled = |d: Vec<ModelDefinition>| -> Models {
                Arc::new(d.into_iter().map(|d| PricedModel::compile(d).unwrap()).collect())
            };
            let index = ModelIndex::new(compiled(p), compiled(s));
            // Twice: the remembered candidates answer the same.
            for _ in 0..2 {
                let got = index.find(names[name], at).map(|m| m.definition.id.clone());
                prop_assert_eq!(&got, &expected);
            }
        }
    }
}
