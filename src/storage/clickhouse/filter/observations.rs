//! The observations view (`GET /api/public/v2/observations`, the observations table): Langfuse's
//! observation filter columns.
//!
//! Aliases: `o` is the newest version of each observation; `t` the newest version of its trace,
//! joined when a condition needs it (an observation whose trace is absent reads empty values).

use super::{Column, Kind, Narrowing, Search, Source, Sql, Unsupported, View};
use crate::domain::project::ProjectId;

/// An observation is a logical root when it has no parent. (Langfuse also counts spans its SDK
/// marks as app roots; this schema has no such mark.)
const IS_ROOT: &str = "(ifNull(o.parent_observation_id, '') = '')";

pub static ID: Column = Column::new("id", "ID", Kind::Options, "o.id");
pub static TRACE_ID: Column = Column::new("traceId", "Trace ID", Kind::Text, "o.trace_id");
pub static TYPE: Column = Column::new("type", "Type", Kind::Options, "o.type");
pub static NAME: Column = Column::new("name", "Name", Kind::Options, "o.name");
pub static START_TIME: Column = Column::new("startTime", "Start Time", Kind::Time, "o.start_time");
pub static END_TIME: Column = Column::new("endTime", "End Time", Kind::Time, "o.end_time");
pub static ENVIRONMENT: Column =
    Column::new("environment", "Environment", Kind::Options, "o.environment");
pub static LEVEL: Column = Column::new("level", "Level", Kind::Options, "o.level");
pub static STATUS_MESSAGE: Column = Column::new(
    "statusMessage",
    "Status Message",
    Kind::Text,
    "o.status_message",
);
pub static VERSION: Column = Column::new("version", "Version", Kind::Text, "o.version");
pub static PARENT_OBSERVATION_ID: Column = Column::new(
    "parentObservationId",
    "Parent Observation ID",
    Kind::Text,
    "o.parent_observation_id",
)
.empty_equals_null();
pub static IS_ROOT_OBSERVATION: Column = Column::new(
    "isRootObservation",
    "Is Root Observation",
    Kind::Flag,
    IS_ROOT,
);
pub static HAS_PARENT_OBSERVATION: Column = Column::new(
    "hasParentObservation",
    "Has Parent Observation",
    Kind::Flag,
    "(ifNull(o.parent_observation_id, '') != '')",
);
pub static MODEL: Column = Column::new("model", "Model", Kind::Options, "o.provided_model_name");
pub static MODEL_ID: Column =
    Column::new("modelId", "Model ID", Kind::Options, "o.internal_model_id");
pub static PROMPT_NAME: Column =
    Column::new("promptName", "Prompt Name", Kind::Options, "o.prompt_name");
pub static PROMPT_VERSION: Column = Column::new(
    "promptVersion",
    "Prompt Version",
    Kind::Number,
    "o.prompt_version",
);
pub static INPUT: Column =
    Column::new("input", "Input", Kind::Text, "o.input").searched(Search::FullText);
pub static OUTPUT: Column =
    Column::new("output", "Output", Kind::Text, "o.output").searched(Search::FullText);
pub static HAS_INPUT: Column = Column::new(
    "hasInput",
    "Has Input",
    Kind::Flag,
    "(ifNull(o.input, '') != '')",
);
pub static HAS_OUTPUT: Column = Column::new(
    "hasOutput",
    "Has Output",
    Kind::Flag,
    "(ifNull(o.output, '') != '')",
);
pub static METADATA: Column =
    Column::new("metadata", "Metadata", Kind::Object, "o.metadata").searched(Search::Values);
// The metadata keys Langfuse's evaluators write on the observations they run.
pub static EVALUATOR_ID: Column = Column::new(
    "evaluatorId",
    "Evaluator ID",
    Kind::Options,
    "o.metadata['evaluator_id']",
);
pub static RULE_ID: Column = Column::new(
    "ruleId",
    "Rule ID",
    Kind::Options,
    "if(o.metadata['evaluation_rule_id'] != '', o.metadata['evaluation_rule_id'], \
     o.metadata['job_configuration_id'])",
);
pub static LATENCY: Column = Column::new(
    "latency",
    "Latency (s)",
    Kind::Number,
    "if(isNull(o.end_time), NULL, \
     dateDiff('millisecond', o.start_time, assumeNotNull(o.end_time)) / 1000)",
);
pub static TIME_TO_FIRST_TOKEN: Column = Column::new(
    "timeToFirstToken",
    "Time To First Token (s)",
    Kind::Number,
    "if(isNull(o.completion_start_time), NULL, \
     dateDiff('millisecond', o.start_time, assumeNotNull(o.completion_start_time)) / 1000)",
);
pub static TOKENS_PER_SECOND: Column = Column::new(
    "tokensPerSecond",
    "Tokens per second",
    Kind::Number,
    "if(isNull(o.end_time), NULL, \
     arraySum(mapValues(mapFilter((k, v) -> positionCaseInsensitive(k, 'output') > 0, o.usage_details))) \
     / (dateDiff('millisecond', o.start_time, assumeNotNull(o.end_time)) / 1000))",
);
pub static INPUT_TOKENS: Column = Column::new(
    "inputTokens",
    "Input Tokens",
    Kind::Number,
    "arraySum(mapValues(mapFilter((k, v) -> positionCaseInsensitive(k, 'input') > 0, o.usage_details)))",
);
pub static OUTPUT_TOKENS: Column = Column::new(
    "outputTokens",
    "Output Tokens",
    Kind::Number,
    "arraySum(mapValues(mapFilter((k, v) -> positionCaseInsensitive(k, 'output') > 0, o.usage_details)))",
);
pub static TOTAL_TOKENS: Column = Column::new(
    "totalTokens",
    "Total Tokens",
    Kind::Number,
    "if(mapContains(o.usage_details, 'total'), o.usage_details['total'], NULL)",
);
pub static INPUT_COST: Column = Column::new(
    "inputCost",
    "Input Cost ($)",
    Kind::Number,
    "arraySum(mapValues(mapFilter((k, v) -> positionCaseInsensitive(k, 'input') > 0, o.cost_details)))",
);
pub static OUTPUT_COST: Column = Column::new(
    "outputCost",
    "Output Cost ($)",
    Kind::Number,
    "arraySum(mapValues(mapFilter((k, v) -> positionCaseInsensitive(k, 'output') > 0, o.cost_details)))",
);
pub static TOTAL_COST: Column = Column::new(
    "totalCost",
    "Total Cost ($)",
    Kind::Number,
    "if(mapContains(o.cost_details, 'total'), o.cost_details['total'], NULL)",
);
pub static USER_ID: Column =
    Column::new("userId", "User ID", Kind::Text, "t.user_id").from(Source::Trace);
pub static SESSION_ID: Column =
    Column::new("sessionId", "Session ID", Kind::Text, "t.session_id").from(Source::Trace);
pub static RELEASE: Column = Column::new("release", "Release", Kind::Text, "t.release")
    .from(Source::Trace)
    .empty_equals_null();
pub static TRACE_TAGS: Column =
    Column::new("traceTags", "Trace Tags", Kind::List, "t.tags").from(Source::Trace);
// The trace's name; for a root observation of a trace without one, its own name.
pub static TRACE_NAME: Column = Column::new(
    "traceName",
    "Trace Name",
    Kind::Options,
    "coalesce(nullIf(t.name, ''), if(ifNull(o.parent_observation_id, '') = '', nullIf(o.name, ''), NULL))",
)
.from(Source::Trace);

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
pub static EXPERIMENT_DATASET_ID: Column = Column::new(
    "experimentDatasetId",
    "Experiment Dataset ID",
    Kind::Options,
    "o.experiment_dataset_id",
);
/// The observation that stands for a dataset item in an experiment run: the one its spans name
/// as the item's root.
pub static IS_EXPERIMENT_ITEM_ROOT: Column = Column::new(
    "isExperimentItemRootSpan",
    "Is Experiment Item Root Span",
    Kind::Flag,
    "(ifNull(o.experiment_item_root_observation_id, '') = o.id)",
);

const NO_INGESTION_DETAILS: &str = "ingestion API keys, SDK names and versions are not stored";
const NO_TOOLS: &str = "tool definitions and tool calls are not stored";

/// Every column Langfuse's observation filter knows.
pub static OBSERVATIONS: View = View {
    name: "observations",
    columns: &[
        &ENVIRONMENT,
        &TYPE,
        &ID,
        &NAME,
        &TRACE_ID,
        &START_TIME,
        &END_TIME,
        &TIME_TO_FIRST_TOKEN,
        &LATENCY,
        &TOKENS_PER_SECOND,
        &INPUT_COST,
        &OUTPUT_COST,
        &TOTAL_COST,
        &LEVEL,
        &STATUS_MESSAGE,
        &MODEL,
        &MODEL_ID,
        &INPUT_TOKENS,
        &OUTPUT_TOKENS,
        &TOTAL_TOKENS,
        &METADATA,
        &EVALUATOR_ID,
        &RULE_ID,
        &VERSION,
        &RELEASE,
        &PROMPT_NAME,
        &PROMPT_VERSION,
        &INPUT,
        &OUTPUT,
        &SESSION_ID,
        &TRACE_NAME,
        &USER_ID,
        &TRACE_TAGS,
        &HAS_PARENT_OBSERVATION,
        &IS_ROOT_OBSERVATION,
        &HAS_INPUT,
        &HAS_OUTPUT,
        &PARENT_OBSERVATION_ID,
        &EXPERIMENT_ID,
        &EXPERIMENT_NAME,
        &EXPERIMENT_DATASET_ID,
        &IS_EXPERIMENT_ITEM_ROOT,
    ],
    aliases: &[
        ("providedModelName", &MODEL),
        ("Provided Model Name", &MODEL),
        ("tokens", &TOTAL_TOKENS),
        ("Tokens", &TOTAL_TOKENS),
        ("tags", &TRACE_TAGS),
        ("Tags", &TRACE_TAGS),
        ("traceEnvironment", &ENVIRONMENT),
        ("Trace Environment", &ENVIRONMENT),
    ],
    unsupported: &[
        Unsupported::new("ingestionApiKey", "API Key", NO_INGESTION_DETAILS),
        Unsupported::new("ingestionSdkName", "SDK Name", NO_INGESTION_DETAILS),
        Unsupported::new("ingestionSdkVersion", "SDK Version", NO_INGESTION_DETAILS),
        Unsupported::new("ingestionSource", "Ingestion Source", NO_INGESTION_DETAILS),
        Unsupported::new("toolDefinitions", "Available Tools", NO_TOOLS),
        Unsupported::new("toolCalls", "Tool Calls", NO_TOOLS),
        Unsupported::new("toolNames", "Tool Names", NO_TOOLS),
        Unsupported::new("calledToolNames", "Called Tool Names", NO_TOOLS),
    ],
    // The table is sorted by type, day of start time and id, with a skip index on the trace.
    narrowing: Some(Narrowing {
        table: "observations",
        alias: "o",
        columns: &[&TYPE, &START_TIME, &ID, &TRACE_ID],
    }),
    from,
};

/// The trace columns the view's trace columns read.
const TRACE_COLUMNS: &str = "id, name, user_id, session_id, release, tags";

fn from(project: &ProjectId, own_rows: Sql, joins: &[Source]) -> Sql {
    super::rows_with_their_trace(project, "observations", "o", own_rows, joins, TRACE_COLUMNS)
}
