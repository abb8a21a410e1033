//! The chrome around every page (`templates/base.html`): the header with the project switcher and
//! the person's menu, and the project's navigation on the left.

use crate::http::auth::{ProjectMember, SignedIn};
use crate::storage::postgres::memberships;
use crate::storage::Stores;

use super::assets;
use super::error::UiError;
use super::project::nav;

/// What `base.html` shows around a page's content.
pub struct Shell {
    pub title: String,
    pub css_url: &'static str,
    pub js_url: &'static str,
    pub user: Option<ShellUser>,
    /// The token of the sign-out form (empty when signed out).
    pub csrf_token: String,
    pub switcher: Vec<SwitcherOrg>,
    pub project: Option<ProjectNav>,
}

pub struct ShellUser {
    pub name: String,
    pub email: String,
    /// The first letter of the name, upper-cased, for the avatar.
    pub initial: String,
}

pub struct SwitcherOrg {
    pub name: String,
    pub projects: Vec<SwitcherProject>,
}

pub struct SwitcherProject {
    pub id: String,
    pub name: String,
    pub current: bool,
}

/// The project a page belongs to, and which of its sections it is (`"home"`, `"settings"`).
pub struct ProjectNav {
    pub id: String,
    pub name: String,
    pub org_name: String,
    pub section: &'static str,
}

impl Shell {
    /// The chrome of a page shown to someone not signed in (sign-in, errors): no menus.
    pub fn anonymous(title: impl Into<String>) -> Shell {
        Shell {
            title: title.into(),
            css_url: assets::css_url(),
            js_url: assets::js_url(),
            user: None,
            csrf_token: String::new(),
            switcher: Vec::new(),
            project: None,
        }
    }

    /// The chrome of a page of `member`'s project, its navigation showing `section`.
    pub async fn of_project(
        stores: &Stores,
        member: &ProjectMember,
        title: impl Into<String>,
        section: &'static str,
    ) -> Result<Shell, UiError> {
        Shell::signed_in(stores, &member.signed_in, title, Some(nav(member, section))).await
    }

    /// The chrome of a signed-in person's page, with their organizations and projects in the
    /// switcher and, on a project's pages, its navigation.
    pub async fn signed_in(
        stores: &Stores,
        signed_in: &SignedIn,
        title: impl Into<String>,
        project: Option<ProjectNav>,
    ) -> Result<Shell, UiError> {
        let organizations =
            memberships::organizations_of(&stores.postgres, &signed_in.user.id).await?;
        let current = project.as_ref().map(|p| p.id.clone());
        let switcher = organizations
            .into_iter()
            .map(|org| SwitcherOrg {
                name: org.name,
                projects: org
                    .projects
                    .into_iter()
                    .map(|p| SwitcherProject {
                        current: current.as_deref() == Some(p.id.as_str()),
                        id: p.id,
                        name: p.name,
                    })
                    .collect(),
            })
            .collect();
        Ok(Shell {
            title: title.into(),
            css_url: assets::css_url(),
            js_url: assets::js_url(),
            user: Some(ShellUser {
                name: signed_in.user.display_name().to_string(),
                email: signed_in.user.email.clone(),
                initial: signed_in
                    .user
                    .display_name()
                    .chars()
                    .next()
                    .map(|c| c.to_uppercase().collect())
                    .unwrap_or_default(),
            }),
            csrf_token: signed_in.csrf_token.clone(),
            switcher,
            project,
        })
    }
}

/// A time as pages show it: `<time datetime=ISO>` with the UTC text, which `app.js` rewrites to
/// the browser's zone (and puts the UTC text in the title).
pub struct ShownTime {
    pub iso: String,
    pub utc: String,
}

impl ShownTime {
    pub fn new(at: chrono::DateTime<chrono::Utc>) -> ShownTime {
        ShownTime {
            iso: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            utc: at.format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }

    /// To the millisecond, where durations matter (an observation's start and end): the ISO
    /// form keeps the milliseconds, and a `<time data-ms>` makes `app.js` show them.
    pub fn precise(at: chrono::DateTime<chrono::Utc>) -> ShownTime {
        ShownTime {
            iso: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            utc: at.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
        }
    }
}
