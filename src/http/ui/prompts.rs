//! The prompts pages, at Langfuse's URLs: `/project/{projectId}/prompts` (the names, searched by
//! name and tag, in pages of [`PAGE_SIZE`] by page number), `/project/{projectId}/prompts/{name}` (its versions, newest first, and the one
//! selected: content, config, and the resolved form of a composed prompt), `…/{name}/diff` (two
//! versions, line by line), `/prompts/new` and `…/{name}/new` (the form of a new prompt or
//! version), and the label forms.
//!
//! Names may contain `/` (folders): in a path they are one segment, percent-encoded, decoded as
//! the public API decodes them. Every write goes through the functions the public API's handlers
//! call (`storage::prompts::create`, `update_labels`, on the prompt runtime) and then
//! `PromptCache::written`, so SDKs see a change made here as soon as one made through the API.
//!
//! Who may do what: VIEWERs read; MEMBERs and up write; a label on the project's protected list
//! (`prompt_protected_labels`, managed in the settings) is set, moved, removed or given to a new
//! version only by OWNERs and ADMINs. The handlers check it; the pages hide what a person may not
//! use. The public API does not check protected labels, as Langfuse: project API keys may
//! promote versions (from CI, say).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::prompt::{self, PromptType, Selector, LATEST_LABEL, PRODUCTION_LABEL};
use crate::http::auth::ProjectMember;
use crate::prompt_cache::PromptCache;
use crate::storage::postgres::memberships;
use crate::storage::prompts::{self as store, PromptError, PromptRecord};
use crate::storage::Stores;

use super::error::{html, html_with_status, see_other, UiError};
use super::shell::{Shell, ShownTime};
use super::{assets, path_segment};

/// Names on one page of the list.
pub const PAGE_SIZE: i64 = 50;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/project/{projectId}/prompts", web::get().to(prompts_page))
        .route(
            "/project/{projectId}/prompts",
            web::post().to(create_version),
        )
        .route(
            "/project/{projectId}/prompts/new",
            web::get().to(new_prompt_form),
        )
        .route(
            "/project/{projectId}/prompts/{name}",
            web::get().to(prompt_page),
        )
        .route(
            "/project/{projectId}/prompts/{name}/new",
            web::get().to(new_version_form),
        )
        .route(
            "/project/{projectId}/prompts/{name}/diff",
            web::get().to(diff_page),
        )
        .route(
            "/project/{projectId}/prompts/{name}/labels",
            web::post().to(set_label),
        )
        .route(
            "/project/{projectId}/prompts/{name}/labels/remove",
            web::post().to(remove_label),
        );
}

impl From<PromptError> for UiError {
    fn from(err: PromptError) -> Self {
        match err {
            PromptError::NotFound(_) => UiError::NotFound,
            PromptError::Invalid(message) => UiError::BadRequest(message),
            PromptError::Store(cause) => UiError::Internal(cause),
        }
    }
}

/// The `{name}` path segment, fully percent-decoded (as the public API reads it: the router
/// leaves `%2F`, `%25` and `%2B` encoded within a segment).
fn path_name(req: &HttpRequest) -> Result<String, UiError> {
    let raw = req.match_info().get("name").unwrap_or_default();
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|name| name.into_owned())
        .map_err(|_| UiError::BadRequest("The prompt name is not valid UTF-8.".to_string()))
}

fn prompts_url(project_id: &str) -> String {
    format!("/project/{}/prompts", path_segment(project_id))
}

fn prompt_url(project_id: &str, name: &str) -> String {
    format!("{}/{}", prompts_url(project_id), path_segment(name))
}

/// The protected labels among `labels`.
pub fn protected_among(labels: &[String], protected: &[String]) -> Vec<String> {
    labels
        .iter()
        .filter(|l| protected.contains(l))
        .cloned()
        .collect()
}

/// Refuses (403) a change of protected labels by someone who is no owner or admin.
fn require_protected_right(member: &ProjectMember, touched: &[String]) -> Result<(), UiError> {
    if touched.is_empty() || member.role.can_manage() {
        Ok(())
    } else {
        Err(UiError::Forbidden(format!(
            "Only owners and admins may set, move or remove protected labels ({}).",
            touched.join(", ")
        )))
    }
}

fn require_writer(member: &ProjectMember) -> Result<(), UiError> {
    if member.role.can_write() {
        Ok(())
    } else {
        Err(UiError::Forbidden(
            "Your role on this project only reads prompts.".to_string(),
        ))
    }
}

async fn shell(stores: &Stores, member: &ProjectMember, title: String) -> Result<Shell, UiError> {
    Shell::of_project(stores, member, title, "prompts").await
}

// ---------------------------------------------------------------------------------------------
// The list

pub struct PromptRow {
    pub name: String,
    pub url: String,
    pub kind: &'static str,
    pub latest_version: i32,
    pub versions: i64,
    pub labels: Vec<String>,
    pub tags: Vec<String>,
    pub updated: ShownTime,
}

#[derive(Template)]
#[template(path = "prompts.html")]
pub struct PromptsPage {
    pub prompts_css_url: &'static str,
    pub shell: Shell,
    pub project_id: String,
    pub search: String,
    pub tag: String,
    pub rows: Vec<PromptRow>,
    pub can_write: bool,
    /// Which page this is (from 1), shown beside the pager when there is more than one.
    pub page: i64,
    pub previous_href: Option<String>,
    pub next_href: Option<String>,
}

/// The list's query: `search` (part of a name), `tag` and `page` (from 1), all in the URL.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub search: String,
    pub tag: String,
    pub page: i64,
}

impl ListQuery {
    pub fn parse(query: &str) -> Result<ListQuery, UiError> {
        let mut q = ListQuery {
            search: String::new(),
            tag: String::new(),
            page: 1,
        };
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "search" => q.search = value.trim().to_string(),
                "tag" => q.tag = value.trim().to_string(),
                "page" if !value.is_empty() => {
                    q.page = value
                        .parse()
                        .ok()
                        .filter(|p| (1..=i64::MAX / PAGE_SIZE).contains(p))
                        .ok_or_else(|| UiError::BadRequest("page: a number from 1.".into()))?;
                }
                _ => {}
            }
        }
        Ok(q)
    }

    /// The list at `page`, with this query's filters.
    fn href(&self, path: &str, page: i64) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        if !self.search.is_empty() {
            out.append_pair("search", &self.search);
        }
        if !self.tag.is_empty() {
            out.append_pair("tag", &self.tag);
        }
        if page > 1 {
            out.append_pair("page", &page.to_string());
        }
        let query = out.finish();
        if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        }
    }
}

fn non_blank(text: &str) -> Option<String> {
    Some(text.trim())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

async fn prompts_page(
    stores: web::Data<Stores>,
    cache: web::Data<PromptCache>,
    member: ProjectMember,
    req: HttpRequest,
) -> Result<HttpResponse, UiError> {
    let query = ListQuery::parse(req.query_string())?;
    let (pool, project) = (cache.pool().clone(), member.project_id.clone());
    let (s, t) = (non_blank(&query.search), non_blank(&query.tag));
    let offset = (query.page - 1) * PAGE_SIZE;
    // One more than a page, to know whether there is a next one.
    let found = cache
        .run(async move {
            store::search(
                &pool,
                &project,
                s.as_deref(),
                t.as_deref(),
                offset,
                PAGE_SIZE + 1,
            )
            .await
        })
        .await??;
    let project_id = member.project_id.as_str();
    let more = found.len() as i64 > PAGE_SIZE;
    let rows = found
        .into_iter()
        .take(PAGE_SIZE as usize)
        .map(|p| PromptRow {
            url: prompt_url(project_id, &p.name),
            kind: p.kind.as_str(),
            latest_version: p.latest_version,
            versions: p.versions,
            labels: p.labels,
            tags: p.tags,
            updated: ShownTime::new(p.last_updated_at),
            name: p.name,
        })
        .collect();
    let path = format!("/project/{}/prompts", path_segment(project_id));
    let page = PromptsPage {
        prompts_css_url: assets::prompts_css_url(),
        shell: shell(&stores, &member, "Prompts".to_string()).await?,
        project_id: project_id.to_string(),
        rows,
        can_write: member.role.can_write(),
        page: query.page,
        previous_href: (query.page > 1).then(|| query.href(&path, query.page - 1)),
        next_href: more.then(|| query.href(&path, query.page + 1)),
        search: query.search,
        tag: query.tag,
    };
    html(&page)
}

// ---------------------------------------------------------------------------------------------
// One prompt

pub struct LabelView {
    pub label: String,
    pub protected: bool,
    /// The person may take it off this version here.
    pub removable: bool,
}

pub struct VersionRow {
    pub version: i32,
    pub url: String,
    pub selected: bool,
    pub labels: Vec<String>,
    pub commit_message: String,
    pub author: String,
    pub created: ShownTime,
}

pub struct MessageView {
    pub role: String,
    pub content: String,
    /// A placeholder (`{"type": "placeholder", "name": …}`), filled by the application.
    pub placeholder: bool,
}

/// The content of a version, as shown: a text, or chat messages.
pub struct ContentView {
    pub text: Option<String>,
    pub messages: Vec<MessageView>,
}

impl ContentView {
    fn of(content: &Value) -> ContentView {
        match content {
            Value::String(text) => ContentView {
                text: Some(text.clone()),
                messages: Vec::new(),
            },
            Value::Array(items) => ContentView {
                text: None,
                messages: items.iter().map(message_view).collect(),
            },
            other => ContentView {
                text: Some(other.to_string()),
                messages: Vec::new(),
            },
        }
    }
}

fn message_view(item: &Value) -> MessageView {
    let field = |key: &str| item.get(key).and_then(Value::as_str).unwrap_or_default();
    if field("type") == "placeholder" {
        return MessageView {
            role: "placeholder".to_string(),
            content: field("name").to_string(),
            placeholder: true,
        };
    }
    let content = match item.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(other) => serde_json::to_string_pretty(other).unwrap_or_default(),
        None => String::new(),
    };
    MessageView {
        role: field("role").to_string(),
        content,
        placeholder: false,
    }
}

pub struct SelectedView {
    pub version: i32,
    pub kind: &'static str,
    pub labels: Vec<LabelView>,
    pub content: ContentView,
    /// The content with the prompts it includes filled in, for a composed prompt.
    pub resolved: Option<ContentView>,
    pub config: String,
    pub commit_message: String,
    pub author: String,
    pub created: ShownTime,
    pub tags: Vec<String>,
}

#[derive(Template)]
#[template(path = "prompt.html")]
pub struct PromptPage {
    pub prompts_css_url: &'static str,
    pub shell: Shell,
    pub project_id: String,
    pub name: String,
    pub url: String,
    pub versions: Vec<VersionRow>,
    pub selected: SelectedView,
    pub can_write: bool,
    /// The person may set protected labels.
    pub can_protected: bool,
    /// The labels the person may set here (for the datalist): existing and protected ones.
    pub known_labels: Vec<String>,
    pub protected: Vec<String>,
    /// The version the diff link compares with (the previous one), if any.
    pub diff_base: Option<i32>,
    pub notice: Option<&'static str>,
    pub prompts_js_url: &'static str,
}

#[derive(Deserialize)]
pub struct PromptQuery {
    version: Option<String>,
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "The new version was saved.",
        "label-set" => "The label was set.",
        "label-removed" => "The label was removed.",
        _ => return None,
    })
}

/// Who wrote a version: a member's name or email, `API`, or the stored id.
async fn authors(
    stores: &Stores,
    member: &ProjectMember,
) -> Result<HashMap<String, String>, UiError> {
    Ok(memberships::members(&stores.postgres, &member.org_id)
        .await?
        .into_iter()
        .map(|m| {
            let shown = m.name.filter(|n| !n.trim().is_empty()).unwrap_or(m.email);
            (m.user_id, shown)
        })
        .collect())
}

fn author_of(authors: &HashMap<String, String>, created_by: &str) -> String {
    authors
        .get(created_by)
        .cloned()
        .unwrap_or_else(|| created_by.to_string())
}

async fn load_versions(
    cache: &PromptCache,
    member: &ProjectMember,
    name: &str,
) -> Result<(Vec<PromptRecord>, Vec<String>), UiError> {
    let (pool, project, wanted) = (
        cache.pool().clone(),
        member.project_id.clone(),
        name.to_string(),
    );
    let loaded = cache
        .run(async move {
            let versions = store::versions(&pool, &project, &wanted).await?;
            let protected = store::protected_labels(&pool, &project).await?;
            Ok::<_, PromptError>((versions, protected))
        })
        .await??;
    if loaded.0.is_empty() {
        return Err(UiError::NotFound);
    }
    Ok(loaded)
}

/// The version `?version=` names, else the one labelled `production`, else the newest.
fn pick<'a>(versions: &'a [PromptRecord], wanted: Option<&str>) -> Option<&'a PromptRecord> {
    match wanted.map(str::trim).filter(|w| !w.is_empty()) {
        Some(v) => {
            let v: i32 = v.parse().ok()?;
            versions.iter().find(|r| r.version == v)
        }
        None => versions
            .iter()
            .find(|r| r.labels.iter().any(|l| l == PRODUCTION_LABEL))
            .or_else(|| versions.first()),
    }
}

fn pretty_json(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

async fn prompt_page(
    req: HttpRequest,
    stores: web::Data<Stores>,
    cache: web::Data<PromptCache>,
    member: ProjectMember,
    query: web::Query<PromptQuery>,
) -> Result<HttpResponse, UiError> {
    let name = path_name(&req)?;
    let (versions, protected) = load_versions(&cache, &member, &name).await?;
    let selected = pick(&versions, query.version.as_deref()).ok_or(UiError::NotFound)?;
    let resolved = if prompt::references(&selected.prompt)
        .unwrap_or_default()
        .is_empty()
    {
        None
    } else {
        let (pool, project, wanted, version) = (
            cache.pool().clone(),
            member.project_id.clone(),
            name.clone(),
            selected.version,
        );
        cache
            .run(async move {
                store::find_resolved(&pool, &project, &wanted, &Selector::Version(version)).await
            })
            .await??
            .map(|(_, resolved)| ContentView::of(&resolved.content))
    };
    let authors = authors(&stores, &member).await?;
    let can_write = member.role.can_write();
    let can_protected = member.role.can_manage();
    let project_id = member.project_id.as_str();
    let url = prompt_url(project_id, &name);
    let mut known_labels: Vec<String> = versions
        .iter()
        .flat_map(|v| v.labels.iter().cloned())
        .chain(protected.iter().cloned())
        .chain([PRODUCTION_LABEL.to_string()])
        .filter(|l| l != LATEST_LABEL)
        .filter(|l| can_protected || !protected.contains(l))
        .collect();
    known_labels.sort();
    known_labels.dedup();
    let selected_view = SelectedView {
        version: selected.version,
        kind: selected.kind.as_str(),
        labels: selected
            .labels
            .iter()
            .map(|l| {
                let is_protected = protected.contains(l);
                LabelView {
                    removable: can_write && l != LATEST_LABEL && (!is_protected || can_protected),
                    protected: is_protected,
                    label: l.clone(),
                }
            })
            .collect(),
        content: ContentView::of(&selected.prompt),
        resolved,
        config: pretty_json(&selected.config),
        commit_message: selected.commit_message.clone().unwrap_or_default(),
        author: author_of(&authors, &selected.created_by),
        created: ShownTime::new(selected.created_at),
        tags: selected.tags.clone(),
    };
    let diff_base = versions
        .iter()
        .map(|v| v.version)
        .filter(|v| *v < selected.version)
        .max();
    let rows = versions
        .iter()
        .map(|v| VersionRow {
            version: v.version,
            url: format!("{url}?version={}", v.version),
            selected: v.version == selected.version,
            labels: v.labels.clone(),
            commit_message: v.commit_message.clone().unwrap_or_default(),
            author: author_of(&authors, &v.created_by),
            created: ShownTime::new(v.created_at),
        })
        .collect();
    let page = PromptPage {
        prompts_css_url: assets::prompts_css_url(),
        shell: shell(&stores, &member, format!("{name} · Prompts")).await?,
        project_id: project_id.to_string(),
        name,
        url,
        versions: rows,
        selected: selected_view,
        can_write,
        can_protected,
        known_labels,
        protected,
        diff_base,
        notice: notice(query.done.as_deref()),
        prompts_js_url: assets::prompts_js_url(),
    };
    html(&page)
}

// ---------------------------------------------------------------------------------------------
// Labels

#[derive(Deserialize)]
pub struct LabelForm {
    version: i32,
    label: String,
}

async fn label_change(
    req: &HttpRequest,
    cache: &PromptCache,
    member: &ProjectMember,
    form: &LabelForm,
) -> Result<(String, String), UiError> {
    require_writer(member)?;
    let name = path_name(req)?;
    let label = form.label.trim().to_string();
    prompt::validate_label(&label).map_err(UiError::BadRequest)?;
    if label == LATEST_LABEL {
        return Err(UiError::BadRequest(
            "'latest' always points at the newest version: it is set automatically.".to_string(),
        ));
    }
    let (pool, project) = (cache.pool().clone(), member.project_id.clone());
    let protected = cache
        .run(async move { store::protected_labels(&pool, &project).await })
        .await??;
    require_protected_right(
        member,
        &protected_among(std::slice::from_ref(&label), &protected),
    )?;
    Ok((name, label))
}

/// Sets a label on a version (moving it from the version that had it): the API's `PATCH
/// /api/public/v2/prompts/{name}/versions/{version}` with `newLabels: [label]`.
async fn set_label(
    req: HttpRequest,
    cache: web::Data<PromptCache>,
    member: ProjectMember,
    form: web::Form<LabelForm>,
) -> Result<HttpResponse, UiError> {
    let (name, label) = label_change(&req, &cache, &member, &form).await?;
    let (pool, project, wanted, version) = (
        cache.pool().clone(),
        member.project_id.clone(),
        name.clone(),
        form.version,
    );
    let (_, epoch) = cache
        .run(async move { store::update_labels(&pool, &project, &wanted, version, &[label]).await })
        .await??;
    cache.written(&member.project_id, epoch);
    Ok(see_other(&format!(
        "{}?version={}&done=label-set",
        prompt_url(member.project_id.as_str(), &name),
        form.version
    )))
}

async fn remove_label(
    req: HttpRequest,
    cache: web::Data<PromptCache>,
    member: ProjectMember,
    form: web::Form<LabelForm>,
) -> Result<HttpResponse, UiError> {
    let (name, label) = label_change(&req, &cache, &member, &form).await?;
    let (pool, project, wanted, version) = (
        cache.pool().clone(),
        member.project_id.clone(),
        name.clone(),
        form.version,
    );
    let (_, epoch) = cache
        .run(async move { store::remove_label(&pool, &project, &wanted, version, &label).await })
        .await??;
    cache.written(&member.project_id, epoch);
    Ok(see_other(&format!(
        "{}?version={}&done=label-removed",
        prompt_url(member.project_id.as_str(), &name),
        form.version
    )))
}

// ---------------------------------------------------------------------------------------------
// New prompts and versions

/// What the form holds, as typed: shown again with the error when it is refused.
#[derive(Deserialize, Default, Clone)]
pub struct VersionForm {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: String,
    /// The chat messages as a JSON array (the rows of the script write it on submit).
    #[serde(default)]
    pub messages: String,
    #[serde(default)]
    pub config: String,
    #[serde(default)]
    pub commit_message: String,
    /// Comma- or space-separated.
    #[serde(default)]
    pub labels: String,
}

#[derive(Template)]
#[template(path = "prompt_edit.html")]
pub struct PromptEditPage {
    pub prompts_css_url: &'static str,
    pub shell: Shell,
    pub project_id: String,
    /// A new version of an existing prompt (the name and type are fixed).
    pub existing: bool,
    pub form: VersionForm,
    pub cancel_url: String,
    pub protected: Vec<String>,
    pub can_protected: bool,
    pub error: Option<String>,
    pub prompts_js_url: &'static str,
}

async fn edit_page(
    stores: &Stores,
    cache: &PromptCache,
    member: &ProjectMember,
    existing: bool,
    form: VersionForm,
    status: StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, UiError> {
    let (pool, project) = (cache.pool().clone(), member.project_id.clone());
    let protected = cache
        .run(async move { store::protected_labels(&pool, &project).await })
        .await??;
    let project_id = member.project_id.as_str();
    let cancel_url = if existing {
        prompt_url(project_id, &form.name)
    } else {
        prompts_url(project_id)
    };
    let title = if existing {
        format!("New version of {}", form.name)
    } else {
        "New prompt".to_string()
    };
    let page = PromptEditPage {
        prompts_css_url: assets::prompts_css_url(),
        shell: shell(stores, member, title).await?,
        project_id: project_id.to_string(),
        existing,
        form,
        cancel_url,
        protected,
        can_protected: member.role.can_manage(),
        error,
        prompts_js_url: assets::prompts_js_url(),
    };
    html_with_status(status, &page)
}

async fn new_prompt_form(
    stores: web::Data<Stores>,
    cache: web::Data<PromptCache>,
    member: ProjectMember,
) -> Result<HttpResponse, UiError> {
    require_writer(&member)?;
    let form = VersionForm {
        kind: "text".to_string(),
        messages: "[]".to_string(),
        config: "{}".to_string(),
        ..VersionForm::default()
    };
    edit_page(&stores, &cache, &member, false, form, StatusCode::OK, None).await
}

async fn new_version_form(
    req: HttpRequest,
    stores: web::Data<Stores>,
    cache: web::Data<PromptCache>,
    member: ProjectMember,
    query: web::Query<PromptQuery>,
) -> Result<HttpResponse, UiError> {
    require_writer(&member)?;
    let name = path_name(&req)?;
    let (versions, _) = load_versions(&cache, &member, &name).await?;
    let base = match query.version.as_deref() {
        Some(v) => pick(&versions, Some(v)),
        None => versions.first(),
    }
    .ok_or(UiError::NotFound)?;
    let (text, messages) = match &base.prompt {
        Value::String(text) => (text.clone(), "[]".to_string()),
        other => (String::new(), pretty_json(other)),
    };
    let form = VersionForm {
        name: base.name.clone(),
        kind: base.kind.as_str().to_string(),
        text,
        messages,
        config: pretty_json(&base.config),
        commit_message: String::new(),
        labels: String::new(),
    };
    edit_page(&stores, &cache, &member, true, form, StatusCode::OK, None).await
}

/// The labels typed in the form: separated by commas or spaces.
fn typed_labels(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// A textarea's text as typed: browsers send its line breaks as CRLF.
fn typed_text(text: &str) -> String {
    text.replace("\r\n", "\n")
}

/// The form as the body `POST /api/public/v2/prompts` takes, so that it is checked by the same
/// parser; a form error names the field.
pub fn form_body(form: &VersionForm) -> Result<Value, String> {
    let kind = PromptType::parse(form.kind.trim())
        .ok_or_else(|| "Choose the type: text or chat.".to_string())?;
    let content = match kind {
        PromptType::Text => Value::String(typed_text(&form.text)),
        PromptType::Chat => {
            let messages: Value = serde_json::from_str(typed_text(&form.messages).trim())
                .map_err(|e| format!("The chat messages are not valid JSON: {e}."))?;
            if !messages.is_array() {
                return Err("The chat messages must be a JSON array of messages.".to_string());
            }
            messages
        }
    };
    let config_text = form.config.trim();
    let config: Value = if config_text.is_empty() {
        json!({})
    } else {
        serde_json::from_str(config_text)
            .map_err(|e| format!("The config is not valid JSON: {e}."))?
    };
    if !config.is_object() {
        return Err(
            "The config must be a JSON object, such as {\"temperature\": 0.2}.".to_string(),
        );
    }
    let commit = form.commit_message.trim();
    Ok(json!({
        "name": form.name,
        "type": kind.as_str(),
        "prompt": content,
        "config": config,
        "labels": typed_labels(&form.labels),
        "commitMessage": if commit.is_empty() { Value::Null } else { Value::String(commit.to_string()) },
    }))
}

/// Creates a prompt or a version of one: the same validation and storage transaction as
/// `POST /api/public/v2/prompts`, the signed-in person as the author.
async fn create_version(
    stores: web::Data<Stores>,
    cache: web::Data<PromptCache>,
    member: ProjectMember,
    form: web::Form<VersionForm>,
) -> Result<HttpResponse, UiError> {
    require_writer(&member)?;
    let form = form.into_inner();
    let (pool, project, wanted) = (
        cache.pool().clone(),
        member.project_id.clone(),
        form.name.trim().to_string(),
    );
    let existing = cache
        .run(async move {
            store::find(
                &pool.get().await.map_err(PromptError::from)?,
                &project,
                &wanted,
                &Selector::Label(LATEST_LABEL.to_string()),
            )
            .await
        })
        .await??
        .is_some();
    let refuse = |status: StatusCode, message: String, form: VersionForm| {
        let (stores, cache, member) = (stores.clone(), cache.clone(), &member);
        async move {
            edit_page(
                &stores,
                &cache,
                member,
                existing,
                form,
                status,
                Some(message),
            )
            .await
        }
    };
    let new = match form_body(&form).and_then(|body| {
        prompt::parse_new_prompt(&body).map_err(|e| format!("The prompt is not valid: {e}."))
    }) {
        Ok(new) => new,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, message, form).await,
    };
    let (pool, project) = (cache.pool().clone(), member.project_id.clone());
    let protected = cache
        .run(async move { store::protected_labels(&pool, &project).await })
        .await??;
    let touched = protected_among(&new.labels, &protected);
    if let Err(UiError::Forbidden(message)) = require_protected_right(&member, &touched) {
        return refuse(StatusCode::FORBIDDEN, message, form).await;
    }
    let (pool, project, author) = (
        cache.pool().clone(),
        member.project_id.clone(),
        member.signed_in.user.id.clone(),
    );
    let name = new.name.clone();
    let written = cache
        .run(async move { store::create(&pool, &project, &new, &author).await })
        .await?;
    let (created, epoch) = match written {
        Ok(done) => done,
        Err(PromptError::Invalid(message)) => {
            return refuse(StatusCode::BAD_REQUEST, message, form).await
        }
        Err(other) => return Err(other.into()),
    };
    cache.written(&member.project_id, epoch);
    Ok(see_other(&format!(
        "{}?version={}&done=created",
        prompt_url(member.project_id.as_str(), &name),
        created.version
    )))
}

// ---------------------------------------------------------------------------------------------
// Diff

pub struct DiffLine {
    /// `add`, `del` or `same`.
    pub kind: &'static str,
    pub old_no: String,
    pub new_no: String,
    pub text: String,
}

/// A row of the side-by-side view: the old line on the left, the new one on the right.
pub struct SplitRow {
    pub left: Option<DiffLine>,
    pub right: Option<DiffLine>,
}

pub struct DiffSection {
    pub title: &'static str,
    pub unified: Vec<DiffLine>,
    pub split: Vec<SplitRow>,
    pub changed: bool,
}

/// The lines of a version's content as compared: the text, or each message as a `[role]` line
/// followed by its content.
pub fn comparable_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let m = message_view(item);
                if m.placeholder {
                    format!("[placeholder: {}]\n", m.content)
                } else {
                    format!("[{}]\n{}\n", m.role, m.content)
                }
            })
            .collect(),
        other => other.to_string(),
    }
}

/// A line-based diff of `old` and `new`, unified and side by side.
pub fn diff_section(title: &'static str, old: &str, new: &str) -> DiffSection {
    use similar::{ChangeTag, DiffTag, TextDiff};
    let diff = TextDiff::from_lines(old, new);
    let line = |change: &similar::Change<&str>| {
        let text = change.value().trim_end_matches(['\n', '\r']).to_string();
        let no = |n: Option<usize>| n.map(|n| (n + 1).to_string()).unwrap_or_default();
        DiffLine {
            kind: match change.tag() {
                ChangeTag::Insert => "add",
                ChangeTag::Delete => "del",
                ChangeTag::Equal => "same",
            },
            old_no: no(change.old_index()),
            new_no: no(change.new_index()),
            text,
        }
    };
    let mut unified = Vec::new();
    let mut split = Vec::new();
    for op in diff.ops() {
        let changes: Vec<_> = diff.iter_changes(op).collect();
        unified.extend(changes.iter().map(line));
        match op.tag() {
            DiffTag::Equal => split.extend(changes.iter().map(|c| SplitRow {
                left: Some(line(c)),
                right: Some(line(c)),
            })),
            _ => {
                let dels: Vec<_> = changes
                    .iter()
                    .filter(|c| c.tag() == ChangeTag::Delete)
                    .map(line)
                    .collect();
                let adds: Vec<_> = changes
                    .iter()
                    .filter(|c| c.tag() == ChangeTag::Insert)
                    .map(line)
                    .collect();
                let rows = dels.len().max(adds.len());
                let (mut dels, mut adds) = (dels.into_iter(), adds.into_iter());
                for _ in 0..rows {
                    split.push(SplitRow {
                        left: dels.next(),
                        right: adds.next(),
                    });
                }
            }
        }
    }
    DiffSection {
        title,
        changed: unified.iter().any(|l| l.kind != "same"),
        unified,
        split,
    }
}

#[derive(Template)]
#[template(path = "prompt_diff.html")]
pub struct DiffPage {
    pub prompts_css_url: &'static str,
    pub shell: Shell,
    pub project_id: String,
    pub name: String,
    pub url: String,
    pub diff_url: String,
    pub from: i32,
    pub to: i32,
    pub versions: Vec<i32>,
    pub split: bool,
    pub sections: Vec<DiffSection>,
    pub prompts_js_url: &'static str,
}

#[derive(Deserialize)]
pub struct DiffQuery {
    from: Option<i32>,
    to: Option<i32>,
    view: Option<String>,
}

async fn diff_page(
    req: HttpRequest,
    stores: web::Data<Stores>,
    cache: web::Data<PromptCache>,
    member: ProjectMember,
    query: web::Query<DiffQuery>,
) -> Result<HttpResponse, UiError> {
    let name = path_name(&req)?;
    let (versions, _) = load_versions(&cache, &member, &name).await?;
    let newest = versions[0].version;
    let to = query.to.unwrap_or(newest);
    let from = query.from.unwrap_or_else(|| {
        versions
            .iter()
            .map(|v| v.version)
            .filter(|v| *v < to)
            .max()
            .unwrap_or(to)
    });
    let find = |v: i32| {
        versions
            .iter()
            .find(|r| r.version == v)
            .ok_or(UiError::NotFound)
    };
    let (old, new) = (find(from)?, find(to)?);
    let sections = vec![
        diff_section(
            "Prompt",
            &comparable_text(&old.prompt),
            &comparable_text(&new.prompt),
        ),
        diff_section(
            "Config",
            &pretty_json(&old.config),
            &pretty_json(&new.config),
        ),
    ];
    let url = prompt_url(member.project_id.as_str(), &name);
    let page = DiffPage {
        prompts_css_url: assets::prompts_css_url(),
        shell: shell(&stores, &member, format!("{name} · diff")).await?,
        project_id: member.project_id.as_str().to_string(),
        diff_url: format!("{url}/diff"),
        url,
        name,
        from,
        to,
        versions: versions.iter().map(|v| v.version).collect(),
        split: query.view.as_deref() == Some("split"),
        sections,
        prompts_js_url: assets::prompts_js_url(),
    };
    html(&page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_query_keeps_its_filters_from_page_to_page() {
        let q = ListQuery::parse("search=a%26b&tag=%20x%20&page=3").unwrap();
        assert_eq!((q.search.as_str(), q.tag.as_str(), q.page), ("a&b", "x", 3));
        assert_eq!(q.href("/p", 4), "/p?search=a%26b&tag=x&page=4");
        assert_eq!(q.href("/p", 1), "/p?search=a%26b&tag=x");
        assert_eq!(ListQuery::parse("").unwrap().page, 1);
        for bad in ["page=0", "page=-1", "page=x", "page=99999999999999999999"] {
            assert!(ListQuery::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_diff_marks_changed_lines_on_both_sides() {
        let section = diff_section("Prompt", "a\nb\nc\n", "a\nB\nc\nd\n");
        let kinds: Vec<_> = section
            .unified
            .iter()
            .map(|l| (l.kind, l.text.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("same", "a"),
                ("del", "b"),
                ("add", "B"),
                ("same", "c"),
                ("add", "d")
            ]
        );
        assert!(section.changed);
        let pair = &section.split[1];
        assert_eq!(pair.left.as_ref().unwrap().text, "b");
        assert_eq!(pair.right.as_ref().unwrap().text, "B");
        assert!(section.split[3].left.is_none());
        assert!(!diff_section("Config", "{}", "{}").changed);
    }

    #[test]
    fn the_form_is_checked_as_the_api_body_and_bad_config_is_a_form_error() {
        let form = VersionForm {
            name: "folder/greeting".into(),
            kind: "chat".into(),
            messages: r#"[{"role":"system","content":"Hi {{name}}"}]"#.into(),
            config: r#"{"temperature": 0.2}"#.into(),
            commit_message: " first ".into(),
            labels: "production, staging".into(),
            ..VersionForm::default()
        };
        let new = prompt::parse_new_prompt(&form_body(&form).unwrap()).unwrap();
        assert_eq!(new.labels, vec!["production", "staging"]);
        let text = VersionForm {
            kind: "text".into(),
            text: "a\r\nb".into(),
            ..form.clone()
        };
        assert_eq!(
            form_body(&text).unwrap()["prompt"],
            "a\nb",
            "line breaks as typed"
        );
        assert_eq!(new.commit_message.as_deref(), Some("first"));
        let bad = VersionForm {
            config: "{temperature: 0.2".into(),
            ..form.clone()
        };
        assert!(form_body(&bad)
            .unwrap_err()
            .contains("config is not valid JSON"));
        let list = VersionForm {
            config: "[1]".into(),
            ..form
        };
        assert!(form_body(&list).unwrap_err().contains("JSON object"));
    }

    #[test]
    fn protected_labels_are_found_among_the_requested() {
        let protected = vec!["production".to_string()];
        assert_eq!(
            protected_among(&["staging".into(), "production".into()], &protected),
            vec!["production".to_string()]
        );
        assert!(protected_among(&["staging".into()], &protected).is_empty());
    }

    #[test]
    fn chat_content_is_shown_as_messages_and_escaped() {
        let content = json!([
            {"role": "system", "content": "<script>alert(1)</script>"},
            {"type": "placeholder", "name": "history"}
        ]);
        let view = ContentView::of(&content);
        assert_eq!(view.messages.len(), 2);
        assert!(view.messages[1].placeholder);
        assert_eq!(
            comparable_text(&content),
            "[system]\n<script>alert(1)</script>\n[placeholder: history]\n"
        );
    }

    fn page(can_write: bool, can_protected: bool) -> PromptPage {
        let payload = "<img src=x onerror=alert(1)>";
        let now = ShownTime::new(chrono::Utc::now());
        PromptPage {
            prompts_css_url: "/a.css",
            shell: Shell::anonymous("Prompt"),
            project_id: "p1".into(),
            name: "folder/x".into(),
            url: "/project/p1/prompts/folder%2Fx".into(),
            versions: vec![VersionRow {
                version: 1,
                url: "/project/p1/prompts/folder%2Fx?version=1".into(),
                selected: true,
                labels: vec!["production".into()],
                commit_message: payload.into(),
                author: payload.into(),
                created: ShownTime::new(chrono::Utc::now()),
            }],
            selected: SelectedView {
                version: 1,
                kind: "text",
                labels: vec![LabelView {
                    label: "production".into(),
                    protected: true,
                    removable: can_write && can_protected,
                }],
                content: ContentView::of(&json!(payload)),
                resolved: None,
                config: "{}".into(),
                commit_message: payload.into(),
                author: payload.into(),
                created: now,
                tags: vec![payload.into()],
            },
            can_write,
            can_protected,
            known_labels: vec!["staging".into()],
            protected: vec!["production".into()],
            diff_base: None,
            notice: None,
            prompts_js_url: "/a.js",
        }
    }

    #[test]
    fn a_viewer_gets_the_prompt_without_forms_and_stored_text_is_escaped() {
        let html = page(false, false).render().unwrap();
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(html.contains("&#60;img src=x onerror=alert(1)&#62;"));
        assert!(!html.contains("method=\"post\" action=\"/project/p1/prompts"));
        assert!(!html.contains("New version"));
    }

    #[test]
    fn a_member_may_set_labels_but_is_not_offered_a_protected_ones_removal() {
        let member = page(true, false).render().unwrap();
        assert!(member.contains("id=\"set-label\""));
        assert!(!member.contains("/labels/remove"));
        assert!(member.contains("only by owners and admins"));
        let owner = page(true, true).render().unwrap();
        assert!(owner.contains("/labels/remove"));
    }
}
