//! A project's sessions, `/project/{projectId}/sessions`: the traces that share a session id,
//! most recently active first, with their first and last trace time, their number of traces,
//! users, and their traces' summed latency, tokens and cost; a time range (`range`, as the traces
//! table's) and cursor pages (`after`/`before`: `<last trace ms>~<session id>`).
//!
//! `/project/{projectId}/sessions/{sessionId}` reads as the conversation the session held: its
//! traces in time order, each one's input and output rendered as the trace page renders them
//! (`render`), with a link to the trace.
//!
//! Session ids are written by the applications' users: escaped in the page, percent-encoded in
//! every URL.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::Utc;

use crate::http::auth::ProjectMember;
use crate::storage::clickhouse::session_table::{self, SessionsAt};
use crate::storage::clickhouse::trace_table::{self, Figures};
use crate::storage::clickhouse::traces;
use crate::storage::Stores;

use super::error::{html, UiError};
use super::path_segment;
use super::render;
use super::shell::{Shell, ShownTime};
use super::traces::{format_cost, format_latency, Choice, RANGES};

const PAGE_SIZE: u64 = 50;
const DEFAULT_RANGE: &str = "7d";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/project/{projectId}/sessions",
        web::get().to(sessions_page),
    )
    .route(
        "/project/{projectId}/sessions/{sessionId}",
        web::get().to(session_page),
    );
}

/// The table's query: `range`, and a cursor `after` or `before`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionsQuery {
    pub range: String,
    pub after: String,
    pub before: String,
}

impl SessionsQuery {
    pub fn parse(query: &str) -> SessionsQuery {
        let mut q = SessionsQuery::default();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let value = value.trim().to_string();
            match key.as_ref() {
                "range" => q.range = value,
                "after" => q.after = value,
                "before" => q.before = value,
                _ => {}
            }
        }
        q
    }

    fn range(&self) -> &str {
        if self.range.is_empty() {
            DEFAULT_RANGE
        } else {
            &self.range
        }
    }

    pub fn at(&self) -> Result<SessionsAt, UiError> {
        let position = |text: &str| {
            text.split_once('~')
                .and_then(|(ms, id)| Some((ms.parse::<i64>().ok()?, id.to_string())))
                .ok_or_else(|| {
                    UiError::BadRequest(
                        "This page link is broken: its cursor cannot be read.".into(),
                    )
                })
        };
        match (self.after.as_str(), self.before.as_str()) {
            ("", "") => Ok(SessionsAt::First),
            (after, "") => position(after).map(|(ms, id)| SessionsAt::After(ms, id)),
            ("", before) => position(before).map(|(ms, id)| SessionsAt::Before(ms, id)),
            _ => Err(UiError::BadRequest(
                "A page is after a row or before one, not both.".into(),
            )),
        }
    }

    pub fn href(&self, path: &str) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("range", &self.range),
            ("after", &self.after),
            ("before", &self.before),
        ] {
            if !value.is_empty() {
                out.append_pair(key, value);
            }
        }
        let query = out.finish();
        if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        }
    }
}

pub struct SessionRowView {
    pub session_id: String,
    pub href: String,
    pub first_trace: ShownTime,
    pub last_trace: ShownTime,
    pub traces: u64,
    pub users: Vec<(String, String)>,
    pub more_users: bool,
    pub latency: String,
    pub tokens: String,
    pub cost: String,
}

#[derive(Template)]
#[template(path = "sessions.html")]
pub struct SessionsPage {
    pub shell: Shell,
    pub project_id: String,
    pub ranges: Vec<Choice>,
    pub rows: Vec<SessionRowView>,
    pub previous_href: Option<String>,
    pub next_href: Option<String>,
    pub empty_message: String,
    pub css_url: &'static str,
}

/// Latency, tokens and cost added up over the given traces' figures.
fn summed(figures: &[Figures], trace_ids: &[String]) -> (f64, u64, f64) {
    figures
        .iter()
        .filter(|f| trace_ids.contains(&f.trace_id))
        .fold((0.0, 0, 0.0), |(l, t, c), f| {
            (l + f.latency_secs, t + f.total_tokens, c + f.total_cost)
        })
}

async fn sessions_page(
    req: HttpRequest,
    stores: web::Data<Stores>,
    member: ProjectMember,
) -> Result<HttpResponse, UiError> {
    let query = SessionsQuery::parse(req.query_string());
    let (_, _, secs) = RANGES
        .iter()
        .find(|(id, _, _)| *id == query.range())
        .ok_or_else(|| UiError::BadRequest(format!("{:?} is no time range.", query.range)))?;
    let from = (*secs > 0).then(|| Utc::now() - chrono::Duration::seconds(*secs));
    let ch = &stores.clickhouse;
    let (rows, more_before, more_after) =
        session_table::page(ch, &member.project_id, from, &query.at()?, PAGE_SIZE).await?;
    let trace_ids: Vec<String> = rows.iter().flat_map(|r| r.trace_ids.clone()).collect();
    let times =
        trace_table::PageTimes::of(rows.iter().flat_map(|r| [&r.first_trace, &r.last_trace]));
    let figures = trace_table::figures(ch, &member.project_id, &trace_ids, times).await?;
    let project = path_segment(member.project_id.as_str());
    let path = format!("/project/{project}/sessions");
    let cursor = |row: &session_table::SessionRow| {
        format!("{}~{}", row.last_trace.timestamp_millis(), row.session_id)
    };
    let previous_href = rows.first().filter(|_| more_before).map(|row| {
        SessionsQuery {
            after: String::new(),
            before: cursor(row),
            ..query.clone()
        }
        .href(&path)
    });
    let next_href = rows.last().filter(|_| more_after).map(|row| {
        SessionsQuery {
            after: cursor(row),
            before: String::new(),
            ..query.clone()
        }
        .href(&path)
    });
    let rows = rows
        .into_iter()
        .map(|row| {
            let (latency, tokens, cost) = summed(&figures, &row.trace_ids);
            let users: Vec<(String, String)> = row
                .user_ids
                .iter()
                .filter(|u| !u.is_empty())
                .map(|u| {
                    (
                        u.clone(),
                        format!("/project/{project}/users/{}", path_segment(u)),
                    )
                })
                .collect();
            SessionRowView {
                href: format!("{path}/{}", path_segment(&row.session_id)),
                first_trace: ShownTime::new(row.first_trace),
                last_trace: ShownTime::new(row.last_trace),
                traces: row.traces,
                more_users: users.len() >= session_table::USERS_SHOWN,
                users,
                latency: format_latency(latency),
                tokens: tokens.to_string(),
                cost: format_cost(cost),
                session_id: row.session_id,
            }
        })
        .collect();
    let page = SessionsPage {
        shell: Shell::of_project(
            &stores,
            &member,
            format!("Sessions · {}", member.project_name),
            "sessions",
        )
        .await?,
        project_id: member.project_id.as_str().to_string(),
        ranges: RANGES
            .iter()
            .map(|(id, label, _)| Choice {
                value: id.to_string(),
                label: label.to_string(),
                selected: *id == query.range(),
            })
            .collect(),
        rows,
        previous_href,
        next_href,
        empty_message: if query.at()? == SessionsAt::First {
            "No sessions in this time range. Set sessionId on traces to group them into sessions."
                .into()
        } else {
            "No more sessions.".into()
        },
        css_url: super::assets::trace_css_url(),
    };
    html(&page)
}

/// One trace of a session page.
pub struct SessionTraceView {
    pub id: String,
    pub href: String,
    pub name: String,
    pub time: ShownTime,
    pub user_id: String,
    pub latency: String,
    pub cost: String,
    pub level: String,
    /// Safe HTML from [`render`].
    pub input_html: String,
    pub output_html: String,
}

#[derive(Template)]
#[template(path = "session.html")]
pub struct SessionPage {
    pub shell: Shell,
    pub project_id: String,
    pub session_id: String,
    pub first_trace: ShownTime,
    pub last_trace: ShownTime,
    pub trace_count: usize,
    pub users: Vec<(String, String)>,
    pub latency: String,
    pub tokens: String,
    pub cost: String,
    pub traces: Vec<SessionTraceView>,
    pub css_url: &'static str,
}

async fn session_page(
    path: web::Path<(String, String)>,
    stores: web::Data<Stores>,
    member: ProjectMember,
) -> Result<HttpResponse, UiError> {
    let (_, session_id) = path.into_inner();
    let ch = &stores.clickhouse;
    let trace_rows = traces::of_session(ch, &member.project_id, &session_id).await?;
    let (Some(first), Some(last)) = (trace_rows.first(), trace_rows.last()) else {
        return Err(UiError::NotFound);
    };
    let (first_trace, last_trace) = (
        ShownTime::new(first.timestamp),
        ShownTime::new(last.timestamp),
    );
    let ids: Vec<String> = trace_rows.iter().map(|t| t.id.clone()).collect();
    let times = trace_table::PageTimes {
        oldest: first.timestamp,
        newest: last.timestamp,
    };
    let figures = trace_table::figures(ch, &member.project_id, &ids, Some(times)).await?;
    let (latency, tokens, cost) = summed(&figures, &ids);
    let project = path_segment(member.project_id.as_str());
    let mut users: Vec<String> = trace_rows
        .iter()
        .filter_map(|t| t.user_id.clone())
        .filter(|u| !u.is_empty())
        .collect();
    users.sort();
    users.dedup();
    let traces = trace_rows
        .iter()
        .map(|t| {
            let href = format!("/project/{project}/traces/{}", path_segment(&t.id));
            let full = format!("{href}?full=1");
            let figure = figures.iter().find(|f| f.trace_id == t.id);
            let value = |stored: &Option<String>| match stored.as_deref() {
                Some(s) if !s.is_empty() && s != "null" => render::stored_value(s, Some(&full)),
                _ => String::new(),
            };
            SessionTraceView {
                name: t.name.clone(),
                time: ShownTime::new(t.timestamp),
                user_id: t.user_id.clone().unwrap_or_default(),
                latency: figure
                    .map(|f| format_latency(f.latency_secs))
                    .unwrap_or_default(),
                cost: figure
                    .map(|f| format_cost(f.total_cost))
                    .unwrap_or_default(),
                level: figure.map(|f| f.level.clone()).unwrap_or_default(),
                input_html: value(&t.input),
                output_html: value(&t.output),
                id: t.id.clone(),
                href,
            }
        })
        .collect();
    let page = SessionPage {
        shell: Shell::of_project(
            &stores,
            &member,
            format!("Session {session_id} · {}", member.project_name),
            "sessions",
        )
        .await?,
        project_id: member.project_id.as_str().to_string(),
        first_trace,
        last_trace,
        trace_count: trace_rows.len(),
        users: users
            .into_iter()
            .map(|u| {
                let href = format!("/project/{project}/users/{}", path_segment(&u));
                (u, href)
            })
            .collect(),
        latency: format_latency(latency),
        tokens: tokens.to_string(),
        cost: format_cost(cost),
        traces,
        css_url: super::assets::trace_css_url(),
        session_id,
    };
    html(&page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_reads_its_cursor_and_links_back() {
        let q = SessionsQuery::parse("range=all&after=1714557600000~s%2F1");
        assert_eq!(
            q.at().unwrap(),
            SessionsAt::After(1_714_557_600_000, "s/1".into())
        );
        assert_eq!(
            q.href("/project/p/sessions"),
            "/project/p/sessions?range=all&after=1714557600000%7Es%2F1"
        );
        assert!(SessionsQuery::parse("after=x").at().is_err());
        assert!(SessionsQuery::parse("after=1~a&before=1~b").at().is_err());
    }

    #[test]
    fn a_session_page_escapes_ids_and_shows_the_rendered_conversation() {
        let at = chrono::DateTime::from_timestamp(1_714_557_600, 0).unwrap();
        let page = SessionPage {
            shell: Shell::anonymous("Session"),
            project_id: "p".into(),
            session_id: "<script>x</script>".into(),
            first_trace: ShownTime::new(at),
            last_trace: ShownTime::new(at),
            trace_count: 1,
            users: vec![],
            latency: "1.00s".into(),
            tokens: "3".into(),
            cost: "$0.01".into(),
            traces: vec![SessionTraceView {
                id: "t".into(),
                href: "/project/p/traces/t".into(),
                name: "<img src=x onerror=alert(1)>".into(),
                time: ShownTime::new(at),
                user_id: String::new(),
                latency: String::new(),
                cost: String::new(),
                level: String::new(),
                input_html: render::stored_value(
                    r#"[{"role":"user","content":"<script>y</script> hi"}]"#,
                    None,
                ),
                output_html: String::new(),
            }],
            css_url: "/static/x/trace.css",
        };
        let html = page.render().unwrap();
        assert!(
            !html.contains("<script>x") && !html.contains("<script>y"),
            "{html}"
        );
        assert!(!html.contains("<img src=x"));
        assert!(html.contains("role-user") && html.contains("hi"));
    }
}
