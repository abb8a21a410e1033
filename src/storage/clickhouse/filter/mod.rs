//! The filter language of the list views: conditions on the columns of a view (observations,
//! traces, sessions, scores), compiled to SQL with every value bound, never spliced.
//!
//! A view is data: a table of columns, each with Langfuse's id and display name, the kind of
//! filters it takes, a constant SQL expression over the view's relation aliases, the relation it
//! needs, and its special behaviours (empty text meaning NULL, token search); plus the names of
//! columns Langfuse has and this server stores no data for, and the FROM clause the compiled
//! conditions are written against. `parse` reads Langfuse's JSON `filter` for a view; the
//! compiler here knows nothing of any particular view or column.
//!
//! Each view's FROM clause keeps the newest version of each row (and of every row it joins)
//! before a condition sees any column (see `sql::latest_versions`), and joins only the
//! relations the conditions need.

pub mod experiments;
pub mod metrics;
pub mod observations;
pub mod parse;
pub mod scores;
pub mod sessions;
pub mod traces;

use std::fmt;

use chrono::{DateTime, Utc};

use super::sql::{latest_versions, Bound, Sql};
use crate::domain::project::ProjectId;

pub use experiments::{EXPERIMENTS, EXPERIMENT_ITEMS};
pub use observations::OBSERVATIONS;
pub use parse::parse;
pub use scores::SCORES;
pub use sessions::SESSIONS;
pub use traces::TRACES;

/// Every view, for what concerns them all (tests, listings).
pub static VIEWS: &[&View] = &[
    &OBSERVATIONS,
    &TRACES,
    &SESSIONS,
    &SCORES,
    &EXPERIMENTS,
    &EXPERIMENT_ITEMS,
];

/// Which filter types a column takes (Langfuse's column types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Free text: `string` (and `stringOptions`).
    Text,
    /// Text from a small set of values: `stringOptions` (and `string`).
    Options,
    /// A list of strings (tags, user ids): `arrayOptions` (and `stringOptions`, as any/none of).
    List,
    Time,
    Number,
    Flag,
    /// A map of text values (metadata): `stringObject`, `numberObject`, `categoryOptions`,
    /// `booleanObject`, each on the value under one key.
    Object,
}

/// The relation a column's SQL reads, besides the view's own row, so the FROM clause joins it
/// only when a condition needs it. Each view documents the alias each relation has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The view's own row, always there.
    Row,
    /// The newest version of the trace of the row (observations, scores).
    Trace,
    /// Figures over the newest versions of the observations of the row's trace or session
    /// (traces, sessions).
    ObservationStats,
}

/// How a column is searched by token (`matches`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Search {
    /// `matches` is refused.
    None,
    /// A large text (input, output): `matches` searches it by token, case-insensitively. As in
    /// Langfuse, it takes `string` filters only, and filters on such columns must include an
    /// exact or a token search, not only scans (contains, starts with, ...).
    FullText,
    /// A map (metadata): `matches` on a key's value searches the tokens of all its values.
    Values,
}

/// A column a view's filters can address.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Column {
    /// Langfuse's id of the column (`uiTableId`).
    pub id: &'static str,
    /// Langfuse's display name of the column (`uiTableName`), which filters may use too.
    pub display: &'static str,
    pub kind: Kind,
    /// The SQL expression over the view's aliases; constant text, never built from input.
    pub sql: &'static str,
    pub source: Source,
    /// An empty string and NULL mean the same (no parent, no release).
    pub empty_equals_null: bool,
    pub search: Search,
}

impl Column {
    /// A column of the view's own row, with no special behaviour.
    pub const fn new(
        id: &'static str,
        display: &'static str,
        kind: Kind,
        sql: &'static str,
    ) -> Self {
        Column {
            id,
            display,
            kind,
            sql,
            source: Source::Row,
            empty_equals_null: false,
            search: Search::None,
        }
    }

    pub const fn from(self, source: Source) -> Self {
        Column { source, ..self }
    }

    pub const fn empty_equals_null(self) -> Self {
        Column {
            empty_equals_null: true,
            ..self
        }
    }

    pub const fn searched(self, search: Search) -> Self {
        Column { search, ..self }
    }
}

impl fmt::Debug for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Column").field(&self.id).finish()
    }
}

/// A column Langfuse has that this server stores no data for.
#[derive(Debug, Clone, Copy)]
pub struct Unsupported {
    pub id: &'static str,
    pub display: &'static str,
    /// What is missing, for the error message.
    pub reason: &'static str,
}

impl Unsupported {
    pub const fn new(id: &'static str, display: &'static str, reason: &'static str) -> Self {
        Unsupported {
            id,
            display,
            reason,
        }
    }
}

/// Why the traces and sessions views cannot filter on Langfuse's score and comment columns.
const NO_SCORE_AGGREGATES: &str = "filters on score averages and categories are not implemented";
const NO_COMMENTS: &str = "comments are not stored";

/// What a column name means in a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Column(&'static Column),
    /// A column this server cannot filter on; the text says what is missing.
    Unsupported(&'static str),
}

/// A list the filter language addresses: its columns and the FROM clause they are read from.
pub struct View {
    pub name: &'static str,
    pub columns: &'static [&'static Column],
    /// Further names of columns: Langfuse's older ids and the names other tables use.
    pub aliases: &'static [(&'static str, &'static Column)],
    pub unsupported: &'static [Unsupported],
    /// What may narrow the view's own rows before the newest version of each is picked; `None`
    /// when they are no table's rows (sessions).
    pub narrowing: Option<Narrowing>,
    /// The FROM clause, its own rows restricted by `own_rows` (a clause starting with `AND`,
    /// empty unless the view has a narrowing), joining the relations listed besides its own row.
    from: fn(project: &ProjectId, own_rows: Sql, joins: &[Source]) -> Sql,
}

/// The table a view's own rows come from, and the columns ClickHouse can find rows by without
/// reading every row of the project: its sorting key and its skip indexes.
pub struct Narrowing {
    pub table: &'static str,
    /// The alias the view's columns read the table by.
    pub alias: &'static str,
    pub columns: &'static [&'static Column],
}

impl View {
    /// The column (or the unsupported column) with this id, display name or alias.
    pub fn find(&self, name: &str) -> Option<Target> {
        if let Some(column) = self
            .columns
            .iter()
            .find(|c| c.id == name || c.display == name)
        {
            return Some(Target::Column(column));
        }
        if let Some((_, column)) = self.aliases.iter().find(|(alias, _)| *alias == name) {
            return Some(Target::Column(column));
        }
        self.unsupported
            .iter()
            .find(|u| u.id == name || u.display == name)
            .map(|u| Target::Unsupported(u.reason))
    }

    /// The FROM clause the conditions are written against, binding the project id, with the
    /// relations they need joined.
    pub fn from_sql(&self, project: &ProjectId, conditions: &[Condition]) -> Sql {
        (self.from)(project, Sql::default(), &joins_for(conditions))
    }

    /// [`View::from_sql`] for conditions that must all hold (ANDed): the view's own rows are
    /// first narrowed to those with *some* version that meets the conditions on the narrowing
    /// columns, so ClickHouse reads only the granules its sorting key and skip indexes point
    /// at, instead of every row of the project. Whichever version meets them, the newest still
    /// has to: each condition is checked again on it, over this FROM clause.
    pub fn narrowed_from_sql(&self, project: &ProjectId, conditions: &[Condition]) -> Sql {
        self.narrowed_from_sql_joining(project, conditions, &[])
    }

    /// [`View::narrowed_from_sql`], also joining `extra` relations that no condition needs but
    /// the query reads (a list ordered by a figure of its observations).
    pub fn narrowed_from_sql_joining(
        &self,
        project: &ProjectId,
        conditions: &[Condition],
        extra: &[Source],
    ) -> Sql {
        let mut own_rows = Sql::default();
        if let Some(narrowing) = &self.narrowing {
            let narrowing_conditions: Vec<&Condition> = conditions
                .iter()
                .filter(|c| narrowing.columns.contains(&c.column()))
                .collect();
            if !narrowing_conditions.is_empty() {
                let (table, alias) = (narrowing.table, narrowing.alias);
                own_rows.text(&format!(
                    "AND id IN (SELECT {alias}.id FROM {table} AS {alias} WHERE {alias}.project_id = "
                ));
                own_rows.bind(Bound::Text(project.to_string()));
                for condition in narrowing_conditions {
                    own_rows.text(" AND ");
                    condition.compile(&mut own_rows);
                }
                own_rows.text(")");
            }
        }
        let mut joins = joins_for(conditions);
        for source in extra {
            if *source != Source::Row && !joins.contains(source) {
                joins.push(*source);
            }
        }
        (self.from)(project, own_rows, &joins)
    }
}

/// The relations besides the view's own row that the conditions read, each once.
fn joins_for(conditions: &[Condition]) -> Vec<Source> {
    let mut joins: Vec<Source> = Vec::new();
    for source in conditions.iter().map(|c| c.column().source) {
        if source != Source::Row && !joins.contains(&source) {
            joins.push(source);
        }
    }
    joins
}

/// Conditions from a list's query parameters and from its `filter`, as Langfuse combines them:
/// where the filter has a condition on a column, the parameters' conditions on that column are
/// dropped (the filter "takes precedence"); all the others hold together.
pub fn combine(filter: Vec<Condition>, parameters: Vec<Condition>) -> Vec<Condition> {
    let overridden: Vec<&'static Column> = filter.iter().map(Condition::column).collect();
    let mut conditions = filter;
    conditions.extend(
        parameters
            .into_iter()
            .filter(|c| !overridden.contains(&c.column())),
    );
    conditions
}

/// `(<the newest live version of each row of table>) AS alias`, with its bound project id; the
/// rows are restricted by `before` first (see [`latest_versions`]).
fn newest(project: &ProjectId, table: &str, columns: &str, alias: &str, before: Sql) -> Sql {
    let mut sql = Sql::new("(");
    sql.append(latest_versions(project, table, columns, before));
    sql.text(&format!(") AS {alias}"));
    sql
}

/// `<the newest rows of table> AS alias`, and when a condition reads the row's trace, the newest
/// version of that trace joined as `t` (its `trace_columns`), for the views whose rows name their
/// trace in `trace_id` (observations, scores).
fn rows_with_their_trace(
    project: &ProjectId,
    table: &str,
    alias: &str,
    own_rows: Sql,
    joins: &[Source],
    trace_columns: &str,
) -> Sql {
    let mut sql = newest(project, table, "*", alias, own_rows);
    if joins.contains(&Source::Trace) {
        sql.text(" LEFT JOIN ");
        sql.append(newest(
            project,
            "traces",
            trace_columns,
            "t",
            Sql::default(),
        ));
        sql.text(&format!(" ON t.id = {alias}.trace_id"));
    }
    sql
}

/// Appends ` WHERE` and every condition, ANDed (`WHERE 1 = 1` when there is none), each with its
/// values bound.
pub fn push_where_all(sql: &mut Sql, conditions: &[Condition]) {
    sql.text(" WHERE 1 = 1");
    for condition in conditions {
        sql.text(" AND ");
        condition.compile(sql);
    }
}

/// The observation columns [`OBSERVATION_FIGURES`] reads.
pub(super) const OBSERVATION_FIGURE_COLUMNS: &str =
    "trace_id, start_time, end_time, level, usage_details, cost_details";

/// Figures over a group of observations `o` (those of a trace, of a session), for the views'
/// `ObservationStats` relations: the seconds from the first start to the last end (an
/// observation without an end counts as ending when it starts, as the trace list's latency),
/// the number of observations at each level, and tokens and costs, each summed as the
/// observations view reads it for one observation.
pub(super) const OBSERVATION_FIGURES: &str = "\
    dateDiff('millisecond', min(o.start_time), max(coalesce(o.end_time, o.start_time))) / 1000 AS duration, \
    countIf(o.level = 'ERROR') AS error_count, \
    countIf(o.level = 'WARNING') AS warning_count, \
    countIf(o.level = 'DEFAULT') AS default_count, \
    countIf(o.level = 'DEBUG') AS debug_count, \
    sum(arraySum(mapValues(mapFilter((k, v) -> positionCaseInsensitive(k, 'input') > 0, o.usage_details)))) AS input_tokens, \
    sum(arraySum(mapValues(mapFilter((k, v) -> positionCaseInsensitive(k, 'output') > 0, o.usage_details)))) AS output_tokens, \
    sum(o.usage_details['total']) AS total_tokens, \
    sum(arraySum(mapValues(mapFilter((k, v) -> positionCaseInsensitive(k, 'input') > 0, o.cost_details)))) AS input_cost, \
    sum(arraySum(mapValues(mapFilter((k, v) -> positionCaseInsensitive(k, 'output') > 0, o.cost_details)))) AS output_cost, \
    sum(o.cost_details['total']) AS total_cost";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    Eq,
    Gt,
    Lt,
    Gte,
    Lte,
}

impl Compare {
    fn sql(self) -> &'static str {
        match self {
            Compare::Eq => "=",
            Compare::Gt => ">",
            Compare::Lt => "<",
            Compare::Gte => ">=",
            Compare::Lte => "<=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOp {
    Equals,
    Contains,
    NotContains,
    StartsWith,
    EndsWith,
    /// Literal search: the text occurs, and each of its tokens is a whole token of the value.
    Matches,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrayOp {
    AnyOf,
    NoneOf,
    AllOf,
}

/// One filter condition on one column; conditions are ANDed. The `Metadata*` conditions address
/// the value under one key of a map column.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Time {
        column: &'static Column,
        compare: Compare,
        at: DateTime<Utc>,
    },
    Text {
        column: &'static Column,
        op: TextOp,
        value: String,
    },
    Number {
        column: &'static Column,
        compare: Compare,
        value: f64,
    },
    /// `any of` (or, negated, `none of`) a list of values.
    OneOf {
        column: &'static Column,
        negated: bool,
        values: Vec<String>,
    },
    Array {
        column: &'static Column,
        op: ArrayOp,
        values: Vec<String>,
    },
    Flag {
        column: &'static Column,
        equals: bool,
        value: bool,
    },
    Null {
        column: &'static Column,
        is_null: bool,
    },
    MetadataText {
        column: &'static Column,
        key: String,
        op: TextOp,
        value: String,
    },
    MetadataNumber {
        column: &'static Column,
        key: String,
        compare: Compare,
        value: f64,
    },
    MetadataOneOf {
        column: &'static Column,
        key: String,
        negated: bool,
        values: Vec<String>,
    },
    MetadataFlag {
        column: &'static Column,
        key: String,
        equals: bool,
        value: bool,
    },
}

impl Condition {
    pub fn column(&self) -> &'static Column {
        match self {
            Condition::Time { column, .. }
            | Condition::Text { column, .. }
            | Condition::Number { column, .. }
            | Condition::OneOf { column, .. }
            | Condition::Array { column, .. }
            | Condition::Flag { column, .. }
            | Condition::Null { column, .. }
            | Condition::MetadataText { column, .. }
            | Condition::MetadataNumber { column, .. }
            | Condition::MetadataOneOf { column, .. }
            | Condition::MetadataFlag { column, .. } => column,
        }
    }

    /// Appends the condition as one parenthesised boolean expression over the view's aliases.
    pub fn compile(&self, sql: &mut Sql) {
        sql.text("(");
        match self {
            Condition::Time {
                column,
                compare,
                at,
            } => {
                sql.text(&format!(
                    "{} {} fromUnixTimestamp64Milli(toInt64(",
                    column.sql,
                    compare.sql()
                ));
                sql.bind(Bound::Int(at.timestamp_millis()));
                sql.text("))");
            }
            Condition::Text { column, op, value } => text_condition(sql, column, *op, value),
            Condition::Number {
                column,
                compare,
                value,
            } => {
                sql.text(&format!("toFloat64({}) {} ", column.sql, compare.sql()));
                sql.bind(Bound::Float(*value));
            }
            Condition::OneOf {
                column,
                negated,
                values,
            } => one_of(sql, column, *negated, values),
            Condition::Array { column, op, values } => {
                let expr = column.sql;
                match op {
                    ArrayOp::AnyOf => {
                        sql.text("hasAny(");
                        sql.bind(Bound::Texts(values.clone()));
                        sql.text(&format!(", {expr})"));
                    }
                    ArrayOp::NoneOf => {
                        sql.text("NOT hasAny(");
                        sql.bind(Bound::Texts(values.clone()));
                        sql.text(&format!(", {expr})"));
                    }
                    ArrayOp::AllOf => {
                        sql.text(&format!("hasAll({expr}, "));
                        sql.bind(Bound::Texts(values.clone()));
                        sql.text(")");
                    }
                }
            }
            Condition::Flag {
                column,
                equals,
                value,
            } => {
                let op = if *equals { "=" } else { "!=" };
                sql.text(&format!("{} {op} ", column.sql));
                sql.bind(Bound::Flag(*value));
            }
            Condition::Null { column, is_null } => {
                let expr = column.sql;
                let text = match (column.empty_equals_null, is_null) {
                    (true, true) => format!("{expr} = '' OR {expr} IS NULL"),
                    (true, false) => format!("{expr} != '' AND {expr} IS NOT NULL"),
                    (false, true) => format!("{expr} IS NULL"),
                    (false, false) => format!("{expr} IS NOT NULL"),
                };
                sql.text(&text);
            }
            Condition::MetadataText {
                column,
                key,
                op,
                value,
            } => metadata_text(sql, column.sql, key, *op, value),
            Condition::MetadataNumber {
                column,
                key,
                compare,
                value,
            } => {
                let map = column.sql;
                metadata_has(sql, map, key);
                sql.text(&format!(" AND toFloat64OrNull({map}["));
                sql.bind(Bound::Text(key.clone()));
                sql.text(&format!("]) {} ", compare.sql()));
                sql.bind(Bound::Float(*value));
            }
            Condition::MetadataOneOf {
                column,
                key,
                negated,
                values,
            } => {
                let map = column.sql;
                if *negated {
                    sql.text("NOT (");
                }
                metadata_has(sql, map, key);
                sql.text(&format!(" AND {map}["));
                sql.bind(Bound::Text(key.clone()));
                sql.text("] IN ");
                sql.bind(Bound::Texts(values.clone()));
                if *negated {
                    sql.text(")");
                }
            }
            Condition::MetadataFlag {
                column,
                key,
                equals,
                value,
            } => {
                // Metadata values are stored as text: a boolean is `true` or `false`.
                let map = column.sql;
                if !*equals {
                    sql.text("NOT (");
                }
                metadata_has(sql, map, key);
                sql.text(&format!(" AND lower({map}["));
                sql.bind(Bound::Text(key.clone()));
                sql.text("]) = ");
                sql.bind(Bound::Text(value.to_string()));
                if !*equals {
                    sql.text(")");
                }
            }
        }
        sql.text(")");
    }
}

fn text_condition(sql: &mut Sql, column: &Column, op: TextOp, value: &str) {
    let expr = column.sql;
    if column.empty_equals_null && value.is_empty() {
        match op {
            TextOp::Equals | TextOp::Contains | TextOp::StartsWith | TextOp::EndsWith => {
                sql.text(&format!("{expr} = '' OR {expr} IS NULL"));
                return;
            }
            TextOp::NotContains => sql.text(&format!("{expr} != '' AND ")),
            TextOp::Matches => {}
        }
    }
    let value = Bound::Text(value.to_string());
    match op {
        TextOp::Equals => {
            sql.text(&format!("{expr} = "));
            sql.bind(value);
        }
        TextOp::Contains | TextOp::NotContains => {
            sql.text(&format!("position({expr}, "));
            sql.bind(value);
            let rest = if op == TextOp::Contains {
                ") > 0"
            } else {
                ") = 0"
            };
            sql.text(rest);
        }
        TextOp::StartsWith | TextOp::EndsWith => {
            let function = if op == TextOp::StartsWith {
                "startsWith"
            } else {
                "endsWith"
            };
            sql.text(&format!("{function}({expr}, "));
            sql.bind(value);
            sql.text(")");
        }
        TextOp::Matches => {
            // Case-insensitive, as Langfuse's text index lower-cases input and output. At most
            // 64 distinct tokens of the searched text count, as Langfuse's index takes no more.
            sql.text(&format!("position(lower(ifNull({expr}, '')), lower("));
            sql.bind(value.clone());
            sql.text(&format!(
                ")) > 0 AND hasAll(tokens(lower(ifNull({expr}, ''))), arraySlice(arrayDistinct(tokens(lower("
            ));
            sql.bind(value);
            sql.text("))), 1, 64))");
        }
    }
}

fn metadata_has(sql: &mut Sql, map: &str, key: &str) {
    // A missing key reads as '' from the map, which must not count as a match.
    sql.text(&format!("mapContains({map}, "));
    sql.bind(Bound::Text(key.to_string()));
    sql.text(")");
}

fn metadata_text(sql: &mut Sql, map: &str, key: &str, op: TextOp, value: &str) {
    metadata_has(sql, map, key);
    sql.text(" AND ");
    let key = Bound::Text(key.to_string());
    let value_bound = Bound::Text(value.to_string());
    let accessor = |sql: &mut Sql| {
        sql.text(&format!("{map}["));
        sql.bind(key.clone());
        sql.text("]");
    };
    match op {
        TextOp::Equals => {
            accessor(sql);
            sql.text(" = ");
            sql.bind(value_bound);
        }
        TextOp::Contains | TextOp::NotContains => {
            sql.text("position(");
            accessor(sql);
            sql.text(", ");
            sql.bind(value_bound);
            sql.text(if op == TextOp::Contains {
                ") > 0"
            } else {
                ") = 0"
            });
        }
        TextOp::StartsWith | TextOp::EndsWith => {
            sql.text(if op == TextOp::StartsWith {
                "startsWith("
            } else {
                "endsWith("
            });
            accessor(sql);
            sql.text(", ");
            sql.bind(value_bound);
            sql.text(")");
        }
        TextOp::Matches => {
            // Case-sensitive; the tokens may come from any value of the map, as in Langfuse's
            // index over all values, and the text itself must occur in the key's value.
            sql.text(&format!(
                "hasAll(arrayFlatten(arrayMap(v -> tokens(v), mapValues({map}))), \
                 arraySlice(arrayDistinct(tokens("
            ));
            sql.bind(value_bound.clone());
            sql.text(")), 1, 64)) AND position(");
            accessor(sql);
            sql.text(", ");
            sql.bind(value_bound);
            sql.text(") > 0");
        }
    }
}

fn one_of(sql: &mut Sql, column: &Column, negated: bool, values: &[String]) {
    let expr = column.sql;
    let list = Bound::Texts(values.to_vec());
    if column.kind == Kind::List {
        // A list (of tags, say): any of / none of the given values is in it.
        sql.text(if negated { "NOT hasAny(" } else { "hasAny(" });
        sql.bind(list);
        sql.text(&format!(", {expr})"));
        return;
    }
    let has_empty = values.iter().any(String::is_empty);
    sql.text(&format!(
        "{expr} {} ",
        if negated { "NOT IN" } else { "IN" }
    ));
    sql.bind(list);
    if column.empty_equals_null {
        match (negated, has_empty) {
            (false, true) => sql.text(&format!(" OR {expr} IS NULL")),
            (true, true) => sql.text(&format!(" AND {expr} IS NOT NULL")),
            (true, false) => sql.text(&format!(" AND {expr} != ''")),
            (false, false) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::observations::*;
    use super::*;

    fn compiled(condition: Condition) -> Sql {
        let mut sql = Sql::default();
        condition.compile(&mut sql);
        sql
    }

    fn text(value: &str) -> Bound {
        Bound::Text(value.to_string())
    }

    #[test]
    fn values_are_placeholders_never_sql() {
        let sql = compiled(Condition::Text {
            column: &NAME,
            op: TextOp::Equals,
            value: "x' OR 1 = 1 --".into(),
        });
        assert_eq!(sql.text, "(o.name = ?)");
        assert_eq!(sql.binds, vec![text("x' OR 1 = 1 --")]);
        let sql = compiled(Condition::MetadataText {
            column: &METADATA,
            key: "k'".into(),
            op: TextOp::Contains,
            value: "v".into(),
        });
        assert_eq!(
            sql.text,
            "(mapContains(o.metadata, ?) AND position(o.metadata[?], ?) > 0)"
        );
        assert_eq!(sql.binds, vec![text("k'"), text("k'"), text("v")]);
    }

    #[test]
    fn text_operators() {
        for (op, expected) in [
            (TextOp::Contains, "(position(o.name, ?) > 0)"),
            (TextOp::NotContains, "(position(o.name, ?) = 0)"),
            (TextOp::StartsWith, "(startsWith(o.name, ?))"),
            (TextOp::EndsWith, "(endsWith(o.name, ?))"),
        ] {
            let sql = compiled(Condition::Text {
                column: &NAME,
                op,
                value: "a".into(),
            });
            assert_eq!(sql.text, expected);
        }
        let sql = compiled(Condition::Text {
            column: &OUTPUT,
            op: TextOp::Matches,
            value: "Needle".into(),
        });
        assert_eq!(
            sql.text,
            "(position(lower(ifNull(o.output, '')), lower(?)) > 0 AND hasAll(tokens(lower(ifNull(o.output, ''))), \
             arraySlice(arrayDistinct(tokens(lower(?))), 1, 64)))"
        );
        assert_eq!(sql.binds.len(), 2);
    }

    #[test]
    fn empty_means_null_where_langfuse_says_so() {
        let no_parent = compiled(Condition::Text {
            column: &PARENT_OBSERVATION_ID,
            op: TextOp::Equals,
            value: String::new(),
        });
        assert_eq!(
            no_parent.text,
            "(o.parent_observation_id = '' OR o.parent_observation_id IS NULL)"
        );
        assert!(no_parent.binds.is_empty());
        let named = compiled(Condition::Text {
            column: &NAME,
            op: TextOp::Equals,
            value: String::new(),
        });
        assert_eq!(named.text, "(o.name = ?)");
        let release = compiled(Condition::OneOf {
            column: &RELEASE,
            negated: true,
            values: vec!["1".into()],
        });
        assert_eq!(release.text, "(t.release NOT IN ? AND t.release != '')");
        let null = compiled(Condition::Null {
            column: &RELEASE,
            is_null: true,
        });
        assert_eq!(null.text, "(t.release = '' OR t.release IS NULL)");
    }

    #[test]
    fn tags_and_metadata_lists() {
        let any = compiled(Condition::OneOf {
            column: &TRACE_TAGS,
            negated: false,
            values: vec!["a".into()],
        });
        assert_eq!(any.text, "(hasAny(?, t.tags))");
        let all = compiled(Condition::Array {
            column: &TRACE_TAGS,
            op: ArrayOp::AllOf,
            values: vec!["a".into(), "b".into()],
        });
        assert_eq!(all.text, "(hasAll(t.tags, ?))");
        let none = compiled(Condition::MetadataOneOf {
            column: &METADATA,
            key: "k".into(),
            negated: true,
            values: vec!["v".into()],
        });
        assert_eq!(
            none.text,
            "(NOT (mapContains(o.metadata, ?) AND o.metadata[?] IN ?))"
        );
    }

    fn all_names(view: &View) -> Vec<&'static str> {
        let mut names = Vec::new();
        for column in view.columns {
            names.extend([column.id, column.display]);
        }
        names.extend(view.aliases.iter().map(|(alias, _)| *alias));
        for unsupported in view.unsupported {
            names.extend([unsupported.id, unsupported.display]);
        }
        names
    }

    #[test]
    fn every_name_of_a_view_is_its_own() {
        for view in VIEWS {
            let mut names = all_names(view);
            let count = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), count, "{}: a name is used twice", view.name);
        }
    }

    #[test]
    fn each_view_resolves_every_column_by_id_display_name_and_alias() {
        for view in VIEWS {
            for column in view.columns {
                for name in [column.id, column.display] {
                    assert_eq!(
                        view.find(name),
                        Some(Target::Column(column)),
                        "{}: {name}",
                        view.name
                    );
                }
            }
            for (alias, column) in view.aliases {
                assert!(view.columns.contains(column), "{}: {alias}", view.name);
                assert_eq!(view.find(alias), Some(Target::Column(column)));
            }
            for unsupported in view.unsupported {
                for name in [unsupported.id, unsupported.display] {
                    assert_eq!(
                        view.find(name),
                        Some(Target::Unsupported(unsupported.reason)),
                        "{}: {name}",
                        view.name
                    );
                }
            }
            assert_eq!(view.find("noSuchColumn"), None);
        }
    }

    #[test]
    fn the_views_have_langfuses_columns() {
        let ids = |view: &View| -> Vec<&str> { view.columns.iter().map(|c| c.id).collect() };
        let traces = ids(&TRACES);
        for id in [
            "id",
            "name",
            "timestamp",
            "userId",
            "sessionId",
            "environment",
            "release",
            "version",
            "tags",
            "metadata",
            "input",
            "output",
            "bookmarked",
            "public",
            "latency",
            "inputTokens",
            "outputTokens",
            "totalTokens",
            "inputCost",
            "outputCost",
            "totalCost",
            "level",
        ] {
            assert!(traces.contains(&id), "traces: {id}");
        }
        let sessions = ids(&SESSIONS);
        for id in [
            "id",
            "createdAt",
            "userIds",
            "environment",
            "tags",
            "countTraces",
            "sessionDuration",
            "inputCost",
            "outputCost",
            "totalCost",
            "inputTokens",
            "outputTokens",
            "totalTokens",
        ] {
            assert!(sessions.contains(&id), "sessions: {id}");
        }
        for name in [
            "name",
            "value",
            "source",
            "dataType",
            "timestamp",
            "comment",
            "traceName",
            "userId",
            "traceTags",
            "environment",
            "metadata",
        ] {
            assert!(
                matches!(SCORES.find(name), Some(Target::Column(_))),
                "scores: {name}"
            );
        }
        assert_eq!(OBSERVATIONS.columns.len(), 42);
    }

    #[test]
    fn column_sql_is_constant_text_without_placeholders() {
        for view in VIEWS {
            for column in view.columns {
                assert!(!column.sql.contains('?'), "{}.{}", view.name, column.id);
                assert_eq!(
                    column.search == Search::Values,
                    column.kind == Kind::Object,
                    "{}.{}: a map is searched by its values",
                    view.name,
                    column.id
                );
            }
        }
    }

    /// One filter of every type and operator the column takes, each with the values its SQL
    /// must bind, in order.
    fn samples(column: &Column) -> Vec<(serde_json::Value, Vec<Bound>)> {
        use serde_json::json;
        let name = column.id;
        let texts = |values: &[&str]| Bound::Texts(values.iter().map(|v| v.to_string()).collect());
        let mut out = Vec::new();
        if column.search != Search::FullText {
            for operator in ["is null", "is not null"] {
                out.push((
                    json!({"type": "null", "column": name, "operator": operator, "value": ""}),
                    vec![],
                ));
            }
        }
        match column.kind {
            Kind::Text | Kind::Options => {
                // Input and output take scans only beside a search (see the parse tests).
                let operators: &[&str] = if column.search == Search::FullText {
                    &["="]
                } else {
                    &[
                        "=",
                        "contains",
                        "does not contain",
                        "starts with",
                        "ends with",
                    ]
                };
                for operator in operators {
                    out.push((
                        json!({"type": "string", "column": name, "operator": operator, "value": "v"}),
                        vec![text("v")],
                    ));
                }
                if column.search == Search::FullText {
                    out.push((
                        json!({"type": "string", "column": name, "operator": "matches", "value": "a b"}),
                        vec![text("a b"), text("a b")],
                    ));
                } else {
                    for operator in ["any of", "none of"] {
                        out.push((
                            json!({"type": "stringOptions", "column": name, "operator": operator, "value": ["a", ""]}),
                            vec![texts(&["a", ""])],
                        ));
                    }
                }
            }
            Kind::List => {
                for operator in ["any of", "none of", "all of"] {
                    out.push((
                        json!({"type": "arrayOptions", "column": name, "operator": operator, "value": ["a", "b"]}),
                        vec![texts(&["a", "b"])],
                    ));
                }
                out.push((
                    json!({"type": "stringOptions", "column": name, "operator": "any of", "value": ["a"]}),
                    vec![texts(&["a"])],
                ));
            }
            Kind::Time => {
                for operator in [">", "<", ">=", "<="] {
                    out.push((
                        json!({"type": "datetime", "column": name, "operator": operator, "value": "2024-05-01T10:00:00Z"}),
                        vec![Bound::Int(1_714_557_600_000)],
                    ));
                }
            }
            Kind::Number => {
                for operator in ["=", ">", "<", ">=", "<="] {
                    out.push((
                        json!({"type": "number", "column": name, "operator": operator, "value": 1.5}),
                        vec![Bound::Float(1.5)],
                    ));
                }
            }
            Kind::Flag => {
                for operator in ["=", "<>"] {
                    out.push((
                        json!({"type": "boolean", "column": name, "operator": operator, "value": true}),
                        vec![Bound::Flag(true)],
                    ));
                }
            }
            Kind::Object => {
                let key = || text("k");
                for operator in [
                    "=",
                    "contains",
                    "does not contain",
                    "starts with",
                    "ends with",
                ] {
                    out.push((
                        json!({"type": "stringObject", "column": name, "key": "k", "operator": operator, "value": "v"}),
                        vec![key(), key(), text("v")],
                    ));
                }
                out.push((
                    json!({"type": "stringObject", "column": name, "key": "k", "operator": "matches", "value": "v"}),
                    vec![key(), text("v"), key(), text("v")],
                ));
                for operator in ["=", ">", "<", ">=", "<="] {
                    out.push((
                        json!({"type": "numberObject", "column": name, "key": "k", "operator": operator, "value": 2}),
                        vec![key(), key(), Bound::Float(2.0)],
                    ));
                }
                for operator in ["any of", "none of"] {
                    out.push((
                        json!({"type": "categoryOptions", "column": name, "key": "k", "operator": operator, "value": ["a"]}),
                        vec![key(), key(), texts(&["a"])],
                    ));
                }
                for operator in ["=", "<>"] {
                    out.push((
                        json!({"type": "booleanObject", "column": name, "key": "k", "operator": operator, "value": false}),
                        vec![key(), key(), text("false")],
                    ));
                }
            }
        }
        out
    }

    #[test]
    fn every_column_of_every_view_compiles_with_binds_in_placeholder_order() {
        for view in VIEWS {
            for column in view.columns {
                for (filter, expected) in samples(column) {
                    let what = format!("{}: {filter}", view.name);
                    let conditions = parse(view, &serde_json::json!([filter]).to_string())
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(conditions.len(), 1);
                    assert_eq!(conditions[0].column(), *column, "{what}");
                    let mut sql = view.from_sql(&ProjectId::authenticated("p"), &conditions);
                    sql.text(" WHERE ");
                    conditions[0].compile(&mut sql);
                    assert_eq!(sql.text.matches('?').count(), sql.binds.len(), "{what}");
                    let from_binds = sql.binds.len() - expected.len();
                    assert!(
                        sql.binds[..from_binds].iter().all(|b| *b == text("p")),
                        "{what}: the FROM clause binds the project id only"
                    );
                    assert_eq!(sql.binds[from_binds..], expected[..], "{what}");
                }
            }
        }
    }

    #[test]
    fn the_from_clause_joins_only_what_the_conditions_need() {
        for view in VIEWS {
            let plain = view.from_sql(&ProjectId::authenticated("p"), &[]);
            assert!(!plain.text.contains("JOIN"), "{}", view.name);
            assert_eq!(plain.binds, vec![text("p")], "{}", view.name);
            for column in view.columns {
                let condition = Condition::Null {
                    column,
                    is_null: true,
                };
                let joined = view.from_sql(
                    &ProjectId::authenticated("p"),
                    &[condition.clone(), condition],
                );
                let joins = joined.text.matches(" LEFT JOIN ").count();
                let expected = usize::from(column.source != Source::Row);
                assert_eq!(joins, expected, "{}.{}", view.name, column.id);
                assert_eq!(
                    joined.text.matches('?').count(),
                    joined.binds.len(),
                    "{}.{}",
                    view.name,
                    column.id
                );
            }
        }
        let observations = OBSERVATIONS.from_sql(
            &ProjectId::authenticated("p"),
            &[Condition::Null {
                column: &USER_ID,
                is_null: true,
            }],
        );
        assert!(observations
            .text
            .starts_with("(SELECT * FROM (SELECT * FROM observations WHERE project_id = ?"));
        assert!(observations.text.ends_with(") AS t ON t.id = o.trace_id"));
    }

    #[test]
    fn narrowing_restricts_the_own_rows_by_the_indexed_conditions_only() {
        let project = ProjectId::authenticated("p");
        let on_trace = Condition::Text {
            column: &TRACE_ID,
            op: TextOp::Equals,
            value: "t".into(),
        };
        let on_user = Condition::Text {
            column: &USER_ID,
            op: TextOp::Equals,
            value: "u".into(),
        };
        let on_name = Condition::Text {
            column: &NAME,
            op: TextOp::Equals,
            value: "n".into(),
        };
        let conditions = [on_name.clone(), on_trace, on_user];
        let sql = OBSERVATIONS.narrowed_from_sql(&project, &conditions);
        assert!(
            sql.text.starts_with(
                "(SELECT * FROM (SELECT * FROM observations WHERE project_id = ? \
                 AND id IN (SELECT o.id FROM observations AS o WHERE o.project_id = ? \
                 AND (o.trace_id = ?)) ORDER BY"
            ),
            "{}",
            sql.text
        );
        assert!(sql.text.contains(" LEFT JOIN "), "the user is the trace's");
        assert_eq!(sql.text.matches('?').count(), sql.binds.len());
        assert_eq!(sql.binds[..3], [text("p"), text("p"), text("t")]);
        // Nothing to narrow by: the plain FROM clause.
        assert_eq!(
            OBSERVATIONS.narrowed_from_sql(&project, &[on_name]),
            OBSERVATIONS.from_sql(&project, &[])
        );
        let since = Condition::Time {
            column: &traces::TIMESTAMP,
            compare: Compare::Gte,
            at: DateTime::from_timestamp_millis(1_000).unwrap(),
        };
        let sql = TRACES.narrowed_from_sql(&project, &[since]);
        assert!(sql.text.contains(
            "AND id IN (SELECT t.id FROM traces AS t WHERE t.project_id = ? \
             AND (t.timestamp >= fromUnixTimestamp64Milli(toInt64(?))))"
        ));
        assert_eq!(sql.binds, [text("p"), text("p"), Bound::Int(1_000)]);
        for view in [&SESSIONS, &SCORES] {
            assert!(view.narrowing.is_none(), "{}", view.name);
        }
    }

    #[test]
    fn the_filter_replaces_the_parameters_on_its_columns_only() {
        let name = |value: &str| Condition::Text {
            column: &NAME,
            op: TextOp::Equals,
            value: value.into(),
        };
        let level = Condition::OneOf {
            column: &LEVEL,
            negated: false,
            values: vec!["ERROR".into()],
        };
        assert_eq!(
            combine(
                vec![name("from filter")],
                vec![name("from parameter"), level.clone()]
            ),
            vec![name("from filter"), level.clone()]
        );
        assert_eq!(
            combine(Vec::new(), vec![name("a"), level.clone()]),
            vec![name("a"), level]
        );
    }

    #[test]
    fn conditions_read_the_map_and_the_list_of_their_own_view() {
        let sql = |condition: Condition| {
            let mut sql = Sql::default();
            condition.compile(&mut sql);
            sql.text
        };
        assert_eq!(
            sql(Condition::MetadataNumber {
                column: &traces::METADATA,
                key: "n".into(),
                compare: Compare::Gt,
                value: 1.0,
            }),
            "(mapContains(t.metadata, ?) AND toFloat64OrNull(t.metadata[?]) > ?)"
        );
        assert_eq!(
            sql(Condition::MetadataFlag {
                column: &scores::METADATA,
                key: "f".into(),
                equals: false,
                value: true,
            }),
            "(NOT (mapContains(s.metadata, ?) AND lower(s.metadata[?]) = ?))"
        );
        assert_eq!(
            sql(Condition::OneOf {
                column: &sessions::USER_IDS,
                negated: true,
                values: vec!["u".into()],
            }),
            "(NOT hasAny(?, s.user_ids))"
        );
        assert_eq!(
            sql(Condition::Null {
                column: &scores::OBSERVATION_ID,
                is_null: true,
            }),
            "(s.observation_id = '' OR s.observation_id IS NULL)"
        );
    }

    #[test]
    fn traces_take_the_input_and_output_rules_of_observations() {
        let parsed = |filter: serde_json::Value| parse(&TRACES, &filter.to_string());
        assert_eq!(
            parsed(serde_json::json!([
                {"type": "string", "column": "input", "operator": "starts with", "value": "x"}
            ]))
            .unwrap_err(),
            "Input/output filters require at least one `matches` or `=` operator."
        );
        let searched = parsed(serde_json::json!([
            {"type": "string", "column": "output", "operator": "matches", "value": "needle"}
        ]))
        .unwrap();
        assert_eq!(searched[0].column(), &traces::OUTPUT);
        assert_eq!(
            parsed(serde_json::json!([
                {"type": "string", "column": "name", "operator": "matches", "value": "x"}
            ]))
            .unwrap_err(),
            "`matches` is only supported for input, output, and metadata filters."
        );
        assert!(parsed(serde_json::json!([
            {"type": "numberObject", "column": "scores_avg", "key": "k", "operator": ">", "value": 1}
        ]))
        .unwrap_err()
        .contains("cannot be filtered on by this server"));
        // A column of another view is unknown here.
        assert_eq!(
            parsed(serde_json::json!([
                {"type": "string", "column": "startTime", "operator": "=", "value": "x"}
            ]))
            .unwrap_err(),
            "Column startTime does not match a UI / CH table mapping."
        );
    }
}
