//! Coalesces the ClickHouse lookups of every shard reader of this process into as few queries as
//! possible: while one batch runs, the requests that arrive meanwhile wait and go out together as
//! the next one. Under load, a worker thus asks ClickHouse one question at a time however many
//! shards it reads, instead of one per round per shard; when idle, a request goes out at once.
//!
//! A request asks two things: where the events of some entities are (`event_index`), and whether
//! some traces were deleted (`trace_deletions`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use crate::storage::clickhouse::event_index::{self, Recorded};
use crate::storage::queue::EntityRef;

/// The answer to one batch of requests, shared by everyone who asked.
#[derive(Debug, Default)]
pub struct Answer {
    pub recorded: BTreeMap<EntityRef, Recorded>,
    pub deleted_at: BTreeMap<EntityRef, DateTime<Utc>>,
}

/// What one request asks.
#[derive(Debug, Default)]
pub struct Question {
    /// Entities whose recorded segments are wanted.
    pub entities: Vec<EntityRef>,
    /// Traces whose deletions are wanted.
    pub traces: Vec<EntityRef>,
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
        let mut traces = BTreeSet::new();
        for (question, _) in &batch {
            entities.extend(question.entities.iter().cloned());
            traces.extend(question.traces.iter().cloned());
        }
        let answer = answer(&clickhouse, entities, traces)
            .await
            .map(Arc::new)
            .map_err(|e| format!("{e:#}"));
        for (_, reply) in batch {
            let _ = reply.send(answer.clone());
        }
    }
}

async fn answer(
    clickhouse: &clickhouse::Client,
    entities: BTreeSet<EntityRef>,
    traces: BTreeSet<EntityRef>,
) -> anyhow::Result<Answer> {
    let entities: Vec<EntityRef> = entities.into_iter().collect();
    let traces: Vec<EntityRef> = traces.into_iter().collect();
    let recorded = if entities.is_empty() {
        BTreeMap::new()
    } else {
        event_index::lookup(clickhouse, &entities).await?
    };
    let deleted_at = if traces.is_empty() {
        BTreeMap::new()
    } else {
        event_index::trace_deletions(clickhouse, &traces, DateTime::<Utc>::UNIX_EPOCH).await?
    };
    Ok(Answer {
        recorded,
        deleted_at,
    })
}
