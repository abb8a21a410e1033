//! `GET /api/public/v2/observations`: observations in cursor-paged lists, with the fields of the
//! requested field groups only, filtered by query parameters or by the structured `filter`.
//!
//! Shapes follow Langfuse's implementation, not only its spec: `model` (not `providedModelName`)
//! carries the provided model name, `latency`, `timeToFirstToken`, `modelId` and the three prices
//! are on every item, input and output are the stored strings, and the usage group also carries
//! Langfuse's derived `inputUsage`/`outputUsage`/`totalUsage` and `inputCost`/`outputCost`.
//! The matched model (`modelId`) and its current default-tier prices come with the model group,
//! as decimal text; the pricing tier with the usage group.

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use crate::domain::project::ProjectId;
use crate::domain::time::iso;
use crate::http::api::json::{json_text, metadata, seconds_between};
use crate::http::api::list_conditions::ListConditions;
use crate::http::api::observations::v1::{prices_of, ModelPrices};
use crate::http::api::params::{self, bad, Query};
use crate::http::api::resource;
use crate::http::auth::ProjectAuth;
use crate::http::error::ApiError;
use crate::storage::clickhouse::filter::{self, observations, Condition};
use crate::storage::clickhouse::observations::cursor_page::{
    self as store, Cursor, ObservationV2Row, Selection,
};
use crate::storage::clickhouse::traces::{self, TraceContext};
use crate::storage::Stores;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/v2/observations").route(web::get().to(list)));
}

const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 1000;

const TYPES: &[&str] = &[
    "GENERATION",
    "SPAN",
    "EVENT",
    "AGENT",
    "TOOL",
    "CHAIN",
    "RETRIEVER",
    "EVALUATOR",
    "EMBEDDING",
    "GUARDRAIL",
];
const LEVELS: &[&str] = &["DEBUG", "DEFAULT", "WARNING", "ERROR"];

/// The optional field groups (`core` is always there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Groups {
    pub basic: bool,
    pub time: bool,
    pub io: bool,
    pub metadata: bool,
    pub model: bool,
    pub usage: bool,
    pub prompt: bool,
    pub metrics: bool,
    pub trace_context: bool,
}

impl Groups {
    fn set(&mut self, name: &str) -> bool {
        let slot = match name {
            "core" => return true,
            "basic" => &mut self.basic,
            "time" => &mut self.time,
            "io" => &mut self.io,
            "metadata" => &mut self.metadata,
            "model" => &mut self.model,
            "usage" => &mut self.usage,
            "prompt" => &mut self.prompt,
            "metrics" => &mut self.metrics,
            "trace_context" => &mut self.trace_context,
            _ => return false,
        };
        *slot = true;
        true
    }

    /// Langfuse's reading of `fields`: absent or empty means `core,basic`; in one
    /// comma-separated value unknown names are dropped (so only unknown names leave `core`);
    /// a repeated parameter must name groups exactly.
    fn parse(values: &[&str]) -> Result<Groups, ApiError> {
        let mut groups = Groups::default();
        match values {
            [] | [""] => groups.basic = true,
            [one] => {
                for name in one.split(',').map(str::trim) {
                    groups.set(name);
                }
            }
            many => {
                for name in many {
                    if !groups.set(name) {
                        return Err(bad(format!("fields: {name:?} is not a field group")));
                    }
                }
            }
        }
        Ok(groups)
    }
}

/// A request, checked.
#[derive(Debug, Clone)]
pub struct ListRequest {
    pub groups: Groups,
    pub expand_metadata: Vec<String>,
    pub limit: u64,
    pub cursor: Option<Cursor>,
    pub conditions: Vec<Condition>,
}

fn flag(key: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(format!("{key} must be true or false"))),
    }
}

fn parse_cursor(text: &str) -> Result<Cursor, ApiError> {
    let cursor = params::decode_cursor(text)?;
    Ok(Cursor {
        start_time: params::cursor_time(&cursor, "lastStartTimeTo")?,
        trace_id: params::cursor_text(&cursor, "lastTraceId")?,
        id: params::cursor_text(&cursor, "lastId")?,
    })
}

fn encode_cursor(row: &ObservationV2Row) -> String {
    let cursor = json!({
        "lastStartTimeTo": iso(row.start_time),
        "lastTraceId": row.trace_id,
        "lastId": row.id,
    });
    params::base64_standard(cursor.to_string().as_bytes())
}

/// Reads and checks every parameter. Query-parameter filters become conditions too, unless the
/// `filter` parameter has a condition on the same column: there, as in Langfuse, it wins.
pub fn parse_request(params: &Query) -> Result<ListRequest, ApiError> {
    let groups = Groups::parse(&params.all("fields"))?;
    let expand_metadata = params.list("expandMetadata")?.unwrap_or_default();
    let limit = match params.single("limit")? {
        None => DEFAULT_LIMIT,
        Some(v) => params::js_number(v)
            .filter(|n| n.fract() == 0.0 && (0.0..=MAX_LIMIT as f64).contains(n))
            .map(|n| n as u64)
            .ok_or_else(|| bad(format!("limit must be an integer from 0 to {MAX_LIMIT}")))?,
    };
    let cursor = params.single("cursor")?.map(parse_cursor).transpose()?;
    match params.single("parseIoAsJson")? {
        None | Some("false") => {}
        Some("true") => {
            return Err(ApiError::BadRequest(
                "parseIoAsJson=true is no longer supported on the v2 observations endpoint. \
                 Input/output fields are always returned as raw strings. Remove the \
                 parseIoAsJson parameter or set it to false."
                    .to_string(),
            ))
        }
        Some(_) => return Err(bad("parseIoAsJson must be true or false")),
    }

    let mut conditions = ListConditions::new(params, &filter::OBSERVATIONS);
    conditions
        .equals_one_of("type", &observations::TYPE, TYPES)?
        .equals("name", &observations::NAME)?
        .equals("userId", &observations::USER_ID)?
        .equals("sessionId", &observations::SESSION_ID)?
        .equals("traceId", &observations::TRACE_ID)?
        .equals("version", &observations::VERSION)?
        // An empty value matches observations without a parent.
        .equals("parentObservationId", &observations::PARENT_OBSERVATION_ID)?
        .equals_one_of("level", &observations::LEVEL, LEVELS)?;
    if let Some(v) = params.single("isRootObservation")? {
        conditions.push(Condition::Flag {
            column: &observations::IS_ROOT_OBSERVATION,
            equals: true,
            value: flag("isRootObservation", v)?,
        });
    }
    // One value is a comma-separated list; a repeated parameter lists one value each.
    let environments: Vec<String> = match params.all("environment").as_slice() {
        [] => Vec::new(),
        [one] => one.split(',').map(str::to_string).collect(),
        many => many.iter().map(|s| s.to_string()).collect(),
    };
    conditions
        .any_of_values(environments, &observations::ENVIRONMENT)
        .time_range("fromStartTime", "toStartTime", &observations::START_TIME)?;
    Ok(ListRequest {
        groups,
        expand_metadata,
        limit,
        cursor,
        conditions: conditions.finish()?,
    })
}

async fn list(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let request = parse_request(&Query::of(&req)?)?;
    let groups = request.groups;
    let selection = Selection {
        io: groups.io,
        metadata: groups.metadata.then(|| request.expand_metadata.clone()),
    };
    let ch = &stores.clickhouse;
    let mut rows = store::page(
        ch,
        &auth.project_id,
        &request.conditions,
        request.cursor.as_ref(),
        request.limit + 1,
        &selection,
    )
    .await?;
    let has_more = rows.len() as u64 > request.limit;
    rows.truncate(request.limit as usize);
    let traces = if groups.basic || groups.trace_context {
        let mut ids: Vec<String> = rows.iter().map(|r| r.trace_id.clone()).collect();
        ids.sort();
        ids.dedup();
        traces::contexts(ch, &auth.project_id, &ids).await?
    } else {
        Vec::new()
    };
    // The matched models' prices, asked for only with the model group, as Langfuse does.
    let prices = if groups.model {
        let model_ids = rows.iter().map(|r| r.internal_model_id.as_deref());
        prices_of(&stores, &auth.project_id, model_ids).await?
    } else {
        ModelPrices::new()
    };
    let data: Vec<Value> = rows
        .iter()
        .map(|row| {
            let trace = traces.iter().find(|t| t.id == row.trace_id);
            Value::Object(observation_json(
                row,
                trace,
                &auth.project_id,
                groups,
                &prices,
            ))
        })
        .collect();
    let meta = match rows.last() {
        Some(last) if has_more => json!({ "cursor": encode_cursor(last) }),
        _ => json!({}),
    };
    Ok(HttpResponse::Ok().json(json!({ "data": data, "meta": meta })))
}

/// Sum of the entries whose key contains `part`, as Langfuse reduces usage and cost details;
/// `None` when no key does.
fn reduce<T: Copy + std::iter::Sum<T>>(details: &[(String, T)], part: &str) -> Option<T> {
    let matching: Vec<T> = details
        .iter()
        .filter(|(k, _)| k.contains(part))
        .map(|(_, v)| *v)
        .collect();
    (!matching.is_empty()).then(|| matching.into_iter().sum())
}

fn total<T: Copy>(details: &[(String, T)]) -> Option<T> {
    details.iter().find(|(k, _)| k == "total").map(|(_, v)| *v)
}

fn non_empty(text: &Option<String>) -> Option<&str> {
    text.as_deref().filter(|s| !s.is_empty())
}

/// One item with the fields of the requested groups.
pub fn observation_json(
    o: &ObservationV2Row,
    trace: Option<&TraceContext>,
    project: &ProjectId,
    groups: Groups,
    prices: &ModelPrices,
) -> Map<String, Value> {
    let is_root = non_empty(&o.parent_observation_id).is_none();
    let mut item = Map::new();
    let mut put = |key: &str, value: Value| {
        item.insert(key.to_string(), value);
    };
    put("id", json!(o.id));
    put("traceId", json!(o.trace_id));
    put("startTime", json!(iso(o.start_time)));
    put("endTime", json!(o.end_time.map(iso)));
    put("projectId", json!(project));
    put(
        "parentObservationId",
        json!(non_empty(&o.parent_observation_id)),
    );
    put("type", json!(o.observation_type));
    // Langfuse computes these two from the core times on every item; the time to first token
    // needs the completion start, which only the time and metrics groups read.
    put("latency", seconds_between(o.start_time, o.end_time));
    let completion = if groups.time || groups.metrics {
        o.completion_start_time
    } else {
        None
    };
    put(
        "timeToFirstToken",
        seconds_between(o.start_time, completion),
    );
    // The matched model and its current default-tier prices (decimal text), with the model
    // group only; null without it.
    let model_id = o.internal_model_id.as_deref().filter(|_| groups.model);
    put("modelId", json!(model_id));
    let model_prices = model_id.and_then(|id| prices.get(id));
    for (key, usage_type) in [
        ("inputPrice", "input"),
        ("outputPrice", "output"),
        ("totalPrice", "total"),
    ] {
        put(key, json!(model_prices.and_then(|p| p.get(usage_type))));
    }
    if groups.basic {
        put("name", json!(o.name));
        put("level", json!(o.level));
        put("statusMessage", json!(o.status_message));
        put("version", json!(o.version));
        put("environment", json!(o.environment));
        put("bookmarked", json!(trace.is_some_and(|t| t.bookmarked)));
        put("public", json!(trace.is_some_and(|t| t.public)));
        put("userId", json!(trace.and_then(|t| t.user_id.clone())));
        put("sessionId", json!(trace.and_then(|t| t.session_id.clone())));
        put("isRootObservation", json!(is_root));
    }
    if groups.time {
        put(
            "completionStartTime",
            json!(o.completion_start_time.map(iso)),
        );
        put("createdAt", json!(iso(o.created_at)));
        put("updatedAt", json!(iso(o.updated_at)));
    }
    if groups.io {
        put("input", json!(non_empty(&o.input)));
        put("output", json!(non_empty(&o.output)));
    }
    if groups.metadata {
        put("metadata", metadata(&o.metadata));
    }
    if groups.model {
        put("model", json!(o.model));
        put("internalModelId", json!(o.internal_model_id));
        put(
            "modelParameters",
            match non_empty(&o.model_parameters) {
                Some(text) => json_text(&Some(text.to_string())),
                None => Value::Null,
            },
        );
    }
    if groups.usage {
        let usage: BTreeMap<&str, u64> = o
            .usage_details
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        let costs: BTreeMap<&str, f64> = o
            .cost_details
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        put("usageDetails", json!(usage));
        put(
            "inputUsage",
            json!(reduce(&o.usage_details, "input").unwrap_or(0)),
        );
        put(
            "outputUsage",
            json!(reduce(&o.usage_details, "output").unwrap_or(0)),
        );
        put("totalUsage", json!(total(&o.usage_details).unwrap_or(0)));
        put("costDetails", json!(costs));
        put("inputCost", json!(reduce(&o.cost_details, "input")));
        put("outputCost", json!(reduce(&o.cost_details, "output")));
        put("totalCost", json!(total(&o.cost_details).unwrap_or(0.0)));
        put("usagePricingTierId", json!(o.usage_pricing_tier_id));
        put("usagePricingTierName", json!(o.usage_pricing_tier_name));
    }
    if groups.prompt {
        put("promptId", json!(o.prompt_id));
        put("promptName", json!(o.prompt_name));
        put("promptVersion", json!(o.prompt_version.filter(|v| *v > 0)));
    }
    if groups.trace_context {
        put(
            "tags",
            json!(trace.map(|t| t.tags.clone()).unwrap_or_default()),
        );
        put("release", json!(trace.and_then(|t| t.release.clone())));
        // The trace's name; a root observation of an unnamed trace names it, as in Langfuse.
        let trace_name = trace
            .map(|t| t.name.clone())
            .filter(|n| !n.is_empty())
            .or_else(|| (is_root && !o.name.is_empty()).then(|| o.name.clone()));
        put("traceName", json!(trace_name));
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::clickhouse::filter::{Column, TextOp};

    fn pairs(query: &str) -> Query {
        Query::parse(query).unwrap()
    }

    fn parsed(query: &str) -> ListRequest {
        parse_request(&pairs(query)).unwrap()
    }

    fn refused(query: &str) -> String {
        parse_request(&pairs(query)).unwrap_err().to_string()
    }

    #[test]
    fn field_groups_default_to_basic_and_drop_unknown_names() {
        let basic = Groups {
            basic: true,
            ..Groups::default()
        };
        assert_eq!(parsed("").groups, basic);
        assert_eq!(parsed("fields=").groups, basic);
        assert_eq!(parsed("fields=core").groups, Groups::default());
        assert_eq!(parsed("fields=nonsense").groups, Groups::default());
        let g = parsed("fields=io,%20usage,bogus").groups;
        assert!(g.io && g.usage && !g.basic && !g.metrics);
        let g = parsed("fields=io&fields=time").groups;
        assert!(g.io && g.time);
        assert!(refused("fields=io&fields=bogus").contains("not a field group"));
    }

    #[test]
    fn limits_and_cursors() {
        assert_eq!(parsed("").limit, 50);
        assert_eq!(parsed("limit=0").limit, 0);
        assert_eq!(parsed("limit=1000").limit, 1000);
        for bad in [
            "limit=1001",
            "limit=-1",
            "limit=2.5",
            "limit=abc",
            "limit=1&limit=2",
        ] {
            assert!(refused(bad).contains("Invalid query parameters"), "{bad}");
        }
        assert_eq!(
            refused("cursor=invalid-base64-string"),
            "Invalid cursor format"
        );
        let cursor = params::base64_standard(
            br#"{"lastStartTimeTo":"2024-05-01T10:00:00.000Z","lastTraceId":"t","lastId":"o"}"#,
        );
        let request = parsed(&format!("cursor={cursor}"));
        assert_eq!(request.cursor.unwrap().id, "o");
        let partial = params::base64_standard(br#"{"lastStartTimeTo":"2024-05-01T10:00:00Z"}"#);
        assert!(refused(&format!("cursor={partial}")).contains("lastTraceId"));
    }

    #[test]
    fn query_filters_become_conditions_unless_the_filter_names_their_column() {
        let request = parsed(
            "name=a&userId=u&sessionId=s&type=SPAN&traceId=t&level=ERROR&version=v\
             &parentObservationId=&isRootObservation=false&environment=x,y\
             &fromStartTime=2024-05-01T00:00:00Z&toStartTime=2024-05-02T00:00:00Z",
        );
        let columns: Vec<&Column> = request.conditions.iter().map(Condition::column).collect();
        assert_eq!(columns.len(), 12);
        assert!(request.conditions.contains(&Condition::OneOf {
            column: &observations::ENVIRONMENT,
            negated: false,
            values: vec!["x".into(), "y".into()],
        }));
        let repeated = parsed("environment=x,y&environment=z");
        assert!(repeated.conditions.contains(&Condition::OneOf {
            column: &observations::ENVIRONMENT,
            negated: false,
            values: vec!["x,y".into(), "z".into()],
        }));

        let filter = serde_json::json!([
            {"type": "string", "column": "name", "operator": "=", "value": "b"},
            {"type": "datetime", "column": "startTime", "operator": ">", "value": "2024-01-01T00:00:00Z"},
        ]);
        let query = serde_urlencoded::to_string([
            ("name", "a"),
            ("level", "ERROR"),
            ("fromStartTime", "2024-05-01T00:00:00Z"),
            ("toStartTime", "2024-05-02T00:00:00Z"),
            ("filter", &filter.to_string()),
        ])
        .unwrap();
        let request = parsed(&query);
        assert_eq!(request.conditions.len(), 3, "{:?}", request.conditions);
        assert!(request.conditions.contains(&Condition::Text {
            column: &observations::NAME,
            op: TextOp::Equals,
            value: "b".into(),
        }));
    }

    #[test]
    fn bad_values_are_refused() {
        for query in [
            "type=FOO",
            "level=LOUD",
            "isRootObservation=yes",
            "fromStartTime=yesterday",
            "toStartTime=",
            "parseIoAsJson=maybe",
            "name=a&name=b",
        ] {
            assert!(
                refused(query).starts_with("Invalid query parameters"),
                "{query}"
            );
        }
        assert!(refused("parseIoAsJson=true").contains("parseIoAsJson=true is no longer supported"));
        assert_eq!(refused("filter=%5B"), "Invalid JSON in filter parameter");
    }
}
