//! `GET /api/public/v3/scores`: scores in cursor-paged lists with one polymorphic `value`
//! (number, boolean or string by `dataType`), optional field groups and comma-separated filters.
//!
//! As in Langfuse, unknown parameters and field groups are refused, `userId` and `traceTags`
//! (which would need the trace) are refused, and a score that cannot be shown (a categorical
//! score without its label, a trace score without its trace) is left out and logged.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use crate::domain::project::ProjectId;
use crate::domain::time::iso;
use crate::http::api::json::metadata;
use crate::http::api::params::{self, bad, Query};
use crate::http::api::resource;
use crate::http::auth::ProjectAuth;
use crate::http::error::ApiError;
use crate::storage::clickhouse::scores::cursor_page::{
    self as store, ScoreCursor, ScoreV3Filter, ScoreV3Row, ValueFilter,
};
use crate::storage::Stores;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/v3/scores").route(web::get().to(list)));
}

const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 100;

const KNOWN_PARAMETERS: &[&str] = &[
    "limit",
    "cursor",
    "fields",
    "id",
    "name",
    "source",
    "dataType",
    "environment",
    "configId",
    "queueId",
    "authorUserId",
    "value",
    "valueMin",
    "valueMax",
    "traceId",
    "sessionId",
    "observationId",
    "experimentId",
    "fromTimestamp",
    "toTimestamp",
    "userId",
    "traceTags",
];

const SOURCES: &[&str] = &["API", "EVAL", "ANNOTATION"];
const DATA_TYPES: &[&str] = &["NUMERIC", "CATEGORICAL", "BOOLEAN", "CORRECTION", "TEXT"];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Groups {
    pub details: bool,
    pub subject: bool,
    pub annotation: bool,
}

#[derive(Debug, Clone)]
pub struct ListRequest {
    pub groups: Groups,
    pub limit: u64,
    pub cursor: Option<ScoreCursor>,
    pub filter: ScoreV3Filter,
}

/// A list of enum values, case-insensitive; every one must be known.
fn enum_list(params: &Query, key: &str, allowed: &[&str]) -> Result<Vec<String>, ApiError> {
    let values: Vec<String> = params
        .list(key)?
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.to_uppercase())
        .collect();
    for value in &values {
        if !allowed.contains(&value.as_str()) {
            return Err(bad(format!(
                "Invalid {key} value: {value:?}. Allowed: {}",
                allowed.join(", ")
            )));
        }
    }
    Ok(values)
}

/// An optional parameter where the empty string means absent.
fn parse_cursor(text: &str) -> Result<ScoreCursor, ApiError> {
    let cursor = params::decode_cursor(text)?;
    if cursor.get("v") != Some(&json!(1)) {
        return Err(bad("cursor.v must be 1"));
    }
    Ok(ScoreCursor {
        timestamp: params::cursor_time(&cursor, "lastTimestamp")?,
        id: params::cursor_text(&cursor, "lastId")?,
    })
}

fn encode_cursor(row: &ScoreV3Row) -> String {
    let cursor = json!({ "v": 1, "lastTimestamp": iso(row.timestamp), "lastId": row.id });
    params::base64_url(cursor.to_string().as_bytes())
}

/// Reads and checks every parameter; unknown ones are refused even when empty, and an empty value
/// of a known one counts as absent, as in Langfuse.
pub fn parse_request(query: Query) -> Result<ListRequest, ApiError> {
    let mut unknown: Vec<&str> = query
        .keys()
        .filter(|k| !KNOWN_PARAMETERS.contains(k))
        .collect();
    unknown.sort_unstable();
    unknown.dedup();
    if !unknown.is_empty() {
        return Err(bad(format!(
            "unrecognized parameter(s): {}",
            unknown.join(", ")
        )));
    }
    let params = &query.empty_as_absent();
    let limit = match params.single("limit")? {
        None => DEFAULT_LIMIT,
        Some(v) => params::js_number(v)
            .filter(|n| n.fract() == 0.0 && (1.0..=MAX_LIMIT as f64).contains(n))
            .map(|n| n as u64)
            .ok_or_else(|| bad(format!("limit must be an integer from 1 to {MAX_LIMIT}")))?,
    };
    let mut groups = Groups::default();
    for name in params.list("fields")?.unwrap_or_default() {
        match name.as_str() {
            "core" => {}
            "details" => groups.details = true,
            "subject" => groups.subject = true,
            "annotation" => groups.annotation = true,
            other => {
                return Err(bad(format!(
                    "fields: {other:?} is not one of core, details, subject, annotation"
                )))
            }
        }
    }
    let cursor = params.single("cursor")?.map(parse_cursor).transpose()?;
    let list =
        |key: &str| -> Result<Vec<String>, ApiError> { Ok(params.list(key)?.unwrap_or_default()) };
    let number = |key: &str| -> Result<Option<f64>, ApiError> {
        params
            .single(key)?
            .map(|v| params::js_number(v).ok_or_else(|| bad(format!("{key} must be a number"))))
            .transpose()
    };
    let time = |key: &str| {
        params
            .single(key)?
            .map(|v| params::time_value(key, v))
            .transpose()
    };
    let mut filter = ScoreV3Filter {
        ids: list("id")?,
        names: list("name")?,
        sources: enum_list(params, "source", SOURCES)?,
        data_types: enum_list(params, "dataType", DATA_TYPES)?,
        environments: list("environment")?,
        config_ids: list("configId")?,
        queue_ids: list("queueId")?,
        author_user_ids: list("authorUserId")?,
        trace_ids: list("traceId")?,
        session_ids: list("sessionId")?,
        observation_ids: list("observationId")?,
        dataset_run_ids: list("experimentId")?,
        trace_user_ids: Vec::new(),
        from_timestamp: time("fromTimestamp")?,
        to_timestamp: time("toTimestamp")?,
        value_min: number("valueMin")?,
        value_max: number("valueMax")?,
        values: None,
    };
    if params.single("userId")?.is_some() {
        return Err(bad(
            "userId filter requires a trace JOIN and is not supported in v3 — use v2 or omit this filter",
        ));
    }
    if params.single("traceTags")?.is_some() {
        return Err(bad(
            "traceTags filter requires a trace JOIN and is not supported in v3 — use v2 or omit this filter",
        ));
    }
    let single_type = match filter.data_types.as_slice() {
        [one] => Some(one.as_str()),
        _ => None,
    };
    if let Some(values) = params.list("value")? {
        filter.values = Some(match single_type {
            None => {
                return Err(bad(
                    "value filter requires a single dataType from: NUMERIC, BOOLEAN, CATEGORICAL",
                ))
            }
            Some("NUMERIC") => ValueFilter::Numbers(
                values
                    .iter()
                    .map(|v| {
                        params::js_number(v).filter(|_| !v.trim().is_empty()).ok_or_else(|| {
                            bad(format!(
                                "value filter with dataType=NUMERIC requires each value to be a finite number (got {v:?})"
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Some("BOOLEAN") => ValueFilter::Numbers(
                values
                    .iter()
                    .map(|v| match v.as_str() {
                        "true" => Ok(1.0),
                        "false" => Ok(0.0),
                        _ => Err(bad(format!(
                            "value filter with dataType=BOOLEAN requires each value to be \"true\" or \"false\" (got {v:?})"
                        ))),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Some("CATEGORICAL") => ValueFilter::Labels(values),
            Some(other) => {
                return Err(bad(format!(
                    "value filter requires dataType to be NUMERIC, BOOLEAN, or CATEGORICAL (got {other:?})"
                )))
            }
        });
    }
    if (filter.value_min.is_some() || filter.value_max.is_some()) && single_type != Some("NUMERIC")
    {
        return Err(bad(
            "valueMin and valueMax require dataType=NUMERIC as a single value",
        ));
    }
    if !filter.observation_ids.is_empty() && filter.trace_ids.is_empty() {
        return Err(bad(
            "observationId filter requires traceId — observation IDs are scoped to a trace",
        ));
    }
    let subjects = [
        &filter.trace_ids,
        &filter.session_ids,
        &filter.dataset_run_ids,
    ];
    if subjects.iter().filter(|ids| !ids.is_empty()).count() > 1 {
        return Err(bad(
            "At most one of traceId, sessionId, experimentId may be specified",
        ));
    }
    Ok(ListRequest {
        groups,
        limit,
        cursor,
        filter,
    })
}

async fn list(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let request = parse_request(Query::of(&req)?)?;
    let mut rows = store::page(
        &stores.clickhouse,
        &auth.project_id,
        &request.filter,
        request.cursor.as_ref(),
        request.limit + 1,
    )
    .await?;
    let has_more = rows.len() as u64 > request.limit;
    rows.truncate(request.limit as usize);
    let data: Vec<Value> = rows
        .iter()
        .filter_map(
            |row| match score_json(row, &auth.project_id, request.groups) {
                Ok(score) => Some(Value::Object(score)),
                Err(why) => {
                    tracing::error!(score_id = %row.id, why, "score left out of the v3 list");
                    None
                }
            },
        )
        .collect();
    let mut meta = json!({ "limit": request.limit });
    // The cursor follows the last row read, shown or not, so a left-out row cannot stall paging.
    if let (true, Some(last)) = (has_more, rows.last()) {
        meta["cursor"] = json!(encode_cursor(last));
    }
    Ok(HttpResponse::Ok().json(json!({ "data": data, "meta": meta })))
}

/// The score's value in the type its data type calls for.
fn polymorphic_value(row: &ScoreV3Row) -> Result<Value, &'static str> {
    match row.data_type.as_str() {
        "NUMERIC" => Ok(json!(row.value)),
        "BOOLEAN" => Ok(json!(row.value == 1.0)),
        "CATEGORICAL" | "TEXT" => row
            .string_value
            .as_ref()
            .map(|s| json!(s))
            .ok_or("a categorical or text score without its string value"),
        // A correction's text is its string value; a missing one reads as the empty string.
        "CORRECTION" => Ok(json!(row.string_value.as_deref().unwrap_or_default())),
        _ => Err("an unknown data type"),
    }
}

/// What the score is about: an experiment (dataset run), an observation, a session or a trace,
/// in that order of precedence.
fn subject(row: &ScoreV3Row) -> Result<Value, &'static str> {
    if let Some(id) = &row.dataset_run_id {
        return Ok(json!({ "kind": "experiment", "id": id }));
    }
    if let Some(id) = &row.observation_id {
        let mut subject = json!({ "kind": "observation", "id": id });
        if let Some(trace_id) = &row.trace_id {
            subject["traceId"] = json!(trace_id);
        }
        return Ok(subject);
    }
    if let Some(id) = &row.session_id {
        return Ok(json!({ "kind": "session", "id": id }));
    }
    match &row.trace_id {
        Some(id) => Ok(json!({ "kind": "trace", "id": id })),
        None => Err("a trace score without its trace id"),
    }
}

pub fn score_json(
    row: &ScoreV3Row,
    project: &ProjectId,
    groups: Groups,
) -> Result<Map<String, Value>, &'static str> {
    let mut score = Map::new();
    let mut put = |key: &str, value: Value| {
        score.insert(key.to_string(), value);
    };
    put("id", json!(row.id));
    put("projectId", json!(project));
    put("name", json!(row.name));
    put("dataType", json!(row.data_type));
    put("value", polymorphic_value(row)?);
    put("source", json!(row.source));
    put("timestamp", json!(iso(row.timestamp)));
    put("environment", json!(row.environment));
    put("createdAt", json!(iso(row.created_at)));
    put("updatedAt", json!(iso(row.updated_at)));
    if groups.details {
        put("comment", json!(row.comment));
        put("configId", json!(row.config_id));
        put("metadata", metadata(&row.metadata));
    }
    if groups.annotation {
        put("authorUserId", json!(row.author_user_id));
        put("queueId", json!(row.queue_id));
    }
    if groups.subject {
        put("subject", subject(row)?);
    }
    Ok(score)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn parsed(query: &str) -> Result<ListRequest, String> {
        parse_request(Query::parse(query).unwrap()).map_err(|e| e.to_string())
    }

    fn row(data_type: &str, value: f64, string_value: Option<&str>) -> ScoreV3Row {
        ScoreV3Row {
            id: "s".into(),
            timestamp: Utc::now(),
            environment: "default".into(),
            name: "n".into(),
            value,
            string_value: string_value.map(str::to_string),
            source: "API".into(),
            data_type: data_type.into(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            comment: None,
            metadata: vec![],
            config_id: None,
            trace_id: Some("t".into()),
            observation_id: None,
            session_id: None,
            dataset_run_id: None,
            author_user_id: None,
            queue_id: None,
        }
    }

    #[test]
    fn lists_enums_and_defaults() {
        let request = parsed("").unwrap();
        assert_eq!((request.limit, request.groups), (50, Groups::default()));
        let request = parsed("name=a,%20b,&source=api,Eval&dataType=numeric&limit=100").unwrap();
        assert_eq!(request.filter.names, vec!["a", "b"]);
        assert_eq!(request.filter.sources, vec!["API", "EVAL"]);
        assert_eq!(request.filter.data_types, vec!["NUMERIC"]);
        assert_eq!(parsed("limit=").unwrap().limit, 50);
        assert_eq!(
            parsed("valueMin=&fromTimestamp=&userId=").unwrap().filter,
            ScoreV3Filter::default()
        );
        let g = parsed("fields=core,details,subject,annotation")
            .unwrap()
            .groups;
        assert!(g.details && g.subject && g.annotation);
    }

    #[test]
    fn values_need_one_data_type() {
        let numbers = parsed("dataType=NUMERIC&value=1,2.5")
            .unwrap()
            .filter
            .values;
        assert_eq!(numbers, Some(ValueFilter::Numbers(vec![1.0, 2.5])));
        let flags = parsed("dataType=boolean&value=true,false")
            .unwrap()
            .filter
            .values;
        assert_eq!(flags, Some(ValueFilter::Numbers(vec![1.0, 0.0])));
        let labels = parsed("dataType=CATEGORICAL&value=good")
            .unwrap()
            .filter
            .values;
        assert_eq!(labels, Some(ValueFilter::Labels(vec!["good".into()])));
        for (query, message) in [
            ("value=1", "requires a single dataType"),
            (
                "dataType=NUMERIC,BOOLEAN&value=1",
                "requires a single dataType",
            ),
            ("dataType=TEXT&value=x", "(got \"TEXT\")"),
            ("dataType=NUMERIC&value=x", "finite number"),
            ("dataType=BOOLEAN&value=1", "\"true\" or \"false\""),
            ("valueMin=1", "valueMin and valueMax"),
            ("dataType=BOOLEAN&valueMax=1", "valueMin and valueMax"),
            ("dataType=NUMERIC&valueMin=abc", "valueMin must be a number"),
        ] {
            let error = parsed(query).unwrap_err();
            assert!(error.contains(message), "{query}: {error}");
        }
    }

    #[test]
    fn bad_requests() {
        for (query, message) in [
            ("page=2", "unrecognized parameter(s): page"),
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=1.5", "limit"),
            ("fields=scores", "not one of core"),
            (
                "source=robot",
                "Invalid source value: \"ROBOT\". Allowed: API, EVAL, ANNOTATION",
            ),
            ("dataType=float", "Invalid dataType value"),
            ("userId=u", "userId filter requires a trace JOIN"),
            ("traceTags=a", "traceTags filter requires a trace JOIN"),
            ("observationId=o", "observationId filter requires traceId"),
            ("traceId=t&sessionId=s", "At most one of"),
            ("sessionId=s&experimentId=e", "At most one of"),
            ("fromTimestamp=soon", "not a date-time"),
            ("name=a&name=b", "must be given once"),
            ("cursor=%%%", "Invalid cursor format"),
        ] {
            let error = parsed(query).unwrap_err();
            assert!(error.contains(message), "{query}: {error}");
        }
        assert!(parsed("traceId=t&observationId=o").is_ok());
        let v2 =
            params::base64_url(br#"{"v":2,"lastTimestamp":"2024-01-01T00:00:00Z","lastId":"x"}"#);
        assert!(parsed(&format!("cursor={v2}"))
            .unwrap_err()
            .contains("cursor.v"));
    }

    #[test]
    fn values_by_data_type_and_subjects() {
        let groups = Groups {
            subject: true,
            ..Groups::default()
        };
        let numeric = score_json(
            &row("NUMERIC", 0.5, None),
            &ProjectId::authenticated("p"),
            groups,
        )
        .unwrap();
        assert_eq!(numeric["value"], json!(0.5));
        assert_eq!(numeric["subject"], json!({"kind": "trace", "id": "t"}));
        let boolean = score_json(
            &row("BOOLEAN", 1.0, Some("True")),
            &ProjectId::authenticated("p"),
            groups,
        )
        .unwrap();
        assert_eq!(boolean["value"], json!(true));
        let label = score_json(
            &row("CATEGORICAL", 0.0, Some("good")),
            &ProjectId::authenticated("p"),
            groups,
        )
        .unwrap();
        assert_eq!(label["value"], json!("good"));
        assert!(score_json(
            &row("CATEGORICAL", 0.0, None),
            &ProjectId::authenticated("p"),
            groups
        )
        .is_err());
        let mut observation = row("NUMERIC", 1.0, None);
        observation.observation_id = Some("o".into());
        observation.session_id = Some("ignored".into());
        assert_eq!(
            score_json(&observation, &ProjectId::authenticated("p"), groups).unwrap()["subject"],
            json!({"kind": "observation", "id": "o", "traceId": "t"})
        );
        let mut run = observation.clone();
        run.dataset_run_id = Some("r".into());
        assert_eq!(
            score_json(&run, &ProjectId::authenticated("p"), groups).unwrap()["subject"],
            json!({"kind": "experiment", "id": "r"})
        );
        let core = score_json(
            &row("NUMERIC", 1.0, None),
            &ProjectId::authenticated("p"),
            Groups::default(),
        )
        .unwrap();
        let keys: Vec<&str> = core.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "createdAt",
                "dataType",
                "environment",
                "id",
                "name",
                "projectId",
                "source",
                "timestamp",
                "updatedAt",
                "value"
            ]
        );
    }
}
