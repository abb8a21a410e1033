//! The web UI's traces table: one page of traces matching the table's filters, in one of its
//! orders, paged by cursor, with the figures of each row's observations and its scores.
//!
//! A page costs four queries, the last three bounded by the page's ids and times and run
//! together: the page itself (over the traces view of the filter language, so it reads the newest
//! version of each trace and joins the observations' figures only when a filter or the order
//! needs them), the previews of the page's input and output, the figures of its traces, and their
//! scores. Newest first, the default, never reads the observations of the whole project, and the
//! page query reads no input or output: the previews are read for the page's rows alone.
//!
//! The figures count the observations that start in [`FIGURES_WINDOW`] around the page's traces
//! (a day before the oldest, a week after the newest), so that they read a few days of
//! observations rather than the whole project: an observation that starts more than that before
//! or after its trace is left out of the table's figures (not out of the trace's page).
//!
//! The cursor is the position of a row in the order: its sort value (milliseconds for the time,
//! else the figure) and its id, which breaks ties. A page after a position takes the rows past
//! it; a page before it the rows in front of it, read in the reverse order and turned round, so
//! paging never skips (`OFFSET`) over rows.

use chrono::{DateTime, TimeDelta, Utc};
use clickhouse::serde::chrono::datetime64::millis;
use serde::Deserialize;

use super::filter::traces::{self as columns};
use super::filter::{
    self, ArrayOp, Compare, Condition, Source, TextOp, OBSERVATION_FIGURES,
    OBSERVATION_FIGURE_COLUMNS, TRACES,
};
use super::sql::{latest_matching, Bound, Sql};
use crate::domain::project::ProjectId;

/// How many characters of input and output a row reads, for its preview.
pub const PREVIEW_CHARS: usize = 300;

/// How far before the oldest and after the newest trace of a page its figures look for
/// observations, by their start.
pub const FIGURES_WINDOW: (chrono::TimeDelta, chrono::TimeDelta) =
    (chrono::TimeDelta::days(1), chrono::TimeDelta::days(7));

/// What the table is filtered by; every field narrows it (all must hold).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableFilters {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub name: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    /// Traces with any of these tags.
    pub tags: Vec<String>,
    pub environment: Option<String>,
    pub release: Option<String>,
    pub version: Option<String>,
    /// The trace's level: the worst level of its observations.
    pub level: Option<String>,
    /// A metadata key and the value it must hold.
    pub metadata: Option<(String, String)>,
    /// Text that the id, the name, the input or the output contains, whatever its case.
    pub search: Option<String>,
}

impl TableFilters {
    /// The filters as conditions of the traces view (the search is no condition: it is an OR).
    pub fn conditions(&self) -> Vec<Condition> {
        let mut conditions = Vec::new();
        if let Some(from) = self.from {
            conditions.push(Condition::Time {
                column: &columns::TIMESTAMP,
                compare: Compare::Gte,
                at: from,
            });
        }
        if let Some(to) = self.to {
            conditions.push(Condition::Time {
                column: &columns::TIMESTAMP,
                compare: Compare::Lt,
                at: to,
            });
        }
        let equals = |column, value: &Option<String>| {
            value.as_ref().map(|value| Condition::Text {
                column,
                op: TextOp::Equals,
                value: value.clone(),
            })
        };
        conditions.extend(
            [
                equals(&columns::NAME, &self.name),
                equals(&columns::USER_ID, &self.user_id),
                equals(&columns::SESSION_ID, &self.session_id),
                equals(&columns::RELEASE, &self.release),
                equals(&columns::VERSION, &self.version),
            ]
            .into_iter()
            .flatten(),
        );
        if !self.tags.is_empty() {
            conditions.push(Condition::Array {
                column: &columns::TAGS,
                op: ArrayOp::AnyOf,
                values: self.tags.clone(),
            });
        }
        for (column, value) in [
            (&columns::ENVIRONMENT, &self.environment),
            (&columns::LEVEL, &self.level),
        ] {
            if let Some(value) = value {
                conditions.push(Condition::OneOf {
                    column,
                    negated: false,
                    values: vec![value.clone()],
                });
            }
        }
        if let Some((key, value)) = &self.metadata {
            conditions.push(Condition::MetadataText {
                column: &columns::METADATA,
                key: key.clone(),
                op: TextOp::Equals,
                value: value.clone(),
            });
        }
        conditions
    }
}

/// What the table can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Time,
    Latency,
    Cost,
    Tokens,
}

impl SortKey {
    /// The value rows are ordered by, as a number (a time in milliseconds).
    fn value_sql(self) -> String {
        match self {
            SortKey::Time => "toFloat64(toUnixTimestamp64Milli(t.timestamp))".to_string(),
            SortKey::Latency => format!("toFloat64({})", columns::LATENCY.sql),
            SortKey::Cost => format!("toFloat64({})", columns::TOTAL_COST.sql),
            SortKey::Tokens => format!("toFloat64({})", columns::TOTAL_TOKENS.sql),
        }
    }

    /// What the order compares: the time column itself, so its sorting key narrows the read.
    fn compared_sql(self) -> String {
        match self {
            SortKey::Time => "t.timestamp".to_string(),
            other => other.value_sql(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            key: SortKey::Time,
            descending: true,
        }
    }
}

/// Where a row stands in the order.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    /// The sort value: milliseconds since the epoch for the time, else the figure.
    pub value: f64,
    pub id: String,
}

/// Which page to read.
#[derive(Debug, Clone, PartialEq)]
pub enum PageAt {
    First,
    /// The rows after this position in the order.
    After(Position),
    /// The rows before it (the previous page).
    Before(Position),
}

#[derive(Debug, Clone, Deserialize, clickhouse::Row)]
struct PageRow {
    id: String,
    #[serde(with = "millis")]
    timestamp: DateTime<Utc>,
    name: String,
    user_id: Option<String>,
    session_id: Option<String>,
    tags: Vec<String>,
    environment: String,
    release: Option<String>,
    version: Option<String>,
    sort_value: f64,
}

/// The beginning of a trace's input and output.
#[derive(Debug, Clone, Deserialize, clickhouse::Row)]
struct Preview {
    id: String,
    input_preview: String,
    output_preview: String,
}

/// What a trace's observations add up to.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, clickhouse::Row)]
pub struct Figures {
    pub trace_id: String,
    /// Seconds from the first observation's start to the last one's end.
    pub latency_secs: f64,
    pub total_tokens: u64,
    pub total_cost: f64,
    /// The worst level of its observations (`""` without observations).
    pub level: String,
    /// How many observations it has (0: the figures were not measured).
    pub observations: u64,
}

/// The scores of one name on a trace.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct ScoreFigure {
    pub trace_id: String,
    pub name: String,
    pub data_type: String,
    /// The mean of the values (numeric and boolean scores).
    pub average: f64,
    /// The distinct values of categorical scores, sorted, comma-separated.
    pub categories: String,
    pub count: u64,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRow {
    pub id: String,
    pub timestamp: DateTime<Utc>,
    pub name: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub tags: Vec<String>,
    pub environment: String,
    pub release: Option<String>,
    pub version: Option<String>,
    /// The first [`PREVIEW_CHARS`] characters of the stored input and output (JSON text).
    pub input_preview: String,
    pub output_preview: String,
    pub figures: Figures,
    pub scores: Vec<ScoreFigure>,
    pub position: Position,
}

/// A page of the table, in the table's order.
#[derive(Debug, Clone, PartialEq)]
pub struct TablePage {
    pub rows: Vec<TableRow>,
    /// There are rows before the first one (a previous page).
    pub more_before: bool,
    /// There are rows after the last one (a next page).
    pub more_after: bool,
}

/// Up to `fetch` rows at `at`, in the order (or, before a position, in the reverse order).
fn page_sql(
    project: &ProjectId,
    filters: &TableFilters,
    extra: &[Condition],
    sort: Sort,
    at: &PageAt,
    fetch: u64,
) -> Sql {
    // Reading forward means past the position in the order's direction.
    let (position, forward) = match at {
        PageAt::First => (None, true),
        PageAt::After(p) => (Some(p), true),
        PageAt::Before(p) => (Some(p), false),
    };
    let ascending = sort.descending != forward;
    let mut conditions = filters.conditions();
    conditions.extend(extra.iter().cloned());
    // Past a time, the rows are those on its side of it too: a condition the table's sorting key
    // narrows the read with, which the position alone (a tuple) is not.
    if let (SortKey::Time, Some(position)) = (sort.key, position) {
        if let Some(at) = DateTime::from_timestamp_millis(position.value as i64) {
            conditions.push(Condition::Time {
                column: &columns::TIMESTAMP,
                compare: if ascending {
                    Compare::Gte
                } else {
                    Compare::Lte
                },
                at,
            });
        }
    }
    let joins: &[Source] = match sort.key {
        SortKey::Time => &[],
        _ => &[Source::ObservationStats],
    };
    let mut sql = Sql::new(&format!(
        "SELECT t.id AS id, t.timestamp AS timestamp, t.name AS name, t.user_id AS user_id, \
         t.session_id AS session_id, t.tags AS tags, toString(t.environment) AS environment, \
         t.release AS release, t.version AS version, {} AS sort_value FROM ",
        sort.key.value_sql()
    ));
    sql.append(TRACES.narrowed_from_sql_joining(project, &conditions, joins));
    filter::push_where_all(&mut sql, &conditions);
    if let Some(search) = &filters.search {
        sql.text(" AND (");
        for (i, column) in [
            "t.id",
            "t.name",
            "ifNull(t.input, '')",
            "ifNull(t.output, '')",
        ]
        .iter()
        .enumerate()
        {
            if i > 0 {
                sql.text(" OR ");
            }
            sql.text(&format!("positionCaseInsensitiveUTF8({column}, "));
            sql.bind(Bound::Text(search.clone()));
            sql.text(") > 0");
        }
        sql.text(")");
    }
    if let Some(position) = position {
        let compared = sort.key.compared_sql();
        let op = if ascending { ">" } else { "<" };
        sql.text(&format!(" AND ({compared}, t.id) {op} ("));
        match sort.key {
            SortKey::Time => {
                sql.text("fromUnixTimestamp64Milli(toInt64(");
                sql.bind(Bound::Int(position.value as i64));
                sql.text("))");
            }
            _ => sql.bind(Bound::Float(position.value)),
        }
        sql.text(", ");
        sql.bind(Bound::Text(position.id.clone()));
        sql.text(")");
    }
    let direction = if ascending { "ASC" } else { "DESC" };
    sql.text(&format!(
        " ORDER BY {} {direction}, t.id {direction} LIMIT ",
        sort.key.compared_sql()
    ));
    sql.bind(Bound::Int(fetch as i64));
    sql
}

/// The times of a page's traces: the oldest and the newest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PageTimes {
    pub oldest: DateTime<Utc>,
    pub newest: DateTime<Utc>,
}

impl PageTimes {
    /// The span of `times`; `None` when there are none.
    pub fn of<'a>(times: impl IntoIterator<Item = &'a DateTime<Utc>>) -> Option<PageTimes> {
        times.into_iter().fold(None, |span, &t| {
            Some(match span {
                None => PageTimes {
                    oldest: t,
                    newest: t,
                },
                Some(PageTimes { oldest, newest }) => PageTimes {
                    oldest: oldest.min(t),
                    newest: newest.max(t),
                },
            })
        })
    }
}

/// `AND <column> >= ? AND <column> <= ?`: the page's times widened by `before` and `after`.
fn within(sql: &mut Sql, column: &str, times: PageTimes, before: TimeDelta, after: TimeDelta) {
    sql.text(&format!(
        " AND {column} >= fromUnixTimestamp64Milli(toInt64("
    ));
    sql.bind(Bound::Int((times.oldest - before).timestamp_millis()));
    sql.text(&format!(
        ")) AND {column} <= fromUnixTimestamp64Milli(toInt64("
    ));
    sql.bind(Bound::Int((times.newest + after).timestamp_millis()));
    sql.text("))");
}

/// The beginning of the input and output of the given traces (newest versions), whose times
/// are within `times`.
fn previews_sql(project: &ProjectId, trace_ids: &[String], times: PageTimes) -> Sql {
    let mut of_traces = Sql::new("AND id IN ");
    of_traces.bind(Bound::Texts(trace_ids.to_vec()));
    within(
        &mut of_traces,
        "timestamp",
        times,
        TimeDelta::zero(),
        TimeDelta::zero(),
    );
    latest_matching(
        project,
        "traces",
        &format!(
            "id, leftUTF8(ifNull(input, ''), {PREVIEW_CHARS}) AS input_preview, \
             leftUTF8(ifNull(output, ''), {PREVIEW_CHARS}) AS output_preview"
        ),
        &of_traces,
    )
}

/// The figures of the given traces' observations, over the newest version of each, counting
/// those that start within [`FIGURES_WINDOW`] of the traces' `times` (all of them without).
fn figures_sql(project: &ProjectId, trace_ids: &[String], times: Option<PageTimes>) -> Sql {
    let mut of_traces = Sql::new("AND trace_id IN ");
    of_traces.bind(Bound::Texts(trace_ids.to_vec()));
    if let Some(times) = times {
        let (before, after) = FIGURES_WINDOW;
        within(&mut of_traces, "start_time", times, before, after);
    }
    let mut sql = Sql::new(&format!(
        "SELECT os.trace_id AS trace_id, toFloat64({}) AS latency_secs, \
         toUInt64({}) AS total_tokens, toFloat64({}) AS total_cost, {} AS level, \
         os.observation_count AS observations FROM (SELECT o.trace_id AS trace_id, \
         count() AS observation_count, {OBSERVATION_FIGURES} FROM (",
        columns::LATENCY.sql,
        columns::TOTAL_TOKENS.sql,
        columns::TOTAL_COST.sql,
        columns::LEVEL.sql,
    ));
    sql.append(latest_matching(
        project,
        "observations",
        OBSERVATION_FIGURE_COLUMNS,
        &of_traces,
    ));
    sql.text(") AS o GROUP BY o.trace_id) AS os");
    sql
}

/// The scores of the given traces by name (newest versions; corrections are no scores), those
/// given from a day before the oldest of the traces' `times` on (a score comes after its trace).
fn scores_sql(project: &ProjectId, trace_ids: &[String], times: PageTimes) -> Sql {
    let mut of_traces = Sql::new("AND trace_id IN ");
    of_traces.bind(Bound::Texts(trace_ids.to_vec()));
    let (before, _) = FIGURES_WINDOW;
    of_traces.text(" AND timestamp >= fromUnixTimestamp64Milli(toInt64(");
    of_traces.bind(Bound::Int((times.oldest - before).timestamp_millis()));
    of_traces.text("))");
    let mut sql = Sql::new(
        "SELECT assumeNotNull(trace_id) AS trace_id, name, toString(any(data_type)) AS score_type, \
         avg(value) AS average, \
         arrayStringConcat(arraySort(groupUniqArray(ifNull(string_value, ''))), ', ') AS categories, \
         count() AS count FROM (",
    );
    sql.append(latest_matching(
        project,
        "scores",
        "trace_id, name, value, data_type, string_value",
        &of_traces,
    ));
    sql.text(") WHERE data_type != 'CORRECTION' GROUP BY trace_id, name ORDER BY name");
    sql
}

/// The figures of the given traces' observations (a trace without observations is left out):
/// those near `times` (the traces' own times, see [`FIGURES_WINDOW`]), or all of them.
pub async fn figures(
    ch: &clickhouse::Client,
    project: &ProjectId,
    trace_ids: &[String],
    times: Option<PageTimes>,
) -> anyhow::Result<Vec<Figures>> {
    if trace_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(figures_sql(project, trace_ids, times)
        .query(ch)
        .fetch_all()
        .await?)
}

/// The scores of the given traces, one entry per trace and score name.
pub async fn scores(
    ch: &clickhouse::Client,
    project: &ProjectId,
    trace_ids: &[String],
    times: PageTimes,
) -> anyhow::Result<Vec<ScoreFigure>> {
    Ok(scores_sql(project, trace_ids, times)
        .query(ch)
        .fetch_all()
        .await?)
}

async fn previews(
    ch: &clickhouse::Client,
    project: &ProjectId,
    trace_ids: &[String],
    times: PageTimes,
) -> anyhow::Result<Vec<Preview>> {
    Ok(previews_sql(project, trace_ids, times)
        .query(ch)
        .fetch_all()
        .await?)
}

/// One page of `limit` rows at `at`.
pub async fn page(
    ch: &clickhouse::Client,
    project: &ProjectId,
    filters: &TableFilters,
    sort: Sort,
    at: &PageAt,
    limit: u64,
) -> anyhow::Result<TablePage> {
    let mut rows: Vec<PageRow> = page_sql(project, filters, &[], sort, at, limit + 1)
        .query(ch)
        .fetch_all()
        .await?;
    let beyond = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let (more_before, more_after) = match at {
        PageAt::First => (false, beyond),
        PageAt::After(_) => (true, beyond),
        PageAt::Before(_) => {
            rows.reverse();
            (beyond, true)
        }
    };
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let (figures, scores, mut previews) = match PageTimes::of(rows.iter().map(|r| &r.timestamp)) {
        None => Default::default(),
        Some(times) => futures::try_join!(
            figures(ch, project, &ids, Some(times)),
            scores(ch, project, &ids, times),
            previews(ch, project, &ids, times),
        )?,
    };
    let rows = rows
        .into_iter()
        .map(|row| {
            let preview = previews
                .iter()
                .position(|p| p.id == row.id)
                .map(|at| previews.swap_remove(at));
            TableRow {
                figures: figures
                    .iter()
                    .find(|f| f.trace_id == row.id)
                    .cloned()
                    .unwrap_or_else(|| Figures {
                        trace_id: row.id.clone(),
                        ..Figures::default()
                    }),
                scores: scores
                    .iter()
                    .filter(|s| s.trace_id == row.id)
                    .cloned()
                    .collect(),
                position: Position {
                    value: row.sort_value,
                    id: row.id.clone(),
                },
                id: row.id,
                timestamp: row.timestamp,
                name: row.name,
                user_id: row.user_id,
                session_id: row.session_id,
                tags: row.tags,
                environment: row.environment,
                release: row.release,
                version: row.version,
                input_preview: preview
                    .as_ref()
                    .map(|p| p.input_preview.clone())
                    .unwrap_or_default(),
                output_preview: preview.map(|p| p.output_preview).unwrap_or_default(),
            }
        })
        .collect();
    Ok(TablePage {
        rows,
        more_before,
        more_after,
    })
}

/// The id of the trace next to `trace_id` in the table (after it with `next`, else before it),
/// or `None` at that end of the table or when there is no such trace.
pub async fn neighbour(
    ch: &clickhouse::Client,
    project: &ProjectId,
    filters: &TableFilters,
    sort: Sort,
    trace_id: &str,
    next: bool,
) -> anyhow::Result<Option<String>> {
    // Where the trace stands in the order, whether or not it passes the filters.
    let by_id = [Condition::Text {
        column: &columns::ID,
        op: TextOp::Equals,
        value: trace_id.to_string(),
    }];
    let unfiltered = TableFilters::default();
    let found: Option<PageRow> = page_sql(project, &unfiltered, &by_id, sort, &PageAt::First, 1)
        .query(ch)
        .fetch_optional()
        .await?;
    let Some(row) = found else {
        return Ok(None);
    };
    let position = Position {
        value: row.sort_value,
        id: row.id,
    };
    let at = if next {
        PageAt::After(position)
    } else {
        PageAt::Before(position)
    };
    let neighbour: Option<PageRow> = page_sql(project, filters, &[], sort, &at, 1)
        .query(ch)
        .fetch_optional()
        .await?;
    Ok(neighbour.map(|row| row.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> ProjectId {
        ProjectId::authenticated("p")
    }

    #[test]
    fn the_newest_first_page_joins_no_observations() {
        let sql = page_sql(
            &project(),
            &TableFilters::default(),
            &[],
            Sort::default(),
            &PageAt::First,
            51,
        );
        assert!(!sql.text.contains("JOIN"), "{}", sql.text);
        assert!(sql
            .text
            .ends_with("ORDER BY t.timestamp DESC, t.id DESC LIMIT ?"));
        assert_eq!(
            sql.binds,
            vec![Bound::Text("p".into()), Bound::Int(51)],
            "the project, the limit"
        );
    }

    #[test]
    fn every_filter_is_bound_and_the_cursor_reads_past_the_position() {
        let filters = TableFilters {
            from: DateTime::from_timestamp(1_000, 0),
            user_id: Some("u' OR 1=1".into()),
            tags: vec!["a".into()],
            level: Some("ERROR".into()),
            metadata: Some(("k".into(), "v".into())),
            search: Some("needle".into()),
            ..TableFilters::default()
        };
        let sort = Sort {
            key: SortKey::Cost,
            descending: true,
        };
        let at = PageAt::Before(Position {
            value: 0.5,
            id: "t9".into(),
        });
        let sql = page_sql(&project(), &filters, &[], sort, &at, 11);
        assert_eq!(sql.text.matches('?').count(), sql.binds.len());
        assert!(!sql.text.contains("u' OR"));
        assert!(sql.text.contains("LEFT JOIN"), "the cost needs the figures");
        // Before a position in a descending order: greater values, read ascending.
        assert!(sql
            .text
            .contains("AND (toFloat64(os.total_cost), t.id) > (?, ?)"));
        assert!(sql.text.ends_with("t.id ASC LIMIT ?"));
        assert_eq!(sql.binds.last(), Some(&Bound::Int(11)));
        assert!(sql.binds.contains(&Bound::Text("needle".into())));
    }

    #[test]
    fn a_page_past_a_time_narrows_the_traces_read_by_it() {
        let at = PageAt::After(Position {
            value: 1_714_557_600_000.0,
            id: "t".into(),
        });
        let sql = page_sql(
            &project(),
            &TableFilters::default(),
            &[],
            Sort::default(),
            &at,
            51,
        );
        assert_eq!(sql.text.matches('?').count(), sql.binds.len());
        assert!(
            sql.text.contains(
                "AND id IN (SELECT t.id FROM traces AS t WHERE t.project_id = ? AND \
                 (t.timestamp <= fromUnixTimestamp64Milli(toInt64(?))))"
            ),
            "{}",
            sql.text
        );
        assert!(sql
            .text
            .contains("AND (t.timestamp, t.id) < (fromUnixTimestamp64Milli(toInt64(?)), ?)"));
    }

    #[test]
    fn figures_and_scores_are_bounded_by_the_page() {
        let ids = vec!["a".to_string(), "b".to_string()];
        let times = PageTimes::of(&[
            DateTime::from_timestamp(2_000_000, 0).unwrap(),
            DateTime::from_timestamp(1_000_000, 0).unwrap(),
        ])
        .unwrap();
        assert_eq!(times.oldest.timestamp(), 1_000_000);
        assert_eq!(times.newest.timestamp(), 2_000_000);
        for sql in [
            figures_sql(&project(), &ids, Some(times)),
            scores_sql(&project(), &ids, times),
            previews_sql(&project(), &ids, times),
        ] {
            assert_eq!(sql.text.matches('?').count(), sql.binds.len());
            assert!(sql.binds.contains(&Bound::Texts(ids.clone())));
        }
        let figures = figures_sql(&project(), &ids, Some(times));
        assert!(figures
            .binds
            .contains(&Bound::Int((1_000_000 - 86_400) * 1000)));
        assert!(figures
            .binds
            .contains(&Bound::Int((2_000_000 + 7 * 86_400) * 1000)));
        let previews = previews_sql(&project(), &ids, times);
        assert!(!previews.text.contains("ORDER BY t.timestamp"));
        assert!(previews.binds.contains(&Bound::Int(1_000_000 * 1000)));
    }
}
