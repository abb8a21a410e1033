//! Recovery from a Redis that lost the queue (a restart without persistence, a failover to an
//! empty replica): the references are gone, the events are not. Blob storage is the record of
//! what was accepted, so the worker that notices re-queues every object written since the queue
//! was last seen intact. Rebuilding is idempotent, so looking back too far costs only work;
//! looking back too little would lose events.

use futures::StreamExt;

use super::ConsumerSettings;
use crate::storage::blob::event_keys;
use crate::storage::queue;
use crate::storage::raw_events;
use crate::storage::Stores;

/// Objects read at once while re-queueing.
const READ_CONCURRENCY: usize = 16;

/// Notices when Redis has lost the queue (see [`queue::epoch`]).
#[derive(Debug, Default)]
pub struct EpochWatch {
    last_seen: Option<chrono::DateTime<chrono::Utc>>,
}

impl EpochWatch {
    pub async fn check(
        &mut self,
        stores: &Stores,
        settings: &ConsumerSettings,
    ) -> anyhow::Result<()> {
        let now = chrono::Utc::now();
        let (_, created) = queue::epoch(&stores.redis).await?;
        if created {
            // Either the first start of the installation, or Redis lost its data. Past the last
            // moment this process saw the queue intact, with a margin for clocks and for requests
            // in flight; after a restart of every worker, the configured window.
            let since = match self.last_seen {
                Some(seen) => seen - chrono::Duration::minutes(5),
                None => now - chrono::Duration::from_std(settings.recovery_window)?,
            };
            let requeued = requeue_since(stores, settings.shards, since).await?;
            if requeued > 0 {
                tracing::warn!(requeued, %since, "the queue had lost its epoch: re-queued stored events from blob storage");
            }
        }
        self.last_seen = Some(now);
        Ok(())
    }
}

/// Re-queues the events of every object written since `since`; returns how many objects.
pub async fn requeue_since(
    stores: &Stores,
    shards: u32,
    since: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<usize> {
    let objects = raw_events::objects_between(&stores.blob, since, chrono::Utc::now()).await?;
    let count = objects.len();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(objects)
        .map(|(path, written_at)| async move {
            let Some(bytes) = stores.blob.get(&path).await? else {
                return Ok(());
            };
            let Some(project_id) = raw_events::project_of(&stores.blob, &path) else {
                return Ok(());
            };
            let received_at = event_keys::received_at(&path).unwrap_or(written_at);
            let segments = raw_events::decode_object(&bytes)?
                .into_iter()
                .map(|(segment, _)| segment)
                .collect();
            let messages = queue::messages_for_object(
                &project_id,
                path.as_ref(),
                received_at.timestamp_millis(),
                segments,
                shards,
            );
            queue::enqueue(&stores.redis, &messages).await
        })
        .buffer_unordered(READ_CONCURRENCY)
        .collect()
        .await;
    for result in results {
        result?;
    }
    Ok(count)
}
