//! The web UI's sessions table: the sessions of a project (the traces that share a
//! `session_id`, a view over `traces`), most recently active first, paged by cursor, each with
//! its first and last trace time, its number of traces, its users and its traces' ids (whose
//! figures `trace_table::figures` adds up).
//!
//! The cursor is a session's position in the order: its last trace time (milliseconds) and its
//! id. A page before a position is read in the reverse order and turned round.

use chrono::{DateTime, Utc};
use clickhouse::serde::chrono::datetime64::millis;
use serde::Deserialize;

use super::sql::{latest_versions, Bound, Sql};
use crate::domain::project::ProjectId;

/// One session of the table.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct SessionRow {
    pub session_id: String,
    #[serde(with = "millis")]
    pub first_trace: DateTime<Utc>,
    #[serde(with = "millis")]
    pub last_trace: DateTime<Utc>,
    pub traces: u64,
    /// Its users, sorted (at most [`USERS_SHOWN`]).
    pub user_ids: Vec<String>,
    pub trace_ids: Vec<String>,
}

/// How many of a session's users a row names.
pub const USERS_SHOWN: usize = 5;

/// Where a page starts.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionsAt {
    First,
    /// Past this position (last trace time in milliseconds, session id).
    After(i64, String),
    /// Before it.
    Before(i64, String),
}

fn page_sql(project: &ProjectId, from: Option<DateTime<Utc>>, at: &SessionsAt, fetch: u64) -> Sql {
    let mut before = Sql::default();
    if let Some(from) = from {
        // A session active in the range has a trace in it.
        before.text("AND timestamp >= fromUnixTimestamp64Milli(");
        before.bind(Bound::Int(from.timestamp_millis()));
        before.text(")");
    }
    let mut sql = Sql::new(&format!(
        "SELECT assumeNotNull(session_id) AS session_id, min(timestamp) AS first_trace, \
         max(timestamp) AS last_trace, count() AS traces, \
         arraySort(groupUniqArray({USERS_SHOWN})(assumeNotNull(user_id))) AS user_ids, \
         groupArray(id) AS trace_ids FROM ("
    ));
    // Sessions active in the range: the traces read are those of these sessions (every version
    // of each, so the newest is known), not every trace of the project.
    let mut active_sessions = Sql::default();
    if from.is_some() {
        active_sessions.text("session_id IN (SELECT session_id FROM traces WHERE project_id = ");
        active_sessions.bind(Bound::Text(project.to_string()));
        active_sessions.text(" ");
        active_sessions.append(before);
        active_sessions.text(")");
    }
    let mut of_active_sessions = Sql::default();
    if from.is_some() {
        of_active_sessions.text("AND id IN (SELECT id FROM traces WHERE project_id = ");
        of_active_sessions.bind(Bound::Text(project.to_string()));
        of_active_sessions.text(" AND ");
        of_active_sessions.append(active_sessions.clone());
        of_active_sessions.text(")");
    }
    sql.append(latest_versions(
        project,
        "traces",
        "id, session_id, user_id, timestamp",
        of_active_sessions,
    ));
    sql.text(") WHERE session_id IS NOT NULL AND session_id != ''");
    if from.is_some() {
        sql.text(" AND ");
        sql.append(active_sessions);
    }
    sql.text(" GROUP BY session_id");
    let (position, op, direction) = match at {
        SessionsAt::First => (None, "", "DESC"),
        SessionsAt::After(ms, id) => (Some((ms, id)), "<", "DESC"),
        SessionsAt::Before(ms, id) => (Some((ms, id)), ">", "ASC"),
    };
    if let Some((ms, id)) = position {
        sql.text(&format!(
            " HAVING (last_trace, session_id) {op} (fromUnixTimestamp64Milli(toInt64("
        ));
        sql.bind(Bound::Int(*ms));
        sql.text(")), ");
        sql.bind(Bound::Text(id.clone()));
        sql.text(")");
    }
    sql.text(&format!(
        " ORDER BY last_trace {direction}, session_id {direction} LIMIT "
    ));
    sql.bind(Bound::Int(fetch as i64));
    sql
}

/// A page of `limit` sessions at `at`, most recently active first, active since `from`; and
/// whether there are sessions before and after it.
pub async fn page(
    ch: &clickhouse::Client,
    project: &ProjectId,
    from: Option<DateTime<Utc>>,
    at: &SessionsAt,
    limit: u64,
) -> anyhow::Result<(Vec<SessionRow>, bool, bool)> {
    let mut rows: Vec<SessionRow> = page_sql(project, from, at, limit + 1)
        .query(ch)
        .fetch_all()
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    Ok(match at {
        SessionsAt::First => (rows, false, more),
        SessionsAt::After(..) => (rows, true, more),
        SessionsAt::Before(..) => {
            rows.reverse();
            (rows, more, true)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_scoped_bound_and_read_past_their_position() {
        let project = ProjectId::authenticated("p");
        let from = DateTime::from_timestamp_millis(1_000);
        for at in [
            SessionsAt::First,
            SessionsAt::After(5, "s'1".into()),
            SessionsAt::Before(5, "s".into()),
        ] {
            let sql = page_sql(&project, from, &at, 51);
            assert_eq!(sql.text.matches('?').count(), sql.binds.len(), "{at:?}");
            assert!(!sql.text.contains("s'1"));
            assert!(
                sql.text.contains(
                    "WHERE project_id = ? AND id IN (SELECT id FROM traces WHERE project_id = ? \
                     AND session_id IN (SELECT session_id FROM traces WHERE project_id = ? AND \
                     timestamp >= "
                ),
                "a range reads the traces of the sessions active in it: {}",
                sql.text
            );
        }
        let sql = page_sql(&project, None, &SessionsAt::Before(5, "s".into()), 51);
        assert!(sql.text.contains("HAVING (last_trace, session_id) > ("));
        assert!(sql
            .text
            .ends_with("ORDER BY last_trace ASC, session_id ASC LIMIT ?"));
    }
}
