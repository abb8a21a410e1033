//! Users: not a table but a view over `traces`, the traces that share a `user_id`, with the
//! figures of their observations.
//!
//! The list pages the users themselves (one aggregation of the newest version of each trace);
//! tokens and cost, which need the observations, are read afterwards for the users of the page
//! only.

use chrono::{DateTime, Utc};
use clickhouse::serde::chrono::datetime64::millis;
use serde::Deserialize;

use super::filter::{traces as columns, OBSERVATION_FIGURES, OBSERVATION_FIGURE_COLUMNS};
use super::sql::{latest_matching, latest_versions, Bound, Sql};
use crate::domain::project::ProjectId;

/// A user as the list shows them.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct UserRow {
    pub user_id: String,
    pub traces: u64,
    #[serde(with = "millis")]
    pub first_seen: DateTime<Utc>,
    #[serde(with = "millis")]
    pub last_seen: DateTime<Utc>,
}

/// What a user's traces' observations add up to.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, clickhouse::Row)]
pub struct UserFigures {
    pub user_id: String,
    pub total_tokens: u64,
    pub total_cost: f64,
}

/// What the user list can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserSort {
    LastSeen,
    FirstSeen,
    Traces,
    UserId,
}

impl UserSort {
    fn sql(self) -> &'static str {
        match self {
            UserSort::LastSeen => "last_seen",
            UserSort::FirstSeen => "first_seen",
            UserSort::Traces => "traces",
            UserSort::UserId => "user_id",
        }
    }
}

fn users_sql(project: &ProjectId) -> Sql {
    let mut sql = Sql::new(
        "SELECT assumeNotNull(user_id) AS user_id, count() AS traces, \
         min(timestamp) AS first_seen, max(timestamp) AS last_seen FROM (",
    );
    sql.append(latest_versions(
        project,
        "traces",
        "user_id, timestamp",
        Sql::default(),
    ));
    sql.text(") WHERE user_id IS NOT NULL AND user_id != ''");
    sql
}

fn list_sql(
    project: &ProjectId,
    search: Option<&str>,
    sort: UserSort,
    descending: bool,
    offset: u64,
    fetch: u64,
) -> Sql {
    let mut sql = users_sql(project);
    if let Some(search) = search {
        sql.text(" AND positionCaseInsensitiveUTF8(user_id, ");
        sql.bind(Bound::Text(search.to_string()));
        sql.text(") > 0");
    }
    let direction = if descending { "DESC" } else { "ASC" };
    sql.text(&format!(
        " GROUP BY user_id ORDER BY {} {direction}, user_id {direction} LIMIT ",
        sort.sql()
    ));
    sql.bind(Bound::Int(fetch as i64));
    sql.text(" OFFSET ");
    sql.bind(Bound::Int(offset as i64));
    sql
}

/// Up to `limit` users from `offset` in the order, and whether more follow.
pub async fn list(
    ch: &clickhouse::Client,
    project: &ProjectId,
    search: Option<&str>,
    sort: UserSort,
    descending: bool,
    offset: u64,
    limit: u64,
) -> anyhow::Result<(Vec<UserRow>, bool)> {
    let mut rows: Vec<UserRow> = list_sql(project, search, sort, descending, offset, limit + 1)
        .query(ch)
        .fetch_all()
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, more))
}

/// One user, or `None` when no trace names them.
pub async fn get(
    ch: &clickhouse::Client,
    project: &ProjectId,
    user_id: &str,
) -> anyhow::Result<Option<UserRow>> {
    let mut sql = users_sql(project);
    sql.text(" AND user_id = ");
    sql.bind(Bound::Text(user_id.to_string()));
    sql.text(" GROUP BY user_id");
    Ok(sql.query(ch).fetch_optional().await?)
}

fn figures_sql(project: &ProjectId, user_ids: &[String]) -> Sql {
    let mut of_users = Sql::new("AND user_id IN ");
    of_users.bind(Bound::Texts(user_ids.to_vec()));
    // Observations are found by their trace: those of any version of the users' traces.
    let mut of_traces = Sql::new("AND trace_id IN (SELECT id FROM traces WHERE project_id = ");
    of_traces.bind(Bound::Text(project.to_string()));
    of_traces.text(" AND user_id IN ");
    of_traces.bind(Bound::Texts(user_ids.to_vec()));
    of_traces.text(")");
    let mut sql = Sql::new(&format!(
        "SELECT assumeNotNull(t.user_id) AS user_id, toUInt64(sum({})) AS total_tokens, \
         toFloat64(sum({})) AS total_cost FROM (",
        columns::TOTAL_TOKENS.sql,
        columns::TOTAL_COST.sql,
    ));
    sql.append(latest_matching(project, "traces", "id, user_id", &of_users));
    sql.text(&format!(
        ") AS t INNER JOIN (SELECT o.trace_id AS trace_id, {OBSERVATION_FIGURES} FROM ("
    ));
    sql.append(latest_matching(
        project,
        "observations",
        OBSERVATION_FIGURE_COLUMNS,
        &of_traces,
    ));
    sql.text(") AS o GROUP BY o.trace_id) AS os ON os.trace_id = t.id GROUP BY t.user_id");
    sql
}

/// Tokens and cost of the given users' traces (a user whose traces have no observations is
/// left out).
pub async fn figures(
    ch: &clickhouse::Client,
    project: &ProjectId,
    user_ids: &[String],
) -> anyhow::Result<Vec<UserFigures>> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(figures_sql(project, user_ids).query(ch).fetch_all().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_and_the_figures_bind_every_value() {
        let project = ProjectId::authenticated("p");
        let sql = list_sql(&project, Some("a'b"), UserSort::Traces, true, 50, 51);
        assert_eq!(sql.text.matches('?').count(), sql.binds.len());
        assert!(sql.text.contains("ORDER BY traces DESC, user_id DESC"));
        assert!(!sql.text.contains("a'b"));
        let sql = figures_sql(&project, &["u1".into()]);
        assert_eq!(sql.text.matches('?').count(), sql.binds.len());
        assert!(sql.binds.iter().all(|b| *b != Bound::Text(String::new())));
    }
}
