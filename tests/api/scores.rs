//! One score by id: `GET /api/public/v2/scores/{scoreId}` and `DELETE /api/public/scores/{scoreId}`,
//! and a deleted score staying deleted whatever of it the worker rebuilds later.

use std::time::Duration;

use langfuse_rs::domain::entity::EntityKind;
use langfuse_rs::storage::queue::{self, EntityRef};
use langfuse_rs::worker::ingest::ConsumerSettings;
use reqwest::header::AUTHORIZATION;
use serde_json::{json, Value};

use crate::helpers::{create_project, envelope, eventually, ApiKey, TestApp, TestConfig};

const SHARDS: u32 = 8;

async fn delete(app: &TestApp, key: &ApiKey, score_id: &str) -> (u16, String) {
    let response = app
        .http
        .delete(app.url(&format!("/api/public/scores/{score_id}")))
        .header(AUTHORIZATION, key.basic_auth())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn score(app: &TestApp, key: &ApiKey, score_id: &str) -> (u16, Value) {
    app.get_json(&format!("/api/public/v2/scores/{score_id}"), key)
        .await
}

#[tokio::test]
async fn a_score_is_read_and_deleted_by_id_within_its_project() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "owner").await;
    let other = create_project(&app.config, "stranger").await;
    app.ingest_accepted(&key, &json!({"batch": [
        envelope("1", "score-create", "2024-05-01T10:00:00.000Z",
            json!({"id": "num", "traceId": "t", "name": "quality", "value": 0.5, "comment": "ok"})),
        envelope("2", "score-create", "2024-05-01T10:00:01.000Z",
            json!({"id": "txt", "sessionId": "s", "name": "note", "value": "fine", "dataType": "TEXT"})),
    ]}))
    .await;
    assert!(app.wait_for_rows("scores", "owner", 2).await);

    let (status, numeric) = score(&app, &key, "num").await;
    assert_eq!(status, 200, "{numeric}");
    for (field, value) in [
        ("id", json!("num")),
        ("projectId", json!("owner")),
        ("traceId", json!("t")),
        ("sessionId", Value::Null),
        ("observationId", Value::Null),
        ("datasetRunId", Value::Null),
        ("name", json!("quality")),
        ("value", json!(0.5)),
        ("stringValue", Value::Null),
        ("dataType", json!("NUMERIC")),
        ("source", json!("API")),
        ("comment", json!("ok")),
        ("authorUserId", Value::Null),
        ("environment", json!("default")),
    ] {
        assert_eq!(numeric.get(field), Some(&value), "{field} of {numeric}");
    }
    // Like the v2 list's items, without the trace the list joins.
    assert_eq!(numeric.get("trace"), None);
    let (_, text) = score(&app, &key, "txt").await;
    assert_eq!(text["stringValue"], "fine");
    assert_eq!(text.get("value"), None, "a text score has no value: {text}");

    // Unknown, and another project's: 404 both, to read and to delete.
    let (status, body) = score(&app, &key, "missing").await;
    assert_eq!((status, &body["message"]), (404, &json!("Score not found")));
    assert_eq!(score(&app, &other, "num").await.0, 404);
    assert_eq!(delete(&app, &key, "missing").await.0, 404);
    assert_eq!(delete(&app, &other, "num").await.0, 404);
    assert_eq!(score(&app, &key, "num").await.0, 200);

    assert_eq!(delete(&app, &key, "num").await, (204, String::new()));
    assert_eq!(score(&app, &key, "num").await.0, 404);
    assert_eq!(delete(&app, &key, "num").await.0, 404);
    let (_, list) = app.get_json("/api/public/v2/scores", &key).await;
    assert_eq!(list["meta"]["totalItems"], 1, "{list}");
    assert_eq!(score(&app, &key, "txt").await.0, 200);
}

/// The project's score rows, and the raw events of the score left in blob storage.
async fn remains(app: &TestApp, project: &str, score_id: &str) -> (u64, usize) {
    let rows = app.count_rows("scores", project).await;
    let events = langfuse_rs::storage::raw_events::scan_entity(
        &app.stores.blob,
        project,
        EntityKind::Score,
        score_id,
    )
    .await
    .unwrap()
    .len();
    (rows, events)
}

#[tokio::test]
async fn a_deleted_score_stays_deleted_when_a_late_update_and_a_rebuild_reach_the_worker() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "late").await;
    let settings = ConsumerSettings {
        shards: SHARDS,
        flush_rows: 1000,
        flush_interval: Duration::from_millis(100),
        max_attempts: 3,
        lease_ttl: Duration::from_secs(3),
        recovery_window: Duration::from_secs(3600),
    };
    let start_worker = || {
        let stop = tokio_util::sync::CancellationToken::new();
        let worker = tokio::spawn(langfuse_rs::worker::ingest::run(
            app.stores.clone(),
            settings.clone(),
            stop.clone(),
        ));
        (stop, worker)
    };
    let drained = || async {
        eventually(Duration::from_secs(20), || async {
            queue::backlog(&app.stores.redis, SHARDS).await.unwrap() == 0
        })
        .await
    };

    // The score is created through the API and lands.
    let (stop, worker) = start_worker();
    let response = app
        .post_as(
            "/api/public/scores",
            &key,
            &json!({"id": "sc", "traceId": "t", "name": "quality", "value": 0.5, "comment": "first"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let landed = eventually(Duration::from_secs(20), || async {
        score(&app, &key, "sc").await.0 == 200
    })
    .await;
    assert!(landed);
    stop.cancel();
    worker.await.unwrap().unwrap();

    // An update is accepted while no worker runs: it reaches one only after the deletion.
    app.ingest_accepted(
        &key,
        &json!({"batch": [envelope("late", "score-create", "2024-05-01T10:00:05.000Z",
        json!({"id": "sc", "traceId": "t", "name": "quality", "value": 0.9, "comment": "late"}))]}),
    )
    .await;
    assert_eq!(delete(&app, &key, "sc").await.0, 204);
    assert_eq!(score(&app, &key, "sc").await.0, 404);

    // The worker merges the late update with everything the score had: all of it was received
    // before the deletion, so nothing comes back, and its raw events are overwritten.
    let (stop, worker) = start_worker();
    assert!(drained().await);
    let gone = eventually(Duration::from_secs(20), || async {
        remains(&app, "late", "sc").await == (0, 0)
    })
    .await;
    assert!(gone, "left: {:?}", remains(&app, "late", "sc").await);

    // Its trace arrives and the score is rebuilt again: still nothing.
    app.ingest_accepted(
        &key,
        &json!({"batch": [envelope("trace", "trace-create", "2024-05-01T10:00:06.000Z",
        json!({"id": "t", "name": "the trace"}))]}),
    )
    .await;
    let rebuild = EntityRef {
        project_id: "late".to_string(),
        kind: EntityKind::Score,
        entity_id: "sc".to_string(),
    };
    queue::enqueue(
        &app.stores.redis,
        &queue::rebuild_messages(&[rebuild], SHARDS),
    )
    .await
    .unwrap();
    assert!(app.wait_for_rows("traces", "late", 1).await);
    assert!(app.wait_until_written().await);
    assert!(drained().await);
    assert_eq!(score(&app, &key, "sc").await.0, 404);
    let (_, trace) = app.get_json("/api/public/traces/t", &key).await;
    assert_eq!(trace["scores"], json!([]), "{trace}");
    assert_eq!(remains(&app, "late", "sc").await, (0, 0));

    // A score sent after the deletion is a new one, as in Langfuse (and as a trace sent again
    // after its deletion): nothing of the deleted one is in it.
    app.ingest_accepted(
        &key,
        &json!({"batch": [envelope("new", "score-create", "2024-05-01T10:00:07.000Z",
        json!({"id": "sc", "traceId": "t", "name": "quality", "value": 0.1}))]}),
    )
    .await;
    let reborn = eventually(Duration::from_secs(20), || async {
        score(&app, &key, "sc").await.1["value"] == json!(0.1)
    })
    .await;
    assert!(reborn);
    assert_eq!(score(&app, &key, "sc").await.1["comment"], Value::Null);
    stop.cancel();
    worker.await.unwrap().unwrap();
}
