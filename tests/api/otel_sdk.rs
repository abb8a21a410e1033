//! The OpenTelemetry-based SDKs and exporters, installed from the registries and pinned in
//! `tests/sdk/`, sending to `/api/public/otel/v1/traces`; what they sent is read back through the
//! read API and compared field by field.

use serde_json::{json, Value};

use crate::helpers::{create_project, TestApp, TestConfig};
use crate::otel::{observation, read_trace};
use crate::sdk::{node_modules, run_roundtrip, sdk_python, sdk_script};

/// Waits for the trace's one score (sent through the batch API) and returns it.
async fn read_score(app: &TestApp, keys: (&str, &str), trace_id: &str) -> Value {
    let path = format!("/api/public/traces/{trace_id}");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let trace: Value = app
            .get_as(&path, keys.0, keys.1)
            .await
            .json()
            .await
            .unwrap();
        if let Some(score) = trace["scores"].as_array().and_then(|s| s.first()) {
            return score.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no score: {trace}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn python_sdk_v5_traces_are_stored_and_read_back() {
    let python = sdk_python("LANGFUSE_TEST_PYTHON_SDK_V5", "sdk-python-v5");
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let (pk, sk) = create_project(&app.config, "sdk-v5").await;
    let keys = (pk.as_str(), sk.as_str());
    let trace_id = "5dc5d1b8a3e94b0c9f1a2b3c4d5e6f70";
    let mut command = tokio::process::Command::new(python);
    command.arg(sdk_script("python_v5_otel_roundtrip.py"));
    let ids = run_roundtrip(command, &app, keys, trace_id).await;
    let id = |k: &str| ids[k].as_str().unwrap().to_string();

    let trace = read_trace(&app, keys, trace_id, 5).await;
    assert_eq!(trace["name"], "sdk-v5-trace");
    assert_eq!(trace["userId"], "user-1");
    assert_eq!(trace["sessionId"], "session-1");
    assert_eq!(trace["tags"], json!(["sdk", "v5"]));
    assert_eq!(trace["environment"], "production");
    assert_eq!(trace["release"], "r-5");
    assert_eq!(trace["input"], json!({"question": "hi"}));
    assert_eq!(trace["output"], "done");
    assert_eq!(trace["metadata"]["team"], "search");
    assert_eq!(trace["metadata"]["step"], "root");
    assert_eq!(
        trace["metadata"]["resourceAttributes"]["telemetry.sdk.language"],
        "python"
    );
    assert_eq!(trace["metadata"]["scope"]["name"], "langfuse-sdk");

    let root = observation(&trace, &id("root"));
    assert_eq!(root["type"], "SPAN");
    assert_eq!(root["name"], "handle-request");
    // Started in a given trace, the root has a remote parent that is no observation; the SDK marks
    // it `langfuse.internal.as_root`, which is why the trace's fields above are the root's.
    let parent = root["parentObservationId"].as_str().unwrap_or_default();
    assert!(!trace["observations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["id"] == parent));
    assert_eq!(root["input"], json!({"question": "hi"}));
    assert_eq!(root["output"], "done");
    assert_eq!(root["metadata"]["step"], "root");
    assert_eq!(root["environment"], "production");

    let retrieve = observation(&trace, &id("retrieve"));
    assert_eq!(retrieve["type"], "SPAN");
    assert_eq!(retrieve["name"], "retrieve");
    assert_eq!(retrieve["parentObservationId"], id("root"));
    assert_eq!(
        retrieve["output"],
        json!({"documents": ["doc-1", "doc-2"], "query": "hi"})
    );

    let generation = observation(&trace, &id("generation"));
    assert_eq!(generation["type"], "GENERATION");
    assert_eq!(generation["name"], "llm");
    assert_eq!(generation["parentObservationId"], id("root"));
    assert_eq!(generation["model"], "gpt-4o-mini");
    assert_eq!(
        generation["modelParameters"],
        json!({"temperature": 0.1, "max_tokens": 100})
    );
    assert_eq!(
        generation["usageDetails"],
        json!({"input": 12, "output": 7, "total": 19})
    );
    assert_eq!(generation["usage"]["total"], 19);
    let cost = &generation["costDetails"];
    assert!(
        (cost["input"].as_f64().unwrap() - 0.0012).abs() < 1e-12,
        "{cost}"
    );
    assert!(
        (cost["total"].as_f64().unwrap() - 0.0033).abs() < 1e-9,
        "{cost}"
    );
    assert_eq!(
        generation["input"],
        json!([{"role": "user", "content": "hi"}])
    );
    assert_eq!(
        generation["output"],
        json!({"role": "assistant", "content": "hello"})
    );

    let tool = observation(&trace, &id("tool"));
    assert_eq!(tool["type"], "TOOL");
    assert_eq!(tool["level"], "ERROR");
    assert!(
        tool["statusMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("KeyError"),
        "{tool}"
    );

    let event = observation(&trace, &id("event"));
    assert_eq!(event["type"], "EVENT");
    assert_eq!(event["level"], "WARNING");
    assert_eq!(event["metadata"]["key"], "x");

    let score = read_score(&app, keys, trace_id).await;
    assert_eq!(score["name"], "quality");
    assert_eq!(score["value"], 0.9);
    assert_eq!(score["comment"], "fine");
}
