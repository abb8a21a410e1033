//! Score configs in PostgreSQL (`score_configs`; see `sql/postgres/0005_score_configs.sql`): the
//! reads and writes of `/api/public/score-configs` and the settings page. Every query is scoped
//! to one project.
//!
//! [`ConfigCache`] is what the write path checks scores against: each `serve` process keeps a
//! project's configs, read with one query, until a write changes them. The process that writes
//! forgets the project before it answers and publishes it on a Redis channel ([`published`]);
//! every process's subscriber ([`subscribe`]) forgets it on the message, and forgets every
//! project when messages may have been lost. A snapshot is also dropped after
//! [`ConfigCache::TTL`], the bound when Redis is away.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use fred::prelude::*;
use tokio_postgres::Row;
use tokio_util::sync::CancellationToken;

use crate::domain::project::ProjectId;
use crate::domain::score_config::{Category, ConfigDataType, ConfigFields};
use crate::storage::redis::{Keyspace, RedisStore};

/// A stored config.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreConfig {
    pub id: String,
    pub project_id: String,
    pub fields: ConfigFields,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, project_id, name, data_type, is_archived, min_value, max_value, \
                       categories, description, created_at, updated_at";

fn from_row(row: &Row) -> anyhow::Result<ScoreConfig> {
    let data_type: String = row.get("data_type");
    let categories: Option<serde_json::Value> = row.get("categories");
    Ok(ScoreConfig {
        id: row.get("id"),
        project_id: row.get("project_id"),
        fields: ConfigFields {
            name: row.get("name"),
            data_type: ConfigDataType::parse(&data_type)
                .with_context(|| format!("score config with data type {data_type:?}"))?,
            is_archived: row.get("is_archived"),
            min_value: row.get("min_value"),
            max_value: row.get("max_value"),
            categories: categories
                .map(serde_json::from_value::<Vec<Category>>)
                .transpose()
                .context("score config categories")?,
            description: row.get("description"),
        },
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

fn categories_json(fields: &ConfigFields) -> anyhow::Result<Option<serde_json::Value>> {
    Ok(fields
        .categories
        .as_ref()
        .map(serde_json::to_value)
        .transpose()?)
}

/// A page of a project's configs, newest first; the page and the total.
pub async fn list(
    pool: &Pool,
    project: &ProjectId,
    offset: u64,
    limit: u64,
) -> anyhow::Result<(Vec<ScoreConfig>, u64)> {
    let client = pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM score_configs WHERE project_id = $1
                 ORDER BY created_at DESC, id OFFSET $2 LIMIT $3"
            ),
            &[&project.as_str(), &(offset as i64), &(limit as i64)],
        )
        .await
        .context("postgres: listing score configs")?;
    let total: i64 = client
        .query_one(
            "SELECT count(*) FROM score_configs WHERE project_id = $1",
            &[&project.as_str()],
        )
        .await
        .context("postgres: counting score configs")?
        .get(0);
    let configs = rows.iter().map(from_row).collect::<anyhow::Result<_>>()?;
    Ok((configs, total as u64))
}

/// Every config of a project, newest first.
pub async fn all(pool: &Pool, project: &ProjectId) -> anyhow::Result<Vec<ScoreConfig>> {
    let client = pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM score_configs WHERE project_id = $1
                 ORDER BY created_at DESC, id"
            ),
            &[&project.as_str()],
        )
        .await
        .context("postgres: reading a project's score configs")?;
    rows.iter().map(from_row).collect()
}

pub async fn get(
    pool: &Pool,
    project: &ProjectId,
    id: &str,
) -> anyhow::Result<Option<ScoreConfig>> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM score_configs WHERE id = $1 AND project_id = $2"),
            &[&id, &project.as_str()],
        )
        .await
        .context("postgres: reading a score config")?;
    row.as_ref().map(from_row).transpose()
}

pub async fn create(
    pool: &Pool,
    project: &ProjectId,
    fields: &ConfigFields,
) -> anyhow::Result<ScoreConfig> {
    let client = pool.get().await?;
    let id = uuid::Uuid::new_v4().to_string();
    let row = client
        .query_one(
            &format!(
                "INSERT INTO score_configs (id, project_id, name, data_type, is_archived,
                                            min_value, max_value, categories, description)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 RETURNING {COLUMNS}"
            ),
            &[
                &id,
                &project.as_str(),
                &fields.name,
                &fields.data_type.as_str(),
                &fields.is_archived,
                &fields.min_value,
                &fields.max_value,
                &categories_json(fields)?,
                &fields.description,
            ],
        )
        .await
        .context("postgres: writing a score config")?;
    from_row(&row)
}

/// Changes a config with `change` (which sees the stored fields and returns the new ones, or a
/// refusal), under a row lock so two updates do not undo each other. `None`: no such config.
pub async fn update<E>(
    pool: &Pool,
    project: &ProjectId,
    id: &str,
    change: impl FnOnce(&ConfigFields) -> Result<ConfigFields, E>,
) -> anyhow::Result<Option<Result<ScoreConfig, E>>> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM score_configs WHERE id = $1 AND project_id = $2 FOR UPDATE"
            ),
            &[&id, &project.as_str()],
        )
        .await
        .context("postgres: reading a score config")?;
    let Some(row) = row else { return Ok(None) };
    let current = from_row(&row)?;
    let fields = match change(&current.fields) {
        Ok(fields) => fields,
        Err(refusal) => return Ok(Some(Err(refusal))),
    };
    let row = tx
        .query_one(
            &format!(
                "UPDATE score_configs SET name = $3, is_archived = $4, min_value = $5,
                        max_value = $6, categories = $7, description = $8, updated_at = now()
                 WHERE id = $1 AND project_id = $2
                 RETURNING {COLUMNS}"
            ),
            &[
                &id,
                &project.as_str(),
                &fields.name,
                &fields.is_archived,
                &fields.min_value,
                &fields.max_value,
                &categories_json(&fields)?,
                &fields.description,
            ],
        )
        .await
        .context("postgres: updating a score config")?;
    tx.commit().await?;
    Ok(Some(Ok(from_row(&row)?)))
}

/// A project's configs as one process read them.
#[derive(Debug)]
pub struct ProjectConfigs {
    /// Newest first, as the settings page and the score form list them.
    pub configs: Vec<ScoreConfig>,
    by_id: HashMap<String, usize>,
    /// When they were read.
    pub read_at: Instant,
}

impl Default for ProjectConfigs {
    fn default() -> ProjectConfigs {
        ProjectConfigs::new(Vec::new())
    }
}

impl ProjectConfigs {
    /// A config these lack is taken as missing, not as created since, when they were read less
    /// than this long ago: so a client naming unknown configs makes PostgreSQL read at most
    /// once a second per project and process. (A config created elsewhere reaches this process
    /// through the Redis message well within it.)
    pub const TRUSTED_FOR: Duration = Duration::from_secs(1);

    pub fn new(configs: Vec<ScoreConfig>) -> ProjectConfigs {
        let by_id = configs
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
        ProjectConfigs {
            configs,
            by_id,
            read_at: Instant::now(),
        }
    }

    /// Whether a config these lack may exist all the same (they are older than
    /// [`Self::TRUSTED_FOR`]).
    pub fn may_lack_new_configs(&self) -> bool {
        self.read_at.elapsed() >= Self::TRUSTED_FOR
    }

    pub fn get(&self, id: &str) -> Option<&ScoreConfig> {
        self.by_id.get(id).map(|&i| &self.configs[i])
    }
}

/// The score configs of the projects this process has checked scores of (see the module's
/// documentation for how it learns of changes).
pub struct ConfigCache {
    pool: Pool,
    projects: RwLock<HashMap<String, Arc<ProjectConfigs>>>,
    /// Moves on every forgetting: a read that began before one is not kept, so a snapshot read
    /// just before a change cannot outlive it.
    generation: AtomicU64,
}

impl ConfigCache {
    /// How long a snapshot is used without news of a change.
    pub const TTL: Duration = Duration::from_secs(60);

    pub fn new(pool: Pool) -> ConfigCache {
        ConfigCache {
            pool,
            projects: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// The project's configs if this process holds a snapshot younger than [`Self::TTL`]; awaits
    /// nothing.
    pub fn cached(&self, project: &ProjectId) -> Option<Arc<ProjectConfigs>> {
        let projects = self.projects.read().unwrap_or_else(|e| e.into_inner());
        projects
            .get(project.as_str())
            .filter(|configs| configs.read_at.elapsed() < Self::TTL)
            .cloned()
    }

    /// The project's configs read from PostgreSQL now, and kept unless a change was announced
    /// meanwhile.
    pub async fn load(&self, project: &ProjectId) -> anyhow::Result<Arc<ProjectConfigs>> {
        let generation = self.generation.load(Ordering::SeqCst);
        let configs = Arc::new(ProjectConfigs::new(all(&self.pool, project).await?));
        let mut projects = self.projects.write().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::SeqCst) == generation {
            projects.insert(project.as_str().to_string(), configs.clone());
        }
        Ok(configs)
    }

    /// The cached snapshot, or a fresh one.
    pub async fn get(&self, project: &ProjectId) -> anyhow::Result<Arc<ProjectConfigs>> {
        match self.cached(project) {
            Some(configs) => Ok(configs),
            None => self.load(project).await,
        }
    }

    pub fn forget(&self, project_id: &str) {
        let mut projects = self.projects.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        projects.remove(project_id);
    }

    pub fn forget_all(&self) {
        let mut projects = self.projects.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        projects.clear();
    }

    /// After a write of the project's configs: forgets them here, then tells the other processes.
    pub async fn changed(&self, redis: &RedisStore, project: &ProjectId) {
        self.forget(project.as_str());
        published(redis, project).await;
    }
}

/// The channel changed projects are published on.
pub fn channel(keyspace: &Keyspace) -> String {
    keyspace.key("score-config-changes", "all", None)
}

/// Tells the other processes that the project's configs changed. Waits at most two seconds; a
/// failure is logged (the others then see the change within [`ConfigCache::TTL`]).
pub async fn published(redis: &RedisStore, project: &ProjectId) {
    let publish = redis
        .client
        .publish::<i64, _, _>(channel(&redis.keyspace), project.as_str().to_string());
    match tokio::time::timeout(Duration::from_secs(2), publish).await {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "cannot publish a score config change"),
        Err(_) => tracing::warn!("publishing a score config change timed out"),
    }
}

/// Listens for changes until `shutdown`, forgetting each changed project in `cache`; when
/// messages may have been lost, every project.
pub async fn subscribe(cache: Arc<ConfigCache>, redis: RedisStore, shutdown: CancellationToken) {
    redis
        .listen(
            &channel(&redis.keyspace),
            "score config changes",
            shutdown,
            |project_id| cache.forget(project_id),
            || cache.forget_all(),
        )
        .await;
}
