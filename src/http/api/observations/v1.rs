//! `GET /api/public/observations/{observationId}` and `GET /api/public/observations`, in the
//! shapes of Langfuse's v1 API: every field, page-numbered lists filtered by the query
//! parameters and the structured `filter` (the observations view of the filter language).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use crate::domain::observation::{Level, ObservationType};
use crate::domain::project::ProjectId;
use crate::domain::time::iso;
use crate::http::api::json::{json_text, metadata, seconds_between};
use crate::http::api::list_conditions::ListConditions;
use crate::http::api::params::{page_meta, Page, Query};
use crate::http::api::resource;
use crate::http::auth::ProjectAuth;
use crate::http::error::ApiError;
use crate::storage::clickhouse::filter::{self, observations as columns, Condition};
use crate::storage::clickhouse::observations::{self, ObservationView};
use crate::storage::models;
use crate::storage::Stores;

const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 100;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/observations").route(web::get().to(list_observations)))
        .service(resource("/observations/{observation_id}").route(web::get().to(get_observation)));
}

/// The current default-tier prices of the models of some observations, by model id.
pub(crate) type ModelPrices = HashMap<String, BTreeMap<String, String>>;

/// The prices of the models `model_ids` (those observations were matched to): one PostgreSQL
/// query, none when no observation has a model.
pub(crate) async fn prices_of<'a>(
    stores: &Stores,
    project: &ProjectId,
    model_ids: impl Iterator<Item = Option<&'a str>>,
) -> Result<ModelPrices, ApiError> {
    let ids: BTreeSet<&str> = model_ids.flatten().collect();
    let ids: Vec<&str> = ids.into_iter().collect();
    Ok(models::default_prices(&stores.postgres, project, &ids).await?)
}

/// An observation in the v1 shape, as the v1 list and a trace's `observations` show it, with the
/// prices of its model (`missing_price`: what a price of no model is, `null` in the lists and
/// 0 in a trace, as in Langfuse).
pub(crate) fn observation_json(
    o: &ObservationView,
    prices: &ModelPrices,
    missing_price: Value,
) -> Value {
    let model_prices = o.internal_model_id.as_ref().and_then(|id| prices.get(id));
    let price = |key: &str| {
        model_prices
            .and_then(|p| p.get(key))
            .and_then(|p| p.parse::<f64>().ok())
            .map_or(missing_price.clone(), |p| json!(p))
    };
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
        "promptId": o.prompt_id,
        "promptName": o.prompt_name,
        "promptVersion": o.prompt_version,
        "usageDetails": usage_details,
        "costDetails": cost_details,
        "environment": o.environment,
        "modelId": o.internal_model_id,
        "inputPrice": price("input"),
        "outputPrice": price("output"),
        "totalPrice": price("total"),
        "usagePricingTierId": o.usage_pricing_tier_id,
        "usagePricingTierName": o.usage_pricing_tier_name,
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
    let model_id = observation.internal_model_id.as_deref();
    let prices = prices_of(&stores, &auth.project_id, std::iter::once(model_id)).await?;
    Ok(HttpResponse::Ok().json(observation_json(&observation, &prices, Value::Null)))
}

async fn list_observations(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let request = parse_list_request(&Query::of(&req)?)?;
    let page = request.page;
    let (rows, total) = observations::list(
        &stores.clickhouse,
        &auth.project_id,
        &request.conditions,
        page.page,
        page.limit,
    )
    .await?;
    let model_ids = rows.iter().map(|o| o.internal_model_id.as_deref());
    let prices = prices_of(&stores, &auth.project_id, model_ids).await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|o| observation_json(o, &prices, Value::Null))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data, "meta": page_meta(page, total) })))
}

/// A list request, checked.
#[derive(Debug)]
pub struct ListRequest {
    pub page: Page,
    pub conditions: Vec<Condition>,
}

/// The value of `key` if it is one of `allowed`.
/// Reads and checks every parameter of the list. The simple parameters become conditions on
/// the observations view, as Langfuse's v1 list reads them (each an exact match, `environment`
/// any of its values, the start times a half-open range, `userId` the trace's user); the
/// `filter` parameter's conditions replace those on the same columns.
pub fn parse_list_request(query: &Query) -> Result<ListRequest, ApiError> {
    let page = query.page(DEFAULT_LIMIT, MAX_LIMIT)?;
    let types = ObservationType::ALL.map(ObservationType::as_str);
    let levels = Level::ALL.map(Level::as_str);
    let mut conditions = ListConditions::new(query, &filter::OBSERVATIONS);
    conditions
        .equals_one_of("type", &columns::TYPE, &types)?
        .equals_one_of("level", &columns::LEVEL, &levels)?
        .equals("name", &columns::NAME)?
        .equals("userId", &columns::USER_ID)?
        .equals("traceId", &columns::TRACE_ID)?
        .equals("version", &columns::VERSION)?
        // An empty value matches observations without a parent.
        .equals("parentObservationId", &columns::PARENT_OBSERVATION_ID)?
        .any_of("environment", &columns::ENVIRONMENT)
        .time_range("fromStartTime", "toStartTime", &columns::START_TIME)?;
    Ok(ListRequest {
        page,
        conditions: conditions.finish()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::clickhouse::filter::TextOp;

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
            "name=n&userId=u&type=GENERATION&traceId=t&level=ERROR&parentObservationId=\
             &environment=x&environment=y&fromStartTime=2024-05-01T00:00:00Z\
             &toStartTime=2024-05-02T00:00:00Z&version=v&page=2&limit=10",
        );
        assert_eq!(request.page, Page { page: 2, limit: 10 });
        let conditions = request.conditions;
        assert_eq!(conditions.len(), 10, "{conditions:?}");
        for (column, value) in [
            (&columns::NAME, "n"),
            (&columns::USER_ID, "u"),
            (&columns::TYPE, "GENERATION"),
            (&columns::TRACE_ID, "t"),
            (&columns::LEVEL, "ERROR"),
            (&columns::PARENT_OBSERVATION_ID, ""),
            (&columns::VERSION, "v"),
        ] {
            assert!(
                conditions.contains(&Condition::Text {
                    column,
                    op: TextOp::Equals,
                    value: value.into(),
                }),
                "{}",
                column.id
            );
        }
        assert!(conditions.contains(&Condition::OneOf {
            column: &columns::ENVIRONMENT,
            negated: false,
            values: vec!["x".into(), "y".into()],
        }));
        let starts = conditions
            .iter()
            .filter(|c| c.column() == &columns::START_TIME)
            .count();
        assert_eq!(starts, 2);
    }

    #[test]
    fn the_filter_wins_on_its_columns() {
        let filter = serde_json::json!([
            {"type": "stringOptions", "column": "type", "operator": "none of", "value": ["SPAN"]},
            {"type": "string", "column": "userId", "operator": "contains", "value": "li"},
        ]);
        let query = serde_urlencoded::to_string([
            ("type", "GENERATION"),
            ("userId", "alice"),
            ("name", "llm"),
            ("filter", &filter.to_string()),
        ])
        .unwrap();
        let conditions = parsed(&query).conditions;
        assert_eq!(conditions.len(), 3, "{conditions:?}");
        assert!(matches!(
            &conditions[0],
            Condition::OneOf { negated: true, .. }
        ));
        assert!(matches!(
            &conditions[1],
            Condition::Text {
                op: TextOp::Contains,
                ..
            }
        ));
        assert_eq!(conditions[2].column(), &columns::NAME);
    }

    #[test]
    fn bad_parameters_are_refused() {
        for query in [
            "type=THING",
            "level=LOUD",
            "fromStartTime=soon",
            "toStartTime=",
            "traceId=a&traceId=b",
            "page=0",
        ] {
            assert!(
                refused(query).starts_with("Invalid query parameters"),
                "{query}"
            );
        }
        assert!(refused(
            "filter=%5B%7B%22type%22%3A%22number%22%2C%22column%22%3A%22scores_avg%22%2C%22operator%22%3A%22%3E%22%2C%22value%22%3A1%7D%5D"
        )
        .contains("does not match"));
    }
}
