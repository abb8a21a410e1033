//! Failed sign-ins, counted in Redis so that every `serve` process sees the same counts: one
//! counter per account and one per client address, each a key that expires a window after its
//! first failure (`signin-failures:{account:<sha256 of the address, 16 hex>}` and
//! `signin-failures:{client:<address>}`). Each command touches one key, so this works on a cluster.
//!
//! While Redis is away, sign-in is not throttled rather than refused: the password check still
//! runs, and refusing every sign-in would turn a cache outage into a lock-out.

use fred::prelude::*;
use sha2::{Digest, Sha256};

use super::redis::RedisStore;

/// The keys of one sign-in attempt.
pub struct Attempt {
    account: String,
    client: String,
}

impl Attempt {
    pub fn new(redis: &RedisStore, email: &str, client_address: &str) -> Attempt {
        let account = hex::encode(&Sha256::digest(email.as_bytes())[..8]);
        Attempt {
            account: redis
                .keyspace
                .key("signin-failures", &format!("account:{account}"), None),
            client: redis.keyspace.key(
                "signin-failures",
                &format!("client:{client_address}"),
                None,
            ),
        }
    }
}

/// Whether either counter of `attempt` has reached `max_failures`.
pub async fn is_throttled(redis: &RedisStore, attempt: &Attempt, max_failures: u32) -> bool {
    let mut throttled = false;
    for key in [&attempt.account, &attempt.client] {
        match redis.client.get::<Option<u64>, _>(key.as_str()).await {
            Ok(count) => throttled |= count.unwrap_or(0) >= u64::from(max_failures),
            Err(err) => {
                tracing::warn!(error = %err, "sign-in throttle unavailable: not throttling");
                return false;
            }
        }
    }
    throttled
}

/// Counts a failed sign-in against the account and the address; a counter's window starts at
/// its first failure.
pub async fn record_failure(redis: &RedisStore, attempt: &Attempt, window_secs: u64) {
    for key in [&attempt.account, &attempt.client] {
        let counted = async {
            let count: i64 = redis.client.incr(key.as_str()).await?;
            if count == 1 {
                let _: () = redis
                    .client
                    .expire(key.as_str(), window_secs as i64, None)
                    .await?;
            }
            Ok::<_, fred::error::Error>(())
        };
        if let Err(err) = counted.await {
            tracing::warn!(error = %err, "cannot count a failed sign-in");
        }
    }
}

/// Forgets the account's failures after a successful sign-in (the address keeps its count: one
/// good password does not buy another run at other accounts).
pub async fn clear_account(redis: &RedisStore, attempt: &Attempt) {
    if let Err(err) = redis.client.del::<i64, _>(attempt.account.as_str()).await {
        tracing::warn!(error = %err, "cannot reset the sign-in failures of an account");
    }
}
