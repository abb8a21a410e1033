//! The Redis/Valkey client: standalone or cluster, and the key scheme every role writes through.
//!
//! On a cluster (ElastiCache cluster mode, ElastiCache Serverless) a command or script may only
//! touch keys of one hash slot. [`Keyspace::key`] therefore puts the part that groups keys — the
//! *slot tag* — between braces: every key built with the same tag lands in the same slot, and keys
//! with different tags spread over the cluster.

use std::time::Duration;

use anyhow::Context;
use fred::prelude::*;
use fred::types::config::{ClusterDiscoveryPolicy, Server, ServerConfig, TlsConnector};
use secrecy::ExposeSecret;

use crate::config::RedisSettings;

/// The shared client and the key scheme. Cloning is cheap: fred's client is a handle.
#[derive(Clone)]
pub struct RedisStore {
    pub client: Client,
    pub keyspace: Keyspace,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("keyspace", &self.keyspace)
            .finish_non_exhaustive()
    }
}

/// Builds every Redis key, so that the prefix and the hash-slot rule are applied in one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyspace {
    prefix: String,
}

impl Keyspace {
    pub fn new(prefix: impl Into<String>) -> Self {
        Keyspace {
            prefix: prefix.into(),
        }
    }

    /// `<prefix><kind>:{<slot_tag>}` followed by `:<name>` when a name is given. Keys that one
    /// command or script touches together must share `slot_tag`.
    pub fn key(&self, kind: &str, slot_tag: &str, name: Option<&str>) -> String {
        match name {
            Some(name) => format!("{}{kind}:{{{slot_tag}}}:{name}", self.prefix),
            None => format!("{}{kind}:{{{slot_tag}}}", self.prefix),
        }
    }
}

/// The hash slot of a key as Redis Cluster computes it (CRC16/XMODEM of the hash tag, mod 16384).
/// Used by tests and assertions that keys which must go together do.
pub fn hash_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = bytes.iter().position(|&b| b == b'{').and_then(|open| {
        bytes[open + 1..]
            .iter()
            .position(|&b| b == b'}')
            .filter(|&len| len > 0)
            .map(|len| &bytes[open + 1..open + 1 + len])
    });
    crc16_xmodem(tagged.unwrap_or(bytes)) % 16384
}

fn crc16_xmodem(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= (byte as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Connects, standalone or cluster as configured. Reconnects forever after the first connection;
/// the first connection itself must succeed within the timeout so that misconfiguration is seen
/// at start-up.
pub async fn connect(settings: &RedisSettings) -> anyhow::Result<RedisStore> {
    let config = if settings.cluster {
        let hosts = settings
            .cluster_nodes()
            .into_iter()
            .map(|(host, port)| Server::new(host, port))
            .collect();
        let tls = if settings.tls {
            Some(TlsConnector::default_rustls()?.into())
        } else {
            None
        };
        let password =
            Some(settings.password.expose_secret().to_string()).filter(|p| !p.is_empty());
        Config {
            server: ServerConfig::Clustered {
                hosts,
                policy: ClusterDiscoveryPolicy::default(),
            },
            password,
            tls,
            ..Config::default()
        }
    } else {
        let mut config = Config::from_url(settings.url.expose_secret())
            .context("redis.url is not a valid Redis URL")?;
        if config.tls.is_none() && settings.url.expose_secret().starts_with("rediss") {
            config.tls = Some(TlsConnector::default_rustls()?.into());
        }
        config
    };
    let client = Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(5);
            c.internal_command_timeout = Duration::from_secs(5);
        })
        .with_performance_config(|p| {
            p.default_command_timeout = Duration::from_secs(10);
        })
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
        .build()
        .context("building the Redis client")?;
    tokio::time::timeout(Duration::from_secs(15), client.init())
        .await
        .context("timed out connecting to Redis")?
        .context("connecting to Redis")?;
    Ok(RedisStore {
        client,
        keyspace: Keyspace::new(settings.key_prefix.clone()),
    })
}

impl RedisStore {
    /// Listens on the pub/sub `channel` until `shutdown`, on a connection of its own (built like
    /// this store's, reconnecting by itself, the subscription renewed on each reconnection):
    /// `on_message` gets the text of each message, and `on_missed` is called when messages may
    /// have been lost (dropped for a slow reader, or published while disconnected), so that the
    /// listener can catch up another way. `what` names the listener in the logs.
    pub async fn listen(
        &self,
        channel: &str,
        what: &str,
        shutdown: tokio_util::sync::CancellationToken,
        mut on_message: impl FnMut(&str),
        mut on_missed: impl FnMut(),
    ) {
        let client = &self.client;
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
                tracing::error!(error = %err, "cannot build the {what} subscriber");
                return;
            }
        };
        let mut messages = subscriber.message_rx();
        let mut reconnects = subscriber.reconnect_rx();
        // After the first connection fred reconnects by itself, and `manage_subscriptions`
        // renews the subscription each time.
        loop {
            match subscriber.init().await {
                Ok(_connection) => break,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot connect the {what} subscriber; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
        let _resubscriber = subscriber.manage_subscriptions();
        loop {
            if let Err(err) = subscriber.subscribe(channel).await {
                tracing::warn!(error = %err, "cannot subscribe the {what} subscriber; retrying");
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
                        if let Some(text) = message.value.as_str() {
                            on_message(&text);
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => on_missed(),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                Ok(_) = reconnects.recv() => on_missed(),
            }
        }
        let _ = subscriber.quit().await;
    }

    pub async fn ping(&self) -> anyhow::Result<()> {
        let _: String = self.client.ping(None).await.context("PING failed")?;
        Ok(())
    }

    /// Stores a JSON value with a time to live.
    pub async fn set_json<T: serde::Serialize>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> anyhow::Result<()> {
        let text = serde_json::to_string(value)?;
        let _: () = self
            .client
            .set(
                key,
                text,
                Some(Expiration::PX(ttl.as_millis() as i64)),
                None,
                false,
            )
            .await?;
        Ok(())
    }

    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> anyhow::Result<Option<T>> {
        let text: Option<String> = self.client.get(key).await?;
        match text {
            // A value written by another version that no longer parses is treated as absent.
            Some(text) => Ok(serde_json::from_str(&text).ok()),
            None => Ok(None),
        }
    }

    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        let _: i64 = self.client.del(key).await?;
        Ok(())
    }

    /// Takes the lock `key` (waiting up to `wait` for it), runs `work`, and releases it. The lock
    /// expires after `ttl` should this process die holding it; `work` must finish well within it.
    pub async fn with_lock<T, F, Fut>(
        &self,
        key: &str,
        ttl: Duration,
        wait: Duration,
        work: F,
    ) -> anyhow::Result<T>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<T>>,
    {
        let token = uuid::Uuid::new_v4().to_string();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let taken: Option<String> = self
                .client
                .set(
                    key,
                    &token,
                    Some(Expiration::PX(ttl.as_millis() as i64)),
                    Some(SetOptions::NX),
                    false,
                )
                .await?;
            if taken.is_some() {
                break;
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "lock {key} still held after {wait:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let result = work().await;
        // Release only our own lock: after an expiry someone else may hold it.
        const RELEASE: &str = r#"
            if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
            return 0
        "#;
        let released: Result<i64, Error> = self
            .client
            .eval(RELEASE, vec![key.to_string()], vec![token])
            .await;
        if let Err(err) = released {
            tracing::warn!(key, error = %err, "cannot release a lock; it expires by itself");
        }
        result
    }

    pub async fn quit(&self) {
        let _ = self.client.quit().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_slots_match_redis() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(hash_slot("123456789"), 12739);
        assert_eq!(hash_slot("foo"), 12182);
        assert_eq!(hash_slot("{user1000}.following"), hash_slot("user1000"));
        assert_eq!(hash_slot("foo{}{bar}"), hash_slot("foo{}{bar}"));
        assert_eq!(hash_slot("foo{{bar}}zap"), hash_slot("{bar"));
    }

    #[test]
    fn keys_with_one_slot_tag_share_a_slot() {
        let ks = Keyspace::new("lf:");
        let a = ks.key("queue", "p1", Some("pending"));
        let b = ks.key("queue", "p1", Some("inflight"));
        let c = ks.key("dedupe", "p1", None);
        assert_eq!(a, "lf:queue:{p1}:pending");
        assert_eq!(hash_slot(&a), hash_slot(&b));
        assert_eq!(hash_slot(&a), hash_slot(&c));
    }
}
