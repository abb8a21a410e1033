//! The ingestion queue in Redis: references to entities whose events changed, never event bodies.
//!
//! Layout (every key built by [`crate::storage::redis::Keyspace`], one slot tag per shard, so it
//! works on Redis Cluster and ElastiCache Serverless):
//! - `ingest:{shard-N}` — a stream per shard. An entry is a [`Message`]: the segments of one
//!   request's object that belong to entities of this shard (object key, byte ranges; never the
//!   events themselves), or a list of entities to rebuild. Entities are spread over shards by a
//!   hash of (project, kind, id), so all references to one entity land in one shard, in order.
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

use crate::domain::entity::EntityKind;
use crate::storage::raw_events::Segment;
use crate::storage::redis::RedisStore;

/// The consumer group every worker reads through.
pub const GROUP: &str = "workers";

/// The stream field holding an entry's [`Message`] as JSON.
const MESSAGE_FIELD: &str = "m";

/// One entity: the unit of merging, sharding and dead letters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EntityRef {
    pub project_id: String,
    pub kind: EntityKind,
    pub entity_id: String,
}

/// A queue entry's content. Field names are short: a backlog of millions of entries lives in
/// Redis memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "v")]
pub enum Message {
    /// "These entities have new events in this object": one request's segments of one shard.
    #[serde(rename = "events")]
    Events(EventsMessage),
    /// "Rebuild these entities from what is recorded": after a deletion, so that the shard's
    /// owner applies it in order with the events it is processing.
    #[serde(rename = "rebuild")]
    Rebuild(RebuildMessage),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventsMessage {
    #[serde(rename = "p")]
    pub project_id: String,
    /// The object's key, as `object_store` spells it (including the installation's prefix).
    #[serde(rename = "o")]
    pub object: String,
    /// When the web role received the request, in Unix milliseconds. Events received before a
    /// deletion of their entity (or trace) are deleted with it.
    #[serde(rename = "at")]
    pub received_at_ms: i64,
    #[serde(rename = "s")]
    pub segments: Vec<Segment>,
    /// The traces that have events in the same object: an observation whose trace is listed here
    /// needs no wrapper trace and no lookup.
    #[serde(rename = "tr", default, skip_serializing_if = "Vec::is_empty")]
    pub traces: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RebuildMessage {
    #[serde(rename = "p")]
    pub project_id: String,
    #[serde(rename = "e")]
    pub entities: Vec<(EntityKind, String)>,
}

/// A queue entry as a worker holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub shard: u32,
    pub id: String,
    /// `Err` with the raw fields when the entry could not be decoded (written by an incompatible
    /// version): it goes to the dead letters as it is.
    pub message: Result<Message, String>,
}

/// The messages of one request: its segments split by shard, one message per shard.
pub fn messages_for_object(
    project_id: &str,
    object: &str,
    received_at_ms: i64,
    segments: Vec<Segment>,
    shards: u32,
) -> Vec<(u32, Message)> {
    let traces: Vec<String> = segments
        .iter()
        .filter(|s| s.kind == EntityKind::Trace)
        .map(|s| s.entity_id.clone())
        .collect();
    let mut by_shard: std::collections::BTreeMap<u32, Vec<Segment>> = Default::default();
    for segment in segments {
        let shard = shard_of_entity(project_id, segment.kind, &segment.entity_id, shards);
        by_shard.entry(shard).or_default().push(segment);
    }
    by_shard
        .into_iter()
        .map(|(shard, segments)| {
            let has_observations = segments.iter().any(|s| s.kind != EntityKind::Trace);
            let message = EventsMessage {
                project_id: project_id.to_string(),
                object: object.to_string(),
                received_at_ms,
                segments,
                traces: if has_observations {
                    traces.clone()
                } else {
                    Vec::new()
                },
            };
            (shard, Message::Events(message))
        })
        .collect()
}

/// Rebuild messages for `entities`, one per shard.
pub fn rebuild_messages(entities: &[EntityRef], shards: u32) -> Vec<(u32, Message)> {
    let mut by_shard: std::collections::BTreeMap<(u32, String), Vec<(EntityKind, String)>> =
        Default::default();
    for e in entities {
        by_shard
            .entry((shard_of(e, shards), e.project_id.clone()))
            .or_default()
            .push((e.kind, e.entity_id.clone()));
    }
    by_shard
        .into_iter()
        .map(|((shard, project_id), entities)| {
            (
                shard,
                Message::Rebuild(RebuildMessage {
                    project_id,
                    entities,
                }),
            )
        })
        .collect()
}

pub fn shard_of_entity(project_id: &str, kind: EntityKind, entity_id: &str, shards: u32) -> u32 {
    let digest = Sha256::digest(format!("{project_id}\0{}\0{entity_id}", kind.as_str()).as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % shards.max(1)
}

/// The shard an entity belongs to: stable across processes and versions.
pub fn shard_of(entity: &EntityRef, shards: u32) -> u32 {
    shard_of_entity(&entity.project_id, entity.kind, &entity.entity_id, shards)
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

/// Appends messages to their shards' streams. The commands go out together (fred pipelines
/// commands on a connection), so this costs about one round trip however many shards there are.
pub async fn enqueue(redis: &RedisStore, messages: &[(u32, Message)]) -> anyhow::Result<()> {
    let sends = messages.iter().map(|(shard, message)| async move {
        let body = serde_json::to_string(message)?;
        let _: String = redis
            .client
            .xadd(
                stream_key(redis, *shard),
                false,
                None,
                "*",
                vec![(MESSAGE_FIELD, body)],
            )
            .await?;
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
    let message = match fields.get(MESSAGE_FIELD) {
        Some(body) => serde_json::from_str(body).map_err(|_| body.clone()),
        None => Err(serde_json::to_string(&fields).unwrap_or_default()),
    };
    Entry { shard, id, message }
}

/// Takes over entries of the shard that were read but not acknowledged (by a worker that died,
/// or by this one before a restart), from `cursor` on ("0-0" to start). Returns them with the
/// cursor to continue from, which is "0-0" once the whole pending list was scanned. Only the
/// lease holder calls this.
pub async fn claim_pending(
    redis: &RedisStore,
    shard: u32,
    consumer: &str,
    cursor: &str,
    count: u64,
) -> anyhow::Result<(Vec<Entry>, String)> {
    let (next, claimed, _): (String, Vec<StreamEntry>, Vec<String>) = redis
        .client
        .xautoclaim(
            stream_key(redis, shard),
            GROUP,
            consumer,
            0,
            cursor,
            Some(count),
            false,
        )
        .await?;
    let entries = claimed
        .into_iter()
        .map(|(id, fields)| decode(shard, id, fields))
        .collect();
    Ok((entries, next))
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
    let response: Value = redis
        .client
        .xreadgroup::<Value, _, _, _, _>(
            GROUP,
            consumer,
            Some(count),
            None,
            false,
            key.clone(),
            XID::NewInGroup,
        )
        .await?;
    // Nothing new is a nil reply, which does not convert to a map.
    if response.is_null() {
        return Ok(Vec::new());
    }
    let response: XReadResponse<String, String, String, String> = response.into_xread_response()?;
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

/// Where one of an entity's events were: enough to queue them again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub object: String,
    pub received_at_ms: i64,
    pub segment: Segment,
}

/// A dead letter: an entity that kept failing, the events it was announced with, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub shard: u32,
    /// `None` for an entry that could not be decoded; `raw` then holds it.
    pub entity: Option<EntityRef>,
    #[serde(default)]
    pub locations: Vec<Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    pub error: String,
    pub attempts: u32,
    pub failed_at: chrono::DateTime<chrono::Utc>,
}

impl DeadLetter {
    /// The messages that put this entity back on the queue: its events where they were, or a
    /// rebuild from what is recorded when it came without any.
    fn messages(&self, shards: u32) -> Vec<(u32, Message)> {
        let Some(entity) = &self.entity else {
            return Vec::new();
        };
        if self.locations.is_empty() {
            return rebuild_messages(std::slice::from_ref(entity), shards);
        }
        self.locations
            .iter()
            .map(|location| {
                (
                    shard_of(entity, shards),
                    Message::Events(EventsMessage {
                        project_id: entity.project_id.clone(),
                        object: location.object.clone(),
                        received_at_ms: location.received_at_ms,
                        segments: vec![location.segment.clone()],
                        traces: Vec::new(),
                    }),
                )
            })
            .collect()
    }
}

/// Records dead letters of one shard and acknowledges `settled` entries, atomically (one slot).
pub async fn dead_letter(
    redis: &RedisStore,
    shard: u32,
    letters: &[DeadLetter],
    settled: &[String],
) -> anyhow::Result<()> {
    let stream = stream_key(redis, shard);
    let key = dead_letter_key(redis, shard);
    let transaction = redis.client.multi();
    for letter in letters {
        let _: () = transaction
            .rpush(&key, serde_json::to_string(letter)?)
            .await?;
    }
    if !settled.is_empty() {
        let _: () = transaction.xack(&stream, GROUP, settled.to_vec()).await?;
        let _: () = transaction.xdel(&stream, settled.to_vec()).await?;
    }
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

/// Puts every dead letter's events back on the queue; returns how many letters.
pub async fn retry_dead_letters(redis: &RedisStore, shards: u32) -> anyhow::Result<usize> {
    let mut retried = 0;
    for shard in 0..shards {
        let key = dead_letter_key(redis, shard);
        let waiting: u64 = redis.client.llen(&key).await?;
        for _ in 0..waiting {
            let raw: Option<String> = redis.client.lpop(&key, None).await?;
            let Some(raw) = raw else { break };
            let messages = serde_json::from_str::<DeadLetter>(&raw)
                .map(|letter| letter.messages(shards))
                .unwrap_or_default();
            if messages.is_empty() {
                // Nothing to retry without a reference; keep it visible at the end of the list.
                let _: () = redis.client.rpush(&key, raw).await?;
                continue;
            }
            enqueue(redis, &messages).await?;
            retried += 1;
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
    fn messages_split_a_request_by_shard_and_round_trip_as_json() {
        let segment = |kind, id: &str, offset| Segment {
            kind,
            entity_id: id.into(),
            trace_id: None,
            offset,
            length: 10,
        };
        let segments: Vec<Segment> = (0..40)
            .map(|i| segment(EntityKind::Observation, &format!("o{i}"), i * 11))
            .chain([segment(EntityKind::Trace, "t", 500)])
            .collect();
        let messages = messages_for_object("p", "events/x.jsonl", 7, segments.clone(), 8);
        assert!(messages.len() > 1 && messages.len() <= 8);
        let mut seen = Vec::new();
        for (shard, message) in &messages {
            let Message::Events(events) = message else {
                panic!("an events message")
            };
            for s in &events.segments {
                assert_eq!(shard_of_entity("p", s.kind, &s.entity_id, 8), *shard);
                seen.push(s.clone());
            }
            if events
                .segments
                .iter()
                .any(|s| s.kind == EntityKind::Observation)
            {
                assert_eq!(events.traces, vec!["t".to_string()]);
            }
            let text = serde_json::to_string(message).unwrap();
            assert_eq!(&serde_json::from_str::<Message>(&text).unwrap(), message);
        }
        seen.sort_by_key(|s| s.offset);
        assert_eq!(seen, segments);
    }
}
