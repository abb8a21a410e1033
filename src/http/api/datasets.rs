//! Datasets, dataset items, dataset runs and run items, in the shapes of `Dataset`,
//! `DatasetItem`, `DatasetRun(WithItems)` and `DatasetRunItem`:
//!
//! - `POST|GET /v2/datasets` (create or update by name; the list), `GET /v2/datasets/{datasetName}`;
//!   the legacy `POST|GET /datasets` and `GET /datasets/{datasetName}` (with item ids or items
//!   and run names), which the 2.x/3.x SDKs call.
//! - `POST|GET /dataset-items` (create, or update by id; the list of active items, by dataset,
//!   source trace or observation, as of a `version` time), `GET|DELETE /dataset-items/{id}`.
//! - `POST|GET /dataset-run-items`; `GET /datasets/{datasetName}/runs`,
//!   `GET|DELETE /datasets/{datasetName}/runs/{runName}`.
//!
//! Names in paths arrive percent-encoded (a `/` of a folder as `%2F`) and are decoded once.
//! The rules are `domain::dataset`'s; the queries `storage::postgres::datasets`'.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::params::{page_meta, Page, Query};
use super::resource;
use crate::domain::dataset::{self, ItemChanges, ItemStatus};
use crate::domain::project::ProjectId;
use crate::domain::time::{iso, parse_time};
use crate::http::auth::ProjectAuth;
use crate::http::error::ApiError;
use crate::storage::clickhouse::observations;
use crate::storage::postgres::datasets::{
    self as store, Dataset, DatasetItem, DatasetRun, DatasetRunItem, DatasetUpsert,
    DatasetWriteError, ItemFilter, NewRunItem,
};
use crate::storage::Stores;

const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 100;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/v2/datasets")
            .route(web::get().to(list_datasets))
            .route(web::post().to(create_dataset)),
    )
    .service(resource("/v2/datasets/{datasetName}").route(web::get().to(get_dataset)))
    .service(
        resource("/datasets")
            .route(web::get().to(list_datasets_v1))
            .route(web::post().to(create_dataset_v1)),
    )
    .service(resource("/datasets/{datasetName}").route(web::get().to(get_dataset_v1)))
    .service(resource("/datasets/{datasetName}/runs").route(web::get().to(list_runs)))
    .service(
        resource("/datasets/{datasetName}/runs/{runName}")
            .route(web::get().to(get_run))
            .route(web::delete().to(delete_run)),
    )
    .service(
        resource("/dataset-items")
            .route(web::get().to(list_items))
            .route(web::post().to(create_item)),
    )
    .service(
        resource("/dataset-items/{id}")
            .route(web::get().to(get_item))
            .route(web::delete().to(delete_item)),
    )
    .service(
        resource("/dataset-run-items")
            .route(web::get().to(list_run_items))
            .route(web::post().to(create_run_item)),
    );
}

impl From<DatasetWriteError> for ApiError {
    fn from(error: DatasetWriteError) -> Self {
        match error {
            DatasetWriteError::Invalid(message) => ApiError::BadRequest(message),
            DatasetWriteError::NotFound(message) => ApiError::NotFound(message),
            DatasetWriteError::Conflict(message) => ApiError::Conflict(message),
            DatasetWriteError::Store(cause) => ApiError::Internal(cause),
        }
    }
}

fn dataset_not_found() -> ApiError {
    ApiError::NotFound("Dataset not found".to_string())
}

/// A path segment, percent-decoded (the router leaves `%2F`, `%25` and `%2B` encoded).
fn path_segment(req: &HttpRequest, name: &str) -> Result<String, ApiError> {
    let raw = req.match_info().get(name).unwrap_or_default();
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ApiError::BadRequest(format!("{name} is not valid UTF-8")))
        .and_then(|text| without_nul_text(name, text.into_owned()))
}

/// Text from a path or query parameter, refused when it holds NUL, which nothing stored holds
/// (PostgreSQL's text cannot) and a query cannot bind.
fn without_nul_text(name: &str, text: String) -> Result<String, ApiError> {
    if text.contains('\0') {
        return Err(ApiError::BadRequest(format!(
            "{name} must not contain NUL characters"
        )));
    }
    Ok(text)
}

/// A query parameter's text, as [`without_nul_text`] accepts it.
fn query_text(query: &Query, key: &str) -> Result<Option<String>, ApiError> {
    query
        .text(key)?
        .map(|text| without_nul_text(key, text))
        .transpose()
}

async fn dataset_named(
    stores: &Stores,
    project: &ProjectId,
    name: &str,
) -> Result<Dataset, ApiError> {
    store::get_dataset_by_name(&stores.postgres, project, name)
        .await?
        .ok_or_else(dataset_not_found)
}

// ---------------------------------------------------------------------------------------------
// Request bodies

/// A JSON object body's fields, read with the spec's types; a refusal names the request type
/// and the field, as Langfuse's validation does.
struct Fields<'a> {
    request: &'static str,
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn of(request: &'static str, body: &'a Value) -> Result<Fields<'a>, ApiError> {
        let map = body.as_object().ok_or_else(|| {
            ApiError::BadRequest(format!(
                "Invalid request data ({request}): expected an object"
            ))
        })?;
        Ok(Fields { request, map })
    }

    fn refuse(&self, message: impl std::fmt::Display) -> ApiError {
        ApiError::BadRequest(format!(
            "Invalid request data ({}): {message}",
            self.request
        ))
    }

    /// A string that may be absent or `null`.
    fn text(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            // PostgreSQL's text cannot hold NUL; every other character is kept.
            Some(Value::String(s)) => Ok(Some(s.replace('\0', ""))),
            Some(_) => Err(self.refuse(format!("{key} must be a string"))),
        }
    }

    fn required_text(&self, key: &str) -> Result<String, ApiError> {
        self.text(key)?
            .ok_or_else(|| self.refuse(format!("{key} is required")))
    }

    /// Any JSON value; absent and `null` are both `None`.
    fn value(&self, key: &str) -> Option<Value> {
        self.map
            .get(key)
            .filter(|v| !v.is_null())
            .cloned()
            .map(dataset::without_nul)
    }

    /// A value where absent (leave) and `null` (remove) differ.
    fn presence(&self, key: &str) -> Option<Option<Value>> {
        self.map
            .get(key)
            .map(|v| Some(v.clone()).filter(|v| !v.is_null()))
    }

    fn time(&self, key: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.text(key)?
            .map(|text| {
                parse_time(&text).ok_or_else(|| self.refuse(format!("{key} must be a date-time")))
            })
            .transpose()
    }
}

// ---------------------------------------------------------------------------------------------
// Datasets

async fn upsert_dataset(
    request: &'static str,
    auth: &ProjectAuth,
    body: &Value,
    stores: &Stores,
) -> Result<Dataset, ApiError> {
    let fields = Fields::of(request, body)?;
    let name =
        dataset::dataset_name(&fields.required_text("name")?).map_err(ApiError::BadRequest)?;
    let upsert = DatasetUpsert {
        name,
        description: fields.text("description")?,
        metadata: fields.value("metadata"),
        input_schema: fields.presence("inputSchema"),
        expected_output_schema: fields.presence("expectedOutputSchema"),
    };
    Ok(store::upsert_dataset(&stores.postgres, &auth.project_id, &upsert).await?)
}

async fn create_dataset(
    auth: ProjectAuth,
    body: web::Json<Value>,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let dataset = upsert_dataset("CreateDatasetRequest", &auth, &body, &stores).await?;
    Ok(HttpResponse::Ok().json(dataset_json(&dataset)))
}

async fn create_dataset_v1(
    auth: ProjectAuth,
    body: web::Json<Value>,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let dataset = upsert_dataset("CreateDatasetRequest", &auth, &body, &stores).await?;
    let mut answer = dataset_json(&dataset);
    answer["items"] = json!([]);
    answer["runs"] = json!([]);
    Ok(HttpResponse::Ok().json(answer))
}

async fn list_datasets(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let (rows, page, total) = page_of_datasets(&req, &stores, &auth.project_id).await?;
    let data: Vec<Value> = rows.iter().map(dataset_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data, "meta": page_meta(page, total) })))
}

/// The legacy list: each dataset with its active items' ids and its runs' names.
async fn list_datasets_v1(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let (rows, page, total) = page_of_datasets(&req, &stores, &auth.project_id).await?;
    let ids: Vec<String> = rows.iter().map(|d| d.id.clone()).collect();
    let mut contents =
        store::active_item_ids_and_run_names(&stores.postgres, &auth.project_id, &ids).await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|dataset| {
            let (items, runs) = contents.remove(&dataset.id).unwrap_or_default();
            let mut answer = dataset_json(dataset);
            answer["items"] = json!(items);
            answer["runs"] = json!(runs);
            answer
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data, "meta": page_meta(page, total) })))
}

/// The page of the project's datasets the request's `page` and `limit` ask for, and the total.
async fn page_of_datasets(
    req: &HttpRequest,
    stores: &Stores,
    project: &ProjectId,
) -> Result<(Vec<Dataset>, Page, u64), ApiError> {
    let page = Query::of(req)?.page(DEFAULT_LIMIT, MAX_LIMIT)?;
    let (rows, total) =
        store::list_datasets(&stores.postgres, project, page.offset(), page.limit).await?;
    Ok((rows, page, total))
}

/// Every active item of a dataset, and every run.
async fn items_and_runs(
    stores: &Stores,
    project: &ProjectId,
    dataset: &Dataset,
) -> Result<(Vec<DatasetItem>, Vec<DatasetRun>), ApiError> {
    let filter = ItemFilter {
        dataset_id: Some(dataset.id.clone()),
        status: Some(ItemStatus::Active),
        ..ItemFilter::default()
    };
    let (items, _) =
        store::list_items(&stores.postgres, project, &filter, 0, i64::MAX as u64).await?;
    let (runs, _) =
        store::list_runs(&stores.postgres, project, &dataset.id, 0, i64::MAX as u64).await?;
    Ok((items, runs))
}

async fn get_dataset(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let name = path_segment(&req, "datasetName")?;
    let dataset = dataset_named(&stores, &auth.project_id, &name).await?;
    Ok(HttpResponse::Ok().json(dataset_json(&dataset)))
}

/// The dataset a `datasetName` query parameter names. The legacy Python SDK percent-encodes the
/// name before its HTTP client encodes the query again, so the value can arrive still encoded
/// (`legacy%20set`): when no dataset has the name as given, the decoded name is tried.
async fn dataset_named_in_query(
    stores: &Stores,
    project: &ProjectId,
    name: &str,
) -> Result<Dataset, ApiError> {
    if let Some(dataset) = store::get_dataset_by_name(&stores.postgres, project, name).await? {
        return Ok(dataset);
    }
    let decoded = percent_encoding::percent_decode_str(name).decode_utf8();
    match decoded {
        Ok(decoded) if decoded != name && !decoded.contains('\0') => {
            dataset_named(stores, project, &decoded).await
        }
        _ => Err(dataset_not_found()),
    }
}

/// The legacy read: the dataset with its active items and its runs' names.
async fn get_dataset_v1(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let name = path_segment(&req, "datasetName")?;
    let dataset = dataset_named(&stores, &auth.project_id, &name).await?;
    let (items, runs) = items_and_runs(&stores, &auth.project_id, &dataset).await?;
    let mut answer = dataset_json(&dataset);
    answer["items"] = items.iter().map(item_json).collect();
    answer["runs"] = runs.iter().map(|r| json!(r.name)).collect();
    Ok(HttpResponse::Ok().json(answer))
}

/// A dataset as the API answers it (`Dataset`): every field present, `null` when unset.
pub fn dataset_json(d: &Dataset) -> Value {
    json!({
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "metadata": d.metadata,
        "inputSchema": d.input_schema,
        "expectedOutputSchema": d.expected_output_schema,
        "projectId": d.project_id,
        "createdAt": iso(d.created_at),
        "updatedAt": iso(d.updated_at),
    })
}

// ---------------------------------------------------------------------------------------------
// Items

async fn create_item(
    auth: ProjectAuth,
    body: web::Json<Value>,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let fields = Fields::of("CreateDatasetItemRequest", &body)?;
    let dataset_name = fields.required_text("datasetName")?;
    let item_id = fields
        .text("id")?
        .map(|id| dataset::item_id(&id).map_err(|e| fields.refuse(e)))
        .transpose()?;
    let status = fields
        .text("status")?
        .map(|s| {
            ItemStatus::parse(&s).ok_or_else(|| fields.refuse("status must be ACTIVE or ARCHIVED"))
        })
        .transpose()?;
    let changes = ItemChanges {
        input: fields.value("input"),
        expected_output: fields.value("expectedOutput"),
        metadata: fields.value("metadata"),
        source_trace_id: fields.text("sourceTraceId")?,
        source_observation_id: fields.text("sourceObservationId")?,
        status,
    };
    let dataset = dataset_named(&stores, &auth.project_id, &dataset_name).await?;
    let item = store::upsert_item(
        &stores.postgres,
        &auth.project_id,
        &dataset.id,
        item_id.as_deref(),
        changes,
    )
    .await?;
    Ok(HttpResponse::Ok().json(item_json(&item)))
}

async fn list_items(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::of(&req)?;
    let page = query.page(DEFAULT_LIMIT, MAX_LIMIT)?;
    let dataset_name = query_text(&query, "datasetName")?;
    let version = query.time("version")?;
    if version.is_some() && dataset_name.is_none() {
        return Err(super::params::bad(
            "datasetName is required when version parameter is provided",
        ));
    }
    let dataset_id = match &dataset_name {
        Some(name) => Some(
            dataset_named_in_query(&stores, &auth.project_id, name)
                .await?
                .id,
        ),
        None => None,
    };
    let filter = ItemFilter {
        dataset_id,
        source_trace_id: query_text(&query, "sourceTraceId")?,
        source_observation_id: query_text(&query, "sourceObservationId")?,
        status: Some(ItemStatus::Active),
        version,
    };
    let (items, total) = store::list_items(
        &stores.postgres,
        &auth.project_id,
        &filter,
        page.offset(),
        page.limit,
    )
    .await?;
    let data: Vec<Value> = items.iter().map(item_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data, "meta": page_meta(page, total) })))
}

async fn get_item(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let id = path_segment(&req, "id")?;
    let item = store::get_item(&stores.postgres, &auth.project_id, &id, None)
        .await?
        .ok_or_else(|| ApiError::NotFound("Dataset item not found".to_string()))?;
    Ok(HttpResponse::Ok().json(item_json(&item)))
}

async fn delete_item(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let id = path_segment(&req, "id")?;
    store::delete_item(&stores.postgres, &auth.project_id, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Dataset item with id {id} not found")))?;
    Ok(HttpResponse::Ok().json(json!({ "message": "Dataset item successfully deleted" })))
}

/// An item as the API answers it (`DatasetItem`). Media references are not resolved here, so
/// the list is always empty.
pub fn item_json(i: &DatasetItem) -> Value {
    json!({
        "id": i.id,
        "status": i.fields.status.as_str(),
        "input": i.fields.input,
        "expectedOutput": i.fields.expected_output,
        "metadata": i.fields.metadata,
        "sourceTraceId": i.fields.source_trace_id,
        "sourceObservationId": i.fields.source_observation_id,
        "datasetId": i.dataset_id,
        "datasetName": i.dataset_name,
        "createdAt": iso(i.created_at),
        "updatedAt": iso(i.updated_at),
        "mediaReferences": [],
    })
}

// ---------------------------------------------------------------------------------------------
// Runs and run items

async fn create_run_item(
    auth: ProjectAuth,
    body: web::Json<Value>,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let fields = Fields::of("CreateDatasetRunItemRequest", &body)?;
    let run_name = fields.required_text("runName")?;
    if run_name.is_empty() {
        return Err(fields.refuse("runName must not be empty"));
    }
    let item_id = fields.required_text("datasetItemId")?;
    let trace_id = fields.text("traceId")?;
    let observation_id = fields.text("observationId")?;
    let dataset_version = fields.time("datasetVersion")?;
    let created_at = fields.time("createdAt")?;
    if trace_id.is_none() && observation_id.is_none() {
        return Err(fields.refuse("traceId or observationId must be provided"));
    }
    let item = store::find_item_for_run(
        &stores.postgres,
        auth.project_id.as_str(),
        &item_id,
        dataset_version,
    )
    .await?
    .ok_or_else(|| ApiError::NotFound("Dataset item not found".to_string()))?;
    let trace_id = match (trace_id, &observation_id) {
        (Some(trace_id), _) => trace_id,
        // Older SDKs name only the observation; its trace is the one it was recorded in.
        (None, Some(observation_id)) => {
            observations::get(&stores.clickhouse, &auth.project_id, observation_id)
                .await?
                .ok_or_else(|| ApiError::NotFound("Observation not found".to_string()))?
                .trace_id
        }
        (None, None) => unreachable!("refused above"),
    };
    let mut metadata = fields.value("metadata").map(metadata_object);
    if let Some(version) = dataset_version {
        metadata
            .get_or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("metadata is an object")
            .insert("dataset_version".to_string(), json!(iso(version)));
    }
    let run = store::get_or_create_run(
        &stores.postgres,
        auth.project_id.as_str(),
        &item.dataset_id,
        &run_name,
        fields.text("runDescription")?.as_deref(),
        metadata.as_ref(),
    )
    .await?;
    let run_item = store::create_run_item(
        &stores.postgres,
        auth.project_id.as_str(),
        &NewRunItem {
            dataset_run_id: run.id,
            dataset_item_id: item.id,
            dataset_item_valid_from: Some(item.updated_at),
            trace_id,
            observation_id,
            created_at,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(run_item_json(&run_item)))
}

/// Run metadata is an object; anything else is kept under `metadata`, as Langfuse keeps it.
fn metadata_object(value: Value) -> Value {
    match value {
        Value::Object(_) => value,
        other => json!({ "metadata": other }),
    }
}

async fn list_run_items(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::of(&req)?;
    let page = query.page(DEFAULT_LIMIT, MAX_LIMIT)?;
    let dataset_id = query_text(&query, "datasetId")?
        .ok_or_else(|| super::params::bad("datasetId is required"))?;
    let run_name =
        query_text(&query, "runName")?.ok_or_else(|| super::params::bad("runName is required"))?;
    let run = store::get_run_by_name(&stores.postgres, &auth.project_id, &dataset_id, &run_name)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound("Dataset run not found for the given project and dataset id".into())
        })?;
    let (items, total) = store::list_run_items(
        &stores.postgres,
        &auth.project_id,
        &run.id,
        page.offset(),
        Some(page.limit),
    )
    .await?;
    let data: Vec<Value> = items.iter().map(run_item_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data, "meta": page_meta(page, total) })))
}

async fn list_runs(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let page = Query::of(&req)?.page(DEFAULT_LIMIT, MAX_LIMIT)?;
    let name = path_segment(&req, "datasetName")?;
    let dataset = dataset_named(&stores, &auth.project_id, &name).await?;
    let (runs, total) = store::list_runs(
        &stores.postgres,
        &auth.project_id,
        &dataset.id,
        page.offset(),
        page.limit,
    )
    .await?;
    let data: Vec<Value> = runs.iter().map(run_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data, "meta": page_meta(page, total) })))
}

async fn run_named(
    req: &HttpRequest,
    stores: &Stores,
    project: &ProjectId,
) -> Result<DatasetRun, ApiError> {
    let name = path_segment(req, "datasetName")?;
    let run_name = path_segment(req, "runName")?;
    let dataset = dataset_named(stores, project, &name).await?;
    store::get_run_by_name(&stores.postgres, project, &dataset.id, &run_name)
        .await?
        .ok_or_else(|| ApiError::NotFound("Dataset run not found".to_string()))
}

async fn get_run(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let run = run_named(&req, &stores, &auth.project_id).await?;
    let (items, _) =
        store::list_run_items(&stores.postgres, &auth.project_id, &run.id, 0, None).await?;
    let mut answer = run_json(&run);
    answer["datasetRunItems"] = items.iter().map(run_item_json).collect();
    Ok(HttpResponse::Ok().json(answer))
}

async fn delete_run(
    auth: ProjectAuth,
    req: HttpRequest,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let run = run_named(&req, &stores, &auth.project_id).await?;
    if !store::delete_run(&stores.postgres, &auth.project_id, &run.id).await? {
        return Err(ApiError::NotFound("Dataset run not found".to_string()));
    }
    Ok(HttpResponse::Ok().json(json!({ "message": "Dataset run successfully deleted" })))
}

/// A run as the API answers it (`DatasetRun`).
pub fn run_json(r: &DatasetRun) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "description": r.description,
        "metadata": r.metadata,
        "datasetId": r.dataset_id,
        "datasetName": r.dataset_name,
        "createdAt": iso(r.created_at),
        "updatedAt": iso(r.updated_at),
    })
}

/// A run item as the API answers it (`DatasetRunItem`).
pub fn run_item_json(r: &DatasetRunItem) -> Value {
    json!({
        "id": r.id,
        "datasetRunId": r.dataset_run_id,
        "datasetRunName": r.dataset_run_name,
        "datasetItemId": r.dataset_item_id,
        "traceId": r.trace_id,
        "observationId": r.observation_id,
        "createdAt": iso(r.created_at),
        "updatedAt": iso(r.updated_at),
    })
}
