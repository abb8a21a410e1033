//! One flush of the worker: the rows of every table, written as one insert per table.

use serde::Serialize;

use super::observations::ObservationRow;
use super::scores::ScoreRow;
use super::traces::TraceRow;

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
        insert_all(client, "traces", &self.traces).await?;
        insert_all(client, "observations", &self.observations).await?;
        insert_all(client, "scores", &self.scores).await?;
        Ok(())
    }
}
