//! The Metrics API's query model (`GET /api/public/metrics`, `GET /api/public/v2/metrics`), pure:
//! the views with their dimensions and measures as declarations, the typed query, and its
//! reading from Langfuse's JSON `query` with errors that name the field.
//!
//! A query asks for figures of one view (traces, observations, scores), grouped by some of the
//! view's dimensions and optionally by a time bucket, over a time range: each metric is an
//! aggregation (`sum`, `p95`, `histogram`, ...) of a measure that has one value per entity (an
//! observation's latency, a trace's total cost). The SQL for each name lives in
//! `storage::clickhouse::metrics`; a test there checks that every declared name has it.
//!
//! The names are Langfuse's (its view declarations), so its clients, dashboards and docs apply.
//! Filters are Langfuse's filter objects, kept as they came and parsed by the filter language of
//! `storage::clickhouse::filter` against the view's columns (the dimensions, the time column and
//! `metadata`).

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::time::parse_time;

/// Which endpoint a query came through; they differ in the rules below (`v2`: no traces view,
/// high-cardinality groupings refused, a default row limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    V1,
    V2,
}

/// The row limit of v2 when the query sets none (Langfuse's).
pub const V2_DEFAULT_ROW_LIMIT: u32 = 100;
/// The largest `config.row_limit`.
pub const MAX_ROW_LIMIT: u32 = 1000;
/// Histogram bins when the query sets none, and the most it may ask for.
pub const DEFAULT_BINS: u32 = 10;
pub const MAX_BINS: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    Traces,
    Observations,
    /// Numeric and boolean scores (every score that is not categorical).
    ScoresNumeric,
    ScoresBoolean,
    ScoresCategorical,
}

impl View {
    pub const ALL: [View; 5] = [
        View::Traces,
        View::Observations,
        View::ScoresNumeric,
        View::ScoresBoolean,
        View::ScoresCategorical,
    ];

    /// The name in the query's `view`.
    pub fn name(self) -> &'static str {
        match self {
            View::Traces => "traces",
            View::Observations => "observations",
            View::ScoresNumeric => "scores-numeric",
            View::ScoresBoolean => "scores-boolean",
            View::ScoresCategorical => "scores-categorical",
        }
    }

    pub fn from_name(name: &str) -> Option<View> {
        View::ALL.into_iter().find(|v| v.name() == name)
    }

    /// The views an API version answers.
    pub fn supported(self, version: ApiVersion) -> bool {
        !(version == ApiVersion::V2 && self == View::Traces)
    }

    pub fn declaration(self) -> &'static ViewDecl {
        match self {
            View::Traces => &TRACES,
            View::Observations => &OBSERVATIONS,
            View::ScoresNumeric => &SCORES_NUMERIC,
            View::ScoresBoolean => &SCORES_BOOLEAN,
            View::ScoresCategorical => &SCORES_CATEGORICAL,
        }
    }
}

/// What, besides the view's own row, a dimension or measure reads. Each relation holds one row
/// per entity of the view at most, so joining it never counts an entity twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relation {
    Row,
    /// The trace of the observation or score.
    Trace,
    /// The observation of the score.
    Observation,
    /// Figures over the observations of the trace (in the query's range).
    TraceObservations,
    /// The number of scores of the trace or observation (in the query's range).
    Scores,
}

/// The type of a dimension's values, which decides the filters it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Text,
    /// A list of strings (tags).
    List,
    Number,
    Flag,
}

#[derive(Debug, Clone, Copy)]
pub struct Dimension {
    pub name: &'static str,
    pub field_type: FieldType,
    pub relation: Relation,
    /// Grouping by it yields about a row per entity: v2 refuses it unless the query is a top-N
    /// (see [`MetricsQuery::validate`]).
    pub high_cardinality: bool,
}

const fn dim(name: &'static str, relation: Relation) -> Dimension {
    Dimension {
        name,
        field_type: FieldType::Text,
        relation,
        high_cardinality: false,
    }
}

impl Dimension {
    const fn typed(self, field_type: FieldType) -> Dimension {
        Dimension { field_type, ..self }
    }
    const fn high(self) -> Dimension {
        Dimension {
            high_cardinality: true,
            ..self
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Measure {
    pub name: &'static str,
    pub relation: Relation,
    pub unit: &'static str,
    pub description: &'static str,
}

const fn measure(
    name: &'static str,
    relation: Relation,
    unit: &'static str,
    description: &'static str,
) -> Measure {
    Measure {
        name,
        relation,
        unit,
        description,
    }
}

/// A view: its dimensions, its measures, and the name of its time column (which filters may
/// address, besides the dimensions and `metadata`).
#[derive(Debug)]
pub struct ViewDecl {
    pub view: View,
    pub dimensions: &'static [Dimension],
    pub measures: &'static [Measure],
    pub time_column: &'static str,
}

impl ViewDecl {
    pub fn dimension(&self, name: &str) -> Option<&'static Dimension> {
        self.dimensions.iter().find(|d| d.name == name)
    }
    pub fn measure(&self, name: &str) -> Option<&'static Measure> {
        self.measures.iter().find(|m| m.name == name)
    }
    fn dimension_names(&self) -> String {
        self.dimensions
            .iter()
            .map(|d| d.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
    fn measure_names(&self) -> String {
        self.measures
            .iter()
            .map(|m| m.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

use FieldType::{Flag, List, Number};
use Relation::{Observation, Row, Scores, Trace, TraceObservations};

pub static TRACES: ViewDecl = ViewDecl {
    view: View::Traces,
    dimensions: &[
        dim("id", Row).high(),
        dim("name", Row),
        dim("tags", Row).typed(List),
        dim("userId", Row).high(),
        dim("sessionId", Row).high(),
        dim("release", Row),
        dim("version", Row),
        dim("environment", Row),
        dim("timestampMonth", Row),
    ],
    measures: &[
        measure("count", Row, "traces", "Total number of traces."),
        measure(
            "observationsCount",
            TraceObservations,
            "observations",
            "Observations of the trace (started in the range).",
        ),
        measure(
            "scoresCount",
            Scores,
            "scores",
            "Scores of the trace (in the range).",
        ),
        measure(
            "uniqueUserIds",
            Row,
            "users",
            "1 when the trace has a user id, per trace (as Langfuse counts it).",
        ),
        measure(
            "uniqueSessionIds",
            Row,
            "sessions",
            "1 when the trace has a session id, per trace (as Langfuse counts it).",
        ),
        measure(
            "latency",
            TraceObservations,
            "millisecond",
            "From the first observation's start to the last one's end.",
        ),
        measure(
            "totalTokens",
            TraceObservations,
            "tokens",
            "Total tokens of the trace's observations.",
        ),
        measure(
            "totalCost",
            TraceObservations,
            "USD",
            "Total cost of the trace's observations.",
        ),
    ],
    time_column: "timestamp",
};

pub static OBSERVATIONS: ViewDecl = ViewDecl {
    view: View::Observations,
    dimensions: &[
        dim("id", Row).high(),
        dim("traceId", Row).high(),
        dim("traceName", Trace),
        dim("environment", Row),
        dim("parentObservationId", Row).high(),
        dim("type", Row),
        dim("name", Row),
        dim("level", Row),
        dim("version", Row),
        dim("tags", Trace).typed(List),
        dim("release", Trace),
        dim("providedModelName", Row),
        dim("promptName", Row),
        dim("promptVersion", Row).typed(Number),
        dim("userId", Trace).high(),
        dim("sessionId", Trace).high(),
        dim("traceRelease", Trace),
        dim("traceVersion", Trace),
        dim("isRootObservation", Row).typed(Flag),
        dim("startTimeMonth", Row),
    ],
    measures: &[
        measure(
            "count",
            Row,
            "observations",
            "Total number of observations.",
        ),
        measure(
            "latency",
            Row,
            "millisecond",
            "Start time to end time of the observation.",
        ),
        measure(
            "streamingLatency",
            Row,
            "millisecond",
            "Completion start time to end time.",
        ),
        measure(
            "inputTokens",
            Row,
            "tokens",
            "Input tokens of the observation.",
        ),
        measure(
            "outputTokens",
            Row,
            "tokens",
            "Output tokens of the observation.",
        ),
        measure(
            "totalTokens",
            Row,
            "tokens",
            "Total tokens of the observation.",
        ),
        measure(
            "outputTokensPerSecond",
            Row,
            "tokens/s",
            "Output tokens per second from completion start to end.",
        ),
        measure(
            "tokensPerSecond",
            Row,
            "tokens/s",
            "Total tokens per second from start to end.",
        ),
        measure("inputCost", Row, "USD", "Input cost of the observation."),
        measure("outputCost", Row, "USD", "Output cost of the observation."),
        measure("totalCost", Row, "USD", "Total cost of the observation."),
        measure(
            "timeToFirstToken",
            Row,
            "millisecond",
            "Start time to completion start time.",
        ),
        measure(
            "countScores",
            Scores,
            "scores",
            "Scores of the observation (in the range).",
        ),
    ],
    time_column: "startTime",
};

/// The dimensions every score view has.
macro_rules! score_dimensions {
    ($($extra:expr),*) => {
        &[
            dim("id", Row).high(),
            dim("environment", Row),
            dim("name", Row),
            dim("source", Row),
            dim("dataType", Row),
            dim("traceId", Row).high(),
            dim("configId", Row),
            dim("timestampMonth", Row),
            dim("timestampDay", Row),
            dim("observationId", Row).high(),
            dim("traceName", Trace),
            dim("tags", Trace).typed(List),
            dim("userId", Trace).high(),
            dim("sessionId", Trace).high(),
            dim("traceRelease", Trace),
            dim("traceVersion", Trace),
            dim("observationName", Observation),
            dim("observationModelName", Observation),
            dim("observationPromptName", Observation),
            dim("observationPromptVersion", Observation).typed(Number),
            $($extra),*
        ]
    };
}

pub static SCORES_NUMERIC: ViewDecl = ViewDecl {
    view: View::ScoresNumeric,
    dimensions: score_dimensions!(dim("value", Row).typed(Number)),
    measures: &[
        measure("count", Row, "scores", "Total number of scores."),
        measure("value", Row, "", "Value of the score."),
    ],
    time_column: "timestamp",
};

pub static SCORES_BOOLEAN: ViewDecl = ViewDecl {
    view: View::ScoresBoolean,
    dimensions: score_dimensions!(
        dim("value", Row).typed(Number),
        dim("booleanValue", Row).typed(Flag)
    ),
    measures: &[
        measure("count", Row, "scores", "Total number of boolean scores."),
        measure("value", Row, "", "0 or 1; its average is the rate of true."),
    ],
    time_column: "timestamp",
};

pub static SCORES_CATEGORICAL: ViewDecl = ViewDecl {
    view: View::ScoresCategorical,
    dimensions: score_dimensions!(dim("stringValue", Row)),
    measures: &[measure("count", Row, "scores", "Total number of scores.")],
    time_column: "timestamp",
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    Sum,
    Avg,
    Count,
    Max,
    Min,
    P50,
    P75,
    P90,
    P95,
    P99,
    Histogram,
}

impl Aggregation {
    pub const ALL: [Aggregation; 11] = [
        Aggregation::Sum,
        Aggregation::Avg,
        Aggregation::Count,
        Aggregation::Max,
        Aggregation::Min,
        Aggregation::P50,
        Aggregation::P75,
        Aggregation::P90,
        Aggregation::P95,
        Aggregation::P99,
        Aggregation::Histogram,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Aggregation::Sum => "sum",
            Aggregation::Avg => "avg",
            Aggregation::Count => "count",
            Aggregation::Max => "max",
            Aggregation::Min => "min",
            Aggregation::P50 => "p50",
            Aggregation::P75 => "p75",
            Aggregation::P90 => "p90",
            Aggregation::P95 => "p95",
            Aggregation::P99 => "p99",
            Aggregation::Histogram => "histogram",
        }
    }

    pub fn from_name(name: &str) -> Option<Aggregation> {
        Aggregation::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The quantile level of a percentile.
    pub fn quantile(self) -> Option<f64> {
        match self {
            Aggregation::P50 => Some(0.5),
            Aggregation::P75 => Some(0.75),
            Aggregation::P90 => Some(0.9),
            Aggregation::P95 => Some(0.95),
            Aggregation::P99 => Some(0.99),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Auto,
    Minute,
    Hour,
    Day,
    Week,
    Month,
}

impl Granularity {
    const ALL: [Granularity; 6] = [
        Granularity::Auto,
        Granularity::Minute,
        Granularity::Hour,
        Granularity::Day,
        Granularity::Week,
        Granularity::Month,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Granularity::Auto => "auto",
            Granularity::Minute => "minute",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
        }
    }

    /// The bucket size: `auto` picks one giving about 50 buckets over the range, as Langfuse
    /// does (under 2 hours minutes, under 3 days hours, under 60 days days, under a year weeks,
    /// else months).
    pub fn resolve(self, from: DateTime<Utc>, to: DateTime<Utc>) -> Granularity {
        if self != Granularity::Auto {
            return self;
        }
        let span = to - from;
        if span < Duration::hours(2) {
            Granularity::Minute
        } else if span < Duration::hours(72) {
            Granularity::Hour
        } else if span < Duration::hours(1440) {
            Granularity::Day
        } else if span < Duration::hours(8760) {
            Granularity::Week
        } else {
            Granularity::Month
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Asc,
    Desc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metric {
    pub measure: String,
    pub aggregation: Aggregation,
}

impl Metric {
    pub fn new(measure: &str, aggregation: Aggregation) -> Metric {
        Metric {
            measure: measure.to_string(),
            aggregation,
        }
    }

    /// The metric's column in the answer: `<aggregation>_<measure>` (`sum_totalCost`).
    pub fn column(&self) -> String {
        format!("{}_{}", self.aggregation.name(), self.measure)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderBy {
    pub field: String,
    pub direction: Direction,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Histogram bins, 1 to 100 (10 when absent).
    pub bins: Option<u32>,
    /// At most this many rows, 1 to 1000.
    pub row_limit: Option<u32>,
}

/// The column of the time bucket in the answer.
pub const TIME_DIMENSION: &str = "time_dimension";

/// A query of the Metrics API, as [`parse`] reads it or as code builds it (then check it with
/// [`MetricsQuery::validate`]; `storage::clickhouse::metrics::run` does).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsQuery {
    pub view: View,
    /// Dimension names of the view to group by, in the answer's column order.
    pub dimensions: Vec<String>,
    pub metrics: Vec<Metric>,
    /// Langfuse filter objects (`{column, operator, value, type, key?}`), as sent; the filter
    /// language reads them against the view's columns.
    pub filters: Vec<Value>,
    /// Group by a time bucket too, in the `time_dimension` column, empty buckets filled.
    pub time_dimension: Option<Granularity>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub order_by: Vec<OrderBy>,
    pub config: Config,
}

impl MetricsQuery {
    /// A query with no grouping, filter, order or configuration.
    pub fn new(view: View, metrics: Vec<Metric>, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        MetricsQuery {
            view,
            dimensions: Vec::new(),
            metrics,
            filters: Vec::new(),
            time_dimension: None,
            from,
            to,
            order_by: Vec::new(),
            config: Config::default(),
        }
    }

    /// Checks the names against the view and the rules of the version. The message names the
    /// field at fault.
    pub fn validate(&self, version: ApiVersion) -> Result<(), QueryError> {
        let decl = self.view.declaration();
        if !self.view.supported(version) {
            let supported: Vec<&str> = View::ALL
                .into_iter()
                .filter(|v| v.supported(version))
                .map(View::name)
                .collect();
            return Err(QueryError::new(format!(
                "view: View '{}' is not supported in version '{}'. Supported views for {}: {}",
                self.view.name(),
                version.name(),
                version.name(),
                supported.join(", ")
            )));
        }
        for (i, d) in self.dimensions.iter().enumerate() {
            if decl.dimension(d).is_none() {
                return Err(QueryError::new(format!(
                    "dimensions[{i}].field: Invalid dimension {d}. Must be one of {}",
                    decl.dimension_names()
                )));
            }
        }
        if self.metrics.is_empty() {
            return Err(QueryError::new(
                "metrics: at least one metric must be provided",
            ));
        }
        for (i, m) in self.metrics.iter().enumerate() {
            if decl.measure(&m.measure).is_none() {
                return Err(QueryError::new(format!(
                    "metrics[{i}].measure: Invalid metric {}. Must be one of {}",
                    m.measure,
                    decl.measure_names()
                )));
            }
        }
        if self.from >= self.to {
            return Err(QueryError::new("fromTimestamp: must be before toTimestamp"));
        }
        if let Some(bins) = self.config.bins {
            if !(1..=MAX_BINS).contains(&bins) {
                return Err(QueryError::new(format!(
                    "config.bins: must be an integer from 1 to {MAX_BINS}"
                )));
            }
        }
        if let Some(limit) = self.config.row_limit {
            if !(1..=MAX_ROW_LIMIT).contains(&limit) {
                return Err(QueryError::new(format!(
                    "config.row_limit: must be an integer from 1 to {MAX_ROW_LIMIT}"
                )));
            }
        }
        for (i, o) in self.order_by.iter().enumerate() {
            if !self.orderable(&o.field) {
                return Err(QueryError::new(format!(
                    "orderBy[{i}].field: Invalid orderBy field: {}. Must be one of the dimension or metric fields.",
                    o.field
                )));
            }
        }
        if version == ApiVersion::V2 {
            self.validate_cardinality()?;
        }
        Ok(())
    }

    /// A field the answer can be ordered by: a grouped dimension, the time bucket, or a
    /// metric's column other than a histogram.
    fn orderable(&self, field: &str) -> bool {
        (self.time_dimension.is_some() && field == TIME_DIMENSION)
            || self.dimensions.iter().any(|d| d == field)
            || self
                .metrics
                .iter()
                .any(|m| m.aggregation != Aggregation::Histogram && m.column() == field)
    }

    /// v2's rule for dimensions with about a row per entity (ids, users, sessions): never with a
    /// time dimension, and otherwise only in a top-N query, with an explicit `config.row_limit`
    /// and an `orderBy` descending on a measure of the query.
    fn validate_cardinality(&self) -> Result<(), QueryError> {
        let decl = self.view.declaration();
        let high: Vec<&str> = self
            .dimensions
            .iter()
            .filter_map(|d| decl.dimension(d))
            .filter(|d| d.high_cardinality)
            .map(|d| d.name)
            .collect();
        if high.is_empty() {
            return Ok(());
        }
        let high = high.join(", ");
        if self.time_dimension.is_some() {
            return Err(QueryError::new(format!(
                "dimensions: High cardinality dimension(s) '{high}' cannot be used with timeDimension. \
                 Time series queries with high cardinality dimensions produce unbounded result sets."
            )));
        }
        let descending: Vec<&OrderBy> = self
            .order_by
            .iter()
            .filter(|o| o.direction == Direction::Desc)
            .collect();
        if self.config.row_limit.is_none() || descending.is_empty() {
            return Err(QueryError::new(format!(
                "dimensions: High cardinality dimension(s) '{high}' require both 'config.row_limit' \
                 and 'orderBy' with direction 'desc' on a measure field."
            )));
        }
        let not_measures: Vec<&str> = descending
            .iter()
            .filter(|o| {
                !self
                    .metrics
                    .iter()
                    .any(|m| o.field == m.measure || o.field.ends_with(&format!("_{}", m.measure)))
            })
            .map(|o| o.field.as_str())
            .collect();
        if !not_measures.is_empty() {
            return Err(QueryError::new(format!(
                "orderBy: High cardinality dimension(s) '{high}' require 'orderBy' with direction 'desc' \
                 on a measure field. '{}' {} not a measure in this query.",
                not_measures.join(", "),
                if not_measures.len() == 1 { "is" } else { "are" }
            )));
        }
        Ok(())
    }

    /// The row limit the query runs with: its own, or v2's default.
    pub fn row_limit(&self, version: ApiVersion) -> Option<u32> {
        match (self.config.row_limit, version) {
            (Some(limit), _) => Some(limit),
            (None, ApiVersion::V2) => Some(V2_DEFAULT_ROW_LIMIT),
            (None, ApiVersion::V1) => None,
        }
    }

    /// The order of the answer: the query's, or by default the time bucket ascending, else the
    /// first metric descending, else the first dimension ascending (Langfuse's defaults).
    pub fn effective_order(&self) -> Vec<OrderBy> {
        if !self.order_by.is_empty() {
            return self.order_by.clone();
        }
        if self.time_dimension.is_some() {
            return vec![OrderBy {
                field: TIME_DIMENSION.to_string(),
                direction: Direction::Asc,
            }];
        }
        if let Some(m) = self
            .metrics
            .iter()
            .find(|m| m.aggregation != Aggregation::Histogram)
        {
            return vec![OrderBy {
                field: m.column(),
                direction: Direction::Desc,
            }];
        }
        self.dimensions
            .first()
            .map(|d| {
                vec![OrderBy {
                    field: d.clone(),
                    direction: Direction::Asc,
                }]
            })
            .unwrap_or_default()
    }
}

impl ApiVersion {
    pub fn name(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1",
            ApiVersion::V2 => "v2",
        }
    }
}

/// A query the API refuses, with a message naming the field (`metrics[0].measure: ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub message: String,
}

impl QueryError {
    pub fn new(message: impl Into<String>) -> QueryError {
        QueryError {
            message: message.into(),
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for QueryError {}

/// Reads the `query` parameter (JSON) for an API version, and validates it.
pub fn parse(text: &str, version: ApiVersion) -> Result<MetricsQuery, QueryError> {
    let json: Value = serde_json::from_str(text)
        .map_err(|e| QueryError::new(format!("query: Invalid JSON in query parameter: {e}")))?;
    let query = from_json(&json, version)?;
    query.validate(version)?;
    Ok(query)
}

fn from_json(json: &Value, version: ApiVersion) -> Result<MetricsQuery, QueryError> {
    let object = json
        .as_object()
        .ok_or_else(|| QueryError::new("query: must be a JSON object"))?;
    let view_name = required_string(object, "view")?;
    let view = View::from_name(&view_name).ok_or_else(|| {
        let names: Vec<&str> = View::ALL
            .into_iter()
            .filter(|v| v.supported(version))
            .map(View::name)
            .collect();
        QueryError::new(format!(
            "view: Invalid view '{view_name}'. Must be one of {}",
            names.join(", ")
        ))
    })?;

    let dimensions = array(object, "dimensions")?
        .iter()
        .enumerate()
        .map(|(i, d)| {
            d.get("field")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| QueryError::new(format!("dimensions[{i}].field: must be a string")))
        })
        .collect::<Result<Vec<_>, _>>()?;

    if !object.contains_key("metrics") || object.get("metrics") == Some(&Value::Null) {
        return Err(QueryError::new("metrics: Required"));
    }
    let metrics = array(object, "metrics")?
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let measure = m
                .get("measure")
                .and_then(Value::as_str)
                .ok_or_else(|| QueryError::new(format!("metrics[{i}].measure: must be a string")))?;
            let aggregation = m
                .get("aggregation")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    QueryError::new(format!("metrics[{i}].aggregation: must be a string"))
                })?;
            let aggregation = Aggregation::from_name(aggregation).ok_or_else(|| {
                QueryError::new(format!(
                    "metrics[{i}].aggregation: Invalid aggregation '{aggregation}'. Must be one of {}",
                    Aggregation::ALL.map(Aggregation::name).join(", ")
                ))
            })?;
            Ok(Metric::new(measure, aggregation))
        })
        .collect::<Result<Vec<_>, QueryError>>()?;

    let filters = array(object, "filters")?;
    for (i, f) in filters.iter().enumerate() {
        if !f.is_object() {
            return Err(QueryError::new(format!("filters[{i}]: must be an object")));
        }
    }

    let time_dimension = match object.get("timeDimension") {
        None | Some(Value::Null) => None,
        Some(Value::Object(td)) => {
            let g = td
                .get("granularity")
                .and_then(Value::as_str)
                .ok_or_else(|| QueryError::new("timeDimension.granularity: must be a string"))?;
            Some(
                Granularity::ALL
                    .into_iter()
                    .find(|x| x.name() == g)
                    .ok_or_else(|| {
                        QueryError::new(format!(
                            "timeDimension.granularity: Invalid granularity '{g}'. Must be one of {}",
                            Granularity::ALL.map(Granularity::name).join(", ")
                        ))
                    })?,
            )
        }
        Some(_) => return Err(QueryError::new("timeDimension: must be an object or null")),
    };

    let from = timestamp(object, "fromTimestamp")?;
    let to = timestamp(object, "toTimestamp")?;

    let order_by = array(object, "orderBy")?
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let field = o
                .get("field")
                .and_then(Value::as_str)
                .ok_or_else(|| QueryError::new(format!("orderBy[{i}].field: must be a string")))?;
            let direction = match o.get("direction").and_then(Value::as_str) {
                Some("asc") => Direction::Asc,
                Some("desc") => Direction::Desc,
                _ => {
                    return Err(QueryError::new(format!(
                        "orderBy[{i}].direction: must be \"asc\" or \"desc\""
                    )))
                }
            };
            Ok(OrderBy {
                field: field.to_string(),
                direction,
            })
        })
        .collect::<Result<Vec<_>, QueryError>>()?;

    // `config` is the public API's name; Langfuse's UI sends the same as `chartConfig`.
    let config = match object.get("config").or_else(|| object.get("chartConfig")) {
        None | Some(Value::Null) => Config::default(),
        Some(Value::Object(c)) => Config {
            bins: small_integer(c, "config.bins", "bins")?,
            row_limit: small_integer(c, "config.row_limit", "row_limit")?,
        },
        Some(_) => return Err(QueryError::new("config: must be an object")),
    };

    Ok(MetricsQuery {
        view,
        dimensions,
        metrics,
        filters: filters.to_vec(),
        time_dimension,
        from,
        to,
        order_by,
        config,
    })
}

fn required_string(object: &Map<String, Value>, key: &str) -> Result<String, QueryError> {
    match object.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) => Err(QueryError::new(format!("{key}: Required"))),
        Some(_) => Err(QueryError::new(format!("{key}: must be a string"))),
    }
}

/// An optional array (absent or null is empty).
fn array<'a>(object: &'a Map<String, Value>, key: &str) -> Result<&'a [Value], QueryError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(QueryError::new(format!("{key}: must be an array"))),
    }
}

fn timestamp(object: &Map<String, Value>, key: &str) -> Result<DateTime<Utc>, QueryError> {
    let text = required_string(object, key)?;
    parse_time(&text).ok_or_else(|| {
        QueryError::new(format!(
            "{key}: Invalid datetime '{text}', expected an ISO 8601 date-time"
        ))
    })
}

fn small_integer(
    object: &Map<String, Value>,
    field: &str,
    key: &str,
) -> Result<Option<u32>, QueryError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .map(Some)
            .ok_or_else(|| QueryError::new(format!("{field}: must be a positive integer"))),
        Some(_) => Err(QueryError::new(format!("{field}: must be a number"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(extra: Value) -> String {
        let mut base = json!({
            "view": "observations",
            "metrics": [{"measure": "count", "aggregation": "count"}],
            "fromTimestamp": "2025-01-01T00:00:00Z",
            "toTimestamp": "2025-01-31T00:00:00Z",
        });
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        base.to_string()
    }

    fn err(extra: Value, version: ApiVersion) -> String {
        parse(&q(extra), version).unwrap_err().message
    }

    #[test]
    fn a_full_query_is_read() {
        let query = parse(
            &q(json!({
                "dimensions": [{"field": "providedModelName"}],
                "metrics": [{"measure": "totalCost", "aggregation": "sum"}],
                "filters": [{"column": "type", "operator": "=", "value": "GENERATION", "type": "string"}],
                "timeDimension": {"granularity": "day"},
                "orderBy": [{"field": "sum_totalCost", "direction": "desc"}],
                "config": {"bins": 20, "row_limit": 50}
            })),
            ApiVersion::V1,
        )
        .unwrap();
        assert_eq!(query.view, View::Observations);
        assert_eq!(query.dimensions, vec!["providedModelName"]);
        assert_eq!(query.metrics[0].column(), "sum_totalCost");
        assert_eq!(query.filters.len(), 1);
        assert_eq!(query.time_dimension, Some(Granularity::Day));
        assert_eq!(
            query.config,
            Config {
                bins: Some(20),
                row_limit: Some(50)
            }
        );
    }

    #[test]
    fn errors_name_the_field() {
        let v1 = ApiVersion::V1;
        assert!(parse("{", v1).unwrap_err().message.starts_with("query:"));
        assert!(err(json!({"view": "sessions"}), v1).starts_with("view: Invalid view"));
        assert!(err(json!({"dimensions": [{"field": "nope"}]}), v1)
            .starts_with("dimensions[0].field: Invalid dimension nope"));
        assert!(err(
            json!({"metrics": [{"measure": "nope", "aggregation": "sum"}]}),
            v1
        )
        .starts_with("metrics[0].measure: Invalid metric nope"));
        assert!(err(
            json!({"metrics": [{"measure": "count", "aggregation": "median"}]}),
            v1
        )
        .starts_with("metrics[0].aggregation:"));
        assert!(err(json!({"metrics": []}), v1).starts_with("metrics:"));
        assert!(err(json!({"fromTimestamp": "yesterday"}), v1).starts_with("fromTimestamp:"));
        assert!(err(json!({"fromTimestamp": "2025-02-01T00:00:00Z"}), v1)
            .starts_with("fromTimestamp: must be before"));
        assert!(err(json!({"timeDimension": {"granularity": "year"}}), v1)
            .starts_with("timeDimension.granularity:"));
        assert!(err(json!({"config": {"bins": 0}}), v1).starts_with("config.bins:"));
        assert!(err(json!({"config": {"row_limit": 1001}}), v1).starts_with("config.row_limit:"));
        assert!(err(
            json!({"orderBy": [{"field": "sum_count", "direction": "desc"}]}),
            v1
        )
        .starts_with("orderBy[0].field:"));
        assert!(err(
            json!({"orderBy": [{"field": "count_count", "direction": "up"}]}),
            v1
        )
        .starts_with("orderBy[0].direction:"));
    }

    #[test]
    fn v2_refuses_traces_and_unbounded_high_cardinality_groupings() {
        let v2 = ApiVersion::V2;
        assert!(err(json!({"view": "traces"}), v2)
            .starts_with("view: View 'traces' is not supported in version 'v2'"));
        assert!(parse(&q(json!({"view": "traces"})), ApiVersion::V1).is_ok());

        let by_trace = json!({"dimensions": [{"field": "traceId"}]});
        assert!(err(by_trace.clone(), v2).contains("require both 'config.row_limit'"));
        assert!(parse(&q(by_trace), ApiVersion::V1).is_ok());
        assert!(err(
            json!({"dimensions": [{"field": "userId"}], "timeDimension": {"granularity": "day"}}),
            v2
        )
        .contains("cannot be used with timeDimension"));
        let top_n = json!({
            "dimensions": [{"field": "traceId"}],
            "orderBy": [{"field": "count_count", "direction": "desc"}],
            "config": {"row_limit": 10}
        });
        assert!(parse(&q(top_n), v2).is_ok());
        let by_dimension = json!({
            "dimensions": [{"field": "traceId"}, {"field": "name"}],
            "orderBy": [{"field": "name", "direction": "desc"}],
            "config": {"row_limit": 10}
        });
        assert!(err(by_dimension, v2).contains("'name' is not a measure"));
        assert!(parse(&q(json!({"dimensions": [{"field": "name"}]})), v2).is_ok());
    }

    #[test]
    fn row_limits_and_default_orders() {
        let query = parse(&q(json!({})), ApiVersion::V2).unwrap();
        assert_eq!(query.row_limit(ApiVersion::V2), Some(100));
        assert_eq!(query.row_limit(ApiVersion::V1), None);
        assert_eq!(query.effective_order()[0].field, "count_count");
        let query = parse(
            &q(json!({"timeDimension": {"granularity": "auto"}})),
            ApiVersion::V1,
        )
        .unwrap();
        assert_eq!(query.effective_order()[0].field, TIME_DIMENSION);
    }

    #[test]
    fn auto_granularity_gives_about_fifty_buckets() {
        let t = |h: i64| parse_time("2025-01-01T00:00:00Z").unwrap() + Duration::hours(h);
        let g = |h| Granularity::Auto.resolve(t(0), t(h));
        assert_eq!(g(1), Granularity::Minute);
        assert_eq!(g(48), Granularity::Hour);
        assert_eq!(g(24 * 30), Granularity::Day);
        assert_eq!(g(24 * 200), Granularity::Week);
        assert_eq!(g(24 * 400), Granularity::Month);
        assert_eq!(Granularity::Day.resolve(t(0), t(1)), Granularity::Day);
    }

    #[test]
    fn names_are_unique_in_each_view() {
        for view in View::ALL {
            let decl = view.declaration();
            assert_eq!(decl.view, view);
            let mut names: Vec<&str> = decl.dimensions.iter().map(|d| d.name).collect();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), decl.dimensions.len(), "{}", view.name());
            let mut measures: Vec<&str> = decl.measures.iter().map(|m| m.name).collect();
            measures.sort();
            measures.dedup();
            assert_eq!(measures.len(), decl.measures.len(), "{}", view.name());
        }
    }
}
