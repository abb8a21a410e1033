//! `POST /api/public/ingestion`: Langfuse's batch API.
//!
//! The answer is sent only once the accepted events are durable: written to blob storage as one
//! object per request (synced to disk on the local backend) and referenced in the queue. If either
//! store fails, the request fails with 503 so the SDK retries, and the object is removed, so
//! nothing half-written can surface in a later rebuild.
//!
//! Parsing, validation and serialisation run on the blocking pool (`offload`), never on the HTTP
//! worker threads that prompt requests share; at most `ingestion.max_concurrent_requests` requests
//! are read and processed at once, which bounds the memory ingestion can take.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::config::IngestionSettings;
use crate::http::auth::ProjectAuth;
use crate::http::error::ApiError;
use crate::http::offload;
use crate::ingest::event::{
    assign_missing_id, parse_envelope, Body, EntityKind, EventError, Parsed,
};
use crate::ingest::gzip::{self, GzipError};
use crate::storage::blob::event_keys;
use crate::storage::queue;
use crate::storage::raw_events::{self, EntityEvents, Segment};
use crate::storage::Stores;

/// The queue's backlog as last measured; refreshed in the background so that requests never wait
/// on Redis to decide whether to throttle.
#[derive(Debug, Default)]
pub struct Backlog(AtomicU64);

impl Backlog {
    /// Measures the backlog every `interval` until `shutdown`.
    pub fn watch(
        self: Arc<Self>,
        stores: Stores,
        shards: u32,
        interval: Duration,
        shutdown: CancellationToken,
    ) {
        tokio::spawn(async move {
            loop {
                match queue::backlog(&stores.redis, shards).await {
                    Ok(len) => self.0.store(len, Ordering::Relaxed),
                    Err(err) => tracing::warn!(error = %err, "cannot measure the queue backlog"),
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        });
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What a batch of envelopes came to: one entry per envelope, in the 207 answer's shape.
#[derive(Debug, Default, Serialize)]
pub struct BatchOutcome {
    pub successes: Vec<Success>,
    pub errors: Vec<Failure>,
}

#[derive(Debug, Serialize)]
pub struct Success {
    pub id: String,
    pub status: u16,
}

#[derive(Debug, Serialize)]
pub struct Failure {
    pub id: String,
    pub status: u16,
    pub message: String,
    pub error: String,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::http::resource("/api/public/ingestion").route(web::post().to(ingest)));
}

async fn ingest(
    auth: ProjectAuth,
    req: HttpRequest,
    payload: web::Payload,
    stores: web::Data<Stores>,
    settings: web::Data<IngestionSettings>,
    backlog: web::Data<Backlog>,
    gate: web::Data<RequestGate>,
) -> Result<HttpResponse, ApiError> {
    if backlog.get() > settings.max_backlog {
        return Err(ApiError::TooManyRequests {
            message: "Ingestion is over capacity; retry later".to_string(),
            retry_after_secs: 2,
        });
    }
    let gzip = match req
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("identity") => false,
        Some("gzip") | Some("x-gzip") => true,
        Some(other) => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Unsupported content encoding {other:?}: send gzip or uncompressed bodies"
            )))
        }
    };
    let _permit = gate.enter().await?;
    let limit = settings.max_body_bytes;
    let body = read_limited(payload, limit).await?;
    let project = auth.project_id.clone();
    let prepared = offload::cpu(move || {
        if !gzip {
            return prepare_body(&project, &body);
        }
        let inflated = gzip::gunzip(&body, limit).map_err(|e| match e {
            GzipError::TooLarge(_) => ApiError::PayloadTooLarge(e.to_string()),
            GzipError::Invalid(_) => ApiError::BadRequest(e.to_string()),
        })?;
        prepare_body(&project, &inflated)
    })
    .await??;
    let outcome = persist(&stores, &settings, &auth.project_id, prepared).await?;
    Ok(HttpResponse::MultiStatus().json(outcome))
}

/// Admits at most `ingestion.max_concurrent_requests` ingestion requests at once; the others wait
/// before their body is read, so what ingestion holds in memory is bounded however many clients
/// send at once. A request that cannot enter within `WAIT` is answered 429.
pub struct RequestGate {
    permits: tokio::sync::Semaphore,
}

impl RequestGate {
    const WAIT: Duration = Duration::from_secs(10);

    pub fn new(max_concurrent_requests: usize) -> RequestGate {
        RequestGate {
            permits: tokio::sync::Semaphore::new(max_concurrent_requests),
        }
    }

    pub async fn enter(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        match tokio::time::timeout(Self::WAIT, self.permits.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ApiError::TooManyRequests {
                message: "Ingestion is over capacity; retry later".to_string(),
                retry_after_secs: 1,
            }),
        }
    }
}

/// Validates each envelope on its own and makes the good ones durable (blob storage, then the
/// queue) before returning, for envelopes the server builds itself (direct score writes). The
/// batch API and OpenTelemetry take the same two steps, `prepare*` then `persist`, with their own
/// decoding in front. Fails as a whole only when a store is unavailable, so the client retries.
pub async fn accept_envelopes(
    stores: &Stores,
    settings: &IngestionSettings,
    project_id: &str,
    envelopes: Vec<Value>,
) -> Result<BatchOutcome, ApiError> {
    let project = project_id.to_string();
    let prepared = offload::cpu(move || prepare(&project, envelopes)).await?;
    persist(stores, settings, project_id, prepared).await
}

/// A validated batch, ready to be written.
pub(crate) struct Prepared {
    outcome: BatchOutcome,
    /// The object's bytes and its segments; `None` when no envelope was accepted.
    object: Option<(Vec<u8>, Vec<Segment>)>,
}

/// The CPU part of a request: parse the body, validate each envelope, build the object.
fn prepare_body(project_id: &str, body: &[u8]) -> Result<Prepared, ApiError> {
    let mut request: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("Invalid request body: malformed JSON: {e}")))?;
    // Taken out of the request, so envelopes are moved rather than copied.
    let batch = match request.get_mut("batch") {
        Some(Value::Array(batch)) => std::mem::take(batch),
        _ => {
            return Err(ApiError::BadRequest(
                "Invalid request data: body must be an object with a 'batch' array".to_string(),
            ))
        }
    };
    Ok(prepare(project_id, batch))
}

fn prepare(project_id: &str, envelopes: Vec<Value>) -> Prepared {
    prepare_parsed(
        project_id,
        envelopes.into_iter().map(|mut envelope| {
            assign_missing_id(&mut envelope);
            let parsed = parse_envelope(&envelope);
            (envelope, parsed)
        }),
    )
}

/// `prepare` for envelopes the caller has parsed already (each beside what `parse_envelope` said
/// of it), so that a sender that had to parse them to check them does not pay twice.
pub(crate) fn prepare_parsed(
    project_id: &str,
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
                tracing::info!(project_id = %project_id, sdk_log = %log, "sdk-log event");
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

/// Writes the request's object, then its references; removes the object if the enqueue fails.
pub(crate) async fn persist(
    stores: &Stores,
    settings: &IngestionSettings,
    project_id: &str,
    prepared: Prepared,
) -> Result<BatchOutcome, ApiError> {
    let Some((bytes, segments)) = prepared.object else {
        return Ok(prepared.outcome);
    };
    let received_at = chrono::Utc::now();
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let path =
        event_keys::request_object(&stores.blob.base(), received_at, project_id, &request_id);
    if let Err(err) = stores.blob.put_durable(&path, bytes.into()).await {
        tracing::error!(error = format!("{err:#}"), "blob storage write failed");
        // An S3 PUT that failed stored nothing; a local write cleans up its staging file.
        return Err(ApiError::Unavailable(
            "Event storage is unavailable; retry the request".to_string(),
        ));
    }
    let messages = queue::messages_for_object(
        project_id,
        path.as_ref(),
        received_at.timestamp_millis(),
        segments,
        settings.queue_shards,
    );
    if let Err(err) = queue::enqueue(&stores.redis, &messages).await {
        tracing::error!(error = format!("{err:#}"), "enqueue failed");
        // Messages that did reach a shard now point at a missing object, which the worker reads
        // as "no events"; the client's retry brings the events back in a new object.
        if let Err(err) = stores.blob.delete(&path).await {
            tracing::warn!(path = %path, error = format!("{err:#}"), "cannot remove a failed request's object");
        }
        return Err(ApiError::Unavailable(
            "The ingestion queue is unavailable; retry the request".to_string(),
        ));
    }
    Ok(prepared.outcome)
}

/// Reads the body up to `limit` bytes as sent (a gzip body is inflated later, to at most `limit`
/// bytes too); 413 beyond.
async fn read_limited(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("Invalid request body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(format!(
                "Request body exceeds the limit of {limit} bytes; send smaller batches"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
