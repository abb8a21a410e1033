//! Spans → batch-ingestion envelopes, with Langfuse's rules.
//!
//! Each span becomes one observation event (`<type>-create`, the type from `observation_type`)
//! with the span id as observation id and the trace id as trace id. The trace gets:
//! - from a root span (no parent, or `langfuse.internal.as_root`): a full `trace-create` that
//!   sets the trace's name, timestamp, input and output and the rest;
//! - from any other span that carries trace attributes (`langfuse.trace.*`, `user.id`,
//!   `session.id`, …): a `trace-create` with only those, never the name or timestamp;
//! - else, once per trace and request when nothing above did: a bare `trace-create` that only
//!   makes sure the trace exists.
//!
//! Envelope ids are derived from the trace and span ids, and envelope timestamps from the span's
//! own times (trace events: its start; the observation: its end), so an export retried after a
//! timeout produces the same envelopes and the merge counts them once.
//!
//! Every envelope is checked with the batch API's own parser (`check_envelope`, which refuses
//! exactly what `parse_envelope` refuses) before it is handed on; a span any of whose envelopes
//! would be refused is rejected as a whole, with the parser's reason.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

use super::generation::{
    cost_details, is_ai_sdk_agent_span, model_name, model_parameters, parse_json, text, truthy,
    usage_details,
};
use super::io::{input_output, remaining_attributes, Domain};
use super::observation_type::{meaningful, observation_type, SpanFacts};
use super::{Attributes, Export, ScopeSpans, Span, STATUS_CODE_ERROR};
use crate::domain::observation::ObservationType;
use crate::domain::time::{iso, parse_time};
use crate::ingest::event::{check_envelope, Checked, EventError};

/// Which span an envelope or a rejection belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpanRef {
    pub trace_id: String,
    pub span_id: String,
}

/// What an export came to.
#[derive(Debug, Default)]
pub struct MappedExport {
    /// Valid envelopes, ready for the pipeline, each with what `check_envelope` said of it:
    /// the pipeline takes them checked.
    pub envelopes: Vec<(Value, Checked)>,
    /// The span each envelope (by envelope id) came from, to count rejected spans later.
    pub span_of: HashMap<String, SpanRef>,
    /// Spans refused here, with the reason.
    pub rejected: Vec<(SpanRef, String)>,
    pub span_count: usize,
}

pub fn map_export(export: &Export, received_at: DateTime<Utc>) -> MappedExport {
    let mut out = MappedExport {
        span_count: export.span_count(),
        ..Default::default()
    };
    // Traces that got a full or trace-attribute event in this request, and the first accepted
    // span of every trace, which carries the bare event of a trace that got neither.
    let mut traces_with_event: HashSet<String> = HashSet::new();
    let mut first_span_of_trace: Vec<(String, String, Value)> = Vec::new();
    let mut seen_traces: HashSet<String> = HashSet::new();

    for resource in &export.resources {
        for scope in &resource.scopes {
            for span in &scope.spans {
                let ctx = SpanContext::new(span, scope, &resource.attributes, received_at);
                let span_ref = SpanRef {
                    trace_id: span.trace_id.clone(),
                    span_id: span.span_id.clone(),
                };
                let mut envelopes = vec![ctx.observation_envelope()];
                if let Some(trace) = ctx.trace_envelope() {
                    envelopes.push(trace);
                }
                let parsed: Result<Vec<Checked>, EventError> =
                    envelopes.iter().map(check_envelope).collect();
                let parsed = match parsed {
                    Ok(parsed) => parsed,
                    Err(reason) => {
                        out.rejected.push((span_ref, reason.message));
                        continue;
                    }
                };
                if envelopes.len() > 1 {
                    traces_with_event.insert(span.trace_id.clone());
                }
                if seen_traces.insert(span.trace_id.clone()) {
                    first_span_of_trace.push((
                        span.trace_id.clone(),
                        span.span_id.clone(),
                        ctx.bare_trace_envelope(),
                    ));
                }
                for (envelope, parsed) in envelopes.into_iter().zip(parsed) {
                    out.span_of.insert(envelope_id(&envelope), span_ref.clone());
                    out.envelopes.push((envelope, parsed));
                }
            }
        }
    }
    for (trace_id, span_id, envelope) in first_span_of_trace {
        if !traces_with_event.contains(&trace_id) {
            let span_ref = SpanRef { trace_id, span_id };
            match check_envelope(&envelope) {
                Ok(parsed) => {
                    out.span_of.insert(envelope_id(&envelope), span_ref);
                    out.envelopes.push((envelope, parsed));
                }
                Err(reason) => out.rejected.push((span_ref, reason.message)),
            }
        }
    }
    out
}

fn envelope_id(envelope: &Value) -> String {
    envelope["id"].as_str().unwrap_or_default().to_string()
}

/// Langfuse's vocabulary for levels set by other senders (OpenTelemetry severities, Python
/// logging, loguru, console); anything else counts as not set.
const LEVEL_ALIASES: &[(&str, &str)] = &[
    ("DEBUG", "DEBUG"),
    ("TRACE", "DEBUG"),
    ("VERBOSE", "DEBUG"),
    ("DEFAULT", "DEFAULT"),
    ("INFO", "DEFAULT"),
    ("LOG", "DEFAULT"),
    ("NOTICE", "DEFAULT"),
    ("OK", "DEFAULT"),
    ("SUCCESS", "DEFAULT"),
    ("WARNING", "WARNING"),
    ("WARN", "WARNING"),
    ("ERROR", "ERROR"),
    ("FATAL", "ERROR"),
    ("CRITICAL", "ERROR"),
];

/// LiveKit's internal spans, shown at DEBUG level.
const LIVEKIT_DEBUG_SPANS: &[&str] = &[
    "user_speaking",
    "eou_detection",
    "llm_request_run",
    "tts_node",
    "tts_request",
    "tts_request_run",
    "tts_stream_adapter",
    "agent_speaking",
    "drain_agent_activity",
    "on_exit",
    "on_enter",
    "llm_fallback_adapter",
    "tts_fallback_adapter",
    "start_agent_activity",
];

/// Attributes whose presence (with a truthy value) makes a non-root span update its trace.
const TRACE_UPDATE_KEYS: &[&str] = &[
    "langfuse.trace.name",
    "langfuse.trace.input",
    "langfuse.trace.output",
    "langfuse.trace.metadata",
    "user.id",
    "session.id",
    "langfuse.trace.public",
    "langfuse.trace.tags",
    "langfuse.user.id",
    "langfuse.session.id",
    // OpenAI and LangChain integrations.
    "langfuse.observation.metadata.langfuse_user_id",
    "langfuse.observation.metadata.langfuse_session_id",
    "langfuse.observation.metadata.langfuse_tags",
    "langfuse.trace.metadata.langfuse_session_id",
    "langfuse.trace.metadata.langfuse_user_id",
    "langfuse.trace.metadata.langfuse_tags",
    // Vercel AI SDK.
    "ai.telemetry.metadata.sessionId",
    "ai.telemetry.metadata.userId",
    "ai.telemetry.metadata.tags",
    // LlamaIndex.
    "tag.tags",
];

/// First truthy value wins, in each list.
const USER_ID_KEYS: &[&str] = &[
    "langfuse.user.id",
    "user.id",
    "langfuse.observation.metadata.langfuse_user_id",
    "langfuse.trace.metadata.langfuse_user_id",
    "ai.telemetry.metadata.userId",
];
const SESSION_ID_KEYS: &[&str] = &[
    "langfuse.session.id",
    "session.id",
    "gen_ai.conversation.id",
    "langfuse.observation.metadata.langfuse_session_id",
    "langfuse.trace.metadata.langfuse_session_id",
    "ai.telemetry.metadata.sessionId",
];
const TAGS_KEYS: &[&str] = &[
    "langfuse.trace.tags",
    "langfuse.tags",
    "langfuse.observation.metadata.langfuse_tags",
    "langfuse.trace.metadata.langfuse_tags",
    "ai.telemetry.metadata.tags",
    "tag.tags",
];
/// Span attributes first, then the resource's, for each key in turn.
const ENVIRONMENT_KEYS: &[&str] = &[
    "langfuse.environment",
    "deployment.environment.name",
    "deployment.environment",
];
/// Metadata prefixes beside the domain's own (`langfuse.trace.metadata` or
/// `langfuse.observation.metadata`); the listed Vercel keys are fields of their own.
const SHARED_METADATA_PREFIXES: &[&str] = &["langfuse.metadata", "ai.telemetry.metadata"];
const METADATA_EXCLUDED_KEYS: &[&str] = &[
    "ai.telemetry.metadata.userId",
    "ai.telemetry.metadata.sessionId",
    "ai.telemetry.metadata.tags",
    "ai.telemetry.metadata.langfusePrompt",
];

/// The experiment attributes kept as text, and their field in the envelope's `experiment`.
const EXPERIMENT_TEXT_FIELDS: &[(&str, &str)] = &[
    ("langfuse.experiment.id", "id"),
    ("langfuse.experiment.name", "name"),
    ("langfuse.experiment.description", "description"),
    ("langfuse.experiment.dataset.id", "datasetId"),
    ("langfuse.experiment.item.id", "itemId"),
    (
        "langfuse.experiment.item.root_observation_id",
        "itemRootObservationId",
    ),
    (
        "langfuse.experiment.item.expected_output",
        "itemExpectedOutput",
    ),
];
const EXPERIMENT_ITEM_VERSION: &str = "langfuse.experiment.item.version";
const EXPERIMENT_METADATA: &str = "langfuse.experiment.metadata";
const EXPERIMENT_ITEM_METADATA: &str = "langfuse.experiment.item.metadata";

/// The JSON object in the attribute `prefix` (an array's elements under their index, another
/// value under `metadata`), with every `<prefix>.<key>` attribute over it.
fn prefixed_metadata(attributes: &Attributes, prefix: &str) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(top) = attributes.get(prefix).filter(|v| truthy(v)) {
        match parse_json(top) {
            Some(Value::Object(o)) => out.extend(o),
            Some(Value::Array(items)) => out.extend(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (i.to_string(), v)),
            ),
            Some(Value::Null) => {}
            _ => {
                out.insert("metadata".into(), top.clone());
            }
        }
    }
    for (key, value) in attributes {
        if let Some(name) = key
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('.'))
            .filter(|n| !n.is_empty())
        {
            out.insert(name.to_string(), value.clone());
        }
    }
    out
}

fn first_truthy_text(attributes: &Attributes, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| attributes.get(*k).filter(|v| truthy(v)).map(text))
}

fn from_nanos(nanos: u64) -> Option<DateTime<Utc>> {
    if nanos == 0 {
        return None;
    }
    // Langfuse keeps millisecond precision, as its storage does.
    Utc.timestamp_millis_opt((nanos / 1_000_000) as i64)
        .single()
}

/// Everything one span's envelopes are built from.
struct SpanContext<'a> {
    span: &'a Span,
    scope: &'a ScopeSpans,
    resource: &'a Attributes,
    attributes: &'a Attributes,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    is_root: bool,
    is_langfuse_sdk: bool,
}

impl<'a> SpanContext<'a> {
    fn new(
        span: &'a Span,
        scope: &'a ScopeSpans,
        resource: &'a Attributes,
        received_at: DateTime<Utc>,
    ) -> Self {
        let start = from_nanos(span.start_time_unix_nano);
        let end = from_nanos(span.end_time_unix_nano);
        let as_root = span
            .attributes
            .get("langfuse.internal.as_root")
            .is_some_and(|v| text(v) == "true");
        SpanContext {
            span,
            scope,
            resource,
            attributes: &span.attributes,
            start: start.or(end).unwrap_or(received_at),
            end: end.or(start).unwrap_or(received_at),
            is_root: span.parent_span_id.is_none() || as_root,
            is_langfuse_sdk: scope.name.starts_with("langfuse-sdk"),
        }
    }

    fn id(&self, kind: &str) -> String {
        format!("otel-{}-{}-{kind}", self.span.trace_id, self.span.span_id)
    }

    /// The observation's name: a tool's name, Genkit's, Logfire's message, a Vercel tool call or
    /// operation (with its function id), else the span's name.
    fn name(&self) -> String {
        let a = self.attributes;
        if let Some(tool) = a.get("gen_ai.tool.name").filter(|v| truthy(v)) {
            return text(tool);
        }
        if let Some(genkit) = a.get("genkit:name") {
            return text(genkit);
        }
        if let Some(msg) = a.get("logfire.msg").filter(|v| truthy(v)) {
            return text(msg);
        }
        if let Some(tool) = a.get("ai.toolCall.name") {
            return text(tool);
        }
        if let Some(operation) = a.get("ai.operationId") {
            let prefix = a
                .get("ai.telemetry.functionId")
                .filter(|v| truthy(v))
                .map(|f| format!("{}:", text(f)))
                .unwrap_or_default();
            return format!("{prefix}{}", text(operation));
        }
        self.span.name.clone()
    }

    fn environment(&self) -> Option<String> {
        ENVIRONMENT_KEYS.iter().find_map(|k| {
            self.attributes
                .get(*k)
                .filter(|v| truthy(v))
                .or_else(|| self.resource.get(*k).filter(|v| truthy(v)))
                .map(text)
        })
    }

    fn version(&self) -> Option<String> {
        self.attributes
            .get("langfuse.version")
            .or_else(|| self.resource.get("service.version"))
            .filter(|v| !v.is_null())
            .map(text)
    }

    fn release(&self) -> Option<String> {
        self.attributes
            .get("langfuse.release")
            .or_else(|| self.resource.get("langfuse.release"))
            .filter(|v| !v.is_null())
            .map(text)
    }

    fn has_trace_updates(&self) -> bool {
        TRACE_UPDATE_KEYS
            .iter()
            .any(|k| self.attributes.get(*k).is_some_and(truthy))
            || self
                .attributes
                .keys()
                .any(|k| k.starts_with("langfuse.trace.metadata"))
    }

    fn tags(&self) -> Vec<String> {
        let Some(value) = TAGS_KEYS
            .iter()
            .find_map(|k| self.attributes.get(*k).filter(|v| truthy(v)))
        else {
            return Vec::new();
        };
        match value {
            Value::Array(items) => items.iter().map(text).collect(),
            Value::String(s) => {
                if s.trim_start().starts_with('[') {
                    if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(s) {
                        return items.iter().map(text).collect();
                    }
                }
                if s.contains(',') {
                    s.split(',').map(|t| t.trim().to_string()).collect()
                } else {
                    vec![s.clone()]
                }
            }
            _ => Vec::new(),
        }
    }

    fn public(&self) -> Option<bool> {
        let value = self
            .attributes
            .get("langfuse.trace.public")
            .or_else(|| self.attributes.get("langfuse.public"))
            .filter(|v| !v.is_null())?;
        Some(value == &Value::Bool(true) || value.as_str() == Some("true"))
    }

    fn level(&self) -> &'static str {
        let explicit = self
            .attributes
            .get("langfuse.observation.level")
            .and_then(Value::as_str)
            .map(|l| l.trim().to_ascii_uppercase())
            .and_then(|l| {
                LEVEL_ALIASES
                    .iter()
                    .find(|(alias, _)| *alias == l)
                    .map(|(_, level)| *level)
            });
        if let Some(level) = explicit {
            level
        } else if self.span.status.code == STATUS_CODE_ERROR {
            "ERROR"
        } else if self.scope.name == "livekit-agents"
            && LIVEKIT_DEBUG_SPANS.contains(&self.span.name.as_str())
        {
            "DEBUG"
        } else {
            "DEFAULT"
        }
    }

    fn status_message(&self) -> Option<String> {
        self.attributes
            .get("langfuse.observation.status_message")
            .filter(|v| !v.is_null())
            .map(text)
            .or_else(|| Some(self.span.status.message.clone()).filter(|m| !m.is_empty()))
    }

    /// Metadata from Langfuse's attributes for one domain: the JSON object in
    /// `langfuse.<domain>.metadata` (or `langfuse.metadata`), then every
    /// `langfuse.<domain>.metadata.<key>`, `langfuse.metadata.<key>` and
    /// `ai.telemetry.metadata.<key>` under its key: written over what `out` holds, into it (the
    /// same as merging a map of its own into `out`, without building that map first).
    fn metadata_into(out: &mut Map<String, Value>, attributes: &Attributes, domain: Domain) {
        let prefix = match domain {
            Domain::Trace => "langfuse.trace.metadata",
            Domain::Observation => "langfuse.observation.metadata",
        };
        let top = attributes
            .get(prefix)
            .filter(|v| truthy(v))
            .or_else(|| attributes.get("langfuse.metadata"));
        match top.and_then(parse_json) {
            Some(Value::Object(o)) => out.extend(o),
            Some(Value::Array(items)) => out.extend(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (i.to_string(), v)),
            ),
            _ => {}
        }
        for (key, value) in attributes {
            if METADATA_EXCLUDED_KEYS.contains(&key.as_str()) {
                continue;
            }
            for p in std::iter::once(prefix).chain(SHARED_METADATA_PREFIXES.iter().copied()) {
                if let Some(name) = key
                    .strip_prefix(p)
                    .and_then(|rest| rest.strip_prefix('.'))
                    .filter(|n| !n.is_empty())
                {
                    out.insert(name.to_string(), value.clone());
                }
            }
        }
    }

    fn scope_json(&self) -> Value {
        let mut scope = Map::new();
        scope.insert("name".into(), Value::String(self.scope.name.clone()));
        if !self.scope.version.is_empty() {
            scope.insert("version".into(), Value::String(self.scope.version.clone()));
        }
        scope.insert(
            "attributes".into(),
            Value::Object(self.scope.attributes.clone()),
        );
        Value::Object(scope)
    }

    fn observation_type(&self) -> ObservationType {
        observation_type(&SpanFacts {
            attributes: self.attributes,
            resource: self.resource,
            scope_name: &self.scope.name,
            scope_version: &self.scope.version,
            span_name: &self.span.name,
        })
    }

    fn prompt(&self) -> (Option<Value>, Option<Value>) {
        let vercel = self
            .attributes
            .get("ai.telemetry.metadata.langfusePrompt")
            .and_then(parse_json);
        let pick = |langfuse_key: &str, legacy_key: &str, vercel_key: &str| {
            self.attributes
                .get(langfuse_key)
                .or_else(|| self.attributes.get(legacy_key))
                .cloned()
                .or_else(|| vercel.as_ref().and_then(|p| p.get(vercel_key).cloned()))
                .filter(|v| !v.is_null())
        };
        let name = pick(
            "langfuse.observation.prompt.name",
            "langfuse.prompt.name",
            "name",
        )
        .map(|v| Value::String(text(&v)));
        // Prompt versions are small integers; anything else links no prompt version.
        let version = pick(
            "langfuse.observation.prompt.version",
            "langfuse.prompt.version",
            "version",
        )
        .and_then(|v| match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
        .filter(|v| *v <= u64::from(u16::MAX))
        .map(Value::from);
        (name, version)
    }

    /// The span's `langfuse.experiment.*` attributes as the envelope's `experiment` object, or
    /// `None` when it has none. Metadata is the JSON object of `…metadata` with every
    /// `…metadata.<key>` over it; an item version that is not a time is dropped, as Langfuse
    /// drops it (it points at a dataset item version, which only a time can name).
    fn experiment(&self) -> Option<Map<String, Value>> {
        let a = self.attributes;
        let mut out = Map::new();
        for (key, field) in EXPERIMENT_TEXT_FIELDS {
            if let Some(value) = a.get(*key).filter(|v| truthy(v)) {
                out.insert((*field).into(), Value::String(text(value)));
            }
        }
        if let Some(version) = a
            .get(EXPERIMENT_ITEM_VERSION)
            .filter(|v| truthy(v))
            .and_then(|v| parse_time(&text(v)))
        {
            out.insert("itemVersion".into(), Value::String(iso(version)));
        }
        for (prefix, field) in [
            (EXPERIMENT_METADATA, "metadata"),
            (EXPERIMENT_ITEM_METADATA, "itemMetadata"),
        ] {
            let metadata = prefixed_metadata(a, prefix);
            if !metadata.is_empty() {
                out.insert(field.into(), Value::Object(metadata));
            }
        }
        (!out.is_empty()).then_some(out)
    }

    fn completion_start_time(&self) -> Option<String> {
        if let Some(value) = self
            .attributes
            .get("langfuse.observation.completion_start_time")
        {
            // Older SDKs wrote the timestamp as JSON text of a string.
            let candidates = [Some(value.clone()), parse_json(value)];
            if let Some(t) = candidates
                .iter()
                .flatten()
                .filter_map(Value::as_str)
                .find_map(parse_time)
            {
                return Some(iso(t));
            }
        }
        let ms_to_first_chunk = self
            .attributes
            .get("ai.response.msToFirstChunk")
            .or_else(|| self.attributes.get("ai.stream.msToFirstChunk"))
            .filter(|v| truthy(v))
            .and_then(|v| match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            })?;
        Some(iso(self.start
            + chrono::Duration::milliseconds(
                ms_to_first_chunk.ceil() as i64
            )))
    }

    fn observation_envelope(&self) -> Value {
        let observation_type = self.observation_type();
        let io = input_output(
            self.attributes,
            &self.span.events,
            &self.scope.name,
            Domain::Observation,
        );
        let mut metadata = Map::new();
        Self::metadata_into(&mut metadata, self.resource, Domain::Trace);
        Self::metadata_into(&mut metadata, self.attributes, Domain::Observation);
        if !self.is_langfuse_sdk {
            metadata.insert(
                "attributes".into(),
                Value::Object(remaining_attributes(self.attributes)),
            );
        }
        metadata.insert(
            "resourceAttributes".into(),
            Value::Object(self.resource.clone()),
        );
        metadata.insert("scope".into(), self.scope_json());

        let agent = is_ai_sdk_agent_span(self.attributes);
        let mut body = Map::new();
        body.insert("id".into(), Value::String(self.span.span_id.clone()));
        body.insert("traceId".into(), Value::String(self.span.trace_id.clone()));
        if let Some(parent) = &self.span.parent_span_id {
            body.insert("parentObservationId".into(), Value::String(parent.clone()));
        }
        body.insert("name".into(), Value::String(self.name()));
        body.insert("startTime".into(), Value::String(iso(self.start)));
        body.insert("endTime".into(), Value::String(iso(self.end)));
        insert_some(&mut body, "environment", self.environment());
        insert_some(
            &mut body,
            "completionStartTime",
            self.completion_start_time(),
        );
        body.insert("metadata".into(), Value::Object(metadata));
        body.insert("level".into(), Value::String(self.level().to_string()));
        insert_some(&mut body, "statusMessage", self.status_message());
        insert_some(&mut body, "version", self.version());
        if let Some(params) = model_parameters(self.attributes, &self.scope.name) {
            body.insert("modelParameters".into(), Value::Object(params));
        }
        if !agent {
            insert_some(&mut body, "model", model_name(self.attributes));
            let usage = usage_details(self.attributes, &self.scope.name);
            if !usage.is_empty() {
                body.insert("usageDetails".into(), Value::Object(usage));
            }
            let cost = cost_details(self.attributes);
            if !cost.is_empty() {
                body.insert("costDetails".into(), Value::Object(cost));
            }
        }
        // Prompts can only be linked to generations.
        if observation_type == ObservationType::Generation {
            let (name, version) = self.prompt();
            insert_some(&mut body, "promptName", name);
            insert_some(&mut body, "promptVersion", version);
        }
        insert_some(&mut body, "input", io.input);
        insert_some(&mut body, "output", io.output);
        if let Some(experiment) = self.experiment() {
            body.insert("experiment".into(), Value::Object(experiment));
        }

        envelope(
            self.id("observation"),
            iso(self.end),
            format!("{}-create", observation_type.as_str().to_ascii_lowercase()),
            body,
        )
    }

    /// The trace event of a root span or of a span with trace attributes; `None` for others.
    fn trace_envelope(&self) -> Option<Value> {
        let updates = self.has_trace_updates();
        if !self.is_root && !updates {
            return None;
        }
        let a = self.attributes;
        let mut body = Map::new();
        body.insert("id".into(), Value::String(self.span.trace_id.clone()));
        let mut metadata = Map::new();
        Self::metadata_into(&mut metadata, self.resource, Domain::Trace);
        Self::metadata_into(&mut metadata, a, Domain::Trace);
        if self.is_root {
            body.insert("timestamp".into(), Value::String(iso(self.start)));
            let name = a
                .get("langfuse.trace.name")
                .filter(|v| !v.is_null())
                .map(text)
                .unwrap_or_else(|| self.name());
            body.insert("name".into(), Value::String(name));
            Self::metadata_into(&mut metadata, a, Domain::Observation);
            if !self.is_langfuse_sdk {
                metadata.insert("attributes".into(), Value::Object(remaining_attributes(a)));
            }
            let io = input_output(a, &self.span.events, &self.scope.name, Domain::Trace);
            insert_some(&mut body, "input", io.input);
            insert_some(&mut body, "output", io.output);
        } else {
            // A span inside the trace sets what it names and never the trace's name from its
            // own, nor the trace's timestamp: that is the root span's.
            insert_some(
                &mut body,
                "name",
                a.get("langfuse.trace.name").filter(|v| truthy(v)).map(text),
            );
            insert_some(
                &mut body,
                "input",
                a.get("langfuse.trace.input")
                    .filter(|v| !v.is_null())
                    .cloned(),
            );
            insert_some(
                &mut body,
                "output",
                a.get("langfuse.trace.output")
                    .filter(|v| !v.is_null())
                    .cloned(),
            );
        }
        metadata.insert(
            "resourceAttributes".into(),
            Value::Object(self.resource.clone()),
        );
        metadata.insert("scope".into(), self.scope_json());
        body.insert("metadata".into(), Value::Object(metadata));
        insert_some(&mut body, "environment", self.environment());
        insert_some(&mut body, "version", self.version());
        insert_some(&mut body, "release", self.release());
        insert_some(&mut body, "userId", first_truthy_text(a, USER_ID_KEYS));
        insert_some(
            &mut body,
            "sessionId",
            first_truthy_text(a, SESSION_ID_KEYS),
        );
        if let Some(public) = self.public() {
            body.insert("public".into(), Value::Bool(public));
        }
        let tags = self.tags();
        if !tags.is_empty() {
            body.insert(
                "tags".into(),
                Value::Array(tags.into_iter().map(Value::String).collect()),
            );
        }
        Some(envelope(
            self.id("trace"),
            iso(self.start),
            "trace-create".to_string(),
            body,
        ))
    }

    /// A trace event that sets nothing but the environment: the trace exists even when its root
    /// span never arrives.
    fn bare_trace_envelope(&self) -> Value {
        let mut body = Map::new();
        body.insert("id".into(), Value::String(self.span.trace_id.clone()));
        insert_some(&mut body, "environment", self.environment());
        envelope(
            self.id("trace"),
            iso(self.start),
            "trace-create".to_string(),
            body,
        )
    }
}

/// An envelope around `body`, built in place: `json!` would copy the body by serialising it.
fn envelope(id: String, timestamp: String, kind: String, body: Map<String, Value>) -> Value {
    let mut envelope = Map::new();
    envelope.insert("id".into(), Value::String(id));
    envelope.insert("timestamp".into(), Value::String(timestamp));
    envelope.insert("type".into(), Value::String(kind));
    envelope.insert("body".into(), Value::Object(body));
    Value::Object(envelope)
}

fn insert_some(body: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(value) = value {
        let value = value.into();
        if meaningful(Some(&value)) || value.is_boolean() || value.is_number() {
            body.insert(key.to_string(), value);
        }
    }
}
