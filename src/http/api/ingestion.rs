//! `POST /api/public/ingestion`: Langfuse's batch API.
//!
//! Admitted, read within `ingestion.max_body_bytes` (as sent and inflated), prepared on the
//! blocking pool and persisted by `crate::write_path`: the 207 answer, one entry per envelope, is
//! sent only once the accepted events are durable. A caller that shows only its public key (a
//! browser) may send scores: its other events are refused one by one in the 207, as Langfuse does.
//! A score that names a config is checked against it (`write_path::prepare_checked`): a refused
//! one is a 400 among the 207's errors and is not stored.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::body::{header_text, read_limited};
use super::resource;
use crate::config::IngestionSettings;
use crate::http::auth::IngestionAuth;
use crate::http::error::ApiError;
use crate::storage::score_configs::ConfigCache;
use crate::storage::Stores;
use crate::write_path::{self, Admission, EventScope};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/ingestion").route(web::post().to(ingest)));
}

async fn ingest(
    auth: IngestionAuth,
    req: HttpRequest,
    payload: web::Payload,
    stores: web::Data<Stores>,
    settings: web::Data<IngestionSettings>,
    admission: web::Data<Admission>,
    configs: web::Data<ConfigCache>,
) -> Result<HttpResponse, ApiError> {
    let admitted = admission
        .admit(&header_text(&req, header::CONTENT_ENCODING))
        .await?;
    let limit = settings.max_body_bytes;
    let body = read_limited(&req, payload, limit).await?;
    let scope = match auth {
        IngestionAuth::KeyPair(_) => EventScope::All,
        IngestionAuth::PublicKeyOnly(_) => EventScope::ScoresOnly,
    };
    let (project, gzip) = (auth.project_id().clone(), admitted.gzip);
    let prepared = write_path::prepare_checked(&configs, auth.project_id(), move |c| {
        write_path::prepare_batch_body(&project, scope, &body, gzip, limit, c)
    })
    .await?;
    let outcome = write_path::persist(&stores, &settings, auth.project_id(), prepared).await?;
    Ok(HttpResponse::MultiStatus().json(outcome))
}
