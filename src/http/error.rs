//! The one mapping from failures to HTTP answers. Every error reaches the client as
//! `{"message": ..., "error": "<name>"}` (Langfuse's shape); a 500 says nothing of its cause, which is logged instead.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but the credentials do not reach this endpoint (a public key alone).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// The request collides with what exists (an id taken elsewhere).
    #[error("{0}")]
    Conflict(String),
    /// The path exists, but not for this method.
    #[error("Method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The backlog is over its bound: come back after the given seconds.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<crate::write_path::WriteError> for ApiError {
    fn from(error: crate::write_path::WriteError) -> Self {
        use crate::write_path::WriteError;
        match error {
            WriteError::Overloaded {
                message,
                retry_after_secs,
            } => ApiError::TooManyRequests {
                message,
                retry_after_secs,
            },
            WriteError::TooLarge(message) => ApiError::PayloadTooLarge(message),
            WriteError::Malformed(message) => ApiError::BadRequest(message),
            WriteError::UnsupportedEncoding(message) => ApiError::UnsupportedMediaType(message),
            WriteError::Unavailable(message) => ApiError::Unavailable(message),
            WriteError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

impl ApiError {
    /// The error's name, as Langfuse puts it beside the message.
    fn name(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "UnauthorizedError",
            ApiError::Forbidden(_) => "ForbiddenError",
            ApiError::NotFound(_) => "LangfuseNotFoundError",
            ApiError::BadRequest(_) => "InvalidRequestError",
            ApiError::Conflict(_) => "LangfuseConflictError",
            ApiError::MethodNotAllowed => "MethodNotAllowedError",
            ApiError::Unavailable(_) => "ServiceUnavailableError",
            ApiError::PayloadTooLarge(_) => "PayloadTooLargeError",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaTypeError",
            ApiError::TooManyRequests { .. } => "TooManyRequestsError",
            ApiError::Internal(_) => "InternalServerError",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            ApiError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "request failed");
                "Internal Server Error".to_string()
            }
            other => other.to_string(),
        };
        let mut response = HttpResponse::build(self.status_code());
        match self {
            // Lets browsers and generic HTTP clients know Basic auth is expected.
            ApiError::Unauthorized(_) => {
                response.insert_header(("WWW-Authenticate", "Basic realm=\"langfuse\""));
            }
            ApiError::TooManyRequests {
                retry_after_secs, ..
            } => {
                response.insert_header(("Retry-After", retry_after_secs.to_string()));
            }
            _ => {}
        }
        response.json(json!({ "message": message, "error": self.name() }))
    }
}

/// Unknown routes answer in the same JSON shape as every other error.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("Route not found".to_string()))
}

/// A known path asked with a method it does not have.
pub async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// Malformed JSON and query strings are the client's fault: 400 with the parser's reason.
pub fn json_config() -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default().error_handler(|err, _req| {
        ApiError::BadRequest(format!("Invalid request body: {err}")).into()
    })
}

pub fn query_config() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::BadRequest(format!("Invalid query parameters: {err}")).into()
    })
}
