//! Datasets, dataset items, runs and run items through the public API, against the real
//! PostgreSQL: the spec's shapes, upserts, schemas, versions, folders in names, paging, run item
//! idempotence and run deletion, and every refusal with its status, writing nothing.

use reqwest::header::AUTHORIZATION;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{create_project, ApiKey, TestApp, TestConfig};

const DATASET_FIELDS: [&str; 9] = [
    "id",
    "name",
    "description",
    "metadata",
    "inputSchema",
    "expectedOutputSchema",
    "projectId",
    "createdAt",
    "updatedAt",
];

const ITEM_FIELDS: [&str; 12] = [
    "id",
    "status",
    "input",
    "expectedOutput",
    "metadata",
    "sourceTraceId",
    "sourceObservationId",
    "datasetId",
    "datasetName",
    "createdAt",
    "updatedAt",
    "mediaReferences",
];

const RUN_ITEM_FIELDS: [&str; 8] = [
    "id",
    "datasetRunId",
    "datasetRunName",
    "datasetItemId",
    "traceId",
    "observationId",
    "createdAt",
    "updatedAt",
];

async fn send(
    app: &TestApp,
    key: &ApiKey,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = app
        .http
        .request(method, app.url(path))
        .header(AUTHORIZATION, key.basic_auth());
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post(app: &TestApp, key: &ApiKey, path: &str, body: Value) -> (u16, Value) {
    send(app, key, Method::POST, path, Some(&body)).await
}

async fn get(app: &TestApp, key: &ApiKey, path: &str) -> (u16, Value) {
    send(app, key, Method::GET, path, None).await
}

async fn delete(app: &TestApp, key: &ApiKey, path: &str) -> (u16, Value) {
    send(app, key, Method::DELETE, path, None).await
}

fn assert_fields(value: &Value, fields: &[&str]) {
    let object = value.as_object().expect("an object");
    for field in fields {
        assert!(object.contains_key(*field), "{field} missing: {value}");
    }
}

fn encoded(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn create_dataset(app: &TestApp, key: &ApiKey, body: Value) -> Value {
    let (status, dataset) = post(app, key, "/api/public/v2/datasets", body).await;
    assert_eq!(status, 200, "{dataset}");
    dataset
}

async fn create_item(app: &TestApp, key: &ApiKey, body: Value) -> Value {
    let (status, item) = post(app, key, "/api/public/dataset-items", body).await;
    assert_eq!(status, 200, "{item}");
    item
}

#[tokio::test]
async fn datasets_are_created_updated_read_and_listed_with_folders_in_names() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "datasets").await;

    let dataset = create_dataset(
        &app,
        &key,
        json!({"name": "evals/qa & more", "description": "Questions", "metadata": {"owner": "x"}}),
    )
    .await;
    assert_fields(&dataset, &DATASET_FIELDS);
    assert_eq!(dataset["name"], "evals/qa & more");
    assert_eq!(dataset["projectId"], "datasets");
    assert_eq!(dataset["inputSchema"], Value::Null);
    assert!(dataset["createdAt"].as_str().unwrap().ends_with('Z'));

    // The same name again updates the dataset; what the request leaves out is kept.
    let again = create_dataset(
        &app,
        &key,
        json!({"name": "evals/qa & more", "metadata": {"owner": "y"}}),
    )
    .await;
    assert_eq!(again["id"], dataset["id"]);
    assert_eq!(again["description"], "Questions");
    assert_eq!(again["metadata"], json!({"owner": "y"}));

    let path = format!("/api/public/v2/datasets/{}", encoded("evals/qa & more"));
    let (status, read) = get(&app, &key, &path).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["id"], dataset["id"]);
    assert_eq!(read["metadata"], json!({"owner": "y"}));

    let (status, missing) = get(&app, &key, "/api/public/v2/datasets/nope").await;
    assert_eq!(status, 404, "{missing}");
    assert_eq!(missing["message"], "Dataset not found");

    for n in 0..3 {
        create_dataset(&app, &key, json!({"name": format!("d{n}")})).await;
    }
    let (status, page) = get(&app, &key, "/api/public/v2/datasets?page=2&limit=3").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        page["meta"],
        json!({"page": 2, "limit": 3, "totalItems": 4, "totalPages": 2})
    );
    // Newest first: the first dataset is the last one.
    assert_eq!(page["data"][0]["name"], "evals/qa & more");

    for (body, needle) in [
        (json!({"description": "no name"}), "name is required"),
        (json!({"name": "/lead"}), "start with a slash"),
        (json!({"name": "a//b"}), "consecutive slashes"),
        (json!({"name": "<b>bold</b>"}), "HTML"),
        (json!({"name": 7}), "name must be a string"),
        (
            json!({"name": "bad", "inputSchema": {"type": "nonsense"}}),
            "inputSchema is not a valid JSON Schema",
        ),
        (
            json!({"name": "remote", "inputSchema": {"$ref": "http://169.254.169.254/schema"}}),
            "other documents",
        ),
    ] {
        let (status, refusal) = post(&app, &key, "/api/public/v2/datasets", body.clone()).await;
        assert_eq!(status, 400, "{body}: {refusal}");
        assert!(
            refusal["message"].as_str().unwrap().contains(needle),
            "{body}: {refusal}"
        );
    }
    let (_, all) = get(&app, &key, "/api/public/v2/datasets?limit=50").await;
    assert_eq!(
        all["meta"]["totalItems"], 4,
        "a refused create wrote a dataset: {all}"
    );

    // Another project sees none of them.
    let other = create_project(&app.config, "datasets-other").await;
    let (status, _) = get(&app, &other, &path).await;
    assert_eq!(status, 404);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn items_are_upserted_versioned_archived_and_deleted() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "dataset-items").await;
    let dataset = create_dataset(&app, &key, json!({"name": "folder/items"})).await;

    let first = create_item(
        &app,
        &key,
        json!({"datasetName": "folder/items", "id": "item-1", "input": {"q": "2+2"},
               "expectedOutput": "4", "metadata": {"topic": "math"}, "sourceTraceId": "trace-9"}),
    )
    .await;
    assert_fields(&first, &ITEM_FIELDS);
    assert_eq!(first["status"], "ACTIVE");
    assert_eq!(first["datasetId"], dataset["id"]);
    assert_eq!(first["datasetName"], "folder/items");
    assert_eq!(first["mediaReferences"], json!([]));
    assert_eq!(first["sourceObservationId"], Value::Null);
    let v1 = first["updatedAt"].as_str().unwrap().to_string();

    // An upsert by id changes what it sends and keeps the rest.
    let second = create_item(
        &app,
        &key,
        json!({"datasetName": "folder/items", "id": "item-1", "expectedOutput": "four"}),
    )
    .await;
    assert_eq!(second["input"], json!({"q": "2+2"}));
    assert_eq!(second["expectedOutput"], "four");
    assert_eq!(second["metadata"], json!({"topic": "math"}));
    assert_eq!(second["createdAt"], first["createdAt"]);
    let v2 = second["updatedAt"].as_str().unwrap().to_string();
    assert!(v2 > v1, "{v1} then {v2}");

    let fresh = create_item(
        &app,
        &key,
        json!({"datasetName": "folder/items", "input": "generated id"}),
    )
    .await;
    assert!(!fresh["id"].as_str().unwrap().is_empty());
    assert_eq!(fresh["expectedOutput"], Value::Null);

    let (status, read) = get(&app, &key, "/api/public/dataset-items/item-1").await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["expectedOutput"], "four");

    // The dataset as it was at the first version, and as it is.
    let list = |version: Option<&str>| {
        let mut path = format!(
            "/api/public/dataset-items?datasetName={}",
            encoded("folder/items")
        );
        if let Some(v) = version {
            path.push_str(&format!("&version={}", encoded(v)));
        }
        path
    };
    let (status, at_v1) = get(&app, &key, &list(Some(&v1))).await;
    assert_eq!(status, 200, "{at_v1}");
    assert_eq!(at_v1["meta"]["totalItems"], 1, "{at_v1}");
    assert_eq!(at_v1["data"][0]["expectedOutput"], "4");
    let (_, now) = get(&app, &key, &list(None)).await;
    assert_eq!(now["meta"]["totalItems"], 2);
    assert_eq!(now["data"][0]["id"], fresh["id"], "newest first: {now}");
    assert_eq!(now["data"][1]["expectedOutput"], "four");

    // Archived items leave the list but stay readable by id.
    let archived = create_item(
        &app,
        &key,
        json!({"datasetName": "folder/items", "id": fresh["id"], "status": "ARCHIVED"}),
    )
    .await;
    assert_eq!(archived["status"], "ARCHIVED");
    assert_eq!(archived["input"], "generated id");
    let (_, now) = get(&app, &key, &list(None)).await;
    assert_eq!(now["meta"]["totalItems"], 1, "{now}");
    let (status, _) = get(
        &app,
        &key,
        &format!(
            "/api/public/dataset-items/{}",
            fresh["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(status, 200);

    // By source trace.
    let (_, by_trace) = get(
        &app,
        &key,
        "/api/public/dataset-items?sourceTraceId=trace-9",
    )
    .await;
    assert_eq!(by_trace["meta"]["totalItems"], 1);
    assert_eq!(by_trace["data"][0]["id"], "item-1");

    // Deleted: gone from reads now, still there at the earlier version.
    let (status, deleted) = delete(&app, &key, "/api/public/dataset-items/item-1").await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["message"], "Dataset item successfully deleted");
    let (status, _) = get(&app, &key, "/api/public/dataset-items/item-1").await;
    assert_eq!(status, 404);
    let (status, _) = delete(&app, &key, "/api/public/dataset-items/item-1").await;
    assert_eq!(status, 404);
    let (_, now) = get(&app, &key, &list(None)).await;
    assert_eq!(now["meta"]["totalItems"], 0, "{now}");
    let (_, at_v2) = get(&app, &key, &list(Some(&v2))).await;
    assert_eq!(at_v2["meta"]["totalItems"], 1, "{at_v2}");
    assert_eq!(at_v2["data"][0]["expectedOutput"], "four");

    // An id of another dataset is a conflict; unknown datasets are 404.
    create_dataset(&app, &key, json!({"name": "second"})).await;
    let (status, conflict) = post(
        &app,
        &key,
        "/api/public/dataset-items",
        json!({"datasetName": "second", "id": fresh["id"], "input": 1}),
    )
    .await;
    assert_eq!(status, 409, "{conflict}");
    let (status, missing) = post(
        &app,
        &key,
        "/api/public/dataset-items",
        json!({"datasetName": "nope", "input": 1}),
    )
    .await;
    assert_eq!(status, 404, "{missing}");
    let (status, refusal) =
        post(&app, &key, "/api/public/dataset-items", json!({"input": 1})).await;
    assert_eq!(status, 400, "{refusal}");
    let (status, refusal) = post(
        &app,
        &key,
        "/api/public/dataset-items",
        json!({"datasetName": "second", "id": "x".repeat(256)}),
    )
    .await;
    assert_eq!(status, 400, "{refusal}");
    let (status, refusal) = post(
        &app,
        &key,
        "/api/public/dataset-items",
        json!({"datasetName": "second", "status": "GONE"}),
    )
    .await;
    assert_eq!(status, 400, "{refusal}");
    let (status, refusal) = get(
        &app,
        &key,
        "/api/public/dataset-items?version=2024-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(status, 400, "{refusal}");
    assert!(refusal["message"]
        .as_str()
        .unwrap()
        .contains("datasetName is required"));
    let (_, second_items) = get(&app, &key, "/api/public/dataset-items?datasetName=second").await;
    assert_eq!(
        second_items["meta"]["totalItems"], 0,
        "a refused write wrote: {second_items}"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn schemas_refuse_items_and_schema_changes_that_existing_items_fail() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "dataset-schemas").await;
    let input_schema = json!({
        "type": "object",
        "properties": {"question": {"type": "string"}},
        "required": ["question"]
    });
    let dataset = create_dataset(
        &app,
        &key,
        json!({"name": "typed", "inputSchema": input_schema, "expectedOutputSchema": {"type": "string"}}),
    )
    .await;
    assert_eq!(dataset["inputSchema"], input_schema);

    create_item(&app, &key, json!({"datasetName": "typed", "id": "ok", "input": {"question": "why?"}, "expectedOutput": "because"})).await;
    let (status, refusal) = post(
        &app,
        &key,
        "/api/public/dataset-items",
        json!({"datasetName": "typed", "id": "bad", "input": {"question": 5}, "expectedOutput": "x"}),
    )
    .await;
    assert_eq!(status, 400, "{refusal}");
    let message = refusal["message"].as_str().unwrap();
    assert!(
        message.starts_with("Dataset item validation failed"),
        "{message}"
    );
    assert!(message.contains("input at /question"), "{message}");
    // A missing expected output is checked as null.
    let (status, refusal) = post(
        &app,
        &key,
        "/api/public/dataset-items",
        json!({"datasetName": "typed", "input": {"question": "q"}}),
    )
    .await;
    assert_eq!(status, 400, "{refusal}");
    assert!(
        refusal["message"]
            .as_str()
            .unwrap()
            .contains("expectedOutput"),
        "{refusal}"
    );
    // An update is checked as the whole item it makes.
    let (status, _) = post(
        &app,
        &key,
        "/api/public/dataset-items",
        json!({"datasetName": "typed", "id": "ok", "input": {}}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = get(&app, &key, "/api/public/dataset-items/bad").await;
    assert_eq!(status, 404);

    // A schema the existing item fails is refused and the old one kept; removing one works.
    let (status, refusal) = post(
        &app,
        &key,
        "/api/public/v2/datasets",
        json!({"name": "typed", "expectedOutputSchema": {"type": "number"}}),
    )
    .await;
    assert_eq!(status, 400, "{refusal}");
    assert!(
        refusal["message"].as_str().unwrap().contains("item ok"),
        "{refusal}"
    );
    let (_, read) = get(&app, &key, "/api/public/v2/datasets/typed").await;
    assert_eq!(read["expectedOutputSchema"], json!({"type": "string"}));
    let cleared = create_dataset(
        &app,
        &key,
        json!({"name": "typed", "expectedOutputSchema": null}),
    )
    .await;
    assert_eq!(cleared["expectedOutputSchema"], Value::Null);
    assert_eq!(cleared["inputSchema"], input_schema);
    create_item(
        &app,
        &key,
        json!({"datasetName": "typed", "input": {"question": "no output"}}),
    )
    .await;
    app.stop().await.unwrap();
}

#[tokio::test]
async fn items_page_through_a_dataset_in_a_stable_order() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "dataset-paging").await;
    create_dataset(&app, &key, json!({"name": "paged"})).await;
    for n in 0..7 {
        create_item(
            &app,
            &key,
            json!({"datasetName": "paged", "id": format!("p{n}"), "input": n}),
        )
        .await;
    }
    let mut seen = Vec::new();
    for page in 1..=3 {
        let (status, body) = get(
            &app,
            &key,
            &format!("/api/public/dataset-items?datasetName=paged&limit=3&page={page}"),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["meta"],
            json!({"page": page, "limit": 3, "totalItems": 7, "totalPages": 3})
        );
        seen.extend(
            body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_string()),
        );
    }
    let expected: Vec<String> = (0..7).rev().map(|n| format!("p{n}")).collect();
    assert_eq!(seen, expected);
    for bad in ["limit=0", "page=0", "limit=abc", "limit=101"] {
        let (status, _) = get(
            &app,
            &key,
            &format!("/api/public/dataset-items?datasetName=paged&{bad}"),
        )
        .await;
        assert_eq!(status, 400, "{bad}");
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn run_items_create_runs_once_and_runs_are_read_and_deleted() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "dataset-runs").await;
    let dataset = create_dataset(&app, &key, json!({"name": "runs/set"})).await;
    for id in ["r1", "r2"] {
        create_item(
            &app,
            &key,
            json!({"datasetName": "runs/set", "id": id, "input": id}),
        )
        .await;
    }

    let body = json!({"runName": "run a/1", "datasetItemId": "r1", "traceId": "trace-1",
                      "runDescription": "first", "metadata": {"model": "m"}});
    let (status, first) = post(&app, &key, "/api/public/dataset-run-items", body.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert_fields(&first, &RUN_ITEM_FIELDS);
    assert_eq!(first["datasetRunName"], "run a/1");
    assert_eq!(first["observationId"], Value::Null);
    // The run's id is the one the SDKs' experiment runners compute for this run name, so their
    // spans and run-level scores name this run even though it was made here first.
    assert_eq!(
        first["datasetRunId"],
        langfuse_rs::domain::dataset::run_id(
            "dataset-runs",
            dataset["id"].as_str().unwrap(),
            "run a/1"
        )
    );
    // The same link again is the same run item.
    let (status, repeated) = post(&app, &key, "/api/public/dataset-run-items", body).await;
    assert_eq!(status, 200);
    assert_eq!(repeated["id"], first["id"]);
    let (status, with_observation) = post(
        &app,
        &key,
        "/api/public/dataset-run-items",
        json!({"runName": "run a/1", "datasetItemId": "r2", "traceId": "trace-2", "observationId": "obs-2"}),
    )
    .await;
    assert_eq!(status, 200, "{with_observation}");
    assert_eq!(with_observation["datasetRunId"], first["datasetRunId"]);
    assert_eq!(with_observation["observationId"], "obs-2");

    let runs_path = format!("/api/public/datasets/{}/runs", encoded("runs/set"));
    let (status, runs) = get(&app, &key, &runs_path).await;
    assert_eq!(status, 200, "{runs}");
    assert_eq!(runs["meta"]["totalItems"], 1);
    let run = &runs["data"][0];
    assert_eq!(run["name"], "run a/1");
    assert_eq!(run["description"], "first");
    assert_eq!(run["metadata"], json!({"model": "m"}));
    assert_eq!(run["datasetId"], dataset["id"]);
    assert_eq!(run["datasetName"], "runs/set");

    let run_path = format!("{runs_path}/{}", encoded("run a/1"));
    let (status, with_items) = get(&app, &key, &run_path).await;
    assert_eq!(status, 200, "{with_items}");
    let items = with_items["datasetRunItems"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{with_items}");
    assert_eq!(items[0]["traceId"], "trace-1");
    assert_eq!(items[1]["observationId"], "obs-2");

    let dataset_id = dataset["id"].as_str().unwrap();
    let (status, listed) = get(
        &app,
        &key,
        &format!(
            "/api/public/dataset-run-items?datasetId={dataset_id}&runName={}&limit=1",
            encoded("run a/1")
        ),
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["meta"]["totalItems"], 2);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);

    // Refusals.
    for (body, expected) in [
        (
            json!({"runName": "x", "datasetItemId": "missing", "traceId": "t"}),
            404,
        ),
        (json!({"runName": "x", "datasetItemId": "r1"}), 400),
        (json!({"datasetItemId": "r1", "traceId": "t"}), 400),
        (
            json!({"runName": "x", "datasetItemId": "r1", "traceId": "t", "createdAt": "yesterday"}),
            400,
        ),
    ] {
        let (status, refusal) =
            post(&app, &key, "/api/public/dataset-run-items", body.clone()).await;
        assert_eq!(status, expected, "{body}: {refusal}");
    }
    let (_, runs) = get(&app, &key, &runs_path).await;
    assert_eq!(
        runs["meta"]["totalItems"], 1,
        "a refused run item made a run: {runs}"
    );

    let (status, deleted) = delete(&app, &key, &run_path).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["message"], "Dataset run successfully deleted");
    let (status, _) = get(&app, &key, &run_path).await;
    assert_eq!(status, 404);
    let (status, _) = delete(&app, &key, &run_path).await;
    assert_eq!(status, 404);
    let (_, runs) = get(&app, &key, &runs_path).await;
    assert_eq!(runs["meta"]["totalItems"], 0);
    let (status, _) = get(&app, &key, "/api/public/datasets/nope/runs").await;
    assert_eq!(status, 404);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_python_sdk_5_creates_datasets_with_schemas_and_reads_them_at_a_version() {
    use crate::sdk::{run_roundtrip, sdk_python, sdk_script};
    let python = sdk_python("LANGFUSE_TEST_PYTHON_SDK_V5", "sdk-python-v5");
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "sdk5-datasets").await;
    let mut command = tokio::process::Command::new(python);
    command
        .arg(sdk_script("python_v5_datasets.py"))
        .env("DATASET", "sdk/capitals");
    let report = run_roundtrip(command, &app, &key, "").await;
    assert_eq!(report["created"]["name"], "sdk/capitals", "{report}");
    assert_eq!(
        report["created"]["input_schema"]["required"],
        json!(["country"])
    );
    assert_eq!(
        report["upsert"],
        json!({"same_id": true, "input": {"country": "Italy"}, "expected_output": "Rome",
               "metadata": {"difficulty": "easy"}, "status": "ACTIVE"}),
        "{report}"
    );
    assert_eq!(report["refused"]["status"], 400, "{report}");
    let refusal = report["refused"]["message"].as_str().unwrap();
    assert!(refusal.contains("input at /country"), "{refusal}");
    assert_eq!(
        report["current"],
        json!({"name": "sdk/capitals", "description": "capitals",
               "expected_output_schema": {"type": "string"},
               "items": [["France", "Paris", "sdk/capitals"], ["Italy", "Rome", "sdk/capitals"]]}),
        "{report}"
    );
    assert_eq!(
        report["earlier"],
        json!([["France", "Paris"], ["Italy", "Rom"]]),
        "{report}"
    );
    // The refused item was not written.
    let (_, items) = get(
        &app,
        &key,
        "/api/public/dataset-items?datasetName=sdk%2Fcapitals",
    )
    .await;
    assert_eq!(items["meta"]["totalItems"], 2, "{items}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_legacy_python_sdk_2_links_items_to_a_run_and_reads_it_back() {
    use crate::sdk::{run_roundtrip, sdk_python, sdk_script};
    let python = sdk_python("LANGFUSE_TEST_PYTHON_SDK_V2", "sdk-python-v2");
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "sdk2-datasets").await;
    let mut command = tokio::process::Command::new(python);
    command
        .arg(sdk_script("python_v2_datasets.py"))
        .env("DATASET", "legacy set")
        .env("RUN", "legacy run 1");
    let report = run_roundtrip(command, &app, &key, "").await;
    assert_eq!(
        report,
        json!({
            "items": ["legacy-0", "legacy-1", "legacy-2"],
            "runs": [["legacy run 1", "legacy run", {"model": "m1"}, "legacy set"]],
            "run_items": [
                ["legacy-0", true, "legacy run 1"],
                ["legacy-1", true, "legacy run 1"],
                ["legacy-2", true, "legacy run 1"],
            ],
        })
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_js_client_reads_a_dataset_links_an_item_and_deletes_the_run() {
    use crate::sdk::{node_modules, run_roundtrip, sdk_script};
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "js-datasets").await;
    let mut command = tokio::process::Command::new("node");
    command
        .arg(sdk_script("js_client_datasets.js"))
        .env("NODE_PATH", node_modules())
        .env("DATASET", "js/folder set");
    let report = run_roundtrip(command, &app, &key, "").await;
    assert_eq!(
        report,
        json!({
            "created": ["js/folder set", {"lang": "js"}],
            "items": [
                ["js-0", {"n": 0}, {"double": 0}, "js/folder set"],
                ["js-1", {"n": 1}, {"double": 2}, "js/folder set"],
                ["js-2", {"n": 2}, {"double": 4}, "js/folder set"],
            ],
            "link": ["js-1", true, true, true],
            "runs": [["js run", "from js", "js/folder set"]],
            "runItems": [["js-1", true]],
            "read": ["js-2", "ACTIVE", {"double": 4}],
            "deletedItem": 404,
            "deletedRun": 404,
        })
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_legacy_dataset_paths_answer_items_and_run_names() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "datasets-v1").await;
    let (status, created) = post(
        &app,
        &key,
        "/api/public/datasets",
        json!({"name": "v1/set", "description": "old"}),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    assert_fields(&created, &DATASET_FIELDS);
    assert_eq!(
        (&created["items"], &created["runs"]),
        (&json!([]), &json!([]))
    );
    create_item(
        &app,
        &key,
        json!({"datasetName": "v1/set", "id": "a", "input": 1}),
    )
    .await;
    create_item(
        &app,
        &key,
        json!({"datasetName": "v1/set", "id": "b", "input": 2, "status": "ARCHIVED"}),
    )
    .await;
    let (status, _) = post(
        &app,
        &key,
        "/api/public/dataset-run-items",
        json!({"runName": "r", "datasetItemId": "a", "traceId": "t"}),
    )
    .await;
    assert_eq!(status, 200);
    // Archived items take no part in new runs.
    let (status, _) = post(
        &app,
        &key,
        "/api/public/dataset-run-items",
        json!({"runName": "r", "datasetItemId": "b", "traceId": "t"}),
    )
    .await;
    assert_eq!(status, 404);

    let (status, read) = get(&app, &key, "/api/public/datasets/v1%2Fset").await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["runs"], json!(["r"]));
    let items = read["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{read}");
    assert_fields(&items[0], &ITEM_FIELDS);
    assert_eq!(items[0]["id"], "a");
    let (status, list) = get(&app, &key, "/api/public/datasets").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["data"][0]["items"], json!(["a"]));
    assert_eq!(list["data"][0]["runs"], json!(["r"]));
    assert_eq!(list["meta"]["totalItems"], 1);
    // A page of several datasets: each lists its own items and runs only.
    let (status, _) = post(
        &app,
        &key,
        "/api/public/datasets",
        json!({"name": "second"}),
    )
    .await;
    assert_eq!(status, 200);
    create_item(&app, &key, json!({"datasetName": "second", "id": "c"})).await;
    let (_, list) = get(&app, &key, "/api/public/datasets").await;
    let named = |name: &str| {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {list}"))
    };
    assert_eq!(
        (&named("v1/set")["items"], &named("v1/set")["runs"]),
        (&json!(["a"]), &json!(["r"]))
    );
    assert_eq!(
        (&named("second")["items"], &named("second")["runs"]),
        (&json!(["c"]), &json!([]))
    );
    let (status, _) = get(&app, &key, "/api/public/datasets/unknown").await;
    assert_eq!(status, 404);
    let (status, _) = send(
        &app,
        &key,
        Method::PUT,
        "/api/public/v2/datasets",
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, 405);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn concurrent_writes_of_one_name_or_id_all_land_in_order() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "dataset-races").await;
    let creates = (0..8).map(|n| {
        post(
            &app,
            &key,
            "/api/public/v2/datasets",
            json!({"name": "raced", "description": format!("d{n}")}),
        )
    });
    let answers = futures::future::join_all(creates).await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(status, d)| {
            assert_eq!(*status, 200, "{d}");
            d["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one dataset for one name: {answers:?}");

    let writes = (0..8).map(|n| {
        post(
            &app,
            &key,
            "/api/public/dataset-items",
            json!({"datasetName": "raced", "id": "hot", "input": n}),
        )
    });
    let answers = futures::future::join_all(writes).await;
    let mut versions: Vec<String> = answers
        .iter()
        .map(|(status, item)| {
            assert_eq!(*status, 200, "{item}");
            item["updatedAt"].as_str().unwrap().to_string()
        })
        .collect();
    versions.sort();
    versions.dedup();
    assert_eq!(
        versions.len(),
        8,
        "every write made its own version: {answers:?}"
    );
    let (_, list) = get(&app, &key, "/api/public/dataset-items?datasetName=raced").await;
    assert_eq!(list["meta"]["totalItems"], 1, "{list}");
    // The current version is the last one written, and each earlier version reads back as written.
    let last = answers
        .iter()
        .find(|(_, i)| i["updatedAt"] == json!(versions[7]))
        .unwrap();
    assert_eq!(list["data"][0]["input"], last.1["input"]);
    for (_, written) in &answers {
        let at = written["updatedAt"].as_str().unwrap();
        let (_, then) = get(
            &app,
            &key,
            &format!(
                "/api/public/dataset-items?datasetName=raced&version={}",
                encoded(at)
            ),
        )
        .await;
        assert_eq!(
            then["data"][0]["input"], written["input"],
            "at {at}: {then}"
        );
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn nul_characters_are_refused_in_parameters_and_dropped_from_values() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "dataset-nul").await;
    create_dataset(&app, &key, json!({"name": "nul", "description": "a\u{0}b"})).await;
    let item = create_item(&app, &key, json!({"datasetName": "nul", "id": "n1", "input": {"k\u{0}": "v\u{0}w"}, "sourceTraceId": "t\u{0}1"})).await;
    assert_eq!(item["input"], json!({"k": "vw"}));
    assert_eq!(item["sourceTraceId"], "t1");
    for path in [
        "/api/public/dataset-items/n%001",
        "/api/public/dataset-items?datasetName=nul&sourceTraceId=t%001",
        "/api/public/dataset-items?datasetName=n%00ul",
        "/api/public/v2/datasets/n%00ul",
        "/api/public/dataset-run-items?datasetId=x&runName=r%00",
    ] {
        let (status, refusal) = get(&app, &key, path).await;
        assert_eq!(status, 400, "{path}: {refusal}");
    }
    let (status, _) = get(&app, &key, "/api/public/dataset-items?datasetName=n%2500ul").await;
    assert_eq!(status, 404);
    app.stop().await.unwrap();
}
