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

/// Listens for revocations until `shutdown`, forgetting each revoked key in `verifier`.
pub async fn subscribe(
    verifier: Arc<ApiKeyVerifier>,
    redis: RedisStore,
    shutdown: CancellationToken,
) {
    let client = &redis.client;
    let subscriber = Builder::from_config(client.client_config())
        .with_connection_config(|c| *c = client.connection_config().clone())
        .with_performance_config(|p| *p = client.perf_config())
        .set_policy(
            client
                .client_reconnect_policy()
                .unwrap_or_else(|| ReconnectPolicy::new_exponential(0, 100, 5_000, 2)),
        )
        .build_subscriber_client();
    let subscriber = match subscriber {
        Ok(s) => s,
        Err(err) => {
            tracing::error!(error = %err, "cannot build the API key revocation subscriber");
            return;
        }
    };
    let mut messages = subscriber.message_rx();
    let mut reconnects = subscriber.reconnect_rx();
    loop {
        match subscriber.init().await {
            Ok(_connection) => break,
            Err(err) => {
                tracing::warn!(error = %err, "cannot connect the API key revocation subscriber; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    let _resubscriber = subscriber.manage_subscriptions();
    let channel = channel(&redis.keyspace);
    loop {
        if let Err(err) = subscriber.subscribe(channel.as_str()).await {
            tracing::warn!(error = %err, "cannot subscribe to API key revocations; retrying");
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
            }
        }
        break;
    }
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            message = messages.recv() => match message {
                Ok(message) => {
                    if let Some(public_key) = message.value.as_str() {
                        verifier.forget(&public_key);
                    }
                }
                // Messages were dropped: any key may have been revoked.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => verifier.forget_all(),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            // Messages published while disconnected are lost.
            Ok(_) = reconnects.recv() => verifier.forget_all(),
        }
    }
    let _ = subscriber.quit().await;
}
