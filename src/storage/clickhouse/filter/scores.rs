//! The scores view (the scores table): Langfuse's score filter columns.
//!
//! Aliases: `s` is the newest version of each score; `t` the newest version of its trace, joined
//! when a condition needs it (a score without a trace reads empty values).

use super::{Column, Kind, Search, Source, Sql, View};
use crate::domain::project::ProjectId;

pub static ID: Column = Column::new("id", "ID", Kind::Text, "s.id");
pub static TIMESTAMP: Column = Column::new("timestamp", "Timestamp", Kind::Time, "s.timestamp");
pub static ENVIRONMENT: Column =
    Column::new("environment", "Environment", Kind::Options, "s.environment");
pub static TRACE_ID: Column = Column::new("traceId", "Trace ID", Kind::Text, "s.trace_id");
/// A score without an observation is a trace-level score, whether the id is NULL or empty.
pub static OBSERVATION_ID: Column = Column::new(
    "observationId",
    "Observation ID",
    Kind::Text,
    "s.observation_id",
)
.empty_equals_null();
pub static SESSION_ID: Column = Column::new("sessionId", "Session ID", Kind::Text, "s.session_id");
pub static NAME: Column = Column::new("name", "Name", Kind::Options, "s.name");
pub static VALUE: Column = Column::new("value", "Value", Kind::Number, "s.value");
/// `true` or `false` for a boolean score, whatever case it was sent in; empty for the others.
pub static BOOLEAN_VALUE: Column = Column::new(
    "booleanValue",
    "Boolean Value",
    Kind::Options,
    "if(s.data_type = 'BOOLEAN' AND ifNull(s.string_value, '') != '', lower(assumeNotNull(s.string_value)), '')",
)
.empty_equals_null();
pub static SOURCE: Column = Column::new("source", "Source", Kind::Options, "s.source");
pub static COMMENT: Column = Column::new("comment", "Comment", Kind::Text, "s.comment");
pub static AUTHOR_USER_ID: Column = Column::new(
    "authorUserId",
    "Author User ID",
    Kind::Text,
    "s.author_user_id",
);
pub static DATA_TYPE: Column = Column::new("dataType", "Data Type", Kind::Options, "s.data_type");
pub static STRING_VALUE: Column = Column::new(
    "stringValue",
    "String Value",
    Kind::Options,
    "s.string_value",
);
pub static METADATA: Column =
    Column::new("metadata", "Metadata", Kind::Object, "s.metadata").searched(Search::Values);
/// The evaluator that wrote the score: the metadata key Langfuse's evaluators write, or for
/// older ones their job configuration.
pub static EVALUATOR_ID: Column = Column::new(
    "evaluatorId",
    "Evaluator ID",
    Kind::Options,
    "if(s.metadata['evaluator_id'] != '', s.metadata['evaluator_id'], s.metadata['job_configuration_id'])",
);
pub static TRACE_NAME: Column =
    Column::new("traceName", "Trace Name", Kind::Options, "t.name").from(Source::Trace);
pub static USER_ID: Column =
    Column::new("userId", "User ID", Kind::Options, "t.user_id").from(Source::Trace);
pub static TRACE_TAGS: Column =
    Column::new("trace_tags", "Trace Tags", Kind::List, "t.tags").from(Source::Trace);

pub static SCORES: View = View {
    name: "scores",
    columns: &[
        &ID,
        &TIMESTAMP,
        &ENVIRONMENT,
        &TRACE_ID,
        &OBSERVATION_ID,
        &SESSION_ID,
        &NAME,
        &EVALUATOR_ID,
        &VALUE,
        &BOOLEAN_VALUE,
        &SOURCE,
        &COMMENT,
        &AUTHOR_USER_ID,
        &DATA_TYPE,
        &STRING_VALUE,
        &METADATA,
        &TRACE_NAME,
        &USER_ID,
        &TRACE_TAGS,
    ],
    // The scores table's own id of the trace tags column, and the other tables' one.
    aliases: &[("tags", &TRACE_TAGS), ("traceTags", &TRACE_TAGS)],
    unsupported: &[],
    narrowing: None,
    from,
};

/// The trace columns the view's trace columns read.
const TRACE_COLUMNS: &str = "id, name, user_id, tags";

fn from(project: &ProjectId, own_rows: Sql, joins: &[Source]) -> Sql {
    super::rows_with_their_trace(project, "scores", "s", own_rows, joins, TRACE_COLUMNS)
}
