//! The cursor-paged reads: `GET /api/public/v2/observations` and `GET /api/public/v3/scores`,
//! over data sent through the ingestion API and written by the worker.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{
    create_project, envelope, eventually, ApiKey, TestApp, TestConfig, INGESTION,
};

async fn ingest(app: &TestApp, key: &ApiKey, events: Vec<Value>) {
    app.ingest_accepted(key, &json!({ "batch": events })).await;
}

async fn ok(app: &TestApp, key: &ApiKey, path: &str) -> Value {
    let (status, body) = app.get_json(path, key).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data in {body}"))
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_string())
        .collect()
}

fn query(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

fn with_filter(filter: Value) -> String {
    query(&[("filter", &filter.to_string())])
}

/// Two traces with five observations between them (and one whose trace was never sent), and six scores
/// on traces, an observation, a session and a dataset run.
async fn seeded_app() -> (TestApp, ApiKey) {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "reader").await;
    seed(&app, &key).await;
    (app, key)
}

async fn seed(app: &TestApp, key: &ApiKey) {
    let project = "reader";
    // The score config `sc-num` names: a score naming a config that does not exist is refused.
    // Written directly, so its id is one a filter can name.
    app.stores
        .postgres
        .get()
        .await
        .unwrap()
        .execute(
            "INSERT INTO score_configs (id, project_id, name, data_type)
             VALUES ('cfg-1', $1, 'quality', 'NUMERIC')",
            &[&project],
        )
        .await
        .unwrap();
    ingest(app, key, vec![
        envelope("e1", "trace-create", "2024-05-01T10:00:00.000Z", json!({"id": "t1", "name": "chat", "userId": "alice",
            "sessionId": "s1", "tags": ["prod", "vip"], "release": "r1", "public": true})),
        envelope("e2", "trace-create", "2024-05-02T09:00:00.000Z", json!({"id": "t2", "name": "search", "userId": "bob",
            "sessionId": "s2", "tags": ["prod"]})),
        envelope("e3", "span-create", "2024-05-01T10:00:00.000Z", json!({"id": "s-1", "traceId": "t1", "name": "retrieve",
            "startTime": "2024-05-01T10:00:00.000Z", "endTime": "2024-05-01T10:00:01.500Z", "version": "v1",
            "metadata": {"source": "web", "n": 7, "flag": true, "long": "x".repeat(300), "big": "y".repeat(250)},
            "input": {"query": "hi"}, "output": "Found the Needle, here."})),
        envelope("e4", "generation-create", "2024-05-01T10:00:01.000Z", json!({"id": "g-1", "traceId": "t1",
            "parentObservationId": "s-1", "name": "llm", "model": "gpt-4o", "startTime": "2024-05-01T10:00:01.000Z",
            "endTime": "2024-05-01T10:00:03.000Z", "completionStartTime": "2024-05-01T10:00:01.250Z",
            "modelParameters": {"temperature": 0.2}, "usage": {"input": 100, "output": 50},
            "costDetails": {"input": 0.01, "output": 0.02}, "promptName": "qa", "promptVersion": 3,
            "level": "WARNING", "statusMessage": "slow", "input": "What is the needle?", "output": "needles are sharp"})),
        envelope("e5", "event-create", "2024-05-02T09:00:00.000Z", json!({"id": "e-1", "traceId": "t2", "name": "cache-miss",
            "startTime": "2024-05-02T09:00:00.000Z", "level": "ERROR", "environment": "production", "version": "v2",
            "metadata": {"source": "batch", "evaluator_id": "ev-1", "job_configuration_id": "job-1"}})),
        envelope("e6", "generation-create", "2024-05-02T09:00:01.000Z", json!({"id": "g-2", "traceId": "t2",
            "parentObservationId": "e-1", "name": "llm", "model": "claude", "startTime": "2024-05-02T09:00:01.000Z",
            "endTime": "2024-05-02T09:00:01.100Z", "usage": {"input": 5, "output": 1}})),
        envelope("e7", "span-create", "2024-05-03T08:00:00.000Z", json!({"id": "o-orphan", "traceId": "t-none",
            "name": "orphan", "startTime": "2024-05-03T08:00:00.000Z"})),
        envelope("e8", "score-create", "2024-05-01T10:00:04.000Z", json!({"id": "sc-num", "traceId": "t1", "name": "quality",
            "value": 0.75, "comment": "fine", "metadata": {"reviewer": "r", "score": 1}, "configId": "cfg-1"})),
        envelope("e9", "score-create", "2024-05-01T10:00:05.000Z", json!({"id": "sc-bool", "traceId": "t1",
            "observationId": "g-1", "name": "helpful", "value": 1, "dataType": "BOOLEAN"})),
        envelope("e10", "score-create", "2024-05-01T10:00:06.000Z", json!({"id": "sc-cat", "sessionId": "s1",
            "name": "verdict", "value": "good", "environment": "production"})),
        envelope("e11", "score-create", "2024-05-01T10:00:07.000Z", json!({"id": "sc-run", "datasetRunId": "run-1",
            "name": "accuracy", "value": 0.2})),
        envelope("e12", "score-create", "2024-05-02T09:00:05.000Z", json!({"id": "sc-queue", "traceId": "t2",
            "name": "quality", "value": 0.3, "queueId": "q-1"})),
        envelope("e13", "score-create", "2024-05-02T09:00:06.000Z", json!({"id": "sc-bool-false", "traceId": "t2",
            "observationId": "e-1", "name": "helpful", "value": 0, "dataType": "BOOLEAN"})),
    ]).await;
    // Three: the worker writes a bare trace for `t-none`, which was never sent.
    assert!(app.wait_for_rows("traces", project, 3).await);
    assert!(app.wait_for_rows("observations", project, 5).await);
    assert!(app.wait_for_rows("scores", project, 6).await);
}

const OBSERVATIONS: &str = "/api/public/v2/observations";
const SCORES: &str = "/api/public/v3/scores";

const CORE: &[&str] = &[
    "endTime",
    "id",
    "inputPrice",
    "latency",
    "modelId",
    "outputPrice",
    "parentObservationId",
    "projectId",
    "startTime",
    "timeToFirstToken",
    "totalPrice",
    "traceId",
    "type",
];

fn keys_of(item: &Value) -> Vec<String> {
    item.as_object().unwrap().keys().cloned().collect()
}

fn expected_keys(groups: &[&[&str]]) -> Vec<String> {
    let mut keys: Vec<String> = CORE.iter().map(|k| k.to_string()).collect();
    for group in groups {
        keys.extend(group.iter().map(|k| k.to_string()));
    }
    keys.sort();
    keys
}

fn item<'a>(body: &'a Value, id: &str) -> &'a Value {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {body}"))
}

const BASIC: &[&str] = &[
    "bookmarked",
    "environment",
    "isRootObservation",
    "level",
    "name",
    "public",
    "sessionId",
    "statusMessage",
    "userId",
    "version",
];
const TIME: &[&str] = &["completionStartTime", "createdAt", "updatedAt"];
const IO: &[&str] = &["input", "output"];
const METADATA: &[&str] = &["metadata"];
const MODEL: &[&str] = &["internalModelId", "model", "modelParameters"];
const USAGE: &[&str] = &[
    "costDetails",
    "inputCost",
    "inputUsage",
    "outputCost",
    "outputUsage",
    "totalCost",
    "totalUsage",
    "usageDetails",
    "usagePricingTierId",
    "usagePricingTierName",
];
const PROMPT: &[&str] = &["promptId", "promptName", "promptVersion"];
const TRACE_CONTEXT: &[&str] = &["release", "tags", "traceName"];

#[tokio::test]
async fn v2_observations_return_exactly_the_requested_field_groups() {
    let (app, key) = seeded_app().await;
    let path = |fields: &str| format!("{OBSERVATIONS}?traceId=t1&fields={fields}");

    let core = ok(&app, &key, &path("core")).await;
    assert_eq!(ids(&core), ["g-1", "s-1"]);
    assert_eq!(core["meta"], json!({}));
    let generation = item(&core, "g-1");
    assert_eq!(keys_of(generation), expected_keys(&[]));
    assert_eq!(
        *generation,
        json!({"id": "g-1", "traceId": "t1", "startTime": "2024-05-01T10:00:01.000Z",
            "endTime": "2024-05-01T10:00:03.000Z", "projectId": "reader", "parentObservationId": "s-1",
            "type": "GENERATION", "latency": 2.0, "timeToFirstToken": null, "modelId": null,
            "inputPrice": null, "outputPrice": null, "totalPrice": null})
    );
    assert_eq!(item(&core, "s-1")["parentObservationId"], Value::Null);

    // No `fields`, or an empty one: core and basic.
    for default in [format!("{OBSERVATIONS}?traceId=t1"), path("")] {
        let body = ok(&app, &key, &default).await;
        assert_eq!(keys_of(item(&body, "g-1")), expected_keys(&[BASIC]));
    }
    // Unknown names are dropped: only core is left.
    let body = ok(&app, &key, &path("bogus")).await;
    assert_eq!(keys_of(item(&body, "g-1")), expected_keys(&[]));

    let basic = ok(&app, &key, &path("basic")).await;
    let g = item(&basic, "g-1");
    assert_eq!(
        (
            &g["name"],
            &g["level"],
            &g["statusMessage"],
            &g["version"],
            &g["environment"]
        ),
        (
            &json!("llm"),
            &json!("WARNING"),
            &json!("slow"),
            &Value::Null,
            &json!("default")
        )
    );
    assert_eq!(
        (
            &g["userId"],
            &g["sessionId"],
            &g["public"],
            &g["bookmarked"],
            &g["isRootObservation"]
        ),
        (
            &json!("alice"),
            &json!("s1"),
            &json!(true),
            &json!(false),
            &json!(false)
        )
    );
    assert_eq!(item(&basic, "s-1")["isRootObservation"], true);
    assert_eq!(item(&basic, "s-1")["version"], "v1");

    let time = ok(&app, &key, &path("time")).await;
    let g = item(&time, "g-1");
    assert_eq!(keys_of(g), expected_keys(&[TIME]));
    assert_eq!(g["completionStartTime"], "2024-05-01T10:00:01.250Z");
    assert!(g["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        g["timeToFirstToken"], 0.25,
        "known once the completion start is read"
    );

    let io = ok(&app, &key, &path("io")).await;
    assert_eq!(keys_of(item(&io, "g-1")), expected_keys(&[IO]));
    assert_eq!(item(&io, "g-1")["input"], "What is the needle?");
    // Stored as JSON, returned as the raw string.
    assert_eq!(item(&io, "s-1")["input"], r#"{"query":"hi"}"#);
    assert_eq!(item(&io, "s-1")["output"], "Found the Needle, here.");

    let meta = ok(&app, &key, &path("metadata")).await;
    assert_eq!(keys_of(item(&meta, "s-1")), expected_keys(&[METADATA]));
    let m = &item(&meta, "s-1")["metadata"];
    assert_eq!(
        (&m["source"], &m["n"], &m["flag"]),
        (&json!("web"), &json!(7), &json!(true))
    );
    assert_eq!(m["long"], "x".repeat(200), "cut to 200 characters");
    assert_eq!(m["big"], "y".repeat(200));
    assert_eq!(item(&meta, "g-1")["metadata"], json!({}));
    let expanded = ok(
        &app,
        &key,
        &format!("{}&expandMetadata=long,missing", path("metadata")),
    )
    .await;
    let m = &item(&expanded, "s-1")["metadata"];
    assert_eq!(m["long"], "x".repeat(300), "expanded");
    assert_eq!(m["big"], "y".repeat(200), "not expanded");
    assert!(m.get("missing").is_none());
    let not_expanded = ok(&app, &key, &format!("{}&expandMetadata=", path("metadata"))).await;
    assert_eq!(
        item(&not_expanded, "s-1")["metadata"]["long"],
        "x".repeat(200)
    );

    let model = ok(&app, &key, &path("model")).await;
    let g = item(&model, "g-1");
    assert_eq!(keys_of(g), expected_keys(&[MODEL]));
    assert_eq!(
        (&g["model"], &g["internalModelId"], &g["modelParameters"]),
        // The shipped gpt-4o model, matched by the worker.
        (
            &json!("gpt-4o"),
            &json!("b9854a5c92dc496b997d99d20"),
            &json!({"temperature": 0.2})
        )
    );
    assert_eq!(item(&model, "s-1")["modelParameters"], Value::Null);

    let usage = ok(&app, &key, &path("usage")).await;
    let g = item(&usage, "g-1");
    assert_eq!(keys_of(g), expected_keys(&[USAGE]));
    assert_eq!(
        g["usageDetails"],
        json!({"input": 100, "output": 50, "total": 150})
    );
    assert_eq!(
        (&g["inputUsage"], &g["outputUsage"], &g["totalUsage"]),
        (&json!(100), &json!(50), &json!(150))
    );
    assert!((g["costDetails"]["input"].as_f64().unwrap() - 0.01).abs() < 1e-9);
    assert!((g["inputCost"].as_f64().unwrap() - 0.01).abs() < 1e-9);
    assert!((g["outputCost"].as_f64().unwrap() - 0.02).abs() < 1e-9);
    assert!(
        (g["totalCost"].as_f64().unwrap() - 0.03).abs() < 1e-9,
        "{g}"
    );
    // The tier its usage falls in is recorded even though the costs were provided (and kept).
    assert_eq!(g["usagePricingTierName"], json!("Standard"));
    let s = item(&usage, "s-1");
    assert_eq!(
        (
            &s["usageDetails"],
            &s["inputUsage"],
            &s["inputCost"],
            &s["totalCost"]
        ),
        (&json!({}), &json!(0), &Value::Null, &json!(0.0))
    );

    let prompt = ok(&app, &key, &path("prompt")).await;
    let g = item(&prompt, "g-1");
    assert_eq!(keys_of(g), expected_keys(&[PROMPT]));
    assert_eq!(
        (&g["promptId"], &g["promptName"], &g["promptVersion"]),
        (&Value::Null, &json!("qa"), &json!(3))
    );

    let metrics = ok(&app, &key, &path("metrics")).await;
    let g = item(&metrics, "g-1");
    assert_eq!(keys_of(g), expected_keys(&[]));
    assert_eq!(
        (&g["latency"], &g["timeToFirstToken"]),
        (&json!(2.0), &json!(0.25))
    );

    let context = ok(&app, &key, &format!("{OBSERVATIONS}?fields=trace_context")).await;
    let g = item(&context, "g-1");
    assert_eq!(keys_of(g), expected_keys(&[TRACE_CONTEXT]));
    assert_eq!(
        (&g["tags"], &g["release"], &g["traceName"]),
        (&json!(["prod", "vip"]), &json!("r1"), &json!("chat"))
    );
    let orphan = item(&context, "o-orphan");
    assert_eq!(
        (&orphan["tags"], &orphan["release"], &orphan["traceName"]),
        (&json!([]), &Value::Null, &json!("orphan")),
        "no trace: a root observation names it"
    );
    assert_eq!(item(&context, "g-2")["traceName"], "search");

    let all = "core,basic,time,io,metadata,model,usage,prompt,metrics,trace_context";
    let everything = ok(&app, &key, &path(all)).await;
    assert_eq!(
        keys_of(item(&everything, "g-1")),
        expected_keys(&[
            BASIC,
            TIME,
            IO,
            METADATA,
            MODEL,
            USAGE,
            PROMPT,
            TRACE_CONTEXT
        ])
    );
}

#[tokio::test]
async fn v2_observations_filter_by_query_parameters_and_structured_filters() {
    let (app, key) = seeded_app().await;
    let all = ["o-orphan", "g-2", "e-1", "g-1", "s-1"];
    let listed = ok(&app, &key, OBSERVATIONS).await;
    assert_eq!(ids(&listed), all, "newest start time first");

    for (params, expected) in [
        ("name=llm", vec!["g-2", "g-1"]),
        ("userId=alice", vec!["g-1", "s-1"]),
        ("userId=nobody", vec![]),
        ("sessionId=s2", vec!["g-2", "e-1"]),
        ("type=GENERATION", vec!["g-2", "g-1"]),
        ("traceId=t1", vec!["g-1", "s-1"]),
        ("level=ERROR", vec!["e-1"]),
        ("parentObservationId=", vec!["o-orphan", "e-1", "s-1"]),
        ("parentObservationId=s-1", vec!["g-1"]),
        ("isRootObservation=true", vec!["o-orphan", "e-1", "s-1"]),
        ("isRootObservation=false", vec!["g-2", "g-1"]),
        ("environment=production", vec!["e-1"]),
        ("environment=production&environment=default", all.to_vec()),
        ("environment=production,default", all.to_vec()),
        (
            "fromStartTime=2024-05-02T00:00:00Z",
            vec!["o-orphan", "g-2", "e-1"],
        ),
        ("toStartTime=2024-05-02T00:00:00Z", vec!["g-1", "s-1"]),
        (
            "fromStartTime=2024-05-01T10:00:01Z&toStartTime=2024-05-03T00:00:00Z",
            vec!["g-2", "e-1", "g-1"],
        ),
        ("version=v1", vec!["s-1"]),
        ("type=GENERATION&userId=bob", vec!["g-2"]),
        ("name=llm&fromStartTime=2024-05-02T00:00:00Z", vec!["g-2"]),
        ("traceId=t1&level=WARNING", vec!["g-1"]),
        ("sessionId=s1&isRootObservation=true", vec!["s-1"]),
        ("parseIoAsJson=false&limit=2", vec!["o-orphan", "g-2"]),
    ] {
        let body = ok(&app, &key, &format!("{OBSERVATIONS}?{params}")).await;
        assert_eq!(ids(&body), expected, "{params}");
    }

    let f = |t: &str, column: &str, operator: &str, value: Value| json!({"type": t, "column": column, "operator": operator, "value": value});
    // [filter (one condition, or a list of them), the ids it selects]. Input and output are
    // searched by token, case-insensitively: "needles" is not the token "needle".
    let cases: Value = serde_json::from_str(
        r#"[
        [{"type": "datetime", "column": "startTime", "operator": ">=", "value": "2024-05-02T00:00:00Z"}, ["o-orphan", "g-2", "e-1"]],
        [{"type": "datetime", "column": "startTime", "operator": "<", "value": "2024-05-02"}, ["g-1", "s-1"]],
        [{"type": "datetime", "column": "endTime", "operator": "<=", "value": "2024-05-01T10:00:01.500Z"}, ["s-1"]],
        [{"type": "datetime", "column": "endTime", "operator": ">", "value": "2024-05-02T09:00:00.050Z"}, ["g-2"]],
        [{"type": "string", "column": "name", "operator": "=", "value": "llm"}, ["g-2", "g-1"]],
        [{"type": "string", "column": "name", "operator": "contains", "value": "ret"}, ["s-1"]],
        [{"type": "string", "column": "name", "operator": "does not contain", "value": "l"}, ["o-orphan", "e-1", "s-1"]],
        [{"type": "string", "column": "name", "operator": "starts with", "value": "cache"}, ["e-1"]],
        [{"type": "string", "column": "name", "operator": "ends with", "value": "m"}, ["g-2", "g-1"]],
        [{"type": "string", "column": "id", "operator": "=", "value": "s-1"}, ["s-1"]],
        [{"type": "string", "column": "traceId", "operator": "=", "value": "t2"}, ["g-2", "e-1"]],
        [{"type": "string", "column": "type", "operator": "=", "value": "EVENT"}, ["e-1"]],
        [{"type": "string", "column": "level", "operator": "=", "value": "WARNING"}, ["g-1"]],
        [{"type": "string", "column": "statusMessage", "operator": "=", "value": "slow"}, ["g-1"]],
        [{"type": "string", "column": "version", "operator": "starts with", "value": "v"}, ["e-1", "s-1"]],
        [{"type": "string", "column": "environment", "operator": "=", "value": "production"}, ["e-1"]],
        [{"type": "string", "column": "traceEnvironment", "operator": "=", "value": "default"}, ["o-orphan", "g-2", "g-1", "s-1"]],
        [{"type": "string", "column": "userId", "operator": "=", "value": "bob"}, ["g-2", "e-1"]],
        [{"type": "string", "column": "sessionId", "operator": "contains", "value": "1"}, ["g-1", "s-1"]],
        [{"type": "string", "column": "release", "operator": "=", "value": "r1"}, ["g-1", "s-1"]],
        [{"type": "string", "column": "release", "operator": "=", "value": ""}, ["o-orphan", "g-2", "e-1"]],
        [{"type": "string", "column": "parentObservationId", "operator": "=", "value": ""}, ["o-orphan", "e-1", "s-1"]],
        [{"type": "string", "column": "parentObservationId", "operator": "=", "value": "e-1"}, ["g-2"]],
        [{"type": "string", "column": "model", "operator": "=", "value": "gpt-4o"}, ["g-1"]],
        [{"type": "string", "column": "providedModelName", "operator": "starts with", "value": "cl"}, ["g-2"]],
        [{"type": "string", "column": "promptName", "operator": "=", "value": "qa"}, ["g-1"]],
        [{"type": "string", "column": "traceName", "operator": "=", "value": "search"}, ["g-2", "e-1"]],
        [{"type": "string", "column": "Trace Name", "operator": "=", "value": "chat"}, ["g-1", "s-1"]],
        [{"type": "string", "column": "traceName", "operator": "=", "value": "orphan"}, ["o-orphan"]],
        [{"type": "string", "column": "evaluatorId", "operator": "=", "value": "ev-1"}, ["e-1"]],
        [{"type": "string", "column": "ruleId", "operator": "=", "value": "job-1"}, ["e-1"]],
        [{"type": "number", "column": "latency", "operator": ">", "value": 1.9}, ["g-1"]],
        [{"type": "number", "column": "latency", "operator": "<", "value": 1}, ["g-2", "e-1"]],
        [{"type": "number", "column": "timeToFirstToken", "operator": "=", "value": 0.25}, ["g-1"]],
        [{"type": "number", "column": "tokensPerSecond", "operator": ">", "value": 20}, ["g-1"]],
        [{"type": "number", "column": "inputTokens", "operator": ">=", "value": 100}, ["g-1"]],
        [{"type": "number", "column": "outputTokens", "operator": "=", "value": 1}, ["g-2"]],
        [{"type": "number", "column": "totalTokens", "operator": ">", "value": 100}, ["g-1"]],
        [{"type": "number", "column": "tokens", "operator": "=", "value": 6}, ["g-2"]],
        [{"type": "number", "column": "inputCost", "operator": ">", "value": 0.005}, ["g-1"]],
        [{"type": "number", "column": "outputCost", "operator": ">=", "value": 0.02}, ["g-1"]],
        [{"type": "number", "column": "totalCost", "operator": ">", "value": 0.025}, ["g-1"]],
        [{"type": "number", "column": "promptVersion", "operator": "=", "value": 3}, ["g-1"]],
        [{"type": "stringOptions", "column": "type", "operator": "any of", "value": ["EVENT", "SPAN"]}, ["o-orphan", "e-1", "s-1"]],
        [{"type": "stringOptions", "column": "level", "operator": "none of", "value": ["DEFAULT"]}, ["e-1", "g-1"]],
        [{"type": "stringOptions", "column": "name", "operator": "none of", "value": ["llm"]}, ["o-orphan", "e-1", "s-1"]],
        [{"type": "stringOptions", "column": "id", "operator": "any of", "value": ["s-1", "e-1"]}, ["e-1", "s-1"]],
        [{"type": "stringOptions", "column": "environment", "operator": "any of", "value": ["production"]}, ["e-1"]],
        [{"type": "stringOptions", "column": "traceName", "operator": "any of", "value": ["search"]}, ["g-2", "e-1"]],
        [{"type": "stringOptions", "column": "modelId", "operator": "any of", "value": ["m"]}, []],
        [{"type": "stringOptions", "column": "modelId", "operator": "any of", "value": ["b9854a5c92dc496b997d99d20"]}, ["g-1"]],
        [{"type": "stringOptions", "column": "tags", "operator": "any of", "value": ["prod"]}, ["g-2", "e-1", "g-1", "s-1"]],
        [{"type": "arrayOptions", "column": "tags", "operator": "any of", "value": ["vip"]}, ["g-1", "s-1"]],
        [{"type": "arrayOptions", "column": "traceTags", "operator": "all of", "value": ["prod", "vip"]}, ["g-1", "s-1"]],
        [{"type": "arrayOptions", "column": "traceTags", "operator": "none of", "value": ["vip"]}, ["o-orphan", "g-2", "e-1"]],
        [{"type": "boolean", "column": "isRootObservation", "operator": "=", "value": true}, ["o-orphan", "e-1", "s-1"]],
        [{"type": "boolean", "column": "hasParentObservation", "operator": "=", "value": true}, ["g-2", "g-1"]],
        [{"type": "boolean", "column": "hasInput", "operator": "=", "value": true}, ["g-1", "s-1"]],
        [{"type": "boolean", "column": "hasOutput", "operator": "<>", "value": true}, ["o-orphan", "g-2", "e-1"]],
        [{"type": "null", "column": "endTime", "operator": "is null", "value": ""}, ["o-orphan"]],
        [{"type": "null", "column": "release", "operator": "is null", "value": ""}, ["o-orphan", "g-2", "e-1"]],
        [{"type": "null", "column": "userId", "operator": "is not null", "value": ""}, ["g-2", "e-1", "g-1", "s-1"]],
        [{"type": "null", "column": "parentObservationId", "operator": "is null", "value": ""}, ["o-orphan", "e-1", "s-1"]],
        [{"type": "null", "column": "statusMessage", "operator": "is not null", "value": ""}, ["g-1"]],
        [{"type": "null", "column": "model", "operator": "is null", "value": ""}, ["o-orphan", "e-1", "s-1"]],
        [{"type": "null", "column": "modelId", "operator": "is null", "value": ""}, ["o-orphan", "g-2", "e-1", "s-1"]],
        [{"type": "stringObject", "column": "metadata", "key": "source", "operator": "=", "value": "web"}, ["s-1"]],
        [{"type": "stringObject", "column": "metadata", "key": "source", "operator": "contains", "value": "at"}, ["e-1"]],
        [{"type": "stringObject", "column": "metadata", "key": "source", "operator": "does not contain", "value": "web"}, ["e-1"]],
        [{"type": "stringObject", "column": "metadata", "key": "source", "operator": "starts with", "value": "w"}, ["s-1"]],
        [{"type": "stringObject", "column": "metadata", "key": "source", "operator": "ends with", "value": "h"}, ["e-1"]],
        [{"type": "stringObject", "column": "metadata", "key": "source", "operator": "matches", "value": "web"}, ["s-1"]],
        [{"type": "stringObject", "column": "metadata", "key": "source", "operator": "matches", "value": "WEB"}, []],
        [{"type": "numberObject", "column": "metadata", "key": "n", "operator": ">", "value": 5}, ["s-1"]],
        [{"type": "numberObject", "column": "metadata", "key": "n", "operator": "<", "value": 5}, []],
        [{"type": "categoryOptions", "column": "metadata", "key": "source", "operator": "any of", "value": ["batch", "x"]}, ["e-1"]],
        [{"type": "categoryOptions", "column": "metadata", "key": "source", "operator": "none of", "value": ["batch"]}, ["o-orphan", "g-2", "g-1", "s-1"]],
        [{"type": "booleanObject", "column": "metadata", "key": "flag", "operator": "=", "value": true}, ["s-1"]],
        [{"type": "booleanObject", "column": "metadata", "key": "flag", "operator": "<>", "value": true}, ["o-orphan", "g-2", "e-1", "g-1"]],
        [{"type": "string", "column": "output", "operator": "matches", "value": "needle"}, ["s-1"]],
        [{"type": "string", "column": "output", "operator": "matches", "value": "the NEEDLE"}, ["s-1"]],
        [{"type": "string", "column": "output", "operator": "matches", "value": "needle the"}, []],
        [{"type": "string", "column": "input", "operator": "matches", "value": "NEEDLE"}, ["g-1"]],
        [{"type": "string", "column": "input", "operator": "=", "value": "What is the needle?"}, ["g-1"]],
        [[{"type": "string", "column": "output", "operator": "matches", "value": "needle"},
          {"type": "string", "column": "output", "operator": "contains", "value": "Found"}], ["s-1"]],
        [[{"type": "string", "column": "name", "operator": "=", "value": "llm"},
          {"type": "datetime", "column": "startTime", "operator": "<", "value": "2024-05-02T00:00:00Z"}], ["g-1"]]
    ]"#,
    )
    .unwrap();
    for case in cases.as_array().unwrap() {
        let filter = match &case[0] {
            Value::Array(list) => json!(list),
            single => json!([single]),
        };
        let body = ok(
            &app,
            &key,
            &format!("{OBSERVATIONS}?{}", with_filter(filter.clone())),
        )
        .await;
        assert_eq!(json!(ids(&body)), case[1], "{filter}");
    }

    // The structured filter wins over a query parameter on the same column; others still apply.
    for (pairs, filter, expected) in [
        (
            vec![("name", "retrieve")],
            f("string", "name", "=", json!("llm")),
            vec!["g-2", "g-1"],
        ),
        (
            vec![("userId", "alice")],
            f("string", "userId", "=", json!("bob")),
            vec!["g-2", "e-1"],
        ),
        (
            vec![("environment", "default")],
            f("string", "traceEnvironment", "=", json!("production")),
            vec!["e-1"],
        ),
        (
            vec![("fromStartTime", "2024-05-02T00:00:00Z")],
            f("datetime", "startTime", "<", json!("2024-05-02T00:00:00Z")),
            vec!["g-1", "s-1"],
        ),
        (
            vec![("type", "GENERATION")],
            f("string", "userId", "=", json!("alice")),
            vec!["g-1"],
        ),
    ] {
        let filter_text = json!([filter]).to_string();
        let mut all_pairs = pairs.clone();
        all_pairs.push(("filter", &filter_text));
        let body = ok(&app, &key, &format!("{OBSERVATIONS}?{}", query(&all_pairs))).await;
        assert_eq!(ids(&body), expected, "{pairs:?} with {filter}");
    }
}

#[tokio::test]
async fn v2_observations_page_with_a_cursor_without_gaps_or_duplicates() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "pager").await;
    // Six start times; at each, one observation in each of three traces and a second one in the
    // first: ties are broken by the trace's hash, then by id.
    let mut events = Vec::new();
    for t in 0..6 {
        let at = format!("2024-06-01T00:00:0{t}.000Z");
        for (n, trace) in ["ta", "tb", "tc", "ta"].iter().enumerate() {
            let id = format!("o-{t}-{n}");
            let kind = if n % 2 == 0 {
                "span-create"
            } else {
                "event-create"
            };
            events.push(envelope(
                &id,
                kind,
                &at,
                json!({"id": id, "traceId": trace, "startTime": at, "name": "step"}),
            ));
        }
    }
    ingest(&app, &key, events).await;
    assert!(app.wait_for_rows("observations", "pager", 24).await);

    let whole = ok(
        &app,
        &key,
        &format!("{OBSERVATIONS}?limit=1000&fields=core"),
    )
    .await;
    let order = ids(&whole);
    assert_eq!(order.len(), 24);
    assert_eq!(whole["meta"], json!({}));
    let starts: Vec<&str> = whole["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["startTime"].as_str().unwrap())
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {starts:?}"
    );

    let walk = |limit: usize, extra: &'static str| {
        let app = &app;
        let key = &key;
        async move {
            let mut seen = Vec::new();
            let mut pages = 0;
            let mut cursor: Option<String> = None;
            loop {
                let mut pairs = vec![("limit".to_string(), limit.to_string())];
                if let Some(c) = &cursor {
                    pairs.push(("cursor".into(), c.clone()));
                }
                let url = format!(
                    "{OBSERVATIONS}?{}{extra}",
                    serde_urlencoded::to_string(&pairs).unwrap()
                );
                let page = ok(app, key, &url).await;
                let page_ids = ids(&page);
                assert!(page_ids.len() <= limit);
                seen.extend(page_ids);
                pages += 1;
                match page["meta"]["cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_string()),
                    None => break,
                }
                assert!(pages < 100, "paging does not end");
            }
            (seen, pages)
        }
    };
    let (paged, pages) = walk(5, "").await;
    assert_eq!(paged, order, "the pages, in order, are the whole list");
    assert_eq!(pages, 5);
    // Exactly one page's worth: no cursor, as there is nothing after it.
    let (paged, pages) = walk(24, "").await;
    assert_eq!((paged.len(), pages), (24, 1));
    let (paged, pages) = walk(23, "").await;
    assert_eq!((paged, pages), (order.clone(), 2));
    // With filters, by query parameter and structured.
    let spans: Vec<String> = order
        .iter()
        .filter(|id| id.ends_with("-0") || id.ends_with("-2"))
        .cloned()
        .collect();
    let (paged, _) = walk(4, "&type=SPAN").await;
    assert_eq!(paged, spans);
    let (paged, _) = walk(3, "&filter=%5B%7B%22type%22%3A%22string%22%2C%22column%22%3A%22traceId%22%2C%22operator%22%3A%22%3D%22%2C%22value%22%3A%22ta%22%7D%5D").await;
    let in_ta: Vec<String> = order
        .iter()
        .filter(|id| id.ends_with("-0") || id.ends_with("-3"))
        .cloned()
        .collect();
    assert_eq!(paged, in_ta);
    // limit=0: nothing, and no cursor.
    let empty = ok(&app, &key, &format!("{OBSERVATIONS}?limit=0")).await;
    assert_eq!(empty, json!({"data": [], "meta": {}}));
    // The default page is 50.
    assert_eq!(ids(&ok(&app, &key, OBSERVATIONS).await).len(), 24);
}

#[tokio::test]
async fn v3_scores_have_polymorphic_values_and_field_groups() {
    let (app, key) = seeded_app().await;
    let all = [
        "sc-bool-false",
        "sc-queue",
        "sc-run",
        "sc-cat",
        "sc-bool",
        "sc-num",
    ];
    let body = ok(&app, &key, SCORES).await;
    assert_eq!(ids(&body), all, "newest first");
    assert_eq!(body["meta"], json!({"limit": 50}));
    let num = item(&body, "sc-num");
    let created = num["createdAt"].clone();
    let updated = num["updatedAt"].clone();
    assert_eq!(
        *num,
        json!({"id": "sc-num", "projectId": "reader", "name": "quality", "dataType": "NUMERIC", "value": 0.75,
            "source": "API", "timestamp": "2024-05-01T10:00:04.000Z", "environment": "default",
            "createdAt": created, "updatedAt": updated})
    );
    assert_eq!(item(&body, "sc-bool")["value"], true);
    assert_eq!(item(&body, "sc-bool")["dataType"], "BOOLEAN");
    assert_eq!(item(&body, "sc-bool-false")["value"], false);
    assert_eq!(item(&body, "sc-cat")["value"], "good");
    assert_eq!(item(&body, "sc-cat")["environment"], "production");

    let details = ok(&app, &key, &format!("{SCORES}?fields=details")).await;
    let num = item(&details, "sc-num");
    assert_eq!(
        (&num["comment"], &num["configId"], &num["metadata"]),
        (
            &json!("fine"),
            &json!("cfg-1"),
            &json!({"reviewer": "r", "score": 1})
        )
    );
    assert!(num.get("queueId").is_none() && num.get("subject").is_none());
    assert_eq!(item(&details, "sc-run")["comment"], Value::Null);

    let annotation = ok(&app, &key, &format!("{SCORES}?fields=annotation")).await;
    let queued = item(&annotation, "sc-queue");
    assert_eq!(
        (&queued["queueId"], &queued["authorUserId"]),
        (&json!("q-1"), &Value::Null)
    );
    assert!(queued.get("comment").is_none());

    let subject = ok(&app, &key, &format!("{SCORES}?fields=core,subject")).await;
    for (id, expected) in [
        ("sc-num", json!({"kind": "trace", "id": "t1"})),
        (
            "sc-bool",
            json!({"kind": "observation", "id": "g-1", "traceId": "t1"}),
        ),
        ("sc-cat", json!({"kind": "session", "id": "s1"})),
        ("sc-run", json!({"kind": "experiment", "id": "run-1"})),
    ] {
        assert_eq!(item(&subject, id)["subject"], expected, "{id}");
    }
    let everything = ok(
        &app,
        &key,
        &format!("{SCORES}?fields=details,subject,annotation"),
    )
    .await;
    assert_eq!(keys_of(item(&everything, "sc-num")).len(), 16);
}

#[tokio::test]
async fn v3_scores_filter() {
    let (app, key) = seeded_app().await;
    for (params, expected) in [
        ("id=sc-num,sc-cat", vec!["sc-cat", "sc-num"]),
        ("name=quality", vec!["sc-queue", "sc-num"]),
        (
            "name=quality,%20verdict",
            vec!["sc-queue", "sc-cat", "sc-num"],
        ),
        (
            "source=api",
            vec![
                "sc-bool-false",
                "sc-queue",
                "sc-run",
                "sc-cat",
                "sc-bool",
                "sc-num",
            ],
        ),
        ("source=EVAL,ANNOTATION", vec![]),
        ("dataType=BOOLEAN", vec!["sc-bool-false", "sc-bool"]),
        (
            "dataType=numeric,categorical",
            vec!["sc-queue", "sc-run", "sc-cat", "sc-num"],
        ),
        ("environment=production", vec!["sc-cat"]),
        ("configId=cfg-1", vec!["sc-num"]),
        ("queueId=q-1", vec!["sc-queue"]),
        ("authorUserId=someone", vec![]),
        (
            "dataType=NUMERIC&value=0.75,0.3",
            vec!["sc-queue", "sc-num"],
        ),
        ("dataType=BOOLEAN&value=false", vec!["sc-bool-false"]),
        ("dataType=CATEGORICAL&value=good,bad", vec!["sc-cat"]),
        (
            "dataType=NUMERIC&valueMin=0.3&valueMax=0.75",
            vec!["sc-queue", "sc-num"],
        ),
        ("dataType=NUMERIC&valueMax=0.2", vec!["sc-run"]),
        ("traceId=t1", vec!["sc-bool", "sc-num"]),
        (
            "traceId=t1,t2",
            vec!["sc-bool-false", "sc-queue", "sc-bool", "sc-num"],
        ),
        ("traceId=t1&observationId=g-1", vec!["sc-bool"]),
        ("sessionId=s1", vec!["sc-cat"]),
        ("experimentId=run-1", vec!["sc-run"]),
        (
            "fromTimestamp=2024-05-02T00:00:00Z",
            vec!["sc-bool-false", "sc-queue"],
        ),
        (
            "fromTimestamp=2024-05-02",
            vec!["sc-bool-false", "sc-queue"],
        ),
        (
            "toTimestamp=2024-05-01T10:00:06Z",
            vec!["sc-bool", "sc-num"],
        ),
        (
            "fromTimestamp=2024-05-01T10:00:06Z&toTimestamp=2024-05-02T09:00:06Z",
            vec!["sc-queue", "sc-run", "sc-cat"],
        ),
        ("name=helpful&traceId=t2", vec!["sc-bool-false"]),
        (
            "dataType=NUMERIC&environment=default&valueMin=0.5",
            vec!["sc-num"],
        ),
        (
            "userId=&traceTags=",
            vec![
                "sc-bool-false",
                "sc-queue",
                "sc-run",
                "sc-cat",
                "sc-bool",
                "sc-num",
            ],
        ),
    ] {
        let body = ok(&app, &key, &format!("{SCORES}?{params}")).await;
        assert_eq!(ids(&body), expected, "{params}");
    }
}

#[tokio::test]
async fn v3_scores_page_with_a_cursor_without_gaps_or_duplicates() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "pager").await;
    // 23 scores, three to a timestamp: ties are ordered by id.
    let mut expected: Vec<(String, String)> = Vec::new();
    let mut events = vec![envelope(
        "tr",
        "trace-create",
        "2024-06-01T00:00:00.000Z",
        json!({"id": "t"}),
    )];
    for i in 0..23 {
        let id = format!("sc-{i:02}");
        let at = format!("2024-06-01T00:00:{:02}.000Z", i / 3);
        events.push(envelope(&format!("e-{i}"), "score-create", &at,
            json!({"id": id, "traceId": "t", "name": if i % 2 == 0 { "even" } else { "odd" }, "value": i})));
        expected.push((at, id));
    }
    ingest(&app, &key, events).await;
    assert!(app.wait_for_rows("scores", "pager", 23).await);
    expected.sort_by(|a, b| b.cmp(a));
    let order: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();

    let walk = |limit: usize, extra: &'static str| {
        let app = &app;
        let key = &key;
        async move {
            let (mut seen, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
            loop {
                let mut url = format!("{SCORES}?limit={limit}{extra}");
                if let Some(c) = &cursor {
                    url.push_str(&format!("&cursor={c}"));
                }
                let page = ok(app, key, &url).await;
                assert_eq!(page["meta"]["limit"], limit);
                seen.extend(ids(&page));
                pages += 1;
                match page["meta"]["cursor"].as_str() {
                    Some(next) => {
                        // URL-safe: usable in a URL as it is.
                        assert!(
                            next.chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                            "{next}"
                        );
                        cursor = Some(next.to_string());
                    }
                    None => break,
                }
                assert!(pages < 100);
            }
            (seen, pages)
        }
    };
    assert_eq!(walk(4, "").await, (order.clone(), 6));
    assert_eq!(walk(23, "").await, (order.clone(), 1));
    assert_eq!(walk(100, "").await, (order.clone(), 1));
    let odd: Vec<String> = order
        .iter()
        .filter(|id| id[3..].parse::<u32>().unwrap() % 2 == 1)
        .cloned()
        .collect();
    assert_eq!(walk(2, "&name=odd").await, (odd, 6));
    // A cursor is as good in the padded standard alphabet.
    let first = ok(&app, &key, &format!("{SCORES}?limit=1")).await;
    let cursor = first["meta"]["cursor"]
        .as_str()
        .unwrap()
        .replace('-', "+")
        .replace('_', "/");
    let next = ok(
        &app,
        &key,
        &format!("{SCORES}?limit=1&{}", query(&[("cursor", &cursor)])),
    )
    .await;
    assert_eq!(ids(&next), [order[1].clone()]);
}

#[tokio::test]
async fn both_lists_show_only_the_key_projects_data() {
    let (app, key) = seeded_app().await;
    let other = create_project(&app.config, "other").await;
    // The same ids in another project.
    ingest(
        &app,
        &other,
        vec![
            envelope(
                "x1",
                "trace-create",
                "2024-07-01T00:00:00.000Z",
                json!({"id": "t1", "name": "theirs", "userId": "alice"}),
            ),
            envelope(
                "x2",
                "span-create",
                "2024-07-01T00:00:00.000Z",
                json!({"id": "s-1", "traceId": "t1", "name": "theirs",
            "startTime": "2024-07-01T00:00:00.000Z"}),
            ),
            envelope(
                "x3",
                "score-create",
                "2024-07-01T00:00:01.000Z",
                json!({"id": "sc-num", "traceId": "t1", "name": "theirs", "value": 1}),
            ),
        ],
    )
    .await;
    // The trace too: `traceName` below would be the root observation's own name without it,
    // but the user filter needs the trace's row.
    assert!(app.wait_for_rows("traces", "other", 1).await);
    assert!(app.wait_for_rows("observations", "other", 1).await);
    assert!(app.wait_for_rows("scores", "other", 1).await);

    let theirs = ok(
        &app,
        &other,
        &format!("{OBSERVATIONS}?fields=basic,trace_context"),
    )
    .await;
    assert_eq!(ids(&theirs), ["s-1"]);
    assert_eq!(
        (&theirs["data"][0]["name"], &theirs["data"][0]["traceName"]),
        (&json!("theirs"), &json!("theirs"))
    );
    assert_eq!(theirs["data"][0]["projectId"], "other");
    let ours = ok(
        &app,
        &key,
        &format!("{OBSERVATIONS}?traceId=t1&fields=basic,trace_context"),
    )
    .await;
    assert_eq!(ids(&ours), ["g-1", "s-1"]);
    assert_eq!(item(&ours, "s-1")["traceName"], "chat");
    // userId exists in both projects; the join to traces stays in the project too.
    let by_user = ok(&app, &other, &format!("{OBSERVATIONS}?userId=alice")).await;
    assert_eq!(ids(&by_user), ["s-1"]);
    assert_eq!(by_user["data"][0]["projectId"], "other");

    let their_scores = ok(&app, &other, SCORES).await;
    assert_eq!(ids(&their_scores), ["sc-num"]);
    assert_eq!(their_scores["data"][0]["name"], "theirs");
    assert_eq!(
        ok(&app, &key, &format!("{SCORES}?id=sc-num")).await["data"][0]["name"],
        "quality"
    );

    // A cursor does not open another project's data.
    let page = ok(&app, &key, &format!("{OBSERVATIONS}?limit=1")).await;
    let cursor = page["meta"]["cursor"].as_str().unwrap().to_string();
    let theirs = ok(
        &app,
        &other,
        &format!("{OBSERVATIONS}?{}", query(&[("cursor", &cursor)])),
    )
    .await;
    assert!(ids(&theirs).iter().all(|id| id == "s-1"));
    assert!(theirs["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["projectId"] == "other"));
}

/// How many stored versions (rows, merged or not) an id has.
async fn versions(app: &TestApp, table: &str, id: &str) -> u64 {
    app.stores
        .clickhouse
        .query(&format!(
            "SELECT count() FROM {table} WHERE project_id = ? AND id = ?"
        ))
        .bind("versions")
        .bind(id)
        .fetch_one()
        .await
        .unwrap()
}

#[tokio::test]
async fn both_lists_read_only_the_newest_version_of_each_row() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "versions").await;
    // Keep every version apart, as ClickHouse does until it merges parts.
    for table in ["observations", "scores", "traces"] {
        app.stores
            .clickhouse
            .query(&format!("SYSTEM STOP MERGES {table}"))
            .execute()
            .await
            .unwrap();
    }
    ingest(
        &app,
        &key,
        vec![
            envelope(
                "v1",
                "trace-create",
                "2024-05-01T10:00:00.000Z",
                json!({"id": "t", "userId": "first-user"}),
            ),
            envelope(
                "v2",
                "span-create",
                "2024-05-01T10:00:00.000Z",
                json!({"id": "o", "traceId": "t", "name": "first",
            "startTime": "2024-05-01T10:00:00.000Z", "level": "DEBUG"}),
            ),
            envelope(
                "v3",
                "score-create",
                "2024-05-01T10:00:01.000Z",
                json!({"id": "s", "traceId": "t", "name": "first", "value": 1}),
            ),
        ],
    )
    .await;
    assert!(app.wait_for_rows("scores", "versions", 1).await);
    assert!(app.wait_for_rows("observations", "versions", 1).await);
    assert!(app.wait_for_rows("traces", "versions", 1).await);
    ingest(
        &app,
        &key,
        vec![
            envelope(
                "v4",
                "trace-create",
                "2024-05-01T10:00:05.000Z",
                json!({"id": "t", "userId": "second-user"}),
            ),
            envelope(
                "v5",
                "span-update",
                "2024-05-01T10:00:05.000Z",
                json!({"id": "o", "traceId": "t", "name": "second",
            "level": "ERROR"}),
            ),
            envelope(
                "v6",
                "score-create",
                "2024-05-01T10:00:05.000Z",
                json!({"id": "s", "traceId": "t", "name": "second", "value": 2}),
            ),
        ],
    )
    .await;
    // The score's new name is a new sorting key: the worker also wrote a deleted copy of its
    // first version under the old one.
    let all_versions = eventually(Duration::from_secs(20), || async {
        versions(&app, "observations", "o").await == 2
            && versions(&app, "scores", "s").await == 3
            && versions(&app, "traces", "t").await == 2
    })
    .await;
    assert!(all_versions, "both versions of each row are stored");

    let listed = ok(&app, &key, OBSERVATIONS).await;
    assert_eq!(ids(&listed), ["o"]);
    assert_eq!(
        (&listed["data"][0]["name"], &listed["data"][0]["level"]),
        (&json!("second"), &json!("ERROR"))
    );
    assert_eq!(listed["data"][0]["userId"], "second-user");
    for (params, expected) in [
        ("name=first", vec![]),
        ("name=second", vec!["o"]),
        ("level=DEBUG", vec![]),
        ("userId=first-user", vec![]),
        ("userId=second-user", vec!["o"]),
    ] {
        let body = ok(&app, &key, &format!("{OBSERVATIONS}?{params}")).await;
        assert_eq!(ids(&body), expected, "{params}");
    }
    let filtered = ok(&app, &key, &format!("{OBSERVATIONS}?{}", with_filter(json!([
        {"type": "stringOptions", "column": "name", "operator": "any of", "value": ["first"]}
    ])))).await;
    assert_eq!(ids(&filtered), Vec::<String>::new());

    let scores = ok(&app, &key, SCORES).await;
    assert_eq!(ids(&scores), ["s"]);
    assert_eq!(
        (&scores["data"][0]["name"], &scores["data"][0]["value"]),
        (&json!("second"), &json!(2.0))
    );
    assert_eq!(
        ids(&ok(&app, &key, &format!("{SCORES}?name=first")).await),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&ok(&app, &key, &format!("{SCORES}?dataType=NUMERIC&valueMax=1")).await),
        Vec::<String>::new()
    );
}

async fn refused(app: &TestApp, key: &ApiKey, path: &str, message: &str) {
    let (status, body) = app.get_json(path, key).await;
    assert_eq!(status, 400, "{path}: {body}");
    assert_eq!(body["error"], "InvalidRequestError", "{path}: {body}");
    let text = body["message"].as_str().unwrap_or_default();
    assert!(text.contains(message), "{path}: {text:?} lacks {message:?}");
}

#[tokio::test]
async fn bad_parameters_are_400_and_unknown_paths_404() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "strict").await;
    let filter = |f: Value| format!("{OBSERVATIONS}?{}", with_filter(json!([f])));
    let b64 = |text: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(text)
    };
    for (path, message) in [
        (format!("{OBSERVATIONS}?limit=1001"), "limit"),
        (format!("{OBSERVATIONS}?limit=-1"), "limit"),
        (format!("{OBSERVATIONS}?limit=2.5"), "limit"),
        (format!("{OBSERVATIONS}?limit=abc"), "limit"),
        (
            format!("{OBSERVATIONS}?cursor=invalid-base64-string"),
            "Invalid cursor format",
        ),
        (
            format!("{OBSERVATIONS}?{}", query(&[("cursor", &b64("not json"))])),
            "Invalid cursor format",
        ),
        (
            format!(
                "{OBSERVATIONS}?{}",
                query(&[("cursor", &b64(r#"{"lastId":"x"}"#))])
            ),
            "lastStartTimeTo",
        ),
        (
            format!("{OBSERVATIONS}?parseIoAsJson=true"),
            "parseIoAsJson=true is no longer supported",
        ),
        (format!("{OBSERVATIONS}?parseIoAsJson=1"), "parseIoAsJson"),
        (format!("{OBSERVATIONS}?type=FOO"), "type"),
        (format!("{OBSERVATIONS}?level=LOUD"), "level"),
        (
            format!("{OBSERVATIONS}?isRootObservation=maybe"),
            "isRootObservation",
        ),
        (
            format!("{OBSERVATIONS}?fromStartTime=yesterday"),
            "fromStartTime",
        ),
        (
            format!("{OBSERVATIONS}?toStartTime=2024-13-01T00:00:00Z"),
            "toStartTime",
        ),
        (
            format!("{OBSERVATIONS}?name=a&name=b"),
            "name must be given once",
        ),
        (
            format!("{OBSERVATIONS}?fields=io&fields=bogus"),
            "not a field group",
        ),
        (
            format!("{OBSERVATIONS}?filter=%5B"),
            "Invalid JSON in filter parameter",
        ),
        (format!("{OBSERVATIONS}?filter=%7B%7D"), "JSON array"),
        (
            filter(json!({"type": "string", "column": "nope", "operator": "=", "value": "x"})),
            "Column nope does not match",
        ),
        (
            filter(json!({"type": "number", "column": "name", "operator": "=", "value": 1})),
            "Invalid filter type 'number' for column 'name'",
        ),
        (
            filter(json!({"type": "string", "column": "toolNames", "operator": "=", "value": "x"})),
            "cannot be filtered on",
        ),
        (
            filter(
                json!({"type": "string", "column": "ingestionSource", "operator": "=", "value": "x"}),
            ),
            "cannot be filtered on",
        ),
        (
            filter(
                json!({"type": "string", "column": "output", "operator": "contains", "value": "x"}),
            ),
            "require at least one `matches` or `=`",
        ),
        (
            filter(json!({"type": "null", "column": "input", "operator": "is null", "value": ""})),
            "only support filter type `string`",
        ),
        (
            filter(
                json!({"type": "string", "column": "name", "operator": "matches", "value": "x"}),
            ),
            "only supported for input, output, and metadata",
        ),
        (
            filter(
                json!({"type": "string", "column": "output", "operator": "matches", "value": "!!!"}),
            ),
            "at least one search token",
        ),
        (
            filter(json!({"type": "string", "column": "name", "operator": ">", "value": "x"})),
            "operator",
        ),
        (
            filter(json!({"type": "number", "column": "latency", "operator": ">", "value": "1"})),
            "value must be a number",
        ),
        (
            filter(
                json!({"type": "stringObject", "column": "metadata", "operator": "=", "value": "x"}),
            ),
            "key",
        ),
        (
            filter(json!({"type": "regex", "column": "name", "operator": "=", "value": "x"})),
            "type",
        ),
        (
            filter(
                json!({"type": "positionInTrace", "column": "x", "operator": "=", "key": "root"}),
            ),
            "positionInTrace",
        ),
        (format!("{SCORES}?limit=0"), "limit"),
        (format!("{SCORES}?limit=101"), "limit"),
        (format!("{SCORES}?limit=x"), "limit"),
        (format!("{SCORES}?fields=bogus"), "fields"),
        (
            format!("{SCORES}?page=1"),
            "unrecognized parameter(s): page",
        ),
        (
            format!("{SCORES}?source=robot"),
            "Invalid source value: \"ROBOT\"",
        ),
        (
            format!("{SCORES}?dataType=float"),
            "Invalid dataType value: \"FLOAT\"",
        ),
        (
            format!("{SCORES}?value=1"),
            "value filter requires a single dataType",
        ),
        (
            format!("{SCORES}?dataType=TEXT&value=a"),
            "value filter requires dataType to be NUMERIC, BOOLEAN, or CATEGORICAL",
        ),
        (
            format!("{SCORES}?dataType=NUMERIC&value=abc"),
            "finite number",
        ),
        (
            format!("{SCORES}?dataType=BOOLEAN&value=yes"),
            "\"true\" or \"false\"",
        ),
        (
            format!("{SCORES}?valueMin=0"),
            "valueMin and valueMax require dataType=NUMERIC",
        ),
        (
            format!("{SCORES}?dataType=NUMERIC&valueMax=abc"),
            "valueMax",
        ),
        (
            format!("{SCORES}?observationId=o"),
            "observationId filter requires traceId",
        ),
        (
            format!("{SCORES}?traceId=t&sessionId=s"),
            "At most one of traceId, sessionId, experimentId",
        ),
        (
            format!("{SCORES}?sessionId=s&experimentId=e"),
            "At most one of",
        ),
        (
            format!("{SCORES}?userId=u"),
            "userId filter requires a trace JOIN",
        ),
        (
            format!("{SCORES}?traceTags=x"),
            "traceTags filter requires a trace JOIN",
        ),
        (format!("{SCORES}?fromTimestamp=soon"), "fromTimestamp"),
        (format!("{SCORES}?toTimestamp=2024-02-30"), "toTimestamp"),
        (
            format!("{SCORES}?cursor=%25%25%25"),
            "Invalid cursor format",
        ),
        (
            format!(
                "{SCORES}?{}",
                query(&[(
                    "cursor",
                    &b64(r#"{"v":2,"lastTimestamp":"2024-01-01T00:00:00Z","lastId":"x"}"#)
                )])
            ),
            "cursor.v",
        ),
        (format!("{SCORES}?name=a&name=b"), "must be given once"),
    ] {
        refused(&app, &key, &path, message).await;
    }
    for path in [
        "/api/public/v3/scores/abc",
        "/api/public/v2/observations/abc",
        "/api/public/v4/scores",
    ] {
        let (status, body) = app.get_json(path, &key).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["error"], "LangfuseNotFoundError", "{body}");
    }
    // Without credentials: 401, in the same shape.
    for path in [OBSERVATIONS, SCORES] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert!(body["message"].is_string());
    }
}

#[tokio::test]
async fn text_and_correction_scores_are_stored_and_read_as_strings() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "texts").await;
    ingest(
        &app,
        &key,
        vec![
            envelope(
                "t1",
                "score-create",
                "2024-05-01T10:00:00.000Z",
                json!({"id": "sc-text", "traceId": "t",
            "name": "feedback", "value": "Too long, but correct.", "dataType": "TEXT"}),
            ),
            envelope(
                "t2",
                "score-create",
                "2024-05-01T10:00:01.000Z",
                json!({"id": "sc-fix", "traceId": "t",
            "name": "output", "value": "The capital is Paris.", "dataType": "CORRECTION"}),
            ),
        ],
    )
    .await;
    assert!(app.wait_for_rows("scores", "texts", 2).await);

    let v3 = ok(&app, &key, SCORES).await;
    assert_eq!(item(&v3, "sc-text")["value"], "Too long, but correct.");
    assert_eq!(item(&v3, "sc-text")["dataType"], "TEXT");
    assert_eq!(item(&v3, "sc-fix")["value"], "The capital is Paris.");
    assert_eq!(item(&v3, "sc-fix")["dataType"], "CORRECTION");
    let text_only = ok(&app, &key, &format!("{SCORES}?dataType=TEXT")).await;
    assert_eq!(ids(&text_only), ["sc-text"]);

    let v2 = ok(&app, &key, "/api/public/v2/scores").await;
    let fix = item(&v2, "sc-fix");
    assert_eq!(
        (&fix["dataType"], &fix["stringValue"]),
        (&json!("CORRECTION"), &json!("The capital is Paris."))
    );

    // A TEXT score over 500 characters is refused on its own, with the reason.
    let response = app
        .post_as(
            INGESTION,
            &key,
            &json!({ "batch": [envelope("t3", "score-create", "2024-05-01T10:00:02.000Z",
                json!({"id": "sc-long", "traceId": "t", "name": "feedback", "value": "x".repeat(501), "dataType": "TEXT"}))] }),
        )
        .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["status"], 400, "{body}");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("1 to 500 characters"));
}
