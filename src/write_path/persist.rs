//! Making a prepared batch durable: the request's object in blob storage first (synced to disk on
//! the local backend), then its references in the queue. Only then may the caller answer. If
//! either store fails, the write fails as a whole (`Unavailable`, so the client retries) and the
//! object is removed, so nothing half-written can surface in a later rebuild.

use serde_json::Value;

use super::prepare::{prepare, prepare_own, Prepared};
use super::score_configs::prepare_checked;
use super::{BatchOutcome, WriteError};
use crate::config::IngestionSettings;
use crate::domain::project::ProjectId;
use crate::storage::blob::event_keys;
use crate::storage::queue;
use crate::storage::raw_events::Segment;
use crate::storage::score_configs::ConfigCache;
use crate::storage::trace_gate::{self, Held};
use crate::storage::Stores;

/// Writes the request's object, then its references; removes the object if the enqueue fails.
pub async fn persist(
    stores: &Stores,
    settings: &IngestionSettings,
    project: &ProjectId,
    prepared: Prepared,
) -> Result<BatchOutcome, WriteError> {
    let Some((bytes, segments)) = prepared.object else {
        return Ok(prepared.outcome);
    };
    let received_at = chrono::Utc::now();
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let path = event_keys::request_object(
        &stores.blob.base(),
        received_at,
        project.as_str(),
        &request_id,
    );
    if let Err(err) = stores.blob.put_durable(&path, bytes.into()).await {
        tracing::error!(error = format!("{err:#}"), "blob storage write failed");
        // An S3 PUT that failed stored nothing; a local write cleans up its staging file.
        return Err(WriteError::Unavailable(
            "Event storage is unavailable; retry the request".to_string(),
        ));
    }
    // Before the references: a worker may release these only once they exist.
    let held = held_traces(project, path.as_ref(), &segments);
    if let Err(err) = trace_gate::hold(&stores.redis, &held).await {
        // The events are durable and will be written; only the trace may be read before all
        // of them are.
        tracing::warn!(
            error = format!("{err:#}"),
            "cannot hold traces back until they are written"
        );
    }
    let messages = queue::messages_for_object(
        project.as_str(),
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
        return Err(WriteError::Unavailable(
            "The ingestion queue is unavailable; retry the request".to_string(),
        ));
    }
    Ok(prepared.outcome)
}

/// What the request's segments hold back: each segment of a trace or of one of its children.
fn held_traces(project: &ProjectId, object: &str, segments: &[Segment]) -> Vec<Held> {
    segments
        .iter()
        .filter_map(|s| Held::of_segment(project.as_str(), object, s))
        .collect()
}

/// Validates each envelope on its own (scores against their configs too) and makes the good ones
/// durable, for envelopes the server builds itself (direct score writes): `prepare` on the
/// blocking pool, then `persist`. Fails as a whole only when a store is unavailable, so the
/// client retries.
pub async fn accept_envelopes(
    stores: &Stores,
    settings: &IngestionSettings,
    configs: &ConfigCache,
    project: &ProjectId,
    envelopes: Vec<Value>,
) -> Result<BatchOutcome, WriteError> {
    let for_log = project.clone();
    let prepared = prepare_checked(configs, project, move |c| {
        Ok(prepare(&for_log, envelopes.clone(), c))
    })
    .await?;
    persist(stores, settings, project, prepared).await
}

/// A score a signed-in person adds in the web UI, as Langfuse stores one: source `ANNOTATION`
/// and the person's id as its author, whatever the envelope said. The envelope is the server's
/// own; client envelopes take [`accept_envelopes`], which drops any author they name.
pub async fn accept_annotation(
    stores: &Stores,
    settings: &IngestionSettings,
    configs: &ConfigCache,
    project: &ProjectId,
    mut envelope: Value,
    author_user_id: &str,
) -> Result<BatchOutcome, WriteError> {
    if let Some(body) = envelope.get_mut("body").and_then(Value::as_object_mut) {
        body.insert("source".into(), Value::from("ANNOTATION"));
        body.insert("authorUserId".into(), Value::from(author_user_id));
    }
    let for_log = project.clone();
    let prepared = prepare_checked(configs, project, move |c| {
        Ok(prepare_own(&for_log, vec![envelope.clone()], c))
    })
    .await?;
    persist(stores, settings, project, prepared).await
}
