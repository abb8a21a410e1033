//! Start-up provisioning from `LANGFUSE_INIT_*`: an organization, a project and an API key,
//! created if absent, and the first user as an owner of that organization. Idempotent and safe
//! when many replicas start at once (see [`crate::storage::postgres::bootstrap`] and
//! [`crate::storage::postgres::bootstrap_user`]).

use secrecy::ExposeSecret;

use crate::config::Settings;
use crate::domain::{account, api_key};
use crate::storage::postgres::{
    self, BootstrapOutcome, BootstrapRecords, BootstrapUser, BootstrapUserOutcome,
};

/// Provisions the configured records; does nothing when the `init` keys are unset.
pub async fn run(
    pool: &deadpool_postgres::Pool,
    settings: &Settings,
) -> anyhow::Result<Option<BootstrapOutcome>> {
    let init = &settings.init;
    if init.org_id.is_empty() {
        return Ok(None);
    }
    let secret = init.secret_key.expose_secret();
    let hash = api_key::hash_secret(settings.auth.salt.expose_secret(), secret);
    let display = api_key::display_secret(secret);
    let org_name = non_empty_or(&init.org_name, &init.org_id);
    let project_name = non_empty_or(&init.project_name, &init.project_id);
    let outcome = postgres::bootstrap(
        pool,
        &BootstrapRecords {
            org_id: &init.org_id,
            org_name,
            project_id: &init.project_id,
            project_name,
            public_key: &init.public_key,
            fast_hashed_secret_key: &hash,
            display_secret_key: &display,
        },
    )
    .await?;
    tracing::info!(
        org_id = %init.org_id,
        project_id = %init.project_id,
        public_key = %init.public_key,
        created_org = outcome.created_org,
        created_project = outcome.created_project,
        created_api_key = outcome.created_api_key,
        "bootstrap records ensured"
    );
    if let Some(user) = provision_user(pool, settings).await? {
        tracing::info!(
            email = %init.user_email,
            org_id = %init.org_id,
            created_user = user.created_user,
            created_membership = user.created_membership,
            "bootstrap user ensured"
        );
    }
    Ok(Some(outcome))
}

/// The first user (`LANGFUSE_INIT_USER_*`), when configured; the settings were validated to name
/// an organization, an address and a password. The password is hashed on every start (each
/// replica's own salt); an existing account keeps the hash it has.
pub async fn provision_user(
    pool: &deadpool_postgres::Pool,
    settings: &Settings,
) -> anyhow::Result<Option<BootstrapUserOutcome>> {
    let init = &settings.init;
    if init.user_email.is_empty() || init.org_id.is_empty() {
        return Ok(None);
    }
    let email = account::normalize_email(&init.user_email).map_err(anyhow::Error::msg)?;
    let password = init.user_password.expose_secret().to_string();
    let hash = tokio::task::spawn_blocking(move || account::hash_password(&password)).await??;
    let name = Some(init.user_name.trim()).filter(|n| !n.is_empty());
    let outcome = postgres::bootstrap_user(
        pool,
        &BootstrapUser {
            org_id: &init.org_id,
            email: &email,
            name,
            password_hash: &hash,
        },
    )
    .await?;
    Ok(Some(outcome))
}

fn non_empty_or<'a>(value: &'a str, fallback: &'a str) -> &'a str {
    if value.is_empty() {
        fallback
    } else {
        value
    }
}
