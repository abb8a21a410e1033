//! `GET /api/public/v2/scores`: page-numbered scores, each with what its trace says of its user,
//! tags, environment and session; `GET /api/public/v2/scores/{scoreId}`: one score; and the v1
//! score shape a trace's `scores` shows too.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use crate::domain::project::ProjectId;
use crate::domain::time::iso;
use crate::http::api::json::metadata;
use crate::http::api::params::{bad, page_meta, Query};
use crate::http::api::resource;
use crate::http::auth::ProjectAuth;
use crate::http::error::ApiError;
use crate::storage::clickhouse::scores::{self, ScoreFilter, ScoreView};
use crate::storage::Stores;

const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 100;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/v2/scores").route(web::get().to(list_scores)))
        .service(resource("/v2/scores/{score_id}").route(web::get().to(get_score)));
}

/// A score as Langfuse's v1 and v2 APIs show it: every field, `stringValue` null on a numeric
/// score, and no `value` on a text score (Langfuse leaves it out: it is always 0 there).
pub(crate) fn score_json(s: &ScoreView, project: &ProjectId) -> Value {
    let mut value = json!({
        "id": s.id,
        "projectId": project,
        "traceId": s.trace_id,
        "sessionId": s.session_id,
        "datasetRunId": s.dataset_run_id,
        "observationId": s.observation_id,
        "name": s.name,
        "source": s.source,
        "timestamp": iso(s.timestamp),
        "createdAt": iso(s.created_at),
        "updatedAt": iso(s.updated_at),
        "authorUserId": s.author_user_id,
        "comment": s.comment,
        "metadata": metadata(&s.metadata),
        "configId": s.config_id,
        "queueId": s.queue_id,
        // The trace of the evaluation that made the score: evaluations do not run here.
        "executionTraceId": Value::Null,
        "environment": s.environment,
        "dataType": s.data_type,
        "value": s.value,
        "stringValue": if s.data_type == "NUMERIC" { Value::Null } else { json!(s.string_value) },
    });
    if s.data_type == "TEXT" {
        if let Some(fields) = value.as_object_mut() {
            fields.remove("value");
        }
    }
    value
}

async fn get_score(
    auth: ProjectAuth,
    path: web::Path<String>,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let score_id = path.into_inner();
    let score = scores::get(&stores.clickhouse, &auth.project_id, &score_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Score not found".to_string()))?;
    Ok(HttpResponse::Ok().json(score_json(&score, &auth.project_id)))
}

async fn list_scores(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::of(&req)?;
    let page = query.page(DEFAULT_LIMIT, MAX_LIMIT)?;
    let value = match (query.single("operator")?, query.single("value")?) {
        (None, None) => None,
        (Some(operator), Some(value)) => {
            let operator = match operator {
                "<" => "<",
                ">" => ">",
                "<=" => "<=",
                ">=" => ">=",
                "=" => "=",
                "!=" | "<>" => "!=",
                other => {
                    return Err(bad(format!(
                        "operator {other:?} is not one of <, >, <=, >=, =, !="
                    )))
                }
            };
            let value = value
                .parse::<f64>()
                .map_err(|_| bad("value must be a number"))?;
            Some((operator, value))
        }
        _ => return Err(bad("operator and value go together")),
    };
    let filter = ScoreFilter {
        name: query.text("name")?,
        source: query.text("source")?,
        data_type: query.text("dataType")?,
        config_id: query.text("configId")?,
        queue_id: query.text("queueId")?,
        trace_id: query.text("traceId")?,
        observation_id: query.text("observationId")?,
        session_id: query.text("sessionId")?,
        dataset_run_id: query.text("datasetRunId")?,
        score_ids: query.values("scoreIds"),
        environments: query.values("environment"),
        from_timestamp: query.time("fromTimestamp")?,
        to_timestamp: query.time("toTimestamp")?,
        value,
        trace_user_id: query.text("userId")?,
        trace_tags: query.values("traceTags"),
    };
    let (rows, total) = scores::list_with_traces(
        &stores.clickhouse,
        &auth.project_id,
        &filter,
        page.page,
        page.limit,
    )
    .await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|(score, trace)| {
            let mut value = score_json(score, &auth.project_id);
            value["trace"] = match trace {
                Some(t) => json!({
                    "userId": t.user_id,
                    "tags": t.tags,
                    "environment": t.environment,
                    "sessionId": t.session_id,
                }),
                None => Value::Null,
            };
            value
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data, "meta": page_meta(page, total) })))
}
