//! The ingestion consumer: queue references → every raw event of the entity → merged record →
//! batched ClickHouse insert → acknowledgement.
//!
//! - Each worker owns a fair share of the queue shards under leases (`storage::queue`), and reads
//!   only those, so one entity is never merged by two workers at once.
//! - Records are rebuilt from *all* events ever stored for the entity, not just the ones a
//!   reference announced: order of arrival, duplicates and batch boundaries cannot change them.
//! - Entries are acknowledged only after ClickHouse confirmed the insert of their rows. Inserts are
//!   retried with backoff for as long as ClickHouse is down; nothing is dropped. While they wait,
//!   the bounded channel stops the shard readers, so memory stays flat and the backlog (which the
//!   web role throttles on) grows instead.
//! - An entity that cannot be rebuilt `max_attempts` times goes to the dead letters.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::ingest::event::{parse_envelope, EntityKind, Event, Parsed};
use crate::ingest::merge;
use crate::storage::blob::event_keys;
use crate::storage::clickhouse::rows::{ObservationRow, RowBatch, ScoreRow, TraceRow};
use crate::storage::queue::{self, DeadLetter, EntityRef, Entry};
use crate::storage::Stores;

/// Entries read from a shard per round trip.
const READ_COUNT: u64 = 500;
/// Entities rebuilt concurrently by one shard reader.
const REBUILD_CONCURRENCY: usize = 16;
/// Rebuilt batches waiting for the ClickHouse writer: the bound on the worker's memory.
const CHANNEL_CAPACITY: usize = 4;

/// Settings the consumer needs, copied out of [`Settings`].
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub shards: u32,
    pub flush_rows: usize,
    pub flush_interval: Duration,
    pub max_attempts: u32,
    pub lease_ttl: Duration,
    pub recovery_window: Duration,
}

impl ConsumerSettings {
    pub fn from_settings(settings: &Settings) -> Self {
        ConsumerSettings {
            shards: settings.ingestion.queue_shards,
            flush_rows: settings.worker.flush_rows,
            flush_interval: Duration::from_millis(settings.worker.flush_interval_ms),
            max_attempts: settings.worker.max_attempts,
            lease_ttl: Duration::from_secs(settings.worker.lease_ttl_secs),
            recovery_window: Duration::from_secs(settings.worker.recovery_window_secs),
        }
    }
}

/// What a shard reader hands the writer: rows, and the entries they settle.
struct Rebuilt {
    shard: u32,
    entry_ids: Vec<String>,
    rows: RowBatch,
}

/// Runs the consumer until `shutdown`; then stops reading, writes and acknowledges what it holds
/// (or, if ClickHouse is down, leaves it pending for the next owner), and gives its leases back.
pub async fn run(
    stores: Stores,
    settings: ConsumerSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let owner = format!("worker-{}", uuid::Uuid::new_v4().simple());
    let (tx, rx) = mpsc::channel::<Rebuilt>(CHANNEL_CAPACITY);
    // The writer keeps retrying during shutdown until this deadline, then hands back.
    let writer_stop = CancellationToken::new();
    let writer = tokio::spawn(write_loop(
        stores.clone(),
        rx,
        settings.clone(),
        writer_stop.clone(),
    ));

    let mut readers: BTreeMap<u32, (CancellationToken, tokio::task::JoinHandle<()>)> =
        BTreeMap::new();
    let tick = settings.lease_ttl / 3;
    // Workers start their lease attempts at different shards so they do not all contend for 0.
    let offset = (crate::storage::queue::shard_of(
        &EntityRef {
            project_id: owner.clone(),
            kind: EntityKind::Trace,
            entity_id: String::new(),
        },
        settings.shards,
    )) as usize;
    let mut epoch = EpochWatch::default();
    loop {
        if let Err(err) = epoch.check(&stores, &settings).await {
            tracing::warn!(error = format!("{err:#}"), "queue epoch check failed");
        }
        if let Err(err) =
            balance_leases(&stores, &settings, &owner, offset, &mut readers, &tx).await
        {
            tracing::warn!(error = format!("{err:#}"), "lease round failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(tick) => {}
        }
    }

    for (_, (stop, _)) in readers.iter() {
        stop.cancel();
    }
    for (_, (_, handle)) in std::mem::take(&mut readers) {
        let _ = handle.await;
    }
    drop(tx);
    let deadline = tokio::time::sleep(settings.lease_ttl);
    tokio::pin!(deadline);
    let mut writer = writer;
    tokio::select! {
        result = &mut writer => { result?; }
        _ = &mut deadline => {
            writer_stop.cancel();
            writer.await?;
        }
    }
    for shard in 0..settings.shards {
        let _ = queue::release_lease(&stores.redis, shard, &owner).await;
    }
    tracing::info!(%owner, "ingestion consumer stopped");
    Ok(())
}

/// Notices when Redis has lost the queue (see [`queue::epoch`]) and re-queues every entity whose
/// events blob storage received since the queue was last seen intact.
#[derive(Debug, Default)]
struct EpochWatch {
    known: Option<String>,
    last_seen: Option<chrono::DateTime<chrono::Utc>>,
}

impl EpochWatch {
    async fn check(&mut self, stores: &Stores, settings: &ConsumerSettings) -> anyhow::Result<()> {
        let now = chrono::Utc::now();
        let (epoch, created) = queue::epoch(&stores.redis).await?;
        if created {
            // Either the first start of the installation, or Redis lost its data. Looking back
            // past the last moment the queue was seen intact costs a listing and some rebuilds,
            // which are idempotent; looking back too little would lose references.
            let since = match self.last_seen {
                Some(seen) => seen - chrono::Duration::minutes(5),
                None => now - chrono::Duration::from_std(settings.recovery_window)?,
            };
            let requeued = requeue_since(stores, settings.shards, since).await?;
            if requeued > 0 {
                tracing::warn!(requeued, %since, "the queue was empty of its epoch: re-queued entities from blob storage");
            }
        }
        self.known = Some(epoch);
        self.last_seen = Some(now);
        Ok(())
    }
}

/// Re-queues every entity with an event object written since `since`.
async fn requeue_since(
    stores: &Stores,
    shards: u32,
    since: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<usize> {
    let base = stores.blob.base();
    let mut listing = stores.blob.store.list(Some(&base.child("events")));
    let mut entities = BTreeSet::new();
    while let Some(meta) = listing.next().await {
        let meta = meta.context("listing stored events")?;
        if meta.last_modified < since {
            continue;
        }
        if let Some((project_id, kind, entity_id)) = event_keys::entity_of(&base, &meta.location) {
            entities.insert((project_id, kind, entity_id));
        }
    }
    let refs: Vec<EntityRef> = entities
        .into_iter()
        .map(|(project_id, kind, entity_id)| EntityRef {
            project_id,
            kind,
            entity_id,
        })
        .collect();
    for chunk in refs.chunks(1000) {
        queue::enqueue(&stores.redis, shards, chunk).await?;
    }
    Ok(refs.len())
}

/// One lease round: heartbeat, then hold this worker's fair share of shards and no more.
async fn balance_leases(
    stores: &Stores,
    settings: &ConsumerSettings,
    owner: &str,
    offset: usize,
    readers: &mut BTreeMap<u32, (CancellationToken, tokio::task::JoinHandle<()>)>,
    tx: &mpsc::Sender<Rebuilt>,
) -> anyhow::Result<()> {
    let redis = &stores.redis;
    let live = queue::heartbeat(redis, owner, settings.lease_ttl).await?;
    let fair_share = settings.shards.div_ceil(live) as usize;
    readers.retain(|_, (_, handle)| !handle.is_finished());

    // Renew what is held, giving back shards beyond the fair share.
    let held: Vec<u32> = readers.keys().copied().collect();
    for (i, shard) in held.iter().enumerate() {
        let keep =
            i < fair_share && queue::hold_lease(redis, *shard, owner, settings.lease_ttl).await?;
        if !keep {
            if let Some((stop, handle)) = readers.remove(shard) {
                stop.cancel();
                let _ = handle.await;
            }
            queue::release_lease(redis, *shard, owner).await?;
        }
    }
    // Take free shards up to the fair share.
    for i in 0..settings.shards as usize {
        if readers.len() >= fair_share {
            break;
        }
        let shard = ((offset + i) % settings.shards as usize) as u32;
        if readers.contains_key(&shard) {
            continue;
        }
        if queue::hold_lease(redis, shard, owner, settings.lease_ttl).await? {
            tracing::info!(shard, %owner, "took queue shard");
            let stop = CancellationToken::new();
            let handle = tokio::spawn(read_shard(
                stores.clone(),
                settings.clone(),
                shard,
                owner.to_string(),
                tx.clone(),
                stop.clone(),
            ));
            readers.insert(shard, (stop, handle));
        }
    }
    Ok(())
}

/// Reads one owned shard: first what earlier owners left pending, then new entries.
async fn read_shard(
    stores: Stores,
    settings: ConsumerSettings,
    shard: u32,
    owner: String,
    tx: mpsc::Sender<Rebuilt>,
    stop: CancellationToken,
) {
    let mut taking_over = true;
    let mut idle = Duration::from_millis(10);
    while !stop.is_cancelled() {
        let entries = if taking_over {
            queue::claim_pending(&stores.redis, shard, &owner, READ_COUNT).await
        } else {
            queue::read_new(&stores.redis, shard, &owner, READ_COUNT).await
        };
        let entries = match entries {
            Ok(entries) => entries,
            Err(err) => {
                tracing::warn!(shard, error = format!("{err:#}"), "queue read failed");
                sleep_or_stop(&stop, Duration::from_secs(1)).await;
                continue;
            }
        };
        if entries.is_empty() {
            if taking_over {
                taking_over = false;
            } else {
                sleep_or_stop(&stop, idle).await;
                idle = (idle * 2).min(Duration::from_millis(200));
            }
            continue;
        }
        idle = Duration::from_millis(10);
        let rebuilt = rebuild_entries(&stores, &settings, shard, entries).await;
        if tx.send(rebuilt).await.is_err() {
            break;
        }
    }
}

async fn sleep_or_stop(stop: &CancellationToken, duration: Duration) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep(duration) => {}
    }
}

/// Rebuilds every entity the entries name, each once however often it is named.
async fn rebuild_entries(
    stores: &Stores,
    settings: &ConsumerSettings,
    shard: u32,
    entries: Vec<Entry>,
) -> Rebuilt {
    let mut by_entity: HashMap<EntityRef, Vec<Entry>> = HashMap::new();
    let mut entry_ids = Vec::new();
    for entry in entries {
        match entry.entity.clone() {
            Some(entity) => by_entity.entry(entity).or_default().push(entry),
            None => {
                let letter = DeadLetter {
                    shard,
                    entity: None,
                    error: "undecodable queue entry".into(),
                    attempts: 1,
                    failed_at: chrono::Utc::now(),
                };
                if let Err(err) = queue::dead_letter(&stores.redis, &entry, &letter).await {
                    tracing::error!(error = %err, "cannot dead-letter an undecodable entry");
                }
            }
        }
    }
    let traces = TraceExistence::default();
    for entity in by_entity.keys().filter(|e| e.kind == EntityKind::Trace) {
        traces.known_to_exist(entity.clone());
    }
    let traces = &traces;
    let results: Vec<(Vec<Entry>, anyhow::Result<RowBatch>)> = futures::stream::iter(by_entity)
        .map(|(entity, entries)| async move {
            let rows = rebuild_with_retries(stores, settings, &entity, traces).await;
            (entries, rows)
        })
        .buffer_unordered(REBUILD_CONCURRENCY)
        .collect()
        .await;

    let mut rows = RowBatch::default();
    for (entries, result) in results {
        match result {
            Ok(batch) => {
                rows.traces.extend(batch.traces);
                rows.observations.extend(batch.observations);
                rows.scores.extend(batch.scores);
                entry_ids.extend(entries.into_iter().map(|e| e.id));
            }
            Err(err) => {
                for entry in entries {
                    let letter = DeadLetter {
                        shard,
                        entity: entry.entity.clone(),
                        error: format!("{err:#}"),
                        attempts: settings.max_attempts,
                        failed_at: chrono::Utc::now(),
                    };
                    tracing::error!(?letter, "entity moved to the dead letters");
                    if let Err(err) = queue::dead_letter(&stores.redis, &entry, &letter).await {
                        // Left pending: the next owner of the shard tries again.
                        tracing::error!(error = %err, "cannot dead-letter an entry");
                    }
                }
            }
        }
    }
    Rebuilt {
        shard,
        entry_ids,
        rows,
    }
}

/// Whether traces have events of their own, asked once per trace in a round however many of its
/// observations are rebuilt (a batch commonly holds a trace and dozens of its observations).
#[derive(Default)]
struct TraceExistence {
    answers: std::sync::Mutex<HashMap<EntityRef, Arc<tokio::sync::OnceCell<bool>>>>,
}

impl TraceExistence {
    fn cell(&self, trace: &EntityRef) -> Arc<tokio::sync::OnceCell<bool>> {
        let mut answers = self.answers.lock().expect("trace existence lock poisoned");
        answers.entry(trace.clone()).or_default().clone()
    }

    fn known_to_exist(&self, trace: EntityRef) {
        let _ = self.cell(&trace).set(true);
    }

    async fn has_events(&self, stores: &Stores, trace: &EntityRef) -> anyhow::Result<bool> {
        let cell = self.cell(trace);
        cell.get_or_try_init(|| has_events(stores, trace))
            .await
            .copied()
    }
}

async fn rebuild_with_retries(
    stores: &Stores,
    settings: &ConsumerSettings,
    entity: &EntityRef,
    traces: &TraceExistence,
) -> anyhow::Result<RowBatch> {
    let mut attempt = 1;
    loop {
        match rebuild(stores, entity, traces).await {
            Ok(rows) => return Ok(rows),
            Err(err) if attempt >= settings.max_attempts => return Err(err),
            Err(err) => {
                tracing::warn!(
                    ?entity,
                    attempt,
                    error = format!("{err:#}"),
                    "rebuild failed; retrying"
                );
                tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(attempt.min(6)))).await;
                attempt += 1;
            }
        }
    }
}

/// Reads every stored event of one entity.
pub async fn load_events(stores: &Stores, entity: &EntityRef) -> anyhow::Result<Vec<Event>> {
    let prefix = event_keys::entity_prefix(
        &stores.blob.base(),
        &entity.project_id,
        entity.kind,
        &entity.entity_id,
    );
    let objects: Vec<_> = stores
        .blob
        .store
        .list(Some(&prefix))
        .try_collect()
        .await
        .with_context(|| format!("listing {prefix}"))?;
    let store = Arc::clone(&stores.blob.store);
    let bodies: Vec<bytes::Bytes> = futures::stream::iter(objects)
        .map(|meta| {
            let store = Arc::clone(&store);
            async move {
                let bytes = store.get(&meta.location).await?.bytes().await?;
                anyhow::Ok(bytes)
            }
        })
        .buffer_unordered(8)
        .try_collect()
        .await
        .context("reading stored events")?;
    let mut events = Vec::new();
    for body in bodies {
        let envelopes: Vec<serde_json::Value> =
            serde_json::from_slice(&body).context("a stored event file is not a JSON array")?;
        for envelope in &envelopes {
            // Stored envelopes passed validation when they were accepted; one that no longer
            // parses (an older format) is skipped rather than blocking the entity forever.
            match parse_envelope(envelope) {
                Ok(Parsed::Event(event)) => events.push(*event),
                Ok(Parsed::SdkLog { .. }) => {}
                Err(err) => tracing::warn!(?entity, error = %err.message, "stored event skipped"),
            }
        }
    }
    Ok(events)
}

/// The rows of one entity: its record, and for an observation whose trace was never sent, the
/// wrapper trace.
async fn rebuild(
    stores: &Stores,
    entity: &EntityRef,
    traces: &TraceExistence,
) -> anyhow::Result<RowBatch> {
    let events = load_events(stores, entity).await?;
    let (project, id) = (entity.project_id.as_str(), entity.entity_id.as_str());
    let mut rows = RowBatch::default();
    match entity.kind {
        EntityKind::Trace => {
            rows.traces.extend(
                merge::merge_trace(project, id, &events)
                    .as_ref()
                    .map(TraceRow::from),
            );
        }
        EntityKind::Score => {
            rows.scores.extend(
                merge::merge_score(project, id, &events)
                    .as_ref()
                    .map(ScoreRow::from),
            );
        }
        EntityKind::Observation => {
            if let Some(observation) = merge::merge_observation(project, id, &events) {
                let trace = EntityRef {
                    project_id: entity.project_id.clone(),
                    kind: EntityKind::Trace,
                    entity_id: observation.trace_id.clone(),
                };
                if !traces.has_events(stores, &trace).await? {
                    rows.traces
                        .push(TraceRow::from(&merge::wrapper_trace(project, &observation)));
                }
                rows.observations.push(ObservationRow::from(&observation));
            }
        }
    }
    Ok(rows)
}

async fn has_events(stores: &Stores, entity: &EntityRef) -> anyhow::Result<bool> {
    let prefix = event_keys::entity_prefix(
        &stores.blob.base(),
        &entity.project_id,
        entity.kind,
        &entity.entity_id,
    );
    let first = stores.blob.store.list(Some(&prefix)).next().await;
    match first {
        None => Ok(false),
        Some(Ok(_)) => Ok(true),
        Some(Err(err)) => Err(err.into()),
    }
}

/// Batches rows by size and interval; inserts, then acknowledges.
async fn write_loop(
    stores: Stores,
    mut rx: mpsc::Receiver<Rebuilt>,
    settings: ConsumerSettings,
    stop: CancellationToken,
) {
    let mut batch = RowBatch::default();
    let mut acks: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let mut deadline: Option<tokio::time::Instant> = None;
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
                    batch.traces.extend(rebuilt.rows.traces);
                    batch.observations.extend(rebuilt.rows.observations);
                    batch.scores.extend(rebuilt.rows.scores);
                    acks.entry(rebuilt.shard).or_default().extend(rebuilt.entry_ids);
                    deadline.get_or_insert(tokio::time::Instant::now() + settings.flush_interval);
                    if batch.len() >= settings.flush_rows {
                        flush(&stores, &mut batch, &mut acks, &stop).await;
                        deadline = None;
                    }
                }
                None => {
                    flush(&stores, &mut batch, &mut acks, &stop).await;
                    return;
                }
            },
            _ = flush_due => {
                flush(&stores, &mut batch, &mut acks, &stop).await;
                deadline = None;
            }
        }
    }
}

async fn flush(
    stores: &Stores,
    batch: &mut RowBatch,
    acks: &mut BTreeMap<u32, Vec<String>>,
    stop: &CancellationToken,
) {
    if acks.values().all(Vec::is_empty) && batch.is_empty() {
        return;
    }
    let mut backoff = Duration::from_millis(100);
    loop {
        match batch.insert(&stores.clickhouse).await {
            Ok(()) => break,
            Err(err) => {
                tracing::warn!(
                    rows = batch.len(),
                    error = format!("{err:#}"),
                    "ClickHouse insert failed; retrying"
                );
                if stop.is_cancelled() {
                    // Shutting down with ClickHouse away: leave the entries pending (handed back).
                    *batch = RowBatch::default();
                    acks.clear();
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
    *batch = RowBatch::default();
    for (shard, ids) in std::mem::take(acks) {
        // Rows are in ClickHouse; an ack that fails only means the entries are rebuilt again.
        let unique: BTreeSet<String> = ids.into_iter().collect();
        let ids: Vec<String> = unique.into_iter().collect();
        if let Err(err) = queue::ack(&stores.redis, shard, &ids).await {
            tracing::warn!(shard, error = format!("{err:#}"), "acknowledgement failed");
        }
    }
}
