//! The ingestion consumer: queue messages → every stored event of the entities they name →
//! merged records → batched ClickHouse insert → acknowledgement.
//!
//! - Each worker owns a fair share of the queue shards under leases (`storage::queue`), and reads
//!   only those, so one entity is never merged by two workers at once.
//! - Records are rebuilt from *all* events ever stored for the entity (`round`): the segments the
//!   entries announce, those of earlier rounds not yet flushed (`pending`), and those recorded in
//!   ClickHouse's `entity_events`. Order of arrival, duplicates and batch boundaries cannot change
//!   them.
//! - The writer (`writer`) writes segment lists, then deletions, then records, and only then
//!   acknowledges the entries. Inserts are retried with backoff for as long as ClickHouse is down;
//!   nothing is dropped. While they wait, the bounded channel stops the shard readers, so memory
//!   stays flat and the backlog (which the web role throttles on) grows instead.
//! - Observations that name a prompt version get its id from PostgreSQL (`prompt_ids`, cached,
//!   and never holding a round up for long).
//! - Observations that name a model get its id, their pricing tier and, without a provided
//!   cost, the cost of their usage (`pricing`, over the cached model catalog, never holding a
//!   round up for long).
//! - Observations that stand for a dataset item in an experiment run become run items of that
//!   run in PostgreSQL (`experiment_runs`, never holding a round up for long; links PostgreSQL
//!   cannot take now wait in a Redis list for a retry).
//! - An entity that cannot be read `max_attempts` times goes to the dead letters.
//! - If Redis loses the queue, `recovery` re-queues what blob storage received meanwhile.

mod experiment_runs;
mod lookups;
mod pending;
mod pricing;
mod prompt_ids;
mod recovery;
mod round;
mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::domain::entity::EntityKind;
use crate::storage::queue::{self, EntityRef};
use crate::storage::Stores;
use experiment_runs::ExperimentRuns;
use pending::{Pending, RoundId};
use pricing::Pricing;
use prompt_ids::PromptIds;
use round::Rebuilt;

/// Entries read from a shard per round trip. An entry is one request's share of the shard.
const READ_COUNT: u64 = 100;
/// Rounds waiting for the ClickHouse writer: with the writer's own batch, the bound on the
/// worker's memory (a round holds at most READ_COUNT requests' share of a shard).
const CHANNEL_CAPACITY: usize = 16;

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

/// The shard readers of this process, each with the token that stops it.
type Readers = BTreeMap<u32, (CancellationToken, tokio::task::JoinHandle<()>)>;

/// Runs the consumer until `shutdown`; then stops reading, writes and acknowledges what it holds
/// (or, if ClickHouse is down, leaves it pending for the next owner), and gives its leases back.
pub async fn run(
    stores: Stores,
    settings: ConsumerSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let owner = format!("worker-{}", uuid::Uuid::new_v4().simple());
    let pending = Arc::new(Pending::default());
    let lookups = lookups::IndexLookups::start(stores.clickhouse.clone());
    let (tx, rx) = mpsc::channel::<Rebuilt>(CHANNEL_CAPACITY);
    // The writer keeps retrying during shutdown until this deadline, then hands back.
    let writer_stop = CancellationToken::new();
    let writer = tokio::spawn(writer::run(
        stores.clone(),
        rx,
        settings.clone(),
        pending.clone(),
        lookups.clone(),
        writer_stop.clone(),
    ));

    let mut readers = Readers::new();
    let tick = settings.lease_ttl / 3;
    // Workers start their lease attempts at different shards so they do not all contend for 0.
    let offset = queue::shard_of(
        &EntityRef {
            project_id: owner.clone(),
            kind: EntityKind::Trace,
            entity_id: String::new(),
        },
        settings.shards,
    ) as usize;
    let mut epoch = recovery::EpochWatch::default();
    let context = ReaderContext {
        stores: stores.clone(),
        settings: settings.clone(),
        owner: owner.clone(),
        pending,
        lookups,
        prompt_ids: Arc::new(PromptIds::default()),
        pricing: Arc::new(Pricing::new(stores.postgres.clone())),
        experiment_runs: Arc::new(ExperimentRuns::default()),
        tx,
    };
    let link_retries = tokio::spawn(experiment_runs::retry_pending(
        stores.clone(),
        shutdown.clone(),
    ));
    warn_unless_clickhouse_runs_in_utc(&stores.clickhouse).await;
    // Before any shard is taken, so the first rounds are priced (bounded: see `Pricing::warm`).
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = context.pricing.warm() => {}
    }
    loop {
        if let Err(err) = epoch.check(&stores, &settings).await {
            tracing::warn!(error = format!("{err:#}"), "queue epoch check failed");
        }
        if let Err(err) = balance_leases(&context, offset, &mut readers).await {
            tracing::warn!(error = format!("{err:#}"), "lease round failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(tick) => {}
        }
    }

    for (stop, _) in readers.values() {
        stop.cancel();
    }
    for (_, (_, handle)) in std::mem::take(&mut readers) {
        let _ = handle.await;
    }
    drop(context);
    let _ = link_retries.await;
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

/// What every shard reader of this process shares.
#[derive(Clone)]
struct ReaderContext {
    stores: Stores,
    settings: ConsumerSettings,
    owner: String,
    pending: Arc<Pending>,
    lookups: lookups::IndexLookups,
    prompt_ids: Arc<PromptIds>,
    pricing: Arc<Pricing>,
    experiment_runs: Arc<ExperimentRuns>,
    tx: mpsc::Sender<Rebuilt>,
}

/// One lease round: heartbeat, then hold this worker's fair share of shards and no more.
async fn balance_leases(
    context: &ReaderContext,
    offset: usize,
    readers: &mut Readers,
) -> anyhow::Result<()> {
    let (redis, settings, owner) = (&context.stores.redis, &context.settings, &context.owner);
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
            let handle = tokio::spawn(read_shard(context.clone(), shard, stop.clone()));
            readers.insert(shard, (stop, handle));
        }
    }
    Ok(())
}

/// The longest an idle shard reader waits before it asks its shard again: what a quiet queue adds
/// to the time from acceptance to a read (the asks cost Redis little: a shard per interval).
const MAX_IDLE_POLL: Duration = Duration::from_millis(40);

/// Reads one owned shard: first what earlier owners left pending, then new entries.
async fn read_shard(context: ReaderContext, shard: u32, stop: CancellationToken) {
    let ReaderContext {
        stores,
        settings,
        owner,
        pending,
        lookups,
        prompt_ids,
        pricing,
        experiment_runs,
        tx,
    } = context;
    // Entries earlier owners left pending are taken over first, scanning the pending list once.
    let mut takeover_cursor = Some("0-0".to_string());
    let mut round = 0u64;
    let mut idle = Duration::from_millis(10);
    while !stop.is_cancelled() {
        let entries = match &takeover_cursor {
            Some(cursor) => {
                match queue::claim_pending(&stores.redis, shard, &owner, cursor, READ_COUNT).await {
                    Ok((entries, next)) => {
                        takeover_cursor = (next != "0-0").then_some(next);
                        Ok(entries)
                    }
                    Err(err) => Err(err),
                }
            }
            None => queue::read_new(&stores.redis, shard, &owner, READ_COUNT).await,
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
            if takeover_cursor.is_none() {
                sleep_or_stop(&stop, idle).await;
                idle = (idle * 2).min(MAX_IDLE_POLL);
            }
            continue;
        }
        idle = Duration::from_millis(10);
        round += 1;
        let id = RoundId { shard, round };
        let Some(mut rebuilt) =
            round::process(&stores, &settings, &pending, &lookups, id, entries, &stop).await
        else {
            // Stopped while ClickHouse was away: the entries stay pending for the next owner.
            pending.settle(id);
            break;
        };
        prompt_ids
            .fill(&stores.postgres, &mut rebuilt.rows.observations)
            .await;
        if !pricing.fill(&mut rebuilt.rows.observations).await {
            pending.settle(id);
            break;
        }
        experiment_runs
            .link(&stores, &rebuilt.rows.observations)
            .await;
        if tx.send(rebuilt).await.is_err() {
            pending.settle(id);
            break;
        }
    }
}

/// The sorting keys hold `toDate` of a time, which ClickHouse takes in its server's time zone,
/// while a round decides whether a row moved to another key by its UTC date (`round`): in
/// another zone a moved row can keep a live copy under its old key, which `FINAL` reads count
/// twice. Langfuse requires UTC too; this says so in the log rather than refusing to work.
async fn warn_unless_clickhouse_runs_in_utc(ch: &clickhouse::Client) {
    match ch.query("SELECT timezone()").fetch_one::<String>().await {
        Ok(zone) if matches!(zone.as_str(), "UTC" | "Etc/UTC" | "Etc/UCT" | "UCT") => {}
        Ok(zone) => tracing::warn!(
            %zone,
            "ClickHouse does not run in UTC: rows whose day changes may be counted twice by metrics; set its timezone to UTC"
        ),
        Err(err) => tracing::warn!(
            error = format!("{err:#}"),
            "cannot read ClickHouse's time zone"
        ),
    }
}

async fn sleep_or_stop(stop: &CancellationToken, duration: Duration) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep(duration) => {}
    }
}
