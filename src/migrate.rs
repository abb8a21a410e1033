//! Schema migrations for PostgreSQL and ClickHouse: numbered SQL files embedded in the binary.
//!
//! Guarantees, and how they are kept:
//! - **Forward only, checksummed.** Each applied file is recorded with the SHA-256 of its text; a
//!   recorded file whose text has since changed stops the run before anything is applied.
//! - **Concurrent runs.** Every run, for both stores, holds one PostgreSQL session-level advisory
//!   lock; a second `migrate` waits, then finds nothing pending. A killed process's lock is
//!   released with its session.
//! - **Killed half way.** A PostgreSQL file runs in one transaction with its record. ClickHouse has
//!   no transactions, so every ClickHouse statement must be idempotent (`IF NOT EXISTS` /
//!   `IF EXISTS`, or an insert of deleted rows, which ReplacingMergeTree folds when repeated;
//!   enforced by a test over the files) and the record is written only after the
//!   last statement: a rerun executes the whole file again and completes it. There is no "dirty"
//!   state to repair by hand.
//! - ClickHouse's record lives in ClickHouse (`schema_migrations` in the configured database), so
//!   it always describes the schema it sits beside.

use std::fmt;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::ClickHouseSettings;

/// One SQL file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub version: u32,
    pub name: String,
    pub sql: String,
}

impl Migration {
    fn new(file_name: &str, sql: &str) -> Migration {
        let version = file_name
            .split('_')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("migration file {file_name} must start with a number"));
        Migration {
            version,
            name: file_name.to_string(),
            sql: sql.to_string(),
        }
    }

    pub fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

macro_rules! embed {
    ($dir:literal, [$($file:literal),* $(,)?]) => {
        vec![$(Migration::new($file, include_str!(concat!("../sql/", $dir, "/", $file)))),*]
    };
}

/// The files of `sql/postgres/`, in order. A test checks this list against the directory.
pub fn postgres_migrations() -> Vec<Migration> {
    embed!(
        "postgres",
        [
            "0001_organizations_projects_api_keys.sql",
            "0002_prompts.sql",
            "0003_users_sessions_memberships.sql",
            "0004_models.sql",
            "0005_score_configs.sql",
            "0006_dashboards.sql",
            "0007_datasets.sql",
            "0008_media.sql",
        ]
    )
}

/// The files of `sql/clickhouse/`, in order. A test checks this list against the directory.
pub fn clickhouse_migrations() -> Vec<Migration> {
    embed!(
        "clickhouse",
        [
            "0001_traces_observations_scores.sql",
            "0002_entity_events.sql",
            "0003_entity_deletions.sql",
            "0004_observation_pricing_tier.sql",
            "0005_observation_experiments.sql",
            "0006_tombstones_for_moved_rows.sql",
            "0007_input_output_zstd1.sql"
        ]
    )
}

/// Which database a migration belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Postgres,
    ClickHouse,
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Store::Postgres => "postgres",
            Store::ClickHouse => "clickhouse",
        })
    }
}

/// The files each store runs. Tests pass their own sets; the binary passes [`MigrationSet::embedded`].
#[derive(Debug, Clone)]
pub struct MigrationSet {
    pub postgres: Vec<Migration>,
    pub clickhouse: Vec<Migration>,
    /// The shipped model definitions (`sql/models/default-models.json`), loaded after the
    /// PostgreSQL files whenever their text changed.
    pub shipped_models: String,
}

impl MigrationSet {
    pub fn embedded() -> MigrationSet {
        MigrationSet {
            postgres: postgres_migrations(),
            clickhouse: clickhouse_migrations(),
            shipped_models: crate::storage::models::SHIPPED_MODELS.to_string(),
        }
    }
}

/// The state of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStatus {
    pub store: Store,
    pub version: u32,
    pub name: String,
    pub state: FileState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    Applied,
    Pending,
    /// Applied, but the embedded text differs from what was applied.
    Changed,
    /// Recorded in the database but unknown to this binary (a newer binary applied it).
    Unknown,
}

/// What a run applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub applied: Vec<(Store, String)>,
    /// How many shipped models were (re)loaded; `None` when they were already current.
    pub shipped_models: Option<usize>,
}

/// Arbitrary but fixed: the advisory-lock id that serializes every `migrate` of an installation.
const MIGRATION_LOCK_ID: i64 = 0x6c66_7273_6d69_6772; // "lfrsmigr"

const PG_RECORD_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)";

const CH_RECORD_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime64(3) DEFAULT now64(3)
) ENGINE = ReplacingMergeTree ORDER BY version";

#[derive(Debug, Clone, Deserialize, Serialize, clickhouse::Row)]
struct ChRecord {
    version: u32,
    name: String,
    checksum: String,
}

#[derive(Debug, Clone)]
struct Recorded {
    version: u32,
    name: String,
    checksum: String,
}

/// Applies every pending file of both stores, under the installation-wide lock.
pub async fn run(
    pool: &deadpool_postgres::Pool,
    clickhouse: &ClickHouseSettings,
    set: &MigrationSet,
) -> anyhow::Result<Report> {
    let mut lock_conn = pool.get().await.context("postgres: no connection")?;
    lock_conn
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_ID])
        .await
        .context("postgres: taking the migration lock")?;
    let mut result = run_locked(&mut lock_conn, clickhouse, set).await;
    if let Ok(report) = &mut result {
        // Under the same lock: a second `migrate` finds the set loaded and its checksum current.
        match load_shipped_models(pool, &lock_conn, &set.shipped_models).await {
            Ok(loaded) => report.shipped_models = loaded,
            Err(e) => result = Err(e),
        }
    }
    // Unlock even after a failure; if this process dies instead, the session's end unlocks.
    let _ = lock_conn
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_ID])
        .await;
    result
}

async fn run_locked(
    pg: &mut deadpool_postgres::Object,
    clickhouse: &ClickHouseSettings,
    set: &MigrationSet,
) -> anyhow::Result<Report> {
    let ch = prepare_clickhouse(clickhouse).await?;
    let pg_recorded = postgres_recorded(pg).await?;
    let ch_recorded = clickhouse_recorded(&ch).await?;
    // Refuse before applying anything: a changed file means the history is not what we think.
    refuse_changed(Store::Postgres, &set.postgres, &pg_recorded)?;
    refuse_changed(Store::ClickHouse, &set.clickhouse, &ch_recorded)?;

    let mut report = Report::default();
    for m in pending(&set.postgres, &pg_recorded) {
        tracing::info!(store = "postgres", file = %m.name, "applying migration");
        let tx = pg.transaction().await?;
        tx.batch_execute(&m.sql)
            .await
            .with_context(|| format!("postgres migration {} failed", m.name))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[&(m.version as i32), &m.name, &m.checksum()],
        )
        .await?;
        tx.commit()
            .await
            .with_context(|| format!("postgres migration {} failed to commit", m.name))?;
        report.applied.push((Store::Postgres, m.name.clone()));
    }
    for m in pending(&set.clickhouse, &ch_recorded) {
        tracing::info!(store = "clickhouse", file = %m.name, "applying migration");
        for statement in split_statements(&m.sql) {
            ch.query(&escape_placeholders(&statement))
                .execute()
                .await
                .with_context(|| format!("clickhouse migration {} failed", m.name))?;
        }
        let mut insert = ch.insert("schema_migrations")?;
        insert
            .write(&ChRecord {
                version: m.version,
                name: m.name.clone(),
                checksum: m.checksum(),
            })
            .await?;
        insert
            .end()
            .await
            .with_context(|| format!("recording clickhouse migration {}", m.name))?;
        report.applied.push((Store::ClickHouse, m.name.clone()));
    }
    Ok(report)
}

/// Loads the shipped models once their tables exist (a set without `0004_models.sql`, as tests
/// build, has nothing to load them into).
async fn load_shipped_models(
    pool: &deadpool_postgres::Pool,
    pg: &deadpool_postgres::Object,
    text: &str,
) -> anyhow::Result<Option<usize>> {
    let exists: bool = pg
        .query_one("SELECT to_regclass('model_catalog_state') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(None);
    }
    crate::storage::models::load_shipped(pool, text)
        .await
        .context("loading the shipped models")
}

/// Reports every file's state without changing anything (read-only: no lock, no tables created).
pub async fn status(
    pool: &deadpool_postgres::Pool,
    clickhouse: &ClickHouseSettings,
    set: &MigrationSet,
) -> anyhow::Result<Vec<FileStatus>> {
    let pg = pool.get().await.context("postgres: no connection")?;
    let pg_recorded = postgres_recorded_if_any(&pg).await?;
    let ch_recorded = clickhouse_recorded_if_any(clickhouse).await?;
    let mut out = file_states(Store::Postgres, &set.postgres, &pg_recorded);
    out.extend(file_states(
        Store::ClickHouse,
        &set.clickhouse,
        &ch_recorded,
    ));
    Ok(out)
}

/// The files that make the schema older than this binary, or changed ones; empty when `serve` and
/// `work` may start.
pub async fn outstanding(
    pool: &deadpool_postgres::Pool,
    clickhouse: &ClickHouseSettings,
    set: &MigrationSet,
) -> anyhow::Result<Vec<FileStatus>> {
    Ok(status(pool, clickhouse, set)
        .await?
        .into_iter()
        .filter(|f| matches!(f.state, FileState::Pending | FileState::Changed))
        .collect())
}

fn file_states(store: Store, files: &[Migration], recorded: &[Recorded]) -> Vec<FileStatus> {
    let mut out: Vec<FileStatus> = files
        .iter()
        .map(|m| {
            let state = match recorded.iter().find(|r| r.version == m.version) {
                Some(r) if r.checksum == m.checksum() => FileState::Applied,
                Some(_) => FileState::Changed,
                None => FileState::Pending,
            };
            FileStatus {
                store,
                version: m.version,
                name: m.name.clone(),
                state,
            }
        })
        .collect();
    out.extend(
        recorded
            .iter()
            .filter(|r| !files.iter().any(|m| m.version == r.version))
            .map(|r| FileStatus {
                store,
                version: r.version,
                name: r.name.clone(),
                state: FileState::Unknown,
            }),
    );
    out.sort_by_key(|f| f.version);
    out
}

fn refuse_changed(store: Store, files: &[Migration], recorded: &[Recorded]) -> anyhow::Result<()> {
    for m in files {
        if let Some(r) = recorded.iter().find(|r| r.version == m.version) {
            anyhow::ensure!(
                r.checksum == m.checksum(),
                "{store} migration {} was changed after it was applied (recorded checksum {}, file checksum {}); \
                 migrations are forward-only: restore the file and add a new one",
                m.name,
                r.checksum,
                m.checksum()
            );
        }
    }
    Ok(())
}

fn pending<'a>(files: &'a [Migration], recorded: &[Recorded]) -> Vec<&'a Migration> {
    let mut out: Vec<&Migration> = files
        .iter()
        .filter(|m| !recorded.iter().any(|r| r.version == m.version))
        .collect();
    out.sort_by_key(|m| m.version);
    out
}

async fn postgres_recorded(pg: &deadpool_postgres::Object) -> anyhow::Result<Vec<Recorded>> {
    pg.batch_execute(PG_RECORD_TABLE)
        .await
        .context("postgres: creating schema_migrations")?;
    postgres_recorded_if_any(pg).await
}

async fn postgres_recorded_if_any(pg: &deadpool_postgres::Object) -> anyhow::Result<Vec<Recorded>> {
    let exists: bool = pg
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await
        .context("postgres: reading schema_migrations")?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = pg
        .query(
            "SELECT version, name, checksum FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .context("postgres: reading schema_migrations")?;
    Ok(rows
        .iter()
        .map(|r| Recorded {
            version: r.get::<_, i32>(0) as u32,
            name: r.get(1),
            checksum: r.get(2),
        })
        .collect())
}

/// Creates the database and the record table; returns a client bound to the database.
async fn prepare_clickhouse(settings: &ClickHouseSettings) -> anyhow::Result<clickhouse::Client> {
    let server = crate::storage::clickhouse::server_client(settings);
    server
        .query(&format!(
            "CREATE DATABASE IF NOT EXISTS {}",
            quote_identifier(&settings.database)
        ))
        .execute()
        .await
        .context("clickhouse: creating the database")?;
    let ch = crate::storage::clickhouse::connect(settings);
    ch.query(CH_RECORD_TABLE)
        .execute()
        .await
        .context("clickhouse: creating schema_migrations")?;
    Ok(ch)
}

async fn clickhouse_recorded(ch: &clickhouse::Client) -> anyhow::Result<Vec<Recorded>> {
    let rows: Vec<ChRecord> = ch
        .query("SELECT ?fields FROM schema_migrations FINAL ORDER BY version")
        .fetch_all()
        .await
        .context("clickhouse: reading schema_migrations")?;
    Ok(rows
        .into_iter()
        .map(|r| Recorded {
            version: r.version,
            name: r.name,
            checksum: r.checksum,
        })
        .collect())
}

/// Asks through a client with no database selected: before the first `migrate` the configured
/// database may not exist, and that simply means nothing is applied.
async fn clickhouse_recorded_if_any(
    settings: &ClickHouseSettings,
) -> anyhow::Result<Vec<Recorded>> {
    let server = crate::storage::clickhouse::server_client(settings);
    let exists: u8 = server
        .query("SELECT toUInt8(count()) FROM system.tables WHERE database = ? AND name = 'schema_migrations'")
        .bind(&settings.database)
        .fetch_one()
        .await
        .context("clickhouse: reading schema_migrations")?;
    if exists == 0 {
        return Ok(Vec::new());
    }
    clickhouse_recorded(&crate::storage::clickhouse::connect(settings)).await
}

/// ClickHouse's HTTP interface takes one statement per request. Statements in our files end with
/// `;` at the end of a line; `--` comment lines are dropped.
pub fn split_statements(sql: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            let statement = current.trim().trim_end_matches(';').trim().to_string();
            if !statement.is_empty() {
                statements.push(statement);
            }
            current.clear();
        }
    }
    let rest = current.trim();
    if !rest.is_empty() {
        statements.push(rest.to_string());
    }
    statements
}

/// The `clickhouse` crate binds `?` placeholders; a literal `?` in DDL must be doubled.
fn escape_placeholders(statement: &str) -> String {
    statement.replace('?', "??")
}

fn quote_identifier(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_in(dir: &str) -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("sql")
            .join(dir);
        let mut names: Vec<String> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn every_sql_file_is_embedded_in_order() {
        for (dir, embedded) in [
            ("postgres", postgres_migrations()),
            ("clickhouse", clickhouse_migrations()),
        ] {
            let names: Vec<String> = embedded.iter().map(|m| m.name.clone()).collect();
            assert_eq!(
                names,
                files_in(dir),
                "sql/{dir} and the embedded list differ"
            );
            for (i, m) in embedded.iter().enumerate() {
                assert_eq!(m.version as usize, i + 1, "{} is out of sequence", m.name);
            }
        }
    }

    #[test]
    fn every_clickhouse_statement_is_idempotent() {
        for m in clickhouse_migrations() {
            for statement in split_statements(&m.sql) {
                let upper = statement.to_uppercase();
                // Inserting deleted rows into a ReplacingMergeTree is re-runnable too: the same
                // rows again, under the same keys with the same versions, fold into one.
                let inserts_deleted_rows =
                    upper.starts_with("INSERT INTO") && upper.contains("1 AS IS_DELETED");
                let idempotent = upper.contains("IF NOT EXISTS")
                    || upper.contains("IF EXISTS")
                    || inserts_deleted_rows;
                assert!(
                    idempotent,
                    "{}: a statement without IF [NOT] EXISTS cannot be safely re-run after a kill:\n{statement}",
                    m.name
                );
            }
        }
    }

    #[test]
    fn statements_split_on_line_final_semicolons() {
        let sql = "-- c\nCREATE TABLE IF NOT EXISTS a (x String DEFAULT ';') ENGINE = Log;\n\nALTER TABLE a ADD COLUMN IF NOT EXISTS y UInt8;\n";
        let parts = split_statements(sql);
        assert_eq!(parts.len(), 2);
        assert!(parts[0].contains("DEFAULT ';'"));
        assert!(parts[1].starts_with("ALTER"));
    }

    #[test]
    fn changed_files_are_found() {
        let files = vec![Migration::new("0001_a.sql", "select 1")];
        let recorded = vec![Recorded {
            version: 1,
            name: "0001_a.sql".into(),
            checksum: "other".into(),
        }];
        assert!(refuse_changed(Store::Postgres, &files, &recorded).is_err());
        assert_eq!(
            file_states(Store::Postgres, &files, &recorded)[0].state,
            FileState::Changed
        );
        assert!(pending(&files, &recorded).is_empty());
    }
}
