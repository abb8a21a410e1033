//! Dataset runs and run items made from experiment spans (the worker's side of
//! `sql/postgres/0007_datasets.sql`): the runs that `POST /api/public/dataset-run-items` makes
//! and those an SDK's experiment runner records over OpenTelemetry are the same rows, found by
//! dataset and run name.
//!
//! Everything a span says was written by its sender, so nothing is taken on its word: a run is
//! only made in a dataset of the span's own project, and a run item only for an item of that
//! dataset (in the version the run read). Links that name neither are skipped, not errors.
//! Writing a link twice finds the row the first write made (`dataset_run_items_link_key`), so a
//! rebuild, a duplicate or a retry changes nothing.

use anyhow::Context;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What one experiment span links: its dataset item, in the run named `run_name` of `dataset_id`,
/// to its trace and observation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RunItemLink {
    pub project_id: String,
    pub dataset_id: String,
    /// The experiment id the span carries: the id a run made here gets (the SDKs derive it from
    /// the project, dataset and run name, as Langfuse does), unless the run exists already.
    pub run_id: String,
    pub run_name: String,
    pub run_description: Option<String>,
    /// The experiment's metadata as JSON text of an object, if any.
    pub run_metadata: Option<String>,
    pub item_id: String,
    /// The item version the run read; `None`: the current one.
    pub item_version: Option<DateTime<Utc>>,
    pub trace_id: String,
    pub observation_id: String,
}

/// Makes the runs the links name (those missing, in datasets of their projects) and the run
/// items (those missing, for items of those datasets), in one transaction. Returns how many
/// run items were new.
pub async fn link_run_items(pool: &Pool, links: &[RunItemLink]) -> anyhow::Result<u64> {
    if links.is_empty() {
        return Ok(0);
    }
    let column = |f: fn(&RunItemLink) -> Option<&str>| -> Vec<Option<&str>> {
        links.iter().map(f).collect()
    };
    let projects = column(|l| Some(&l.project_id));
    let datasets = column(|l| Some(&l.dataset_id));
    let run_ids = column(|l| Some(&l.run_id));
    let names = column(|l| Some(&l.run_name));
    let descriptions = column(|l| l.run_description.as_deref());
    let metadata: Vec<Option<Value>> = links
        .iter()
        .map(|l| {
            l.run_metadata
                .as_deref()
                .and_then(|m| serde_json::from_str(m).ok())
        })
        .collect();
    let items = column(|l| Some(&l.item_id));
    let versions: Vec<Option<DateTime<Utc>>> = links.iter().map(|l| l.item_version).collect();
    let traces = column(|l| Some(&l.trace_id));
    let observations = column(|l| Some(&l.observation_id));

    let mut client = pool.get().await.context("no PostgreSQL connection")?;
    let tx = client.transaction().await?;
    // The runs: by the span's experiment id; where that id is taken (by a run elsewhere), by a
    // fresh one. A run that exists by name is kept as it is.
    for id in ["k.run_id", "gen_random_uuid()::text"] {
        tx.execute(
            &format!(
                "INSERT INTO dataset_runs (id, project_id, dataset_id, name, description, metadata)
                 SELECT DISTINCT ON (k.dataset_id, k.name)
                        {id}, k.project_id, k.dataset_id, k.name, k.description, k.metadata
                   FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[])
                        AS k(project_id, dataset_id, run_id, name, description, metadata)
                   JOIN datasets d ON d.id = k.dataset_id AND d.project_id = k.project_id
                  WHERE NOT EXISTS (SELECT 1 FROM dataset_runs r
                                     WHERE r.dataset_id = k.dataset_id AND r.name = k.name)
                  ORDER BY k.dataset_id, k.name
                 ON CONFLICT DO NOTHING"
            ),
            &[
                &projects,
                &datasets,
                &run_ids,
                &names,
                &descriptions,
                &metadata,
            ],
        )
        .await
        .context("creating dataset runs")?;
    }
    let created = tx
        .execute(
            "INSERT INTO dataset_run_items
                    (id, project_id, dataset_run_id, dataset_item_id, dataset_item_valid_from,
                     trace_id, observation_id)
             SELECT gen_random_uuid()::text, k.project_id, r.id, k.item_id, v.valid_from,
                    k.trace_id, k.observation_id
               FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                           $6::text[], $7::text[])
                    AS k(project_id, dataset_id, run_name, item_id, version, trace_id, observation_id)
               JOIN dataset_runs r
                 ON r.project_id = k.project_id AND r.dataset_id = k.dataset_id AND r.name = k.run_name
               JOIN LATERAL (
                    SELECT i.valid_from, i.is_deleted FROM dataset_items i
                     WHERE i.project_id = k.project_id AND i.id = k.item_id
                       AND i.dataset_id = k.dataset_id
                       AND i.valid_from <= coalesce(k.version, now())
                     ORDER BY i.valid_from DESC LIMIT 1) v ON NOT v.is_deleted
             ON CONFLICT DO NOTHING",
            &[
                &projects,
                &datasets,
                &names,
                &items,
                &versions,
                &traces,
                &observations,
            ],
        )
        .await
        .context("creating dataset run items")?;
    tx.commit().await?;
    Ok(created)
}
