//! Deleting traces with their observations and scores: rows and raw events.
//!
//! A deletion record (`trace_deletions`) comes first: from then on, every worker that rebuilds the
//! trace or one of its children leaves out (and overwrites in blob storage) the events received up
//! to it, however late they reach it; so a child still in the queue cannot bring rows back. The
//! known entities are then queued for that rebuild, and the rows are deleted at once so that reads
//! answer 404 right away.

use super::WriteError;
use crate::domain::entity::EntityKind;
use crate::domain::project::ProjectId;
use crate::storage::clickhouse::{trace_deletions, traces};
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
    let messages = queue::rebuild_messages(&entities, queue_shards);
    if let Err(err) = queue::enqueue(&stores.redis, &messages).await {
        tracing::error!(error = format!("{err:#}"), "cannot queue a deletion");
        return Err(WriteError::Unavailable(
            "The ingestion queue is unavailable; retry the request".to_string(),
        ));
    }
    traces::delete_with_children(ch, project, trace_ids).await?;
    Ok(())
}
