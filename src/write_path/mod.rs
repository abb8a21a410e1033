//! The write path of the web role, below the HTTP handlers: what the batch API
//! (`POST /api/public/ingestion`), the OTLP endpoint and direct score writes share.
//!
//! 1. [`admit`]: whether a request may be taken at all, before its body is read: the body's
//!    encoding, the queue's backlog and a bound on requests in flight.
//! 2. [`prepare`]: the CPU part, run on the blocking pool ([`offload`]): parse and validate each
//!    envelope on its own, group the good ones by entity, encode the request's one object.
//! 3. [`persist`]: make it durable (blob storage, then the queue) before anyone answers.
//!
//! Scores that name a config are checked against it in step 2 ([`score_configs`]), with the
//! project's configs as this process caches them, so a refused score is answered at once and
//! never stored.
//!
//! [`delete`] is the other write the API makes: deleting traces with everything under them, and
//! single scores.
//!
//! Nothing here knows HTTP: refusals are [`WriteError`]s, which the handlers map to statuses.

pub mod admit;
pub mod delete;
pub mod offload;
pub mod persist;
pub mod prepare;
pub mod score_configs;

use serde::Serialize;

pub use admit::{Admission, Admitted};
pub use delete::{delete_score, delete_traces};
pub use persist::{accept_annotation, accept_envelopes, persist};
pub use prepare::{
    prepare_batch_body, prepare_parsed, prepare_vetted, Configs, EventScope, Prepared,
};
pub use score_configs::prepare_checked;

/// Why a write was refused or failed. Every variant but `Internal` is the client's to act on:
/// send less, send later, send it differently, or retry.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Over the backlog or the bound on requests in flight: retry after the given seconds.
    #[error("{message}")]
    Overloaded {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    TooLarge(String),
    /// The body is not what the endpoint takes (malformed JSON, a bad gzip stream).
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    UnsupportedEncoding(String),
    /// A store did not take the write; nothing of it is visible, and a retry is safe.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// What a batch of envelopes came to: one entry per envelope, in the 207 answer's shape.
#[derive(Debug, Default, Serialize)]
pub struct BatchOutcome {
    pub successes: Vec<Success>,
    pub errors: Vec<Failure>,
}

#[derive(Debug, Serialize)]
pub struct Success {
    pub id: String,
    pub status: u16,
}

#[derive(Debug, Serialize)]
pub struct Failure {
    pub id: String,
    pub status: u16,
    pub message: String,
    pub error: String,
}
