//! Sessions: `GET /api/public/sessions` (page-numbered) and `GET /api/public/sessions/{id}`
//! (with its traces). A session is the traces that share a `sessionId`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::params::{page_meta, Query};
use super::resource;
use super::traces::trace_json;
use crate::domain::time::iso;
use crate::http::auth::ProjectAuth;
use crate::http::error::ApiError;
use crate::storage::clickhouse::{sessions, traces};
use crate::storage::Stores;

const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 100;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/sessions").route(web::get().to(list_sessions)))
        .service(resource("/sessions/{session_id}").route(web::get().to(get_session)));
}

async fn list_sessions(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::of(&req)?;
    let page = query.page(DEFAULT_LIMIT, MAX_LIMIT)?;
    let (rows, total) = sessions::list(
        &stores.clickhouse,
        &auth.project_id,
        query.time("fromTimestamp")?,
        query.time("toTimestamp")?,
        &query.values("environment"),
        page.page,
        page.limit,
    )
    .await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "createdAt": iso(s.created_at),
                "projectId": auth.project_id,
                "environment": s.environment,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data, "meta": page_meta(page, total) })))
}

async fn get_session(
    auth: ProjectAuth,
    path: web::Path<String>,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let session_id = path.into_inner();
    let traces = traces::of_session(&stores.clickhouse, &auth.project_id, &session_id).await?;
    let first = traces.first().ok_or_else(|| {
        ApiError::NotFound(format!(
            "Session {session_id} not found within authorized project"
        ))
    })?;
    Ok(HttpResponse::Ok().json(json!({
        "id": session_id,
        "createdAt": iso(first.timestamp),
        "projectId": auth.project_id,
        "environment": first.environment,
        "traces": traces
            .iter()
            .map(|t| Value::Object(trace_json(t, &auth.project_id)))
            .collect::<Vec<_>>(),
    })))
}
