//! `GET /api/public/metrics` (v1) and `GET /api/public/v2/metrics`: figures of traces,
//! observations and scores by a `query` parameter holding Langfuse's JSON query (URL-encoded).
//!
//! The query is read and checked by `domain::metrics` (a refusal is a 400 naming the field) and
//! run by `storage::clickhouse::metrics`; the answer is `{"data": [row, ...]}`, each row with the
//! dimensions by name, `time_dimension`, and `<aggregation>_<measure>` per metric; v1's answer
//! also names the spec's `_deprecation` notice, null (only Langfuse Cloud fills it).

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
    let body = match version {
        // The spec's v1 answer names a nullable deprecation notice; Langfuse Cloud alone fills it.
        ApiVersion::V1 => json!({ "data": data, "_deprecation": null }),
        ApiVersion::V2 => json!({ "data": data }),
    };
    Ok(HttpResponse::Ok().json(body))
}

fn refused(error: QueryError) -> ApiError {
    ApiError::BadRequest(format!("Invalid query: {}", error.message))
}
