//! Scores that name a score config (`configId`), checked against it before they are stored, in
//! every path a score enters: the batch API (a refused event is a 400 among the 207's errors,
//! the others of the batch are stored), `POST /api/public/scores` (a 400 naming the problem) and
//! the configs cache of each `serve` process (a change made on one is seen by another; configs
//! it holds keep checking scores while PostgreSQL is away, and a read it needs then is a 503).
//! The Python SDK 5.x's `create_score(config_id=...)` (`tests/sdk/python_v5_score_configs.py`):
//! accepted scores stored as their configs make them, refused ones logged by the SDK and not
//! stored. The OTLP endpoint makes no scores (as Langfuse's mapping), so it has nothing to check;
//! the UI's manual scoring is covered in `ui_score_configs.rs`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{create_project, envelope, eventually, ApiKey, TestApp, TestConfig};

const AT: &str = "2024-05-01T10:00:00.000Z";
const UNKNOWN: &str = "The configId you provided does not match a valid config in this project";

async fn config_of(app: &TestApp, key: &ApiKey, body: Value) -> String {
    let response = app.post_as("/api/public/score-configs", key, &body).await;
    assert_eq!(response.status(), 200);
    let created: Value = response.json().await.unwrap();
    created["id"].as_str().unwrap().to_string()
}

/// The project's configs: numeric 0–1, categorical good = 2 / bad = 0, boolean, text, and an
/// archived numeric one.
struct Configs {
    numeric: String,
    categorical: String,
    boolean: String,
    text: String,
    archived: String,
}

async fn configs(app: &TestApp, key: &ApiKey) -> Configs {
    let numeric = config_of(
        app,
        key,
        json!({"name": "accuracy", "dataType": "NUMERIC", "minValue": 0, "maxValue": 1}),
    )
    .await;
    let categorical = config_of(
        app,
        key,
        json!({"name": "quality", "dataType": "CATEGORICAL",
               "categories": [{"label": "good", "value": 2}, {"label": "bad", "value": 0}]}),
    )
    .await;
    let boolean = config_of(app, key, json!({"name": "correct", "dataType": "BOOLEAN"})).await;
    let text = config_of(app, key, json!({"name": "note", "dataType": "TEXT"})).await;
    let archived = config_of(app, key, json!({"name": "old", "dataType": "NUMERIC"})).await;
    let response = app
        .http
        .patch(app.url(&format!("/api/public/score-configs/{archived}")))
        .header("Authorization", key.basic_auth())
        .json(&json!({"isArchived": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    Configs {
        numeric,
        categorical,
        boolean,
        text,
        archived,
    }
}

fn score(event: &str, body: Value) -> Value {
    envelope(event, "score-create", AT, body)
}

/// The 207's errors by event id: (status, message).
fn errors_of(answer: &Value) -> Vec<(String, u16, String)> {
    answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_string(),
                e["status"].as_u64().unwrap() as u16,
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn read_score(app: &TestApp, key: &ApiKey, id: &str) -> (u16, Value) {
    app.get_json(&format!("/api/public/v2/scores/{id}"), key)
        .await
}

#[tokio::test]
async fn the_batch_api_refuses_each_score_its_config_refuses_and_stores_the_rest() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "checked").await;
    let stranger = create_project(&app.config, "stranger").await;
    let c = configs(&app, &key).await;
    let strangers = config_of(
        &app,
        &stranger,
        json!({"name": "theirs", "dataType": "NUMERIC"}),
    )
    .await;

    let t = |id: &str, config: &str, value: Value| json!({"id": id, "traceId": "t1", "name": "sent name", "value": value, "configId": config});
    let mut typed = t("mismatch", &c.numeric, json!(0.5));
    typed["dataType"] = json!("CATEGORICAL");
    typed["value"] = json!("good");
    let batch = json!({"batch": [
        score("e-numeric", t("numeric", &c.numeric, json!(0.25))),
        score("e-over", t("over", &c.numeric, json!(1.5))),
        score("e-under", t("under", &c.numeric, json!(-1))),
        score("e-categorical", t("categorical", &c.categorical, json!("good"))),
        score("e-label", t("label", &c.categorical, json!("meh"))),
        score("e-cat-number", t("cat-number", &c.categorical, json!(2))),
        score("e-boolean", t("boolean", &c.boolean, json!(1))),
        score("e-bool-two", t("bool-two", &c.boolean, json!(2))),
        score("e-text", t("text", &c.text, json!("fine"))),
        score("e-text-long", t("text-long", &c.text, json!("x".repeat(501)))),
        score("e-mismatch", typed),
        score("e-archived", t("archived", &c.archived, json!(3))),
        score("e-stranger", t("stranger", &strangers, json!(3))),
        score("e-missing", t("missing", "no-such-config", json!(3))),
        score("e-free", json!({"id": "free", "traceId": "t1", "name": "free", "value": 7})),
    ]});
    let response = app.post_as("/api/public/ingestion", &key, &batch).await;
    assert_eq!(response.status(), 207);
    let answer: Value = response.json().await.unwrap();
    let accepted: Vec<&str> = answer["successes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        accepted,
        [
            "e-numeric",
            "e-categorical",
            "e-boolean",
            "e-text",
            "e-free"
        ],
        "{answer}"
    );
    let errors = errors_of(&answer);
    let expected = [
        ("e-over", "Ingested score body not valid against provided config: Value exceeds maximum value of 1 defined in config"),
        ("e-under", "Ingested score body not valid against provided config: Value is below minimum value of 0 defined in config"),
        ("e-label", "Ingested score body not valid against provided config: Value meh does not map to a valid category. Pass a valid category value."),
        ("e-cat-number", "the value of a CATEGORICAL score must be a string"),
        ("e-bool-two", "Value must be either 0 or 1"),
        ("e-text-long", "the value of a TEXT score must have 1 to 500 characters"),
        ("e-mismatch", "Data type mismatch based on config: expected NUMERIC, got CATEGORICAL"),
        ("e-archived", "Config is archived and cannot be used to create new scores. Please restore the config first."),
        ("e-stranger", UNKNOWN),
        ("e-missing", UNKNOWN),
    ];
    assert_eq!(errors.len(), expected.len(), "{answer}");
    for ((id, status, message), (want_id, want)) in errors.iter().zip(expected) {
        let want_status = if want == UNKNOWN { 404 } else { 400 };
        assert_eq!((id.as_str(), *status), (want_id, want_status), "{answer}");
        assert!(message.contains(want), "{id}: {message}");
    }

    assert!(app.wait_for_rows("scores", "checked", 5).await);
    let (_, categorical) = read_score(&app, &key, "categorical").await;
    assert_eq!(
        categorical["name"], "quality",
        "the config's name: {categorical}"
    );
    assert_eq!(categorical["dataType"], "CATEGORICAL");
    assert_eq!(categorical["value"], json!(2.0));
    assert_eq!(categorical["stringValue"], "good");
    assert_eq!(categorical["configId"], json!(c.categorical));
    let (_, boolean) = read_score(&app, &key, "boolean").await;
    assert_eq!(
        (
            &boolean["dataType"],
            &boolean["value"],
            &boolean["stringValue"]
        ),
        (&json!("BOOLEAN"), &json!(1.0), &json!("True")),
        "{boolean}"
    );
    let (_, numeric) = read_score(&app, &key, "numeric").await;
    assert_eq!(
        (&numeric["name"], &numeric["value"]),
        (&json!("accuracy"), &json!(0.25))
    );
    let (_, text) = read_score(&app, &key, "text").await;
    assert_eq!(
        (&text["dataType"], &text["stringValue"]),
        (&json!("TEXT"), &json!("fine"))
    );
    for refused in ["over", "label", "archived", "stranger", "missing"] {
        assert_eq!(read_score(&app, &key, refused).await.0, 404, "{refused}");
    }
}

#[tokio::test]
async fn direct_score_writes_are_refused_with_a_400_naming_the_problem() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "direct").await;
    let c = configs(&app, &key).await;

    let post = |body: Value| {
        let app = &app;
        let key = &key;
        async move {
            let response = app.post_as("/api/public/scores", key, &body).await;
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    for (body, message) in [
        (
            json!({"traceId": "t", "name": "q", "value": 5, "configId": c.numeric}),
            "Value exceeds maximum value of 1 defined in config",
        ),
        (
            json!({"traceId": "t", "name": "q", "value": "meh", "configId": c.categorical}),
            "Value meh does not map to a valid category",
        ),
        (
            json!({"traceId": "t", "name": "q", "value": 1, "configId": c.archived}),
            "Config is archived",
        ),
        (
            json!({"traceId": "t", "name": "q", "value": 1, "configId": "nope"}),
            UNKNOWN,
        ),
        (
            json!({"traceId": "t", "name": "q", "value": 1, "dataType": "NUMERIC",
                   "configId": c.boolean}),
            "Data type mismatch based on config: expected BOOLEAN, got NUMERIC",
        ),
    ] {
        let (status, answer) = post(body.clone()).await;
        let want_status = if message == UNKNOWN { 404 } else { 400 };
        assert_eq!(status, want_status, "{body}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(message),
            "{body}: {answer}"
        );
    }

    let (status, answer) = post(
        json!({"id": "direct-good", "traceId": "t", "name": "q", "value": "bad",
               "configId": c.categorical}),
    )
    .await;
    assert_eq!((status, &answer), (200, &json!({"id": "direct-good"})));

    // A list (what the Python SDK 5.x sends): the refused one is counted and named.
    let (status, answer) = post(json!([
        {"id": "listed-ok", "traceId": "t", "name": "q", "value": 0, "configId": c.boolean},
        {"id": "listed-bad", "traceId": "t", "name": "q", "value": 0.5, "configId": c.boolean},
    ]))
    .await;
    assert_eq!(status, 207, "{answer}");
    assert_eq!(
        (&answer["accepted"], &answer["rejected"]),
        (&json!(1), &json!(1))
    );
    assert!(answer["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("Value must be either 0 or 1"));

    assert!(app.wait_for_rows("scores", "direct", 2).await);
    let (_, good) = read_score(&app, &key, "direct-good").await;
    assert_eq!(
        (
            &good["name"],
            &good["value"],
            &good["stringValue"],
            &good["configId"]
        ),
        (
            &json!("quality"),
            &json!(0.0),
            &json!("bad"),
            &json!(c.categorical)
        ),
        "{good}"
    );
    let (_, listed) = read_score(&app, &key, "listed-ok").await;
    assert_eq!(listed["stringValue"], "False", "{listed}");
    assert_eq!(read_score(&app, &key, "listed-bad").await.0, 404);
}

#[tokio::test]
async fn a_config_changed_through_one_server_is_checked_at_once_by_another() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "two-servers").await;
    let numeric = config_of(
        &app,
        &key,
        json!({"name": "accuracy", "dataType": "NUMERIC", "minValue": 0, "maxValue": 1}),
    )
    .await;

    // A second server on the same stores.
    let settings = langfuse_rs::config::Settings::load(None, &app.config.env).unwrap();
    let stores = langfuse_rs::app::prepare(&settings).await.unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { langfuse_rs::app::serve(&settings, stores, listener, false, shutdown).await }
    });
    let http = &app.http;
    let key = &key;
    let ingest_on_other = |config_id: String, value: Value| {
        let other = other.clone();
        async move {
            let batch = json!({"batch": [score("e", json!({"traceId": "t", "name": "q",
                "value": value, "configId": config_id}))]});
            let response = http
                .post(format!("{other}/api/public/ingestion"))
                .header("Authorization", key.basic_auth())
                .json(&batch)
                .send()
                .await
                .unwrap();
            let answer: Value = response.json().await.unwrap();
            answer["errors"][0]["message"].as_str().map(str::to_string)
        }
    };
    let up = eventually(Duration::from_secs(10), || async {
        http.get(format!("{other}/api/public/health"))
            .send()
            .await
            .is_ok()
    })
    .await;
    assert!(up);
    // The other server now holds the project's configs.
    assert_eq!(ingest_on_other(numeric.clone(), json!(0.5)).await, None);

    // Archived through the first server: the other refuses at once (its cache was told).
    let patch = |body: Value| {
        let url = app.url(&format!("/api/public/score-configs/{numeric}"));
        async move {
            let response = http
                .patch(url)
                .header("Authorization", key.basic_auth())
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
    };
    patch(json!({"isArchived": true})).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            ingest_on_other(numeric.clone(), json!(0.5))
                .await
                .is_some_and(|m| m.starts_with("Config is archived"))
        })
        .await,
        "the other server still takes scores of the archived config"
    );
    patch(json!({"isArchived": false})).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            ingest_on_other(numeric.clone(), json!(0.5)).await.is_none()
        })
        .await
    );

    // A config created after the other server read the project's configs is found there: its
    // configs are forgotten on the message, or read again once they are a second old.
    let fresh = config_of(&app, key, json!({"name": "fresh", "dataType": "BOOLEAN"})).await;
    assert!(
        eventually(Duration::from_secs(3), || async {
            ingest_on_other(fresh.clone(), json!(1)).await.is_none()
        })
        .await
    );
    assert_eq!(
        ingest_on_other(fresh, json!(3)).await.as_deref(),
        Some("Ingested score body not valid against provided config: Value must be either 0 or 1")
    );

    shutdown.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_python_sdk_5_scores_with_configs_and_logs_what_is_refused() {
    use crate::sdk::{run_roundtrip, sdk_python};
    let python = sdk_python("LANGFUSE_TEST_PYTHON_SDK_V5", "sdk-python-v5");
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "sdk-configs").await;
    let c = configs(&app, &key).await;
    let trace_id = "5c0fe1d2c3b4a5968778695a4b3c2d1e";
    let mut command = tokio::process::Command::new(python);
    command
        .arg(crate::sdk::sdk_script("python_v5_score_configs.py"))
        .env("CATEGORICAL_ID", &c.categorical)
        .env("NUMERIC_ID", &c.numeric)
        .env("BOOLEAN_ID", &c.boolean);
    let report = run_roundtrip(command, &app, &key, trace_id).await;

    // The SDK logs the 207's rejections (and does not retry them).
    let errors = report["errors"].to_string();
    assert!(
        errors.contains("rejected 2 of 5")
            && errors.contains("Value meh does not map to a valid category")
            && errors.contains("Value exceeds maximum value of 1 defined in config"),
        "{report}"
    );
    assert!(app.wait_for_rows("scores", "sdk-configs", 3).await);
    let (_, good) = read_score(&app, &key, "sdk-good").await;
    assert_eq!(
        (
            &good["traceId"],
            &good["configId"],
            &good["value"],
            &good["stringValue"]
        ),
        (
            &json!(trace_id),
            &json!(c.categorical),
            &json!(2.0),
            &json!("good")
        ),
        "{good}"
    );
    let (_, accuracy) = read_score(&app, &key, "sdk-accuracy").await;
    assert_eq!(
        (&accuracy["value"], &accuracy["configId"]),
        (&json!(0.75), &json!(c.numeric))
    );
    let (_, correct) = read_score(&app, &key, "sdk-correct").await;
    assert_eq!(
        (&correct["dataType"], &correct["stringValue"]),
        (&json!("BOOLEAN"), &json!("True"))
    );
    for refused in ["sdk-bad-label", "sdk-over"] {
        assert_eq!(read_score(&app, &key, refused).await.0, 404, "{refused}");
    }
}

#[tokio::test]
async fn kept_configs_check_scores_while_postgres_is_away_and_a_needed_read_is_a_503() {
    use crate::helpers::{admin_database_url, socket_of, with_socket, TcpProxy};
    let mut config = TestConfig::new().await;
    let proxy = TcpProxy::start(socket_of(&admin_database_url())).await;
    let url = with_socket(&config.env["DATABASE_URL"], proxy.addr);
    config.set("DATABASE_URL", url);
    let app = TestApp::spawn(config).await;
    let key = create_project(&app.config, "pg-away").await;
    let boolean = config_of(&app, &key, json!({"name": "ok", "dataType": "BOOLEAN"})).await;
    let ingest = |events: Vec<Value>| {
        let app = &app;
        let key = &key;
        async move {
            let response = app
                .post_as("/api/public/ingestion", key, &json!({ "batch": events }))
                .await;
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let scored = |id: &str, config: &str, value: Value| {
        score(
            id,
            json!({"traceId": "t", "name": "q", "value": value, "configId": config}),
        )
    };
    // The key and the project's configs are now held by the server.
    let (status, answer) = ingest(vec![scored("warm", &boolean, json!(1))]).await;
    assert_eq!((status, &answer["errors"]), (207, &json!([])), "{answer}");

    proxy.stop();
    let (status, answer) = ingest(vec![
        scored("held-ok", &boolean, json!(0)),
        scored("held-bad", &boolean, json!(5)),
        score("free", json!({"traceId": "t", "name": "free", "value": 1})),
    ])
    .await;
    assert_eq!(status, 207, "{answer}");
    assert_eq!(answer["successes"].as_array().unwrap().len(), 2, "{answer}");
    assert_eq!(answer["errors"][0]["id"], "held-bad");

    // A config the held ones lack must be read: without PostgreSQL the request is a 503.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, answer) = ingest(vec![scored("unknown", "created-elsewhere", json!(1))]).await;
    assert_eq!(status, 503, "{answer}");
    assert!(answer["message"]
        .as_str()
        .unwrap()
        .contains("Score configs cannot be read"));

    proxy.resume();
    let (status, answer) = ingest(vec![scored("unknown", "created-elsewhere", json!(1))]).await;
    assert_eq!(status, 207);
    assert_eq!(answer["errors"][0]["message"], UNKNOWN, "{answer}");
}
