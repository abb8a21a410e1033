//! Model definitions: `GET /api/public/models` (page-numbered), `POST /api/public/models`,
//! `GET` and `DELETE /api/public/models/{id}`. A project sees its own models and the shipped
//! ones (`isLangfuseManaged`); it creates and deletes only its own: deleting a shipped model is
//! the 404 Langfuse answers, which says to override it with a model of the same name instead.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::json::number;
use super::params::{page_meta, Query};
use super::resource;
use crate::domain::model::{ModelDefinition, NewModel, PricingTier, Unit};
use crate::domain::time::iso;
use crate::http::auth::ProjectAuth;
use crate::http::error::ApiError;
use crate::storage::models::{self, CreateError};
use crate::storage::Stores;

const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 100;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/models")
            .route(web::get().to(list_models))
            .route(web::post().to(create_model)),
    )
    .service(
        resource("/models/{id}")
            .route(web::get().to(get_model))
            .route(web::delete().to(delete_model)),
    );
}

async fn list_models(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::of(&req)?.empty_as_absent();
    let page = query.page(DEFAULT_LIMIT, MAX_LIMIT)?;
    let (rows, total) = models::list(
        &stores.postgres,
        &auth.project_id,
        page.offset(),
        page.limit,
    )
    .await?;
    let data: Vec<Value> = rows.iter().map(model_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data, "meta": page_meta(page, total) })))
}

async fn get_model(
    auth: ProjectAuth,
    path: web::Path<String>,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let model = models::get(&stores.postgres, &auth.project_id, &path.into_inner())
        .await?
        .ok_or_else(|| ApiError::NotFound("No model with this id found.".to_string()))?;
    Ok(HttpResponse::Ok().json(model_json(&model)))
}

async fn create_model(
    auth: ProjectAuth,
    body: web::Json<Value>,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let new = NewModel::from_request(&body).map_err(|e| {
        ApiError::BadRequest(format!("Invalid request data (CreateModelRequest): {e}"))
    })?;
    let model = models::create(&stores.postgres, &auth.project_id, &new)
        .await
        .map_err(|e| match e {
            CreateError::NameTaken(_) => ApiError::BadRequest(e.to_string()),
            CreateError::Other(cause) => ApiError::Internal(cause),
        })?;
    Ok(HttpResponse::Ok().json(model_json(&model)))
}

async fn delete_model(
    auth: ProjectAuth,
    path: web::Path<String>,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    if !models::delete(&stores.postgres, &auth.project_id, &path.into_inner()).await? {
        return Err(ApiError::NotFound(
            "No model with this id found. Note: You cannot delete built-in models, override them \
             with a model with the same name."
                .to_string(),
        ));
    }
    Ok(HttpResponse::Ok().json(json!({ "message": "Model successfully deleted" })))
}

/// A model as the API answers it (`Model`): every field present, `null` or empty when unset.
/// The deprecated flat fields come from the default tier, as in Langfuse.
pub fn model_json(m: &ModelDefinition) -> Value {
    let default_prices = m.default_tier().map(|t| &t.prices);
    let flat = |usage_type: &str| {
        default_prices
            .and_then(|p| p.get(usage_type))
            .map(|p| number(p.to_f64()))
            .unwrap_or(Value::Null)
    };
    let prices: Map<String, Value> = default_prices
        .into_iter()
        .flatten()
        .map(|(k, p)| (k.clone(), json!({ "price": number(p.to_f64()) })))
        .collect();
    json!({
        "id": m.id,
        "modelName": m.model_name,
        "matchPattern": m.match_pattern,
        "startDate": m.start_date.map(iso),
        "unit": m.unit.map(Unit::as_str),
        "inputPrice": flat("input"),
        "outputPrice": flat("output"),
        "totalPrice": flat("total"),
        "tokenizerId": m.tokenizer_id,
        "tokenizerConfig": m.tokenizer_config,
        "isLangfuseManaged": m.project_id.is_none(),
        "createdAt": iso(m.created_at),
        "prices": prices,
        "pricingTiers": m.tiers.iter().map(tier_json).collect::<Vec<_>>(),
    })
}

fn tier_json(t: &PricingTier) -> Value {
    let prices: Map<String, Value> = t
        .prices
        .iter()
        .map(|(k, p)| (k.clone(), number(p.to_f64())))
        .collect();
    let conditions: Vec<Value> = t
        .conditions
        .iter()
        .map(|c| {
            let mut c = serde_json::to_value(c).unwrap_or(Value::Null);
            if let Some(v) = c.get("value").and_then(Value::as_f64) {
                c["value"] = number(v);
            }
            c
        })
        .collect();
    json!({
        "id": t.id,
        "name": t.name,
        "isDefault": t.is_default,
        "priority": t.priority,
        "conditions": conditions,
        "prices": prices,
    })
}
