//! The UI's stylesheet and scripts, compiled into the binary (`assets/app.css`, `assets/app.js`,
//! and the traces table's `assets/traces.js` beside this file) and served at `/static/<hash>/<file>`, where the hash is of the content: the
//! URL changes whenever the file does, so browsers may cache it for a year.

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use sha2::{Digest, Sha256};

struct Asset {
    content_type: &'static str,
    body: &'static str,
    url: String,
}

impl Asset {
    fn new(name: &'static str, content_type: &'static str, body: &'static str) -> Asset {
        let hash = hex::encode(&Sha256::digest(body.as_bytes())[..6]);
        Asset {
            content_type,
            body,
            url: format!("/static/{hash}/{name}"),
        }
    }
}

static ASSETS: LazyLock<[Asset; 10]> = LazyLock::new(|| {
    [
        Asset::new(
            "app.css",
            "text/css; charset=utf-8",
            include_str!("assets/app.css"),
        ),
        Asset::new(
            "app.js",
            "text/javascript; charset=utf-8",
            include_str!("assets/app.js"),
        ),
        Asset::new(
            "traces.js",
            "text/javascript; charset=utf-8",
            include_str!("assets/traces.js"),
        ),
        Asset::new(
            "prompts.js",
            "text/javascript; charset=utf-8",
            include_str!("assets/prompts.js"),
        ),
        Asset::new(
            "prompts.css",
            "text/css; charset=utf-8",
            include_str!("assets/prompts.css"),
        ),
        Asset::new(
            "trace.css",
            "text/css; charset=utf-8",
            include_str!("assets/trace.css"),
        ),
        Asset::new(
            "trace.js",
            "text/javascript; charset=utf-8",
            include_str!("assets/trace.js"),
        ),
        Asset::new(
            "dashboards.css",
            "text/css; charset=utf-8",
            include_str!("assets/dashboards.css"),
        ),
        Asset::new(
            "dashboards.js",
            "text/javascript; charset=utf-8",
            include_str!("assets/dashboards.js"),
        ),
        Asset::new(
            "datasets.css",
            "text/css; charset=utf-8",
            include_str!("assets/datasets.css"),
        ),
    ]
});

pub fn css_url() -> &'static str {
    &ASSETS[0].url
}

pub fn js_url() -> &'static str {
    &ASSETS[1].url
}

/// The traces table's keys and filter form (`traces.rs`).
pub fn traces_js_url() -> &'static str {
    &ASSETS[2].url
}

/// The prompt pages' chat editor and diff form (`prompts.rs`).
pub fn prompts_js_url() -> &'static str {
    &ASSETS[3].url
}

/// The stylesheet of the prompts pages, the diff and the scores table.
pub fn prompts_css_url() -> &'static str {
    &ASSETS[4].url
}

/// The trace page's and sessions pages' styles (`trace_detail.rs`, `sessions.rs`).
pub fn trace_css_url() -> &'static str {
    &ASSETS[5].url
}

/// The trace page's tree folding, panel swap and keys (`trace_detail.rs`).
pub fn trace_js_url() -> &'static str {
    &ASSETS[6].url
}

/// The charts' and dashboards' styles (`project.rs`, `dashboards.rs`, `charts.rs`).
pub fn dashboards_css_url() -> &'static str {
    &ASSETS[7].url
}

/// The widget editor's view-dependent choices and dragging widgets (`dashboards.rs`).
pub fn dashboards_js_url() -> &'static str {
    &ASSETS[8].url
}

/// The datasets pages' styles (`datasets.rs`, `dataset_items.rs`, `dataset_runs.rs`).
pub fn datasets_css_url() -> &'static str {
    &ASSETS[9].url
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/{hash}/{name}", web::get().to(serve));
}

/// An asset at its current URL; any other hash is a 404, so an old page never gets new content
/// under an old URL that caches would keep.
async fn serve(path: web::Path<(String, String)>) -> HttpResponse {
    let (hash, name) = path.into_inner();
    let wanted = format!("/static/{hash}/{name}");
    match ASSETS.iter().find(|a| a.url == wanted) {
        Some(asset) => HttpResponse::Ok()
            .content_type(asset.content_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .body(asset.body),
        None => super::error::not_found_page().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_urls_carry_a_content_hash() {
        assert!(css_url().starts_with("/static/") && css_url().ends_with("/app.css"));
        assert!(js_url().ends_with("/app.js"));
        assert_eq!(css_url().len(), "/static/".len() + 12 + "/app.css".len());
    }

    /// The error colour marks errors and nothing else: every rule that uses it is a rule for an
    /// error (its selector says so).
    #[test]
    fn the_error_colour_is_for_errors_only() {
        for (file, css) in [
            ("app.css", include_str!("assets/app.css")),
            ("trace.css", include_str!("assets/trace.css")),
            ("prompts.css", include_str!("assets/prompts.css")),
            ("dashboards.css", include_str!("assets/dashboards.css")),
            ("datasets.css", include_str!("assets/datasets.css")),
        ] {
            for rule in css.split('}') {
                let Some((selector, body)) = rule.rsplit_once('{') else {
                    continue;
                };
                let selector = selector.rsplit("*/").next().unwrap_or(selector).trim();
                if body.contains("var(--error") {
                    assert!(
                        selector.contains("error"),
                        "{file}: `{selector}` uses the error colour"
                    );
                }
            }
        }
    }
}
