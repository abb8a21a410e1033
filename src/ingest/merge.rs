//! The merge: every event ever received for one entity → the one record stored for it.
//!
//! Rules (the same for any order of arrival, any duplication, any split over batches):
//! - Events are ordered by their envelope timestamp, a create before an update on a tie, then by
//!   event id, so the order is total; an event id seen twice counts once (its newest copy).
//! - A later non-null value wins, except for the fields a record is identified and sorted by
//!   (`trace_id`, start time / timestamp, `environment`), which the first event that carries them
//!   fixes, and `created_at`, the first event's time.
//! - Metadata is merged key by key (later wins per key); tags are united.
//! - `event_ts`, the version ClickHouse's ReplacingMergeTree keeps the greatest of, is the newest
//!   event's timestamp: a merge over more events never has a smaller version.
//!
//! Pure code: no I/O, so it is covered by property tests.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::event::{
    Body, Event, ExperimentPatch, ObservationPatch, ScoreDataType, ScorePatch, TracePatch,
    DEFAULT_ENVIRONMENT,
};
use crate::domain::entity::EntityKind;
use crate::domain::observation::{Level, ObservationType};

#[derive(Debug, Clone, PartialEq)]
pub struct TraceRecord {
    pub id: String,
    pub project_id: String,
    pub timestamp: DateTime<Utc>,
    pub name: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub release: Option<String>,
    pub version: Option<String>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub environment: String,
    pub public: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub event_ts: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservationRecord {
    pub id: String,
    pub project_id: String,
    pub trace_id: String,
    pub observation_type: ObservationType,
    pub parent_observation_id: Option<String>,
    pub name: Option<String>,
    pub start_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    pub completion_start_time: Option<DateTime<Utc>>,
    pub metadata: BTreeMap<String, String>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub level: Level,
    pub status_message: Option<String>,
    pub version: Option<String>,
    pub environment: String,
    pub model: Option<String>,
    pub model_parameters: Option<String>,
    pub usage_details: BTreeMap<String, u64>,
    /// The costs as the client sent them.
    pub provided_cost_details: BTreeMap<String, f64>,
    /// The sent costs with their total ([`provided_cost_total`]).
    pub cost_details: BTreeMap<String, f64>,
    pub total_cost: Option<f64>,
    /// What the attribute conditions of pricing tiers read.
    pub tier_attributes: Option<TierAttributes>,
    pub prompt_name: Option<String>,
    pub prompt_version: Option<u16>,
    /// The experiment fields of its events, each the latest sent (metadata key by key); all
    /// `None` for an observation outside experiments.
    pub experiment: ExperimentPatch,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub event_ts: DateTime<Utc>,
}

/// Folds one event's experiment fields into what the earlier events said.
fn merge_experiment(into: &mut ExperimentPatch, from: &Option<Box<ExperimentPatch>>) {
    let Some(from) = from else {
        return;
    };
    latest(&mut into.id, &from.id);
    latest(&mut into.name, &from.name);
    latest(&mut into.description, &from.description);
    latest(&mut into.dataset_id, &from.dataset_id);
    latest(&mut into.item_id, &from.item_id);
    latest(&mut into.item_version, &from.item_version);
    latest(
        &mut into.item_root_observation_id,
        &from.item_root_observation_id,
    );
    latest(&mut into.item_expected_output, &from.item_expected_output);
    for (slot, value) in [
        (&mut into.metadata, &from.metadata),
        (&mut into.item_metadata, &from.item_metadata),
    ] {
        if let Some(value) = value {
            merge_metadata(slot.get_or_insert_with(BTreeMap::new), &Some(value.clone()));
        }
    }
}

/// The model parameters and metadata of the last event (in merge order) that carried usage: what
/// the attribute conditions of a model's pricing tiers are checked against, as Langfuse checks
/// them. Not the merged ones: a later update that changes the parameters without new usage does
/// not change the tier of the usage sent before it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TierAttributes {
    pub model_parameters: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// The total of costs a client sent, as Langfuse takes it: the sent `total`; else, when only
/// `input` and `output` were sent (either or both), their sum; else none (a sum over other cost
/// types could count a part twice).
pub fn provided_cost_total(costs: &BTreeMap<String, f64>) -> Option<f64> {
    if costs.is_empty() {
        return None;
    }
    if let Some(total) = costs.get("total") {
        return Some(*total);
    }
    costs
        .keys()
        .all(|k| k == "input" || k == "output")
        .then(|| costs.values().sum())
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRecord {
    pub id: String,
    pub project_id: String,
    pub timestamp: DateTime<Utc>,
    pub name: String,
    pub value: f64,
    pub string_value: Option<String>,
    pub data_type: ScoreDataType,
    pub trace_id: Option<String>,
    pub observation_id: Option<String>,
    pub session_id: Option<String>,
    pub dataset_run_id: Option<String>,
    pub comment: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub environment: String,
    pub config_id: Option<String>,
    pub queue_id: Option<String>,
    pub source: String,
    pub author_user_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub event_ts: DateTime<Utc>,
}

/// Sorts and de-duplicates one entity's events into the order the rules apply them in.
/// The events of one entity, in merge order.
fn events_of<'a>(
    id: &str,
    kind: EntityKind,
    events: impl IntoIterator<Item = &'a Event>,
) -> Vec<&'a Event> {
    ordered(
        events
            .into_iter()
            .filter(|e| e.entity_id == id && e.entity_kind() == kind),
    )
}

fn ordered<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<&'a Event> {
    let mut events: Vec<&Event> = events.into_iter().collect();
    // A create sorts before an update at the same instant (`!is_create` is false for creates).
    events.sort_by(|a, b| {
        (a.timestamp, !a.is_create, &a.event_id).cmp(&(b.timestamp, !b.is_create, &b.event_id))
    });
    // One event id counts once; should a client reuse an id for different content, the newest
    // copy is kept, so that a merge over more events never gets an older version.
    let mut seen = BTreeSet::new();
    let mut newest_first: Vec<&Event> = events
        .into_iter()
        .rev()
        .filter(|e| seen.insert(e.event_id.as_str()))
        .collect();
    newest_first.reverse();
    newest_first
}

/// Sets `slot` to `value` when `value` is present: a later non-null value wins.
fn latest<T: Clone>(slot: &mut Option<T>, value: &Option<T>) {
    if value.is_some() {
        slot.clone_from(value);
    }
}

/// Sets `slot` only if nothing set it yet: the first value wins.
fn first<T: Clone>(slot: &mut Option<T>, value: &Option<T>) {
    if slot.is_none() {
        slot.clone_from(value);
    }
}

fn merge_metadata(into: &mut BTreeMap<String, String>, from: &Option<BTreeMap<String, String>>) {
    if let Some(from) = from {
        into.extend(from.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

struct Times {
    created_at: DateTime<Utc>,
    event_ts: DateTime<Utc>,
}

fn times(events: &[&Event]) -> Option<Times> {
    Some(Times {
        created_at: events.first()?.timestamp,
        event_ts: events.last()?.timestamp,
    })
}

/// Merges a trace's events. `None` when no event is a trace event of `id`.
pub fn merge_trace<'a>(
    project_id: &str,
    id: &str,
    events: impl IntoIterator<Item = &'a Event>,
) -> Option<TraceRecord> {
    let events = events_of(id, EntityKind::Trace, events);
    let Times {
        created_at,
        event_ts,
    } = times(&events)?;
    let mut merged = TracePatch::default();
    let mut metadata = BTreeMap::new();
    let mut tags = BTreeSet::new();
    for event in &events {
        let Body::Trace(p) = &event.body else {
            continue;
        };
        first(&mut merged.timestamp, &p.timestamp);
        first(&mut merged.environment, &p.environment);
        latest(&mut merged.name, &p.name);
        latest(&mut merged.user_id, &p.user_id);
        latest(&mut merged.session_id, &p.session_id);
        latest(&mut merged.release, &p.release);
        latest(&mut merged.version, &p.version);
        latest(&mut merged.input, &p.input);
        latest(&mut merged.output, &p.output);
        latest(&mut merged.public, &p.public);
        merge_metadata(&mut metadata, &p.metadata);
        tags.extend(p.tags.iter().flatten().cloned());
    }
    Some(TraceRecord {
        id: id.to_string(),
        project_id: project_id.to_string(),
        timestamp: merged.timestamp.unwrap_or(created_at),
        name: merged.name,
        user_id: merged.user_id,
        session_id: merged.session_id,
        release: merged.release,
        version: merged.version,
        input: merged.input,
        output: merged.output,
        metadata,
        tags: tags.into_iter().collect(),
        environment: merged
            .environment
            .unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_string()),
        public: merged.public.unwrap_or(false),
        created_at,
        updated_at: event_ts,
        event_ts,
    })
}

/// The trace Langfuse creates for observations whose trace was never sent: just an id, a time and
/// an environment. Its version is the Unix epoch, so any real trace row of the same id wins.
pub fn wrapper_trace(project_id: &str, observation: &ObservationRecord) -> TraceRecord {
    let epoch = DateTime::<Utc>::UNIX_EPOCH;
    TraceRecord {
        id: observation.trace_id.clone(),
        project_id: project_id.to_string(),
        timestamp: observation.start_time,
        name: None,
        user_id: None,
        session_id: None,
        release: None,
        version: None,
        input: None,
        output: None,
        metadata: BTreeMap::new(),
        tags: Vec::new(),
        environment: observation.environment.clone(),
        public: false,
        created_at: observation.created_at,
        updated_at: observation.created_at,
        event_ts: epoch,
    }
}

/// Merges an observation's events. `None` when no event is an observation event of `id`.
pub fn merge_observation<'a>(
    project_id: &str,
    id: &str,
    events: impl IntoIterator<Item = &'a Event>,
) -> Option<ObservationRecord> {
    let events = events_of(id, EntityKind::Observation, events);
    let Times {
        created_at,
        event_ts,
    } = times(&events)?;
    let patches: Vec<(bool, &ObservationPatch)> = events
        .iter()
        .filter_map(|e| match &e.body {
            Body::Observation(p) => Some((e.is_create, p)),
            _ => None,
        })
        .collect();
    // The type is what the (first) create said; an entity seen only through updates takes theirs.
    let observation_type = patches
        .iter()
        .find(|(is_create, _)| *is_create)
        .or(patches.first())
        .map(|(_, p)| p.observation_type)?;

    let mut trace_id = None;
    let mut start_time = None;
    let mut environment = None;
    let mut parent = None;
    let mut name = None;
    let mut end_time = None;
    let mut completion_start_time = None;
    let mut metadata = BTreeMap::new();
    let mut input = None;
    let mut output = None;
    let mut level = None;
    let mut status_message = None;
    let mut version = None;
    let mut model = None;
    let mut model_parameters = None;
    let mut usage_details = None;
    let mut cost_details = None;
    let mut prompt_name = None;
    let mut prompt_version = None;
    let mut experiment = ExperimentPatch::default();
    let mut last_with_usage = None;
    for (_, p) in &patches {
        first(&mut trace_id, &p.trace_id);
        first(&mut start_time, &p.start_time);
        first(&mut environment, &p.environment);
        latest(&mut parent, &p.parent_observation_id);
        latest(&mut name, &p.name);
        latest(&mut end_time, &p.end_time);
        latest(&mut completion_start_time, &p.completion_start_time);
        merge_metadata(&mut metadata, &p.metadata);
        latest(&mut input, &p.input);
        latest(&mut output, &p.output);
        latest(&mut level, &p.level);
        latest(&mut status_message, &p.status_message);
        latest(&mut version, &p.version);
        latest(&mut model, &p.model);
        latest(&mut model_parameters, &p.model_parameters);
        latest(&mut usage_details, &p.usage_details);
        if p.usage_details.is_some() {
            last_with_usage = Some(*p);
        }
        latest(&mut cost_details, &p.cost_details);
        latest(&mut prompt_name, &p.prompt_name);
        latest(&mut prompt_version, &p.prompt_version);
        merge_experiment(&mut experiment, &p.experiment);
    }
    // Updates alone do not say which trace an observation belongs to: until an event names the
    // trace or the create arrives, there is no record to write (a guess would leave a wrong row).
    let seen_create = patches.iter().any(|(is_create, _)| *is_create);
    if trace_id.is_none() && !seen_create {
        return None;
    }
    let start_time = start_time.unwrap_or(created_at);
    // An event is a point in time: it ends where it starts.
    if observation_type == ObservationType::Event && end_time.is_none() {
        end_time = Some(start_time);
    }
    let provided_cost_details: BTreeMap<String, f64> = cost_details.unwrap_or_default();
    let total_cost = provided_cost_total(&provided_cost_details);
    let mut cost_details = provided_cost_details.clone();
    if let Some(total) = total_cost {
        cost_details.entry("total".to_string()).or_insert(total);
    }
    let tier_attributes = last_with_usage.map(|p| TierAttributes {
        model_parameters: p.model_parameters.clone(),
        metadata: p.metadata.clone().unwrap_or_default(),
    });
    Some(ObservationRecord {
        id: id.to_string(),
        project_id: project_id.to_string(),
        // An observation sent without a trace is its own trace, as Langfuse does.
        trace_id: trace_id.unwrap_or_else(|| id.to_string()),
        observation_type,
        parent_observation_id: parent,
        name,
        start_time,
        end_time,
        completion_start_time,
        metadata,
        input,
        output,
        level: level.unwrap_or(Level::Default),
        status_message,
        version,
        environment: environment.unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_string()),
        model,
        model_parameters,
        usage_details: usage_details.unwrap_or_default(),
        provided_cost_details,
        cost_details,
        total_cost,
        tier_attributes,
        prompt_name,
        prompt_version,
        experiment,
        created_at,
        updated_at: event_ts,
        event_ts,
    })
}

/// The trace `merge_observation` would give the observation `id`, without building the rest of
/// the record: the first trace id in merge order; the observation itself when only creates without
/// one exist; `None` when nothing says (updates alone), as the merge has no record then.
pub fn observation_trace_id<'a>(
    id: &str,
    events: impl IntoIterator<Item = &'a Event>,
) -> Option<String> {
    let events = events_of(id, EntityKind::Observation, events);
    let mut seen_create = false;
    for event in &events {
        if let Body::Observation(p) = &event.body {
            if let Some(trace_id) = &p.trace_id {
                return Some(trace_id.clone());
            }
            seen_create |= event.is_create;
        }
    }
    seen_create.then(|| id.to_string())
}

/// The trace `merge_score` would give the score `id`: the first trace id in merge order.
pub fn score_trace_id<'a>(id: &str, events: impl IntoIterator<Item = &'a Event>) -> Option<String> {
    let events = events_of(id, EntityKind::Score, events);
    events.iter().find_map(|e| match &e.body {
        Body::Score(p) => p.trace_id.clone(),
        _ => None,
    })
}

/// Merges a score's events (scores are created, and re-created with the same id to change them).
pub fn merge_score<'a>(
    project_id: &str,
    id: &str,
    events: impl IntoIterator<Item = &'a Event>,
) -> Option<ScoreRecord> {
    let events = events_of(id, EntityKind::Score, events);
    let Times {
        created_at,
        event_ts,
    } = times(&events)?;
    let patches: Vec<&ScorePatch> = events
        .iter()
        .filter_map(|e| match &e.body {
            Body::Score(p) => Some(p),
            _ => None,
        })
        .collect();
    let last = *patches.last()?;
    let mut trace_id = None;
    let mut environment = None;
    let mut observation_id = None;
    let mut session_id = None;
    let mut dataset_run_id = None;
    let mut comment = None;
    let mut config_id = None;
    let mut queue_id = None;
    let mut source = None;
    let mut author_user_id = None;
    let mut metadata = BTreeMap::new();
    for p in &patches {
        first(&mut trace_id, &p.trace_id);
        first(&mut environment, &p.environment);
        latest(&mut observation_id, &p.observation_id);
        latest(&mut session_id, &p.session_id);
        latest(&mut dataset_run_id, &p.dataset_run_id);
        latest(&mut comment, &p.comment);
        latest(&mut config_id, &p.config_id);
        latest(&mut queue_id, &p.queue_id);
        latest(&mut source, &p.source);
        latest(&mut author_user_id, &p.author_user_id);
        merge_metadata(&mut metadata, &p.metadata);
    }
    Some(ScoreRecord {
        id: id.to_string(),
        project_id: project_id.to_string(),
        timestamp: created_at,
        // Name, value and type always travel together: the newest event's.
        name: last.name.clone(),
        value: last.value,
        string_value: last.string_value.clone(),
        data_type: last.data_type,
        trace_id,
        observation_id,
        session_id,
        dataset_run_id,
        comment,
        metadata,
        environment: environment.unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_string()),
        config_id,
        queue_id,
        // As Langfuse's ingestion: the source the events name, else `API`.
        source: source.unwrap_or_else(|| "API".to_string()),
        author_user_id,
        created_at,
        updated_at: event_ts,
        event_ts,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::ingest::event::{parse_envelope, Parsed};

    fn at(second: u32) -> String {
        Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, second)
            .unwrap()
            .to_rfc3339()
    }

    fn event(id: &str, second: u32, kind: &str, body: serde_json::Value) -> Event {
        let v = json!({"id": id, "timestamp": at(second), "type": kind, "body": body});
        match parse_envelope(&v).unwrap() {
            Parsed::Event(e) => *e,
            Parsed::SdkLog { .. } => unreachable!(),
        }
    }

    #[test]
    fn later_values_win_and_first_values_stay() {
        let events = vec![
            event(
                "a",
                1,
                "trace-create",
                json!({"id": "t", "name": "first", "environment": "prod",
                "metadata": {"k1": "a", "k2": "a"}, "tags": ["x"], "timestamp": at(0)}),
            ),
            event(
                "b",
                2,
                "trace-create",
                json!({"id": "t", "name": "second", "environment": "dev",
                "metadata": {"k2": "b"}, "tags": ["y", "x"], "userId": "u"}),
            ),
            event("c", 3, "trace-create", json!({"id": "t", "output": "done"})),
        ];
        let t = merge_trace("p", "t", &events).unwrap();
        assert_eq!(t.name.as_deref(), Some("second"));
        assert_eq!(t.environment, "prod");
        assert_eq!(t.user_id.as_deref(), Some("u"));
        assert_eq!(t.output.as_deref(), Some("done"));
        assert_eq!(t.tags, vec!["x", "y"]);
        assert_eq!(
            t.metadata,
            BTreeMap::from([("k1".into(), "a".into()), ("k2".into(), "b".into())])
        );
        assert_eq!(t.timestamp.to_rfc3339(), at(0));
        assert_eq!(t.created_at.to_rfc3339(), at(1));
        assert_eq!(t.event_ts.to_rfc3339(), at(3));
    }

    #[test]
    fn an_update_before_its_create_gives_the_same_observation() {
        let create = event(
            "c",
            5,
            "generation-create",
            json!({"id": "g", "traceId": "t", "name": "llm",
            "startTime": at(5), "model": "gpt-4o"}),
        );
        let update = event(
            "u",
            6,
            "generation-update",
            json!({"id": "g", "endTime": at(6), "output": "hi",
            "usage": {"input": 3, "output": 2}}),
        );
        let a = merge_observation("p", "g", [&create, &update]).unwrap();
        let b = merge_observation("p", "g", [&update, &create]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.observation_type, ObservationType::Generation);
        assert_eq!(a.model.as_deref(), Some("gpt-4o"));
        assert_eq!(a.usage_details["total"], 5);
        assert_eq!(a.end_time.unwrap().to_rfc3339(), at(6));
    }

    #[test]
    fn tiers_read_the_parameters_and_metadata_of_the_last_event_with_usage() {
        let create = event(
            "c",
            5,
            "generation-create",
            json!({"id": "g", "traceId": "t", "model": "gpt-4o",
            "modelParameters": {"service_tier": "priority"}, "metadata": {"region": "eu"},
            "usage": {"input": 3}}),
        );
        let update = event(
            "u",
            6,
            "generation-update",
            json!({"id": "g", "modelParameters": {"service_tier": "default"},
            "metadata": {"region": "us"}}),
        );
        let merged = merge_observation("p", "g", [&update, &create]).unwrap();
        // The record shows the latest values; the tier reads those sent with the usage.
        assert_eq!(
            merged.model_parameters.as_deref(),
            Some(r#"{"service_tier":"default"}"#)
        );
        assert_eq!(
            merged.tier_attributes,
            Some(TierAttributes {
                model_parameters: Some(r#"{"service_tier":"priority"}"#.into()),
                metadata: BTreeMap::from([("region".into(), "eu".into())]),
            })
        );
        // A later event with usage is the one read, even without parameters of its own.
        let usage = event(
            "v",
            7,
            "generation-update",
            json!({"id": "g", "usage": {"input": 4}}),
        );
        let merged = merge_observation("p", "g", [&create, &update, &usage]).unwrap();
        assert_eq!(merged.tier_attributes, Some(TierAttributes::default()));
        // No event with usage: nothing to read.
        let bare = event(
            "b",
            5,
            "generation-create",
            json!({"id": "g", "traceId": "t", "modelParameters": {"service_tier": "priority"}}),
        );
        let merged = merge_observation("p", "g", [&bare, &update]).unwrap();
        assert_eq!(merged.tier_attributes, None);
    }

    #[test]
    fn sent_costs_are_kept_and_totalled_as_langfuse_totals_them() {
        let costs = |body: serde_json::Value| {
            let mut body = body;
            body["id"] = json!("g");
            body["traceId"] = json!("t");
            let e = event("c", 5, "generation-create", body);
            let o = merge_observation("p", "g", [&e]).unwrap();
            (
                json!(o.provided_cost_details),
                json!(o.cost_details),
                o.total_cost,
            )
        };
        // Input and output only: their sum is the total.
        assert_eq!(
            costs(json!({"costDetails": {"input": 0.5, "output": 0.25}})),
            (
                json!({"input": 0.5, "output": 0.25}),
                json!({"input": 0.5, "output": 0.25, "total": 0.75}),
                Some(0.75)
            )
        );
        assert_eq!(
            costs(json!({"usage": {"inputCost": 1.5}})),
            (
                json!({"input": 1.5}),
                json!({"input": 1.5, "total": 1.5}),
                Some(1.5)
            )
        );
        // A sent total is the total, whatever the parts add up to.
        assert_eq!(
            costs(json!({"costDetails": {"input": 0.5, "cache_read": 0.1, "total": 2.0}})).2,
            Some(2.0)
        );
        // Other cost types and no total: no total.
        assert_eq!(
            costs(json!({"costDetails": {"input": 0.5, "cache_read": 0.1}})),
            (
                json!({"cache_read": 0.1, "input": 0.5}),
                json!({"cache_read": 0.1, "input": 0.5}),
                None
            )
        );
        assert_eq!(costs(json!({})), (json!({}), json!({}), None));
    }

    #[test]
    fn on_a_tie_the_create_comes_first() {
        let update = event(
            "a-update",
            5,
            "span-update",
            json!({"id": "s", "name": "from update"}),
        );
        let create = event(
            "z-create",
            5,
            "span-create",
            json!({"id": "s", "name": "from create", "traceId": "t"}),
        );
        let merged = merge_observation("p", "s", [&update, &create]).unwrap();
        assert_eq!(merged.name.as_deref(), Some("from update"));
    }

    #[test]
    fn observations_without_a_trace_get_one_and_events_end_where_they_start() {
        let e = event(
            "e",
            1,
            "event-create",
            json!({"id": "ev", "startTime": at(1)}),
        );
        let merged = merge_observation("p", "ev", [&e]).unwrap();
        assert_eq!(merged.trace_id, "ev");
        assert_eq!(merged.end_time, Some(merged.start_time));
        let wrapper = wrapper_trace("p", &merged);
        assert_eq!(wrapper.id, "ev");
        assert_eq!(wrapper.timestamp, merged.start_time);
        assert_eq!(wrapper.event_ts, DateTime::<Utc>::UNIX_EPOCH);
    }

    #[test]
    fn updates_without_a_trace_wait_for_their_create() {
        let update = event("u", 1, "span-update", json!({"id": "s", "name": "n"}));
        assert!(merge_observation("p", "s", [&update]).is_none());
        let create = event("c", 2, "span-create", json!({"id": "s", "traceId": "t"}));
        assert_eq!(
            merge_observation("p", "s", [&update, &create])
                .unwrap()
                .trace_id,
            "t"
        );
    }

    #[test]
    fn events_of_other_entities_are_ignored() {
        let events = vec![
            event("a", 1, "trace-create", json!({"id": "t1", "name": "one"})),
            event("b", 1, "trace-create", json!({"id": "t2", "name": "two"})),
            event("c", 1, "span-create", json!({"id": "t1"})),
        ];
        assert_eq!(
            merge_trace("p", "t1", &events).unwrap().name.as_deref(),
            Some("one")
        );
        assert!(merge_trace("p", "t3", &events).is_none());
        assert!(merge_score("p", "t1", &events).is_none());
    }

    #[test]
    fn a_re_sent_score_takes_its_newest_value() {
        let a = event(
            "a",
            1,
            "score-create",
            json!({"id": "s", "name": "q", "traceId": "t", "value": 0.1}),
        );
        let b = event(
            "b",
            2,
            "score-create",
            json!({"id": "s", "name": "q", "traceId": "t", "value": 0.9, "comment": "better"}),
        );
        let s = merge_score("p", "s", [&b, &a]).unwrap();
        assert_eq!(s.value, 0.9);
        assert_eq!(s.comment.as_deref(), Some("better"));
        assert_eq!(s.timestamp.to_rfc3339(), at(1));
        // Neither event names a source or an author: an API score, no author.
        assert_eq!((s.source.as_str(), s.author_user_id), ("API", None));
    }

    #[test]
    fn an_annotation_keeps_its_source_and_author() {
        let a = event(
            "a",
            1,
            "score-create",
            json!({"id": "s", "name": "q", "traceId": "t", "value": 1,
                "source": "ANNOTATION", "authorUserId": "user-1"}),
        );
        let s = merge_score("p", "s", [&a]).unwrap();
        assert_eq!(s.source, "ANNOTATION");
        assert_eq!(s.author_user_id.as_deref(), Some("user-1"));
    }

    /// A random event of trace `t` or observation `o`: any kind, time, and subset of fields.
    fn arbitrary_event() -> impl Strategy<Value = Event> {
        let kinds = prop::sample::select(vec![
            "trace-create",
            "span-create",
            "span-update",
            "generation-create",
            "generation-update",
            "event-create",
            "tool-create",
        ]);
        (
            0u32..50,
            kinds,
            0u32..10,
            prop::option::of("[a-c]{1,3}"),
            prop::option::of(prop::sample::select(vec!["prod", "dev"])),
            prop::option::of(prop::collection::btree_map("[a-c]", "[x-z]", 0..3)),
            prop::option::of(prop::collection::vec("[a-d]", 0..3)),
            prop::option::of(0u64..100),
            prop::option::of(prop::sample::select(vec!["DEBUG", "ERROR"])),
        )
            .prop_map(
                |(n, kind, second, name, env, metadata, tags, tokens, level)| {
                    let id = if kind == "trace-create" { "t" } else { "o" };
                    let mut body = json!({"id": id});
                    let b = body.as_object_mut().unwrap();
                    if let Some(name) = name {
                        b.insert("name".into(), json!(name));
                    }
                    if let Some(env) = env {
                        b.insert("environment".into(), json!(env));
                    }
                    if let Some(m) = metadata {
                        b.insert("metadata".into(), json!(m));
                    }
                    if kind == "trace-create" {
                        if let Some(tags) = tags {
                            b.insert("tags".into(), json!(tags));
                        }
                    } else {
                        // Some events leave the trace out, as updates and orphan creates may.
                        if n % 5 != 0 {
                            b.insert("traceId".into(), json!(format!("t{}", n % 2)));
                        }
                        b.insert("startTime".into(), json!(at(n % 7)));
                        if let Some(tokens) = tokens {
                            b.insert("usage".into(), json!({"input": tokens, "output": 1}));
                        }
                        if let Some(level) = level {
                            b.insert("level".into(), json!(level));
                        }
                    }
                    event(&format!("e{n}"), second, kind, body)
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Every permutation and duplication of an event set yields the identical records.
        #[test]
        fn order_and_duplicates_do_not_change_the_record(
            events in prop::collection::vec(arbitrary_event(), 1..12)
                .prop_map(|events| {
                    // One event id, one content: a duplicate is the same event sent again.
                    let mut seen = BTreeSet::new();
                    events.into_iter().filter(|e| seen.insert(e.event_id.clone())).collect::<Vec<_>>()
                }),
            shuffle_seed in any::<u64>(),
            duplicates in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let mut shuffled: Vec<Event> = events.clone();
            for index in &duplicates {
                shuffled.push(index.get(&events).clone());
            }
            // A deterministic Fisher-Yates shuffle from the seed.
            let mut state = shuffle_seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(merge_trace("p", "t", &events), merge_trace("p", "t", &shuffled));
            prop_assert_eq!(merge_observation("p", "o", &events), merge_observation("p", "o", &shuffled));

            // Split over batches: merging all at once equals merging the union of the parts.
            let (left, right) = shuffled.split_at(shuffled.len() / 2);
            let union: Vec<&Event> = right.iter().chain(left.iter()).collect();
            prop_assert_eq!(merge_observation("p", "o", union), merge_observation("p", "o", &events));
        }

        /// The cheap trace lookups agree with the full merge.
        #[test]
        fn trace_ids_agree_with_the_merge(events in prop::collection::vec(arbitrary_event(), 1..12)) {
            prop_assert_eq!(
                observation_trace_id("o", &events),
                merge_observation("p", "o", &events).map(|o| o.trace_id)
            );
        }

        /// A merge over more events never has a smaller version.
        #[test]
        fn more_events_never_lower_the_version(events in prop::collection::vec(arbitrary_event(), 2..10)) {
            let fewer = &events[..events.len() - 1];
            if let (Some(a), Some(b)) = (merge_observation("p", "o", fewer), merge_observation("p", "o", &events)) {
                prop_assert!(a.event_ts <= b.event_ts);
            }
        }
    }
}
