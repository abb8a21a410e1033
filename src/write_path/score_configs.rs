//! Scores checked against their configs before anything is stored: a batch is prepared with the
//! project's configs as this process holds them (`storage::score_configs::ConfigCache`, no query
//! on a hit); only when a score names a config those cannot answer for (none held yet, or one
//! they lack while they are over a second old: it may have been created since) are the configs
//! read from PostgreSQL and the batch prepared again.
//! Batches without such scores never wait for PostgreSQL.

use std::sync::Arc;

use super::prepare::{Configs, Prepared};
use super::{offload, WriteError};
use crate::domain::project::ProjectId;
use crate::storage::score_configs::ConfigCache;

/// Runs `prepare` on the blocking pool with the cached configs, and again with fresh ones if it
/// asks for them.
pub async fn prepare_checked<F>(
    cache: &ConfigCache,
    project: &ProjectId,
    prepare: F,
) -> Result<Prepared, WriteError>
where
    F: Fn(&Configs) -> Result<Prepared, WriteError> + Send + Sync + 'static,
{
    let prepare = Arc::new(prepare);
    let cached = Configs::Cached(cache.cached(project));
    let first = {
        let prepare = prepare.clone();
        offload::cpu(move || prepare(&cached)).await??
    };
    if !first.needs_configs {
        return Ok(first);
    }
    let fresh = cache.load(project).await.map_err(|err| {
        tracing::error!(error = format!("{err:#}"), "cannot read score configs");
        WriteError::Unavailable("Score configs cannot be read; retry the request".to_string())
    })?;
    let fresh = Configs::Fresh(fresh);
    offload::cpu(move || prepare(&fresh)).await?
}
