use std::time::Duration;

use reqwest::header::AUTHORIZATION;
use serde_json::{json, Value};

use crate::helpers::{create_project, eventually, TestApp, TestConfig};

#[tokio::test]
async fn a_valid_key_resolves_to_its_project_in_langfuse_shape() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "proj-a").await;

    let response = app.get_as("/api/public/projects", &key).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "data": [{
                "id": "proj-a",
                "name": "Project proj-a",
                "organization": { "id": "org-proj-a", "name": "Org of proj-a" },
                "metadata": {}
            }]
        })
    );
}

#[tokio::test]
async fn each_key_sees_only_its_own_project() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key_a = create_project(&app.config, "proj-a").await;
    let key_b = create_project(&app.config, "proj-b").await;
    for (key, id) in [(&key_a, "proj-a"), (&key_b, "proj-b")] {
        let body: Value = app
            .get_as("/api/public/projects", key)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(body["data"].as_array().unwrap().len(), 1);
        assert_eq!(body["data"][0]["id"], id);
    }
    // One project's public key with the other's secret is refused.
    assert_eq!(
        app.get_as("/api/public/projects", &key_a.with_secret(&key_b.secret))
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn wrong_or_missing_credentials_get_401_with_a_json_message() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "proj-a").await;

    let cases = vec![
        app.get("/api/public/projects").await,
        app.get_as("/api/public/projects", &key.with_secret("sk-lf-wrong"))
            .await,
        app.get_as("/api/public/projects", &key.with_public("pk-lf-unknown"))
            .await,
        app.http
            .get(app.url("/api/public/projects"))
            .header("Authorization", "Bearer something")
            .send()
            .await
            .unwrap(),
        app.http
            .get(app.url("/api/public/projects"))
            .header("Authorization", "Basic not-base64!")
            .send()
            .await
            .unwrap(),
    ];
    for response in cases {
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        let message = body["message"].as_str().expect("a message");
        assert!(!message.is_empty());
    }
    // A wrong secret after a correct one (the key is now cached) is still refused.
    assert_eq!(app.get_as("/api/public/projects", &key).await.status(), 200);
    assert_eq!(
        app.get_as("/api/public/projects", &key.with_secret("sk-lf-x"))
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn a_deleted_project_s_keys_stop_working() {
    let mut config = TestConfig::new().await;
    // No caching, so the deletion is seen on the next request.
    config.set("LANGFUSE_RS__AUTH__KEY_CACHE_TTL_SECS", "0");
    let app = TestApp::spawn(config).await;
    let key = create_project(&app.config, "proj-a").await;
    assert_eq!(app.get_as("/api/public/projects", &key).await.status(), 200);

    let client = app.stores.postgres.get().await.unwrap();
    client
        .execute(
            "UPDATE projects SET deleted_at = now() WHERE id = 'proj-a'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(app.get_as("/api/public/projects", &key).await.status(), 401);
}

#[tokio::test]
async fn a_cached_key_in_use_is_renewed_in_the_background_before_it_expires() {
    let mut config = TestConfig::new().await;
    config.set("LANGFUSE_RS__AUTH__KEY_CACHE_TTL_SECS", "10");
    let app = TestApp::spawn(config).await;
    let key = create_project(&app.config, "proj-renew").await;
    let status = || async { app.get_as("/api/public/projects", &key).await.status() };
    assert_eq!(status().await, 200);
    let started = std::time::Instant::now();

    let client = app.stores.postgres.get().await.unwrap();
    client
        .execute("DELETE FROM api_keys WHERE public_key = $1", &[&key.public])
        .await
        .unwrap();
    // Fresh: answered from the cache, without asking the database.
    assert_eq!(status().await, 200);
    // Past half its age the entry is still used, and its renewal starts; once that has seen the
    // deletion the key stops working, well before the entry's ten seconds are up.
    tokio::time::sleep(Duration::from_millis(5_200)).await;
    assert_eq!(status().await, 200);
    assert!(
        eventually(Duration::from_secs(2), || async { status().await == 401 }).await,
        "the renewal saw the deletion"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "before the entry expired"
    );
}

#[tokio::test]
async fn secrets_are_stored_only_as_salted_hashes() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "proj-a").await;
    let client = app.stores.postgres.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT row_to_json(k)::text FROM api_keys k WHERE public_key = $1",
            &[&key.public],
        )
        .await
        .unwrap();
    let stored: String = row.get(0);
    assert!(
        !stored.contains(&key.secret),
        "the plain secret is in the row: {stored}"
    );
    let hash: String = client
        .query_one(
            "SELECT fast_hashed_secret_key FROM api_keys WHERE public_key = $1",
            &[&key.public],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        hash,
        langfuse_rs::domain::api_key::hash_secret(crate::helpers::SALT, &key.secret)
    );
}

#[tokio::test]
async fn unknown_routes_answer_404_json() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let response = app.get("/api/public/nope").await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].is_string());
}

#[tokio::test]
async fn a_known_path_with_another_method_answers_405_json() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let client = reqwest::Client::new();
    for (method, path) in [
        (reqwest::Method::GET, "/api/public/ingestion"),
        (reqwest::Method::PUT, "/api/public/traces/some-trace"),
        (reqwest::Method::POST, "/api/public/v2/scores"),
        (reqwest::Method::PUT, "/api/public/v2/prompts/some-prompt"),
    ] {
        let response = client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["message"], "Method not allowed", "{method} {path}");
        assert_eq!(body["error"], "MethodNotAllowedError");
    }
    // The methods a path has still answer.
    assert_eq!(app.get("/api/public/traces/some-trace").await.status(), 401);
}

#[tokio::test]
async fn browsers_may_call_the_api_from_any_origin() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let client = reqwest::Client::new();
    let origin = "https://app.example.com";
    // The preflight needs no keys.
    let preflight = client
        .request(reqwest::Method::OPTIONS, app.url("/api/public/ingestion"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type,x-langfuse-sdk-name",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let header = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_ascii_lowercase())
            .unwrap_or_default()
    };
    assert_eq!(header(&preflight, "access-control-allow-origin"), origin);
    assert!(header(&preflight, "access-control-allow-methods").contains("post"));
    for name in ["authorization", "content-type", "x-langfuse-sdk-name"] {
        assert!(
            header(&preflight, "access-control-allow-headers").contains(name),
            "{name}"
        );
    }
    assert!(header(&preflight, "access-control-allow-credentials").is_empty());

    // The answers themselves carry the origin, errors included.
    let key = create_project(&app.config, "proj-cors").await;
    let answer = client
        .get(app.url("/api/public/projects"))
        .header(AUTHORIZATION, key.basic_auth())
        .header("Origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(header(&answer, "access-control-allow-origin"), origin);
    let refused = client
        .get(app.url("/api/public/projects"))
        .header("Origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(header(&refused, "access-control-allow-origin"), origin);
}

/// `Authorization: Bearer <public key>`, as Langfuse's browser SDK sends it.
fn bearer(public_key: &str) -> String {
    format!("Bearer {public_key}")
}

#[tokio::test]
async fn a_public_key_alone_writes_scores_and_nothing_else() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "browser").await;
    let post = |path: &str, authorization: String, body: Value| {
        app.http
            .post(app.url(path))
            .header(AUTHORIZATION, authorization)
            .json(&body)
            .send()
    };
    let at = "2024-05-01T10:00:00.000Z";
    let batch = json!({"batch": [
        {"id": "e-score", "type": "score-create", "timestamp": at,
            "body": {"id": "s-1", "traceId": "t", "name": "feedback", "value": 1}},
        {"id": "e-trace", "type": "trace-create", "timestamp": at, "body": {"id": "t"}},
        {"id": "e-span", "type": "span-create", "timestamp": at, "body": {"id": "o", "traceId": "t"}},
        {"id": "e-log", "type": "sdk-log", "timestamp": at, "body": {"log": "hello"}},
    ]});
    let response = post("/api/public/ingestion", bearer(&key.public), batch.clone())
        .await
        .unwrap();
    assert_eq!(response.status(), 207);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({
            "successes": [{"id": "e-score", "status": 201}, {"id": "e-log", "status": 201}],
            "errors": [
                {"id": "e-trace", "status": 401, "message": "Authentication error", "error": "Access Scope Denied"},
                {"id": "e-span", "status": 401, "message": "Authentication error", "error": "Access Scope Denied"},
            ],
        })
    );
    let response = post(
        "/api/public/scores",
        bearer(&key.public),
        json!({"id": "s-2", "traceId": "t", "name": "feedback", "value": 0}),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);

    // Reads and other writes are the key pair's: 403 for a known public key, as in Langfuse.
    let response = app
        .http
        .get(app.url("/api/public/traces"))
        .header(AUTHORIZATION, bearer(&key.public))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"message": "Access denied - insufficient permissions for this endpoint", "error": "ForbiddenError"})
    );
    let response = app
        .http
        .delete(app.url("/api/public/scores/s-1"))
        .header(AUTHORIZATION, bearer(&key.public))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // An unknown public key is refused everywhere.
    let response = post("/api/public/ingestion", bearer("pk-lf-unknown"), batch)
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    assert!(app.wait_for_rows("scores", "browser", 2).await);
    let (status, score) = app.get_json("/api/public/v2/scores/s-1", &key).await;
    assert_eq!((status, &score["name"]), (200, &json!("feedback")));
    assert_eq!(app.count_rows("traces", "browser").await, 0);
    assert_eq!(app.count_rows("observations", "browser").await, 0);
}
