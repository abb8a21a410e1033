//! The ingestion queue in Redis: references to entities whose events changed, never event bodies.
//!
//! Layout (every key built by [`crate::storage::redis::Keyspace`], one slot tag per shard, so it
//! works on Redis Cluster and ElastiCache Serverless):
//! - `ingest:{shard-N}` — a stream per shard. An entry names one entity: project, kind, id.
//!   Entities are spread over shards by a hash of that triple, so all references to one entity land
//!   in one shard.
//! - `ingest-lease:{shard-N}:lease` — which worker owns the shard. Only the owner reads a shard, so
//!   one entity is never merged by two workers at once. A lease expires unless renewed; a dead
//!   worker's shards are taken over, with the entries it had read but not acknowledged.
//! - `ingest-dead:{shard-N}:letters` — entries that failed `max_attempts` times, with their error,
//!   kept for `queue dead-letters` / `queue retry`.
//!
//! Messages and keys are read and written by different processes and versions: change them only in
//! backward-compatible ways.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use fred::prelude::*;
use fred::types::streams::{XReadResponse, XID};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ingest::event::EntityKind;
use crate::storage::redis::RedisStore;

/// The consumer group every worker reads through.
pub const GROUP: &str = "workers";

/// One reference: "the events of this entity changed; rebuild it".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EntityRef {
    pub project_id: String,
    pub kind: EntityKind,
    pub entity_id: String,
}

impl Serialize for EntityKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EntityKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match String::deserialize(d)?.as_str() {
            "trace" => Ok(EntityKind::Trace),
            "observation" => Ok(EntityKind::Observation),
            "score" => Ok(EntityKind::Score),
            other => Err(serde::de::Error::custom(format!(
                "unknown entity kind {other:?}"
            ))),
        }
    }
}

/// A queue entry as a worker holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub shard: u32,
    pub id: String,
    /// `None` when the entry could not be decoded (written by an incompatible version).
    pub entity: Option<EntityRef>,
}

/// The shard an entity belongs to: stable across processes and versions.
pub fn shard_of(entity: &EntityRef, shards: u32) -> u32 {
    let digest = Sha256::digest(
        format!(
            "{}\0{}\0{}",
            entity.project_id,
            entity.kind.as_str(),
            entity.entity_id
        )
        .as_bytes(),
    );
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % shards.max(1)
}

fn shard_tag(shard: u32) -> String {
    format!("shard-{shard}")
}

pub fn stream_key(redis: &RedisStore, shard: u32) -> String {
    redis.keyspace.key("ingest", &shard_tag(shard), None)
}

fn lease_key(redis: &RedisStore, shard: u32) -> String {
    redis
        .keyspace
        .key("ingest-lease", &shard_tag(shard), Some("lease"))
}

pub fn dead_letter_key(redis: &RedisStore, shard: u32) -> String {
    redis
        .keyspace
        .key("ingest-dead", &shard_tag(shard), Some("letters"))
}

/// Appends references, one stream entry each, grouped per shard in one round trip per shard.
pub async fn enqueue(
    redis: &RedisStore,
    shards: u32,
    entities: &[EntityRef],
) -> anyhow::Result<()> {
    let mut by_shard: HashMap<u32, Vec<&EntityRef>> = HashMap::new();
    for entity in entities {
        by_shard
            .entry(shard_of(entity, shards))
            .or_default()
            .push(entity);
    }
    let sends = by_shard.into_iter().map(|(shard, entities)| async move {
        let pipeline = redis.client.pipeline();
        let key = stream_key(redis, shard);
        for entity in entities {
            let body = serde_json::to_string(entity)?;
            let _: () = pipeline
                .xadd(&key, false, None, "*", vec![("e", body)])
                .await?;
        }
        let _: Vec<Value> = pipeline.all().await?;
        anyhow::Ok(())
    });
    for result in futures::future::join_all(sends).await {
        result.context("enqueueing references")?;
    }
    Ok(())
}

/// Entries waiting in all shards (read or not): the backlog ingestion is throttled by.
pub async fn backlog(redis: &RedisStore, shards: u32) -> anyhow::Result<u64> {
    let lengths = (0..shards).map(|shard| async move {
        let len: u64 = redis.client.xlen(stream_key(redis, shard)).await?;
        anyhow::Ok(len)
    });
    let mut total = 0;
    for len in futures::future::join_all(lengths).await {
        total += len?;
    }
    Ok(total)
}

/// Creates the consumer group of a shard if it does not exist yet.
async fn ensure_group(redis: &RedisStore, shard: u32) -> anyhow::Result<()> {
    let result: Result<(), Error> = redis
        .client
        .xgroup_create(stream_key(redis, shard), GROUP, "0", true)
        .await;
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.details().contains("BUSYGROUP") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Takes or renews the lease of `shard` for `owner`. True when `owner` holds it afterwards.
pub async fn hold_lease(
    redis: &RedisStore,
    shard: u32,
    owner: &str,
    ttl: Duration,
) -> anyhow::Result<bool> {
    // One key, so the script is cluster-safe. Renew if ours, take if free.
    const SCRIPT: &str = r#"
        local current = redis.call('GET', KEYS[1])
        if current == ARGV[1] then
            redis.call('PEXPIRE', KEYS[1], ARGV[2])
            return 1
        end
        if not current then
            redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
            return 1
        end
        return 0
    "#;
    let held: i64 = redis
        .client
        .eval(
            SCRIPT,
            vec![lease_key(redis, shard)],
            vec![owner.to_string(), ttl.as_millis().to_string()],
        )
        .await?;
    if held == 1 {
        ensure_group(redis, shard).await?;
    }
    Ok(held == 1)
}

/// Records that worker `owner` is alive and returns how many workers are: each aims to own
/// its fair share of the shards.
pub async fn heartbeat(redis: &RedisStore, owner: &str, ttl: Duration) -> anyhow::Result<u32> {
    const SCRIPT: &str = r#"
        local now = tonumber(ARGV[2])
        redis.call('ZADD', KEYS[1], now, ARGV[1])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
        return redis.call('ZCARD', KEYS[1])
    "#;
    let now = chrono::Utc::now().timestamp_millis();
    let live: i64 = redis
        .client
        .eval(
            SCRIPT,
            vec![redis.keyspace.key("ingest-workers", "members", None)],
            vec![
                owner.to_string(),
                now.to_string(),
                ttl.as_millis().to_string(),
            ],
        )
        .await?;
    Ok(live.max(1) as u32)
}

fn epoch_key(redis: &RedisStore) -> String {
    redis.keyspace.key("ingest-epoch", "meta", None)
}

/// The queue's epoch: an id written once into Redis. When Redis loses its data (a restart without
/// persistence, a failover to an empty replica) the epoch disappears with the references; the
/// worker that notices writes a new one and re-queues what blob storage received meanwhile.
/// Returns `(epoch, created_now)`.
pub async fn epoch(redis: &RedisStore) -> anyhow::Result<(String, bool)> {
    let candidate = uuid::Uuid::new_v4().to_string();
    let created: Option<String> = redis
        .client
        .set(
            epoch_key(redis),
            &candidate,
            None,
            Some(SetOptions::NX),
            false,
        )
        .await?;
    if created.is_some() {
        return Ok((candidate, true));
    }
    let current: Option<String> = redis.client.get(epoch_key(redis)).await?;
    Ok((current.unwrap_or(candidate), false))
}

/// Gives a lease back (on shutdown), so another worker need not wait for it to expire.
pub async fn release_lease(redis: &RedisStore, shard: u32, owner: &str) -> anyhow::Result<()> {
    const SCRIPT: &str = r#"
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
    "#;
    let _: i64 = redis
        .client
        .eval(
            SCRIPT,
            vec![lease_key(redis, shard)],
            vec![owner.to_string()],
        )
        .await?;
    Ok(())
}

/// A stream entry as Redis returns it: id and fields.
type StreamEntry = (String, HashMap<String, String>);

fn decode(shard: u32, id: String, fields: HashMap<String, String>) -> Entry {
    let entity = fields.get("e").and_then(|e| serde_json::from_str(e).ok());
    Entry { shard, id, entity }
}

/// Takes over every entry of the shard that was read but not acknowledged (by a worker that died,
/// or by this one before a restart). Only the lease holder calls this.
pub async fn claim_pending(
    redis: &RedisStore,
    shard: u32,
    consumer: &str,
    count: u64,
) -> anyhow::Result<Vec<Entry>> {
    let (_, claimed, _): (String, Vec<StreamEntry>, Vec<String>) = redis
        .client
        .xautoclaim(
            stream_key(redis, shard),
            GROUP,
            consumer,
            0,
            "0-0",
            Some(count),
            false,
        )
        .await?;
    Ok(claimed
        .into_iter()
        .map(|(id, fields)| decode(shard, id, fields))
        .collect())
}

/// Reads up to `count` new entries of the shard without waiting: blocking reads would stall
/// every other command on the client's shared connection.
pub async fn read_new(
    redis: &RedisStore,
    shard: u32,
    consumer: &str,
    count: u64,
) -> anyhow::Result<Vec<Entry>> {
    let key = stream_key(redis, shard);
    let response: XReadResponse<String, String, String, String> = redis
        .client
        .xreadgroup_map(
            GROUP,
            consumer,
            Some(count),
            None,
            false,
            key.clone(),
            XID::NewInGroup,
        )
        .await?;
    Ok(response
        .into_values()
        .flatten()
        .map(|(id, fields)| decode(shard, id, fields))
        .collect())
}

/// Acknowledges and removes entries whose records are in ClickHouse.
pub async fn ack(redis: &RedisStore, shard: u32, ids: &[String]) -> anyhow::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let key = stream_key(redis, shard);
    let pipeline = redis.client.pipeline();
    let _: () = pipeline.xack(&key, GROUP, ids.to_vec()).await?;
    let _: () = pipeline.xdel(&key, ids.to_vec()).await?;
    let _: Vec<Value> = pipeline.all().await?;
    Ok(())
}

/// A dead letter: an entry that kept failing, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub shard: u32,
    pub entity: Option<EntityRef>,
    pub error: String,
    pub attempts: u32,
    pub failed_at: chrono::DateTime<chrono::Utc>,
}

/// Moves a failing entry to the shard's dead-letter list and acknowledges it, atomically (one slot).
pub async fn dead_letter(
    redis: &RedisStore,
    entry: &Entry,
    letter: &DeadLetter,
) -> anyhow::Result<()> {
    let stream = stream_key(redis, entry.shard);
    let letters = dead_letter_key(redis, entry.shard);
    let transaction = redis.client.multi();
    let _: () = transaction
        .rpush(&letters, serde_json::to_string(letter)?)
        .await?;
    let _: () = transaction.xack(&stream, GROUP, entry.id.clone()).await?;
    let _: () = transaction.xdel(&stream, entry.id.clone()).await?;
    let _: Vec<Value> = transaction.exec(true).await?;
    Ok(())
}

/// Every dead letter, shard by shard.
pub async fn dead_letters(redis: &RedisStore, shards: u32) -> anyhow::Result<Vec<DeadLetter>> {
    let mut out = Vec::new();
    for shard in 0..shards {
        let raw: Vec<String> = redis
            .client
            .lrange(dead_letter_key(redis, shard), 0, -1)
            .await?;
        out.extend(raw.iter().filter_map(|r| serde_json::from_str(r).ok()));
    }
    Ok(out)
}

/// Puts every dead letter's reference back on its queue; returns how many.
pub async fn retry_dead_letters(redis: &RedisStore, shards: u32) -> anyhow::Result<usize> {
    let mut retried = 0;
    for shard in 0..shards {
        let key = dead_letter_key(redis, shard);
        let waiting: u64 = redis.client.llen(&key).await?;
        for _ in 0..waiting {
            let raw: Option<String> = redis.client.lpop(&key, None).await?;
            let Some(raw) = raw else { break };
            match serde_json::from_str::<DeadLetter>(&raw) {
                Ok(DeadLetter {
                    entity: Some(entity),
                    ..
                }) => {
                    enqueue(redis, shards, std::slice::from_ref(&entity)).await?;
                    retried += 1;
                }
                // Nothing to retry without a reference; keep it visible at the end of the list.
                _ => {
                    let _: () = redis.client.rpush(&key, raw).await?;
                }
            }
        }
    }
    Ok(retried)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        let entity = |id: &str| EntityRef {
            project_id: "p".into(),
            kind: EntityKind::Observation,
            entity_id: id.into(),
        };
        assert_eq!(shard_of(&entity("a"), 8), shard_of(&entity("a"), 8));
        let used: std::collections::BTreeSet<u32> = (0..200)
            .map(|i| shard_of(&entity(&i.to_string()), 8))
            .collect();
        assert_eq!(used.len(), 8);
    }

    #[test]
    fn references_round_trip_as_json() {
        let entity = EntityRef {
            project_id: "p".into(),
            kind: EntityKind::Score,
            entity_id: "s/1".into(),
        };
        let text = serde_json::to_string(&entity).unwrap();
        assert_eq!(
            text,
            r#"{"project_id":"p","kind":"score","entity_id":"s/1"}"#
        );
        assert_eq!(serde_json::from_str::<EntityRef>(&text).unwrap(), entity);
    }
}
