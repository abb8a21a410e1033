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

/// A batch API body (`{"batch": [...]}`), gzip-compressed or not, inflated to at most `limit`
/// bytes.
pub fn prepare_batch_body(
    project: &ProjectId,
    body: &[u8],
    gzip: bool,
    limit: usize,
) -> Result<Prepared, WriteError> {
    if !gzip {
        return prepare_json_body(project, body);
    }
    let inflated = gzip::gunzip(body, limit).map_err(|e| match e {
        GzipError::TooLarge(_) => WriteError::TooLarge(e.to_string()),
        GzipError::Invalid(_) => WriteError::Malformed(e.to_string()),
    })?;
    prepare_json_body(project, &inflated)
}

fn prepare_json_body(project: &ProjectId, body: &[u8]) -> Result<Prepared, WriteError> {
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
    Ok(prepare(project, batch))
}

/// Envelopes as sent: each gets an id if it has none, then is parsed.
pub fn prepare(project: &ProjectId, envelopes: Vec<Value>) -> Prepared {
    prepare_parsed(
        project,
        envelopes.into_iter().map(|mut envelope| {
            assign_missing_id(&mut envelope);
            let parsed = parse_envelope(&envelope);
            (envelope, parsed)
        }),
    )
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
