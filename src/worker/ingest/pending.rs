//! Segments this process has read from the queue but not yet written to `entity_events`.
//!
//! A record is rebuilt from every segment of its entity: those in the index, and those read in
//! earlier rounds whose flush has not happened yet. Without this, a round could rebuild an
//! entity from fewer events than the round before it and write an older-looking record.
//!
//! Ordering rule, relied on by the shard readers: take the snapshot *before* querying the index.
//! The writer inserts into the index and only then settles; so a segment is always in the
//! snapshot, or already in the index when the query runs.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::storage::queue::{EntityRef, Location};

#[derive(Default)]
pub struct Pending {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_entity: HashMap<EntityRef, Vec<(RoundId, Location)>>,
    by_round: HashMap<RoundId, Vec<EntityRef>>,
}

/// A round of one shard reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoundId {
    pub shard: u32,
    pub round: u64,
}

impl Pending {
    /// Registers a round's segments until [`Pending::settle`].
    pub fn add<'a>(
        &self,
        round: RoundId,
        segments: impl IntoIterator<Item = (&'a EntityRef, &'a Location)>,
    ) {
        let mut inner = self.inner.lock().expect("pending lock poisoned");
        let mut entities = Vec::new();
        for (entity, location) in segments {
            inner
                .by_entity
                .entry(entity.clone())
                .or_default()
                .push((round, location.clone()));
            entities.push(entity.clone());
        }
        inner.by_round.entry(round).or_default().extend(entities);
    }

    /// The pending segments of `entities`.
    pub fn snapshot<'a>(
        &self,
        entities: impl IntoIterator<Item = &'a EntityRef>,
    ) -> HashMap<EntityRef, Vec<Location>> {
        let inner = self.inner.lock().expect("pending lock poisoned");
        entities
            .into_iter()
            .filter_map(|e| {
                let found = inner.by_entity.get(e)?;
                Some((e.clone(), found.iter().map(|(_, l)| l.clone()).collect()))
            })
            .collect()
    }

    /// Forgets a round: its segments are in the index now, or its entries were handed back.
    pub fn settle(&self, round: RoundId) {
        let mut inner = self.inner.lock().expect("pending lock poisoned");
        let Some(entities) = inner.by_round.remove(&round) else {
            return;
        };
        for entity in entities {
            if let Some(found) = inner.by_entity.get_mut(&entity) {
                found.retain(|(r, _)| *r != round);
                if found.is_empty() {
                    inner.by_entity.remove(&entity);
                }
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner
            .lock()
            .expect("pending lock poisoned")
            .by_entity
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::entity::EntityKind;
    use crate::storage::raw_events::Segment;

    fn location(object: &str) -> Location {
        Location {
            object: object.into(),
            received_at_ms: 0,
            segment: Segment {
                kind: EntityKind::Trace,
                entity_id: "t".into(),
                trace_id: None,
                offset: 0,
                length: 1,
            },
        }
    }

    #[test]
    fn segments_stay_until_their_round_settles() {
        let pending = Pending::default();
        let entity = EntityRef {
            project_id: "p".into(),
            kind: EntityKind::Trace,
            entity_id: "t".into(),
        };
        let (a, b) = (location("a"), location("b"));
        let first = RoundId { shard: 0, round: 1 };
        let second = RoundId { shard: 0, round: 2 };
        pending.add(first, [(&entity, &a)]);
        pending.add(second, [(&entity, &b)]);
        assert_eq!(pending.snapshot([&entity])[&entity], vec![a, b.clone()]);
        pending.settle(first);
        assert_eq!(pending.snapshot([&entity])[&entity], vec![b]);
        pending.settle(second);
        assert!(pending.snapshot([&entity]).is_empty());
        assert_eq!(pending.len(), 0);
    }
}
