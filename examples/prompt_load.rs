//! Load generator for `GET /api/public/v2/prompts/{name}`, with a report.
//!
//! Sends requests at a fixed rate (`--rate` per second, open loop: a slow answer does not delay
//! the next request) for `--seconds`, after `--warmup-seconds` that are not counted, and reports
//! two latencies per request, p50/p99/p99.9/max:
//! - `server_ms`: the time the server spent on it, from its `Server-Timing: app;dur=` header
//!   (`miss_work_ms`, from `miss;dur=`, is the part cache misses spent loading);
//! - `client_ms`: from sending to the end of the response, as the application sees it (this
//!   includes the network stack and any queueing in front of the server's handler).
//!
//! It also counts answers by status and by cache tier (`Server-Timing: cache;desc=`). Run by
//! `scripts/bench-prompts.sh`, which starts the server, creates the prompt and adds ingestion load.
//!
//!     cargo run --release --example prompt_load -- --url http://127.0.0.1:3000 \
//!         --public-key pk-lf-bench --secret-key sk-lf-bench --name bench-prompt --rate 1000

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use common::percentile;
use serde_json::json;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    #[arg(long)]
    public_key: String,
    #[arg(long)]
    secret_key: String,
    /// The prompt to read.
    #[arg(long)]
    name: String,
    /// Query string of each read, e.g. `label=production` or `version=1`.
    #[arg(long, default_value = "")]
    query: String,
    /// Requests per second.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 2)]
    warmup_seconds: u64,
    /// A label for the report.
    #[arg(long, default_value = "")]
    phase: String,
}

#[derive(Default)]
struct Samples {
    server_ms: Vec<f64>,
    miss_ms: Vec<f64>,
    client_ms: Vec<f64>,
    statuses: BTreeMap<String, u64>,
    sources: BTreeMap<String, u64>,
    transport_errors: u64,
    /// The first few transport errors, to tell a refused connection from a timeout.
    error_samples: Vec<String>,
    missing_server_timing: u64,
}

fn summary(mut values: Vec<f64>) -> serde_json::Value {
    values.sort_by(f64::total_cmp);
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    json!({
        "p50": round(percentile(&values, 0.50)),
        "p99": round(percentile(&values, 0.99)),
        "p99.9": round(percentile(&values, 0.999)),
        "max": round(values.last().copied().unwrap_or(f64::NAN)),
    })
}

/// What `Server-Timing` says about one answer.
struct Timing {
    /// `app;dur=`: time in the server.
    app_ms: Option<f64>,
    /// `miss;dur=`: the part of it a cache miss spent loading.
    miss_ms: Option<f64>,
    /// `cache;desc=`: where the answer came from.
    source: Option<String>,
}

fn server_timing(header: &str) -> Timing {
    let mut timing = Timing {
        app_ms: None,
        miss_ms: None,
        source: None,
    };
    for part in header.split(',') {
        let part = part.trim();
        if let Some(d) = part.strip_prefix("app;dur=") {
            timing.app_ms = d.parse().ok();
        } else if let Some(d) = part.strip_prefix("miss;dur=") {
            timing.miss_ms = d.parse().ok();
        } else if let Some(s) = part.strip_prefix("cache;desc=") {
            timing.source = Some(s.to_string());
        }
    }
    timing
}

// One thread: the generator shares the machine with the server it measures.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    anyhow::ensure!(args.rate > 0, "--rate must be at least 1");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(256)
        // Below the server's keep-alive (5 s), so a connection is never reused just as the server
        // closes it: that race would count as an error of the server.
        .pool_idle_timeout(Duration::from_secs(2))
        .build()?;
    let name =
        percent_encoding::utf8_percent_encode(&args.name, percent_encoding::NON_ALPHANUMERIC);
    let url = Arc::new(format!(
        "{}/api/public/v2/prompts/{name}?{}",
        args.url, args.query
    ));
    let samples = Arc::new(Mutex::new(Samples::default()));
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let started = Instant::now();
    let measure_from = started + Duration::from_secs(args.warmup_seconds);
    let end = measure_from + Duration::from_secs(args.seconds);
    let mut next = started;
    let mut in_flight = tokio::task::JoinSet::new();
    let mut sent = 0u64;
    while next < end {
        tokio::time::sleep_until(next.into()).await;
        let counted = next >= measure_from;
        next += interval;
        let (http, url, args, samples) = (http.clone(), url.clone(), args.clone(), samples.clone());
        sent += u64::from(counted);
        in_flight.spawn(async move {
            let sent_at = Instant::now();
            let response = http
                .get(url.as_str())
                .basic_auth(&args.public_key, Some(&args.secret_key))
                .send()
                .await;
            let outcome = match response {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let timing = response
                        .headers()
                        .get("server-timing")
                        .and_then(|v| v.to_str().ok())
                        .map(server_timing);
                    let body = response.bytes().await;
                    (
                        status,
                        timing,
                        body.map(|_| ()).map_err(|e| format!("{e:?}")),
                    )
                }
                Err(err) => (0, None, Err(format!("{err:?}"))),
            };
            let client_ms = sent_at.elapsed().as_secs_f64() * 1000.0;
            if !counted {
                return;
            }
            let mut samples = samples.lock().unwrap();
            match outcome {
                (status, timing, Ok(())) => {
                    *samples.statuses.entry(status.to_string()).or_default() += 1;
                    samples.client_ms.push(client_ms);
                    match timing {
                        Some(Timing {
                            app_ms: Some(ms),
                            miss_ms,
                            source,
                        }) => {
                            samples.server_ms.push(ms);
                            samples.miss_ms.extend(miss_ms);
                            let source = source.unwrap_or_else(|| "none".to_string());
                            *samples.sources.entry(source).or_default() += 1;
                        }
                        _ => samples.missing_server_timing += 1,
                    }
                }
                (_, _, Err(error)) => {
                    samples.transport_errors += 1;
                    if samples.error_samples.len() < 5 {
                        samples.error_samples.push(error);
                    }
                }
            }
        });
        // Reap finished requests so the set does not grow for the whole run.
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
    let elapsed = (Instant::now() - measure_from).as_secs_f64();
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    let answered = samples.client_ms.len() as u64;
    let errors = samples.transport_errors
        + samples
            .statuses
            .iter()
            .filter(|(status, _)| status.as_str() != "200")
            .map(|(_, n)| n)
            .sum::<u64>();
    let report = json!({
        "phase": args.phase,
        "target_rate": args.rate,
        "seconds": args.seconds,
        "requests": sent,
        "answered_per_second": (answered as f64 / elapsed).round(),
        "errors": errors,
        "statuses": samples.statuses,
        "transport_errors": samples.transport_errors,
        "transport_error_samples": samples.error_samples,
        "cache": samples.sources,
        "missing_server_timing": samples.missing_server_timing,
        "server_ms": summary(samples.server_ms),
        "miss_work_ms": summary(samples.miss_ms),
        "client_ms": summary(samples.client_ms),
    });
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
