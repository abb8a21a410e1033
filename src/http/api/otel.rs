//! `POST /api/public/otel/v1/traces`: OTLP/HTTP trace export, for the current Langfuse SDKs and
//! any OpenTelemetry exporter.
//!
//! Protobuf or JSON, gzip or not, Basic auth with the project's keys. Spans become batch-ingestion
//! envelopes (`ingest::otel`), checked while mapped, and are written by the batch API's own write
//! path (`crate::write_path`: one admission, `prepare_vetted`, `persist`), so they are answered
//! only once durable and are merged and read like any other event.
//! The answer is an `ExportTraceServiceResponse` in the request's encoding; spans that cannot be
//! stored are counted in its `partial_success`, the rest are kept.
//!
//! Errors: 401 bad keys, 415 another content type or encoding, 413 a body over
//! `ingestion.otel_max_body_bytes` (as sent or inflated), 400 a body that does not decode or a span
//! without valid ids (then nothing is stored), 429 over the queue backlog, 503 a store away. Error
//! bodies have this API's one JSON shape, as Langfuse's own OTel endpoint answers in JSON too.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::body::{header_text, read_limited};
use super::resource;
use crate::config::IngestionSettings;
use crate::http::auth::ProjectAuth;
use crate::http::error::ApiError;
use crate::ingest::otel::decode::{encode_response, gunzip};
use crate::ingest::otel::{decode, map_export, DecodeError, Encoding, MappedExport};
use crate::storage::Stores;
use crate::write_path::{offload, persist, prepare_vetted, Admission};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/otel/v1/traces").route(web::post().to(export_traces)));
}

/// At most this many distinct reasons are quoted in `partial_success.error_message`.
const MAX_REASONS: usize = 5;

async fn export_traces(
    auth: ProjectAuth,
    req: HttpRequest,
    payload: web::Payload,
    stores: web::Data<Stores>,
    settings: web::Data<IngestionSettings>,
    admission: web::Data<Admission>,
) -> Result<HttpResponse, ApiError> {
    let content_type = header_text(&req, header::CONTENT_TYPE);
    let encoding = Encoding::from_content_type(&content_type).ok_or_else(|| {
        ApiError::UnsupportedMediaType(format!(
            "Unsupported content type {content_type:?}: send application/x-protobuf or application/json"
        ))
    })?;
    let admitted = admission
        .admit(&header_text(&req, header::CONTENT_ENCODING))
        .await?;
    let gzip = admitted.gzip;
    let limit = settings.otel_max_body_bytes;
    let body = read_limited(&req, payload, limit).await?;

    // Inflating, decoding, mapping and encoding a large export takes CPU time that must not hold
    // up the other requests served by this worker thread: all of it is one offloaded step.
    let project = auth.project_id.clone();
    let (mapped, prepared) = offload::cpu(move || -> Result<_, DecodeError> {
        let inflated;
        let bytes: &[u8] = if gzip {
            inflated = gunzip(&body, limit)?;
            &inflated
        } else {
            &body
        };
        let export = decode(encoding, bytes)?;
        let mut mapped = map_export(&export, chrono::Utc::now());
        let envelopes = std::mem::take(&mut mapped.envelopes);
        let prepared = prepare_vetted(
            &project,
            envelopes.into_iter().map(|(e, checked)| (e, Ok(checked))),
        );
        Ok((mapped, prepared))
    })
    .await?
    .map_err(|e| match e {
        DecodeError::TooLarge(_) => ApiError::PayloadTooLarge(e.to_string()),
        DecodeError::Malformed(_) | DecodeError::InvalidId(_) => {
            ApiError::BadRequest(e.to_string())
        }
    })?;

    let MappedExport {
        span_of,
        mut rejected,
        span_count,
        ..
    } = mapped;
    let outcome = persist(&stores, &settings, &auth.project_id, prepared).await?;
    let accepted_envelopes = outcome.successes.len();
    // Envelopes were checked while mapping, so refusals here are not expected; should the rules
    // ever differ, they are still reported per span.
    for failure in outcome.errors {
        if let Some(span) = span_of.get(&failure.id) {
            rejected.push((span.clone(), failure.message));
        }
    }
    let mut rejected_spans: Vec<_> = rejected.iter().map(|(span, _)| span).collect();
    rejected_spans.sort_by(|a, b| (&a.trace_id, &a.span_id).cmp(&(&b.trace_id, &b.span_id)));
    rejected_spans.dedup();
    let error_message = if rejected_spans.is_empty() {
        String::new()
    } else {
        let mut reasons: Vec<&str> = Vec::new();
        for (_, reason) in &rejected {
            if !reasons.contains(&reason.as_str()) && reasons.len() < MAX_REASONS {
                reasons.push(reason);
            }
        }
        format!(
            "{} of {span_count} spans rejected: {}",
            rejected_spans.len(),
            reasons.join("; ")
        )
    };
    tracing::debug!(
        project_id = %auth.project_id,
        spans = span_count,
        envelopes = accepted_envelopes,
        rejected = rejected_spans.len(),
        "otel export accepted"
    );
    Ok(HttpResponse::Ok()
        .content_type(encoding.content_type())
        .body(encode_response(
            encoding,
            rejected_spans.len() as i64,
            &error_message,
        )))
}
