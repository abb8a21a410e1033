//! The pipeline under abuse: shuffled and duplicated events over many batches with two workers,
//! a worker killed with SIGKILL mid-flush, ClickHouse away for a while, Redis losing its data.
//! In every case each entity must end up present exactly once with the merged values.

use std::collections::BTreeMap;
use std::time::Duration;

use langfuse_rs::ingest::event::{parse_envelope, Event, Parsed};
use langfuse_rs::ingest::merge;
use langfuse_rs::worker::ingest::ConsumerSettings;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    clickhouse_url, create_project, eventually, free_port, socket_of, with_socket, ApiKey,
    TcpProxy, TestApp, TestConfig,
};

/// A deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn at(second: u64) -> String {
    format!("2024-05-01T10:{:02}:{:02}.000Z", second / 60, second % 60)
}

/// Creates and updates of `traces` traces, two observations and a score each, at random times.
/// The second observation's update names another start day, and the score is re-created on
/// another day: whichever of their events comes first in time decides their day, so their rows
/// move to another sorting key when a later round learns of an earlier event.
fn generate(rng: &mut XorShift, traces: usize) -> Vec<Value> {
    let mut events = Vec::new();
    for t in 0..traces {
        let trace_id = format!("trace-{t}");
        for version in 0..3 {
            events.push(
                json!({"id": format!("{trace_id}-v{version}"), "type": "trace-create",
                "timestamp": at(rng.below(3000)),
                "body": {"id": trace_id, "name": format!("name-{}", rng.below(5)),
                         "tags": [format!("tag-{}", rng.below(4))],
                         "metadata": {format!("k{}", rng.below(3)): format!("v{version}")}}}),
            );
        }
        for o in 0..2 {
            let id = format!("{trace_id}-obs-{o}");
            events.push(
                json!({"id": format!("{id}-create"), "type": "generation-create",
                "timestamp": at(rng.below(3000)),
                "body": {"id": id, "traceId": trace_id, "name": "llm", "startTime": at(100),
                         "usage": {"input": rng.below(100), "output": 1}}}),
            );
            let mut update = json!({"id": format!("{id}-update"), "type": "generation-update",
                "timestamp": at(rng.below(3000)),
                "body": {"id": id, "level": if rng.below(2) == 0 { "ERROR" } else { "DEBUG" },
                         "usage": {"input": rng.below(100), "output": 2}}});
            if o == 1 {
                update["body"]["startTime"] = json!("2024-05-03T08:00:00.000Z");
            }
            events.push(update);
        }
        for (version, day) in [(0, 1), (1, 4)] {
            events.push(json!({"id": format!("{trace_id}-score-v{version}"), "type": "score-create",
                "timestamp": at(rng.below(3000)),
                "body": {"id": format!("{trace_id}-score"), "traceId": trace_id, "name": "quality",
                         "value": rng.below(10), "timestamp": format!("2024-05-0{day}T09:00:00.000Z")}}));
        }
    }
    events
}

/// Shuffles, duplicates about a fifth of the events, and cuts them into batches.
fn batches(rng: &mut XorShift, events: &[Value], size: usize) -> Vec<Value> {
    let mut all: Vec<Value> = events.to_vec();
    for _ in 0..events.len() / 5 {
        all.push(events[rng.below(events.len() as u64) as usize].clone());
    }
    for i in (1..all.len()).rev() {
        all.swap(i, rng.below(i as u64 + 1) as usize);
    }
    all.chunks(size).map(|c| json!({"batch": c})).collect()
}

async fn post_all(app: &TestApp, key: &ApiKey, batches: Vec<Value>) {
    let posts = batches
        .into_iter()
        .map(|batch| async move { app.ingest_accepted(key, &batch).await });
    futures::future::join_all(posts).await;
}

fn parsed(events: &[Value]) -> Vec<Event> {
    events
        .iter()
        .map(|v| match parse_envelope(v).unwrap() {
            Parsed::Event(e) => *e,
            Parsed::SdkLog { .. } => unreachable!(),
        })
        .collect()
}

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct TraceCheck {
    id: String,
    name: String,
    tags: Vec<String>,
    metadata: Vec<(String, String)>,
}

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct ScoreCheck {
    id: String,
    value: f64,
    #[serde(with = "clickhouse::serde::chrono::datetime64::millis")]
    timestamp: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct ObservationCheck {
    id: String,
    level: String,
    usage: Vec<(String, u64)>,
    #[serde(with = "clickhouse::serde::chrono::datetime64::millis")]
    start_time: chrono::DateTime<chrono::Utc>,
}

/// Asserts every merged row in ClickHouse equals the merge of `events` computed here, and that
/// `FINAL` alone finds exactly one live row per observation and score: a row that moved to
/// another sorting key left none behind under the old one.
async fn assert_rows_match(app: &TestApp, project: &str, events: &[Value], traces: usize) {
    let events = parsed(events);
    let ch = &app.stores.clickhouse;
    let last = std::sync::Mutex::new(String::new());
    // Generous: the workers rebuild hundreds of entities, on a machine that may be busy.
    let matches = eventually(Duration::from_secs(60), || async {
        let trace_rows: Vec<TraceCheck> = ch
            // Every trace here has events of its own, so its row is the one built from them, which
            // `FINAL` keeps alone under its key; a wrapper row an observation wrote before the
            // trace's own events were known (version 0, under the observation's start day) stays
            // under its own key and is set aside, as the metrics reads set it aside.
            .query("SELECT id, name, tags, CAST(metadata, 'Array(Tuple(String, String))') AS metadata FROM traces FINAL WHERE project_id = ? AND event_ts > toDateTime64(0, 3)")
            .bind(project)
            .fetch_all()
            .await
            .unwrap();
        let observation_rows: Vec<ObservationCheck> = ch
            .query("SELECT id, toString(level) AS level, CAST(usage_details, 'Array(Tuple(String, UInt64))') AS usage, start_time FROM observations FINAL WHERE project_id = ?")
            .bind(project)
            .fetch_all()
            .await
            .unwrap();
        let score_rows: Vec<ScoreCheck> = ch
            .query("SELECT id, value, timestamp FROM scores FINAL WHERE project_id = ?")
            .bind(project)
            .fetch_all()
            .await
            .unwrap();
        let scores_ok = score_rows.len() == traces
            && score_rows.iter().all(|row| {
                merge::merge_score(project, &row.id, &events).is_some_and(|expected| {
                    expected.value == row.value && expected.timestamp == row.timestamp
                })
            });
        let traces_ok = trace_rows.len() == traces
            && trace_rows.iter().all(|row| {
                let metadata: BTreeMap<String, String> = row.metadata.iter().cloned().collect();
                // A row no event explains (a wrapper guessed wrongly, say) is a failure too.
                merge::merge_trace(project, &row.id, &events).is_some_and(|expected| {
                    expected.name.as_deref() == Some(row.name.as_str())
                        && expected.tags == row.tags
                        && expected.metadata == metadata
                })
            });
        let observations_ok = observation_rows.len() == 2 * traces
            && observation_rows.iter().all(|row| {
                let usage: BTreeMap<String, u64> = row.usage.iter().cloned().collect();
                merge::merge_observation(project, &row.id, &events).is_some_and(|expected| {
                    expected.level.as_str() == row.level
                        && expected.usage_details == usage
                        && expected.start_time == row.start_time
                })
            });
        *last.lock().unwrap() = format!(
            "traces {} ({traces_ok}), observations {} ({observations_ok}), scores {} ({scores_ok})",
            trace_rows.len(),
            observation_rows.len(),
            score_rows.len()
        );
        traces_ok && observations_ok && scores_ok
    })
    .await;
    assert!(
        matches,
        "ClickHouse rows differ from the merge of all events: {}",
        last.lock().unwrap()
    );
}

fn consumer_settings() -> ConsumerSettings {
    ConsumerSettings {
        shards: 8,
        flush_rows: 50,
        flush_interval: Duration::from_millis(100),
        max_attempts: 5,
        lease_ttl: Duration::from_secs(3),
        recovery_window: Duration::from_secs(3600),
    }
}

/// A worker in this process with its own connections, as a separate process would have.
async fn start_worker(
    config: &TestConfig,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let stores = langfuse_rs::storage::Stores::connect(&config.settings())
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let handle = tokio::spawn(langfuse_rs::worker::ingest::run(
        stores,
        consumer_settings(),
        stop.clone(),
    ));
    (stop, handle)
}

#[tokio::test]
async fn two_workers_turn_shuffled_duplicated_batches_into_the_merged_records() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "torture").await;
    let (stop_a, worker_a) = start_worker(&app.config).await;
    let (stop_b, worker_b) = start_worker(&app.config).await;
    let mut rng = XorShift(0x5eed_1234);
    let events = generate(&mut rng, 40);
    post_all(&app, &key, batches(&mut rng, &events, 17)).await;
    assert_rows_match(&app, "torture", &events, 40).await;
    stop_a.cancel();
    stop_b.cancel();
    worker_a.await.unwrap().unwrap();
    worker_b.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_worker_killed_mid_flush_loses_nothing() {
    let mut config = TestConfig::new().await;
    config
        .set("LANGFUSE_RS__WORKER__FLUSH_ROWS", "40")
        .set("LANGFUSE_RS__WORKER__HEALTH_HOSTNAME", "127.0.0.1")
        .set("LANGFUSE_RS__WORKER__HEALTH_PORT", "0");
    let app = TestApp::spawn(config).await;
    let key = create_project(&app.config, "killed").await;
    let mut rng = XorShift(0xdead_beef);
    let events = generate(&mut rng, 150);
    let spawn_worker = || {
        app.config
            .command(&["work"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let mut first = spawn_worker();
    post_all(&app, &key, batches(&mut rng, &events, 25)).await;
    // Kill it as soon as it has written something, while it holds more.
    let started = eventually(Duration::from_secs(20), || async {
        app.count_rows("observations", "killed").await > 0
    })
    .await;
    assert!(started, "the first worker never wrote");
    first.start_kill().unwrap(); // SIGKILL
    first.wait().await.unwrap();

    let mut second = spawn_worker();
    assert_rows_match(&app, "killed", &events, 150).await;
    let backlog_drained = eventually(Duration::from_secs(20), || async {
        langfuse_rs::storage::queue::backlog(&app.stores.redis, 8)
            .await
            .unwrap()
            == 0
    })
    .await;
    assert!(backlog_drained, "entries left in the queue");
    second.start_kill().unwrap();
    second.wait().await.unwrap();
}

#[tokio::test]
async fn clickhouse_away_for_a_while_loses_nothing() {
    let mut config = TestConfig::new().await;
    let proxy = TcpProxy::start(socket_of(&clickhouse_url())).await;
    config.set("CLICKHOUSE_URL", with_socket(&clickhouse_url(), proxy.addr));
    let app = TestApp::spawn_with_worker(config).await;
    let key = create_project(&app.config, "chdown").await;
    let direct =
        langfuse_rs::storage::clickhouse::connect(&langfuse_rs::config::ClickHouseSettings {
            url: clickhouse_url(),
            ..app.config.settings().clickhouse
        });

    proxy.stop();
    let mut rng = XorShift(42);
    let events = generate(&mut rng, 30);
    // Ingestion does not depend on ClickHouse: every batch is accepted.
    post_all(&app, &key, batches(&mut rng, &events, 20)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let visible: u64 = direct
        .query("SELECT count() FROM observations WHERE project_id = 'chdown'")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(visible, 0);

    proxy.resume();
    assert_rows_match(&app, "chdown", &events, 30).await;
}

/// A Redis server of this test's own, so it can be killed and restarted empty.
struct PrivateRedis {
    port: u16,
    child: Option<tokio::process::Child>,
}

impl PrivateRedis {
    async fn start(port: u16) -> PrivateRedis {
        let child = tokio::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server (installed by scripts/test.sh)");
        let url = format!("127.0.0.1:{port}");
        let up = eventually(Duration::from_secs(10), || {
            let url = url.clone();
            async move { tokio::net::TcpStream::connect(url).await.is_ok() }
        })
        .await;
        assert!(up, "private redis-server did not start");
        PrivateRedis {
            port,
            child: Some(child),
        }
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().unwrap();
            child.wait().await.unwrap();
        }
    }
}

#[tokio::test]
async fn references_lost_with_redis_are_recovered_from_blob_storage() {
    let port = free_port();
    let mut redis = PrivateRedis::start(port).await;
    let mut config = TestConfig::new().await;
    config.set(
        "REDIS_CONNECTION_STRING",
        format!("redis://127.0.0.1:{port}"),
    );
    let app = TestApp::spawn(config).await;
    let key = create_project(&app.config, "redisloss").await;

    // A worker has seen the queue intact once (so the queue has its epoch), then stops.
    let (stop, worker) = start_worker(&app.config).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    worker.await.unwrap().unwrap();

    // Accepted while no worker runs: the references sit in Redis...
    let mut rng = XorShift(7);
    let events = generate(&mut rng, 10);
    post_all(&app, &key, batches(&mut rng, &events, 10)).await;
    // ...which then loses everything.
    redis.kill().await;
    let _redis = PrivateRedis::start(redis.port).await;

    let (stop, worker) = start_worker(&app.config).await;
    assert_rows_match(&app, "redisloss", &events, 10).await;
    stop.cancel();
    worker.await.unwrap().unwrap();
}
