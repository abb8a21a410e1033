//! A project's custom dashboards and their widgets (`dashboards`, `dashboard_widgets`; see
//! `sql/postgres/0006_dashboards.sql`). Every query is scoped to one project: a dashboard or a
//! widget of another project is not found.

use anyhow::Context;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde_json::Value;
use tokio_postgres::Row;

use crate::domain::dashboard::{ChartType, Placement};
use crate::domain::project::ProjectId;

#[derive(Debug, Clone)]
pub struct Dashboard {
    pub id: String,
    pub name: String,
    pub description: String,
    pub widget_count: i64,
    /// The display name (else email) of whoever created or last changed it, if still a user.
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Widget {
    pub id: String,
    pub dashboard_id: String,
    pub name: String,
    pub chart_type: ChartType,
    /// The metrics query without its time range.
    pub query: Value,
    pub position: i32,
    pub width: i32,
    pub height: i32,
    pub updated_at: DateTime<Utc>,
}

/// What a widget's form sets.
#[derive(Debug, Clone)]
pub struct WidgetFields {
    pub name: String,
    pub chart_type: ChartType,
    pub query: Value,
    pub width: i32,
    pub height: i32,
}

const DASHBOARD_COLUMNS: &str = "d.id, d.name, d.description, d.created_at, d.updated_at,
    (SELECT count(*) FROM dashboard_widgets w WHERE w.project_id = d.project_id AND w.dashboard_id = d.id) AS widget_count,
    (SELECT coalesce(nullif(u.name, ''), u.email) FROM users u WHERE u.id = d.created_by) AS created_by,
    (SELECT coalesce(nullif(u.name, ''), u.email) FROM users u WHERE u.id = d.updated_by) AS updated_by";

fn dashboard(row: &Row) -> Dashboard {
    Dashboard {
        id: row.get("id"),
        name: row.get("name"),
        description: row.get("description"),
        widget_count: row.get("widget_count"),
        created_by: row.get("created_by"),
        updated_by: row.get("updated_by"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

const WIDGET_COLUMNS: &str =
    "id, dashboard_id, name, chart_type, query, position, width, height, updated_at";

fn widget(row: &Row) -> anyhow::Result<Widget> {
    let chart_type: String = row.get("chart_type");
    Ok(Widget {
        id: row.get("id"),
        dashboard_id: row.get("dashboard_id"),
        name: row.get("name"),
        chart_type: ChartType::parse(&chart_type)
            .with_context(|| format!("widget with chart type {chart_type:?}"))?,
        query: row.get("query"),
        position: row.get("position"),
        width: row.get("width"),
        height: row.get("height"),
        updated_at: row.get("updated_at"),
    })
}

/// The project's dashboards, by name.
pub async fn list(pool: &Pool, project: &ProjectId) -> anyhow::Result<Vec<Dashboard>> {
    let client = pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {DASHBOARD_COLUMNS} FROM dashboards d WHERE d.project_id = $1
                 ORDER BY lower(d.name), d.id"
            ),
            &[&project.as_str()],
        )
        .await
        .context("postgres: listing dashboards")?;
    Ok(rows.iter().map(dashboard).collect())
}

pub async fn get(pool: &Pool, project: &ProjectId, id: &str) -> anyhow::Result<Option<Dashboard>> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            &format!(
                "SELECT {DASHBOARD_COLUMNS} FROM dashboards d WHERE d.project_id = $1 AND d.id = $2"
            ),
            &[&project.as_str(), &id],
        )
        .await
        .context("postgres: reading a dashboard")?;
    Ok(row.as_ref().map(dashboard))
}

/// A new dashboard; its id.
pub async fn create(
    pool: &Pool,
    project: &ProjectId,
    name: &str,
    description: &str,
    user_id: &str,
) -> anyhow::Result<String> {
    let id = uuid::Uuid::new_v4().to_string();
    pool.get()
        .await?
        .execute(
            "INSERT INTO dashboards (id, project_id, name, description, created_by, updated_by)
             VALUES ($1, $2, $3, $4, $5, $5)",
            &[&id, &project.as_str(), &name, &description, &user_id],
        )
        .await
        .context("postgres: creating a dashboard")?;
    Ok(id)
}

/// Renames a dashboard (and sets its description); false if there is no such dashboard.
pub async fn rename(
    pool: &Pool,
    project: &ProjectId,
    id: &str,
    name: &str,
    description: &str,
    user_id: &str,
) -> anyhow::Result<bool> {
    let n = pool
        .get()
        .await?
        .execute(
            "UPDATE dashboards SET name = $3, description = $4, updated_by = $5, updated_at = now()
             WHERE project_id = $1 AND id = $2",
            &[&project.as_str(), &id, &name, &description, &user_id],
        )
        .await
        .context("postgres: renaming a dashboard")?;
    Ok(n == 1)
}

/// Deletes a dashboard with its widgets; false if there is no such dashboard.
pub async fn delete(pool: &Pool, project: &ProjectId, id: &str) -> anyhow::Result<bool> {
    let n = pool
        .get()
        .await?
        .execute(
            "DELETE FROM dashboards WHERE project_id = $1 AND id = $2",
            &[&project.as_str(), &id],
        )
        .await
        .context("postgres: deleting a dashboard")?;
    Ok(n == 1)
}

/// A dashboard's widgets in their grid order.
pub async fn widgets(
    pool: &Pool,
    project: &ProjectId,
    dashboard_id: &str,
) -> anyhow::Result<Vec<Widget>> {
    let rows = pool
        .get()
        .await?
        .query(
            &format!(
                "SELECT {WIDGET_COLUMNS} FROM dashboard_widgets
                 WHERE project_id = $1 AND dashboard_id = $2 ORDER BY position, created_at, id"
            ),
            &[&project.as_str(), &dashboard_id],
        )
        .await
        .context("postgres: listing a dashboard's widgets")?;
    rows.iter().map(widget).collect()
}

pub async fn widget_by_id(
    pool: &Pool,
    project: &ProjectId,
    dashboard_id: &str,
    id: &str,
) -> anyhow::Result<Option<Widget>> {
    let row = pool
        .get()
        .await?
        .query_opt(
            &format!(
                "SELECT {WIDGET_COLUMNS} FROM dashboard_widgets
                 WHERE project_id = $1 AND dashboard_id = $2 AND id = $3"
            ),
            &[&project.as_str(), &dashboard_id, &id],
        )
        .await
        .context("postgres: reading a widget")?;
    row.as_ref().map(widget).transpose()
}

/// Adds a widget at the end of a dashboard; its id, or `None` if there is no such dashboard.
pub async fn add_widget(
    pool: &Pool,
    project: &ProjectId,
    dashboard_id: &str,
    fields: &WidgetFields,
    user_id: &str,
) -> anyhow::Result<Option<String>> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    // The dashboard's row lock orders concurrent additions, so positions stay distinct.
    if !lock_dashboard(&tx, project, dashboard_id).await? {
        return Ok(None);
    }
    let id = uuid::Uuid::new_v4().to_string();
    tx.execute(
        "INSERT INTO dashboard_widgets
           (id, dashboard_id, project_id, name, chart_type, query, position, width, height, created_by, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6,
           (SELECT coalesce(max(position) + 1, 0) FROM dashboard_widgets WHERE project_id = $3 AND dashboard_id = $2),
           $7, $8, $9, $9)",
        &[
            &id,
            &dashboard_id,
            &project.as_str(),
            &fields.name,
            &fields.chart_type.as_str(),
            &fields.query,
            &fields.width,
            &fields.height,
            &user_id,
        ],
    )
    .await
    .context("postgres: adding a widget")?;
    touch(&tx, project, dashboard_id, user_id).await?;
    tx.commit().await?;
    Ok(Some(id))
}

async fn touch(
    tx: &tokio_postgres::Transaction<'_>,
    project: &ProjectId,
    dashboard_id: &str,
    user_id: &str,
) -> anyhow::Result<()> {
    tx.execute(
        "UPDATE dashboards SET updated_at = now(), updated_by = $3 WHERE project_id = $1 AND id = $2",
        &[&project.as_str(), &dashboard_id, &user_id],
    )
    .await
    .context("postgres: touching a dashboard")?;
    Ok(())
}

/// Changes a widget; false if there is no such widget.
pub async fn update_widget(
    pool: &Pool,
    project: &ProjectId,
    dashboard_id: &str,
    id: &str,
    fields: &WidgetFields,
    user_id: &str,
) -> anyhow::Result<bool> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let n = tx
        .execute(
            "UPDATE dashboard_widgets SET name = $4, chart_type = $5, query = $6, width = $7,
               height = $8, updated_by = $9, updated_at = now()
             WHERE project_id = $1 AND dashboard_id = $2 AND id = $3",
            &[
                &project.as_str(),
                &dashboard_id,
                &id,
                &fields.name,
                &fields.chart_type.as_str(),
                &fields.query,
                &fields.width,
                &fields.height,
                &user_id,
            ],
        )
        .await
        .context("postgres: updating a widget")?;
    if n == 1 {
        touch(&tx, project, dashboard_id, user_id).await?;
    }
    tx.commit().await?;
    Ok(n == 1)
}

pub async fn delete_widget(
    pool: &Pool,
    project: &ProjectId,
    dashboard_id: &str,
    id: &str,
    user_id: &str,
) -> anyhow::Result<bool> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let n = tx
        .execute(
            "DELETE FROM dashboard_widgets WHERE project_id = $1 AND dashboard_id = $2 AND id = $3",
            &[&project.as_str(), &dashboard_id, &id],
        )
        .await
        .context("postgres: deleting a widget")?;
    if n == 1 {
        touch(&tx, project, dashboard_id, user_id).await?;
    }
    tx.commit().await?;
    Ok(n == 1)
}

/// Writes a dashboard's layout: each widget's position (its index) and width. Under the
/// dashboard's row lock, and only if `layout` names exactly the widgets there are (else false:
/// the page was stale).
pub async fn save_layout(
    pool: &Pool,
    project: &ProjectId,
    dashboard_id: &str,
    layout: &[Placement],
    user_id: &str,
) -> anyhow::Result<bool> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    if !lock_dashboard(&tx, project, dashboard_id).await? {
        return Ok(false);
    }
    let mut existing: Vec<String> = tx
        .query(
            "SELECT id FROM dashboard_widgets WHERE project_id = $1 AND dashboard_id = $2",
            &[&project.as_str(), &dashboard_id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut given: Vec<String> = layout.iter().map(|p| p.id.clone()).collect();
    existing.sort_unstable();
    given.sort_unstable();
    if existing != given {
        return Ok(false);
    }
    for (position, placement) in layout.iter().enumerate() {
        tx.execute(
            "UPDATE dashboard_widgets SET position = $4, width = $5
             WHERE project_id = $1 AND dashboard_id = $2 AND id = $3",
            &[
                &project.as_str(),
                &dashboard_id,
                &placement.id,
                &(position as i32),
                &placement.width,
            ],
        )
        .await
        .context("postgres: placing a widget")?;
    }
    touch(&tx, project, dashboard_id, user_id).await?;
    tx.commit().await?;
    Ok(true)
}

/// Locks the project's dashboard row for the transaction; false when there is none.
async fn lock_dashboard(
    tx: &tokio_postgres::Transaction<'_>,
    project: &ProjectId,
    dashboard_id: &str,
) -> anyhow::Result<bool> {
    let found = tx
        .query_opt(
            "SELECT id FROM dashboards WHERE project_id = $1 AND id = $2 FOR UPDATE",
            &[&project.as_str(), &dashboard_id],
        )
        .await
        .context("postgres: locking a dashboard")?;
    Ok(found.is_some())
}
