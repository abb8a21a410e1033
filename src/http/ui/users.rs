//! A project's users, `/project/{projectId}/users`: the end users its traces name (`userId`),
//! each with their number of traces, tokens, cost, and when they were first and last seen;
//! searched by id, ordered by any of those times, their traces or their id, paged by number.
//! `/project/{projectId}/users/{userId}` shows one user's figures and their traces in the
//! traces table (`traces.rs`), filtered by them.
//!
//! User ids are written by the applications' users: they are escaped in the page and
//! percent-encoded in every URL.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::http::auth::ProjectMember;
use crate::storage::clickhouse::users::{self, UserSort};
use crate::storage::Stores;

use super::error::{html, UiError};
use super::path_segment;
use super::shell::{Shell, ShownTime};
use super::traces::{format_cost, load_table, TableQuery, TableView};

const PAGE_SIZE: u64 = 50;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/project/{projectId}/users", web::get().to(users_page))
        .route(
            "/project/{projectId}/users/{userId}",
            web::get().to(user_page),
        );
}

/// The list's query: `search`, `orderBy` (`lastSeen`, `firstSeen`, `traces` or `userId`, then
/// `.asc` or `.desc`) and `page` (from 1).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsersQuery {
    pub search: String,
    pub order_by: String,
    pub page: u64,
}

impl UsersQuery {
    pub fn parse(query: &str) -> Result<UsersQuery, UiError> {
        let mut q = UsersQuery {
            page: 1,
            ..UsersQuery::default()
        };
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "search" => q.search = value.trim().to_string(),
                "orderBy" => q.order_by = value.trim().to_string(),
                "page" if !value.is_empty() => {
                    q.page = value
                        .parse()
                        .ok()
                        .filter(|p| *p >= 1)
                        .ok_or_else(|| UiError::BadRequest("page: a number from 1.".into()))?;
                }
                _ => {}
            }
        }
        Ok(q)
    }

    pub fn sort(&self) -> Result<(UserSort, bool), UiError> {
        if self.order_by.is_empty() {
            return Ok((UserSort::LastSeen, true));
        }
        let (field, direction) = self
            .order_by
            .split_once('.')
            .unwrap_or((&self.order_by, "desc"));
        let sort = match field {
            "lastSeen" => UserSort::LastSeen,
            "firstSeen" => UserSort::FirstSeen,
            "traces" => UserSort::Traces,
            "userId" => UserSort::UserId,
            _ => {
                return Err(UiError::BadRequest(format!(
                    "Cannot order users by {field:?}."
                )))
            }
        };
        match direction {
            "desc" => Ok((sort, true)),
            "asc" => Ok((sort, false)),
            _ => Err(UiError::BadRequest(format!(
                "{direction:?} is not asc or desc."
            ))),
        }
    }

    fn href(&self, path: &str) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        if !self.search.is_empty() {
            out.append_pair("search", &self.search);
        }
        if !self.order_by.is_empty() {
            out.append_pair("orderBy", &self.order_by);
        }
        if self.page > 1 {
            out.append_pair("page", &self.page.to_string());
        }
        let query = out.finish();
        if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        }
    }
}

pub struct UserRowView {
    pub user_id: String,
    pub href: String,
    pub traces: u64,
    pub tokens: String,
    pub cost: String,
    pub first_seen: ShownTime,
    pub last_seen: ShownTime,
}

pub struct Heading {
    pub href: String,
    pub arrow: &'static str,
}

#[derive(Template)]
#[template(path = "users.html")]
pub struct UsersPage {
    pub shell: Shell,
    pub project_id: String,
    pub search: String,
    pub rows: Vec<UserRowView>,
    pub user_heading: Heading,
    pub traces_heading: Heading,
    pub first_heading: Heading,
    pub last_heading: Heading,
    pub previous_href: Option<String>,
    pub next_href: Option<String>,
    pub empty_message: String,
}

async fn users_page(
    req: HttpRequest,
    stores: web::Data<Stores>,
    member: ProjectMember,
) -> Result<HttpResponse, UiError> {
    let query = UsersQuery::parse(req.query_string())?;
    let (sort, descending) = query.sort()?;
    let ch = &stores.clickhouse;
    let (rows, more) = users::list(
        ch,
        &member.project_id,
        (!query.search.is_empty()).then_some(query.search.as_str()),
        sort,
        descending,
        (query.page - 1) * PAGE_SIZE,
        PAGE_SIZE,
    )
    .await?;
    let ids: Vec<String> = rows.iter().map(|r| r.user_id.clone()).collect();
    let figures = users::figures(ch, &member.project_id, &ids).await?;
    let project = path_segment(member.project_id.as_str());
    let path = format!("/project/{project}/users");
    let rows = rows
        .into_iter()
        .map(|row| {
            let figure = figures.iter().find(|f| f.user_id == row.user_id);
            UserRowView {
                href: format!("{path}/{}", path_segment(&row.user_id)),
                traces: row.traces,
                tokens: figure.map_or(0, |f| f.total_tokens).to_string(),
                cost: format_cost(figure.map_or(0.0, |f| f.total_cost)),
                first_seen: ShownTime::new(row.first_seen),
                last_seen: ShownTime::new(row.last_seen),
                user_id: row.user_id,
            }
        })
        .collect();
    let heading = |key: UserSort, field: &str| {
        let current = sort == key;
        let desc = !(current && descending);
        let q = UsersQuery {
            order_by: format!("{field}.{}", if desc { "desc" } else { "asc" }),
            page: 1,
            ..query.clone()
        };
        Heading {
            href: q.href(&path),
            arrow: match (current, descending) {
                (false, _) => "",
                (true, true) => "↓",
                (true, false) => "↑",
            },
        }
    };
    let page = UsersPage {
        shell: Shell::of_project(
            &stores,
            &member,
            format!("Users · {}", member.project_name),
            "users",
        )
        .await?,
        project_id: member.project_id.as_str().to_string(),
        search: query.search.clone(),
        user_heading: heading(UserSort::UserId, "userId"),
        traces_heading: heading(UserSort::Traces, "traces"),
        first_heading: heading(UserSort::FirstSeen, "firstSeen"),
        last_heading: heading(UserSort::LastSeen, "lastSeen"),
        previous_href: (query.page > 1).then(|| {
            UsersQuery {
                page: query.page - 1,
                ..query.clone()
            }
            .href(&path)
        }),
        next_href: more.then(|| {
            UsersQuery {
                page: query.page + 1,
                ..query.clone()
            }
            .href(&path)
        }),
        empty_message: if query.search.is_empty() {
            "No traces of this project name a user yet. Set userId on a trace to see its user here."
                .into()
        } else {
            "No user id contains this text.".into()
        },
        rows,
    };
    html(&page)
}

#[derive(Template)]
#[template(path = "user.html")]
pub struct UserPage {
    pub shell: Shell,
    pub project_id: String,
    pub user_id: String,
    pub traces: u64,
    pub tokens: String,
    pub cost: String,
    pub first_seen: ShownTime,
    pub last_seen: ShownTime,
    /// The traces table, filtered by this user, with the filters' link.
    pub table: TableView,
    pub traces_href: String,
    pub traces_js_url: &'static str,
}

async fn user_page(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    stores: web::Data<Stores>,
    member: ProjectMember,
) -> Result<HttpResponse, UiError> {
    let (_, user_id) = path.into_inner();
    let ch = &stores.clickhouse;
    let user = users::get(ch, &member.project_id, &user_id)
        .await?
        .ok_or(UiError::NotFound)?;
    let figures = users::figures(ch, &member.project_id, std::slice::from_ref(&user_id)).await?;
    let figure = figures.first();
    let project = path_segment(member.project_id.as_str());
    // The user's traces of all time unless the link says otherwise.
    let mut query = TableQuery::parse(req.query_string());
    query.user_id = user_id.clone();
    if query.range.is_empty() && query.from.is_empty() && query.to.is_empty() {
        query.range = "all".into();
    }
    let page_path = format!("/project/{project}/users/{}", path_segment(&user_id));
    let table = load_table(&stores, &member, &query, &page_path).await?;
    let page = UserPage {
        shell: Shell::of_project(
            &stores,
            &member,
            format!("User {user_id} · {}", member.project_name),
            "users",
        )
        .await?,
        project_id: member.project_id.as_str().to_string(),
        traces: user.traces,
        tokens: figure.map_or(0, |f| f.total_tokens).to_string(),
        cost: format_cost(figure.map_or(0.0, |f| f.total_cost)),
        first_seen: ShownTime::new(user.first_seen),
        last_seen: ShownTime::new(user.last_seen),
        table,
        traces_href: format!(
            "/project/{project}/traces?{}",
            query.first_page().to_query()
        ),
        traces_js_url: super::assets::traces_js_url(),
        user_id,
    };
    html(&page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_reads_and_links_back() {
        let q = UsersQuery::parse("search=a%26b&orderBy=traces.asc&page=3").unwrap();
        assert_eq!(q.sort().unwrap(), (UserSort::Traces, false));
        assert_eq!(
            q.href("/project/p/users"),
            "/project/p/users?search=a%26b&orderBy=traces.asc&page=3"
        );
        assert!(UsersQuery::parse("page=0").is_err());
        assert!(UsersQuery::parse("orderBy=cost").unwrap().sort().is_err());
    }

    #[test]
    fn the_users_page_escapes_user_ids_and_encodes_them_in_links() {
        let at = chrono::DateTime::from_timestamp(1_714_557_600, 0).unwrap();
        let page = UsersPage {
            shell: Shell::anonymous("Users"),
            project_id: "p".into(),
            search: String::new(),
            rows: vec![UserRowView {
                user_id: "<img src=x onerror=alert(1)>".into(),
                href: format!(
                    "/project/p/users/{}",
                    path_segment("<img src=x onerror=alert(1)>")
                ),
                traces: 3,
                tokens: "12".into(),
                cost: "$0.01".into(),
                first_seen: ShownTime::new(at),
                last_seen: ShownTime::new(at),
            }],
            user_heading: Heading {
                href: "/u".into(),
                arrow: "",
            },
            traces_heading: Heading {
                href: "/t".into(),
                arrow: "",
            },
            first_heading: Heading {
                href: "/f".into(),
                arrow: "",
            },
            last_heading: Heading {
                href: "/l".into(),
                arrow: "↓",
            },
            previous_href: None,
            next_href: Some("/project/p/users?page=2".into()),
            empty_message: String::new(),
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(html.contains("&#60;img src=x onerror=alert(1)&#62;"));
        assert!(html.contains("/project/p/users/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E"));
        assert!(html.contains("page=2"));
    }

    #[test]
    fn a_users_page_shows_their_figures_and_their_traces_table() {
        use crate::storage::clickhouse::trace_table::{Sort, TablePage};
        let at = chrono::DateTime::from_timestamp(1_714_557_600, 0).unwrap();
        let query = TableQuery::parse("userId=a%2Fb&range=all");
        let table = super::super::traces::table_view(
            "p",
            &query,
            Sort::default(),
            TablePage {
                rows: Vec::new(),
                more_before: false,
                more_after: false,
            },
            "/project/p/users/a%2Fb",
        );
        let page = UserPage {
            shell: Shell::anonymous("User"),
            project_id: "p".into(),
            user_id: "a/b <i>".into(),
            traces: 0,
            tokens: "1234".into(),
            cost: "$0.50".into(),
            first_seen: ShownTime::new(at),
            last_seen: ShownTime::new(at),
            table,
            traces_href: "/project/p/traces?userId=a%2Fb".into(),
            traces_js_url: "/static/x/traces.js",
        };
        let html = page.render().unwrap();
        assert!(
            html.contains("a/b &#60;i&#62;") && !html.contains("<i>"),
            "{html}"
        );
        assert!(html.contains("1234") && html.contains("$0.50"));
        assert!(html.contains("No traces match these filters"), "{html}");
        assert!(html.contains("/static/x/traces.js"));
    }
}
