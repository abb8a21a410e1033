//! The web role: Langfuse's public API (`api`) and the web UI (`ui`), on actix-web.
//!
//! The public API is one scope, `/api/public`, with what every part of it shares: CORS for any
//! origin (as Langfuse allows browser SDKs), Basic auth with a project's API keys
//! ([`auth::ProjectAuth`]), and errors as JSON ([`error::ApiError`]). The web UI is the scope of
//! every other path, with server-side sessions ([`auth::SignedIn`], [`auth::ProjectMember`]),
//! CSRF checks, its security headers and HTML errors; the two share none of that.
//!
//! Handlers parse requests and shape answers; what they read and write is below them, in
//! `crate::write_path` (ingestion and deletions) and `crate::storage` (queries).

pub mod api;
pub mod auth;
pub mod error;
pub mod key_revocation;
pub mod ui;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::Settings;
use crate::prompt_cache::PromptCache;
use crate::storage::score_configs::ConfigCache;
use crate::storage::Stores;
use crate::write_path::Admission;

/// Runs the API on `listener` until `shutdown` is cancelled, then stops accepting and gives
/// in-flight requests `server.shutdown_timeout_secs` to finish.
pub async fn run(
    listener: TcpListener,
    stores: Stores,
    settings: &Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let admission = Admission::new(&settings.ingestion);
    admission.watch_backlog(
        stores.clone(),
        settings.ingestion.queue_shards,
        shutdown.clone(),
    );
    let prompt_cache = PromptCache::new(&stores, settings)?;
    prompt_cache.start(shutdown.clone());
    let verifier = Arc::new(auth::ApiKeyVerifier::new(
        stores.postgres.clone(),
        settings.auth.salt.clone(),
        Duration::from_secs(settings.auth.key_cache_ttl_secs),
    ));
    let score_configs = Arc::new(ConfigCache::new(stores.postgres.clone()));
    tokio::spawn(crate::storage::score_configs::subscribe(
        score_configs.clone(),
        crate::storage::redis::RedisStore {
            client: stores.redis.client.clone(),
            keyspace: stores.redis.keyspace.clone(),
        },
        shutdown.clone(),
    ));
    tokio::spawn(key_revocation::subscribe(
        verifier.clone(),
        crate::storage::redis::RedisStore {
            client: stores.redis.client.clone(),
            keyspace: stores.redis.keyspace.clone(),
        },
        shutdown.clone(),
    ));
    let server = build_server(
        listener,
        stores,
        admission,
        prompt_cache,
        verifier,
        score_configs,
        settings,
    )?;
    let handle = server.handle();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        tracing::info!("shutting down the HTTP API: draining in-flight requests");
        handle.stop(true).await;
    });
    server.await?;
    Ok(())
}

/// Builds the server synchronously: actix's builder is not `Send`, and must not live across an
/// `.await` of a future that a multi-threaded runtime may move.
fn build_server(
    listener: TcpListener,
    stores: Stores,
    admission: Arc<Admission>,
    prompt_cache: Arc<PromptCache>,
    verifier: Arc<auth::ApiKeyVerifier>,
    score_configs: Arc<ConfigCache>,
    settings: &Settings,
) -> std::io::Result<actix_web::dev::Server> {
    let score_configs = web::Data::from(score_configs);
    let verifier = web::Data::from(verifier);
    let stores = web::Data::new(stores);
    let admission = web::Data::from(admission);
    let ingestion_settings = web::Data::new(settings.ingestion.clone());
    let prompt_cache = web::Data::from(prompt_cache);
    let ui_config = web::Data::new(ui::UiConfig::new(&settings.auth));
    let media_config = web::Data::new(api::media::MediaConfig::new(settings));
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(stores.clone())
            .app_data(verifier.clone())
            .app_data(admission.clone())
            .app_data(ingestion_settings.clone())
            .app_data(prompt_cache.clone())
            .app_data(ui_config.clone())
            .app_data(score_configs.clone())
            .app_data(media_config.clone())
            .wrap(actix_web::middleware::from_fn(trace_request))
            .configure(api::mount)
            .configure(ui::mount)
    })
    .disable_signals()
    .shutdown_timeout(settings.server.shutdown_timeout_secs);
    if settings.server.http_workers > 0 {
        server = server.workers(settings.server.http_workers);
    }
    Ok(server.listen(listener)?.run())
}

/// A span per request with the fields worth searching logs by, and one line when it ends.
async fn trace_request(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.path(),
        request_id = %uuid::Uuid::new_v4(),
    );
    async move {
        let started = std::time::Instant::now();
        let response = next.call(req).await?;
        tracing::debug!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request finished"
        );
        Ok(response)
    }
    .instrument(span)
    .await
}
