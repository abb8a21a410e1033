//! CPU-heavy request work (parsing and validating large bodies) runs here, on tokio's blocking
//! pool, instead of on the HTTP worker threads. Those threads also serve latency-critical requests
//! (prompts) and health probes: a 4 MB JSON body parsed on one of them would stall every request
//! queued behind it on that thread.
//!
//! At most one job per CPU core runs at once; more wait, asynchronously. That keeps a burst of
//! ingestion from taking every core away from the HTTP threads.

use std::sync::OnceLock;

use super::WriteError;

fn permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores)
    })
}

/// Runs `job` on the blocking pool once a core is free, and returns what it returned.
pub async fn cpu<T, F>(job: F) -> Result<T, WriteError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let _permit = permits()
        .acquire()
        .await
        .map_err(|e| WriteError::Internal(e.into()))?;
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| WriteError::Internal(anyhow::Error::new(e).context("a CPU job panicked")))
}
