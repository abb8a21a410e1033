//! Admission: whether an ingestion request may be taken, decided before its body is read, the
//! same way for the batch API and the OTLP endpoint.
//!
//! A request is refused (429 with `Retry-After`) when the queue's backlog is over
//! `ingestion.max_backlog`, and waits for one of `ingestion.max_concurrent_requests` places
//! otherwise: only admitted requests read and parse bodies, so what ingestion holds in memory is
//! bounded however many clients send at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_util::sync::CancellationToken;

use super::WriteError;
use crate::config::IngestionSettings;
use crate::storage::queue;
use crate::storage::Stores;

/// How long an ingestion request may wait for a place before it is answered 429.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// How often the backlog is measured.
const BACKLOG_INTERVAL: Duration = Duration::from_millis(500);

pub struct Admission {
    /// The queue's backlog as last measured; refreshed in the background so that requests never
    /// wait on Redis to decide whether to throttle.
    backlog: AtomicU64,
    max_backlog: u64,
    places: Semaphore,
    max_wait: Duration,
}

/// An admitted request: it holds its place until dropped.
pub struct Admitted<'a> {
    _place: SemaphorePermit<'a>,
    /// Whether the body is gzip-compressed (else it is sent as is).
    pub gzip: bool,
}

impl Admission {
    pub fn new(settings: &IngestionSettings) -> Arc<Admission> {
        Arc::new(Admission {
            backlog: AtomicU64::new(0),
            max_backlog: settings.max_backlog,
            places: Semaphore::new(settings.max_concurrent_requests),
            max_wait: MAX_WAIT,
        })
    }

    /// Measures the backlog of the `shards` queue shards until `shutdown`.
    pub fn watch_backlog(
        self: &Arc<Self>,
        stores: Stores,
        shards: u32,
        shutdown: CancellationToken,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                match queue::backlog(&stores.redis, shards).await {
                    Ok(len) => this.backlog.store(len, Ordering::Relaxed),
                    Err(err) => tracing::warn!(error = %err, "cannot measure the queue backlog"),
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(BACKLOG_INTERVAL) => {}
                }
            }
        });
    }

    /// Admits a request whose body has the given `Content-Encoding` (empty when none), or says
    /// why not: an encoding other than gzip or identity, a backlog over its bound, or no place
    /// free within `MAX_WAIT`.
    pub async fn admit(&self, content_encoding: &str) -> Result<Admitted<'_>, WriteError> {
        let gzip = match content_encoding.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => false,
            "gzip" | "x-gzip" => true,
            other => {
                return Err(WriteError::UnsupportedEncoding(format!(
                    "Unsupported content encoding {other:?}: send gzip or uncompressed bodies"
                )))
            }
        };
        if self.backlog.load(Ordering::Relaxed) > self.max_backlog {
            return Err(over_capacity(2));
        }
        match tokio::time::timeout(self.max_wait, self.places.acquire()).await {
            Ok(Ok(place)) => Ok(Admitted {
                _place: place,
                gzip,
            }),
            _ => Err(over_capacity(1)),
        }
    }
}

fn over_capacity(retry_after_secs: u64) -> WriteError {
    WriteError::Overloaded {
        message: "Ingestion is over capacity; retry later".to_string(),
        retry_after_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max_backlog: u64, places: usize) -> Arc<Admission> {
        Arc::new(Admission {
            backlog: AtomicU64::new(0),
            max_backlog,
            places: Semaphore::new(places),
            max_wait: Duration::from_millis(20),
        })
    }

    #[tokio::test]
    async fn encodings_other_than_gzip_and_identity_are_refused() {
        let admission = admission(10, 1);
        assert!(!admission.admit("").await.unwrap().gzip);
        assert!(!admission.admit("identity").await.unwrap().gzip);
        assert!(admission.admit(" GZip ").await.unwrap().gzip);
        assert!(matches!(
            admission.admit("br").await,
            Err(WriteError::UnsupportedEncoding(_))
        ));
    }

    #[tokio::test]
    async fn a_backlog_over_its_bound_is_refused_with_a_retry_time() {
        let admission = admission(10, 1);
        admission.backlog.store(11, Ordering::Relaxed);
        assert!(matches!(
            admission.admit("").await,
            Err(WriteError::Overloaded {
                retry_after_secs: 2,
                ..
            })
        ));
        admission.backlog.store(10, Ordering::Relaxed);
        assert!(admission.admit("").await.is_ok());
    }

    #[tokio::test]
    async fn a_request_without_a_place_waits_then_is_refused() {
        let admission = admission(10, 1);
        let held = admission.admit("").await.unwrap();
        assert!(matches!(
            admission.admit("").await,
            Err(WriteError::Overloaded {
                retry_after_secs: 1,
                ..
            })
        ));
        drop(held);
        assert!(admission.admit("").await.is_ok());
    }
}
