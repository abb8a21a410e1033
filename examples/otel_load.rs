//! Load generator for `POST /api/public/otel/v1/traces`, with a report.
//!
//! Each request is one OTLP export of `--batch` spans (one trace: a root and its children, shaped
//! like the Langfuse SDKs' spans, with about `--io-bytes` of input and as much output each), in
//! protobuf (gzip unless `--no-gzip`) or `--json`, from `--concurrency` connections for
//! `--seconds`. The report: spans/s accepted, request latency p50/p99/max, answers by status,
//! spans landed in ClickHouse and spans/s visible, accept-to-readable lag of marker traces polled
//! through the read API. Run by `scripts/bench-otel.sh`, which starts the processes and adds their
//! peak memory.
//!
//!     cargo run --release --example otel_load -- --url http://127.0.0.1:3000 \
//!         --public-key pk-lf-bench --secret-key sk-lf-bench --seconds 20

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use common::{percentile, Answers};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::{json, Value};

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    #[arg(long)]
    public_key: String,
    #[arg(long)]
    secret_key: String,
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Spans per export (one trace).
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Bytes of input and of output per span.
    #[arg(long, default_value_t = 1000)]
    io_bytes: usize,
    /// Send OTLP/JSON instead of protobuf.
    #[arg(long)]
    json: bool,
    /// Send bodies uncompressed.
    #[arg(long)]
    no_gzip: bool,
    /// Total spans/s to aim at across all connections; 0 means as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    #[arg(long, default_value = "http://127.0.0.1:8123")]
    clickhouse_url: String,
    #[arg(long, default_value = "default")]
    clickhouse_database: String,
    #[arg(long, default_value = "bench")]
    project_id: String,
    /// Seconds to wait after the load for the worker to land everything.
    #[arg(long, default_value_t = 120)]
    drain_seconds: u64,
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// Ids unique per run, worker, export and span: the run's seed in the high bits.
fn ids(seed: u64, worker: usize, n: u64, i: usize) -> (Vec<u8>, Vec<u8>) {
    let trace = ((seed as u128) << 64) | ((worker as u128) << 40) | (n as u128);
    let span = (seed << 48) | ((worker as u64) << 40) | ((n & 0x0fff_ffff) << 12) | i as u64;
    (trace.to_be_bytes().to_vec(), span.to_be_bytes().to_vec())
}

fn export(args: &Args, seed: u64, worker: usize, n: u64) -> (ExportTraceServiceRequest, String) {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    let input = json!({"question": "q".repeat(args.io_bytes.saturating_sub(20))}).to_string();
    let output = json!({"answer": "a".repeat(args.io_bytes.saturating_sub(20))}).to_string();
    let (trace_id, root_id) = ids(seed, worker, n, 0);
    let spans = (0..args.batch)
        .map(|i| {
            let (_, span_id) = ids(seed, worker, n, i);
            let mut attributes = vec![
                kv("langfuse.observation.input", &input),
                kv("langfuse.observation.output", &output),
                kv("langfuse.environment", "bench"),
            ];
            if i == 0 {
                attributes.push(kv("langfuse.trace.name", "bench"));
                attributes.push(kv("user.id", "bench-user"));
            } else if i % 2 == 0 {
                attributes.push(kv("langfuse.observation.type", "generation"));
                attributes.push(kv("langfuse.observation.model.name", "gpt-4o-mini"));
                attributes.push(kv(
                    "langfuse.observation.usage_details",
                    "{\"input\": 250, \"output\": 250}",
                ));
            }
            Span {
                trace_id: trace_id.clone(),
                span_id,
                parent_span_id: if i == 0 { Vec::new() } else { root_id.clone() },
                name: if i == 0 {
                    "request".into()
                } else {
                    format!("step-{i}")
                },
                kind: 1,
                start_time_unix_nano: now + i as u64 * 1_000,
                end_time_unix_nano: now + i as u64 * 1_000 + 500,
                attributes,
                ..Default::default()
            }
        })
        .collect();
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "otel-load")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "langfuse-sdk".into(),
                    version: "5.0.4".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    (request, hex::encode(trace_id))
}

/// The same export as OTLP/JSON (hex ids, int64 as strings).
fn to_json(request: &ExportTraceServiceRequest) -> Vec<u8> {
    let spans: Vec<Value> = request.resource_spans[0].scope_spans[0]
        .spans
        .iter()
        .map(|s| {
            let attributes: Vec<Value> = s
                .attributes
                .iter()
                .map(|a| match &a.value.as_ref().unwrap().value {
                    Some(any_value::Value::StringValue(v)) => {
                        json!({"key": a.key, "value": {"stringValue": v}})
                    }
                    _ => json!({"key": a.key, "value": {}}),
                })
                .collect();
            json!({
                "traceId": hex::encode(&s.trace_id), "spanId": hex::encode(&s.span_id),
                "parentSpanId": hex::encode(&s.parent_span_id), "name": s.name, "kind": 1,
                "startTimeUnixNano": s.start_time_unix_nano.to_string(),
                "endTimeUnixNano": s.end_time_unix_nano.to_string(),
                "attributes": attributes,
            })
        })
        .collect();
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "otel-load"}}]},
        "scopeSpans": [{"scope": {"name": "langfuse-sdk", "version": "5.0.4"}, "spans": spans}],
    }]})
    .to_string()
    .into_bytes()
}

/// Spans an OTLP answer says it refused (`partial_success.rejected_spans`).
fn refused_spans(body: &[u8]) -> u64 {
    if body.first() == Some(&b'{') {
        return serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| {
                let rejected = &v["partialSuccess"]["rejectedSpans"];
                rejected
                    .as_u64()
                    .or_else(|| rejected.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(0);
    }
    ExportTraceServiceResponse::decode(body)
        .ok()
        .and_then(|r| r.partial_success)
        .map(|p| p.rejected_spans.max(0) as u64)
        .unwrap_or(0)
}

async fn count_landed(http: &reqwest::Client, args: &Args) -> u64 {
    let query = format!(
        "SELECT uniqExact(id) FROM {}.observations WHERE project_id = '{}'",
        args.clickhouse_database, args.project_id
    );
    match http.post(&args.clickhouse_url).body(query).send().await {
        Ok(r) => r
            .text()
            .await
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0),
        Err(_) => 0,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let seed = (chrono::Utc::now().timestamp() as u64 & 0xffff).max(1);
    let answers = Arc::new(Answers::new(200));
    let body_bytes = Arc::new(AtomicU64::new(0));
    let landed_at_start = count_landed(&http, &args).await;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let per_connection_interval = (args.rate > 0).then(|| {
        let exports_per_second = args.rate as f64 / args.batch as f64;
        Duration::from_secs_f64(args.concurrency as f64 / exports_per_second)
    });

    // One trace in twenty exports is polled through the read API until it reads back whole, oldest
    // first.
    let (marker_tx, mut marker_rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let lag_poller = {
        let (http, args) = (http.clone(), args.clone());
        tokio::spawn(async move {
            let mut pending: Vec<(String, Instant)> = Vec::new();
            let mut lags = Vec::new();
            let mut drain_deadline = None;
            loop {
                while let Ok(marker) = marker_rx.try_recv() {
                    pending.push(marker);
                }
                if drain_deadline.is_none() && marker_rx.is_closed() && marker_rx.is_empty() {
                    drain_deadline = Some(Instant::now() + Duration::from_secs(args.drain_seconds));
                }
                // Markers land about in the order they were accepted: the oldest one not yet
                // whole ends this round, so the probe costs the server a request or so per tick
                // however large the backlog, instead of one per pending marker.
                let mut still = Vec::new();
                for (trace_id, accepted_at) in pending {
                    if !still.is_empty() {
                        still.push((trace_id, accepted_at));
                        continue;
                    }
                    let whole = match http
                        .get(format!("{}/api/public/traces/{trace_id}", args.url))
                        .basic_auth(&args.public_key, Some(&args.secret_key))
                        .send()
                        .await
                    {
                        Ok(r) if r.status().as_u16() == 200 => {
                            r.json::<Value>()
                                .await
                                .ok()
                                .and_then(|t| t["observations"].as_array().map(Vec::len))
                                == Some(args.batch)
                        }
                        _ => false,
                    };
                    if whole {
                        lags.push(accepted_at.elapsed().as_secs_f64());
                    } else {
                        still.push((trace_id, accepted_at));
                    }
                }
                pending = still;
                let done = drain_deadline.is_some() && pending.is_empty();
                if done || drain_deadline.is_some_and(|d| Instant::now() > d) {
                    return (lags, pending.len());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let mut tasks = Vec::new();
    for worker in 0..args.concurrency {
        let (http, args, answers, body_bytes) = (
            http.clone(),
            args.clone(),
            answers.clone(),
            body_bytes.clone(),
        );
        let marker_tx = marker_tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0u64;
            let mut next = Instant::now();
            while Instant::now() < deadline {
                if let Some(interval) = per_connection_interval {
                    tokio::time::sleep_until(next.into()).await;
                    next += interval;
                }
                let (request, trace_id) = export(&args, seed, worker, n);
                let (content_type, body) = if args.json {
                    ("application/json", to_json(&request))
                } else {
                    ("application/x-protobuf", request.encode_to_vec())
                };
                let body = if args.no_gzip {
                    body
                } else {
                    let mut gz =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    gz.write_all(&body).unwrap();
                    gz.finish().unwrap()
                };
                body_bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                let mut post = http
                    .post(format!("{}/api/public/otel/v1/traces", args.url))
                    .basic_auth(&args.public_key, Some(&args.secret_key))
                    .header("content-type", content_type)
                    .body(body);
                if !args.no_gzip {
                    post = post.header("content-encoding", "gzip");
                }
                let sent = Instant::now();
                let response = post.send().await;
                let elapsed = sent.elapsed().as_secs_f64() * 1000.0;
                if answers
                    .record(response, args.batch as u64, refused_spans)
                    .await
                {
                    latencies.push(elapsed);
                    if n.is_multiple_of(20) {
                        let _ = marker_tx.send((trace_id, Instant::now()));
                    }
                }
                n += 1;
            }
            latencies
        }));
    }
    drop(marker_tx);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await?);
    }
    let load_seconds = started.elapsed().as_secs_f64();
    let accepted = answers.accepted.load(Ordering::Relaxed);
    let requests = answers.ok.load(Ordering::Relaxed);

    let (mut lags, unresolved_markers) = lag_poller.await?;
    let drain_deadline = Instant::now() + Duration::from_secs(args.drain_seconds);
    let mut landed = count_landed(&http, &args).await - landed_at_start;
    while landed < accepted && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        landed = count_landed(&http, &args).await - landed_at_start;
    }
    let landed_seconds = started.elapsed().as_secs_f64();

    latencies.sort_by(f64::total_cmp);
    lags.sort_by(f64::total_cmp);
    let round1 = |v: f64| (v * 10.0).round() / 10.0;
    let report = json!({
        "load_seconds": round1(load_seconds),
        "concurrency": args.concurrency,
        "spans_per_export": args.batch,
        "io_bytes_per_span": args.io_bytes * 2,
        "encoding": if args.json { "json" } else { "protobuf" },
        "gzip": !args.no_gzip,
        "mean_body_kib": round1(body_bytes.load(Ordering::Relaxed) as f64 / requests.max(1) as f64 / 1024.0),
        "target_rate": args.rate,
        "accepted_spans": accepted,
        "accepted_spans_per_second": (accepted as f64 / load_seconds).round(),
        "request_latency_ms": {
            "p50": round1(percentile(&latencies, 0.50)),
            "p99": round1(percentile(&latencies, 0.99)),
            "max": round1(latencies.last().copied().unwrap_or(f64::NAN)),
        },
        "responses": answers.json(),
        "spans_landed": landed,
        "visible_spans_per_second": (landed as f64 / landed_seconds).round(),
        "accept_to_readable_lag_s": {
            "samples": lags.len(),
            "unresolved": unresolved_markers,
            "p50": (percentile(&lags, 0.50) * 100.0).round() / 100.0,
            "p99": (percentile(&lags, 0.99) * 100.0).round() / 100.0,
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
