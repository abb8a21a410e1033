//! The cache of prompt reads in each `serve` process: process memory first, Redis behind it,
//! PostgreSQL behind that.
//!
//! Applications fetch their prompt before every model call, so a hit must not wait for anything:
//! [`PromptCache::get`] takes a read lock on a map and clones a reference-counted buffer holding
//! the finished response body. It never touches Redis or PostgreSQL.
//!
//! Staleness is bounded by epochs. Every prompt write moves its project's epoch forward in
//! PostgreSQL, in the write's own transaction (`storage::prompts`), and answers are kept under
//! the epoch that was current before they were read. A process drops a project's answers when it
//! learns a newer epoch, which happens:
//! - at once in the process that took the write ([`PromptCache::written`], before it answers);
//! - within milliseconds in the others, through a Redis pub/sub message;
//! - within `prompts.invalidation_poll_ms` even if that message is lost, because every process
//!   also reads the epochs of the projects it holds answers for from PostgreSQL.
//!
//! Resolved prompts include other prompts of the project, so the epoch is per project, not per
//! prompt: any write in a project drops all of that project's answers.
//!
//! Everything else prompts do (misses, writes, lists, the subscription and the poll) runs on a
//! runtime of its own, one thread, with its own PostgreSQL pool and Redis connection. The HTTP
//! workers it would otherwise share parse ingestion batches, and the shared Redis connection
//! pipelines ingestion's enqueues; a prompt miss must wait for neither. The HTTP worker that took
//! the request waits for the result once, instead of being needed again at every step.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use fred::prelude::*;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{DatabaseSettings, Settings};
use crate::domain::project::ProjectId;
use crate::domain::prompt::Selector;
use crate::storage::prompts::PromptError;
use crate::storage::redis::RedisStore;
use crate::storage::Stores;

/// A Redis that does not answer within this long is skipped: PostgreSQL answers instead.
const REDIS_TIMEOUT: Duration = Duration::from_millis(200);

/// A cached answer to one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// The response body of the prompt, serialized once.
    Found(Bytes),
    /// No such prompt: cached too, since an application falling back to its built-in prompt
    /// asks again on every call.
    Missing,
}

impl Cached {
    fn encode(&self) -> Vec<u8> {
        match self {
            Cached::Found(body) => [b"F".as_slice(), body].concat(),
            Cached::Missing => b"M".to_vec(),
        }
    }

    fn decode(bytes: &[u8]) -> Option<Cached> {
        match bytes.split_first() {
            Some((b'F', body)) => Some(Cached::Found(Bytes::copy_from_slice(body))),
            Some((b'M', [])) => Some(Cached::Missing),
            _ => None,
        }
    }
}

/// Where an answer came from; reported in the `Server-Timing` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Memory,
    Redis,
    Database,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Memory => "memory",
            Source::Redis => "redis",
            Source::Database => "database",
        }
    }
}

#[derive(Default)]
struct Memory {
    projects: HashMap<String, ProjectAnswers>,
    /// Answers held, over all projects.
    len: usize,
}

struct ProjectAnswers {
    epoch: i64,
    /// By prompt name, then selector: a hit looks up by `&str` without allocating.
    answers: HashMap<String, HashMap<Selector, Cached>>,
    len: usize,
}

impl ProjectAnswers {
    fn new(epoch: i64) -> Self {
        ProjectAnswers {
            epoch,
            answers: HashMap::new(),
            len: 0,
        }
    }
}

impl Memory {
    /// Moves a project's epoch forward (never back), dropping its answers if it moved.
    fn advance(&mut self, project_id: &str, epoch: i64, insert: bool) {
        match self.projects.get_mut(project_id) {
            Some(p) if p.epoch < epoch => {
                self.len -= p.len;
                *p = ProjectAnswers::new(epoch);
            }
            Some(_) => {}
            None if insert => {
                self.projects
                    .insert(project_id.to_string(), ProjectAnswers::new(epoch));
            }
            None => {}
        }
    }
}

/// The runtime prompt work runs on; stopped without waiting when the cache is dropped (which may
/// happen inside another runtime, where waiting is not allowed).
struct PromptRuntime(Option<tokio::runtime::Runtime>);

impl PromptRuntime {
    fn handle(&self) -> &tokio::runtime::Handle {
        self.0
            .as_ref()
            .expect("runtime present until drop")
            .handle()
    }
}

impl Drop for PromptRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

pub struct PromptCache {
    enabled: bool,
    memory: RwLock<Memory>,
    runtime: PromptRuntime,
    /// A client of its own (not the process's shared one), connected on the prompt runtime.
    redis: RedisStore,
    pool: deadpool_postgres::Pool,
    redis_ttl: Duration,
    max_entries: usize,
    poll_interval: Duration,
    /// The pub/sub channel of invalidations (built by `Keyspace`, so the prefix applies).
    channel: String,
    /// Wakes the poller early, when the subscription was (re)established and may have missed
    /// messages.
    poll_now: Notify,
    /// One lock per answer being loaded (by its Redis key, which names the epoch): concurrent
    /// misses of one prompt wait for the first one's load instead of each querying PostgreSQL.
    loading: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl PromptCache {
    /// Builds the cache, its runtime, pool and Redis client; [`PromptCache::start`] connects.
    pub fn new(stores: &Stores, all: &Settings) -> anyhow::Result<Arc<PromptCache>> {
        let settings = &all.prompts;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("prompts")
            .enable_all()
            .build()
            .context("starting the prompt runtime")?;
        let pool = crate::storage::postgres::connect(&DatabaseSettings {
            max_connections: settings.max_connections,
            ..all.database.clone()
        })?;
        Ok(Arc::new(PromptCache {
            enabled: settings.cache_enabled,
            memory: RwLock::new(Memory::default()),
            runtime: PromptRuntime(Some(runtime)),
            redis: RedisStore {
                client: stores.redis.client.clone_new(),
                keyspace: stores.redis.keyspace.clone(),
            },
            pool,
            redis_ttl: Duration::from_secs(settings.redis_ttl_secs.max(1)),
            max_entries: settings.memory_max_entries.max(1),
            poll_interval: Duration::from_millis(settings.invalidation_poll_ms),
            channel: stores
                .redis
                .keyspace
                .key("prompt-invalidations", "all", None),
            poll_now: Notify::new(),
            loading: std::sync::Mutex::new(HashMap::new()),
        }))
    }

    /// The PostgreSQL pool of prompt work; use it from [`PromptCache::run`] only.
    pub fn pool(&self) -> &deadpool_postgres::Pool {
        &self.pool
    }

    /// Runs `task` on the prompt runtime and waits for its result.
    pub async fn run<T: Send + 'static>(
        &self,
        task: impl Future<Output = T> + Send + 'static,
    ) -> anyhow::Result<T> {
        self.runtime
            .handle()
            .spawn(task)
            .await
            .context("a prompt task failed")
    }

    /// The answer held in memory for the current epoch, if any. Never waits.
    pub fn get(&self, project: &ProjectId, name: &str, selector: &Selector) -> Option<Cached> {
        self.in_memory(project.as_str(), name, selector)
    }

    fn in_memory(&self, project_id: &str, name: &str, selector: &Selector) -> Option<Cached> {
        if !self.enabled {
            return None;
        }
        let memory = self.memory.read().expect("prompt cache lock poisoned");
        memory
            .projects
            .get(project_id)?
            .answers
            .get(name)?
            .get(selector)
            .cloned()
    }

    /// The answer from memory, Redis or `load` (PostgreSQL), in that order, keeping it in the
    /// caches in front of where it was found. Everything after the memory lookup runs on the prompt
    /// runtime; the duration is the time it took there (zero for a hit).
    pub async fn get_or_load(
        self: &Arc<Self>,
        project: &ProjectId,
        name: &str,
        selector: &Selector,
        load: impl Future<Output = Result<Cached, PromptError>> + Send + 'static,
    ) -> Result<(Cached, Source, Duration), PromptError> {
        if let Some(hit) = self.get(project, name, selector) {
            return Ok((hit, Source::Memory, Duration::ZERO));
        }
        let (this, project_id, name, selector) = (
            self.clone(),
            project.to_string(),
            name.to_string(),
            selector.clone(),
        );
        self.run(async move {
            let started = std::time::Instant::now();
            let (cached, source) = this.miss(&project_id, &name, &selector, load).await?;
            Ok((cached, source, started.elapsed()))
        })
        .await?
    }

    async fn miss(
        &self,
        project_id: &str,
        name: &str,
        selector: &Selector,
        load: impl Future<Output = Result<Cached, PromptError>>,
    ) -> Result<(Cached, Source), PromptError> {
        if !self.enabled {
            return Ok((load.await?, Source::Database));
        }
        // The epoch is taken before reading, so an answer read across a write is filed under the
        // old epoch and never served after the write is known.
        let epoch = match self.known_epoch(project_id) {
            Some(epoch) => epoch,
            None => match self.fetch_epoch(project_id).await {
                Some(epoch) => epoch,
                // PostgreSQL did not say: answer without caching.
                None => return Ok((load.await?, Source::Database)),
            },
        };
        let key = self.redis_key(project_id, epoch, name, selector);
        let gate = self
            .loading
            .lock()
            .expect("prompt load map poisoned")
            .entry(key.clone())
            .or_default()
            .clone();
        let loaded = {
            let _turn = gate.lock().await;
            // Another request's load of the same answer may have finished while this one waited.
            match self.in_memory(project_id, name, selector) {
                Some(hit) => Ok((hit, Source::Memory)),
                None => {
                    self.load_answer(project_id, epoch, name, selector, &key, load)
                        .await
                }
            }
        };
        let mut loading = self.loading.lock().expect("prompt load map poisoned");
        // Only the map and this request still hold the lock: nobody else is waiting on it.
        if Arc::strong_count(&gate) <= 2 {
            loading.remove(&key);
        }
        loaded
    }

    /// Redis, then `load`, for an answer of `epoch` that memory does not have.
    async fn load_answer(
        &self,
        project_id: &str,
        epoch: i64,
        name: &str,
        selector: &Selector,
        key: &str,
        load: impl Future<Output = Result<Cached, PromptError>>,
    ) -> Result<(Cached, Source), PromptError> {
        if let Some(hit) = self.redis_get(key).await {
            self.remember(project_id, epoch, name, selector, hit.clone());
            return Ok((hit, Source::Redis));
        }
        let loaded = load.await?;
        self.remember(project_id, epoch, name, selector, loaded.clone());
        let (redis, ttl, value, key) = (
            self.redis.clone(),
            self.redis_ttl,
            loaded.encode(),
            key.to_string(),
        );
        tokio::spawn(async move {
            let set = redis.client.set::<(), _, _>(
                &key,
                value,
                Some(Expiration::PX(ttl.as_millis() as i64)),
                None,
                false,
            );
            if let Ok(Err(err)) = tokio::time::timeout(REDIS_TIMEOUT, set).await {
                tracing::debug!(error = %err, "cannot store a prompt in Redis");
            }
        });
        Ok((loaded, Source::Database))
    }

    /// Called by the process that committed a prompt write at `epoch`: its own answers are
    /// dropped before the write is answered, and the other processes are told.
    pub fn written(&self, project: &ProjectId, epoch: i64) {
        let project_id = project.as_str();
        self.memory
            .write()
            .expect("prompt cache lock poisoned")
            .advance(project_id, epoch, true);
        let (redis, channel, message) = (
            self.redis.clone(),
            self.channel.clone(),
            format!("{epoch} {project_id}"),
        );
        self.runtime.handle().spawn(async move {
            let publish = redis.client.publish::<i64, _, _>(channel, message);
            match tokio::time::timeout(Duration::from_secs(2), publish).await {
                Ok(Ok(_)) => {}
                // The other processes' polling of PostgreSQL catches up.
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "cannot publish a prompt invalidation")
                }
                Err(_) => tracing::warn!("publishing a prompt invalidation timed out"),
            }
        });
    }

    fn known_epoch(&self, project_id: &str) -> Option<i64> {
        self.memory
            .read()
            .expect("prompt cache lock poisoned")
            .projects
            .get(project_id)
            .map(|p| p.epoch)
    }

    async fn fetch_epoch(&self, project_id: &str) -> Option<i64> {
        match crate::storage::prompts::epochs(&self.pool, &[project_id.to_string()]).await {
            Ok(found) => {
                let epoch = found.first().map(|(_, e)| *e).unwrap_or(0);
                // Known from now on, so that an invalidation arriving during the read applies.
                let mut memory = self.memory.write().expect("prompt cache lock poisoned");
                memory.advance(project_id, epoch, true);
                memory.projects.get(project_id).map(|p| p.epoch)
            }
            Err(err) => {
                tracing::warn!(
                    error = format!("{err:#}"),
                    "cannot read the prompt cache epoch"
                );
                None
            }
        }
    }

    fn remember(
        &self,
        project_id: &str,
        epoch: i64,
        name: &str,
        selector: &Selector,
        answer: Cached,
    ) {
        let mut memory = self.memory.write().expect("prompt cache lock poisoned");
        if memory.len >= self.max_entries {
            // Start over rather than track recency: full means the bound is too small for the
            // working set, and the next reads refill it from Redis.
            memory.len = 0;
            for project in memory.projects.values_mut() {
                project.answers.clear();
                project.len = 0;
            }
        }
        memory.advance(project_id, epoch, true);
        let Some(project) = memory.projects.get_mut(project_id) else {
            return;
        };
        if project.epoch != epoch {
            // A write happened while this was read: it may be the old state.
            return;
        }
        let previous = project
            .answers
            .entry(name.to_string())
            .or_default()
            .insert(selector.clone(), answer);
        if previous.is_none() {
            project.len += 1;
            memory.len += 1;
        }
    }

    fn redis_key(&self, project_id: &str, epoch: i64, name: &str, selector: &Selector) -> String {
        let selector = match selector {
            Selector::Version(v) => format!("v{v}"),
            Selector::Label(l) => format!("l{l}"),
        };
        // The name goes last: it may contain ':'.
        self.redis.keyspace.key(
            "prompt-cache",
            project_id,
            Some(&format!("{epoch}:{selector}:{name}")),
        )
    }

    async fn redis_get(&self, key: &str) -> Option<Cached> {
        let get = self.redis.client.get::<Option<Vec<u8>>, _>(key);
        match tokio::time::timeout(REDIS_TIMEOUT, get).await {
            Ok(Ok(Some(bytes))) => Cached::decode(&bytes),
            Ok(Ok(None)) => None,
            Ok(Err(err)) => {
                tracing::debug!(error = %err, "prompt cache: Redis read failed");
                None
            }
            Err(_) => {
                tracing::debug!("prompt cache: Redis read timed out");
                None
            }
        }
    }

    /// Starts the two ways this process learns of other processes' writes: the pub/sub
    /// subscription and the PostgreSQL poll. Both stop with `shutdown`.
    /// Connects the cache's Redis client and, with the cache on, starts the two ways this process
    /// learns of other processes' writes: the pub/sub subscription and the PostgreSQL poll. All
    /// stop with `shutdown`.
    pub fn start(self: &Arc<Self>, shutdown: CancellationToken) {
        let handle = self.runtime.handle();
        handle.spawn(self.clone().connect(shutdown.clone()));
        if self.enabled {
            handle.spawn(self.clone().subscribe(shutdown.clone()));
            handle.spawn(self.clone().poll(shutdown));
        }
    }

    async fn connect(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            match self.redis.client.init().await {
                Ok(_connection) => break,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot connect the prompt cache to Redis; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
        shutdown.cancelled().await;
        self.redis.quit().await;
    }

    async fn subscribe(self: Arc<Self>, shutdown: CancellationToken) {
        let on_message = |text: &str| {
            let parsed = text.split_once(' ').and_then(|(epoch, project)| {
                Some((epoch.parse::<i64>().ok()?, project.to_string()))
            });
            if let Some((epoch, project_id)) = parsed {
                self.memory
                    .write()
                    .expect("prompt cache lock poisoned")
                    .advance(&project_id, epoch, false);
            }
        };
        // Messages lost: look at PostgreSQL now.
        let on_missed = || self.poll_now.notify_one();
        self.redis
            .listen(
                &self.channel,
                "prompt invalidation",
                shutdown,
                on_message,
                on_missed,
            )
            .await;
    }

    async fn poll(self: Arc<Self>, shutdown: CancellationToken) {
        let mut failing = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.poll_interval) => {}
                _ = self.poll_now.notified() => {}
            }
            let projects: Vec<String> = self
                .memory
                .read()
                .expect("prompt cache lock poisoned")
                .projects
                .keys()
                .cloned()
                .collect();
            if projects.is_empty() {
                continue;
            }
            match crate::storage::prompts::epochs(&self.pool, &projects).await {
                Ok(epochs) => {
                    failing = false;
                    let mut memory = self.memory.write().expect("prompt cache lock poisoned");
                    for (project_id, epoch) in epochs {
                        memory.advance(&project_id, epoch, false);
                    }
                }
                // Cached prompts stay served while PostgreSQL is away: no write can happen then.
                Err(err) if !failing => {
                    failing = true;
                    tracing::warn!(
                        error = format!("{err:#}"),
                        "cannot poll prompt cache epochs"
                    );
                }
                Err(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip_through_redis_encoding() {
        for answer in [
            Cached::Found(Bytes::from_static(b"{\"a\":1}")),
            Cached::Missing,
        ] {
            assert_eq!(Cached::decode(&answer.encode()), Some(answer));
        }
        assert_eq!(Cached::decode(b""), None);
        assert_eq!(Cached::decode(b"Mx"), None);
    }

    #[test]
    fn epochs_only_move_forward_and_drop_answers() {
        let mut memory = Memory::default();
        memory.advance("p", 5, false);
        assert!(
            memory.projects.is_empty(),
            "unknown projects are not tracked"
        );
        memory.advance("p", 5, true);
        let project = memory.projects.get_mut("p").unwrap();
        project
            .answers
            .entry("n".into())
            .or_default()
            .insert(Selector::Version(1), Cached::Missing);
        project.len = 1;
        memory.len = 1;
        memory.advance("p", 4, false);
        assert_eq!(memory.len, 1, "an older epoch changes nothing");
        memory.advance("p", 6, false);
        assert_eq!(memory.len, 0);
        assert_eq!(memory.projects["p"].epoch, 6);
        assert!(memory.projects["p"].answers.is_empty());
    }
}
