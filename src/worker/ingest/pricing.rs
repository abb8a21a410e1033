//! Prices observations when they are written, as Langfuse's worker does: an observation whose
//! provided model name matches a model (the project's first, then the shipped ones, by the
//! observation's start time) gets the model's id; with usage, the tier its usage falls in; and
//! with usage and no provided cost, the cost of each usage type at that tier's prices and their
//! total. Provided costs are kept as sent. This applies to every observation type and level, as
//! in Langfuse, which prices any observation that names a model, not only generations.
//!
//! An observation sent with neither usage nor cost, whose level is not ERROR, gets its usage
//! counted with the matched model's tokenizer (`domain::tokens`): `input` and `output` tokens and
//! their `total`, stored in `usage_details` (`provided_usage_details` stays empty) and priced like
//! sent usage. A model without a tokenizer that counts (none, or `claude`) leaves it without
//! usage. Pricing runs on the blocking pool, once per round, since counting is CPU work (tens of
//! megabytes of text a second per core); the encoders are shared by the process and built on
//! first use.
//!
//! Attribute conditions of tiers read the model parameters and metadata of the last event that
//! carried usage (`ingest::merge::TierAttributes`), as Langfuse reads them; counted usage was
//! carried by no event, so only the default and usage-conditioned tiers can apply to it.
//!
//! Costs are computed here, once, and stored with the model and the tier, so a later price
//! change does not rewrite history; a rebuild of the observation (any later event of it) prices
//! it again with the prices current then, as Langfuse's does.
//!
//! The models come from [`ModelCatalog`] (compiled per project, shared by the process, refreshed
//! when the catalog's epoch moves): a round asks it once per project, and PostgreSQL only when
//! the catalog changed. Pricing never holds a round up: when PostgreSQL does not answer within
//! [`LOOKUP_TIMEOUT`], the round's observations are written unpriced (with the usage and any
//! provided cost they were sent with, and no counted usage), and lookups pause for
//! [`PAUSE_AFTER_FAILURE`], as `prompt_ids` does.
//!
//! So that this stays an outage's effect and not a slow start's, the worker loads the shipped
//! catalog before it takes any shard ([`Pricing::warm`]), and every load runs in its own task,
//! shared by the rounds that wait for it: a round that gives up waiting does not cancel the
//! load, and the next round finds its result (compiling the shipped set takes seconds on a busy
//! machine in a debug build, and a cold database can take as long to answer).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use futures::future::{BoxFuture, FutureExt, Shared};
use serde_json::Value;

use crate::domain::model::AttributeSource;
use crate::domain::pricing::ModelIndex;
use crate::domain::tokens::Tokenizer;
use crate::storage::clickhouse::observations::ObservationRow;
use crate::storage::models::{ModelCatalog, DEFAULT_REFRESH};

/// How long one lookup may take before the round goes on without it.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long lookups pause after one failed.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(10);
/// How long the worker waits for the shipped catalog before it takes shards anyway.
const WARM_TIMEOUT: Duration = Duration::from_secs(60);

/// One project's lookup, running in its own task and awaited by every round that needs it.
type Lookup = Shared<BoxFuture<'static, Result<Arc<ModelIndex>, String>>>;

/// The model catalog of this process's worker.
pub struct Pricing {
    catalog: Arc<ModelCatalog>,
    paused_until: Mutex<Option<Instant>>,
    in_flight: Mutex<HashMap<String, Lookup>>,
}

impl Pricing {
    pub fn new(postgres: Pool) -> Pricing {
        Pricing {
            catalog: Arc::new(ModelCatalog::new(postgres, DEFAULT_REFRESH)),
            paused_until: Mutex::new(None),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// Loads the shipped catalog, waiting at most [`WARM_TIMEOUT`]; called before the worker
    /// takes shards, so that its first rounds are priced. PostgreSQL being down only delays
    /// the start by that much: the worker then goes on, as pricing never holds ingestion.
    pub async fn warm(&self) {
        let catalog = self.catalog.clone();
        let load = tokio::spawn(async move { catalog.warm().await });
        match tokio::time::timeout(WARM_TIMEOUT, load).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => self.pause(format!("{err:#}")),
            Ok(Err(err)) => self.pause(err.to_string()),
            Err(_) => self.pause(format!("no answer within {WARM_TIMEOUT:?}")),
        }
    }

    /// The lookup of `project`'s models: the one in flight, or a new one in its own task.
    fn lookup(&self, project: &str) -> Lookup {
        let mut in_flight = self.in_flight.lock().unwrap();
        // Finished lookups go: the catalog caches what they loaded.
        in_flight.retain(|_, lookup| lookup.peek().is_none());
        if let Some(lookup) = in_flight.get(project) {
            return lookup.clone();
        }
        let catalog = self.catalog.clone();
        let project_id = project.to_string();
        let task = tokio::spawn(async move {
            catalog
                .index(&project_id)
                .await
                .map_err(|err| format!("{err:#}"))
        });
        let lookup = async move { task.await.unwrap_or_else(|err| Err(err.to_string())) }
            .boxed()
            .shared();
        in_flight.insert(project.to_string(), lookup.clone());
        lookup
    }

    /// Sets the model, tier and computed cost (and counted usage) of every observation that names
    /// a model that matches; leaves them unset when PostgreSQL does not answer.
    ///
    /// The pricing itself runs on the blocking pool, as counting tokens is CPU work that must not
    /// hold the runtime's threads (nor the lookups of other shard readers, whose timeouts run on
    /// the clock). `false` when the pool could not run it (the runtime is shutting down): the rows
    /// are gone, and the round must be neither written nor acknowledged.
    #[must_use]
    pub async fn fill(&self, observations: &mut Vec<ObservationRow>) -> bool {
        let projects: BTreeSet<&str> = observations
            .iter()
            .filter(|o| {
                o.provided_model_name
                    .as_deref()
                    .is_some_and(|m| !m.is_empty())
            })
            .map(|o| o.project_id.as_str())
            .collect();
        if projects.is_empty() || self.paused() {
            return true;
        }
        let mut indexes: BTreeMap<String, Arc<ModelIndex>> = BTreeMap::new();
        for project in projects {
            match tokio::time::timeout(LOOKUP_TIMEOUT, self.lookup(project)).await {
                Ok(Ok(index)) => {
                    indexes.insert(project.to_string(), index);
                }
                Ok(Err(err)) => {
                    self.pause(err);
                    return true;
                }
                Err(_) => {
                    self.pause(format!("no answer within {LOOKUP_TIMEOUT:?}"));
                    return true;
                }
            }
        }
        let mut rows = std::mem::take(observations);
        let priced = tokio::task::spawn_blocking(move || {
            for observation in rows.iter_mut() {
                if let Some(index) = indexes.get(&observation.project_id) {
                    // A panic in a dependency leaves this one row unpriced, never loses the round.
                    let priced = catch_unwind(AssertUnwindSafe(|| price(observation, index)));
                    if priced.is_err() {
                        tracing::error!(
                            observation = %observation.id,
                            "pricing panicked; the observation is written unpriced"
                        );
                    }
                }
            }
            rows
        })
        .await;
        match priced {
            Ok(rows) => {
                *observations = rows;
                true
            }
            Err(err) => {
                tracing::warn!(error = %err, "pricing did not run; the round is left for later");
                false
            }
        }
    }

    fn paused(&self) -> bool {
        self.paused_until
            .lock()
            .unwrap()
            .is_some_and(|until| Instant::now() < until)
    }

    fn pause(&self, error: String) {
        tracing::warn!(
            %error,
            pause_secs = PAUSE_AFTER_FAILURE.as_secs(),
            "cannot read model prices; observations are written without computed costs"
        );
        *self.paused_until.lock().unwrap() = Some(Instant::now() + PAUSE_AFTER_FAILURE);
    }
}

/// Prices one observation with the models of its project.
fn price(o: &mut ObservationRow, index: &ModelIndex) {
    let Some(name) = o.provided_model_name.as_deref().filter(|m| !m.is_empty()) else {
        return;
    };
    let Some(model) = index.find(name, Some(o.start_time)) else {
        return;
    };
    o.internal_model_id = Some(model.definition.id.clone());
    if o.usage_details.is_empty() && o.provided_cost_details.is_empty() && o.level != "ERROR" {
        if let Some(tokenizer) = &model.tokenizer {
            o.usage_details = counted_usage(tokenizer, o.input.as_deref(), o.output.as_deref());
        }
    }
    // No usage: no tier is chosen (Langfuse would not choose one against empty usage).
    if o.usage_details.is_empty() {
        return;
    }
    let attributes = o.tier_attributes.as_ref();
    let parameters = if model.reads_attributes() {
        attributes
            .and_then(|a| a.model_parameters.as_deref())
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
    } else {
        None
    };
    let attribute = |source: AttributeSource, key: &str| -> Option<String> {
        match source {
            AttributeSource::Metadata => attributes?.metadata.get(key).cloned(),
            AttributeSource::ModelParameters => match parameters.as_ref()?.get(key)? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(js_number(n)),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            },
        }
    };
    let Some(tier) = model.tier_for(&o.usage_details, &attribute) else {
        return;
    };
    o.usage_pricing_tier_id = Some(tier.id.clone());
    o.usage_pricing_tier_name = Some(tier.name.clone());
    if !o.provided_cost_details.is_empty() {
        return;
    }
    let cost = tier.cost(&o.usage_details);
    o.cost_details = cost.details;
    o.total_cost = cost.total;
}

/// The usage Langfuse records from counted tokens: `input` and `output` when counted, and
/// `total`, their sum, unless both are zero or missing.
fn counted_usage(
    tokenizer: &Tokenizer,
    input: Option<&str>,
    output: Option<&str>,
) -> Vec<(String, u64)> {
    let input = input.and_then(|text| tokenizer.count(text));
    let output = output.and_then(|text| tokenizer.count(text));
    let mut usage = Vec::with_capacity(3);
    if let Some(n) = input {
        usage.push(("input".to_string(), n));
    }
    if let Some(n) = output {
        usage.push(("output".to_string(), n));
    }
    if input.unwrap_or(0) > 0 || output.unwrap_or(0) > 0 {
        usage.push((
            "total".to_string(),
            input.unwrap_or(0) + output.unwrap_or(0),
        ));
    }
    usage
}

/// A number as JavaScript writes it (`1.0` is `"1"`), as Langfuse compares attribute values.
fn js_number(n: &serde_json::Number) -> String {
    match n.as_f64() {
        Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e21 => format!("{}", f as i128),
        _ => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn counted_usage_is_input_output_and_their_total() {
        let gpt_4o = Tokenizer::of(
            Some("openai"),
            Some(&json!({"tokenizerModel": "gpt-4o", "tokensPerMessage": 3, "tokensPerName": 1})),
        )
        .unwrap();
        let usage = |i: Option<&str>, o: Option<&str>| counted_usage(&gpt_4o, i, o);
        let pairs = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
            v.iter().map(|(k, n)| (k.to_string(), *n)).collect()
        };
        assert_eq!(
            usage(Some(r#"[{"role":"user","content":"Hi"}]"#), Some("Hello")),
            pairs(&[("input", 8), ("output", 1), ("total", 9)])
        );
        assert_eq!(
            usage(None, Some("Hello")),
            pairs(&[("output", 1), ("total", 1)])
        );
        // Counted zeros are kept, without a total.
        assert_eq!(usage(Some(""), None), pairs(&[("input", 0)]));
        assert_eq!(usage(None, None), pairs(&[]));
    }

    #[test]
    fn numbers_compare_as_javascript_writes_them() {
        let n = |v: Value| js_number(v.as_number().unwrap());
        assert_eq!(n(json!(1.0)), "1");
        assert_eq!(n(json!(1)), "1");
        assert_eq!(n(json!(0.7)), "0.7");
        assert_eq!(n(json!(-2.0)), "-2");
    }
}
