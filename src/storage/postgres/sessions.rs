//! Signed-in browsers: `user_sessions`, keyed by the SHA-256 of the cookie's token
//! (`domain::account::token_hash`); the token itself is never stored.

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

use super::users::{User, USER_COLUMNS};

/// A live session and its user.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub token_hash: String,
    pub user: User,
    pub expires_at: DateTime<Utc>,
}

/// How stale `last_seen_at` may get before a request refreshes it: one write per session every
/// few minutes, not one per page.
const LAST_SEEN_GRANULARITY_SECS: i64 = 300;

/// Records a new session; the user's expired ones are removed on the way.
pub async fn create(
    pool: &Pool,
    token_hash: &str,
    user_id: &str,
    expires_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let client = pool.get().await?;
    client
        .execute(
            "DELETE FROM user_sessions WHERE user_id = $1 AND expires_at <= now()",
            &[&user_id],
        )
        .await?;
    client
        .execute(
            "INSERT INTO user_sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
            &[&token_hash, &user_id, &expires_at],
        )
        .await?;
    Ok(())
}

/// The session of a token hash, if it exists and has not expired.
pub async fn find(pool: &Pool, token_hash: &str) -> anyhow::Result<Option<SessionRecord>> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            &format!(
                "SELECT {USER_COLUMNS}, s.expires_at,
                        s.last_seen_at < now() - make_interval(secs => $2)
                   FROM user_sessions s JOIN users u ON u.id = s.user_id
                  WHERE s.token_hash = $1 AND s.expires_at > now()"
            ),
            &[&token_hash, &(LAST_SEEN_GRANULARITY_SECS as f64)],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    if row.get::<_, bool>(5) {
        client
            .execute(
                "UPDATE user_sessions SET last_seen_at = now() WHERE token_hash = $1",
                &[&token_hash],
            )
            .await?;
    }
    Ok(Some(SessionRecord {
        token_hash: token_hash.to_string(),
        user: User::from_row(&row, 0),
        expires_at: row.get(4),
    }))
}

/// Ends a session (sign-out). Ending one that does not exist is not an error.
pub async fn delete(pool: &Pool, token_hash: &str) -> anyhow::Result<()> {
    let client = pool.get().await?;
    client
        .execute(
            "DELETE FROM user_sessions WHERE token_hash = $1",
            &[&token_hash],
        )
        .await?;
    Ok(())
}

/// How many live sessions a user has (for tests and the account page).
pub async fn count_for_user(pool: &Pool, user_id: &str) -> anyhow::Result<i64> {
    let client = pool.get().await?;
    Ok(client
        .query_one(
            "SELECT count(*) FROM user_sessions WHERE user_id = $1 AND expires_at > now()",
            &[&user_id],
        )
        .await?
        .get(0))
}
