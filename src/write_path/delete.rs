//! Deleting traces with their observations and scores, and single scores: rows and raw events.
//!
//! A deletion record (`trace_deletions`, `entity_deletions`) comes first: from then on, every
//! worker that rebuilds the entity (or, for a trace, one of its children) leaves out (and
//! overwrites in blob storage) the events received up to it, however late they reach it; so an
//! event still in the queue, or a later rebuild, cannot bring rows back. The known entities are
//! then queued for that rebuild, and the rows are deleted at once so that reads answer 404 right
//! away.

use super::WriteError;
use crate::domain::entity::EntityKind;
use crate::domain::project::ProjectId;
use crate::storage::clickhouse::{scores, trace_deletions, traces};
use crate::storage::media;
use crate::storage::queue::{self, EntityRef};
use crate::storage::Stores;

/// Deletes the traces `trace_ids` of the project and everything under them. `queue_shards` is
/// the number of ingestion queue shards the rebuilds go to.
pub async fn delete_traces(
    stores: &Stores,
    queue_shards: u32,
    project: &ProjectId,
    trace_ids: &[String],
) -> Result<(), WriteError> {
    let ch = &stores.clickhouse;
    trace_deletions::record(ch, project, trace_ids, chrono::Utc::now()).await?;
    let (observations, scores) = traces::children(ch, project, trace_ids).await?;
    let entity = |kind, entity_id| EntityRef {
        project_id: project.to_string(),
        kind,
        entity_id,
    };
    let entities: Vec<EntityRef> = observations
        .into_iter()
        .map(|id| entity(EntityKind::Observation, id))
        .chain(scores.into_iter().map(|id| entity(EntityKind::Score, id)))
        .chain(
            trace_ids
                .iter()
                .map(|id| entity(EntityKind::Trace, id.clone())),
        )
        .collect();
    queue_rebuilds(stores, queue_shards, &entities).await?;
    traces::delete_with_children(ch, project, trace_ids).await?;
    delete_media_of(stores, project, trace_ids).await?;
    Ok(())
}

/// Removes the media files only the deleted traces referred to: their rows, then their objects.
/// An object that cannot be deleted is logged and left (no row names it any more).
async fn delete_media_of(
    stores: &Stores,
    project: &ProjectId,
    trace_ids: &[String],
) -> Result<(), WriteError> {
    let keys = media::unlink_traces(&stores.postgres, project, trace_ids).await?;
    let base = stores.blob.base();
    for key in keys {
        let object = media::object_path(&base, &key);
        if let Err(err) = stores.blob.delete(&object).await {
            tracing::warn!(error = format!("{err:#}"), %object, "cannot delete a media object");
        }
    }
    Ok(())
}

/// Deletes the score `score_id` of the project: its rows now, its events (those received up to
/// now) when the worker rebuilds it, which this queues.
pub async fn delete_score(
    stores: &Stores,
    queue_shards: u32,
    project: &ProjectId,
    score_id: &str,
) -> Result<(), WriteError> {
    let ch = &stores.clickhouse;
    let ids = [score_id.to_string()];
    trace_deletions::record_entities(ch, project, EntityKind::Score, &ids, chrono::Utc::now())
        .await?;
    let score = EntityRef {
        project_id: project.to_string(),
        kind: EntityKind::Score,
        entity_id: score_id.to_string(),
    };
    queue_rebuilds(stores, queue_shards, &[score]).await?;
    scores::delete(ch, project, &ids).await?;
    Ok(())
}

/// Queues a rebuild of `entities` in the shards that merge them, so that each deletion is applied
/// in order with the events its shard is processing.
async fn queue_rebuilds(
    stores: &Stores,
    queue_shards: u32,
    entities: &[EntityRef],
) -> Result<(), WriteError> {
    let messages = queue::rebuild_messages(entities, queue_shards);
    if let Err(err) = queue::enqueue(&stores.redis, &messages).await {
        tracing::error!(error = format!("{err:#}"), "cannot queue a deletion");
        return Err(WriteError::Unavailable(
            "The ingestion queue is unavailable; retry the request".to_string(),
        ));
    }
    Ok(())
}
