//! A project's custom dashboards: `/project/{projectId}/dashboards` (the list: create, rename,
//! delete), `/dashboards/{dashboardId}` (its widgets over the page's time range, arranged in a
//! grid), the widget editor (`…/widgets/new`, `…/widgets/{widgetId}/edit`: view, measure and
//! aggregation, dimensions, filters, time buckets, chart type, with a preview) and the arranging
//! controls (move a widget left, right, up or down, make it wider or narrower; or a whole layout
//! posted by `assets/dashboards.js` after a drag).
//!
//! MEMBERs and above change dashboards; VIEWERs read them and are refused (403) any change,
//! whatever they post. Dashboards and widgets live in PostgreSQL (`storage::postgres::dashboards`);
//! a widget is a metrics query, run by the metrics engine through `figures` when the page is drawn.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use serde_json::Value;

use crate::domain::dashboard::{
    arrange, chart_query_over, parse_layout, ChartType, FilterSpec, Move, Placement, WidgetSpec,
    AGGREGATIONS, GRANULARITIES, HEIGHTS, OPERATORS, VIEWS, WIDTHS,
};
use crate::http::auth::ProjectMember;
use crate::storage::postgres::dashboards::{self, WidgetFields};
use crate::storage::Stores;

use super::error::{html, html_with_status, see_other, UiError};
use super::figures;
use super::project::{failure_text, RangeQuery, RangeView, FULL};
use super::shell::{Shell, ShownTime};

pub fn routes(cfg: &mut web::ServiceConfig) {
    let base = "/project/{projectId}/dashboards";
    cfg.route(base, web::get().to(list_page))
        .route(base, web::post().to(create_dashboard))
        .route(
            &format!("{base}/{{dashboardId}}"),
            web::get().to(dashboard_page),
        )
        .route(
            &format!("{base}/{{dashboardId}}/rename"),
            web::post().to(rename_dashboard),
        )
        .route(
            &format!("{base}/{{dashboardId}}/delete"),
            web::post().to(delete_dashboard),
        )
        .route(
            &format!("{base}/{{dashboardId}}/layout"),
            web::post().to(save_layout),
        )
        .route(
            &format!("{base}/{{dashboardId}}/widgets/new"),
            web::get().to(new_widget_page),
        )
        .route(
            &format!("{base}/{{dashboardId}}/widgets"),
            web::post().to(create_widget),
        )
        .route(
            &format!("{base}/{{dashboardId}}/widgets/{{widgetId}}/edit"),
            web::get().to(edit_widget_page),
        )
        .route(
            &format!("{base}/{{dashboardId}}/widgets/{{widgetId}}"),
            web::post().to(update_widget),
        )
        .route(
            &format!("{base}/{{dashboardId}}/widgets/{{widgetId}}/delete"),
            web::post().to(delete_widget),
        )
        .route(
            &format!("{base}/{{dashboardId}}/widgets/{{widgetId}}/move"),
            web::post().to(move_widget),
        );
}

fn require_writer(member: &ProjectMember) -> Result<(), UiError> {
    if member.role.can_write() {
        Ok(())
    } else {
        Err(UiError::Forbidden(
            "Your role on this project only reads dashboards.".to_string(),
        ))
    }
}

fn list_url(member: &ProjectMember) -> String {
    format!(
        "/project/{}/dashboards",
        super::path_segment(member.project_id.as_str())
    )
}

fn dashboard_url(member: &ProjectMember, id: &str) -> String {
    format!("{}/{}", list_url(member), super::path_segment(id))
}

// ---------------------------------------------------------------------------------------------
// The list

pub struct DashboardRow {
    pub id: String,
    pub url: String,
    pub name: String,
    pub description: String,
    pub widgets: i64,
    pub updated_at: ShownTime,
    pub updated_by: String,
}

#[derive(Template)]
#[template(path = "dashboards.html")]
pub struct ListPage {
    pub shell: Shell,
    pub dashboards_css_url: &'static str,
    pub project_id: String,
    pub list_url: String,
    pub can_write: bool,
    pub dashboards: Vec<DashboardRow>,
    pub error: Option<String>,
    pub name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DashboardForm {
    pub name: String,
    pub description: String,
}

async fn render_list(
    stores: &Stores,
    member: &ProjectMember,
    status: StatusCode,
    error: Option<String>,
    name: String,
) -> Result<HttpResponse, UiError> {
    let rows = dashboards::list(&stores.postgres, &member.project_id).await?;
    let page = ListPage {
        shell: Shell::of_project(
            stores,
            member,
            format!("Dashboards · {}", member.project_name),
            "dashboards",
        )
        .await?,
        dashboards_css_url: super::assets::dashboards_css_url(),
        project_id: member.project_id.as_str().to_string(),
        list_url: list_url(member),
        can_write: member.role.can_write(),
        dashboards: rows
            .into_iter()
            .map(|d| DashboardRow {
                url: dashboard_url(member, &d.id),
                id: d.id,
                name: d.name,
                description: d.description,
                widgets: d.widget_count,
                updated_at: ShownTime::new(d.updated_at),
                updated_by: d.updated_by.unwrap_or_default(),
            })
            .collect(),
        error,
        name,
    };
    html_with_status(status, &page)
}

async fn list_page(
    stores: web::Data<Stores>,
    member: ProjectMember,
) -> Result<HttpResponse, UiError> {
    render_list(&stores, &member, StatusCode::OK, None, String::new()).await
}

/// A dashboard's name: given, at most 200 characters.
fn checked_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        Err("Give the dashboard a name.".to_string())
    } else if name.chars().count() > 200 {
        Err("A name has at most 200 characters.".to_string())
    } else {
        Ok(name.to_string())
    }
}

async fn create_dashboard(
    stores: web::Data<Stores>,
    member: ProjectMember,
    form: web::Form<DashboardForm>,
) -> Result<HttpResponse, UiError> {
    require_writer(&member)?;
    let name = match checked_name(&form.name) {
        Ok(name) => name,
        Err(message) => {
            return render_list(
                &stores,
                &member,
                StatusCode::BAD_REQUEST,
                Some(message),
                form.name.clone(),
            )
            .await
        }
    };
    let id = dashboards::create(
        &stores.postgres,
        &member.project_id,
        &name,
        form.description.trim(),
        &member.signed_in.user.id,
    )
    .await?;
    Ok(see_other(&dashboard_url(&member, &id)))
}

async fn rename_dashboard(
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String)>,
    form: web::Form<DashboardForm>,
) -> Result<HttpResponse, UiError> {
    require_writer(&member)?;
    let (_, id) = path.into_inner();
    let name = checked_name(&form.name).map_err(UiError::BadRequest)?;
    if dashboards::rename(
        &stores.postgres,
        &member.project_id,
        &id,
        &name,
        form.description.trim(),
        &member.signed_in.user.id,
    )
    .await?
    {
        Ok(see_other(&dashboard_url(&member, &id)))
    } else {
        Err(UiError::NotFound)
    }
}

async fn delete_dashboard(
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, UiError> {
    require_writer(&member)?;
    let (_, id) = path.into_inner();
    if dashboards::delete(&stores.postgres, &member.project_id, &id).await? {
        Ok(see_other(&list_url(&member)))
    } else {
        Err(UiError::NotFound)
    }
}

// ---------------------------------------------------------------------------------------------
// A dashboard

pub struct WidgetView {
    pub id: String,
    pub name: String,
    pub chart_type: &'static str,
    pub chart: String,
    pub failure: Option<String>,
    pub width: i32,
    pub height: i32,
    pub edit_url: String,
    pub action_base: String,
    pub first: bool,
    pub last: bool,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    pub shell: Shell,
    pub dashboards_css_url: &'static str,
    pub dashboards_js_url: &'static str,
    pub list_url: String,
    pub url: String,
    pub range_action: String,
    pub name: String,
    pub description: String,
    pub can_write: bool,
    pub range: RangeView,
    pub widgets: Vec<WidgetView>,
    pub layout: String,
    pub moves: &'static [(&'static str, &'static str, &'static str)],
}

/// The arranging buttons: the move, its symbol, what it does.
const MOVES: [(&str, &str, &str); 6] = [
    ("left", "←", "Move left"),
    ("up", "↑", "Move up"),
    ("down", "↓", "Move down"),
    ("right", "→", "Move right"),
    ("narrower", "−", "Narrower"),
    ("wider", "+", "Wider"),
];

/// An SVG's drawing width for a widget `width` grid columns wide.
fn svg_width(width: i32) -> u32 {
    (FULL * width.clamp(1, 12) as u32 / 12).max(300)
}

async fn dashboard_page(
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String)>,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, UiError> {
    let (_, id) = path.into_inner();
    let dashboard = dashboards::get(&stores.postgres, &member.project_id, &id)
        .await?
        .ok_or(UiError::NotFound)?;
    let url = dashboard_url(&member, &id);
    let (range, range_view) = query.resolve(&url);
    let widgets = dashboards::widgets(&stores.postgres, &member.project_id, &id).await?;
    let queries: Vec<Value> = widgets
        .iter()
        .map(|w| chart_query_over(w.chart_type, &w.query, &range))
        .collect();
    let results = figures::run_all(&stores, &member.project_id, &queries).await;
    let count = widgets.len();
    let views = widgets
        .iter()
        .zip(results)
        .enumerate()
        .map(|(i, (w, result))| {
            let drawn = result.map_err(|f| failure_text(&f)).and_then(|rows| {
                figures::widget_chart(w.chart_type, &w.name, &w.query, &rows, svg_width(w.width))
                    .map_err(|e| e.to_string())
            });
            let (chart, failure) = match drawn {
                Ok(chart) => (chart, None),
                Err(message) => (String::new(), Some(message)),
            };
            let action_base = format!("{url}/widgets/{}", super::path_segment(&w.id));
            WidgetView {
                id: w.id.clone(),
                name: w.name.clone(),
                chart_type: w.chart_type.label(),
                chart,
                failure,
                width: w.width,
                height: w.height,
                edit_url: format!("{action_base}/edit?{}", range.query_string()),
                action_base,
                first: i == 0,
                last: i + 1 == count,
            }
        })
        .collect();
    let layout = widgets
        .iter()
        .map(|w| format!("{}:{}", w.id, w.width))
        .collect::<Vec<_>>()
        .join(",");
    let page = DashboardPage {
        shell: Shell::of_project(
            &stores,
            &member,
            format!("{} · Dashboards", dashboard.name),
            "dashboards",
        )
        .await?,
        dashboards_css_url: super::assets::dashboards_css_url(),
        dashboards_js_url: super::assets::dashboards_js_url(),
        list_url: list_url(&member),
        range_action: url.clone(),
        url,
        name: dashboard.name,
        description: dashboard.description,
        can_write: member.role.can_write(),
        range: range_view,
        widgets: views,
        layout,
        moves: &MOVES,
    };
    html(&page)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MoveForm {
    pub direction: String,
    /// The page's range, to come back to it.
    pub back: String,
}

fn back_to(url: &str, back: &str) -> String {
    // Only a range's query string is carried back: nothing that could lead elsewhere.
    let ok = !back.is_empty()
        && back
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "=&%-_.:".contains(c));
    if ok {
        format!("{url}?{back}")
    } else {
        url.to_string()
    }
}

async fn placements(
    stores: &Stores,
    member: &ProjectMember,
    dashboard_id: &str,
) -> Result<Vec<Placement>, UiError> {
    dashboards::get(&stores.postgres, &member.project_id, dashboard_id)
        .await?
        .ok_or(UiError::NotFound)?;
    Ok(
        dashboards::widgets(&stores.postgres, &member.project_id, dashboard_id)
            .await?
            .into_iter()
            .map(|w| Placement {
                id: w.id,
                width: w.width,
            })
            .collect(),
    )
}

async fn move_widget(
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String, String)>,
    form: web::Form<MoveForm>,
) -> Result<HttpResponse, UiError> {
    require_writer(&member)?;
    let (_, dashboard_id, widget_id) = path.into_inner();
    let step = Move::parse(&form.direction)
        .ok_or_else(|| UiError::BadRequest(format!("{:?} is not a move.", form.direction)))?;
    let current = placements(&stores, &member, &dashboard_id).await?;
    let layout = arrange(&current, &widget_id, step).ok_or(UiError::NotFound)?;
    dashboards::save_layout(
        &stores.postgres,
        &member.project_id,
        &dashboard_id,
        &layout,
        &member.signed_in.user.id,
    )
    .await?;
    Ok(see_other(&back_to(
        &dashboard_url(&member, &dashboard_id),
        &form.back,
    )))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LayoutForm {
    pub layout: String,
    pub back: String,
}

async fn save_layout(
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String)>,
    form: web::Form<LayoutForm>,
) -> Result<HttpResponse, UiError> {
    require_writer(&member)?;
    let (_, dashboard_id) = path.into_inner();
    let current = placements(&stores, &member, &dashboard_id).await?;
    let layout = parse_layout(&form.layout, &current).map_err(UiError::BadRequest)?;
    if !dashboards::save_layout(
        &stores.postgres,
        &member.project_id,
        &dashboard_id,
        &layout,
        &member.signed_in.user.id,
    )
    .await?
    {
        return Err(UiError::BadRequest(
            "The dashboard changed meanwhile; reload the page.".to_string(),
        ));
    }
    Ok(see_other(&back_to(
        &dashboard_url(&member, &dashboard_id),
        &form.back,
    )))
}

// ---------------------------------------------------------------------------------------------
// The widget editor

/// Filter rows the editor offers.
const FILTER_ROWS: usize = 3;

/// The editor's form as posted (and shown back).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WidgetForm {
    pub name: String,
    pub chart_type: String,
    pub view: String,
    pub measure: String,
    pub aggregation: String,
    pub dimension: String,
    pub dimension2: String,
    pub filter_column_0: String,
    pub filter_operator_0: String,
    pub filter_value_0: String,
    pub filter_column_1: String,
    pub filter_operator_1: String,
    pub filter_value_1: String,
    pub filter_column_2: String,
    pub filter_operator_2: String,
    pub filter_value_2: String,
    pub granularity: String,
    pub width: String,
    pub height: String,
    /// `preview` draws the widget without saving it; anything else saves.
    pub intent: String,
    pub back: String,
}

impl Default for WidgetForm {
    fn default() -> Self {
        WidgetForm {
            name: String::new(),
            chart_type: "line".into(),
            view: "traces".into(),
            measure: "count".into(),
            aggregation: "count".into(),
            dimension: String::new(),
            dimension2: String::new(),
            filter_column_0: String::new(),
            filter_operator_0: "=".into(),
            filter_value_0: String::new(),
            filter_column_1: String::new(),
            filter_operator_1: "=".into(),
            filter_value_1: String::new(),
            filter_column_2: String::new(),
            filter_operator_2: "=".into(),
            filter_value_2: String::new(),
            granularity: "auto".into(),
            width: "6".into(),
            height: "1".into(),
            intent: String::new(),
            back: String::new(),
        }
    }
}

impl WidgetForm {
    fn spec(&self) -> WidgetSpec {
        let filter = |c: &str, o: &str, v: &str| FilterSpec {
            column: c.to_string(),
            operator: o.to_string(),
            value: v.to_string(),
        };
        WidgetSpec {
            view: self.view.clone(),
            measure: self.measure.clone(),
            aggregation: self.aggregation.clone(),
            dimensions: vec![self.dimension.clone(), self.dimension2.clone()],
            filters: vec![
                filter(
                    &self.filter_column_0,
                    &self.filter_operator_0,
                    &self.filter_value_0,
                ),
                filter(
                    &self.filter_column_1,
                    &self.filter_operator_1,
                    &self.filter_value_1,
                ),
                filter(
                    &self.filter_column_2,
                    &self.filter_operator_2,
                    &self.filter_value_2,
                ),
            ],
            granularity: self.granularity.clone(),
        }
    }

    /// The fields to store, or what is wrong with the form.
    fn fields(&self) -> Result<WidgetFields, String> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err("Give the widget a name.".to_string());
        }
        if name.chars().count() > 200 {
            return Err("A name has at most 200 characters.".to_string());
        }
        let chart_type = ChartType::parse(&self.chart_type)
            .ok_or_else(|| format!("{:?} is not a chart type.", self.chart_type))?;
        let width: i32 = self.width.parse().unwrap_or(0);
        if !WIDTHS.contains(&width) {
            return Err(format!("A width is one of {WIDTHS:?} columns."));
        }
        let height: i32 = self.height.parse().unwrap_or(0);
        if !HEIGHTS.contains(&height) {
            return Err(format!("A height is one of {HEIGHTS:?} rows."));
        }
        let query = self.spec().to_query()?;
        if chart_type == ChartType::Line && query["timeDimension"].is_null() {
            return Err("A line chart draws time buckets: choose a time granularity.".to_string());
        }
        Ok(WidgetFields {
            name: name.to_string(),
            chart_type,
            query,
            width,
            height,
        })
    }

    fn of_widget(w: &dashboards::Widget) -> WidgetForm {
        let spec = WidgetSpec::from_query(&w.query);
        let filter = |i: usize| {
            spec.filters.get(i).cloned().unwrap_or(FilterSpec {
                operator: "=".into(),
                ..FilterSpec::default()
            })
        };
        let (f0, f1, f2) = (filter(0), filter(1), filter(2));
        WidgetForm {
            name: w.name.clone(),
            chart_type: w.chart_type.as_str().to_string(),
            view: spec.view.clone(),
            measure: spec.measure.clone(),
            aggregation: spec.aggregation.clone(),
            dimension: spec.dimensions.first().cloned().unwrap_or_default(),
            dimension2: spec.dimensions.get(1).cloned().unwrap_or_default(),
            filter_column_0: f0.column,
            filter_operator_0: f0.operator,
            filter_value_0: f0.value,
            filter_column_1: f1.column,
            filter_operator_1: f1.operator,
            filter_value_1: f1.value,
            filter_column_2: f2.column,
            filter_operator_2: f2.operator,
            filter_value_2: f2.value,
            granularity: spec.granularity,
            width: w.width.to_string(),
            height: w.height.to_string(),
            intent: String::new(),
            back: String::new(),
        }
    }
}

pub struct OptionGroup {
    pub label: &'static str,
    pub view: &'static str,
    pub options: Vec<&'static str>,
}

pub struct FilterRow {
    pub index: usize,
    pub column: String,
    pub operator: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "widget_edit.html")]
pub struct WidgetEditPage {
    pub shell: Shell,
    pub dashboards_css_url: &'static str,
    pub dashboards_js_url: &'static str,
    pub dashboard_name: String,
    pub dashboard_url: String,
    pub action: String,
    pub editing: bool,
    pub form: WidgetForm,
    pub views: Vec<(&'static str, &'static str)>,
    pub measures: Vec<OptionGroup>,
    pub dimensions: Vec<OptionGroup>,
    pub aggregations: Vec<&'static str>,
    pub granularities: Vec<&'static str>,
    pub operators: Vec<&'static str>,
    pub chart_types: Vec<(&'static str, &'static str)>,
    pub widths: Vec<i32>,
    pub heights: Vec<i32>,
    pub filters: Vec<FilterRow>,
    pub error: Option<String>,
    pub preview: Option<String>,
    /// The preview's width in grid columns, as the widget will have it.
    pub preview_width: String,
    pub range: RangeView,
}

#[allow(clippy::too_many_arguments)]
async fn render_editor(
    stores: &Stores,
    member: &ProjectMember,
    dashboard_id: &str,
    widget_id: Option<&str>,
    form: WidgetForm,
    status: StatusCode,
    error: Option<String>,
    range_query: &RangeQuery,
) -> Result<HttpResponse, UiError> {
    let dashboard = dashboards::get(&stores.postgres, &member.project_id, dashboard_id)
        .await?
        .ok_or(UiError::NotFound)?;
    let url = dashboard_url(member, dashboard_id);
    let action = match widget_id {
        Some(id) => format!("{url}/widgets/{}", super::path_segment(id)),
        None => format!("{url}/widgets"),
    };
    let (range, range_view) = range_query.resolve(&url);
    // The preview: the widget drawn as it would be saved, over the page's range.
    let mut error = error;
    let mut preview = None;
    if error.is_none() && form.intent == "preview" {
        match form.fields() {
            Ok(fields) => {
                let rows = figures::run(
                    stores,
                    &member.project_id,
                    &chart_query_over(fields.chart_type, &fields.query, &range),
                )
                .await;
                match rows {
                    Ok(rows) => {
                        preview = Some(
                            figures::widget_chart(
                                fields.chart_type,
                                &fields.name,
                                &fields.query,
                                &rows,
                                svg_width(fields.width),
                            )
                            .map_err(anyhow::Error::from)?,
                        )
                    }
                    Err(failure) => error = Some(failure_text(&failure)),
                }
            }
            Err(message) => error = Some(message),
        }
    }
    let filters = [
        (
            &form.filter_column_0,
            &form.filter_operator_0,
            &form.filter_value_0,
        ),
        (
            &form.filter_column_1,
            &form.filter_operator_1,
            &form.filter_value_1,
        ),
        (
            &form.filter_column_2,
            &form.filter_operator_2,
            &form.filter_value_2,
        ),
    ]
    .into_iter()
    .take(FILTER_ROWS)
    .enumerate()
    .map(|(index, (c, o, v))| FilterRow {
        index,
        column: c.clone(),
        operator: o.clone(),
        value: v.clone(),
    })
    .collect();
    let page = WidgetEditPage {
        shell: Shell::of_project(
            stores,
            member,
            format!("Widget · {}", dashboard.name),
            "dashboards",
        )
        .await?,
        dashboards_css_url: super::assets::dashboards_css_url(),
        dashboards_js_url: super::assets::dashboards_js_url(),
        dashboard_name: dashboard.name,
        dashboard_url: url,
        action,
        editing: widget_id.is_some(),
        preview_width: form.width.clone(),
        form,
        views: VIEWS.iter().map(|v| (v.name, v.label)).collect(),
        measures: VIEWS
            .iter()
            .map(|v| OptionGroup {
                label: v.label,
                view: v.name,
                options: v.measures.to_vec(),
            })
            .collect(),
        dimensions: VIEWS
            .iter()
            .map(|v| OptionGroup {
                label: v.label,
                view: v.name,
                options: v.dimensions.to_vec(),
            })
            .collect(),
        aggregations: AGGREGATIONS.to_vec(),
        granularities: GRANULARITIES.to_vec(),
        operators: OPERATORS.to_vec(),
        chart_types: ChartType::ALL
            .iter()
            .map(|c| (c.as_str(), c.label()))
            .collect(),
        widths: WIDTHS.to_vec(),
        heights: HEIGHTS.to_vec(),
        filters,
        error,
        preview,
        range: range_view,
    };
    html_with_status(status, &page)
}

async fn new_widget_page(
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String)>,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, UiError> {
    require_writer(&member)?;
    let (_, dashboard_id) = path.into_inner();
    render_editor(
        &stores,
        &member,
        &dashboard_id,
        None,
        WidgetForm::default(),
        StatusCode::OK,
        None,
        &query,
    )
    .await
}

async fn edit_widget_page(
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String, String)>,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, UiError> {
    require_writer(&member)?;
    let (_, dashboard_id, widget_id) = path.into_inner();
    let widget = dashboards::widget_by_id(
        &stores.postgres,
        &member.project_id,
        &dashboard_id,
        &widget_id,
    )
    .await?
    .ok_or(UiError::NotFound)?;
    render_editor(
        &stores,
        &member,
        &dashboard_id,
        Some(&widget_id),
        WidgetForm::of_widget(&widget),
        StatusCode::OK,
        None,
        &query,
    )
    .await
}

/// The range a posted editor form came from (its `back` field holds the range's query string).
fn range_of(form: &WidgetForm) -> RangeQuery {
    serde_urlencoded::from_str(&form.back).unwrap_or_default()
}

async fn create_widget(
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String)>,
    form: web::Form<WidgetForm>,
) -> Result<HttpResponse, UiError> {
    require_writer(&member)?;
    let (_, dashboard_id) = path.into_inner();
    let form = form.into_inner();
    let range = range_of(&form);
    if form.intent != "preview" {
        match form.fields() {
            Ok(fields) => {
                dashboards::add_widget(
                    &stores.postgres,
                    &member.project_id,
                    &dashboard_id,
                    &fields,
                    &member.signed_in.user.id,
                )
                .await?
                .ok_or(UiError::NotFound)?;
                return Ok(see_other(&back_to(
                    &dashboard_url(&member, &dashboard_id),
                    &form.back,
                )));
            }
            Err(message) => {
                return render_editor(
                    &stores,
                    &member,
                    &dashboard_id,
                    None,
                    form,
                    StatusCode::BAD_REQUEST,
                    Some(message),
                    &range,
                )
                .await
            }
        }
    }
    render_editor(
        &stores,
        &member,
        &dashboard_id,
        None,
        form,
        StatusCode::OK,
        None,
        &range,
    )
    .await
}

async fn update_widget(
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String, String)>,
    form: web::Form<WidgetForm>,
) -> Result<HttpResponse, UiError> {
    require_writer(&member)?;
    let (_, dashboard_id, widget_id) = path.into_inner();
    let form = form.into_inner();
    let range = range_of(&form);
    if form.intent != "preview" {
        match form.fields() {
            Ok(fields) => {
                if !dashboards::update_widget(
                    &stores.postgres,
                    &member.project_id,
                    &dashboard_id,
                    &widget_id,
                    &fields,
                    &member.signed_in.user.id,
                )
                .await?
                {
                    return Err(UiError::NotFound);
                }
                return Ok(see_other(&back_to(
                    &dashboard_url(&member, &dashboard_id),
                    &form.back,
                )));
            }
            Err(message) => {
                return render_editor(
                    &stores,
                    &member,
                    &dashboard_id,
                    Some(&widget_id),
                    form,
                    StatusCode::BAD_REQUEST,
                    Some(message),
                    &range,
                )
                .await
            }
        }
    }
    render_editor(
        &stores,
        &member,
        &dashboard_id,
        Some(&widget_id),
        form,
        StatusCode::OK,
        None,
        &range,
    )
    .await
}

async fn delete_widget(
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String, String)>,
    form: web::Form<MoveForm>,
) -> Result<HttpResponse, UiError> {
    require_writer(&member)?;
    let (_, dashboard_id, widget_id) = path.into_inner();
    if dashboards::delete_widget(
        &stores.postgres,
        &member.project_id,
        &dashboard_id,
        &widget_id,
        &member.signed_in.user.id,
    )
    .await?
    {
        Ok(see_other(&back_to(
            &dashboard_url(&member, &dashboard_id),
            &form.back,
        )))
    } else {
        Err(UiError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_widget_form_needs_a_name_a_known_chart_and_a_valid_query() {
        let form = WidgetForm {
            name: "Cost by model".into(),
            chart_type: "bar".into(),
            view: "observations".into(),
            measure: "totalCost".into(),
            aggregation: "sum".into(),
            dimension: "providedModelName".into(),
            granularity: "none".into(),
            ..WidgetForm::default()
        };
        let fields = form.fields().unwrap();
        assert_eq!(fields.chart_type, ChartType::Bar);
        assert_eq!(fields.query["dimensions"][0]["field"], "providedModelName");
        let line = WidgetForm {
            chart_type: "line".into(),
            ..form.clone()
        };
        assert!(line.fields().unwrap_err().contains("granularity"));
        let nameless = WidgetForm {
            name: " ".into(),
            ..form.clone()
        };
        assert!(nameless.fields().is_err());
        let wide = WidgetForm {
            width: "7".into(),
            ..form
        };
        assert!(wide.fields().is_err());
    }

    #[test]
    fn only_a_range_is_carried_back() {
        assert_eq!(back_to("/d", "range=7d"), "/d?range=7d");
        assert_eq!(back_to("/d", "https://evil.example"), "/d");
        assert_eq!(back_to("/d", ""), "/d");
    }
}
