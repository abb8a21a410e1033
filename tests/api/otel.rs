//! `POST /api/public/otel/v1/traces` end to end: OTLP exports in protobuf and JSON, gzip and
//! plain, through the pipeline and the worker, read back through the read API; and every way an
//! export can be refused.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1 as common;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as trace;
use prost::Message;
use reqwest::header::AUTHORIZATION;
use serde_json::{json, Value};

use crate::helpers::{create_project, gzip, ApiKey, TestApp, TestConfig};

const PATH: &str = "/api/public/otel/v1/traces";

// ------------------------------------------------------------------------------------------------
// Building exports
// ------------------------------------------------------------------------------------------------

/// A span in a compact form: ids, name, times in ms after a fixed start, attributes as plain JSON.
struct TestSpan {
    trace_id: String,
    span_id: String,
    parent: Option<String>,
    name: &'static str,
    start_ms: u64,
    end_ms: u64,
    attributes: Value,
    error: Option<&'static str>,
}

const T0_NANOS: u64 = 1_735_732_800_000_000_000; // 2025-01-01T12:00:00Z

fn any_value(v: &Value) -> common::AnyValue {
    use common::any_value::Value as V;
    let value = match v {
        Value::String(s) => V::StringValue(s.clone()),
        Value::Bool(b) => V::BoolValue(*b),
        Value::Number(n) if n.is_i64() => V::IntValue(n.as_i64().unwrap()),
        Value::Number(n) => V::DoubleValue(n.as_f64().unwrap()),
        Value::Array(items) => V::ArrayValue(common::ArrayValue {
            values: items.iter().map(any_value).collect(),
        }),
        other => V::StringValue(other.to_string()),
    };
    common::AnyValue { value: Some(value) }
}

fn key_values(attributes: &Value) -> Vec<common::KeyValue> {
    attributes
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| common::KeyValue {
                    key: k.clone(),
                    value: Some(any_value(v)),
                    ..Default::default()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn proto_export(resource: &Value, scope: &str, spans: &[TestSpan]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![trace::ResourceSpans {
            resource: Some(Resource {
                attributes: key_values(resource),
                ..Default::default()
            }),
            scope_spans: vec![trace::ScopeSpans {
                scope: Some(common::InstrumentationScope {
                    name: scope.into(),
                    version: "1.0.0".into(),
                    ..Default::default()
                }),
                spans: spans
                    .iter()
                    .map(|s| trace::Span {
                        trace_id: hex::decode(&s.trace_id).unwrap(),
                        span_id: hex::decode(&s.span_id).unwrap(),
                        parent_span_id: s
                            .parent
                            .as_ref()
                            .map(|p| hex::decode(p).unwrap())
                            .unwrap_or_default(),
                        name: s.name.into(),
                        kind: 1,
                        start_time_unix_nano: T0_NANOS + s.start_ms * 1_000_000,
                        end_time_unix_nano: T0_NANOS + s.end_ms * 1_000_000,
                        attributes: key_values(&s.attributes),
                        status: s.error.map(|m| trace::Status {
                            code: 2,
                            message: m.into(),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The same export in OTLP/JSON, as the JavaScript exporters write it (hex ids, int64 as strings).
fn json_export(resource: &Value, scope: &str, spans: &[TestSpan]) -> Value {
    fn json_value(v: &Value) -> Value {
        match v {
            Value::String(s) => json!({"stringValue": s}),
            Value::Bool(b) => json!({"boolValue": b}),
            Value::Number(n) if n.is_i64() => json!({"intValue": n.to_string()}),
            Value::Number(n) => json!({"doubleValue": n}),
            Value::Array(items) => {
                json!({"arrayValue": {"values": items.iter().map(json_value).collect::<Vec<_>>()}})
            }
            other => json!({"stringValue": other.to_string()}),
        }
    }
    let kvs = |attributes: &Value| -> Vec<Value> {
        attributes
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| json!({"key": k, "value": json_value(v)}))
                    .collect()
            })
            .unwrap_or_default()
    };
    json!({"resourceSpans": [{
        "resource": {"attributes": kvs(resource)},
        "scopeSpans": [{
            "scope": {"name": scope, "version": "1.0.0"},
            "spans": spans.iter().map(|s| json!({
                "traceId": s.trace_id, "spanId": s.span_id,
                "parentSpanId": s.parent.clone().unwrap_or_default(),
                "name": s.name, "kind": 1,
                "startTimeUnixNano": (T0_NANOS + s.start_ms * 1_000_000).to_string(),
                "endTimeUnixNano": (T0_NANOS + s.end_ms * 1_000_000).to_string(),
                "attributes": kvs(&s.attributes),
                "status": match s.error { Some(m) => json!({"code": 2, "message": m}), None => json!({}) },
            })).collect::<Vec<_>>(),
        }],
    }]})
}

/// A small Langfuse-SDK-shaped trace: a root span with trace attributes, a generation and a
/// failed tool call.
fn chat_trace(trace_id: &str) -> Vec<TestSpan> {
    let root = format!("{}01", &trace_id[18..]);
    vec![
        TestSpan {
            trace_id: trace_id.into(),
            span_id: format!("{}02", &trace_id[18..]),
            parent: Some(root.clone()),
            name: "llm",
            start_ms: 100,
            end_ms: 600,
            attributes: json!({
                "langfuse.observation.type": "generation",
                "langfuse.observation.model.name": "gpt-4o-mini",
                "langfuse.observation.model.parameters": "{\"temperature\": 0.2}",
                "langfuse.observation.usage_details": "{\"input\": 12, \"output\": 7}",
                "langfuse.observation.cost_details": "{\"input\": 0.0012, \"output\": 0.0021}",
                "langfuse.observation.input": "[{\"role\": \"user\", \"content\": \"hi\"}]",
                "langfuse.observation.output": "{\"role\": \"assistant\", \"content\": \"hello\"}",
                "langfuse.observation.completion_start_time": "2025-01-01T12:00:00.250Z",
                "user.id": "user-1",
                "langfuse.environment": "production",
            }),
            error: None,
        },
        TestSpan {
            trace_id: trace_id.into(),
            span_id: format!("{}03", &trace_id[18..]),
            parent: Some(root.clone()),
            name: "lookup",
            start_ms: 650,
            end_ms: 700,
            attributes: json!({"langfuse.observation.type": "tool", "langfuse.environment": "production"}),
            error: Some("KeyError: 'x'"),
        },
        TestSpan {
            trace_id: trace_id.into(),
            span_id: root,
            parent: None,
            name: "handle",
            start_ms: 0,
            end_ms: 1000,
            attributes: json!({
                "langfuse.trace.name": "chat",
                "user.id": "user-1",
                "session.id": "session-1",
                "langfuse.trace.tags": ["otel", "test"],
                "langfuse.trace.metadata.team": "\"search\"",
                "langfuse.observation.input": "{\"question\": \"hi\"}",
                "langfuse.observation.output": "\"done\"",
                "langfuse.environment": "production",
                "langfuse.release": "r-1",
            }),
            error: None,
        },
    ]
}

fn resource() -> Value {
    json!({"service.name": "otel-test", "service.version": "2.0.0", "telemetry.sdk.language": "rust"})
}

async fn post(
    app: &TestApp,
    key: &ApiKey,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = app
        .http
        .post(app.url(PATH))
        .header(AUTHORIZATION, key.basic_auth())
        .header("content-type", content_type)
        .body(body);
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    request.send().await.expect("request")
}

/// Waits until the trace reads back with `observations` observations and returns it.
pub(crate) async fn read_trace(
    app: &TestApp,
    key: &ApiKey,
    trace_id: &str,
    observations: usize,
) -> Value {
    let path = format!("/api/public/traces/{trace_id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = app.get_json(&path, key).await;
        if status == 200 && body["observations"].as_array().map(Vec::len) == Some(observations) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "trace {trace_id} not readable in time: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(crate) fn observation<'a>(trace: &'a Value, id: &str) -> &'a Value {
    trace["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == id)
        .unwrap_or_else(|| panic!("observation {id} in {trace}"))
}

fn check_chat_trace(trace: &Value, trace_id: &str) {
    let p = &trace_id[18..];
    assert_eq!(trace["id"], trace_id);
    assert_eq!(trace["name"], "chat");
    assert_eq!(trace["timestamp"], "2025-01-01T12:00:00.000Z");
    assert_eq!(trace["userId"], "user-1");
    assert_eq!(trace["sessionId"], "session-1");
    assert_eq!(trace["release"], "r-1");
    assert_eq!(trace["version"], "2.0.0");
    assert_eq!(trace["environment"], "production");
    assert_eq!(trace["tags"], json!(["otel", "test"]));
    assert_eq!(trace["input"], json!({"question": "hi"}));
    assert_eq!(trace["output"], "done");
    assert_eq!(trace["metadata"]["team"], "search");
    assert_eq!(
        trace["metadata"]["resourceAttributes"]["service.name"],
        "otel-test"
    );
    assert_eq!(trace["metadata"]["scope"]["name"], "otel-test-scope");

    let root = observation(trace, &format!("{p}01"));
    assert_eq!(root["type"], "SPAN");
    assert_eq!(root["name"], "handle");
    assert_eq!(root["parentObservationId"], Value::Null);
    assert_eq!(root["startTime"], "2025-01-01T12:00:00.000Z");
    assert_eq!(root["endTime"], "2025-01-01T12:00:01.000Z");
    assert_eq!(root["input"], json!({"question": "hi"}));

    let generation = observation(trace, &format!("{p}02"));
    assert_eq!(generation["type"], "GENERATION");
    assert_eq!(generation["parentObservationId"], format!("{p}01"));
    assert_eq!(generation["model"], "gpt-4o-mini");
    assert_eq!(generation["modelParameters"], json!({"temperature": 0.2}));
    assert_eq!(
        generation["usageDetails"],
        json!({"input": 12, "output": 7, "total": 19})
    );
    let cost = &generation["costDetails"];
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
    assert_eq!(
        generation["completionStartTime"],
        "2025-01-01T12:00:00.250Z"
    );
    assert_eq!(generation["environment"], "production");
    assert_eq!(generation["level"], "DEFAULT");

    let tool = observation(trace, &format!("{p}03"));
    assert_eq!(tool["type"], "TOOL");
    assert_eq!(tool["level"], "ERROR");
    assert_eq!(tool["statusMessage"], "KeyError: 'x'");
}

// ------------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn protobuf_and_json_gzip_or_not_are_stored_and_read_back() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "otel").await;
    let variants = [
        (
            "application/x-protobuf",
            false,
            "1a2b3c4d5e6f70810000000000000001",
        ),
        (
            "application/x-protobuf",
            true,
            "1a2b3c4d5e6f70820000000000000002",
        ),
        (
            "application/json",
            false,
            "1a2b3c4d5e6f70830000000000000003",
        ),
        ("application/json", true, "1a2b3c4d5e6f70840000000000000004"),
    ];
    for (content_type, gzipped, trace_id) in variants {
        let spans = chat_trace(trace_id);
        let body = if content_type == "application/json" {
            json_export(&resource(), "otel-test-scope", &spans)
                .to_string()
                .into_bytes()
        } else {
            proto_export(&resource(), "otel-test-scope", &spans).encode_to_vec()
        };
        let (body, encoding) = if gzipped {
            (gzip(&body), Some("gzip"))
        } else {
            (body, None)
        };
        let response = post(&app, &key, content_type, encoding, body).await;
        assert_eq!(response.status(), 200, "{content_type} gzip={gzipped}");
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            content_type
        );
        let bytes = response.bytes().await.unwrap();
        if content_type == "application/json" {
            assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), json!({}));
        } else {
            let decoded = ExportTraceServiceResponse::decode(&bytes[..]).unwrap();
            assert_eq!(decoded.partial_success, None);
        }
    }
    for (content_type, gzipped, trace_id) in variants {
        let trace = read_trace(&app, &key, trace_id, 3).await;
        eprintln!("checking {content_type} gzip={gzipped}");
        check_chat_trace(&trace, trace_id);
    }
}

#[tokio::test]
async fn a_retried_export_is_stored_once_and_late_root_spans_still_name_the_trace() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "otel-retry").await;
    let trace_id = "2a2b3c4d5e6f70810000000000000001";
    let mut spans = chat_trace(trace_id);
    let root = spans.pop().unwrap();
    // Children first (they end first and are exported first), twice; then the root.
    let children = proto_export(&resource(), "otel-test-scope", &spans).encode_to_vec();
    for _ in 0..2 {
        let response = post(&app, &key, "application/x-protobuf", None, children.clone()).await;
        assert_eq!(response.status(), 200);
    }
    let response = post(
        &app,
        &key,
        "application/x-protobuf",
        None,
        proto_export(&resource(), "otel-test-scope", &[root]).encode_to_vec(),
    )
    .await;
    assert_eq!(response.status(), 200);
    let trace = read_trace(&app, &key, trace_id, 3).await;
    check_chat_trace(&trace, trace_id);
    assert!(app.wait_for_rows("observations", "otel-retry", 3).await);
    assert!(app.wait_for_rows("traces", "otel-retry", 1).await);
}

#[tokio::test]
async fn spans_of_a_trace_without_its_root_still_make_the_trace() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "otel-orphans").await;
    let trace_id = "3a2b3c4d5e6f70810000000000000001";
    let spans = vec![TestSpan {
        trace_id: trace_id.into(),
        span_id: "3a2b3c4d5e6f7002".into(),
        parent: Some("3a2b3c4d5e6f7001".into()),
        name: "child",
        start_ms: 200,
        end_ms: 300,
        attributes: json!({"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 3}),
        error: None,
    }];
    let body = json_export(&resource(), "my-lib", &spans).to_string();
    let response = post(&app, &key, "application/json", None, body.into_bytes()).await;
    assert_eq!(response.status(), 200);
    let trace = read_trace(&app, &key, trace_id, 1).await;
    // No root: the trace exists, named by nothing, timed by its earliest span.
    assert_eq!(trace["name"], Value::Null);
    assert_eq!(trace["timestamp"], "2025-01-01T12:00:00.200Z");
    let child = observation(&trace, "3a2b3c4d5e6f7002");
    assert_eq!(child["type"], "GENERATION");
    assert_eq!(child["model"], "gpt-4o");
    assert_eq!(child["usageDetails"], json!({"input": 3, "total": 3}));
    assert_eq!(
        child["metadata"]["attributes"]["gen_ai.request.model"],
        "gpt-4o"
    );
}

#[tokio::test]
async fn spans_the_pipeline_would_refuse_are_reported_in_partial_success() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "otel-partial").await;
    let trace_id = "4a2b3c4d5e6f70810000000000000001";
    let spans = vec![
        TestSpan {
            trace_id: trace_id.into(),
            span_id: "4a2b3c4d5e6f7001".into(),
            parent: None,
            name: "good",
            start_ms: 0,
            end_ms: 10,
            attributes: json!({}),
            error: None,
        },
        TestSpan {
            trace_id: trace_id.into(),
            span_id: "4a2b3c4d5e6f7002".into(),
            parent: Some("4a2b3c4d5e6f7001".into()),
            name: "bad",
            start_ms: 1,
            end_ms: 2,
            attributes: json!({"langfuse.observation.usage_details": "{\"input\": \"lots\"}"}),
            error: None,
        },
    ];
    for content_type in ["application/json", "application/x-protobuf"] {
        let body = if content_type == "application/json" {
            json_export(&resource(), "s", &spans)
                .to_string()
                .into_bytes()
        } else {
            proto_export(&resource(), "s", &spans).encode_to_vec()
        };
        let response = post(&app, &key, content_type, None, body).await;
        assert_eq!(response.status(), 200);
        let bytes = response.bytes().await.unwrap();
        let (rejected, message) = if content_type == "application/json" {
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            (
                v["partialSuccess"]["rejectedSpans"]
                    .as_str()
                    .unwrap()
                    .parse::<i64>()
                    .unwrap(),
                v["partialSuccess"]["errorMessage"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        } else {
            let p = ExportTraceServiceResponse::decode(&bytes[..])
                .unwrap()
                .partial_success
                .unwrap();
            (p.rejected_spans, p.error_message)
        };
        assert_eq!(rejected, 1);
        assert!(message.contains("1 of 2 spans rejected"), "{message}");
        assert!(message.contains("usage input"), "{message}");
    }
    let trace = read_trace(&app, &key, trace_id, 1).await;
    assert_eq!(trace["name"], "good");
}

#[tokio::test]
async fn bad_requests_get_their_status_and_store_nothing() {
    let mut config = TestConfig::new().await;
    config.set("LANGFUSE_RS__INGESTION__OTEL_MAX_BODY_BYTES", "100000");
    let app = TestApp::spawn_with_worker(config).await;
    let key = create_project(&app.config, "otel-bad").await;
    let good_trace = "5a2b3c4d5e6f70810000000000000001";
    let good = proto_export(&resource(), "s", &chat_trace(good_trace)).encode_to_vec();
    let json_good = json_export(&resource(), "s", &chat_trace(good_trace)).to_string();

    // 401: no keys, wrong keys.
    let response = app
        .http
        .post(app.url(PATH))
        .header("content-type", "application/x-protobuf")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = post(
        &app,
        &key.with_secret("sk-lf-wrong"),
        "application/x-protobuf",
        None,
        good.clone(),
    )
    .await;
    assert_eq!(response.status(), 401);

    // 415: other content types and encodings.
    for (content_type, encoding) in [
        ("text/plain", None),
        ("application/grpc", None),
        ("", None),
        ("application/x-protobuf", Some("br")),
    ] {
        let response = post(&app, &key, content_type, encoding, good.clone()).await;
        assert_eq!(response.status(), 415, "{content_type} {encoding:?}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().contains("Unsupported"),
            "{body}"
        );
    }

    // 400: undecodable, truncated, not gzip, ids that are not ids.
    let mut bad_id = chat_trace("5a2b3c4d5e6f70820000000000000002");
    bad_id[1].span_id = "abc".into();
    let bad_id_json = json_export(&resource(), "s", &bad_id).to_string();
    let zero_trace = proto_export(
        &resource(),
        "s",
        &chat_trace("00000000000000000000000000000000"),
    )
    .encode_to_vec();
    for (content_type, encoding, body, expected) in [
        (
            "application/x-protobuf",
            None,
            b"\x0a\xff\xff\xff".to_vec(),
            "protobuf",
        ),
        (
            "application/x-protobuf",
            None,
            good[..good.len() - 3].to_vec(),
            "protobuf",
        ),
        (
            "application/json",
            None,
            json_good.as_bytes()[..json_good.len() / 2].to_vec(),
            "JSON",
        ),
        ("application/json", None, b"[1, 2]".to_vec(), "object"),
        ("application/x-protobuf", Some("gzip"), good.clone(), "gzip"),
        ("application/json", None, bad_id_json.into_bytes(), "spanId"),
        (
            "application/x-protobuf",
            None,
            zero_trace,
            "all-zero traceId",
        ),
    ] {
        let response = post(&app, &key, content_type, encoding, body).await;
        assert_eq!(response.status(), 400, "{expected}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().contains(expected),
            "{expected}: {body}"
        );
    }

    // 413: as sent, and a small gzip body that inflates past the limit.
    let mut big = chat_trace("5a2b3c4d5e6f70830000000000000003");
    big[0].attributes["langfuse.observation.input"] = json!("x".repeat(200_000));
    let big = proto_export(&resource(), "s", &big).encode_to_vec();
    let response = post(&app, &key, "application/x-protobuf", None, big.clone()).await;
    assert_eq!(response.status(), 413);
    let compressed = gzip(&big);
    assert!(compressed.len() < 100_000);
    let response = post(
        &app,
        &key,
        "application/x-protobuf",
        Some("gzip"),
        compressed,
    )
    .await;
    assert_eq!(response.status(), 413);

    // Only the good export, sent last, is stored: none of the refused ones left anything behind.
    let response = post(&app, &key, "application/x-protobuf", None, good).await;
    assert_eq!(response.status(), 200);
    read_trace(&app, &key, good_trace, 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.count_rows("traces", "otel-bad").await, 1);
    assert_eq!(app.count_rows("observations", "otel-bad").await, 3);
}

#[tokio::test]
async fn an_empty_export_is_answered_as_a_success() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "otel-empty").await;
    let response = post(&app, &key, "application/json", None, b"{}".to_vec()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
    let response = post(&app, &key, "application/x-protobuf", None, Vec::new()).await;
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_ten_megabyte_export_is_accepted_and_stored() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "otel-big").await;
    let trace_id = "6a2b3c4d5e6f70810000000000000001";
    // 100 spans of ~100 KB of input each: a 10 MB body.
    let spans: Vec<TestSpan> = (0..100)
        .map(|i| TestSpan {
            trace_id: trace_id.into(),
            span_id: format!("6a2b3c4d5e6f{i:04x}"),
            parent: (i > 0).then(|| "6a2b3c4d5e6f0000".to_string()),
            name: "chunk",
            start_ms: i,
            end_ms: i + 1,
            attributes: json!({"input.value": format!("{i:03}{}", "y".repeat(100_000))}),
            error: None,
        })
        .collect();
    for (content_type, gzipped) in [
        ("application/json", false),
        ("application/x-protobuf", true),
    ] {
        let body = if content_type == "application/json" {
            json_export(&resource(), "big", &spans)
                .to_string()
                .into_bytes()
        } else {
            gzip(&proto_export(&resource(), "big", &spans).encode_to_vec())
        };
        if !gzipped {
            assert!(body.len() > 10_000_000, "{}", body.len());
        }
        let response = post(&app, &key, content_type, gzipped.then_some("gzip"), body).await;
        assert_eq!(response.status(), 200, "{content_type}");
    }
    assert!(app.wait_for_rows("observations", "otel-big", 100).await);
    let (status, observation) = app
        .get_json("/api/public/observations/6a2b3c4d5e6f0063", &key)
        .await;
    assert_eq!(status, 200);
    let input = observation["input"].as_str().unwrap();
    assert_eq!(input.len(), 100_003);
    assert!(input.starts_with("099y"));
}

#[tokio::test]
async fn a_queue_backlog_over_its_bound_is_answered_429_as_for_the_batch_api() {
    let mut config = TestConfig::new().await;
    config.set("LANGFUSE_RS__INGESTION__MAX_BACKLOG", "0");
    // No worker: what is accepted stays in the queue.
    let app = TestApp::spawn(config).await;
    let key = create_project(&app.config, "otel-busy").await;
    let body = proto_export(
        &resource(),
        "s",
        &chat_trace("7a2b3c4d5e6f70810000000000000001"),
    )
    .encode_to_vec();
    let response = post(&app, &key, "application/x-protobuf", None, body.clone()).await;
    assert_eq!(response.status(), 200);
    let mut throttled = None;
    for _ in 0..50 {
        let response = post(&app, &key, "application/x-protobuf", None, body.clone()).await;
        if response.status() == 429 {
            throttled = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = throttled.expect("never throttled");
    assert_eq!(response.headers()["retry-after"], "2");
}
