//! Datasets, dataset items, dataset runs and run items in PostgreSQL (see
//! `sql/postgres/0007_datasets.sql`): the reads and writes of the dataset endpoints, the web UI's
//! dataset pages, and the worker's experiment runs.
//!
//! Items keep their history: a write closes the item's current version and inserts the next one
//! in one transaction, a deletion inserts a deletion marker, and `version` reads see the rows that
//! were current at a time. Writes of one item take turns on a transaction lock of the item's id;
//! a write of an item takes a share lock on its dataset's row, which a change of the dataset's
//! schemas takes exclusively, so an item is never checked against a schema that is being replaced.
//!
//! The functions the API and the UI call take a [`ProjectId`]. Those the worker also calls to
//! record experiment runs ([`find_item_for_run`], [`get_or_create_run`], [`create_run_item`]) take
//! the project's id as text, as the worker's other queries do: it acts for requests that were
//! authenticated when they were accepted.

use std::collections::HashMap;

use anyhow::Context;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::domain::dataset::{describe, ItemChanges, ItemFields, ItemSchemas, ItemStatus};
use crate::domain::project::ProjectId;

/// A stored dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: Option<String>,
    pub metadata: Option<Value>,
    pub input_schema: Option<Value>,
    pub expected_output_schema: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One version of an item, with its dataset's name.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetItem {
    pub id: String,
    pub project_id: String,
    pub dataset_id: String,
    pub dataset_name: String,
    pub fields: ItemFields,
    /// When the item was first created.
    pub created_at: DateTime<Utc>,
    /// When this version was written (its `valid_from`).
    pub updated_at: DateTime<Utc>,
    /// `None`: the current version.
    pub valid_to: Option<DateTime<Utc>>,
}

/// A run of an experiment over a dataset, with the dataset's name.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRun {
    pub id: String,
    pub project_id: String,
    pub dataset_id: String,
    pub dataset_name: String,
    pub name: String,
    pub description: Option<String>,
    pub metadata: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a run did with one item, with the run's name.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRunItem {
    pub id: String,
    pub project_id: String,
    pub dataset_run_id: String,
    pub dataset_run_name: String,
    pub dataset_id: String,
    pub dataset_item_id: String,
    /// The item's version the run used, when known.
    pub dataset_item_valid_from: Option<DateTime<Utc>>,
    pub trace_id: String,
    pub observation_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
pub enum DatasetWriteError {
    /// The request breaks a rule (a schema, a name): 400.
    #[error("{0}")]
    Invalid(String),
    /// What it names does not exist: 404.
    #[error("{0}")]
    NotFound(String),
    /// It collides with something else (an item id of another dataset): 409.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

impl From<tokio_postgres::Error> for DatasetWriteError {
    fn from(error: tokio_postgres::Error) -> Self {
        DatasetWriteError::Store(error.into())
    }
}

impl From<deadpool_postgres::PoolError> for DatasetWriteError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        DatasetWriteError::Store(error.into())
    }
}

/// A create-or-update of a dataset by name. `None`: leave as it is (or empty, when new);
/// `Some(None)` for a schema: remove it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatasetUpsert {
    pub name: String,
    pub description: Option<String>,
    pub metadata: Option<Value>,
    pub input_schema: Option<Option<Value>>,
    pub expected_output_schema: Option<Option<Value>>,
}

/// Which items a list shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemFilter {
    pub dataset_id: Option<String>,
    pub source_trace_id: Option<String>,
    pub source_observation_id: Option<String>,
    /// Only items of this status (the public API lists active ones).
    pub status: Option<ItemStatus>,
    /// The dataset as it was at this time; `None`: as it is.
    pub version: Option<DateTime<Utc>>,
}

/// A run item to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRunItem {
    pub dataset_run_id: String,
    pub dataset_item_id: String,
    pub dataset_item_valid_from: Option<DateTime<Utc>>,
    pub trace_id: String,
    pub observation_id: Option<String>,
    /// `None`: now.
    pub created_at: Option<DateTime<Utc>>,
}

const DATASET_COLUMNS: &str = "id, project_id, name, description, metadata, input_schema, \
                               expected_output_schema, created_at, updated_at";

fn dataset_from_row(row: &Row) -> Dataset {
    Dataset {
        id: row.get("id"),
        project_id: row.get("project_id"),
        name: row.get("name"),
        description: row.get("description"),
        metadata: row.get("metadata"),
        input_schema: row.get("input_schema"),
        expected_output_schema: row.get("expected_output_schema"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

/// The columns of an item version joined with its dataset (`i`, `d`).
const ITEM_COLUMNS: &str = "i.id, i.project_id, i.dataset_id, d.name AS dataset_name, i.status, \
                            i.input, i.expected_output, i.metadata, i.source_trace_id, \
                            i.source_observation_id, i.created_at, i.valid_from, i.valid_to";

fn item_from_row(row: &Row) -> anyhow::Result<DatasetItem> {
    let status: String = row.get("status");
    Ok(DatasetItem {
        id: row.get("id"),
        project_id: row.get("project_id"),
        dataset_id: row.get("dataset_id"),
        dataset_name: row.get("dataset_name"),
        fields: ItemFields {
            input: row.get("input"),
            expected_output: row.get("expected_output"),
            metadata: row.get("metadata"),
            source_trace_id: row.get("source_trace_id"),
            source_observation_id: row.get("source_observation_id"),
            status: ItemStatus::parse(&status)
                .with_context(|| format!("dataset item with status {status:?}"))?,
        },
        created_at: row.get("created_at"),
        updated_at: row.get("valid_from"),
        valid_to: row.get("valid_to"),
    })
}

const RUN_COLUMNS: &str = "r.id, r.project_id, r.dataset_id, d.name AS dataset_name, r.name, \
                           r.description, r.metadata, r.created_at, r.updated_at";

fn run_from_row(row: &Row) -> DatasetRun {
    DatasetRun {
        id: row.get("id"),
        project_id: row.get("project_id"),
        dataset_id: row.get("dataset_id"),
        dataset_name: row.get("dataset_name"),
        name: row.get("name"),
        description: row.get("description"),
        metadata: row.get("metadata"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

const RUN_ITEM_COLUMNS: &str =
    "ri.id, ri.project_id, ri.dataset_run_id, r.name AS dataset_run_name, \
                                r.dataset_id, ri.dataset_item_id, ri.dataset_item_valid_from, \
                                ri.trace_id, ri.observation_id, ri.created_at, ri.updated_at";

fn run_item_from_row(row: &Row) -> DatasetRunItem {
    let observation_id: String = row.get("observation_id");
    DatasetRunItem {
        id: row.get("id"),
        project_id: row.get("project_id"),
        dataset_run_id: row.get("dataset_run_id"),
        dataset_run_name: row.get("dataset_run_name"),
        dataset_id: row.get("dataset_id"),
        dataset_item_id: row.get("dataset_item_id"),
        dataset_item_valid_from: row.get("dataset_item_valid_from"),
        trace_id: row.get("trace_id"),
        observation_id: (!observation_id.is_empty()).then_some(observation_id),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

/// JSON `null` is stored as SQL NULL, so that "no value" has one form.
fn json_or_null(value: Option<Value>) -> Option<Value> {
    value.filter(|v| !v.is_null())
}

// ---------------------------------------------------------------------------------------------
// Datasets

/// Creates the dataset of that name, or updates it. Setting a schema on a dataset that has items
/// checks every current item against it first and refuses the change if one fails.
pub async fn upsert_dataset(
    pool: &Pool,
    project: &ProjectId,
    upsert: &DatasetUpsert,
) -> Result<Dataset, DatasetWriteError> {
    // The schemas the request sets must compile whatever the dataset holds.
    ItemSchemas::compile(
        upsert.input_schema.as_ref().and_then(Option::as_ref),
        upsert
            .expected_output_schema
            .as_ref()
            .and_then(Option::as_ref),
    )
    .map_err(DatasetWriteError::Invalid)?;
    // Two attempts: a concurrent create of the same name can win between our read and insert;
    // the second attempt then finds its row and updates it.
    for _ in 0..2 {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        let existing = tx
            .query_opt(
                &format!(
                    "SELECT {DATASET_COLUMNS} FROM datasets
                      WHERE project_id = $1 AND name = $2 FOR UPDATE"
                ),
                &[&project.as_str(), &upsert.name],
            )
            .await
            .context("postgres: reading a dataset to update")?
            .as_ref()
            .map(dataset_from_row);
        let Some(existing) = existing else {
            let row = tx
                .query_opt(
                    &format!(
                        "INSERT INTO datasets (id, project_id, name, description, metadata,
                                               input_schema, expected_output_schema)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)
                         ON CONFLICT (project_id, name) DO NOTHING
                         RETURNING {DATASET_COLUMNS}"
                    ),
                    &[
                        &uuid::Uuid::new_v4().to_string(),
                        &project.as_str(),
                        &upsert.name,
                        &upsert.description,
                        &json_or_null(upsert.metadata.clone()),
                        &json_or_null(upsert.input_schema.clone().flatten()),
                        &json_or_null(upsert.expected_output_schema.clone().flatten()),
                    ],
                )
                .await
                .context("postgres: creating a dataset")?;
            match row {
                Some(row) => {
                    tx.commit().await?;
                    return Ok(dataset_from_row(&row));
                }
                None => continue,
            }
        };
        let input_schema = match &upsert.input_schema {
            Some(schema) => json_or_null(schema.clone()),
            None => existing.input_schema.clone(),
        };
        let expected_output_schema = match &upsert.expected_output_schema {
            Some(schema) => json_or_null(schema.clone()),
            None => existing.expected_output_schema.clone(),
        };
        let schemas_change = input_schema != existing.input_schema
            || expected_output_schema != existing.expected_output_schema;
        if schemas_change {
            let schemas =
                ItemSchemas::compile(input_schema.as_ref(), expected_output_schema.as_ref())
                    .map_err(DatasetWriteError::Invalid)?;
            if !schemas.is_empty() {
                check_current_items(&tx, &existing.id, &schemas).await?;
            }
        }
        let row = tx
            .query_one(
                &format!(
                    "UPDATE datasets
                        SET description = COALESCE($2, description),
                            metadata = COALESCE($3, metadata),
                            input_schema = $4,
                            expected_output_schema = $5,
                            updated_at = now()
                      WHERE id = $1
                      RETURNING {DATASET_COLUMNS}"
                ),
                &[
                    &existing.id,
                    &upsert.description,
                    &json_or_null(upsert.metadata.clone()),
                    &input_schema,
                    &expected_output_schema,
                ],
            )
            .await
            .context("postgres: updating a dataset")?;
        tx.commit().await?;
        return Ok(dataset_from_row(&row));
    }
    Err(DatasetWriteError::Store(anyhow::anyhow!(
        "dataset {:?} was created and removed concurrently",
        upsert.name
    )))
}

/// Replaces what the dataset `id` is: its name (renamed when `edit.name` differs), description,
/// metadata and schemas, each as `edit` gives it (`None` clears it). New schemas are checked
/// against the current items first, as on create.
pub async fn edit_dataset(
    pool: &Pool,
    project: &ProjectId,
    id: &str,
    edit: &DatasetUpsert,
) -> Result<Dataset, DatasetWriteError> {
    let input_schema = json_or_null(edit.input_schema.clone().flatten());
    let expected_output_schema = json_or_null(edit.expected_output_schema.clone().flatten());
    let schemas = ItemSchemas::compile(input_schema.as_ref(), expected_output_schema.as_ref())
        .map_err(DatasetWriteError::Invalid)?;
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let existing = tx
        .query_opt(
            &format!(
                "SELECT {DATASET_COLUMNS} FROM datasets WHERE project_id = $1 AND id = $2 FOR UPDATE"
            ),
            &[&project.as_str(), &id],
        )
        .await
        .context("postgres: reading a dataset to edit")?
        .as_ref()
        .map(dataset_from_row)
        .ok_or_else(|| DatasetWriteError::NotFound("Dataset not found".to_string()))?;
    let schemas_change = input_schema != existing.input_schema
        || expected_output_schema != existing.expected_output_schema;
    if schemas_change && !schemas.is_empty() {
        check_current_items(&tx, &existing.id, &schemas).await?;
    }
    let updated = tx
        .query_one(
            &format!(
                "UPDATE datasets
                    SET name = $2, description = $3, metadata = $4, input_schema = $5,
                        expected_output_schema = $6, updated_at = now()
                  WHERE id = $1
                  RETURNING {DATASET_COLUMNS}"
            ),
            &[
                &existing.id,
                &edit.name,
                &edit.description,
                &json_or_null(edit.metadata.clone()),
                &input_schema,
                &expected_output_schema,
            ],
        )
        .await;
    let row = match updated {
        Ok(row) => row,
        Err(error) if error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            return Err(DatasetWriteError::Conflict(format!(
                "A dataset named {:?} exists already; choose another name.",
                edit.name
            )))
        }
        Err(error) => {
            return Err(anyhow::Error::new(error)
                .context("postgres: editing a dataset")
                .into())
        }
    };
    tx.commit().await?;
    Ok(dataset_from_row(&row))
}

/// Refuses schemas that a current item of the dataset fails, naming the first few.
async fn check_current_items(
    client: &impl GenericClient,
    dataset_id: &str,
    schemas: &ItemSchemas,
) -> Result<(), DatasetWriteError> {
    const BATCH: i64 = 1000;
    const MAX_REPORTED: usize = 10;
    let mut failures = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let rows = client
            .query(
                "SELECT id, input, expected_output FROM dataset_items
                  WHERE dataset_id = $1 AND valid_to IS NULL AND NOT is_deleted
                    AND ($2::text IS NULL OR id > $2)
                  ORDER BY id LIMIT $3",
                &[&dataset_id, &after, &BATCH],
            )
            .await
            .context("postgres: reading items to check against new schemas")?;
        for row in &rows {
            let input: Option<Value> = row.get("input");
            let expected_output: Option<Value> = row.get("expected_output");
            let violations = schemas.violations(input.as_ref(), expected_output.as_ref());
            if !violations.is_empty() {
                let id: String = row.get("id");
                failures.push(format!("item {id}: {}", describe(&violations)));
                if failures.len() == MAX_REPORTED {
                    break;
                }
            }
        }
        if failures.len() == MAX_REPORTED || (rows.len() as i64) < BATCH {
            break;
        }
        after = rows.last().map(|r| r.get("id"));
    }
    if failures.is_empty() {
        return Ok(());
    }
    Err(DatasetWriteError::Invalid(format!(
        "Existing dataset items do not satisfy the new schema: {}",
        failures.join("; ")
    )))
}

pub async fn get_dataset_by_name(
    pool: &Pool,
    project: &ProjectId,
    name: &str,
) -> anyhow::Result<Option<Dataset>> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            &format!("SELECT {DATASET_COLUMNS} FROM datasets WHERE project_id = $1 AND name = $2"),
            &[&project.as_str(), &name],
        )
        .await
        .context("postgres: reading a dataset by name")?;
    Ok(row.as_ref().map(dataset_from_row))
}

pub async fn get_dataset(
    pool: &Pool,
    project: &ProjectId,
    id: &str,
) -> anyhow::Result<Option<Dataset>> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            &format!("SELECT {DATASET_COLUMNS} FROM datasets WHERE project_id = $1 AND id = $2"),
            &[&project.as_str(), &id],
        )
        .await
        .context("postgres: reading a dataset")?;
    Ok(row.as_ref().map(dataset_from_row))
}

/// A page of a project's datasets, newest first; the page and the total.
pub async fn list_datasets(
    pool: &Pool,
    project: &ProjectId,
    offset: u64,
    limit: u64,
) -> anyhow::Result<(Vec<Dataset>, u64)> {
    let client = pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {DATASET_COLUMNS} FROM datasets WHERE project_id = $1
                 ORDER BY created_at DESC, id OFFSET $2 LIMIT $3"
            ),
            &[&project.as_str(), &(offset as i64), &(limit as i64)],
        )
        .await
        .context("postgres: listing datasets")?;
    let total: i64 = client
        .query_one(
            "SELECT count(*) FROM datasets WHERE project_id = $1",
            &[&project.as_str()],
        )
        .await
        .context("postgres: counting datasets")?
        .get(0);
    Ok((rows.iter().map(dataset_from_row).collect(), total as u64))
}

/// Deletes a dataset with its items, runs and run items. False: there was none.
pub async fn delete_dataset(pool: &Pool, project: &ProjectId, id: &str) -> anyhow::Result<bool> {
    let client = pool.get().await?;
    let deleted = client
        .execute(
            "DELETE FROM datasets WHERE project_id = $1 AND id = $2",
            &[&project.as_str(), &id],
        )
        .await
        .context("postgres: deleting a dataset")?;
    Ok(deleted == 1)
}

// ---------------------------------------------------------------------------------------------
// Items

/// Creates or updates an item of a dataset: `item_id` `None` makes a new item with a fresh id;
/// an id that exists updates that item with the fields `changes` sends (the others are kept).
/// The result must satisfy the dataset's schemas. An id of an item of another dataset of the
/// project is a conflict.
pub async fn upsert_item(
    pool: &Pool,
    project: &ProjectId,
    dataset_id: &str,
    item_id: Option<&str>,
    changes: ItemChanges,
) -> Result<DatasetItem, DatasetWriteError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let dataset = tx
        .query_opt(
            &format!(
                "SELECT {DATASET_COLUMNS} FROM datasets
                  WHERE project_id = $1 AND id = $2 FOR SHARE"
            ),
            &[&project.as_str(), &dataset_id],
        )
        .await
        .context("postgres: reading an item's dataset")?
        .as_ref()
        .map(dataset_from_row)
        .ok_or_else(|| DatasetWriteError::NotFound("Dataset not found".to_string()))?;
    let id = match item_id {
        Some(id) => id.to_string(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    lock_item(&tx, project.as_str(), &id).await?;
    let current = current_version(&tx, project.as_str(), &id).await?;
    if let Some(current) = &current {
        if current.dataset_id != dataset.id {
            return Err(DatasetWriteError::Conflict(format!(
                "Dataset item id {id} already exists in another dataset of this project; item ids \
                 are unique per project across datasets"
            )));
        }
    }
    let live = current.as_ref().filter(|c| !c.is_deleted);
    let fields = changes.applied_to(live.map(|c| &c.fields));
    let schemas = ItemSchemas::compile(
        dataset.input_schema.as_ref(),
        dataset.expected_output_schema.as_ref(),
    )
    .map_err(|e| DatasetWriteError::Store(anyhow::anyhow!("stored dataset schema: {e}")))?;
    schemas
        .check(fields.input.as_ref(), fields.expected_output.as_ref())
        .map_err(DatasetWriteError::Invalid)?;
    let created_at = live.map(|c| c.created_at);
    let valid_from = write_version(
        &tx,
        project.as_str(),
        &id,
        &dataset.id,
        current.as_ref(),
        &fields,
        created_at,
        false,
    )
    .await?;
    tx.commit().await?;
    Ok(DatasetItem {
        id,
        project_id: project.as_str().to_string(),
        dataset_id: dataset.id,
        dataset_name: dataset.name,
        fields,
        created_at: created_at.unwrap_or(valid_from),
        updated_at: valid_from,
        valid_to: None,
    })
}

/// Sets an item's status (archive: `Archived`, restore: `Active`) as a new version. `None`: no
/// such item.
pub async fn set_item_status(
    pool: &Pool,
    project: &ProjectId,
    item_id: &str,
    status: ItemStatus,
) -> Result<Option<DatasetItem>, DatasetWriteError> {
    let Some(item) = get_item(pool, project, item_id, None).await? else {
        return Ok(None);
    };
    let changes = ItemChanges {
        status: Some(status),
        ..ItemChanges::default()
    };
    match upsert_item(pool, project, &item.dataset_id, Some(item_id), changes).await {
        Ok(item) => Ok(Some(item)),
        // Deleted, or its dataset deleted, in between.
        Err(DatasetWriteError::NotFound(_) | DatasetWriteError::Conflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Deletes an item: later reads do not see it, reads of earlier versions still do. Returns the
/// version it deleted; `None`: no such item.
pub async fn delete_item(
    pool: &Pool,
    project: &ProjectId,
    item_id: &str,
) -> Result<Option<DatasetItem>, DatasetWriteError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    lock_item(&tx, project.as_str(), item_id).await?;
    let Some(current) = current_version(&tx, project.as_str(), item_id)
        .await?
        .filter(|c| !c.is_deleted)
    else {
        return Ok(None);
    };
    let dataset_name: String = tx
        .query_one(
            "SELECT name FROM datasets WHERE id = $1",
            &[&current.dataset_id],
        )
        .await
        .context("postgres: reading a deleted item's dataset")?
        .get(0);
    write_version(
        &tx,
        project.as_str(),
        item_id,
        &current.dataset_id,
        Some(&current),
        &current.fields,
        Some(current.created_at),
        true,
    )
    .await?;
    tx.commit().await?;
    Ok(Some(DatasetItem {
        id: item_id.to_string(),
        project_id: project.as_str().to_string(),
        dataset_id: current.dataset_id,
        dataset_name,
        fields: current.fields,
        created_at: current.created_at,
        updated_at: current.valid_from,
        valid_to: None,
    }))
}

/// The current version of an item, deleted or not.
struct CurrentVersion {
    dataset_id: String,
    valid_from: DateTime<Utc>,
    is_deleted: bool,
    created_at: DateTime<Utc>,
    fields: ItemFields,
}

/// Makes concurrent writes of one item take turns until the transaction ends.
async fn lock_item(
    client: &impl GenericClient,
    project_id: &str,
    item_id: &str,
) -> anyhow::Result<()> {
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('dataset_item:' || $1 || ':' || $2, 0))",
            &[&project_id, &item_id],
        )
        .await
        .context("postgres: locking a dataset item")?;
    Ok(())
}

async fn current_version(
    client: &impl GenericClient,
    project_id: &str,
    item_id: &str,
) -> anyhow::Result<Option<CurrentVersion>> {
    let row = client
        .query_opt(
            "SELECT dataset_id, valid_from, is_deleted, created_at, status, input, expected_output,
                    metadata, source_trace_id, source_observation_id
               FROM dataset_items
              WHERE project_id = $1 AND id = $2 AND valid_to IS NULL",
            &[&project_id, &item_id],
        )
        .await
        .context("postgres: reading an item's current version")?;
    row.map(|row| {
        let status: String = row.get("status");
        Ok(CurrentVersion {
            dataset_id: row.get("dataset_id"),
            valid_from: row.get("valid_from"),
            is_deleted: row.get("is_deleted"),
            created_at: row.get("created_at"),
            fields: ItemFields {
                input: row.get("input"),
                expected_output: row.get("expected_output"),
                metadata: row.get("metadata"),
                source_trace_id: row.get("source_trace_id"),
                source_observation_id: row.get("source_observation_id"),
                status: ItemStatus::parse(&status)
                    .with_context(|| format!("dataset item with status {status:?}"))?,
            },
        })
    })
    .transpose()
}

/// Closes the current version (if any) and inserts the next; returns its `valid_from`: now, to
/// the millisecond, and always after the version it replaces.
#[allow(clippy::too_many_arguments)]
async fn write_version(
    client: &impl GenericClient,
    project_id: &str,
    item_id: &str,
    dataset_id: &str,
    current: Option<&CurrentVersion>,
    fields: &ItemFields,
    created_at: Option<DateTime<Utc>>,
    is_deleted: bool,
) -> anyhow::Result<DateTime<Utc>> {
    let previous = current.map(|c| c.valid_from);
    let valid_from: DateTime<Utc> = client
        .query_one(
            "SELECT GREATEST(date_trunc('milliseconds', clock_timestamp()),
                             $1::timestamptz + interval '1 millisecond')",
            &[&previous],
        )
        .await
        .context("postgres: choosing a version time")?
        .get(0);
    if current.is_some() {
        client
            .execute(
                "UPDATE dataset_items SET valid_to = $3
                  WHERE project_id = $1 AND id = $2 AND valid_to IS NULL",
                &[&project_id, &item_id, &valid_from],
            )
            .await
            .context("postgres: closing an item's version")?;
    }
    let created_at = created_at.unwrap_or(valid_from);
    client
        .execute(
            "INSERT INTO dataset_items (project_id, id, valid_from, dataset_id, is_deleted, status,
                                        input, expected_output, metadata, source_trace_id,
                                        source_observation_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $3)",
            &[
                &project_id,
                &item_id,
                &valid_from,
                &dataset_id,
                &is_deleted,
                &fields.status.as_str(),
                &json_or_null(fields.input.clone()),
                &json_or_null(fields.expected_output.clone()),
                &json_or_null(fields.metadata.clone()),
                &fields.source_trace_id,
                &fields.source_observation_id,
                &created_at,
            ],
        )
        .await
        .context("postgres: writing an item's version")?;
    Ok(valid_from)
}

/// An item as it is (`version` `None`) or as it was at a time; `None`: no such item then (or it
/// was deleted).
pub async fn get_item(
    pool: &Pool,
    project: &ProjectId,
    item_id: &str,
    version: Option<DateTime<Utc>>,
) -> anyhow::Result<Option<DatasetItem>> {
    let client = pool.get().await?;
    item_at(&client, project.as_str(), item_id, version).await
}

async fn item_at(
    client: &impl GenericClient,
    project_id: &str,
    item_id: &str,
    version: Option<DateTime<Utc>>,
) -> anyhow::Result<Option<DatasetItem>> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {ITEM_COLUMNS}
                   FROM dataset_items i JOIN datasets d ON d.id = i.dataset_id
                  WHERE i.project_id = $1 AND i.id = $2 AND NOT i.is_deleted
                    AND CASE WHEN $3::timestamptz IS NULL THEN i.valid_to IS NULL
                             ELSE i.valid_from <= $3 AND (i.valid_to IS NULL OR i.valid_to > $3)
                        END"
            ),
            &[&project_id, &item_id, &version],
        )
        .await
        .context("postgres: reading a dataset item")?;
    row.as_ref().map(item_from_row).transpose()
}

/// A page of items, newest first (by creation), and how many match.
pub async fn list_items(
    pool: &Pool,
    project: &ProjectId,
    filter: &ItemFilter,
    offset: u64,
    limit: u64,
) -> anyhow::Result<(Vec<DatasetItem>, u64)> {
    let client = pool.get().await?;
    let status = filter.status.map(ItemStatus::as_str);
    let project_id = project.as_str();
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&project_id];
    let mut conditions = vec![
        "i.project_id = $1".to_string(),
        "NOT i.is_deleted".to_string(),
    ];
    if let Some(dataset_id) = &filter.dataset_id {
        params.push(dataset_id);
        conditions.push(format!("i.dataset_id = ${}", params.len()));
    }
    if let Some(trace) = &filter.source_trace_id {
        params.push(trace);
        conditions.push(format!("i.source_trace_id = ${}", params.len()));
    }
    if let Some(observation) = &filter.source_observation_id {
        params.push(observation);
        conditions.push(format!("i.source_observation_id = ${}", params.len()));
    }
    if let Some(status) = &status {
        params.push(status);
        conditions.push(format!("i.status = ${}", params.len()));
    }
    match &filter.version {
        None => conditions.push("i.valid_to IS NULL".to_string()),
        Some(version) => {
            params.push(version);
            let n = params.len();
            conditions.push(format!(
                "i.valid_from <= ${n} AND (i.valid_to IS NULL OR i.valid_to > ${n})"
            ));
        }
    }
    let conditions = conditions.join(" AND ");
    let count_params = params.clone();
    let offset = offset as i64;
    let limit = limit as i64;
    params.push(&offset);
    params.push(&limit);
    let rows = client
        .query(
            &format!(
                "SELECT {ITEM_COLUMNS}
                   FROM dataset_items i JOIN datasets d ON d.id = i.dataset_id
                  WHERE {conditions}
                  ORDER BY i.created_at DESC, i.id
                  OFFSET ${} LIMIT ${}",
                params.len() - 1,
                params.len()
            ),
            &params,
        )
        .await
        .context("postgres: listing dataset items")?;
    let total: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM dataset_items i WHERE {conditions}"),
            &count_params,
        )
        .await
        .context("postgres: counting dataset items")?
        .get(0);
    let items = rows
        .iter()
        .map(item_from_row)
        .collect::<anyhow::Result<_>>()?;
    Ok((items, total as u64))
}

/// The times a dataset's items changed, newest first: each is a version `list_items` can read.
pub async fn item_versions(
    pool: &Pool,
    project: &ProjectId,
    dataset_id: &str,
    limit: u64,
) -> anyhow::Result<Vec<DateTime<Utc>>> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT DISTINCT valid_from FROM dataset_items
              WHERE project_id = $1 AND dataset_id = $2
              ORDER BY valid_from DESC LIMIT $3",
            &[&project.as_str(), &dataset_id, &(limit as i64)],
        )
        .await
        .context("postgres: listing dataset versions")?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

// ---------------------------------------------------------------------------------------------
// Runs and run items

/// An item a run may use: active, as it is (`version` `None`) or as it was at a time. For the
/// worker and the API alike.
pub async fn find_item_for_run(
    pool: &Pool,
    project_id: &str,
    item_id: &str,
    version: Option<DateTime<Utc>>,
) -> anyhow::Result<Option<DatasetItem>> {
    let client = pool.get().await?;
    Ok(item_at(&client, project_id, item_id, version)
        .await?
        .filter(|item| item.fields.status == ItemStatus::Active))
}

/// The dataset's run of that name, made if absent. A description or metadata given replaces the
/// run's (as Langfuse's run-item endpoint does); `None` leaves it.
pub async fn get_or_create_run(
    pool: &Pool,
    project_id: &str,
    dataset_id: &str,
    name: &str,
    description: Option<&str>,
    metadata: Option<&Value>,
) -> anyhow::Result<DatasetRun> {
    let client = pool.get().await?;
    let metadata = json_or_null(metadata.cloned());
    let id = crate::domain::dataset::run_id(project_id, dataset_id, name);
    let statement = format!(
        "WITH written AS (
             INSERT INTO dataset_runs (id, project_id, dataset_id, name, description, metadata)
             SELECT $1, d.project_id, d.id, $4, $5, $6
               FROM datasets d WHERE d.id = $3 AND d.project_id = $2
             ON CONFLICT (dataset_id, name) DO UPDATE
                SET description = COALESCE(EXCLUDED.description, dataset_runs.description),
                    metadata = COALESCE(EXCLUDED.metadata, dataset_runs.metadata),
                    updated_at = CASE
                        WHEN EXCLUDED.description IS NULL AND EXCLUDED.metadata IS NULL
                        THEN dataset_runs.updated_at ELSE now() END
             RETURNING *
         )
         SELECT {RUN_COLUMNS} FROM written r JOIN datasets d ON d.id = r.dataset_id"
    );
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
        &id,
        &project_id,
        &dataset_id,
        &name,
        &description,
        &metadata,
    ];
    // The id is derived from the name, so two requests making the same run at once insert the
    // same id: the second one's insert fails on the primary key (only the name is the arbiter)
    // instead of updating, and on a second try it finds the run by name.
    let row = match client.query_one(&statement, &params).await {
        Err(err) if err.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            client.query_one(&statement, &params).await
        }
        other => other,
    }
    .with_context(|| format!("postgres: creating run {name:?} of dataset {dataset_id}"))?;
    Ok(run_from_row(&row))
}

/// Records what a run did with an item. Recording the same item, trace and observation in the
/// same run again returns the run item recorded the first time.
pub async fn create_run_item(
    pool: &Pool,
    project_id: &str,
    new: &NewRunItem,
) -> anyhow::Result<DatasetRunItem> {
    let client = pool.get().await?;
    let observation_id = new.observation_id.clone().unwrap_or_default();
    let row = client
        .query_one(
            &format!(
                "WITH written AS (
                     INSERT INTO dataset_run_items (id, project_id, dataset_run_id, dataset_item_id,
                                                    dataset_item_valid_from, trace_id, observation_id,
                                                    created_at, updated_at)
                     SELECT $1, r.project_id, r.id, $4, $5, $6, $7,
                            COALESCE($8, now()), COALESCE($8, now())
                       FROM dataset_runs r WHERE r.id = $3 AND r.project_id = $2
                     ON CONFLICT ON CONSTRAINT dataset_run_items_link_key
                        DO UPDATE SET id = dataset_run_items.id
                     RETURNING *
                 )
                 SELECT {RUN_ITEM_COLUMNS} FROM written ri JOIN dataset_runs r ON r.id = ri.dataset_run_id"
            ),
            &[
                &uuid::Uuid::new_v4().to_string(),
                &project_id,
                &new.dataset_run_id,
                &new.dataset_item_id,
                &new.dataset_item_valid_from,
                &new.trace_id,
                &observation_id,
                &new.created_at,
            ],
        )
        .await
        .with_context(|| format!("postgres: recording an item of run {}", new.dataset_run_id))?;
    Ok(run_item_from_row(&row))
}

/// A page of a dataset's runs, newest first, and their number.
pub async fn list_runs(
    pool: &Pool,
    project: &ProjectId,
    dataset_id: &str,
    offset: u64,
    limit: u64,
) -> anyhow::Result<(Vec<DatasetRun>, u64)> {
    let client = pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {RUN_COLUMNS} FROM dataset_runs r JOIN datasets d ON d.id = r.dataset_id
                  WHERE r.project_id = $1 AND r.dataset_id = $2
                  ORDER BY r.created_at DESC, r.id OFFSET $3 LIMIT $4"
            ),
            &[
                &project.as_str(),
                &dataset_id,
                &(offset as i64),
                &(limit as i64),
            ],
        )
        .await
        .context("postgres: listing dataset runs")?;
    let total: i64 = client
        .query_one(
            "SELECT count(*) FROM dataset_runs WHERE project_id = $1 AND dataset_id = $2",
            &[&project.as_str(), &dataset_id],
        )
        .await
        .context("postgres: counting dataset runs")?
        .get(0);
    Ok((rows.iter().map(run_from_row).collect(), total as u64))
}

/// For the legacy dataset list: the ids of each dataset's active items (newest first, as
/// `list_items` orders them) and the names of its runs (as `list_runs` orders them), for every
/// dataset of a page at once rather than a query per dataset.
pub async fn active_item_ids_and_run_names(
    pool: &Pool,
    project: &ProjectId,
    dataset_ids: &[String],
) -> anyhow::Result<HashMap<String, (Vec<String>, Vec<String>)>> {
    let mut out: HashMap<String, (Vec<String>, Vec<String>)> = dataset_ids
        .iter()
        .map(|id| (id.clone(), (Vec::new(), Vec::new())))
        .collect();
    if dataset_ids.is_empty() {
        return Ok(out);
    }
    let client = pool.get().await?;
    let items = client
        .query(
            "SELECT dataset_id, id FROM dataset_items
              WHERE project_id = $1 AND dataset_id = ANY($2) AND NOT is_deleted
                AND valid_to IS NULL AND status = $3
              ORDER BY created_at DESC, id",
            &[
                &project.as_str(),
                &dataset_ids,
                &ItemStatus::Active.as_str(),
            ],
        )
        .await
        .context("postgres: listing the items of datasets")?;
    for row in &items {
        if let Some((ids, _)) = out.get_mut(row.get::<_, &str>(0)) {
            ids.push(row.get(1));
        }
    }
    let runs = client
        .query(
            "SELECT dataset_id, name FROM dataset_runs
              WHERE project_id = $1 AND dataset_id = ANY($2)
              ORDER BY created_at DESC, id",
            &[&project.as_str(), &dataset_ids],
        )
        .await
        .context("postgres: listing the runs of datasets")?;
    for row in &runs {
        if let Some((_, names)) = out.get_mut(row.get::<_, &str>(0)) {
            names.push(row.get(1));
        }
    }
    Ok(out)
}

pub async fn get_run_by_name(
    pool: &Pool,
    project: &ProjectId,
    dataset_id: &str,
    name: &str,
) -> anyhow::Result<Option<DatasetRun>> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            &format!(
                "SELECT {RUN_COLUMNS} FROM dataset_runs r JOIN datasets d ON d.id = r.dataset_id
                  WHERE r.project_id = $1 AND r.dataset_id = $2 AND r.name = $3"
            ),
            &[&project.as_str(), &dataset_id, &name],
        )
        .await
        .context("postgres: reading a dataset run")?;
    Ok(row.as_ref().map(run_from_row))
}

pub async fn get_run(
    pool: &Pool,
    project: &ProjectId,
    run_id: &str,
) -> anyhow::Result<Option<DatasetRun>> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            &format!(
                "SELECT {RUN_COLUMNS} FROM dataset_runs r JOIN datasets d ON d.id = r.dataset_id
                  WHERE r.project_id = $1 AND r.id = $2"
            ),
            &[&project.as_str(), &run_id],
        )
        .await
        .context("postgres: reading a dataset run")?;
    Ok(row.as_ref().map(run_from_row))
}

/// A page of a run's items in the order they were recorded (`limit` `None`: all of them), and
/// their number.
pub async fn list_run_items(
    pool: &Pool,
    project: &ProjectId,
    run_id: &str,
    offset: u64,
    limit: Option<u64>,
) -> anyhow::Result<(Vec<DatasetRunItem>, u64)> {
    let client = pool.get().await?;
    let limit = limit.map(|l| l as i64);
    let rows = client
        .query(
            &format!(
                "SELECT {RUN_ITEM_COLUMNS}
                   FROM dataset_run_items ri JOIN dataset_runs r ON r.id = ri.dataset_run_id
                  WHERE ri.project_id = $1 AND ri.dataset_run_id = $2
                  ORDER BY ri.created_at, ri.id OFFSET $3 LIMIT $4"
            ),
            &[&project.as_str(), &run_id, &(offset as i64), &limit],
        )
        .await
        .context("postgres: listing a run's items")?;
    let total: i64 = client
        .query_one(
            "SELECT count(*) FROM dataset_run_items WHERE project_id = $1 AND dataset_run_id = $2",
            &[&project.as_str(), &run_id],
        )
        .await
        .context("postgres: counting a run's items")?
        .get(0);
    Ok((rows.iter().map(run_item_from_row).collect(), total as u64))
}

/// Deletes a run and its items. False: there was none.
pub async fn delete_run(pool: &Pool, project: &ProjectId, run_id: &str) -> anyhow::Result<bool> {
    let client = pool.get().await?;
    let deleted = client
        .execute(
            "DELETE FROM dataset_runs WHERE project_id = $1 AND id = $2",
            &[&project.as_str(), &run_id],
        )
        .await
        .context("postgres: deleting a dataset run")?;
    Ok(deleted == 1)
}
