//! A span's input and output: the first convention in Langfuse's list that yields either wins.
//!
//! Order: Langfuse's own attributes; Genkit, the Vercel AI SDK and Flue (each only for its own
//! instrumentation scope); GenAI span events (semconv 1.37+ operation details, then the older
//! per-message events, then Semantic Kernel's content events); attribute pairs of Google ADK,
//! Logfire, LiveKit, Logfire's `events`, MLflow, OpenLLMetry (`traceloop.entity.*`), OpenInference
//! (`input.value`), Pydantic/Pipecat, Pydantic AI, tool arguments; then flattened message lists
//! (`gen_ai.prompt.N.*`, `gen_ai.completion.N.*`, OpenInference `llm.input_messages.N.*`); last
//! the GenAI `gen_ai.input.messages` / `gen_ai.tool.call.*` attributes.

use serde_json::{json, Map, Value};

use super::generation::{parse_json, text, truthy};
use super::{Attributes, SpanEvent};

/// Input and output of a trace come from Langfuse's trace attributes first, then as an
/// observation's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    Trace,
    Observation,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct InputOutput {
    pub input: Option<Value>,
    pub output: Option<Value>,
}

impl InputOutput {
    fn new(input: Option<Value>, output: Option<Value>) -> Self {
        let keep = |v: Option<Value>| v.filter(|v| !v.is_null());
        InputOutput {
            input: keep(input),
            output: keep(output),
        }
    }

    fn any_truthy(&self) -> bool {
        self.input.as_ref().is_some_and(truthy) || self.output.as_ref().is_some_and(truthy)
    }
}

/// Attributes read as input or output, left out of an observation's `metadata.attributes`.
const INPUT_OUTPUT_KEYS: &[&str] = &[
    "langfuse.trace.input",
    "langfuse.trace.output",
    "langfuse.observation.input",
    "langfuse.observation.output",
    "ai.prompt.messages",
    "ai.prompt",
    "ai.toolCall.args",
    "ai.response.text",
    "ai.result.text",
    "ai.toolCall.result",
    "ai.response.object",
    "ai.result.object",
    "ai.response.toolCalls",
    "ai.result.toolCalls",
    "gcp.vertex.agent.llm_request",
    "gcp.vertex.agent.llm_response",
    "gcp.vertex.agent.tool_call_args",
    "gcp.vertex.agent.tool_response",
    "prompt",
    "all_messages_events",
    "events",
    "lk.input_text",
    "lk.user_transcript",
    "lk.chat_ctx",
    "lk.user_input",
    "lk.function_tool.output",
    "lk.response.text",
    "mlflow.spanInputs",
    "mlflow.spanOutputs",
    "traceloop.entity.input",
    "traceloop.entity.output",
    "input.value",
    "output.value",
    "final_result",
    "pydantic_ai.all_messages",
    "gen_ai.system_instructions",
    "input",
    "output",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "genkit:input",
    "genkit:output",
    "flue.turn.input",
    "flue.turn.output",
    "flue.tool.arguments",
    "flue.tool.result",
    "flue.task.prompt",
    "flue.task.result",
    "flue.operation.result",
    "flue.workflow.payload",
    "flue.workflow.result",
];

/// Prefixes of attributes read as input, output or metadata.
const CONSUMED_PREFIXES: &[&str] = &[
    "gen_ai.prompt",
    "gen_ai.completion",
    "llm.input_messages",
    "llm.output_messages",
    "langfuse.trace.metadata",
    "langfuse.observation.metadata",
    "ai.telemetry.metadata",
];

/// The attributes kept in an observation's metadata: all but those read as input, output or
/// metadata, each as text (non-strings as JSON), as Langfuse stores them.
pub fn remaining_attributes(attributes: &Attributes) -> Map<String, Value> {
    attributes
        .iter()
        .filter(|(k, _)| {
            !INPUT_OUTPUT_KEYS.contains(&k.as_str())
                && !CONSUMED_PREFIXES.iter().any(|p| k.starts_with(p))
        })
        .map(|(k, v)| (k.clone(), Value::String(text(v))))
        .collect()
}

/// Attribute-pair conventions, tried in order: (input key, output key); the first with a truthy
/// value on either side wins.
const ATTRIBUTE_PAIRS_AFTER_LIVEKIT: &[(&str, &str)] = &[
    ("mlflow.spanInputs", "mlflow.spanOutputs"),
    ("traceloop.entity.input", "traceloop.entity.output"),
    ("input.value", "output.value"),
    ("input", "output"),
];

pub fn input_output(
    attributes: &Attributes,
    events: &[SpanEvent],
    scope_name: &str,
    domain: Domain,
) -> InputOutput {
    let get = |k: &str| attributes.get(k).cloned();
    let get_truthy = |k: &str| attributes.get(k).filter(|v| truthy(v)).cloned();

    // Langfuse: present at all (even empty) counts.
    let pick = |trace_key: &str, observation_key: &str| {
        if domain == Domain::Trace {
            if let Some(v) = get_truthy(trace_key) {
                return Some(v);
            }
        }
        get(observation_key)
    };
    let langfuse = InputOutput::new(
        pick("langfuse.trace.input", "langfuse.observation.input"),
        pick("langfuse.trace.output", "langfuse.observation.output"),
    );
    if langfuse.input.is_some() || langfuse.output.is_some() {
        return langfuse;
    }

    if scope_name == "genkit-tracer" {
        let input = get("genkit:input").map(|v| parse_json(&v).unwrap_or(v));
        let output = get("genkit:output").map(|v| parse_json(&v).unwrap_or(v));
        return InputOutput::new(
            input.map(|i| i.get("messages").cloned().unwrap_or(i)),
            output.map(|o| o.get("message").cloned().unwrap_or(o)),
        );
    }

    if scope_name == "ai" {
        return vercel(attributes);
    }

    if scope_name == "@flue/opentelemetry" {
        let first = |keys: &[&str]| keys.iter().find_map(|k| get(k).filter(|v| !v.is_null()));
        let input = first(&[
            "flue.turn.input",
            "flue.tool.arguments",
            "flue.task.prompt",
            "flue.workflow.payload",
        ]);
        let output = first(&[
            "flue.turn.output",
            "flue.tool.result",
            "flue.task.result",
            "flue.operation.result",
            "flue.workflow.result",
        ]);
        if input.is_some() || output.is_some() {
            let parsed = |v: Option<Value>| v.map(|v| parse_json(&v).unwrap_or(v));
            return InputOutput::new(parsed(input), parsed(output));
        }
    }

    if let Some(found) = from_events(events, scope_name) {
        return found;
    }

    // Google ADK: an LLM call's request and response, or (left as "{}" then) a tool call's.
    let empty_or_missing = |v: &Option<Value>| match v {
        None => true,
        Some(v) => !truthy(v) || v.as_str() == Some("{}"),
    };
    let mut input = get("gcp.vertex.agent.llm_request");
    let mut output = get("gcp.vertex.agent.llm_response");
    if empty_or_missing(&input) {
        input = get("gcp.vertex.agent.tool_call_args");
    }
    if empty_or_missing(&output) {
        output = get("gcp.vertex.agent.tool_response");
    }
    let adk = InputOutput::new(input, output);
    if adk.any_truthy() {
        return adk;
    }

    let logfire = InputOutput::new(get("prompt"), get("all_messages_events"));
    if logfire.any_truthy() {
        return logfire;
    }

    let livekit = InputOutput::new(
        ["lk.input_text", "lk.user_transcript", "lk.chat_ctx"]
            .iter()
            .find_map(|k| get(k).filter(|v| !v.is_null())),
        get_truthy("lk.function_tool.output").or_else(|| get("lk.response.text")),
    );
    if livekit.any_truthy() {
        return livekit;
    }

    if let Some(found) = logfire_events(attributes.get("events")) {
        return found;
    }

    for (input_key, output_key) in ATTRIBUTE_PAIRS_AFTER_LIVEKIT {
        let pair = InputOutput::new(get(input_key), get(output_key));
        if pair.any_truthy() {
            return pair;
        }
    }

    if scope_name == "pydantic-ai" {
        let mut input = get("pydantic_ai.all_messages");
        if let (Some(i), Some(system)) = (&input, get_truthy("gen_ai.system_instructions")) {
            if truthy(i) {
                input = Some(prepend_system_instructions(i, &system));
            }
        }
        let pydantic = InputOutput::new(input, get("final_result"));
        if pydantic.any_truthy() {
            return pydantic;
        }
    }

    let tools = InputOutput::new(get("tool_arguments"), get("tool_response"));
    if tools.any_truthy() {
        return tools;
    }

    for (input_prefix, output_prefix) in [
        ("gen_ai.prompt", "gen_ai.completion"),
        ("llm.input_messages", "llm.output_messages"),
    ] {
        let has = |p: &str| attributes.keys().any(|k| k.starts_with(p));
        if has(input_prefix) || has(output_prefix) {
            return InputOutput::new(
                nest_flattened(attributes, input_prefix),
                nest_flattened(attributes, output_prefix),
            );
        }
    }

    gen_ai_messages(attributes).unwrap_or_default()
}

/// OpenTelemetry GenAI: `gen_ai.input.messages` (with `gen_ai.system_instructions` put first as a
/// system message) and `gen_ai.output.messages`; else a tool call's arguments and result.
fn gen_ai_messages(attributes: &Attributes) -> Option<InputOutput> {
    let get = |k: &str| attributes.get(k).cloned();
    let mut input = get("gen_ai.input.messages");
    if let (Some(i), Some(system)) = (&input, get("gen_ai.system_instructions")) {
        if truthy(i) && truthy(&system) {
            input = Some(prepend_system_instructions(i, &system));
        }
    }
    let messages = InputOutput::new(input, get("gen_ai.output.messages"));
    if messages.any_truthy() {
        return Some(messages);
    }
    let tool = InputOutput::new(
        get("gen_ai.tool.call.arguments"),
        get("gen_ai.tool.call.result"),
    );
    tool.any_truthy().then_some(tool)
}

/// The Vercel AI SDK: the prompt (messages, prompt or tool-call arguments) and the response (text,
/// with its tool calls as one assistant message when there are both; else object, tool calls or
/// tool result), falling back to GenAI messages.
fn vercel(attributes: &Attributes) -> InputOutput {
    let get = |k: &str| attributes.get(k).cloned();
    let first = |keys: &[&str]| keys.iter().find_map(|k| get(k));
    let mut input = first(&["ai.prompt.messages", "ai.prompt", "ai.toolCall.args"]);
    let mut output = match (get("ai.response.text"), get("ai.response.toolCalls")) {
        (Some(text), Some(tool_calls)) => Some(Value::String(
            json!({"role": "assistant", "content": text, "tool_calls": tool_calls}).to_string(),
        )),
        (Some(text), None) if truthy(&text) => Some(text),
        _ => first(&[
            "ai.result.text",
            "ai.toolCall.result",
            "ai.response.object",
            "ai.result.object",
            "ai.response.toolCalls",
            "ai.result.toolCalls",
        ]),
    };
    if let Some(gen_ai) = gen_ai_messages(attributes) {
        input = input.or(gen_ai.input);
        output = output.or(gen_ai.output);
    }
    InputOutput::new(input, output)
}

fn event_attributes(event: &SpanEvent) -> Map<String, Value> {
    event.attributes.clone()
}

/// GenAI span events: the 1.37+ `gen_ai.client.inference.operation.details` event; the earlier
/// `gen_ai.{system,user,assistant,tool}.message` (input, each with its role) and `gen_ai.choice`
/// (output) events; Semantic Kernel's `gen_ai.content.prompt` / `gen_ai.content.completion`.
fn from_events(events: &[SpanEvent], scope_name: &str) -> Option<InputOutput> {
    for event in events
        .iter()
        .filter(|e| e.name == "gen_ai.client.inference.operation.details")
    {
        if let Some(found) = gen_ai_messages(&event.attributes) {
            return Some(found);
        }
    }

    let inputs: Vec<Value> = events
        .iter()
        .filter(|e| {
            matches!(
                e.name.as_str(),
                "gen_ai.system.message"
                    | "gen_ai.user.message"
                    | "gen_ai.assistant.message"
                    | "gen_ai.tool.message"
            )
        })
        .map(|e| {
            let role = e
                .name
                .trim_start_matches("gen_ai.")
                .trim_end_matches(".message");
            let mut message = Map::new();
            message.insert("role".into(), Value::String(role.into()));
            message.extend(event_attributes(e));
            Value::Object(message)
        })
        .collect();
    let mut outputs: Vec<Value> = events
        .iter()
        .filter(|e| e.name == "gen_ai.choice")
        .map(|e| Value::Object(event_attributes(e)))
        .collect();
    if !inputs.is_empty() || !outputs.is_empty() {
        let input = (!inputs.is_empty()).then_some(Value::Array(inputs));
        let output = match outputs.len() {
            0 => None,
            1 => outputs.pop(),
            _ => Some(Value::Array(outputs)),
        };
        return Some(InputOutput::new(input, output));
    }

    let prompt = events.iter().find(|e| e.name == "gen_ai.content.prompt");
    let completion = events
        .iter()
        .find(|e| e.name == "gen_ai.content.completion");
    if prompt.is_some() || completion.is_some() {
        let input = prompt.map(event_attributes).unwrap_or_default();
        let output = completion.map(event_attributes).unwrap_or_default();
        // The event attributes are themselves read like span attributes (`gen_ai.prompt`, …).
        let inner_input = input_output(&input, &[], scope_name, Domain::Observation).input;
        let inner_output = input_output(&output, &[], scope_name, Domain::Observation).output;
        return Some(InputOutput::new(
            inner_input.filter(truthy).or(Some(Value::Object(input))),
            inner_output.filter(truthy).or(Some(Value::Object(output))),
        ));
    }
    None
}

/// Logfire's `events` attribute: one JSON list of GenAI events; the `gen_ai.choice` one is the
/// output, the others the input.
fn logfire_events(value: Option<&Value>) -> Option<InputOutput> {
    let events = match value? {
        Value::String(s) => serde_json::from_str::<Value>(s).ok()?,
        v @ Value::Array(_) => v.clone(),
        _ => return None,
    };
    let events = events.as_array()?;
    let is_choice =
        |e: &Value| e.get("event.name").and_then(Value::as_str) == Some("gen_ai.choice");
    let choice = events.iter().find(|e| is_choice(e)).cloned();
    let inputs: Vec<Value> = events.iter().filter(|e| !is_choice(e)).cloned().collect();
    if choice.is_none() && inputs.is_empty() {
        return None;
    }
    Some(InputOutput::new(
        (!inputs.is_empty()).then_some(Value::Array(inputs)),
        choice,
    ))
}

/// Puts `gen_ai.system_instructions` first as a system message, unless the messages already have
/// one. Messages given as JSON text stay JSON text.
fn prepend_system_instructions(input: &Value, system: &Value) -> Value {
    let messages = match input {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v) => v,
            Err(_) => return input.clone(),
        },
        other => other.clone(),
    };
    let Some(messages) = messages.as_array() else {
        return input.clone();
    };
    if messages
        .iter()
        .any(|m| m.get("role").and_then(Value::as_str) == Some("system"))
    {
        return input.clone();
    }
    let parsed = match system {
        Value::String(s) => serde_json::from_str::<Value>(s).unwrap_or_else(|_| system.clone()),
        other => other.clone(),
    };
    let content = match &parsed {
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p.get("content").filter(|c| truthy(c)) {
                Some(c) => text(c),
                None => text(p),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        other => text(other),
    };
    let mut merged = vec![json!({"role": "system", "content": content})];
    merged.extend(messages.iter().cloned());
    match input {
        Value::String(_) => Value::String(Value::Array(merged).to_string()),
        _ => Value::Array(merged),
    }
}

/// More array slots than this in one rebuilt message list are dropped: an attribute named
/// `gen_ai.prompt.99999999.content` must not allocate a huge array.
const MAX_ARRAY_SLOTS: usize = 10_001;

/// Rebuilds a message list from flattened attributes: `gen_ai.prompt.0.role` and
/// `gen_ai.prompt.0.content` become `[{"role": …, "content": …}]`; numeric path segments are array
/// indices, others object keys. An attribute named exactly `prefix` is taken as it is. An empty
/// result is `None`.
fn nest_flattened(attributes: &Attributes, prefix: &str) -> Option<Value> {
    if let Some(whole) = attributes.get(prefix).filter(|v| truthy(v)) {
        return Some(whole.clone());
    }
    let dotted = format!("{prefix}.");
    let entries: Vec<(Vec<&str>, &Value)> = attributes
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(&dotted)?.split('.').collect(), v)))
        .collect();
    let is_index = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let use_array = entries.iter().any(|(p, _)| p.len() > 1 && is_index(p[0]));
    let mut root = if use_array {
        Value::Array(Vec::new())
    } else {
        Value::Object(Map::new())
    };
    let mut slots = 0usize;
    for (path, value) in entries {
        let wanted: usize = path
            .iter()
            .filter(|s| is_index(s))
            .map(|s| s.parse::<usize>().unwrap_or(usize::MAX).saturating_add(1))
            .fold(0usize, |a, b| a.saturating_add(b));
        if slots.saturating_add(wanted) > MAX_ARRAY_SLOTS {
            continue;
        }
        slots += wanted;
        if use_array && !is_index(path[0]) {
            continue;
        }
        set_path(&mut root, &path, value.clone());
    }
    let empty = match &root {
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    (!empty).then_some(root)
}

fn set_path(container: &mut Value, path: &[&str], value: Value) {
    let Some((key, rest)) = path.split_first() else {
        return;
    };
    let next_is_index = rest
        .first()
        .is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    let fresh = || {
        if next_is_index {
            Value::Array(Vec::new())
        } else {
            Value::Object(Map::new())
        }
    };
    let slot = match container {
        Value::Array(items) => {
            let Ok(index) = key.parse::<usize>() else {
                return;
            };
            if items.len() <= index {
                items.resize(index + 1, Value::Null);
            }
            &mut items[index]
        }
        Value::Object(map) => map.entry(key.to_string()).or_insert(Value::Null),
        _ => return,
    };
    if rest.is_empty() {
        *slot = value;
        return;
    }
    if !(slot.is_array() || slot.is_object()) {
        *slot = fresh();
    }
    set_path(slot, rest, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(v: Value) -> Attributes {
        match v {
            Value::Object(o) => o,
            _ => panic!(),
        }
    }

    fn io(v: Value, scope: &str) -> (Option<Value>, Option<Value>) {
        let r = input_output(&attrs(v), &[], scope, Domain::Observation);
        (r.input, r.output)
    }

    #[test]
    fn langfuse_attributes_come_first() {
        assert_eq!(
            io(
                json!({"langfuse.observation.input": "{\"q\":1}", "input.value": "x"}),
                "s"
            ),
            (Some(json!("{\"q\":1}")), None)
        );
        let a = attrs(json!({"langfuse.trace.input": "t", "langfuse.observation.input": "o"}));
        assert_eq!(
            input_output(&a, &[], "s", Domain::Trace).input,
            Some(json!("t"))
        );
    }

    #[test]
    fn flattened_messages_are_rebuilt() {
        let (input, output) = io(
            json!({"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "hi",
                   "gen_ai.prompt.1.role": "assistant", "gen_ai.prompt.1.content": "yo",
                   "gen_ai.completion.0.content": "ok",
                   "gen_ai.completion.0.tool_calls.0.name": "search"}),
            "s",
        );
        assert_eq!(
            input,
            Some(
                json!([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}])
            )
        );
        assert_eq!(
            output,
            Some(json!([{"content": "ok", "tool_calls": [{"name": "search"}]}]))
        );
        let (input, output) = io(
            json!({"llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "q"}),
            "s",
        );
        assert_eq!(
            input,
            Some(json!([{"message": {"role": "user", "content": "q"}}]))
        );
        assert_eq!(output, None);
        // A huge index is dropped rather than allocated.
        let (input, _) = io(json!({"gen_ai.prompt.99999999.content": "x"}), "s");
        assert_eq!(input, None);
    }

    #[test]
    fn gen_ai_messages_get_the_system_instructions_first() {
        let (input, output) = io(
            json!({"gen_ai.input.messages": "[{\"role\":\"user\",\"content\":\"hi\"}]",
                   "gen_ai.system_instructions": "[{\"type\":\"text\",\"content\":\"be brief\"}]",
                   "gen_ai.output.messages": "[{\"role\":\"assistant\"}]"}),
            "s",
        );
        assert_eq!(
            input,
            Some(json!(
                "[{\"content\":\"be brief\",\"role\":\"system\"},{\"content\":\"hi\",\"role\":\"user\"}]"
            ))
        );
        assert_eq!(output, Some(json!("[{\"role\":\"assistant\"}]")));
    }

    #[test]
    fn events_carry_messages() {
        let event = |name: &str, v: Value| SpanEvent {
            name: name.into(),
            time_unix_nano: 0,
            attributes: attrs(v),
        };
        let events = vec![
            event("gen_ai.user.message", json!({"content": "hi"})),
            event("gen_ai.choice", json!({"index": 0, "message": "hello"})),
        ];
        let r = input_output(&Attributes::new(), &events, "s", Domain::Observation);
        assert_eq!(r.input, Some(json!([{"role": "user", "content": "hi"}])));
        assert_eq!(r.output, Some(json!({"index": 0, "message": "hello"})));
    }

    #[test]
    fn vercel_response_with_tool_calls_is_one_message() {
        let (input, output) = io(
            json!({"ai.prompt.messages": "[]", "ai.response.text": "t", "ai.response.toolCalls": "[1]"}),
            "ai",
        );
        assert_eq!(input, Some(json!("[]")));
        assert_eq!(
            output,
            Some(json!(
                "{\"content\":\"t\",\"role\":\"assistant\",\"tool_calls\":\"[1]\"}"
            ))
        );
    }

    #[test]
    fn openinference_and_traceloop_pairs() {
        assert_eq!(
            io(json!({"input.value": "q", "output.value": "a"}), "s"),
            (Some(json!("q")), Some(json!("a")))
        );
        assert_eq!(
            io(
                json!({"traceloop.entity.input": "i", "input.value": "q"}),
                "s"
            ),
            (Some(json!("i")), None)
        );
    }

    #[test]
    fn remaining_attributes_leave_out_what_was_read() {
        let rest = remaining_attributes(&attrs(json!({
            "input.value": "q", "gen_ai.prompt.0.content": "x", "langfuse.observation.metadata.k": "v",
            "gen_ai.request.model": "m", "n": 3,
        })));
        assert_eq!(
            Value::Object(rest),
            json!({"gen_ai.request.model": "m", "n": "3"})
        );
    }
}
