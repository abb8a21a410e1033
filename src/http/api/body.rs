//! Request bodies read as sent, within a limit, for the endpoints that take large ones
//! (ingestion and OTLP); a compressed body is inflated later, within the same limit.

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures::StreamExt;

use crate::http::error::ApiError;

/// A header's value as text, empty when absent or not text.
pub fn header_text(req: &HttpRequest, name: header::HeaderName) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Reads the body as sent, up to `limit` bytes; 413 beyond, refused from `Content-Length` alone
/// when that already says so.
pub async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "Request body exceeds the limit of {limit} bytes; send smaller batches"
        ))
    };
    let declared = header_text(req, header::CONTENT_LENGTH)
        .parse::<usize>()
        .ok();
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("Invalid request body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
