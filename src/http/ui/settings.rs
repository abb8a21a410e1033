//! A project's settings, `/project/{projectId}/settings`: its name, its API keys and the members
//! of its organization. Everyone who reads the project sees them; only owners and admins get the
//! forms, and the handlers refuse (403, nothing written) what the page would not have offered:
//! the project's role decides on the name and keys, the organization's on its members.
//!
//! A new key's secret is shown once, in the answer to the form that created it (never stored in
//! clear, never in a URL); keys are the rows the public API authenticates against.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::domain::account::{MembershipRefusal, Role};
use crate::domain::api_key;
use crate::http::auth::{ApiKeyVerifier, ProjectMember};
use crate::storage::postgres::{api_keys, memberships};
use crate::storage::prompts::{self, PromptError};
use crate::storage::Stores;

use super::error::{html_with_status, see_other, UiError};
use super::home::valid_name;
use super::project::public_host;
use super::shell::{Shell, ShownTime};
use super::UiConfig;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/project/{projectId}/settings",
        web::get().to(settings_page),
    )
    .route(
        "/project/{projectId}/settings/name",
        web::post().to(rename_project),
    )
    .route(
        "/project/{projectId}/settings/api-keys",
        web::post().to(create_api_key),
    )
    .route(
        "/project/{projectId}/settings/api-keys/{keyId}/delete",
        web::post().to(delete_api_key),
    )
    .route(
        "/project/{projectId}/settings/members",
        web::post().to(add_member),
    )
    .route(
        "/project/{projectId}/settings/protected-labels",
        web::post().to(protect_label),
    )
    .route(
        "/project/{projectId}/settings/protected-labels/remove",
        web::post().to(unprotect_label),
    )
    .route(
        "/project/{projectId}/settings/members/{userId}/role",
        web::post().to(change_role),
    )
    .route(
        "/project/{projectId}/settings/members/{userId}/remove",
        web::post().to(remove_member),
    );
}

pub struct KeyView {
    pub id: String,
    pub public_key: String,
    pub display_secret_key: String,
    pub note: String,
    pub created: ShownTime,
    pub last_used: Option<ShownTime>,
}

/// A key just created: the only time its secret is shown.
pub struct NewKeyView {
    pub public_key: String,
    pub secret_key: String,
    pub host: String,
}

pub struct RoleOption {
    pub value: &'static str,
    pub selected: bool,
}

pub struct MemberView {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub is_self: bool,
    /// The signed-in person may change or remove this member.
    pub editable: bool,
    pub role_options: Vec<RoleOption>,
}

#[derive(Template)]
#[template(path = "settings.html")]
pub struct SettingsPage {
    pub shell: Shell,
    pub project_id: String,
    pub project_name: String,
    pub org_name: String,
    pub role: String,
    pub can_manage: bool,
    pub can_manage_members: bool,
    pub keys: Vec<KeyView>,
    pub new_key: Option<NewKeyView>,
    pub members: Vec<MemberView>,
    /// The roles the signed-in person may give, highest first.
    pub assignable_roles: Vec<&'static str>,
    pub notice: Option<&'static str>,
    pub error: Option<String>,
    /// The project's protected prompt labels (only owners and admins set or move them).
    pub protected_labels: Vec<String>,
}

/// What the settings page says after a form that worked (`?done=`): fixed texts, so a link
/// cannot make the page say anything else.
fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "renamed" => "The project was renamed.",
        "key-deleted" => "The API key was deleted. Applications using it can no longer send data.",
        "member-added" => "The member was added.",
        "role-changed" => "The role was changed.",
        "member-removed" => "The member was removed from the organization.",
        "label-protected" => "The label is protected: only owners and admins may set or move it.",
        "label-unprotected" => "The label is no longer protected.",
        _ => return None,
    })
}

/// The outcome of a form, shown on the page.
#[derive(Default)]
struct Outcome {
    new_key: Option<NewKeyView>,
    notice: Option<&'static str>,
    error: Option<String>,
}

async fn render(
    stores: &Stores,
    member: &ProjectMember,
    status: StatusCode,
    outcome: Outcome,
) -> Result<HttpResponse, UiError> {
    let keys = api_keys::list(&stores.postgres, &member.project_id)
        .await?
        .into_iter()
        .map(|k| KeyView {
            id: k.id,
            public_key: k.public_key,
            display_secret_key: k.display_secret_key,
            note: k.note.unwrap_or_default(),
            created: ShownTime::new(k.created_at),
            last_used: k.last_used_at.map(ShownTime::new),
        })
        .collect();
    let actor = member.org_role;
    let me = &member.signed_in.user.id;
    let members = memberships::members(&stores.postgres, &member.org_id)
        .await?
        .into_iter()
        .map(|m| MemberView {
            is_self: &m.user_id == me,
            editable: actor.may_assign(m.role),
            role_options: Role::ASSIGNABLE
                .iter()
                .filter(|r| actor.may_assign(**r))
                .map(|r| RoleOption {
                    value: r.as_str(),
                    selected: *r == m.role,
                })
                .collect(),
            role: m.role.to_string(),
            name: m.name.unwrap_or_default(),
            email: m.email,
            user_id: m.user_id,
        })
        .collect();
    let page = SettingsPage {
        shell: Shell::of_project(
            stores,
            member,
            format!("Settings · {}", member.project_name),
            "settings",
        )
        .await?,
        project_id: member.project_id.as_str().to_string(),
        project_name: member.project_name.clone(),
        org_name: member.org_name.clone(),
        role: member.role.to_string(),
        can_manage: member.role.can_manage(),
        can_manage_members: actor.can_manage(),
        keys,
        new_key: outcome.new_key,
        members,
        assignable_roles: Role::ASSIGNABLE
            .iter()
            .filter(|r| actor.may_assign(**r))
            .map(|r| r.as_str())
            .collect(),
        notice: outcome.notice,
        error: outcome.error,
        protected_labels: prompts::protected_labels(&stores.postgres, &member.project_id)
            .await
            .map_err(UiError::from)?,
    };
    html_with_status(status, &page)
}

fn settings_url(member: &ProjectMember, done: &str) -> String {
    format!(
        "/project/{}/settings?done={done}",
        super::path_segment(member.project_id.as_str())
    )
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

async fn settings_page(
    stores: web::Data<Stores>,
    member: ProjectMember,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, UiError> {
    let outcome = Outcome {
        notice: notice(query.done.as_deref()),
        ..Outcome::default()
    };
    render(&stores, &member, StatusCode::OK, outcome).await
}

#[derive(Deserialize)]
pub struct NameForm {
    name: String,
}

async fn rename_project(
    stores: web::Data<Stores>,
    member: ProjectMember,
    form: web::Form<NameForm>,
) -> Result<HttpResponse, UiError> {
    member.require_manager()?;
    match valid_name(&form.name, "project") {
        Ok(name) => {
            memberships::rename_project(&stores.postgres, &member.project_id, name).await?;
            Ok(see_other(&settings_url(&member, "renamed")))
        }
        Err(message) => {
            let outcome = Outcome {
                error: Some(message),
                ..Outcome::default()
            };
            render(&stores, &member, StatusCode::BAD_REQUEST, outcome).await
        }
    }
}

#[derive(Deserialize)]
pub struct NewKeyForm {
    note: Option<String>,
}

async fn create_api_key(
    req: HttpRequest,
    stores: web::Data<Stores>,
    config: web::Data<UiConfig>,
    member: ProjectMember,
    form: web::Form<NewKeyForm>,
) -> Result<HttpResponse, UiError> {
    member.require_manager()?;
    let note = form
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > 200) {
        let outcome = Outcome {
            error: Some("The note must have at most 200 characters.".to_string()),
            ..Outcome::default()
        };
        return render(&stores, &member, StatusCode::BAD_REQUEST, outcome).await;
    }
    let (public_key, secret_key) = api_key::new_key_pair();
    let hash = api_key::hash_secret(config.salt.expose_secret(), &secret_key);
    api_keys::create(
        &stores.postgres,
        &member.project_id,
        &api_keys::NewApiKey {
            public_key: &public_key,
            fast_hashed_secret_key: &hash,
            display_secret_key: &api_key::display_secret(&secret_key),
            note,
        },
    )
    .await?;
    let outcome = Outcome {
        new_key: Some(NewKeyView {
            public_key,
            secret_key,
            host: public_host(&req, &config),
        }),
        ..Outcome::default()
    };
    render(&stores, &member, StatusCode::OK, outcome).await
}

async fn delete_api_key(
    stores: web::Data<Stores>,
    verifier: web::Data<ApiKeyVerifier>,
    member: ProjectMember,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, UiError> {
    member.require_manager()?;
    let (_, key_id) = path.into_inner();
    match api_keys::delete(&stores.postgres, &member.project_id, &key_id).await? {
        Some(public_key) => {
            verifier.forget(&public_key);
            crate::http::key_revocation::publish(&stores.redis, &public_key).await;
            Ok(see_other(&settings_url(&member, "key-deleted")))
        }
        None => Err(UiError::NotFound),
    }
}

/// Refuses (403) unless the person manages the organization's members.
fn require_member_manager(member: &ProjectMember) -> Result<(), UiError> {
    if member.org_role.can_manage() {
        Ok(())
    } else {
        Err(UiError::Forbidden(
            "Only an owner or admin of the organization can manage its members.".to_string(),
        ))
    }
}

/// The page again, with why a membership change was refused.
async fn refused(
    stores: &Stores,
    member: &ProjectMember,
    error: memberships::MembershipError,
) -> Result<HttpResponse, UiError> {
    use memberships::MembershipError::*;
    let (status, message) = match error {
        NoSuchUser => (
            StatusCode::BAD_REQUEST,
            "No account has this email address. The person has to sign up first.",
        ),
        AlreadyMember => (
            StatusCode::CONFLICT,
            "This person is already a member of the organization.",
        ),
        NotAMember => return Err(UiError::NotFound),
        Refused(MembershipRefusal::LastOwner) => (
            StatusCode::CONFLICT,
            "An organization needs an owner: make someone else an owner first.",
        ),
        Refused(MembershipRefusal::NotPermitted) => (
            StatusCode::FORBIDDEN,
            "You cannot give or change a role above your own.",
        ),
    };
    let outcome = Outcome {
        error: Some(message.to_string()),
        ..Outcome::default()
    };
    render(stores, member, status, outcome).await
}

#[derive(Deserialize)]
pub struct LabelForm {
    label: String,
}

/// Adds a protected prompt label (owners and admins only).
async fn protect_label(
    stores: web::Data<Stores>,
    member: ProjectMember,
    form: web::Form<LabelForm>,
) -> Result<HttpResponse, UiError> {
    member.require_manager()?;
    match prompts::protect_label(&stores.postgres, &member.project_id, form.label.trim()).await {
        Ok(()) => Ok(see_other(&settings_url(&member, "label-protected"))),
        Err(PromptError::Invalid(message)) => {
            let outcome = Outcome {
                error: Some(message),
                ..Outcome::default()
            };
            render(&stores, &member, StatusCode::BAD_REQUEST, outcome).await
        }
        Err(other) => Err(other.into()),
    }
}

async fn unprotect_label(
    stores: web::Data<Stores>,
    member: ProjectMember,
    form: web::Form<LabelForm>,
) -> Result<HttpResponse, UiError> {
    member.require_manager()?;
    prompts::unprotect_label(&stores.postgres, &member.project_id, form.label.trim()).await?;
    Ok(see_other(&settings_url(&member, "label-unprotected")))
}

#[derive(Deserialize)]
pub struct AddMemberForm {
    email: String,
    role: String,
}

fn parse_role(text: &str) -> Result<Role, UiError> {
    Role::parse(text)
        .filter(|r| Role::ASSIGNABLE.contains(r))
        .ok_or_else(|| UiError::BadRequest("Choose a role.".to_string()))
}

async fn add_member(
    stores: web::Data<Stores>,
    member: ProjectMember,
    form: web::Form<AddMemberForm>,
) -> Result<HttpResponse, UiError> {
    require_member_manager(&member)?;
    let role = parse_role(&form.role)?;
    let email = form.email.trim();
    match memberships::add_member(
        &stores.postgres,
        &member.org_id,
        member.org_role,
        email,
        role,
    )
    .await?
    {
        Ok(_) => Ok(see_other(&settings_url(&member, "member-added"))),
        Err(error) => refused(&stores, &member, error).await,
    }
}

#[derive(Deserialize)]
pub struct RoleForm {
    role: String,
}

async fn change_role(
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String)>,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, UiError> {
    require_member_manager(&member)?;
    let role = parse_role(&form.role)?;
    let (_, user_id) = path.into_inner();
    match memberships::change_member(
        &stores.postgres,
        &member.org_id,
        member.org_role,
        &user_id,
        Some(role),
    )
    .await?
    {
        Ok(()) => Ok(see_other(&settings_url(&member, "role-changed"))),
        Err(error) => refused(&stores, &member, error).await,
    }
}

async fn remove_member(
    stores: web::Data<Stores>,
    member: ProjectMember,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, UiError> {
    require_member_manager(&member)?;
    let (_, user_id) = path.into_inner();
    match memberships::change_member(
        &stores.postgres,
        &member.org_id,
        member.org_role,
        &user_id,
        None,
    )
    .await?
    {
        Ok(()) if user_id == member.signed_in.user.id => Ok(see_other("/")),
        Ok(()) => Ok(see_other(&settings_url(&member, "member-removed"))),
        Err(error) => refused(&stores, &member, error).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewer_gets_the_settings_without_forms_and_names_are_escaped() {
        let payload = "<script>alert(1)</script>";
        let page = SettingsPage {
            shell: Shell::anonymous("Settings"),
            project_id: "p1".to_string(),
            project_name: payload.to_string(),
            org_name: payload.to_string(),
            role: "VIEWER".to_string(),
            can_manage: false,
            can_manage_members: false,
            keys: vec![KeyView {
                id: "k1".to_string(),
                public_key: "pk-lf-1".to_string(),
                display_secret_key: "sk-lf-...abcd".to_string(),
                note: payload.to_string(),
                created: ShownTime::new(chrono::Utc::now()),
                last_used: None,
            }],
            new_key: None,
            members: vec![MemberView {
                user_id: "u1".to_string(),
                email: "a@example.com".to_string(),
                name: payload.to_string(),
                role: "OWNER".to_string(),
                is_self: false,
                editable: false,
                role_options: Vec::new(),
            }],
            assignable_roles: Vec::new(),
            notice: None,
            error: None,
            protected_labels: vec!["production".to_string()],
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
        assert!(
            !html.contains("<form"),
            "a viewer gets no form at all: {html}"
        );
        assert!(html.contains("Only owners and admins"));
    }

    #[test]
    fn notices_are_fixed_texts() {
        assert!(notice(Some("renamed")).is_some());
        assert_eq!(notice(Some("<b>you were hacked</b>")), None);
        assert_eq!(notice(None), None);
    }
}
