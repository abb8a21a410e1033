//! The stored form of accepted events, shared by the web role (writer) and the worker (reader).
//!
//! Each accepted request becomes **one object** in blob storage (key scheme in
//! [`crate::storage::blob::event_keys`]) holding a JSON line per entity:
//!
//! ```text
//! {"kind":"observation","id":"<entity id>","events":[<envelope>, ...]}\n
//! ```
//!
//! A [`Segment`] is the byte range of one line, without its newline. Queue messages and the
//! ClickHouse `entity_events` table point at segments, so the worker reads exactly the bytes of the
//! entities it rebuilds. One object per request (instead of one per entity) is what makes the
//! write path cost one write and one sync, and one S3 PUT, per request.
//!
//! Deleting events overwrites their line with spaces: every other segment of the object keeps its
//! offsets, and a blank segment reads as "no events".
//!
//! The format is read and written by different processes and versions: change it only in
//! backward-compatible ways.

use std::ops::Range;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, DurationRound, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::domain::entity::EntityKind;
use crate::storage::blob::{event_keys, BlobStore};
use crate::storage::redis::RedisStore;

/// Where one entity's events of one request are: a byte range of the request's object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Segment {
    #[serde(rename = "k")]
    pub kind: EntityKind,
    #[serde(rename = "i")]
    pub entity_id: String,
    /// The trace of an observation or score, when its events name one: lets the worker look the
    /// trace up (does it exist, was it deleted) in the same query as the entity itself.
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    #[serde(rename = "o")]
    pub offset: u64,
    #[serde(rename = "n")]
    pub length: u64,
}

impl Segment {
    pub fn range(&self) -> Range<u64> {
        self.offset..self.offset + self.length
    }
}

/// The events of one entity in one request, before they are written.
#[derive(Debug, Clone)]
pub struct EntityEvents {
    pub kind: EntityKind,
    pub entity_id: String,
    pub trace_id: Option<String>,
    pub envelopes: Vec<Value>,
}

/// One line as stored.
#[derive(Debug, Serialize, Deserialize)]
pub struct Line {
    pub kind: EntityKind,
    pub id: String,
    pub events: Vec<Value>,
}

/// Builds the object of one request: its bytes, and where each entity's line is.
pub fn encode(entities: Vec<EntityEvents>) -> (Vec<u8>, Vec<Segment>) {
    let mut bytes = Vec::with_capacity(entities.iter().map(|e| e.envelopes.len() * 1024).sum());
    let mut segments = Vec::with_capacity(entities.len());
    for entity in entities {
        let offset = bytes.len() as u64;
        let line = Line {
            kind: entity.kind,
            id: entity.entity_id,
            events: entity.envelopes,
        };
        // Serialising a `Value` cannot fail; compact JSON never contains a raw newline.
        serde_json::to_writer(&mut bytes, &line).expect("JSON values serialise");
        let length = bytes.len() as u64 - offset;
        bytes.push(b'\n');
        segments.push(Segment {
            kind: line.kind,
            entity_id: line.id,
            trace_id: entity.trace_id,
            offset,
            length,
        });
    }
    (bytes, segments)
}

/// Reads one segment's line. `None` when it was deleted (blank).
pub fn decode_segment(bytes: &[u8]) -> anyhow::Result<Option<Line>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let line: Line = serde_json::from_slice(bytes).context("a stored event line is not valid")?;
    Ok(Some(line))
}

/// One line as stored, its events left as their JSON text: for readers that parse each envelope
/// themselves (`ingest::event::parse_envelope_text`), without building it as a `Value` first.
#[derive(Debug, Deserialize)]
pub struct RawLine<'a> {
    pub kind: EntityKind,
    pub id: String,
    #[serde(borrow)]
    pub events: Vec<&'a serde_json::value::RawValue>,
}

/// [`decode_segment`], the events as JSON text.
pub fn decode_segment_raw(bytes: &[u8]) -> anyhow::Result<Option<RawLine<'_>>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let line: RawLine =
        serde_json::from_slice(bytes).context("a stored event line is not valid")?;
    Ok(Some(line))
}

/// Every live line of an object with its segment, for recovery and inspection. The trace id of
/// each segment is taken from its events, as the web role did when it wrote them.
pub fn decode_object(bytes: &[u8]) -> anyhow::Result<Vec<(Segment, Line)>> {
    let mut out = Vec::new();
    let mut offset = 0usize;
    for raw in bytes.split(|b| *b == b'\n') {
        let range = offset..offset + raw.len();
        offset += raw.len() + 1;
        let Some(line) = decode_segment(raw)? else {
            continue;
        };
        let segment = Segment {
            kind: line.kind,
            entity_id: line.id.clone(),
            trace_id: trace_id_of(line.kind, &line.events),
            offset: range.start as u64,
            length: raw.len() as u64,
        };
        out.push((segment, line));
    }
    Ok(out)
}

/// The trace an observation's or score's envelopes name first, if any.
pub fn trace_id_of(kind: EntityKind, envelopes: &[Value]) -> Option<String> {
    if kind == EntityKind::Trace {
        return None;
    }
    envelopes.iter().find_map(|envelope| {
        envelope
            .get("body")
            .and_then(|b| b.get("traceId"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    })
}

/// Overwrites the given segments with spaces, in place. Ranges beyond the object are ignored
/// (the object was written by a failed request and is shorter than a reference claims).
pub fn blank(bytes: &mut [u8], ranges: &[Range<u64>]) {
    for range in ranges {
        let (start, end) = (range.start as usize, range.end as usize);
        if start <= end && end <= bytes.len() {
            bytes[start..end].fill(b' ');
        }
    }
}

/// Deletes stored events: overwrites `ranges` of `object` with spaces and writes it back
/// durably. Objects are shared by the entities of a request, so rewrites of one object are
/// serialised through a Redis lock; a missing object has nothing left to delete.
pub async fn blank_segments(
    blob: &BlobStore,
    redis: &RedisStore,
    object: &Path,
    ranges: &[Range<u64>],
) -> anyhow::Result<()> {
    let digest = Sha256::digest(object.as_ref().as_bytes());
    let lock = redis
        .keyspace
        .key("blob-rewrite", &hex::encode(&digest[..8]), Some("lock"));
    redis
        .with_lock(
            &lock,
            Duration::from_secs(60),
            Duration::from_secs(30),
            || async {
                let Some(bytes) = blob.get(object).await? else {
                    return Ok(());
                };
                let mut bytes = bytes.to_vec();
                blank(&mut bytes, ranges);
                blob.put_durable(object, bytes.into()).await
            },
        )
        .await
}

/// Every request object written in `[since, until]`, listed hour by hour (the key scheme puts
/// the hour first), with the time each was last written.
pub async fn objects_between(
    blob: &BlobStore,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> anyhow::Result<Vec<(Path, DateTime<Utc>)>> {
    let base = blob.base();
    let mut out = Vec::new();
    let mut hour = since
        .duration_trunc(chrono::TimeDelta::hours(1))
        .unwrap_or(since);
    while hour <= until {
        let prefix = event_keys::hour_prefix(&base, hour);
        let listed: Vec<_> = blob
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .with_context(|| format!("listing {prefix}"))?;
        out.extend(
            listed
                .into_iter()
                .filter(|meta| meta.last_modified >= since)
                .filter(|meta| event_keys::is_request_object(&base, &meta.location))
                .map(|meta| (meta.location, meta.last_modified)),
        );
        hour += chrono::TimeDelta::hours(1);
    }
    Ok(out)
}

/// The project an object of the key scheme belongs to.
pub fn project_of(blob: &BlobStore, object: &Path) -> Option<String> {
    let part = object.parts().nth(blob.base().parts().count() + 3)?;
    Some(
        percent_encoding::percent_decode_str(part.as_ref())
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// Every live stored envelope of one entity, found by reading every object of its project.
/// Costly (it reads everything): for inspection and tests, never on the ingestion path, which
/// finds an entity's events through `entity_events`.
pub async fn scan_entity(
    blob: &BlobStore,
    project_id: &str,
    kind: EntityKind,
    entity_id: &str,
) -> anyhow::Result<Vec<Value>> {
    let base = blob.base();
    let listed: Vec<_> = blob
        .store
        .list(Some(&base.child("events")))
        .try_collect()
        .await
        .context("listing stored events")?;
    let mut out = Vec::new();
    for meta in listed {
        if !event_keys::is_request_object(&base, &meta.location)
            || project_of(blob, &meta.location).as_deref() != Some(project_id)
        {
            continue;
        }
        let Some(bytes) = blob.get(&meta.location).await? else {
            continue;
        };
        for (_, line) in decode_object(&bytes)? {
            if line.kind == kind && line.id == entity_id {
                out.extend(line.events);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entity(kind: EntityKind, id: &str, events: Vec<Value>) -> EntityEvents {
        EntityEvents {
            kind,
            entity_id: id.into(),
            trace_id: trace_id_of(kind, &events),
            envelopes: events,
        }
    }

    #[test]
    fn segments_point_at_their_lines_and_decode_back() {
        let trace = json!({"id": "e1", "type": "trace-create", "body": {"id": "t\nwith newline"}});
        let span = json!({"id": "e2", "type": "span-create", "body": {"id": "s", "traceId": "t"}});
        let (bytes, segments) = encode(vec![
            entity(EntityKind::Trace, "t\nwith newline", vec![trace.clone()]),
            entity(EntityKind::Observation, "s", vec![span.clone()]),
        ]);
        assert_eq!(segments.len(), 2);
        assert_eq!(segments[1].trace_id.as_deref(), Some("t"));
        let line =
            decode_segment(&bytes[segments[0].offset as usize..][..segments[0].length as usize])
                .unwrap()
                .unwrap();
        assert_eq!(line.id, "t\nwith newline");
        assert_eq!(line.events, vec![trace]);

        let decoded = decode_object(&bytes).unwrap();
        let found: Vec<Segment> = decoded.into_iter().map(|(s, _)| s).collect();
        assert_eq!(found, segments);
    }

    #[test]
    fn blanked_segments_read_as_deleted_and_leave_the_others_in_place() {
        let (mut bytes, segments) = encode(vec![
            entity(EntityKind::Trace, "a", vec![json!({"id": "1"})]),
            entity(EntityKind::Trace, "b", vec![json!({"id": "2"})]),
        ]);
        let length = bytes.len();
        blank(&mut bytes, &[segments[0].range(), 1_000..2_000]);
        assert_eq!(bytes.len(), length);
        assert!(decode_segment(&bytes[..segments[0].length as usize])
            .unwrap()
            .is_none());
        let live = decode_object(&bytes).unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].0, segments[1]);
    }

    #[test]
    fn a_corrupt_line_is_an_error_not_a_silent_skip() {
        assert!(decode_segment(b"{not json").is_err());
    }
}
