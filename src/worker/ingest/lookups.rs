//! Coalesces the `event_index` lookups of every shard reader of this process into as few queries
//! as possible: while one query runs, the requests that arrive meanwhile wait and go out together
//! as the next one. Under load, a worker thus asks ClickHouse one question at a time however many
//! shards it reads, instead of one per round per shard; when idle, a request goes out at once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::storage::clickhouse::event_index::{self, Recorded};
use crate::storage::queue::EntityRef;

/// The answer to one batch of lookups, shared by everyone who asked.
pub type Answer = Arc<BTreeMap<EntityRef, Recorded>>;

type Request = (Vec<EntityRef>, oneshot::Sender<Result<Answer, String>>);

#[derive(Clone)]
pub struct IndexLookups {
    requests: mpsc::Sender<Request>,
}

impl IndexLookups {
    /// Starts the task that serves the lookups; it ends when every handle is dropped.
    pub fn start(clickhouse: clickhouse::Client) -> IndexLookups {
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(serve(clickhouse, rx));
        IndexLookups { requests: tx }
    }

    /// What the index records about `keys` (and possibly about other entities asked for at the
    /// same time). An error is ClickHouse's, as text; the caller retries.
    pub async fn lookup(&self, keys: Vec<EntityRef>) -> Result<Answer, String> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send((keys, reply))
            .await
            .map_err(|_| "the lookup task has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the lookup task has stopped".to_string())?
    }
}

async fn serve(clickhouse: clickhouse::Client, mut requests: mpsc::Receiver<Request>) {
    while let Some(first) = requests.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = requests.try_recv() {
            batch.push(more);
        }
        let keys: BTreeSet<EntityRef> = batch.iter().flat_map(|(k, _)| k.iter().cloned()).collect();
        let keys: Vec<EntityRef> = keys.into_iter().collect();
        let answer = event_index::lookup(&clickhouse, &keys)
            .await
            .map(Arc::new)
            .map_err(|e| format!("{e:#}"));
        for (_, reply) in batch {
            let _ = reply.send(answer.clone());
        }
    }
}
