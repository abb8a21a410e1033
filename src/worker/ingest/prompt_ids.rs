//! Links observations to the prompt versions they name: an observation with a prompt name and
//! version gets the id of that version from PostgreSQL's `prompts`, as Langfuse writes
//! `prompt_id` at ingestion.
//!
//! The ids are cached per process, so that the lookup stays off the hot path: a round asks
//! PostgreSQL once, for all the versions it does not know yet. A version's id is kept for
//! [`FOUND_TTL`] (a version can only get another id by being deleted and created again) and a
//! version that does not exist for [`MISSING_TTL`] (it may be created soon).
//!
//! Linking never holds events up and never loses them: when PostgreSQL does not answer within
//! [`LOOKUP_TIMEOUT`], the observations of the round are written without the id (their prompt
//! name and version are still there), the failure is logged, and lookups pause for
//! [`PAUSE_AFTER_FAILURE`] so that later rounds do not each wait for the timeout. Any later
//! event of such an observation rebuilds it, and then it is linked. A round is never retried
//! for the id alone: ingestion does not otherwise depend on PostgreSQL, and an outage of it
//! must not stop the queue.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;

use crate::storage::clickhouse::observations::ObservationRow;
use crate::storage::prompts::{self, VersionKey};

/// How long a found id is trusted.
const FOUND_TTL: Duration = Duration::from_secs(600);
/// How long a version that does not exist is believed not to.
const MISSING_TTL: Duration = Duration::from_secs(30);
/// How long one lookup may take before the round goes on without it.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long lookups pause after one failed.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(10);
/// Versions cached at most; past it, expired entries go, and if that is not enough, all do.
const MAX_ENTRIES: usize = 50_000;

/// What is known of one version: its id, or that it does not exist, until `expires`.
#[derive(Debug, Clone)]
struct Cached {
    id: Option<String>,
    expires: Instant,
}

/// The prompt ids of this process's observations.
#[derive(Debug, Default)]
pub struct PromptIds {
    cache: Mutex<HashMap<VersionKey, Cached>>,
    paused_until: Mutex<Option<Instant>>,
}

impl PromptIds {
    /// Sets `prompt_id` on every observation that names a prompt version, from the cache or
    /// from one PostgreSQL query for the versions the cache does not know; leaves it unset
    /// where the version does not exist or PostgreSQL did not answer.
    pub async fn fill(&self, postgres: &Pool, observations: &mut [ObservationRow]) {
        let named: Vec<(usize, VersionKey)> = observations
            .iter()
            .enumerate()
            .filter_map(|(i, o)| version_named_by(o).map(|key| (i, key)))
            .collect();
        if named.is_empty() {
            return;
        }
        let now = Instant::now();
        let unknown: BTreeSet<&VersionKey> = {
            let cache = self.cache.lock().unwrap();
            named
                .iter()
                .map(|(_, key)| key)
                .filter(|key| cache.get(*key).is_none_or(|c| c.expires <= now))
                .collect()
        };
        if !unknown.is_empty() && !self.paused(now) {
            let unknown: Vec<VersionKey> = unknown.into_iter().cloned().collect();
            self.look_up(postgres, &unknown).await;
        }
        let cache = self.cache.lock().unwrap();
        for (i, key) in &named {
            observations[*i].prompt_id = cache.get(key).and_then(|c| c.id.clone());
        }
    }

    fn paused(&self, now: Instant) -> bool {
        self.paused_until
            .lock()
            .unwrap()
            .is_some_and(|until| now < until)
    }

    /// Asks PostgreSQL for the ids of `versions` and caches the answer, found or not.
    async fn look_up(&self, postgres: &Pool, versions: &[VersionKey]) {
        let answer =
            tokio::time::timeout(LOOKUP_TIMEOUT, prompts::ids_of_versions(postgres, versions))
                .await;
        let found = match answer {
            Ok(Ok(found)) => found,
            Ok(Err(err)) => {
                self.pause(format!("{err:#}"));
                return;
            }
            Err(_) => {
                self.pause(format!("no answer within {LOOKUP_TIMEOUT:?}"));
                return;
            }
        };
        let now = Instant::now();
        let mut found: HashMap<VersionKey, String> = found.into_iter().collect();
        let mut cache = self.cache.lock().unwrap();
        if cache.len() + versions.len() > MAX_ENTRIES {
            cache.retain(|_, c| c.expires > now);
            if cache.len() + versions.len() > MAX_ENTRIES {
                cache.clear();
            }
        }
        for key in versions {
            let cached = match found.remove(key) {
                Some(id) => Cached {
                    id: Some(id),
                    expires: now + FOUND_TTL,
                },
                None => Cached {
                    id: None,
                    expires: now + MISSING_TTL,
                },
            };
            cache.insert(key.clone(), cached);
        }
    }

    fn pause(&self, error: String) {
        tracing::warn!(
            %error,
            pause_secs = PAUSE_AFTER_FAILURE.as_secs(),
            "cannot look up prompt ids; observations are written without them"
        );
        *self.paused_until.lock().unwrap() = Some(Instant::now() + PAUSE_AFTER_FAILURE);
    }
}

/// The prompt version an observation names, if it names both a prompt and a version.
fn version_named_by(observation: &ObservationRow) -> Option<VersionKey> {
    let name = observation.prompt_name.as_ref().filter(|n| !n.is_empty())?;
    Some(VersionKey {
        project_id: observation.project_id.clone(),
        name: name.clone(),
        version: i32::from(observation.prompt_version?),
    })
}
