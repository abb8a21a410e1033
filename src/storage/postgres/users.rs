//! Accounts: `users`. E-mail addresses are stored as given and unique whatever their case (the
//! `lower(email)` index); callers pass them normalized (`domain::account::normalize_email`).

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

/// A person, as pages show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl User {
    /// What to call the person: their name, or their address when they gave none.
    pub fn display_name(&self) -> &str {
        self.name
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or(&self.email)
    }

    pub(super) fn from_row(row: &tokio_postgres::Row, at: usize) -> User {
        User {
            id: row.get(at),
            email: row.get(at + 1),
            name: row.get(at + 2),
            created_at: row.get(at + 3),
        }
    }
}

/// The columns [`User::from_row`] reads, in its order, of the table aliased `u`.
pub(super) const USER_COLUMNS: &str = "u.id, u.email, u.name, u.created_at";

/// A user with the stored hash of their password, to check a sign-in.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: Option<String>,
}

/// Creates a user; `None` when the address already has an account. Concurrent calls for one
/// address create one user: the unique index decides, and the others get `None`.
pub async fn create_user(
    pool: &Pool,
    email: &str,
    name: Option<&str>,
    password_hash: &str,
) -> anyhow::Result<Option<User>> {
    let client = pool.get().await?;
    let id = uuid::Uuid::new_v4().to_string();
    let row = client
        .query_opt(
            &format!(
                "INSERT INTO users AS u (id, email, name, password_hash) VALUES ($1, $2, $3, $4)
                 ON CONFLICT ((lower(email))) DO NOTHING
                 RETURNING {USER_COLUMNS}"
            ),
            &[&id, &email, &name, &password_hash],
        )
        .await?;
    Ok(row.map(|r| User::from_row(&r, 0)))
}

pub async fn find_by_email(pool: &Pool, email: &str) -> anyhow::Result<Option<UserCredentials>> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            &format!(
                "SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE lower(u.email) = lower($1)"
            ),
            &[&email],
        )
        .await?;
    Ok(row.map(|r| UserCredentials {
        user: User::from_row(&r, 0),
        password_hash: r.get(4),
    }))
}

pub async fn password_hash(pool: &Pool, user_id: &str) -> anyhow::Result<Option<String>> {
    let client = pool.get().await?;
    let row = client
        .query_opt("SELECT password_hash FROM users WHERE id = $1", &[&user_id])
        .await?;
    Ok(row.and_then(|r| r.get(0)))
}

/// Sets a user's password and, in the same transaction, ends every session of theirs but
/// `keep_session` (the browser that made the change): whoever knew the old password and signed in
/// with it is signed out. Returns how many sessions ended.
pub async fn change_password(
    pool: &Pool,
    user_id: &str,
    new_hash: &str,
    keep_session: &str,
) -> anyhow::Result<u64> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute(
        "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1",
        &[&user_id, &new_hash],
    )
    .await?;
    let ended = tx
        .execute(
            "DELETE FROM user_sessions WHERE user_id = $1 AND token_hash <> $2",
            &[&user_id, &keep_session],
        )
        .await?;
    tx.commit().await?;
    Ok(ended)
}
