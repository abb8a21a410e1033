//! Composition of the roles: the one place (with `main.rs`) that names them all.
//!
//! Each entry point takes its listener and a shutdown token as arguments, so tests bind port 0
//! and stop the application deterministically.

use std::net::TcpListener;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::migrate::{self, FileState, MigrationSet};
use crate::storage::Stores;

/// Connects to every store, refuses a schema older than this binary, and provisions the
/// bootstrap records.
pub async fn prepare(settings: &Settings) -> anyhow::Result<Stores> {
    settings.require_salt()?;
    let stores = Stores::connect(settings).await?;
    let outstanding = migrate::outstanding(
        &stores.postgres,
        &settings.clickhouse,
        &MigrationSet::embedded(),
    )
    .await
    .context("checking the schema version")?;
    if !outstanding.is_empty() {
        let files: Vec<String> = outstanding
            .iter()
            .map(|f| match f.state {
                FileState::Changed => format!("{} {} (changed)", f.store, f.name),
                _ => format!("{} {}", f.store, f.name),
            })
            .collect();
        anyhow::bail!(
            "the database schema is older than this binary ({} pending: {}); run `langfuse-rs migrate` first",
            files.len(),
            files.join(", ")
        );
    }
    crate::bootstrap::run(&stores.postgres, settings)
        .await
        .context("bootstrap (LANGFUSE_INIT_*)")?;
    Ok(stores)
}

/// The web role, optionally with the worker in the same process (`serve --with-worker`).
pub async fn serve(
    settings: &Settings,
    stores: Stores,
    listener: TcpListener,
    with_worker: bool,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    tracing::info!(
        address = %listener.local_addr()?,
        with_worker,
        "serving the HTTP API"
    );
    let api = crate::http::run(listener, stores.clone(), settings, shutdown.clone());
    if with_worker {
        let worker = crate::worker::run(stores.clone(), settings, shutdown.clone());
        let (api, worker) = tokio::join!(api, worker);
        api?;
        worker?;
    } else {
        api.await?;
    }
    stores.close().await;
    Ok(())
}

/// The worker role, with its probes on their own port for the orchestrator's health check.
pub async fn work(
    settings: &Settings,
    stores: Stores,
    probe_listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    tracing::info!(address = %probe_listener.local_addr()?, "worker started; probes listening");
    let probes = crate::health::serve_probes(probe_listener, stores.clone(), shutdown.clone());
    let worker = crate::worker::run(stores.clone(), settings, shutdown.clone());
    let (probes, worker) = tokio::join!(probes, worker);
    probes?;
    worker?;
    stores.close().await;
    Ok(())
}

/// `migrate`: applies what is pending, or with `status_only` lists every file's state.
pub async fn migrate(settings: &Settings, status_only: bool) -> anyhow::Result<String> {
    let pool = crate::storage::postgres::connect(&settings.database)?;
    let set = MigrationSet::embedded();
    let mut out = String::new();
    if status_only {
        for f in migrate::status(&pool, &settings.clickhouse, &set).await? {
            let state = match f.state {
                FileState::Applied => "applied",
                FileState::Pending => "pending",
                FileState::Changed => "CHANGED since applied",
                FileState::Unknown => "applied, unknown to this binary",
            };
            out.push_str(&format!(
                "{:<10} {:<48} {state}\n",
                f.store.to_string(),
                f.name
            ));
        }
    } else {
        let report = migrate::run(&pool, &settings.clickhouse, &set).await?;
        if report.applied.is_empty() {
            out.push_str("schema is up to date; nothing to apply\n");
        }
        for (store, name) in report.applied {
            out.push_str(&format!("applied {store} {name}\n"));
        }
        if let Some(n) = report.shipped_models {
            out.push_str(&format!("loaded {n} shipped models\n"));
        }
    }
    pool.close();
    Ok(out)
}

/// `queue dead-letters`: one JSON object per line.
pub async fn queue_dead_letters(settings: &Settings) -> anyhow::Result<String> {
    let redis = crate::storage::redis::connect(&settings.redis).await?;
    let letters =
        crate::storage::queue::dead_letters(&redis, settings.ingestion.queue_shards).await?;
    let mut out = String::new();
    for letter in letters {
        out.push_str(&serde_json::to_string(&letter)?);
        out.push('\n');
    }
    redis.quit().await;
    Ok(out)
}

/// `queue retry`: every dead letter back on the queue.
pub async fn queue_retry(settings: &Settings) -> anyhow::Result<String> {
    let redis = crate::storage::redis::connect(&settings.redis).await?;
    let retried =
        crate::storage::queue::retry_dead_letters(&redis, settings.ingestion.queue_shards).await?;
    redis.quit().await;
    Ok(format!("re-queued {retried} dead letter(s)\n"))
}

/// `queue backlog`: entries waiting in the queue.
pub async fn queue_backlog(settings: &Settings) -> anyhow::Result<String> {
    let redis = crate::storage::redis::connect(&settings.redis).await?;
    let backlog = crate::storage::queue::backlog(&redis, settings.ingestion.queue_shards).await?;
    redis.quit().await;
    Ok(format!("{backlog}\n"))
}

/// A token cancelled by SIGTERM (what App Runner and Fargate send) or SIGINT.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received: shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received: shutting down"),
        }
        cancel.cancel();
    });
    token
}
