//! The traces table, `/project/{projectId}/traces`: a project's traces, newest first, filtered,
//! searched and ordered by what its URL says, paged by cursor; and the step to the next or
//! previous trace of such a list.
//!
//! Everything the table shows is in its query string, so a filtered view is a link to share:
//!
//! | parameter | what |
//! |---|---|
//! | `range` | `1h`, `24h` (the default), `7d`, `30d` or `all`, up to now |
//! | `from`, `to` | a time range instead (RFC 3339, or `YYYY-MM-DDTHH:MM` in UTC) |
//! | `name`, `userId`, `sessionId`, `release`, `version`, `environment` | equal to the value |
//! | `tags` | any of the tags (comma-separated, or repeated) |
//! | `level` | the trace's level, the worst of its observations': `ERROR`, `WARNING`, `DEFAULT`, `DEBUG` |
//! | `metadata` | `key=value`: the metadata key holds that value |
//! | `search` | text in the id, name, input or output, whatever its case |
//! | `orderBy` | `timestamp`, `latency`, `totalCost` or `totalTokens`, then `.asc` or `.desc` |
//! | `limit` | rows per page: 25, 50 (the default) or 100 |
//! | `after`, `before` | the cursor: the rows after (or before) this position of the order |
//!
//! Each row links to the trace's page, `/project/{projectId}/traces/{traceId}?<the same query>`.
//!
//! **Stepping through a list.** `GET /project/{projectId}/traces/{traceId}/neighbour?dir=next`
//! (or `dir=prev`) followed by that same query answers 303 to the page of the trace after (or
//! before) `traceId` in that list, with the same query, so a trace's page can offer `j`/`k`
//! links that walk the list its person came from. At either end it answers 303 back to the
//! table with that query and `notice=end-next` (or `end-prev`), which the table shows.
//! [`list_links`] builds those links (and the way back to the table) from a trace page's own
//! query string.

use std::fmt::Write as _;

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{DateTime, NaiveDateTime, Utc};

use crate::http::auth::ProjectMember;
use crate::storage::clickhouse::trace_table::{
    self, PageAt, Position, Sort, SortKey, TableFilters, TablePage,
};
use crate::storage::Stores;

use super::error::{html, see_other, UiError};
use super::path_segment;
use super::shell::{Shell, ShownTime};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/project/{projectId}/traces", web::get().to(traces_page))
        .route(
            "/project/{projectId}/traces/{traceId}/neighbour",
            web::get().to(neighbour),
        );
}

/// The time ranges the table offers, up to now.
pub const RANGES: &[(&str, &str, i64)] = &[
    ("1h", "Past hour", 3600),
    ("24h", "Past 24 hours", 86_400),
    ("7d", "Past 7 days", 7 * 86_400),
    ("30d", "Past 30 days", 30 * 86_400),
    ("all", "All time", 0),
];
const DEFAULT_RANGE: &str = "24h";
pub const LEVELS: &[&str] = &["ERROR", "WARNING", "DEFAULT", "DEBUG"];
const SORTS: &[(&str, &str)] = &[
    ("timestamp.desc", "Newest first"),
    ("timestamp.asc", "Oldest first"),
    ("latency.desc", "Slowest first"),
    ("latency.asc", "Fastest first"),
    ("totalCost.desc", "Most expensive first"),
    ("totalCost.asc", "Cheapest first"),
    ("totalTokens.desc", "Most tokens first"),
    ("totalTokens.asc", "Fewest tokens first"),
];
const LIMITS: &[u64] = &[25, 50, 100];
const DEFAULT_LIMIT: u64 = 50;
/// How many characters of input and output a row shows.
const PREVIEW: usize = 80;

/// The table's query string, read: each field as the person wrote it (to show it back in the
/// form and to carry it in links), empty when absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableQuery {
    pub range: String,
    pub from: String,
    pub to: String,
    pub name: String,
    pub user_id: String,
    pub session_id: String,
    pub tags: String,
    pub environment: String,
    pub release: String,
    pub version: String,
    pub level: String,
    pub metadata: String,
    pub search: String,
    pub order_by: String,
    pub limit: String,
    pub after: String,
    pub before: String,
}

impl TableQuery {
    /// Reads a query string; unknown parameters are ignored.
    pub fn parse(query: &str) -> TableQuery {
        let mut q = TableQuery::default();
        let mut tags: Vec<String> = Vec::new();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let value = value.trim().to_string();
            let field = match key.as_ref() {
                "range" => &mut q.range,
                "from" => &mut q.from,
                "to" => &mut q.to,
                "name" => &mut q.name,
                "userId" => &mut q.user_id,
                "sessionId" => &mut q.session_id,
                "tags" => {
                    tags.push(value);
                    continue;
                }
                "environment" => &mut q.environment,
                "release" => &mut q.release,
                "version" => &mut q.version,
                "level" => &mut q.level,
                "metadata" => &mut q.metadata,
                "search" => &mut q.search,
                "orderBy" => &mut q.order_by,
                "limit" => &mut q.limit,
                "after" => &mut q.after,
                "before" => &mut q.before,
                _ => continue,
            };
            *field = value;
        }
        q.tags = tags
            .iter()
            .flat_map(|t| t.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(", ");
        q
    }

    /// The parameters that are set, in a fixed order (cursor last).
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("range", &self.range),
            ("from", &self.from),
            ("to", &self.to),
            ("name", &self.name),
            ("userId", &self.user_id),
            ("sessionId", &self.session_id),
            ("tags", &self.tags),
            ("environment", &self.environment),
            ("release", &self.release),
            ("version", &self.version),
            ("level", &self.level),
            ("metadata", &self.metadata),
            ("search", &self.search),
            ("orderBy", &self.order_by),
            ("limit", &self.limit),
            ("after", &self.after),
            ("before", &self.before),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k, v.as_str()))
        .collect()
    }

    /// The query string (without `?`), empty when nothing is set.
    pub fn to_query(&self) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.pairs() {
            out.append_pair(k, v);
        }
        out.finish()
    }

    /// Whether a filter beyond the time preset narrows the list (the order and the page size
    /// do not).
    pub fn narrows(&self) -> bool {
        TableQuery {
            range: String::new(),
            order_by: String::new(),
            limit: String::new(),
            ..self.first_page()
        } != TableQuery::default()
    }

    /// The same list from its first page.
    pub fn first_page(&self) -> TableQuery {
        TableQuery {
            after: String::new(),
            before: String::new(),
            ..self.clone()
        }
    }

    pub fn sort(&self) -> Result<Sort, UiError> {
        if self.order_by.is_empty() {
            return Ok(Sort::default());
        }
        let (field, direction) = self
            .order_by
            .split_once('.')
            .unwrap_or((&self.order_by, "desc"));
        let key = match field {
            "timestamp" => SortKey::Time,
            "latency" => SortKey::Latency,
            "totalCost" => SortKey::Cost,
            "totalTokens" => SortKey::Tokens,
            _ => return Err(bad(format!("Cannot order traces by {field:?}."))),
        };
        let descending = match direction {
            "desc" => true,
            "asc" => false,
            _ => return Err(bad(format!("{direction:?} is not asc or desc."))),
        };
        Ok(Sort { key, descending })
    }

    pub fn limit(&self) -> Result<u64, UiError> {
        if self.limit.is_empty() {
            return Ok(DEFAULT_LIMIT);
        }
        self.limit
            .parse()
            .ok()
            .filter(|l| LIMITS.contains(l))
            .ok_or_else(|| bad("Rows per page are 25, 50 or 100.".to_string()))
    }

    pub fn page_at(&self) -> Result<PageAt, UiError> {
        match (self.after.as_str(), self.before.as_str()) {
            ("", "") => Ok(PageAt::First),
            (after, "") => Ok(PageAt::After(cursor(after)?)),
            ("", before) => Ok(PageAt::Before(cursor(before)?)),
            _ => Err(bad("A page is after a row or before one, not both.".into())),
        }
    }

    /// The range preset in force (`""` when `from` or `to` set the range).
    pub fn range_in_force(&self) -> &str {
        if !self.from.is_empty() || !self.to.is_empty() {
            ""
        } else if self.range.is_empty() {
            DEFAULT_RANGE
        } else {
            &self.range
        }
    }

    /// The filters, the time range taken up to `now`.
    pub fn filters(&self, now: DateTime<Utc>) -> Result<TableFilters, UiError> {
        let text = |v: &str| (!v.is_empty()).then(|| v.to_string());
        let mut filters = TableFilters {
            name: text(&self.name),
            user_id: text(&self.user_id),
            session_id: text(&self.session_id),
            tags: self
                .tags
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect(),
            environment: text(&self.environment),
            release: text(&self.release),
            version: text(&self.version),
            search: text(&self.search),
            ..TableFilters::default()
        };
        if !self.level.is_empty() {
            let level = self.level.to_ascii_uppercase();
            if !LEVELS.contains(&level.as_str()) {
                return Err(bad(format!("{:?} is no level.", self.level)));
            }
            filters.level = Some(level);
        }
        if !self.metadata.is_empty() {
            let (key, value) = self
                .metadata
                .split_once('=')
                .ok_or_else(|| bad("Metadata filters are written key=value.".into()))?;
            filters.metadata = Some((key.trim().to_string(), value.trim().to_string()));
        }
        let range = self.range_in_force();
        if range.is_empty() {
            filters.from = time_param("from", &self.from)?;
            filters.to = time_param("to", &self.to)?;
        } else {
            let (_, _, secs) = RANGES
                .iter()
                .find(|(id, _, _)| *id == range)
                .ok_or_else(|| bad(format!("{range:?} is no time range.")))?;
            if *secs > 0 {
                filters.from = Some(now - chrono::Duration::seconds(*secs));
            }
        }
        Ok(filters)
    }
}

fn bad(message: String) -> UiError {
    UiError::BadRequest(message)
}

/// A time of the form: RFC 3339, or a `datetime-local` value read as UTC.
fn time_param(name: &str, value: &str) -> Result<Option<DateTime<Utc>>, UiError> {
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

/// A row's position as the cursor parameter: `<sort value>~<id>`.
fn cursor_text(position: &Position) -> String {
    format!("{}~{}", position.value, position.id)
}

fn cursor(text: &str) -> Result<Position, UiError> {
    text.split_once('~')
        .and_then(|(value, id)| {
            let value: f64 = value.parse().ok().filter(|v: &f64| v.is_finite())?;
            Some(Position {
                value,
                id: id.to_string(),
            })
        })
        .ok_or_else(|| bad("This page link is broken: its cursor cannot be read.".into()))
}

/// A row of the table, as text.
pub struct RowView {
    pub href: String,
    pub id: String,
    pub time: ShownTime,
    pub name: String,
    pub user_id: String,
    pub user_href: String,
    pub session_id: String,
    pub session_href: String,
    pub latency: String,
    pub tokens: String,
    pub cost: String,
    pub level: String,
    pub tags: Vec<String>,
    pub environment: String,
    /// One per score column, `""` where the trace has no such score.
    pub scores: Vec<String>,
    pub input: String,
    pub output: String,
}

/// A sortable column heading: where it links, and its arrow when the table is ordered by it.
pub struct SortHeading {
    pub href: String,
    pub arrow: &'static str,
}

/// The table component, shared by the traces page and a user's page.
pub struct TableView {
    pub score_names: Vec<String>,
    pub rows: Vec<RowView>,
    pub previous_href: Option<String>,
    pub next_href: Option<String>,
    pub empty_message: String,
    /// A link that widens the list when it is empty (all time), if that could help.
    pub widen_href: Option<String>,
    pub time_heading: SortHeading,
    pub latency_heading: SortHeading,
    pub tokens_heading: SortHeading,
    pub cost_heading: SortHeading,
}

/// Loads one page of the table at `query` and turns it into text; links of the pager and
/// headings go to `page_path`.
pub async fn load_table(
    stores: &Stores,
    member: &ProjectMember,
    query: &TableQuery,
    page_path: &str,
) -> Result<TableView, UiError> {
    let filters = query.filters(Utc::now())?;
    let sort = query.sort()?;
    let page = trace_table::page(
        &stores.clickhouse,
        &member.project_id,
        &filters,
        sort,
        &query.page_at()?,
        query.limit()?,
    )
    .await?;
    Ok(table_view(
        member.project_id.as_str(),
        query,
        sort,
        page,
        page_path,
    ))
}

fn href(path: &str, query: &TableQuery) -> String {
    let q = query.to_query();
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{q}")
    }
}

/// The table's text: pure, so tests render it without any store.
pub fn table_view(
    project_id: &str,
    query: &TableQuery,
    sort: Sort,
    page: TablePage,
    page_path: &str,
) -> TableView {
    let project = path_segment(project_id);
    let mut score_names: Vec<String> = page
        .rows
        .iter()
        .flat_map(|r| r.scores.iter().map(|s| s.name.clone()))
        .collect();
    score_names.sort();
    score_names.dedup();
    let row_query = query.to_query();
    let rows = page
        .rows
        .iter()
        .map(|row| {
            let mut href = format!("/project/{project}/traces/{}", path_segment(&row.id));
            if !row_query.is_empty() {
                href = format!("{href}?{row_query}");
            }
            let user_id = row.user_id.clone().unwrap_or_default();
            let session_id = row.session_id.clone().unwrap_or_default();
            let session_href = if session_id.is_empty() {
                String::new()
            } else {
                format!("/project/{project}/sessions/{}", path_segment(&session_id))
            };
            RowView {
                href,
                id: row.id.clone(),
                time: ShownTime::new(row.timestamp),
                name: row.name.clone(),
                user_href: if user_id.is_empty() {
                    String::new()
                } else {
                    format!("/project/{project}/users/{}", path_segment(&user_id))
                },
                user_id,
                session_href,
                session_id,
                // A trace without observations has no measured figures: a dash, not zeros.
                latency: measured(&row.figures, || format_latency(row.figures.latency_secs)),
                tokens: measured(&row.figures, || row.figures.total_tokens.to_string()),
                cost: measured(&row.figures, || format_cost(row.figures.total_cost)),
                level: row.figures.level.clone(),
                tags: row.tags.clone(),
                environment: row.environment.clone(),
                scores: score_names
                    .iter()
                    .map(|name| {
                        row.scores
                            .iter()
                            .find(|s| &s.name == name)
                            .map(score_text)
                            .unwrap_or_default()
                    })
                    .collect(),
                input: preview(&row.input_preview),
                output: preview(&row.output_preview),
            }
        })
        .collect();
    let previous_href = page.rows.first().filter(|_| page.more_before).map(|row| {
        let q = TableQuery {
            after: String::new(),
            before: cursor_text(&row.position),
            ..query.clone()
        };
        href(page_path, &q)
    });
    let next_href = page.rows.last().filter(|_| page.more_after).map(|row| {
        let q = TableQuery {
            after: cursor_text(&row.position),
            before: String::new(),
            ..query.clone()
        };
        href(page_path, &q)
    });
    let filtered = query.narrows();
    let range = query.range_in_force();
    let empty_message = if page.rows.is_empty() && !matches!(query.page_at(), Ok(PageAt::First)) {
        "No more traces in this list.".to_string()
    } else if filtered {
        "No traces match these filters.".to_string()
    } else {
        let label = RANGES
            .iter()
            .find(|(id, _, _)| *id == range)
            .map(|(_, label, _)| label.to_lowercase())
            .unwrap_or_default();
        format!("No traces in the {label}. Traces appear here once an SDK sends them.")
    };
    let widen_href = (!range.is_empty() && range != "all").then(|| {
        let q = TableQuery {
            range: "all".into(),
            ..query.first_page()
        };
        href(page_path, &q)
    });
    let heading = |key: SortKey, field: &str| {
        let current = sort.key == key;
        // A first click orders the figures from the largest, the time from the newest.
        let descending = !(current && sort.descending);
        let q = TableQuery {
            order_by: format!("{field}.{}", if descending { "desc" } else { "asc" }),
            ..query.first_page()
        };
        SortHeading {
            href: href(page_path, &q),
            arrow: match (current, sort.descending) {
                (false, _) => "",
                (true, true) => "↓",
                (true, false) => "↑",
            },
        }
    };
    TableView {
        score_names,
        rows,
        previous_href,
        next_href,
        empty_message,
        widen_href,
        time_heading: heading(SortKey::Time, "timestamp"),
        latency_heading: heading(SortKey::Latency, "latency"),
        tokens_heading: heading(SortKey::Tokens, "totalTokens"),
        cost_heading: heading(SortKey::Cost, "totalCost"),
    }
}

fn measured(figures: &trace_table::Figures, text: impl FnOnce() -> String) -> String {
    if figures.observations == 0 {
        "–".to_string()
    } else {
        text()
    }
}

fn score_text(score: &trace_table::ScoreFigure) -> String {
    if score.data_type == "CATEGORICAL" {
        return score.categories.clone();
    }
    let mut text = format_number(score.average);
    if score.count > 1 {
        let _ = write!(text, " (avg of {})", score.count);
    }
    text
}

/// A number with at most 4 decimals, without trailing zeros.
fn format_number(value: f64) -> String {
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.to_string()
    }
}

/// Seconds with two decimals, as Langfuse shows latencies.
pub fn format_latency(secs: f64) -> String {
    format!("{secs:.2}s")
}

/// Dollars: small costs keep six decimals (trailing zeros dropped), never fewer than two.
pub fn format_cost(cost: f64) -> String {
    if cost == 0.0 {
        return "$0.00".into();
    }
    let text = format!("{cost:.6}");
    let text = text.trim_end_matches('0');
    let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
    if decimals < 2 {
        format!("${cost:.2}")
    } else {
        format!("${text}")
    }
}

/// The first characters of stored input or output as plain text: a JSON string without its
/// quotes and escapes, anything else as written, whitespace collapsed.
pub fn preview(stored: &str) -> String {
    let text = match serde_json::from_str::<String>(stored) {
        Ok(decoded) => decoded,
        Err(_) => stored.to_string(),
    };
    let collapsed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut chars = collapsed.chars();
    let head: String = chars.by_ref().take(PREVIEW).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// The filter form: what each field holds, and the choices of its menus.
pub struct FiltersView {
    pub query: TableQuery,
    pub ranges: Vec<Choice>,
    pub levels: Vec<Choice>,
    pub sorts: Vec<Choice>,
    pub limits: Vec<Choice>,
    /// Whether anything narrows the list beyond the default time range.
    pub any: bool,
    /// Whether a filter of the folded part of the form is set (so it opens).
    pub more_open: bool,
    pub clear_href: String,
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

fn filters_view(query: &TableQuery, clear_href: String) -> FiltersView {
    let range = query.range_in_force();
    let mut ranges: Vec<Choice> = RANGES
        .iter()
        .map(|(id, label, _)| Choice {
            value: id.to_string(),
            label: label.to_string(),
            selected: *id == range,
        })
        .collect();
    ranges.push(Choice {
        value: String::new(),
        label: "From and to below".into(),
        selected: range.is_empty(),
    });
    let order_by = if query.order_by.is_empty() {
        "timestamp.desc"
    } else {
        &query.order_by
    };
    let limit = if query.limit.is_empty() {
        DEFAULT_LIMIT.to_string()
    } else {
        query.limit.clone()
    };
    let mut levels = vec![Choice {
        value: String::new(),
        label: "Any level".into(),
        selected: query.level.is_empty(),
    }];
    levels.extend(LEVELS.iter().map(|l| Choice {
        value: l.to_string(),
        label: l.to_string(),
        selected: query.level.eq_ignore_ascii_case(l),
    }));
    let q = query;
    let more_open = [
        &q.from,
        &q.to,
        &q.session_id,
        &q.tags,
        &q.environment,
        &q.release,
        &q.version,
        &q.metadata,
    ]
    .iter()
    .any(|v| !v.is_empty());
    FiltersView {
        more_open,
        any: query.narrows(),
        query: query.clone(),
        ranges,
        levels,
        sorts: SORTS
            .iter()
            .map(|(v, label)| Choice {
                value: v.to_string(),
                label: label.to_string(),
                selected: *v == order_by,
            })
            .collect(),
        limits: LIMITS
            .iter()
            .map(|l| Choice {
                value: l.to_string(),
                label: format!("{l} rows"),
                selected: l.to_string() == limit,
            })
            .collect(),
        clear_href,
    }
}

/// The table alone, for a filter form that swaps it in place (`traces.js`): what the filters do
/// not change (the page's chrome, the form) is not sent again.
#[derive(Template)]
#[template(path = "traces_table.html")]
pub struct TracesResults {
    pub table: TableView,
}

/// The request header with which `traces.js` asks for [`TracesResults`] alone.
pub const RESULTS_ONLY_HEADER: &str = "x-lfrs-results-only";

#[derive(Template)]
#[template(path = "traces.html")]
pub struct TracesPage {
    pub shell: Shell,
    pub project_id: String,
    pub filters: FiltersView,
    pub table: TableView,
    pub notice: Option<String>,
    pub traces_js_url: &'static str,
}

async fn traces_page(
    req: HttpRequest,
    stores: web::Data<Stores>,
    member: ProjectMember,
) -> Result<HttpResponse, UiError> {
    let query = TableQuery::parse(req.query_string());
    let project = path_segment(member.project_id.as_str());
    let path = format!("/project/{project}/traces");
    let table = load_table(&stores, &member, &query, &path).await?;
    if req.headers().contains_key(RESULTS_ONLY_HEADER) {
        return html(&TracesResults { table });
    }
    let notice = notice(req.query_string());
    let page = TracesPage {
        shell: Shell::of_project(
            &stores,
            &member,
            format!("Traces · {}", member.project_name),
            "traces",
        )
        .await?,
        project_id: member.project_id.as_str().to_string(),
        filters: filters_view(&query, path),
        table,
        notice,
        traces_js_url: super::assets::traces_js_url(),
    };
    html(&page)
}

/// The links a trace's page offers to walk the list it was opened from: the next and previous
/// trace (the neighbour step) and the table itself, each with the list's query, read from the
/// trace page's own query string (parameters the table does not know, such as `observation`,
/// are left out).
pub struct ListLinks {
    pub next: String,
    pub previous: String,
    pub table: String,
}

pub fn list_links(project_id: &str, trace_id: &str, trace_page_query: &str) -> ListLinks {
    let query = TableQuery::parse(trace_page_query).to_query();
    let project = path_segment(project_id);
    let step = |dir: &str| {
        let rest = if query.is_empty() {
            String::new()
        } else {
            format!("&{query}")
        };
        format!(
            "/project/{project}/traces/{}/neighbour?dir={dir}{rest}",
            path_segment(trace_id)
        )
    };
    ListLinks {
        next: step("next"),
        previous: step("prev"),
        table: if query.is_empty() {
            format!("/project/{project}/traces")
        } else {
            format!("/project/{project}/traces?{query}")
        },
    }
}

/// What the neighbour step left the table with, when it reached an end.
fn notice(query: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "notice")
        .and_then(|(_, v)| match v.as_ref() {
            "end-next" => Some("That was the last trace of this list.".to_string()),
            "end-prev" => Some("That was the first trace of this list.".to_string()),
            _ => None,
        })
}

async fn neighbour(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    stores: web::Data<Stores>,
    member: ProjectMember,
) -> Result<HttpResponse, UiError> {
    let (_, trace_id) = path.into_inner();
    let query = TableQuery::parse(req.query_string());
    let next = match url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "dir")
        .map(|(_, v)| v.into_owned())
        .as_deref()
    {
        Some("next") | None => true,
        Some("prev") => false,
        Some(other) => return Err(bad(format!("dir: {other:?} is not next or prev."))),
    };
    let found = trace_table::neighbour(
        &stores.clickhouse,
        &member.project_id,
        &query.filters(Utc::now())?,
        query.sort()?,
        &trace_id,
        next,
    )
    .await?;
    let project = path_segment(member.project_id.as_str());
    let carried = query.to_query();
    let location = match found {
        Some(id) => href(
            &format!("/project/{project}/traces/{}", path_segment(&id)),
            &query,
        ),
        None => {
            let end = if next { "end-next" } else { "end-prev" };
            let joiner = if carried.is_empty() { "" } else { "&" };
            format!("/project/{project}/traces?{carried}{joiner}notice={end}")
        }
    };
    Ok(see_other(&location))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::clickhouse::trace_table::{Figures, ScoreFigure, TableRow};

    fn row(id: &str, name: &str) -> TableRow {
        TableRow {
            id: id.into(),
            timestamp: DateTime::from_timestamp(1_714_557_600, 0).unwrap(),
            name: name.into(),
            user_id: Some("user/1".into()),
            session_id: None,
            tags: vec!["<b>tag</b>".into()],
            environment: "production".into(),
            release: None,
            version: None,
            input_preview: "\"<script>alert(1)</script>\"".into(),
            output_preview: "{\"answer\": \"ok\"}".into(),
            figures: Figures {
                trace_id: id.into(),
                latency_secs: 1.5,
                total_tokens: 42,
                total_cost: 0.0033,
                level: "ERROR".into(),
                observations: 3,
            },
            scores: vec![ScoreFigure {
                trace_id: id.into(),
                name: "quality".into(),
                data_type: "NUMERIC".into(),
                average: 0.75,
                categories: String::new(),
                count: 2,
            }],
            position: Position {
                value: 1_714_557_600_000.0,
                id: id.into(),
            },
        }
    }

    #[test]
    fn the_query_round_trips_and_reads_into_filters() {
        let query = TableQuery::parse(
            "userId=u%201&tags=a,b&tags=c&metadata=team%3Dsearch&level=error&range=7d&orderBy=latency.asc&limit=25&x=1",
        );
        assert_eq!(query.tags, "a, b, c");
        assert_eq!(TableQuery::parse(&query.to_query()), query);
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap();
        let filters = query.filters(now).unwrap();
        assert_eq!(filters.user_id.as_deref(), Some("u 1"));
        assert_eq!(filters.tags, ["a", "b", "c"]);
        assert_eq!(filters.level.as_deref(), Some("ERROR"));
        assert_eq!(
            filters.metadata,
            Some(("team".to_string(), "search".to_string()))
        );
        assert_eq!(
            filters.from,
            Some(now - chrono::Duration::days(7)),
            "the preset"
        );
        assert_eq!(
            query.sort().unwrap(),
            Sort {
                key: SortKey::Latency,
                descending: false
            }
        );
        assert_eq!(query.limit().unwrap(), 25);
        let custom = TableQuery::parse("range=24h&from=2024-05-01T10:00&to=2024-05-02T00:00:00Z");
        let filters = custom.filters(now).unwrap();
        assert_eq!(
            filters.from.unwrap().to_rfc3339(),
            "2024-05-01T10:00:00+00:00"
        );
        assert_eq!(
            filters.to.unwrap().to_rfc3339(),
            "2024-05-02T00:00:00+00:00"
        );
        for bad in [
            "level=LOUD",
            "orderBy=name",
            "limit=7",
            "from=yesterday",
            "after=x",
        ] {
            let q = TableQuery::parse(bad);
            let refused = q.filters(now).is_err()
                || q.sort().is_err()
                || q.limit().is_err()
                || q.page_at().is_err();
            assert!(refused, "{bad}");
        }
    }

    #[test]
    fn a_trace_page_links_to_its_neighbours_in_the_same_list() {
        let links = list_links("p 1", "t/1", "observation=o1&userId=u&orderBy=latency.asc");
        assert_eq!(
            links.next,
            "/project/p%201/traces/t%2F1/neighbour?dir=next&userId=u&orderBy=latency.asc"
        );
        assert_eq!(
            links.previous,
            "/project/p%201/traces/t%2F1/neighbour?dir=prev&userId=u&orderBy=latency.asc"
        );
        assert_eq!(
            links.table,
            "/project/p%201/traces?userId=u&orderBy=latency.asc"
        );
        let bare = list_links("p", "t", "");
        assert_eq!(bare.next, "/project/p/traces/t/neighbour?dir=next");
        assert_eq!(bare.table, "/project/p/traces");
    }

    #[test]
    fn cursors_round_trip_whatever_the_id() {
        for position in [
            Position {
                value: 1_714_557_600_123.0,
                id: "a~b&c".into(),
            },
            Position {
                value: 0.000_123_456_789,
                id: "x".into(),
            },
        ] {
            assert_eq!(cursor(&cursor_text(&position)).unwrap(), position);
        }
    }

    #[test]
    fn figures_and_previews_read_as_people_expect() {
        assert_eq!(format_latency(1.234), "1.23s");
        assert_eq!(format_cost(0.0033), "$0.0033");
        assert_eq!(format_cost(12.5), "$12.50");
        assert_eq!(format_cost(0.0), "$0.00");
        assert_eq!(preview("\"hello\\n  world\""), "hello world");
        let long = format!("\"{}\"", "x".repeat(200));
        assert_eq!(preview(&long).chars().count(), PREVIEW + 1);
        assert_eq!(preview("{\"a\": 1}"), "{\"a\": 1}");
        assert_eq!(format_number(0.75), "0.75");
        assert_eq!(format_number(1.0), "1");
    }

    fn rendered(rows: Vec<TableRow>, query: &str) -> String {
        let query = TableQuery::parse(query);
        let page = TablePage {
            rows,
            more_before: true,
            more_after: true,
        };
        let table = table_view(
            "p 1",
            &query,
            query.sort().unwrap(),
            page,
            "/project/p%201/traces",
        );
        let page = TracesPage {
            shell: Shell::anonymous("Traces"),
            project_id: "p 1".into(),
            filters: filters_view(&query, "/project/p%201/traces".into()),
            table,
            notice: Some("That was the last trace of this list.".into()),
            traces_js_url: "/static/x/traces.js",
        };
        page.render().unwrap()
    }

    #[test]
    fn the_table_escapes_what_traces_carry_and_links_with_its_query() {
        let html = rendered(
            vec![row("t<1>", "<img src=x onerror=alert(1)>")],
            "userId=user%2F1&search=a%26b",
        );
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<b>tag"), "{html}");
        assert!(html.contains("&#60;img src=x onerror=alert(1)&#62;"));
        // The row links to the trace with the table's query; the user to their page.
        assert!(html.contains("/project/p%201/traces/t%3C1%3E?userId=user%2F1&#38;search=a%26b"));
        assert!(html.contains("/project/p%201/users/user%2F1"));
        assert!(html.contains(">quality<"), "a column per score name");
        assert!(html.contains("0.75 (avg of 2)"));
        assert!(html.contains("$0.0033") && html.contains("1.50s"));
        assert!(html.contains("before=") && html.contains("after="), "pager");
        assert!(html.contains("That was the last trace"));
        assert!(
            html.contains("value=\"user/1\""),
            "the form shows the filter"
        );
    }

    #[test]
    fn an_empty_table_says_why() {
        let html = rendered(Vec::new(), "");
        assert!(html.contains("No traces in the past 24 hours"), "{html}");
        assert!(html.contains("range=all"));
        let html = rendered(Vec::new(), "name=x");
        assert!(html.contains("No traces match these filters"), "{html}");
        let html = rendered(Vec::new(), "range=7d&orderBy=latency.desc&limit=25");
        assert!(html.contains("No traces in the past 7 days"), "{html}");
    }
}
