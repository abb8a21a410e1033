//! Langfuse's public API, `/api/public/...`, one module per area, in the shapes of Langfuse's
//! OpenAPI spec (`../shared/reference/langfuse-openapi.yml` is the contract).
//!
//! - `projects`: the key's project (the SDKs' credential check).
//! - `ingestion`: the batch API; `otel`: OTLP/HTTP traces. Both take `crate::write_path`.
//! - `traces`: reading and deleting traces; `sessions`; `observations` (`v1`, `v2`);
//!   `scores` (`create` for direct writes, `v2` and `v3` lists side by side); `prompts`;
//!   `models` (model definitions and prices, the project's and the shipped ones);
//!   `score_configs` (score configs: create, list, read, update and archive); `metrics` (the
//!   Metrics API, v1 and v2); `datasets` (datasets, their items and runs, and run items);
//!   `media` (upload and download URLs of media, and on the local blob backend the uploads and
//!   downloads themselves);
//!   `experiments` (experiments and their items, as their runs' spans recorded them).
//! - Health and readiness come from `crate::health`, which the worker's probe server shares.
//! - `params`: one reader of query parameters, paging, cursors and times for every list;
//!   `list_conditions`: the parameters of the filtered lists as conditions of the filter language; `json`:
//!   stored values back to the JSON the API answers; `body`: request bodies read within a limit.

pub mod body;
pub mod datasets;
pub mod experiments;
pub mod ingestion;
pub mod json;
pub mod list_conditions;
pub mod media;
pub mod metrics;
pub mod models;
pub mod observations;
pub mod otel;
pub mod params;
pub mod projects;
pub mod prompts;
pub mod score_configs;
pub mod scores;
pub mod sessions;
pub mod traces;

use actix_web::web;

use super::error;

/// Mounts the whole public API as one scope, with its CORS, JSON errors and default 404.
pub fn mount(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/public")
            .app_data(error::json_config())
            .app_data(error::query_config())
            .wrap(cors())
            .configure(crate::health::routes)
            .configure(projects::routes)
            .configure(ingestion::routes)
            .configure(otel::routes)
            .configure(traces::routes)
            .configure(sessions::routes)
            .configure(observations::routes)
            .configure(scores::routes)
            .configure(prompts::routes)
            .configure(models::routes)
            .configure(score_configs::routes)
            .configure(metrics::routes)
            .configure(datasets::routes)
            .configure(media::routes)
            .configure(experiments::routes)
            .default_service(web::to(error::not_found)),
    );
}

/// Cross-origin requests are allowed from any origin, as Langfuse allows them: browser SDKs send
/// events and scores with a public key, and the preflight must not need the keys. The request's
/// origin is echoed (not `*`) and credentials are not allowed.
fn cors() -> actix_cors::Cors {
    actix_cors::Cors::default()
        .allow_any_origin()
        .allow_any_method()
        .allow_any_header()
}

/// A path of the API, relative to `/api/public`: the methods it is given answer, any other
/// method gets 405 (as Langfuse answers), not the 404 of an unknown path.
pub(crate) fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(error::method_not_allowed))
}
