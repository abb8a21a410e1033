//! A dataset's runs side by side, `/project/{projectId}/datasets/{datasetId}/compare?runs=…`
//! (Langfuse's URL), and one run alone, `…/runs/{runId}`: a row per item of the dataset (its
//! input and expected output), a column per run with what the run's trace (or observation)
//! produced for the item, its latency, cost and scores, and above the rows each run's figures over
//! all its items: how many, the mean latency, the total and mean cost, the mean of each score.
//!
//! The items are paged ([`ITEMS_PER_PAGE`]); the runs' items come from PostgreSQL, all of them
//! (a run's figures cover every item), and what they produced from ClickHouse in batches
//! (`storage::clickhouse::dataset_compare`): outputs for the page's items only, figures and
//! scores for all. An item a run recorded more than once shows the last time.

use std::collections::HashMap;
use std::fmt::Write as _;

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::http::auth::ProjectMember;
use crate::storage::clickhouse::dataset_compare::{self, RunItemResult, RunItemTarget};
use crate::storage::clickhouse::trace_table::ScoreFigure;
use crate::storage::postgres::datasets::{self as store, Dataset, DatasetRun, ItemFilter};
use crate::storage::Stores;

use super::dataset_items::{item_href, short_id};
use super::datasets::{load_dataset, run_href, value_html, DatasetHead};
use super::error::{html, UiError};
use super::path_segment;
use super::render;
use super::shell::Shell;
use super::trace_detail::format_duration;
use super::traces::format_cost;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/project/{projectId}/datasets/{datasetId}/compare",
        web::get().to(compare_page),
    )
    .route(
        "/project/{projectId}/datasets/{datasetId}/runs/{runId}",
        web::get().to(run_page),
    );
}

/// Items per page of the comparison.
pub const ITEMS_PER_PAGE: u64 = 50;
/// Runs compared at once at most: more columns would be too narrow to read.
pub const MAX_RUNS: usize = 6;
/// The runs the picker offers (the newest).
const RUN_CHOICES: u64 = 100;

/// One score name's figure: a number's mean, or a category's values.
pub struct ScoreChip {
    pub name: String,
    pub value: String,
    pub count: u64,
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

fn is_text(data_type: &str) -> bool {
    matches!(data_type, "CATEGORICAL" | "TEXT")
}

/// Scores of several run items (or one) by name: numbers as their mean over every score,
/// categories as the values given, sorted.
pub fn score_chips<'a>(scores: impl IntoIterator<Item = &'a ScoreFigure>) -> Vec<ScoreChip> {
    struct Sum {
        data_type: String,
        total: f64,
        count: u64,
        values: Vec<String>,
    }
    let mut by_name: Vec<(String, Sum)> = Vec::new();
    for score in scores {
        let index = match by_name.iter().position(|(n, _)| *n == score.name) {
            Some(i) => i,
            None => {
                by_name.push((
                    score.name.clone(),
                    Sum {
                        data_type: score.data_type.clone(),
                        total: 0.0,
                        count: 0,
                        values: Vec::new(),
                    },
                ));
                by_name.len() - 1
            }
        };
        let sum = &mut by_name[index].1;
        sum.total += score.average * score.count as f64;
        sum.count += score.count;
        for value in score.categories.split(", ").filter(|v| !v.is_empty()) {
            if !sum.values.iter().any(|v| v == value) {
                sum.values.push(value.to_string());
            }
        }
    }
    by_name.sort_by(|a, b| a.0.cmp(&b.0));
    by_name
        .into_iter()
        .map(|(name, mut sum)| {
            let value = if is_text(&sum.data_type) {
                sum.values.sort();
                sum.values.join(", ")
            } else if sum.count > 0 {
                format_number(sum.total / sum.count as f64)
            } else {
                "–".into()
            };
            ScoreChip {
                name,
                value,
                count: sum.count,
            }
        })
        .collect()
}

/// One run's result for one item.
pub struct CellView {
    /// The run recorded the item.
    pub in_run: bool,
    /// Its trace (or observation) was read.
    pub found: bool,
    /// Safe HTML from `render`.
    pub output_html: String,
    pub output_cut: bool,
    pub latency: String,
    pub cost: String,
    pub scores: Vec<ScoreChip>,
    pub trace_href: String,
    pub trace_label: String,
}

impl CellView {
    fn not_in_run() -> CellView {
        CellView {
            in_run: false,
            found: false,
            output_html: String::new(),
            output_cut: false,
            latency: String::new(),
            cost: String::new(),
            scores: Vec::new(),
            trace_href: String::new(),
            trace_label: String::new(),
        }
    }
}

/// The cell of a run item pointing at `target`, with what was read of it.
pub fn cell_view(
    project_id: &str,
    target: &RunItemTarget,
    result: Option<&RunItemResult>,
) -> CellView {
    let mut trace_href = format!(
        "/project/{}/traces/{}",
        path_segment(project_id),
        path_segment(&target.trace_id)
    );
    if let Some(observation) = &target.observation_id {
        let _ = write!(trace_href, "?observation={}", path_segment(observation));
    }
    let empty = RunItemResult::default();
    let result = result.unwrap_or(&empty);
    let output_html = match &result.output {
        // A cut output is not whole JSON: shown as the text it is.
        Some(text) if result.output_cut => format!(
            "<pre class=\"rendered cut\">{}…</pre>",
            render::escape(text)
        ),
        Some(text) => render::stored_value(text, None),
        None => String::new(),
    };
    CellView {
        in_run: true,
        found: result.found,
        output_html,
        output_cut: result.output_cut,
        latency: result
            .latency_secs
            .map(format_duration)
            .unwrap_or_else(|| "–".into()),
        cost: result.total_cost.map(format_cost).unwrap_or_default(),
        scores: score_chips(&result.scores),
        trace_label: short_id(&target.trace_id),
        trace_href,
    }
}

/// A run's column head and its figures over all its items.
pub struct RunColumn {
    pub id: String,
    pub name: String,
    pub href: String,
    pub description: String,
    pub items: usize,
    pub avg_latency: String,
    pub total_cost: String,
    pub avg_cost: String,
    pub scores: Vec<ScoreChip>,
}

/// The figures of a run over the results of its items.
pub fn run_column(run: &DatasetRun, run_href: String, results: &[&RunItemResult]) -> RunColumn {
    let latencies: Vec<f64> = results.iter().filter_map(|r| r.latency_secs).collect();
    let costs: Vec<f64> = results.iter().filter_map(|r| r.total_cost).collect();
    let total_cost: f64 = costs.iter().sum();
    RunColumn {
        id: run.id.clone(),
        name: run.name.clone(),
        href: run_href,
        description: run.description.clone().unwrap_or_default(),
        items: results.len(),
        avg_latency: if latencies.is_empty() {
            "–".into()
        } else {
            format_duration(latencies.iter().sum::<f64>() / latencies.len() as f64)
        },
        total_cost: if costs.is_empty() {
            "–".into()
        } else {
            format_cost(total_cost)
        },
        avg_cost: if costs.is_empty() {
            "–".into()
        } else {
            format_cost(total_cost / costs.len() as f64)
        },
        scores: score_chips(results.iter().flat_map(|r| r.scores.iter())),
    }
}

pub struct CompareRow {
    pub item_id: String,
    pub short_id: String,
    pub href: String,
    pub archived: bool,
    pub input_html: String,
    pub expected_html: String,
    pub cells: Vec<CellView>,
}

pub struct RunChoice {
    pub id: String,
    pub name: String,
    pub chosen: bool,
}

#[derive(Template)]
#[template(path = "datasets/compare.html")]
pub struct ComparePage {
    pub shell: Shell,
    pub css_url: &'static str,
    pub trace_css_url: &'static str,
    pub head: DatasetHead,
    pub choices: Vec<RunChoice>,
    pub runs: Vec<RunColumn>,
    pub rows: Vec<CompareRow>,
    pub notice: Option<String>,
    pub previous_href: Option<String>,
    pub next_href: Option<String>,
    pub first_item: u64,
    pub last_item: u64,
}

/// The comparison's query: the runs chosen (repeated `runs`, in order, each once) and the page.
fn read_query(query: &str) -> (Vec<String>, u64) {
    let mut runs: Vec<String> = Vec::new();
    let mut page = 1;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "runs" if !value.is_empty() && !runs.iter().any(|r| *r == value) => {
                runs.push(value.into_owned())
            }
            "page" => {
                page = value
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|p| *p >= 1)
                    .unwrap_or(1)
            }
            _ => {}
        }
    }
    (runs, page)
}

/// `base?runs=…&page=n` (no page for the first).
fn compare_href(base: &str, runs: &[String], page: u64) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for run in runs {
        query.append_pair("runs", run);
    }
    if page > 1 {
        query.append_pair("page", &page.to_string());
    }
    let query = query.finish();
    if query.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{query}")
    }
}

/// The page of runs `chosen` (ids) of `dataset`; `single` is the run page's own run.
async fn render_compare(
    stores: &Stores,
    member: &ProjectMember,
    dataset: &Dataset,
    chosen: Vec<String>,
    page: u64,
    single: Option<&DatasetRun>,
) -> Result<HttpResponse, UiError> {
    let project_id = member.project_id.as_str().to_string();
    let mut head = DatasetHead::of(stores, member, dataset, "").await?;
    let mut notice = None;

    let (offered, _) = store::list_runs(
        &stores.postgres,
        &member.project_id,
        &dataset.id,
        0,
        RUN_CHOICES,
    )
    .await?;
    let mut runs: Vec<DatasetRun> = Vec::new();
    for id in &chosen {
        let run = match offered.iter().find(|r| &r.id == id) {
            Some(run) => Some(run.clone()),
            None => store::get_run(&stores.postgres, &member.project_id, id)
                .await?
                .filter(|r| r.dataset_id == dataset.id),
        };
        match run {
            Some(run) if runs.len() < MAX_RUNS => runs.push(run),
            Some(_) => {
                notice = Some(format!(
                    "At most {MAX_RUNS} runs are compared at once: the first {MAX_RUNS} chosen are shown."
                ))
            }
            None => notice = Some("A chosen run is not a run of this dataset.".to_string()),
        }
    }
    let run_ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
    match single {
        Some(run) => {
            head.extra_tab = format!("Run: {}", run.name);
            head.extra_href = run_href(&head.href, &run.id);
        }
        None => {
            head.extra_tab = "Compare".into();
            head.extra_href = compare_href(&format!("{}/compare", head.href), &run_ids, 1);
        }
    }
    let mut choices: Vec<RunChoice> = offered
        .iter()
        .map(|r| RunChoice {
            id: r.id.clone(),
            name: r.name.clone(),
            chosen: run_ids.contains(&r.id),
        })
        .collect();
    for run in &runs {
        if !offered.iter().any(|r| r.id == run.id) {
            choices.push(RunChoice {
                id: run.id.clone(),
                name: run.name.clone(),
                chosen: true,
            });
        }
    }

    // Each run's items (the last record of each item), and what all of them produced.
    let mut by_run: Vec<HashMap<String, RunItemTarget>> = Vec::new();
    for run in &runs {
        let (items, _) =
            store::list_run_items(&stores.postgres, &member.project_id, &run.id, 0, None).await?;
        by_run.push(
            items
                .into_iter()
                .map(|ri| {
                    (
                        ri.dataset_item_id,
                        RunItemTarget {
                            trace_id: ri.trace_id,
                            observation_id: ri.observation_id.filter(|o| !o.is_empty()),
                        },
                    )
                })
                .collect(),
        );
    }
    let mut all_targets: Vec<RunItemTarget> =
        by_run.iter().flat_map(|m| m.values().cloned()).collect();
    all_targets
        .sort_by(|a, b| (&a.trace_id, &a.observation_id).cmp(&(&b.trace_id, &b.observation_id)));
    all_targets.dedup();
    let figures = if runs.is_empty() {
        HashMap::new()
    } else {
        dataset_compare::results(&stores.clickhouse, &member.project_id, &all_targets, false)
            .await?
    };
    let empty = RunItemResult::default();
    let columns: Vec<RunColumn> = runs
        .iter()
        .zip(&by_run)
        .map(|(run, targets)| {
            let results: Vec<&RunItemResult> = targets
                .values()
                .map(|t| figures.get(t).unwrap_or(&empty))
                .collect();
            run_column(run, run_href(&head.href, &run.id), &results)
        })
        .collect();

    // The page's items, with what each run produced for them.
    let filter = ItemFilter {
        dataset_id: Some(dataset.id.clone()),
        ..ItemFilter::default()
    };
    let (items, total) = if runs.is_empty() {
        (Vec::new(), 0)
    } else {
        store::list_items(
            &stores.postgres,
            &member.project_id,
            &filter,
            (page - 1) * ITEMS_PER_PAGE,
            ITEMS_PER_PAGE,
        )
        .await?
    };
    let page_targets: Vec<RunItemTarget> = items
        .iter()
        .flat_map(|item| by_run.iter().filter_map(|m| m.get(&item.id).cloned()))
        .collect();
    let outputs = if page_targets.is_empty() {
        HashMap::new()
    } else {
        dataset_compare::results(&stores.clickhouse, &member.project_id, &page_targets, true)
            .await?
    };
    let rows = items
        .iter()
        .map(|item| CompareRow {
            item_id: item.id.clone(),
            short_id: short_id(&item.id),
            href: item_href(&project_id, &dataset.id, &item.id),
            archived: item.fields.status == crate::domain::dataset::ItemStatus::Archived,
            input_html: value_html(item.fields.input.as_ref()),
            expected_html: value_html(item.fields.expected_output.as_ref()),
            cells: by_run
                .iter()
                .map(|m| match m.get(&item.id) {
                    Some(target) => cell_view(&project_id, target, outputs.get(target)),
                    None => CellView::not_in_run(),
                })
                .collect(),
        })
        .collect::<Vec<_>>();

    let base = match single {
        Some(run) => run_href(&head.href, &run.id),
        None => format!("{}/compare", head.href),
    };
    let link_runs: &[String] = if single.is_some() { &[] } else { &run_ids };
    let previous_href = (page > 1).then(|| compare_href(&base, link_runs, page - 1));
    let next_href =
        (page * ITEMS_PER_PAGE < total).then(|| compare_href(&base, link_runs, page + 1));
    let first_item = (page - 1) * ITEMS_PER_PAGE + 1;
    let last_item = first_item + rows.len() as u64 - 1;
    let title = match single {
        Some(run) => format!("{} · {}", run.name, dataset.name),
        None => format!("Compare runs · {}", dataset.name),
    };
    let page = ComparePage {
        shell: Shell::of_project(stores, member, title, "datasets").await?,
        css_url: super::assets::datasets_css_url(),
        trace_css_url: super::assets::trace_css_url(),
        head,
        choices,
        runs: columns,
        rows,
        notice,
        previous_href,
        next_href,
        first_item,
        last_item,
    };
    html(&page)
}

async fn compare_page(
    req: HttpRequest,
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, UiError> {
    let dataset = load_dataset(&stores, &member, &super::datasets::decoded(&path.1)).await?;
    let (runs, page) = read_query(req.query_string());
    render_compare(&stores, &member, &dataset, runs, page, None).await
}

async fn run_page(
    req: HttpRequest,
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, UiError> {
    let (_, dataset_id, run_id) = path.into_inner();
    let (dataset_id, run_id) = (
        super::datasets::decoded(&dataset_id),
        super::datasets::decoded(&run_id),
    );
    let dataset = load_dataset(&stores, &member, &dataset_id).await?;
    let run = store::get_run(&stores.postgres, &member.project_id, &run_id)
        .await?
        .filter(|r| r.dataset_id == dataset.id)
        .ok_or(UiError::NotFound)?;
    let (_, page) = read_query(req.query_string());
    render_compare(
        &stores,
        &member,
        &dataset,
        vec![run.id.clone()],
        page,
        Some(&run),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(
        name: &str,
        data_type: &str,
        average: f64,
        categories: &str,
        count: u64,
    ) -> ScoreFigure {
        ScoreFigure {
            trace_id: "t".into(),
            name: name.into(),
            data_type: data_type.into(),
            average,
            categories: categories.into(),
            count,
        }
    }

    #[test]
    fn scores_are_averaged_over_every_score_and_categories_listed() {
        let scores = [
            figure("accuracy", "NUMERIC", 1.0, "", 1),
            figure("accuracy", "NUMERIC", 0.4, "", 2),
            figure("tone", "CATEGORICAL", 0.0, "polite", 1),
            figure("tone", "CATEGORICAL", 0.0, "curt, polite", 2),
        ];
        let chips = score_chips(&scores);
        assert_eq!(chips.len(), 2);
        assert_eq!(
            (
                chips[0].name.as_str(),
                chips[0].value.as_str(),
                chips[0].count
            ),
            ("accuracy", "0.6", 3)
        );
        assert_eq!(chips[1].value, "curt, polite");
    }

    #[test]
    fn run_figures_cover_the_items_measured() {
        let run = DatasetRun {
            id: "r".into(),
            project_id: "p".into(),
            dataset_id: "d".into(),
            dataset_name: "ds".into(),
            name: "run".into(),
            description: None,
            metadata: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        };
        let a = RunItemResult {
            found: true,
            latency_secs: Some(1.0),
            total_cost: Some(0.002),
            ..RunItemResult::default()
        };
        let b = RunItemResult {
            found: true,
            latency_secs: Some(3.0),
            total_cost: Some(0.004),
            ..RunItemResult::default()
        };
        let missing = RunItemResult::default();
        let column = run_column(&run, "/x".into(), &[&a, &b, &missing]);
        assert_eq!(column.items, 3);
        assert_eq!(column.avg_latency, "2.00s");
        assert_eq!(column.total_cost, "$0.006");
        assert_eq!(column.avg_cost, "$0.003");
        let none = run_column(&run, "/x".into(), &[&missing]);
        assert_eq!(
            (none.avg_latency.as_str(), none.total_cost.as_str()),
            ("–", "–")
        );
    }

    #[test]
    fn the_query_keeps_each_run_once_in_order() {
        let (runs, page) = read_query("runs=b&runs=a&runs=b&page=3&runs=");
        assert_eq!(runs, vec!["b".to_string(), "a".to_string()]);
        assert_eq!(page, 3);
        assert_eq!(compare_href("/c", &runs, 2), "/c?runs=b&runs=a&page=2");
        assert_eq!(compare_href("/c", &[], 1), "/c");
    }

    #[test]
    fn a_cut_output_is_escaped_text() {
        let target = RunItemTarget {
            trace_id: "t 1".into(),
            observation_id: Some("o/1".into()),
        };
        let result = RunItemResult {
            found: true,
            output: Some("<script>alert(1)</script>".into()),
            output_cut: true,
            ..RunItemResult::default()
        };
        let cell = cell_view("p", &target, Some(&result));
        assert!(
            !cell.output_html.contains("<script>"),
            "{}",
            cell.output_html
        );
        assert_eq!(cell.trace_href, "/project/p/traces/t%201?observation=o%2F1");
        let whole = cell_view(
            "p",
            &target,
            Some(&RunItemResult {
                output_cut: false,
                ..result
            }),
        );
        assert!(
            !whole.output_html.contains("<script>"),
            "{}",
            whole.output_html
        );
    }
}
