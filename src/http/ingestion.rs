//! `POST /api/public/ingestion`: Langfuse's batch API.
//!
//! The answer is sent only once the accepted events are durable: written to blob storage (synced
//! to disk on the local backend) and referenced in the queue. If either store fails, the request
//! fails with 503 so the SDK retries, and the objects this request wrote are removed, so nothing
//! half-written can surface in a later rebuild.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::config::IngestionSettings;
use crate::http::auth::ProjectAuth;
use crate::http::error::ApiError;
use crate::ingest::event::{assign_missing_id, parse_envelope, EntityKind, Parsed};
use crate::storage::blob::event_keys;
use crate::storage::queue::{self, EntityRef};
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
    cfg.route("/api/public/ingestion", web::post().to(ingest));
}

async fn ingest(
    auth: ProjectAuth,
    payload: web::Payload,
    stores: web::Data<Stores>,
    settings: web::Data<IngestionSettings>,
    backlog: web::Data<Backlog>,
) -> Result<HttpResponse, ApiError> {
    if backlog.get() > settings.max_backlog {
        return Err(ApiError::TooManyRequests {
            message: "Ingestion is over capacity; retry later".to_string(),
            retry_after_secs: 2,
        });
    }
    let body = read_limited(payload, settings.max_body_bytes).await?;
    let mut request: Value = serde_json::from_slice(&body)
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

    let outcome = accept_envelopes(&stores, &settings, &auth.project_id, batch).await?;
    Ok(HttpResponse::MultiStatus().json(outcome))
}

/// Validates each envelope on its own and makes the good ones durable (blob storage, then the
/// queue) before returning; the one way into the pipeline, for the batch API and OpenTelemetry
/// alike. Fails as a whole only when a store is unavailable, so the client retries.
pub async fn accept_envelopes(
    stores: &Stores,
    settings: &IngestionSettings,
    project_id: &str,
    envelopes: Vec<Value>,
) -> Result<BatchOutcome, ApiError> {
    let mut successes = Vec::new();
    let mut errors = Vec::new();
    let mut groups: BTreeMap<(EntityKind, String), Vec<Value>> = BTreeMap::new();
    for mut envelope in envelopes {
        assign_missing_id(&mut envelope);
        match parse_envelope(&envelope) {
            Ok(Parsed::Event(event)) => {
                successes.push(Success {
                    id: event.event_id.clone(),
                    status: 201,
                });
                groups
                    .entry((event.entity_kind(), event.entity_id.clone()))
                    .or_default()
                    .push(envelope);
            }
            Ok(Parsed::SdkLog { event_id, log }) => {
                tracing::info!(project_id = %project_id, sdk_log = %log, "sdk-log event");
                successes.push(Success {
                    id: event_id,
                    status: 201,
                });
            }
            Err(err) => errors.push(Failure {
                id: err.id,
                status: err.status,
                message: err.message.clone(),
                error: err.message,
            }),
        }
    }

    if !groups.is_empty() {
        persist(stores, settings, project_id, groups).await?;
    }
    Ok(BatchOutcome { successes, errors })
}

/// Writes one object per entity, then the references; undoes the objects if anything fails.
async fn persist(
    stores: &Stores,
    settings: &IngestionSettings,
    project_id: &str,
    groups: BTreeMap<(EntityKind, String), Vec<Value>>,
) -> Result<(), ApiError> {
    let batch_id = uuid::Uuid::new_v4().to_string();
    let base = stores.blob.base();
    let objects: Vec<(EntityRef, object_store::path::Path, bytes::Bytes)> = groups
        .into_iter()
        .map(|((kind, entity_id), envelopes)| {
            let path = event_keys::batch_object(&base, project_id, kind, &entity_id, &batch_id);
            let bytes = bytes::Bytes::from(serde_json::to_vec(&envelopes).unwrap_or_default());
            let entity = EntityRef {
                project_id: project_id.to_string(),
                kind,
                entity_id,
            };
            (entity, path, bytes)
        })
        .collect();

    let writes = objects
        .iter()
        .map(|(_, path, bytes)| (path.clone(), bytes.clone()))
        .collect();
    if let Err(err) = stores.blob.put_all_durable(writes).await {
        tracing::error!(error = format!("{err:#}"), "blob storage write failed");
        remove(stores, objects.iter().map(|(_, path, _)| path.clone())).await;
        return Err(ApiError::Unavailable(
            "Event storage is unavailable; retry the request".to_string(),
        ));
    }

    let entities: Vec<EntityRef> = objects.iter().map(|(e, _, _)| e.clone()).collect();
    if let Err(err) = queue::enqueue(&stores.redis, settings.queue_shards, &entities).await {
        tracing::error!(error = format!("{err:#}"), "enqueue failed");
        remove(stores, objects.iter().map(|(_, path, _)| path.clone())).await;
        return Err(ApiError::Unavailable(
            "The ingestion queue is unavailable; retry the request".to_string(),
        ));
    }
    Ok(())
}

/// Best-effort removal of a failed request's objects.
async fn remove(stores: &Stores, paths: impl Iterator<Item = object_store::path::Path>) {
    for path in paths {
        match stores.blob.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(err) => {
                tracing::warn!(path = %path, error = %err, "cannot remove a failed request's object")
            }
        }
    }
}

/// Reads the body up to `limit` bytes (decompressed, when the client sent gzip); 413 beyond.
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
