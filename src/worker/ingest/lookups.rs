//! Coalesces the ClickHouse lookups of every shard reader of this process into as few queries as
//! possible: while one batch runs, the requests that arrive meanwhile wait and go out together as
//! the next one. Under load, a worker thus asks ClickHouse one question at a time however many
//! shards it reads, instead of one per round per shard; when idle, a request goes out at once.
//!
//! A request asks two things: where the events of some entities are (`entity_events`), and which
//! traces were deleted since a moment (`trace_deletions`).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use crate::storage::clickhouse::entity_events::{self, Lookup};
use crate::storage::queue::EntityRef;

/// The answer to one batch of requests, shared by everyone who asked. It may say more than a
/// request asked: deletions since an earlier moment, segments of other entities.
pub type Answer = Lookup;

/// What one request asks.
#[derive(Debug, Default)]
pub struct Question {
    /// Entities whose recorded segments are wanted.
    pub entities: Vec<EntityRef>,
    /// Deletions of traces at or after this moment are wanted.
    pub deletions_since: Option<DateTime<Utc>>,
}

type Request = (Question, oneshot::Sender<Result<Arc<Answer>, String>>);

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

    /// The answer to `question` (and possibly to questions asked at the same time). An error is
    /// ClickHouse's, as text; the caller retries.
    pub async fn ask(&self, question: Question) -> Result<Arc<Answer>, String> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send((question, reply))
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
        let mut entities = BTreeSet::new();
        let mut deletions_since: Option<DateTime<Utc>> = None;
        for (question, _) in &batch {
            entities.extend(question.entities.iter().cloned());
            if let Some(since) = question.deletions_since {
                deletions_since = Some(deletions_since.map_or(since, |s| s.min(since)));
            }
        }
        let entities: Vec<EntityRef> = entities.into_iter().collect();
        let answer = entity_events::lookup(&clickhouse, &entities, deletions_since)
            .await
            .map(Arc::new)
            .map_err(|e| format!("{e:#}"));
        for (_, reply) in batch {
            let _ = reply.send(answer.clone());
        }
    }
}
