//! Traces: `GET /api/public/traces/{traceId}` (with its observations and scores),
//! `GET /api/public/traces` (page-numbered, filtered), and `DELETE /api/public/traces[/{traceId}]`
//! (the trace with everything under it, through `crate::write_path::delete_traces`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::json::{json_text, metadata};
use super::observations::v1::observation_json;
use super::params::{bad, page_meta, Query};
use super::resource;
use super::scores::v2::score_json;
use crate::config::IngestionSettings;
use crate::domain::project::ProjectId;
use crate::domain::time::iso;
use crate::http::auth::ProjectAuth;
use crate::http::error::ApiError;
use crate::storage::clickhouse::traces::{self, TraceFilter, TraceOrder, TraceView};
use crate::storage::whole_trace::{self, WholeTrace};
use crate::storage::Stores;
use crate::write_path;

const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 100;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/traces")
            .route(web::get().to(list_traces))
            .route(web::delete().to(delete_many)),
    )
    .service(
        resource("/traces/{trace_id}")
            .route(web::get().to(get_trace))
            .route(web::delete().to(delete_one)),
    );
}

/// A trace's own fields, without what is computed from its observations and scores.
pub(super) fn trace_json(t: &TraceView, project: &ProjectId) -> Map<String, Value> {
    let value = json!({
        "id": t.id,
        "projectId": project,
        "timestamp": iso(t.timestamp),
        "name": if t.name.is_empty() { Value::Null } else { json!(t.name) },
        "input": json_text(&t.input),
        "output": json_text(&t.output),
        "sessionId": t.session_id,
        "release": t.release,
        "version": t.version,
        "userId": t.user_id,
        "metadata": metadata(&t.metadata),
        "tags": t.tags,
        "public": t.public,
        "bookmarked": t.bookmarked,
        // Langfuse answers it on every trace, always null.
        "externalId": Value::Null,
        "environment": t.environment,
        "htmlPath": format!("/project/{project}/traces/{}", t.id),
        "createdAt": iso(t.created_at),
        "updatedAt": iso(t.updated_at),
    });
    match value {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

async fn get_trace(
    auth: ProjectAuth,
    path: web::Path<String>,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let trace_id = path.into_inner();
    let WholeTrace {
        trace,
        observations,
        scores,
    } = whole_trace::read(&stores, &auth.project_id, &trace_id)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "Trace {trace_id} not found within authorized project"
            ))
        })?;
    let mut body = trace_json(&trace, &auth.project_id);
    let total_cost: f64 = observations.iter().filter_map(|o| o.total_cost).sum();
    let latency = observations
        .iter()
        .map(|o| o.start_time)
        .min()
        .zip(
            observations
                .iter()
                .map(|o| o.end_time.unwrap_or(o.start_time))
                .max(),
        )
        .map(|(start, end)| (end - start).num_milliseconds() as f64 / 1000.0);
    body.insert("latency".into(), json!(latency.unwrap_or(0.0)));
    body.insert("totalCost".into(), json!(total_cost));
    body.insert(
        "observations".into(),
        Value::Array(observations.iter().map(observation_json).collect()),
    );
    // The v1 score shape has no correction scores: Langfuse leaves them out of a trace.
    let scores = scores
        .iter()
        .filter(|s| s.data_type != "CORRECTION")
        .map(|s| score_json(s, &auth.project_id));
    body.insert("scores".into(), Value::Array(scores.collect()));
    Ok(HttpResponse::Ok().json(Value::Object(body)))
}

async fn list_traces(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::of(&req)?;
    let page = query.page(DEFAULT_LIMIT, MAX_LIMIT)?;
    let order = match query.single("orderBy")? {
        Some(v) => TraceOrder::parse(v).map_err(bad)?,
        None => TraceOrder::default(),
    };
    let filter = TraceFilter {
        user_id: query.text("userId")?,
        name: query.text("name")?,
        session_id: query.text("sessionId")?,
        release: query.text("release")?,
        version: query.text("version")?,
        tags: query.values("tags"),
        environments: query.values("environment"),
        from_timestamp: query.time("fromTimestamp")?,
        to_timestamp: query.time("toTimestamp")?,
    };
    let (rows, total) = traces::list(
        &stores.clickhouse,
        &auth.project_id,
        &filter,
        order,
        page.page,
        page.limit,
    )
    .await?;
    let ids: Vec<String> = rows.iter().map(|t| t.id.clone()).collect();
    let (summaries, scores) = traces::summaries(&stores.clickhouse, &auth.project_id, &ids).await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|t| {
            let mut trace = trace_json(t, &auth.project_id);
            let summary = summaries.iter().find(|s| s.trace_id == t.id);
            trace.insert(
                "observations".into(),
                json!(summary
                    .map(|s| s.observation_ids.clone())
                    .unwrap_or_default()),
            );
            trace.insert(
                "latency".into(),
                json!(summary.map(|s| s.latency_ms as f64 / 1000.0).unwrap_or(0.0)),
            );
            trace.insert(
                "totalCost".into(),
                json!(summary.map(|s| s.total_cost).unwrap_or(0.0)),
            );
            let score_ids = scores
                .iter()
                .find(|s| s.trace_id == t.id)
                .map(|s| s.score_ids.clone())
                .unwrap_or_default();
            trace.insert("scores".into(), json!(score_ids));
            Value::Object(trace)
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data, "meta": page_meta(page, total) })))
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteTraces {
    trace_ids: Vec<String>,
}

async fn delete_one(
    auth: ProjectAuth,
    path: web::Path<String>,
    stores: web::Data<Stores>,
    settings: web::Data<IngestionSettings>,
) -> Result<HttpResponse, ApiError> {
    let trace_id = path.into_inner();
    if traces::get(&stores.clickhouse, &auth.project_id, &trace_id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound(format!(
            "Trace {trace_id} not found within authorized project"
        )));
    }
    write_path::delete_traces(
        &stores,
        settings.queue_shards,
        &auth.project_id,
        &[trace_id],
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "message": "Trace deleted successfully" })))
}

async fn delete_many(
    auth: ProjectAuth,
    body: web::Json<DeleteTraces>,
    stores: web::Data<Stores>,
    settings: web::Data<IngestionSettings>,
) -> Result<HttpResponse, ApiError> {
    if body.trace_ids.is_empty() {
        return Err(ApiError::BadRequest(
            "Invalid request body: traceIds must not be empty".to_string(),
        ));
    }
    write_path::delete_traces(
        &stores,
        settings.queue_shards,
        &auth.project_id,
        &body.trace_ids,
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "message": "Traces deleted successfully" })))
}
