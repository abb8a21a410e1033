//! `/auth/sign-in`, `/auth/sign-up` and `/auth/sign-out`: e-mail and password accounts with
//! server-side sessions.
//!
//! Failed sign-ins are counted per account and per client address (`storage::signin_throttle`);
//! past `auth.signin_max_failures` within the window the form answers 429 without checking the
//! password. An unknown address costs the same argon2 work as a wrong password, and both get the
//! same message, so the form does not tell which addresses have accounts.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::domain::account;
use crate::http::auth::SignedIn;
use crate::storage::postgres::{sessions, users};
use crate::storage::{signin_throttle, Stores};

use super::error::{html_with_status, see_other, UiError};
use super::shell::Shell;
use super::{cookies, csrf, safe_next, UiConfig};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/sign-in", web::get().to(sign_in_page))
        .route("/auth/sign-in", web::post().to(sign_in))
        .route("/auth/sign-up", web::get().to(sign_up_page))
        .route("/auth/sign-up", web::post().to(sign_up))
        .route("/auth/sign-out", web::post().to(sign_out));
}

#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignInPage {
    pub shell: Shell,
    pub csrf_token: String,
    pub email: String,
    pub next: String,
    pub error: Option<String>,
    pub signup_enabled: bool,
}

#[derive(Template)]
#[template(path = "sign_up.html")]
pub struct SignUpPage {
    pub shell: Shell,
    pub csrf_token: String,
    pub name: String,
    pub email: String,
    pub error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Where to go after signing in: the requested page when it is one of this site's, else home.
fn destination(next: Option<&str>) -> String {
    next.and_then(safe_next).unwrap_or("/").to_string()
}

/// Answers `page` with `status`, setting the CSRF nonce cookie when the browser had none.
fn form_response(
    status: StatusCode,
    page: &impl Template,
    nonce: Option<actix_web::cookie::Cookie<'static>>,
) -> Result<HttpResponse, UiError> {
    let mut response = html_with_status(status, page)?;
    if let Some(cookie) = nonce {
        response
            .add_cookie(&cookie)
            .map_err(|e| UiError::Internal(e.into()))?;
    }
    Ok(response)
}

async fn sign_in_page(
    req: HttpRequest,
    config: web::Data<UiConfig>,
    query: web::Query<NextQuery>,
    signed_in: Option<SignedIn>,
) -> Result<HttpResponse, UiError> {
    let next = destination(query.next.as_deref());
    if signed_in.is_some() {
        return Ok(see_other(&next));
    }
    let (csrf_token, nonce) = csrf::form_token(&req, &config)?;
    let page = SignInPage {
        shell: Shell::anonymous("Sign in"),
        csrf_token,
        email: String::new(),
        next,
        error: None,
        signup_enabled: !config.disable_signup,
    };
    form_response(StatusCode::OK, &page, nonce)
}

#[derive(Deserialize)]
pub struct SignInForm {
    email: String,
    password: String,
    next: Option<String>,
}

/// The address sign-in failures are counted against: the last `X-Forwarded-For` entry (the one
/// the nearest proxy, App Runner's or a load balancer's, appended) when there is one, else the
/// peer. A client can prepend entries, not replace the last.
fn client_address(req: &HttpRequest) -> String {
    req.headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .or_else(|| req.peer_addr().map(|a| a.ip().to_string()))
        .unwrap_or_else(|| "unknown".to_string())
}

async fn sign_in(
    req: HttpRequest,
    stores: web::Data<Stores>,
    config: web::Data<UiConfig>,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, UiError> {
    let form = form.into_inner();
    let next = destination(form.next.as_deref());
    let email =
        account::normalize_email(&form.email).unwrap_or_else(|_| form.email.trim().to_lowercase());
    let refuse = |status: StatusCode, message: &str| -> Result<HttpResponse, UiError> {
        let (csrf_token, nonce) = csrf::form_token(&req, &config)?;
        let page = SignInPage {
            shell: Shell::anonymous("Sign in"),
            csrf_token,
            email: form.email.trim().to_string(),
            next: next.clone(),
            error: Some(message.to_string()),
            signup_enabled: !config.disable_signup,
        };
        form_response(status, &page, nonce)
    };
    let attempt = signin_throttle::Attempt::new(&stores.redis, &email, &client_address(&req));
    if signin_throttle::is_throttled(&stores.redis, &attempt, config.signin_max_failures).await {
        let minutes = config.signin_failure_window_secs.div_ceil(60);
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too many failed sign-in attempts. Wait {minutes} minutes and try again."),
        );
    }
    let found = users::find_by_email(&stores.postgres, &email).await?;
    let stored = found
        .as_ref()
        .and_then(|f| f.password_hash.clone())
        .unwrap_or_else(|| account::decoy_password_hash().to_string());
    let password = form.password.clone();
    let matches =
        tokio::task::spawn_blocking(move || account::password_matches(&password, &stored))
            .await
            .map_err(|e| UiError::Internal(e.into()))?;
    let user = match found {
        Some(found) if matches && found.password_hash.is_some() => found.user,
        _ => {
            signin_throttle::record_failure(
                &stores.redis,
                &attempt,
                config.signin_failure_window_secs,
            )
            .await;
            return refuse(StatusCode::UNAUTHORIZED, "Invalid email or password.");
        }
    };
    signin_throttle::clear_account(&stores.redis, &attempt).await;
    start_session(&stores, &config, &user.id, &next).await
}

/// Records a new session for the user and answers with its cookie and a redirect to `next`.
async fn start_session(
    stores: &Stores,
    config: &UiConfig,
    user_id: &str,
    next: &str,
) -> Result<HttpResponse, UiError> {
    let token = account::new_token()?;
    let expires_at = chrono::Utc::now() + config.session_max_age;
    sessions::create(
        &stores.postgres,
        &account::token_hash(&token),
        user_id,
        expires_at,
    )
    .await?;
    let mut response = see_other(next);
    response
        .add_cookie(&cookies::session(config, token))
        .map_err(|e| UiError::Internal(e.into()))?;
    Ok(response)
}

async fn sign_up_page(
    req: HttpRequest,
    config: web::Data<UiConfig>,
    signed_in: Option<SignedIn>,
) -> Result<HttpResponse, UiError> {
    if config.disable_signup {
        return Err(UiError::NotFound);
    }
    if signed_in.is_some() {
        return Ok(see_other("/"));
    }
    let (csrf_token, nonce) = csrf::form_token(&req, &config)?;
    let page = SignUpPage {
        shell: Shell::anonymous("Sign up"),
        csrf_token,
        name: String::new(),
        email: String::new(),
        error: None,
    };
    form_response(StatusCode::OK, &page, nonce)
}

#[derive(Deserialize)]
pub struct SignUpForm {
    name: String,
    email: String,
    password: String,
}

async fn sign_up(
    req: HttpRequest,
    stores: web::Data<Stores>,
    config: web::Data<UiConfig>,
    form: web::Form<SignUpForm>,
) -> Result<HttpResponse, UiError> {
    if config.disable_signup {
        return Err(UiError::NotFound);
    }
    let form = form.into_inner();
    let refuse = |status: StatusCode, message: String| -> Result<HttpResponse, UiError> {
        let (csrf_token, nonce) = csrf::form_token(&req, &config)?;
        let page = SignUpPage {
            shell: Shell::anonymous("Sign up"),
            csrf_token,
            name: form.name.trim().to_string(),
            email: form.email.trim().to_string(),
            error: Some(message),
        };
        form_response(status, &page, nonce)
    };
    let email = match account::normalize_email(&form.email) {
        Ok(email) => email,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, message.to_string()),
    };
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Enter your name (at most 100 characters).".to_string(),
        );
    }
    if let Err(message) = account::check_new_password(&form.password) {
        return refuse(StatusCode::BAD_REQUEST, message);
    }
    let password = form.password.clone();
    let hash = tokio::task::spawn_blocking(move || account::hash_password(&password))
        .await
        .map_err(|e| UiError::Internal(e.into()))??;
    let Some(user) = users::create_user(&stores.postgres, &email, Some(name), &hash).await? else {
        return refuse(
            StatusCode::CONFLICT,
            "An account with this email already exists. Sign in instead.".to_string(),
        );
    };
    start_session(&stores, &config, &user.id, "/").await
}

/// Ends the browser's session (the row is deleted, so the cookie is worthless even if kept) and
/// drops the cookie. The CSRF guard has checked the form, so another site cannot sign people out.
async fn sign_out(
    req: HttpRequest,
    stores: web::Data<Stores>,
    config: web::Data<UiConfig>,
) -> Result<HttpResponse, UiError> {
    if let Some(token) = cookies::session_token(&req, &config) {
        sessions::delete(&stores.postgres, &account::token_hash(&token)).await?;
    }
    let mut response = see_other("/auth/sign-in");
    response
        .add_cookie(&cookies::clear_session(&config))
        .map_err(|e| UiError::Internal(e.into()))?;
    Ok(response)
}
