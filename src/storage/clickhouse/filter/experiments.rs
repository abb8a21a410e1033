//! The experiments views (`GET /api/public/experiments`, `GET /api/public/experiment-items`):
//! the `filter` columns Langfuse's experiments API takes, over the observations of experiment
//! runs. Alias `o` is the newest version of each observation, as in the observations view; the
//! experiments list filters those observations before it groups them by experiment.

use super::observations::{ID, START_TIME, TRACE_ID};
use super::{Column, Kind, Narrowing, Source, Sql, View};
use crate::domain::project::ProjectId;

pub static EXPERIMENT_ID: Column = Column::new(
    "experimentId",
    "Experiment ID",
    Kind::Options,
    "o.experiment_id",
);
pub static EXPERIMENT_NAME: Column = Column::new(
    "experimentName",
    "Experiment Name",
    Kind::Options,
    "o.experiment_name",
);
pub static EXPERIMENT_ITEM_ID: Column = Column::new(
    "experimentItemId",
    "Experiment Item ID",
    Kind::Options,
    "o.experiment_item_id",
);
pub static DATASET_ID: Column = Column::new(
    "datasetId",
    "Dataset ID",
    Kind::Options,
    "o.experiment_dataset_id",
);
// The experiments list names the same columns by the experiment's own fields.
static BY_ID: Column = Column::new("id", "ID", Kind::Options, "o.experiment_id");
static BY_NAME: Column = Column::new("name", "Name", Kind::Options, "o.experiment_name");

/// The table is sorted by day of start time and id, with skip indexes on the trace and the
/// experiment.
const NARROWING: Narrowing = Narrowing {
    table: "observations",
    alias: "o",
    columns: &[&START_TIME, &ID, &TRACE_ID, &EXPERIMENT_ID, &BY_ID],
};

pub static EXPERIMENTS: View = View {
    name: "experiments",
    columns: &[&BY_ID, &BY_NAME, &DATASET_ID],
    aliases: &[],
    unsupported: &[],
    narrowing: Some(NARROWING),
    from,
};

pub static EXPERIMENT_ITEMS: View = View {
    name: "experiment items",
    columns: &[
        &EXPERIMENT_ID,
        &EXPERIMENT_NAME,
        &EXPERIMENT_ITEM_ID,
        &DATASET_ID,
    ],
    aliases: &[],
    unsupported: &[],
    narrowing: Some(NARROWING),
    from,
};

fn from(project: &ProjectId, own_rows: Sql, joins: &[Source]) -> Sql {
    super::rows_with_their_trace(project, "observations", "o", own_rows, joins, "id")
}
