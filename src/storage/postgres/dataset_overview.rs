//! What the web UI's dataset pages show beside the rows `datasets` reads: how many items and
//! runs each dataset has and when it last ran, how many items each run recorded, and the runs
//! an item took part in. Reads only; every query is scoped by the [`ProjectId`].

use std::collections::HashMap;

use anyhow::Context;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

use crate::domain::project::ProjectId;

/// A dataset's figures on the datasets list and in its pages' tabs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatasetCounts {
    /// Its current items, archived ones included (deleted ones not).
    pub items: u64,
    pub runs: u64,
    pub last_run_at: Option<DateTime<Utc>>,
}

/// The figures of the given datasets of the project, by dataset id (one query for a page).
pub async fn dataset_counts(
    pool: &Pool,
    project: &ProjectId,
    dataset_ids: &[String],
) -> anyhow::Result<HashMap<String, DatasetCounts>> {
    if dataset_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT d.id,
                    (SELECT count(*) FROM dataset_items i
                      WHERE i.dataset_id = d.id AND i.valid_to IS NULL AND NOT i.is_deleted) AS items,
                    (SELECT count(*) FROM dataset_runs r WHERE r.dataset_id = d.id) AS runs,
                    (SELECT max(r.created_at) FROM dataset_runs r WHERE r.dataset_id = d.id) AS last_run_at
               FROM datasets d
              WHERE d.project_id = $1 AND d.id = ANY($2)",
            &[&project.as_str(), &dataset_ids],
        )
        .await
        .context("postgres: counting the items and runs of datasets")?;
    Ok(rows
        .iter()
        .map(|row| {
            let items: i64 = row.get("items");
            let runs: i64 = row.get("runs");
            (
                row.get::<_, String>("id"),
                DatasetCounts {
                    items: items.max(0) as u64,
                    runs: runs.max(0) as u64,
                    last_run_at: row.get("last_run_at"),
                },
            )
        })
        .collect())
}

/// How many run items each of the given runs of the project recorded, by run id.
pub async fn run_item_counts(
    pool: &Pool,
    project: &ProjectId,
    run_ids: &[String],
) -> anyhow::Result<HashMap<String, u64>> {
    if run_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT dataset_run_id, count(*) AS items FROM dataset_run_items
              WHERE project_id = $1 AND dataset_run_id = ANY($2)
              GROUP BY dataset_run_id",
            &[&project.as_str(), &run_ids],
        )
        .await
        .context("postgres: counting the items of runs")?;
    Ok(rows
        .iter()
        .map(|row| {
            let items: i64 = row.get("items");
            (row.get::<_, String>(0), items.max(0) as u64)
        })
        .collect())
}

/// One run's record of an item: the run, and the trace (and observation) it made.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRun {
    pub run_id: String,
    pub run_name: String,
    pub trace_id: String,
    pub observation_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The runs that recorded the item, newest run first (a run that recorded it more than once,
/// each time). At most `limit`.
pub async fn runs_of_item(
    pool: &Pool,
    project: &ProjectId,
    item_id: &str,
    limit: u64,
) -> anyhow::Result<Vec<ItemRun>> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT r.id AS run_id, r.name AS run_name, ri.trace_id,
                    NULLIF(ri.observation_id, '') AS observation_id, ri.created_at
               FROM dataset_run_items ri JOIN dataset_runs r ON r.id = ri.dataset_run_id
              WHERE ri.project_id = $1 AND ri.dataset_item_id = $2
              ORDER BY r.created_at DESC, r.id, ri.created_at DESC
              LIMIT $3",
            &[&project.as_str(), &item_id, &(limit as i64)],
        )
        .await
        .context("postgres: reading the runs of an item")?;
    Ok(rows
        .iter()
        .map(|row| ItemRun {
            run_id: row.get("run_id"),
            run_name: row.get("run_name"),
            trace_id: row.get("trace_id"),
            observation_id: row.get("observation_id"),
            created_at: row.get("created_at"),
        })
        .collect())
}

/// One run item as the run's figures need it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunItemLink {
    pub run_id: String,
    pub item_id: String,
    pub trace_id: String,
    pub observation_id: Option<String>,
}

/// The run items of the given runs, in the order they were recorded, at most `limit` (`None`
/// when there are more: the caller leaves the figures out rather than show part of them).
pub async fn run_item_links(
    pool: &Pool,
    project: &ProjectId,
    run_ids: &[String],
    limit: u64,
) -> anyhow::Result<Option<Vec<RunItemLink>>> {
    if run_ids.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT dataset_run_id, dataset_item_id, trace_id, NULLIF(observation_id, '') AS observation_id
               FROM dataset_run_items
              WHERE project_id = $1 AND dataset_run_id = ANY($2)
              ORDER BY created_at, id
              LIMIT $3",
            &[&project.as_str(), &run_ids, &(limit as i64 + 1)],
        )
        .await
        .context("postgres: reading the items of runs")?;
    if rows.len() as u64 > limit {
        return Ok(None);
    }
    Ok(Some(
        rows.iter()
            .map(|row| RunItemLink {
                run_id: row.get(0),
                item_id: row.get(1),
                trace_id: row.get(2),
                observation_id: row.get(3),
            })
            .collect(),
    ))
}
