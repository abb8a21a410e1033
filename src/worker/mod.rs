//! The worker role: queue consumers that write to ClickHouse.
//!
//! The worker never imports the web role (`crate::http`) nor actix: the two meet only at the
//! stores' message types and key schemes in `crate::storage`. Its health endpoints are served by
//! `crate::health`, started beside it by `crate::app`.

pub mod ingest;

use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::storage::Stores;

/// Runs the consumers until `shutdown` is cancelled, then returns once each has finished or
/// handed back what it held.
pub async fn run(
    stores: Stores,
    settings: &Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    ingest::run(
        stores,
        ingest::ConsumerSettings::from_settings(settings),
        shutdown,
    )
    .await
}
