//! A project's home, `/project/{projectId}`: its dashboard over a time range (traces and
//! observations over time, cost and tokens by model, latency percentiles by trace name and by
//! model, score distributions, errors over time), where it belongs, the person's role, and how
//! an application sends it data.
//!
//! Every figure comes from the metrics engine (`figures::run_all`, the queries side by side):
//! the page builds Langfuse metrics queries over the range of its URL and draws their rows with
//! `charts`.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::dashboard::{fixed_query, TimeRange, PRESETS};
use crate::http::auth::ProjectMember;
use crate::storage::Stores;

use super::charts::{self, Unit};
use super::error::{html, UiError};
use super::figures::{self, QueryFailure, Row};
use super::shell::{ProjectNav, Shell};
use super::UiConfig;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/project/{projectId}", web::get().to(project_home));
}

/// A page's time range as its query string has it.
#[derive(Debug, Default, Deserialize)]
pub struct RangeQuery {
    pub range: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

pub struct PresetLink {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

/// The time-range control every dashboard page shows: preset links and a custom form.
pub struct RangeView {
    pub presets: Vec<PresetLink>,
    pub custom: bool,
    /// `datetime-local` values of the custom form (UTC).
    pub from_value: String,
    pub to_value: String,
    /// The range's query string, for links that keep it.
    pub query: String,
    pub description: String,
    pub error: Option<String>,
}

impl RangeQuery {
    /// The range asked for, and its control; a bad custom range falls back to the last 24
    /// hours and says why.
    pub fn resolve(&self, base: &str) -> (TimeRange, RangeView) {
        let now = chrono::Utc::now();
        let (range, error) = match TimeRange::parse(
            self.range.as_deref(),
            self.from.as_deref(),
            self.to.as_deref(),
            now,
        ) {
            Ok(range) => (range, None),
            Err(message) => (
                TimeRange::parse(None, None, None, now).expect("the default range"),
                Some(message),
            ),
        };
        let view = RangeView {
            presets: PRESETS
                .iter()
                .map(|(preset, label)| PresetLink {
                    label,
                    href: format!("{base}?range={preset}"),
                    current: range.preset == *preset,
                })
                .collect(),
            custom: range.preset == "custom",
            from_value: range.from.format("%Y-%m-%dT%H:%M").to_string(),
            to_value: range.to.format("%Y-%m-%dT%H:%M").to_string(),
            query: range.query_string(),
            description: format!(
                "{} to {} UTC",
                range.from.format("%Y-%m-%d %H:%M"),
                range.to.format("%Y-%m-%d %H:%M")
            ),
            error,
        };
        (range, view)
    }
}

/// One chart of a dashboard: its title, a line saying what it shows, and its markup (from
/// `charts`, escaped there), or why it could not be drawn.
pub struct Panel {
    pub title: String,
    pub note: String,
    pub chart: String,
    pub failure: Option<String>,
    /// Spans the whole row.
    pub wide: bool,
}

#[derive(Template)]
#[template(path = "project.html")]
pub struct ProjectPage {
    pub shell: Shell,
    pub dashboards_css_url: &'static str,
    pub project_id: String,
    pub project_name: String,
    pub org_name: String,
    pub role: String,
    pub can_manage: bool,
    /// The address SDKs send to (`LANGFUSE_HOST`, `LANGFUSE_BASE_URL`).
    pub host: String,
    pub range_action: String,
    pub range: RangeView,
    /// Traces, observations, cost, tokens, errors in the range.
    pub totals: Vec<Panel>,
    pub panels: Vec<Panel>,
    /// No trace in the range: the page leads with how to send data.
    pub no_data: bool,
}

/// The navigation entry of a project's page.
pub fn nav(member: &ProjectMember, section: &'static str) -> ProjectNav {
    ProjectNav {
        id: member.project_id.as_str().to_string(),
        name: member.project_name.clone(),
        org_name: member.org_name.clone(),
        section,
    }
}

/// This server's address as people and SDKs reach it: the public URL, else what the request used.
pub fn public_host(req: &HttpRequest, config: &UiConfig) -> String {
    match &config.public_origin {
        Some(origin) => origin.clone(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    }
}

/// Half of the dashboard's width and all of it, in the SVG's pixels.
pub const HALF: u32 = 560;
pub const FULL: u32 = 1140;
/// Numeric score names whose distribution the home page draws.
const SCORE_HISTOGRAMS: usize = 4;

/// What a failed query shows in its panel (and logs, when it is not the query's fault).
pub fn failure_text(failure: &QueryFailure) -> String {
    match failure {
        QueryFailure::Invalid(message) => format!("This query cannot run: {message}"),
        QueryFailure::Failed(cause) => {
            tracing::error!(error = format!("{cause:#}"), "a dashboard query failed");
            "The figures could not be read. Try again in a moment.".to_string()
        }
    }
}

fn panel(title: &str, note: &str, wide: bool, drawn: Result<String, String>) -> Panel {
    let (chart, failure) = match drawn {
        Ok(chart) => (chart, None),
        Err(message) => (String::new(), Some(message)),
    };
    Panel {
        title: title.to_string(),
        note: note.to_string(),
        chart,
        failure,
        wide,
    }
}

fn rows_of(result: &Result<Vec<Row>, QueryFailure>) -> Result<&[Row], String> {
    result.as_ref().map(Vec::as_slice).map_err(failure_text)
}

/// Rows whose model is set: observations without a model (spans, events) are not a model's.
fn with_model(rows: &[Row]) -> Vec<Row> {
    rows.iter()
        .filter(|r| {
            r.get("providedModelName")
                .and_then(Value::as_str)
                .is_some_and(|m| !m.is_empty())
        })
        .cloned()
        .collect()
}

fn total(rows: &[Row], column: &str) -> f64 {
    rows.iter()
        .filter_map(|r| figures::number(r.get(column)))
        .sum()
}

const PERCENTILES: [(&str, &str); 4] = [
    ("p50_latency", "p50"),
    ("p90_latency", "p90"),
    ("p95_latency", "p95"),
    ("p99_latency", "p99"),
];

/// Rows added up by the value of `dimension` (rows whose value is null or empty left out): a
/// row per value with each of `columns` summed, for figures that add up (counts, sums).
fn sum_by(rows: &[Row], dimension: &str, columns: &[&str]) -> Vec<Row> {
    let mut order: Vec<String> = Vec::new();
    let mut sums: std::collections::HashMap<String, Vec<f64>> = std::collections::HashMap::new();
    for row in rows {
        let Some(key) = row
            .get(dimension)
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
        else {
            continue;
        };
        let entry = sums.entry(key.to_string()).or_insert_with(|| {
            order.push(key.to_string());
            vec![0.0; columns.len()]
        });
        for (sum, column) in entry.iter_mut().zip(columns) {
            *sum += figures::number(row.get(*column)).unwrap_or(0.0);
        }
    }
    order
        .into_iter()
        .map(|key| {
            let mut row = Row::new();
            for (column, sum) in columns.iter().zip(&sums[&key]) {
                row.insert(column.to_string(), json!(sum));
            }
            row.insert(dimension.to_string(), Value::String(key));
            row
        })
        .collect()
}

/// The home dashboard of `member`'s project over `range`. Six queries side by side, then one
/// for the score histograms: observations are read once, grouped by model and level over time,
/// and every observation figure that adds up (counts, cost, tokens, errors; over time, by model,
/// in total) is summed from those rows; only percentiles need queries of their own.
pub async fn home_dashboard(
    stores: &Stores,
    member: &ProjectMember,
    range: &TimeRange,
) -> Result<(Vec<Panel>, Vec<Panel>, bool), UiError> {
    let project = &member.project_id;
    let percentiles = [
        ("latency", "p50"),
        ("latency", "p90"),
        ("latency", "p95"),
        ("latency", "p99"),
        ("count", "count"),
    ];
    let observation_sums = [
        ("count", "count"),
        ("totalCost", "sum"),
        ("inputTokens", "sum"),
        ("outputTokens", "sum"),
        ("totalTokens", "sum"),
    ];
    let queries = [
        fixed_query("traces", &[("count", "count")], &[], json!([]), true, range),
        fixed_query(
            "observations",
            &observation_sums,
            &["providedModelName", "level"],
            json!([]),
            true,
            range,
        ),
        fixed_query("traces", &percentiles, &["name"], json!([]), false, range),
        fixed_query(
            "observations",
            &percentiles,
            &["providedModelName"],
            json!([]),
            false,
            range,
        ),
        fixed_query(
            "scores-numeric",
            &[("count", "count"), ("value", "avg")],
            &["name"],
            json!([]),
            false,
            range,
        ),
        fixed_query(
            "scores-categorical",
            &[("count", "count")],
            &["name", "stringValue"],
            json!([]),
            false,
            range,
        ),
    ];
    let results = figures::run_all(stores, project, &queries).await;
    let [traces, observations, by_name, by_model, numeric, categorical] =
        <[_; 6]>::try_from(results).map_err(|_| anyhow::anyhow!("query count"))?;

    // The distributions of the most used numeric scores: one histogram query, by name.
    let mut score_names: Vec<(String, f64)> = numeric
        .as_ref()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    (
                        figures::text(r.get("name")),
                        figures::number(r.get("count_count")).unwrap_or(0.0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    score_names.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    score_names.truncate(SCORE_HISTOGRAMS);
    let histograms = if score_names.is_empty() {
        Ok(Vec::new())
    } else {
        let names: Vec<&str> = score_names.iter().map(|(n, _)| n.as_str()).collect();
        let mut q = fixed_query(
            "scores-numeric",
            &[("value", "histogram")],
            &["name"],
            json!([{"column": "name", "operator": "any of", "value": names, "type": "stringOptions"}]),
            false,
            range,
        );
        q["config"] = json!({"bins": 10});
        figures::run(stores, project, &q).await
    };

    let draw = |r: Result<String, askama::Error>| r.map_err(|e| e.to_string());
    let observation_rows = rows_of(&observations);
    let observation_rows = || observation_rows.clone();
    // Observations by model (those with one), every figure added up over levels and buckets.
    let model_rows = observation_rows()
        .map(|rows| {
            sum_by(
                rows,
                "providedModelName",
                &[
                    "count_count",
                    "sum_totalCost",
                    "sum_inputTokens",
                    "sum_outputTokens",
                    "sum_totalTokens",
                ],
            )
        })
        .unwrap_or_default();
    // The same rows with only ERROR observations counted, so the buckets stay.
    let error_rows: Vec<Row> = observation_rows()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    let mut r = r.clone();
                    if r.get("level").and_then(Value::as_str) != Some("ERROR") {
                        r.insert("count_count".into(), json!(0));
                    }
                    r
                })
                .collect()
        })
        .unwrap_or_default();

    // Totals.
    let trace_total = traces.as_ref().map(|r| total(r, "count_count")).ok();
    let number = |title: &str, value: Result<f64, String>, unit: Unit| {
        panel(
            title,
            "",
            false,
            value.and_then(|v| draw(charts::number_chart(title, Some(v), unit))),
        )
    };
    let totals = vec![
        number(
            "Traces",
            rows_of(&traces).map(|r| total(r, "count_count")),
            Unit::Count,
        ),
        number(
            "Observations",
            observation_rows().map(|r| total(r, "count_count")),
            Unit::Count,
        ),
        number(
            "Total cost",
            observation_rows().map(|r| total(r, "sum_totalCost")),
            Unit::Usd,
        ),
        number(
            "Tokens",
            observation_rows().map(|r| total(r, "sum_totalTokens")),
            Unit::Tokens,
        ),
        number(
            "Errors",
            observation_rows().map(|_| total(&error_rows, "count_count")),
            Unit::Count,
        ),
    ];

    let mut panels = Vec::new();
    // Traces and observations over time: two lines on one chart.
    panels.push(panel(
        "Traces and observations",
        "How many were recorded per time bucket.",
        true,
        rows_of(&traces).and_then(|t| {
            observation_rows().and_then(|o| {
                let mut series =
                    figures::time_series(t, &[("count_count", "traces")], None, Unit::Count);
                let observations =
                    figures::time_series(o, &[("count_count", "observations")], None, Unit::Count);
                if series.buckets.is_empty() {
                    series = observations;
                } else if observations.buckets == series.buckets {
                    series.series.extend(observations.series);
                }
                draw(charts::line_chart(
                    "Traces and observations over time",
                    &series,
                    FULL,
                ))
            })
        }),
    ));
    panels.push(panel(
        "Cost by model",
        "Total cost of the observations of each model, in USD.",
        false,
        observation_rows().and_then(|_| {
            draw(charts::bar_chart(
                "Cost by model",
                &figures::bars(
                    &model_rows,
                    "providedModelName",
                    "sum_totalCost",
                    Unit::Usd,
                    12,
                ),
                HALF,
            ))
        }),
    ));
    panels.push(panel(
        "Tokens by model",
        "Input, output and total tokens, and the cost, of each model.",
        false,
        observation_rows().and_then(|_| {
            let mut rows = model_rows.clone();
            rows.sort_by(|a, b| {
                figures::number(b.get("sum_totalCost"))
                    .unwrap_or(0.0)
                    .total_cmp(&figures::number(a.get("sum_totalCost")).unwrap_or(0.0))
            });
            draw(charts::table_chart(
                "Tokens and cost by model",
                figures::table(
                    &rows,
                    &[("providedModelName", "Model")],
                    &[
                        ("sum_inputTokens", "Input", Unit::Tokens),
                        ("sum_outputTokens", "Output", Unit::Tokens),
                        ("sum_totalTokens", "Total", Unit::Tokens),
                        ("sum_totalCost", "Cost", Unit::Usd),
                    ],
                    20,
                ),
            ))
        }),
    ));
    panels.push(panel(
        "Cost over time by model",
        "Cost per time bucket, a line per model (the six costliest).",
        true,
        observation_rows().and_then(|rows| {
            let rows = with_model(rows);
            draw(charts::line_chart(
                "Cost over time by model",
                &figures::time_series(
                    &rows,
                    &[("sum_totalCost", "cost")],
                    Some("providedModelName"),
                    Unit::Usd,
                ),
                FULL,
            ))
        }),
    ));
    let latency_table = |rows: &[Row], dimension: &str, heading: &str| {
        let mut rows = rows.to_vec();
        rows.sort_by(|a, b| {
            figures::number(b.get("count_count"))
                .unwrap_or(0.0)
                .total_cmp(&figures::number(a.get("count_count")).unwrap_or(0.0))
        });
        let mut figures_of: Vec<(&str, &str, Unit)> = vec![("count_count", "Count", Unit::Count)];
        figures_of.extend(PERCENTILES.iter().map(|(c, h)| (*c, *h, Unit::Millis)));
        charts::table_chart(
            heading,
            figures::table(&rows, &[(dimension, heading)], &figures_of, 20),
        )
    };
    panels.push(panel(
        "Latency by trace name",
        "Percentiles of trace latency (first to last observation).",
        false,
        rows_of(&by_name).and_then(|rows| draw(latency_table(rows, "name", "Trace name"))),
    ));
    panels.push(panel(
        "Latency by model",
        "Percentiles of the latency of each model's observations.",
        false,
        rows_of(&by_model).and_then(|rows| {
            draw(latency_table(
                &with_model(rows),
                "providedModelName",
                "Model",
            ))
        }),
    ));
    // Scores.
    if score_names.is_empty() {
        panels.push(panel(
            "Numeric scores",
            "The distribution of each numeric or boolean score's values.",
            false,
            rows_of(&numeric).and_then(|_| {
                draw(charts::histogram_chart(
                    "Numeric scores",
                    &charts::Histogram {
                        bins: vec![],
                        unit: Unit::Plain,
                    },
                    HALF,
                ))
            }),
        ));
    }
    for (name, count) in &score_names {
        let average = numeric
            .as_ref()
            .ok()
            .and_then(|rows| {
                rows.iter()
                    .find(|r| figures::text(r.get("name")) == *name)
                    .and_then(|r| figures::number(r.get("avg_value")))
            })
            .map(|v| charts::format_value(Unit::Plain, v))
            .unwrap_or_default();
        panels.push(panel(
            &format!("Score: {name}"),
            &format!(
                "Distribution of {} values, average {average}.",
                charts::format_full(Unit::Count, *count)
            ),
            false,
            rows_of(&histograms).and_then(|rows| {
                let of_name: Vec<Row> = rows
                    .iter()
                    .filter(|r| figures::text(r.get("name")) == *name)
                    .cloned()
                    .collect();
                draw(charts::histogram_chart(
                    &format!("Distribution of score {name}"),
                    &figures::histogram(&of_name, "histogram_value", Unit::Plain),
                    HALF,
                ))
            }),
        ));
    }
    panels.push(panel(
        "Categorical scores",
        "How often each value of each categorical score was given.",
        false,
        rows_of(&categorical).and_then(|rows| {
            let labelled: Vec<Row> = rows
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    let label = format!(
                        "{}: {}",
                        figures::text(r.get("name")),
                        figures::text(r.get("stringValue"))
                    );
                    r.insert("label".into(), Value::String(label));
                    r
                })
                .collect();
            draw(charts::bar_chart(
                "Categorical scores",
                &figures::bars(&labelled, "label", "count_count", Unit::Count, 16),
                HALF,
            ))
        }),
    ));
    panels.push(panel(
        "Errors",
        "Observations with level ERROR per time bucket.",
        true,
        observation_rows().and_then(|_| {
            draw(charts::line_chart(
                "Errors over time",
                &figures::time_series(&error_rows, &[("count_count", "errors")], None, Unit::Count),
                FULL,
            ))
        }),
    ));
    let no_data = trace_total == Some(0.0);
    Ok((totals, panels, no_data))
}

async fn project_home(
    req: HttpRequest,
    stores: web::Data<Stores>,
    config: web::Data<UiConfig>,
    member: ProjectMember,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, UiError> {
    let base = format!(
        "/project/{}",
        super::path_segment(member.project_id.as_str())
    );
    let (range, range_view) = query.resolve(&base);
    let base = base.clone();
    let (totals, panels, no_data) = home_dashboard(&stores, &member, &range).await?;
    let page = ProjectPage {
        shell: Shell::of_project(&stores, &member, member.project_name.clone(), "home").await?,
        dashboards_css_url: super::assets::dashboards_css_url(),
        project_id: member.project_id.as_str().to_string(),
        project_name: member.project_name.clone(),
        org_name: member.org_name.clone(),
        role: member.role.to_string(),
        can_manage: member.role.can_manage(),
        host: public_host(&req, &config),
        range_action: base,
        range: range_view,
        totals,
        panels,
        no_data,
    };
    html(&page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_that_add_up_are_summed_by_model_leaving_out_rows_without_one() {
        let rows: Vec<Row> = serde_json::from_value(json!([
            {"providedModelName": "a", "level": "DEFAULT", "count_count": 2, "sum_totalCost": 0.5},
            {"providedModelName": "a", "level": "ERROR", "count_count": 1, "sum_totalCost": "0.25"},
            {"providedModelName": null, "level": "DEFAULT", "count_count": 9, "sum_totalCost": 0},
            {"providedModelName": "b", "level": "DEFAULT", "count_count": 1, "sum_totalCost": null},
        ]))
        .unwrap();
        let summed = sum_by(
            &rows,
            "providedModelName",
            &["count_count", "sum_totalCost"],
        );
        assert_eq!(
            Value::Array(summed.into_iter().map(Value::Object).collect()),
            json!([
                {"providedModelName": "a", "count_count": 3.0, "sum_totalCost": 0.75},
                {"providedModelName": "b", "count_count": 1.0, "sum_totalCost": 0.0},
            ])
        );
    }
}
