//! The read API over what the pipeline stored: shapes, filters, project scoping.

use reqwest::header::AUTHORIZATION;
use serde_json::{json, Value};

use crate::helpers::{create_project, envelope, ApiKey, TestApp, TestConfig, INGESTION};

async fn seeded_app() -> (TestApp, ApiKey) {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "reader").await;
    let batch = json!({"batch": [
        envelope("1", "trace-create", "2024-05-01T10:00:00.000Z", json!({"id": "t1", "name": "chat", "userId": "alice",
            "sessionId": "s1", "tags": ["prod", "vip"], "input": {"question": "hi"}, "output": "hello", "metadata": {"n": 1}})),
        envelope("2", "trace-create", "2024-05-02T10:00:00.000Z", json!({"id": "t2", "name": "search", "userId": "bob", "tags": ["prod"]})),
        envelope("3", "span-create", "2024-05-01T10:00:00.000Z", json!({"id": "s-1", "traceId": "t1", "name": "retrieve",
            "startTime": "2024-05-01T10:00:00.000Z", "endTime": "2024-05-01T10:00:01.500Z"})),
        envelope("4", "generation-create", "2024-05-01T10:00:01.000Z", json!({"id": "g-1", "traceId": "t1", "parentObservationId": "s-1",
            "name": "llm", "model": "gpt-4o", "startTime": "2024-05-01T10:00:01.000Z", "endTime": "2024-05-01T10:00:03.000Z",
            "completionStartTime": "2024-05-01T10:00:01.250Z", "modelParameters": {"temperature": 0.2},
            "usage": {"input": 100, "output": 50}, "costDetails": {"input": 0.01, "output": 0.02}})),
        envelope("5", "score-create", "2024-05-01T10:00:04.000Z", json!({"id": "sc-1", "traceId": "t1", "name": "quality", "value": 0.75})),
        envelope("6", "score-create", "2024-05-01T10:00:04.000Z", json!({"id": "sc-2", "traceId": "t1", "name": "verdict", "value": "good"})),
    ]});
    let response = app.post_as(INGESTION, &key, &batch).await;
    assert_eq!(response.status(), 207);
    assert!(app.wait_for_rows("observations", "reader", 2).await);
    assert!(app.wait_for_rows("traces", "reader", 2).await);
    assert!(app.wait_for_rows("scores", "reader", 2).await);
    assert!(app.wait_until_written().await);
    (app, key)
}

#[tokio::test]
async fn a_trace_comes_back_with_its_observations_and_scores() {
    let (app, key) = seeded_app().await;
    let (status, trace) = app.get_json("/api/public/traces/t1", &key).await;
    assert_eq!(status, 200, "{trace}");
    assert_eq!(trace["id"], "t1");
    assert_eq!(trace["name"], "chat");
    assert_eq!(trace["userId"], "alice");
    assert_eq!(trace["sessionId"], "s1");
    assert_eq!(trace["input"], json!({"question": "hi"}));
    assert_eq!(trace["output"], "hello");
    assert_eq!(trace["metadata"], json!({"n": 1}));
    assert_eq!(trace["tags"], json!(["prod", "vip"]));
    assert_eq!(trace["timestamp"], "2024-05-01T10:00:00.000Z");
    assert_eq!(trace["environment"], "default");
    assert_eq!(trace["htmlPath"], "/project/reader/traces/t1");
    assert_eq!(trace["latency"], 3.0);
    assert!((trace["totalCost"].as_f64().unwrap() - 0.03).abs() < 1e-9);

    let observations = trace["observations"].as_array().unwrap();
    assert_eq!(observations.len(), 2);
    let generation = observations.iter().find(|o| o["id"] == "g-1").unwrap();
    assert_eq!(generation["type"], "GENERATION");
    assert_eq!(generation["parentObservationId"], "s-1");
    assert_eq!(generation["model"], "gpt-4o");
    assert_eq!(generation["modelParameters"], json!({"temperature": 0.2}));
    assert_eq!(generation["usage"]["input"], 100);
    assert_eq!(generation["usage"]["total"], 150);
    assert_eq!(
        generation["usageDetails"],
        json!({"input": 100, "output": 50, "total": 150})
    );
    assert_eq!(generation["latency"], 2.0);
    assert_eq!(generation["timeToFirstToken"], 0.25);
    assert_eq!(generation["level"], "DEFAULT");

    let scores = trace["scores"].as_array().unwrap();
    assert_eq!(scores.len(), 2);
    let quality = scores.iter().find(|s| s["name"] == "quality").unwrap();
    assert_eq!(
        (quality["value"].as_f64(), quality["dataType"].as_str()),
        (Some(0.75), Some("NUMERIC"))
    );
    let verdict = scores.iter().find(|s| s["name"] == "verdict").unwrap();
    assert_eq!(verdict["stringValue"], "good");
    assert_eq!(verdict["dataType"], "CATEGORICAL");

    let (status, observation) = app.get_json("/api/public/observations/g-1", &key).await;
    assert_eq!(status, 200);
    assert_eq!(observation["traceId"], "t1");
    assert_eq!(observation["startTime"], "2024-05-01T10:00:01.000Z");
}

#[tokio::test]
async fn unknown_ids_and_other_projects_get_404() {
    let (app, key) = seeded_app().await;
    let other = create_project(&app.config, "other").await;
    for (key, path) in [
        (&key, "/api/public/traces/nope"),
        (&key, "/api/public/observations/nope"),
        (&other, "/api/public/traces/t1"),
        (&other, "/api/public/observations/g-1"),
    ] {
        let (status, body) = app.get_json(path, key).await;
        assert_eq!(status, 404, "{path}");
        assert!(
            body["message"].as_str().unwrap().contains("not found"),
            "{body}"
        );
    }
    let (_, list) = app.get_json("/api/public/traces", &other).await;
    assert_eq!(list["data"], json!([]));
    assert_eq!(list["meta"]["totalItems"], 0);
}

#[tokio::test]
async fn trace_lists_filter_order_and_page() {
    let (app, key) = seeded_app().await;
    let ids = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, all) = app.get_json("/api/public/traces", &key).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&all), ["t2", "t1"], "newest first by default");
    assert_eq!(
        all["meta"],
        json!({"page": 1, "limit": 50, "totalItems": 2, "totalPages": 1})
    );

    for (query, expected) in [
        ("userId=alice", vec!["t1"]),
        ("name=search", vec!["t2"]),
        ("sessionId=s1", vec!["t1"]),
        ("tags=prod", vec!["t2", "t1"]),
        ("tags=prod&tags=vip", vec!["t1"]),
        ("fromTimestamp=2024-05-02T00:00:00Z", vec!["t2"]),
        ("toTimestamp=2024-05-02T00:00:00Z", vec!["t1"]),
        ("orderBy=timestamp.asc", vec!["t1", "t2"]),
        ("environment=default", vec!["t2", "t1"]),
        ("environment=production", vec![]),
        ("limit=1&page=2", vec!["t1"]),
    ] {
        let (status, body) = app
            .get_json(&format!("/api/public/traces?{query}"), &key)
            .await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(ids(&body), expected, "{query}");
    }
    let (_, paged) = app.get_json("/api/public/traces?limit=1", &key).await;
    assert_eq!(paged["meta"]["totalPages"], 2);

    for query in [
        "limit=0",
        "limit=abc",
        "orderBy=secret.asc",
        "fromTimestamp=yesterday",
        "limit=1000",
    ] {
        let (status, body) = app
            .get_json(&format!("/api/public/traces?{query}"), &key)
            .await;
        assert_eq!(status, 400, "{query}");
        assert!(body["message"].is_string());
    }
}

#[tokio::test]
async fn observation_lists_filter_by_trace_and_type() {
    let (app, key) = seeded_app().await;
    let (status, body) = app
        .get_json("/api/public/observations?traceId=t1&type=GENERATION", &key)
        .await;
    assert_eq!(status, 200, "{body}");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["id"], "g-1");
    assert_eq!(body["meta"]["totalItems"], 1);
    let (_, body) = app
        .get_json("/api/public/observations?traceId=t1", &key)
        .await;
    assert_eq!(body["meta"]["totalItems"], 2);
}

#[tokio::test]
async fn deleted_traces_are_gone_with_their_observations_scores_and_raw_events() {
    use langfuse_rs::domain::entity::EntityKind;

    let (app, key) = seeded_app().await;
    let other = create_project(&app.config, "other").await;
    let delete = |key: &ApiKey, path: &'static str| {
        let request = app
            .http
            .delete(app.url(path))
            .header(AUTHORIZATION, key.basic_auth());
        async move { request.send().await.unwrap() }
    };
    // Another project cannot delete it.
    assert_eq!(delete(&other, "/api/public/traces/t1").await.status(), 404);

    let response = delete(&key, "/api/public/traces/t1").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "Trace deleted successfully");
    assert_eq!(app.get_json("/api/public/traces/t1", &key).await.0, 404);
    assert_eq!(
        app.get_json("/api/public/observations/g-1", &key).await.0,
        404
    );
    let (_, observations) = app
        .get_json("/api/public/observations?traceId=t1", &key)
        .await;
    assert_eq!(observations["meta"]["totalItems"], 0);
    assert_eq!(app.count_rows("scores", "reader").await, 0);
    for (kind, id) in [
        (EntityKind::Trace, "t1"),
        (EntityKind::Observation, "g-1"),
        (EntityKind::Score, "sc-1"),
    ] {
        let gone = crate::helpers::eventually(std::time::Duration::from_secs(20), || async {
            langfuse_rs::storage::raw_events::scan_entity(&app.stores.blob, "reader", kind, id)
                .await
                .unwrap()
                .is_empty()
        })
        .await;
        assert!(gone, "raw events of {id} remain");
    }
    // The other trace is untouched; then it goes in a bulk delete.
    assert_eq!(app.get_json("/api/public/traces/t2", &key).await.0, 200);
    let response = app
        .http
        .delete(app.url("/api/public/traces"))
        .header(AUTHORIZATION, key.basic_auth())
        .json(&json!({"traceIds": ["t2"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.get_json("/api/public/traces/t2", &key).await.0, 404);
    assert_eq!(delete(&key, "/api/public/traces/t1").await.status(), 404);
}

#[tokio::test]
async fn lists_filter_on_the_newest_version_of_each_row() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "stale").await;
    let post = |batch: Value| {
        let request = app
            .http
            .post(app.url(INGESTION))
            .header(AUTHORIZATION, key.basic_auth())
            .json(&json!({ "batch": batch }));
        async move { assert_eq!(request.send().await.unwrap().status(), 207) }
    };
    let observation_trace =
        || async { app.get_json("/api/public/observations/o", &key).await.1["traceId"].clone() };
    // An update arrives first and is written alone: a version under trace A, on May 2nd.
    post(json!([envelope(
        "u",
        "span-update",
        "2024-05-02T10:00:00Z",
        json!({"id": "o", "traceId": "A", "startTime": "2024-05-02T10:00:00Z"})
    )]))
    .await;
    let first = crate::helpers::eventually(std::time::Duration::from_secs(20), || async {
        observation_trace().await == "A"
    })
    .await;
    assert!(first);
    // Its create, earlier, fixes the trace and the start time: a newer version under trace B, on
    // May 1st, in another part of the table's sort order, so ClickHouse never merges the two.
    post(json!([envelope(
        "c",
        "span-create",
        "2024-05-01T10:00:00Z",
        json!({"id": "o", "traceId": "B", "startTime": "2024-05-01T10:00:00Z", "name": "step"})
    )]))
    .await;
    let second = crate::helpers::eventually(std::time::Duration::from_secs(20), || async {
        observation_trace().await == "B"
    })
    .await;
    assert!(second);
    assert!(app.wait_until_written().await);
    assert!(app.count_rows("observations", "stale").await >= 1);

    let ids = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, under_a) = app
        .get_json("/api/public/observations?traceId=A", &key)
        .await;
    assert_eq!(ids(&under_a), Vec::<String>::new(), "{under_a}");
    let (_, under_b) = app
        .get_json("/api/public/observations?traceId=B", &key)
        .await;
    assert_eq!(ids(&under_b), vec!["o"]);
    let (_, late) = app
        .get_json(
            "/api/public/observations?fromStartTime=2024-05-02T00:00:00Z",
            &key,
        )
        .await;
    assert_eq!(ids(&late), Vec::<String>::new(), "{late}");
    let (status, trace_a) = app.get_json("/api/public/traces/A", &key).await;
    if status == 200 {
        assert_eq!(trace_a["observations"], json!([]), "{trace_a}");
    }
    let (_, trace_b) = app.get_json("/api/public/traces/B", &key).await;
    assert_eq!(trace_b["observations"][0]["id"], "o", "{trace_b}");
}

/// Everything stored for one project: rows (merged or not) and raw events of the given entities.
async fn remains(
    app: &TestApp,
    project: &str,
    entities: &[(langfuse_rs::domain::entity::EntityKind, &str)],
) -> (u64, usize) {
    let mut rows = 0;
    for table in ["traces", "observations", "scores"] {
        rows += app
            .stores
            .clickhouse
            .query(&format!("SELECT count() FROM {table} WHERE project_id = ?"))
            .bind(project)
            .fetch_one::<u64>()
            .await
            .unwrap();
    }
    let mut events = 0;
    for (kind, id) in entities {
        events +=
            langfuse_rs::storage::raw_events::scan_entity(&app.stores.blob, project, *kind, id)
                .await
                .unwrap()
                .len();
    }
    (rows, events)
}

#[tokio::test]
async fn a_child_still_queued_when_its_trace_is_deleted_does_not_bring_it_back() {
    use langfuse_rs::domain::entity::EntityKind;
    use langfuse_rs::worker::ingest::ConsumerSettings;

    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "racer").await;
    let settings = ConsumerSettings {
        shards: 8,
        flush_rows: 1000,
        flush_interval: std::time::Duration::from_millis(100),
        max_attempts: 3,
        lease_ttl: std::time::Duration::from_secs(3),
        recovery_window: std::time::Duration::from_secs(3600),
    };
    let start_worker = || {
        let stores = app.stores.clone();
        let settings = settings.clone();
        let stop = tokio_util::sync::CancellationToken::new();
        let handle = tokio::spawn(langfuse_rs::worker::ingest::run(
            stores,
            settings,
            stop.clone(),
        ));
        (stop, handle)
    };
    let post = |batch: Value| {
        let request = app
            .http
            .post(app.url(INGESTION))
            .header(AUTHORIZATION, key.basic_auth())
            .json(&json!({ "batch": batch }));
        async move { assert_eq!(request.send().await.unwrap().status(), 207) }
    };

    // The trace and a first child land.
    let (stop, worker) = start_worker();
    post(json!([
        envelope(
            "e1",
            "trace-create",
            "2024-05-01T10:00:00Z",
            json!({"id": "t", "name": "doomed"})
        ),
        envelope(
            "e2",
            "span-create",
            "2024-05-01T10:00:01Z",
            json!({"id": "landed", "traceId": "t"})
        ),
    ]))
    .await;
    assert!(app.wait_for_rows("observations", "racer", 1).await);
    stop.cancel();
    worker.await.unwrap().unwrap();

    // A second child is accepted while no worker runs: it is in the queue only, unknown to the
    // index and to ClickHouse's tables when the trace is deleted.
    post(json!([envelope(
        "e3",
        "generation-create",
        "2024-05-01T10:00:02Z",
        json!({"id": "queued", "traceId": "t", "model": "m"})
    )]))
    .await;
    post(json!([envelope(
        "e4",
        "score-create",
        "2024-05-01T10:00:03Z",
        json!({"id": "sc", "traceId": "t", "name": "q", "value": 1})
    )]))
    .await;
    let response = app
        .http
        .delete(app.url("/api/public/traces/t"))
        .header(AUTHORIZATION, key.basic_auth())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // The worker comes back and processes the queued children after the deletion: neither they
    // nor a wrapper trace for them may appear, and every raw event is gone.
    let (stop, worker) = start_worker();
    let entities = [
        (EntityKind::Trace, "t"),
        (EntityKind::Observation, "landed"),
        (EntityKind::Observation, "queued"),
        (EntityKind::Score, "sc"),
    ];
    let drained = crate::helpers::eventually(std::time::Duration::from_secs(20), || async {
        langfuse_rs::storage::queue::backlog(&app.stores.redis, 8)
            .await
            .unwrap()
            == 0
            && remains(&app, "racer", &entities).await == (0, 0)
    })
    .await;
    assert!(
        drained,
        "rows and raw events left: {:?}",
        remains(&app, "racer", &entities).await
    );
    assert_eq!(app.get_json("/api/public/traces/t", &key).await.0, 404);

    // Events sent after the deletion make a new trace, as in Langfuse.
    post(json!([envelope(
        "e5",
        "trace-create",
        "2024-05-01T11:00:00Z",
        json!({"id": "t", "name": "reborn"})
    )]))
    .await;
    let reborn = crate::helpers::eventually(std::time::Duration::from_secs(20), || async {
        app.get_json("/api/public/traces/t", &key).await.1["name"] == "reborn"
    })
    .await;
    assert!(reborn);
    stop.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn sessions_group_traces_by_session_id() {
    let (app, key) = seeded_app().await;
    let (status, list) = app.get_json("/api/public/sessions", &key).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list["data"],
        json!([{"id": "s1", "createdAt": "2024-05-01T10:00:00.000Z", "projectId": "reader", "environment": "default"}])
    );
    assert_eq!(list["meta"]["totalItems"], 1);
    let (_, later) = app
        .get_json(
            "/api/public/sessions?fromTimestamp=2024-05-02T00:00:00Z",
            &key,
        )
        .await;
    assert_eq!(later["data"], json!([]));

    let (status, session) = app.get_json("/api/public/sessions/s1", &key).await;
    assert_eq!(status, 200);
    assert_eq!(session["id"], "s1");
    let traces = session["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0]["id"], "t1");
    assert_eq!(app.get_json("/api/public/sessions/nope", &key).await.0, 404);
}

#[tokio::test]
async fn scores_list_with_filters_and_their_trace() {
    let (app, key) = seeded_app().await;
    let names = |body: &Value| -> Vec<String> {
        let mut n: Vec<String> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    let (status, all) = app.get_json("/api/public/v2/scores", &key).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(names(&all), ["quality", "verdict"]);
    assert_eq!(all["meta"]["totalItems"], 2);
    let quality = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "quality")
        .unwrap();
    assert_eq!(quality["trace"]["userId"], "alice");
    assert_eq!(quality["trace"]["tags"], json!(["prod", "vip"]));
    for (query, expected) in [
        ("name=quality", vec!["quality"]),
        ("dataType=CATEGORICAL", vec!["verdict"]),
        ("operator=>=&value=0.5", vec!["quality"]),
        ("userId=alice", vec!["quality", "verdict"]),
        ("userId=bob", vec![]),
        ("traceTags=vip", vec!["quality", "verdict"]),
        ("scoreIds=sc-2", vec!["verdict"]),
        ("traceId=t2", vec![]),
    ] {
        let (status, body) = app
            .get_json(&format!("/api/public/v2/scores?{query}"), &key)
            .await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(names(&body), expected, "{query}");
    }
    assert_eq!(
        app.get_json("/api/public/v2/scores?operator=~&value=1", &key)
            .await
            .0,
        400
    );
    assert_eq!(
        app.get_json("/api/public/v2/scores?operator=%3E", &key)
            .await
            .0,
        400
    );
}
