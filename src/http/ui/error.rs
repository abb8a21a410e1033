//! The UI's failures as HTML pages in the site's chrome (`templates/error.html`), and a request
//! that needs a session as a redirect to sign-in. A 500 says nothing of its cause, which is logged.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use super::shell::Shell;

#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// No live session: sign in, then come back to `next` (a GET's own path).
    #[error("sign-in required")]
    SignInRequired { next: Option<String> },
    /// Also what someone gets for a project or organization they are no member of.
    #[error("not found")]
    NotFound,
    /// A member whose role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    #[error("cross-site request refused")]
    CsrfRefused,
    #[error("{0}")]
    BadRequest(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<askama::Error> for UiError {
    fn from(error: askama::Error) -> Self {
        UiError::Internal(anyhow::anyhow!("rendering a template: {error}"))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub shell: Shell,
    pub status: u16,
    pub heading: String,
    pub message: String,
}

impl UiError {
    fn heading_and_message(&self) -> (&'static str, String) {
        match self {
            UiError::SignInRequired { .. } => ("Sign in required", "Sign in to continue.".into()),
            UiError::NotFound => (
                "Page not found",
                "There is nothing here, or you have no access to it.".into(),
            ),
            UiError::Forbidden(message) => ("Not allowed", message.clone()),
            UiError::CsrfRefused => (
                "Form expired",
                "This form was sent from another page or has expired. Go back, reload the page and try again."
                    .into(),
            ),
            UiError::BadRequest(message) => ("Bad request", message.clone()),
            UiError::Internal(_) => (
                "Something went wrong",
                "The server could not complete this request. Try again in a moment.".into(),
            ),
        }
    }
}

impl ResponseError for UiError {
    fn status_code(&self) -> StatusCode {
        match self {
            UiError::SignInRequired { .. } => StatusCode::SEE_OTHER,
            UiError::NotFound => StatusCode::NOT_FOUND,
            UiError::Forbidden(_) | UiError::CsrfRefused => StatusCode::FORBIDDEN,
            UiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            UiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let UiError::SignInRequired { next } = self {
            let location = match next.as_deref().and_then(super::safe_next) {
                Some(next) if next != "/" => format!(
                    "/auth/sign-in?{}",
                    serde_urlencoded::to_string([("next", next)]).unwrap_or_default()
                ),
                _ => "/auth/sign-in".to_string(),
            };
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, location))
                .finish();
        }
        if let UiError::Internal(cause) = self {
            tracing::error!(error = format!("{cause:#}"), "UI request failed");
        }
        let (heading, message) = self.heading_and_message();
        error_page(self.status_code(), heading, message)
    }
}

/// An error page with this status, heading and message.
pub fn error_page(status: StatusCode, heading: &str, message: String) -> HttpResponse {
    let page = ErrorPage {
        shell: Shell::anonymous(heading),
        status: status.as_u16(),
        heading: heading.to_string(),
        message,
    };
    match page.render() {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(html),
        Err(err) => {
            tracing::error!(error = %err, "rendering the error page");
            HttpResponse::build(status)
                .content_type("text/plain; charset=utf-8")
                .body(heading.to_string())
        }
    }
}

/// A rendered page as a 200 answer.
pub fn html(page: &impl Template) -> Result<HttpResponse, UiError> {
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page.render()?))
}

/// A rendered page with another status (a form shown again with its error).
pub fn html_with_status(status: StatusCode, page: &impl Template) -> Result<HttpResponse, UiError> {
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(page.render()?))
}

/// The 303 after a form that worked (Post/Redirect/Get), so that reloading does not post again.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_string()))
        .finish()
}

/// Any path the UI does not have.
pub async fn not_found_page() -> HttpResponse {
    UiError::NotFound.error_response()
}
