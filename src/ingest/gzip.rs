//! Request bodies sent with `Content-Encoding: gzip`, for every API that takes events.

use std::io::Read;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GzipError {
    #[error("Invalid request body: not valid gzip data ({0})")]
    Invalid(String),
    /// Decompressed, the body is larger than the limit.
    #[error("The decompressed request body exceeds the limit of {0} bytes; send smaller batches")]
    TooLarge(usize),
}

/// Inflates a gzip body, refusing to produce more than `limit` bytes (a small compressed body can
/// expand without bound).
pub fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, GzipError> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    flate2::read::MultiGzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| GzipError::Invalid(e.to_string()))?;
    if out.len() > limit {
        return Err(GzipError::TooLarge(limit));
    }
    Ok(out)
}
