//! The sessions view (the sessions table): Langfuse's session filter columns. A session is the
//! set of traces that share a non-empty `session_id`; it has no record of its own here.
//!
//! Aliases: `s` is one row per session, over the newest versions of its traces (created at its
//! first trace's timestamp; its environment, as the session list shows, one of its traces');
//! `os` the figures over the newest versions of the observations of those traces (see
//! `OBSERVATION_FIGURES`), joined when a condition needs them. A session whose traces have no
//! observations reads zeros there.

use super::{Column, Kind, Source, Sql, Unsupported, View, NO_COMMENTS, NO_SCORE_AGGREGATES};
use crate::domain::project::ProjectId;

pub static ID: Column = Column::new("id", "ID", Kind::Text, "s.id");
pub static CREATED_AT: Column = Column::new("createdAt", "Created At", Kind::Time, "s.created_at");
pub static USER_IDS: Column = Column::new("userIds", "User IDs", Kind::List, "s.user_ids");
pub static ENVIRONMENT: Column =
    Column::new("environment", "Environment", Kind::Options, "s.environment");
pub static TAGS: Column = Column::new("tags", "Trace Tags", Kind::List, "s.tags");
pub static COUNT_TRACES: Column =
    Column::new("countTraces", "Traces Count", Kind::Number, "s.trace_count");
pub static SESSION_DURATION: Column = Column::new(
    "sessionDuration",
    "Session Duration (s)",
    Kind::Number,
    "os.duration",
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

const NO_SESSION_RECORDS: &str = "sessions have no record of their own to bookmark";

pub static SESSIONS: View = View {
    name: "sessions",
    columns: &[
        &ID,
        &CREATED_AT,
        &USER_IDS,
        &ENVIRONMENT,
        &SESSION_DURATION,
        &COUNT_TRACES,
        &INPUT_COST,
        &OUTPUT_COST,
        &TOTAL_COST,
        &INPUT_TOKENS,
        &OUTPUT_TOKENS,
        &TOTAL_TOKENS,
        &TAGS,
    ],
    // Langfuse's session table mapping has kept older names beside the current ones.
    aliases: &[
        ("Session Duration", &SESSION_DURATION),
        ("Count Traces", &COUNT_TRACES),
        ("tracesCount", &COUNT_TRACES),
        ("Session Input Cost", &INPUT_COST),
        ("Session Output Cost", &OUTPUT_COST),
        ("Session Total Cost", &TOTAL_COST),
        ("usage", &TOTAL_TOKENS),
        ("Usage", &TOTAL_TOKENS),
        ("Session Total Usage", &TOTAL_TOKENS),
        ("traceTags", &TAGS),
    ],
    unsupported: &[
        Unsupported::new("bookmarked", "⭐️", NO_SESSION_RECORDS),
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
    // A session is a group of traces, no row of a table of its own.
    narrowing: None,
    from,
};

/// One row per session, over its traces `tr`.
const SESSION: &str =
    "SELECT assumeNotNull(tr.session_id) AS id, min(tr.timestamp) AS created_at, \
    groupUniqArrayIf(assumeNotNull(tr.user_id), ifNull(tr.user_id, '') != '') AS user_ids, \
    any(tr.environment) AS environment, groupUniqArrayArray(tr.tags) AS tags, \
    count() AS trace_count FROM ";

fn from(project: &ProjectId, own_rows: Sql, joins: &[Source]) -> Sql {
    debug_assert!(own_rows.text.is_empty(), "sessions have no narrowing");
    let mut sql = Sql::default();
    sql.text(&format!("({SESSION}"));
    sql.append(super::newest(
        project,
        "traces",
        "session_id, timestamp, user_id, environment, tags",
        "tr",
        Sql::default(),
    ));
    sql.text(" WHERE ifNull(tr.session_id, '') != '' GROUP BY tr.session_id) AS s");
    if joins.contains(&Source::ObservationStats) {
        sql.text(&format!(
            " LEFT JOIN (SELECT assumeNotNull(tr.session_id) AS session_id, {} FROM ",
            super::OBSERVATION_FIGURES
        ));
        sql.append(super::newest(
            project,
            "observations",
            super::OBSERVATION_FIGURE_COLUMNS,
            "o",
            Sql::default(),
        ));
        sql.text(" INNER JOIN ");
        sql.append(super::newest(
            project,
            "traces",
            "id, session_id",
            "tr",
            Sql::default(),
        ));
        sql.text(
            " ON tr.id = o.trace_id WHERE ifNull(tr.session_id, '') != '' \
             GROUP BY tr.session_id) AS os ON os.session_id = s.id",
        );
    }
    sql
}
