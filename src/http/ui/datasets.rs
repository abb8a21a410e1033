//! A project's datasets, `/project/{projectId}/datasets` (Langfuse's URLs): the list with each
//! dataset's items, runs and last run, and a form that creates one (name, description, metadata,
//! the JSON Schemas of its items); a dataset's page, `/datasets/{datasetId}`, lists its runs, to
//! be compared (`dataset_runs`), and what the dataset is. Its items are `dataset_items`.
//!
//! Writes go through `storage::postgres::datasets`, as `/api/public/v2/datasets` does, with the
//! name checked by the same `domain::dataset::dataset_name`. Unlike the API's create, which
//! updates a dataset of the same name, the form refuses a name in use: people creating a dataset
//! mean a new one. Members, admins and owners write (`datasets:CUD`), viewers read.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde_json::Value;

use crate::domain::dataset;
use crate::http::auth::ProjectMember;
use crate::storage::clickhouse::dataset_compare::{self, RunItemResult, RunItemTarget};
use crate::storage::postgres::dataset_overview::{self, DatasetCounts};
use crate::storage::postgres::datasets::{
    self as store, Dataset, DatasetRun, DatasetUpsert, DatasetWriteError,
};
use crate::storage::Stores;

use super::dataset_runs::{run_column, RunColumn, ScoreChip};
use super::error::{html, html_with_status, see_other, UiError};
use super::path_segment;
use super::render;
use super::shell::{Shell, ShownTime};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/project/{projectId}/datasets", web::get().to(list_page))
        .route("/project/{projectId}/datasets", web::post().to(create))
        .route(
            "/project/{projectId}/datasets/{datasetId}",
            web::get().to(runs_page),
        );
}

/// Datasets per page of the list, runs per page of a dataset's page.
pub const PAGE_SIZE: u64 = 50;

/// `/project/{projectId}/datasets`.
pub fn datasets_href(project_id: &str) -> String {
    format!("/project/{}/datasets", path_segment(project_id))
}

/// `/project/{projectId}/datasets/{datasetId}`.
pub fn dataset_href(project_id: &str, dataset_id: &str) -> String {
    format!("{}/{}", datasets_href(project_id), path_segment(dataset_id))
}

/// A name as its folder (all before the last `/`, empty without one) and its own part.
pub fn folder_and_leaf(name: &str) -> (String, String) {
    match name.rsplit_once('/') {
        Some((folder, leaf)) if !leaf.is_empty() => (folder.to_string(), leaf.to_string()),
        _ => (String::new(), name.to_string()),
    }
}

/// A JSON field of a form: empty is `None`; anything else must be JSON, or the refusal says
/// where it is not. NUL characters, which PostgreSQL cannot store, are dropped, as the API does.
pub fn json_field(label: &str, text: &str) -> Result<Option<Value>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    serde_json::from_str(text)
        .map(|value| Some(dataset::without_nul(value)))
        .map_err(|e| {
            format!("{label} is not valid JSON ({e}). Text goes in double quotes, like \"this\".")
        })
}

/// A value as a form shows it for editing: indented JSON.
pub fn pretty_json(value: Option<&Value>) -> String {
    value
        .filter(|v| !v.is_null())
        .and_then(|v| serde_json::to_string_pretty(v).ok())
        .unwrap_or_default()
}

/// A JSON value for a person (a tree, a conversation, markdown), safe HTML from [`render`];
/// empty for none.
pub fn value_html(value: Option<&Value>) -> String {
    match value.filter(|v| !v.is_null()) {
        Some(v) => render::value_html(v),
        None => String::new(),
    }
}

/// A path segment's id, fully percent-decoded: the router leaves `%2F`, `%25` and `%2B` encoded
/// within a segment, and item ids, chosen by clients, may hold `/`, `%` or `+`.
pub fn decoded(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned()
}

/// Form text without NUL characters, which PostgreSQL cannot store (the API drops them too).
pub fn without_nul(text: &str) -> String {
    text.replace('\0', "")
}

pub fn require_writer(member: &ProjectMember) -> Result<(), UiError> {
    if member.role.can_write() {
        Ok(())
    } else {
        Err(UiError::Forbidden(
            "Your role on this project reads datasets but does not change them.".into(),
        ))
    }
}

/// A refused write as the UI answers it: a rule broken or a collision is the form's message,
/// a missing dataset or item the 404.
pub fn write_refusal(error: DatasetWriteError) -> Result<String, UiError> {
    match error {
        DatasetWriteError::Invalid(message) | DatasetWriteError::Conflict(message) => Ok(message),
        DatasetWriteError::NotFound(_) => Err(UiError::NotFound),
        DatasetWriteError::Store(cause) => Err(UiError::Internal(cause)),
    }
}

/// The dataset `dataset_id` of the member's project, or the 404.
pub async fn load_dataset(
    stores: &Stores,
    member: &ProjectMember,
    dataset_id: &str,
) -> Result<Dataset, UiError> {
    store::get_dataset(&stores.postgres, &member.project_id, dataset_id)
        .await?
        .ok_or(UiError::NotFound)
}

/// The head of a dataset's pages (`templates/datasets/header.html`): its name, description and
/// the tabs with their counts.
pub struct DatasetHead {
    pub project_id: String,
    pub id: String,
    pub name: String,
    pub folder: String,
    pub leaf: String,
    pub description: String,
    pub href: String,
    pub items: u64,
    pub runs: u64,
    /// `runs`, `items`, `settings`, or empty when the page is another tab's (`extra_tab`).
    pub tab: &'static str,
    /// Whether the member may change the dataset (the settings tab is theirs alone).
    pub can_write: bool,
    /// A tab of this page alone (a run, a comparison), shown current; empty: none.
    pub extra_tab: String,
    pub extra_href: String,
}

impl DatasetHead {
    pub async fn of(
        stores: &Stores,
        member: &ProjectMember,
        dataset: &Dataset,
        tab: &'static str,
    ) -> Result<DatasetHead, UiError> {
        let counts = dataset_overview::dataset_counts(
            &stores.postgres,
            &member.project_id,
            std::slice::from_ref(&dataset.id),
        )
        .await?
        .remove(&dataset.id)
        .unwrap_or_default();
        let project_id = member.project_id.as_str().to_string();
        let (folder, leaf) = folder_and_leaf(&dataset.name);
        Ok(DatasetHead {
            href: dataset_href(&project_id, &dataset.id),
            project_id,
            id: dataset.id.clone(),
            name: dataset.name.clone(),
            folder,
            leaf,
            description: dataset.description.clone().unwrap_or_default(),
            items: counts.items,
            runs: counts.runs,
            tab,
            can_write: member.role.can_write(),
            extra_tab: String::new(),
            extra_href: String::new(),
        })
    }
}

/// A page's number from its query (1 when absent or not a number).
pub fn page_number(page: Option<&str>) -> u64 {
    page.and_then(|p| p.trim().parse::<u64>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1)
}

/// The links to the previous and next page of `base` (a path without query), given the total.
pub fn pager(base: &str, page: u64, total: u64, size: u64) -> (Option<String>, Option<String>) {
    let previous = (page > 1).then(|| {
        if page == 2 {
            base.to_string()
        } else {
            format!("{base}?page={}", page - 1)
        }
    });
    let next = (page * size < total).then(|| format!("{base}?page={}", page + 1));
    (previous, next)
}

pub struct DatasetRow {
    pub id: String,
    pub href: String,
    pub folder: String,
    pub leaf: String,
    pub description: String,
    pub items: u64,
    pub runs: u64,
    pub last_run: Option<ShownTime>,
    pub created: ShownTime,
}

/// The create form as written, shown back after a refusal.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct DatasetForm {
    pub name: String,
    pub description: String,
    pub metadata: String,
    pub input_schema: String,
    pub expected_output_schema: String,
}

impl DatasetForm {
    /// Whether any of the folded JSON fields was written (the form then shows them open).
    pub fn has_json(&self) -> bool {
        [
            &self.metadata,
            &self.input_schema,
            &self.expected_output_schema,
        ]
        .iter()
        .any(|f| !f.trim().is_empty())
    }

    /// The dataset the form asks for, or why not.
    pub fn upsert(&self) -> Result<DatasetUpsert, String> {
        let name = dataset::dataset_name(&without_nul(&self.name))?;
        let description = Some(without_nul(&self.description).trim())
            .filter(|d| !d.is_empty())
            .map(str::to_string);
        Ok(DatasetUpsert {
            name,
            description,
            metadata: json_field("Metadata", &self.metadata)?,
            input_schema: json_field("The input schema", &self.input_schema)?.map(Some),
            expected_output_schema: json_field(
                "The expected output schema",
                &self.expected_output_schema,
            )?
            .map(Some),
        })
    }
}

#[derive(Template)]
#[template(path = "datasets/list.html")]
pub struct DatasetsPage {
    pub shell: Shell,
    pub css_url: &'static str,
    pub trace_css_url: &'static str,
    pub project_id: String,
    pub role: String,
    pub can_write: bool,
    pub datasets: Vec<DatasetRow>,
    pub page: u64,
    pub previous_href: Option<String>,
    pub next_href: Option<String>,
    pub form: DatasetForm,
    pub notice: Option<&'static str>,
    pub error: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct ListQuery {
    pub page: Option<String>,
    pub done: Option<String>,
}

fn dataset_row(project_id: &str, d: &Dataset, counts: Option<&DatasetCounts>) -> DatasetRow {
    let (folder, leaf) = folder_and_leaf(&d.name);
    let counts = counts.cloned().unwrap_or_default();
    DatasetRow {
        href: dataset_href(project_id, &d.id),
        id: d.id.clone(),
        folder,
        leaf,
        description: d.description.clone().unwrap_or_default(),
        items: counts.items,
        runs: counts.runs,
        last_run: counts.last_run_at.map(ShownTime::new),
        created: ShownTime::new(d.created_at),
    }
}

async fn render_list(
    stores: &Stores,
    member: &ProjectMember,
    status: StatusCode,
    page: u64,
    form: DatasetForm,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Result<HttpResponse, UiError> {
    let project_id = member.project_id.as_str().to_string();
    let (datasets, total) = store::list_datasets(
        &stores.postgres,
        &member.project_id,
        (page - 1) * PAGE_SIZE,
        PAGE_SIZE,
    )
    .await?;
    let ids: Vec<String> = datasets.iter().map(|d| d.id.clone()).collect();
    let counts =
        dataset_overview::dataset_counts(&stores.postgres, &member.project_id, &ids).await?;
    let (previous_href, next_href) = pager(&datasets_href(&project_id), page, total, PAGE_SIZE);
    let page = DatasetsPage {
        shell: Shell::of_project(
            stores,
            member,
            format!("Datasets · {}", member.project_name),
            "datasets",
        )
        .await?,
        css_url: super::assets::datasets_css_url(),
        trace_css_url: super::assets::trace_css_url(),
        role: member.role.to_string(),
        can_write: member.role.can_write(),
        datasets: datasets
            .iter()
            .map(|d| dataset_row(&project_id, d, counts.get(&d.id)))
            .collect(),
        page,
        previous_href,
        next_href,
        form,
        notice,
        error,
        project_id,
    };
    html_with_status(status, &page)
}

async fn list_page(
    stores: web::Data<Stores>,
    member: ProjectMember,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, UiError> {
    let notice = match query.done.as_deref() {
        Some("deleted") => Some("The dataset was deleted."),
        _ => None,
    };
    render_list(
        &stores,
        &member,
        StatusCode::OK,
        page_number(query.page.as_deref()),
        DatasetForm::default(),
        notice,
        None,
    )
    .await
}

async fn create(
    stores: web::Data<Stores>,
    member: ProjectMember,
    form: web::Form<DatasetForm>,
) -> Result<HttpResponse, UiError> {
    require_writer(&member)?;
    let form = form.into_inner();
    let refused = |message: String| (StatusCode::BAD_REQUEST, message);
    let outcome = match form.upsert() {
        Err(message) => Err(refused(message)),
        Ok(upsert) => {
            match store::get_dataset_by_name(&stores.postgres, &member.project_id, &upsert.name)
                .await?
            {
                Some(_) => Err((
                    StatusCode::CONFLICT,
                    format!(
                        "A dataset named {:?} exists already; choose another name.",
                        upsert.name
                    ),
                )),
                None => match store::upsert_dataset(&stores.postgres, &member.project_id, &upsert)
                    .await
                {
                    Ok(created) => Ok(created),
                    Err(e) => Err(refused(write_refusal(e)?)),
                },
            }
        }
    };
    match outcome {
        Ok(created) => Ok(see_other(&format!(
            "{}?done=created",
            dataset_href(member.project_id.as_str(), &created.id)
        ))),
        Err((status, message)) => {
            render_list(&stores, &member, status, 1, form, None, Some(message)).await
        }
    }
}

pub struct RunRow {
    pub id: String,
    pub name: String,
    pub href: String,
    pub description: String,
    pub items: u64,
    /// Over all its items; `–` when not measured.
    pub avg_latency: String,
    pub total_cost: String,
    pub scores: Vec<ScoreChip>,
    pub created: ShownTime,
}

/// The run items the runs table reads figures for at most; a page of runs with more shows
/// their counts alone (the comparison still has every figure).
const RUN_FIGURES_AT_MOST: u64 = 20_000;

#[derive(Template)]
#[template(path = "datasets/runs.html")]
pub struct RunsPage {
    pub shell: Shell,
    pub css_url: &'static str,
    pub trace_css_url: &'static str,
    pub head: DatasetHead,
    pub notice: Option<&'static str>,
    pub runs: Vec<RunRow>,
    pub page: u64,
    pub previous_href: Option<String>,
    pub next_href: Option<String>,
    pub created: ShownTime,
    pub metadata_html: String,
    pub input_schema_html: String,
    pub expected_output_schema_html: String,
}

/// The href of a run's page.
pub fn run_href(dataset_href: &str, run_id: &str) -> String {
    format!("{dataset_href}/runs/{}", path_segment(run_id))
}

async fn runs_page(
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String)>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, UiError> {
    let dataset = load_dataset(&stores, &member, &decoded(&path.1)).await?;
    let page = page_number(query.page.as_deref());
    let head = DatasetHead::of(&stores, &member, &dataset, "runs").await?;
    let (runs, total) = store::list_runs(
        &stores.postgres,
        &member.project_id,
        &dataset.id,
        (page - 1) * PAGE_SIZE,
        PAGE_SIZE,
    )
    .await?;
    let run_ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
    let counts =
        dataset_overview::run_item_counts(&stores.postgres, &member.project_id, &run_ids).await?;
    let figures = run_figures(&stores, &member, &runs, &head.href, &run_ids).await?;
    let (previous_href, next_href) = pager(&head.href, page, total, PAGE_SIZE);
    let page = RunsPage {
        shell: Shell::of_project(
            &stores,
            &member,
            format!("{} · Datasets · {}", dataset.name, member.project_name),
            "datasets",
        )
        .await?,
        css_url: super::assets::datasets_css_url(),
        trace_css_url: super::assets::trace_css_url(),
        notice: match query.done.as_deref() {
            Some("created") => Some("The dataset was created. Add items to it under Items."),
            _ => None,
        },
        runs: runs
            .iter()
            .map(|r| {
                let measured = figures.get(&r.id);
                RunRow {
                    href: run_href(&head.href, &r.id),
                    id: r.id.clone(),
                    name: r.name.clone(),
                    description: r.description.clone().unwrap_or_default(),
                    items: counts.get(&r.id).copied().unwrap_or(0),
                    avg_latency: measured.map_or_else(|| "–".into(), |c| c.avg_latency.clone()),
                    total_cost: measured.map_or_else(|| "–".into(), |c| c.total_cost.clone()),
                    scores: figures
                        .get(&r.id)
                        .map(|c| {
                            c.scores
                                .iter()
                                .map(|s| ScoreChip {
                                    name: s.name.clone(),
                                    value: s.value.clone(),
                                    count: s.count,
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    created: ShownTime::new(r.created_at),
                }
            })
            .collect(),
        page,
        previous_href,
        next_href,
        created: ShownTime::new(dataset.created_at),
        metadata_html: value_html(dataset.metadata.as_ref()),
        input_schema_html: value_html(dataset.input_schema.as_ref()),
        expected_output_schema_html: value_html(dataset.expected_output_schema.as_ref()),
        head,
    };
    html(&page)
}

/// Each run's figures over all its items (the last record of each item), by run id; none when
/// the page's runs hold more than [`RUN_FIGURES_AT_MOST`] run items.
async fn run_figures(
    stores: &Stores,
    member: &ProjectMember,
    runs: &[DatasetRun],
    dataset_href: &str,
    run_ids: &[String],
) -> Result<HashMap<String, RunColumn>, UiError> {
    let Some(links) = dataset_overview::run_item_links(
        &stores.postgres,
        &member.project_id,
        run_ids,
        RUN_FIGURES_AT_MOST,
    )
    .await?
    else {
        return Ok(HashMap::new());
    };
    let mut by_run: HashMap<&str, HashMap<&str, RunItemTarget>> = HashMap::new();
    for link in &links {
        by_run.entry(link.run_id.as_str()).or_default().insert(
            link.item_id.as_str(),
            RunItemTarget {
                trace_id: link.trace_id.clone(),
                observation_id: link.observation_id.clone(),
            },
        );
    }
    let mut targets: Vec<RunItemTarget> =
        by_run.values().flat_map(|m| m.values().cloned()).collect();
    targets.sort_by(|a, b| (&a.trace_id, &a.observation_id).cmp(&(&b.trace_id, &b.observation_id)));
    targets.dedup();
    let results =
        dataset_compare::results(&stores.clickhouse, &member.project_id, &targets, false).await?;
    let empty = RunItemResult::default();
    Ok(runs
        .iter()
        .filter_map(|run| {
            let items = by_run.get(run.id.as_str())?;
            let measured: Vec<&RunItemResult> = items
                .values()
                .map(|t| results.get(t).unwrap_or(&empty))
                .collect();
            Some((
                run.id.clone(),
                run_column(run, run_href(dataset_href, &run.id), &measured),
            ))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_folder_and_leaf() {
        assert_eq!(
            folder_and_leaf("evals/support/v2"),
            ("evals/support".to_string(), "v2".to_string())
        );
        assert_eq!(folder_and_leaf("plain"), (String::new(), "plain".into()));
    }

    #[test]
    fn json_fields_are_json_or_empty() {
        assert_eq!(json_field("Input", "  "), Ok(None));
        assert_eq!(
            json_field("Input", r#"{"a": [1, "b"]}"#),
            Ok(Some(serde_json::json!({"a": [1, "b"]})))
        );
        assert_eq!(json_field("Input", "\"text\""), Ok(Some("text".into())));
        assert_eq!(
            json_field("Input", "{\"a\\u0000\": \"b\\u0000c\"}"),
            Ok(Some(serde_json::json!({"a": "bc"})))
        );
        let refused = json_field("Input", "plain words").unwrap_err();
        assert!(refused.starts_with("Input is not valid JSON"), "{refused}");
    }

    #[test]
    fn the_form_is_checked_by_the_api_rules() {
        let form = DatasetForm {
            name: " evals/support ".into(),
            description: "  ".into(),
            input_schema: r#"{"type": "object"}"#.into(),
            ..DatasetForm::default()
        };
        let upsert = form.upsert().unwrap();
        assert_eq!(upsert.name, "evals/support");
        assert_eq!(upsert.description, None);
        assert_eq!(
            upsert.input_schema,
            Some(Some(serde_json::json!({"type": "object"})))
        );
        assert_eq!(upsert.expected_output_schema, None);
        for bad in ["/lead", "a//b", "trail/", "<b>x</b>", "  "] {
            let form = DatasetForm {
                name: bad.into(),
                ..DatasetForm::default()
            };
            assert!(form.upsert().is_err(), "{bad}");
        }
    }

    #[test]
    fn pages_link_to_their_neighbours() {
        assert_eq!(pager("/d", 1, 10, 50), (None, None));
        assert_eq!(pager("/d", 1, 51, 50), (None, Some("/d?page=2".into())));
        assert_eq!(pager("/d", 2, 51, 50), (Some("/d".into()), None));
        assert_eq!(
            pager("/d", 3, 151, 50),
            (Some("/d?page=2".into()), Some("/d?page=4".into()))
        );
        assert_eq!(page_number(Some("x")), 1);
        assert_eq!(page_number(Some("0")), 1);
        assert_eq!(page_number(Some("3")), 3);
    }
}
