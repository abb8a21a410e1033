//! Traces: `GET /api/public/traces/{traceId}` (with its observations and scores),
//! `GET /api/public/traces` (page-numbered, filtered by the query parameters and the structured
//! `filter` on the traces view of the filter language, with Langfuse's `fields` groups), and `DELETE /api/public/traces[/{traceId}]`
//! (the trace with everything under it, through `crate::write_path::delete_traces`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::json::{json_text, metadata};
use super::list_conditions::ListConditions;
use super::observations::v1::{observation_json, prices_of};
use super::params::{bad, page_meta, Page, Query};
use super::resource;
use super::scores::v2::score_json;
use crate::config::IngestionSettings;
use crate::domain::project::ProjectId;
use crate::domain::time::iso;
use crate::http::auth::ProjectAuth;
use crate::http::error::ApiError;
use crate::storage::clickhouse::filter::{self, traces as columns, Condition};
use crate::storage::clickhouse::traces::{self, TraceOrder, TraceView};
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
    let model_ids = observations.iter().map(|o| o.internal_model_id.as_deref());
    let prices = prices_of(&stores, &auth.project_id, model_ids).await?;
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
        Value::Array(
            observations
                .iter()
                .map(|o| observation_json(o, &prices, json!(0)))
                .collect(),
        ),
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
    let request = parse_list_request(&Query::of(&req)?)?;
    let (page, fields) = (request.page, request.fields);
    let ch = &stores.clickhouse;
    let (rows, total) = traces::list(
        ch,
        &auth.project_id,
        &request.conditions,
        request.order,
        fields.io,
        page.page,
        page.limit,
    )
    .await?;
    let ids: Vec<String> = rows.iter().map(|t| t.id.clone()).collect();
    let (summaries, scores) = futures::try_join!(
        async {
            if fields.observations || fields.metrics {
                traces::summaries(ch, &auth.project_id, &ids).await
            } else {
                Ok(Vec::new())
            }
        },
        async {
            if fields.scores {
                traces::score_ids(ch, &auth.project_id, &ids).await
            } else {
                Ok(Vec::new())
            }
        },
    )?;
    let data: Vec<Value> = rows
        .iter()
        .map(|t| {
            let mut trace = trace_json(t, &auth.project_id);
            let summary = summaries.iter().find(|s| s.trace_id == t.id);
            // Left-out groups read as Langfuse answers them, so that clients expecting the
            // fields still parse: empty lists, and -1 for the figures.
            let observation_ids = match summary {
                Some(s) if fields.observations => s.observation_ids.clone(),
                _ => Vec::new(),
            };
            let (latency, total_cost) = match summary {
                _ if !fields.metrics => (-1.0, -1.0),
                Some(s) => (s.latency_ms as f64 / 1000.0, s.total_cost),
                None => (0.0, 0.0),
            };
            let score_ids = scores
                .iter()
                .find(|s| s.trace_id == t.id)
                .map(|s| s.score_ids.clone())
                .unwrap_or_default();
            trace.insert("observations".into(), json!(observation_ids));
            trace.insert("latency".into(), json!(latency));
            trace.insert("totalCost".into(), json!(total_cost));
            trace.insert("scores".into(), json!(score_ids));
            Value::Object(trace)
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data, "meta": page_meta(page, total) })))
}

/// The optional field groups of the trace list; `core` is always there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceFields {
    /// Input, output and metadata.
    pub io: bool,
    pub scores: bool,
    pub observations: bool,
    /// Latency and total cost.
    pub metrics: bool,
}

impl TraceFields {
    const ALL: TraceFields = TraceFields {
        io: true,
        scores: true,
        observations: true,
        metrics: true,
    };

    /// Langfuse's reading of `fields`: absent, empty, or naming no group it knows means every
    /// group; one comma-separated value drops the names it does not know; a repeated
    /// parameter must name a group in each value.
    fn parse(values: &[&str]) -> Result<TraceFields, ApiError> {
        let names: Vec<&str> = match values {
            [] => Vec::new(),
            [one] => one
                .split(',')
                .map(str::trim)
                .filter(|name| TraceFields::known(name))
                .collect(),
            many => {
                if let Some(unknown) = many.iter().find(|name| !TraceFields::known(name)) {
                    return Err(bad(format!(
                        "fields: {unknown:?} is not one of core, io, scores, observations, metrics"
                    )));
                }
                many.to_vec()
            }
        };
        if names.is_empty() {
            return Ok(TraceFields::ALL);
        }
        Ok(TraceFields {
            io: names.contains(&"io"),
            scores: names.contains(&"scores"),
            observations: names.contains(&"observations"),
            metrics: names.contains(&"metrics"),
        })
    }

    fn known(name: &str) -> bool {
        matches!(name, "core" | "io" | "scores" | "observations" | "metrics")
    }
}

/// A trace list request, checked.
#[derive(Debug)]
pub struct ListRequest {
    pub page: Page,
    pub order: TraceOrder,
    pub fields: TraceFields,
    pub conditions: Vec<Condition>,
}

/// Reads and checks every parameter of the list. The simple parameters become conditions on
/// the traces view, as Langfuse's v1 list reads them (each an exact match, `tags` all of its
/// values, `environment` any of its values, the timestamps a half-open range); the `filter`
/// parameter's conditions replace those on the same columns.
pub fn parse_list_request(query: &Query) -> Result<ListRequest, ApiError> {
    let page = query.page(DEFAULT_LIMIT, MAX_LIMIT)?;
    let order = match query.single("orderBy")? {
        Some(v) => TraceOrder::parse(v).map_err(bad)?,
        None => TraceOrder::default(),
    };
    let fields = TraceFields::parse(&query.all("fields"))?;
    let mut conditions = ListConditions::new(query, &filter::TRACES);
    conditions
        .equals("userId", &columns::USER_ID)?
        .equals("name", &columns::NAME)?
        .equals("sessionId", &columns::SESSION_ID)?
        .equals("version", &columns::VERSION)?
        .equals("release", &columns::RELEASE)?
        .all_of("tags", &columns::TAGS)
        .any_of("environment", &columns::ENVIRONMENT)
        .time_range("fromTimestamp", "toTimestamp", &columns::TIMESTAMP)?;
    Ok(ListRequest {
        page,
        order,
        fields,
        conditions: conditions.finish()?,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::clickhouse::filter::Column;
    use crate::storage::clickhouse::filter::{ArrayOp, Compare, TextOp};

    fn parsed(query: &str) -> ListRequest {
        parse_list_request(&Query::parse(query).unwrap()).unwrap()
    }

    fn refused(query: &str) -> String {
        parse_list_request(&Query::parse(query).unwrap())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn every_query_parameter_becomes_a_condition() {
        let request = parsed(
            "userId=u&name=n&sessionId=s&version=v&release=r&tags=a&tags=b,c\
             &environment=x,y&fromTimestamp=2024-05-01T00:00:00Z&toTimestamp=2024-05-02",
        );
        let conditions = request.conditions;
        assert_eq!(conditions.len(), 9, "{conditions:?}");
        for (column, value) in [
            (&columns::USER_ID, "u"),
            (&columns::NAME, "n"),
            (&columns::SESSION_ID, "s"),
            (&columns::VERSION, "v"),
            (&columns::RELEASE, "r"),
        ] {
            assert!(conditions.contains(&Condition::Text {
                column,
                op: TextOp::Equals,
                value: value.into(),
            }));
        }
        assert!(conditions.contains(&Condition::Array {
            column: &columns::TAGS,
            op: ArrayOp::AllOf,
            values: vec!["a".into(), "b".into(), "c".into()],
        }));
        assert!(conditions.contains(&Condition::OneOf {
            column: &columns::ENVIRONMENT,
            negated: false,
            values: vec!["x".into(), "y".into()],
        }));
        let times: Vec<(Compare, i64)> = conditions
            .iter()
            .filter_map(|c| match c {
                Condition::Time {
                    column,
                    compare,
                    at,
                    ..
                } if *column == &columns::TIMESTAMP => Some((*compare, at.timestamp())),
                _ => None,
            })
            .collect();
        assert_eq!(
            times,
            [(Compare::Gte, 1_714_521_600), (Compare::Lt, 1_714_608_000)]
        );
    }

    #[test]
    fn the_filter_wins_on_its_columns() {
        let filter = serde_json::json!([
            {"type": "string", "column": "userId", "operator": "starts with", "value": "a"},
            {"type": "datetime", "column": "timestamp", "operator": ">", "value": "2024-01-01T00:00:00Z"},
            {"type": "number", "column": "totalCost", "operator": ">=", "value": 0.5},
        ]);
        let query = serde_urlencoded::to_string([
            ("userId", "u"),
            ("name", "n"),
            ("fromTimestamp", "2024-05-01T00:00:00Z"),
            ("toTimestamp", "2024-05-02T00:00:00Z"),
            ("filter", &filter.to_string()),
        ])
        .unwrap();
        let conditions = parsed(&query).conditions;
        let columns: Vec<&Column> = conditions.iter().map(Condition::column).collect();
        assert_eq!(
            columns,
            [
                &columns::USER_ID,
                &columns::TIMESTAMP,
                &columns::TOTAL_COST,
                &columns::NAME
            ]
        );
        assert!(matches!(
            &conditions[0],
            Condition::Text { op: TextOp::StartsWith, value, .. } if value == "a"
        ));
    }

    #[test]
    fn field_groups_read_as_langfuse_reads_them() {
        let all = TraceFields::ALL;
        for query in ["", "fields=", "fields=bogus", "fields=%20,%20"] {
            assert_eq!(parsed(query).fields, all, "{query}");
        }
        let core = TraceFields {
            io: false,
            scores: false,
            observations: false,
            metrics: false,
        };
        assert_eq!(parsed("fields=core").fields, core);
        assert_eq!(
            parsed("fields=core,%20metrics,nonsense").fields,
            TraceFields {
                metrics: true,
                ..core
            }
        );
        assert_eq!(
            parsed("fields=io&fields=scores").fields,
            TraceFields {
                io: true,
                scores: true,
                ..core
            }
        );
        assert!(refused("fields=io&fields=io,scores").contains("is not one of"));
    }

    #[test]
    fn bad_parameters_are_refused() {
        for query in [
            "orderBy=secret.asc",
            "orderBy=timestamp.sideways",
            "fromTimestamp=yesterday",
            "userId=a&userId=b",
            "limit=101",
        ] {
            assert!(
                refused(query).starts_with("Invalid query parameters"),
                "{query}"
            );
        }
        assert_eq!(refused("filter=%5B"), "Invalid JSON in filter parameter");
        assert_eq!(
            refused("filter=%5B%7B%22type%22%3A%22string%22%2C%22column%22%3A%22startTime%22%2C%22operator%22%3A%22%3D%22%2C%22value%22%3A%22x%22%7D%5D"),
            "Column startTime does not match a UI / CH table mapping."
        );
        assert_eq!(
            parsed("orderBy=name.Asc").order,
            TraceOrder {
                column: "name",
                descending: false
            }
        );
    }
}
