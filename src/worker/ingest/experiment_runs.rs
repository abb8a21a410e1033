//! Dataset runs from experiment spans: the observation an SDK's experiment runner names as a
//! dataset item's root (`id = experiment_item_root_observation_id`, with a dataset, an item and a
//! run name) becomes a run item of that run in PostgreSQL, linking the item to its trace and
//! observation, as `POST /api/public/dataset-run-items` does. The run is found by dataset and
//! name, or made, so both roads lead to the same run.
//!
//! Linking never holds a round up and never loses a link:
//! - a round asks PostgreSQL once, for the links this process has not made yet (the links made
//!   are remembered, so rebuilds of the same observations cost nothing);
//! - when PostgreSQL fails or does not answer within [`LINK_TIMEOUT`], the round goes on, the
//!   links are appended to a Redis list, and lookups pause for [`PAUSE_AFTER_FAILURE`] (later
//!   rounds append theirs without waiting); [`retry_pending`] drains the list once PostgreSQL
//!   answers again, and any later rebuild of the observation links it as well;
//! - linking is idempotent (see `storage::postgres::experiment_runs`), so a link made twice, by
//!   a retry, a rebuild or two workers, is one run item.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fred::interfaces::ListInterface;
use tokio_util::sync::CancellationToken;

use crate::storage::clickhouse::observations::ObservationRow;
use crate::storage::postgres::experiment_runs::{self, RunItemLink};
use crate::storage::redis::RedisStore;
use crate::storage::Stores;

/// How long one round's links may take before the round goes on without them.
const LINK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long linking pauses after a failure: meanwhile links go straight to the retry list.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(10);
/// How often the retry list is looked at.
const RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// Links taken off the retry list at a time.
const RETRY_BATCH: usize = 500;
/// Links remembered as made; past it, the memory starts again (a link made twice is harmless).
const MAX_REMEMBERED: usize = 50_000;

/// The experiment links of this process: those made, and whether PostgreSQL is being waited for.
#[derive(Debug, Default)]
pub struct ExperimentRuns {
    made: Mutex<HashSet<RunItemLink>>,
    paused_until: Mutex<Option<Instant>>,
}

impl ExperimentRuns {
    /// Links every observation of the round that stands for a dataset item in an experiment
    /// run. Returns once the links are made or kept for a retry; never fails the round.
    pub async fn link(&self, stores: &Stores, observations: &[ObservationRow]) {
        let links: Vec<RunItemLink> = {
            let made = self.made.lock().unwrap();
            let mut seen = HashSet::new();
            observations
                .iter()
                .filter_map(link_of)
                .filter(|l| !made.contains(l) && seen.insert(l.clone()))
                .collect()
        };
        if links.is_empty() {
            return;
        }
        if !self.paused() {
            let answer = tokio::time::timeout(
                LINK_TIMEOUT,
                experiment_runs::link_run_items(&stores.postgres, &links),
            )
            .await;
            let error = match answer {
                Ok(Ok(_)) => {
                    self.remember(links);
                    return;
                }
                Ok(Err(err)) => format!("{err:#}"),
                Err(_) => format!("no answer within {LINK_TIMEOUT:?}"),
            };
            tracing::warn!(
                %error,
                links = links.len(),
                pause_secs = PAUSE_AFTER_FAILURE.as_secs(),
                "cannot link experiment runs now; kept for a retry"
            );
            *self.paused_until.lock().unwrap() = Some(Instant::now() + PAUSE_AFTER_FAILURE);
        }
        if let Err(err) = keep_for_retry(&stores.redis, &links).await {
            // Neither store took them: the next rebuild of these observations links them.
            tracing::error!(
                error = format!("{err:#}"),
                links = links.len(),
                "cannot keep experiment links for a retry"
            );
        }
    }

    fn paused(&self) -> bool {
        self.paused_until
            .lock()
            .unwrap()
            .is_some_and(|until| Instant::now() < until)
    }

    fn remember(&self, links: Vec<RunItemLink>) {
        let mut made = self.made.lock().unwrap();
        if made.len() + links.len() > MAX_REMEMBERED {
            made.clear();
        }
        made.extend(links);
    }
}

/// The run item an observation stands for, if it is an experiment item's root observation that
/// names a dataset, an item and a run.
pub fn link_of(o: &ObservationRow) -> Option<RunItemLink> {
    let given = |v: &Option<String>| v.as_ref().filter(|s| !s.is_empty()).cloned();
    if given(&o.experiment_item_root_observation_id).as_deref() != Some(o.id.as_str()) {
        return None;
    }
    let run_name = given(&o.experiment_name)?;
    let run_metadata = (!o.experiment_metadata.is_empty()).then(|| {
        let object: serde_json::Map<String, serde_json::Value> = o
            .experiment_metadata
            .iter()
            .map(|(k, v)| {
                // Stored metadata values are JSON text when they were JSON, else the text itself.
                let value = serde_json::from_str(v)
                    .unwrap_or_else(|_| serde_json::Value::String(v.clone()));
                (k.clone(), value)
            })
            .collect();
        serde_json::Value::Object(object).to_string()
    });
    Some(RunItemLink {
        project_id: o.project_id.clone(),
        dataset_id: given(&o.experiment_dataset_id)?,
        run_id: given(&o.experiment_id).unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        run_name,
        run_description: given(&o.experiment_description),
        run_metadata,
        item_id: given(&o.experiment_item_id)?,
        item_version: o.experiment_item_version,
        trace_id: o.trace_id.clone(),
        observation_id: o.id.clone(),
    })
}

fn retry_key(redis: &RedisStore) -> String {
    redis
        .keyspace
        .key("experiment-links", "retry", Some("pending"))
}

async fn keep_for_retry(redis: &RedisStore, links: &[RunItemLink]) -> anyhow::Result<()> {
    let texts: Vec<String> = links
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<_, _>>()?;
    let _: i64 = redis.client.rpush(retry_key(redis), texts).await?;
    Ok(())
}

/// Drains the retry list until `shutdown`: takes a batch, links it, and puts it back at the end
/// when PostgreSQL still fails (a worker killed between the two loses that batch to the next
/// rebuild of its observations, which links them again).
pub async fn retry_pending(stores: Stores, shutdown: CancellationToken) {
    let key = retry_key(&stores.redis);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RETRY_INTERVAL) => {}
        }
        loop {
            let texts: Vec<String> = match stores.redis.client.lpop(&key, Some(RETRY_BATCH)).await {
                Ok(texts) => texts,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read the experiment link retry list");
                    break;
                }
            };
            if texts.is_empty() {
                break;
            }
            let links: Vec<RunItemLink> = texts
                .iter()
                .filter_map(|t| serde_json::from_str(t).ok())
                .collect();
            match experiment_runs::link_run_items(&stores.postgres, &links).await {
                Ok(created) => {
                    tracing::info!(links = links.len(), created, "experiment links retried");
                }
                Err(err) => {
                    tracing::warn!(
                        error = format!("{err:#}"),
                        "experiment links still cannot be made"
                    );
                    if let Err(err) = keep_for_retry(&stores.redis, &links).await {
                        tracing::error!(
                            error = format!("{err:#}"),
                            links = links.len(),
                            "experiment links dropped until their observations are rebuilt"
                        );
                    }
                    break;
                }
            }
            if texts.len() < RETRY_BATCH {
                break;
            }
        }
    }
}
