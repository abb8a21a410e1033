//! Media records in PostgreSQL (`media`, `trace_media`, `observation_media`,
//! `dataset_item_media`; see `sql/postgres/0008_media.sql`), and the key of each media's object
//! in blob storage. Every query is scoped to one project.

use anyhow::Context;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use object_store::path::{Path, PathPart};
use tokio_postgres::Row;

use crate::domain::media::MediaContext;
use crate::domain::project::ProjectId;

/// A stored media record.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRecord {
    pub id: String,
    pub project_id: String,
    pub sha256_hash: String,
    pub content_type: String,
    pub content_length: u64,
    pub bucket_path: String,
    pub uploaded_at: Option<DateTime<Utc>>,
    pub upload_http_status: Option<i32>,
    pub upload_http_error: Option<String>,
}

impl MediaRecord {
    /// Whether its bytes are known to be stored: the upload answered 200 or 201.
    pub fn is_uploaded(&self) -> bool {
        matches!(self.upload_http_status, Some(200 | 201))
    }
}

const COLUMNS: &str = "id, project_id, sha_256_hash, content_type, content_length, bucket_path, \
                       uploaded_at, upload_http_status, upload_http_error";

fn from_row(row: &Row) -> MediaRecord {
    let length: i64 = row.get("content_length");
    MediaRecord {
        id: row.get("id"),
        project_id: row.get("project_id"),
        sha256_hash: row.get("sha_256_hash"),
        content_type: row.get("content_type"),
        content_length: length.max(0) as u64,
        bucket_path: row.get("bucket_path"),
        uploaded_at: row.get("uploaded_at"),
        upload_http_status: row.get("upload_http_status"),
        upload_http_error: row.get("upload_http_error"),
    }
}

/// The object key of a media, relative to the installation's prefix:
/// `<media prefix><project id>/<media id>.<extension>`, the project id one path segment
/// (percent-encoded where it holds `/`).
pub fn object_key(
    media_prefix: &str,
    project: &ProjectId,
    media_id: &str,
    extension: &str,
) -> String {
    let project_part = PathPart::from(project.as_str());
    format!(
        "{media_prefix}{}/{media_id}.{extension}",
        project_part.as_ref()
    )
}

/// The stored key as an object path under `base` (the installation's prefix).
pub fn object_path(base: &Path, bucket_path: &str) -> Path {
    let key = Path::parse(bucket_path).unwrap_or_else(|_| Path::from(bucket_path));
    if base.as_ref().is_empty() {
        key
    } else {
        Path::from_iter(base.parts().chain(key.parts()))
    }
}

/// The media of a project with this content, if any.
pub async fn by_hash(
    pool: &Pool,
    project: &ProjectId,
    sha256_hash: &str,
) -> anyhow::Result<Option<MediaRecord>> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM media WHERE project_id = $1 AND sha_256_hash = $2"),
            &[&project.as_str(), &sha256_hash],
        )
        .await
        .context("postgres: reading media by hash")?;
    Ok(row.as_ref().map(from_row))
}

pub async fn get(
    pool: &Pool,
    project: &ProjectId,
    media_id: &str,
) -> anyhow::Result<Option<MediaRecord>> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM media WHERE project_id = $1 AND id = $2"),
            &[&project.as_str(), &media_id],
        )
        .await
        .context("postgres: reading media")?;
    Ok(row.as_ref().map(from_row))
}

/// The project's media among `ids`; ids of other projects or of none are not answered.
pub async fn by_ids(
    pool: &Pool,
    project: &ProjectId,
    ids: &[String],
) -> anyhow::Result<Vec<MediaRecord>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let client = pool.get().await?;
    let rows = client
        .query(
            &format!("SELECT {COLUMNS} FROM media WHERE project_id = $1 AND id = ANY($2)"),
            &[&project.as_str(), &ids],
        )
        .await
        .context("postgres: reading media by ids")?;
    Ok(rows.iter().map(from_row).collect())
}

/// What a new upload of some content is about to be.
pub struct NewMedia<'a> {
    pub id: &'a str,
    pub sha256_hash: &'a str,
    pub content_type: &'a str,
    pub content_length: u64,
    pub bucket_path: &'a str,
}

/// Records a media about to be uploaded, or brings the project's record of the same content up
/// to date (its type, and with it its key, may differ from an earlier attempt's). A record whose
/// type or key changes forgets its earlier upload: the new object is not there yet. Fails when
/// another content of the project has the same id (its first 22 hash characters).
pub async fn upsert(
    pool: &Pool,
    project: &ProjectId,
    media: &NewMedia<'_>,
) -> anyhow::Result<MediaRecord> {
    let client = pool.get().await?;
    let row = client
        .query_one(
            &format!(
                "INSERT INTO media (project_id, id, sha_256_hash, content_type, content_length,
                                    bucket_path)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (project_id, sha_256_hash) DO UPDATE SET
                     content_type = EXCLUDED.content_type,
                     content_length = EXCLUDED.content_length,
                     bucket_path = EXCLUDED.bucket_path,
                     uploaded_at = CASE WHEN media.bucket_path = EXCLUDED.bucket_path
                                        THEN media.uploaded_at END,
                     upload_http_status = CASE WHEN media.bucket_path = EXCLUDED.bucket_path
                                               THEN media.upload_http_status END,
                     upload_http_error = CASE WHEN media.bucket_path = EXCLUDED.bucket_path
                                              THEN media.upload_http_error END,
                     updated_at = now()
                 RETURNING {COLUMNS}"
            ),
            &[
                &project.as_str(),
                &media.id,
                &media.sha256_hash,
                &media.content_type,
                &(media.content_length as i64),
                &media.bucket_path,
            ],
        )
        .await
        .context("postgres: recording media")?;
    Ok(from_row(&row))
}

/// Records that a trace, observation or dataset item field refers to a media (once).
pub async fn link(
    pool: &Pool,
    project: &ProjectId,
    media_id: &str,
    context: &MediaContext,
) -> anyhow::Result<()> {
    let client = pool.get().await?;
    match context {
        MediaContext::Trace {
            trace_id,
            observation_id: None,
            field,
        } => client
            .execute(
                "INSERT INTO trace_media (project_id, trace_id, media_id, field)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&project.as_str(), trace_id, &media_id, field],
            )
            .await
            .context("postgres: linking media to a trace")?,
        MediaContext::Trace {
            trace_id,
            observation_id: Some(observation_id),
            field,
        } => client
            .execute(
                "INSERT INTO observation_media (project_id, trace_id, observation_id, media_id, field)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[&project.as_str(), trace_id, observation_id, &media_id, field],
            )
            .await
            .context("postgres: linking media to an observation")?,
        MediaContext::DatasetItem {
            dataset_id,
            dataset_item_id,
            field,
        } => client
            .execute(
                "INSERT INTO dataset_item_media (project_id, dataset_id, dataset_item_id, media_id, field)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[&project.as_str(), dataset_id, dataset_item_id, &media_id, field],
            )
            .await
            .context("postgres: linking media to a dataset item")?,
    };
    Ok(())
}

/// Unlinks the media of deleted traces (their own fields' and their observations') and removes
/// the media nothing else refers to any more (no other trace, observation or dataset item),
/// as Langfuse does, in one transaction. Returns the removed media's object keys, which the
/// caller deletes from blob storage after the commit: a crash in between leaves an object no
/// row names (wasted bytes), never a row whose object is gone.
pub async fn unlink_traces(
    pool: &Pool,
    project: &ProjectId,
    trace_ids: &[String],
) -> anyhow::Result<Vec<String>> {
    if trace_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let project_id = project.as_str();
    let unlinked = tx
        .query(
            "WITH traces AS (
                 DELETE FROM trace_media WHERE project_id = $1 AND trace_id = ANY($2)
                 RETURNING media_id
             ), observations AS (
                 DELETE FROM observation_media WHERE project_id = $1 AND trace_id = ANY($2)
                 RETURNING media_id
             )
             SELECT media_id FROM traces UNION SELECT media_id FROM observations",
            &[&project_id, &trace_ids],
        )
        .await
        .context("postgres: unlinking the media of deleted traces")?;
    let media_ids: Vec<String> = unlinked.iter().map(|row| row.get(0)).collect();
    let removed = if media_ids.is_empty() {
        Vec::new()
    } else {
        tx.query(
            "DELETE FROM media m WHERE m.project_id = $1 AND m.id = ANY($2)
                AND NOT EXISTS (SELECT 1 FROM trace_media l
                                 WHERE l.project_id = m.project_id AND l.media_id = m.id)
                AND NOT EXISTS (SELECT 1 FROM observation_media l
                                 WHERE l.project_id = m.project_id AND l.media_id = m.id)
                AND NOT EXISTS (SELECT 1 FROM dataset_item_media l
                                 WHERE l.project_id = m.project_id AND l.media_id = m.id)
             RETURNING m.bucket_path",
            &[&project_id, &media_ids],
        )
        .await
        .context("postgres: removing media no longer referred to")?
        .iter()
        .map(|row| row.get(0))
        .collect()
    };
    tx.commit().await?;
    Ok(removed)
}

/// An upload's outcome, as the uploader reports it or as this server saw it.
pub struct UploadOutcome<'a> {
    pub uploaded_at: DateTime<Utc>,
    pub http_status: i32,
    pub http_error: Option<&'a str>,
    pub time_ms: Option<i64>,
    /// Record it only if the media's object is still this key: bytes received for an earlier
    /// type of the media (its key changed since) do not make the current object uploaded.
    pub only_at: Option<&'a str>,
}

/// Records an upload's outcome; `false`: the project has no such media.
pub async fn record_upload(
    pool: &Pool,
    project: &ProjectId,
    media_id: &str,
    outcome: &UploadOutcome<'_>,
) -> anyhow::Result<bool> {
    let client = pool.get().await?;
    // A success leaves no error behind, whatever text the uploader sent with it.
    let error = outcome
        .http_error
        .filter(|_| !matches!(outcome.http_status, 200 | 201));
    let updated = client
        .execute(
            "UPDATE media SET uploaded_at = $3, upload_http_status = $4, upload_http_error = $5,
                              upload_time_ms = $6, updated_at = now()
             WHERE project_id = $1 AND id = $2 AND ($7::text IS NULL OR bucket_path = $7)",
            &[
                &project.as_str(),
                &media_id,
                &outcome.uploaded_at,
                &outcome.http_status,
                &error,
                &outcome.time_ms,
                &outcome.only_at,
            ],
        )
        .await
        .context("postgres: recording a media upload")?;
    Ok(updated == 1)
}
