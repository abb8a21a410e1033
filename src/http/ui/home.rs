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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::ui::shell::{ProjectNav, ShellUser, SwitcherOrg, SwitcherProject};

    const PAYLOAD: &str = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>";

    fn shell() -> Shell {
        let mut shell = Shell::anonymous(PAYLOAD);
        shell.user = Some(ShellUser {
            name: PAYLOAD.to_string(),
            email: "a@example.com".to_string(),
            initial: "<".to_string(),
        });
        shell.csrf_token = "token".to_string();
        shell.switcher = vec![SwitcherOrg {
            name: PAYLOAD.to_string(),
            projects: vec![SwitcherProject {
                id: "p\"1".to_string(),
                name: PAYLOAD.to_string(),
                current: true,
            }],
        }];
        shell
    }

    fn assert_inert(html: &str) {
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{html}"
        );
        // The only script is the page's own, from this server.
        assert_eq!(html.matches("<script").count(), 1);
    }

    #[test]
    fn organization_and_project_names_are_escaped_on_the_start_page() {
        let page = HomePage {
            shell: shell(),
            organizations: vec![OrgView {
                id: "o\"1".to_string(),
                name: PAYLOAD.to_string(),
                role: "OWNER".to_string(),
                can_create_project: true,
                projects: vec![ProjectView {
                    id: "p/../1?x#y".to_string(),
                    name: PAYLOAD.to_string(),
                    role: "OWNER".to_string(),
                }],
            }],
            error: Some(PAYLOAD.to_string()),
        };
        let html = page.render().unwrap();
        assert_inert(&html);
        // Ids in URLs are percent-encoded path segments, never raw.
        assert!(
            html.contains("href=\"/project/p%2F..%2F1%3Fx%23y\""),
            "{html}"
        );
        assert!(
            html.contains("action=\"/organization/o%221/projects\""),
            "{html}"
        );
    }

    #[test]
    fn a_project_name_is_escaped_in_the_navigation_and_the_project_page() {
        let mut shell = shell();
        shell.project = Some(ProjectNav {
            id: "p1".to_string(),
            name: PAYLOAD.to_string(),
            org_name: PAYLOAD.to_string(),
            section: "home",
        });
        let page = crate::http::ui::project::ProjectPage {
            shell,
            project_id: "p1".to_string(),
            project_name: PAYLOAD.to_string(),
            org_name: PAYLOAD.to_string(),
            role: "VIEWER".to_string(),
            can_manage: false,
            host: "http://h".to_string(),
            dashboards_css_url: "/static/x/dashboards.css",
            range_action: "/project/p1".to_string(),
            range: crate::http::ui::project::RangeQuery::default()
                .resolve("/project/p1")
                .1,
            totals: Vec::new(),
            panels: Vec::new(),
            no_data: true,
        };
        let html = page.render().unwrap();
        assert_inert(&html);
        assert!(html.contains("aria-current=\"page\">Home</a>"));
    }
}
