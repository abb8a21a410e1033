//! A dataset's settings tab: change its name, description, metadata and schemas, or delete it
//! with its items, runs and run items. Members who change datasets only (`require_writer`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;

use crate::http::auth::ProjectMember;
use crate::storage::postgres::datasets::{self as store, Dataset};
use crate::storage::Stores;

use super::datasets::{
    datasets_href, decoded, load_dataset, pretty_json, require_writer, write_refusal, DatasetForm,
    DatasetHead,
};
use super::error::{html_with_status, see_other, UiError};
use super::shell::Shell;

pub fn routes(cfg: &mut web::ServiceConfig) {
    let settings = "/project/{projectId}/datasets/{datasetId}/settings";
    cfg.route(settings, web::get().to(settings_page))
        .route(settings, web::post().to(save))
        .route(
            "/project/{projectId}/datasets/{datasetId}/delete",
            web::post().to(delete),
        );
}

#[derive(Template)]
#[template(path = "datasets/settings.html")]
pub struct SettingsPage {
    pub shell: Shell,
    pub css_url: &'static str,
    pub trace_css_url: &'static str,
    pub head: DatasetHead,
    pub form: DatasetForm,
    pub notice: Option<&'static str>,
    pub error: Option<String>,
    pub delete_error: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct SettingsQuery {
    pub done: Option<String>,
}

/// The delete form: the dataset's name typed again, so a slip of the mouse deletes nothing.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct DeleteForm {
    pub confirm_name: String,
}

/// The form as the dataset is now.
fn form_of(dataset: &Dataset) -> DatasetForm {
    DatasetForm {
        name: dataset.name.clone(),
        description: dataset.description.clone().unwrap_or_default(),
        metadata: pretty_json(dataset.metadata.as_ref()),
        input_schema: pretty_json(dataset.input_schema.as_ref()),
        expected_output_schema: pretty_json(dataset.expected_output_schema.as_ref()),
    }
}

struct Outcome {
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
    delete_error: Option<String>,
}

async fn render(
    stores: &Stores,
    member: &ProjectMember,
    dataset: &Dataset,
    form: DatasetForm,
    outcome: Outcome,
) -> Result<HttpResponse, UiError> {
    let page = SettingsPage {
        shell: Shell::of_project(
            stores,
            member,
            format!("Settings · {} · {}", dataset.name, member.project_name),
            "datasets",
        )
        .await?,
        css_url: super::assets::datasets_css_url(),
        trace_css_url: super::assets::trace_css_url(),
        head: DatasetHead::of(stores, member, dataset, "settings").await?,
        form,
        notice: outcome.notice,
        error: outcome.error,
        delete_error: outcome.delete_error,
    };
    html_with_status(outcome.status, &page)
}

async fn settings_page(
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String)>,
    query: web::Query<SettingsQuery>,
) -> Result<HttpResponse, UiError> {
    require_writer(&member)?;
    let dataset = load_dataset(&stores, &member, &decoded(&path.1)).await?;
    let notice = match query.done.as_deref() {
        Some("saved") => Some("The dataset was saved."),
        _ => None,
    };
    let outcome = Outcome {
        status: StatusCode::OK,
        notice,
        error: None,
        delete_error: None,
    };
    render(&stores, &member, &dataset, form_of(&dataset), outcome).await
}

async fn save(
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String)>,
    form: web::Form<DatasetForm>,
) -> Result<HttpResponse, UiError> {
    require_writer(&member)?;
    let dataset = load_dataset(&stores, &member, &decoded(&path.1)).await?;
    let form = form.into_inner();
    let refused = match form.upsert() {
        Err(message) => (StatusCode::BAD_REQUEST, message),
        Ok(edit) => {
            match store::edit_dataset(&stores.postgres, &member.project_id, &dataset.id, &edit)
                .await
            {
                Ok(saved) => {
                    let href = super::datasets::dataset_href(member.project_id.as_str(), &saved.id);
                    return Ok(see_other(&format!("{href}/settings?done=saved")));
                }
                Err(store::DatasetWriteError::Conflict(message)) => (StatusCode::CONFLICT, message),
                Err(error) => (StatusCode::BAD_REQUEST, write_refusal(error)?),
            }
        }
    };
    let (status, message) = refused;
    let outcome = Outcome {
        status,
        notice: None,
        error: Some(message),
        delete_error: None,
    };
    render(&stores, &member, &dataset, form, outcome).await
}

async fn delete(
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String)>,
    form: web::Form<DeleteForm>,
) -> Result<HttpResponse, UiError> {
    require_writer(&member)?;
    let dataset = load_dataset(&stores, &member, &decoded(&path.1)).await?;
    if form.confirm_name.trim() != dataset.name {
        let outcome = Outcome {
            status: StatusCode::BAD_REQUEST,
            notice: None,
            error: None,
            delete_error: Some(format!(
                "Type the dataset's name, {:?}, to delete it.",
                dataset.name
            )),
        };
        return render(&stores, &member, &dataset, form_of(&dataset), outcome).await;
    }
    store::delete_dataset(&stores.postgres, &member.project_id, &dataset.id).await?;
    Ok(see_other(&format!(
        "{}?done=deleted",
        datasets_href(member.project_id.as_str())
    )))
}
