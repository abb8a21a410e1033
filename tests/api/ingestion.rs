//! `POST /api/public/ingestion` end to end: HTTP → blob storage → queue → worker → ClickHouse.

use reqwest::header::AUTHORIZATION;
use serde_json::{json, Value};

use crate::helpers::{
    create_project, envelope, gzip, redis_url, socket_of, with_socket, TcpProxy, TestApp,
    TestConfig, INGESTION,
};

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct TraceFields {
    name: String,
    user_id: Option<String>,
    tags: Vec<String>,
    environment: String,
}

/// Fetches some columns of a merged trace row.
async fn trace_fields(
    app: &TestApp,
    project: &str,
    id: &str,
) -> (String, Option<String>, Vec<String>, String) {
    let row: TraceFields = app
        .stores
        .clickhouse
        .query("SELECT ?fields FROM traces FINAL WHERE project_id = ? AND id = ?")
        .bind(project)
        .bind(id)
        .fetch_one()
        .await
        .expect("trace row");
    (row.name, row.user_id, row.tags, row.environment)
}

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct GenerationFields {
    model: Option<String>,
    output: Option<String>,
    usage: Vec<(String, u64)>,
    total_cost: Option<f64>,
    parent: Option<String>,
}

#[tokio::test]
async fn every_event_type_is_answered_207_and_lands_in_clickhouse() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "ingest").await;
    let t = "2024-05-01T10:00:00.000Z";
    let batch = json!({"batch": [
        envelope("e1", "trace-create", t, json!({"id": "trace-1", "name": "chat", "userId": "user-1",
            "tags": ["b", "a"], "environment": "production", "metadata": {"k": "v"}})),
        envelope("e2", "span-create", t, json!({"id": "span-1", "traceId": "trace-1", "name": "retrieve", "startTime": t})),
        envelope("e3", "span-update", "2024-05-01T10:00:01.000Z", json!({"id": "span-1", "endTime": "2024-05-01T10:00:01.000Z", "output": {"docs": 3}})),
        envelope("e4", "generation-create", t, json!({"id": "gen-1", "traceId": "trace-1", "parentObservationId": "span-1",
            "model": "gpt-4o", "startTime": t, "usage": {"input": 10, "output": 20}})),
        envelope("e5", "generation-update", "2024-05-01T10:00:02.000Z", json!({"id": "gen-1", "output": "hello",
            "usageDetails": {"input": 11, "output": 21}, "costDetails": {"input": 0.001, "output": 0.002}})),
        envelope("e6", "event-create", t, json!({"id": "event-1", "traceId": "trace-1", "name": "click"})),
        envelope("e7", "observation-create", t, json!({"id": "obs-legacy", "traceId": "trace-1", "type": "SPAN"})),
        envelope("e8", "observation-update", t, json!({"id": "obs-legacy", "type": "SPAN", "name": "legacy"})),
        envelope("e9", "agent-create", t, json!({"id": "agent-1", "traceId": "trace-1"})),
        envelope("e10", "tool-create", t, json!({"id": "tool-1", "traceId": "trace-1"})),
        envelope("e11", "chain-create", t, json!({"id": "chain-1", "traceId": "trace-1"})),
        envelope("e12", "retriever-create", t, json!({"id": "retriever-1", "traceId": "trace-1"})),
        envelope("e13", "evaluator-create", t, json!({"id": "evaluator-1", "traceId": "trace-1"})),
        envelope("e14", "embedding-create", t, json!({"id": "embedding-1", "traceId": "trace-1"})),
        envelope("e15", "guardrail-create", t, json!({"id": "guardrail-1", "traceId": "trace-1"})),
        envelope("e16", "score-create", t, json!({"id": "score-1", "traceId": "trace-1", "name": "quality", "value": 0.8})),
        envelope("e17", "sdk-log", t, json!({"log": "hello from the sdk"})),
        envelope("bad", "span-create", "not a time", json!({"id": "x"})),
    ]});
    let response = app.post_as(INGESTION, &key, &batch).await;
    assert_eq!(response.status(), 207);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["successes"].as_array().unwrap().len(), 17, "{body}");
    assert!(body["successes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == 201));
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["id"], "bad");
    assert_eq!(errors[0]["status"], 400);
    assert!(errors[0]["message"].as_str().unwrap().contains("timestamp"));

    assert!(
        app.wait_for_rows("observations", "ingest", 11).await,
        "observations"
    );
    assert!(app.wait_for_rows("traces", "ingest", 1).await, "traces");
    assert!(app.wait_for_rows("scores", "ingest", 1).await, "scores");

    let (name, user, tags, environment) = trace_fields(&app, "ingest", "trace-1").await;
    assert_eq!((name.as_str(), user.as_deref()), ("chat", Some("user-1")));
    assert_eq!(tags, vec!["a", "b"]);
    assert_eq!(environment, "production");

    let GenerationFields { model, output, usage, total_cost, parent } = app
        .stores
        .clickhouse
        .query("SELECT provided_model_name AS model, output, CAST(usage_details, 'Array(Tuple(String, UInt64))') AS usage,
                toFloat64(total_cost) AS total_cost, parent_observation_id AS parent
                FROM observations FINAL WHERE project_id = 'ingest' AND id = 'gen-1'")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(model.as_deref(), Some("gpt-4o"));
    assert_eq!(output.as_deref(), Some("hello"));
    let usage: std::collections::BTreeMap<String, u64> = usage.into_iter().collect();
    assert_eq!(
        (usage["input"], usage["output"], usage["total"]),
        (11, 21, 32)
    );
    assert!((total_cost.unwrap() - 0.003).abs() < 1e-9);
    assert_eq!(parent.as_deref(), Some("span-1"));

    let types: Vec<String> = app
        .stores
        .clickhouse
        .query("SELECT DISTINCT type FROM observations FINAL WHERE project_id = 'ingest' ORDER BY type")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(
        types,
        [
            "AGENT",
            "CHAIN",
            "EMBEDDING",
            "EVALUATOR",
            "EVENT",
            "GENERATION",
            "GUARDRAIL",
            "RETRIEVER",
            "SPAN",
            "TOOL"
        ]
    );
}

#[tokio::test]
async fn updates_before_creates_across_batches_merge_into_one_record() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "merge").await;
    // The update (later timestamp) arrives first, in its own batch.
    let update = json!({"batch": [envelope("u", "trace-create", "2024-05-01T10:00:05Z",
        json!({"id": "t", "name": "renamed", "tags": ["later"]}))]});
    let create = json!({"batch": [envelope("c", "trace-create", "2024-05-01T10:00:00Z",
        json!({"id": "t", "name": "original", "userId": "u1", "tags": ["first"]}))]});
    assert_eq!(app.post_as(INGESTION, &key, &update).await.status(), 207);
    assert!(app.wait_for_rows("traces", "merge", 1).await);
    assert_eq!(app.post_as(INGESTION, &key, &create).await.status(), 207);
    // The same event again: counted once.
    assert_eq!(app.post_as(INGESTION, &key, &create).await.status(), 207);

    let merged = crate::helpers::eventually(std::time::Duration::from_secs(20), || async {
        let (name, user, tags, _) = trace_fields(&app, "merge", "t").await;
        name == "renamed" && user.as_deref() == Some("u1") && tags == vec!["first", "later"]
    })
    .await;
    assert!(merged, "{:?}", trace_fields(&app, "merge", "t").await);
}

/// A late event older than a trace's newest one leaves the new row's `event_ts` equal to the
/// previous row's. Until ClickHouse merges the two, the read API picks each id's newest version by
/// `event_ts` and then `updated_at`, so the row written later must be the later by `updated_at`.
#[tokio::test]
async fn a_late_older_event_is_read_back_before_any_merge() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "late").await;
    let ch = &app.stores.clickhouse;
    ch.query("SYSTEM STOP MERGES traces")
        .execute()
        .await
        .unwrap();
    let newer = json!({"batch": [envelope("n", "trace-create", "2024-05-01T10:00:05Z",
        json!({"id": "t", "name": "renamed"}))]});
    let older = json!({"batch": [envelope("o", "trace-create", "2024-05-01T10:00:00Z",
        json!({"id": "t", "name": "original", "userId": "u1", "release": "r1"}))]});
    assert_eq!(app.post_as(INGESTION, &key, &newer).await.status(), 207);
    assert!(app.wait_until_written().await);
    assert_eq!(app.post_as(INGESTION, &key, &older).await.status(), 207);
    assert!(app.wait_until_written().await);

    // Two versions, both under the newest event's time; the later write is the newer one.
    #[derive(Debug, serde::Deserialize, clickhouse::Row)]
    struct Version {
        user_id: Option<String>,
        event_ts: i64,
        updated_at: i64,
    }
    let versions: Vec<Version> = ch
        .query(
            "SELECT user_id, toUnixTimestamp64Milli(event_ts) AS event_ts, \
             toUnixTimestamp64Milli(updated_at) AS updated_at \
             FROM traces WHERE project_id = 'late' AND id = 't' ORDER BY updated_at",
        )
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert_eq!(versions[0].event_ts, versions[1].event_ts, "{versions:?}");
    assert!(
        versions[0].updated_at < versions[1].updated_at,
        "{versions:?}"
    );
    assert_eq!(versions[1].user_id.as_deref(), Some("u1"), "{versions:?}");

    for _ in 0..5 {
        let (status, trace) = app.get_json("/api/public/traces/t", &key).await;
        assert_eq!(status, 200, "{trace}");
        assert_eq!(
            (&trace["name"], &trace["userId"], &trace["release"]),
            (&json!("renamed"), &json!("u1"), &json!("r1")),
            "{trace}"
        );
        let (_, list) = app.get_json("/api/public/traces?userId=u1", &key).await;
        assert_eq!(list["data"].as_array().map(Vec::len), Some(1), "{list}");
    }
    ch.query("SYSTEM START MERGES traces")
        .execute()
        .await
        .unwrap();
}

#[tokio::test]
async fn an_observation_without_its_trace_gets_a_wrapper_trace() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "wrap").await;
    let batch = json!({"batch": [envelope("e", "span-create", "2024-05-01T10:00:00Z",
        json!({"id": "lonely", "traceId": "missing-trace", "environment": "staging"}))]});
    assert_eq!(app.post_as(INGESTION, &key, &batch).await.status(), 207);
    assert!(app.wait_for_rows("traces", "wrap", 1).await);
    let (_, _, _, environment) = trace_fields(&app, "wrap", "missing-trace").await;
    assert_eq!(environment, "staging");
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "bad").await;
    let send = |body: Vec<u8>| {
        app.http
            .post(app.url(INGESTION))
            .header(AUTHORIZATION, key.basic_auth())
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (body, status) in [
        (b"{not json".to_vec(), 400),
        (b"{\"batch\": {}}".to_vec(), 400),
        (b"[]".to_vec(), 400),
        (vec![b' '; 5 * 1024 * 1024], 413),
    ] {
        let response = send(body).await.unwrap();
        assert_eq!(response.status(), status);
        let json: Value = response.json().await.unwrap();
        assert!(json["message"].is_string(), "{json}");
    }
    let response = app
        .http
        .post(app.url(INGESTION))
        .json(&json!({"batch": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // An empty batch is fine.
    let response = app.post_as(INGESTION, &key, &json!({"batch": []})).await;
    assert_eq!(response.status(), 207);
}

/// The raw events blob storage holds for one trace, found by reading every stored object.
async fn stored_trace_events(app: &TestApp, project_id: &str, trace_id: &str) -> Vec<Value> {
    langfuse_rs::storage::raw_events::scan_entity(
        &app.stores.blob,
        project_id,
        langfuse_rs::domain::entity::EntityKind::Trace,
        trace_id,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn accepted_events_are_on_disk_before_the_answer() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "durable").await;
    let batch = json!({"batch": [envelope("e", "trace-create", "2024-05-01T10:00:00Z", json!({"id": "t/with/slash"}))]});
    assert_eq!(app.post_as(INGESTION, &key, &batch).await.status(), 207);
    let events = stored_trace_events(&app, "durable", "t/with/slash").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["id"], "e");
    // And a reference is queued (no worker runs in this app).
    let backlog = langfuse_rs::storage::queue::backlog(&app.stores.redis, 8)
        .await
        .unwrap();
    assert_eq!(backlog, 1);
}

#[tokio::test]
async fn when_redis_is_gone_ingestion_fails_and_leaves_no_events_behind() {
    let mut config = TestConfig::new().await;
    let proxy = TcpProxy::start(socket_of(&redis_url())).await;
    config.set(
        "REDIS_CONNECTION_STRING",
        with_socket(&redis_url(), proxy.addr),
    );
    let app = TestApp::spawn(config).await;
    let key = create_project(&app.config, "noredis").await;
    proxy.stop();
    let batch = json!({"batch": [envelope("e", "trace-create", "2024-05-01T10:00:00Z", json!({"id": "t"}))]});
    let response = app.post_as(INGESTION, &key, &batch).await;
    assert_eq!(response.status(), 503);
    let events = stored_trace_events(&app, "noredis", "t").await;
    assert!(
        events.is_empty(),
        "a failed request left {} events",
        events.len()
    );
}

#[tokio::test]
async fn a_backlog_over_its_bound_is_answered_429_with_retry_after() {
    let mut config = TestConfig::new().await;
    config.set("LANGFUSE_RS__INGESTION__MAX_BACKLOG", "0");
    let app = TestApp::spawn(config).await;
    let key = create_project(&app.config, "busy").await;
    let batch = json!({"batch": [envelope("e", "trace-create", "2024-05-01T10:00:00Z", json!({"id": "t"}))]});
    assert_eq!(app.post_as(INGESTION, &key, &batch).await.status(), 207);
    let throttled = crate::helpers::eventually(std::time::Duration::from_secs(5), || async {
        app.post_as(INGESTION, &key, &batch).await.status() == 429
    })
    .await;
    assert!(throttled);
    let response = app.post_as(INGESTION, &key, &batch).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
}

#[tokio::test]
async fn entities_that_keep_failing_become_dead_letters_that_can_be_retried() {
    use langfuse_rs::domain::entity::EntityKind;
    use langfuse_rs::storage::blob::event_keys;
    use langfuse_rs::storage::queue;
    use langfuse_rs::storage::raw_events::Segment;

    let mut config = TestConfig::new().await;
    config.set("LANGFUSE_RS__WORKER__MAX_ATTEMPTS", "2");
    let app = TestApp::spawn_with_worker(config).await;
    // A stored line that does not parse, and a queue message pointing at it.
    let valid = serde_json::to_vec(&json!({"kind": "trace", "id": "t", "events": [envelope(
        "e",
        "trace-create",
        "2024-05-01T10:00:00Z",
        json!({"id": "t", "name": "fixed"})
    )]}))
    .unwrap();
    let mut corrupt = b"{ not json".to_vec();
    corrupt.resize(valid.len(), b' ');
    let received_at = chrono::Utc::now();
    let object = event_keys::request_object(&app.stores.blob.base(), received_at, "dead", "r");
    app.stores
        .blob
        .put_durable(&object, bytes::Bytes::from(corrupt))
        .await
        .unwrap();
    let segment = Segment {
        kind: EntityKind::Trace,
        entity_id: "t".into(),
        trace_id: None,
        offset: 0,
        length: valid.len() as u64,
    };
    let messages = queue::messages_for_object(
        "dead",
        object.as_ref(),
        received_at.timestamp_millis(),
        vec![segment],
        8,
    );
    queue::enqueue(&app.stores.redis, &messages).await.unwrap();

    let listed = crate::helpers::eventually(std::time::Duration::from_secs(20), || async {
        let out = app
            .config
            .command(&["queue", "dead-letters"])
            .output()
            .await
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("\"entity_id\":\"t\"")
    })
    .await;
    assert!(listed, "the failing entity never reached the dead letters");
    let out = app
        .config
        .command(&["queue", "dead-letters"])
        .output()
        .await
        .unwrap();
    let letter: Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert!(
        letter["error"].as_str().unwrap().contains("not valid"),
        "{letter}"
    );
    assert_eq!(letter["attempts"], 2);
    assert_eq!(letter["locations"][0]["object"], object.as_ref());

    // Repair the stored line in place, then retry: the entity lands.
    app.stores
        .blob
        .put_durable(&object, bytes::Bytes::from(valid))
        .await
        .unwrap();
    let out = app
        .config
        .command(&["queue", "retry"])
        .output()
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("re-queued 1"),
        "{out:?}"
    );
    assert!(app.wait_for_rows("traces", "dead", 1).await);
    let out = app
        .config
        .command(&["queue", "dead-letters"])
        .output()
        .await
        .unwrap();
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn gzip_bodies_are_inflated_within_the_limit() {
    let mut config = TestConfig::new().await;
    config.set("LANGFUSE_RS__INGESTION__MAX_BODY_BYTES", "100000");
    let app = TestApp::spawn_with_worker(config).await;
    let key = create_project(&app.config, "gzipped").await;
    let send = |body: Vec<u8>, encoding: &'static str| {
        app.http
            .post(app.url(INGESTION))
            .header(AUTHORIZATION, key.basic_auth())
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(body)
            .send()
    };
    let batch = json!({"batch": [envelope("e", "trace-create", "2024-05-01T10:00:00Z", json!({"id": "t", "name": "zipped"}))]});
    let response = send(gzip(batch.to_string().as_bytes()), "gzip")
        .await
        .unwrap();
    assert_eq!(response.status(), 207);
    assert!(app.wait_for_rows("traces", "gzipped", 1).await);

    // Small on the wire, over the limit once inflated; not gzip at all; an encoding we do not speak.
    let bomb = gzip(&vec![b' '; 200_000]);
    assert!(bomb.len() < 100_000);
    for (body, encoding, status) in [
        (bomb, "gzip", 413),
        (b"not gzip".to_vec(), "gzip", 400),
        (batch.to_string().into_bytes(), "br", 415),
    ] {
        let response = send(body, encoding).await.unwrap();
        assert_eq!(response.status(), status, "{encoding}");
        let json: Value = response.json().await.unwrap();
        assert!(json["message"].is_string(), "{json}");
    }
    assert_eq!(app.count_rows("traces", "gzipped").await, 1);
}
