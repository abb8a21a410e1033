//! The read API of traces and observations, in the shapes of Langfuse's OpenAPI spec:
//! `GET /api/public/traces/{traceId}`, `GET /api/public/traces`,
//! `GET /api/public/observations/{observationId}`, `GET /api/public/observations`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::config::IngestionSettings;
use crate::http::auth::ProjectAuth;
use crate::http::error::ApiError;
use crate::http::resource;
use crate::ingest::event::{parse_time, EntityKind};
use crate::storage::clickhouse::entity_events;
use crate::storage::clickhouse::reads::{
    self, ObservationFilter, ObservationView, ScoreView, TraceFilter, TraceOrder, TraceView,
};
use crate::storage::queue::{self, EntityRef};
use crate::storage::Stores;

const MAX_LIMIT: u64 = 100;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/api/public/traces")
            .route(web::get().to(list_traces))
            .route(web::delete().to(delete_many)),
    )
    .service(
        resource("/api/public/traces/{trace_id}")
            .route(web::get().to(get_trace))
            .route(web::delete().to(delete_one)),
    )
    .service(resource("/api/public/observations").route(web::get().to(list_observations)))
    .service(
        resource("/api/public/observations/{observation_id}").route(web::get().to(get_observation)),
    );
}

pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Stored text back to JSON: what was JSON is returned as JSON, anything else as a string.
pub(crate) fn json_text(text: &Option<String>) -> Value {
    match text {
        None => Value::Null,
        Some(t) => serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.clone())),
    }
}

pub(crate) fn metadata(pairs: &[(String, String)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), json_text(&Some(v.clone()))))
            .collect::<Map<String, Value>>(),
    )
}

pub(crate) fn seconds_between(from: DateTime<Utc>, to: Option<DateTime<Utc>>) -> Value {
    match to {
        Some(to) => json!((to - from).num_milliseconds() as f64 / 1000.0),
        None => Value::Null,
    }
}

fn trace_json(t: &TraceView, project_id: &str) -> Map<String, Value> {
    let value = json!({
        "id": t.id,
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
        "environment": t.environment,
        "htmlPath": format!("/project/{project_id}/traces/{}", t.id),
        "createdAt": iso(t.created_at),
        "updatedAt": iso(t.updated_at),
    });
    match value {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

fn observation_json(o: &ObservationView) -> Value {
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

fn score_json(s: &ScoreView) -> Value {
    let mut value = json!({
        "id": s.id,
        "traceId": s.trace_id,
        "sessionId": s.session_id,
        "datasetRunId": s.dataset_run_id,
        "observationId": s.observation_id,
        "name": s.name,
        "source": s.source,
        "timestamp": iso(s.timestamp),
        "createdAt": iso(s.created_at),
        "updatedAt": iso(s.updated_at),
        "authorUserId": Value::Null,
        "comment": s.comment,
        "metadata": metadata(&s.metadata),
        "configId": s.config_id,
        "queueId": s.queue_id,
        "environment": s.environment,
        "dataType": s.data_type,
        "value": s.value,
    });
    if s.data_type != "NUMERIC" {
        value["stringValue"] = json!(s.string_value);
    }
    value
}

async fn get_trace(
    auth: ProjectAuth,
    path: web::Path<String>,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let trace_id = path.into_inner();
    let ch = &stores.clickhouse;
    let trace = reads::trace(ch, &auth.project_id, &trace_id)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "Trace {trace_id} not found within authorized project"
            ))
        })?;
    let (observations, scores) = futures::try_join!(
        reads::observations_of_trace(ch, &auth.project_id, &trace_id),
        reads::scores_of_trace(ch, &auth.project_id, &trace_id),
    )?;
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
    body.insert(
        "scores".into(),
        Value::Array(scores.iter().map(score_json).collect()),
    );
    Ok(HttpResponse::Ok().json(Value::Object(body)))
}

async fn get_observation(
    auth: ProjectAuth,
    path: web::Path<String>,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let observation = reads::observation(&stores.clickhouse, &auth.project_id, &id)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "Observation {id} not found within authorized project"
            ))
        })?;
    Ok(HttpResponse::Ok().json(observation_json(&observation)))
}

/// Query parameters as pairs: repeated keys (`tags=a&tags=b`) are kept.
pub(crate) fn query_pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .map_err(|e| ApiError::BadRequest(format!("Invalid query parameters: {e}")))
}

fn one(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

fn many(pairs: &[(String, String)], key: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split(',').map(str::to_string))
        .filter(|v| !v.is_empty())
        .collect()
}

fn time_param(pairs: &[(String, String)], key: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    one(pairs, key)
        .map(|v| {
            parse_time(&v).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "Invalid query parameters: {key} {v:?} is not an ISO 8601 date-time"
                ))
            })
        })
        .transpose()
}

fn paging(pairs: &[(String, String)]) -> Result<(u64, u64), ApiError> {
    let number = |key: &str, default: u64| -> Result<u64, ApiError> {
        match one(pairs, key) {
            None => Ok(default),
            Some(v) => v.parse::<u64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "Invalid query parameters: {key} must be a positive integer"
                ))
            }),
        }
    };
    let page = number("page", 1)?;
    let limit = number("limit", 50)?;
    if limit > MAX_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "Invalid query parameters: limit must be at most {MAX_LIMIT}"
        )));
    }
    Ok((page, limit))
}

fn meta(page: u64, limit: u64, total: u64) -> Value {
    json!({
        "page": page,
        "limit": limit,
        "totalItems": total,
        "totalPages": total.div_ceil(limit),
    })
}

async fn list_traces(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(&req)?;
    let (page, limit) = paging(&pairs)?;
    let order = match one(&pairs, "orderBy") {
        Some(v) => TraceOrder::parse(&v)
            .map_err(|e| ApiError::BadRequest(format!("Invalid query parameters: {e}")))?,
        None => TraceOrder::default(),
    };
    let filter = TraceFilter {
        user_id: one(&pairs, "userId"),
        name: one(&pairs, "name"),
        session_id: one(&pairs, "sessionId"),
        release: one(&pairs, "release"),
        version: one(&pairs, "version"),
        tags: many(&pairs, "tags"),
        environments: many(&pairs, "environment"),
        from_timestamp: time_param(&pairs, "fromTimestamp")?,
        to_timestamp: time_param(&pairs, "toTimestamp")?,
    };
    let (rows, total) = reads::traces(
        &stores.clickhouse,
        &auth.project_id,
        &filter,
        order,
        page,
        limit,
    )
    .await?;
    let ids: Vec<String> = rows.iter().map(|t| t.id.clone()).collect();
    let (summaries, scores) =
        reads::trace_summaries(&stores.clickhouse, &auth.project_id, &ids).await?;
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
    Ok(HttpResponse::Ok().json(json!({ "data": data, "meta": meta(page, limit, total) })))
}

async fn list_observations(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(&req)?;
    let (page, limit) = paging(&pairs)?;
    let filter = ObservationFilter {
        name: one(&pairs, "name"),
        observation_type: one(&pairs, "type"),
        trace_id: one(&pairs, "traceId"),
        level: one(&pairs, "level"),
        parent_observation_id: one(&pairs, "parentObservationId"),
        version: one(&pairs, "version"),
        environments: many(&pairs, "environment"),
        from_start_time: time_param(&pairs, "fromStartTime")?,
        to_start_time: time_param(&pairs, "toStartTime")?,
    };
    let (rows, total) =
        reads::observations(&stores.clickhouse, &auth.project_id, &filter, page, limit).await?;
    let data: Vec<Value> = rows.iter().map(observation_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data, "meta": meta(page, limit, total) })))
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
    if reads::trace(&stores.clickhouse, &auth.project_id, &trace_id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound(format!(
            "Trace {trace_id} not found within authorized project"
        )));
    }
    delete(&stores, &settings, &auth.project_id, &[trace_id]).await?;
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
    delete(&stores, &settings, &auth.project_id, &body.trace_ids).await?;
    Ok(HttpResponse::Ok().json(json!({ "message": "Traces deleted successfully" })))
}

/// Deletes traces with their observations and scores: rows and raw events.
///
/// A deletion record (`trace_deletions`) comes first: from then on, every worker that rebuilds the trace
/// or one of its children leaves out (and overwrites in blob storage) the events received up to
/// it, however late they reach it; so a child still in the queue cannot bring rows back. The
/// known entities are then queued for that rebuild, and the rows are deleted at once so that the
/// read API answers 404 right away.
async fn delete(
    stores: &Stores,
    settings: &IngestionSettings,
    project_id: &str,
    trace_ids: &[String],
) -> Result<(), ApiError> {
    let ch = &stores.clickhouse;
    entity_events::record_trace_deletions(ch, project_id, trace_ids, chrono::Utc::now()).await?;
    let (observations, scores) = reads::children_of_traces(ch, project_id, trace_ids).await?;
    let child = |kind, entity_id| EntityRef {
        project_id: project_id.to_string(),
        kind,
        entity_id,
    };
    let mut entities: Vec<EntityRef> = observations
        .into_iter()
        .map(|id| child(EntityKind::Observation, id))
        .chain(scores.into_iter().map(|id| child(EntityKind::Score, id)))
        .collect();
    entities.extend(trace_ids.iter().map(|id| EntityRef {
        project_id: project_id.to_string(),
        kind: EntityKind::Trace,
        entity_id: id.clone(),
    }));
    let messages = queue::rebuild_messages(&entities, settings.queue_shards);
    if let Err(err) = queue::enqueue(&stores.redis, &messages).await {
        tracing::error!(error = format!("{err:#}"), "cannot queue a deletion");
        return Err(ApiError::Unavailable(
            "The ingestion queue is unavailable; retry the request".to_string(),
        ));
    }
    reads::delete_traces(ch, project_id, trace_ids).await?;
    Ok(())
}

pub fn session_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/api/public/sessions").route(web::get().to(list_sessions)))
        .service(resource("/api/public/sessions/{session_id}").route(web::get().to(get_session)));
}

async fn list_sessions(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(&req)?;
    let (page, limit) = paging(&pairs)?;
    let (rows, total) = reads::sessions(
        &stores.clickhouse,
        &auth.project_id,
        time_param(&pairs, "fromTimestamp")?,
        time_param(&pairs, "toTimestamp")?,
        &many(&pairs, "environment"),
        page,
        limit,
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
    Ok(HttpResponse::Ok().json(json!({ "data": data, "meta": meta(page, limit, total) })))
}

async fn get_session(
    auth: ProjectAuth,
    path: web::Path<String>,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let session_id = path.into_inner();
    let traces =
        reads::traces_of_session(&stores.clickhouse, &auth.project_id, &session_id).await?;
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

pub fn score_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/api/public/v2/scores").route(web::get().to(list_scores)));
}

async fn list_scores(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(&req)?;
    let (page, limit) = paging(&pairs)?;
    let value = match (one(&pairs, "operator"), one(&pairs, "value")) {
        (None, None) => None,
        (Some(operator), Some(value)) => {
            let operator = match operator.as_str() {
                "<" => "<",
                ">" => ">",
                "<=" => "<=",
                ">=" => ">=",
                "=" => "=",
                "!=" | "<>" => "!=",
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "Invalid query parameters: operator {other:?} is not one of <, >, <=, >=, =, !="
                    )))
                }
            };
            let value = value.parse::<f64>().map_err(|_| {
                ApiError::BadRequest("Invalid query parameters: value must be a number".to_string())
            })?;
            Some((operator, value))
        }
        _ => {
            return Err(ApiError::BadRequest(
                "Invalid query parameters: operator and value go together".to_string(),
            ))
        }
    };
    let filter = reads::ScoreFilter {
        name: one(&pairs, "name"),
        source: one(&pairs, "source"),
        data_type: one(&pairs, "dataType"),
        config_id: one(&pairs, "configId"),
        queue_id: one(&pairs, "queueId"),
        trace_id: one(&pairs, "traceId"),
        observation_id: one(&pairs, "observationId"),
        session_id: one(&pairs, "sessionId"),
        dataset_run_id: one(&pairs, "datasetRunId"),
        score_ids: many(&pairs, "scoreIds"),
        environments: many(&pairs, "environment"),
        from_timestamp: time_param(&pairs, "fromTimestamp")?,
        to_timestamp: time_param(&pairs, "toTimestamp")?,
        value,
        trace_user_id: one(&pairs, "userId"),
        trace_tags: many(&pairs, "traceTags"),
    };
    let (rows, total) =
        reads::scores(&stores.clickhouse, &auth.project_id, &filter, page, limit).await?;
    let trace_ids: Vec<String> = rows.iter().filter_map(|s| s.trace_id.clone()).collect();
    let traces = reads::traces_by_ids(&stores.clickhouse, &auth.project_id, &trace_ids).await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|s| {
            let mut score = score_json(s);
            let trace = s
                .trace_id
                .as_ref()
                .and_then(|id| traces.iter().find(|t| &t.id == id));
            score["trace"] = match trace {
                Some(t) => json!({
                    "userId": t.user_id,
                    "tags": t.tags,
                    "environment": t.environment,
                    "sessionId": t.session_id,
                }),
                None => Value::Null,
            };
            score
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data, "meta": meta(page, limit, total) })))
}
