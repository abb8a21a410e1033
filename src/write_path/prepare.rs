//! The CPU part of a write: envelopes parsed and validated each on its own (a bad one is an entry
//! in the answer's `errors`, the others are kept), grouped by entity, and encoded as the request's
//! one object (`storage::raw_events`). Pure but for a log line per SDK log event; callers run it
//! on the blocking pool ([`super::offload`]).

use std::collections::BTreeMap;

use serde_json::Value;

use super::{BatchOutcome, Failure, Success, WriteError};
use crate::domain::entity::EntityKind;
use crate::domain::project::ProjectId;
use crate::ingest::event::{assign_missing_id, parse_envelope, Body, EventError, Parsed};
use crate::ingest::gzip::{self, GzipError};
use crate::storage::raw_events::{self, EntityEvents, Segment};

/// A validated batch, ready to be written.
pub struct Prepared {
    pub(super) outcome: BatchOutcome,
    /// The object's bytes and its segments; `None` when no envelope was accepted.
    pub(super) object: Option<(Vec<u8>, Vec<Segment>)>,
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
) -> Result<Prepared, WriteError> {
    if !gzip {
        return prepare_json_body(project, scope, body);
    }
    let inflated = gzip::gunzip(body, limit).map_err(|e| match e {
        GzipError::TooLarge(_) => WriteError::TooLarge(e.to_string()),
        GzipError::Invalid(_) => WriteError::Malformed(e.to_string()),
    })?;
    prepare_json_body(project, scope, &inflated)
}

fn prepare_json_body(
    project: &ProjectId,
    scope: EventScope,
    body: &[u8],
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
    Ok(prepare_within(project, scope, batch))
}

/// Envelopes as sent: each gets an id if it has none, then is parsed.
pub fn prepare(project: &ProjectId, envelopes: Vec<Value>) -> Prepared {
    prepare_within(project, EventScope::All, envelopes)
}

/// Envelopes the server built for a signed-in person (a score added in the web UI): parsed as
/// they are, so the author they name is kept. Never for envelopes a client sent.
pub fn prepare_own(project: &ProjectId, envelopes: Vec<Value>) -> Prepared {
    prepare_parsed(
        project,
        envelopes.into_iter().map(|mut envelope| {
            assign_missing_id(&mut envelope);
            let parsed = parse_envelope(&envelope);
            (envelope, parsed)
        }),
    )
}

/// Removes what only the server may say of a score from an envelope a client sent: who added it
/// (`authorUserId`, which Langfuse's ingestion schema does not take either). Its `source` stays:
/// Langfuse's ingestion schema takes `API`, `EVAL` or `ANNOTATION` from clients.
fn drop_server_fields(envelope: &mut Value) {
    if envelope.get("type").and_then(Value::as_str) != Some("score-create") {
        return;
    }
    if let Some(body) = envelope.get_mut("body").and_then(Value::as_object_mut) {
        body.remove("authorUserId");
    }
}

/// `prepare`, refusing the valid events outside `scope`. Their errors follow those of invalid
/// events, in the order Langfuse lists them.
fn prepare_within(project: &ProjectId, scope: EventScope, envelopes: Vec<Value>) -> Prepared {
    let mut refused = Vec::new();
    let admitted = envelopes.into_iter().filter_map(|mut envelope| {
        drop_server_fields(&mut envelope);
        assign_missing_id(&mut envelope);
        let parsed = parse_envelope(&envelope);
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
    });
    let mut prepared = prepare_parsed(project, admitted);
    prepared.outcome.errors.extend(refused);
    prepared
}

/// `prepare` for envelopes the caller has parsed already (each beside what `parse_envelope` said
/// of it), so that a sender that had to parse them to check them (OpenTelemetry) does not pay
/// twice.
pub fn prepare_parsed(
    project: &ProjectId,
    envelopes: impl IntoIterator<Item = (Value, Result<Parsed, EventError>)>,
) -> Prepared {
    let mut outcome = BatchOutcome::default();
    let mut entities: BTreeMap<(EntityKind, String), EntityEvents> = BTreeMap::new();
    for (envelope, parsed) in envelopes {
        match parsed {
            Ok(Parsed::Event(event)) => {
                outcome.successes.push(Success {
                    id: event.event_id.clone(),
                    status: 201,
                });
                let trace_id = match &event.body {
                    Body::Observation(o) => o.trace_id.clone(),
                    Body::Score(s) => s.trace_id.clone(),
                    Body::Trace(_) => None,
                };
                let kind = event.entity_kind();
                let entity = entities
                    .entry((kind, event.entity_id.clone()))
                    .or_insert_with(|| EntityEvents {
                        kind,
                        entity_id: event.entity_id.clone(),
                        trace_id: None,
                        envelopes: Vec::new(),
                    });
                if entity.trace_id.is_none() {
                    entity.trace_id = trace_id.filter(|t| !t.is_empty());
                }
                entity.envelopes.push(envelope);
            }
            Ok(Parsed::SdkLog { event_id, log }) => {
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
    Prepared { outcome, object }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let from_batch =
            prepare_batch_body(&project, EventScope::All, body.as_bytes(), false, 1 << 20).unwrap();
        let text = stored(from_batch);
        assert!(!text.contains("authorUserId") && text.contains("ANNOTATION"));
        assert!(!stored(prepare(&project, vec![score()])).contains("authorUserId"));
        assert!(
            stored(prepare_own(&project, vec![score()])).contains("\"authorUserId\":\"user-1\"")
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

        let everything =
            prepare_batch_body(&project, EventScope::All, body.as_bytes(), false, 1 << 20).unwrap();
        assert_eq!(everything.outcome.successes.len(), 4);
        assert_eq!(everything.outcome.errors.len(), 1);
    }
}
