//! The CPU part of a write: envelopes parsed and validated each on its own (a bad one is an entry
//! in the answer's `errors`, the others are kept), grouped by entity, and encoded as the request's
//! one object (`storage::raw_events`). Pure but for a log line per SDK log event; callers run it
//! on the blocking pool ([`super::offload`]).
//!
//! A score that names a config (`configId`) is checked against it here, from the [`Configs`] the
//! caller holds (`domain::score_config` has the rules), and its envelope is rewritten as the
//! config makes the score (the config's name and data type; a category's number with its label
//! in `stringValue`), so the worker stores what was checked. When the configs at hand cannot
//! say (none read yet, or an id they lack), the batch comes back with `needs_configs` set and
//! [`super::score_configs::prepare_checked`] runs it again with configs just read.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::{BatchOutcome, Failure, Success, WriteError};
use crate::domain::entity::EntityKind;
use crate::domain::project::ProjectId;
use crate::domain::score_config::{ConfigDataType, SentValue, UNKNOWN_CONFIG};
use crate::ingest::event::{
    assign_missing_id, parse_envelope, Accepted, Body, Checked, Event, EventError, Parsed,
    ScoreDataType,
};
use crate::ingest::gzip::{self, GzipError};
use crate::storage::raw_events::{self, EntityEvents, Segment};
use crate::storage::score_configs::{ProjectConfigs, ScoreConfig};

/// A validated batch, ready to be written.
pub struct Prepared {
    pub(super) outcome: BatchOutcome,
    /// The object's bytes and its segments; `None` when no envelope was accepted.
    pub(super) object: Option<(Vec<u8>, Vec<Segment>)>,
    /// A score named a config the [`Configs`] given could not answer for: this batch must be
    /// prepared again with the project's configs read now (nothing of it was encoded).
    pub(super) needs_configs: bool,
}

/// The score configs the scores of a batch are checked against.
#[derive(Debug, Clone)]
pub enum Configs {
    /// As this process holds them (`None`: not at all): a config they lack may have been
    /// created since they were read, unless they were read within the last second.
    Cached(Option<Arc<ProjectConfigs>>),
    /// Just read: a config they lack does not exist (or is another project's).
    Fresh(Arc<ProjectConfigs>),
}

enum Lookup<'a> {
    Found(&'a ScoreConfig),
    Missing,
    Unsure,
}

impl Configs {
    fn lookup(&self, id: &str) -> Lookup<'_> {
        match self {
            Configs::Cached(None) => Lookup::Unsure,
            Configs::Cached(Some(configs)) => match configs.get(id) {
                Some(config) => Lookup::Found(config),
                None if configs.may_lack_new_configs() => Lookup::Unsure,
                None => Lookup::Missing,
            },
            Configs::Fresh(configs) => configs.get(id).map_or(Lookup::Missing, Lookup::Found),
        }
    }
}

/// A parsed score that names a config, checked against it: the score as the config makes it
/// (its name and data type, a category's number beside its label), written into the envelope
/// too so that the worker, which parses the stored envelope again, reads the same score; or the
/// refusal. `None`: `configs` cannot say.
fn configured(
    envelope: &mut Value,
    mut event: Box<Event>,
    configs: &Configs,
) -> Option<Result<Parsed, EventError>> {
    let refusal = |message: String| EventError {
        id: event.event_id.clone(),
        status: 400,
        message,
    };
    let Body::Score(score) = &mut event.body else {
        return Some(Ok(Parsed::Event(event)));
    };
    let config = match configs.lookup(score.config_id.as_deref()?) {
        Lookup::Found(config) => config,
        // Langfuse answers a config it cannot find as not found, the event's status in a batch.
        Lookup::Missing => {
            return Some(Err(EventError {
                status: 404,
                ..refusal(UNKNOWN_CONFIG.to_string())
            }))
        }
        Lookup::Unsure => return None,
    };
    let body = envelope.get_mut("body").and_then(Value::as_object_mut)?;
    let value = match body.get("value") {
        Some(Value::Number(n)) => SentValue::Number(n.as_f64().unwrap_or(f64::NAN)),
        Some(Value::String(s)) => SentValue::Text(s),
        // The parser let it through, so it is one of the two.
        _ => {
            return Some(Err(refusal(
                "body.value must be a number or a string".into(),
            )))
        }
    };
    let sent_type = body.get("dataType").and_then(Value::as_str);
    let scored = match config.fields.check_score(sent_type, value) {
        Ok(scored) => scored,
        Err(message) => return Some(Err(refusal(message))),
    };
    body.insert("name".into(), json!(config.fields.name));
    body.insert("dataType".into(), json!(scored.data_type.as_str()));
    match scored.data_type {
        ConfigDataType::Categorical => {
            body.insert("value".into(), json!(scored.value));
            body.insert("stringValue".into(), json!(scored.string_value));
        }
        ConfigDataType::Numeric | ConfigDataType::Boolean => {
            body.insert("value".into(), json!(scored.value));
        }
        ConfigDataType::Text => {}
    }
    score.name = config.fields.name.clone();
    score.data_type = match scored.data_type {
        ConfigDataType::Numeric => ScoreDataType::Numeric,
        ConfigDataType::Categorical => ScoreDataType::Categorical,
        ConfigDataType::Boolean => ScoreDataType::Boolean,
        ConfigDataType::Text => ScoreDataType::Text,
    };
    score.value = scored.value;
    score.string_value = scored.string_value;
    Some(Ok(Parsed::Event(event)))
}

/// Parses an envelope and, for a score naming a config, checks it against the config. `None`:
/// `configs` cannot say.
fn parse_checked(envelope: &mut Value, configs: &Configs) -> Option<Result<Parsed, EventError>> {
    match parse_envelope(envelope) {
        Ok(Parsed::Event(event)) if matches!(&event.body, Body::Score(s) if s.config_id.is_some()) => {
            configured(envelope, event, configs)
        }
        parsed => Some(parsed),
    }
}

impl Prepared {
    /// The object to store and where each entity's line is in it; `None` when no envelope was
    /// accepted.
    pub fn object(&self) -> Option<(&[u8], &[Segment])> {
        self.object
            .as_ref()
            .map(|(bytes, segments)| (bytes.as_slice(), segments.as_slice()))
    }
}

/// Which events a caller may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventScope {
    /// Every event: the caller showed its whole API key.
    All,
    /// Scores (and SDK log lines) only: the caller showed only its public key, as Langfuse's
    /// browser SDK does. Any other event is refused on its own, as Langfuse refuses it: 401,
    /// "Access Scope Denied", among the answer's errors.
    ScoresOnly,
}

impl EventScope {
    fn admits(self, event: &Body) -> bool {
        match self {
            EventScope::All => true,
            EventScope::ScoresOnly => matches!(event, Body::Score(_)),
        }
    }
}

/// A batch API body (`{"batch": [...]}`), gzip-compressed or not, inflated to at most `limit`
/// bytes; events outside `scope` are refused.
pub fn prepare_batch_body(
    project: &ProjectId,
    scope: EventScope,
    body: &[u8],
    gzip: bool,
    limit: usize,
    configs: &Configs,
) -> Result<Prepared, WriteError> {
    if !gzip {
        return prepare_json_body(project, scope, body, configs);
    }
    let inflated = gzip::gunzip(body, limit).map_err(|e| match e {
        GzipError::TooLarge(_) => WriteError::TooLarge(e.to_string()),
        GzipError::Invalid(_) => WriteError::Malformed(e.to_string()),
    })?;
    prepare_json_body(project, scope, &inflated, configs)
}

fn prepare_json_body(
    project: &ProjectId,
    scope: EventScope,
    body: &[u8],
    configs: &Configs,
) -> Result<Prepared, WriteError> {
    let mut request: Value = serde_json::from_slice(body)
        .map_err(|e| WriteError::Malformed(format!("Invalid request body: malformed JSON: {e}")))?;
    // Taken out of the request, so envelopes are moved rather than copied.
    let batch = match request.get_mut("batch") {
        Some(Value::Array(batch)) => std::mem::take(batch),
        _ => {
            return Err(WriteError::Malformed(
                "Invalid request data: body must be an object with a 'batch' array".to_string(),
            ))
        }
    };
    Ok(prepare_within(project, scope, batch, configs))
}

/// Envelopes as sent: each gets an id if it has none, then is parsed.
pub fn prepare(project: &ProjectId, envelopes: Vec<Value>, configs: &Configs) -> Prepared {
    prepare_within(project, EventScope::All, envelopes, configs)
}

/// Envelopes the server built for a signed-in person (a score added in the web UI): parsed as
/// they are, so the author they name is kept. Never for envelopes a client sent.
pub fn prepare_own(project: &ProjectId, envelopes: Vec<Value>, configs: &Configs) -> Prepared {
    let mut needs_configs = false;
    let parsed: Vec<_> = envelopes
        .into_iter()
        .filter_map(|mut envelope| {
            assign_missing_id(&mut envelope);
            match parse_checked(&mut envelope, configs) {
                Some(parsed) => Some((envelope, parsed)),
                None => {
                    needs_configs = true;
                    None
                }
            }
        })
        .collect();
    if needs_configs {
        return Prepared::needing_configs();
    }
    prepare_parsed(project, parsed)
}

/// Removes what only the server may say of a score from an envelope a client sent: who added it
/// (`authorUserId`, which Langfuse's ingestion schema does not take either) and the label of a
/// categorical score checked against its config (`stringValue`, set only by [`configured`]). Its
/// `source` stays: Langfuse's ingestion schema takes `API`, `EVAL` or `ANNOTATION` from clients.
///
/// An observation's `experiment` object goes too: it is how OTLP spans' experiment attributes
/// reach the worker, which makes dataset runs of it, and Langfuse's ingestion schema has no such
/// field for clients.
fn drop_server_fields(envelope: &mut Value) {
    let is_score = envelope.get("type").and_then(Value::as_str) == Some("score-create");
    if let Some(body) = envelope.get_mut("body").and_then(Value::as_object_mut) {
        if is_score {
            body.remove("authorUserId");
            body.remove("stringValue");
        } else {
            body.remove("experiment");
        }
    }
}

/// `prepare`, refusing the valid events outside `scope`. Their errors follow those of invalid
/// events, in the order Langfuse lists them.
fn prepare_within(
    project: &ProjectId,
    scope: EventScope,
    envelopes: Vec<Value>,
    configs: &Configs,
) -> Prepared {
    let mut refused = Vec::new();
    let mut needs_configs = false;
    let admitted: Vec<_> = envelopes
        .into_iter()
        .filter_map(|mut envelope| {
            if needs_configs {
                return None;
            }
            drop_server_fields(&mut envelope);
            assign_missing_id(&mut envelope);
            let Some(parsed) = parse_checked(&mut envelope, configs) else {
                needs_configs = true;
                return None;
            };
            match &parsed {
                Ok(Parsed::Event(event)) if !scope.admits(&event.body) => {
                    refused.push(Failure {
                        id: event.event_id.clone(),
                        status: 401,
                        message: "Authentication error".to_string(),
                        error: "Access Scope Denied".to_string(),
                    });
                    None
                }
                _ => Some((envelope, parsed)),
            }
        })
        .collect();
    if needs_configs {
        return Prepared::needing_configs();
    }
    let mut prepared = prepare_parsed(project, admitted);
    prepared.outcome.errors.extend(refused);
    prepared
}

impl Prepared {
    fn needing_configs() -> Prepared {
        Prepared {
            outcome: BatchOutcome::default(),
            object: None,
            needs_configs: true,
        }
    }
}

/// `prepare` for envelopes the caller has parsed already (each beside what `parse_envelope` said
/// of it). Scores are not checked against configs here: the callers checked theirs.
pub fn prepare_parsed(
    project: &ProjectId,
    envelopes: impl IntoIterator<Item = (Value, Result<Parsed, EventError>)>,
) -> Prepared {
    prepare_vetted(
        project,
        envelopes
            .into_iter()
            .map(|(envelope, parsed)| (envelope, parsed.map(Checked::from))),
    )
}

/// `prepare` for envelopes the caller has checked already (each beside what `check_envelope`
/// said of it), so that a sender that had to check them (OpenTelemetry, which checks each span's
/// envelopes to accept or refuse the span as a whole) does not pay twice. Scores are not checked
/// against configs here: OpenTelemetry makes none (as in Langfuse).
pub fn prepare_vetted(
    project: &ProjectId,
    envelopes: impl IntoIterator<Item = (Value, Result<Checked, EventError>)>,
) -> Prepared {
    let mut outcome = BatchOutcome::default();
    let mut entities: BTreeMap<(EntityKind, String), EntityEvents> = BTreeMap::new();
    for (envelope, checked) in envelopes {
        match checked {
            Ok(Checked::Event(event)) => {
                let Accepted {
                    event_id,
                    kind,
                    entity_id,
                    trace_id,
                } = event;
                outcome.successes.push(Success {
                    id: event_id,
                    status: 201,
                });
                let entity =
                    entities
                        .entry((kind, entity_id))
                        .or_insert_with_key(|(kind, entity_id)| EntityEvents {
                            kind: *kind,
                            entity_id: entity_id.clone(),
                            trace_id: None,
                            envelopes: Vec::new(),
                        });
                if entity.trace_id.is_none() {
                    entity.trace_id = trace_id.filter(|t| !t.is_empty());
                }
                entity.envelopes.push(envelope);
            }
            Ok(Checked::SdkLog { event_id, log }) => {
                tracing::info!(project_id = %project, sdk_log = %log, "sdk-log event");
                outcome.successes.push(Success {
                    id: event_id,
                    status: 201,
                });
            }
            Err(err) => outcome.errors.push(Failure {
                id: err.id,
                status: err.status,
                message: err.message.clone(),
                error: err.message,
            }),
        }
    }
    let object =
        (!entities.is_empty()).then(|| raw_events::encode(entities.into_values().collect()));
    Prepared {
        outcome,
        object,
        needs_configs: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn none() -> Configs {
        Configs::Fresh(Arc::new(ProjectConfigs::default()))
    }

    fn envelope(id: &str, kind: &str, body: Value) -> Value {
        json!({"id": id, "type": kind, "timestamp": "2024-05-01T10:00:00Z", "body": body})
    }

    #[test]
    fn only_the_servers_own_envelopes_name_a_scores_author() {
        let project = ProjectId::authenticated("p");
        let score = || {
            envelope(
                "s",
                "score-create",
                json!({"id": "s1", "traceId": "t", "name": "q", "value": 1,
                    "source": "ANNOTATION", "authorUserId": "user-1"}),
            )
        };
        let stored = |prepared: Prepared| {
            let (bytes, _) = prepared.object.expect("the score is stored");
            String::from_utf8(bytes).unwrap()
        };
        let body = json!({ "batch": [score()] }).to_string();
        let from_batch = prepare_batch_body(
            &project,
            EventScope::All,
            body.as_bytes(),
            false,
            1 << 20,
            &none(),
        )
        .unwrap();
        let text = stored(from_batch);
        assert!(!text.contains("authorUserId") && text.contains("ANNOTATION"));
        assert!(!stored(prepare(&project, vec![score()], &none())).contains("authorUserId"));
        assert!(stored(prepare_own(&project, vec![score()], &none()))
            .contains("\"authorUserId\":\"user-1\""));
    }

    #[test]
    fn clients_cannot_send_an_observations_experiment_fields() {
        // Only OTLP spans say which experiment run an observation belongs to: the worker makes
        // dataset runs of it, and Langfuse's ingestion schema has no such field.
        let project = ProjectId::authenticated("p");
        let span = envelope(
            "e",
            "span-create",
            json!({"id": "o1", "traceId": "t", "name": "task",
                "experiment": {"id": "x", "name": "run", "datasetId": "d", "itemId": "i"}}),
        );
        let prepared = prepare(&project, vec![span], &none());
        let (bytes, _) = prepared.object.expect("the span is stored");
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.contains("\"task\"") && !text.contains("experiment"),
            "{text}"
        );
    }

    #[test]
    fn a_public_key_alone_writes_scores_and_nothing_else() {
        let batch = json!({"batch": [
            envelope("s", "score-create", json!({"id": "s1", "traceId": "t", "name": "q", "value": 1})),
            envelope("t", "trace-create", json!({"id": "t"})),
            envelope("o", "span-create", json!({"id": "o", "traceId": "t"})),
            envelope("l", "sdk-log", json!({"log": "hello"})),
            envelope("bad", "score-create", json!({"id": "s2"})),
        ]});
        let body = batch.to_string();
        let project = ProjectId::authenticated("p");
        let prepared = prepare_batch_body(
            &project,
            EventScope::ScoresOnly,
            body.as_bytes(),
            false,
            1 << 20,
            &none(),
        )
        .unwrap();
        let accepted: Vec<&str> = prepared
            .outcome
            .successes
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(accepted, ["s", "l"]);
        let refused: Vec<(&str, u16, &str, &str)> = prepared
            .outcome
            .errors
            .iter()
            .map(|e| {
                (
                    e.id.as_str(),
                    e.status,
                    e.message.as_str(),
                    e.error.as_str(),
                )
            })
            .collect();
        assert_eq!(refused[0].0, "bad");
        assert_eq!(refused[0].1, 400);
        assert_eq!(
            refused[1..],
            [
                ("t", 401, "Authentication error", "Access Scope Denied"),
                ("o", 401, "Authentication error", "Access Scope Denied"),
            ]
        );
        let (_, segments) = prepared.object.expect("the score is stored");
        assert_eq!(segments.len(), 1);

        let everything = prepare_batch_body(
            &project,
            EventScope::All,
            body.as_bytes(),
            false,
            1 << 20,
            &none(),
        )
        .unwrap();
        assert_eq!(everything.outcome.successes.len(), 4);
        assert_eq!(everything.outcome.errors.len(), 1);
    }

    fn categorical() -> Configs {
        let fields = crate::domain::score_config::ConfigFields::from_create(&json!({
            "name": "quality", "dataType": "CATEGORICAL",
            "categories": [{"label": "good", "value": 2}, {"label": "bad", "value": 0}]
        }))
        .unwrap();
        Configs::Fresh(Arc::new(ProjectConfigs::new(vec![ScoreConfig {
            id: "c1".into(),
            project_id: "p".into(),
            fields,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }])))
    }

    #[test]
    fn scores_naming_a_config_are_checked_and_stored_as_it_makes_them() {
        let project = ProjectId::authenticated("p");
        let score = |id: &str, body: Value| envelope(id, "score-create", body);
        let batch = vec![
            score(
                "ok",
                json!({"id": "s1", "traceId": "t", "name": "anything", "value": "good",
                    "configId": "c1", "stringValue": "smuggled"}),
            ),
            score(
                "wrong-label",
                json!({"id": "s2", "traceId": "t", "name": "q", "value": "meh", "configId": "c1"}),
            ),
            score(
                "wrong-type",
                json!({"id": "s3", "traceId": "t", "name": "q", "value": 1,
                    "dataType": "NUMERIC", "configId": "c1"}),
            ),
            score(
                "no-config",
                json!({"id": "s4", "traceId": "t", "name": "q", "value": 1, "configId": "c9"}),
            ),
            score(
                "free",
                json!({"id": "s5", "traceId": "t", "name": "q", "value": 1}),
            ),
        ];
        let prepared = prepare(&project, batch.clone(), &categorical());
        assert!(!prepared.needs_configs);
        let ok: Vec<&str> = prepared
            .outcome
            .successes
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(ok, ["ok", "free"]);
        let errors: Vec<(&str, u16, &str)> = prepared
            .outcome
            .errors
            .iter()
            .map(|e| (e.id.as_str(), e.status, e.message.as_str()))
            .collect();
        assert!(
            errors[0]
                .2
                .contains("Value meh does not map to a valid category"),
            "{errors:?}"
        );
        assert_eq!(
            errors[1].2,
            "Data type mismatch based on config: expected CATEGORICAL, got NUMERIC"
        );
        assert_eq!(errors[2], ("no-config", 404, UNKNOWN_CONFIG));
        let (bytes, _) = prepared.object.unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains(r#""name":"quality""#), "{text}");
        // What the worker reads back from the stored envelope is the score that was checked.
        let mut ok = batch[0].clone();
        let checked = parse_checked(&mut ok, &categorical()).unwrap().unwrap();
        assert_eq!(parse_envelope(&ok).unwrap(), checked);
        let Parsed::Event(event) = checked else {
            unreachable!()
        };
        let Body::Score(score) = event.body else {
            unreachable!()
        };
        assert_eq!(
            (
                score.name.as_str(),
                score.value,
                score.string_value.as_deref()
            ),
            ("quality", 2.0, Some("good"))
        );
        assert!(text.contains(r#""stringValue":"good""#) && !text.contains("smuggled"));
        assert!(text.contains(r#""value":2.0"#), "{text}");

        // Configs not read yet, or lacking the id: the batch asks for fresh ones, unless those
        // held were read within the last second.
        assert!(prepare(&project, batch.clone(), &Configs::Cached(None)).needs_configs);
        let Configs::Fresh(held) = categorical() else {
            unreachable!()
        };
        let just_read = prepare(
            &project,
            batch.clone(),
            &Configs::Cached(Some(held.clone())),
        );
        assert!(!just_read.needs_configs);
        assert_eq!(just_read.outcome.errors.len(), 3);
        let mut older = ProjectConfigs::new(held.configs.clone());
        older.read_at = older
            .read_at
            .checked_sub(ProjectConfigs::TRUSTED_FOR)
            .unwrap();
        let cached = prepare(&project, batch, &Configs::Cached(Some(Arc::new(older))));
        assert!(cached.needs_configs && cached.object.is_none());
    }

    /// What checking costs on the batch API's CPU step: a batch of 1,000 scores prepared without
    /// configs and naming a cached config. Run with `--ignored --nocapture` (in release for
    /// figures worth quoting).
    #[test]
    #[ignore]
    fn cost_of_checking_scores_against_configs() {
        let project = ProjectId::authenticated("p");
        let batch = |config: Option<&str>| -> Vec<Value> {
            (0..1000)
                .map(|i| {
                    let mut body = json!({"id": format!("s{i}"), "traceId": format!("t{}", i % 50),
                        "name": "quality", "value": "good", "comment": "a short comment"});
                    if let Some(config) = config {
                        body["configId"] = json!(config);
                    }
                    envelope(&format!("e{i}"), "score-create", body)
                })
                .collect()
        };
        let Configs::Fresh(held) = categorical() else {
            unreachable!()
        };
        let cached = Configs::Cached(Some(held));
        for (what, envelopes) in [
            ("free-form", batch(None)),
            ("with configId", batch(Some("c1"))),
        ] {
            let rounds = 20;
            let started = std::time::Instant::now();
            for _ in 0..rounds {
                let prepared = prepare(&project, envelopes.clone(), &cached);
                assert_eq!(prepared.outcome.successes.len(), 1000);
            }
            let per_batch = started.elapsed() / rounds;
            println!("{what}: {per_batch:?} per batch of 1,000 scores");
        }
    }
}
