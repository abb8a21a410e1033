//! A project's home, `/project/{projectId}`: where it belongs, the person's role, how an
//! application sends it data, and its sections.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::http::auth::ProjectMember;
use crate::storage::Stores;

use super::error::{html, UiError};
use super::shell::{ProjectNav, Shell};
use super::UiConfig;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/project/{projectId}", web::get().to(project_home));
}

#[derive(Template)]
#[template(path = "project.html")]
pub struct ProjectPage {
    pub shell: Shell,
    pub project_id: String,
    pub project_name: String,
    pub org_name: String,
    pub role: String,
    pub can_manage: bool,
    /// The address SDKs send to (`LANGFUSE_HOST`, `LANGFUSE_BASE_URL`).
    pub host: String,
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

async fn project_home(
    req: HttpRequest,
    stores: web::Data<Stores>,
    config: web::Data<UiConfig>,
    member: ProjectMember,
) -> Result<HttpResponse, UiError> {
    let page = ProjectPage {
        shell: Shell::of_project(&stores, &member, member.project_name.clone(), "home").await?,
        project_id: member.project_id.as_str().to_string(),
        project_name: member.project_name.clone(),
        org_name: member.org_name.clone(),
        role: member.role.to_string(),
        can_manage: member.role.can_manage(),
        host: public_host(&req, &config),
    };
    html(&page)
}
