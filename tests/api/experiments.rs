//! Experiments end to end: the `langfuse.experiment.*` attributes of OTLP spans, stored on
//! observations, read back through `GET /api/public/experiments` and `GET
//! /api/public/experiment-items` (field groups, list parameters, filters, cursor pages, scores,
//! refusals) and the v2 observations filter; and the dataset runs and run items the worker makes
//! of them in PostgreSQL, the same runs as those of `POST /api/public/dataset-run-items`.

use serde_json::{json, Value};

use crate::helpers::{create_project, envelope, ApiKey, TestApp, TestConfig};

const OTLP: &str = "/api/public/otel/v1/traces";
/// 2025-01-01T12:00:00Z.
const T0_MS: u64 = 1_735_732_800_000;
const FROM: &str = "2025-01-01T00:00:00Z";

fn trace_id(n: u64) -> String {
    format!("{n:032x}")
}

fn span_id(trace: u64, n: u64) -> String {
    format!("{:016x}", trace * 16 + n)
}

fn attribute(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

fn otlp_span(
    trace: u64,
    span: u64,
    parent: Option<u64>,
    name: &str,
    start_s: u64,
    attributes: Vec<Value>,
) -> Value {
    let start = (T0_MS + start_s * 1000) * 1_000_000;
    let mut span_json = json!({
        "traceId": trace_id(trace),
        "spanId": span_id(trace, span),
        "name": name,
        "kind": 1,
        "startTimeUnixNano": start.to_string(),
        "endTimeUnixNano": (start + 2_000_000_000).to_string(),
        "attributes": attributes,
        "status": {},
    });
    if let Some(parent) = parent {
        span_json["parentSpanId"] = json!(span_id(trace, parent));
    }
    span_json
}

/// An experiment as the SDKs record it.
struct Experiment {
    id: &'static str,
    run_name: &'static str,
    description: &'static str,
    dataset_id: Option<&'static str>,
}

/// One item's spans as the Python SDK 5.x writes them: the item's run span (the trace's root),
/// its task span (the item's root observation) with a generation inside. All carry the
/// experiment's attributes; the run and task spans also the expected output and description.
fn item_spans(exp: &Experiment, trace: u64, item_id: &str, start_s: u64) -> Vec<Value> {
    let task_span = span_id(trace, 2);
    let mut shared = vec![
        attribute("langfuse.experiment.id", exp.id),
        attribute("langfuse.experiment.name", exp.run_name),
        attribute(
            "langfuse.experiment.metadata",
            r#"{"model": "gpt-4o-mini"}"#,
        ),
        attribute("langfuse.experiment.item.id", item_id),
        attribute(
            "langfuse.experiment.item.metadata",
            &json!({ "source": item_id }).to_string(),
        ),
        attribute("langfuse.experiment.item.root_observation_id", &task_span),
    ];
    if let Some(dataset) = exp.dataset_id {
        shared.push(attribute("langfuse.experiment.dataset.id", dataset));
        shared.push(attribute(
            "langfuse.experiment.item.version",
            "2025-01-01T11:00:00.000Z",
        ));
    }
    let mut own = shared.clone();
    own.extend([
        attribute("langfuse.environment", "sdk-experiment"),
        attribute("langfuse.experiment.description", exp.description),
        attribute(
            "langfuse.experiment.item.expected_output",
            &json!({ "answer": item_id }).to_string(),
        ),
        attribute(
            "langfuse.observation.input",
            &json!({ "question": item_id }).to_string(),
        ),
        attribute(
            "langfuse.observation.output",
            &json!(format!("output of {item_id}")).to_string(),
        ),
        attribute(
            "langfuse.observation.metadata",
            &json!({ "experiment_run_name": exp.run_name }).to_string(),
        ),
    ]);
    let mut generation = shared;
    generation.extend([
        attribute("langfuse.observation.type", "generation"),
        attribute("langfuse.observation.model.name", "gpt-4o-mini"),
    ]);
    vec![
        otlp_span(trace, 1, None, "experiment-item-run", start_s, own.clone()),
        otlp_span(trace, 2, Some(1), "experiment-item-task", start_s, own),
        otlp_span(trace, 3, Some(2), "llm-call", start_s, generation),
    ]
}

async fn export(app: &TestApp, key: &ApiKey, spans: Vec<Value>) {
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [attribute("service.name", "evals")]},
        "scopeSpans": [{"scope": {"name": "langfuse-sdk", "version": "5.0.4"}, "spans": spans}],
    }]});
    let response = app.post_as(OTLP, key, &body).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

const RUN_A: Experiment = Experiment {
    id: "exp-a",
    run_name: "run-a",
    description: "first run",
    dataset_id: Some("ds-a"),
};
const RUN_B: Experiment = Experiment {
    id: "exp-b",
    run_name: "run-b",
    description: "second run",
    dataset_id: None,
};

/// Experiment A: items a1, a2, a3 at 0, 10 and 20 s (traces 1 to 3); B: b1 at 30 s, b2 at 5 s
/// (traces 4 and 5); trace 6 is no experiment. Scores: one on run A, one on a1's task
/// observation, one on a1's trace.
async fn seed(app: &TestApp, key: &ApiKey, project: &str) {
    let mut spans = Vec::new();
    spans.extend(item_spans(&RUN_A, 1, "a1", 0));
    spans.extend(item_spans(&RUN_A, 2, "a2", 10));
    spans.extend(item_spans(&RUN_A, 3, "a3", 20));
    spans.extend(item_spans(&RUN_B, 4, "b1", 30));
    spans.extend(item_spans(&RUN_B, 5, "b2", 5));
    spans.push(otlp_span(6, 1, None, "plain", 40, vec![]));
    export(app, key, spans).await;
    let at = "2025-01-01T12:01:00.000Z";
    app.ingest_accepted(
        key,
        &json!({"batch": [
            envelope("e-run", "score-create", at, json!({
                "id": "s-run", "name": "accuracy", "value": 0.5, "datasetRunId": "exp-a"})),
            envelope("e-item", "score-create", at, json!({
                "id": "s-item", "name": "exact_match", "value": 1, "traceId": trace_id(1),
                "observationId": span_id(1, 2)})),
            envelope("e-trace", "score-create", at, json!({
                "id": "s-trace", "name": "quality", "value": 0.2, "traceId": trace_id(1)})),
            envelope("e-other", "score-create", at, json!({
                "id": "s-other", "name": "exact_match", "value": 0, "traceId": trace_id(1),
                "observationId": span_id(1, 3)})),
        ]}),
    )
    .await;
    assert!(app.wait_for_rows("observations", project, 16).await);
    assert!(app.wait_for_rows("scores", project, 4).await);
    assert!(app.wait_until_written().await);
}

async fn get(app: &TestApp, key: &ApiKey, path: &str) -> Value {
    let (status, body) = app.get_json(path, key).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn ids(body: &Value, field: &str) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[field].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn experiments_and_their_items_answer_what_the_spans_recorded() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "exp-api").await;
    seed(&app, &key, "exp-api").await;

    // The most recently active experiment first, each with its figures in the range.
    let list = get(
        &app,
        &key,
        &format!("/api/public/experiments?fromStartTime={FROM}"),
    )
    .await;
    assert_eq!(ids(&list, "id"), ["exp-b", "exp-a"], "{list}");
    let a = &list["data"][1];
    assert_eq!(
        a,
        &json!({
            "id": "exp-a", "name": "run-a", "description": "first run",
            "startTime": "2025-01-01T12:00:00.000Z", "endTime": "2025-01-01T12:00:22.000Z",
            "itemCount": 3, "datasetId": "ds-a",
        })
    );
    assert_eq!(list["data"][0]["datasetId"], Value::Null);
    assert_eq!(list["data"][0]["itemCount"], 2);
    assert_eq!(list["meta"], json!({}));

    // Metadata and the experiment's own scores on request.
    let full = get(
        &app,
        &key,
        &format!(
            "/api/public/experiments?fromStartTime={FROM}&fields=core,metadata,scores&id=exp-a"
        ),
    )
    .await;
    assert_eq!(ids(&full, "id"), ["exp-a"]);
    let a = &full["data"][0];
    assert_eq!(a["metadata"], json!({"model": "gpt-4o-mini"}));
    let scores = a["scores"].as_array().unwrap();
    assert_eq!(scores.len(), 1, "{a}");
    assert_eq!(
        (&scores[0]["id"], &scores[0]["value"], &scores[0]["subject"]),
        (
            &json!("s-run"),
            &json!(0.5),
            &json!({"kind": "experiment", "id": "exp-a"})
        )
    );

    // Pages of one, by cursor; the filters by name and by dataset; a time range.
    let first = get(
        &app,
        &key,
        &format!("/api/public/experiments?fromStartTime={FROM}&limit=1"),
    )
    .await;
    assert_eq!(ids(&first, "id"), ["exp-b"]);
    let cursor = first["meta"]["cursor"]
        .as_str()
        .expect("a cursor")
        .to_string();
    let second = get(
        &app,
        &key,
        &format!("/api/public/experiments?fromStartTime={FROM}&limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(ids(&second, "id"), ["exp-a"]);
    assert_eq!(second["meta"], json!({}));
    let by_name = get(
        &app,
        &key,
        &format!("/api/public/experiments?fromStartTime={FROM}&name=run-b,nope"),
    )
    .await;
    assert_eq!(ids(&by_name, "id"), ["exp-b"]);
    let filter = urlencoding(&json!([
        {"type": "stringOptions", "column": "datasetId", "operator": "any of", "value": ["ds-a"]}
    ]));
    let by_dataset = get(
        &app,
        &key,
        &format!("/api/public/experiments?fromStartTime={FROM}&filter={filter}"),
    )
    .await;
    assert_eq!(ids(&by_dataset, "id"), ["exp-a"]);
    // From 12:00:08, A counts a2 and a3 only, and starts with the range.
    let later = get(
        &app,
        &key,
        "/api/public/experiments?fromStartTime=2025-01-01T12:00:08Z&toStartTime=2025-01-01T12:00:25Z",
    )
    .await;
    assert_eq!(ids(&later, "id"), ["exp-a"]);
    assert_eq!(later["data"][0]["itemCount"], 2);
    assert_eq!(later["data"][0]["startTime"], "2025-01-01T12:00:10.000Z");

    // Items: the task spans, newest first, with the dataset group by default.
    let items = get(
        &app,
        &key,
        &format!("/api/public/experiment-items?fromStartTime={FROM}"),
    )
    .await;
    assert_eq!(
        ids(&items, "experimentItemId"),
        ["b1", "a3", "a2", "b2", "a1"],
        "{items}"
    );
    let a1 = &items["data"][4];
    assert_eq!(
        a1,
        &json!({
            "id": span_id(1, 2), "traceId": trace_id(1),
            "startTime": "2025-01-01T12:00:00.000Z", "endTime": "2025-01-01T12:00:02.000Z",
            "level": "DEFAULT", "environment": "sdk-experiment",
            "experimentId": "exp-a", "experimentName": "run-a", "experimentItemId": "a1",
            "experimentDatasetId": "ds-a", "experimentItemVersion": "2025-01-01T11:00:00.000Z",
        })
    );
    let every = get(
        &app,
        &key,
        &format!(
            "/api/public/experiment-items?fromStartTime={FROM}&experimentId=exp-a&experimentItemId=a1\
             &fields=core,io,metadata,itemMetadata,experimentMetadata,scores"
        ),
    )
    .await;
    let a1 = &every["data"][0];
    assert_eq!(every["data"].as_array().unwrap().len(), 1, "{every}");
    assert!(a1.get("experimentDatasetId").is_none(), "{a1}");
    assert_eq!(a1["input"], json!({"question": "a1"}));
    assert_eq!(a1["output"], json!("output of a1"));
    assert_eq!(a1["expectedOutput"], json!({"answer": "a1"}));
    assert_eq!(a1["metadata"]["experiment_run_name"], json!("run-a"));
    assert_eq!(a1["experimentItemMetadata"], json!({"source": "a1"}));
    assert_eq!(a1["experimentMetadata"], json!({"model": "gpt-4o-mini"}));
    assert_eq!(a1["experimentDescription"], json!("first run"));
    // The item's own score and its trace's, not the generation's nor the run's.
    let mut score_ids: Vec<&str> = a1["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    score_ids.sort_unstable();
    assert_eq!(score_ids, ["s-item", "s-trace"], "{a1}");

    // Item pages by cursor cover every item once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/public/experiment-items?fromStartTime={FROM}&limit=2");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = get(&app, &key, &path).await;
        seen.extend(ids(&page, "experimentItemId"));
        match page["meta"]["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["b1", "a3", "a2", "b2", "a1"]);
    let filter = urlencoding(&json!([
        {"type": "stringOptions", "column": "experimentName", "operator": "any of", "value": ["run-b"]}
    ]));
    let of_b = get(
        &app,
        &key,
        &format!("/api/public/experiment-items?fromStartTime={FROM}&filter={filter}"),
    )
    .await;
    assert_eq!(ids(&of_b, "experimentItemId"), ["b1", "b2"]);

    // The v2 observations list filters on the experiment columns.
    let filter = urlencoding(&json!([
        {"type": "stringOptions", "column": "experimentId", "operator": "any of", "value": ["exp-b"]},
        {"type": "boolean", "column": "isExperimentItemRootSpan", "operator": "=", "value": true},
    ]));
    let roots = get(
        &app,
        &key,
        &format!("/api/public/v2/observations?fromStartTime={FROM}&filter={filter}"),
    )
    .await;
    let mut root_ids = ids(&roots, "id");
    root_ids.sort();
    assert_eq!(root_ids, [span_id(4, 2), span_id(5, 2)], "{roots}");
    let filter = urlencoding(&json!([
        {"type": "stringOptions", "column": "experimentDatasetId", "operator": "any of", "value": ["ds-a"]},
    ]));
    let of_dataset = get(
        &app,
        &key,
        &format!("/api/public/v2/observations?fromStartTime={FROM}&filter={filter}"),
    )
    .await;
    assert_eq!(
        of_dataset["data"].as_array().unwrap().len(),
        9,
        "{of_dataset}"
    );

    // Another project sees none of it.
    let other = create_project(&app.config, "exp-api-other").await;
    let none = get(
        &app,
        &other,
        &format!("/api/public/experiments?fromStartTime={FROM}"),
    )
    .await;
    assert_eq!(none["data"], json!([]));
}

fn urlencoding(value: &Value) -> String {
    url::form_urlencoded::byte_serialize(value.to_string().as_bytes()).collect()
}

#[tokio::test]
async fn bad_experiment_queries_are_refused_with_400() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "exp-bad").await;
    let bad_filter = urlencoding(&json!([
        {"type": "stringOptions", "column": "traceName", "operator": "any of", "value": ["x"]}
    ]));
    for (path, expected) in [
        (
            "/api/public/experiments".to_string(),
            "fromStartTime is required",
        ),
        (
            "/api/public/experiment-items?limit=5".to_string(),
            "fromStartTime is required",
        ),
        (
            format!("/api/public/experiments?fromStartTime={FROM}&limit=0"),
            "limit must be an integer from 1 to 100",
        ),
        (
            format!("/api/public/experiments?fromStartTime={FROM}&limit=101"),
            "limit must be an integer from 1 to 100",
        ),
        (
            format!("/api/public/experiment-items?fromStartTime={FROM}&scoreLimit=51"),
            "scoreLimit must be an integer from 1 to 50",
        ),
        (
            format!("/api/public/experiments?fromStartTime={FROM}&fields=core,io"),
            "is not one of core, metadata, scores",
        ),
        (
            format!("/api/public/experiment-items?fromStartTime={FROM}&fields=bogus"),
            "is not one of core, dataset, io",
        ),
        (
            format!("/api/public/experiments?fromStartTime={FROM}&cursor=%25%25"),
            "Invalid cursor format",
        ),
        (
            "/api/public/experiments?fromStartTime=yesterday".to_string(),
            "fromStartTime",
        ),
        (
            format!("/api/public/experiments?fromStartTime={FROM}&filter={bad_filter}"),
            "traceName",
        ),
        (
            format!("/api/public/experiment-items?fromStartTime={FROM}&filter=%5B"),
            "Invalid JSON in filter parameter",
        ),
    ] {
        let (status, body) = app.get_json(&path, &key).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.to_string().contains(expected), "{path}: {body}");
    }
    let (status, _) = app
        .get_json(
            &format!("/api/public/experiments?fromStartTime={FROM}"),
            &ApiKey::new("pk-lf-x", "sk-lf-y"),
        )
        .await;
    assert_eq!(status, 401);
}
