//! `DELETE /api/public/scores/{scoreId}`: deletes one score of the key's project, through
//! `crate::write_path::delete_score`, so that it stays deleted whatever of it is still in flight.
//!
//! Answered 204 without a body, as the spec says; an unknown score, or another project's, is 404.
//! (Langfuse queues the deletion and answers 202 whether or not the score exists; the SDKs accept
//! any 2xx.)

use actix_web::{web, HttpResponse};

use crate::config::IngestionSettings;
use crate::http::api::resource;
use crate::http::auth::ProjectAuth;
use crate::http::error::ApiError;
use crate::storage::clickhouse::scores;
use crate::storage::Stores;
use crate::write_path;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/scores/{score_id}").route(web::delete().to(delete_score)));
}

async fn delete_score(
    auth: ProjectAuth,
    path: web::Path<String>,
    stores: web::Data<Stores>,
    settings: web::Data<IngestionSettings>,
) -> Result<HttpResponse, ApiError> {
    let score_id = path.into_inner();
    if scores::get(&stores.clickhouse, &auth.project_id, &score_id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound("Score not found".to_string()));
    }
    write_path::delete_score(&stores, settings.queue_shards, &auth.project_id, &score_id).await?;
    Ok(HttpResponse::NoContent().finish())
}
