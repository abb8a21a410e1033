//! The web role: Langfuse's public HTTP API on actix-web. One file per API area; every error
//! goes through [`error::ApiError`].

pub mod auth;
pub mod error;
pub mod ingestion;
pub mod observations_v2;
pub mod offload;
pub mod otel;
pub mod params;
pub mod projects;
pub mod prompts;
pub mod scores;
pub mod scores_v3;
pub mod traces;

use std::net::TcpListener;
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::Settings;
use crate::storage::Stores;

/// Runs the API on `listener` until `shutdown` is cancelled, then stops accepting and gives
/// in-flight requests `server.shutdown_timeout_secs` to finish.
pub async fn run(
    listener: TcpListener,
    stores: Stores,
    settings: &Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let backlog = std::sync::Arc::new(ingestion::Backlog::default());
    backlog.clone().watch(
        stores.clone(),
        settings.ingestion.queue_shards,
        Duration::from_millis(500),
        shutdown.clone(),
    );
    let prompt_cache = crate::prompt_cache::PromptCache::new(&stores, settings)?;
    prompt_cache.start(shutdown.clone());
    let server = build_server(listener, stores, backlog, prompt_cache, settings)?;
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
    backlog: std::sync::Arc<ingestion::Backlog>,
    prompt_cache: std::sync::Arc<crate::prompt_cache::PromptCache>,
    settings: &Settings,
) -> std::io::Result<actix_web::dev::Server> {
    let verifier = web::Data::new(auth::ApiKeyVerifier::new(
        stores.postgres.clone(),
        settings.auth.salt.clone(),
        Duration::from_secs(settings.auth.key_cache_ttl_secs),
    ));
    let stores = web::Data::new(stores);
    let backlog = web::Data::from(backlog);
    let ingestion_settings = web::Data::new(settings.ingestion.clone());
    let ingestion_gate = web::Data::new(ingestion::RequestGate::new(
        settings.ingestion.max_concurrent_requests,
    ));
    let prompt_cache = web::Data::from(prompt_cache);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(stores.clone())
            .app_data(verifier.clone())
            .app_data(backlog.clone())
            .app_data(ingestion_settings.clone())
            .app_data(ingestion_gate.clone())
            .app_data(prompt_cache.clone())
            .app_data(error::json_config())
            .app_data(error::query_config())
            .wrap(actix_web::middleware::from_fn(trace_request))
            .wrap(cors())
            .configure(crate::health::routes)
            .configure(projects::routes)
            .configure(ingestion::routes)
            .configure(otel::routes)
            .configure(scores::routes)
            .configure(traces::routes)
            .configure(traces::session_routes)
            .configure(traces::score_routes)
            .configure(observations_v2::routes)
            .configure(scores_v3::routes)
            .configure(prompts::routes)
            .default_service(web::to(error::not_found))
    })
    .disable_signals()
    .shutdown_timeout(settings.server.shutdown_timeout_secs);
    if settings.server.http_workers > 0 {
        server = server.workers(settings.server.http_workers);
    }
    Ok(server.listen(listener)?.run())
}

/// Cross-origin requests are allowed from any origin, as Langfuse allows them: browser SDKs send
/// events and scores with a public key, and the preflight must not need the keys. The request's
/// origin is echoed (not `*`) and credentials are not allowed.
fn cors() -> actix_cors::Cors {
    actix_cors::Cors::default()
        .allow_any_origin()
        .allow_any_method()
        .allow_any_header()
}

/// A path of the API: the methods it is given answer, any other method gets 405 (as Langfuse
/// answers), not the 404 of an unknown path.
pub(crate) fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(error::method_not_allowed))
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
