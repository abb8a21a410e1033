//! Score configs: `GET` (page-numbered) and `POST /api/public/score-configs`, `GET` and `PATCH
//! /api/public/score-configs/{configId}`, in the shapes of `ScoreConfig` and `ScoreConfigs`.
//! Configs are archived (`isArchived`), never deleted. The rules of a config are
//! `domain::score_config`'s; a refusal is a 400 whose message names the field. A write tells
//! every process's `ConfigCache` (which ingestion checks scores against) before it answers.

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::json::number;
use super::params::{page_meta, Query};
use super::resource;
use crate::domain::score_config::ConfigFields;
use crate::domain::time::iso;
use crate::http::auth::ProjectAuth;
use crate::http::error::ApiError;
use crate::storage::score_configs::{self, ConfigCache, ScoreConfig};
use crate::storage::Stores;

const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 100;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/score-configs")
            .route(web::get().to(list_configs))
            .route(web::post().to(create_config)),
    )
    .service(
        resource("/score-configs/{configId}")
            .route(web::get().to(get_config))
            .route(web::patch().to(update_config)),
    );
}

fn not_found() -> ApiError {
    ApiError::NotFound("Score config not found".to_string())
}

async fn list_configs(
    auth: ProjectAuth,
    req: actix_web::HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::of(&req)?.empty_as_absent();
    let page = query.page(DEFAULT_LIMIT, MAX_LIMIT)?;
    let (rows, total) = score_configs::list(
        &stores.postgres,
        &auth.project_id,
        page.offset(),
        page.limit,
    )
    .await?;
    let data: Vec<Value> = rows.iter().map(config_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data, "meta": page_meta(page, total) })))
}

async fn get_config(
    auth: ProjectAuth,
    path: web::Path<String>,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let config = score_configs::get(&stores.postgres, &auth.project_id, &path.into_inner())
        .await?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(config_json(&config)))
}

async fn create_config(
    auth: ProjectAuth,
    body: web::Json<Value>,
    stores: web::Data<Stores>,
    cache: web::Data<ConfigCache>,
) -> Result<HttpResponse, ApiError> {
    let fields = ConfigFields::from_create(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "Invalid request data (CreateScoreConfigRequest): {e}"
        ))
    })?;
    let config = score_configs::create(&stores.postgres, &auth.project_id, &fields).await?;
    cache.changed(&stores.redis, &auth.project_id).await;
    Ok(HttpResponse::Ok().json(config_json(&config)))
}

async fn update_config(
    auth: ProjectAuth,
    path: web::Path<String>,
    body: web::Json<Value>,
    stores: web::Data<Stores>,
    cache: web::Data<ConfigCache>,
) -> Result<HttpResponse, ApiError> {
    let outcome = score_configs::update(
        &stores.postgres,
        &auth.project_id,
        &path.into_inner(),
        |current| current.updated(&body),
    )
    .await?
    .ok_or_else(not_found)?;
    let config = outcome.map_err(|e| {
        ApiError::BadRequest(format!(
            "Invalid request data (UpdateScoreConfigRequest): {e}"
        ))
    })?;
    cache.changed(&stores.redis, &auth.project_id).await;
    Ok(HttpResponse::Ok().json(config_json(&config)))
}

/// A config as the API answers it (`ScoreConfig`): every field present, `null` when unset.
pub fn config_json(c: &ScoreConfig) -> Value {
    let f = &c.fields;
    let categories = f.categories.as_ref().map(|cs| {
        cs.iter()
            .map(|c| json!({ "label": c.label, "value": number(c.value) }))
            .collect::<Vec<_>>()
    });
    json!({
        "id": c.id,
        "name": f.name,
        "createdAt": iso(c.created_at),
        "updatedAt": iso(c.updated_at),
        "projectId": c.project_id,
        "dataType": f.data_type.as_str(),
        "isArchived": f.is_archived,
        "minValue": f.min_value.map(number),
        "maxValue": f.max_value.map(number),
        "categories": categories,
        "description": f.description,
    })
}
