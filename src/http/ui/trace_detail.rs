//! A trace's page, `/project/{projectId}/traces/{traceId}` (the link the SDKs' `get_trace_url()`
//! print): the trace's facts, the tree of its observations with a timeline bar each, and a panel
//! with the trace's, or the selected observation's (`?observation={id}`), input, output,
//! metadata, model, usage, cost and scores, and a form to add a score.
//!
//! The page carries the tree but no observation's values, so a trace of 10,000 observations
//! opens at once: an observation's panel is read when it is selected, from
//! `/project/{projectId}/traces/{traceId}/observations/{observationId}`, which answers the panel
//! alone as HTML (`assets/trace.js` swaps it in; without script the tree's links reload the page
//! with `?observation=`). Values longer than [`render::SHOW_AT_MOST`] are cut, with a link to
//! the panel with `full=1`.
//!
//! The page keeps the traces table's query string (its filters), so `j`/`k` step to the next or
//! previous trace of that list (`traces::list_links`) and `Esc` goes back to it.
//!
//! `POST /project/{projectId}/traces/{traceId}/scores` adds a score to the trace or to one of its
//! observations through the public API's own path (a `score-create` envelope accepted by
//! `write_path`), for a MEMBER or above. As in Langfuse, such a score is an annotation: source
//! `ANNOTATION`, its author the signed-in person (`authorUserId`). The form offers the project's
//! score configs that are not archived: a score of one carries its `configId` and is checked
//! against it by the write path, as any score naming a config; free-form scores remain.
//!
//! A trace of another project, or none, is the UI's 404; so is an observation of another trace.
//!
//! Media references in a panel's values are resolved against the member's project only, and shown
//! through download links this server signs for the page (`http::api::media`), so a page loads
//! media from its own origin and never another project's files.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::config::IngestionSettings;
use crate::domain::media::MediaReference;
use crate::domain::score_config::{ConfigDataType, UNKNOWN_CONFIG};
use crate::http::api::media::MediaConfig;
use crate::http::auth::ProjectMember;
use crate::storage::clickhouse::observations::{self, ObservationView};
use crate::storage::clickhouse::scores::{self, ScoreView};
use crate::storage::clickhouse::trace_tree::ObservationOutline;
use crate::storage::clickhouse::traces::TraceView;
use crate::storage::media;
use crate::storage::postgres::memberships;
use crate::storage::score_configs::{ConfigCache, ScoreConfig};
use crate::storage::trace_outline;
use crate::storage::Stores;

use super::error::{html, see_other, UiError};
use super::path_segment;
use super::render;
use super::shell::{Shell, ShownTime};
use super::traces::{format_cost, format_latency, list_links, ListLinks, TableQuery};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/project/{projectId}/traces/{traceId}",
        web::get().to(trace_page),
    )
    .route(
        "/project/{projectId}/traces/{traceId}/observations/{observationId}",
        web::get().to(observation_panel),
    )
    .route(
        "/project/{projectId}/traces/{traceId}/scores",
        web::post().to(add_score),
    );
}

/// The width of the timeline's coordinate system (SVG user units).
const TIMELINE_WIDTH: f64 = 1000.0;
/// Indentation stops at this depth (the depth is still written as a number).
const MAX_INDENT: usize = 24;
/// How long adding a score waits for it to be readable before it answers.
const SCORE_WAIT: Duration = Duration::from_secs(3);

/// One row of the tree.
pub struct TreeRow {
    pub id: String,
    /// The page with this observation selected: a query alone (`?observation=…`), relative to
    /// the trace's page, to keep large trees small.
    pub href: String,
    pub depth: usize,
    pub indent: usize,
    pub name: String,
    pub type_label: String,
    pub type_class: String,
    pub duration: String,
    pub cost: String,
    pub level: String,
    pub model: String,
    pub has_children: bool,
    /// How many rows its subtree holds below it.
    pub descendants: usize,
    pub selected: bool,
    /// The bar of the timeline, in [`TIMELINE_WIDTH`] units.
    pub bar_x: String,
    pub bar_width: String,
}

/// A score as the panel lists it.
pub struct ScoreRowView {
    pub name: String,
    pub value: String,
    pub data_type: String,
    pub comment: String,
    pub source: String,
    /// Who added it in the UI (an annotation's author), by name; empty otherwise.
    pub author: String,
    pub time: ShownTime,
}

/// A label and its text (usage, cost, facts).
#[derive(Default)]
pub struct Fact {
    pub label: String,
    pub value: String,
    /// A time's RFC 3339 form (milliseconds kept), for the `<time>` element `app.js` shows in
    /// the browser's zone; empty for a fact that is no time.
    pub time_iso: String,
}

impl Fact {
    /// A time to the millisecond, as text in UTC until `app.js` shows it in the browser's zone.
    fn time(label: &str, at: DateTime<Utc>) -> Fact {
        let shown = ShownTime::precise(at);
        Fact {
            label: label.into(),
            value: shown.utc,
            time_iso: shown.iso,
        }
    }
}

/// The add-a-score form of a panel.
pub struct ScoreForm {
    pub action: String,
    pub csrf_token: String,
    pub observation_id: String,
    /// The traces table's query, carried back after the write.
    pub list_query: String,
    /// The project's score configs that take scores (not archived), newest first.
    pub configs: Vec<ConfigChoice>,
}

/// A score config the form offers, with what shapes its value input.
pub struct ConfigChoice {
    pub id: String,
    pub name: String,
    pub data_type: &'static str,
    /// The range's bounds as the number input's `min` and `max` (empty: unbounded).
    pub min: String,
    pub max: String,
    /// The range as people read it (`0 – 1`), empty without one.
    pub range: String,
    /// A CATEGORICAL config's labels.
    pub labels: Vec<String>,
    pub description: String,
}

impl ConfigChoice {
    fn of(config: &ScoreConfig) -> ConfigChoice {
        let f = &config.fields;
        let bound = |b: Option<f64>| b.map(|v| format!("{v}")).unwrap_or_default();
        ConfigChoice {
            id: config.id.clone(),
            name: f.name.clone(),
            data_type: f.data_type.as_str(),
            min: bound(f.min_value),
            max: bound(f.max_value),
            range: super::score_configs::config_view(config).range,
            labels: f
                .categories
                .iter()
                .flatten()
                .map(|c| c.label.clone())
                .collect(),
            description: f.description.clone().unwrap_or_default(),
        }
    }
}

/// The right-hand panel: the trace's or one observation's details.
pub struct PanelView {
    pub is_trace: bool,
    pub title: String,
    pub id: String,
    pub type_label: String,
    pub type_class: String,
    pub level: String,
    pub status_message: String,
    pub facts: Vec<Fact>,
    pub model: String,
    /// Safe HTML from [`render`].
    pub model_parameters_html: String,
    pub usage: Vec<Fact>,
    pub cost: Vec<Fact>,
    pub prompt_name: String,
    pub prompt_href: String,
    pub input_html: String,
    pub output_html: String,
    pub metadata_html: String,
    pub scores: Vec<ScoreRowView>,
    pub score_form: Option<ScoreForm>,
    /// "Add to dataset", for someone who may write.
    pub dataset_form: Option<super::dataset_items::TraceDatasetForm>,
    pub notice: String,
}

#[derive(Template)]
#[template(path = "trace.html")]
pub struct TracePage {
    pub shell: Shell,
    pub project_id: String,
    pub trace_id: String,
    pub name: String,
    pub time: ShownTime,
    pub user_id: String,
    pub user_href: String,
    pub session_id: String,
    pub session_href: String,
    pub tags: Vec<String>,
    pub environment: String,
    pub release: String,
    pub version: String,
    pub latency: String,
    pub cost: String,
    pub tokens: String,
    pub level: String,
    pub observation_count: usize,
    pub links: ListLinks,
    pub trace_href: String,
    /// Where an observation's panel is read: this, `/`, its id.
    pub fragment_base: String,
    pub tree: Vec<TreeRow>,
    pub panel: PanelView,
    pub css_url: &'static str,
    pub js_url: &'static str,
}

#[derive(Template)]
#[template(path = "trace_panel_fragment.html")]
pub struct PanelFragment {
    pub panel: PanelView,
}

/// The page's own query string without what the trace page adds to the list's query.
fn list_query(query: &str) -> String {
    TableQuery::parse(query).to_query()
}

fn query_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `path?observation=<id>&<list query>` (either part may be absent).
fn with_query(path: &str, observation: Option<&str>, list: &str) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    if let Some(id) = observation {
        out.append_pair("observation", id);
    }
    let mut query = out.finish();
    if !list.is_empty() {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(list);
    }
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

/// The type as the tree's badge shows it: the long names shortened, so names keep the room.
fn short_type(observation_type: &str) -> &str {
    match observation_type {
        "GENERATION" => "GEN",
        "EMBEDDING" => "EMBED",
        "RETRIEVER" => "RETRIEVE",
        "GUARDRAIL" => "GUARD",
        "EVALUATOR" => "EVAL",
        other => other,
    }
}

fn type_class(observation_type: &str) -> String {
    format!("type-{}", observation_type.to_ascii_lowercase())
}

/// A duration as the tree and the panel show it: milliseconds under a second, else seconds.
pub fn format_duration(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.0}ms", secs * 1000.0)
    } else {
        format_latency(secs)
    }
}

fn seconds_between(start: DateTime<Utc>, end: Option<DateTime<Utc>>) -> Option<f64> {
    end.map(|end| (end - start).num_milliseconds().max(0) as f64 / 1000.0)
}

/// The observations in tree order (depth first, children by start time), each with its depth
/// and whether it has children. An observation whose parent is not in the trace is a root; so
/// is one caught in a cycle of parents.
pub fn tree_order(observations: &[ObservationOutline]) -> Vec<(usize, usize, bool)> {
    let index: HashMap<&str, usize> = observations
        .iter()
        .enumerate()
        .map(|(i, o)| (o.id.as_str(), i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); observations.len()];
    let mut roots = Vec::new();
    for (i, o) in observations.iter().enumerate() {
        match o
            .parent_observation_id
            .as_deref()
            .and_then(|p| index.get(p))
            .filter(|p| **p != i)
        {
            Some(parent) => children[*parent].push(i),
            None => roots.push(i),
        }
    }
    let mut order = Vec::with_capacity(observations.len());
    let mut seen = vec![false; observations.len()];
    let mut walk = |start: usize, order: &mut Vec<(usize, usize, bool)>| {
        let mut stack = vec![(start, 0usize)];
        while let Some((i, depth)) = stack.pop() {
            if seen[i] {
                continue;
            }
            seen[i] = true;
            order.push((i, depth, !children[i].is_empty()));
            for child in children[i].iter().rev() {
                stack.push((*child, depth + 1));
            }
        }
    };
    for root in roots {
        walk(root, &mut order);
    }
    for i in 0..observations.len() {
        walk(i, &mut order);
    }
    order
}

/// The tree's rows: the trace itself first, its observations under it.
pub fn tree_rows(
    trace: &TraceView,
    observations: &[ObservationOutline],
    selected: Option<&str>,
    trace_path: &str,
    list: &str,
    trace_figures: (&str, &str, &str),
) -> Vec<TreeRow> {
    let start = observations
        .iter()
        .map(|o| o.start_time)
        .chain(std::iter::once(trace.timestamp))
        .min()
        .unwrap_or(trace.timestamp);
    let end = observations
        .iter()
        .map(|o| o.end_time.unwrap_or(o.start_time))
        .chain(std::iter::once(trace.timestamp))
        .max()
        .unwrap_or(trace.timestamp);
    let span_ms = (end - start).num_milliseconds().max(1) as f64;
    let bar = |from: DateTime<Utc>, to: DateTime<Utc>| {
        let x = (from - start).num_milliseconds() as f64 / span_ms * TIMELINE_WIDTH;
        let width = ((to - from).num_milliseconds().max(0) as f64 / span_ms * TIMELINE_WIDTH)
            .max(4.0)
            .min(TIMELINE_WIDTH - x.min(TIMELINE_WIDTH - 4.0));
        (format!("{x:.1}"), format!("{width:.1}"))
    };
    let (latency, cost, level) = trace_figures;
    let (bar_x, bar_width) = bar(start, end);
    let mut rows = vec![TreeRow {
        id: trace.id.clone(),
        href: with_query(trace_path, None, list),
        depth: 0,
        indent: 0,
        name: trace.name.clone(),
        type_label: "TRACE".into(),
        type_class: "type-trace".into(),
        duration: latency.to_string(),
        cost: cost.to_string(),
        level: level.to_string(),
        model: String::new(),
        has_children: !observations.is_empty(),
        descendants: 0,
        selected: selected.is_none(),
        bar_x,
        bar_width,
    }];
    for (i, depth, has_children) in tree_order(observations) {
        let o = &observations[i];
        let (bar_x, bar_width) = bar(o.start_time, o.end_time.unwrap_or(o.start_time));
        rows.push(TreeRow {
            href: with_query("", Some(&o.id), list),
            depth: depth + 1,
            indent: (depth + 1).min(MAX_INDENT),
            name: o.name.clone(),
            type_label: short_type(&o.observation_type).to_string(),
            type_class: type_class(&o.observation_type),
            duration: seconds_between(o.start_time, o.end_time)
                .map(format_duration)
                .unwrap_or_default(),
            cost: o
                .total_cost
                .filter(|c| *c > 0.0)
                .map(format_cost)
                .unwrap_or_default(),
            level: o.level.clone(),
            model: o.model.clone().unwrap_or_default(),
            has_children,
            descendants: 0,
            selected: selected == Some(o.id.as_str()),
            bar_x,
            bar_width,
            id: o.id.clone(),
        });
    }
    // Each row's subtree: the rows after it, up to the next of its depth or less.
    let mut open: Vec<usize> = Vec::new();
    for i in 0..rows.len() {
        while let Some(&top) = open.last() {
            if rows[top].depth < rows[i].depth {
                break;
            }
            rows[top].descendants = i - top - 1;
            open.pop();
        }
        open.push(i);
    }
    for top in open {
        rows[top].descendants = rows.len() - top - 1;
    }
    rows
}

/// The scores shown on a trace's page, and the names of the people who added those that are
/// annotations (by user id).
#[derive(Clone, Copy)]
pub struct ShownScores<'a> {
    pub scores: &'a [ScoreView],
    pub authors: &'a HashMap<String, String>,
}

/// The names of the members of the project's organization who wrote any of `scores`, by id.
async fn author_names(
    stores: &Stores,
    member: &ProjectMember,
    scores: &[ScoreView],
) -> Result<HashMap<String, String>, UiError> {
    if scores.iter().all(|s| s.author_user_id.is_none()) {
        return Ok(HashMap::new());
    }
    Ok(memberships::members(&stores.postgres, &member.org_id)
        .await?
        .into_iter()
        .map(|m| {
            let name = m.name.filter(|n| !n.trim().is_empty()).unwrap_or(m.email);
            (m.user_id, name)
        })
        .collect())
}

fn score_rows(shown: ShownScores<'_>, observation: Option<&str>) -> Vec<ScoreRowView> {
    shown
        .scores
        .iter()
        .filter(|s| s.observation_id.as_deref().filter(|o| !o.is_empty()) == observation)
        .map(|s| ScoreRowView {
            name: s.name.clone(),
            value: match s.data_type.as_str() {
                "CATEGORICAL" | "TEXT" => s.string_value.clone().unwrap_or_default(),
                "BOOLEAN" => if s.value != 0.0 { "true" } else { "false" }.to_string(),
                _ => {
                    let text = format!("{:.4}", s.value);
                    text.trim_end_matches('0').trim_end_matches('.').to_string()
                }
            },
            data_type: s.data_type.clone(),
            comment: s.comment.clone().unwrap_or_default(),
            source: s.source.clone(),
            author: s
                .author_user_id
                .as_ref()
                .map(|id| shown.authors.get(id).unwrap_or(id).clone())
                .unwrap_or_default(),
            time: ShownTime::new(s.timestamp),
        })
        .collect()
}

/// Stored metadata pairs as one JSON object (each value read as JSON when it is).
fn metadata_html(pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let object: Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.clone())),
            )
        })
        .collect();
    render::tree_html(&Value::Object(object), 0)
}

/// The media a panel's values refer to, as the member's project has them, each with a download
/// link signed for this page. A reference to another project's media, or to a file never uploaded,
/// resolves to nothing (the page says the file is not available).
async fn shown_media(
    stores: &Stores,
    config: &MediaConfig,
    member: &ProjectMember,
    values: &[&str],
) -> Result<HashMap<String, render::ShownMedia>, UiError> {
    let mut ids: Vec<String> = Vec::new();
    for value in values {
        for id in MediaReference::ids_in_text(value) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    let now = chrono::Utc::now();
    let records = media::by_ids(&stores.postgres, &member.project_id, &ids).await?;
    Ok(records
        .into_iter()
        .filter(|r| r.is_uploaded())
        .map(|record| {
            let (url, _) = config.download_path(&member.project_id, &record, now);
            (
                record.id.clone(),
                render::ShownMedia {
                    content_type: record.content_type,
                    url,
                },
            )
        })
        .collect())
}

/// The stored values of a trace that may hold media references.
fn trace_values(trace: &TraceView) -> Vec<&str> {
    let mut values: Vec<&str> = [trace.input.as_deref(), trace.output.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    values.extend(trace.metadata.iter().map(|(_, v)| v.as_str()));
    values
}

/// The stored values of an observation that may hold media references.
fn observation_values(o: &ObservationView) -> Vec<&str> {
    let mut values: Vec<&str> = [o.input.as_deref(), o.output.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    values.extend(o.metadata.iter().map(|(_, v)| v.as_str()));
    values
}

fn value_html(stored: Option<&str>, full_href: Option<&str>) -> String {
    match stored.filter(|s| !s.is_empty() && *s != "null") {
        Some(stored) => render::stored_value(stored, full_href),
        None => String::new(),
    }
}

/// A number of tokens or cost units without trailing zeros.
fn figure(value: f64) -> String {
    let text = format!("{value:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn trace_panel(
    trace: &TraceView,
    scores: ShownScores<'_>,
    score_form: Option<ScoreForm>,
    full_href: Option<&str>,
) -> PanelView {
    PanelView {
        is_trace: true,
        title: trace.name.clone(),
        id: trace.id.clone(),
        type_label: "TRACE".into(),
        type_class: "type-trace".into(),
        level: String::new(),
        status_message: String::new(),
        facts: Vec::new(),
        model: String::new(),
        model_parameters_html: String::new(),
        usage: Vec::new(),
        cost: Vec::new(),
        prompt_name: String::new(),
        prompt_href: String::new(),
        input_html: value_html(trace.input.as_deref(), full_href),
        output_html: value_html(trace.output.as_deref(), full_href),
        metadata_html: metadata_html(&trace.metadata),
        scores: score_rows(scores, None),
        score_form,
        dataset_form: None,
        notice: String::new(),
    }
}

pub fn observation_panel_view(
    project_id: &str,
    o: &ObservationView,
    scores: ShownScores<'_>,
    score_form: Option<ScoreForm>,
    full_href: Option<&str>,
) -> PanelView {
    let mut facts = vec![Fact::time("Start", o.start_time)];
    if let Some(end) = o.end_time {
        facts.push(Fact::time("End", end));
    }
    if let Some(secs) = seconds_between(o.start_time, o.end_time) {
        facts.push(Fact {
            label: "Duration".into(),
            value: format_duration(secs),
            ..Fact::default()
        });
    }
    if let Some(first) = seconds_between(o.start_time, o.completion_start_time) {
        facts.push(Fact {
            label: "Time to first token".into(),
            value: format_duration(first),
            ..Fact::default()
        });
    }
    if let Some(version) = o.version.as_deref().filter(|v| !v.is_empty()) {
        facts.push(Fact {
            label: "Version".into(),
            value: version.to_string(),
            ..Fact::default()
        });
    }
    facts.push(Fact {
        label: "Environment".into(),
        value: o.environment.clone(),
        ..Fact::default()
    });
    let mut cost: Vec<Fact> = o
        .cost_details
        .iter()
        .map(|(k, v)| Fact {
            label: k.clone(),
            value: format!("${}", figure(*v)),
            ..Fact::default()
        })
        .collect();
    if let Some(total) = o.total_cost {
        if !o.cost_details.iter().any(|(k, _)| k == "total") {
            cost.push(Fact {
                label: "total".into(),
                value: format!("${}", figure(total)),
                ..Fact::default()
            });
        }
    }
    let (prompt_name, prompt_href) = match (&o.prompt_name, o.prompt_version) {
        (Some(name), version) if !name.is_empty() => {
            let mut href = format!(
                "/project/{}/prompts/{}",
                path_segment(project_id),
                path_segment(name)
            );
            let mut label = name.clone();
            if let Some(version) = version {
                let _ = write!(href, "?version={version}");
                let _ = write!(label, " v{version}");
            }
            (label, href)
        }
        _ => (String::new(), String::new()),
    };
    PanelView {
        is_trace: false,
        title: o.name.clone(),
        id: o.id.clone(),
        type_label: o.observation_type.clone(),
        type_class: type_class(&o.observation_type),
        level: o.level.clone(),
        status_message: o.status_message.clone().unwrap_or_default(),
        facts,
        model: o.model.clone().unwrap_or_default(),
        model_parameters_html: value_html(o.model_parameters.as_deref(), None),
        usage: o
            .usage_details
            .iter()
            .map(|(k, v)| Fact {
                label: k.clone(),
                value: v.to_string(),
                ..Fact::default()
            })
            .collect(),
        cost,
        prompt_name,
        prompt_href,
        input_html: value_html(o.input.as_deref(), full_href),
        output_html: value_html(o.output.as_deref(), full_href),
        metadata_html: metadata_html(&o.metadata),
        scores: score_rows(scores, Some(&o.id)),
        score_form,
        dataset_form: None,
        notice: String::new(),
    }
}

/// The score form for someone who may score (a MEMBER or above), with the project's configs.
async fn score_form(
    configs: &ConfigCache,
    member: &ProjectMember,
    trace_path: &str,
    observation_id: Option<&str>,
    list: &str,
) -> Result<Option<ScoreForm>, UiError> {
    if !member.role.can_write() {
        return Ok(None);
    }
    let held = configs.get(&member.project_id).await?;
    Ok(Some(ScoreForm {
        action: format!("{trace_path}/scores"),
        csrf_token: member.signed_in.csrf_token.clone(),
        observation_id: observation_id.unwrap_or_default().to_string(),
        list_query: list.to_string(),
        configs: held
            .configs
            .iter()
            .filter(|c| !c.fields.is_archived)
            .map(ConfigChoice::of)
            .collect(),
    }))
}

/// The observation of this trace, with its values, or `None` (none, or another trace's).
async fn observation_of_trace(
    stores: &Stores,
    member: &ProjectMember,
    trace_id: &str,
    observation_id: &str,
) -> Result<Option<ObservationView>, UiError> {
    Ok(
        observations::get(&stores.clickhouse, &member.project_id, observation_id)
            .await?
            .filter(|o| o.trace_id == trace_id),
    )
}

async fn trace_page(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    stores: web::Data<Stores>,
    configs: web::Data<ConfigCache>,
    media_config: web::Data<MediaConfig>,
    member: ProjectMember,
) -> Result<HttpResponse, UiError> {
    let (_, trace_id) = path.into_inner();
    let query = req.query_string();
    let Some(outline) = trace_outline::read(&stores, &member.project_id, &trace_id).await? else {
        return Err(UiError::NotFound);
    };
    let project_id = member.project_id.as_str().to_string();
    let project = path_segment(&project_id);
    let trace_path = format!("/project/{project}/traces/{}", path_segment(&trace_id));
    let list = list_query(query);
    let full = query_param(query, "full").is_some();
    let mut selected = query_param(query, "observation").filter(|o| !o.is_empty());
    let mut notice = match query_param(query, "scored").as_deref() {
        Some("1") => "Score saved.".to_string(),
        Some(_) => "Score saved; it may take a moment to appear.".to_string(),
        None => String::new(),
    };
    let observation = match &selected {
        Some(id) if outline.observations.iter().any(|o| &o.id == id) => {
            observation_of_trace(&stores, &member, &trace_id, id).await?
        }
        _ => None,
    };
    if selected.is_some() && observation.is_none() {
        notice = "This trace has no such observation; showing the trace.".into();
        selected = None;
    }
    let trace = &outline.trace;
    let figures = outline.figures.as_ref();
    let latency = figures
        .map(|f| format_duration(f.latency_secs))
        .unwrap_or_default();
    let cost = figures
        .map(|f| format_cost(f.total_cost))
        .unwrap_or_default();
    let level = figures.map(|f| f.level.clone()).unwrap_or_default();
    let tree = tree_rows(
        trace,
        &outline.observations,
        selected.as_deref(),
        &trace_path,
        &list,
        (&latency, &cost, &level),
    );
    let form = score_form(&configs, &member, &trace_path, selected.as_deref(), &list).await?;
    let authors = author_names(&stores, &member, &outline.scores).await?;
    let shown = ShownScores {
        scores: &outline.scores,
        authors: &authors,
    };
    let mut panel = match &observation {
        Some(o) => {
            let full_href =
                (!full).then(|| format!("{}&full=1", with_query(&trace_path, Some(&o.id), &list)));
            let files =
                shown_media(&stores, &media_config, &member, &observation_values(o)).await?;
            render::with_media(files, || {
                observation_panel_view(&project_id, o, shown, form, full_href.as_deref())
            })
        }
        None => {
            let full_href = (!full).then(|| {
                let base = with_query(&trace_path, None, &list);
                let sep = if base.contains('?') { '&' } else { '?' };
                format!("{base}{sep}full=1")
            });
            let files = shown_media(&stores, &media_config, &member, &trace_values(trace)).await?;
            render::with_media(files, || {
                trace_panel(trace, shown, form, full_href.as_deref())
            })
        }
    };
    panel.notice = notice;
    panel.dataset_form = match &observation {
        Some(o) => {
            super::dataset_items::trace_form(
                &stores,
                &member,
                &trace_id,
                Some(&o.id),
                o.input.as_deref(),
                o.output.as_deref(),
            )
            .await?
        }
        None => {
            super::dataset_items::trace_form(
                &stores,
                &member,
                &trace_id,
                None,
                trace.input.as_deref(),
                trace.output.as_deref(),
            )
            .await?
        }
    };
    let user_id = trace.user_id.clone().unwrap_or_default();
    let session_id = trace.session_id.clone().unwrap_or_default();
    let page = TracePage {
        shell: Shell::of_project(
            &stores,
            &member,
            format!(
                "{} · Trace · {}",
                if trace.name.is_empty() {
                    &trace.id
                } else {
                    &trace.name
                },
                member.project_name
            ),
            "traces",
        )
        .await?,
        links: list_links(&project_id, &trace_id, query),
        trace_href: with_query(&trace_path, None, &list),
        fragment_base: format!("{trace_path}/observations"),
        name: trace.name.clone(),
        time: ShownTime::new(trace.timestamp),
        user_href: if user_id.is_empty() {
            String::new()
        } else {
            format!("/project/{project}/users/{}", path_segment(&user_id))
        },
        user_id,
        session_href: if session_id.is_empty() {
            String::new()
        } else {
            format!("/project/{project}/sessions/{}", path_segment(&session_id))
        },
        session_id,
        tags: trace.tags.clone(),
        environment: trace.environment.clone(),
        release: trace.release.clone().unwrap_or_default(),
        version: trace.version.clone().unwrap_or_default(),
        tokens: figures
            .map(|f| f.total_tokens.to_string())
            .unwrap_or_default(),
        latency,
        cost,
        level,
        observation_count: outline.observations.len(),
        tree,
        panel,
        css_url: super::assets::trace_css_url(),
        js_url: super::assets::trace_js_url(),
        trace_id,
        project_id,
    };
    html(&page)
}

/// The panel of one observation alone, for the page's script.
async fn observation_panel(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    stores: web::Data<Stores>,
    configs: web::Data<ConfigCache>,
    media_config: web::Data<MediaConfig>,
    member: ProjectMember,
) -> Result<HttpResponse, UiError> {
    let (_, trace_id, observation_id) = path.into_inner();
    let query = req.query_string();
    // Opened as a page (a link copied, a new tab): the whole page with it selected.
    if req
        .headers()
        .get("sec-fetch-mode")
        .is_some_and(|mode| mode == "navigate")
    {
        let trace_path = format!(
            "/project/{}/traces/{}",
            path_segment(member.project_id.as_str()),
            path_segment(&trace_id)
        );
        return Ok(see_other(&with_query(
            &trace_path,
            Some(&observation_id),
            &list_query(query),
        )));
    }
    if !trace_outline::is_readable(&stores, &member.project_id, &trace_id).await {
        return Err(UiError::NotFound);
    }
    let observation = observation_of_trace(&stores, &member, &trace_id, &observation_id)
        .await?
        .ok_or(UiError::NotFound)?;
    let scores = scores::of_trace(&stores.clickhouse, &member.project_id, &trace_id).await?;
    let project_id = member.project_id.as_str().to_string();
    let trace_path = format!(
        "/project/{}/traces/{}",
        path_segment(&project_id),
        path_segment(&trace_id)
    );
    let list = list_query(query);
    let full = query_param(query, "full").is_some();
    let full_href = (!full).then(|| {
        format!(
            "{}&full=1",
            with_query(&trace_path, Some(&observation.id), &list)
        )
    });
    let form = score_form(&configs, &member, &trace_path, Some(&observation.id), &list).await?;
    let authors = author_names(&stores, &member, &scores).await?;
    let files = shown_media(
        &stores,
        &media_config,
        &member,
        &observation_values(&observation),
    )
    .await?;
    let mut panel = render::with_media(files, || {
        observation_panel_view(
            &project_id,
            &observation,
            ShownScores {
                scores: &scores,
                authors: &authors,
            },
            form,
            full_href.as_deref(),
        )
    });
    panel.dataset_form = super::dataset_items::trace_form(
        &stores,
        &member,
        &trace_id,
        Some(&observation.id),
        observation.input.as_deref(),
        observation.output.as_deref(),
    )
    .await?;
    html(&PanelFragment { panel })
}

/// The add-a-score form as posted.
#[derive(Debug, serde::Deserialize)]
pub struct ScoreInput {
    #[serde(default)]
    pub observation_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub data_type: String,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub list_query: String,
    /// The score config chosen; empty for a free-form score.
    #[serde(default)]
    pub config_id: String,
}

/// A score of a config as the public API takes it: the config's name, data type and id, the
/// value read as the config's data type wants it (its range and categories are the write path's
/// to check, as for every score that names a config).
pub fn configured_score_body(
    trace_id: &str,
    input: &ScoreInput,
    config: &ScoreConfig,
) -> Result<Value, String> {
    let raw = input.value.trim();
    let data_type = config.fields.data_type;
    let value = match data_type {
        ConfigDataType::Numeric => json!(raw
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or("A numeric score's value is a number.")?),
        ConfigDataType::Boolean => json!(match raw.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" => 1,
            "0" | "false" | "no" => 0,
            _ => return Err("A boolean score's value is True or False.".into()),
        }),
        ConfigDataType::Categorical | ConfigDataType::Text if raw.is_empty() => {
            return Err("The score needs a value.".into())
        }
        ConfigDataType::Categorical | ConfigDataType::Text => json!(raw),
    };
    let mut body = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "traceId": trace_id,
        "name": config.fields.name,
        "value": value,
        "dataType": data_type.as_str(),
        "configId": config.id,
    });
    if !input.observation_id.is_empty() {
        body["observationId"] = json!(input.observation_id);
    }
    if !input.comment.trim().is_empty() {
        body["comment"] = json!(input.comment.trim());
    }
    Ok(body)
}

/// The score as the public API takes it (`POST /api/public/scores`), or why the form is wrong.
pub fn score_body(trace_id: &str, input: &ScoreInput) -> Result<Value, String> {
    let name = input.name.trim();
    if name.is_empty() {
        return Err("A score needs a name.".into());
    }
    let raw = input.value.trim();
    let (data_type, value) = match input.data_type.as_str() {
        "NUMERIC" | "" => (
            "NUMERIC",
            json!(raw
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or("A numeric score's value is a number.")?),
        ),
        "BOOLEAN" => (
            "BOOLEAN",
            json!(match raw.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => 1,
                "0" | "false" | "no" => 0,
                _ => return Err("A boolean score's value is true or false.".into()),
            }),
        ),
        "CATEGORICAL" if !raw.is_empty() => ("CATEGORICAL", json!(raw)),
        "TEXT" if !raw.is_empty() => ("TEXT", json!(raw)),
        "CATEGORICAL" | "TEXT" => return Err("The score needs a value.".into()),
        other => return Err(format!("{other:?} is no score type.")),
    };
    let mut body = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "traceId": trace_id,
        "name": name,
        "value": value,
        "dataType": data_type,
    });
    if !input.observation_id.is_empty() {
        body["observationId"] = json!(input.observation_id);
    }
    if !input.comment.trim().is_empty() {
        body["comment"] = json!(input.comment.trim());
    }
    Ok(body)
}

async fn add_score(
    path: web::Path<(String, String)>,
    stores: web::Data<Stores>,
    settings: web::Data<IngestionSettings>,
    configs: web::Data<ConfigCache>,
    member: ProjectMember,
    form: web::Form<ScoreInput>,
) -> Result<HttpResponse, UiError> {
    let (_, trace_id) = path.into_inner();
    if !member.role.can_write() {
        return Err(UiError::Forbidden(
            "Your role on this project reads traces but does not score them.".into(),
        ));
    }
    let ch = &stores.clickhouse;
    let trace = crate::storage::clickhouse::traces::get(ch, &member.project_id, &trace_id)
        .await?
        .ok_or(UiError::NotFound)?;
    if !form.observation_id.is_empty()
        && observation_of_trace(&stores, &member, &trace.id, &form.observation_id)
            .await?
            .is_none()
    {
        return Err(UiError::NotFound);
    }
    let body = if form.config_id.is_empty() {
        score_body(&trace.id, &form)
    } else {
        let held = configs.get(&member.project_id).await?;
        let config = held
            .get(&form.config_id)
            .ok_or_else(|| UiError::BadRequest(UNKNOWN_CONFIG.to_string()))?;
        configured_score_body(&trace.id, &form, config)
    }
    .map_err(UiError::BadRequest)?;
    let score_id = body["id"].as_str().unwrap_or_default().to_string();
    let envelope =
        crate::http::api::scores::create::envelope(body, &crate::domain::time::iso(Utc::now())).1;
    // An annotation, as Langfuse records a score added in its UI: source and author are set
    // by the write path, never taken from the form.
    let outcome = crate::write_path::accept_annotation(
        &stores,
        &settings,
        &configs,
        &member.project_id,
        envelope,
        &member.signed_in.user.id,
    )
    .await
    .map_err(|e| UiError::Internal(anyhow::anyhow!("writing a score: {e}")))?;
    if let Some(error) = outcome.errors.into_iter().next() {
        return Err(UiError::BadRequest(error.message));
    }
    // The pipeline writes in well under a second when the worker is there: wait for it, so the
    // page shows the score; else say it is coming.
    let deadline = tokio::time::Instant::now() + SCORE_WAIT;
    let mut written = false;
    while tokio::time::Instant::now() < deadline {
        if scores::get(ch, &member.project_id, &score_id)
            .await?
            .is_some()
        {
            written = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let trace_path = format!(
        "/project/{}/traces/{}",
        path_segment(member.project_id.as_str()),
        path_segment(&trace.id)
    );
    let list = list_query(&form.list_query);
    let observation = (!form.observation_id.is_empty()).then_some(form.observation_id.as_str());
    let back = with_query(&trace_path, observation, &list);
    let sep = if back.contains('?') { '&' } else { '?' };
    Ok(see_other(&format!(
        "{back}{sep}scored={}",
        if written { "1" } else { "pending" }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outline(id: &str, parent: Option<&str>, start_ms: i64, end_ms: i64) -> ObservationOutline {
        ObservationOutline {
            id: id.into(),
            observation_type: "SPAN".into(),
            parent_observation_id: parent.map(String::from),
            start_time: DateTime::from_timestamp_millis(start_ms).unwrap(),
            end_time: DateTime::from_timestamp_millis(end_ms),
            name: format!("<b>{id}</b>"),
            level: "DEFAULT".into(),
            model: None,
            total_tokens: 0,
            total_cost: None,
        }
    }

    #[test]
    fn the_tree_nests_by_parent_and_survives_orphans_and_cycles() {
        let observations = vec![
            outline("root", None, 0, 1000),
            outline("a", Some("root"), 100, 400),
            outline("b", Some("root"), 500, 900),
            outline("a1", Some("a"), 150, 300),
            outline("orphan", Some("gone"), 200, 250),
            outline("x", Some("y"), 300, 310),
            outline("y", Some("x"), 300, 310),
        ];
        let order: Vec<(String, usize, bool)> = tree_order(&observations)
            .into_iter()
            .map(|(i, d, c)| (observations[i].id.clone(), d, c))
            .collect();
        let ids: Vec<&str> = order.iter().map(|(id, _, _)| id.as_str()).collect();
        assert_eq!(ids, ["root", "a", "a1", "b", "orphan", "x", "y"]);
        assert_eq!(order[2].1, 2, "a1 is a grandchild");
        assert!(order[0].2 && !order[2].2);
        assert_eq!(order.len(), observations.len(), "every observation once");
    }

    #[test]
    fn timeline_bars_sit_where_the_observations_ran() {
        let trace = TraceView {
            id: "t".into(),
            timestamp: DateTime::from_timestamp_millis(0).unwrap(),
            name: "t".into(),
            user_id: None,
            metadata: vec![],
            release: None,
            version: None,
            environment: "default".into(),
            public: false,
            bookmarked: false,
            tags: vec![],
            input: None,
            output: None,
            session_id: None,
            created_at: DateTime::from_timestamp_millis(0).unwrap(),
            updated_at: DateTime::from_timestamp_millis(0).unwrap(),
        };
        let observations = vec![outline("a", None, 0, 500), outline("b", None, 500, 1000)];
        let rows = tree_rows(
            &trace,
            &observations,
            Some("b"),
            "/project/p/traces/t",
            "userId=u",
            ("1.00s", "$0.00", ""),
        );
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (rows[1].bar_x.as_str(), rows[1].bar_width.as_str()),
            ("0.0", "500.0")
        );
        assert_eq!(
            (rows[2].bar_x.as_str(), rows[2].bar_width.as_str()),
            ("500.0", "500.0")
        );
        assert!(rows[2].selected && !rows[0].selected);
        assert_eq!((rows[0].descendants, rows[1].descendants), (2, 0));
        assert_eq!(rows[2].href, "?observation=b&userId=u");
        assert_eq!(rows[0].href, "/project/p/traces/t?userId=u");
    }

    #[test]
    fn a_configs_score_takes_its_name_type_and_id() {
        let fields = crate::domain::score_config::ConfigFields::from_create(&json!({
            "name": "ok", "dataType": "BOOLEAN"
        }))
        .unwrap();
        let config = ScoreConfig {
            id: "c1".into(),
            project_id: "p".into(),
            fields,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let input = |value: &str| ScoreInput {
            observation_id: String::new(),
            name: "ignored".into(),
            data_type: "TEXT".into(),
            value: value.into(),
            comment: String::new(),
            list_query: String::new(),
            config_id: "c1".into(),
        };
        let body = configured_score_body("t", &input("True"), &config).unwrap();
        assert_eq!(
            (
                &body["name"],
                &body["dataType"],
                &body["value"],
                &body["configId"]
            ),
            (&json!("ok"), &json!("BOOLEAN"), &json!(1), &json!("c1"))
        );
        assert_eq!(
            configured_score_body("t", &input("False"), &config).unwrap()["value"],
            0
        );
        assert!(configured_score_body("t", &input("maybe"), &config).is_err());
        assert_eq!(ConfigChoice::of(&config).labels, ["True", "False"]);
    }

    #[test]
    fn the_score_form_becomes_the_apis_score() {
        let input = |data_type: &str, value: &str| ScoreInput {
            observation_id: String::new(),
            name: " quality ".into(),
            data_type: data_type.into(),
            value: value.into(),
            comment: " ok ".into(),
            list_query: String::new(),
            config_id: String::new(),
        };
        let body = score_body("t", &input("NUMERIC", "0.75")).unwrap();
        assert_eq!(body["name"], "quality");
        assert_eq!(body["value"], 0.75);
        assert_eq!(body["comment"], "ok");
        assert_eq!(
            score_body("t", &input("BOOLEAN", "true")).unwrap()["value"],
            1
        );
        assert_eq!(
            score_body("t", &input("CATEGORICAL", "good")).unwrap()["value"],
            "good"
        );
        assert_eq!(
            score_body("t", &input("TEXT", "fine")).unwrap()["dataType"],
            "TEXT"
        );
        assert!(score_body("t", &input("NUMERIC", "abc")).is_err());
        assert!(score_body("t", &input("BOOLEAN", "maybe")).is_err());
        assert!(score_body("t", &input("CATEGORICAL", "")).is_err());
        assert!(score_body("t", &input("OTHER", "1")).is_err());
        let mut on_observation = input("NUMERIC", "1");
        on_observation.observation_id = "o".into();
        assert_eq!(
            score_body("t", &on_observation).unwrap()["observationId"],
            "o"
        );
    }

    #[test]
    fn an_observation_panel_escapes_what_strangers_wrote() {
        let payload = "<script>window.__pwned=1</script><img src=x onerror=alert(1)>";
        let at = DateTime::from_timestamp_millis(1_714_557_600_000).unwrap();
        let observation = ObservationView {
            id: payload.into(),
            trace_id: "t".into(),
            environment: payload.into(),
            observation_type: "GENERATION".into(),
            parent_observation_id: None,
            start_time: at,
            end_time: Some(at + chrono::Duration::milliseconds(1500)),
            name: payload.into(),
            metadata: vec![(payload.into(), payload.into())],
            level: "ERROR".into(),
            status_message: Some(payload.into()),
            version: Some(payload.into()),
            input: Some(json!([{"role": "user", "content": payload}]).to_string()),
            output: Some(json!(format!("[x](javascript:alert(1)) {payload}")).to_string()),
            model: Some(payload.into()),
            model_parameters: Some(json!({"t": payload}).to_string()),
            usage_details: vec![(payload.into(), 3)],
            cost_details: vec![(payload.into(), 0.5)],
            total_cost: Some(0.5),
            completion_start_time: None,
            prompt_id: None,
            prompt_name: Some(payload.into()),
            prompt_version: Some(2),
            internal_model_id: None,
            usage_pricing_tier_id: None,
            usage_pricing_tier_name: None,
        };
        let authors = HashMap::new();
        let shown = ShownScores {
            scores: &[],
            authors: &authors,
        };
        let panel = observation_panel_view("p", &observation, shown, None, None);
        let html = PanelFragment { panel }.render().unwrap();
        let lower = html.to_ascii_lowercase();
        assert!(
            !lower.contains("<script") && !lower.contains("<img"),
            "{html}"
        );
        assert!(!lower.contains("href=\"javascript:"), "{html}");
        assert!(html.contains("href=\"#\""), "the link's target is dropped");
        assert!(html.contains("role-user") && html.contains("1.50s"));
        assert!(html.contains("/project/p/prompts/%3Cscript%3E"), "{html}");
        // Start and end are times the browser shows in its zone, to the millisecond.
        assert!(
            html.contains(r#"<time datetime="2024-05-01T10:00:00.000Z" data-ms>2024-05-01 10:00:00.000 UTC</time>"#)
                && html.contains(r#"<time datetime="2024-05-01T10:00:01.500Z" data-ms>"#),
            "{html}"
        );
    }
}
