//! The signed-in person's own settings, `/account`: who they are, and a new password
//! (`POST /account/password`), which ends every other session of theirs.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::domain::account;
use crate::http::auth::SignedIn;
use crate::storage::postgres::{sessions, users};
use crate::storage::Stores;

use super::error::{html_with_status, see_other, UiError};
use super::shell::{Shell, ShownTime};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/account", web::get().to(account_page))
        .route("/account/password", web::post().to(change_password));
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    pub shell: Shell,
    pub name: String,
    pub email: String,
    pub member_since: ShownTime,
    pub other_sessions: i64,
    pub notice: Option<&'static str>,
    pub error: Option<String>,
}

async fn render(
    stores: &Stores,
    signed_in: &SignedIn,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Result<HttpResponse, UiError> {
    let sessions = sessions::count_for_user(&stores.postgres, &signed_in.user.id).await?;
    let page = AccountPage {
        shell: Shell::signed_in(stores, signed_in, "Account settings", None).await?,
        name: signed_in.user.name.clone().unwrap_or_default(),
        email: signed_in.user.email.clone(),
        member_since: ShownTime::new(signed_in.user.created_at),
        other_sessions: (sessions - 1).max(0),
        notice,
        error,
    };
    html_with_status(status, &page)
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

async fn account_page(
    stores: web::Data<Stores>,
    signed_in: SignedIn,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, UiError> {
    let notice = (query.done.as_deref() == Some("password-changed"))
        .then_some("Your password was changed, and every other session of yours was signed out.");
    render(&stores, &signed_in, StatusCode::OK, notice, None).await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    confirm_password: String,
}

async fn change_password(
    stores: web::Data<Stores>,
    signed_in: SignedIn,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, UiError> {
    let form = form.into_inner();
    let refuse = |status, message: String| render(&stores, &signed_in, status, None, Some(message));
    if form.new_password != form.confirm_password {
        return refuse(
            StatusCode::BAD_REQUEST,
            "The new password and its confirmation differ.".to_string(),
        )
        .await;
    }
    if let Err(message) = account::check_new_password(&form.new_password) {
        return refuse(StatusCode::BAD_REQUEST, message).await;
    }
    let stored = users::password_hash(&stores.postgres, &signed_in.user.id)
        .await?
        .unwrap_or_else(|| account::decoy_password_hash().to_string());
    let (current, new) = (form.current_password, form.new_password);
    let hashed = tokio::task::spawn_blocking(move || {
        account::password_matches(&current, &stored).then(|| account::hash_password(&new))
    })
    .await
    .map_err(|e| UiError::Internal(e.into()))?;
    let Some(hash) = hashed.transpose()? else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "The current password is not right.".to_string(),
        )
        .await;
    };
    users::change_password(
        &stores.postgres,
        &signed_in.user.id,
        &hash,
        &signed_in.session_token_hash,
    )
    .await?;
    Ok(see_other("/account?done=password-changed"))
}
