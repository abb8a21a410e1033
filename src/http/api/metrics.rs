//! `GET /api/public/metrics` (v1) and `GET /api/public/v2/metrics`: figures of traces,
//! observations and scores by a `query` parameter holding Langfuse's JSON query (URL-encoded).
//!
//! The query is read and checked by `domain::metrics` (a refusal is a 400 naming the field) and
//! run by `storage::clickhouse::metrics`; the answer is `{"data": [row, ...]}`, each row with the
//! dimensions by name, `time_dimension`, and `<aggregation>_<measure>` per metric. v1's answer
//! carries no `_deprecation` notice (the spec's field is nullable and only Langfuse Cloud sets it).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use crate::domain::metrics::{self, ApiVersion, QueryError};
use crate::http::api::params::Query;
use crate::http::api::resource;
use crate::http::auth::ProjectAuth;
use crate::http::error::ApiError;
use crate::storage::clickhouse::metrics as store;
use crate::storage::Stores;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/metrics").route(web::get().to(v1)))
        .service(resource("/v2/metrics").route(web::get().to(v2)));
}

async fn v1(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    answer(auth, req, stores, ApiVersion::V1).await
}

async fn v2(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    answer(auth, req, stores, ApiVersion::V2).await
}

async fn answer(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
    version: ApiVersion,
) -> Result<HttpResponse, ApiError> {
    let params = Query::of(&req)?;
    let text = params
        .single("query")?
        .ok_or_else(|| refused(QueryError::new("query: Required")))?;
    let query = metrics::parse(text, version).map_err(refused)?;
    let rows = store::run_as(&stores.clickhouse, &auth.project_id, &query, version)
        .await
        .map_err(|error| match error.downcast::<QueryError>() {
            Ok(refusal) => refused(refusal),
            Err(other) => ApiError::Internal(other),
        })?;
    let data: Vec<Value> = rows.into_iter().map(Value::Object).collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data })))
}

fn refused(error: QueryError) -> ApiError {
    ApiError::BadRequest(format!("Invalid query: {}", error.message))
}
