//! Which Langfuse observation type a span is: Langfuse's rules, tried in its order of priority.
//! The first rule that applies and yields a type wins; a span no rule claims is a SPAN.
//!
//! 1. the Python SDK ≤ 3.3 wrote `langfuse.observation.type=span` on generations: a span from it
//!    that carries generation attributes is a GENERATION;
//! 2. `langfuse.observation.type`, as the SDKs set it;
//! 3. OpenInference's `openinference.span.kind`;
//! 4. OpenTelemetry GenAI's `gen_ai.operation.name`;
//! 5. framework hints: Genkit's subtype, Vercel AI SDK operations (generation-like ones only with
//!    a model), GenAI tool attributes, Flue tool and task spans, LiveKit span names;
//! 6. a span that names a model is a GENERATION.

use serde_json::Value;

use super::Attributes;
use crate::domain::observation::ObservationType;
use ObservationType::*;

/// What the rules see of a span.
pub struct SpanFacts<'a> {
    pub attributes: &'a Attributes,
    pub resource: &'a Attributes,
    pub scope_name: &'a str,
    pub scope_version: &'a str,
    pub span_name: &'a str,
}

/// Langfuse's test for a value that counts: not null, not "", not an empty array or object.
pub fn meaningful(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

/// A rule: an attribute whose value is looked up in a table, or a predicate with its own logic.
enum Rule {
    Lookup(&'static str, &'static [(&'static str, ObservationType)]),
    Custom(fn(&SpanFacts) -> Option<ObservationType>),
}

const RULES: &[Rule] = &[
    Rule::Custom(python_sdk_3_3_generation),
    Rule::Lookup(
        "langfuse.observation.type",
        &[
            ("span", Span),
            ("generation", Generation),
            ("event", Event),
            ("embedding", Embedding),
            ("agent", Agent),
            ("tool", Tool),
            ("chain", Chain),
            ("retriever", Retriever),
            ("guardrail", Guardrail),
            ("evaluator", Evaluator),
        ],
    ),
    Rule::Lookup(
        "openinference.span.kind",
        &[
            ("CHAIN", Chain),
            ("RETRIEVER", Retriever),
            ("LLM", Generation),
            ("EMBEDDING", Embedding),
            ("AGENT", Agent),
            ("TOOL", Tool),
            ("GUARDRAIL", Guardrail),
            ("EVALUATOR", Evaluator),
        ],
    ),
    Rule::Lookup(
        "gen_ai.operation.name",
        &[
            ("chat", Generation),
            ("completion", Generation),
            ("text_completion", Generation),
            ("generate_content", Generation),
            ("generate", Generation),
            ("embeddings", Embedding),
            ("invoke_agent", Agent),
            ("create_agent", Agent),
            ("execute_tool", Tool),
        ],
    ),
    Rule::Lookup(
        "genkit:metadata:subtype",
        &[
            ("background-model", Generation),
            ("model", Generation),
            ("embedder", Embedding),
            ("tool", Tool),
            ("tool.v2", Tool),
            ("retriever", Retriever),
            ("evaluator", Evaluator),
        ],
    ),
    Rule::Custom(vercel_generation_like),
    Rule::Custom(vercel_tool_call),
    Rule::Custom(gen_ai_tool_call),
    Rule::Custom(flue),
    Rule::Custom(livekit),
    Rule::Custom(has_model),
];

pub fn observation_type(facts: &SpanFacts) -> ObservationType {
    RULES
        .iter()
        .find_map(|rule| match rule {
            Rule::Lookup(key, table) => {
                let value = facts.attributes.get(*key)?.as_str()?;
                table.iter().find(|(v, _)| *v == value).map(|(_, t)| *t)
            }
            Rule::Custom(rule) => rule(facts),
        })
        .unwrap_or(Span)
}

fn python_sdk_3_3_generation(f: &SpanFacts) -> Option<ObservationType> {
    let applies = f.attributes.get("langfuse.observation.type")?.as_str() == Some("span")
        && f.scope_name == "langfuse-sdk"
        && f.resource.get("telemetry.sdk.language")?.as_str() == Some("python");
    if !applies {
        return None;
    }
    let mut parts = f.scope_version.split('.').map(|p| p.parse::<u32>().ok());
    if let (Some(Some(major)), Some(Some(minor))) = (parts.next(), parts.next()) {
        if major > 3 || (major == 3 && minor > 3) {
            return None;
        }
    }
    const GENERATION_KEYS: &[&str] = &[
        "langfuse.observation.model.name",
        "langfuse.observation.cost_details",
        "langfuse.observation.usage_details",
        "langfuse.observation.completion_start_time",
        "langfuse.observation.model.parameters",
        "langfuse.observation.prompt.name",
        "langfuse.observation.prompt.version",
    ];
    GENERATION_KEYS
        .iter()
        .any(|k| f.attributes.contains_key(*k))
        .then_some(Generation)
}

const VERCEL_GENERATION_OPERATIONS: &[&str] = &[
    "ai.generateText.doGenerate",
    "ai.streamText.doStream",
    "ai.generateObject.doGenerate",
    "ai.streamObject.doStream",
];
const VERCEL_EMBEDDING_OPERATIONS: &[&str] = &["ai.embedMany.doEmbed", "ai.embed.doEmbed"];

/// The Vercel AI SDK names its operation in `operation.name` (which may carry a function id after
/// the operation, hence a prefix match) and `ai.operationId` (exact).
fn vercel_operation_is(attributes: &Attributes, operations: &[&str]) -> bool {
    let by_name = attributes
        .get("operation.name")
        .and_then(Value::as_str)
        .is_some_and(|name| operations.iter().any(|op| name.starts_with(op)));
    let by_id = attributes
        .get("ai.operationId")
        .and_then(Value::as_str)
        .is_some_and(|id| operations.contains(&id));
    by_name || by_id
}

fn vercel_generation_like(f: &SpanFacts) -> Option<ObservationType> {
    const MODEL_KEYS: &[&str] = &[
        "langfuse.observation.model.name",
        "ai.model.id",
        "gen_ai.request.model",
        "gen_ai.response.model",
    ];
    if !MODEL_KEYS.iter().any(|k| meaningful(f.attributes.get(*k))) {
        return None;
    }
    if vercel_operation_is(f.attributes, VERCEL_GENERATION_OPERATIONS) {
        Some(Generation)
    } else if vercel_operation_is(f.attributes, VERCEL_EMBEDDING_OPERATIONS) {
        Some(Embedding)
    } else {
        None
    }
}

fn vercel_tool_call(f: &SpanFacts) -> Option<ObservationType> {
    let is_ai = ["operation.name", "ai.operationId"].iter().any(|k| {
        f.attributes
            .get(*k)
            .and_then(Value::as_str)
            .is_some_and(|v| v.starts_with("ai."))
    });
    (is_ai && vercel_operation_is(f.attributes, &["ai.toolCall"])).then_some(Tool)
}

fn gen_ai_tool_call(f: &SpanFacts) -> Option<ObservationType> {
    (meaningful(f.attributes.get("gen_ai.tool.name"))
        || meaningful(f.attributes.get("gen_ai.tool.call.id")))
    .then_some(Tool)
}

fn flue(f: &SpanFacts) -> Option<ObservationType> {
    let has = |k: &str| meaningful(f.attributes.get(k));
    if has("flue.tool.name") || has("flue.tool.call_id") {
        Some(Tool)
    } else if has("flue.task.id") || has("flue.task.agent") {
        // A Flue task is a delegated sub-agent run.
        Some(Agent)
    } else {
        None
    }
}

fn livekit(f: &SpanFacts) -> Option<ObservationType> {
    if f.scope_name != "livekit-agents" {
        return None;
    }
    match f.span_name {
        "agent_turn" | "start_agent_activity" => Some(Agent),
        "function_tool" => Some(Tool),
        _ => None,
    }
}

fn has_model(f: &SpanFacts) -> Option<ObservationType> {
    const MODEL_KEYS: &[&str] = &[
        "langfuse.observation.model.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "llm.model_name",
        "model",
    ];
    MODEL_KEYS
        .iter()
        .any(|k| meaningful(f.attributes.get(*k)))
        .then_some(Generation)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn type_of(attributes: Value) -> ObservationType {
        type_in_scope(attributes, "some-library", "")
    }

    fn type_in_scope(attributes: Value, scope_name: &str, span_name: &str) -> ObservationType {
        let Value::Object(attributes) = attributes else {
            panic!()
        };
        let resource = Attributes::new();
        observation_type(&SpanFacts {
            attributes: &attributes,
            resource: &resource,
            scope_name,
            scope_version: "",
            span_name,
        })
    }

    #[test]
    fn rules_apply_in_langfuse_order() {
        // Explicit type beats everything.
        assert_eq!(
            type_of(
                json!({"langfuse.observation.type": "tool", "openinference.span.kind": "LLM", "model": "m"})
            ),
            Tool
        );
        // OpenInference beats gen_ai.operation.name.
        assert_eq!(
            type_of(
                json!({"openinference.span.kind": "RETRIEVER", "gen_ai.operation.name": "chat"})
            ),
            Retriever
        );
        // An unknown value falls through to later rules.
        assert_eq!(
            type_of(
                json!({"openinference.span.kind": "RERANKER", "gen_ai.operation.name": "embeddings"})
            ),
            Embedding
        );
        assert_eq!(
            type_of(json!({"gen_ai.operation.name": "execute_tool"})),
            Tool
        );
        assert_eq!(type_of(json!({"gen_ai.tool.name": "search"})), Tool);
        assert_eq!(type_of(json!({"llm.model_name": "gpt-4o"})), Generation);
        assert_eq!(type_of(json!({"model": ""})), Span);
        assert_eq!(type_of(json!({})), Span);
    }

    #[test]
    fn vercel_operations() {
        assert_eq!(
            type_of(
                json!({"operation.name": "ai.generateText.doGenerate my-fn", "ai.model.id": "gpt-4o"})
            ),
            Generation
        );
        assert_eq!(
            type_of(json!({"ai.operationId": "ai.embed.doEmbed", "ai.model.id": "emb"})),
            Embedding
        );
        // Without a model an outer generateText span is a plain span.
        assert_eq!(
            type_of(
                json!({"operation.name": "ai.generateText", "ai.operationId": "ai.generateText"})
            ),
            Span
        );
        assert_eq!(
            type_of(json!({"operation.name": "ai.toolCall", "ai.toolCall.name": "x"})),
            Tool
        );
    }

    #[test]
    fn framework_hints() {
        assert_eq!(
            type_in_scope(json!({}), "livekit-agents", "agent_turn"),
            Agent
        );
        assert_eq!(type_in_scope(json!({}), "other", "agent_turn"), Span);
        assert_eq!(type_of(json!({"flue.task.id": "t"})), Agent);
        assert_eq!(
            type_of(json!({"genkit:metadata:subtype": "model"})),
            Generation
        );
    }

    #[test]
    fn old_python_sdk_generations_written_as_spans() {
        let attributes =
            json!({"langfuse.observation.type": "span", "langfuse.observation.model.name": "m"});
        let Value::Object(attributes) = attributes else {
            panic!()
        };
        let resource = json!({"telemetry.sdk.language": "python"});
        let Value::Object(resource) = resource else {
            panic!()
        };
        let facts = |version| SpanFacts {
            attributes: &attributes,
            resource: &resource,
            scope_name: "langfuse-sdk",
            scope_version: version,
            span_name: "x",
        };
        assert_eq!(observation_type(&facts("3.3.0")), Generation);
        assert_eq!(observation_type(&facts("3.4.0")), Span);
    }
}
