//! The web UI: server-rendered pages for people, beside the public API.
//!
//! Pages are askama templates (`templates/`, checked when the crate compiles) filled from view
//! structs that hold only text to show: every value is escaped by askama; only `render`'s HTML is
//! marked safe.
//! Each area has a module: `sign_in` (sign-in, sign-up, sign-out), `account` (the person's own
//! settings), `home` (the start page, new organizations and projects), `project` (a project's home)
//! and `settings` (a project's name, API keys and members). They share `shell` (the page chrome),
//! `error` (HTML error pages), `csrf`, `cookies` and `assets` (CSS and JS compiled into the binary).
//!
//! What a page may do is decided before its handler runs, by the extractors of
//! [`crate::http::auth`]: [`SignedIn`](crate::http::auth::SignedIn) (a live server-side session),
//! [`ProjectMember`](crate::http::auth::ProjectMember) and
//! [`OrgMember`](crate::http::auth::OrgMember) (the person's role there; not a member: 404). Every
//! state-changing request passes [`csrf::guard`] first, and every answer carries the headers of
//! [`security_headers`].
//!
//! `traces` is the traces table (and the step to a list's next or previous trace); `users` a
//! project's users and each one's traces, in the same table.
//!
//! `prompts` is the prompts pages (list, versions, diff, new versions, labels), writing through
//! the public API's prompt storage and cache; `scores` the scores table.
//!
//! `models` is a project's models and prices (`settings/models`), writing through the models
//! API's storage; `score_configs` its score configs (`settings/scores`), writing through the
//! score-configs API's storage.
//!
//! `trace_detail` is a trace's page (its observation tree, timeline, panels and score form),
//! `sessions` the sessions table and a session's conversation; both render trace data through
//! `render`, the one maker of HTML from what strangers wrote that templates mark safe.
//!
//! `project` is a project's home and its dashboard, `dashboards` the custom dashboards (list,
//! widgets, editor, arranging); both read their figures through `figures` (the metrics
//! engine's rows as typed series) and draw them with `charts` (askama-rendered SVG and tables,
//! every label escaped there; pages include that markup with `|safe`).
//!
//! `datasets` is the datasets list and a dataset's runs, `dataset_items` its items (create,
//! edit, archive, and "add to dataset" from a trace's page), `dataset_runs` a run and the
//! comparison of runs item by item; they write through the dataset API's storage.

pub mod account;
pub mod assets;
pub mod charts;
pub mod cookies;
pub mod csrf;
pub mod dashboards;
pub mod dataset_items;
pub mod dataset_runs;
pub mod dataset_settings;
pub mod datasets;
pub mod error;
pub mod figures;
pub mod home;
pub mod models;
pub mod project;
pub mod prompts;
pub mod render;
pub mod score_configs;
pub mod scores;
pub mod sessions;
pub mod settings;
pub mod shell;
pub mod sign_in;
pub mod trace_detail;
pub mod traces;
pub mod users;

use actix_web::http::header::{self, HeaderValue};
use actix_web::web;
use secrecy::SecretString;

use crate::config::AuthSettings;

/// What the UI's handlers and extractors need from the settings.
#[derive(Debug, Clone)]
pub struct UiConfig {
    /// Cookies are `Secure` (and `__Host-` prefixed): the public URL is https.
    pub secure_cookies: bool,
    /// `scheme://host[:port]` of the public URL, which a posted form's `Origin` must match; when
    /// unset, the request's own scheme and `Host` are the origin.
    pub public_origin: Option<String>,
    /// Keys the CSRF tokens (`csrf::token_for`).
    pub salt: SecretString,
    pub session_max_age: chrono::Duration,
    pub disable_signup: bool,
    pub signin_max_failures: u32,
    pub signin_failure_window_secs: u64,
}

impl UiConfig {
    pub fn new(auth: &AuthSettings) -> UiConfig {
        let public_origin = url::Url::parse(auth.public_url.trim())
            .ok()
            .filter(|u| u.has_host())
            .map(|u| u.origin().ascii_serialization());
        UiConfig {
            secure_cookies: auth.public_url_is_https(),
            public_origin,
            salt: auth.salt.clone(),
            session_max_age: chrono::Duration::minutes(
                i64::try_from(auth.session_max_age_minutes).unwrap_or(i64::MAX / 60_000),
            ),
            disable_signup: auth.disable_signup,
            signin_max_failures: auth.signin_max_failures,
            signin_failure_window_secs: auth.signin_failure_window_secs,
        }
    }
}

/// Mounts the UI as one scope at the root, after the public API, so that it answers every path
/// the API does not: its 404 is an HTML page.
pub fn mount(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
            .app_data(web::FormConfig::default().limit(csrf::MAX_FORM_BYTES))
            .wrap(actix_web::middleware::from_fn(csrf::guard))
            .wrap(actix_web::middleware::from_fn(security_headers))
            .configure(assets::routes)
            .configure(sign_in::routes)
            .configure(account::routes)
            .configure(home::routes)
            .configure(project::routes)
            .configure(dashboards::routes)
            .configure(settings::routes)
            .configure(models::routes)
            .configure(score_configs::routes)
            .configure(traces::routes)
            .configure(trace_detail::routes)
            .configure(sessions::routes)
            .configure(users::routes)
            .configure(prompts::routes)
            .configure(scores::routes)
            .configure(datasets::routes)
            .configure(dataset_items::routes)
            .configure(dataset_runs::routes)
            .configure(dataset_settings::routes)
            .default_service(web::to(error::not_found_page)),
    );
}

/// The policy of every UI answer: scripts, styles and images only from this server (no inline
/// script, no `eval`), forms posted only here, never framed; no referrer to other sites.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; media-src 'self'; connect-src 'self'; font-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to every answer of the UI scope, its errors included; pages are not
/// stored by caches (they show per-person data, and a new API key's secret once), assets set their
/// own caching. `Server-Timing: app;dur=<ms>` says how long the page took in this process (the UI
/// benchmark reads it; a browser's developer tools show it).
async fn security_headers(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let mut response = next.call(req).await?;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let headers = response.headers_mut();
    if let Ok(timing) = HeaderValue::from_str(&format!("app;dur={elapsed_ms:.3}")) {
        headers.insert(header::HeaderName::from_static("server-timing"), timing);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(response)
}

/// `text` as one segment of a URL path: everything but ASCII letters, digits and `-_.~`
/// percent-encoded (as askama's `urlencode_strict` filter does in templates).
pub fn path_segment(text: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

/// A relative path on this site that sign-in may send a person back to, or `None`: only paths
/// that start with one `/` (not `//host` nor `/\host`, which browsers read as another site), with
/// no control characters. Anything else would make the sign-in form an open redirect.
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\');
    ok.then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_keep_ids_readable_and_encode_the_rest() {
        assert_eq!(path_segment("d486-69b9_x.y~z"), "d486-69b9_x.y~z");
        assert_eq!(path_segment("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
    }

    #[test]
    fn only_same_site_paths_are_followed_after_sign_in() {
        assert_eq!(
            safe_next("/project/p1/settings?x=1"),
            Some("/project/p1/settings?x=1")
        );
        assert_eq!(safe_next("/"), Some("/"));
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "/ok\\..\\x",
            "javascript:alert(1)",
            "",
            "project",
            "/a\nb",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
    }
}
