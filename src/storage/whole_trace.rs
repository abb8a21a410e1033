//! A trace with its observations and scores, as a trace read shows it: only once it is readable
//! whole (`trace_gate`), so that no reader sees a trace without what was accepted with it.

use crate::domain::project::ProjectId;
use crate::storage::clickhouse::observations::{self, ObservationView};
use crate::storage::clickhouse::scores::{self, ScoreView};
use crate::storage::clickhouse::traces::{self, TraceView};
use crate::storage::trace_gate;
use crate::storage::Stores;

pub struct WholeTrace {
    pub trace: TraceView,
    /// By start time.
    pub observations: Vec<ObservationView>,
    /// Oldest first.
    pub scores: Vec<ScoreView>,
}

/// The trace `trace_id` with everything under it, or `None` while it does not exist or is still
/// held back. Should Redis not answer, the trace is read as ClickHouse has it: a read is not
/// refused for the sake of the gate.
pub async fn read(
    stores: &Stores,
    project: &ProjectId,
    trace_id: &str,
) -> anyhow::Result<Option<WholeTrace>> {
    match trace_gate::is_readable(&stores.redis, project.as_str(), trace_id).await {
        Ok(true) => {}
        Ok(false) => return Ok(None),
        Err(err) => {
            tracing::warn!(
                error = format!("{err:#}"),
                "cannot ask whether a trace is readable whole"
            );
        }
    }
    let ch = &stores.clickhouse;
    let Some(trace) = traces::get(ch, project, trace_id).await? else {
        return Ok(None);
    };
    let (observations, scores) = futures::try_join!(
        observations::of_trace(ch, project, trace_id),
        scores::of_trace(ch, project, trace_id),
    )?;
    Ok(Some(WholeTrace {
        trace,
        observations,
        scores,
    }))
}
