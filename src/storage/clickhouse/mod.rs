//! The ClickHouse client (HTTP interface, official `clickhouse` crate).
//!
//! Table row structs live in one module per table beside this one as the tables get used; their
//! field order matches the table definitions in `sql/clickhouse/`.

pub mod entity_events;
pub mod filter;
pub mod observations_v2;
pub mod reads;
pub mod rows;
pub mod scores_v3;
pub mod sql;

use anyhow::Context;
use secrecy::ExposeSecret;

use crate::config::ClickHouseSettings;

/// Builds the client for the configured database. Compression is off: bodies are small batches
/// on a fast network, and it keeps the development stand-in (which does not speak ClickHouse's
/// block compression) on exactly the same code path as a production server.
pub fn connect(settings: &ClickHouseSettings) -> clickhouse::Client {
    server_client(settings).with_database(&settings.database)
}

/// A client with no database selected, for statements that create the database itself.
pub fn server_client(settings: &ClickHouseSettings) -> clickhouse::Client {
    clickhouse::Client::default()
        .with_url(&settings.url)
        .with_user(&settings.user)
        .with_password(settings.password.expose_secret())
        .with_compression(clickhouse::Compression::None)
}

pub async fn ping(client: &clickhouse::Client) -> anyhow::Result<()> {
    let one: u8 = client
        .query("SELECT toUInt8(1)")
        .fetch_one()
        .await
        .context("SELECT 1 failed")?;
    anyhow::ensure!(one == 1, "SELECT 1 returned {one}");
    Ok(())
}
