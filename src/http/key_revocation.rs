//! Revocation of API keys across `serve` processes: the process that deletes a key publishes its
//! public key on a Redis channel, and every process, subscribed, drops the key from its
//! [`ApiKeyVerifier`] cache at once, so a deleted key is refused everywhere without waiting for
//! `auth.key_cache_ttl_secs`. This is the prompt cache's invalidation pattern (`prompt_cache.rs`);
//! a message lost while a process is disconnected from Redis leaves the TTL as the bound, and on
//! reconnecting the process empties its whole key cache, so the bound is the reconnection.

use std::sync::Arc;
use std::time::Duration;

use fred::prelude::*;
use tokio_util::sync::CancellationToken;

use crate::http::auth::ApiKeyVerifier;
use crate::storage::redis::{Keyspace, RedisStore};

/// The channel revoked public keys are published on.
pub fn channel(keyspace: &Keyspace) -> String {
    keyspace.key("api-key-revocations", "all", None)
}

/// Tells the other processes that `public_key` is revoked. Waits at most two seconds; a failure
/// is logged (the other processes then stop accepting the key within the cache TTL).
pub async fn publish(redis: &RedisStore, public_key: &str) {
    let publish = redis
        .client
        .publish::<i64, _, _>(channel(&redis.keyspace), public_key.to_string());
    match tokio::time::timeout(Duration::from_secs(2), publish).await {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "cannot publish an API key revocation"),
        Err(_) => tracing::warn!("publishing an API key revocation timed out"),
    }
}

/// Listens for revocations until `shutdown`, forgetting each revoked key in `verifier`; when
/// messages may have been lost, any key may have been revoked: the whole cache is forgotten.
pub async fn subscribe(
    verifier: Arc<ApiKeyVerifier>,
    redis: RedisStore,
    shutdown: CancellationToken,
) {
    redis
        .listen(
            &channel(&redis.keyspace),
            "API key revocation",
            shutdown,
            |public_key| verifier.forget(public_key),
            || verifier.forget_all(),
        )
        .await;
}
