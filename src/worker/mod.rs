//! The worker role: queue consumers that write to ClickHouse.
//!
//! The worker never imports the web role (`crate::http`) nor actix: the two meet only at the
//! stores' message types and key schemes in `crate::storage`. Its health endpoints are served by
//! `crate::health`, started beside it by `crate::app`.

use tokio_util::sync::CancellationToken;

use crate::storage::Stores;

/// Runs the consumers until `shutdown` is cancelled, then returns once each has finished or
/// handed back what it held.
///
/// The ingestion consumers are registered here as they are built; until then the role holds no
/// work, so stopping is immediate.
pub async fn run(stores: Stores, shutdown: CancellationToken) -> anyhow::Result<()> {
    let _ = stores;
    shutdown.cancelled().await;
    tracing::info!("worker stopped");
    Ok(())
}
