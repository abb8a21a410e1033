//! One flush of the worker: the rows of every table, written as one insert per table, and the
//! rows of entities whose events were all deleted, deleted.

use serde::Serialize;

use std::collections::BTreeMap;

use super::observations::ObservationRow;
use super::scores::ScoreRow;
use super::sql::{Bound, Sql};
use super::traces::TraceRow;
use crate::domain::entity::EntityKind;
use crate::storage::queue::EntityRef;

#[derive(Debug, Default)]
pub struct RowBatch {
    pub traces: Vec<TraceRow>,
    pub observations: Vec<ObservationRow>,
    pub scores: Vec<ScoreRow>,
}

impl RowBatch {
    pub fn len(&self) -> usize {
        self.traces.len() + self.observations.len() + self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inserts each non-empty table's rows in one statement. Succeeds only when ClickHouse
    /// confirmed every insert; a retry after a partial failure re-inserts rows that
    /// ReplacingMergeTree folds into one.
    pub async fn insert(&self, client: &clickhouse::Client) -> anyhow::Result<()> {
        async fn insert_all<T: clickhouse::Row + Serialize>(
            client: &clickhouse::Client,
            table: &str,
            rows: &[T],
        ) -> anyhow::Result<()> {
            if rows.is_empty() {
                return Ok(());
            }
            let mut insert = client.insert(table)?;
            for row in rows {
                insert.write(row).await?;
            }
            insert.end().await?;
            Ok(())
        }
        // Traces last: a trace becomes readable only with the observations and scores written
        // with it (each statement is confirmed before the next starts).
        insert_all(client, "observations", &self.observations).await?;
        insert_all(client, "scores", &self.scores).await?;
        insert_all(client, "traces", &self.traces).await?;
        Ok(())
    }
}

/// Deletes every version of the rows of `entities`, one statement per project and table.
/// Idempotent, so a retried flush may repeat it.
pub async fn delete_rows<'a>(
    ch: &clickhouse::Client,
    entities: impl IntoIterator<Item = &'a EntityRef>,
) -> anyhow::Result<()> {
    let mut by_table: BTreeMap<(&str, EntityKind), Vec<String>> = BTreeMap::new();
    for e in entities {
        by_table
            .entry((&e.project_id, e.kind))
            .or_default()
            .push(e.entity_id.clone());
    }
    for ((project_id, kind), ids) in by_table {
        let table = match kind {
            EntityKind::Trace => "traces",
            EntityKind::Observation => "observations",
            EntityKind::Score => "scores",
        };
        let mut sql = Sql::new(&format!("DELETE FROM {table} WHERE project_id = "));
        sql.bind(Bound::Text(project_id.to_string()));
        sql.text(" AND id IN ");
        sql.bind(Bound::Texts(ids));
        sql.query(ch).execute().await?;
    }
    Ok(())
}
