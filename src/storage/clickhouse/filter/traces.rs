//! The traces view (the traces table): Langfuse's trace filter columns, with input, output and
//! `public`, which this server can filter on too.
//!
//! Aliases: `t` is the newest version of each trace; `os` the figures over the newest versions of
//! its observations (see `OBSERVATION_FIGURES`), joined when a condition needs them. A trace
//! without observations reads zeros there and an empty level (ClickHouse's defaults for a row
//! a LEFT JOIN does not find).

use super::{
    Column, Kind, Narrowing, Search, Source, Sql, Unsupported, View, NO_COMMENTS,
    NO_SCORE_AGGREGATES,
};
use crate::domain::project::ProjectId;
use crate::storage::clickhouse::sql::Bound;

pub static ID: Column = Column::new("id", "ID", Kind::Text, "t.id");
pub static NAME: Column = Column::new("name", "Name", Kind::Options, "t.name");
pub static TIMESTAMP: Column = Column::new("timestamp", "Timestamp", Kind::Time, "t.timestamp");
pub static USER_ID: Column = Column::new("userId", "User ID", Kind::Text, "t.user_id");
pub static SESSION_ID: Column = Column::new("sessionId", "Session ID", Kind::Text, "t.session_id");
pub static ENVIRONMENT: Column =
    Column::new("environment", "Environment", Kind::Options, "t.environment");
pub static RELEASE: Column =
    Column::new("release", "Release", Kind::Text, "t.release").empty_equals_null();
pub static VERSION: Column = Column::new("version", "Version", Kind::Text, "t.version");
pub static TAGS: Column = Column::new("tags", "Tags", Kind::List, "t.tags");
pub static METADATA: Column =
    Column::new("metadata", "Metadata", Kind::Object, "t.metadata").searched(Search::Values);
// The metadata keys Langfuse's evaluators write on the traces they run.
pub static EVALUATOR_ID: Column = Column::new(
    "evaluatorId",
    "Evaluator ID",
    Kind::Options,
    "t.metadata['evaluator_id']",
);
pub static RULE_ID: Column = Column::new(
    "ruleId",
    "Rule ID",
    Kind::Options,
    "if(t.metadata['evaluation_rule_id'] != '', t.metadata['evaluation_rule_id'], \
     t.metadata['job_configuration_id'])",
);
pub static BOOKMARKED: Column = Column::new("bookmarked", "⭐️", Kind::Flag, "t.bookmarked");
pub static PUBLIC: Column = Column::new("public", "Public", Kind::Flag, "t.public");
pub static INPUT: Column =
    Column::new("input", "Input", Kind::Text, "t.input").searched(Search::FullText);
pub static OUTPUT: Column =
    Column::new("output", "Output", Kind::Text, "t.output").searched(Search::FullText);
/// The highest level among the trace's observations.
pub static LEVEL: Column = Column::new(
    "level",
    "Level",
    Kind::Options,
    "multiIf(os.error_count > 0, 'ERROR', os.warning_count > 0, 'WARNING', \
     os.default_count > 0, 'DEFAULT', os.debug_count > 0, 'DEBUG', '')",
)
.from(Source::ObservationStats);
pub static ERROR_COUNT: Column = Column::new(
    "errorCount",
    "Error Level Count",
    Kind::Number,
    "os.error_count",
)
.from(Source::ObservationStats);
pub static WARNING_COUNT: Column = Column::new(
    "warningCount",
    "Warning Level Count",
    Kind::Number,
    "os.warning_count",
)
.from(Source::ObservationStats);
pub static DEFAULT_COUNT: Column = Column::new(
    "defaultCount",
    "Default Level Count",
    Kind::Number,
    "os.default_count",
)
.from(Source::ObservationStats);
pub static DEBUG_COUNT: Column = Column::new(
    "debugCount",
    "Debug Level Count",
    Kind::Number,
    "os.debug_count",
)
.from(Source::ObservationStats);
/// Seconds from the first observation's start to the last one's end, as the trace list shows.
pub static LATENCY: Column = Column::new("latency", "Latency (s)", Kind::Number, "os.duration")
    .from(Source::ObservationStats);
pub static INPUT_TOKENS: Column = Column::new(
    "inputTokens",
    "Input Tokens",
    Kind::Number,
    "os.input_tokens",
)
.from(Source::ObservationStats);
pub static OUTPUT_TOKENS: Column = Column::new(
    "outputTokens",
    "Output Tokens",
    Kind::Number,
    "os.output_tokens",
)
.from(Source::ObservationStats);
pub static TOTAL_TOKENS: Column = Column::new(
    "totalTokens",
    "Total Tokens",
    Kind::Number,
    "os.total_tokens",
)
.from(Source::ObservationStats);
pub static INPUT_COST: Column =
    Column::new("inputCost", "Input Cost ($)", Kind::Number, "os.input_cost")
        .from(Source::ObservationStats);
pub static OUTPUT_COST: Column = Column::new(
    "outputCost",
    "Output Cost ($)",
    Kind::Number,
    "os.output_cost",
)
.from(Source::ObservationStats);
pub static TOTAL_COST: Column =
    Column::new("totalCost", "Total Cost ($)", Kind::Number, "os.total_cost")
        .from(Source::ObservationStats);

pub static TRACES: View = View {
    name: "traces",
    columns: &[
        &BOOKMARKED,
        &LEVEL,
        &ID,
        &NAME,
        &TIMESTAMP,
        &USER_ID,
        &SESSION_ID,
        &METADATA,
        &EVALUATOR_ID,
        &RULE_ID,
        &VERSION,
        &RELEASE,
        &ENVIRONMENT,
        &TAGS,
        &WARNING_COUNT,
        &ERROR_COUNT,
        &DEFAULT_COUNT,
        &DEBUG_COUNT,
        &INPUT_TOKENS,
        &OUTPUT_TOKENS,
        &TOTAL_TOKENS,
        &LATENCY,
        &INPUT_COST,
        &OUTPUT_COST,
        &TOTAL_COST,
        &PUBLIC,
        &INPUT,
        &OUTPUT,
    ],
    aliases: &[
        ("traceId", &ID),
        ("Trace ID", &ID),
        ("traceName", &NAME),
        ("Trace Name", &NAME),
        ("traceTags", &TAGS),
        ("Trace Tags", &TAGS),
        ("tokens", &TOTAL_TOKENS),
        ("Tokens", &TOTAL_TOKENS),
    ],
    unsupported: &[
        Unsupported::new("scores", "Scores", NO_SCORE_AGGREGATES),
        Unsupported::new("scores_avg", "Scores (numeric)", NO_SCORE_AGGREGATES),
        Unsupported::new(
            "score_categories",
            "Scores (categorical)",
            NO_SCORE_AGGREGATES,
        ),
        Unsupported::new("score_booleans", "Scores (boolean)", NO_SCORE_AGGREGATES),
        Unsupported::new("commentCount", "Comment Count", NO_COMMENTS),
        Unsupported::new("commentContent", "Comment Content", NO_COMMENTS),
    ],
    // The table is sorted by day of timestamp and id, with skip indexes on user and session.
    narrowing: Some(Narrowing {
        table: "traces",
        alias: "t",
        columns: &[&TIMESTAMP, &ID, &USER_ID, &SESSION_ID],
    }),
    from,
};

fn from(project: &ProjectId, own_rows: Sql, joins: &[Source]) -> Sql {
    // The figures are needed for the narrowed traces alone: their observations are those with
    // some version under one of them (every version of those is read, so the newest is known).
    let mut observations_of_rows = Sql::default();
    if !own_rows.text.is_empty() {
        observations_of_rows.text("AND id IN (SELECT id FROM observations WHERE project_id = ");
        observations_of_rows.bind(Bound::Text(project.to_string()));
        observations_of_rows.text(" AND trace_id IN (SELECT id FROM traces WHERE project_id = ");
        observations_of_rows.bind(Bound::Text(project.to_string()));
        observations_of_rows.text(" ");
        observations_of_rows.append(own_rows.clone());
        observations_of_rows.text("))");
    }
    let mut sql = super::newest(project, "traces", "*", "t", own_rows);
    if joins.contains(&Source::ObservationStats) {
        sql.text(&format!(
            " LEFT JOIN (SELECT o.trace_id AS trace_id, {} FROM ",
            super::OBSERVATION_FIGURES
        ));
        sql.append(super::newest(
            project,
            "observations",
            super::OBSERVATION_FIGURE_COLUMNS,
            "o",
            observations_of_rows,
        ));
        sql.text(" GROUP BY o.trace_id) AS os ON os.trace_id = t.id");
    }
    sql
}
