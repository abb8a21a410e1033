//! OpenTelemetry traces as Langfuse ingestion events, as pure code.
//!
//! An OTLP export (`ExportTraceServiceRequest`, protobuf or JSON, see `decode`) becomes the same
//! batch-ingestion envelopes (`trace-create`, `span-create`, `generation-create`, …) that
//! `POST /api/public/ingestion` accepts (see `mapping`), so spans take the one durable pipeline
//! and are merged, stored and read like every other event. The rules are Langfuse's own: which
//! attribute sets which field, in which order of precedence, for the Langfuse SDKs, the
//! OpenTelemetry GenAI conventions, OpenInference, the Vercel AI SDK and OpenLLMetry. They are
//! tables in `mapping`, `observation_type`, `io` and `generation`, each covered by golden tests.
//!
//! The model below is what both wire encodings decode into: attribute values are already plain
//! JSON, ids are lower-case hex, so the mapping never sees protobuf or OTLP/JSON details.

pub mod decode;
pub mod generation;
pub mod io;
pub mod mapping;
pub mod observation_type;

#[cfg(test)]
mod golden;

use serde_json::{Map, Value};

pub use decode::{decode, DecodeError, Encoding};
pub use mapping::{map_export, MappedExport, SpanRef};

/// Attributes as plain JSON values, keyed by attribute name (a later duplicate key wins, as in
/// Langfuse). An attribute without a value is left out.
pub type Attributes = Map<String, Value>;

/// One decoded `ExportTraceServiceRequest`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Export {
    pub resources: Vec<ResourceSpans>,
}

impl Export {
    pub fn span_count(&self) -> usize {
        self.resources
            .iter()
            .flat_map(|r| &r.scopes)
            .map(|s| s.spans.len())
            .sum()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceSpans {
    pub attributes: Attributes,
    pub scopes: Vec<ScopeSpans>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScopeSpans {
    /// The instrumentation scope; its name tells which library produced the spans
    /// (`langfuse-sdk`, `ai`, `openinference.instrumentation.*`, …).
    pub name: String,
    pub version: String,
    pub attributes: Attributes,
    pub spans: Vec<Span>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Span {
    /// 32 lower-case hex digits.
    pub trace_id: String,
    /// 16 lower-case hex digits.
    pub span_id: String,
    /// `None` for a root span.
    pub parent_span_id: Option<String>,
    pub name: String,
    /// Nanoseconds since the Unix epoch; 0 when the exporter sent none.
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub attributes: Attributes,
    pub events: Vec<SpanEvent>,
    pub status: Status,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanEvent {
    pub name: String,
    pub time_unix_nano: u64,
    pub attributes: Attributes,
}

/// OTLP's `Status`: code 0 unset, 1 ok, 2 error.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    pub code: i32,
    pub message: String,
}

pub const STATUS_CODE_ERROR: i32 = 2;
