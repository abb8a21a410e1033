//! The batched ClickHouse writer: rounds in, one insert per table per flush, acknowledgements out.
//!
//! A flush writes, in this order: the entities' segment lists (so that whatever is acknowledged can
//! always be found again), the deletions, the records; then it settles the rounds' pending segments and
//! acknowledges their entries. Deletions run before the records of the same flush, and a deletion
//! drops the records of the same entity that rounds before it put in the batch, so the outcome is
//! that of applying the rounds in order.
//!
//! After the records are in, the writer asks once more whether any of their traces was deleted
//! since the rounds checked. A trace deleted while its child was between that check and the
//! insert would otherwise keep the child: the deleting request looked for children before the
//! child's row existed. Such entities are queued for a rebuild, which deletes them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::lookups::{IndexLookups, Question};
use super::pending::{Pending, RoundId};
use super::round::Rebuilt;
use super::ConsumerSettings;
use crate::domain::entity::EntityKind;
use crate::storage::clickhouse::entity_events::{self, EntityEventsRow};
use crate::storage::clickhouse::row_batch::{self, RowBatch};
use crate::storage::queue::{self, EntityRef};
use crate::storage::trace_gate::{self, Held};
use crate::storage::Stores;

/// What one flush writes.
#[derive(Default)]
struct Batch {
    /// The earliest moment a round of this batch asked for deletions.
    deletions_checked_at: Option<DateTime<Utc>>,
    /// Complete segment lists by entity key; a later round's list replaces an earlier one's.
    lists: BTreeMap<String, EntityEventsRow>,
    rows: RowBatch,
    deletions: BTreeSet<EntityRef>,
    rounds: Vec<RoundId>,
    acks: BTreeMap<u32, BTreeSet<String>>,
    releases: Vec<Held>,
}

impl Batch {
    fn add(&mut self, rebuilt: Rebuilt) {
        // Records earlier rounds built for an entity this round deleted must not be inserted
        // after the deletion runs. A record of this round or a later one is newer than the
        // deletion, and is inserted after it.
        for entity in &rebuilt.deletions {
            self.drop_rows_of(entity);
        }
        self.deletions.extend(rebuilt.deletions);
        self.deletions_checked_at = Some(match self.deletions_checked_at {
            Some(at) => at.min(rebuilt.deletions_checked_at),
            None => rebuilt.deletions_checked_at,
        });
        self.lists
            .extend(rebuilt.lists.into_iter().map(|row| (row.key.clone(), row)));
        self.rows.traces.extend(rebuilt.rows.traces);
        self.rows.observations.extend(rebuilt.rows.observations);
        self.rows.scores.extend(rebuilt.rows.scores);
        self.rounds.push(rebuilt.round);
        self.releases.extend(rebuilt.releases);
        self.acks
            .entry(rebuilt.round.shard)
            .or_default()
            .extend(rebuilt.entry_ids);
    }

    fn drop_rows_of(&mut self, e: &EntityRef) {
        let same = |project: &str, id: &str| project == e.project_id && id == e.entity_id;
        match e.kind {
            EntityKind::Trace => self.rows.traces.retain(|t| !same(&t.project_id, &t.id)),
            EntityKind::Observation => self
                .rows
                .observations
                .retain(|o| !same(&o.project_id, &o.id)),
            EntityKind::Score => self.rows.scores.retain(|s| !same(&s.project_id, &s.id)),
        }
    }

    fn len(&self) -> usize {
        self.rows.len() + self.lists.len()
    }

    fn is_empty(&self) -> bool {
        self.rounds.is_empty() && self.len() == 0 && self.deletions.is_empty()
    }
}

/// Batches rounds by size and interval; writes, then acknowledges.
///
/// A round that finds the writer idle for `flush_interval` is written at once, so a quiet queue's
/// events are readable in the time a round and a write take; otherwise rounds wait for the
/// interval since the last write to pass (or for `flush_rows`), so that under load writes stay
/// few and large.
pub async fn run(
    stores: Stores,
    mut rx: mpsc::Receiver<Rebuilt>,
    settings: ConsumerSettings,
    pending: Arc<Pending>,
    lookups: IndexLookups,
    stop: CancellationToken,
) {
    let mut batch = Batch::default();
    let mut deadline: Option<tokio::time::Instant> = None;
    // When the last write ended.
    let mut last_flush: Option<tokio::time::Instant> = None;
    loop {
        let flush_due = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = rx.recv() => match received {
                Some(rebuilt) => {
                    batch.add(rebuilt);
                    let now = tokio::time::Instant::now();
                    let due = *deadline.get_or_insert_with(|| match last_flush {
                        Some(at) => (at + settings.flush_interval).max(now),
                        None => now,
                    });
                    if batch.rows.len() >= settings.flush_rows || due <= now {
                        take_waiting(&mut rx, &mut batch, &settings);
                        flush(&stores, &settings, &pending, &lookups, std::mem::take(&mut batch), &stop).await;
                        deadline = None;
                        last_flush = Some(tokio::time::Instant::now());
                    }
                }
                None => {
                    flush(&stores, &settings, &pending, &lookups, std::mem::take(&mut batch), &stop).await;
                    return;
                }
            },
            _ = flush_due => {
                take_waiting(&mut rx, &mut batch, &settings);
                flush(&stores, &settings, &pending, &lookups, std::mem::take(&mut batch), &stop).await;
                deadline = None;
                last_flush = Some(tokio::time::Instant::now());
            }
        }
    }
}

/// Rows one flush takes at most, in multiples of `flush_rows`.
const MAX_FLUSH_MULTIPLE: usize = 20;

/// Adds the rounds already waiting to a batch about to be flushed (up to a bound): under load,
/// flushes grow instead of queueing up, and ClickHouse gets fewer, larger inserts.
fn take_waiting(rx: &mut mpsc::Receiver<Rebuilt>, batch: &mut Batch, settings: &ConsumerSettings) {
    let bound = settings.flush_rows.saturating_mul(MAX_FLUSH_MULTIPLE);
    while batch.rows.len() < bound {
        match rx.try_recv() {
            Ok(rebuilt) => batch.add(rebuilt),
            Err(_) => break,
        }
    }
}

async fn flush(
    stores: &Stores,
    settings: &ConsumerSettings,
    pending: &Pending,
    lookups: &IndexLookups,
    batch: Batch,
    stop: &CancellationToken,
) {
    if batch.is_empty() {
        return;
    }
    let mut backoff = Duration::from_millis(100);
    loop {
        match write(&stores.clickhouse, &batch).await {
            Ok(()) => break,
            Err(err) => {
                tracing::warn!(
                    rows = batch.len(),
                    error = format!("{err:#}"),
                    "ClickHouse write failed; retrying"
                );
                if stop.is_cancelled() {
                    // Shutting down with ClickHouse away: leave the entries pending (handed back).
                    for round in batch.rounds {
                        pending.settle(round);
                    }
                    return;
                }
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    recheck_deletions(stores, settings, lookups, &batch).await;
    // Before the acknowledgements: an entry acknowledged is never processed again, so a release
    // that did not happen then would hold its trace back until the gate expires.
    if let Err(err) = trace_gate::release(&stores.redis, &batch.releases).await {
        tracing::warn!(
            error = format!("{err:#}"),
            "cannot release written traces; their gates expire"
        );
    }
    for round in &batch.rounds {
        pending.settle(*round);
    }
    for (shard, ids) in batch.acks {
        // Rows are in ClickHouse; an ack that fails only means the entries are rebuilt again.
        let ids: Vec<String> = ids.into_iter().collect();
        if let Err(err) = queue::ack(&stores.redis, shard, &ids).await {
            tracing::warn!(shard, error = format!("{err:#}"), "acknowledgement failed");
        }
    }
}

/// Every statement of one flush. A retry after a partial failure repeats inserts that
/// ReplacingMergeTree folds into one, and deletions, which are idempotent.
async fn write(ch: &clickhouse::Client, batch: &Batch) -> anyhow::Result<()> {
    let lists: Vec<EntityEventsRow> = batch.lists.values().cloned().collect();
    entity_events::upsert(ch, &lists).await?;
    row_batch::delete_rows(ch, &batch.deletions).await?;
    batch.rows.insert(ch).await
}

/// How far before a round's deletion check a deletion still counts as possibly missed: the web
/// role and the worker timestamp with different clocks.
const DELETION_CLOCK_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

/// Queues a rebuild of every entity just written whose trace was deleted after its round checked.
async fn recheck_deletions(
    stores: &Stores,
    settings: &ConsumerSettings,
    lookups: &IndexLookups,
    batch: &Batch,
) {
    let Some(checked_at) = batch.deletions_checked_at else {
        return;
    };
    let trace = |project_id: &str, trace_id: &str| EntityRef {
        project_id: project_id.to_string(),
        kind: EntityKind::Trace,
        entity_id: trace_id.to_string(),
    };
    let mut written: BTreeMap<EntityRef, Vec<EntityRef>> = BTreeMap::new();
    for t in &batch.rows.traces {
        written.entry(trace(&t.project_id, &t.id)).or_default();
    }
    for o in &batch.rows.observations {
        written
            .entry(trace(&o.project_id, &o.trace_id))
            .or_default()
            .push(EntityRef {
                project_id: o.project_id.clone(),
                kind: EntityKind::Observation,
                entity_id: o.id.clone(),
            });
    }
    for s in &batch.rows.scores {
        if let Some(trace_id) = &s.trace_id {
            written
                .entry(trace(&s.project_id, trace_id))
                .or_default()
                .push(EntityRef {
                    project_id: s.project_id.clone(),
                    kind: EntityKind::Score,
                    entity_id: s.id.clone(),
                });
        }
    }
    if written.is_empty() {
        return;
    }
    let since = checked_at - DELETION_CLOCK_MARGIN;
    let question = Question {
        entities: Vec::new(),
        deletions_since: Some(since),
    };
    let answer = match lookups.ask(question).await {
        Ok(answer) => answer,
        Err(err) => {
            tracing::warn!(error = %err, "cannot recheck deletions after a flush");
            return;
        }
    };
    let mut entities = Vec::new();
    for (trace, deleted_at) in &answer.deleted_at {
        if *deleted_at < since {
            continue;
        }
        if let Some(children) = written.remove(trace) {
            entities.extend(children);
            entities.push(trace.clone());
        }
    }
    if entities.is_empty() {
        return;
    }
    let messages = queue::rebuild_messages(&entities, settings.shards);
    if let Err(err) = queue::enqueue(&stores.redis, &messages).await {
        tracing::warn!(
            error = format!("{err:#}"),
            "cannot queue the rebuild of deleted entities"
        );
    }
}
