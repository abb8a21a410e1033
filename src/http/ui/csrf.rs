//! Cross-site request forgery: every request of the UI that may change something (any method but
//! GET, HEAD and OPTIONS) must come from a form this server rendered for the same browser.
//!
//! The token is a synchronizer token kept on the server side of the session without a column of
//! its own: HMAC-SHA256 keyed with the installation's salt over the session cookie's token (or,
//! before sign-in, over the nonce cookie's value). Another site can neither read the cookie nor
//! compute the HMAC, so it cannot put the right token in a form; a signed-out session's token dies
//! with it. [`guard`] checks it on every such request before any handler runs, and refuses a
//! request whose `Origin` is another site's, so no handler can forget the check.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::error::UiError;
use super::{cookies, UiConfig};

/// The largest form the UI accepts: its forms are a few short fields.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// The form field the token travels in.
pub const FIELD: &str = "csrf_token";

/// The token of forms shown to the holder of the cookie value `value`.
pub fn token_for(config: &UiConfig, value: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(config.salt.expose_secret().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(b"lfrs-csrf:");
    mac.update(value.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The cookie value a request's forms are bound to: the session's token, else the nonce.
fn bound_value(req: &HttpRequest, config: &UiConfig) -> Option<String> {
    cookies::session_token(req, config).or_else(|| cookies::nonce_value(req, config))
}

/// The token for the forms of a page, and the nonce cookie to set when the browser has neither
/// a session nor a nonce yet (the sign-in and sign-up pages).
pub fn form_token(
    req: &HttpRequest,
    config: &UiConfig,
) -> Result<(String, Option<actix_web::cookie::Cookie<'static>>), UiError> {
    if let Some(value) = bound_value(req, config) {
        return Ok((token_for(config, &value), None));
    }
    let nonce = crate::domain::account::new_token()?;
    Ok((
        token_for(config, &nonce),
        Some(cookies::nonce(config, nonce)),
    ))
}

/// Whether the request's `Origin`, when it sends one, is this site.
fn origin_allowed(req: &ServiceRequest, config: &UiConfig) -> bool {
    let Some(origin) = req.headers().get(actix_web::http::header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let expected = match &config.public_origin {
        Some(public) => public.clone(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    };
    origin.eq_ignore_ascii_case(&expected)
}

/// The middleware of the UI scope that refuses a state-changing request without the right token
/// (403, and nothing reaches the handler). The form body is read here and handed on unchanged.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let config = req
        .app_data::<web::Data<UiConfig>>()
        .cloned()
        .ok_or_else(|| UiError::Internal(anyhow::anyhow!("UiConfig missing from app data")))?;
    if !origin_allowed(&req, &config) {
        return Ok(req.error_response(UiError::CsrfRefused));
    }
    let Some(value) = bound_value(req.request(), &config) else {
        return Ok(req.error_response(UiError::CsrfRefused));
    };
    let body = match req.extract::<web::Bytes>().await {
        Ok(body) if body.len() <= MAX_FORM_BYTES => body,
        _ => {
            return Ok(req.error_response(UiError::BadRequest(
                "The form could not be read.".to_string(),
            )))
        }
    };
    let sent = url::form_urlencoded::parse(&body)
        .find(|(name, _)| name == FIELD)
        .map(|(_, token)| token.into_owned())
        .unwrap_or_default();
    let expected = token_for(&config, &value);
    if !bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
        return Ok(req.error_response(UiError::CsrfRefused));
    }
    req.set_payload(actix_web::dev::Payload::from(body));
    Ok(next.call(req).await?.map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(salt: &str) -> UiConfig {
        UiConfig {
            secure_cookies: false,
            public_origin: None,
            salt: salt.to_string().into(),
            session_max_age: chrono::Duration::minutes(1),
            disable_signup: false,
            signin_max_failures: 10,
            signin_failure_window_secs: 900,
        }
    }

    #[test]
    fn tokens_are_bound_to_the_cookie_and_the_salt() {
        let a = token_for(&config("salt"), "session-a");
        assert_eq!(a, token_for(&config("salt"), "session-a"));
        assert_ne!(a, token_for(&config("salt"), "session-b"));
        assert_ne!(a, token_for(&config("pepper"), "session-a"));
        assert_eq!(a.len(), 64);
    }
}
