//! `GET /api/public/experiments` and `GET /api/public/experiment-items`: experiments as the
//! spans of their runs recorded them (`langfuse.experiment.*` attributes, stored on
//! observations), in cursor-paged lists with field groups, as Langfuse's experiments API.
//!
//! Both take a required `fromStartTime` (and `toStartTime`, exclusive), comma-separated lists of
//! ids and names, and a `filter` over their own columns; `limit` is 1 to 100 (default 50) and
//! `scoreLimit` 1 to 50 (default 50). An experiment's figures count its observations within the
//! time range; an item is the observation its run names as the item's root.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use crate::domain::project::ProjectId;
use crate::domain::time::iso;
use crate::http::api::json::{json_text, metadata};
use crate::http::api::list_conditions::ListConditions;
use crate::http::api::params::{self, bad, Query};
use crate::http::api::resource;
use crate::http::api::scores::v3::{score_json, Groups};
use crate::http::auth::ProjectAuth;
use crate::http::error::ApiError;
use crate::storage::clickhouse::experiments::{self as store, ExperimentCursor};
use crate::storage::clickhouse::filter::{self, experiments as columns, observations, View};
use crate::storage::clickhouse::scores::cursor_page::ScoreV3Row;
use crate::storage::Stores;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/experiments").route(web::get().to(list_experiments)));
    cfg.service(resource("/experiment-items").route(web::get().to(list_items)));
}

const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 100;
const DEFAULT_SCORE_LIMIT: u64 = 50;
const MAX_SCORE_LIMIT: u64 = 50;

const EXPERIMENT_GROUPS: &[&str] = &["core", "metadata", "scores"];
const ITEM_GROUPS: &[&str] = &[
    "core",
    "dataset",
    "io",
    "metadata",
    "itemMetadata",
    "experimentMetadata",
    "scores",
];

/// What both lists read the same way.
struct Common {
    groups: Vec<String>,
    limit: u64,
    score_limit: u64,
    cursor: Option<ExperimentCursor>,
}

impl Common {
    fn has(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

fn integer_within(params: &Query, key: &str, default: u64, max: u64) -> Result<u64, ApiError> {
    match params.single(key)? {
        None => Ok(default),
        Some(v) => params::js_number(v)
            .filter(|n| n.fract() == 0.0 && (1.0..=max as f64).contains(n))
            .map(|n| n as u64)
            .ok_or_else(|| bad(format!("{key} must be an integer from 1 to {max}"))),
    }
}

fn parse_cursor(text: &str) -> Result<ExperimentCursor, ApiError> {
    let cursor = params::decode_cursor(text)?;
    if cursor.get("v") != Some(&json!(1)) {
        return Err(bad("cursor.v must be 1"));
    }
    Ok(ExperimentCursor {
        time: params::cursor_time(&cursor, "lastTime")?,
        trace_id: params::cursor_text(&cursor, "lastTraceId")?,
        id: params::cursor_text(&cursor, "lastId")?,
        experiment_id: params::cursor_text(&cursor, "lastExperimentId")?,
    })
}

fn encode_cursor(cursor: &ExperimentCursor) -> String {
    let text = json!({
        "v": 1,
        "lastTime": iso(cursor.time),
        "lastTraceId": cursor.trace_id,
        "lastId": cursor.id,
        "lastExperimentId": cursor.experiment_id,
    })
    .to_string();
    params::base64_url(text.as_bytes())
}

fn read_common(
    params: &Query,
    allowed_groups: &[&str],
    default_groups: &[&str],
) -> Result<Common, ApiError> {
    let groups = match params.list("fields")? {
        None => default_groups.iter().map(|g| g.to_string()).collect(),
        Some(groups) => {
            if let Some(unknown) = groups
                .iter()
                .find(|g| !allowed_groups.contains(&g.as_str()))
            {
                return Err(bad(format!(
                    "fields: {unknown:?} is not one of {}",
                    allowed_groups.join(", ")
                )));
            }
            groups
        }
    };
    if params.single("fromStartTime")?.is_none() {
        return Err(bad("fromStartTime is required"));
    }
    Ok(Common {
        groups,
        limit: integer_within(params, "limit", DEFAULT_LIMIT, MAX_LIMIT)?,
        score_limit: integer_within(params, "scoreLimit", DEFAULT_SCORE_LIMIT, MAX_SCORE_LIMIT)?,
        cursor: params.single("cursor")?.map(parse_cursor).transpose()?,
    })
}

/// The time range and the list parameters as conditions of `view`, with its `filter`.
fn conditions(
    params: &Query,
    view: &'static View,
    lists: &[(&str, &'static filter::Column)],
) -> Result<Vec<filter::Condition>, ApiError> {
    let mut conditions = ListConditions::new(params, view);
    conditions.time_range("fromStartTime", "toStartTime", &observations::START_TIME)?;
    for (key, column) in lists {
        conditions.any_of(key, column);
    }
    conditions.finish()
}

fn scores_json(rows: Option<&Vec<ScoreV3Row>>, project: &ProjectId) -> Value {
    // Each score shows what it is attached to, as Langfuse's experiments API shows it.
    let groups = Groups {
        subject: true,
        ..Groups::default()
    };
    Value::Array(
        rows.into_iter()
            .flatten()
            .filter_map(|row| match score_json(row, project, groups) {
                Ok(score) => Some(Value::Object(score)),
                Err(why) => {
                    tracing::error!(score_id = %row.id, why, "score left out of an experiment");
                    None
                }
            })
            .collect(),
    )
}

fn page(data: Vec<Value>, next: Option<ExperimentCursor>) -> HttpResponse {
    let mut meta = Map::new();
    if let Some(next) = next {
        meta.insert("cursor".into(), json!(encode_cursor(&next)));
    }
    HttpResponse::Ok().json(json!({ "data": data, "meta": meta }))
}

async fn list_experiments(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let params = &Query::of(&req)?.empty_as_absent();
    let common = read_common(params, EXPERIMENT_GROUPS, &["core"])?;
    let conditions = conditions(
        params,
        &filter::EXPERIMENTS,
        &[
            ("id", &columns::EXPERIMENT_ID),
            ("name", &columns::EXPERIMENT_NAME),
            ("datasetId", &columns::DATASET_ID),
        ],
    )?;
    let project = &auth.project_id;
    let mut rows = store::summaries(
        &stores.clickhouse,
        project,
        &conditions,
        common.cursor.as_ref(),
        common.limit + 1,
    )
    .await?;
    let has_more = rows.len() as u64 > common.limit;
    rows.truncate(common.limit as usize);
    let scores = if common.has("scores") {
        let ids: Vec<String> = rows.iter().map(|r| r.experiment_id.clone()).collect();
        store::scores_of_experiments(&stores.clickhouse, project, &ids, common.score_limit).await?
    } else {
        Default::default()
    };
    let data = rows
        .iter()
        .map(|row| {
            let mut experiment = json!({
                "id": row.experiment_id,
                "name": row.name,
                "description": row.description,
                "startTime": iso(row.start_time),
                "endTime": iso(row.end_time),
                "itemCount": row.item_count,
                "datasetId": row.dataset_id.as_ref().filter(|d| !d.is_empty()),
            });
            if common.has("metadata") {
                experiment["metadata"] = metadata(&row.metadata);
            }
            if common.has("scores") {
                experiment["scores"] = scores_json(scores.get(&row.experiment_id), project);
            }
            experiment
        })
        .collect();
    let next = rows
        .last()
        .filter(|_| has_more)
        .map(|last| ExperimentCursor {
            time: last.last_activity,
            trace_id: String::new(),
            id: String::new(),
            experiment_id: last.experiment_id.clone(),
        });
    Ok(page(data, next))
}

async fn list_items(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let params = &Query::of(&req)?.empty_as_absent();
    let common = read_common(params, ITEM_GROUPS, &["core", "dataset"])?;
    let conditions = conditions(
        params,
        &filter::EXPERIMENT_ITEMS,
        &[
            ("experimentId", &columns::EXPERIMENT_ID),
            ("experimentName", &columns::EXPERIMENT_NAME),
            ("experimentItemId", &columns::EXPERIMENT_ITEM_ID),
            ("datasetId", &columns::DATASET_ID),
        ],
    )?;
    let project = &auth.project_id;
    let mut rows = store::items(
        &stores.clickhouse,
        project,
        &conditions,
        common.cursor.as_ref(),
        common.limit + 1,
    )
    .await?;
    let has_more = rows.len() as u64 > common.limit;
    rows.truncate(common.limit as usize);
    let scores = if common.has("scores") {
        let items: Vec<(String, String)> = rows
            .iter()
            .map(|r| (r.id.clone(), r.trace_id.clone()))
            .collect();
        store::scores_of_items(&stores.clickhouse, project, &items, common.score_limit).await?
    } else {
        Default::default()
    };
    let data = rows
        .iter()
        .map(|row| {
            let mut item = json!({
                "id": row.id,
                "traceId": row.trace_id,
                "startTime": iso(row.start_time),
                "endTime": row.end_time.map(iso),
                "level": row.level,
                "environment": row.environment,
                "experimentId": row.experiment_id,
                "experimentName": row.experiment_name,
                "experimentItemId": row.experiment_item_id,
            });
            if common.has("dataset") {
                item["experimentDatasetId"] =
                    json!(row.experiment_dataset_id.as_ref().filter(|d| !d.is_empty()));
                item["experimentItemVersion"] = json!(row.experiment_item_version.map(iso));
            }
            if common.has("io") {
                item["input"] = json_text(&row.input);
                item["output"] = json_text(&row.output);
                item["expectedOutput"] = json_text(&row.expected_output);
            }
            if common.has("metadata") {
                item["metadata"] = metadata(&row.metadata);
            }
            if common.has("itemMetadata") {
                item["experimentItemMetadata"] = metadata(&row.item_metadata);
            }
            if common.has("experimentMetadata") {
                item["experimentMetadata"] = metadata(&row.experiment_metadata);
                item["experimentDescription"] = json!(row.experiment_description);
            }
            if common.has("scores") {
                item["scores"] = scores_json(scores.get(&row.id), project);
            }
            item
        })
        .collect();
    let next = rows
        .last()
        .filter(|_| has_more)
        .map(|last| ExperimentCursor {
            time: last.start_time,
            trace_id: last.trace_id.clone(),
            id: last.id.clone(),
            experiment_id: last.experiment_id.clone(),
        });
    Ok(page(data, next))
}
