//! What the load generators share: the tally of answers, percentiles, and what realistic
//! payloads are made of (`prose`: text; `workload`: what LLM applications trace; `spliced_gzip`:
//! bodies deflated once, sent with new ids and times). (A folder without a `main.rs`, so Cargo
//! does not take it for an example of its own.)

// Each generator uses a part of this module.
#![allow(dead_code)]

pub mod prose;
pub mod spliced_gzip;
pub mod workload;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{json, Value};

/// The value at quantile `p` of sorted samples; NaN when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Answers of the ingestion endpoints, counted across connections.
pub struct Answers {
    /// The status that means accepted (207 for the batch API, 200 for OTLP).
    ok_status: u16,
    /// Items (events, spans) in accepted requests, less those the answer says were refused.
    pub accepted: AtomicU64,
    /// Items of accepted requests that the answer says were refused (a 207's `errors`, an OTLP
    /// `partial_success`): each one would be missing from the landed count.
    pub refused: AtomicU64,
    pub ok: AtomicU64,
    pub too_many: AtomicU64,
    pub other: AtomicU64,
    pub transport_errors: AtomicU64,
}

impl Answers {
    pub fn new(ok_status: u16) -> Answers {
        Answers {
            ok_status,
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            too_many: AtomicU64::new(0),
            other: AtomicU64::new(0),
            transport_errors: AtomicU64::new(0),
        }
    }

    /// Counts one answer to a request of `items` items; true when it was accepted.
    /// `refused_in` reads how many items an accepted request's answer refused. A 429 backs off
    /// for 200 ms before returning, as a client would.
    pub async fn record(
        &self,
        answer: reqwest::Result<reqwest::Response>,
        items: u64,
        refused_in: fn(&[u8]) -> u64,
    ) -> bool {
        match answer.map(|r| (r.status().as_u16(), r)) {
            Ok((status, response)) if status == self.ok_status => {
                let body = response.bytes().await.unwrap_or_default();
                let refused = refused_in(&body).min(items);
                self.ok.fetch_add(1, Ordering::Relaxed);
                self.accepted.fetch_add(items - refused, Ordering::Relaxed);
                self.refused.fetch_add(refused, Ordering::Relaxed);
                return true;
            }
            Ok((429, _)) => {
                self.too_many.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(_) => {
                self.other.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.transport_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        false
    }

    /// The `responses` object of a report.
    pub fn json(&self) -> Value {
        let mut responses = json!({
            "429": self.too_many.load(Ordering::Relaxed),
            "other": self.other.load(Ordering::Relaxed),
            "transport_errors": self.transport_errors.load(Ordering::Relaxed),
            "refused_items": self.refused.load(Ordering::Relaxed),
        });
        responses[self.ok_status.to_string()] = json!(self.ok.load(Ordering::Relaxed));
        responses
    }
}
