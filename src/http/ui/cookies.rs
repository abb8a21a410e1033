//! The UI's two cookies: the session (a random token naming a row of `user_sessions`) and, before
//! sign-in, the nonce the sign-in and sign-up forms' CSRF tokens are made from. Both are
//! `HttpOnly` (no script reads them), `SameSite=Lax` (other sites' forms do not carry them),
//! `Path=/`, and when the public URL is https `Secure` with the `__Host-` prefix (so no subdomain
//! can set them).

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::HttpRequest;

use super::UiConfig;

pub fn session_cookie_name(config: &UiConfig) -> &'static str {
    if config.secure_cookies {
        "__Host-lfrs-session"
    } else {
        "lfrs-session"
    }
}

pub fn nonce_cookie_name(config: &UiConfig) -> &'static str {
    if config.secure_cookies {
        "__Host-lfrs-csrf"
    } else {
        "lfrs-csrf"
    }
}

fn build(config: &UiConfig, name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .secure(config.secure_cookies)
        .same_site(SameSite::Lax)
        .finish()
}

/// The session cookie for `token`, kept by the browser as long as the session lasts.
pub fn session(config: &UiConfig, token: String) -> Cookie<'static> {
    let mut cookie = build(config, session_cookie_name(config), token);
    cookie.set_max_age(time::Duration::seconds(
        config.session_max_age.num_seconds(),
    ));
    cookie
}

/// A cookie that makes the browser drop the session cookie.
pub fn clear_session(config: &UiConfig) -> Cookie<'static> {
    let mut cookie = build(config, session_cookie_name(config), String::new());
    cookie.make_removal();
    cookie
}

/// The pre-sign-in nonce cookie (for the browser's session only).
pub fn nonce(config: &UiConfig, value: String) -> Cookie<'static> {
    build(config, nonce_cookie_name(config), value)
}

/// The value of the session cookie, if the request has a non-empty one.
pub fn session_token(req: &HttpRequest, config: &UiConfig) -> Option<String> {
    req.cookie(session_cookie_name(config))
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty())
}

/// The value of the nonce cookie, if the request has a non-empty one.
pub fn nonce_value(req: &HttpRequest, config: &UiConfig) -> Option<String> {
    req.cookie(nonce_cookie_name(config))
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty())
}
