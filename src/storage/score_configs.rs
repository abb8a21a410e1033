//! Score configs in PostgreSQL (`score_configs`; see `sql/postgres/0005_score_configs.sql`): the
//! reads and writes of `/api/public/score-configs`. Every query is scoped to one project.

use anyhow::Context;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use tokio_postgres::Row;

use crate::domain::project::ProjectId;
use crate::domain::score_config::{Category, ConfigDataType, ConfigFields};

/// A stored config.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreConfig {
    pub id: String,
    pub project_id: String,
    pub fields: ConfigFields,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, project_id, name, data_type, is_archived, min_value, max_value, \
                       categories, description, created_at, updated_at";

fn from_row(row: &Row) -> anyhow::Result<ScoreConfig> {
    let data_type: String = row.get("data_type");
    let categories: Option<serde_json::Value> = row.get("categories");
    Ok(ScoreConfig {
        id: row.get("id"),
        project_id: row.get("project_id"),
        fields: ConfigFields {
            name: row.get("name"),
            data_type: ConfigDataType::parse(&data_type)
                .with_context(|| format!("score config with data type {data_type:?}"))?,
            is_archived: row.get("is_archived"),
            min_value: row.get("min_value"),
            max_value: row.get("max_value"),
            categories: categories
                .map(serde_json::from_value::<Vec<Category>>)
                .transpose()
                .context("score config categories")?,
            description: row.get("description"),
        },
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

fn categories_json(fields: &ConfigFields) -> anyhow::Result<Option<serde_json::Value>> {
    Ok(fields
        .categories
        .as_ref()
        .map(serde_json::to_value)
        .transpose()?)
}

/// A page of a project's configs, newest first; the page and the total.
pub async fn list(
    pool: &Pool,
    project: &ProjectId,
    offset: u64,
    limit: u64,
) -> anyhow::Result<(Vec<ScoreConfig>, u64)> {
    let client = pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM score_configs WHERE project_id = $1
                 ORDER BY created_at DESC, id OFFSET $2 LIMIT $3"
            ),
            &[&project.as_str(), &(offset as i64), &(limit as i64)],
        )
        .await
        .context("postgres: listing score configs")?;
    let total: i64 = client
        .query_one(
            "SELECT count(*) FROM score_configs WHERE project_id = $1",
            &[&project.as_str()],
        )
        .await
        .context("postgres: counting score configs")?
        .get(0);
    let configs = rows.iter().map(from_row).collect::<anyhow::Result<_>>()?;
    Ok((configs, total as u64))
}

pub async fn get(
    pool: &Pool,
    project: &ProjectId,
    id: &str,
) -> anyhow::Result<Option<ScoreConfig>> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM score_configs WHERE id = $1 AND project_id = $2"),
            &[&id, &project.as_str()],
        )
        .await
        .context("postgres: reading a score config")?;
    row.as_ref().map(from_row).transpose()
}

pub async fn create(
    pool: &Pool,
    project: &ProjectId,
    fields: &ConfigFields,
) -> anyhow::Result<ScoreConfig> {
    let client = pool.get().await?;
    let id = uuid::Uuid::new_v4().to_string();
    let row = client
        .query_one(
            &format!(
                "INSERT INTO score_configs (id, project_id, name, data_type, is_archived,
                                            min_value, max_value, categories, description)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 RETURNING {COLUMNS}"
            ),
            &[
                &id,
                &project.as_str(),
                &fields.name,
                &fields.data_type.as_str(),
                &fields.is_archived,
                &fields.min_value,
                &fields.max_value,
                &categories_json(fields)?,
                &fields.description,
            ],
        )
        .await
        .context("postgres: writing a score config")?;
    from_row(&row)
}

/// Changes a config with `change` (which sees the stored fields and returns the new ones, or a
/// refusal), under a row lock so two updates do not undo each other. `None`: no such config.
pub async fn update<E>(
    pool: &Pool,
    project: &ProjectId,
    id: &str,
    change: impl FnOnce(&ConfigFields) -> Result<ConfigFields, E>,
) -> anyhow::Result<Option<Result<ScoreConfig, E>>> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM score_configs WHERE id = $1 AND project_id = $2 FOR UPDATE"
            ),
            &[&id, &project.as_str()],
        )
        .await
        .context("postgres: reading a score config")?;
    let Some(row) = row else { return Ok(None) };
    let current = from_row(&row)?;
    let fields = match change(&current.fields) {
        Ok(fields) => fields,
        Err(refusal) => return Ok(Some(Err(refusal))),
    };
    let row = tx
        .query_one(
            &format!(
                "UPDATE score_configs SET name = $3, is_archived = $4, min_value = $5,
                        max_value = $6, categories = $7, description = $8, updated_at = now()
                 WHERE id = $1 AND project_id = $2
                 RETURNING {COLUMNS}"
            ),
            &[
                &id,
                &project.as_str(),
                &fields.name,
                &fields.is_archived,
                &fields.min_value,
                &fields.max_value,
                &categories_json(&fields)?,
                &fields.description,
            ],
        )
        .await
        .context("postgres: updating a score config")?;
    tx.commit().await?;
    Ok(Some(Ok(from_row(&row)?)))
}
