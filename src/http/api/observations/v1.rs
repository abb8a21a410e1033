//! `GET /api/public/observations/{observationId}` and `GET /api/public/observations`, in the
//! shapes of Langfuse's v1 API: every field, page-numbered lists.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use crate::domain::time::iso;
use crate::http::api::json::{json_text, metadata, seconds_between};
use crate::http::api::params::{page_meta, Query};
use crate::http::api::resource;
use crate::http::auth::ProjectAuth;
use crate::http::error::ApiError;
use crate::storage::clickhouse::observations::{self, ObservationFilter, ObservationView};
use crate::storage::Stores;

const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 100;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/observations").route(web::get().to(list_observations)))
        .service(resource("/observations/{observation_id}").route(web::get().to(get_observation)));
}

/// An observation in the v1 shape, as the v1 list and a trace's `observations` show it.
pub(crate) fn observation_json(o: &ObservationView) -> Value {
    let usage = |key: &str| {
        o.usage_details
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .unwrap_or(0)
    };
    let cost = |key: &str| {
        o.cost_details
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
    };
    let usage_details: Map<String, Value> = o
        .usage_details
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let cost_details: Map<String, Value> = o
        .cost_details
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({
        "id": o.id,
        "traceId": o.trace_id,
        "type": o.observation_type,
        "name": if o.name.is_empty() { Value::Null } else { json!(o.name) },
        "startTime": iso(o.start_time),
        "endTime": o.end_time.map(iso),
        "completionStartTime": o.completion_start_time.map(iso),
        "model": o.model,
        "modelParameters": json_text(&o.model_parameters),
        "input": json_text(&o.input),
        "output": json_text(&o.output),
        "version": o.version,
        "metadata": metadata(&o.metadata),
        "usage": {
            "input": usage("input"),
            "output": usage("output"),
            "total": usage("total"),
            "unit": "TOKENS",
            "inputCost": cost("input"),
            "outputCost": cost("output"),
            "totalCost": cost("total"),
        },
        "level": o.level,
        "statusMessage": o.status_message,
        "parentObservationId": o.parent_observation_id,
        "promptId": Value::Null,
        "promptName": o.prompt_name,
        "promptVersion": o.prompt_version,
        "usageDetails": usage_details,
        "costDetails": cost_details,
        "environment": o.environment,
        "modelId": Value::Null,
        "inputPrice": Value::Null,
        "outputPrice": Value::Null,
        "totalPrice": Value::Null,
        "calculatedInputCost": cost("input"),
        "calculatedOutputCost": cost("output"),
        "calculatedTotalCost": o.total_cost,
        "latency": seconds_between(o.start_time, o.end_time),
        "timeToFirstToken": seconds_between(o.start_time, o.completion_start_time),
    })
}

async fn get_observation(
    auth: ProjectAuth,
    path: web::Path<String>,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let observation = observations::get(&stores.clickhouse, &auth.project_id, &id)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "Observation {id} not found within authorized project"
            ))
        })?;
    Ok(HttpResponse::Ok().json(observation_json(&observation)))
}

async fn list_observations(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::of(&req)?;
    let page = query.page(DEFAULT_LIMIT, MAX_LIMIT)?;
    let filter = ObservationFilter {
        name: query.text("name")?,
        observation_type: query.text("type")?,
        trace_id: query.text("traceId")?,
        level: query.text("level")?,
        parent_observation_id: query.text("parentObservationId")?,
        version: query.text("version")?,
        environments: query.values("environment"),
        from_start_time: query.time("fromStartTime")?,
        to_start_time: query.time("toStartTime")?,
    };
    let (rows, total) = observations::list(
        &stores.clickhouse,
        &auth.project_id,
        &filter,
        page.page,
        page.limit,
    )
    .await?;
    let data: Vec<Value> = rows.iter().map(observation_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data, "meta": page_meta(page, total) })))
}
