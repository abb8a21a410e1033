//! Load generator for the web UI's pages, with a report: people browsing a large project.
//!
//! Signs in through the sign-in form (as a browser does: the form's CSRF token, the session
//! cookie), then for each `--page NAME=PATH` in turn sends `--warmup` requests that are not counted
//! and `--requests` that are, from `--concurrency` simultaneous "people" (closed loop: each sends
//! its next request when its last one is answered). `{n}` in a path is replaced by the request's
//! number, so a page can be asked with a different filter each time (`userId=user-{n}`) and no
//! cache answers for the store.
//!
//! Per page it reports p50/p95/p99/max of two latencies: `server_ms`, the time the page took in the
//! server (its `Server-Timing: app;dur=` header), and `client_ms`, from sending to the last byte.
//! Also answers by status and the page size. Run by `scripts/bench-ui.sh`, which seeds the
//! project.
//!
//!     cargo run --release --example ui_load -- --url http://127.0.0.1:3000 \
//!         --email bench@example.com --password … --page traces=/project/bench/traces

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use common::percentile;
use serde_json::json;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    #[arg(long)]
    email: String,
    #[arg(long)]
    password: String,
    /// `NAME=PATH`, repeated: the pages to measure, in order.
    #[arg(long = "page", required = true)]
    pages: Vec<String>,
    /// Counted requests per page.
    #[arg(long, default_value_t = 100)]
    requests: u64,
    /// Requests per page before counting (connections, the store's caches of files).
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// People browsing at once.
    #[arg(long, default_value_t = 4)]
    concurrency: u64,
}

#[derive(Default)]
struct Samples {
    server_ms: Vec<f64>,
    client_ms: Vec<f64>,
    bytes: Vec<f64>,
    statuses: BTreeMap<String, u64>,
    missing_server_timing: u64,
    transport_errors: Vec<String>,
}

fn summary(mut values: Vec<f64>) -> serde_json::Value {
    values.sort_by(f64::total_cmp);
    let round = |v: f64| (v * 10.0).round() / 10.0;
    json!({
        "p50": round(percentile(&values, 0.50)),
        "p95": round(percentile(&values, 0.95)),
        "p99": round(percentile(&values, 0.99)),
        "max": round(values.last().copied().unwrap_or(f64::NAN)),
    })
}

fn app_duration_ms(header: &str) -> Option<f64> {
    header
        .split(',')
        .find_map(|part| part.trim().strip_prefix("app;dur="))
        .and_then(|d| d.parse().ok())
}

/// Signs in through the form; the client keeps the session cookie.
async fn sign_in(http: &reqwest::Client, args: &Args) -> anyhow::Result<()> {
    let page = http
        .get(format!("{}/auth/sign-in", args.url))
        .send()
        .await?
        .text()
        .await?;
    let marker = "name=\"csrf_token\" value=\"";
    let start = page
        .find(marker)
        .context("no CSRF token in the sign-in form")?
        + marker.len();
    let token = &page[start..start + page[start..].find('"').context("unterminated token")?];
    let answer = http
        .post(format!("{}/auth/sign-in", args.url))
        .form(&[
            ("email", args.email.as_str()),
            ("password", args.password.as_str()),
            ("csrf_token", token),
            ("next", "/"),
        ])
        .send()
        .await?;
    let status = answer.status();
    let body = answer.text().await?;
    anyhow::ensure!(
        status.is_success() && !body.contains("Invalid email or password"),
        "sign-in failed: {status}"
    );
    Ok(())
}

async fn measure(
    http: &reqwest::Client,
    args: &Args,
    path: &str,
) -> anyhow::Result<serde_json::Value> {
    let samples = Arc::new(Mutex::new(Samples::default()));
    let next = Arc::new(AtomicU64::new(0));
    let total = args.warmup + args.requests;
    let started = Instant::now();
    let mut people = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (http, samples, next) = (http.clone(), samples.clone(), next.clone());
        let (base, path, warmup) = (args.url.clone(), path.to_string(), args.warmup);
        people.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return;
                }
                let url = format!("{base}{}", path.replace("{n}", &n.to_string()));
                let sent_at = Instant::now();
                let outcome = match http.get(&url).send().await {
                    Ok(answer) => {
                        let status = answer.status().as_u16();
                        let server_ms = answer
                            .headers()
                            .get("server-timing")
                            .and_then(|v| v.to_str().ok())
                            .and_then(app_duration_ms);
                        answer
                            .bytes()
                            .await
                            .map(|body| (status, server_ms, body.len()))
                            .map_err(|e| format!("{e:?}"))
                    }
                    Err(e) => Err(format!("{e:?}")),
                };
                let client_ms = sent_at.elapsed().as_secs_f64() * 1000.0;
                if n < warmup {
                    continue;
                }
                let mut samples = samples.lock().unwrap();
                match outcome {
                    Ok((status, server_ms, bytes)) => {
                        *samples.statuses.entry(status.to_string()).or_default() += 1;
                        samples.client_ms.push(client_ms);
                        samples.bytes.push(bytes as f64);
                        match server_ms {
                            Some(ms) => samples.server_ms.push(ms),
                            None => samples.missing_server_timing += 1,
                        }
                    }
                    Err(error) => samples.transport_errors.push(error),
                }
            }
        });
    }
    while people.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    let answered = samples.client_ms.len();
    Ok(json!({
        "path": path,
        "requests": answered,
        "pages_per_second": ((total as f64 / elapsed) * 10.0).round() / 10.0,
        "statuses": samples.statuses,
        "transport_errors": samples.transport_errors.len(),
        "transport_error_samples": samples.transport_errors.iter().take(3).collect::<Vec<_>>(),
        "missing_server_timing": samples.missing_server_timing,
        "server_ms": summary(samples.server_ms),
        "client_ms": summary(samples.client_ms),
        "kib": summary(samples.bytes.iter().map(|b| b / 1024.0).collect()),
    }))
}

// One thread: the generator shares the machine with the server it measures.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(60))
        .pool_idle_timeout(Duration::from_secs(2))
        .build()?;
    sign_in(&http, &args).await?;
    let mut pages = serde_json::Map::new();
    for page in &args.pages {
        let (name, path) = page
            .split_once('=')
            .with_context(|| format!("--page {page}: expected NAME=PATH"))?;
        let report = measure(&http, &args, path).await?;
        eprintln!("{name}: {report}");
        pages.insert(name.to_string(), report);
    }
    let report = json!({
        "concurrency": args.concurrency,
        "requests_per_page": args.requests,
        "pages": pages,
    });
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
