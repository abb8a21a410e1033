//! A project's models and prices, `/project/{projectId}/settings/models`: the project's own model
//! definitions and the shipped ones, each with the prices of its default tier and its other tiers
//! with their conditions; a form that creates a project model and a button that deletes one
//! (owners and admins, Langfuse's `models:CUD`); and a box that says which model a model name,
//! used at a time, is priced by.
//!
//! Writes go through `storage::models`, as `POST /api/public/models` does: the form is turned into
//! the API's request body and read by the same `NewModel::from_request`, so the page refuses what
//! the API refuses, with the same words. The matching box runs `domain::model::match_model` over
//! the rows just read (not the catalog cache, which may lag a change by its refresh interval).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::domain::model::{
    match_model, Matchable, ModelDefinition, NewModel, PricingTier, TierCondition, Unit, TOKENIZERS,
};
use crate::domain::time::parse_time;
use crate::http::auth::ProjectMember;
use crate::storage::models::{self, CreateError};
use crate::storage::Stores;

use super::error::{html_with_status, see_other, UiError};
use super::shell::{Shell, ShownTime};

/// More models than a project plus the shipped set will have; the page shows them all.
const MAX_MODELS: u64 = 5_000;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/project/{projectId}/settings/models",
        web::get().to(models_page),
    )
    .route(
        "/project/{projectId}/settings/models",
        web::post().to(create_model),
    )
    .route(
        "/project/{projectId}/settings/models/{modelId}/delete",
        web::post().to(delete_model),
    );
}

pub struct PriceView {
    pub usage_type: String,
    /// USD per unit, exact as stored.
    pub per_unit: String,
    /// USD per million units, for reading at a glance.
    pub per_million: String,
}

pub struct TierView {
    pub name: String,
    pub priority: i32,
    pub conditions: Vec<String>,
    pub prices: Vec<PriceView>,
}

pub struct ModelView {
    pub id: String,
    pub name: String,
    pub match_pattern: String,
    pub start_date: Option<ShownTime>,
    pub unit: String,
    pub tokenizer: String,
    pub shipped: bool,
    pub default_prices: Vec<PriceView>,
    pub other_tiers: Vec<TierView>,
}

/// The create form as written, shown back after a refusal.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ModelForm {
    pub model_name: String,
    pub match_pattern: String,
    pub start_date: String,
    pub unit: String,
    pub tokenizer_id: String,
    pub tokenizer_config: String,
    pub input_price: String,
    pub output_price: String,
    pub total_price: String,
    pub pricing_tiers: String,
}

/// The matching box's question (`?model=&at=`) and its answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MatchQuery {
    pub model: String,
    pub at: String,
    pub done: Option<String>,
}

pub struct MatchView {
    pub asked: bool,
    pub model: String,
    pub at: String,
    pub error: Option<String>,
    pub found: Option<ModelView>,
}

#[derive(Template)]
#[template(path = "models.html")]
pub struct ModelsPage {
    pub shell: Shell,
    pub project_id: String,
    pub project_name: String,
    pub org_name: String,
    pub role: String,
    pub can_manage: bool,
    pub project_models: Vec<ModelView>,
    pub shipped_models: Vec<ModelView>,
    pub form: ModelForm,
    pub units: Vec<&'static str>,
    pub tokenizers: Vec<&'static str>,
    pub matching: MatchView,
    pub notice: Option<&'static str>,
    pub error: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "The model was created. New observations are priced by it within seconds.",
        "deleted" => "The model was deleted.",
        _ => return None,
    })
}

/// A price per unit as text, also per million units (`2.5` for `0.0000025`).
fn price_view(usage_type: &str, price: &crate::domain::model::Price) -> PriceView {
    let per_million = price.to_f64() * 1_000_000.0;
    let mut text = format!("{per_million:.6}");
    while text.ends_with('0') {
        text.pop();
    }
    if text.ends_with('.') {
        text.pop();
    }
    PriceView {
        usage_type: usage_type.to_string(),
        per_unit: price.as_str().to_string(),
        per_million: text,
    }
}

fn prices_of(tier: &PricingTier) -> Vec<PriceView> {
    tier.prices.iter().map(|(k, p)| price_view(k, p)).collect()
}

/// A tier condition as a sentence-like line: `input > 200000`, `metadata.region in eu, us`.
pub fn condition_text(condition: &TierCondition) -> String {
    match condition {
        TierCondition::Usage {
            usage_detail_pattern,
            operator,
            value,
            case_sensitive,
        } => {
            let op = match operator {
                crate::domain::model::Operator::Gt => ">",
                crate::domain::model::Operator::Gte => "≥",
                crate::domain::model::Operator::Lt => "<",
                crate::domain::model::Operator::Lte => "≤",
                crate::domain::model::Operator::Eq => "=",
                crate::domain::model::Operator::Neq => "≠",
            };
            let case = if *case_sensitive {
                " (case-sensitive)"
            } else {
                ""
            };
            format!("usage matching /{usage_detail_pattern}/{case} {op} {value}")
        }
        TierCondition::Attribute {
            source,
            key,
            values,
            ..
        } => {
            let source = match source {
                crate::domain::model::AttributeSource::ModelParameters => "model_parameters",
                crate::domain::model::AttributeSource::Metadata => "metadata",
            };
            format!("{source}.{key} in {}", values.join(", "))
        }
    }
}

pub fn model_view(m: &ModelDefinition) -> ModelView {
    ModelView {
        id: m.id.clone(),
        name: m.model_name.clone(),
        match_pattern: m.match_pattern.clone(),
        start_date: m.start_date.map(ShownTime::new),
        unit: m.unit.map(Unit::as_str).unwrap_or_default().to_string(),
        tokenizer: m.tokenizer_id.clone().unwrap_or_default(),
        shipped: m.project_id.is_none(),
        default_prices: m.default_tier().map(prices_of).unwrap_or_default(),
        other_tiers: m
            .tiers
            .iter()
            .filter(|t| !t.is_default)
            .map(|t| TierView {
                name: t.name.clone(),
                priority: t.priority,
                conditions: t.conditions.iter().map(condition_text).collect(),
                prices: prices_of(t),
            })
            .collect(),
    }
}

/// The model a name used at `at` is priced by, among `all` (the project's and the shipped).
pub fn matching(all: &[ModelDefinition], name: &str, at: Option<DateTime<Utc>>) -> Option<String> {
    let (own, shipped): (Vec<_>, Vec<_>) = all
        .iter()
        .cloned()
        .filter_map(Matchable::new)
        .partition(|m| m.model.project_id.is_some());
    match_model(&own, &shipped, name, at).map(|m| m.id.clone())
}

/// The form as the body of `POST /api/public/models`: empty fields absent, numbers and JSON
/// read as JSON (what is not becomes a string, which the API's reader refuses by name).
pub fn request_body(form: &ModelForm) -> Value {
    let mut body = Map::new();
    let text = |s: &str| s.trim().to_string();
    let json = |s: &str| serde_json::from_str::<Value>(s.trim()).unwrap_or(Value::String(text(s)));
    for (key, value) in [
        ("modelName", &form.model_name),
        ("matchPattern", &form.match_pattern),
        ("startDate", &form.start_date),
        ("unit", &form.unit),
        ("tokenizerId", &form.tokenizer_id),
    ] {
        if !value.trim().is_empty() {
            body.insert(key.to_string(), Value::String(text(value)));
        }
    }
    for (key, value) in [
        ("tokenizerConfig", &form.tokenizer_config),
        ("inputPrice", &form.input_price),
        ("outputPrice", &form.output_price),
        ("totalPrice", &form.total_price),
        ("pricingTiers", &form.pricing_tiers),
    ] {
        if !value.trim().is_empty() {
            body.insert(key.to_string(), json(value));
        }
    }
    Value::Object(body)
}

async fn render(
    stores: &Stores,
    member: &ProjectMember,
    status: StatusCode,
    form: ModelForm,
    query: MatchQuery,
    error: Option<String>,
) -> Result<HttpResponse, UiError> {
    let (all, _) = models::list(&stores.postgres, &member.project_id, 0, MAX_MODELS).await?;
    let asked = !query.model.trim().is_empty();
    let mut matching_view = MatchView {
        asked,
        model: query.model.clone(),
        at: query.at.clone(),
        error: None,
        found: None,
    };
    if asked {
        let at = match query.at.trim() {
            "" => Ok(Some(Utc::now())),
            text => parse_time(text).map(Some).ok_or_else(|| {
                format!("{text:?} is not a date and time such as 2025-06-01T12:00:00Z.")
            }),
        };
        match at {
            Ok(at) => {
                let id = matching(&all, query.model.trim(), at);
                matching_view.found = id
                    .and_then(|id| all.iter().find(|m| m.id == id))
                    .map(model_view);
            }
            Err(message) => matching_view.error = Some(message),
        }
    }
    let (project_models, shipped_models): (Vec<_>, Vec<_>) =
        all.iter().map(model_view).partition(|m| !m.shipped);
    let page = ModelsPage {
        shell: Shell::of_project(
            stores,
            member,
            format!("Models · {}", member.project_name),
            "settings",
        )
        .await?,
        project_id: member.project_id.as_str().to_string(),
        project_name: member.project_name.clone(),
        org_name: member.org_name.clone(),
        role: member.role.to_string(),
        can_manage: member.role.can_manage(),
        project_models,
        shipped_models,
        form,
        units: Unit::ALL.iter().map(|u| u.as_str()).collect(),
        tokenizers: TOKENIZERS.to_vec(),
        matching: matching_view,
        notice: notice(query.done.as_deref()),
        error,
    };
    html_with_status(status, &page)
}

fn page_url(member: &ProjectMember, done: &str) -> String {
    format!(
        "/project/{}/settings/models?done={done}",
        super::path_segment(member.project_id.as_str())
    )
}

async fn models_page(
    stores: web::Data<Stores>,
    member: ProjectMember,
    query: web::Query<MatchQuery>,
) -> Result<HttpResponse, UiError> {
    render(
        &stores,
        &member,
        StatusCode::OK,
        ModelForm::default(),
        query.into_inner(),
        None,
    )
    .await
}

async fn create_model(
    stores: web::Data<Stores>,
    member: ProjectMember,
    form: web::Form<ModelForm>,
) -> Result<HttpResponse, UiError> {
    member.require_manager()?;
    let form = form.into_inner();
    let refused = match NewModel::from_request(&request_body(&form)) {
        Ok(new) => match models::create(&stores.postgres, &member.project_id, &new).await {
            Ok(_) => return Ok(see_other(&page_url(&member, "created"))),
            Err(e @ CreateError::NameTaken(_)) => e.to_string(),
            Err(CreateError::Other(cause)) => return Err(UiError::Internal(cause)),
        },
        Err(message) => message,
    };
    render(
        &stores,
        &member,
        StatusCode::BAD_REQUEST,
        form,
        MatchQuery::default(),
        Some(refused),
    )
    .await
}

async fn delete_model(
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, UiError> {
    member.require_manager()?;
    let (_, model_id) = path.into_inner();
    if models::delete(&stores.postgres, &member.project_id, &model_id).await? {
        Ok(see_other(&page_url(&member, "deleted")))
    } else {
        Err(UiError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_the_api_request_the_api_reader_checks() {
        let form = ModelForm {
            model_name: " my-model ".into(),
            match_pattern: "(?i)^my-model$".into(),
            input_price: "0.0000025".into(),
            output_price: "1e-5".into(),
            ..ModelForm::default()
        };
        let new = NewModel::from_request(&request_body(&form)).unwrap();
        assert_eq!(new.model_name, "my-model");
        assert_eq!(new.tiers.len(), 1);
        assert_eq!(new.tiers[0].prices.len(), 2);

        let bad = ModelForm {
            input_price: "cheap".into(),
            ..form
        };
        let message = NewModel::from_request(&request_body(&bad)).unwrap_err();
        assert!(message.contains("inputPrice"), "{message}");
    }

    #[test]
    fn prices_read_per_million() {
        let p = crate::domain::model::Price::parse("0.0000025").unwrap();
        let v = price_view("input", &p);
        assert_eq!(v.per_million, "2.5");
        assert_eq!(v.per_unit, "0.0000025");
    }

    #[test]
    fn notices_are_fixed_texts() {
        assert!(notice(Some("created")).is_some());
        assert_eq!(notice(Some("<b>x</b>")), None);
    }
}
