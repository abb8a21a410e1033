//! The closed vocabularies of an observation: its type and its level, in Langfuse v3's upper-case
//! spelling, which is how they arrive in envelopes and how they are stored.

use serde::Deserialize;

/// The observation types of Langfuse v3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ObservationType {
    Span,
    Generation,
    Event,
    Agent,
    Tool,
    Chain,
    Retriever,
    Evaluator,
    Embedding,
    Guardrail,
}

impl ObservationType {
    pub const ALL: [ObservationType; 10] = [
        ObservationType::Span,
        ObservationType::Generation,
        ObservationType::Event,
        ObservationType::Agent,
        ObservationType::Tool,
        ObservationType::Chain,
        ObservationType::Retriever,
        ObservationType::Evaluator,
        ObservationType::Embedding,
        ObservationType::Guardrail,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ObservationType::Span => "SPAN",
            ObservationType::Generation => "GENERATION",
            ObservationType::Event => "EVENT",
            ObservationType::Agent => "AGENT",
            ObservationType::Tool => "TOOL",
            ObservationType::Chain => "CHAIN",
            ObservationType::Retriever => "RETRIEVER",
            ObservationType::Evaluator => "EVALUATOR",
            ObservationType::Embedding => "EMBEDDING",
            ObservationType::Guardrail => "GUARDRAIL",
        }
    }
}

/// How severe an observation is, from `DEBUG` to `ERROR`; unset counts as `DEFAULT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Debug,
    Default,
    Warning,
    Error,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::Debug, Level::Default, Level::Warning, Level::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Default => "DEFAULT",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        }
    }
}
