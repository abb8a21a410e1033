//! The page-numbered v1 lists, `GET /api/public/traces` and `GET /api/public/observations`:
//! every query parameter of the spec, every type of the structured `filter`, how the two
//! combine, the trace list's field groups; and what ingestion stores for the read answers to
//! show (usage in OpenAI's shapes, the id of a linked prompt).

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{
    admin_database_url, create_project, envelope, eventually, socket_of, with_socket, ApiKey,
    TcpProxy, TestApp, TestConfig,
};

/// Three traces, in two environments besides the default, with observations at every level.
pub(crate) async fn seeded_app() -> (TestApp, ApiKey) {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "v1-lists").await;
    let batch = json!({"batch": [
        envelope("1", "trace-create", "2024-05-01T10:00:00.000Z", json!({"id": "t1", "name": "chat",
            "timestamp": "2024-05-01T10:00:00.000Z", "userId": "alice", "sessionId": "s1", "release": "r1",
            "version": "v1", "tags": ["prod", "vip"], "environment": "production", "public": true,
            "metadata": {"team": "search", "n": 3}, "input": {"question": "hi"}, "output": "hello"})),
        envelope("2", "trace-create", "2024-05-02T10:00:00.000Z", json!({"id": "t2", "name": "search",
            "timestamp": "2024-05-02T10:00:00.000Z", "userId": "bob", "sessionId": "s2", "release": "r2",
            "version": "v2", "tags": ["prod"], "metadata": {"team": "ads", "n": 1}})),
        envelope("3", "trace-create", "2024-05-03T10:00:00.000Z", json!({"id": "t3", "name": "chat",
            "timestamp": "2024-05-03T10:00:00.000Z", "userId": "carol", "environment": "staging"})),
        envelope("4", "span-create", "2024-05-01T10:00:00.000Z", json!({"id": "s-1", "traceId": "t1",
            "name": "retrieve", "environment": "production", "version": "v1",
            "startTime": "2024-05-01T10:00:00.000Z", "endTime": "2024-05-01T10:00:01.500Z"})),
        envelope("5", "generation-create", "2024-05-01T10:00:01.000Z", json!({"id": "g-1", "traceId": "t1",
            "parentObservationId": "s-1", "name": "llm", "model": "gpt-4o", "environment": "production",
            "level": "ERROR", "statusMessage": "rate limited", "metadata": {"attempt": 2},
            "startTime": "2024-05-01T10:00:01.000Z", "endTime": "2024-05-01T10:00:03.000Z",
            "usage": {"input": 100, "output": 50}, "costDetails": {"input": 0.01, "output": 0.02}})),
        envelope("6", "event-create", "2024-05-01T10:00:04.000Z", json!({"id": "e-1", "traceId": "t1",
            "parentObservationId": "s-1", "name": "cache-miss", "environment": "production",
            "level": "WARNING", "startTime": "2024-05-01T10:00:04.000Z"})),
        envelope("7", "generation-create", "2024-05-02T10:00:00.000Z", json!({"id": "g-2", "traceId": "t2",
            "name": "llm", "model": "claude", "version": "v2", "startTime": "2024-05-02T10:00:00.000Z",
            "endTime": "2024-05-02T10:00:00.500Z", "usage": {"input": 10, "output": 5}})),
        envelope("8", "span-create", "2024-05-03T10:00:00.000Z", json!({"id": "s-3", "traceId": "t3",
            "name": "batch", "environment": "staging", "level": "DEBUG",
            "startTime": "2024-05-03T10:00:00.000Z"})),
        envelope("9", "score-create", "2024-05-01T10:00:05.000Z", json!({"id": "sc-1", "traceId": "t1",
            "name": "quality", "value": 0.75})),
    ]});
    app.ingest_accepted(&key, &batch).await;
    assert!(app.wait_for_rows("traces", "v1-lists", 3).await);
    assert!(app.wait_for_rows("observations", "v1-lists", 5).await);
    assert!(app.wait_for_rows("scores", "v1-lists", 1).await);
    (app, key)
}

fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {body}"))
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_string())
        .collect()
}

/// `path?query` (the query already encoded), checked to answer 200 with `totalItems` equal to
/// the number of items, as every case here fits one page.
async fn listed(app: &TestApp, key: &ApiKey, path: &str, query: &str) -> Vec<String> {
    let (status, body) = app.get_json(&format!("{path}?{query}"), key).await;
    assert_eq!(status, 200, "{path}?{query}: {body}");
    let found = ids(&body);
    assert_eq!(body["meta"]["totalItems"], found.len(), "{query}: {body}");
    found
}

/// The query string of one `filter` parameter.
fn filter(conditions: Value) -> String {
    serde_urlencoded::to_string([("filter", conditions.to_string())]).unwrap()
}

#[tokio::test]
async fn the_trace_list_honours_every_parameter_and_filter_type() {
    let (app, key) = seeded_app().await;
    let traces = |query: String| {
        let (app, key) = (&app, &key);
        async move { listed(app, key, "/api/public/traces", &query).await }
    };
    for (query, expected) in [
        ("", vec!["t3", "t2", "t1"]),
        ("userId=alice", vec!["t1"]),
        ("name=chat", vec!["t3", "t1"]),
        ("sessionId=s2", vec!["t2"]),
        ("fromTimestamp=2024-05-02T00:00:00Z", vec!["t3", "t2"]),
        ("toTimestamp=2024-05-02T10:00:00Z", vec!["t1"]),
        (
            "fromTimestamp=2024-05-01T10:00:00Z&toTimestamp=2024-05-03T00:00:00Z",
            vec!["t2", "t1"],
        ),
        ("orderBy=timestamp.asc", vec!["t1", "t2", "t3"]),
        ("orderBy=userId.DESC", vec!["t3", "t2", "t1"]),
        ("orderBy=name.asc", vec!["t1", "t3", "t2"]),
        ("tags=prod", vec!["t2", "t1"]),
        ("tags=prod&tags=vip", vec!["t1"]),
        ("tags=prod,vip", vec!["t1"]),
        ("version=v2", vec!["t2"]),
        ("release=r1", vec!["t1"]),
        ("environment=production", vec!["t1"]),
        (
            "environment=production&environment=staging",
            vec!["t3", "t1"],
        ),
        ("environment=default,staging", vec!["t3", "t2"]),
        ("name=chat&userId=carol", vec!["t3"]),
        ("limit=2&page=2", vec!["t1"]),
    ] {
        let found = if query.starts_with("limit") {
            let (_, body) = app
                .get_json(&format!("/api/public/traces?{query}"), &key)
                .await;
            assert_eq!(
                body["meta"],
                json!({"page": 2, "limit": 2, "totalItems": 3, "totalPages": 2})
            );
            ids(&body)
        } else {
            traces(query.to_string()).await
        };
        assert_eq!(found, expected, "{query}");
    }

    for (conditions, expected) in [
        (
            json!([{"type": "string", "column": "userId", "operator": "starts with", "value": "ca"}]),
            vec!["t3"],
        ),
        (
            json!([{"type": "string", "column": "name", "operator": "does not contain", "value": "ha"}]),
            vec!["t2"],
        ),
        (
            json!([{"type": "stringOptions", "column": "environment", "operator": "none of", "value": ["default"]}]),
            vec!["t3", "t1"],
        ),
        (
            json!([{"type": "arrayOptions", "column": "tags", "operator": "any of", "value": ["vip", "other"]}]),
            vec!["t1"],
        ),
        (
            json!([{"type": "arrayOptions", "column": "tags", "operator": "none of", "value": ["prod"]}]),
            vec!["t3"],
        ),
        (
            json!([{"type": "datetime", "column": "timestamp", "operator": "<=", "value": "2024-05-02T10:00:00Z"}]),
            vec!["t2", "t1"],
        ),
        (
            json!([{"type": "number", "column": "totalCost", "operator": ">", "value": 0.02}]),
            vec!["t1"],
        ),
        (
            json!([{"type": "number", "column": "latency", "operator": "=", "value": 0.5}]),
            vec!["t2"],
        ),
        (
            json!([{"type": "number", "column": "tokens", "operator": ">=", "value": 15}]),
            vec!["t2", "t1"],
        ),
        (
            json!([{"type": "stringOptions", "column": "level", "operator": "any of", "value": ["ERROR"]}]),
            vec!["t1"],
        ),
        (
            json!([{"type": "number", "column": "warningCount", "operator": "=", "value": 1}]),
            vec!["t1"],
        ),
        (
            json!([{"type": "stringObject", "column": "metadata", "key": "team", "operator": "=", "value": "ads"}]),
            vec!["t2"],
        ),
        (
            json!([{"type": "numberObject", "column": "metadata", "key": "n", "operator": ">", "value": 2}]),
            vec!["t1"],
        ),
        (
            json!([{"type": "categoryOptions", "column": "metadata", "key": "team", "operator": "any of", "value": ["search", "x"]}]),
            vec!["t1"],
        ),
        (
            json!([{"type": "boolean", "column": "public", "operator": "=", "value": true}]),
            vec!["t1"],
        ),
        (
            json!([{"type": "boolean", "column": "bookmarked", "operator": "<>", "value": true}]),
            vec!["t3", "t2", "t1"],
        ),
        (
            json!([{"type": "null", "column": "sessionId", "operator": "is null", "value": ""}]),
            vec!["t3"],
        ),
        (
            json!([{"type": "string", "column": "output", "operator": "=", "value": "hello"}]),
            vec!["t1"],
        ),
        // Several conditions all hold.
        (
            json!([
                {"type": "stringOptions", "column": "name", "operator": "any of", "value": ["chat"]},
                {"type": "datetime", "column": "timestamp", "operator": ">", "value": "2024-05-02T00:00:00Z"},
            ]),
            vec!["t3"],
        ),
    ] {
        let query = filter(conditions.clone());
        assert_eq!(traces(query).await, expected, "{conditions}");
    }

    // The filter replaces the parameters on its columns and keeps the others.
    let both = |params: &str, conditions: Value| format!("{params}&{}", filter(conditions));
    let user_bob = json!([{"type": "string", "column": "userId", "operator": "=", "value": "bob"}]);
    assert_eq!(traces(both("userId=alice", user_bob.clone())).await, ["t2"]);
    assert!(traces(both("userId=alice&name=chat", user_bob))
        .await
        .is_empty());
    let late = json!([{"type": "datetime", "column": "timestamp", "operator": ">", "value": "2024-05-02T12:00:00Z"}]);
    assert_eq!(
        traces(both(
            "fromTimestamp=2024-01-01T00:00:00Z&toTimestamp=2024-05-02T00:00:00Z",
            late
        ))
        .await,
        ["t3"],
        "a timestamp condition replaces both ends of the range"
    );

    for (query, message) in [
        (
            filter(
                json!([{"type": "string", "column": "startTime", "operator": "=", "value": "x"}]),
            ),
            "Column startTime does not match a UI / CH table mapping.",
        ),
        (
            filter(
                json!([{"type": "number", "column": "scores_avg", "operator": ">", "value": 1}]),
            ),
            "cannot be filtered on by this server",
        ),
        (
            filter(json!([{"type": "number", "column": "userId", "operator": ">", "value": 1}])),
            "Invalid filter type 'number' for column 'userId'",
        ),
        (
            "filter=not-json".to_string(),
            "Invalid JSON in filter parameter",
        ),
        ("orderBy=latency.asc".to_string(), "cannot order by"),
        ("fields=io&fields=everything".to_string(), "fields"),
    ] {
        let (status, body) = app
            .get_json(&format!("/api/public/traces?{query}"), &key)
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(message),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn the_trace_list_leaves_out_the_field_groups_not_asked_for() {
    let (app, key) = seeded_app().await;
    let t1 = |body: &Value| -> Value {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == "t1")
            .cloned()
            .unwrap_or_else(|| panic!("t1 missing: {body}"))
    };
    let (status, all) = app.get_json("/api/public/traces?userId=alice", &key).await;
    assert_eq!(status, 200, "{all}");
    let full = t1(&all);
    assert_eq!(full["input"], json!({"question": "hi"}));
    assert_eq!(full["output"], "hello");
    assert_eq!(full["metadata"], json!({"team": "search", "n": 3}));
    let mut observations: Vec<&str> = full["observations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    observations.sort_unstable();
    assert_eq!(observations, ["e-1", "g-1", "s-1"]);
    assert_eq!(full["scores"], json!(["sc-1"]));
    assert_eq!(full["latency"], 4.0);
    assert!((full["totalCost"].as_f64().unwrap() - 0.03).abs() < 1e-9);

    let (_, core) = app
        .get_json("/api/public/traces?userId=alice&fields=core", &key)
        .await;
    let core = t1(&core);
    assert_eq!(core["name"], "chat");
    assert_eq!(core["tags"], json!(["prod", "vip"]));
    assert_eq!(core["input"], Value::Null);
    assert_eq!(core["output"], Value::Null);
    assert_eq!(core["metadata"], json!({}));
    assert_eq!(core["observations"], json!([]));
    assert_eq!(core["scores"], json!([]));
    assert_eq!(core["latency"], -1.0);
    assert_eq!(core["totalCost"], -1.0);

    let (_, some) = app
        .get_json(
            "/api/public/traces?userId=alice&fields=io,scores,unknown",
            &key,
        )
        .await;
    let some = t1(&some);
    assert_eq!(some["input"], json!({"question": "hi"}));
    assert_eq!(some["metadata"]["team"], "search");
    assert_eq!(some["scores"], json!(["sc-1"]));
    assert_eq!(some["observations"], json!([]));
    assert_eq!(some["latency"], -1.0);

    // A filter on input still finds the trace when input is not returned.
    let query = format!(
        "fields=metrics&{}",
        filter(
            json!([{"type": "string", "column": "input", "operator": "matches", "value": "question"}])
        )
    );
    let (_, searched) = app
        .get_json(&format!("/api/public/traces?{query}"), &key)
        .await;
    let searched = t1(&searched);
    assert_eq!(searched["input"], Value::Null);
    assert_eq!(searched["latency"], 4.0);
}

#[tokio::test]
async fn the_observation_list_honours_every_parameter_and_filter_type() {
    let (app, key) = seeded_app().await;
    let observations = |query: String| {
        let (app, key) = (&app, &key);
        async move { listed(app, key, "/api/public/observations", &query).await }
    };
    for (query, expected) in [
        ("", vec!["s-3", "g-2", "e-1", "g-1", "s-1"]),
        ("name=llm", vec!["g-2", "g-1"]),
        ("userId=alice", vec!["e-1", "g-1", "s-1"]),
        ("userId=bob&name=llm", vec!["g-2"]),
        ("type=SPAN", vec!["s-3", "s-1"]),
        ("traceId=t1&type=EVENT", vec!["e-1"]),
        ("level=ERROR", vec!["g-1"]),
        ("level=DEBUG", vec!["s-3"]),
        ("parentObservationId=s-1", vec!["e-1", "g-1"]),
        ("parentObservationId=", vec!["s-3", "g-2", "s-1"]),
        ("environment=production", vec!["e-1", "g-1", "s-1"]),
        (
            "environment=staging&environment=default",
            vec!["s-3", "g-2"],
        ),
        (
            "fromStartTime=2024-05-01T10:00:01Z",
            vec!["s-3", "g-2", "e-1", "g-1"],
        ),
        ("toStartTime=2024-05-01T10:00:01Z", vec!["s-1"]),
        (
            "fromStartTime=2024-05-01T10:00:01Z&toStartTime=2024-05-02T10:00:00Z",
            vec!["e-1", "g-1"],
        ),
        ("version=v2", vec!["g-2"]),
        ("traceId=t1&limit=1&page=3", vec!["s-1"]),
    ] {
        let found = if query.contains("limit") {
            let (_, body) = app
                .get_json(&format!("/api/public/observations?{query}"), &key)
                .await;
            assert_eq!(
                body["meta"],
                json!({"page": 3, "limit": 1, "totalItems": 3, "totalPages": 3})
            );
            ids(&body)
        } else {
            observations(query.to_string()).await
        };
        assert_eq!(found, expected, "{query}");
    }

    for (conditions, expected) in [
        (
            json!([{"type": "string", "column": "name", "operator": "contains", "value": "ret"}]),
            vec!["s-1"],
        ),
        (
            json!([{"type": "stringOptions", "column": "type", "operator": "any of", "value": ["GENERATION", "EVENT"]}]),
            vec!["g-2", "e-1", "g-1"],
        ),
        (
            json!([{"type": "stringOptions", "column": "level", "operator": "none of", "value": ["DEFAULT", "DEBUG"]}]),
            vec!["e-1", "g-1"],
        ),
        (
            json!([{"type": "datetime", "column": "startTime", "operator": ">=", "value": "2024-05-02T00:00:00Z"}]),
            vec!["s-3", "g-2"],
        ),
        // An event ends when it starts.
        (
            json!([{"type": "null", "column": "endTime", "operator": "is null", "value": ""}]),
            vec!["s-3"],
        ),
        (
            json!([{"type": "number", "column": "latency", "operator": ">", "value": 1}]),
            vec!["g-1", "s-1"],
        ),
        (
            json!([{"type": "number", "column": "totalTokens", "operator": "<", "value": 100}]),
            vec!["g-2"],
        ),
        (
            json!([{"type": "number", "column": "inputCost", "operator": "=", "value": 0.01}]),
            vec!["g-1"],
        ),
        (
            json!([{"type": "stringOptions", "column": "model", "operator": "any of", "value": ["gpt-4o"]}]),
            vec!["g-1"],
        ),
        (
            json!([{"type": "string", "column": "statusMessage", "operator": "ends with", "value": "limited"}]),
            vec!["g-1"],
        ),
        (
            json!([{"type": "numberObject", "column": "metadata", "key": "attempt", "operator": ">=", "value": 2}]),
            vec!["g-1"],
        ),
        (
            json!([{"type": "arrayOptions", "column": "traceTags", "operator": "all of", "value": ["prod"]}]),
            vec!["g-2", "e-1", "g-1", "s-1"],
        ),
        (
            json!([{"type": "stringOptions", "column": "traceName", "operator": "any of", "value": ["search"]}]),
            vec!["g-2"],
        ),
        (
            json!([{"type": "boolean", "column": "hasParentObservation", "operator": "=", "value": true}]),
            vec!["e-1", "g-1"],
        ),
        (
            json!([{"type": "string", "column": "sessionId", "operator": "=", "value": "s1"}]),
            vec!["e-1", "g-1", "s-1"],
        ),
    ] {
        let query = filter(conditions.clone());
        assert_eq!(observations(query).await, expected, "{conditions}");
    }

    // The filter replaces the parameters on its columns and keeps the others.
    let type_filter = filter(json!([
        {"type": "stringOptions", "column": "type", "operator": "any of", "value": ["SPAN"]},
    ]));
    assert_eq!(
        observations(format!("type=GENERATION&traceId=t1&{type_filter}")).await,
        ["s-1"]
    );
    let user_filter = filter(json!([
        {"type": "string", "column": "userId", "operator": "=", "value": "carol"},
    ]));
    assert_eq!(
        observations(format!("userId=alice&{user_filter}")).await,
        ["s-3"]
    );

    for (query, message) in [
        ("type=TRACE".to_string(), "type"),
        ("level=LOUD".to_string(), "level"),
        ("fromStartTime=soon".to_string(), "fromStartTime"),
        (
            filter(
                json!([{"type": "number", "column": "scores_avg", "operator": ">", "value": 1}]),
            ),
            "does not match",
        ),
        (
            filter(
                json!([{"type": "string", "column": "input", "operator": "contains", "value": "x"}]),
            ),
            "require at least one `matches` or `=` operator",
        ),
    ] {
        let (status, body) = app
            .get_json(&format!("/api/public/observations?{query}"), &key)
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(message),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn usage_in_openai_shapes_is_renamed_only_when_whole() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "usage-shapes").await;
    let generation = |id: &str, usage: Value| {
        envelope(
            id,
            "generation-create",
            "2024-05-01T10:00:00.000Z",
            json!({"id": id, "traceId": "t", "usageDetails": usage}),
        )
    };
    let batch = json!({"batch": [
        generation("completion", json!({"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28,
            "prompt_tokens_details": {"cached_tokens": 5}, "completion_tokens_details": {"reasoning_tokens": 2}})),
        generation("response", json!({"input_tokens": 9, "output_tokens": 3, "total_tokens": 12})),
        generation("partial", json!({"prompt_tokens": 20, "completion_tokens": 8})),
        generation("extended", json!({"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28,
            "prompt_cache_hit_tokens": 4})),
        generation("plain", json!({"input": 7, "cache_read": 2})),
    ]});
    app.ingest_accepted(&key, &batch).await;
    assert!(app.wait_for_rows("observations", "usage-shapes", 5).await);
    for (id, usage_details, usage) in [
        (
            "completion",
            json!({"input": 15, "input_cached_tokens": 5, "output": 6, "output_reasoning_tokens": 2, "total": 28}),
            [15, 6, 28],
        ),
        (
            "response",
            json!({"input": 9, "output": 3, "total": 12}),
            [9, 3, 12],
        ),
        (
            "partial",
            json!({"prompt_tokens": 20, "completion_tokens": 8, "total": 28}),
            [0, 0, 28],
        ),
        (
            "extended",
            json!({"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28,
                "prompt_cache_hit_tokens": 4, "total": 60}),
            [0, 0, 60],
        ),
        (
            "plain",
            json!({"input": 7, "cache_read": 2, "total": 9}),
            [7, 0, 9],
        ),
    ] {
        let (status, o) = app
            .get_json(&format!("/api/public/observations/{id}"), &key)
            .await;
        assert_eq!(status, 200, "{o}");
        assert_eq!(o["usageDetails"], usage_details, "{id}");
        assert_eq!(
            [
                &o["usage"]["input"],
                &o["usage"]["output"],
                &o["usage"]["total"]
            ],
            usage.map(|n| json!(n)).each_ref(),
            "{id}"
        );
    }
}

#[tokio::test]
async fn observations_naming_a_prompt_version_carry_its_id() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "prompt-links").await;
    let mut ids = Vec::new();
    for text in ["first", "second"] {
        let response = app
            .post_as(
                "/api/public/v2/prompts",
                &key,
                &json!({"name": "greeting", "type": "text", "prompt": text}),
            )
            .await;
        assert_eq!(response.status(), 201);
        let prompt: Value = response.json().await.unwrap();
        ids.push(prompt["id"].as_str().unwrap().to_string());
    }
    let generation = |id: &str, name: &str, version: u32| {
        envelope(
            id,
            "generation-create",
            "2024-05-01T10:00:00.000Z",
            json!({"id": id, "traceId": "pt", "startTime": "2024-05-01T10:00:00.000Z",
                "promptName": name, "promptVersion": version}),
        )
    };
    let batch = json!({"batch": [
        generation("linked-1", "greeting", 1),
        generation("linked-2", "greeting", 2),
        generation("no-such-version", "greeting", 3),
        generation("no-such-prompt", "farewell", 1),
        envelope("plain", "span-create", "2024-05-01T10:00:00.000Z",
            json!({"id": "plain", "traceId": "pt", "startTime": "2024-05-01T10:00:00.000Z"})),
    ]});
    app.ingest_accepted(&key, &batch).await;
    assert!(app.wait_for_rows("observations", "prompt-links", 5).await);

    let expected = [
        ("linked-1", json!(ids[0])),
        ("linked-2", json!(ids[1])),
        ("no-such-version", Value::Null),
        ("no-such-prompt", Value::Null),
        ("plain", Value::Null),
    ];
    let (_, v1) = app
        .get_json("/api/public/observations?traceId=pt", &key)
        .await;
    let (_, v2) = app
        .get_json(
            "/api/public/v2/observations?traceId=pt&fields=core,prompt",
            &key,
        )
        .await;
    // A trace answers once everything accepted with it is written.
    let trace = crate::otel::read_trace(&app, &key, "pt", 5).await;
    for (id, prompt_id) in &expected {
        for (what, items) in [
            ("v1", &v1["data"]),
            ("v2", &v2["data"]),
            ("trace", &trace["observations"]),
        ] {
            let item = items
                .as_array()
                .unwrap_or_else(|| panic!("{what}: {items}"))
                .iter()
                .find(|o| o["id"] == *id)
                .unwrap_or_else(|| panic!("{what}: {id} missing"));
            assert_eq!(item["promptId"], *prompt_id, "{what}: {id}");
        }
    }
    let (_, one) = app
        .get_json("/api/public/observations/linked-2", &key)
        .await;
    assert_eq!(
        (&one["promptId"], &one["promptName"], &one["promptVersion"]),
        (&json!(ids[1]), &json!("greeting"), &json!(2))
    );
}

#[tokio::test]
async fn observations_are_written_without_a_prompt_id_while_postgres_is_away() {
    let mut config = TestConfig::new().await;
    let proxy = TcpProxy::start(socket_of(&admin_database_url())).await;
    let url = with_socket(&config.env["DATABASE_URL"], proxy.addr);
    config.set("DATABASE_URL", url);
    let app = TestApp::spawn_with_worker(config).await;
    let key = create_project(&app.config, "prompt-outage").await;
    let mut ids = Vec::new();
    for text in ["first", "second"] {
        let response = app
            .post_as(
                "/api/public/v2/prompts",
                &key,
                &json!({"name": "greeting", "type": "text", "prompt": text}),
            )
            .await;
        assert_eq!(response.status(), 201);
        let prompt: Value = response.json().await.unwrap();
        ids.push(prompt["id"].as_str().unwrap().to_string());
    }
    let generation = |id: &str, version: u32| {
        json!({"batch": [envelope(id, "generation-create", "2024-05-01T10:00:00.000Z",
            json!({"id": id, "traceId": "po", "startTime": "2024-05-01T10:00:00.000Z",
                "promptName": "greeting", "promptVersion": version}))]})
    };
    let prompt_id = |id: &str| {
        let app = &app;
        let (key, path) = (&key, format!("/api/public/observations/{id}"));
        async move {
            let (status, body) = app.get_json(&path, key).await;
            assert_eq!(status, 200, "{body}");
            body["promptId"].clone()
        }
    };
    // Version 1 is looked up, and cached, while PostgreSQL answers.
    app.ingest_accepted(&key, &generation("before", 1)).await;
    assert!(app.wait_for_rows("observations", "prompt-outage", 1).await);
    assert_eq!(prompt_id("before").await, json!(ids[0]));

    proxy.stop();
    app.ingest_accepted(&key, &generation("cached", 1)).await;
    app.ingest_accepted(&key, &generation("unknown", 2)).await;
    assert!(
        app.wait_for_rows("observations", "prompt-outage", 3).await,
        "events wait for PostgreSQL"
    );
    assert_eq!(prompt_id("cached").await, json!(ids[0]));
    assert_eq!(prompt_id("unknown").await, Value::Null);

    // Back, the next event of the observation rebuilds it with the link (once lookups resume).
    proxy.resume();
    let linked = eventually(Duration::from_secs(30), || async {
        app.ingest_accepted(&key, &generation("unknown", 2)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        prompt_id("unknown").await == json!(ids[1])
    })
    .await;
    assert!(
        linked,
        "the observation was never linked once PostgreSQL was back"
    );
}
