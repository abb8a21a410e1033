//! The web UI's view of dataset runs: what the trace (or the observation) each run item points
//! at produced, how long it took, what it cost and how it was scored, for a page of run items of
//! any number of runs in four queries (outputs of traces, of observations, the traces' figures
//! and their scores), never one per item.
//!
//! As in Langfuse, a run item that names an observation is measured by that observation
//! (its output, duration and cost), one that names only a trace by the trace (its output, the
//! span of its observations, their cost); both show the scores of the trace.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use clickhouse::serde::chrono::datetime64::millis;
use serde::Deserialize;

use super::sql::{latest_matching, Bound, Sql};
use super::trace_table::{self, PageTimes, ScoreFigure};
use crate::domain::project::ProjectId;

/// How many characters of an output are read: enough to show an answer side by side with
/// others, not a whole document (the trace's page shows it all).
pub const OUTPUT_CHARS: usize = 16 * 1024;

/// What a run item points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunItemTarget {
    pub trace_id: String,
    pub observation_id: Option<String>,
}

/// What a run item's trace or observation shows in the comparison.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunItemResult {
    /// Whether the trace (or observation) was found: it may not have arrived yet, or be deleted.
    pub found: bool,
    /// The stored output (JSON text), its first [`OUTPUT_CHARS`] characters.
    pub output: Option<String>,
    /// The output is longer than what was read.
    pub output_cut: bool,
    pub latency_secs: Option<f64>,
    pub total_cost: Option<f64>,
    /// The trace's scores, by name.
    pub scores: Vec<ScoreFigure>,
}

#[derive(Debug, Clone, Deserialize, clickhouse::Row)]
struct TraceOutput {
    id: String,
    #[serde(with = "millis")]
    timestamp: DateTime<Utc>,
    output: String,
    output_chars: u64,
}

#[derive(Debug, Clone, Deserialize, clickhouse::Row)]
struct ObservationOutput {
    id: String,
    trace_id: String,
    #[serde(with = "millis")]
    start_time: DateTime<Utc>,
    #[serde(with = "millis::option")]
    end_time: Option<DateTime<Utc>>,
    total_cost: Option<f64>,
    output: String,
    output_chars: u64,
}

/// `leftUTF8(output)` and its length (a missing output is the empty text); without
/// `read_outputs`, neither is read.
fn output_columns(read_outputs: bool) -> String {
    if read_outputs {
        format!(
            "leftUTF8(ifNull(output, ''), {OUTPUT_CHARS}) AS output, \
             lengthUTF8(ifNull(output, '')) AS output_chars"
        )
    } else {
        "'' AS output, toUInt64(0) AS output_chars".to_string()
    }
}

fn traces_sql(project: &ProjectId, trace_ids: &[String], read_outputs: bool) -> Sql {
    let mut of_ids = Sql::new("AND id IN ");
    of_ids.bind(Bound::Texts(trace_ids.to_vec()));
    latest_matching(
        project,
        "traces",
        &format!("id, timestamp, {}", output_columns(read_outputs)),
        &of_ids,
    )
}

fn observations_sql(project: &ProjectId, observation_ids: &[String], read_outputs: bool) -> Sql {
    let mut of_ids = Sql::new("AND id IN ");
    of_ids.bind(Bound::Texts(observation_ids.to_vec()));
    latest_matching(
        project,
        "observations",
        &format!(
            "id, trace_id, start_time, end_time, toFloat64(total_cost) AS total_cost, {}",
            output_columns(read_outputs)
        ),
        &of_ids,
    )
}

/// The stored output as read: `None` when there is none (`''`, or JSON `null`).
fn read_output(text: String, chars: u64) -> (Option<String>, bool) {
    if text.is_empty() || text == "null" {
        return (None, false);
    }
    let cut = chars > OUTPUT_CHARS as u64;
    (Some(text), cut)
}

/// What each target shows, by target; a target whose trace (or observation) is not there is
/// answered with `found: false`. Without `read_outputs`, only the figures and scores are read
/// (a run's totals over all its items).
pub async fn results(
    ch: &clickhouse::Client,
    project: &ProjectId,
    targets: &[RunItemTarget],
    read_outputs: bool,
) -> anyhow::Result<HashMap<RunItemTarget, RunItemResult>> {
    let mut trace_ids: Vec<String> = targets.iter().map(|t| t.trace_id.clone()).collect();
    trace_ids.sort();
    trace_ids.dedup();
    let mut observation_ids: Vec<String> = targets
        .iter()
        .filter_map(|t| t.observation_id.clone())
        .collect();
    observation_ids.sort();
    observation_ids.dedup();
    if trace_ids.is_empty() {
        return Ok(HashMap::new());
    }

    let traces: Vec<TraceOutput> = traces_sql(project, &trace_ids, read_outputs)
        .query(ch)
        .fetch_all()
        .await?;
    let observations: Vec<ObservationOutput> = if observation_ids.is_empty() {
        Vec::new()
    } else {
        observations_sql(project, &observation_ids, read_outputs)
            .query(ch)
            .fetch_all()
            .await?
    };
    let found_ids: Vec<String> = traces.iter().map(|t| t.id.clone()).collect();
    let (figures, scores) = match PageTimes::of(traces.iter().map(|t| &t.timestamp)) {
        Some(times) => (
            trace_table::figures(ch, project, &found_ids, Some(times)).await?,
            trace_table::scores(ch, project, &found_ids, times).await?,
        ),
        None => (Vec::new(), Vec::new()),
    };

    let traces: HashMap<&str, &TraceOutput> = traces.iter().map(|t| (t.id.as_str(), t)).collect();
    let observations: HashMap<&str, &ObservationOutput> =
        observations.iter().map(|o| (o.id.as_str(), o)).collect();
    let figures: HashMap<&str, _> = figures.iter().map(|f| (f.trace_id.as_str(), f)).collect();
    let mut scores_of: HashMap<&str, Vec<ScoreFigure>> = HashMap::new();
    for score in &scores {
        scores_of
            .entry(score.trace_id.as_str())
            .or_default()
            .push(score.clone());
    }

    let mut out = HashMap::new();
    for target in targets {
        let Some(trace) = traces.get(target.trace_id.as_str()) else {
            out.insert(target.clone(), RunItemResult::default());
            continue;
        };
        let scores = scores_of
            .get(target.trace_id.as_str())
            .cloned()
            .unwrap_or_default();
        let result = match &target.observation_id {
            Some(observation_id) => match observations
                .get(observation_id.as_str())
                .filter(|o| o.trace_id == target.trace_id)
            {
                Some(o) => {
                    let (output, output_cut) = read_output(o.output.clone(), o.output_chars);
                    RunItemResult {
                        found: true,
                        output,
                        output_cut,
                        latency_secs: o.end_time.map(|end| {
                            (end - o.start_time).num_milliseconds().max(0) as f64 / 1000.0
                        }),
                        total_cost: o.total_cost,
                        scores,
                    }
                }
                None => RunItemResult::default(),
            },
            None => {
                let (output, output_cut) = read_output(trace.output.clone(), trace.output_chars);
                let figures = figures.get(target.trace_id.as_str());
                RunItemResult {
                    found: true,
                    output,
                    output_cut,
                    latency_secs: figures.map(|f| f.latency_secs),
                    total_cost: figures.map(|f| f.total_cost),
                    scores,
                }
            }
        };
        out.insert(target.clone(), result);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queries_are_scoped_bound_and_read_a_bounded_output() {
        let project = ProjectId::authenticated("p");
        for sql in [
            traces_sql(&project, &["t'1".to_string()], true),
            observations_sql(&project, &["o'1".to_string()], true),
        ] {
            assert_eq!(sql.text.matches('?').count(), sql.binds.len());
            assert!(!sql.text.contains("'1"));
            assert!(sql.text.contains("project_id = ?"));
            assert!(sql
                .text
                .contains(&format!("leftUTF8(ifNull(output, ''), {OUTPUT_CHARS})")));
            assert!(!sql.text.contains("input"), "{}", sql.text);
        }
        let figures_only = traces_sql(&project, &["t".to_string()], false);
        assert!(!figures_only.text.contains("ifNull(output"));
    }

    #[test]
    fn outputs_read_as_missing_whole_or_cut() {
        assert_eq!(read_output(String::new(), 0), (None, false));
        assert_eq!(read_output("null".into(), 4), (None, false));
        assert_eq!(
            read_output("\"yes\"".into(), 5),
            (Some("\"yes\"".into()), false)
        );
        assert!(read_output("x".repeat(OUTPUT_CHARS), OUTPUT_CHARS as u64 + 1).1);
    }
}
