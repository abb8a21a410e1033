//! The ClickHouse client (HTTP interface, official `clickhouse` crate), and one module per table
//! holding its row types and its queries (`sql/clickhouse/` defines the tables):
//!
//! - `traces`, `observations` and `scores`: what the worker inserts, what reads return, and the
//!   queries of each list (`observations::cursor_page` and `scores::cursor_page` page the v2
//!   and v3 lists by cursor). `sessions` is a view over `traces`.
//! - `trace_table` and `users`: the web UI's traces table (cursor pages with the figures and
//!   scores of their rows) and its users, a view over `traces`.
//! - `filter`: the filter language of the list views (observations, traces, sessions, scores),
//!   a column table per view, compiled to SQL.
//! - `metrics`: the Metrics API's queries: a `domain::metrics::MetricsQuery` to one SQL
//!   statement over the newest version of each row, and its rows as JSON objects.
//! - `dataset_compare`: the web UI's dataset runs: what each run item's trace or observation
//!   produced, its latency, cost and scores, for a page of run items at once.
//! - `entity_events`: where each entity's events are stored; `trace_deletions`: when each deleted
//!   trace was deleted. Both are the worker's, but for the deletion the API records.
//! - `row_batch`: one flush of the worker, an insert per table.
//! - `sql`: the one builder of query text and bound values; tenant reads go through its
//!   `latest_versions`/`latest_matching`, which take the project scope.
//!
//! Row structs' field order matches the table definitions. `Map` columns travel as arrays of
//! pairs, `Decimal64(12)` as the integer count of 10⁻¹² units, `DateTime64(3)` as milliseconds.

pub mod dataset_compare;
pub mod entity_events;
pub mod experiments;
pub mod filter;
pub mod metrics;
pub mod observations;
pub mod row_batch;
pub mod scores;
pub mod session_table;
pub mod sessions;
pub mod sql;
pub mod trace_deletions;
pub mod trace_table;
pub mod trace_tree;
pub mod traces;
pub mod users;

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
    // ClickHouse closes idle connections after 3 s; ours go first.
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build(connector());
    clickhouse::Client::with_http_client(http)
        .with_url(&settings.url)
        .with_user(&settings.user)
        .with_password(settings.password.expose_secret())
        .with_compression(clickhouse::Compression::None)
}

/// The client's connector, as the crate builds it by default but with `TCP_NODELAY`: an insert
/// sends its headers and then its body in two writes, and with Nagle's algorithm on, the body
/// waits for the server's delayed acknowledgement of the headers (40 ms on Linux) on every
/// insert, which was most of the time from a quiet queue to a readable trace.
fn connector() -> hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector> {
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_keepalive(Some(std::time::Duration::from_secs(60)));
    connector.enforce_http(false);
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .expect("the ring provider supports the default TLS versions")
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector)
}

/// A `Decimal64(12)` value as the integer count of 10⁻¹² units it travels as.
fn decimal(value: f64) -> i64 {
    const DECIMAL_SCALE: f64 = 1e12;
    (value * DECIMAL_SCALE).round() as i64
}

/// A `Map` value as the array of pairs it travels as.
fn pairs<V>(map: std::collections::BTreeMap<String, V>) -> Vec<(String, V)> {
    map.into_iter().collect()
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
