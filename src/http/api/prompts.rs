//! Prompt management, in the shapes of Langfuse's OpenAPI spec:
//! `POST /api/public/v2/prompts`, `GET /api/public/v2/prompts`,
//! `GET` and `DELETE /api/public/v2/prompts/{name}`, and
//! `PATCH /api/public/v2/prompts/{name}/versions/{version}`.
//!
//! Reads of one prompt are answered from the process's [`PromptCache`]; a hit is served without
//! waiting on any store. Every answer carries `Server-Timing: app;dur=<ms>` (time in this process,
//! from routing to the finished response); reads of one prompt add `cache;desc=<source>` and, on a
//! miss, `miss;dur=<ms>`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::{json, Value};

use super::params::{bad, page_meta, Query};
use super::resource;
use crate::domain::prompt::{self, Resolved, Selector, PRODUCTION_LABEL};
use crate::domain::time::iso;
use crate::http::auth::ProjectAuth;
use crate::http::error::ApiError;
use crate::prompt_cache::{Cached, PromptCache, Source};
use crate::storage::prompts::{self as store, Deletion, ListFilter, PromptError, PromptRecord};

const DEFAULT_LIST_LIMIT: u64 = 10;
const MAX_LIST_LIMIT: u64 = 100;
/// What Langfuse records as the author of versions created through the public API.
const CREATED_BY_API: &str = "API";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v2/prompts")
            .wrap(from_fn(server_timing))
            .service(
                resource("")
                    .route(web::get().to(list_prompts))
                    .route(web::post().to(create_prompt)),
            )
            .service(
                resource("/{name}")
                    .route(web::get().to(get_prompt))
                    .route(web::delete().to(delete_prompt)),
            )
            .service(
                resource("/{name}/versions/{version}").route(web::patch().to(update_prompt_labels)),
            )
            .default_service(web::to(crate::http::error::not_found)),
    );
}

/// Time a cache miss spent on the prompt runtime, within the request's `app` time.
#[derive(Debug, Clone, Copy)]
struct MissWork(std::time::Duration);

/// Adds `Server-Timing`, so load generators can tell time spent in this process from time spent
/// queued in front of it: `app` (routing to finished response), `miss` (the part a cache miss spent
/// on the prompt runtime) and `cache` (where the answer came from).
async fn server_timing(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let mut response = next.call(req).await?;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let extensions = response.response().extensions();
    let mut value = format!("app;dur={elapsed_ms:.3}");
    if let Some(MissWork(work)) = extensions.get::<MissWork>().copied() {
        value.push_str(&format!(", miss;dur={:.3}", work.as_secs_f64() * 1000.0));
    }
    if let Some(source) = extensions.get::<Source>().copied() {
        value.push_str(&format!(", cache;desc={}", source.as_str()));
    }
    drop(extensions);
    if let Ok(value) = HeaderValue::from_str(&value) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("server-timing"), value);
    }
    Ok(response)
}

impl From<PromptError> for ApiError {
    fn from(err: PromptError) -> Self {
        match err {
            PromptError::NotFound(message) => ApiError::NotFound(message),
            PromptError::Invalid(message) => ApiError::BadRequest(message),
            PromptError::Store(cause) => ApiError::Internal(cause),
        }
    }
}

/// A version as the API shows it. `resolved` is given for reads of one prompt, which carry
/// `resolutionGraph` (null when nothing is included or `resolve=false`).
fn prompt_json(record: &PromptRecord, resolved: Option<Option<&Resolved>>) -> Value {
    let content = match resolved {
        Some(Some(resolved)) => resolved.content.clone(),
        _ => record.prompt.clone(),
    };
    let mut body = json!({
        "id": record.id,
        "projectId": record.project_id,
        "name": record.name,
        "version": record.version,
        "type": record.kind.as_str(),
        "prompt": content,
        "config": record.config,
        "labels": record.labels,
        "tags": record.tags,
        "commitMessage": record.commit_message,
        "createdBy": record.created_by,
        "createdAt": iso(record.created_at),
        "updatedAt": iso(record.updated_at),
        // Deprecated in Langfuse, still read by old SDKs.
        "isActive": record.labels.iter().any(|l| l == PRODUCTION_LABEL),
    });
    if let Some(resolved) = resolved {
        body["resolutionGraph"] = resolved
            .and_then(|r| r.graph.as_ref())
            .map(|g| serde_json::to_value(g).unwrap_or(Value::Null))
            .unwrap_or(Value::Null);
    }
    body
}

/// The `{name}` path segment, fully percent-decoded. The SDKs encode the whole name (folders
/// included: `a%2Fb`), and the router leaves `%2F`, `%25` and `%2B` encoded within a segment.
fn path_name(req: &HttpRequest) -> Result<String, ApiError> {
    let raw = req.match_info().get("name").unwrap_or_default();
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|name| name.into_owned())
        .map_err(|_| ApiError::BadRequest("The prompt name is not valid UTF-8".to_string()))
}

/// The `version` parameter: a positive integer that fits the stored column.
fn version(query: &Query) -> Result<Option<i32>, ApiError> {
    query
        .positive_integer("version")?
        .map(|v| i32::try_from(v).map_err(|_| bad(format!("version {v} is too large"))))
        .transpose()
}

fn selector(query: &Query) -> Result<Selector, ApiError> {
    Selector::from_parts(version(query)?, query.single("label")?.map(str::to_string))
        .map_err(ApiError::BadRequest)
}

fn not_found_message(name: &str, selector: &Selector) -> String {
    match selector {
        Selector::Version(v) => format!("Prompt not found: '{name}' with version {v}"),
        Selector::Label(l) => format!("Prompt not found: '{name}' with label '{l}'"),
    }
}

fn answer(cached: Cached, name: &str, selector: &Selector, source: Source) -> HttpResponse {
    let mut response = match cached {
        Cached::Found(body) => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, "application/json"))
            .body(body),
        Cached::Missing => ApiError::NotFound(not_found_message(name, selector)).error_response(),
    };
    response.extensions_mut().insert(source);
    response
}

async fn get_prompt(
    auth: ProjectAuth,
    req: HttpRequest,
    cache: web::Data<PromptCache>,
) -> Result<HttpResponse, ApiError> {
    let name = path_name(&req)?;
    let query = Query::of(&req)?.empty_as_absent();
    let selector = selector(&query)?;
    let resolve = match query.single("resolve")? {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => return Err(bad(format!("resolve must be true or false, not {other:?}"))),
    };
    if !resolve {
        // The raw stored version, for debugging composed prompts: not cached.
        let (pool, project_id, wanted, which) = (
            cache.pool().clone(),
            auth.project_id.clone(),
            name.clone(),
            selector.clone(),
        );
        let found = cache
            .run(async move {
                let client = pool.get().await.map_err(PromptError::from)?;
                store::find(&client, &project_id, &wanted, &which).await
            })
            .await??;
        let cached = match found {
            Some(record) => Cached::Found(body_bytes(&prompt_json(&record, Some(None)))),
            None => Cached::Missing,
        };
        return Ok(answer(cached, &name, &selector, Source::Database));
    }
    // The hit path: memory only, nothing awaited.
    if let Some(hit) = cache.get(&auth.project_id, &name, &selector) {
        return Ok(answer(hit, &name, &selector, Source::Memory));
    }
    let load = {
        let (pool, project_id, name, selector) = (
            cache.pool().clone(),
            auth.project_id.clone(),
            name.clone(),
            selector.clone(),
        );
        async move {
            let found = store::find_resolved(&pool, &project_id, &name, &selector).await?;
            Ok(match found {
                Some((record, resolved)) => {
                    Cached::Found(body_bytes(&prompt_json(&record, Some(Some(&resolved)))))
                }
                None => Cached::Missing,
            })
        }
    };
    let (cached, source, work) = cache
        .into_inner()
        .get_or_load(&auth.project_id, &name, &selector, load)
        .await?;
    let mut response = answer(cached, &name, &selector, source);
    response.extensions_mut().insert(MissWork(work));
    Ok(response)
}

fn body_bytes(body: &Value) -> bytes::Bytes {
    bytes::Bytes::from(serde_json::to_vec(body).unwrap_or_default())
}

async fn create_prompt(
    auth: ProjectAuth,
    body: web::Json<Value>,
    cache: web::Data<PromptCache>,
) -> Result<HttpResponse, ApiError> {
    let new = prompt::parse_new_prompt(&body)
        .map_err(|e| ApiError::BadRequest(format!("Invalid request data: {e}")))?;
    let (pool, project_id) = (cache.pool().clone(), auth.project_id.clone());
    let (created, epoch) = cache
        .run(async move { store::create(&pool, &project_id, &new, CREATED_BY_API).await })
        .await??;
    cache.written(&auth.project_id, epoch);
    Ok(HttpResponse::Created().json(prompt_json(&created, None)))
}

async fn update_prompt_labels(
    auth: ProjectAuth,
    req: HttpRequest,
    body: web::Json<Value>,
    cache: web::Data<PromptCache>,
) -> Result<HttpResponse, ApiError> {
    let name = path_name(&req)?;
    let version = req
        .match_info()
        .get("version")
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|v| *v >= 1)
        .ok_or_else(|| {
            ApiError::BadRequest("The version in the path must be a positive integer".to_string())
        })?;
    let labels = prompt::parse_new_labels(&body)
        .map_err(|e| ApiError::BadRequest(format!("Invalid request data: {e}")))?;
    let (pool, project_id) = (cache.pool().clone(), auth.project_id.clone());
    let (updated, epoch) = cache
        .run(async move { store::update_labels(&pool, &project_id, &name, version, &labels).await })
        .await??;
    cache.written(&auth.project_id, epoch);
    Ok(HttpResponse::Ok().json(prompt_json(&updated, None)))
}

async fn delete_prompt(
    auth: ProjectAuth,
    req: HttpRequest,
    cache: web::Data<PromptCache>,
) -> Result<HttpResponse, ApiError> {
    let name = path_name(&req)?;
    let query = Query::of(&req)?.empty_as_absent();
    let which = match (version(&query)?, query.single("label")?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "Cannot specify both version and label".to_string(),
            ))
        }
        (Some(v), None) => Deletion::Version(v),
        (None, Some(l)) => Deletion::Label(l.to_string()),
        (None, None) => Deletion::All,
    };
    let (pool, project_id) = (cache.pool().clone(), auth.project_id.clone());
    let epoch = cache
        .run(async move { store::delete(&pool, &project_id, &name, &which).await })
        .await??;
    cache.written(&auth.project_id, epoch);
    Ok(HttpResponse::build(StatusCode::NO_CONTENT).finish())
}

async fn list_prompts(
    auth: ProjectAuth,
    req: HttpRequest,
    cache: web::Data<PromptCache>,
) -> Result<HttpResponse, ApiError> {
    let query = Query::of(&req)?.empty_as_absent();
    let page = query.page(DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)?;
    let text = |key: &str| -> Result<Option<String>, ApiError> {
        Ok(query.single(key)?.map(str::to_string))
    };
    let filter = ListFilter {
        name: text("name")?,
        label: text("label")?,
        tag: text("tag")?,
        version: version(&query)?,
        from_updated_at: query.time("fromUpdatedAt")?,
        to_updated_at: query.time("toUpdatedAt")?,
    };
    let (pool, project_id) = (cache.pool().clone(), auth.project_id.clone());
    let (number, limit) = (page.page as i64, page.limit as i64);
    let (metas, total) = cache
        .run(async move { store::list(&pool, &project_id, &filter, number, limit).await })
        .await??;
    let data: Vec<Value> = metas
        .iter()
        .map(|m| {
            json!({
                "name": m.name,
                "type": m.kind.as_str(),
                "versions": m.versions,
                "labels": m.labels,
                "tags": m.tags,
                "lastUpdatedAt": iso(m.last_updated_at),
                "lastConfig": m.last_config,
            })
        })
        .collect();
    let meta = page_meta(page, total as u64);
    // `pagination` repeats `meta`: Langfuse's first release of this endpoint used that key, and
    // old clients still read it.
    Ok(HttpResponse::Ok().json(json!({ "data": data, "meta": meta, "pagination": meta })))
}
