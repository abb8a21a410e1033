use std::time::Duration;

use langfuse_rs::migrate::{self, FileState, Migration, MigrationSet, Store};

use crate::helpers::{TestApp, TestConfig};

async fn clickhouse_tables(config: &TestConfig) -> Vec<String> {
    let settings = config.settings();
    let ch = langfuse_rs::storage::clickhouse::connect(&settings.clickhouse);
    ch.query("SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name")
        .fetch_all::<String>()
        .await
        .unwrap()
}

async fn postgres_tables(config: &TestConfig) -> Vec<String> {
    let settings = config.settings();
    let pool = langfuse_rs::storage::postgres::connect(&settings.database).unwrap();
    let client = pool.get().await.unwrap();
    client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn record_counts(config: &TestConfig) -> (i64, u64) {
    let settings = config.settings();
    let pool = langfuse_rs::storage::postgres::connect(&settings.database).unwrap();
    let pg: i64 = pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    let ch: u64 = langfuse_rs::storage::clickhouse::connect(&settings.clickhouse)
        .query("SELECT count() FROM schema_migrations")
        .fetch_one()
        .await
        .unwrap();
    (pg, ch)
}

fn all_files() -> usize {
    let set = MigrationSet::embedded();
    set.postgres.len() + set.clickhouse.len()
}

async fn assert_fully_migrated(config: &TestConfig) {
    let settings = config.settings();
    let pool = langfuse_rs::storage::postgres::connect(&settings.database).unwrap();
    let status = migrate::status(&pool, &settings.clickhouse, &MigrationSet::embedded())
        .await
        .unwrap();
    assert_eq!(status.len(), all_files());
    assert!(
        status.iter().all(|f| f.state == FileState::Applied),
        "{status:?}"
    );
    let ch = clickhouse_tables(config).await;
    for table in ["observations", "schema_migrations", "scores", "traces"] {
        assert!(
            ch.contains(&table.to_string()),
            "clickhouse lacks {table}: {ch:?}"
        );
    }
    let pg = postgres_tables(config).await;
    for table in ["api_keys", "organizations", "projects", "schema_migrations"] {
        assert!(
            pg.contains(&table.to_string()),
            "postgres lacks {table}: {pg:?}"
        );
    }
    let set = MigrationSet::embedded();
    assert_eq!(
        record_counts(config).await,
        (set.postgres.len() as i64, set.clickhouse.len() as u64),
        "each file recorded exactly once"
    );
}

#[tokio::test]
async fn migrate_applies_everything_then_nothing() {
    let config = TestConfig::new().await;
    let settings = config.settings();
    let first = langfuse_rs::app::migrate(&settings, false).await.unwrap();
    assert_eq!(
        first.lines().filter(|l| l.starts_with("applied")).count(),
        all_files()
    );
    let second = langfuse_rs::app::migrate(&settings, false).await.unwrap();
    assert!(second.contains("nothing to apply"), "{second}");
    assert_fully_migrated(&config).await;

    let status = langfuse_rs::app::migrate(&settings, true).await.unwrap();
    assert!(status.contains("0001_traces_observations_scores.sql"));
    assert!(!status.contains("pending"), "{status}");
}

#[tokio::test]
async fn status_lists_pending_files_before_migrate() {
    let config = TestConfig::new().await;
    let status = langfuse_rs::app::migrate(&config.settings(), true)
        .await
        .unwrap();
    assert_eq!(
        status.lines().filter(|l| l.ends_with("pending")).count(),
        all_files(),
        "{status}"
    );
}

#[tokio::test]
async fn the_clickhouse_tables_follow_the_langfuse_v3_design() {
    let config = TestConfig::new().await;
    config.migrate().await;
    let settings = config.settings();
    let ch = langfuse_rs::storage::clickhouse::connect(&settings.clickhouse);
    for table in ["traces", "observations", "scores"] {
        let (engine, sorting_key, partition_key): (String, String, String) = ch
            .query(
                "SELECT engine_full, sorting_key, partition_key FROM system.tables
                  WHERE database = currentDatabase() AND name = ?",
            )
            .bind(table)
            .fetch_one()
            .await
            .unwrap();
        assert!(
            engine.starts_with("ReplacingMergeTree(event_ts, is_deleted)"),
            "{table}: {engine}"
        );
        assert!(
            sorting_key.starts_with("project_id"),
            "{table}: {sorting_key}"
        );
        assert!(
            partition_key.starts_with("toYYYYMM("),
            "{table}: {partition_key}"
        );
        let types: Vec<(String, String)> = ch
            .query("SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = ?")
            .bind(table)
            .fetch_all()
            .await
            .unwrap();
        let type_of = |column: &str| {
            types
                .iter()
                .find(|(n, _)| n == column)
                .map(|(_, t)| t.clone())
                .unwrap_or_else(|| panic!("{table} has no column {column}"))
        };
        assert_eq!(type_of("event_ts"), "DateTime64(3)");
        assert_eq!(type_of("is_deleted"), "UInt8");
        assert_eq!(type_of("metadata"), "Map(LowCardinality(String), String)");
    }
    let observations: Vec<(String, String)> = ch
        .query("SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'observations'")
        .fetch_all()
        .await
        .unwrap();
    assert!(observations.contains(&(
        "usage_details".to_string(),
        "Map(LowCardinality(String), UInt64)".to_string()
    )));
    assert!(observations.contains(&(
        "cost_details".to_string(),
        "Map(LowCardinality(String), Decimal(18, 12))".to_string()
    )));
}

#[tokio::test]
async fn two_concurrent_runs_both_succeed_and_apply_each_file_once() {
    let config = TestConfig::new().await;
    let settings = config.settings();
    let (a, b) = tokio::join!(
        langfuse_rs::app::migrate(&settings, false),
        langfuse_rs::app::migrate(&settings, false)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let applied = a
        .lines()
        .chain(b.lines())
        .filter(|l| l.starts_with("applied"))
        .count();
    assert_eq!(applied, all_files(), "first: {a}\nsecond: {b}");
    assert_fully_migrated(&config).await;
}

#[tokio::test]
async fn two_concurrent_processes_both_succeed() {
    let config = TestConfig::new().await;
    let (a, b) = tokio::join!(config.run(&["migrate"]), config.run(&["migrate"]));
    for (status, stderr) in [a, b] {
        assert!(status.success(), "{stderr}");
    }
    assert_fully_migrated(&config).await;
}

#[tokio::test]
async fn a_clickhouse_migration_interrupted_half_way_completes_on_the_next_run() {
    let config = TestConfig::new().await;
    let settings = config.settings();
    // What a process killed after the first statement leaves: the database, the record table,
    // one table of the file, and no record of the file.
    let server = langfuse_rs::storage::clickhouse::server_client(&settings.clickhouse);
    server
        .query(&format!(
            "CREATE DATABASE IF NOT EXISTS {}",
            config.clickhouse_database
        ))
        .execute()
        .await
        .unwrap();
    let first_file = &migrate::clickhouse_migrations()[0];
    let statements = migrate::split_statements(&first_file.sql);
    assert!(statements.len() > 1);
    let ch = langfuse_rs::storage::clickhouse::connect(&settings.clickhouse);
    ch.query(&statements[0]).execute().await.unwrap();

    langfuse_rs::app::migrate(&settings, false).await.unwrap();
    assert_fully_migrated(&config).await;
}

#[tokio::test]
async fn a_migrate_process_killed_at_any_moment_is_completed_by_a_rerun() {
    let config = TestConfig::new().await;
    // Kill at several moments; whatever state each kill leaves, the next run must finish it.
    for delay_ms in [20u64, 120, 300, 600] {
        let mut child = config
            .command(&["migrate"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let _ = child.start_kill(); // SIGKILL: no chance to clean up.
        let _ = child.wait().await;
    }
    let (status, stderr) = config.run(&["migrate"]).await;
    assert!(status.success(), "{stderr}");
    assert_fully_migrated(&config).await;
}

#[tokio::test]
async fn a_changed_applied_file_stops_migrate_before_anything_runs() {
    let config = TestConfig::new().await;
    config.migrate().await;
    let settings = config.settings();
    let pool = langfuse_rs::storage::postgres::connect(&settings.database).unwrap();

    let mut set = MigrationSet::embedded();
    set.clickhouse[0]
        .sql
        .push_str("\n-- edited after release\n");
    set.postgres.push(Migration {
        // After the newest, whether or not the numbers have gaps.
        version: set.postgres.iter().map(|m| m.version).max().unwrap_or(0) + 1,
        name: "9999_new.sql".into(),
        sql: "CREATE TABLE should_not_exist (id int);".into(),
    });
    let err = migrate::run(&pool, &settings.clickhouse, &set)
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("0001_traces_observations_scores.sql"),
        "{text}"
    );
    assert!(text.contains("changed"), "{text}");
    assert!(!postgres_tables(&config)
        .await
        .contains(&"should_not_exist".to_string()));

    let status = migrate::status(&pool, &settings.clickhouse, &set)
        .await
        .unwrap();
    let changed = status
        .iter()
        .find(|f| f.store == Store::ClickHouse && f.version == 1)
        .unwrap();
    assert_eq!(changed.state, FileState::Changed);
}

#[tokio::test]
async fn serve_refuses_a_schema_older_than_the_binary() {
    let config = TestConfig::new().await;
    let err = TestApp::spawn_migrated(config)
        .await
        .err()
        .expect("refused");
    let text = format!("{err:#}");
    assert!(text.contains("langfuse-rs migrate"), "{text}");
    assert!(text.contains("pending"), "{text}");
}

/// Rows that moved to another sorting key before the worker wrote deleted copies under the old
/// key are repaired by the migration that writes those copies: afterwards `FINAL` keeps one live
/// row per observation and score, the newest, and a second run changes nothing.
#[tokio::test]
async fn rows_that_moved_before_tombstones_are_repaired_by_the_migration() {
    let config = TestConfig::new().await;
    config.migrate().await;
    let settings = config.settings();
    let ch = langfuse_rs::storage::clickhouse::connect(&settings.clickhouse);
    // As an older worker left them: a version under the first key, a newer one under another
    // (another day, then another type), and an observation that never moved.
    for statement in [
        "INSERT INTO observations (id, trace_id, project_id, type, start_time, name, level, updated_at, event_ts, is_deleted) VALUES \
         ('moved', 't', 'p', 'SPAN', '2024-05-01 10:00:00', 'first', 'DEFAULT', '2024-05-01 10:00:00', '2024-05-01 10:00:00', 0), \
         ('moved', 't', 'p', 'SPAN', '2024-05-03 10:00:00', 'second', 'DEFAULT', '2024-05-01 10:00:01', '2024-05-01 10:00:01', 0), \
         ('moved', 't', 'p', 'GENERATION', '2024-05-03 10:00:00', 'third', 'DEFAULT', '2024-05-01 10:00:02', '2024-05-01 10:00:02', 0), \
         ('still', 't', 'p', 'SPAN', '2024-05-01 10:00:00', 'still', 'DEFAULT', '2024-05-01 10:00:00', '2024-05-01 10:00:00', 0)",
        // A trace moved from one day to another, with a wrapper row under a third day.
        "INSERT INTO traces (id, timestamp, project_id, name, updated_at, event_ts, is_deleted) VALUES \
         ('moved', '2024-05-01 10:00:00', 'p', 'first', '2024-05-01 10:00:00', '2024-05-01 10:00:00', 0), \
         ('moved', '2024-05-02 10:00:00', 'p', 'second', '2024-05-01 10:00:01', '2024-05-01 10:00:01', 0), \
         ('moved', '2024-05-05 10:00:00', 'p', '', '2024-05-01 09:00:00', '1970-01-01 00:00:00', 0)",
        "INSERT INTO scores (id, timestamp, project_id, name, value, source, data_type, updated_at, event_ts, is_deleted) VALUES \
         ('s', '2024-05-01 09:00:00', 'p', 'quality', 1, 'API', 'NUMERIC', '2024-05-01 09:00:00', '2024-05-01 09:00:00', 0), \
         ('s', '2024-05-04 09:00:00', 'p', 'quality', 2, 'API', 'NUMERIC', '2024-05-01 09:00:01', '2024-05-01 09:00:01', 0)",
    ] {
        ch.query(statement).execute().await.unwrap();
    }
    let live = || async {
        let observations: Vec<(String, String)> = ch
            .query("SELECT id, name FROM observations FINAL WHERE project_id = 'p' AND is_deleted = 0 ORDER BY id, name")
            .fetch_all()
            .await
            .unwrap();
        let scores: Vec<f64> = ch
            .query("SELECT value FROM scores FINAL WHERE project_id = 'p' AND is_deleted = 0")
            .fetch_all()
            .await
            .unwrap();
        let traces: Vec<String> = ch
            .query("SELECT name FROM traces FINAL WHERE project_id = 'p' AND is_deleted = 0 ORDER BY name")
            .fetch_all()
            .await
            .unwrap();
        (observations, scores, traces)
    };
    let (observations, scores, traces) = live().await;
    assert_eq!(traces.len(), 3);
    assert_eq!(
        observations.len(),
        4,
        "the moved rows stand under their old keys"
    );
    assert_eq!(scores.len(), 2);

    let repair = migrate::clickhouse_migrations()
        .into_iter()
        .find(|m| m.name == "0006_tombstones_for_moved_rows.sql")
        .expect("the repair migration");
    for _ in 0..2 {
        for statement in migrate::split_statements(&repair.sql) {
            ch.query(&statement).execute().await.unwrap();
        }
        let (observations, scores, traces) = live().await;
        // The wrapper stays: reads set it aside, as the trace has a row of its own.
        assert_eq!(traces, vec![String::new(), "second".to_string()]);
        assert_eq!(
            observations,
            vec![
                ("moved".to_string(), "third".to_string()),
                ("still".to_string(), "still".to_string())
            ]
        );
        assert_eq!(scores, vec![2.0]);
    }
    // The newest version is still what a read of each id's newest version finds.
    let newest: Vec<(String, u8)> = ch
        .query("SELECT name, is_deleted FROM observations WHERE project_id = 'p' AND id = 'moved' ORDER BY event_ts DESC, updated_at DESC LIMIT 1")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(newest, vec![("third".to_string(), 0)]);
}
