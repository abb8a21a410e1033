//! The ingestion batch API's events: parsing, validation and normalisation, one envelope at a time.
//!
//! An envelope is `{id, timestamp, type, body, metadata}`. Each is checked on its own, so a bad event
//! never sinks the good ones of its batch. What comes out is an [`Event`]: a patch of the fields
//! that event sets on one trace, observation or score, ready to be merged with every other event of
//! that entity (see `merge`).
//!
//! The same parser runs in the web role (to validate and answer) and in the worker (to read the raw
//! envelopes back from blob storage), so both always agree on what an envelope means.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::domain::entity::EntityKind;
use crate::domain::observation::{Level, ObservationType};
use crate::domain::time::parse_time;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScoreDataType {
    Numeric,
    Categorical,
    Boolean,
    /// Free text, 1 to 500 characters.
    Text,
    /// A corrected output, as text.
    Correction,
}

impl ScoreDataType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScoreDataType::Numeric => "NUMERIC",
            ScoreDataType::Categorical => "CATEGORICAL",
            ScoreDataType::Boolean => "BOOLEAN",
            ScoreDataType::Text => "TEXT",
            ScoreDataType::Correction => "CORRECTION",
        }
    }
}

/// One validated event: the entity it belongs to and the fields it sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The envelope id; the same event sent twice has the same id.
    pub event_id: String,
    /// The envelope timestamp: when the client produced the event. Orders events of one entity.
    pub timestamp: DateTime<Utc>,
    pub entity_id: String,
    pub is_create: bool,
    pub body: Body,
}

impl Event {
    pub fn entity_kind(&self) -> EntityKind {
        match self.body {
            Body::Trace(_) => EntityKind::Trace,
            Body::Observation(_) => EntityKind::Observation,
            Body::Score(_) => EntityKind::Score,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Trace(TracePatch),
    Observation(ObservationPatch),
    Score(ScorePatch),
}

/// The fields a trace event sets; `None` leaves a field as other events made it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TracePatch {
    pub timestamp: Option<DateTime<Utc>>,
    pub name: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub release: Option<String>,
    pub version: Option<String>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub tags: Option<Vec<String>>,
    pub environment: Option<String>,
    pub public: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservationPatch {
    pub observation_type: ObservationType,
    pub trace_id: Option<String>,
    pub parent_observation_id: Option<String>,
    pub name: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub completion_start_time: Option<DateTime<Utc>>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub level: Option<Level>,
    pub status_message: Option<String>,
    pub version: Option<String>,
    pub environment: Option<String>,
    pub model: Option<String>,
    pub model_parameters: Option<String>,
    pub usage_details: Option<BTreeMap<String, u64>>,
    pub cost_details: Option<BTreeMap<String, f64>>,
    pub prompt_name: Option<String>,
    pub prompt_version: Option<u16>,
    /// What the span of an experiment run says of its experiment and dataset item (only OTLP
    /// spans carry it: the batch API drops the field from clients' envelopes). Boxed: most
    /// observations have none.
    pub experiment: Option<Box<ExperimentPatch>>,
}

/// The `langfuse.experiment.*` attributes of a span, as the observation envelope's `experiment`
/// object carries them. Each field is set by the events that name it, the latest winning.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentPatch {
    /// The experiment (dataset run) id.
    pub id: Option<String>,
    /// The run's name (`langfuse.experiment.name`: the SDKs put the run name there).
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(default, deserialize_with = "metadata_field")]
    pub metadata: Option<BTreeMap<String, String>>,
    pub dataset_id: Option<String>,
    pub item_id: Option<String>,
    /// The dataset item version the run read: a time, as Langfuse keeps it.
    #[serde(default, deserialize_with = "time_field")]
    pub item_version: Option<DateTime<Utc>>,
    /// The observation that stands for the item in the run.
    pub item_root_observation_id: Option<String>,
    /// The item's expected output, as JSON text.
    pub item_expected_output: Option<String>,
    #[serde(default, deserialize_with = "metadata_field")]
    pub item_metadata: Option<BTreeMap<String, String>>,
}

fn metadata_field<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    Ok(metadata_map(Option::<Value>::deserialize(d)?))
}

fn time_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => parse_time(&s)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not an ISO 8601 date-time"))),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScorePatch {
    pub name: String,
    pub value: f64,
    pub string_value: Option<String>,
    pub data_type: ScoreDataType,
    pub trace_id: Option<String>,
    pub observation_id: Option<String>,
    pub session_id: Option<String>,
    pub dataset_run_id: Option<String>,
    pub comment: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub environment: Option<String>,
    pub config_id: Option<String>,
    pub queue_id: Option<String>,
    /// `API`, `EVAL` or `ANNOTATION`; `None` when the event names none (the merge says `API`).
    pub source: Option<String>,
    /// The person who added the score in the web UI. The write path removes the field from
    /// every envelope a client sends, so only the UI's own envelopes carry it.
    pub author_user_id: Option<String>,
}

/// The score sources Langfuse's ingestion schema accepts in a `score-create` body.
pub const SCORE_SOURCES: [&str; 3] = ["API", "EVAL", "ANNOTATION"];

/// Why an envelope was refused; becomes one entry of the 207 answer's `errors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError {
    /// The envelope id, or an empty string when the envelope has none.
    pub id: String,
    pub status: u16,
    pub message: String,
}

/// What an envelope turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// Stored and merged.
    Event(Box<Event>),
    /// `sdk-log`: accepted and logged, never stored.
    SdkLog { event_id: String, log: Value },
}

/// What storing an accepted envelope needs to know of it: which entity it belongs to. The write
/// path groups envelopes by entity and stores them as they are; only the worker reads the fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Checked {
    Event(Accepted),
    /// `sdk-log`: accepted and logged, never stored.
    SdkLog {
        event_id: String,
        log: Value,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub event_id: String,
    pub kind: EntityKind,
    pub entity_id: String,
    /// The trace an observation or score names, if any.
    pub trace_id: Option<String>,
}

impl From<Parsed> for Checked {
    fn from(parsed: Parsed) -> Checked {
        match parsed {
            Parsed::Event(event) => {
                let kind = event.entity_kind();
                let trace_id = match event.body {
                    Body::Observation(o) => o.trace_id,
                    Body::Score(s) => s.trace_id,
                    Body::Trace(_) => None,
                };
                Checked::Event(Accepted {
                    event_id: event.event_id,
                    kind,
                    entity_id: event.entity_id,
                    trace_id,
                })
            }
            Parsed::SdkLog { event_id, log } => Checked::SdkLog { event_id, log },
        }
    }
}

const MAX_ID_LEN: usize = 1_000;
const MAX_TEXT_SCORE_CHARS: usize = 500;
const MAX_ENVIRONMENT_LEN: usize = 40;
pub const DEFAULT_ENVIRONMENT: &str = "default";

/// Parses one envelope. `new_id` supplies an id for a create event whose body has none; the caller
/// writes it into the stored envelope (see [`assign_missing_id`]) so a re-read gives the same id.
pub fn parse_envelope(envelope: &Value) -> Result<Parsed, EventError> {
    parse_envelope_as::<Value>(envelope)
}

/// [`parse_envelope`]'s verdict, reached without reading the fields that take any JSON (input,
/// output, metadata, model parameters): they cannot make an envelope invalid, and copying them
/// into an event only to drop it was most of the cost of checking a large envelope.
pub fn check_envelope(envelope: &Value) -> Result<Checked, EventError> {
    parse_envelope_as::<IgnoredAny>(envelope).map(Checked::from)
}

/// [`parse_envelope`], reading the fields that take any JSON as `J`: `Value` to keep them,
/// `IgnoredAny` to skip them (the event then lacks them).
fn parse_envelope_as<J: FreeJson>(envelope: &Value) -> Result<Parsed, EventError> {
    let id = envelope
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let fail = |message: String| EventError {
        id: id.clone(),
        status: 400,
        message,
    };
    let object = envelope
        .as_object()
        .ok_or_else(|| fail("event must be a JSON object".into()))?;
    if id.is_empty() {
        return Err(fail("event.id: a non-empty string is required".into()));
    }
    let timestamp = match object.get("timestamp") {
        Some(Value::String(s)) => parse_time(s).ok_or_else(|| {
            fail(format!(
                "event.timestamp: {s:?} is not an ISO 8601 date-time"
            ))
        })?,
        _ => {
            return Err(fail(
                "event.timestamp: an ISO 8601 date-time string is required".into(),
            ))
        }
    };
    let kind = object
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("event.type: a string is required".into()))?;
    let (body_value, body) = match object.get("body") {
        Some(value @ Value::Object(body)) => (value, body),
        _ => return Err(fail("event.body: an object is required".into())),
    };
    if kind == "sdk-log" {
        let log = body.get("log").cloned().unwrap_or(Value::Null);
        return Ok(Parsed::SdkLog { event_id: id, log });
    }
    let observation = match kind {
        "trace-create" | "score-create" => None,
        other => Some(observation_kind(other, body).map_err(&fail)?),
    };
    event_of::<J>(
        id,
        timestamp,
        kind,
        observation,
        BodySource::Value(body_value),
    )
}

/// Where a body is read from: a parsed value, or the JSON text of a stored envelope.
enum BodySource<'a> {
    Value(&'a Value),
    Text(&'a str),
}

impl BodySource<'_> {
    fn read<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        match self {
            // In place: `from_value` would need a copy of the body, input and output included.
            BodySource::Value(value) => T::deserialize(*value),
            BodySource::Text(text) => serde_json::from_str(text),
        }
        .map_err(|e| format!("invalid body: {e}"))
    }
}

/// The event of an envelope whose id, timestamp and type were checked; `observation` is the
/// observation type and create flag of an observation event.
fn event_of<J: FreeJson>(
    id: String,
    timestamp: DateTime<Utc>,
    kind: &str,
    observation: Option<(ObservationType, bool)>,
    body: BodySource<'_>,
) -> Result<Parsed, EventError> {
    let body_error = |e: String| EventError {
        id: id.clone(),
        status: 400,
        message: format!("{kind}: {e}"),
    };
    let (entity_id, is_create, body) = match (kind, observation) {
        ("trace-create", _) => {
            let b: TraceBody<J> = body.read().map_err(body_error)?;
            let entity_id = required_id(&b.id, true).map_err(body_error)?;
            (
                entity_id,
                true,
                Body::Trace(b.into_patch().map_err(body_error)?),
            )
        }
        ("score-create", _) => {
            let b: ScoreBody<J> = body.read().map_err(body_error)?;
            let entity_id = required_id(&b.id, true).map_err(body_error)?;
            (
                entity_id,
                true,
                Body::Score(b.into_patch().map_err(body_error)?),
            )
        }
        (_, Some((observation_type, is_create))) => {
            let b: ObservationBody<J> = body.read().map_err(body_error)?;
            let entity_id = required_id(&b.id, is_create).map_err(body_error)?;
            let patch = b.into_patch(observation_type).map_err(body_error)?;
            (entity_id, is_create, Body::Observation(patch))
        }
        (other, None) => {
            return Err(EventError {
                id: id.clone(),
                status: 400,
                message: format!("event.type: unknown event type {other:?}"),
            })
        }
    };
    Ok(Parsed::Event(Box::new(Event {
        event_id: id,
        timestamp,
        entity_id,
        is_create,
        body,
    })))
}

/// [`parse_envelope`] for an envelope's JSON text, as stored: the same answer, reached without
/// building the envelope as a `Value` first when the envelope is of the usual shape (the worker
/// reads every stored envelope back, so this is its hot path). Anything unusual (escaped keys,
/// a legacy `observation-*` event, an invalid event) takes `parse_envelope` itself, so the
/// answers, errors included, are always the same.
pub fn parse_envelope_text(text: &str) -> Result<Parsed, EventError> {
    if let Some(parsed) = parse_usual_envelope(text) {
        return Ok(parsed);
    }
    let envelope: Value = serde_json::from_str(text).map_err(|e| EventError {
        id: String::new(),
        status: 400,
        message: format!("event is not valid JSON: {e}"),
    })?;
    parse_envelope(&envelope)
}

fn parse_usual_envelope(text: &str) -> Option<Parsed> {
    #[derive(Deserialize)]
    struct Usual<'a> {
        id: String,
        timestamp: &'a str,
        #[serde(rename = "type")]
        kind: &'a str,
        #[serde(borrow)]
        body: &'a serde_json::value::RawValue,
    }
    let envelope: Usual = serde_json::from_str(text).ok()?;
    if envelope.id.is_empty() || !envelope.body.get().starts_with('{') {
        return None;
    }
    let timestamp = parse_time(envelope.timestamp)?;
    let observation = match envelope.kind {
        "trace-create" | "score-create" => None,
        "sdk-log" => return None,
        other if other.starts_with("observation-") => return None,
        other => Some(observation_kind(other, &Map::new()).ok()?),
    };
    event_of::<Value>(
        envelope.id,
        timestamp,
        envelope.kind,
        observation,
        BodySource::Text(envelope.body.get()),
    )
    .ok()
}

/// Gives a create event without `body.id` a fresh id, in place, before the envelope is stored.
/// Langfuse does the same; storing the id makes every later read of the envelope agree.
pub fn assign_missing_id(envelope: &mut Value) {
    let is_create = envelope
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.ends_with("-create") && t != "sdk-log");
    if !is_create {
        return;
    }
    if let Some(body) = envelope.get_mut("body").and_then(Value::as_object_mut) {
        let missing = match body.get("id") {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if missing {
            body.insert("id".into(), Value::String(uuid::Uuid::new_v4().to_string()));
        }
    }
}

fn observation_kind(
    kind: &str,
    body: &Map<String, Value>,
) -> Result<(ObservationType, bool), String> {
    let (prefix, is_create) = match kind.rsplit_once('-') {
        Some((prefix, "create")) => (prefix, true),
        Some((prefix, "update")) => (prefix, false),
        _ => return Err(format!("event.type: unknown event type {kind:?}")),
    };
    let observation_type = match (prefix, is_create) {
        ("span", _) => ObservationType::Span,
        ("generation", _) => ObservationType::Generation,
        ("event", true) => ObservationType::Event,
        ("agent", true) => ObservationType::Agent,
        ("tool", true) => ObservationType::Tool,
        ("chain", true) => ObservationType::Chain,
        ("retriever", true) => ObservationType::Retriever,
        ("evaluator", true) => ObservationType::Evaluator,
        ("embedding", true) => ObservationType::Embedding,
        ("guardrail", true) => ObservationType::Guardrail,
        // The legacy observation events name their type in the body.
        ("observation", _) => match body.get("type") {
            Some(t) => serde_json::from_value(t.clone()).map_err(|_| {
                format!("{kind}: body.type must be one of SPAN, GENERATION, EVENT, AGENT, TOOL, CHAIN, RETRIEVER, EVALUATOR, EMBEDDING, GUARDRAIL")
            })?,
            None => return Err(format!("{kind}: body.type is required")),
        },
        _ => return Err(format!("event.type: unknown event type {kind:?}")),
    };
    Ok((observation_type, is_create))
}

fn required_id(id: &Option<String>, is_create: bool) -> Result<String, String> {
    match id.as_deref() {
        Some(id) if !id.is_empty() && id.len() <= MAX_ID_LEN => Ok(id.to_string()),
        Some(id) if id.len() > MAX_ID_LEN => {
            Err(format!("body.id is longer than {MAX_ID_LEN} characters"))
        }
        // assign_missing_id gives creates an id before parsing; an update must name its target.
        _ if is_create => Err("body.id is missing".into()),
        _ => Err("body.id is required for an update".into()),
    }
}

fn optional_time(field: &str, value: &Option<String>) -> Result<Option<DateTime<Utc>>, String> {
    match value {
        None => Ok(None),
        Some(s) => parse_time(s)
            .map(Some)
            .ok_or_else(|| format!("body.{field}: {s:?} is not an ISO 8601 date-time")),
    }
}

/// Langfuse's environment rule, which never rejects an event: lower-cased, leading `langfuse`
/// prefixes (each optionally followed by `-` or `_`) removed, cut to 40 characters; what is then
/// empty or not made of `a-z 0-9 - _` counts as unset (the record's environment is then `default`).
pub fn normalize_environment(value: Option<&str>) -> Option<String> {
    let mut env = value?.trim().to_lowercase();
    while let Some(rest) = env.strip_prefix("langfuse") {
        env = rest.trim_start_matches(['-', '_']).to_string();
    }
    let env: String = env.chars().take(MAX_ENVIRONMENT_LEN).collect();
    let valid = !env.is_empty()
        && env
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    valid.then_some(env)
}

/// Input, output and model parameters are any JSON; they are stored as text: a string as itself,
/// anything else as its JSON.
fn json_text(value: Option<Value>) -> Option<String> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        // Not `to_string()`: `Display` writes through `fmt::Write`, several times slower, and
        // this runs for every metadata value of every event, in both roles.
        Some(other) => Some(serde_json::to_string(&other).expect("JSON values serialise")),
    }
}

/// A body field that takes any JSON: kept as a `Value` when an envelope is parsed, skipped
/// (`IgnoredAny`) when it is only checked.
trait FreeJson: DeserializeOwned {
    /// As [`json_text`] stores it.
    fn into_text(self) -> Option<String>;
    /// As [`metadata_map`] stores it.
    fn into_metadata(self) -> Option<BTreeMap<String, String>>;
}

impl FreeJson for Value {
    fn into_text(self) -> Option<String> {
        json_text(Some(self))
    }

    fn into_metadata(self) -> Option<BTreeMap<String, String>> {
        metadata_map(Some(self))
    }
}

impl FreeJson for IgnoredAny {
    fn into_text(self) -> Option<String> {
        None
    }

    fn into_metadata(self) -> Option<BTreeMap<String, String>> {
        None
    }
}

/// Metadata is any JSON; the stored form is a map of top-level keys to text. A value that is not an
/// object is kept whole under the key `metadata`.
pub fn metadata_map(value: Option<Value>) -> Option<BTreeMap<String, String>> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(
            map.into_iter()
                .filter_map(|(k, v)| json_text(Some(v)).map(|text| (k, text)))
                .collect(),
        ),
        Some(other) => Some(BTreeMap::from([(
            "metadata".to_string(),
            json_text(Some(other)).unwrap_or_default(),
        )])),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "J: DeserializeOwned"))]
struct TraceBody<J> {
    id: Option<String>,
    timestamp: Option<String>,
    name: Option<String>,
    user_id: Option<String>,
    input: Option<J>,
    output: Option<J>,
    session_id: Option<String>,
    release: Option<String>,
    version: Option<String>,
    metadata: Option<J>,
    tags: Option<Vec<String>>,
    environment: Option<String>,
    public: Option<bool>,
}

impl<J: FreeJson> TraceBody<J> {
    fn into_patch(self) -> Result<TracePatch, String> {
        Ok(TracePatch {
            timestamp: optional_time("timestamp", &self.timestamp)?,
            name: self.name,
            user_id: self.user_id,
            session_id: self.session_id,
            release: self.release,
            version: self.version,
            input: self.input.and_then(J::into_text),
            output: self.output.and_then(J::into_text),
            metadata: self.metadata.and_then(J::into_metadata),
            tags: self.tags,
            environment: normalize_environment(self.environment.as_deref()),
            public: self.public,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "J: DeserializeOwned"))]
struct ObservationBody<J> {
    id: Option<String>,
    trace_id: Option<String>,
    name: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    completion_start_time: Option<String>,
    metadata: Option<J>,
    input: Option<J>,
    output: Option<J>,
    level: Option<Level>,
    status_message: Option<String>,
    parent_observation_id: Option<String>,
    version: Option<String>,
    environment: Option<String>,
    model: Option<String>,
    model_parameters: Option<J>,
    usage: Option<Value>,
    usage_details: Option<Value>,
    cost_details: Option<Value>,
    prompt_name: Option<String>,
    prompt_version: Option<u16>,
    experiment: Option<ExperimentPatch>,
}

impl<J: FreeJson> ObservationBody<J> {
    fn into_patch(self, observation_type: ObservationType) -> Result<ObservationPatch, String> {
        let (usage_details, legacy_costs) = usage::normalize(self.usage, self.usage_details)?;
        // The legacy shape's costs, with `costDetails` over them key by key, as Langfuse merges them.
        let cost_details = match (legacy_costs, usage::cost_details(self.cost_details)?) {
            (Some(mut legacy), Some(costs)) => {
                legacy.extend(costs);
                Some(legacy)
            }
            (legacy, costs) => costs.or(legacy),
        };
        Ok(ObservationPatch {
            observation_type,
            trace_id: self.trace_id.filter(|t| !t.is_empty()),
            parent_observation_id: self.parent_observation_id.filter(|p| !p.is_empty()),
            name: self.name,
            start_time: optional_time("startTime", &self.start_time)?,
            end_time: optional_time("endTime", &self.end_time)?,
            completion_start_time: optional_time(
                "completionStartTime",
                &self.completion_start_time,
            )?,
            metadata: self.metadata.and_then(J::into_metadata),
            input: self.input.and_then(J::into_text),
            output: self.output.and_then(J::into_text),
            level: self.level,
            status_message: self.status_message,
            version: self.version,
            environment: normalize_environment(self.environment.as_deref()),
            model: self.model.filter(|m| !m.is_empty()),
            model_parameters: self.model_parameters.and_then(J::into_text),
            usage_details,
            cost_details,
            prompt_name: self.prompt_name,
            prompt_version: self.prompt_version,
            experiment: self.experiment.map(Box::new),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "J: DeserializeOwned"))]
struct ScoreBody<J> {
    id: Option<String>,
    trace_id: Option<String>,
    session_id: Option<String>,
    observation_id: Option<String>,
    dataset_run_id: Option<String>,
    name: Option<String>,
    environment: Option<String>,
    queue_id: Option<String>,
    value: Option<Value>,
    comment: Option<String>,
    metadata: Option<J>,
    data_type: Option<String>,
    config_id: Option<String>,
    source: Option<String>,
    author_user_id: Option<String>,
    /// The label of a CATEGORICAL score whose `value` is its config's number for it: only the
    /// write path sets it, once the score was checked against its config (clients' envelopes
    /// lose the field before they are parsed).
    string_value: Option<String>,
}

impl<J: FreeJson> ScoreBody<J> {
    fn into_patch(self) -> Result<ScorePatch, String> {
        let name = self
            .name
            .filter(|n| !n.is_empty())
            .ok_or("body.name is required")?;
        let data_type = match self.data_type.as_deref() {
            None => None,
            Some("NUMERIC") => Some(ScoreDataType::Numeric),
            Some("CATEGORICAL") => Some(ScoreDataType::Categorical),
            Some("BOOLEAN") => Some(ScoreDataType::Boolean),
            Some("TEXT") => Some(ScoreDataType::Text),
            Some("CORRECTION") => Some(ScoreDataType::Correction),
            Some(other) => {
                return Err(format!(
                    "body.dataType {other:?} is not one of NUMERIC, CATEGORICAL, BOOLEAN, TEXT, CORRECTION"
                ))
            }
        };
        let (value, string_value, data_type) = match (self.value, data_type) {
            (Some(Value::Number(n)), None | Some(ScoreDataType::Numeric)) => {
                (n.as_f64().unwrap_or(0.0), None, ScoreDataType::Numeric)
            }
            (Some(Value::Number(n)), Some(ScoreDataType::Boolean)) => {
                let v = n.as_f64().unwrap_or(-1.0);
                if v != 0.0 && v != 1.0 {
                    return Err("body.value of a BOOLEAN score must be 0 or 1".into());
                }
                let text = if v == 1.0 { "True" } else { "False" };
                (v, Some(text.to_string()), ScoreDataType::Boolean)
            }
            (Some(Value::String(s)), None | Some(ScoreDataType::Categorical)) => {
                (0.0, Some(s), ScoreDataType::Categorical)
            }
            (Some(Value::Number(n)), Some(ScoreDataType::Categorical))
                if self.string_value.is_some() =>
            {
                (
                    n.as_f64().unwrap_or(0.0),
                    self.string_value,
                    ScoreDataType::Categorical,
                )
            }
            (Some(Value::String(s)), Some(ScoreDataType::Text)) => {
                let length = s.chars().count();
                if !(1..=MAX_TEXT_SCORE_CHARS).contains(&length) {
                    return Err(format!(
                        "body.value of a TEXT score must be 1 to {MAX_TEXT_SCORE_CHARS} characters, not {length}"
                    ));
                }
                (0.0, Some(s), ScoreDataType::Text)
            }
            (Some(Value::String(s)), Some(ScoreDataType::Correction)) => {
                (0.0, Some(s), ScoreDataType::Correction)
            }
            (
                Some(Value::Number(_)),
                Some(
                    t @ (ScoreDataType::Categorical
                    | ScoreDataType::Text
                    | ScoreDataType::Correction),
                ),
            ) => {
                return Err(format!(
                    "body.value of a {} score must be a string",
                    t.as_str()
                ))
            }
            (Some(Value::String(_)), Some(t)) => {
                return Err(format!(
                    "body.value of a {} score must be a number",
                    t.as_str()
                ))
            }
            (None | Some(Value::Null), _) => return Err("body.value is required".into()),
            (Some(_), _) => return Err("body.value must be a number or a string".into()),
        };
        if let Some(source) = self.source.as_deref() {
            if !SCORE_SOURCES.contains(&source) {
                return Err(format!(
                    "body.source {source:?} is not one of API, EVAL, ANNOTATION"
                ));
            }
        }
        let non_empty = |v: Option<String>| v.filter(|s| !s.is_empty());
        let trace_id = non_empty(self.trace_id);
        let session_id = non_empty(self.session_id);
        let dataset_run_id = non_empty(self.dataset_run_id);
        if trace_id.is_none() && session_id.is_none() && dataset_run_id.is_none() {
            return Err(
                "one of body.traceId, body.sessionId or body.datasetRunId is required".into(),
            );
        }
        Ok(ScorePatch {
            name,
            value,
            string_value,
            data_type,
            trace_id,
            observation_id: non_empty(self.observation_id),
            session_id,
            dataset_run_id,
            comment: self.comment,
            metadata: self.metadata.and_then(J::into_metadata),
            environment: normalize_environment(self.environment.as_deref()),
            config_id: non_empty(self.config_id),
            queue_id: non_empty(self.queue_id),
            source: self.source,
            author_user_id: non_empty(self.author_user_id),
        })
    }
}

/// Token usage and cost in every shape the SDKs send.
pub mod usage {
    use std::collections::BTreeMap;

    use serde_json::Value;

    /// Usage details (`usageDetails`, preferred) or legacy `usage`, as a map with Langfuse's keys
    /// `input`, `output`, `total` and any others given; plus the costs the legacy shape carries.
    #[allow(clippy::type_complexity)]
    pub fn normalize(
        usage: Option<Value>,
        usage_details: Option<Value>,
    ) -> Result<(Option<BTreeMap<String, u64>>, Option<BTreeMap<String, f64>>), String> {
        let legacy_costs = usage.as_ref().and_then(legacy_costs);
        let details = match usage_details {
            Some(Value::Object(map)) => Some(from_details(&map)?),
            Some(Value::Null) | None => None,
            Some(_) => return Err("body.usageDetails must be an object".into()),
        };
        let details = match (details, usage) {
            (Some(d), _) => Some(d),
            (None, Some(Value::Object(map))) => Some(from_legacy(&map)?),
            (None, Some(Value::Null) | None) => None,
            (None, Some(_)) => return Err("body.usage must be an object".into()),
        };
        Ok((
            details.filter(|d| !d.is_empty()).map(with_total),
            legacy_costs,
        ))
    }

    /// `costDetails`: a map of non-negative amounts in USD.
    pub fn cost_details(value: Option<Value>) -> Result<Option<BTreeMap<String, f64>>, String> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => {
                let mut out = BTreeMap::new();
                for (k, v) in map {
                    match v {
                        Value::Null => {}
                        Value::Number(n) => {
                            out.insert(k, n.as_f64().unwrap_or(0.0));
                        }
                        _ => return Err(format!("body.costDetails.{k} must be a number")),
                    }
                }
                Ok(Some(out).filter(|m| !m.is_empty()))
            }
            Some(_) => Err("body.costDetails must be an object".into()),
        }
    }

    fn count(key: &str, v: &Value) -> Result<Option<u64>, String> {
        match v {
            Value::Null => Ok(None),
            Value::Number(n) => match (n.as_u64(), n.as_f64()) {
                (Some(u), _) => Ok(Some(u)),
                (None, Some(f)) if f >= 0.0 => Ok(Some(f.round() as u64)),
                _ => Err(format!("usage {key} must be a non-negative number")),
            },
            _ => Err(format!("usage {key} must be a number")),
        }
    }

    /// The keys of one of OpenAI's usage objects: the input, output and total counts, and the
    /// breakdowns of the first two.
    struct OpenAiShape {
        input: &'static str,
        output: &'static str,
        total: &'static str,
        input_details: &'static str,
        output_details: &'static str,
    }

    /// The Chat Completions API's `usage`.
    const COMPLETION: OpenAiShape = OpenAiShape {
        input: "prompt_tokens",
        output: "completion_tokens",
        total: "total_tokens",
        input_details: "prompt_tokens_details",
        output_details: "completion_tokens_details",
    };

    /// The Responses API's `usage`.
    const RESPONSE: OpenAiShape = OpenAiShape {
        input: "input_tokens",
        output: "output_tokens",
        total: "total_tokens",
        input_details: "input_tokens_details",
        output_details: "output_tokens_details",
    };

    /// A whole non-negative integer, as OpenAI's usage objects hold them.
    fn whole(v: &Value) -> Option<u64> {
        v.as_u64().or_else(|| {
            v.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f <= u64::MAX as f64)
                .map(|f| f as u64)
        })
    }

    /// `map` in Langfuse's keys if it is the whole of `shape`, as Langfuse's ingestion schema
    /// recognises it: the three counts present and whole, the breakdowns absent, null, or maps
    /// of whole counts (or nulls), and no other key. Each breakdown entry becomes
    /// `input_<key>`/`output_<key>` and is taken out of `input`/`output`, so that the keys add
    /// up to the total. `None` when the map is anything else, which is then kept as sent.
    fn openai_usage(
        map: &serde_json::Map<String, Value>,
        shape: &OpenAiShape,
    ) -> Option<BTreeMap<String, u64>> {
        let allowed = [
            shape.input,
            shape.output,
            shape.total,
            shape.input_details,
            shape.output_details,
        ];
        if map.keys().any(|k| !allowed.contains(&k.as_str())) {
            return None;
        }
        let mut input = whole(map.get(shape.input)?)?;
        let mut output = whole(map.get(shape.output)?)?;
        let total = whole(map.get(shape.total)?)?;
        let mut out = BTreeMap::new();
        for (details_key, prefix, base) in [
            (shape.input_details, "input", &mut input),
            (shape.output_details, "output", &mut output),
        ] {
            match map.get(details_key) {
                None | Some(Value::Null) => {}
                Some(Value::Object(details)) => {
                    for (k, v) in details {
                        if v.is_null() {
                            continue;
                        }
                        let n = whole(v)?;
                        out.insert(format!("{prefix}_{k}"), n);
                        *base = base.saturating_sub(n);
                    }
                }
                Some(_) => return None,
            }
        }
        out.insert("input".into(), input);
        out.insert("output".into(), output);
        out.insert("total".into(), total);
        Some(out)
    }

    /// OpenAI's completion or response usage object when the map is the whole of one (see
    /// [`openai_usage`]); otherwise a plain `{key: count}` map with its keys as sent. There a
    /// nested object (a breakdown of a shape that is not whole) is left out, as Langfuse leaves
    /// it out; a count may be a number or a string of digits.
    fn from_details(map: &serde_json::Map<String, Value>) -> Result<BTreeMap<String, u64>, String> {
        if let Some(usage) = openai_usage(map, &COMPLETION).or_else(|| openai_usage(map, &RESPONSE))
        {
            return Ok(usage);
        }
        let mut out = BTreeMap::new();
        for (k, v) in map {
            let n = match v {
                Value::Object(_) | Value::Array(_) => None,
                Value::String(text) => Some(
                    text.parse::<u64>()
                        .map_err(|_| format!("usage {k} must be a number, not {text:?}"))?,
                ),
                _ => count(k, v)?,
            };
            if let Some(n) = n {
                out.insert(k.clone(), n);
            }
        }
        Ok(out)
    }

    /// Legacy `usage`: `{input, output, total, unit, ...}` or OpenAI's camel-case
    /// `{promptTokens, completionTokens, totalTokens}`.
    fn from_legacy(map: &serde_json::Map<String, Value>) -> Result<BTreeMap<String, u64>, String> {
        let mut out = BTreeMap::new();
        for (from, to) in [
            ("input", "input"),
            ("output", "output"),
            ("total", "total"),
            ("promptTokens", "input"),
            ("completionTokens", "output"),
            ("totalTokens", "total"),
        ] {
            if let Some(n) = map.get(from).map(|v| count(from, v)).transpose()?.flatten() {
                out.insert(to.to_string(), n);
            }
        }
        Ok(out)
    }

    fn legacy_costs(usage: &Value) -> Option<BTreeMap<String, f64>> {
        let map = usage.as_object()?;
        let mut out = BTreeMap::new();
        for (from, to) in [
            ("inputCost", "input"),
            ("outputCost", "output"),
            ("totalCost", "total"),
        ] {
            if let Some(n) = map.get(from).and_then(Value::as_f64) {
                out.insert(to.to_string(), n);
            }
        }
        Some(out).filter(|m| !m.is_empty())
    }

    /// A missing total is the sum of the other counts.
    fn with_total(mut details: BTreeMap<String, u64>) -> BTreeMap<String, u64> {
        if !details.contains_key("total") {
            let sum = details.values().fold(0u64, |a, b| a.saturating_add(*b));
            details.insert("total".into(), sum);
        }
        details
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: Value) -> Result<Event, EventError> {
        match parse_envelope(&v)? {
            Parsed::Event(e) => Ok(*e),
            Parsed::SdkLog { .. } => panic!("not an event"),
        }
    }

    fn envelope(kind: &str, body: Value) -> Value {
        json!({"id": "e1", "timestamp": "2024-05-01T10:00:00.000Z", "type": kind, "body": body})
    }

    #[test]
    fn a_trace_create_becomes_a_trace_patch() {
        let e = parse(envelope(
            "trace-create",
            json!({"id": "t1", "name": "chat", "userId": "u", "metadata": {"a": 1, "b": "x"},
                   "tags": ["x"], "input": {"q": "hi"}, "output": "plain", "environment": "Production",
                   "timestamp": "2024-05-01T09:59:59.5Z"}),
        ))
        .unwrap();
        assert_eq!(e.entity_id, "t1");
        assert!(e.is_create);
        let Body::Trace(t) = e.body else { panic!() };
        assert_eq!(t.name.as_deref(), Some("chat"));
        assert_eq!(t.input.as_deref(), Some(r#"{"q":"hi"}"#));
        assert_eq!(t.output.as_deref(), Some("plain"));
        assert_eq!(t.environment.as_deref(), Some("production"));
        assert_eq!(t.metadata.unwrap()["a"], "1");
        assert_eq!(t.timestamp.unwrap().timestamp_millis() % 1000, 500);
    }

    #[test]
    fn every_observation_event_type_is_understood() {
        let cases = [
            ("span-create", ObservationType::Span, true),
            ("span-update", ObservationType::Span, false),
            ("generation-create", ObservationType::Generation, true),
            ("generation-update", ObservationType::Generation, false),
            ("event-create", ObservationType::Event, true),
            ("agent-create", ObservationType::Agent, true),
            ("tool-create", ObservationType::Tool, true),
            ("chain-create", ObservationType::Chain, true),
            ("retriever-create", ObservationType::Retriever, true),
            ("evaluator-create", ObservationType::Evaluator, true),
            ("embedding-create", ObservationType::Embedding, true),
            ("guardrail-create", ObservationType::Guardrail, true),
        ];
        for (kind, expected, create) in cases {
            let e = parse(envelope(kind, json!({"id": "o1", "traceId": "t1"}))).unwrap();
            let Body::Observation(o) = &e.body else {
                panic!("{kind}")
            };
            assert_eq!(o.observation_type, expected, "{kind}");
            assert_eq!(e.is_create, create, "{kind}");
        }
        let e = parse(envelope(
            "observation-create",
            json!({"id": "o", "type": "GENERATION"}),
        ))
        .unwrap();
        let Body::Observation(o) = &e.body else {
            panic!()
        };
        assert_eq!(o.observation_type, ObservationType::Generation);
        assert!(parse(envelope("observation-update", json!({"id": "o"}))).is_err());
    }

    #[test]
    fn invalid_envelopes_are_refused_with_a_reason() {
        let cases = [
            json!("not an object"),
            json!({"timestamp": "2024-05-01T10:00:00Z", "type": "trace-create", "body": {}}),
            json!({"id": "e", "timestamp": "yesterday", "type": "trace-create", "body": {"id": "t"}}),
            json!({"id": "e", "timestamp": "2024-05-01T10:00:00Z", "type": "nope-create", "body": {"id": "t"}}),
            json!({"id": "e", "timestamp": "2024-05-01T10:00:00Z", "type": "trace-create", "body": [1]}),
            envelope("span-update", json!({"traceId": "t"})),
            envelope("trace-create", json!({"id": "t", "tags": "not-a-list"})),
            envelope("span-create", json!({"id": "o", "level": "LOUD"})),
            envelope("span-create", json!({"id": "o", "startTime": "soon"})),
            envelope(
                "score-create",
                json!({"id": "s", "traceId": "t", "value": 1}),
            ),
            envelope("score-create", json!({"id": "s", "name": "n", "value": 1})),
            envelope(
                "score-create",
                json!({"id": "s", "name": "n", "traceId": "t", "value": 2, "dataType": "BOOLEAN"}),
            ),
            envelope(
                "score-create",
                json!({"id": "s", "name": "n", "traceId": "t", "value": "x", "dataType": "NUMERIC"}),
            ),
            envelope(
                "generation-create",
                json!({"id": "o", "usage": {"input": "many"}}),
            ),
        ];
        for case in cases {
            let err = parse(case.clone()).expect_err(&case.to_string());
            assert_eq!(err.status, 400);
            assert!(!err.message.is_empty());
        }
    }

    #[test]
    fn a_missing_create_id_is_assigned_once_and_kept() {
        let mut v = envelope("trace-create", json!({"name": "x"}));
        assign_missing_id(&mut v);
        let id = v["body"]["id"].as_str().unwrap().to_string();
        assign_missing_id(&mut v);
        assert_eq!(v["body"]["id"], id.as_str());
        assert_eq!(parse(v).unwrap().entity_id, id);

        let mut update = envelope("span-update", json!({}));
        assign_missing_id(&mut update);
        assert!(update["body"].get("id").is_none());
    }

    #[test]
    fn usage_in_every_shape_becomes_langfuse_keys() {
        let usage = |body: Value| {
            let e = parse(envelope("generation-create", body)).unwrap();
            let Body::Observation(o) = e.body else {
                panic!()
            };
            (o.usage_details, o.cost_details)
        };
        let (u, c) = usage(
            json!({"id": "g", "usage": {"input": 10, "output": 5, "unit": "TOKENS", "inputCost": 0.1, "outputCost": 0.2}}),
        );
        assert_eq!(
            u.unwrap(),
            BTreeMap::from([
                ("input".into(), 10),
                ("output".into(), 5),
                ("total".into(), 15)
            ])
        );
        // Costs are kept as sent: the merge takes their total.
        assert_eq!(
            c.unwrap(),
            BTreeMap::from([("input".into(), 0.1), ("output".into(), 0.2)])
        );

        let (u, _) = usage(
            json!({"id": "g", "usage": {"promptTokens": 3, "completionTokens": 4, "totalTokens": 7}}),
        );
        assert_eq!(
            u.unwrap(),
            BTreeMap::from([
                ("input".into(), 3),
                ("output".into(), 4),
                ("total".into(), 7)
            ])
        );

        let (u, _) = usage(
            json!({"id": "g", "usageDetails": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
            "prompt_tokens_details": {"cached_tokens": 30}, "completion_tokens_details": {"reasoning_tokens": 5}}}),
        );
        assert_eq!(
            u.unwrap(),
            BTreeMap::from([
                ("input".into(), 70),
                ("input_cached_tokens".into(), 30),
                ("output".into(), 15),
                ("output_reasoning_tokens".into(), 5),
                ("total".into(), 120)
            ])
        );

        let (u, _) = usage(
            json!({"id": "g", "usageDetails": {"input_tokens": 8, "output_tokens": 2, "total_tokens": 10}}),
        );
        assert_eq!(u.unwrap()["input"], 8);

        let (u, c) = usage(
            json!({"id": "g", "usageDetails": {"input": 1, "cache_read": 2}, "costDetails": {"input": 0.5}}),
        );
        assert_eq!(u.unwrap()["total"], 3);
        assert_eq!(c.unwrap(), BTreeMap::from([("input".into(), 0.5)]));

        // `costDetails` over the legacy costs, key by key.
        let (_, c) = usage(
            json!({"id": "g", "usage": {"input": 1, "inputCost": 0.1, "outputCost": 0.2},
                                  "costDetails": {"output": 0.3, "cache_read": 0.05}}),
        );
        assert_eq!(
            c.unwrap(),
            BTreeMap::from([
                ("cache_read".into(), 0.05),
                ("input".into(), 0.1),
                ("output".into(), 0.3)
            ])
        );
    }

    #[test]
    fn openai_usage_is_renamed_only_when_the_whole_shape_is_there() {
        let usage = |details: Value| {
            let e = parse(envelope(
                "generation-create",
                json!({"id": "g", "usageDetails": details}),
            ))
            .unwrap();
            let Body::Observation(o) = e.body else {
                panic!()
            };
            o.usage_details.map(|u| json!(u))
        };
        // The whole completion shape, with its breakdowns taken out of input and output.
        assert_eq!(
            usage(
                json!({"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14,
                "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": null},
                "completion_tokens_details": null})
            ),
            Some(json!({"input": 7, "input_cached_tokens": 3, "output": 4, "total": 14}))
        );
        // The whole response shape, with a breakdown larger than its count.
        assert_eq!(
            usage(
                json!({"input_tokens": 2, "output_tokens": 5, "total_tokens": 7,
                "input_tokens_details": {"cached_tokens": 3}})
            ),
            Some(json!({"input": 0, "input_cached_tokens": 3, "output": 5, "total": 7}))
        );
        // No total: the keys stay as sent, and the total is their sum.
        assert_eq!(
            usage(json!({"prompt_tokens": 10, "completion_tokens": 4})),
            Some(json!({"prompt_tokens": 10, "completion_tokens": 4, "total": 14}))
        );
        // Another key beside the shape: kept as sent; the breakdown, not a count, is left out,
        // and the total sums every count, `total_tokens` included, as Langfuse's does.
        assert_eq!(
            usage(
                json!({"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14,
                "prompt_cache_hit_tokens": 2, "prompt_tokens_details": {"cached_tokens": 2}})
            ),
            Some(
                json!({"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14,
                "prompt_cache_hit_tokens": 2, "total": 30})
            )
        );
        // A count that is not whole, or a breakdown that is not a map of counts, breaks the
        // shape too.
        assert_eq!(
            usage(json!({"prompt_tokens": 1.5, "completion_tokens": 4, "total_tokens": 6})),
            Some(
                json!({"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6, "total": 12})
            )
        );
        assert_eq!(
            usage(
                json!({"input_tokens": 1, "output_tokens": 1, "total_tokens": 2,
                "output_tokens_details": {"reasoning_tokens": "many"}})
            ),
            Some(json!({"input_tokens": 1, "output_tokens": 1, "total_tokens": 2, "total": 4}))
        );
        // Counts may come as strings of digits; other strings are refused.
        assert_eq!(
            usage(json!({"input": "12", "output": 3})),
            Some(json!({"input": 12, "output": 3, "total": 15}))
        );
        let refused = parse(envelope(
            "generation-create",
            json!({"id": "g", "usageDetails": {"input": "lots"}}),
        ))
        .unwrap_err();
        assert_eq!(refused.status, 400);
        assert!(refused.message.contains("input"), "{}", refused.message);
    }

    #[test]
    fn a_score_names_one_of_langfuses_sources() {
        let parsed = |body: Value| parse(envelope("score-create", body));
        let base = json!({"id": "s", "name": "q", "traceId": "t", "value": 1});
        let Body::Score(s) = parsed(base.clone()).unwrap().body else {
            panic!()
        };
        assert_eq!((s.source, s.author_user_id), (None, None));
        for source in SCORE_SOURCES {
            let mut body = base.clone();
            body["source"] = json!(source);
            let Body::Score(s) = parsed(body).unwrap().body else {
                panic!()
            };
            assert_eq!(s.source.as_deref(), Some(source));
        }
        let mut body = base;
        body["source"] = json!("HUMAN");
        let refused = parsed(body).unwrap_err();
        assert_eq!(refused.status, 400);
        assert!(
            refused.message.contains("body.source"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn scores_infer_and_check_their_data_type() {
        let score = |body: Value| {
            let e = parse(envelope("score-create", body)).unwrap();
            let Body::Score(s) = e.body else { panic!() };
            s
        };
        let s = score(json!({"id": "s", "name": "q", "traceId": "t", "value": 0.9}));
        assert_eq!((s.data_type, s.value), (ScoreDataType::Numeric, 0.9));
        let s = score(json!({"id": "s", "name": "q", "traceId": "t", "value": "good"}));
        assert_eq!(s.data_type, ScoreDataType::Categorical);
        assert_eq!(s.string_value.as_deref(), Some("good"));
        let s = score(
            json!({"id": "s", "name": "q", "sessionId": "x", "value": 1, "dataType": "BOOLEAN"}),
        );
        assert_eq!(s.string_value.as_deref(), Some("True"));
        let s = score(
            json!({"id": "s", "name": "q", "traceId": "t", "value": "fine", "dataType": "TEXT"}),
        );
        assert_eq!(s.data_type, ScoreDataType::Text);
        assert_eq!(s.string_value.as_deref(), Some("fine"));
        let s = score(
            json!({"id": "s", "name": "q", "traceId": "t", "value": "Paris.", "dataType": "CORRECTION"}),
        );
        assert_eq!(s.data_type, ScoreDataType::Correction);
        assert_eq!(s.string_value.as_deref(), Some("Paris."));
        // A categorical score checked against its config: the category's number and label.
        let s = score(json!({"id": "s", "name": "q", "traceId": "t", "value": 2,
            "stringValue": "good", "dataType": "CATEGORICAL"}));
        assert_eq!((s.value, s.string_value.as_deref()), (2.0, Some("good")));

        let refused = |body: Value| parse(envelope("score-create", body)).unwrap_err().message;
        for (value, data_type, reason) in [
            (json!(""), "TEXT", "1 to 500 characters"),
            (json!("x".repeat(501)), "TEXT", "1 to 500 characters"),
            (json!(1), "TEXT", "TEXT score must be a string"),
            (json!(1), "CORRECTION", "CORRECTION score must be a string"),
            (json!("x"), "PERCENT", "is not one of"),
        ] {
            let error = refused(
                json!({"id": "s", "name": "q", "traceId": "t", "value": value, "dataType": data_type}),
            );
            assert!(error.contains(reason), "{data_type}: {error}");
        }
    }

    #[test]
    fn environments_are_normalised_never_refused() {
        assert_eq!(
            normalize_environment(Some("Production")).as_deref(),
            Some("production")
        );
        assert_eq!(
            normalize_environment(Some("Langfuse-Prod")).as_deref(),
            Some("prod")
        );
        assert_eq!(
            normalize_environment(Some("langfuselangfuse_x")).as_deref(),
            Some("x")
        );
        assert_eq!(normalize_environment(Some("langfuse")), None);
        assert_eq!(normalize_environment(Some("has space")), None);
        assert_eq!(normalize_environment(Some("")), None);
        assert_eq!(normalize_environment(None), None);
        assert_eq!(
            normalize_environment(Some(&"a".repeat(50))).unwrap().len(),
            40
        );
    }

    #[test]
    fn sdk_logs_are_accepted_but_not_events() {
        let parsed = parse_envelope(&envelope("sdk-log", json!({"log": "hello"}))).unwrap();
        assert!(matches!(parsed, Parsed::SdkLog { .. }));
    }

    mod text_and_value_parsers_agree {
        use proptest::prelude::*;

        use super::*;

        fn any_json() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                Just(json!("text")),
                Just(json!("")),
                Just(json!("2024-05-01T10:00:00Z")),
                Just(json!("not a time")),
                Just(json!(3)),
                Just(json!(-1.5)),
                Just(json!(true)),
                Just(json!({"a": 1, "b": {"c": [1, "x"]}, "input": 2})),
                Just(json!([{"role": "user", "content": "hi \"there\"\n"}])),
                Just(json!({"input": 10, "output": 5, "total": 15})),
                Just(json!({"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3})),
                Just(json!("ERROR")),
                Just(json!("NUMERIC")),
                Just(json!("GENERATION")),
                Just(json!(["a", "b"])),
            ]
        }

        const BODY_KEYS: &[&str] = &[
            "id",
            "traceId",
            "name",
            "startTime",
            "endTime",
            "timestamp",
            "input",
            "output",
            "metadata",
            "level",
            "statusMessage",
            "model",
            "modelParameters",
            "usage",
            "usageDetails",
            "costDetails",
            "environment",
            "userId",
            "sessionId",
            "tags",
            "public",
            "value",
            "dataType",
            "stringValue",
            "comment",
            "type",
            "promptName",
            "promptVersion",
            "parentObservationId",
            "completionStartTime",
            "log",
            "version",
        ];

        fn any_envelope() -> impl Strategy<Value = Value> {
            let kind = prop_oneof![
                Just(json!("trace-create")),
                Just(json!("span-create")),
                Just(json!("span-update")),
                Just(json!("generation-create")),
                Just(json!("generation-update")),
                Just(json!("event-create")),
                Just(json!("tool-create")),
                Just(json!("score-create")),
                Just(json!("sdk-log")),
                Just(json!("observation-create")),
                Just(json!("observation-update")),
                Just(json!("agent-update")),
                Just(json!("no-such-type")),
                Just(json!(7)),
            ];
            let id = prop_oneof![
                Just(json!("e1")),
                Just(json!("")),
                Just(json!(5)),
                Just(Value::Null)
            ];
            let timestamp = prop_oneof![
                Just(json!("2024-05-01T10:00:00.000Z")),
                Just(json!("2024-05-01 10:00:00")),
                Just(json!("yesterday")),
                Just(json!(1714557600))
            ];
            let body = prop::collection::vec((prop::sample::select(BODY_KEYS), any_json()), 0..10)
                .prop_map(|fields| {
                    let mut body = Map::new();
                    body.insert("id".into(), json!("entity-1"));
                    for (key, value) in fields {
                        body.insert(key.to_string(), value);
                    }
                    Value::Object(body)
                });
            let body = prop_oneof![9 => body, 1 => Just(json!("not an object"))];
            (kind, id, timestamp, body, any::<[bool; 3]>()).prop_map(
                |(kind, id, timestamp, body, [with_id, with_timestamp, with_kind])| {
                    let mut envelope = Map::new();
                    if with_id || id.is_string() {
                        envelope.insert("id".into(), id);
                    }
                    if with_timestamp || timestamp.is_string() {
                        envelope.insert("timestamp".into(), timestamp);
                    }
                    if with_kind || kind.is_string() {
                        envelope.insert("type".into(), kind);
                    }
                    envelope.insert("body".into(), body);
                    Value::Object(envelope)
                },
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Whatever the envelope, the worker's reading of its stored text says what the web
            /// role's reading of it said: the same event, or the same error.
            #[test]
            fn on_every_envelope(envelope in any_envelope()) {
                let text = serde_json::to_string(&envelope).unwrap();
                prop_assert_eq!(parse_envelope_text(&text), parse_envelope(&envelope));
                let pretty = serde_json::to_string_pretty(&envelope).unwrap();
                prop_assert_eq!(parse_envelope_text(&pretty), parse_envelope(&envelope));
            }

            /// Checking an envelope accepts and refuses exactly what parsing it does, and says
            /// the same of the entity it belongs to.
            #[test]
            fn checking_agrees_with_parsing(envelope in any_envelope()) {
                prop_assert_eq!(
                    check_envelope(&envelope),
                    parse_envelope(&envelope).map(Checked::from)
                );
            }
        }

        #[test]
        fn usual_envelopes_take_the_short_way() {
            for (kind, body) in [
                (
                    "trace-create",
                    json!({"id": "t", "metadata": {"a": [1]}, "input": "q"}),
                ),
                (
                    "generation-create",
                    json!({"id": "g", "traceId": "t", "usageDetails": {"input": 3}}),
                ),
                (
                    "span-update",
                    json!({"id": "s", "endTime": "2024-05-01T10:00:01Z"}),
                ),
                (
                    "score-create",
                    json!({"id": "c", "traceId": "t", "name": "q", "value": 1}),
                ),
            ] {
                let text = envelope(kind, body).to_string();
                let short = parse_usual_envelope(&text).expect(kind);
                assert_eq!(
                    Ok(short),
                    parse_envelope(&serde_json::from_str(&text).unwrap())
                );
            }
        }

        #[test]
        fn on_text_a_value_would_read_differently() {
            // A repeated key: the last one counts, as when the text is read as a value.
            let text = r#"{"id":"e1","id":"e2","timestamp":"2024-05-01T10:00:00Z","type":"span-create","body":{"id":"s"}}"#;
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(parse_envelope_text(text), parse_envelope(&value));
            // An escaped timestamp cannot be borrowed as it stands.
            let text = r#"{"id":"e1","timestamp":"2024-05-01T10:00:00\u005a","type":"span-create","body":{"id":"s"}}"#;
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(parse_envelope_text(text), parse_envelope(&value));
            assert!(parse_envelope_text(text).is_ok());
        }
    }
}
