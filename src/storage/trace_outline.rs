//! A trace as the web UI's trace page shows it: the trace, the outline of its observations (no
//! input, output or metadata: `clickhouse::trace_tree`), its scores and its figures. Like
//! [`super::whole_trace`], only once the trace is readable whole (`trace_gate`), so a page never
//! shows part of what was accepted together.

use crate::domain::project::ProjectId;
use crate::storage::clickhouse::scores::{self, ScoreView};
use crate::storage::clickhouse::trace_table::{self, Figures};
use crate::storage::clickhouse::trace_tree::{self, ObservationOutline};
use crate::storage::clickhouse::traces::{self, TraceView};
use crate::storage::trace_gate;
use crate::storage::Stores;

pub struct TraceOutline {
    pub trace: TraceView,
    /// By start time.
    pub observations: Vec<ObservationOutline>,
    /// Oldest first: the trace's and its observations'.
    pub scores: Vec<ScoreView>,
    /// Latency, tokens, cost and level over its observations (`None` without observations).
    pub figures: Option<Figures>,
}

/// Whether the trace may be read yet; should Redis not answer, it may (as `whole_trace`).
pub async fn is_readable(stores: &Stores, project: &ProjectId, trace_id: &str) -> bool {
    match trace_gate::is_readable(&stores.redis, project.as_str(), trace_id).await {
        Ok(readable) => readable,
        Err(err) => {
            tracing::warn!(
                error = format!("{err:#}"),
                "cannot ask whether a trace is readable whole"
            );
            true
        }
    }
}

/// The trace `trace_id` with the outline of everything under it, or `None` while it does not
/// exist or is still held back.
pub async fn read(
    stores: &Stores,
    project: &ProjectId,
    trace_id: &str,
) -> anyhow::Result<Option<TraceOutline>> {
    if !is_readable(stores, project, trace_id).await {
        return Ok(None);
    }
    let ch = &stores.clickhouse;
    let ids = [trace_id.to_string()];
    let (trace, observations, scores, figures) = futures::try_join!(
        traces::get(ch, project, trace_id),
        trace_tree::of_trace(ch, project, trace_id),
        scores::of_trace(ch, project, trace_id),
        // A trace's own page counts every observation, wherever it starts.
        trace_table::figures(ch, project, &ids, None),
    )?;
    Ok(trace.map(|trace| TraceOutline {
        trace,
        observations,
        scores,
        figures: figures.into_iter().next(),
    }))
}
