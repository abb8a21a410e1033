//! What makes a span a model call: model name, model parameters, token usage and cost, read from
//! the attributes of each convention in Langfuse's order of precedence.

use serde_json::{Map, Value};

use super::observation_type::meaningful;
use super::Attributes;

/// Model name keys, first present wins: Langfuse, GenAI response then request model, Vercel,
/// OpenLLMetry, OpenInference, bare `model`.
const MODEL_KEYS: &[&str] = &[
    "langfuse.observation.model.name",
    "gen_ai.response.model",
    "ai.model.id",
    "gen_ai.request.model",
    "llm.response.model",
    "llm.model_name",
    "model",
];

pub fn model_name(attributes: &Attributes) -> Option<String> {
    let genkit_model = attributes
        .get("genkit:metadata:subtype")
        .and_then(Value::as_str)
        == Some("model");
    MODEL_KEYS
        .iter()
        .copied()
        .chain(genkit_model.then_some("genkit:name"))
        .find_map(|k| attributes.get(k).filter(|v| truthy(v)).map(text))
}

/// JavaScript truthiness, which Langfuse's `||` and `if (x)` tests rely on.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// A value as text: strings as they are, anything else as JSON.
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A value as JavaScript's `String(value)` writes it (arrays joined by commas), which is how
/// Langfuse records the Vercel AI SDK's settings.
fn js_string(value: &Value) -> String {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|v| {
                if v.is_null() {
                    String::new()
                } else {
                    js_string(v)
                }
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(_) => "[object Object]".to_string(),
        other => text(other),
    }
}

/// A JSON text parsed, or the value itself when it is not text.
pub fn parse_json(value: &Value) -> Option<Value> {
    match value {
        Value::String(s) => serde_json::from_str(s).ok(),
        Value::Null => None,
        other => Some(other.clone()),
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

fn json_number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::from(f as i64)
    } else {
        serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

/// Model parameters keep numbers and strings; anything else is written as JSON text.
fn sanitize_parameters(params: Map<String, Value>) -> Map<String, Value> {
    params
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            Value::String(_) | Value::Number(_) => (k, v),
            other => (k, Value::String(other.to_string())),
        })
        .collect()
}

/// Model parameters: Langfuse's JSON attribute; for the Vercel AI SDK its settings; OpenInference's
/// `llm.invocation_parameters` JSON; `model_config` JSON; else every `gen_ai.request.*` and
/// `llm.invocation_parameters.*` attribute but the model. Empty is `None`.
pub fn model_parameters(attributes: &Attributes, scope_name: &str) -> Option<Map<String, Value>> {
    let json_object = |key: &str| match attributes.get(key).and_then(parse_json) {
        Some(Value::Object(o)) => Some(sanitize_parameters(o)),
        _ => None,
    };
    let explicit = attributes
        .get("langfuse.observation.model.parameters")
        .filter(|v| truthy(v))
        .and_then(|_| json_object("langfuse.observation.model.parameters"));
    let params = if scope_name == "ai" {
        let setting = |key: &str| attributes.get(key).filter(|v| !v.is_null()).map(js_string);
        let service_tier = attributes
            .get("ai.response.providerMetadata")
            .and_then(parse_json)
            .and_then(|m| m.pointer("/openai/serviceTier").cloned())
            .filter(Value::is_string)
            .map(|v| text(&v))
            .or_else(|| setting("gen_ai.request.service_tier"));
        let mut params = Map::new();
        for (name, value) in [
            ("maxSteps", setting("ai.settings.maxSteps")),
            ("toolChoice", setting("ai.prompt.toolChoice")),
            ("maxTokens", setting("gen_ai.request.max_tokens")),
            (
                "finishReason",
                setting("gen_ai.response.finish_reasons")
                    .or_else(|| setting("gen_ai.finishReason")),
            ),
            (
                "system",
                setting("gen_ai.system").or_else(|| setting("ai.model.provider")),
            ),
            ("maxRetries", setting("ai.settings.maxRetries")),
            ("mode", setting("ai.settings.mode")),
            ("temperature", setting("gen_ai.request.temperature")),
            ("service_tier", service_tier),
        ] {
            if let Some(value) = value {
                params.insert(name.into(), Value::String(value));
            }
        }
        params.extend(explicit.unwrap_or_default());
        params
    } else if let Some(explicit) = explicit {
        explicit
    } else if let Some(p) = attributes
        .get("llm.invocation_parameters")
        .filter(|v| truthy(v))
        .and_then(|_| json_object("llm.invocation_parameters"))
    {
        p
    } else if let Some(p) = attributes
        .get("model_config")
        .filter(|v| truthy(v))
        .and_then(|_| json_object("model_config"))
    {
        p
    } else {
        let mut params = Map::new();
        for prefix in ["gen_ai.request.", "llm.invocation_parameters."] {
            for (key, value) in attributes {
                if let Some(name) = key.strip_prefix(prefix) {
                    if name != "model" {
                        params.insert(name.to_string(), value.clone());
                    }
                }
            }
        }
        sanitize_parameters(params)
    };
    Some(params).filter(|p| !p.is_empty())
}

/// The Vercel AI SDK's agent spans repeat the usage of the model calls below them; Langfuse leaves
/// model, usage and cost off them so a trace's cost is not counted twice.
pub fn is_ai_sdk_agent_span(attributes: &Attributes) -> bool {
    matches!(
        attributes
            .get("gen_ai.operation.name")
            .and_then(Value::as_str),
        Some("invoke_agent" | "agent_step")
    )
}

/// A JSON-object attribute: `Some(object)` when it parses to one, `Some({})` when present but not
/// an object, `None` when absent or not JSON (then later sources are tried).
fn json_object_attribute(attributes: &Attributes, key: &str) -> Option<Map<String, Value>> {
    let raw = attributes.get(key).filter(|v| truthy(v))?;
    match raw {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(o)) => Some(o),
            Ok(_) => Some(Map::new()),
            Err(_) => None,
        },
        _ => Some(Map::new()),
    }
}

/// Token usage in Langfuse's keys (`input`, `output`, `total`, `input_cached_tokens`, …).
pub fn usage_details(attributes: &Attributes, scope_name: &str) -> Map<String, Value> {
    if let Some(explicit) = json_object_attribute(attributes, "langfuse.observation.usage_details")
    {
        return explicit;
    }
    if scope_name == "ai" {
        if let Some(usage) = vercel_usage(attributes) {
            return usage;
        }
    }
    generic_usage(attributes)
}

/// The Vercel AI SDK's usage: GenAI token counts, `ai.usage.*` details and provider metadata
/// (OpenAI, Anthropic, Bedrock cache and reasoning counts), with cached and reasoning tokens
/// taken out of `input` and `output` so the keys add up.
fn vercel_usage(attributes: &Attributes) -> Option<Map<String, Value>> {
    let count = |key: &str| attributes.get(key).and_then(number);
    let input = count("gen_ai.usage.prompt_tokens").or_else(|| count("gen_ai.usage.input_tokens"));
    let output =
        count("gen_ai.usage.completion_tokens").or_else(|| count("gen_ai.usage.output_tokens"));
    let total = count("ai.usage.tokens");
    let provider = attributes
        .get("ai.response.providerMetadata")
        .and_then(parse_json);
    let any = input.is_some()
        || output.is_some()
        || total.is_some()
        || attributes.contains_key("ai.usage.cachedInputTokens")
        || attributes.contains_key("ai.usage.reasoningTokens")
        || provider.is_some();
    if !any {
        return None;
    }
    let mut details: Vec<(&str, f64)> = Vec::new();
    let set_if_absent = |details: &mut Vec<(&str, f64)>, key: &'static str, v: Option<f64>| {
        if let Some(v) = v {
            if !details.iter().any(|(k, _)| *k == key) {
                details.push((key, v));
            }
        }
    };
    set_if_absent(
        &mut details,
        "input_cached_tokens",
        count("ai.usage.cachedInputTokens"),
    );
    set_if_absent(
        &mut details,
        "output_reasoning_tokens",
        count("ai.usage.reasoningTokens"),
    );
    if let Some(provider) = &provider {
        let at = |pointer: &str| provider.pointer(pointer).and_then(number);
        if provider.get("openai").is_some() {
            set_if_absent(
                &mut details,
                "input_cached_tokens",
                at("/openai/cachedPromptTokens"),
            );
            set_if_absent(
                &mut details,
                "accepted_prediction_tokens",
                at("/openai/acceptedPredictionTokens"),
            );
            set_if_absent(
                &mut details,
                "rejected_prediction_tokens",
                at("/openai/rejectedPredictionTokens"),
            );
            set_if_absent(
                &mut details,
                "output_reasoning_tokens",
                at("/openai/reasoningTokens"),
            );
        }
        if provider.pointer("/anthropic/usage").is_some() {
            set_if_absent(
                &mut details,
                "input_cache_creation",
                at("/anthropic/usage/cache_creation_input_tokens"),
            );
            set_if_absent(
                &mut details,
                "input_cached_tokens",
                at("/anthropic/usage/cache_read_input_tokens"),
            );
            if provider
                .pointer("/anthropic/usage/cache_creation")
                .is_some_and(Value::is_object)
            {
                let five = at("/anthropic/usage/cache_creation/ephemeral_5m_input_tokens");
                let hour = at("/anthropic/usage/cache_creation/ephemeral_1h_input_tokens");
                set_if_absent(&mut details, "input_cache_creation_5m", five);
                set_if_absent(&mut details, "input_cache_creation_1h", hour);
                // The per-duration counts are part of the overall creation count.
                let get = |d: &Vec<(&str, f64)>, k: &str| {
                    d.iter()
                        .find(|(n, _)| *n == k)
                        .map(|(_, v)| *v)
                        .unwrap_or(0.0)
                };
                let rest = (get(&details, "input_cache_creation")
                    - get(&details, "input_cache_creation_5m")
                    - get(&details, "input_cache_creation_1h"))
                .max(0.0);
                details.retain(|(k, _)| *k != "input_cache_creation");
                details.push(("input_cache_creation", rest));
            }
        }
        if let Some(usage) = provider.pointer("/bedrock/usage") {
            for (from, to) in [
                ("cacheReadInputTokens", "input_cache_read"),
                ("cacheWriteInputTokens", "input_cache_write"),
                ("cacheCreationInputTokens", "input_cache_creation"),
            ] {
                set_if_absent(&mut details, to, usage.get(from).and_then(number));
            }
        }
    }
    let get = |k: &str| {
        details
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| *v)
            .unwrap_or(0.0)
    };
    let input = (input.unwrap_or(0.0)
        - get("input_cached_tokens")
        - get("input_cache_creation")
        - get("input_cache_creation_5m")
        - get("input_cache_creation_1h")
        - get("input_cache_read"))
    .max(0.0);
    let output = (output.unwrap_or(0.0) - get("output_reasoning_tokens")).max(0.0);
    let mut out = Map::new();
    out.insert("input".into(), json_number(input));
    out.insert("output".into(), json_number(output));
    if let Some(total) = total {
        out.insert("total".into(), json_number(total));
    }
    for (k, v) in details {
        out.insert(k.into(), json_number(v));
    }
    Some(out)
}

/// Aliases Langfuse folds into one key, and the key they become.
const INPUT_KEYS: &[&str] = &["prompt_tokens", "input_tokens", "prompt"];
const OUTPUT_KEYS: &[&str] = &["completion_tokens", "output_tokens", "completion"];
const TOTAL_KEYS: &[&str] = &["total_tokens", "total"];
const CACHE_READ_KEYS: &[&str] = &[
    "cache_read.input_tokens",
    "cache_read_input_tokens",
    "cache_read_tokens",
    "details.cache_read_tokens",
    "details.cache_read_input_tokens",
    "prompt_details.cache_read",
    "input_cached_tokens",
];
const CACHE_CREATION_KEYS: &[&str] = &[
    "cache_creation.input_tokens",
    "cache_creation_input_tokens",
    "cache_write_tokens",
    "details.cache_write_tokens",
    "details.cache_creation_input_tokens",
    "prompt_details.cache_write",
    "input_cache_creation",
];
const REASONING_KEYS: &[&str] = &["reasoning.output_tokens", "completion_details.reasoning"];
const AUDIO_KEYS: &[&str] = &["completion_details.audio"];

/// GenAI `gen_ai.usage.*` and OpenInference `llm.token_count.*`: input and output exclude the
/// cached, cache-creation, reasoning and audio tokens reported beside them, which keep their own
/// keys; other counts keep their names (less a `details.` prefix).
fn generic_usage(attributes: &Attributes) -> Map<String, Value> {
    let mut raw: Vec<(String, f64)> = Vec::new();
    for (key, value) in attributes {
        let name = if let Some(n) = key.strip_prefix("gen_ai.usage.") {
            if n == "cost" {
                continue;
            }
            n
        } else if let Some(n) = key.strip_prefix("llm.token_count.") {
            n
        } else {
            continue;
        };
        if let Some(v) = number(value) {
            raw.retain(|(k, _)| k != name);
            raw.push((name.to_string(), v));
        }
    }
    if raw.is_empty() {
        return Map::new();
    }
    let first = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| raw.iter().find(|(n, _)| n == k).map(|(_, v)| *v))
    };
    let input = first(INPUT_KEYS);
    let output = first(OUTPUT_KEYS);
    let total = first(TOTAL_KEYS);
    let cache_read = first(CACHE_READ_KEYS);
    let cache_creation = first(CACHE_CREATION_KEYS);
    let reasoning = first(REASONING_KEYS);
    let audio = first(AUDIO_KEYS);
    let folded = [
        INPUT_KEYS,
        OUTPUT_KEYS,
        TOTAL_KEYS,
        CACHE_READ_KEYS,
        CACHE_CREATION_KEYS,
        REASONING_KEYS,
        AUDIO_KEYS,
    ];
    let mut out = Map::new();
    for (name, value) in &raw {
        if folded.iter().any(|keys| keys.contains(&name.as_str())) || *value < 0.0 {
            continue;
        }
        let name = name.strip_prefix("details.").unwrap_or(name);
        out.insert(name.to_string(), json_number(*value));
    }
    if let Some(i) = input {
        let v = (i - cache_read.unwrap_or(0.0) - cache_creation.unwrap_or(0.0)).max(0.0);
        out.insert("input".into(), json_number(v));
    }
    if let Some(o) = output {
        let v = (o - reasoning.unwrap_or(0.0) - audio.unwrap_or(0.0)).max(0.0);
        out.insert("output".into(), json_number(v));
    }
    for (key, value) in [
        ("total", total),
        ("input_cached_tokens", cache_read),
        ("input_cache_creation", cache_creation),
        ("output_reasoning_tokens", reasoning),
        ("output_audio_tokens", audio),
    ] {
        if let Some(v) = value.filter(|v| *v >= 0.0) {
            out.insert(key.into(), json_number(v));
        }
    }
    out
}

/// Cost in USD: Langfuse's JSON attribute, else a total from `gen_ai.usage.cost` or OpenInference's
/// `llm.cost.total`.
pub fn cost_details(attributes: &Attributes) -> Map<String, Value> {
    if let Some(explicit) = json_object_attribute(attributes, "langfuse.observation.cost_details") {
        return explicit;
    }
    for key in ["gen_ai.usage.cost", "llm.cost.total"] {
        if let Some(total) = attributes.get(key).filter(|v| meaningful(Some(v))) {
            let mut out = Map::new();
            if let Some(n) = number(total) {
                out.insert("total".into(), json_number(n));
            }
            return out;
        }
    }
    Map::new()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn attrs(v: Value) -> Attributes {
        match v {
            Value::Object(o) => o,
            _ => panic!(),
        }
    }

    #[test]
    fn model_keys_in_order() {
        let a = attrs(
            json!({"gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06"}),
        );
        assert_eq!(model_name(&a).as_deref(), Some("gpt-4o-2024-08-06"));
        assert_eq!(model_name(&attrs(json!({"model": ""}))), None);
    }

    #[test]
    fn generic_usage_folds_aliases_and_subtracts_details() {
        let a = attrs(json!({
            "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 50,
            "gen_ai.usage.cache_read_input_tokens": 30, "gen_ai.usage.reasoning.output_tokens": "10",
            "gen_ai.usage.cost": 0.5, "gen_ai.usage.details.images": 2,
        }));
        assert_eq!(
            Value::Object(usage_details(&a, "x")),
            json!({"input": 70, "output": 40, "input_cached_tokens": 30,
                   "output_reasoning_tokens": 10, "images": 2})
        );
        let oi = attrs(
            json!({"llm.token_count.prompt": 5, "llm.token_count.completion": 3, "llm.token_count.total": 8}),
        );
        assert_eq!(
            Value::Object(usage_details(&oi, "x")),
            json!({"input": 5, "output": 3, "total": 8})
        );
        assert!(usage_details(&attrs(json!({})), "x").is_empty());
    }

    #[test]
    fn explicit_usage_and_cost_win() {
        let a = attrs(json!({
            "langfuse.observation.usage_details": "{\"input\": 1}",
            "langfuse.observation.cost_details": "{\"total\": 0.25}",
            "gen_ai.usage.input_tokens": 100, "gen_ai.usage.cost": 9,
        }));
        assert_eq!(Value::Object(usage_details(&a, "x")), json!({"input": 1}));
        assert_eq!(Value::Object(cost_details(&a)), json!({"total": 0.25}));
        assert_eq!(
            Value::Object(cost_details(&attrs(json!({"llm.cost.total": "0.1"})))),
            json!({"total": 0.1})
        );
    }

    #[test]
    fn vercel_usage_takes_out_cached_tokens() {
        let a = attrs(json!({
            "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 20, "ai.usage.tokens": 120,
            "ai.response.providerMetadata": "{\"openai\":{\"cachedPromptTokens\":40,\"reasoningTokens\":5}}",
        }));
        assert_eq!(
            Value::Object(usage_details(&a, "ai")),
            json!({"input": 60, "output": 15, "total": 120,
                   "input_cached_tokens": 40, "output_reasoning_tokens": 5})
        );
        assert!(
            usage_details(&attrs(json!({"ai.operationId": "ai.generateText"})), "ai").is_empty()
        );
    }

    #[test]
    fn model_parameters_from_each_source() {
        let a = attrs(
            json!({"gen_ai.request.temperature": 0.2, "gen_ai.request.model": "m",
                             "gen_ai.request.stop_sequences": ["x"]}),
        );
        assert_eq!(
            Value::Object(model_parameters(&a, "x").unwrap()),
            json!({"temperature": 0.2, "stop_sequences": "[\"x\"]"})
        );
        let oi =
            attrs(json!({"llm.invocation_parameters": "{\"temperature\": 0.7, \"tools\": [1]}"}));
        assert_eq!(
            Value::Object(model_parameters(&oi, "x").unwrap()),
            json!({"temperature": 0.7, "tools": "[1]"})
        );
        let v = attrs(
            json!({"gen_ai.request.temperature": 0.5, "ai.settings.maxRetries": 2,
                            "gen_ai.system": "openai.chat"}),
        );
        assert_eq!(
            Value::Object(model_parameters(&v, "ai").unwrap()),
            json!({"temperature": "0.5", "maxRetries": "2", "system": "openai.chat"})
        );
        assert_eq!(model_parameters(&attrs(json!({})), "x"), None);
    }
}
