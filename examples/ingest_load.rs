//! Load generator for `POST /api/public/ingestion`, with a report.
//!
//! Posts batches of `--batch` events of about `--event-bytes` bytes each from `--concurrency`
//! connections for `--seconds`, then reports: events/s accepted, request latency p50/p99/max, the
//! answers by status, events/s landed in ClickHouse and accept-to-queryable lag p50/p99 (measured
//! on marker traces, looked for in the table the read API answers from). Run by `scripts/bench-ingestion.sh`, which
//! starts the processes and adds their peak memory.
//!
//!     cargo run --release --example ingest_load -- --url http://127.0.0.1:3000 \
//!         --public-key pk-lf-bench --secret-key sk-lf-bench --seconds 20

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use common::{percentile, Answers};
use serde_json::json;

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
    #[arg(long, default_value_t = 100)]
    batch: usize,
    #[arg(long, default_value_t = 1000)]
    event_bytes: usize,
    /// Total events/s to aim at across all connections; 0 means as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// ClickHouse HTTP URL and database, to count landed rows.
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

/// One request body, written straight into a string: the generator must spend as little CPU as
/// it can, since it shares the machine with the processes it measures.
fn batch(run: &str, worker: usize, n: u64, size: usize, padding: &str) -> String {
    use std::fmt::Write;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let trace_id = format!("{run}-{worker}-{n}");
    let mut body = String::with_capacity(size * (padding.len() + 300) + 64);
    let _ = write!(
        body,
        r#"{{"batch":[{{"id":"{trace_id}-e0","type":"trace-create","timestamp":"{now}","body":{{"id":"{trace_id}","name":"bench","userId":"bench-user","input":"{padding}"}}}}"#
    );
    for i in 1..size {
        let _ = write!(
            body,
            r#",{{"id":"{trace_id}-e{i}","type":"span-create","timestamp":"{now}","body":{{"id":"{trace_id}-s{i}","traceId":"{trace_id}","name":"step","startTime":"{now}","input":"{padding}","metadata":{{"i":{i}}}}}}}"#
        );
    }
    body.push_str("]}");
    body
}

/// Which of the pending marker traces are in ClickHouse.
async fn landed_markers(
    http: &reqwest::Client,
    args: &Args,
    pending: &[(String, Instant)],
) -> std::collections::HashSet<String> {
    let ids: Vec<String> = pending.iter().map(|(id, _)| format!("'{id}'")).collect();
    let query = format!(
        "SELECT DISTINCT id FROM {}.traces WHERE project_id = '{}' AND id IN ({})",
        args.clickhouse_database,
        args.project_id,
        ids.join(",")
    );
    match http.post(&args.clickhouse_url).body(query).send().await {
        Ok(r) => r
            .text()
            .await
            .map(|t| t.lines().map(str::to_string).collect())
            .unwrap_or_default(),
        Err(_) => Default::default(),
    }
}

/// Events a 207 says it refused (its `errors`).
fn refused_events(body: &[u8]) -> u64 {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["errors"].as_array().map(|e| e.len() as u64))
        .unwrap_or(0)
}

async fn count_landed(http: &reqwest::Client, args: &Args) -> u64 {
    let query = format!(
        "SELECT uniqExact(id) FROM {}.observations WHERE project_id = '{}'",
        args.clickhouse_database, args.project_id
    );
    let response = http.post(&args.clickhouse_url).body(query).send().await;
    match response {
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
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let run = format!("run{}", chrono::Utc::now().timestamp());
    let answers = Arc::new(Answers::new(207));
    let landed_at_start = count_landed(&http, &args).await;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let per_connection_interval = if args.rate > 0 {
        let batches_per_second = args.rate as f64 / args.batch as f64;
        Some(Duration::from_secs_f64(
            args.concurrency as f64 / batches_per_second,
        ))
    } else {
        None
    };

    // Markers (one trace in twenty batches) are looked for while the load runs: one query for all
    // pending markers every 100 ms, against the table the read API answers from (it caches
    // nothing, so a row there is a row `GET /api/public/traces/{id}` returns). One request per
    // marker through the API would itself load the server being measured.
    let (marker_tx, mut marker_rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let lag_poller = {
        let (http, args) = (http.clone(), args.clone());
        tokio::spawn(async move {
            let mut pending: Vec<(String, Instant)> = Vec::new();
            let mut lags = Vec::new();
            let mut open = true;
            let mut drain_deadline = None;
            loop {
                while let Ok(marker) = marker_rx.try_recv() {
                    pending.push(marker);
                }
                if open && marker_rx.is_closed() && marker_rx.is_empty() {
                    open = false;
                    drain_deadline = Some(Instant::now() + Duration::from_secs(args.drain_seconds));
                }
                if !pending.is_empty() {
                    let found = landed_markers(&http, &args, &pending).await;
                    let now = Instant::now();
                    pending.retain(|(id, accepted_at)| {
                        if found.contains(id) {
                            lags.push((now - *accepted_at).as_secs_f64());
                            false
                        } else {
                            true
                        }
                    });
                }
                let drained = !open && pending.is_empty();
                let timed_out = drain_deadline.is_some_and(|d| Instant::now() > d);
                if drained || timed_out {
                    return (lags, pending.len());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let mut tasks = Vec::new();
    for worker in 0..args.concurrency {
        let (http, args, answers, run) = (http.clone(), args.clone(), answers.clone(), run.clone());
        let marker_tx = marker_tx.clone();
        // ~1 KB per event: the padding goes into `input`.
        let padding = "x".repeat(args.event_bytes.saturating_sub(300));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0u64;
            let mut next = Instant::now();
            while Instant::now() < deadline {
                if let Some(interval) = per_connection_interval {
                    tokio::time::sleep_until(next.into()).await;
                    next += interval;
                }
                let body = batch(&run, worker, n, args.batch, &padding);
                let sent = Instant::now();
                let response = http
                    .post(format!("{}/api/public/ingestion", args.url))
                    .basic_auth(&args.public_key, Some(&args.secret_key))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let elapsed = sent.elapsed().as_secs_f64() * 1000.0;
                if answers
                    .record(response, args.batch as u64, refused_events)
                    .await
                {
                    latencies.push(elapsed);
                    if n.is_multiple_of(20) {
                        let _ = marker_tx.send((format!("{run}-{worker}-{n}"), Instant::now()));
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

    let (mut lags, unresolved_markers) = lag_poller.await?;
    let drain_deadline = Instant::now() + Duration::from_secs(args.drain_seconds);

    // Landed: wait until every accepted span is in ClickHouse (or the drain time runs out).
    let expected_spans = accepted / args.batch as u64 * (args.batch as u64 - 1);
    let mut landed = count_landed(&http, &args).await - landed_at_start;
    while landed < expected_spans && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        landed = count_landed(&http, &args).await - landed_at_start;
    }
    let landed_seconds = started.elapsed().as_secs_f64();

    latencies.sort_by(f64::total_cmp);
    lags.sort_by(f64::total_cmp);
    let report = json!({
        "load_seconds": (load_seconds * 10.0).round() / 10.0,
        "concurrency": args.concurrency,
        "batch_events": args.batch,
        "event_bytes": args.event_bytes,
        "target_rate": args.rate,
        "accepted_events": accepted,
        "accepted_events_per_second": (accepted as f64 / load_seconds).round(),
        "request_latency_ms": {
            "p50": (percentile(&latencies, 0.50) * 10.0).round() / 10.0,
            "p99": (percentile(&latencies, 0.99) * 10.0).round() / 10.0,
            "max": (latencies.last().copied().unwrap_or(f64::NAN) * 10.0).round() / 10.0,
        },
        "responses": answers.json(),
        "spans_expected": expected_spans,
        "spans_landed": landed,
        "landed_events_per_second": ((landed + landed / (args.batch as u64 - 1)) as f64 / landed_seconds).round(),
        "accept_to_queryable_lag_s": {
            "samples": lags.len(),
            "unresolved": unresolved_markers,
            "p50": (percentile(&lags, 0.50) * 100.0).round() / 100.0,
            "p99": (percentile(&lags, 0.99) * 100.0).round() / 100.0,
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
