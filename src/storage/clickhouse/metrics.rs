//! The Metrics API's queries: a [`MetricsQuery`] (`domain::metrics`) becomes one SQL statement,
//! every value bound, whose rows come back as JSON objects named as Langfuse names its columns
//! (`<dimension>`, `time_dimension`, `<aggregation>_<measure>`).
//!
//! **Each trace, observation and score counts once.** The statement reads one live version of
//! each row, its newest, before anything is grouped, filtered or summed, so a row counts once
//! before and after ClickHouse merges its versions, and a row whose time moved (a new sorting
//! key, a new partition) is counted where its newest version says. It reads through `FINAL`
//! (`sql::live_final`), which keeps one live row per entity because the worker writes a deleted
//! copy under the old sorting key when a row moves (`worker::ingest::round`); for traces,
//! `sql::live_traces_final` also sets aside the wrapper rows of traces that have their own. That
//! costs a fraction of picking each id's newest version by sorting all of them.
//!
//! Every relation joined (a row's trace, a score's observation, a trace's observation figures,
//! score counts) has at most one row per key, so a join never repeats a row.
//!
//! The query's shape, over the view's base alias (`t` traces, `o` observations, `s` scores):
//!
//! ```text
//! SELECT <dimension sql> AS `<dimension>`, <bucket> AS time_dimension, <agg>(<measure sql>) AS `<agg>_<measure>`
//! FROM (<newest rows in range>) AS o [LEFT JOIN <relation> ...]
//! WHERE <segment> AND <filters> GROUP BY ... ORDER BY ... [WITH FILL ...] [LIMIT n]
//! ```
//!
//! Only the columns the statement names are read from each table (found in its text: every
//! column is written `<alias>.<column>`).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::filter::{self, Column, Condition, Kind};
use super::sql::{live_final, live_traces_final, Bound, Sql};
use crate::domain::metrics::{
    Aggregation, ApiVersion, Direction, FieldType, Granularity, Metric, MetricsQuery, QueryError,
    Relation, View, DEFAULT_BINS, TIME_DIMENSION,
};
use crate::domain::project::ProjectId;

/// One row of an answer: dimension values, `time_dimension`, and a value per metric.
pub type MetricsRow = Map<String, Value>;

/// Runs `query` for `project` with the v1 endpoint's rules (every view, no default row limit)
/// and returns its rows in the API's naming, in the query's order: the contract the Metrics API
/// and the dashboards share. A query the rules refuse (an unknown name, a bad filter) fails with
/// a [`QueryError`] inside the `anyhow::Error` (`err.downcast_ref::<QueryError>()`), whose
/// message names the field; anything else is a failure of ClickHouse.
pub async fn run(
    ch: &clickhouse::Client,
    project: &ProjectId,
    query: &MetricsQuery,
) -> anyhow::Result<Vec<MetricsRow>> {
    run_as(ch, project, query, ApiVersion::V1).await
}

/// [`run`] with the rules of an API version (v2: high-cardinality groupings refused, no traces
/// view, 100 rows unless the query says otherwise).
pub async fn run_as(
    ch: &clickhouse::Client,
    project: &ProjectId,
    query: &MetricsQuery,
    version: ApiVersion,
) -> anyhow::Result<Vec<MetricsRow>> {
    let sql = compile(project, query, version)?;
    let body = sql
        .query(ch)
        .with_option("output_format_json_quote_64bit_integers", "0")
        .with_option("output_format_json_quote_denormals", "0")
        .with_option("date_time_output_format", "iso")
        // `FINAL` must see every version of a row before a condition does: a skip index or a
        // PREWHERE could drop the newest version and let an older one through.
        .with_option("use_skip_indexes_if_final", "0")
        .with_option("optimize_move_to_prewhere_if_final", "0")
        .fetch_bytes("JSONEachRow")
        .context("metrics query")?
        .collect()
        .await
        .context("metrics query")?;
    body.split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice::<MetricsRow>(line).context("a metrics row"))
        .collect()
}

/// The statement of `query` under the rules of `version`.
pub fn compile(
    project: &ProjectId,
    query: &MetricsQuery,
    version: ApiVersion,
) -> Result<Sql, QueryError> {
    query.validate(version)?;
    let view = query.view;
    let decl = view.declaration();
    let base = Base::of(view);
    let conditions = conditions(query)?;

    // SELECT ...
    let mut head = Sql::new("SELECT ");
    let mut items: Vec<Sql> = Vec::new();
    for name in &query.dimensions {
        items.push(Sql::new(&format!(
            "{} AS `{name}`",
            dimension_sql(view, name).expect("validated")
        )));
    }
    let granularity = query
        .time_dimension
        .map(|g| g.resolve(query.from, query.to));
    if let Some(g) = granularity {
        items.push(Sql::new(&format!(
            "{} AS {TIME_DIMENSION}",
            bucket(g, &format!("{}.{}", base.alias, base.time))
        )));
    }
    for metric in &query.metrics {
        items.push(aggregate(view, metric, query.config.bins));
    }
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            head.text(", ");
        }
        head.append(item);
    }

    // WHERE ... GROUP BY ... ORDER BY ... LIMIT
    let mut tail = Sql::new(" WHERE 1 = 1");
    if let Some(segment) = base.segment {
        tail.text(&format!(" AND {segment}"));
    }
    for condition in &conditions {
        tail.text(" AND ");
        condition.compile(&mut tail);
    }
    let mut groups: Vec<String> = query.dimensions.iter().map(|d| format!("`{d}`")).collect();
    if granularity.is_some() {
        groups.push(TIME_DIMENSION.to_string());
    }
    if !groups.is_empty() {
        tail.text(&format!(" GROUP BY {}", groups.join(", ")));
    }
    let order = query.effective_order();
    if !order.is_empty() {
        tail.text(" ORDER BY ");
        for (i, o) in order.iter().enumerate() {
            if i > 0 {
                tail.text(", ");
            }
            let field = if o.field == TIME_DIMENSION {
                TIME_DIMENSION.to_string()
            } else {
                format!("`{}`", o.field)
            };
            let direction = match o.direction {
                Direction::Asc => "ASC",
                Direction::Desc => "DESC",
            };
            tail.text(&format!("{field} {direction}"));
            // Empty buckets are filled, as in Langfuse, when the order is the default one.
            if o.field == TIME_DIMENSION && query.order_by.is_empty() {
                if let Some(g) = granularity {
                    fill(&mut tail, g, query.from, query.to);
                }
            }
        }
    }
    if let Some(limit) = query.row_limit(version) {
        tail.text(" LIMIT ");
        tail.bind(Bound::Int(limit as i64));
    }

    // FROM: the columns and relations the rest names.
    let mut named = head.text.clone();
    named.push_str(&tail.text);
    let mut relations: Vec<Relation> = Vec::new();
    let mut need = |r: Relation| {
        if r != Relation::Row && !relations.contains(&r) {
            relations.push(r);
        }
    };
    for name in &query.dimensions {
        need(decl.dimension(name).expect("validated").relation);
    }
    for metric in &query.metrics {
        need(decl.measure(&metric.measure).expect("validated").relation);
    }
    for condition in &conditions {
        if let Some(d) = decl.dimension(condition.column().id) {
            need(d.relation);
        }
    }
    let mut from = Sql::new(" FROM (");
    let mut own = columns_of(&named, base.alias);
    own.insert(base.time.to_string());
    for relation in &relations {
        match relation {
            Relation::Trace => {
                own.insert("trace_id".into());
            }
            Relation::Observation => {
                own.insert("observation_id".into());
            }
            _ => {}
        }
    }
    // The segment and the conditions on the row's own columns narrow the rows grouped.
    let mut narrowing = Sql::default();
    if let Some(segment) = base.segment {
        narrowing.text(&format!(" AND {segment}"));
    }
    for condition in &conditions {
        let own_column = decl
            .dimension(condition.column().id)
            .is_none_or(|d| d.relation == Relation::Row);
        if own_column {
            narrowing.text(" AND ");
            condition.compile(&mut narrowing);
        }
    }
    from.append(newest_in_range(
        project, base.table, base.alias, &own, base.time, query.from, query.to, narrowing,
    ));
    from.text(&format!(") AS {}", base.alias));
    for relation in &relations {
        from.append(join(project, &base, *relation, &named, query));
    }

    let mut sql = head;
    sql.append(from);
    sql.append(tail);
    Ok(sql)
}

/// A view's own rows: the table, its alias in the statement, its time column, and the
/// condition that picks the view's rows from the table (the score views).
struct Base {
    table: &'static str,
    alias: &'static str,
    time: &'static str,
    segment: Option<&'static str>,
}

impl Base {
    fn of(view: View) -> Base {
        let scores = |segment| Base {
            table: "scores",
            alias: "s",
            time: "timestamp",
            segment: Some(segment),
        };
        match view {
            View::Traces => Base {
                table: "traces",
                alias: "t",
                time: "timestamp",
                segment: None,
            },
            View::Observations => Base {
                table: "observations",
                alias: "o",
                time: "start_time",
                segment: None,
            },
            // Numeric and boolean scores, as Langfuse counts them: every score not categorical.
            View::ScoresNumeric => scores("s.data_type != 'CATEGORICAL'"),
            View::ScoresBoolean => scores("s.data_type = 'BOOLEAN'"),
            View::ScoresCategorical => scores("s.data_type = 'CATEGORICAL'"),
        }
    }
}

/// `fromUnixTimestamp64Milli(toInt64(?))` with the time bound.
fn time_literal(sql: &mut Sql, at: DateTime<Utc>) {
    sql.text("fromUnixTimestamp64Milli(toInt64(");
    sql.bind(Bound::Int(at.timestamp_millis()));
    sql.text("))");
}

fn in_range(sql: &mut Sql, column: &str, from: DateTime<Utc>, to: DateTime<Utc>) {
    sql.text(&format!(" AND {column} >= "));
    time_literal(sql, from);
    sql.text(&format!(" AND {column} <= "));
    time_literal(sql, to);
}

/// One live version of each row of `table` (its newest) whose `time` is in the range and that
/// meets `narrowing` (conditions over the table read as `alias`, starting with ` AND`), reading
/// `columns`.
#[allow(clippy::too_many_arguments)]
fn newest_in_range(
    project: &ProjectId,
    table: &str,
    alias: &str,
    columns: &BTreeSet<String>,
    time: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    narrowing: Sql,
) -> Sql {
    let mut columns = columns.clone();
    columns.insert("id".into());
    columns.insert(time.into());
    let list = columns.into_iter().collect::<Vec<_>>().join(", ");
    let mut conditions = Sql::default();
    in_range(&mut conditions, &format!("{alias}.{time}"), from, to);
    conditions.append(narrowing);
    live_rows(project, table, alias, &list, conditions)
}

/// One live version of the rows of `table` whose id some row of the view names in `key_column`
/// (a superset: the view's rows in range), reading `columns`.
fn newest_named_by(
    project: &ProjectId,
    table: &str,
    columns: &BTreeSet<String>,
    base: &Base,
    key_column: &str,
    query: &MetricsQuery,
) -> Sql {
    let mut columns = columns.clone();
    columns.insert("id".into());
    let list = columns.into_iter().collect::<Vec<_>>().join(", ");
    let mut named = Sql::new(&format!(
        " AND {table}.id IN (SELECT {key_column} FROM {} WHERE project_id = ",
        base.table
    ));
    named.bind(Bound::Text(project.to_string()));
    in_range(&mut named, base.time, query.from, query.to);
    named.text(")");
    live_rows(project, table, table, &list, named)
}

/// The live rows of `table` read as `alias` that meet `conditions`: `FINAL` keeps one per entity
/// (the worker follows a row that moves to another sorting key with a deleted copy under the old
/// one), and for traces, the wrapper rows of traces with rows of their own are set aside.
fn live_rows(project: &ProjectId, table: &str, alias: &str, list: &str, conditions: Sql) -> Sql {
    if table == "traces" {
        return live_traces_final(project, alias, list, conditions);
    }
    let mut sql = live_final(project, table, alias, list);
    sql.text(" ");
    sql.append(conditions);
    sql
}

/// ` LEFT JOIN (<relation>) AS <alias> ON ...`: at most one row per key.
fn join(
    project: &ProjectId,
    base: &Base,
    relation: Relation,
    named: &str,
    q: &MetricsQuery,
) -> Sql {
    let b = base.alias;
    let mut sql = Sql::new(" LEFT JOIN (");
    match relation {
        Relation::Row => unreachable!("the row is the base"),
        Relation::Trace => {
            let columns = columns_of(named, "t");
            sql.append(newest_named_by(
                project, "traces", &columns, base, "trace_id", q,
            ));
            sql.text(&format!(") AS t ON t.id = {b}.trace_id"));
        }
        Relation::Observation => {
            let columns = columns_of(named, "ob");
            sql.append(newest_named_by(
                project,
                "observations",
                &columns,
                base,
                "observation_id",
                q,
            ));
            sql.text(&format!(") AS ob ON ob.id = {b}.observation_id"));
        }
        Relation::TraceObservations => {
            // As in Langfuse, a trace's figures are those of its observations in the range.
            sql.text(
                "SELECT trace_id, count() AS obs_count, \
                 dateDiff('millisecond', min(start_time), max(end_time)) AS obs_latency, \
                 sum(usage_details['total']) AS obs_tokens, \
                 sum(total_cost) AS obs_cost FROM (",
            );
            let columns: BTreeSet<String> = [
                "trace_id",
                "start_time",
                "end_time",
                "usage_details",
                "total_cost",
            ]
            .into_iter()
            .map(String::from)
            .collect();
            sql.append(newest_in_range(
                project,
                "observations",
                "o",
                &columns,
                "start_time",
                q.from,
                q.to,
                Sql::default(),
            ));
            sql.text(&format!(
                ") GROUP BY trace_id) AS os ON os.trace_id = {b}.id"
            ));
        }
        Relation::Scores => {
            let key = if base.table == "traces" {
                "trace_id"
            } else {
                "observation_id"
            };
            sql.text(&format!(
                "SELECT {key} AS scored_id, count() AS score_count FROM ("
            ));
            let columns: BTreeSet<String> = [key.to_string()].into_iter().collect();
            sql.append(newest_in_range(
                project,
                "scores",
                "s",
                &columns,
                "timestamp",
                q.from,
                q.to,
                Sql::default(),
            ));
            sql.text(&format!(") GROUP BY {key}) AS ss ON ss.scored_id = {b}.id"));
        }
    }
    sql
}

/// The columns `text` reads from `alias` (`alias.column`, not preceded by a name character).
fn columns_of(text: &str, alias: &str) -> BTreeSet<String> {
    let prefix = format!("{alias}.");
    let bytes = text.as_bytes();
    let mut found = BTreeSet::new();
    let mut start = 0;
    while let Some(pos) = text[start..].find(&prefix) {
        let at = start + pos;
        let preceded = at > 0 && {
            let c = bytes[at - 1];
            c.is_ascii_alphanumeric() || c == b'_' || c == b'.'
        };
        let rest = &text[at + prefix.len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !preceded && !name.is_empty() {
            found.insert(name);
        }
        start = at + prefix.len();
    }
    found
}

/// `<aggregation>(<measure>) AS <aggregation>_<measure>`.
fn aggregate(view: View, metric: &Metric, bins: Option<u32>) -> Sql {
    let expr = measure_sql(view, &metric.measure).expect("validated");
    let column = metric.column();
    let mut sql = Sql::default();
    match metric.aggregation {
        Aggregation::Histogram => {
            sql.text("histogram(");
            sql.bind(Bound::Int(bins.unwrap_or(DEFAULT_BINS) as i64));
            sql.text(&format!(")(toFloat64({expr}))"));
        }
        a => {
            let function = match a {
                Aggregation::Sum => "sum".to_string(),
                Aggregation::Avg => "avg".to_string(),
                Aggregation::Count => "count".to_string(),
                Aggregation::Max => "max".to_string(),
                Aggregation::Min => "min".to_string(),
                p => format!("quantile({})", p.quantile().expect("a percentile")),
            };
            sql.text(&format!("{function}({expr})"));
        }
    }
    sql.text(&format!(" AS `{column}`"));
    sql
}

/// The time bucket of `column` (UTC), typed as Langfuse types it: a date for days, weeks
/// (starting Monday) and months, a date-time for minutes and hours.
fn bucket(granularity: Granularity, column: &str) -> String {
    match granularity {
        Granularity::Minute => format!("toStartOfMinute(toDateTime({column}, 'UTC'))"),
        Granularity::Hour => format!("toStartOfHour(toDateTime({column}, 'UTC'))"),
        Granularity::Day | Granularity::Auto => format!("toDate({column}, 'UTC')"),
        Granularity::Week => format!("toMonday({column}, 'UTC')"),
        Granularity::Month => format!("toStartOfMonth({column}, 'UTC')"),
    }
}

fn step(granularity: Granularity) -> &'static str {
    match granularity {
        Granularity::Minute => "INTERVAL 1 MINUTE",
        Granularity::Hour => "INTERVAL 1 HOUR",
        Granularity::Day | Granularity::Auto => "INTERVAL 1 DAY",
        Granularity::Week => "INTERVAL 1 WEEK",
        Granularity::Month => "INTERVAL 1 MONTH",
    }
}

/// ` WITH FILL` from the bucket of `from` through the bucket of `to`: every bucket of the range
/// has a row, those without data with zeros.
fn fill(sql: &mut Sql, granularity: Granularity, from: DateTime<Utc>, to: DateTime<Utc>) {
    let bound = |sql: &mut Sql, at: DateTime<Utc>| {
        let mut literal = Sql::default();
        time_literal(&mut literal, at);
        let text = bucket(granularity, "\u{0}");
        let (before, after) = text.split_once('\u{0}').expect("one column");
        sql.text(before);
        sql.append(literal);
        sql.text(after);
    };
    sql.text(" WITH FILL FROM ");
    bound(sql, from);
    sql.text(" TO ");
    bound(sql, to);
    sql.text(&format!(
        " + {} STEP {}",
        step(granularity),
        step(granularity)
    ));
}

/// The query's filters as conditions on the view's columns.
fn conditions(query: &MetricsQuery) -> Result<Vec<Condition>, QueryError> {
    if query.filters.is_empty() {
        return Ok(Vec::new());
    }
    let text = Value::Array(query.filters.clone()).to_string();
    filter::parse(filter_view(query.view), &text).map_err(|message| {
        QueryError::new(format!(
            "filters: {}",
            message.trim_start_matches("Invalid query parameters: ")
        ))
    })
}

/// The filter columns of a view: its dimensions, its time column and `metadata`.
pub fn filter_view(view: View) -> &'static filter::View {
    static VIEWS: OnceLock<Vec<(View, &'static filter::View)>> = OnceLock::new();
    let views = VIEWS.get_or_init(|| {
        View::ALL
            .into_iter()
            .map(|v| (v, build_filter_view(v)))
            .collect()
    });
    views
        .iter()
        .find(|(v, _)| *v == view)
        .expect("every view")
        .1
}

fn build_filter_view(view: View) -> &'static filter::View {
    let decl = view.declaration();
    let base = Base::of(view);
    let mut columns: Vec<Column> = decl
        .dimensions
        .iter()
        .map(|d| {
            let kind = match d.field_type {
                FieldType::Text => Kind::Options,
                FieldType::List => Kind::List,
                FieldType::Number => Kind::Number,
                FieldType::Flag => Kind::Flag,
            };
            Column::new(
                d.name,
                d.name,
                kind,
                dimension_sql(view, d.name).expect("declared"),
            )
        })
        .collect();
    let (time, metadata) = match base.alias {
        "t" => ("t.timestamp", "t.metadata"),
        "o" => ("o.start_time", "o.metadata"),
        _ => ("s.timestamp", "s.metadata"),
    };
    columns.push(Column::new(
        decl.time_column,
        decl.time_column,
        Kind::Time,
        time,
    ));
    columns.push(Column::new(base.time, base.time, Kind::Time, time));
    columns.push(Column::new("metadata", "metadata", Kind::Object, metadata));
    columns.dedup_by(|a, b| a.id == b.id);
    filter::metrics::view(view.name(), columns)
}

/// The SQL of a dimension, over the statement's aliases.
pub fn dimension_sql(view: View, name: &str) -> Option<&'static str> {
    let trace_dimension = |name: &str| -> Option<&'static str> {
        Some(match name {
            "traceName" => "t.name",
            "tags" => "t.tags",
            "userId" => "t.user_id",
            "traceRelease" | "release" => "t.release",
            "traceVersion" => "t.version",
            _ => return None,
        })
    };
    match view {
        View::Traces => Some(match name {
            "id" => "t.id",
            "name" => "t.name",
            "tags" => "t.tags",
            "userId" => "t.user_id",
            "sessionId" => "t.session_id",
            "release" => "t.release",
            "version" => "t.version",
            "environment" => "t.environment",
            "timestampMonth" => "formatDateTime(t.timestamp, '%Y-%m', 'UTC')",
            _ => return None,
        }),
        View::Observations => Some(match name {
            "id" => "o.id",
            "traceId" => "o.trace_id",
            "environment" => "o.environment",
            "parentObservationId" => "o.parent_observation_id",
            "type" => "o.type",
            "name" => "o.name",
            "level" => "o.level",
            "version" => "o.version",
            "providedModelName" => "o.provided_model_name",
            "promptName" => "o.prompt_name",
            "promptVersion" => "o.prompt_version",
            "sessionId" => "t.session_id",
            "isRootObservation" => "(ifNull(o.parent_observation_id, '') = '')",
            "startTimeMonth" => "formatDateTime(o.start_time, '%Y-%m', 'UTC')",
            other => return trace_dimension(other),
        }),
        View::ScoresNumeric | View::ScoresBoolean | View::ScoresCategorical => {
            let own = match name {
                "id" => Some("s.id"),
                "environment" => Some("s.environment"),
                "name" => Some("s.name"),
                "source" => Some("s.source"),
                "dataType" => Some("s.data_type"),
                "traceId" => Some("s.trace_id"),
                "configId" => Some("s.config_id"),
                "timestampMonth" => Some("formatDateTime(s.timestamp, '%Y-%m', 'UTC')"),
                "timestampDay" => Some("formatDateTime(s.timestamp, '%Y-%m-%d', 'UTC')"),
                "observationId" => Some("s.observation_id"),
                // A session's own score names its session; a trace's score, its trace's.
                "sessionId" => Some("ifNull(s.session_id, t.session_id)"),
                "observationName" => Some("ob.name"),
                "observationModelName" => Some("ob.provided_model_name"),
                "observationPromptName" => Some("ob.prompt_name"),
                "observationPromptVersion" => Some("ob.prompt_version"),
                "value" if view != View::ScoresCategorical => Some("s.value"),
                "booleanValue" if view == View::ScoresBoolean => Some("(s.value != 0)"),
                "stringValue" if view == View::ScoresCategorical => Some("s.string_value"),
                "release" => None,
                _ => None,
            };
            own.or_else(|| trace_dimension(name))
        }
    }
}

const INPUT_TOKENS: &str =
    "arraySum(mapValues(mapFilter((k, v) -> positionCaseInsensitive(k, 'input') > 0, o.usage_details)))";
const OUTPUT_TOKENS: &str =
    "arraySum(mapValues(mapFilter((k, v) -> positionCaseInsensitive(k, 'output') > 0, o.usage_details)))";

/// The SQL of a measure: one value per entity of the view (NULL when it has none).
pub fn measure_sql(view: View, name: &str) -> Option<&'static str> {
    Some(match (view, name) {
        (_, "count") => "1",
        (View::Traces, "observationsCount") => "os.obs_count",
        (View::Traces, "scoresCount") => "ifNull(ss.score_count, 0)",
        (View::Traces, "uniqueUserIds") => "if(isNull(t.user_id), 0, 1)",
        (View::Traces, "uniqueSessionIds") => "if(isNull(t.session_id), 0, 1)",
        (View::Traces, "latency") => "os.obs_latency",
        (View::Traces, "totalTokens") => "os.obs_tokens",
        (View::Traces, "totalCost") => "toFloat64(os.obs_cost)",
        (View::Observations, "latency") => "dateDiff('millisecond', o.start_time, o.end_time)",
        (View::Observations, "streamingLatency") => {
            "dateDiff('millisecond', o.completion_start_time, o.end_time)"
        }
        (View::Observations, "inputTokens") => INPUT_TOKENS,
        (View::Observations, "outputTokens") => OUTPUT_TOKENS,
        (View::Observations, "totalTokens") => "o.usage_details['total']",
        (View::Observations, "outputTokensPerSecond") => {
            "arraySum(mapValues(mapFilter((k, v) -> positionCaseInsensitive(k, 'output') > 0, o.usage_details))) \
             / nullIf(dateDiff('second', o.completion_start_time, o.end_time), 0)"
        }
        (View::Observations, "tokensPerSecond") => {
            "o.usage_details['total'] / nullIf(dateDiff('second', o.start_time, o.end_time), 0)"
        }
        (View::Observations, "inputCost") => {
            "toFloat64(arraySum(mapValues(mapFilter((k, v) -> positionCaseInsensitive(k, 'input') > 0, o.cost_details))))"
        }
        (View::Observations, "outputCost") => {
            "toFloat64(arraySum(mapValues(mapFilter((k, v) -> positionCaseInsensitive(k, 'output') > 0, o.cost_details))))"
        }
        (View::Observations, "totalCost") => "toFloat64(o.total_cost)",
        (View::Observations, "timeToFirstToken") => {
            "dateDiff('millisecond', o.start_time, o.completion_start_time)"
        }
        (View::Observations, "countScores") => "ifNull(ss.score_count, 0)",
        (View::ScoresNumeric | View::ScoresBoolean, "value") => "s.value",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::metrics::{parse, Metric};
    use chrono::TimeZone;

    fn project() -> ProjectId {
        ProjectId::authenticated("p")
    }

    #[test]
    fn every_declared_name_has_its_sql() {
        for view in View::ALL {
            let decl = view.declaration();
            for d in decl.dimensions {
                assert!(
                    dimension_sql(view, d.name).is_some(),
                    "{} {}",
                    view.name(),
                    d.name
                );
            }
            for m in decl.measures {
                assert!(
                    measure_sql(view, m.name).is_some(),
                    "{} {}",
                    view.name(),
                    m.name
                );
            }
            // And every dimension is a filter column.
            let filters = filter_view(view);
            for d in decl.dimensions {
                assert!(filters.find(d.name).is_some(), "{} {}", view.name(), d.name);
            }
        }
    }

    #[test]
    fn the_statement_binds_every_value_and_reads_the_newest_versions() {
        let query = parse(
            r#"{"view": "observations",
                "dimensions": [{"field": "traceName"}],
                "metrics": [{"measure": "totalCost", "aggregation": "sum"},
                            {"measure": "latency", "aggregation": "histogram"}],
                "filters": [{"column": "name", "operator": "=", "value": "x'; DROP", "type": "string"}],
                "timeDimension": {"granularity": "day"},
                "fromTimestamp": "2025-01-01T00:00:00Z", "toTimestamp": "2025-01-03T00:00:00Z",
                "config": {"bins": 7}}"#,
            ApiVersion::V1,
        )
        .unwrap();
        let sql = compile(&project(), &query, ApiVersion::V1).unwrap();
        assert_eq!(sql.text.matches('?').count(), sql.binds.len());
        assert!(!sql.text.contains("DROP"));
        assert!(sql.binds.contains(&Bound::Text("x'; DROP".into())));
        assert!(sql.binds.contains(&Bound::Int(7)));
        assert!(sql.text.contains("LIMIT 1 BY id"));
        assert!(sql.text.contains("AS `sum_totalCost`"));
        assert!(sql.text.contains("WITH FILL"));
        assert!(sql.text.contains("LEFT JOIN"));
        // Only the columns named are read: no input or output.
        assert!(!sql.text.contains("input,"));
        assert!(sql.binds.iter().all(|b| b != &Bound::Text("q".into())));
    }

    #[test]
    fn filters_name_the_field_and_refuse_unknown_columns() {
        let mut query = MetricsQuery::new(
            View::Traces,
            vec![Metric::new("count", Aggregation::Count)],
            Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2025, 1, 2, 0, 0, 0).unwrap(),
        );
        query.filters = vec![
            serde_json::json!({"column": "nope", "operator": "=", "value": "a", "type": "string"}),
        ];
        let error = compile(&project(), &query, ApiVersion::V1).unwrap_err();
        assert!(error.message.starts_with("filters: "), "{}", error.message);
        query.filters = vec![
            serde_json::json!({"column": "tags", "operator": "any of", "value": ["a"], "type": "arrayOptions"}),
        ];
        assert!(compile(&project(), &query, ApiVersion::V1).is_ok());
    }

    #[test]
    fn the_specs_example_filters_compile() {
        let query = parse(
            r#"{"view": "observations",
                "metrics": [{"measure": "count", "aggregation": "count"}],
                "filters": [{"column": "isRootObservation", "operator": "=", "value": true, "type": "boolean"},
                            {"column": "metadata", "operator": "=", "value": "b", "type": "stringObject", "key": "a"},
                            {"column": "userId", "operator": "any of", "value": ["u"], "type": "stringOptions"}],
                "fromTimestamp": "2025-01-01T00:00:00.000Z", "toTimestamp": "2025-02-01T00:00:00.000Z"}"#,
            ApiVersion::V2,
        )
        .unwrap();
        let sql = compile(&project(), &query, ApiVersion::V2).unwrap();
        // The trace is joined for the user id; the row's own conditions also narrow the ids.
        assert!(sql.text.contains(") AS t ON t.id = o.trace_id"));
        assert_eq!(sql.text.matches("mapContains(o.metadata").count(), 2);
        assert_eq!(sql.text.matches("t.user_id IN").count(), 1);
        assert!(sql.text.ends_with("LIMIT ?"));
        assert_eq!(sql.binds.last(), Some(&Bound::Int(100)));
    }

    #[test]
    fn columns_are_found_by_alias() {
        let found = columns_of(
            "t.name, ifNull(s.session_id, t.session_id), ot.x, ob.name",
            "t",
        );
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            vec!["name".to_string(), "session_id".to_string()]
        );
    }
}
