//! The scores table, `/project/{projectId}/scores`: the project's scores, newest first, read with
//! the query of `GET /api/public/v3/scores` (`storage::clickhouse::scores::cursor_page`: the
//! newest version of each score, then the filters), paged by cursor. Every filter is a query
//! parameter, so a filtered table is a link; the user of a score is its trace's.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::http::auth::ProjectMember;
use crate::storage::clickhouse::scores::cursor_page::{self, ScoreCursor, ScoreV3Filter};
use crate::storage::clickhouse::traces;
use crate::storage::postgres::memberships;
use crate::storage::Stores;

use super::error::{html, UiError};
use super::path_segment;
use super::shell::{Shell, ShownTime};

const DEFAULT_LIMIT: u64 = 50;
const LIMITS: [u64; 4] = [25, 50, 100, 200];
pub const SOURCES: [&str; 3] = ["API", "ANNOTATION", "EVAL"];
pub const DATA_TYPES: [&str; 4] = ["NUMERIC", "CATEGORICAL", "BOOLEAN", "TEXT"];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/project/{projectId}/scores", web::get().to(scores_page));
}

/// The table's query string as written (shown back in the form, carried in links).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct ScoresQuery {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(rename = "dataType", skip_serializing_if = "String::is_empty")]
    pub data_type: String,
    #[serde(rename = "valueMin", skip_serializing_if = "String::is_empty")]
    pub value_min: String,
    #[serde(rename = "valueMax", skip_serializing_if = "String::is_empty")]
    pub value_max: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub from: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub to: String,
    #[serde(rename = "traceId", skip_serializing_if = "String::is_empty")]
    pub trace_id: String,
    #[serde(rename = "userId", skip_serializing_if = "String::is_empty")]
    pub user_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub limit: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cursor: String,
}

fn bad(message: String) -> UiError {
    UiError::BadRequest(message)
}

/// A time of the form: RFC 3339, or a `datetime-local` value read as UTC.
fn time_param(name: &str, value: &str) -> Result<Option<DateTime<Utc>>, UiError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
        .map(|at| Some(at.and_utc()))
        .ok_or_else(|| bad(format!("{name}: {value:?} is not a date and time.")))
}

fn number_param(name: &str, value: &str) -> Result<Option<f64>, UiError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(Some)
        .ok_or_else(|| bad(format!("{name}: {value:?} is not a number.")))
}

fn one_of(name: &str, value: &str, allowed: &[&str]) -> Result<Vec<String>, UiError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(Vec::new());
    }
    if allowed.contains(&value) {
        Ok(vec![value.to_string()])
    } else {
        Err(bad(format!(
            "{name} must be one of {}.",
            allowed.join(", ")
        )))
    }
}

fn text_list(value: &str) -> Vec<String> {
    let value = value.trim();
    if value.is_empty() {
        Vec::new()
    } else {
        vec![value.to_string()]
    }
}

/// The position after a row: `<timestamp in ms>~<id>`.
fn cursor_text(cursor: &ScoreCursor) -> String {
    format!("{}~{}", cursor.timestamp.timestamp_millis(), cursor.id)
}

fn cursor(text: &str) -> Result<Option<ScoreCursor>, UiError> {
    if text.is_empty() {
        return Ok(None);
    }
    text.split_once('~')
        .and_then(|(ms, id)| {
            Some(ScoreCursor {
                timestamp: DateTime::from_timestamp_millis(ms.parse().ok()?)?,
                id: id.to_string(),
            })
        })
        .map(Some)
        .ok_or_else(|| bad("This page link is broken: its cursor cannot be read.".into()))
}

impl ScoresQuery {
    /// The filter of the storage query, or what is wrong with a parameter.
    pub fn filter(&self) -> Result<ScoreV3Filter, UiError> {
        let value_min = number_param("Minimum value", &self.value_min)?;
        let value_max = number_param("Maximum value", &self.value_max)?;
        Ok(ScoreV3Filter {
            names: text_list(&self.name),
            sources: one_of("Source", &self.source, &SOURCES)?,
            data_types: one_of("Data type", &self.data_type, &DATA_TYPES)?,
            trace_ids: text_list(&self.trace_id),
            trace_user_ids: text_list(&self.user_id),
            from_timestamp: time_param("From", &self.from)?,
            to_timestamp: time_param("To", &self.to)?,
            value_min,
            value_max,
            ..ScoreV3Filter::default()
        })
    }

    fn limit(&self) -> u64 {
        self.limit
            .parse()
            .ok()
            .filter(|l| LIMITS.contains(l))
            .unwrap_or(DEFAULT_LIMIT)
    }

    fn any_filter(&self) -> bool {
        let bare = ScoresQuery {
            limit: self.limit.clone(),
            cursor: self.cursor.clone(),
            ..ScoresQuery::default()
        };
        *self != bare
    }

    fn href(&self, path: &str) -> String {
        let q = serde_urlencoded::to_string(self).unwrap_or_default();
        if q.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{q}")
        }
    }
}

pub struct ScoreRowView {
    pub time: ShownTime,
    pub name: String,
    pub value: String,
    pub data_type: String,
    pub source: String,
    /// Who added an annotation: their name or address, or their id once they left the
    /// organization; empty for a score without an author.
    pub author: String,
    pub comment: String,
    pub trace_id: String,
    pub trace_href: String,
    pub observation_id: String,
    pub user_id: String,
    pub user_href: String,
}

pub struct Choice {
    pub value: &'static str,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "scores.html")]
pub struct ScoresPage {
    pub prompts_js_url: &'static str,
    pub prompts_css_url: &'static str,
    pub shell: Shell,
    pub project_id: String,
    pub query: ScoresQuery,
    pub sources: Vec<Choice>,
    pub data_types: Vec<Choice>,
    pub limits: Vec<(u64, bool)>,
    pub rows: Vec<ScoreRowView>,
    pub any_filter: bool,
    pub clear_href: String,
    pub first_href: Option<String>,
    pub next_href: Option<String>,
    pub error: Option<String>,
}

/// A score's value as text: the label of a categorical one, true/false for a boolean, the text
/// of a text score, else the number.
pub fn value_text(row: &cursor_page::ScoreV3Row) -> String {
    match row.data_type.as_str() {
        "BOOLEAN" => {
            if row.value != 0.0 {
                "true".to_string()
            } else {
                "false".to_string()
            }
        }
        "CATEGORICAL" | "TEXT" => row.string_value.clone().unwrap_or_default(),
        _ => {
            if row.value.fract() == 0.0 && row.value.abs() < 1e15 {
                format!("{}", row.value as i64)
            } else {
                format!("{:.4}", row.value)
                    .trim_end_matches('0')
                    .trim_end_matches('.')
                    .to_string()
            }
        }
    }
}

fn choices(all: &[&'static str], current: &str) -> Vec<Choice> {
    all.iter()
        .map(|v| Choice {
            value: v,
            selected: *v == current,
        })
        .collect()
}

async fn scores_page(
    stores: web::Data<Stores>,
    member: ProjectMember,
    query: web::Query<ScoresQuery>,
) -> Result<HttpResponse, UiError> {
    let query = query.into_inner();
    let project_id = member.project_id.as_str().to_string();
    let path = format!("/project/{}/scores", path_segment(&project_id));
    let limit = query.limit();
    let (rows, next, error) = match query.filter().and_then(|f| Ok((f, cursor(&query.cursor)?))) {
        Ok((filter, after)) => {
            let found = cursor_page::page(
                &stores.clickhouse,
                &member.project_id,
                &filter,
                after.as_ref(),
                limit + 1,
            )
            .await?;
            let next = (found.len() as u64 > limit).then(|| {
                let last = &found[limit as usize - 1];
                ScoreCursor {
                    timestamp: last.timestamp,
                    id: last.id.clone(),
                }
            });
            let found: Vec<_> = found.into_iter().take(limit as usize).collect();
            (found, next, None)
        }
        Err(UiError::BadRequest(message)) => (Vec::new(), None, Some(message)),
        Err(other) => return Err(other),
    };
    let mut trace_ids: Vec<String> = rows.iter().filter_map(|r| r.trace_id.clone()).collect();
    trace_ids.sort();
    trace_ids.dedup();
    let users: HashMap<String, String> =
        traces::contexts(&stores.clickhouse, &member.project_id, &trace_ids)
            .await?
            .into_iter()
            .filter_map(|t| Some((t.id, t.user_id?)))
            .collect();
    let authors: HashMap<String, String> = if rows.iter().any(|r| r.author_user_id.is_some()) {
        memberships::members(&stores.postgres, &member.org_id)
            .await?
            .into_iter()
            .map(|m| {
                let name = m.name.filter(|n| !n.trim().is_empty()).unwrap_or(m.email);
                (m.user_id, name)
            })
            .collect()
    } else {
        HashMap::new()
    };
    let project_segment = path_segment(&project_id);
    let views = rows
        .iter()
        .map(|r| {
            let trace_id = r.trace_id.clone().unwrap_or_default();
            let user_id = users.get(&trace_id).cloned().unwrap_or_default();
            ScoreRowView {
                time: ShownTime::new(r.timestamp),
                name: r.name.clone(),
                value: value_text(r),
                data_type: r.data_type.clone(),
                source: r.source.clone(),
                author: r
                    .author_user_id
                    .as_ref()
                    .map(|id| authors.get(id).unwrap_or(id).clone())
                    .unwrap_or_default(),
                comment: r.comment.clone().unwrap_or_default(),
                trace_href: if trace_id.is_empty() {
                    String::new()
                } else {
                    format!(
                        "/project/{project_segment}/traces/{}",
                        path_segment(&trace_id)
                    )
                },
                trace_id,
                observation_id: r.observation_id.clone().unwrap_or_default(),
                user_href: if user_id.is_empty() {
                    String::new()
                } else {
                    format!(
                        "/project/{project_segment}/users/{}",
                        path_segment(&user_id)
                    )
                },
                user_id,
            }
        })
        .collect();
    let next_href = next.map(|c| {
        ScoresQuery {
            cursor: cursor_text(&c),
            ..query.clone()
        }
        .href(&path)
    });
    let first_href = (!query.cursor.is_empty()).then(|| {
        ScoresQuery {
            cursor: String::new(),
            ..query.clone()
        }
        .href(&path)
    });
    let page = ScoresPage {
        prompts_css_url: super::assets::prompts_css_url(),
        prompts_js_url: super::assets::prompts_js_url(),
        shell: Shell::of_project(&stores, &member, "Scores".to_string(), "scores").await?,
        project_id,
        sources: choices(&SOURCES, &query.source),
        data_types: choices(&DATA_TYPES, &query.data_type),
        limits: LIMITS.iter().map(|l| (*l, *l == limit)).collect(),
        rows: views,
        any_filter: query.any_filter(),
        clear_href: path.clone(),
        first_href,
        next_href,
        error,
        query,
    };
    html(&page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_string_becomes_the_storage_filter() {
        let query = ScoresQuery {
            name: "accuracy".into(),
            source: "API".into(),
            data_type: "NUMERIC".into(),
            value_min: "0.5".into(),
            from: "2025-01-31T09:00".into(),
            user_id: "u1".into(),
            ..ScoresQuery::default()
        };
        let filter = query.filter().unwrap();
        assert_eq!(filter.names, vec!["accuracy"]);
        assert_eq!(filter.sources, vec!["API"]);
        assert_eq!(filter.trace_user_ids, vec!["u1"]);
        assert_eq!(filter.value_min, Some(0.5));
        assert!(filter.from_timestamp.is_some());
        assert!(query.any_filter());
        assert!(query.href("/s").contains("valueMin=0.5"));
        let wrong = ScoresQuery {
            source: "SQL".into(),
            ..ScoresQuery::default()
        };
        assert!(wrong.filter().is_err());
        assert!(!ScoresQuery::default().any_filter());
    }

    #[test]
    fn cursors_survive_a_round_trip() {
        let c = ScoreCursor {
            timestamp: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
            id: "a~b".into(),
        };
        assert_eq!(cursor(&cursor_text(&c)).unwrap(), Some(c));
        assert!(cursor("nonsense").is_err());
    }

    #[test]
    fn the_table_escapes_what_strangers_wrote_and_links_trace_and_user() {
        let payload = "<img src=x onerror=alert(1)>";
        let page = ScoresPage {
            prompts_js_url: "/a.js",
            prompts_css_url: "/a.css",
            shell: Shell::anonymous("Scores"),
            project_id: "p1".into(),
            query: ScoresQuery::default(),
            sources: choices(&SOURCES, ""),
            data_types: choices(&DATA_TYPES, ""),
            limits: vec![(50, true)],
            rows: vec![ScoreRowView {
                time: ShownTime::new(chrono::Utc::now()),
                name: payload.into(),
                value: payload.into(),
                data_type: "TEXT".into(),
                source: "ANNOTATION".into(),
                author: payload.into(),
                comment: payload.into(),
                trace_id: "t/1".into(),
                trace_href: format!("/project/p1/traces/{}", path_segment("t/1")),
                observation_id: String::new(),
                user_id: payload.into(),
                user_href: format!("/project/p1/users/{}", path_segment(payload)),
            }],
            any_filter: false,
            clear_href: "/project/p1/scores".into(),
            first_href: None,
            next_href: None,
            error: None,
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(html.contains("href=\"/project/p1/traces/t%2F1\""));
        assert!(html.contains("/project/p1/users/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E"));
    }
}
