//! A project's score configs, `/project/{projectId}/settings/scores` (Langfuse's URL): the list
//! (name, data type, range or categories, description, archived), a form that creates one
//! (numeric with an optional range, categorical with label → value rows, boolean, text), and
//! archive and restore buttons. As in Langfuse, configs are never edited otherwise nor deleted;
//! members, admins and owners write them (`scoreConfigs:CUD`), viewers read them.
//!
//! Writes go through `storage::score_configs`, as `/api/public/score-configs` does: the form is
//! turned into the API's request body and read by the same `ConfigFields::from_create` (an
//! archive by `ConfigFields::updated`), so the page refuses what the API refuses, with the same
//! words; then every process's `ConfigCache` is told, as the API's writes do.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde_json::{json, Map, Value};

use crate::domain::score_config::{ConfigDataType, ConfigFields, MAX_NAME_CHARS};
use crate::http::auth::ProjectMember;
use crate::storage::score_configs::{self, ConfigCache, ScoreConfig};
use crate::storage::Stores;

use super::error::{html_with_status, see_other, UiError};
use super::shell::{Shell, ShownTime};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/project/{projectId}/settings/scores",
        web::get().to(configs_page),
    )
    .route(
        "/project/{projectId}/settings/scores",
        web::post().to(create_config),
    )
    .route(
        "/project/{projectId}/settings/scores/{configId}/archive",
        web::post().to(archive_config),
    )
    .route(
        "/project/{projectId}/settings/scores/{configId}/restore",
        web::post().to(restore_config),
    );
}

/// Empty category rows the form offers at least (a script adds more).
const MIN_CATEGORY_ROWS: usize = 3;

pub struct ConfigView {
    pub id: String,
    pub name: String,
    pub data_type: &'static str,
    /// `0 – 1`, `≥ 0`, `≤ 10`, `any number`; empty for other data types.
    pub range: String,
    /// `label = value`, in the config's order.
    pub categories: Vec<String>,
    pub description: String,
    pub archived: bool,
    pub created: ShownTime,
}

/// One label → value row of the create form.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CategoryRow {
    pub label: String,
    pub value: String,
}

/// The create form as written, shown back after a refusal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigForm {
    pub name: String,
    pub data_type: String,
    pub description: String,
    pub min_value: String,
    pub max_value: String,
    pub categories: Vec<CategoryRow>,
}

impl ConfigForm {
    /// Reads the posted pairs; `category_label` and `category_value` repeat, a row each.
    pub fn from_pairs(pairs: &[(String, String)]) -> ConfigForm {
        let mut form = ConfigForm::default();
        let (mut labels, mut values) = (Vec::new(), Vec::new());
        for (key, value) in pairs {
            match key.as_str() {
                "name" => form.name = value.clone(),
                "data_type" => form.data_type = value.clone(),
                "description" => form.description = value.clone(),
                "min_value" => form.min_value = value.clone(),
                "max_value" => form.max_value = value.clone(),
                "category_label" => labels.push(value.clone()),
                "category_value" => values.push(value.clone()),
                _ => {}
            }
        }
        let rows = labels.len().max(values.len());
        form.categories = (0..rows)
            .map(|i| CategoryRow {
                label: labels.get(i).cloned().unwrap_or_default(),
                value: values.get(i).cloned().unwrap_or_default(),
            })
            .filter(|row| !row.label.trim().is_empty() || !row.value.trim().is_empty())
            .collect();
        form
    }

    /// The form as the body of `POST /api/public/score-configs`: the range only for a NUMERIC
    /// config, the categories only for a CATEGORICAL one (the form shows both without script);
    /// numbers read as JSON numbers (what is not stays a string, which the API's reader refuses
    /// by name).
    pub fn request_body(&self) -> Value {
        let mut body = Map::new();
        body.insert("name".into(), json!(self.name.trim()));
        body.insert("dataType".into(), json!(self.data_type.trim()));
        if !self.description.trim().is_empty() {
            body.insert("description".into(), json!(self.description.trim()));
        }
        let number = |text: &str| {
            text.trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map_or_else(|| json!(text.trim()), |n| json!(n))
        };
        match self.data_type.as_str() {
            "NUMERIC" => {
                for (key, text) in [("minValue", &self.min_value), ("maxValue", &self.max_value)] {
                    if !text.trim().is_empty() {
                        body.insert(key.into(), number(text));
                    }
                }
            }
            "CATEGORICAL" => {
                let categories: Vec<Value> = self
                    .categories
                    .iter()
                    .map(|row| json!({"label": row.label.trim(), "value": number(&row.value)}))
                    .collect();
                body.insert("categories".into(), Value::Array(categories));
            }
            _ => {}
        }
        Value::Object(body)
    }

    /// The category rows to show: those written, and empty ones up to the minimum (one more
    /// after a full form).
    pub fn rows(&self) -> Vec<CategoryRow> {
        let mut rows = self.categories.clone();
        let wanted = MIN_CATEGORY_ROWS.max(rows.len() + 1);
        rows.resize(wanted, CategoryRow::default());
        rows
    }
}

#[derive(Template)]
#[template(path = "score_configs.html")]
pub struct ConfigsPage {
    pub shell: Shell,
    pub project_id: String,
    pub project_name: String,
    pub org_name: String,
    pub role: String,
    pub can_write: bool,
    pub configs: Vec<ConfigView>,
    pub form: ConfigForm,
    pub rows: Vec<CategoryRow>,
    pub data_types: Vec<&'static str>,
    pub max_name_chars: usize,
    pub notice: Option<&'static str>,
    pub error: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "The score config was created.",
        "archived" => "The score config was archived: it takes no new scores.",
        "restored" => "The score config was restored.",
        _ => return None,
    })
}

/// A number as people write it: `1`, not `1.0`.
fn number_text(n: f64) -> String {
    format!("{n}")
}

pub fn config_view(c: &ScoreConfig) -> ConfigView {
    let f = &c.fields;
    let range = match (f.data_type, f.min_value, f.max_value) {
        (ConfigDataType::Numeric, Some(min), Some(max)) => {
            format!("{} – {}", number_text(min), number_text(max))
        }
        (ConfigDataType::Numeric, Some(min), None) => format!("≥ {}", number_text(min)),
        (ConfigDataType::Numeric, None, Some(max)) => format!("≤ {}", number_text(max)),
        (ConfigDataType::Numeric, None, None) => "any number".to_string(),
        _ => String::new(),
    };
    ConfigView {
        id: c.id.clone(),
        name: f.name.clone(),
        data_type: f.data_type.as_str(),
        range,
        categories: f
            .categories
            .iter()
            .flatten()
            .map(|cat| format!("{} = {}", cat.label, number_text(cat.value)))
            .collect(),
        description: f.description.clone().unwrap_or_default(),
        archived: f.is_archived,
        created: ShownTime::new(c.created_at),
    }
}

async fn render(
    stores: &Stores,
    member: &ProjectMember,
    status: StatusCode,
    form: ConfigForm,
    done: Option<&str>,
    error: Option<String>,
) -> Result<HttpResponse, UiError> {
    let configs = score_configs::all(&stores.postgres, &member.project_id).await?;
    let page = ConfigsPage {
        shell: Shell::of_project(
            stores,
            member,
            format!("Score configs · {}", member.project_name),
            "settings",
        )
        .await?,
        project_id: member.project_id.as_str().to_string(),
        project_name: member.project_name.clone(),
        org_name: member.org_name.clone(),
        role: member.role.to_string(),
        can_write: member.role.can_write(),
        configs: configs.iter().map(config_view).collect(),
        rows: form.rows(),
        form,
        data_types: ConfigDataType::ALL.iter().map(|d| d.as_str()).collect(),
        max_name_chars: MAX_NAME_CHARS,
        notice: notice(done),
        error,
    };
    html_with_status(status, &page)
}

fn page_url(member: &ProjectMember, done: &str) -> String {
    format!(
        "/project/{}/settings/scores?done={done}",
        super::path_segment(member.project_id.as_str())
    )
}

fn require_writer(member: &ProjectMember) -> Result<(), UiError> {
    if member.role.can_write() {
        Ok(())
    } else {
        Err(UiError::Forbidden(
            "Your role on this project reads score configs but does not change them.".into(),
        ))
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct PageQuery {
    pub done: Option<String>,
}

async fn configs_page(
    stores: web::Data<Stores>,
    member: ProjectMember,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, UiError> {
    let form = ConfigForm {
        data_type: "NUMERIC".into(),
        ..ConfigForm::default()
    };
    render(
        &stores,
        &member,
        StatusCode::OK,
        form,
        query.done.as_deref(),
        None,
    )
    .await
}

async fn create_config(
    stores: web::Data<Stores>,
    cache: web::Data<ConfigCache>,
    member: ProjectMember,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, UiError> {
    require_writer(&member)?;
    let form = ConfigForm::from_pairs(&form);
    match ConfigFields::from_create(&form.request_body()) {
        Ok(fields) => {
            score_configs::create(&stores.postgres, &member.project_id, &fields).await?;
            cache.changed(&stores.redis, &member.project_id).await;
            Ok(see_other(&page_url(&member, "created")))
        }
        Err(message) => {
            render(
                &stores,
                &member,
                StatusCode::BAD_REQUEST,
                form,
                None,
                Some(message),
            )
            .await
        }
    }
}

async fn set_archived(
    stores: &Stores,
    cache: &ConfigCache,
    member: &ProjectMember,
    config_id: &str,
    archived: bool,
) -> Result<(), UiError> {
    require_writer(member)?;
    let outcome = score_configs::update(&stores.postgres, &member.project_id, config_id, |c| {
        c.updated(&json!({ "isArchived": archived }))
    })
    .await?
    .ok_or(UiError::NotFound)?;
    outcome.map_err(UiError::BadRequest)?;
    cache.changed(&stores.redis, &member.project_id).await;
    Ok(())
}

async fn archive_config(
    stores: web::Data<Stores>,
    cache: web::Data<ConfigCache>,
    member: ProjectMember,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, UiError> {
    set_archived(&stores, &cache, &member, &path.1, true).await?;
    Ok(see_other(&page_url(&member, "archived")))
}

async fn restore_config(
    stores: web::Data<Stores>,
    cache: web::Data<ConfigCache>,
    member: ProjectMember,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, UiError> {
    set_archived(&stores, &cache, &member, &path.1, false).await?;
    Ok(see_other(&page_url(&member, "restored")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_form_becomes_the_api_request_the_api_reader_checks() {
        let form = ConfigForm::from_pairs(&pairs(&[
            ("name", " quality "),
            ("data_type", "CATEGORICAL"),
            ("min_value", "3"),
            ("category_label", "good"),
            ("category_value", "1"),
            ("category_label", "bad"),
            ("category_value", "0"),
            ("category_label", ""),
            ("category_value", ""),
        ]));
        assert_eq!(form.categories.len(), 2);
        assert_eq!(form.rows().len(), 3);
        let fields = ConfigFields::from_create(&form.request_body()).unwrap();
        assert_eq!(fields.name, "quality");
        assert_eq!(fields.min_value, None, "a range is only sent for NUMERIC");
        assert_eq!(fields.categories.unwrap()[1].label, "bad");

        let numeric = ConfigForm::from_pairs(&pairs(&[
            ("name", "accuracy"),
            ("data_type", "NUMERIC"),
            ("min_value", "0"),
            ("max_value", "one"),
            ("category_label", "ignored"),
            ("category_value", "1"),
        ]));
        let refused = ConfigFields::from_create(&numeric.request_body()).unwrap_err();
        assert!(refused.contains("maxValue"), "{refused}");

        let boolean = ConfigForm::from_pairs(&pairs(&[("name", "ok"), ("data_type", "BOOLEAN")]));
        let fields = ConfigFields::from_create(&boolean.request_body()).unwrap();
        assert_eq!(fields.categories.unwrap().len(), 2);
    }

    #[test]
    fn ranges_and_categories_read_plainly() {
        let fields = ConfigFields::from_create(
            &json!({"name": "a", "dataType": "NUMERIC", "minValue": 0, "maxValue": 1.5}),
        )
        .unwrap();
        let config = ScoreConfig {
            id: "c".into(),
            project_id: "p".into(),
            fields,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        };
        assert_eq!(config_view(&config).range, "0 – 1.5");
        assert!(notice(Some("created")).is_some());
        assert_eq!(notice(Some("<b>")), None);
    }
}
