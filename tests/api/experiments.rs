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
    /// The dataset version the run read, as the SDKs send it when asked for one.
    item_version: Option<&'static str>,
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
    }
    if let Some(version) = exp.item_version {
        shared.push(attribute("langfuse.experiment.item.version", version));
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
    item_version: Some("2025-01-01T11:00:00.000Z"),
};
const RUN_B: Experiment = Experiment {
    id: "exp-b",
    run_name: "run-b",
    description: "second run",
    dataset_id: None,
    item_version: None,
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

/// The run items of `run` in `dataset`, as `(item id, trace id, observation id)`, sorted.
async fn run_items(
    app: &TestApp,
    key: &ApiKey,
    dataset: &str,
    run: &str,
) -> (Value, Vec<(String, String, Value)>) {
    let (status, body) = app
        .get_json(&format!("/api/public/datasets/{dataset}/runs/{run}"), key)
        .await;
    if status != 200 {
        return (body, Vec::new());
    }
    let mut items: Vec<(String, String, Value)> = body["datasetRunItems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["datasetItemId"].as_str().unwrap().to_string(),
                i["traceId"].as_str().unwrap().to_string(),
                i["observationId"].clone(),
            )
        })
        .collect();
    items.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    (body, items)
}

/// Waits until the run has `count` run items; returns the run and its items.
async fn linked_run(
    app: &TestApp,
    key: &ApiKey,
    dataset: &str,
    run: &str,
    count: usize,
) -> (Value, Vec<(String, String, Value)>) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (body, items) = run_items(app, key, dataset, run).await;
        if items.len() >= count || tokio::time::Instant::now() > deadline {
            return (body, items);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_python_sdk_5_runs_experiments_that_are_dataset_runs() {
    use crate::sdk::{run_roundtrip, sdk_python, sdk_script};
    let python = sdk_python("LANGFUSE_TEST_PYTHON_SDK_V5", "sdk-python-v5");
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "exp-sdk").await;
    let mut command = tokio::process::Command::new(python);
    command
        .arg(sdk_script("python_v5_experiments.py"))
        .env("DATASET", "sdk/arithmetic")
        .env("RUNS", "run-1,run-2")
        .env("ITEMS", "3");
    let report = run_roundtrip(command, &app, &key, "unused").await;
    let dataset_id = report["dataset_id"].as_str().unwrap();
    let encoded = "sdk%2Farithmetic";

    for run in report["runs"].as_array().unwrap() {
        let run_name = run["run_name"].as_str().unwrap();
        let sdk_items = run["items"].as_array().unwrap();
        assert_eq!(sdk_items.len(), 3, "{run}");
        // One run item per dataset item, each with the trace the SDK made for it.
        let (body, items) = linked_run(&app, &key, encoded, run_name, 3).await;
        let mut expected: Vec<(String, String)> = sdk_items
            .iter()
            .map(|i| {
                (
                    i["item_id"].as_str().unwrap().to_string(),
                    i["trace_id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        expected.sort();
        let linked: Vec<(String, String)> = items
            .iter()
            .map(|(i, t, _)| (i.clone(), t.clone()))
            .collect();
        assert_eq!(linked, expected, "{body}");
        // The run is the experiment the SDK reported, in its dataset, with the run's description.
        assert_eq!(body["id"], run["experiment_id"], "{body}");
        assert_eq!(body["datasetId"], json!(dataset_id));
        assert_eq!(body["description"], json!(format!("run {run_name}")));
        // Each run item names the item's root observation: the SDK's task span.
        for (_, trace, observation) in &items {
            // A run item is made when its observation is written; the trace reads once all that
            // was sent with it is written too, which may be a moment later.
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
            let (status, trace_body) = loop {
                let answer = app
                    .get_json(&format!("/api/public/traces/{trace}"), &key)
                    .await;
                if answer.0 == 200 || tokio::time::Instant::now() > deadline {
                    break answer;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            };
            assert_eq!(status, 200, "{trace_body}");
            let observations = trace_body["observations"].as_array().unwrap();
            let task = observations
                .iter()
                .find(|o| &o["id"] == observation)
                .unwrap_or_else(|| panic!("{observation} in {trace_body}"));
            assert_eq!(task["name"], "experiment-item-task");
            assert!(
                observations
                    .iter()
                    .any(|o| o["name"] == "llm-call" && o["type"] == "GENERATION"),
                "{trace_body}"
            );
            // The evaluator's score, on the task observation.
            let scores = trace_body["scores"].as_array().unwrap();
            let score = scores
                .iter()
                .find(|s| s["name"] == "exact_match")
                .unwrap_or_else(|| panic!("no score in {trace_body}"));
            assert_eq!(&score["observationId"], observation);
            let sdk_item = sdk_items
                .iter()
                .find(|s| s["trace_id"] == json!(trace))
                .unwrap();
            assert_eq!(score["value"], sdk_item["evaluations"][0]["value"]);
        }
    }
    let (status, runs) = app
        .get_json(&format!("/api/public/datasets/{encoded}/runs"), &key)
        .await;
    assert_eq!(status, 200, "{runs}");
    let mut names: Vec<&str> = runs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["run-1", "run-2"], "{runs}");

    // The experiments API shows both runs, with their items.
    let experiments = get(
        &app,
        &key,
        &format!("/api/public/experiments?fromStartTime={FROM}"),
    )
    .await;
    let mut listed: Vec<(String, u64)> = experiments["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["itemCount"].as_u64().unwrap(),
            )
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [("run-1".to_string(), 3), ("run-2".to_string(), 3)],
        "{experiments}"
    );
    assert!(experiments["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["datasetId"] == json!(dataset_id)));

    // A run item posted to the same run name lands in the same run.
    let run_1 = &report["runs"][0];
    let item_id = run_1["items"][0]["item_id"].as_str().unwrap();
    let response = app
        .post_as(
            "/api/public/dataset-run-items",
            &key,
            &json!({"runName": "run-1", "datasetItemId": item_id, "traceId": "a-manual-trace"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let posted: Value = response.json().await.unwrap();
    assert_eq!(posted["datasetRunId"], run_1["experiment_id"], "{posted}");
    let (_, items) = run_items(&app, &key, encoded, "run-1").await;
    assert_eq!(items.len(), 4);
    assert!(items
        .iter()
        .any(|(i, t, _)| i == item_id && t == "a-manual-trace"));
    let (_, runs) = app
        .get_json(&format!("/api/public/datasets/{encoded}/runs"), &key)
        .await;
    assert_eq!(runs["data"].as_array().unwrap().len(), 2, "{runs}");
}

#[tokio::test]
async fn the_js_client_runs_an_experiment_whose_links_and_spans_make_one_run() {
    use crate::sdk::{node_modules, run_roundtrip, sdk_script};
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "exp-js").await;
    let mut command = tokio::process::Command::new("node");
    command
        .arg(sdk_script("js_client_experiments.js"))
        .env("NODE_PATH", node_modules())
        .env("DATASET", "js-capitals")
        .env("RUN", "js-run");
    let report = run_roundtrip(command, &app, &key, "unused").await;
    let run_id = report["datasetRunId"].as_str().expect("a dataset run id");
    assert_eq!(report["experimentId"], json!(run_id));
    assert!(app.wait_until_written().await);

    // The runner's REST links and the worker's links from its spans are the same three run items.
    let (body, items) = linked_run(&app, &key, "js-capitals", "js-run", 3).await;
    assert_eq!(body["id"], json!(run_id), "{body}");
    let mut expected: Vec<(String, String)> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["itemId"].as_str().unwrap().to_string(),
                i["traceId"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    expected.sort();
    let linked: Vec<(String, String)> = items
        .iter()
        .map(|(i, t, _)| (i.clone(), t.clone()))
        .collect();
    assert_eq!(linked, expected, "{body}");

    // The spans carried the experiment: it is listed under the run's id, with its three items.
    let experiments = get(
        &app,
        &key,
        &format!("/api/public/experiments?fromStartTime={FROM}&id={run_id}"),
    )
    .await;
    assert_eq!(experiments["data"][0]["itemCount"], 3, "{experiments}");
    assert_eq!(experiments["data"][0]["name"], "js-run");
    assert_eq!(experiments["data"][0]["datasetId"], report["datasetId"]);
    let items = get(
        &app,
        &key,
        &format!("/api/public/experiment-items?fromStartTime={FROM}&experimentId={run_id}&fields=io,scores"),
    )
    .await;
    let items = items["data"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let italy = items
        .iter()
        .find(|i| i["input"] == json!({"country": "it"}))
        .expect("the Italian item");
    assert_eq!(italy["output"], json!("Milan"));
    assert_eq!(italy["expectedOutput"], json!("Rome"));
    let scores = italy["scores"].as_array().unwrap();
    assert!(
        scores
            .iter()
            .any(|s| s["name"] == "exact_match" && s["value"] == json!(0.0)),
        "{italy}"
    );
}

#[tokio::test]
async fn links_made_while_postgres_is_away_are_made_once_it_is_back() {
    use crate::helpers::{admin_database_url, socket_of, with_socket, TcpProxy};
    let mut config = TestConfig::new().await;
    let proxy = TcpProxy::start(socket_of(&admin_database_url())).await;
    let url = with_socket(&config.env["DATABASE_URL"], proxy.addr);
    config.set("DATABASE_URL", url);
    let app = TestApp::spawn_with_worker(config).await;
    let key = create_project(&app.config, "exp-pg-away").await;
    let response = app
        .post_as("/api/public/v2/datasets", &key, &json!({"name": "away"}))
        .await;
    assert_eq!(response.status(), 200);
    let dataset: Value = response.json().await.unwrap();
    let dataset_id = dataset["id"].as_str().unwrap().to_string();
    for item in ["p1", "p2"] {
        let response = app
            .post_as(
                "/api/public/dataset-items",
                &key,
                &json!({"datasetName": "away", "id": item, "input": {"q": item}}),
            )
            .await;
        assert_eq!(response.status(), 200);
    }

    // PostgreSQL goes away; the spans of a run over both items arrive and are written.
    proxy.stop();
    let dataset_id: &'static str = Box::leak(dataset_id.into_boxed_str());
    let run = Experiment {
        id: "exp-away",
        run_name: "while-away",
        description: "made while PostgreSQL was away",
        dataset_id: Some(dataset_id),
        item_version: None,
    };
    let mut spans = item_spans(&run, 11, "p1", 0);
    spans.extend(item_spans(&run, 12, "p2", 1));
    export(&app, &key, spans).await;
    assert!(app.wait_for_rows("observations", "exp-pg-away", 6).await);
    assert!(app.wait_until_written().await);
    let items = get(
        &app,
        &key,
        &format!("/api/public/experiment-items?fromStartTime={FROM}&experimentId=exp-away"),
    )
    .await;
    assert_eq!(ids(&items, "experimentItemId"), ["p2", "p1"]);

    // The links wait in Redis for PostgreSQL.
    use fred::interfaces::ListInterface;
    let retry_list = app
        .stores
        .redis
        .keyspace
        .key("experiment-links", "retry", Some("pending"));
    let waiting: i64 = app.stores.redis.client.llen(&retry_list).await.unwrap();
    assert_eq!(waiting, 2);

    // Back: the kept links are made, without any further event.
    proxy.resume();
    let (body, items) = linked_run(&app, &key, "away", "while-away", 2).await;
    let linked: Vec<(String, String)> = items
        .iter()
        .map(|(i, t, _)| (i.clone(), t.clone()))
        .collect();
    assert_eq!(
        linked,
        [
            ("p1".to_string(), trace_id(11)),
            ("p2".to_string(), trace_id(12))
        ],
        "{body}"
    );
    assert_eq!(body["id"], "exp-away");
    assert_eq!(body["description"], "made while PostgreSQL was away");
    let waiting: i64 = app.stores.redis.client.llen(&retry_list).await.unwrap();
    assert_eq!(waiting, 0);
}

#[tokio::test]
async fn spans_link_only_their_own_projects_datasets_and_those_datasets_items() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let owner = create_project(&app.config, "exp-owner").await;
    let stranger = create_project(&app.config, "exp-stranger").await;
    let mut dataset_ids = Vec::new();
    for (name, item) in [("owned", "owned-item"), ("other", "other-item")] {
        let response = app
            .post_as("/api/public/v2/datasets", &owner, &json!({ "name": name }))
            .await;
        let dataset: Value = response.json().await.unwrap();
        dataset_ids.push(dataset["id"].as_str().unwrap().to_string());
        let response = app
            .post_as(
                "/api/public/dataset-items",
                &owner,
                &json!({"datasetName": name, "id": item, "input": "x"}),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    let owned: &'static str = Box::leak(dataset_ids[0].clone().into_boxed_str());
    let run = |name: &'static str| Experiment {
        id: name,
        run_name: name,
        description: "",
        dataset_id: Some(owned),
        item_version: None,
    };
    // Another project's spans name the dataset and its item; the owner's name an item of its
    // other dataset; and one span of the owner's is as it should be.
    export(
        &app,
        &stranger,
        item_spans(&run("foreign"), 21, "owned-item", 0),
    )
    .await;
    let mut spans = item_spans(&run("mismatched"), 22, "other-item", 0);
    spans.extend(item_spans(&run("proper"), 23, "owned-item", 0));
    export(&app, &owner, spans).await;
    assert!(app.wait_for_rows("observations", "exp-owner", 6).await);
    assert!(app.wait_for_rows("observations", "exp-stranger", 3).await);
    assert!(app.wait_until_written().await);

    let (_, items) = linked_run(&app, &owner, "owned", "proper", 1).await;
    assert_eq!(items.len(), 1);
    let (status, runs) = app
        .get_json("/api/public/datasets/owned/runs", &owner)
        .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = runs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    // The mismatched run exists (its dataset is the owner's) but links no item of another dataset.
    assert!(!names.contains(&"foreign"), "{runs}");
    let (_, mismatched) = run_items(&app, &owner, "owned", "mismatched").await;
    assert_eq!(mismatched, []);
    let (status, _) = app
        .get_json("/api/public/datasets/owned/runs", &stranger)
        .await;
    assert_eq!(status, 404);
}
