//! Media: `POST /api/public/media` (an upload URL for some content, or none when the project
//! already has it), `PATCH /api/public/media/{mediaId}` (the upload's outcome) and `GET
//! /api/public/media/{mediaId}` (a download URL and its expiry), in the shapes of Langfuse's spec.
//!
//! Where the bytes go depends on the blob backend. On S3 the upload and download URLs are
//! presigned S3 URLs: the SDK talks to the bucket. On the local filesystem this server is the
//! bucket: the upload URL is `PUT /api/public/media/{mediaId}/upload` and the download URL `GET
//! /api/public/media/{mediaId}/download`, each with a grant signed by the installation's secret
//! (`domain::media::Grant`) in its query string. An upload is streamed to a staging file while its
//! length and SHA-256 are checked against the grant, and becomes the object only when both match:
//! a wrong hash, a body over the announced length or a bad signature leaves nothing behind. The
//! download route serves either backend (the web UI's media links use it, so the pages load
//! media from their own origin).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::resource;
use crate::config::Settings;
use crate::domain::media::{
    extension_of, media_id_of, presentation_of, requested_range, sha256_base64, Grant,
    Presentation, RangeRequest, UploadLimits, UploadRequest, UrlSigner,
};
use crate::domain::project::ProjectId;
use crate::domain::time::{iso, parse_time};
use crate::http::auth::{media_grant_project, ProjectAuth};
use crate::http::error::ApiError;
use crate::storage::media::{self, MediaRecord, NewMedia, UploadOutcome};
use crate::storage::Stores;

/// The media settings every handler needs, built once from `Settings`.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    pub signer: UrlSigner,
    pub max_content_length: u64,
    pub allowed_content_types: Vec<String>,
    pub prefix: String,
    pub upload_url_expiry_secs: u64,
    pub download_url_expiry_secs: u64,
    /// Where clients reach this server (`auth.public_url`); empty: the request's own host.
    pub public_url: String,
}

impl MediaConfig {
    pub fn new(settings: &Settings) -> MediaConfig {
        MediaConfig {
            signer: UrlSigner::new(
                settings.media.url_signing_secret.expose_secret(),
                settings.auth.salt.expose_secret(),
            ),
            max_content_length: settings.media.max_content_length,
            allowed_content_types: settings.media.allowed_content_types(),
            prefix: settings.media.prefix.clone(),
            upload_url_expiry_secs: settings.media.upload_url_expiry_secs,
            download_url_expiry_secs: settings.media.download_url_expiry_secs,
            public_url: settings.auth.public_url.trim_end_matches('/').to_string(),
        }
    }

    /// The absolute address of this server as the caller of `req` reaches it.
    fn base_url(&self, req: &HttpRequest) -> String {
        if !self.public_url.is_empty() {
            return self.public_url.clone();
        }
        let info = req.connection_info();
        format!("{}://{}", info.scheme(), info.host())
    }

    /// A download link of this server for `record` (path and query, no host), valid for the
    /// configured time, and when it expires.
    pub fn download_path(
        &self,
        project: &ProjectId,
        record: &MediaRecord,
        now: DateTime<Utc>,
    ) -> (String, DateTime<Utc>) {
        let expires_at = now + chrono::Duration::seconds(self.download_url_expiry_secs as i64);
        let expires = expires_at.timestamp();
        let grant = Grant::Download {
            project_id: project.as_str(),
            media_id: &record.id,
            content_type: &record.content_type,
            expires,
        };
        let query = DownloadQuery {
            project: project.as_str().to_string(),
            r#type: record.content_type.clone(),
            expires,
            signature: self.signer.sign(&grant),
        };
        let path = format!(
            "/api/public/media/{}/download?{}",
            percent_encoding::utf8_percent_encode(&record.id, percent_encoding::NON_ALPHANUMERIC),
            serde_urlencoded::to_string(&query).unwrap_or_default()
        );
        (path, expires_at)
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/media").route(web::post().to(upload_url)))
        .service(
            resource("/media/{mediaId}")
                .route(web::get().to(get_media))
                .route(web::patch().to(record_upload)),
        )
        .service(resource("/media/{mediaId}/upload").route(web::put().to(receive_upload)))
        .service(resource("/media/{mediaId}/download").route(web::get().to(download)));
}

async fn upload_url(
    auth: ProjectAuth,
    req: HttpRequest,
    body: web::Json<Value>,
    stores: web::Data<Stores>,
    config: web::Data<MediaConfig>,
) -> Result<HttpResponse, ApiError> {
    let request = UploadRequest::from_json(
        &body,
        &UploadLimits {
            max_content_length: config.max_content_length,
            allowed_content_types: &config.allowed_content_types,
        },
    )
    .map_err(|e| ApiError::BadRequest(format!("Invalid request data: {e}")))?;
    let project = &auth.project_id;
    let existing = media::by_hash(&stores.postgres, project, &request.sha256_hash).await?;
    if let Some(existing) = existing
        .as_ref()
        .filter(|m| m.is_uploaded() && m.content_type == request.content_type)
    {
        media::link(&stores.postgres, project, &existing.id, &request.context).await?;
        return Ok(HttpResponse::Ok().json(json!({ "mediaId": existing.id, "uploadUrl": null })));
    }
    let media_id = existing
        .map(|m| m.id)
        .unwrap_or_else(|| media_id_of(&request.sha256_hash));
    let extension = extension_of(&request.content_type).unwrap_or("bin");
    let bucket_path = media::object_key(&config.prefix, project, &media_id, extension);
    let record = media::upsert(
        &stores.postgres,
        project,
        &NewMedia {
            id: &media_id,
            sha256_hash: &request.sha256_hash,
            content_type: &request.content_type,
            content_length: request.content_length,
            bucket_path: &bucket_path,
        },
    )
    .await?;
    media::link(&stores.postgres, project, &record.id, &request.context).await?;
    let expiry = std::time::Duration::from_secs(config.upload_url_expiry_secs);
    let object = media::object_path(&stores.blob.base(), &record.bucket_path);
    let upload_url = match stores
        .blob
        .presigned_url(http::Method::PUT, &object, expiry)
        .await?
    {
        Some(url) => url.to_string(),
        None => {
            let expires = Utc::now().timestamp() + config.upload_url_expiry_secs as i64;
            let grant = Grant::Upload {
                project_id: project.as_str(),
                media_id: &record.id,
                content_type: &record.content_type,
                content_length: record.content_length,
                sha256_hash: &record.sha256_hash,
                expires,
            };
            let query = UploadQuery {
                project: project.as_str().to_string(),
                r#type: record.content_type.clone(),
                length: record.content_length,
                hash: record.sha256_hash.clone(),
                expires,
                signature: config.signer.sign(&grant),
            };
            format!(
                "{}/api/public/media/{}/upload?{}",
                config.base_url(&req),
                record.id,
                serde_urlencoded::to_string(&query).unwrap_or_default()
            )
        }
    };
    Ok(HttpResponse::Ok().json(json!({ "mediaId": record.id, "uploadUrl": upload_url })))
}

async fn get_media(
    auth: ProjectAuth,
    req: HttpRequest,
    path: web::Path<String>,
    stores: web::Data<Stores>,
    config: web::Data<MediaConfig>,
) -> Result<HttpResponse, ApiError> {
    let project = &auth.project_id;
    let record = media::get(&stores.postgres, project, &path.into_inner())
        .await?
        .ok_or_else(|| ApiError::NotFound("Media asset not found".to_string()))?;
    match record.upload_http_status {
        None => return Err(ApiError::NotFound("Media not yet uploaded".to_string())),
        Some(200 | 201) => {}
        Some(status) => {
            return Err(ApiError::NotFound(format!(
                "Media upload failed with status {status}: {}",
                record.upload_http_error.as_deref().unwrap_or("")
            )))
        }
    }
    let now = Utc::now();
    let expiry = std::time::Duration::from_secs(config.download_url_expiry_secs);
    let object = media::object_path(&stores.blob.base(), &record.bucket_path);
    let (url, expires_at) = match stores
        .blob
        .presigned_url(http::Method::GET, &object, expiry)
        .await?
    {
        Some(url) => (
            url.to_string(),
            now + chrono::Duration::seconds(config.download_url_expiry_secs as i64),
        ),
        None => {
            let (path, expires_at) = config.download_path(project, &record, now);
            (format!("{}{path}", config.base_url(&req)), expires_at)
        }
    };
    Ok(HttpResponse::Ok().json(json!({
        "mediaId": record.id,
        "contentType": record.content_type,
        "contentLength": record.content_length,
        "uploadedAt": record.uploaded_at.map(iso),
        "url": url,
        "urlExpiry": iso(expires_at),
    })))
}

async fn record_upload(
    auth: ProjectAuth,
    path: web::Path<String>,
    body: web::Json<Value>,
    stores: web::Data<Stores>,
) -> Result<HttpResponse, ApiError> {
    let invalid = |e: &str| ApiError::BadRequest(format!("Invalid request data: {e}"));
    let uploaded_at = body
        .get("uploadedAt")
        .and_then(Value::as_str)
        .and_then(parse_time)
        .ok_or_else(|| invalid("uploadedAt must be a date-time"))?;
    let http_status = body
        .get("uploadHttpStatus")
        .and_then(Value::as_i64)
        .filter(|s| (1..=999).contains(s))
        .ok_or_else(|| invalid("uploadHttpStatus must be an HTTP status code"))?;
    let http_error = match body.get("uploadHttpError") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(invalid("uploadHttpError must be a string or null")),
    };
    let time_ms = match body.get("uploadTimeMs") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_f64()
                .filter(|t| *t >= 0.0)
                .ok_or_else(|| invalid("uploadTimeMs must be a non-negative number or null"))?
                as i64,
        ),
    };
    let media_id = path.into_inner();
    let found = media::record_upload(
        &stores.postgres,
        &auth.project_id,
        &media_id,
        &UploadOutcome {
            uploaded_at,
            http_status: http_status as i32,
            http_error,
            time_ms,
            only_at: None,
        },
    )
    .await?;
    if !found {
        return Err(ApiError::NotFound(format!(
            "Media asset {media_id} not found"
        )));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The grant of an upload URL, as its query string carries it.
#[derive(Debug, Serialize, Deserialize)]
struct UploadQuery {
    project: String,
    r#type: String,
    length: u64,
    hash: String,
    expires: i64,
    signature: String,
}

/// The grant of a download URL, as its query string carries it.
#[derive(Debug, Serialize, Deserialize)]
struct DownloadQuery {
    project: String,
    r#type: String,
    expires: i64,
    signature: String,
}

/// The local backend's upload: the body is streamed into a staging file while its length and
/// SHA-256 are checked against the grant; only a body that matches both becomes the object, and
/// the media is recorded as uploaded.
async fn receive_upload(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<UploadQuery>,
    mut payload: web::Payload,
    stores: web::Data<Stores>,
    config: web::Data<MediaConfig>,
) -> Result<HttpResponse, ApiError> {
    let started = std::time::Instant::now();
    let media_id = path.into_inner();
    let grant = Grant::Upload {
        project_id: &query.project,
        media_id: &media_id,
        content_type: &query.r#type,
        content_length: query.length,
        sha256_hash: &query.hash,
        expires: query.expires,
    };
    let project = media_grant_project(&config.signer, &grant, &query.project, &query.signature)?;
    if let Some(sent) = req.headers().get(header::CONTENT_TYPE) {
        if sent.to_str().ok() != Some(query.r#type.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "Content-Type must be {}, as announced",
                query.r#type
            )));
        }
    }
    if let Some(sent) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if sent > query.length {
            return Err(too_large(query.length));
        }
        if sent != query.length {
            return Err(ApiError::BadRequest(format!(
                "Content-Length must be {}, as announced",
                query.length
            )));
        }
    }
    let extension = extension_of(&query.r#type).unwrap_or("bin");
    let key = media::object_key(&config.prefix, &project, &media_id, extension);
    let object = media::object_path(&stores.blob.base(), &key);
    let Some(mut staged) = stores.blob.stage(&object).await? else {
        // S3: clients upload to the bucket's presigned URLs, never here.
        return Err(ApiError::NotFound("Route not found".to_string()));
    };
    let mut hasher = Sha256::new();
    let mut received: u64 = 0;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("Reading the body: {e}")))?;
        received += chunk.len() as u64;
        if received > query.length {
            return Err(too_large(query.length));
        }
        hasher.update(&chunk);
        staged.write(&chunk).await?;
    }
    if received != query.length {
        return Err(ApiError::BadRequest(format!(
            "The body has {received} bytes; {} were announced",
            query.length
        )));
    }
    if sha256_base64(&hasher.finalize()) != query.hash {
        return Err(ApiError::BadRequest(
            "The body's SHA-256 does not match the announced sha256Hash".to_string(),
        ));
    }
    staged.commit().await?;
    media::record_upload(
        &stores.postgres,
        &project,
        &media_id,
        &UploadOutcome {
            uploaded_at: Utc::now(),
            http_status: 200,
            http_error: None,
            time_ms: Some(started.elapsed().as_millis() as i64),
            only_at: Some(&key),
        },
    )
    .await?;
    Ok(HttpResponse::Ok().finish())
}

fn too_large(limit: u64) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "The body is larger than the announced {limit} bytes"
    ))
}

/// A download through this server: the object streamed from blob storage (either backend). Its
/// own content-security policy sandboxes it, so an uploaded HTML or SVG file opened here cannot
/// run script in this origin; only images, audio and video are shown inline.
async fn download(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<DownloadQuery>,
    stores: web::Data<Stores>,
    config: web::Data<MediaConfig>,
) -> Result<HttpResponse, ApiError> {
    let media_id = path.into_inner();
    let grant = Grant::Download {
        project_id: &query.project,
        media_id: &media_id,
        content_type: &query.r#type,
        expires: query.expires,
    };
    let project = media_grant_project(&config.signer, &grant, &query.project, &query.signature)?;
    let not_found = || ApiError::NotFound("Media asset not found".to_string());
    let record = media::get(&stores.postgres, &project, &media_id)
        .await?
        .filter(|r| r.is_uploaded() && r.content_type == query.r#type)
        .ok_or_else(not_found)?;
    let object = media::object_path(&stores.blob.base(), &record.bucket_path);
    let ranged = req
        .headers()
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok());
    let range = match requested_range(ranged, record.content_length) {
        RangeRequest::Unsatisfiable => {
            return Ok(HttpResponse::RangeNotSatisfiable()
                .insert_header((
                    header::CONTENT_RANGE,
                    format!("bytes */{}", record.content_length),
                ))
                .finish())
        }
        RangeRequest::Part(range) => Some(range),
        RangeRequest::Whole => None,
    };
    let (size, stream) = stores
        .blob
        .get_stream(&object, range.clone())
        .await?
        .ok_or_else(not_found)?;
    let disposition = match presentation_of(&record.content_type) {
        Presentation::Image | Presentation::Audio | Presentation::Video
            if record.content_type != "image/svg+xml" =>
        {
            "inline"
        }
        _ => "attachment",
    };
    let filename = format!(
        "{}.{}",
        record.id,
        extension_of(&record.content_type).unwrap_or("bin")
    );
    let mut answer = HttpResponse::build(match range {
        Some(_) => StatusCode::PARTIAL_CONTENT,
        None => StatusCode::OK,
    });
    let length = match &range {
        Some(range) => {
            answer.insert_header((
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", range.start, range.end - 1),
            ));
            range.end - range.start
        }
        None => size,
    };
    Ok(answer
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::CONTENT_TYPE, record.content_type.clone()))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("{disposition}; filename=\"{filename}\""),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; sandbox",
        ))
        .insert_header((header::CACHE_CONTROL, "private, max-age=300"))
        .body(actix_web::body::SizedStream::new(
            length,
            stream.map(|chunk| chunk.map_err(std::io::Error::other)),
        )))
}
