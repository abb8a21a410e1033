//! A project's API keys as people manage them: list, create, delete. The rows are the ones the
//! public API authenticates against (`super::find_api_key`); secrets are stored only as
//! `domain::api_key::hash_secret` and shown masked (`display_secret_key`).

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

use crate::domain::project::ProjectId;

/// A key as the settings page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyEntry {
    pub id: String,
    pub public_key: String,
    pub display_secret_key: String,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When it last authenticated a request, as recorded (at most once a minute per process).
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The project's keys, newest first.
pub async fn list(pool: &Pool, project: &ProjectId) -> anyhow::Result<Vec<ApiKeyEntry>> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT id, public_key, display_secret_key, note, created_at, last_used_at
               FROM api_keys WHERE project_id = $1
              ORDER BY created_at DESC, id",
            &[&project.as_str()],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| ApiKeyEntry {
            id: r.get(0),
            public_key: r.get(1),
            display_secret_key: r.get(2),
            note: r.get(3),
            created_at: r.get(4),
            last_used_at: r.get(5),
        })
        .collect())
}

/// A new key's stored parts.
#[derive(Debug, Clone)]
pub struct NewApiKey<'a> {
    pub public_key: &'a str,
    pub fast_hashed_secret_key: &'a str,
    pub display_secret_key: &'a str,
    pub note: Option<&'a str>,
}

/// Stores a new key of the project; returns its id.
pub async fn create(
    pool: &Pool,
    project: &ProjectId,
    key: &NewApiKey<'_>,
) -> anyhow::Result<String> {
    let client = pool.get().await?;
    let id = uuid::Uuid::new_v4().to_string();
    client
        .execute(
            "INSERT INTO api_keys (id, project_id, public_key, fast_hashed_secret_key, display_secret_key, note)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &id,
                &project.as_str(),
                &key.public_key,
                &key.fast_hashed_secret_key,
                &key.display_secret_key,
                &key.note,
            ],
        )
        .await?;
    Ok(id)
}

/// Deletes one key of the project; returns its public key, or `None` when the project has no
/// key with that id (another project's key id deletes nothing).
pub async fn delete(
    pool: &Pool,
    project: &ProjectId,
    key_id: &str,
) -> anyhow::Result<Option<String>> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "DELETE FROM api_keys WHERE id = $1 AND project_id = $2 RETURNING public_key",
            &[&key_id, &project.as_str()],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Records that the key was just used. Never moves `last_used_at` back (processes race), and
/// writes nothing for a deleted key.
pub async fn record_use(pool: &Pool, key_id: &str) -> anyhow::Result<()> {
    let client = pool.get().await?;
    client
        .execute(
            "UPDATE api_keys SET last_used_at = now()
              WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now())",
            &[&key_id],
        )
        .await?;
    Ok(())
}
