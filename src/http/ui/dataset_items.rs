//! A dataset's items: the list, `/project/{projectId}/datasets/{datasetId}/items` (every item,
//! archived ones marked, newest first), an item's page, `…/items/{itemId}` (its values, where it
//! came from, the runs that used it, and the form that edits it), archive and restore, and
//! `POST /project/{projectId}/dataset-items`, which creates an item from the list's form or from
//! a trace's page ("Add to dataset", which links the item to the trace or observation it came
//! from, as Langfuse's `sourceTraceId` and `sourceObservationId`).
//!
//! Writes go through `storage::postgres::datasets::upsert_item`, the API's own write, so the
//! dataset's schemas are checked the same way and an edit makes a new version of the item.
//! Values are JSON: a field left empty is no value (an edit that empties a field clears it).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde_json::Value;

use crate::domain::dataset::{ItemChanges, ItemStatus};
use crate::http::auth::ProjectMember;
use crate::storage::clickhouse::dataset_compare::{self, RunItemTarget};
use crate::storage::postgres::dataset_overview;
use crate::storage::postgres::datasets::{self as store, DatasetItem, ItemFilter};
use crate::storage::Stores;

use super::dataset_runs::{cell_view, CellView};
use super::datasets::{
    dataset_href, datasets_href, json_field, load_dataset, page_number, pager, pretty_json,
    require_writer, run_href, value_html, write_refusal, DatasetHead, ListQuery, PAGE_SIZE,
};
use super::error::{html, html_with_status, see_other, UiError};
use super::path_segment;
use super::shell::{Shell, ShownTime};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/project/{projectId}/datasets/{datasetId}/items",
        web::get().to(items_page),
    )
    .route(
        "/project/{projectId}/datasets/{datasetId}/items/{itemId}",
        web::get().to(item_page),
    )
    .route(
        "/project/{projectId}/datasets/{datasetId}/items/{itemId}",
        web::post().to(edit_item),
    )
    .route(
        "/project/{projectId}/datasets/{datasetId}/items/{itemId}/archive",
        web::post().to(archive_item),
    )
    .route(
        "/project/{projectId}/datasets/{datasetId}/items/{itemId}/restore",
        web::post().to(restore_item),
    )
    .route(
        "/project/{projectId}/dataset-items",
        web::post().to(create_item),
    );
}

/// How many characters of an item's input and expected output the list shows.
const PREVIEW_CHARS: usize = 160;
/// The runs an item's page lists at most.
const ITEM_RUNS: u64 = 50;

/// `…/datasets/{datasetId}/items/{itemId}`.
pub fn item_href(project_id: &str, dataset_id: &str, item_id: &str) -> String {
    format!(
        "{}/items/{}",
        dataset_href(project_id, dataset_id),
        path_segment(item_id)
    )
}

/// An id short enough for a table: whole up to 24 characters, else its first 8 and `…`.
pub fn short_id(id: &str) -> String {
    if id.chars().count() <= 24 {
        id.to_string()
    } else {
        format!("{}…", id.chars().take(8).collect::<String>())
    }
}

/// A value on one line, cut to `PREVIEW_CHARS`: a JSON string as its text, anything else as
/// compact JSON; empty for none.
fn preview(value: Option<&Value>) -> String {
    let text = match value {
        None | Some(Value::Null) => return String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > PREVIEW_CHARS {
        format!("{}…", line.chars().take(PREVIEW_CHARS).collect::<String>())
    } else {
        line
    }
}

/// Where an item came from: the trace's page, with the observation selected when it names one.
fn source_link(
    project_id: &str,
    trace_id: Option<&str>,
    observation_id: Option<&str>,
) -> (String, String) {
    match trace_id.filter(|t| !t.is_empty()) {
        Some(trace_id) => {
            let mut href = format!(
                "/project/{}/traces/{}",
                path_segment(project_id),
                path_segment(trace_id)
            );
            let label = match observation_id.filter(|o| !o.is_empty()) {
                Some(observation) => {
                    href.push_str("?observation=");
                    href.push_str(&path_segment(observation));
                    format!("Observation {}", short_id(observation))
                }
                None => format!("Trace {}", short_id(trace_id)),
            };
            (href, label)
        }
        None => (String::new(), String::new()),
    }
}

fn item_source(project_id: &str, item: &DatasetItem) -> (String, String) {
    source_link(
        project_id,
        item.fields.source_trace_id.as_deref(),
        item.fields.source_observation_id.as_deref(),
    )
}

pub struct ItemRow {
    pub id: String,
    pub short_id: String,
    pub href: String,
    pub archived: bool,
    pub input: String,
    pub expected_output: String,
    pub source_href: String,
    pub source_label: String,
    pub updated: ShownTime,
}

#[derive(Template)]
#[template(path = "datasets/items.html")]
pub struct ItemsPage {
    pub shell: Shell,
    pub css_url: &'static str,
    pub trace_css_url: &'static str,
    pub head: DatasetHead,
    pub can_write: bool,
    pub notice: Option<&'static str>,
    pub items: Vec<ItemRow>,
    pub page: u64,
    pub previous_href: Option<String>,
    pub next_href: Option<String>,
    /// The new item's form (empty).
    pub form: ItemForm,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "The item was added.",
        "saved" => "The item was saved.",
        "archived" => "The item was archived: experiments leave it out.",
        "restored" => "The item was restored.",
        _ => return None,
    })
}

async fn items_page(
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String)>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, UiError> {
    let dataset = load_dataset(&stores, &member, &super::datasets::decoded(&path.1)).await?;
    let page = page_number(query.page.as_deref());
    let head = DatasetHead::of(&stores, &member, &dataset, "items").await?;
    let filter = ItemFilter {
        dataset_id: Some(dataset.id.clone()),
        ..ItemFilter::default()
    };
    let (items, total) = store::list_items(
        &stores.postgres,
        &member.project_id,
        &filter,
        (page - 1) * PAGE_SIZE,
        PAGE_SIZE,
    )
    .await?;
    let project_id = member.project_id.as_str();
    let (previous_href, next_href) = pager(&format!("{}/items", head.href), page, total, PAGE_SIZE);
    let page = ItemsPage {
        shell: Shell::of_project(
            &stores,
            &member,
            format!("Items · {} · {}", dataset.name, member.project_name),
            "datasets",
        )
        .await?,
        css_url: super::assets::datasets_css_url(),
        trace_css_url: super::assets::trace_css_url(),
        can_write: member.role.can_write(),
        notice: notice(query.done.as_deref()),
        items: items
            .iter()
            .map(|item| {
                let (source_href, source_label) = item_source(project_id, item);
                ItemRow {
                    short_id: short_id(&item.id),
                    href: item_href(project_id, &dataset.id, &item.id),
                    id: item.id.clone(),
                    archived: item.fields.status == ItemStatus::Archived,
                    input: preview(item.fields.input.as_ref()),
                    expected_output: preview(item.fields.expected_output.as_ref()),
                    source_href,
                    source_label,
                    updated: ShownTime::new(item.updated_at),
                }
            })
            .collect(),
        page,
        previous_href,
        next_href,
        form: ItemForm::default(),
        head,
    };
    html(&page)
}

/// An item's form as written: its JSON fields, and for a new item its dataset and source.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct ItemForm {
    pub dataset_id: String,
    pub input: String,
    pub expected_output: String,
    pub metadata: String,
    pub source_trace_id: String,
    pub source_observation_id: String,
}

impl ItemForm {
    /// The form of an existing item: its values, indented.
    fn of(item: &DatasetItem) -> ItemForm {
        ItemForm {
            dataset_id: item.dataset_id.clone(),
            input: pretty_json(item.fields.input.as_ref()),
            expected_output: pretty_json(item.fields.expected_output.as_ref()),
            metadata: pretty_json(item.fields.metadata.as_ref()),
            ..ItemForm::default()
        }
    }

    /// The values as a write of a new item sends them (an empty field: none).
    pub fn new_item(&self) -> Result<ItemChanges, String> {
        let nonempty = |s: &str| {
            Some(super::datasets::without_nul(s).trim().to_string()).filter(|s| !s.is_empty())
        };
        let source_trace_id = nonempty(&self.source_trace_id);
        Ok(ItemChanges {
            input: json_field("Input", &self.input)?,
            expected_output: json_field("Expected output", &self.expected_output)?,
            metadata: json_field("Metadata", &self.metadata)?,
            // An observation is only a source together with its trace.
            source_observation_id: source_trace_id
                .as_ref()
                .and(nonempty(&self.source_observation_id)),
            source_trace_id,
            status: None,
        })
    }

    /// The values as an edit sends them: every field, an empty one as JSON `null`, which
    /// clears it (a write that leaves a field out keeps it).
    pub fn edit(&self) -> Result<ItemChanges, String> {
        let field = |label: &str, text: &str| {
            json_field(label, text).map(|v| Some(v.unwrap_or(Value::Null)))
        };
        Ok(ItemChanges {
            input: field("Input", &self.input)?,
            expected_output: field("Expected output", &self.expected_output)?,
            metadata: field("Metadata", &self.metadata)?,
            ..ItemChanges::default()
        })
    }
}

pub struct ItemView {
    pub id: String,
    pub href: String,
    pub archived: bool,
    pub created: ShownTime,
    pub updated: ShownTime,
    pub source_href: String,
    pub source_label: String,
    /// Safe HTML from `render`.
    pub input_html: String,
    pub expected_output_html: String,
    pub metadata_html: String,
}

/// A run that used the item, with what it produced.
pub struct ItemRunView {
    pub run_name: String,
    pub run_href: String,
    pub cell: CellView,
}

#[derive(Template)]
#[template(path = "datasets/item.html")]
pub struct ItemPage {
    pub shell: Shell,
    pub css_url: &'static str,
    pub trace_css_url: &'static str,
    pub head: DatasetHead,
    pub can_write: bool,
    pub notice: Option<&'static str>,
    pub item: ItemView,
    pub form: ItemForm,
    pub error: Option<String>,
    pub runs: Vec<ItemRunView>,
}

/// The item `item_id` of the dataset, or the 404 (an item of another dataset included).
async fn load_item(
    stores: &Stores,
    member: &ProjectMember,
    dataset_id: &str,
    item_id: &str,
) -> Result<DatasetItem, UiError> {
    store::get_item(&stores.postgres, &member.project_id, item_id, None)
        .await?
        .filter(|item| item.dataset_id == dataset_id)
        .ok_or(UiError::NotFound)
}

async fn render_item(
    stores: &Stores,
    member: &ProjectMember,
    status: StatusCode,
    item: &DatasetItem,
    form: ItemForm,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Result<HttpResponse, UiError> {
    let dataset = load_dataset(stores, member, &item.dataset_id).await?;
    let head = DatasetHead::of(stores, member, &dataset, "items").await?;
    let project_id = member.project_id.as_str();
    let item_runs =
        dataset_overview::runs_of_item(&stores.postgres, &member.project_id, &item.id, ITEM_RUNS)
            .await?;
    let targets: Vec<RunItemTarget> = item_runs
        .iter()
        .map(|r| RunItemTarget {
            trace_id: r.trace_id.clone(),
            observation_id: r.observation_id.clone(),
        })
        .collect();
    let results =
        dataset_compare::results(&stores.clickhouse, &member.project_id, &targets, true).await?;
    let runs = item_runs
        .iter()
        .zip(&targets)
        .map(|(r, target)| ItemRunView {
            run_name: r.run_name.clone(),
            run_href: run_href(&head.href, &r.run_id),
            cell: cell_view(project_id, target, results.get(target)),
        })
        .collect();
    let (source_href, source_label) = item_source(project_id, item);
    let page = ItemPage {
        shell: Shell::of_project(
            stores,
            member,
            format!("Item {} · {}", short_id(&item.id), dataset.name),
            "datasets",
        )
        .await?,
        css_url: super::assets::datasets_css_url(),
        trace_css_url: super::assets::trace_css_url(),
        can_write: member.role.can_write(),
        notice,
        item: ItemView {
            id: item.id.clone(),
            href: item_href(project_id, &item.dataset_id, &item.id),
            archived: item.fields.status == ItemStatus::Archived,
            created: ShownTime::new(item.created_at),
            updated: ShownTime::new(item.updated_at),
            source_href,
            source_label,
            input_html: value_html(item.fields.input.as_ref()),
            expected_output_html: value_html(item.fields.expected_output.as_ref()),
            metadata_html: value_html(item.fields.metadata.as_ref()),
        },
        form,
        error,
        runs,
        head,
    };
    html_with_status(status, &page)
}

async fn item_page(
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String, String)>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, UiError> {
    let (_, dataset_id, item_id) = path.into_inner();
    let (dataset_id, item_id) = (
        super::datasets::decoded(&dataset_id),
        super::datasets::decoded(&item_id),
    );
    let item = load_item(&stores, &member, &dataset_id, &item_id).await?;
    render_item(
        &stores,
        &member,
        StatusCode::OK,
        &item,
        ItemForm::of(&item),
        notice(query.done.as_deref()),
        None,
    )
    .await
}

async fn edit_item(
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String, String)>,
    form: web::Form<ItemForm>,
) -> Result<HttpResponse, UiError> {
    require_writer(&member)?;
    let (_, dataset_id, item_id) = path.into_inner();
    let (dataset_id, item_id) = (
        super::datasets::decoded(&dataset_id),
        super::datasets::decoded(&item_id),
    );
    let item = load_item(&stores, &member, &dataset_id, &item_id).await?;
    let form = form.into_inner();
    let refusal = match form.edit() {
        Err(message) => message,
        Ok(changes) => match store::upsert_item(
            &stores.postgres,
            &member.project_id,
            &dataset_id,
            Some(&item_id),
            changes,
        )
        .await
        {
            Ok(saved) => {
                return Ok(see_other(&format!(
                    "{}?done=saved",
                    item_href(member.project_id.as_str(), &dataset_id, &saved.id)
                )))
            }
            Err(e) => write_refusal(e)?,
        },
    };
    render_item(
        &stores,
        &member,
        StatusCode::BAD_REQUEST,
        &item,
        form,
        None,
        Some(refusal),
    )
    .await
}

/// Where an archive or restore goes back to: the list when it was asked there.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct StatusForm {
    pub back: String,
}

async fn set_status(
    stores: &Stores,
    member: &ProjectMember,
    path: (String, String, String),
    back: &str,
    status: ItemStatus,
) -> Result<HttpResponse, UiError> {
    require_writer(member)?;
    let (_, dataset_id, item_id) = path;
    let (dataset_id, item_id) = (
        super::datasets::decoded(&dataset_id),
        super::datasets::decoded(&item_id),
    );
    load_item(stores, member, &dataset_id, &item_id).await?;
    store::set_item_status(&stores.postgres, &member.project_id, &item_id, status)
        .await
        .map_err(|e| match write_refusal(e) {
            Ok(message) => UiError::BadRequest(message),
            Err(e) => e,
        })?
        .ok_or(UiError::NotFound)?;
    let done = match status {
        ItemStatus::Archived => "archived",
        ItemStatus::Active => "restored",
    };
    let project_id = member.project_id.as_str();
    let location = if back == "items" {
        format!(
            "{}/items?done={done}",
            dataset_href(project_id, &dataset_id)
        )
    } else {
        format!(
            "{}?done={done}",
            item_href(project_id, &dataset_id, &item_id)
        )
    };
    Ok(see_other(&location))
}

async fn archive_item(
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String, String)>,
    form: web::Form<StatusForm>,
) -> Result<HttpResponse, UiError> {
    set_status(
        &stores,
        &member,
        path.into_inner(),
        &form.back,
        ItemStatus::Archived,
    )
    .await
}

async fn restore_item(
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String, String)>,
    form: web::Form<StatusForm>,
) -> Result<HttpResponse, UiError> {
    set_status(
        &stores,
        &member,
        path.into_inner(),
        &form.back,
        ItemStatus::Active,
    )
    .await
}

/// A dataset a form offers.
pub struct DatasetChoice {
    pub id: String,
    pub name: String,
}

/// The datasets of the project a form offers (the newest first), at most this many.
const DATASET_CHOICES: u64 = 200;

async fn dataset_choices(
    stores: &Stores,
    member: &ProjectMember,
) -> Result<Vec<DatasetChoice>, UiError> {
    let (datasets, _) =
        store::list_datasets(&stores.postgres, &member.project_id, 0, DATASET_CHOICES).await?;
    Ok(datasets
        .into_iter()
        .map(|d| DatasetChoice {
            id: d.id,
            name: d.name,
        })
        .collect())
}

#[derive(Template)]
#[template(path = "datasets/item_new.html")]
pub struct NewItemPage {
    pub shell: Shell,
    pub css_url: &'static str,
    pub trace_css_url: &'static str,
    pub project_id: String,
    pub datasets: Vec<DatasetChoice>,
    pub form: ItemForm,
    pub source_href: String,
    pub source_label: String,
    pub error: Option<String>,
}

async fn create_item(
    stores: web::Data<Stores>,
    member: ProjectMember,
    form: web::Form<ItemForm>,
) -> Result<HttpResponse, UiError> {
    require_writer(&member)?;
    let form = form.into_inner();
    let project_id = member.project_id.as_str().to_string();
    let (status, refusal) = match form.new_item() {
        Err(message) => (StatusCode::BAD_REQUEST, message),
        Ok(changes) => {
            match store::upsert_item(
                &stores.postgres,
                &member.project_id,
                &form.dataset_id,
                None,
                changes,
            )
            .await
            {
                Ok(item) => {
                    return Ok(see_other(&format!(
                        "{}?done=created",
                        item_href(&project_id, &item.dataset_id, &item.id)
                    )))
                }
                Err(store::DatasetWriteError::NotFound(_)) => (
                    StatusCode::BAD_REQUEST,
                    "Choose a dataset of this project.".to_string(),
                ),
                Err(e) => (StatusCode::BAD_REQUEST, write_refusal(e)?),
            }
        }
    };
    // Shown again on a page of its own, as the form may have come from a trace's page.
    let (source_href, source_label) = source_link(
        &project_id,
        Some(form.source_trace_id.as_str()),
        Some(form.source_observation_id.as_str()),
    );
    let page = NewItemPage {
        shell: Shell::of_project(
            &stores,
            &member,
            format!("New dataset item · {}", member.project_name),
            "datasets",
        )
        .await?,
        css_url: super::assets::datasets_css_url(),
        trace_css_url: super::assets::trace_css_url(),
        datasets: dataset_choices(&stores, &member).await?,
        form,
        source_href,
        source_label,
        error: Some(refusal),
        project_id,
    };
    html_with_status(status, &page)
}

/// "Add to dataset" on a trace's page, for the trace or one of its observations.
pub struct TraceDatasetForm {
    pub action: String,
    pub csrf_token: String,
    pub trace_id: String,
    /// Empty for the trace itself.
    pub observation_id: String,
    pub datasets: Vec<DatasetChoice>,
    pub datasets_href: String,
    /// The input and output, indented, as the item's input and expected output to start from.
    pub input: String,
    pub expected_output: String,
}

/// Values longer than this (bytes of stored JSON) are not copied into the form: the text area
/// would be unwieldy; people write the item's values themselves.
const PREFILL_AT_MOST: usize = 256 * 1024;

fn prefill(stored: Option<&str>) -> String {
    match stored.filter(|s| !s.is_empty() && *s != "null" && s.len() <= PREFILL_AT_MOST) {
        Some(text) => serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| text.to_string()),
        None => String::new(),
    }
}

/// The form for someone who may write (a MEMBER or above), or `None`.
pub async fn trace_form(
    stores: &Stores,
    member: &ProjectMember,
    trace_id: &str,
    observation_id: Option<&str>,
    input: Option<&str>,
    output: Option<&str>,
) -> Result<Option<TraceDatasetForm>, UiError> {
    if !member.role.can_write() {
        return Ok(None);
    }
    let project_id = member.project_id.as_str();
    Ok(Some(TraceDatasetForm {
        action: format!("/project/{}/dataset-items", path_segment(project_id)),
        csrf_token: member.signed_in.csrf_token.clone(),
        trace_id: trace_id.to_string(),
        observation_id: observation_id.unwrap_or_default().to_string(),
        datasets: dataset_choices(stores, member).await?,
        datasets_href: datasets_href(project_id),
        input: prefill(input),
        expected_output: prefill(output),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_and_values_are_shortened_for_the_list() {
        assert_eq!(short_id("item-1"), "item-1");
        assert_eq!(
            short_id("0f8a1c2e-5d4b-4e6f-9a7b-1c2d3e4f5a6b"),
            "0f8a1c2e…"
        );
        assert_eq!(preview(None), "");
        assert_eq!(preview(Some(&json!("two\n  lines"))), "two lines");
        assert_eq!(preview(Some(&json!({"q": 1}))), r#"{"q":1}"#);
        let long = preview(Some(&json!("x".repeat(500))));
        assert_eq!(long.chars().count(), PREVIEW_CHARS + 1);
    }

    #[test]
    fn a_new_item_leaves_empty_fields_out_and_an_edit_clears_them() {
        let form = ItemForm {
            dataset_id: "d".into(),
            input: r#"{"question": "hi"}"#.into(),
            expected_output: String::new(),
            metadata: " ".into(),
            source_trace_id: String::new(),
            source_observation_id: "o-1".into(),
        };
        let new = form.new_item().unwrap();
        assert_eq!(new.input, Some(json!({"question": "hi"})));
        assert_eq!(new.expected_output, None);
        assert_eq!(
            new.source_observation_id, None,
            "no observation without its trace"
        );
        let edit = form.edit().unwrap();
        assert_eq!(edit.expected_output, Some(Value::Null));
        assert_eq!(edit.metadata, Some(Value::Null));
        let bad = ItemForm {
            expected_output: "not json".into(),
            ..form
        };
        assert!(bad.new_item().unwrap_err().starts_with("Expected output"));
    }

    #[test]
    fn the_trace_form_starts_from_indented_values() {
        assert_eq!(prefill(Some(r#"{"a":1}"#)), "{\n  \"a\": 1\n}");
        assert_eq!(prefill(Some("null")), "");
        assert_eq!(prefill(None), "");
        let huge = format!("\"{}\"", "x".repeat(PREFILL_AT_MOST));
        assert_eq!(prefill(Some(&huge)), "");
    }
}
