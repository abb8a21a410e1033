//! Every query's SQL text is built here, with its bound values kept in placeholder order: values
//! are bound (the client escapes them), never spliced into the text, and [`Sql::query`] checks
//! that the placeholders and the values agree.
//!
//! Tenant tables are read through [`latest_versions`] and [`latest_matching`], which take the
//! [`ProjectId`] scope: there is no way to read one project's rows without one.

use crate::domain::project::ProjectId;

/// A value bound to a `?` placeholder; the client escapes it, nothing is spliced in by hand.
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    Text(String),
    Texts(Vec<String>),
    Float(f64),
    Floats(Vec<f64>),
    Int(i64),
    Flag(bool),
}

/// SQL text and its bound values, in placeholder order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sql {
    pub text: String,
    pub binds: Vec<Bound>,
}

impl Sql {
    /// SQL text without placeholders.
    pub fn new(text: &str) -> Sql {
        Sql {
            text: text.to_string(),
            binds: Vec::new(),
        }
    }

    pub fn text(&mut self, text: &str) {
        self.text.push_str(text);
    }

    pub fn bind(&mut self, value: Bound) {
        self.text.push('?');
        self.binds.push(value);
    }

    pub fn append(&mut self, other: Sql) {
        self.text.push_str(&other.text);
        self.binds.extend(other.binds);
    }

    /// The query, every value bound. The text must hold one `?` per value, and none elsewhere
    /// (a `?` in a string literal would take a value meant for a placeholder); `?fields`, which
    /// the client replaces with the columns of the row type, is no placeholder.
    pub fn query(&self, ch: &clickhouse::Client) -> clickhouse::query::Query {
        assert_eq!(
            self.placeholders(),
            self.binds.len(),
            "placeholders and bound values disagree in: {}",
            self.text
        );
        let mut query = ch.query(&self.text);
        for value in &self.binds {
            query = match value {
                Bound::Text(v) => query.bind(v.as_str()),
                Bound::Texts(v) => query.bind(v.as_slice()),
                Bound::Float(v) => query.bind(*v),
                Bound::Floats(v) => query.bind(v.as_slice()),
                Bound::Int(v) => query.bind(*v),
                Bound::Flag(v) => query.bind(*v),
            };
        }
        query
    }
}

impl Sql {
    fn placeholders(&self) -> usize {
        self.text.matches('?').count() - self.text.matches("?fields").count()
    }
}

/// The newest live version of each row of `table` in the project, restricted by `before`
/// before the newest version is picked: only for columns every version of a row agrees on
/// (`id`). Every read keeps the newest version of each id (`ORDER BY event_ts DESC LIMIT 1 BY
/// id`) before it looks at `is_deleted` or any mutable column: `FINAL` alone is not enough, as the
/// sorting key holds the date of the start time, so versions of one id written with different
/// times are different keys to ClickHouse.
pub fn latest_versions(project: &ProjectId, table: &str, columns: &str, before: Sql) -> Sql {
    let mut sql = Sql::new(&format!(
        "SELECT {columns} FROM (SELECT * FROM {table} WHERE project_id = "
    ));
    sql.bind(Bound::Text(project.to_string()));
    sql.text(" ");
    sql.append(before);
    sql.text(" ORDER BY event_ts DESC, updated_at DESC LIMIT 1 BY id) WHERE is_deleted = 0");
    sql
}

/// [`latest_versions`] reading only `columns` (a list that includes `id`) rather than every
/// column, for queries that aggregate many rows: the rows of `table` in the project, restricted by
/// `before` (on columns every version of a row agrees on, such as an `id IN (...)` narrowing),
/// reduced to the newest live version of each id, kept when that version meets `after`. Both
/// clauses start with `AND` or are empty.
pub fn latest_columns(
    project: &ProjectId,
    table: &str,
    columns: &str,
    before: Sql,
    after: Sql,
) -> Sql {
    let mut sql = Sql::new(&format!(
        "SELECT {columns} FROM (SELECT {columns}, is_deleted FROM {table} WHERE project_id = "
    ));
    sql.bind(Bound::Text(project.to_string()));
    sql.text(" ");
    sql.append(before);
    sql.text(" ORDER BY event_ts DESC, updated_at DESC LIMIT 1 BY id) WHERE is_deleted = 0 ");
    sql.append(after);
    sql
}

/// `SELECT <list> FROM <table> AS <alias> FINAL WHERE <alias>.project_id = ? AND <not deleted>`:
/// the live rows, to which the caller appends its conditions (` AND ...`). Only for tables where
/// `FINAL` keeps one live row per entity (observations and scores: the worker deletes a row's
/// copy under its old sorting key when it moves); traces need [`live_traces_final`]. ClickHouse applies
/// the conditions on columns outside the sorting key after `FINAL` merges the versions, so they
/// hold on each row's newest version.
pub fn live_final(project: &ProjectId, table: &str, alias: &str, list: &str) -> Sql {
    let mut sql = Sql::new(&format!(
        "SELECT {list} FROM {table} AS {alias} FINAL WHERE {alias}.project_id = "
    ));
    sql.bind(Bound::Text(project.to_string()));
    sql.text(&format!(" AND {alias}.is_deleted = 0"));
    sql
}

/// The live traces read as `alias` that meet `conditions` (` AND ...` over `alias`), each once:
/// through `FINAL`, the row built from the trace's own events (the worker follows one that moves
/// to another sorting key with a deleted copy under the old key); for a trace with no such row,
/// its newest wrapper row (written with version 0 by an observation of a trace not seen yet,
/// under the observation's start day, so a trace can have several, and one beside its own row).
pub fn live_traces_final(project: &ProjectId, alias: &str, list: &str, conditions: Sql) -> Sql {
    const WRAPPER: &str = "toDateTime64(0, 3)";
    let mut sql = Sql::new(&format!(
        "SELECT {list} FROM (SELECT {list} FROM traces AS {alias} FINAL WHERE {alias}.project_id = "
    ));
    sql.bind(Bound::Text(project.to_string()));
    sql.text(&format!(
        " AND {alias}.is_deleted = 0 AND {alias}.event_ts > {WRAPPER} "
    ));
    sql.append(conditions.clone());
    sql.text(&format!(
        " UNION ALL SELECT {list} FROM (SELECT {list}, is_deleted FROM traces WHERE project_id = "
    ));
    sql.bind(Bound::Text(project.to_string()));
    sql.text(&format!(
        " AND event_ts = {WRAPPER} AND id NOT IN (SELECT id FROM traces WHERE project_id = "
    ));
    sql.bind(Bound::Text(project.to_string()));
    sql.text(&format!(
        " AND event_ts > {WRAPPER} AND id IN (SELECT id FROM traces WHERE project_id = "
    ));
    sql.bind(Bound::Text(project.to_string()));
    sql.text(&format!(
        " AND event_ts = {WRAPPER})) ORDER BY updated_at DESC LIMIT 1 BY id) AS {alias} \
         WHERE {alias}.is_deleted = 0 "
    ));
    sql.append(conditions);
    sql.text(")");
    sql
}

/// The newest live version of each row of `table` in the project, kept when that version matches
/// `clause`. Any column may change between the versions of a row (an event that arrives late can
/// even move the start time or the trace of an observation), so the clause is checked on the
/// newest version; it first narrows the rows to those with *some* matching version, which is what
/// lets ClickHouse use its indexes. `clause` starts with `AND`.
pub fn latest_matching(project: &ProjectId, table: &str, columns: &str, clause: &Sql) -> Sql {
    let mut sql = Sql::new(&format!(
        "SELECT {columns} FROM (SELECT * FROM {table} WHERE project_id = "
    ));
    sql.bind(Bound::Text(project.to_string()));
    sql.text(" AND id IN (SELECT id FROM ");
    sql.text(table);
    sql.text(" WHERE project_id = ");
    sql.bind(Bound::Text(project.to_string()));
    sql.text(" ");
    sql.append(clause.clone());
    sql.text(") ORDER BY event_ts DESC, updated_at DESC LIMIT 1 BY id) WHERE is_deleted = 0 ");
    sql.append(clause.clone());
    sql
}

/// One page of `base` in `order_by` order (constant SQL), and how many rows `base` has in all.
pub async fn page_of<T>(
    ch: &clickhouse::Client,
    base: Sql,
    order_by: &str,
    page: u64,
    limit: u64,
) -> anyhow::Result<(Vec<T>, u64)>
where
    T: clickhouse::Row + for<'b> serde::Deserialize<'b>,
{
    let mut count = Sql::new("SELECT count() FROM (");
    count.append(base.clone());
    count.text(")");
    let mut rows = base;
    rows.text(&format!(" ORDER BY {order_by} LIMIT "));
    rows.bind(Bound::Int(limit as i64));
    rows.text(" OFFSET ");
    rows.bind(Bound::Int((page.saturating_sub(1) * limit) as i64));
    let (total, rows) = futures::try_join!(
        count.query(ch).fetch_one::<u64>(),
        rows.query(ch).fetch_all::<T>(),
    )?;
    Ok((rows, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> ProjectId {
        ProjectId::authenticated("p")
    }

    #[test]
    fn every_tenant_read_is_scoped_and_bound_in_order() {
        let mut before = Sql::new("AND id = ");
        before.bind(Bound::Text("t".into()));
        let sql = latest_versions(&project(), "traces", "id", before);
        assert_eq!(
            sql.text,
            "SELECT id FROM (SELECT * FROM traces WHERE project_id = ? AND id = ? \
             ORDER BY event_ts DESC, updated_at DESC LIMIT 1 BY id) WHERE is_deleted = 0"
        );
        assert_eq!(
            sql.binds,
            vec![Bound::Text("p".into()), Bound::Text("t".into())]
        );

        let mut clause = Sql::new("AND trace_id = ");
        clause.bind(Bound::Text("t".into()));
        let sql = latest_matching(&project(), "scores", "id", &clause);
        assert_eq!(sql.text.matches('?').count(), sql.binds.len());
        assert_eq!(
            sql.binds,
            vec![
                Bound::Text("p".into()),
                Bound::Text("p".into()),
                Bound::Text("t".into()),
                Bound::Text("t".into()),
            ]
        );
        assert!(sql.text.ends_with("WHERE is_deleted = 0 AND trace_id = ?"));
    }

    #[test]
    #[should_panic(expected = "placeholders and bound values disagree")]
    fn a_query_whose_values_do_not_match_its_placeholders_is_refused() {
        let mut sql = Sql::new("SELECT 1 WHERE a = ");
        sql.bind(Bound::Int(1));
        sql.text(" AND b = ?");
        let _ = sql.query(&clickhouse::Client::default());
    }
}
