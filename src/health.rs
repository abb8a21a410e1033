//! Liveness and readiness, shared by both roles.
//!
//! `serve` mounts [`routes`] in its API; `work` has no API, so [`serve_probes`] runs the same two
//! endpoints on their own port for the Fargate health check.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::storage::Stores;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the process is not ready: the first store that did not answer, and its error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    pub store: &'static str,
    pub reason: String,
}

/// Asks every store to answer, concurrently, each within a timeout.
pub async fn check_readiness(stores: &Stores) -> Result<(), NotReady> {
    let (pg, redis, ch, blob) = tokio::join!(
        probe("postgres", crate::storage::postgres::ping(&stores.postgres)),
        probe("redis", stores.redis.ping()),
        probe(
            "clickhouse",
            crate::storage::clickhouse::ping(&stores.clickhouse)
        ),
        probe("blob_storage", stores.blob.ping()),
    );
    pg.and(redis).and(ch).and(blob)
}

async fn probe(
    store: &'static str,
    check: impl std::future::Future<Output = anyhow::Result<()>>,
) -> Result<(), NotReady> {
    match tokio::time::timeout(PROBE_TIMEOUT, check).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(NotReady {
            store,
            reason: format!("{err:#}"),
        }),
        Err(_) => Err(NotReady {
            store,
            reason: format!("no answer within {}s", PROBE_TIMEOUT.as_secs()),
        }),
    }
}

/// `GET /api/public/health` and `GET /api/public/ready`, relative to the `/api/public` scope
/// they are mounted in; needs `web::Data<Stores>`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready));
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "OK", "version": VERSION }))
}

async fn ready(stores: web::Data<Stores>) -> HttpResponse {
    match check_readiness(&stores).await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "OK", "version": VERSION })),
        Err(not_ready) => {
            tracing::warn!(store = not_ready.store, reason = %not_ready.reason, "not ready");
            HttpResponse::ServiceUnavailable().json(json!({
                "status": "UNAVAILABLE",
                "failed": not_ready.store,
                "message": format!("{} is not available: {}", not_ready.store, not_ready.reason),
                "version": VERSION,
            }))
        }
    }
}

/// Serves only the probes, until `shutdown` is cancelled.
pub async fn serve_probes(
    listener: TcpListener,
    stores: Stores,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let server = build_probe_server(listener, stores)?;
    let handle = server.handle();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        handle.stop(true).await;
    });
    server.await?;
    Ok(())
}

/// Synchronous for the same reason as the API's: actix's builder is not `Send`.
fn build_probe_server(
    listener: TcpListener,
    stores: Stores,
) -> std::io::Result<actix_web::dev::Server> {
    let stores = web::Data::new(stores);
    Ok(actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(stores.clone())
            .service(web::scope("/api/public").configure(routes))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)?
    .run())
}
