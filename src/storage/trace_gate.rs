//! Which traces may be read yet: a trace becomes readable only together with the observations and
//! scores accepted with it or before it.
//!
//! The worker merges each entity in the queue shard of the entity (one merger per entity), so a
//! trace and its children are written by different shard readers, maybe by different workers, in
//! any order. Instead of ordering those writes, reads wait for them: for each trace, a Redis hash
//! (`trace-gate:{<digest of project and trace>}`) holds one field per stored segment of the trace
//! or of one of its children that the worker has not written yet (`<object>#<offset>`).
//!
//! - The web role adds the fields of a request before it queues the request's references
//!   ([`hold`]), so no worker can release a field before it exists.
//! - The worker removes them after the rows built from those segments are in ClickHouse (or
//!   will never be: dead letters, deletions), before it acknowledges the entries ([`release`]).
//!   Releasing a segment of the trace's own events leaves a `~trace` field. When the last pending
//!   field goes and `~trace` is there, the hash keeps a `~readable` field: from then on the trace
//!   is readable, and later requests (a long agent run streaming spans) no longer hold it back.
//!   Only a written trace is released for good: children (a score flushed before its trace, as
//!   the SDKs' own flows do) released before the trace exists must not let the trace's first
//!   request through unheld, or the trace row could be read before the children sent with it.
//!   A trace that never had events of its own (its record is a wrapper of its observations) is
//!   held by each request until that request is written.
//! - `GET /api/public/traces/{id}` answers 404 while the hash holds pending fields and no
//!   `~readable` ([`is_readable`]).
//!
//! Every write refreshes the hash's expiry (`GATE_TTL`): a trace whose segments are stuck (a
//! worker down for longer) becomes readable as it is after that long, and the hashes of quiet
//! traces go away. Events without a trace id (an update that names only its observation) are
//! not held: nothing tells the web role their trace.

use std::collections::BTreeMap;
use std::time::Duration;

use fred::prelude::*;
use sha2::{Digest, Sha256};

use crate::domain::entity::EntityKind;
use crate::storage::raw_events::Segment;
use crate::storage::redis::RedisStore;

/// How long a gate outlives its last write.
pub const GATE_TTL: Duration = Duration::from_secs(600);

/// Fields per script call: Lua's `unpack` takes a few thousand arguments at most.
const CHUNK: usize = 500;

/// A stored segment the gate of its trace waits for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Held {
    pub project_id: String,
    pub trace_id: String,
    /// `<object>#<offset>`: unique among all stored segments.
    pub segment: String,
    /// Whether the segment holds the trace's own events (not a child's): once one is released,
    /// the trace exists, and releasing all it waits for makes it readable for good.
    pub of_the_trace: bool,
}

impl Held {
    /// A segment of the trace's own events.
    pub fn of_trace(project_id: &str, trace_id: &str, object: &str, offset: u64) -> Held {
        Held {
            of_the_trace: true,
            ..Held::of_child(project_id, trace_id, object, offset)
        }
    }

    /// A segment of one of the trace's observations or scores.
    pub fn of_child(project_id: &str, trace_id: &str, object: &str, offset: u64) -> Held {
        Held {
            project_id: project_id.to_string(),
            trace_id: trace_id.to_string(),
            segment: format!("{object}#{offset}"),
            of_the_trace: false,
        }
    }

    /// What a stored segment holds back: the trace it is of, or the trace its observation or
    /// score names; `None` when it names none. The web role and the worker both ask this, so the
    /// fields one adds are the fields the other removes.
    pub fn of_segment(project_id: &str, object: &str, segment: &Segment) -> Option<Held> {
        match segment.kind {
            EntityKind::Trace => Some(Held::of_trace(
                project_id,
                &segment.entity_id,
                object,
                segment.offset,
            )),
            _ => {
                let trace = segment.trace_id.as_deref().filter(|t| !t.is_empty())?;
                Some(Held::of_child(project_id, trace, object, segment.offset))
            }
        }
    }
}

/// The gate's key. Trace ids are the client's text (any length, braces included), so the slot
/// tag is a digest of project and trace.
fn key(redis: &RedisStore, project_id: &str, trace_id: &str) -> String {
    let digest = Sha256::digest(format!("{project_id}\0{trace_id}").as_bytes());
    redis
        .keyspace
        .key("trace-gate", &hex::encode(&digest[..16]), None)
}

/// The fields grouped by trace (one key, one script call each).
fn by_trace(held: &[Held]) -> BTreeMap<(&str, &str), Vec<&Held>> {
    let mut grouped: BTreeMap<(&str, &str), Vec<&Held>> = BTreeMap::new();
    for h in held {
        grouped
            .entry((&h.project_id, &h.trace_id))
            .or_default()
            .push(h);
    }
    grouped
}

/// Holds traces back until the worker has written these segments; a trace already readable is
/// left alone. The calls go out together (fred pipelines them).
pub async fn hold(redis: &RedisStore, held: &[Held]) -> anyhow::Result<()> {
    // ARGV: the expiry, whether the chunk holds the trace's own events (unused), the fields.
    const SCRIPT: &str = r#"
        if redis.call('HEXISTS', KEYS[1], '~readable') == 0 then
            local fields = {}
            for i = 3, #ARGV do
                fields[#fields + 1] = ARGV[i]
                fields[#fields + 1] = '1'
            end
            redis.call('HSET', KEYS[1], unpack(fields))
        end
        redis.call('PEXPIRE', KEYS[1], ARGV[1])
        return 1
    "#;
    call_per_chunk(redis, SCRIPT, held).await
}

/// Releases segments the worker has written (or never will); a written trace with nothing left
/// pending becomes readable for good.
pub async fn release(redis: &RedisStore, held: &[Held]) -> anyhow::Result<()> {
    // ARGV: the expiry, '1' when the chunk holds the trace's own events, the fields.
    const SCRIPT: &str = r#"
        redis.call('HDEL', KEYS[1], unpack(ARGV, 3))
        if ARGV[2] == '1' then
            redis.call('HSET', KEYS[1], '~trace', '1')
        end
        local written = redis.call('HEXISTS', KEYS[1], '~trace')
        local markers = written + redis.call('HEXISTS', KEYS[1], '~readable')
        if written == 1 and redis.call('HLEN', KEYS[1]) == markers then
            redis.call('HSET', KEYS[1], '~readable', '1')
        end
        redis.call('PEXPIRE', KEYS[1], ARGV[1])
        return 1
    "#;
    call_per_chunk(redis, SCRIPT, held).await
}

async fn call_per_chunk(redis: &RedisStore, script: &str, held: &[Held]) -> anyhow::Result<()> {
    let ttl = GATE_TTL.as_millis().to_string();
    let calls = by_trace(held)
        .into_iter()
        .flat_map(|((project_id, trace_id), segments)| {
            let key = key(redis, project_id, trace_id);
            segments
                .chunks(CHUNK)
                .map(|chunk| {
                    let of_the_trace = chunk.iter().any(|h| h.of_the_trace);
                    let mut args = vec![ttl.clone(), u8::from(of_the_trace).to_string()];
                    args.extend(chunk.iter().map(|h| h.segment.clone()));
                    (key.clone(), args)
                })
                .collect::<Vec<_>>()
        })
        .map(|(key, args)| async move {
            let _: i64 = redis.client.eval(script, vec![key], args).await?;
            anyhow::Ok(())
        });
    futures::future::try_join_all(calls).await?;
    Ok(())
}

/// Whether the trace may be read: it was released for good, or nothing of it is held.
pub async fn is_readable(
    redis: &RedisStore,
    project_id: &str,
    trace_id: &str,
) -> anyhow::Result<bool> {
    const SCRIPT: &str = r#"
        if redis.call('HEXISTS', KEYS[1], '~readable') == 1 then return 1 end
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        return 1
    "#;
    let readable: i64 = redis
        .client
        .eval(
            SCRIPT,
            vec![key(redis, project_id, trace_id)],
            Vec::<String>::new(),
        )
        .await?;
    Ok(readable == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_grouped_by_trace_and_named_by_segment() {
        let held = [
            Held::of_trace("p", "t1", "events/a.jsonl", 0),
            Held::of_child("p", "t2", "events/a.jsonl", 10),
            Held::of_child("p", "t1", "events/a.jsonl", 20),
        ];
        let grouped = by_trace(&held);
        let segments: Vec<&str> = grouped[&("p", "t1")]
            .iter()
            .map(|h| h.segment.as_str())
            .collect();
        assert_eq!(segments, vec!["events/a.jsonl#0", "events/a.jsonl#20"]);
        assert_eq!(grouped.len(), 2);
    }
}
