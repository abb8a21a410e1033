use std::time::Duration;

use serde_json::Value;

use crate::helpers::{
    admin_database_url, clickhouse_url, create_bucket, redis_url, s3_endpoint, socket_of, unique,
    with_socket, TcpProxy, TestApp, TestConfig,
};

#[tokio::test]
async fn health_answers_ok_with_the_version() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let response = app.get("/api/public/health").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "OK");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn ready_answers_200_when_every_store_answers() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let response = app.get("/api/public/ready").await;
    assert_eq!(response.status(), 200);
}

/// Starts the application with `store` reached through a proxy, stops the proxy, and checks that
/// readiness names that store.
async fn ready_names_the_stopped_store(store: &str) {
    let mut config = TestConfig::new().await;
    let proxy;
    match store {
        "postgres" => {
            proxy = TcpProxy::start(socket_of(&admin_database_url())).await;
            let url = with_socket(&config.env["DATABASE_URL"], proxy.addr);
            config.set("DATABASE_URL", url);
        }
        "redis" => {
            proxy = TcpProxy::start(socket_of(&redis_url())).await;
            config.set(
                "REDIS_CONNECTION_STRING",
                with_socket(&redis_url(), proxy.addr),
            );
        }
        "clickhouse" => {
            proxy = TcpProxy::start(socket_of(&clickhouse_url())).await;
            config.set("CLICKHOUSE_URL", with_socket(&clickhouse_url(), proxy.addr));
        }
        "blob_storage" => {
            let bucket = unique("lfrs-ready").replace('_', "-");
            create_bucket(&bucket).await;
            proxy = TcpProxy::start(socket_of(&s3_endpoint())).await;
            config
                .set("LANGFUSE_S3_EVENT_UPLOAD_BUCKET", bucket)
                .set(
                    "LANGFUSE_S3_EVENT_UPLOAD_ENDPOINT",
                    with_socket(&s3_endpoint(), proxy.addr),
                )
                .set("LANGFUSE_S3_EVENT_UPLOAD_ACCESS_KEY_ID", "test")
                .set("LANGFUSE_S3_EVENT_UPLOAD_SECRET_ACCESS_KEY", "test")
                .set("LANGFUSE_S3_EVENT_UPLOAD_FORCE_PATH_STYLE", "true");
        }
        other => panic!("unknown store {other}"),
    }
    let app = TestApp::spawn(config).await;
    assert_eq!(
        app.get("/api/public/ready").await.status(),
        200,
        "{store} up"
    );

    proxy.stop();
    let response = app.get("/api/public/ready").await;
    assert_eq!(response.status(), 503, "{store} down");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["failed"], store, "{body}");
    assert!(body["message"].as_str().unwrap().contains(store), "{body}");
    // Liveness does not depend on the stores.
    assert_eq!(app.get("/api/public/health").await.status(), 200);
}

#[tokio::test]
async fn ready_answers_503_naming_postgres_when_it_is_gone() {
    ready_names_the_stopped_store("postgres").await;
}

#[tokio::test]
async fn ready_answers_503_naming_redis_when_it_is_gone() {
    ready_names_the_stopped_store("redis").await;
}

#[tokio::test]
async fn ready_answers_503_naming_clickhouse_when_it_is_gone() {
    ready_names_the_stopped_store("clickhouse").await;
}

#[tokio::test]
async fn ready_answers_503_naming_blob_storage_when_it_is_gone() {
    ready_names_the_stopped_store("blob_storage").await;
}

#[tokio::test]
async fn the_worker_serves_its_own_probes() {
    let config = TestConfig::new().await;
    config.migrate().await;
    let settings = config.settings();
    let stores = langfuse_rs::app::prepare(&settings).await.unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { langfuse_rs::app::work(&settings, stores, listener, shutdown).await }
    });

    for path in ["/api/public/health", "/api/public/ready"] {
        let response = reqwest::get(format!("{address}{path}")).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("the worker stops promptly")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn stopping_the_server_finishes_in_flight_requests() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    // A first answer on the pooled connection: the server has taken that connection, so the
    // request below reaches it however late this busy machine schedules the task that sends it
    // (a connection still in the listen backlog when the server stops is not its to finish).
    let warm = app.http.get(app.url("/api/public/health")).send().await;
    assert_eq!(warm.unwrap().status(), 200);
    let in_flight = {
        let http = app.http.clone();
        let url = app.url("/api/public/ready");
        tokio::spawn(async move { http.get(url).send().await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let url = app.url("/api/public/health");
    app.stop().await.unwrap();
    let response = in_flight
        .await
        .unwrap()
        .expect("in-flight request answered");
    assert_eq!(response.status(), 200);
    // And the listener is closed afterwards.
    assert!(reqwest::get(url).await.is_err());
}
