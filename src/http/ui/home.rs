//! The start page (`/`): the person's organizations and their projects; a new organization
//! (`POST /organizations`, its creator its owner) and a new project in one
//! (`POST /organization/{orgId}/projects`, owners and admins).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::http::auth::{OrgMember, SignedIn};
use crate::storage::postgres::memberships;
use crate::storage::Stores;

use super::error::{html_with_status, see_other, UiError};
use super::shell::Shell;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(start_page))
        .route("/organizations", web::post().to(create_organization))
        .route(
            "/organization/{orgId}/projects",
            web::post().to(create_project),
        );
}

pub struct OrgView {
    pub id: String,
    pub name: String,
    pub role: String,
    pub can_create_project: bool,
    pub projects: Vec<ProjectView>,
}

pub struct ProjectView {
    pub id: String,
    pub name: String,
    pub role: String,
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub shell: Shell,
    pub organizations: Vec<OrgView>,
    pub error: Option<String>,
}

/// The longest organization or project name accepted.
pub const MAX_NAME_CHARS: usize = 100;

/// A trimmed name of 1 to [`MAX_NAME_CHARS`] characters, or the message saying what is wrong.
pub fn valid_name<'a>(raw: &'a str, what: &str) -> Result<&'a str, String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        Err(format!(
            "The {what} name must have between 1 and {MAX_NAME_CHARS} characters."
        ))
    } else {
        Ok(name)
    }
}

async fn render(
    stores: &Stores,
    signed_in: &SignedIn,
    status: StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, UiError> {
    let organizations = memberships::organizations_of(&stores.postgres, &signed_in.user.id)
        .await?
        .into_iter()
        .map(|org| OrgView {
            can_create_project: org.role.can_manage(),
            role: org.role.to_string(),
            id: org.id,
            name: org.name,
            projects: org
                .projects
                .into_iter()
                .map(|p| ProjectView {
                    id: p.id,
                    name: p.name,
                    role: p.role.to_string(),
                })
                .collect(),
        })
        .collect();
    let page = HomePage {
        shell: Shell::signed_in(stores, signed_in, "Organizations and projects", None).await?,
        organizations,
        error,
    };
    html_with_status(status, &page)
}

async fn start_page(
    stores: web::Data<Stores>,
    signed_in: SignedIn,
) -> Result<HttpResponse, UiError> {
    render(&stores, &signed_in, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub struct NameForm {
    name: String,
}

async fn create_organization(
    stores: web::Data<Stores>,
    signed_in: SignedIn,
    form: web::Form<NameForm>,
) -> Result<HttpResponse, UiError> {
    let name = match valid_name(&form.name, "organization") {
        Ok(name) => name,
        Err(message) => {
            return render(&stores, &signed_in, StatusCode::BAD_REQUEST, Some(message)).await
        }
    };
    memberships::create_organization(&stores.postgres, name, &signed_in.user.id).await?;
    Ok(see_other("/"))
}

async fn create_project(
    stores: web::Data<Stores>,
    member: OrgMember,
    form: web::Form<NameForm>,
) -> Result<HttpResponse, UiError> {
    if !member.role.can_manage() {
        return Err(UiError::Forbidden(
            "Only an owner or admin of the organization can create projects.".to_string(),
        ));
    }
    let name = match valid_name(&form.name, "project") {
        Ok(name) => name,
        Err(message) => {
            return render(
                &stores,
                &member.signed_in,
                StatusCode::BAD_REQUEST,
                Some(message),
            )
            .await
        }
    };
    let project_id = memberships::create_project(&stores.postgres, &member.org_id, name).await?;
    Ok(see_other(&format!(
        "/project/{}",
        super::path_segment(&project_id)
    )))
}
