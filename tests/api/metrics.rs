//! The Metrics API (`GET /api/public/metrics`, `GET /api/public/v2/metrics`) over data sent
//! through the batch API: every aggregation of every measure of every view equals the figure
//! computed here from the records the events make, with updates, duplicates, a trace and an
//! observation whose time moved to another month (two versions in two partitions), and a
//! deleted score; before and after ClickHouse merges. Then the answer's shapes: groupings, time
//! buckets filled, histogram bins, row limits, v2's refusals and 400s naming the field.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::helpers::{create_project, envelope, ApiKey, TestApp, TestConfig};

const AGGREGATIONS: [&str; 11] = [
    "sum",
    "avg",
    "count",
    "max",
    "min",
    "p50",
    "p75",
    "p90",
    "p95",
    "p99",
    "histogram",
];

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

struct Trace {
    id: &'static str,
    name: &'static str,
    user: Option<&'static str>,
    session: Option<&'static str>,
    at: &'static str,
}

struct Obs {
    id: &'static str,
    trace: &'static str,
    kind: &'static str,
    name: &'static str,
    start: &'static str,
    end: Option<&'static str>,
    completion_start: Option<&'static str>,
    model: Option<&'static str>,
    input: u64,
    output: u64,
    input_cost: f64,
    output_cost: f64,
}

struct Score {
    id: &'static str,
    trace: &'static str,
    observation: Option<&'static str>,
    name: &'static str,
    data_type: &'static str,
    value: f64,
    label: Option<&'static str>,
    at: &'static str,
    deleted: bool,
}

/// The records the events below make, as they end up.
const TRACES: &[Trace] = &[
    Trace {
        id: "tA",
        name: "alpha",
        user: Some("u1"),
        session: Some("s1"),
        at: "2025-01-10T10:00:00.000Z",
    },
    Trace {
        id: "tB",
        name: "beta",
        user: None,
        session: None,
        at: "2025-01-10T12:00:00.000Z",
    },
    // First sent on 2025-01-20, then moved to February.
    Trace {
        id: "tC",
        name: "alpha",
        user: Some("u2"),
        session: None,
        at: "2025-02-05T08:00:00.000Z",
    },
];

const OBSERVATIONS: &[Obs] = &[
    Obs {
        id: "o1",
        trace: "tA",
        kind: "GENERATION",
        name: "llm",
        start: "2025-01-10T10:00:00.000Z",
        end: Some("2025-01-10T10:00:01.500Z"),
        completion_start: Some("2025-01-10T10:00:00.300Z"),
        model: Some("m-a"),
        input: 100,
        output: 20,
        input_cost: 0.001,
        output_cost: 0.002,
    },
    Obs {
        id: "o2",
        trace: "tA",
        kind: "SPAN",
        name: "step",
        start: "2025-01-10T10:00:01.000Z",
        end: Some("2025-01-10T10:00:01.250Z"),
        completion_start: None,
        model: None,
        input: 0,
        output: 0,
        input_cost: 0.0,
        output_cost: 0.0,
    },
    // Updated: its end and its output tokens.
    Obs {
        id: "o3",
        trace: "tB",
        kind: "GENERATION",
        name: "llm",
        start: "2025-01-10T12:00:00.000Z",
        end: Some("2025-01-10T12:00:03.000Z"),
        completion_start: Some("2025-01-10T12:00:01.000Z"),
        model: Some("m-b"),
        input: 50,
        output: 70,
        input_cost: 0.0005,
        output_cost: 0.0015,
    },
    // First sent starting on 2025-01-20, then moved to February.
    Obs {
        id: "o4",
        trace: "tC",
        kind: "GENERATION",
        name: "llm",
        start: "2025-02-05T08:00:00.500Z",
        end: Some("2025-02-05T08:00:01.300Z"),
        completion_start: None,
        model: Some("m-a"),
        input: 10,
        output: 10,
        input_cost: 0.0001,
        output_cost: 0.0,
    },
    Obs {
        id: "o5",
        trace: "tC",
        kind: "EVENT",
        name: "note",
        start: "2025-02-05T08:00:01.000Z",
        end: Some("2025-02-05T08:00:01.000Z"),
        completion_start: None,
        model: None,
        input: 0,
        output: 0,
        input_cost: 0.0,
        output_cost: 0.0,
    },
    // Never ended.
    Obs {
        id: "o6",
        trace: "tB",
        kind: "GENERATION",
        name: "llm",
        start: "2025-01-11T00:00:00.000Z",
        end: None,
        completion_start: None,
        model: Some("m-b"),
        input: 5,
        output: 0,
        input_cost: 0.0,
        output_cost: 0.0,
    },
];

const SCORES: &[Score] = &[
    // Updated from 0.8.
    Score {
        id: "s1",
        trace: "tA",
        observation: None,
        name: "quality",
        data_type: "NUMERIC",
        value: 0.9,
        label: None,
        at: "2025-01-10T10:05:00.000Z",
        deleted: false,
    },
    Score {
        id: "s2",
        trace: "tB",
        observation: Some("o3"),
        name: "quality",
        data_type: "NUMERIC",
        value: 0.4,
        label: None,
        at: "2025-01-10T12:05:00.000Z",
        deleted: false,
    },
    Score {
        id: "s3",
        trace: "tC",
        observation: None,
        name: "ok",
        data_type: "BOOLEAN",
        value: 1.0,
        label: None,
        at: "2025-01-20T08:05:00.000Z",
        deleted: false,
    },
    Score {
        id: "s4",
        trace: "tA",
        observation: None,
        name: "ok",
        data_type: "BOOLEAN",
        value: 0.0,
        label: None,
        at: "2025-01-10T10:06:00.000Z",
        deleted: false,
    },
    Score {
        id: "s5",
        trace: "tA",
        observation: None,
        name: "label",
        data_type: "CATEGORICAL",
        value: 0.0,
        label: Some("good"),
        at: "2025-01-10T10:07:00.000Z",
        deleted: false,
    },
    Score {
        id: "s6",
        trace: "tB",
        observation: None,
        name: "label",
        data_type: "CATEGORICAL",
        value: 0.0,
        label: Some("bad"),
        at: "2025-01-10T12:06:00.000Z",
        deleted: false,
    },
    Score {
        id: "s7",
        trace: "tB",
        observation: Some("o3"),
        name: "quality",
        data_type: "NUMERIC",
        value: 0.1,
        label: None,
        at: "2025-01-10T12:07:00.000Z",
        deleted: true,
    },
];

const FROM: &str = "2025-01-01T00:00:00.000Z";
const TO: &str = "2025-03-01T00:00:00.000Z";

fn obs_body(o: &Obs, start: &str, end: Option<&str>, output: u64) -> Value {
    let mut body = json!({"id": o.id, "traceId": o.trace, "name": o.name, "startTime": start});
    if let Some(end) = end {
        body["endTime"] = json!(end);
    }
    if let Some(c) = o.completion_start {
        body["completionStartTime"] = json!(c);
    }
    if let Some(model) = o.model {
        body["model"] = json!(model);
    }
    if o.input + output > 0 {
        body["usageDetails"] = json!({"input": o.input, "output": output});
    }
    if o.input_cost + o.output_cost > 0.0 {
        body["costDetails"] = json!({"input": o.input_cost, "output": o.output_cost});
    }
    body
}

fn kind_of(o: &Obs) -> &'static str {
    match o.kind {
        "GENERATION" => "generation-create",
        "SPAN" => "span-create",
        _ => "event-create",
    }
}

/// The first batch: every record as first sent (tC and o4 in January, o3 with its first end and
/// output, s1 with its first value, s7 not yet deleted).
fn first_batch() -> Value {
    let mut batch = Vec::new();
    for t in TRACES {
        let first_at = if t.id == "tC" {
            "2025-01-20T08:00:00.000Z"
        } else {
            t.at
        };
        let mut body = json!({"id": t.id, "name": t.name, "timestamp": first_at});
        if let Some(u) = t.user {
            body["userId"] = json!(u);
        }
        if let Some(s) = t.session {
            body["sessionId"] = json!(s);
        }
        batch.push(envelope(
            &format!("{}-1", t.id),
            "trace-create",
            first_at,
            body,
        ));
    }
    for o in OBSERVATIONS {
        let (start, end, output) = match o.id {
            "o3" => (o.start, Some("2025-01-10T12:00:04.000Z"), 50),
            "o4" => ("2025-01-20T08:00:00.500Z", None, o.output),
            _ => (o.start, o.end, o.output),
        };
        batch.push(envelope(
            &format!("{}-1", o.id),
            kind_of(o),
            start,
            obs_body(o, start, end, output),
        ));
    }
    for s in SCORES {
        let value = if s.id == "s1" {
            json!(0.8)
        } else if let Some(label) = s.label {
            json!(label)
        } else {
            json!(s.value)
        };
        let mut body = json!({"id": s.id, "traceId": s.trace, "name": s.name,
            "value": value, "dataType": s.data_type});
        if let Some(o) = s.observation {
            body["observationId"] = json!(o);
        }
        batch.push(envelope(&format!("{}-1", s.id), "score-create", s.at, body));
    }
    json!({ "batch": batch })
}

/// The second batch: updates, duplicates of first events, and the moves of tC and o4 (an
/// event ordered before every other of theirs sets their time; a later one makes the new
/// version the newest).
fn second_batch(first: &Value) -> Value {
    let duplicate = |id: &str| {
        first["batch"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == json!(id))
            .unwrap()
            .clone()
    };
    let o3 = &OBSERVATIONS[2];
    let o4 = &OBSERVATIONS[3];
    json!({"batch": [
        duplicate("o1-1"),
        duplicate("s2-1"),
        envelope("tA-2", "trace-create", "2025-01-10T11:00:00.000Z",
            json!({"id": "tA", "release": "r2"})),
        envelope("tC-move", "trace-create", "2025-01-01T00:00:00.000Z",
            json!({"id": "tC", "timestamp": "2025-02-05T08:00:00.000Z"})),
        envelope("tC-2", "trace-create", "2025-02-05T09:00:00.000Z",
            json!({"id": "tC", "metadata": {"moved": "yes"}})),
        envelope("o3-2", "generation-update", "2025-01-10T12:10:00.000Z",
            json!({"id": "o3", "traceId": "tB", "endTime": o3.end.unwrap(),
                "usageDetails": {"input": o3.input, "output": o3.output}})),
        envelope("o4-move", "generation-create", "2025-01-01T00:00:01.000Z",
            json!({"id": "o4", "traceId": "tC", "name": o4.name, "startTime": o4.start})),
        envelope("o4-2", "generation-update", "2025-02-05T09:00:00.000Z",
            json!({"id": "o4", "traceId": "tC", "endTime": o4.end.unwrap()})),
        envelope("s1-2", "score-create", "2025-01-10T10:30:00.000Z",
            json!({"id": "s1", "traceId": "tA", "name": "quality", "value": 0.9, "dataType": "NUMERIC"})),
    ]})
}

fn ms(text: &str) -> i64 {
    at(text).timestamp_millis()
}

fn millis_between(a: Option<&str>, b: Option<&str>) -> Option<f64> {
    Some((ms(b?) - ms(a?)) as f64)
}

/// ClickHouse's `dateDiff('second', a, b)`: second boundaries crossed.
fn seconds_between(a: Option<&str>, b: Option<&str>) -> Option<f64> {
    Some((ms(b?).div_euclid(1000) - ms(a?).div_euclid(1000)) as f64)
}

fn in_range(t: &str, from: &str, to: &str) -> bool {
    at(t) >= at(from) && at(t) <= at(to)
}

fn live_scores(from: &str, to: &str) -> Vec<&'static Score> {
    SCORES
        .iter()
        .filter(|s| !s.deleted && in_range(s.at, from, to))
        .collect()
}

/// An observation's measures, one value each (None where it has none).
fn observation_measure(o: &Obs, measure: &str, from: &str, to: &str) -> Option<f64> {
    let total = (o.input + o.output) as f64;
    let per_second = |tokens: f64, a, b| {
        seconds_between(a, b)
            .filter(|s| *s != 0.0)
            .map(|s| tokens / s)
    };
    match measure {
        "count" => Some(1.0),
        "latency" => millis_between(Some(o.start), o.end),
        "streamingLatency" => millis_between(o.completion_start, o.end),
        "timeToFirstToken" => millis_between(Some(o.start), o.completion_start),
        "inputTokens" => Some(o.input as f64),
        "outputTokens" => Some(o.output as f64),
        "totalTokens" => Some(total),
        "outputTokensPerSecond" => per_second(o.output as f64, o.completion_start, o.end),
        "tokensPerSecond" => per_second(total, Some(o.start), o.end),
        "inputCost" => Some(o.input_cost),
        "outputCost" => Some(o.output_cost),
        "totalCost" => (o.input_cost + o.output_cost > 0.0).then_some(o.input_cost + o.output_cost),
        "countScores" => Some(
            live_scores(from, to)
                .iter()
                .filter(|s| s.observation == Some(o.id))
                .count() as f64,
        ),
        other => panic!("no expectation for {other}"),
    }
}

/// A trace's measures: its observations' figures are over those that started in the range.
fn trace_measure(t: &Trace, measure: &str, from: &str, to: &str) -> Option<f64> {
    let observations: Vec<&Obs> = OBSERVATIONS
        .iter()
        .filter(|o| o.trace == t.id && in_range(o.start, from, to))
        .collect();
    match measure {
        "count" => Some(1.0),
        "observationsCount" => Some(observations.len() as f64),
        "scoresCount" => Some(
            live_scores(from, to)
                .iter()
                .filter(|s| s.trace == t.id)
                .count() as f64,
        ),
        "uniqueUserIds" => Some(t.user.map_or(0.0, |_| 1.0)),
        "uniqueSessionIds" => Some(t.session.map_or(0.0, |_| 1.0)),
        "latency" => {
            let first = observations.iter().map(|o| ms(o.start)).min()?;
            let last = observations.iter().filter_map(|o| o.end.map(ms)).max()?;
            Some((last - first) as f64)
        }
        "totalTokens" => Some(
            observations
                .iter()
                .map(|o| (o.input + o.output) as f64)
                .sum(),
        ),
        "totalCost" => {
            let costs: Vec<f64> = observations
                .iter()
                .filter(|o| o.input_cost + o.output_cost > 0.0)
                .map(|o| o.input_cost + o.output_cost)
                .collect();
            (!costs.is_empty()).then(|| costs.iter().sum())
        }
        other => panic!("no expectation for {other}"),
    }
}

fn score_measure(s: &Score, measure: &str) -> Option<f64> {
    match measure {
        "count" => Some(1.0),
        "value" => Some(s.value),
        other => panic!("no expectation for {other}"),
    }
}

/// ClickHouse's `quantile` over a small set: linear interpolation at `level * (n - 1)`.
fn quantile(sorted: &[f64], level: f64) -> f64 {
    let index = level * (sorted.len() - 1) as f64;
    let (low, high) = (index.floor() as usize, index.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (index - low as f64)
}

fn close(actual: &Value, expected: f64) -> bool {
    actual
        .as_f64()
        .is_some_and(|a| (a - expected).abs() <= 1e-9 * expected.abs().max(1.0))
}

/// Checks one aggregation of a measure's values against the API's figure.
fn check(what: &str, aggregation: &str, values: &[Option<f64>], actual: &Value) {
    let mut present: Vec<f64> = values.iter().flatten().copied().collect();
    present.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = present.len();
    let context = format!("{what} {aggregation}: expected from {values:?}, got {actual}");
    if aggregation == "histogram" {
        let bins = actual.as_array().unwrap_or_else(|| panic!("{context}"));
        let height: f64 = bins.iter().map(|b| b[2].as_f64().unwrap()).sum();
        assert!((height - n as f64).abs() < 1e-9, "{context}");
        if n > 0 {
            assert!(close(&bins[0][0], present[0]), "{context}");
            assert!(close(&bins[bins.len() - 1][1], present[n - 1]), "{context}");
            assert!(bins.len() <= 10, "{context}");
        }
        return;
    }
    if aggregation == "count" {
        assert!(close(actual, n as f64), "{context}");
        return;
    }
    if n == 0 {
        // No value: sums of nothing and the others are empty or zero.
        assert!(
            actual.is_null() || close(actual, 0.0) || actual.as_f64().is_some_and(f64::is_nan),
            "{context}"
        );
        return;
    }
    let expected = match aggregation {
        "sum" => present.iter().sum(),
        "avg" => present.iter().sum::<f64>() / n as f64,
        "max" => present[n - 1],
        "min" => present[0],
        p => quantile(
            &present,
            match p {
                "p50" => 0.5,
                "p75" => 0.75,
                "p90" => 0.9,
                "p95" => 0.95,
                _ => 0.99,
            },
        ),
    };
    assert!(close(actual, expected), "{context}");
}

fn metrics_path(version: &str, query: &Value) -> String {
    let prefix = if version == "v2" {
        "/api/public/v2/metrics"
    } else {
        "/api/public/metrics"
    };
    format!(
        "{prefix}?query={}",
        url::form_urlencoded::byte_serialize(query.to_string().as_bytes()).collect::<String>()
    )
}

async fn rows(app: &TestApp, key: &ApiKey, version: &str, query: Value) -> Vec<Value> {
    let (status, body) = app.get_json(&metrics_path(version, &query), key).await;
    assert_eq!(status, 200, "{query}: {body}");
    body["data"].as_array().unwrap().clone()
}

fn all_metrics(measures: &[&str]) -> Value {
    let mut metrics = Vec::new();
    for m in measures {
        for a in AGGREGATIONS {
            metrics.push(json!({"measure": m, "aggregation": a}));
        }
    }
    Value::Array(metrics)
}

const TRACE_MEASURES: &[&str] = &[
    "count",
    "observationsCount",
    "scoresCount",
    "uniqueUserIds",
    "uniqueSessionIds",
    "latency",
    "totalTokens",
    "totalCost",
];
const OBSERVATION_MEASURES: &[&str] = &[
    "count",
    "latency",
    "streamingLatency",
    "inputTokens",
    "outputTokens",
    "totalTokens",
    "outputTokensPerSecond",
    "tokensPerSecond",
    "inputCost",
    "outputCost",
    "totalCost",
    "timeToFirstToken",
    "countScores",
];

/// Every aggregation of every measure of every view, over `from`..`to`, against the records.
async fn every_figure_matches(app: &TestApp, key: &ApiKey, version: &str, from: &str, to: &str) {
    let range = |view: &str, measures: &[&str]| json!({"view": view, "metrics": all_metrics(measures), "fromTimestamp": from, "toTimestamp": to});
    if version == "v1" {
        let answer = rows(app, key, version, range("traces", TRACE_MEASURES)).await;
        assert_eq!(answer.len(), 1);
        let traces: Vec<&Trace> = TRACES.iter().filter(|t| in_range(t.at, from, to)).collect();
        for m in TRACE_MEASURES {
            let values: Vec<Option<f64>> = traces
                .iter()
                .map(|t| trace_measure(t, m, from, to))
                .collect();
            for a in AGGREGATIONS {
                check(
                    &format!("traces {from}"),
                    a,
                    &values,
                    &answer[0][format!("{a}_{m}")],
                );
            }
        }
    }

    let answer = rows(
        app,
        key,
        version,
        range("observations", OBSERVATION_MEASURES),
    )
    .await;
    assert_eq!(answer.len(), 1);
    let observations: Vec<&Obs> = OBSERVATIONS
        .iter()
        .filter(|o| in_range(o.start, from, to))
        .collect();
    for m in OBSERVATION_MEASURES {
        let values: Vec<Option<f64>> = observations
            .iter()
            .map(|o| observation_measure(o, m, from, to))
            .collect();
        for a in AGGREGATIONS {
            check(
                &format!("observations {m} {from}"),
                a,
                &values,
                &answer[0][format!("{a}_{m}")],
            );
        }
    }

    for (view, measures, keep) in [
        (
            "scores-numeric",
            &["count", "value"][..],
            &(|s: &Score| s.data_type != "CATEGORICAL") as &dyn Fn(&Score) -> bool,
        ),
        ("scores-boolean", &["count", "value"][..], &|s: &Score| {
            s.data_type == "BOOLEAN"
        }),
        ("scores-categorical", &["count"][..], &|s: &Score| {
            s.data_type == "CATEGORICAL"
        }),
    ] {
        let answer = rows(app, key, version, range(view, measures)).await;
        assert_eq!(answer.len(), 1);
        let scores: Vec<&Score> = live_scores(from, to)
            .into_iter()
            .filter(|s| keep(s))
            .collect();
        for m in measures {
            let values: Vec<Option<f64>> = scores.iter().map(|s| score_measure(s, m)).collect();
            for a in AGGREGATIONS {
                check(
                    &format!("{view} {m} {from}"),
                    a,
                    &values,
                    &answer[0][format!("{a}_{m}")],
                );
            }
        }
    }
}

async fn optimize(app: &TestApp) {
    for table in ["traces", "observations", "scores"] {
        app.stores
            .clickhouse
            .query(&format!("OPTIMIZE TABLE {table} FINAL"))
            .execute()
            .await
            .unwrap();
    }
}

/// Rows of `table` with `id` in the project, as merged (FINAL): versions in different
/// partitions stay apart.
async fn versions(app: &TestApp, table: &str, project: &str, id: &str) -> u64 {
    app.stores
        .clickhouse
        .query(&format!(
            "SELECT count() FROM {table} FINAL WHERE project_id = ? AND id = ?"
        ))
        .bind(project)
        .bind(id)
        .fetch_one()
        .await
        .unwrap()
}

/// In how many months `id` has rows, live or deleted.
async fn months_with_rows(app: &TestApp, table: &str, project: &str, id: &str) -> u64 {
    app.stores
        .clickhouse
        .query(&format!(
            "SELECT uniqExact(_partition_id) FROM {table} WHERE project_id = ? AND id = ?"
        ))
        .bind(project)
        .bind(id)
        .fetch_one()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_figure_counts_each_record_once_before_and_after_merges() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "metrics").await;
    let other = create_project(&app.config, "metrics-other").await;

    let first = first_batch();
    app.ingest_accepted(&key, &first).await;
    // Another project's data never counts.
    app.ingest_accepted(&other, &first).await;
    assert!(app.wait_until_written().await);
    assert!(app.wait_for_rows("scores", "metrics", 7).await);
    let deleted = app
        .http
        .delete(app.url("/api/public/scores/s7"))
        .header(reqwest::header::AUTHORIZATION, key.basic_auth())
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    app.ingest_accepted(&key, &second_batch(&first)).await;
    assert!(app.wait_until_written().await);
    // The moved trace and observation have rows in each month, the old one deleted by the worker
    // (`FINAL` keeps one).
    assert!(
        crate::helpers::eventually(std::time::Duration::from_secs(20), || async {
            versions(&app, "traces", "metrics", "tC").await == 1
                && months_with_rows(&app, "traces", "metrics", "tC").await == 2
                && versions(&app, "observations", "metrics", "o4").await == 1
                && months_with_rows(&app, "observations", "metrics", "o4").await == 2
        })
        .await,
        "the moved trace and observation have a version in each month"
    );

    for version in ["v1", "v2"] {
        every_figure_matches(&app, &key, version, FROM, TO).await;
    }
    // January alone: the moved trace and observation are not in it any more.
    every_figure_matches(&app, &key, "v1", FROM, "2025-01-31T23:59:59.999Z").await;
    let january = rows(
        &app,
        &key,
        "v1",
        json!({"view": "traces", "metrics": [{"measure": "count", "aggregation": "count"}],
            "fromTimestamp": FROM, "toTimestamp": "2025-01-31T23:59:59.999Z"}),
    )
    .await;
    assert_eq!(january, vec![json!({"count_count": 2})]);

    shapes(&app, &key).await;

    optimize(&app).await;
    for version in ["v1", "v2"] {
        every_figure_matches(&app, &key, version, FROM, TO).await;
    }
    every_figure_matches(&app, &key, "v1", "2025-01-10T11:00:00.000Z", TO).await;
}

/// Groupings, time buckets, histogram bins, row limits and v2's top-N rule, on the same data.
async fn shapes(app: &TestApp, key: &ApiKey) {
    // Cost by model: the columns are named by dimension and by metric.
    let by_model = rows(
        app,
        key,
        "v1",
        json!({"view": "observations", "dimensions": [{"field": "providedModelName"}],
            "metrics": [{"measure": "totalCost", "aggregation": "sum"}, {"measure": "count", "aggregation": "count"}],
            "filters": [{"column": "type", "operator": "=", "value": "GENERATION", "type": "string"}],
            "orderBy": [{"field": "providedModelName", "direction": "asc"}],
            "fromTimestamp": FROM, "toTimestamp": TO}),
    )
    .await;
    assert_eq!(by_model.len(), 2, "{by_model:?}");
    assert_eq!(by_model[0]["providedModelName"], json!("m-a"));
    assert_eq!(by_model[0]["count_count"], json!(2));
    assert!(close(&by_model[0]["sum_totalCost"], 0.003 + 0.0001));
    assert_eq!(by_model[1]["providedModelName"], json!("m-b"));
    assert_eq!(by_model[1]["count_count"], json!(2));
    assert!(close(&by_model[1]["sum_totalCost"], 0.002));

    // A filter that an older version of the moved observation meets, and its newest does not.
    let before_february = rows(
        app,
        key,
        "v1",
        json!({"view": "observations", "metrics": [{"measure": "count", "aggregation": "count"}],
            "filters": [{"column": "startTime", "operator": "<", "value": "2025-02-01T00:00:00Z", "type": "datetime"},
                        {"column": "type", "operator": "any of", "value": ["GENERATION", "SPAN"], "type": "stringOptions"}],
            "fromTimestamp": FROM, "toTimestamp": TO}),
    )
    .await;
    assert_eq!(before_february, vec![json!({"count_count": 4})]);

    // Traces by name: the moved trace counts once, under its name.
    let by_name = rows(
        app,
        key,
        "v1",
        json!({"view": "traces", "dimensions": [{"field": "name"}],
            "metrics": [{"measure": "count", "aggregation": "count"}, {"measure": "latency", "aggregation": "p95"}],
            "fromTimestamp": FROM, "toTimestamp": TO}),
    )
    .await;
    assert_eq!(by_name[0]["name"], json!("alpha"));
    assert_eq!(by_name[0]["count_count"], json!(2));
    assert!(close(&by_name[0]["p95_latency"], 800.0 + 0.95 * 700.0));
    assert_eq!(by_name[1]["name"], json!("beta"));

    // Scores by their trace's name and by label.
    let by_trace = rows(
        app,
        key,
        "v1",
        json!({"view": "scores-numeric", "dimensions": [{"field": "traceName"}, {"field": "name"}],
            "metrics": [{"measure": "value", "aggregation": "avg"}],
            "filters": [{"column": "name", "operator": "=", "value": "quality", "type": "string"}],
            "orderBy": [{"field": "traceName", "direction": "asc"}],
            "fromTimestamp": FROM, "toTimestamp": TO}),
    )
    .await;
    assert_eq!(
        by_trace,
        vec![
            json!({"traceName": "alpha", "name": "quality", "avg_value": 0.9}),
            json!({"traceName": "beta", "name": "quality", "avg_value": 0.4}),
        ]
    );
    let labels = rows(
        app,
        key,
        "v2",
        json!({"view": "scores-categorical", "dimensions": [{"field": "stringValue"}],
            "metrics": [{"measure": "count", "aggregation": "count"}],
            "orderBy": [{"field": "stringValue", "direction": "asc"}],
            "fromTimestamp": FROM, "toTimestamp": TO}),
    )
    .await;
    assert_eq!(
        labels,
        vec![
            json!({"stringValue": "bad", "count_count": 1}),
            json!({"stringValue": "good", "count_count": 1}),
        ]
    );

    // Days without data have their bucket.
    let daily = rows(
        app,
        key,
        "v1",
        json!({"view": "observations", "timeDimension": {"granularity": "day"},
            "metrics": [{"measure": "count", "aggregation": "count"}],
            "fromTimestamp": "2025-01-09T00:00:00.000Z", "toTimestamp": "2025-01-12T12:00:00.000Z"}),
    )
    .await;
    assert_eq!(
        daily,
        vec![
            json!({"time_dimension": "2025-01-09", "count_count": 0}),
            json!({"time_dimension": "2025-01-10", "count_count": 3}),
            json!({"time_dimension": "2025-01-11", "count_count": 1}),
            json!({"time_dimension": "2025-01-12", "count_count": 0}),
        ]
    );
    let hourly = rows(
        app,
        key,
        "v2",
        json!({"view": "observations", "timeDimension": {"granularity": "auto"},
            "metrics": [{"measure": "count", "aggregation": "count"}],
            "fromTimestamp": "2025-01-10T09:30:00.000Z", "toTimestamp": "2025-01-10T12:30:00.000Z"}),
    )
    .await;
    let buckets: Vec<(&str, i64)> = hourly
        .iter()
        .map(|r| {
            (
                r["time_dimension"].as_str().unwrap(),
                r["count_count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        buckets,
        vec![
            ("2025-01-10T09:00:00Z", 0),
            ("2025-01-10T10:00:00Z", 2),
            ("2025-01-10T11:00:00Z", 0),
            ("2025-01-10T12:00:00Z", 1),
        ]
    );

    // Histogram bins: at most as many as asked, heights adding up to the values.
    let histogram = rows(
        app,
        key,
        "v1",
        json!({"view": "observations", "metrics": [{"measure": "latency", "aggregation": "histogram"}],
            "config": {"bins": 2}, "fromTimestamp": FROM, "toTimestamp": TO}),
    )
    .await;
    let bins = histogram[0]["histogram_latency"].as_array().unwrap();
    assert!(!bins.is_empty() && bins.len() <= 2, "{bins:?}");
    let heights: f64 = bins.iter().map(|b| b[2].as_f64().unwrap()).sum();
    assert!((heights - 5.0).abs() < 1e-9, "{bins:?}");

    // Row limits, and v2's top-N by a high-cardinality dimension.
    let limited = rows(
        app,
        key,
        "v1",
        json!({"view": "observations", "dimensions": [{"field": "id"}],
            "metrics": [{"measure": "totalTokens", "aggregation": "sum"}],
            "config": {"row_limit": 2}, "fromTimestamp": FROM, "toTimestamp": TO}),
    )
    .await;
    assert_eq!(limited.len(), 2);
    assert_eq!(limited[0]["sum_totalTokens"], json!(120));
    let top = rows(
        app,
        key,
        "v2",
        json!({"view": "observations", "dimensions": [{"field": "traceId"}],
            "metrics": [{"measure": "totalTokens", "aggregation": "sum"}],
            "orderBy": [{"field": "sum_totalTokens", "direction": "desc"}],
            "config": {"row_limit": 1}, "fromTimestamp": FROM, "toTimestamp": TO}),
    )
    .await;
    assert_eq!(top, vec![json!({"traceId": "tB", "sum_totalTokens": 125})]);
    let (status, body) = app
        .get_json(
            &metrics_path(
                "v2",
                &json!({"view": "observations", "dimensions": [{"field": "traceId"}],
                    "metrics": [{"measure": "count", "aggregation": "count"}],
                    "fromTimestamp": FROM, "toTimestamp": TO}),
            ),
            key,
        )
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn bad_queries_are_refused_naming_the_field() {
    let app = TestApp::spawn(TestConfig::new().await).await;
    let key = create_project(&app.config, "metrics-refusals").await;
    let base = json!({"view": "observations", "metrics": [{"measure": "count", "aggregation": "count"}],
        "fromTimestamp": FROM, "toTimestamp": TO});
    let with = |patch: Value| {
        let mut q = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            q[k] = v.clone();
        }
        q
    };
    for (version, query, field) in [
        ("v1", with(json!({"view": "sessions"})), "view"),
        (
            "v1",
            with(json!({"dimensions": [{"field": "color"}]})),
            "dimensions[0].field",
        ),
        (
            "v1",
            with(json!({"metrics": [{"measure": "count", "aggregation": "median"}]})),
            "metrics[0].aggregation",
        ),
        (
            "v1",
            with(json!({"metrics": [{"measure": "value", "aggregation": "sum"}]})),
            "metrics[0].measure",
        ),
        (
            "v1",
            with(json!({"toTimestamp": "2024-01-01T00:00:00Z"})),
            "fromTimestamp",
        ),
        ("v1", with(json!({"toTimestamp": "soon"})), "toTimestamp"),
        (
            "v1",
            with(json!({"timeDimension": {"granularity": "year"}})),
            "timeDimension.granularity",
        ),
        (
            "v1",
            with(json!({"config": {"row_limit": 5000}})),
            "config.row_limit",
        ),
        ("v1", with(json!({"config": {"bins": 0}})), "config.bins"),
        (
            "v1",
            with(json!({"orderBy": [{"field": "sum_latency", "direction": "desc"}]})),
            "orderBy[0].field",
        ),
        (
            "v1",
            with(
                json!({"filters": [{"column": "color", "operator": "=", "value": "x", "type": "string"}]}),
            ),
            "filters",
        ),
        (
            "v1",
            with(
                json!({"filters": [{"column": "tags", "operator": "=", "value": "x", "type": "string"}]}),
            ),
            "filters",
        ),
        ("v2", with(json!({"view": "traces"})), "view"),
        (
            "v2",
            with(
                json!({"dimensions": [{"field": "userId"}], "timeDimension": {"granularity": "day"}}),
            ),
            "dimensions",
        ),
        (
            "v2",
            with(
                json!({"dimensions": [{"field": "id"}], "config": {"row_limit": 5},
                "orderBy": [{"field": "id", "direction": "desc"}]}),
            ),
            "orderBy",
        ),
    ] {
        let (status, body) = app.get_json(&metrics_path(version, &query), &key).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"], json!("InvalidRequestError"));
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("Invalid query: {field}")),
            "{field}: {message}"
        );
    }
    let (status, body) = app.get_json("/api/public/metrics", &key).await;
    assert_eq!(
        (status, body["message"].clone()),
        (400, json!("Invalid query: query: Required"))
    );
    let (status, _) = app
        .get_json(&metrics_path("v1", &base), &key.with_secret("wrong"))
        .await;
    assert_eq!(status, 401);
    // An empty project answers one row of zeros.
    let answer = rows(&app, &key, "v1", base.clone()).await;
    assert_eq!(answer, vec![json!({"count_count": 0})]);
}

#[tokio::test]
async fn the_python_sdk_v5_reads_what_it_sent_through_the_metrics_client() {
    let python = crate::sdk::sdk_python("LANGFUSE_TEST_PYTHON_SDK_V5", "sdk-python-v5");
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "metrics-sdk-v5").await;
    let mut command = tokio::process::Command::new(python);
    command.arg(crate::sdk::sdk_script("python_v5_metrics.py"));
    let result =
        crate::sdk::run_roundtrip(command, &app, &key, "5e7a1c0d9b8f40120000000000000001").await;
    let rows = result["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{result}");
    assert_eq!(rows[0]["providedModelName"], json!("sdk-model-a"));
    assert_eq!(rows[0]["count_count"], json!(2));
    assert_eq!(rows[0]["sum_totalTokens"], json!(180));
    assert!(close(&rows[0]["sum_totalCost"], 0.004), "{result}");
    assert_eq!(rows[1]["providedModelName"], json!("sdk-model-b"));
    assert_eq!(rows[1]["count_count"], json!(1));
    assert_eq!(rows[1]["sum_totalTokens"], json!(10));
    assert!(close(&rows[1]["sum_totalCost"], 0.0005), "{result}");
}

/// A trace the worker first knew only through its observations has wrapper rows, written under
/// each observation's start day, beside the row its own events make later (under its own day):
/// the traces view counts each trace once, with its own row's values when it has one.
#[tokio::test]
async fn traces_known_first_through_their_observations_count_once() {
    let app = TestApp::spawn_with_worker(TestConfig::new().await).await;
    let key = create_project(&app.config, "metrics-wrappers").await;
    let span = |id: &str, trace: &str, start: &str| {
        envelope(
            &format!("{id}-1"),
            "span-create",
            start,
            json!({"id": id, "traceId": trace, "name": "step", "startTime": start,
                   "endTime": start}),
        )
    };
    // One batch at a time, each written before the next: every observation finds its trace
    // without events of its own, so each writes a wrapper, on its own day.
    for batch in [
        vec![
            span("w1", "only-observations", "2025-02-10T10:00:00.000Z"),
            span("x1", "named-later", "2025-02-11T10:00:00.000Z"),
        ],
        vec![span("w2", "only-observations", "2025-02-12T10:00:00.000Z")],
        vec![envelope(
            "named-later-1",
            "trace-create",
            "2025-02-15T10:00:00.000Z",
            json!({"id": "named-later", "name": "late", "timestamp": "2025-02-15T10:00:00.000Z"}),
        )],
    ] {
        app.ingest_accepted(&key, &json!({ "batch": batch })).await;
        assert!(app.wait_until_written().await);
    }
    assert!(
        versions(&app, "traces", "metrics-wrappers", "only-observations").await >= 2,
        "two wrappers, on two days"
    );
    let query = json!({
        "view": "traces", "dimensions": [{"field": "name"}],
        "metrics": [{"measure": "count", "aggregation": "count"}],
        "fromTimestamp": FROM, "toTimestamp": TO,
    });
    for merged in [false, true] {
        if merged {
            optimize(&app).await;
        }
        let mut counts: Vec<(String, f64)> = rows(&app, &key, "v1", query.clone())
            .await
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap_or_default().to_string(),
                    r["count_count"].as_f64().unwrap(),
                )
            })
            .collect();
        counts.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            counts,
            vec![(String::new(), 1.0), ("late".to_string(), 1.0)],
            "merged: {merged}"
        );
    }
}
