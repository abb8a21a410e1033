//! One round of a shard reader: the queue entries it read → every stored event of the entities
//! they name → merged records, segment lists and deletions for the writer.
//!
//! For each entity the round gathers the segments the entries announce, those of earlier rounds
//! not yet flushed ([`Pending`]) and those recorded in `entity_events`, reads each segment once,
//! and merges *all* of the entity's events. Deletions are applied here too: events received up to
//! a tombstone of the entity (or of its trace) are overwritten in blob storage and left out, and
//! an entity left without events has its rows deleted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use object_store::path::Path;
use tokio_util::sync::CancellationToken;

use super::lookups::{IndexLookups, Question};
use super::pending::{Pending, RoundId};
use super::ConsumerSettings;
use crate::domain::entity::EntityKind;
use crate::ingest::event::{parse_envelope_text, Event, Parsed};
use crate::ingest::merge;
use crate::storage::clickhouse::entity_events::{self, EntityEventsRow, Recorded};
use crate::storage::clickhouse::observations::ObservationRow;
use crate::storage::clickhouse::row_batch::RowBatch;
use crate::storage::clickhouse::scores::ScoreRow;
use crate::storage::clickhouse::traces::TraceRow;
use crate::storage::queue::{self, DeadLetter, EntityRef, Entry, Location, Message};
use crate::storage::raw_events;
use crate::storage::trace_gate::Held;
use crate::storage::Stores;

/// Objects read at once by one round.
const READ_CONCURRENCY: usize = 16;

/// What a round hands the writer.
pub struct Rebuilt {
    pub round: RoundId,
    /// When the round asked for the deletions of its traces: a deletion recorded after this may
    /// have missed the round's rows (see `writer`).
    pub deletions_checked_at: DateTime<Utc>,
    /// The entries this round settles, acknowledged once the rest is written.
    pub entry_ids: Vec<String>,
    pub rows: RowBatch,
    /// The complete segment list of every entity whose list changed.
    pub lists: Vec<EntityEventsRow>,
    /// Entities whose events were all deleted: their rows go.
    pub deletions: Vec<EntityRef>,
    /// The announced segments of traces and their children: once this round is written, their
    /// traces no longer wait for them (`storage::trace_gate`).
    pub releases: Vec<Held>,
}

/// A stored segment of one entity, wherever it was learnt of.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct StoredSegment {
    object: String,
    offset: u64,
    length: u64,
    received_at_ms: i64,
}

impl StoredSegment {
    fn range(&self) -> Range<u64> {
        self.offset..self.offset + self.length
    }
}

impl From<&Location> for StoredSegment {
    fn from(l: &Location) -> Self {
        StoredSegment {
            object: l.object.clone(),
            offset: l.segment.offset,
            length: l.segment.length,
            received_at_ms: l.received_at_ms,
        }
    }
}

/// A segment's content: its events, `None` when deleted (blank) or its object is gone, or why it
/// could not be read.
type Content = Result<Option<Vec<Event>>, String>;

/// Processes one round. `None` when `stop` was cancelled while ClickHouse was unavailable: the
/// entries stay pending in the queue for the shard's next owner.
pub async fn process(
    stores: &Stores,
    settings: &ConsumerSettings,
    pending: &Pending,
    lookups: &IndexLookups,
    id: RoundId,
    entries: Vec<Entry>,
    stop: &CancellationToken,
) -> Option<Rebuilt> {
    let (announced, undecodable) = read_entries(entries);
    dead_letter_undecodable(stores, id.shard, undecodable).await;
    pending.add(id, announced.segments());

    let question = question_for_announced(&announced);
    let deletions_checked_at = Utc::now();
    let mut known = Known::default();
    known.learn(lookups, pending, question, stop).await?;

    let segments_of = gather_segments(&announced, &known);
    let contents = read_segments(stores, settings, segments_of.values().flatten()).await;

    let question = follow_up_question(&announced, &known, &segments_of, &contents);
    if !question.is_empty() {
        known.learn(lookups, pending, question, stop).await?;
    }

    let Rebuilding {
        rows,
        lists,
        deletions,
        to_blank,
        mut letters,
    } = rebuild_entities(
        settings,
        id.shard,
        &announced,
        &known,
        &segments_of,
        &contents,
    );
    letters.extend(
        blank_deleted_segments(stores, settings, id.shard, &announced, &deletions, to_blank).await,
    );
    dead_letter_entities(stores, id.shard, &letters).await;

    let releases = announced.held_traces();
    Some(Rebuilt {
        round: id,
        deletions_checked_at,
        releases,
        entry_ids: announced.entry_ids,
        rows,
        lists,
        deletions,
    })
}

/// What a round's queue entries announce, gathered by entity so that an entity named by several
/// entries is rebuilt once.
struct Announced {
    /// The segments the entries name, by entity; none for an entity queued only for a rebuild.
    locations: BTreeMap<EntityRef, Vec<Location>>,
    /// Traces with events in this round's objects, and when they were last received (Unix ms).
    traces_present: HashMap<EntityRef, i64>,
    /// The entries this round settles.
    entry_ids: Vec<String>,
}

impl Announced {
    /// Every announced segment with its entity.
    fn segments(&self) -> impl Iterator<Item = (&EntityRef, &Location)> + '_ {
        self.locations
            .iter()
            .flat_map(|(entity, locations)| locations.iter().map(move |l| (entity, l)))
    }

    /// Every announced segment of a trace or of one of its children, as its trace's gate holds
    /// it. The round settles them all: written, deleted or dead-lettered, none is pending after it.
    fn held_traces(&self) -> Vec<Held> {
        self.segments()
            .filter_map(|(entity, location)| {
                Held::of_segment(&entity.project_id, &location.object, &location.segment)
            })
            .collect()
    }

    /// Whether the entries named segments of `entity`, not only a rebuild.
    fn names_segments_of(&self, entity: &EntityRef) -> bool {
        self.locations.get(entity).is_some_and(|l| !l.is_empty())
    }

    /// Whether the entries named a segment of `entity` in `object`.
    fn names_segment_in(&self, entity: &EntityRef, object: &str) -> bool {
        self.locations
            .get(entity)
            .is_some_and(|l| l.iter().any(|l| l.object == object))
    }
}

/// A queue entry that cannot be decoded: its id and its raw content.
type Undecodable = (String, String);

/// Reads what the entries announce; those that cannot be decoded are set apart, as no later
/// round could read them either.
fn read_entries(entries: Vec<Entry>) -> (Announced, Vec<Undecodable>) {
    let mut locations: BTreeMap<EntityRef, Vec<Location>> = BTreeMap::new();
    let mut traces_present: HashMap<EntityRef, i64> = HashMap::new();
    let mut entry_ids = Vec::new();
    let mut undecodable = Vec::new();
    for entry in entries {
        match entry.message {
            Ok(Message::Events(message)) => {
                for segment in message.segments {
                    let entity = EntityRef {
                        project_id: message.project_id.clone(),
                        kind: segment.kind,
                        entity_id: segment.entity_id.clone(),
                    };
                    locations.entry(entity).or_default().push(Location {
                        object: message.object.clone(),
                        received_at_ms: message.received_at_ms,
                        segment,
                    });
                }
                for trace in message.traces {
                    let trace = trace_ref(&message.project_id, &trace);
                    let at = traces_present.entry(trace).or_insert(i64::MIN);
                    *at = (*at).max(message.received_at_ms);
                }
                entry_ids.push(entry.id);
            }
            Ok(Message::Rebuild(message)) => {
                for (kind, entity_id) in message.entities {
                    locations
                        .entry(EntityRef {
                            project_id: message.project_id.clone(),
                            kind,
                            entity_id,
                        })
                        .or_default();
                }
                entry_ids.push(entry.id);
            }
            Err(raw) => undecodable.push((entry.id, raw)),
        }
    }
    let announced = Announced {
        locations,
        traces_present,
        entry_ids,
    };
    (announced, undecodable)
}

/// The round's first question, which is its only one in most rounds: the announced entities, the
/// traces their segments name that this round's objects do not show (whether they exist decides
/// wrapper traces), and the deletions since the oldest announced segment.
fn question_for_announced(announced: &Announced) -> Keys {
    let mut question = Keys::default();
    for (entity, locations) in &announced.locations {
        question.entities.insert(entity.clone());
        for location in locations {
            question.deletions_since = Some(
                question
                    .deletions_since
                    .map_or(location.received_at_ms, |s| s.min(location.received_at_ms)),
            );
            if let Some(trace) = &location.segment.trace_id {
                let trace = trace_ref(&entity.project_id, trace);
                if !announced.traces_present.contains_key(&trace) {
                    question.entities.insert(trace);
                }
            }
        }
    }
    question
}

/// Every stored segment of each entity of a round, each once.
type SegmentsOf = BTreeMap<EntityRef, BTreeSet<StoredSegment>>;

/// Gathers every segment each announced entity ever had (announced, pending or recorded), as a
/// record is always rebuilt from all of its entity's events.
fn gather_segments(announced: &Announced, known: &Known) -> SegmentsOf {
    let mut segments_of = SegmentsOf::new();
    for (entity, locations) in &announced.locations {
        let all = segments_of.entry(entity.clone()).or_default();
        all.extend(locations.iter().map(StoredSegment::from));
        all.extend(known.segments(entity));
    }
    segments_of
}

/// What the first answer left open, found only once the segments are read: the traces of
/// observations whose segments did not name them, and deletions older than those asked for, as
/// recorded segments can be older than every announced one.
fn follow_up_question(
    announced: &Announced,
    known: &Known,
    segments_of: &SegmentsOf,
    contents: &HashMap<StoredSegment, Content>,
) -> Keys {
    let mut question = Keys::default();
    // Deletions since the oldest segment of any entity of the round, not only the announced ones.
    let oldest = segments_of
        .values()
        .flatten()
        .map(|s| s.received_at_ms)
        .min();
    if let Some(oldest) = oldest {
        if known
            .deletions_since
            .is_none_or(|known_since| oldest < known_since)
        {
            question.deletions_since = Some(oldest);
        }
    }
    for (entity, segments) in segments_of {
        if entity.kind == EntityKind::Trace {
            continue;
        }
        let Ok(events) = live_events(segments, contents, i64::MIN) else {
            continue;
        };
        let Some(trace) = trace_of(entity, &events.kept) else {
            continue;
        };
        if entity.kind == EntityKind::Observation
            && !announced.traces_present.contains_key(&trace)
            && !known.looked_up.contains(&trace)
        {
            question.entities.insert(trace);
        }
    }
    question
}

/// What rebuilding a round's entities came to, before the deleted events are blanked.
#[derive(Default)]
struct Rebuilding {
    rows: RowBatch,
    /// The complete segment list of every entity whose list changed.
    lists: Vec<EntityEventsRow>,
    /// Entities whose events were all deleted.
    deletions: Vec<EntityRef>,
    /// The byte ranges of deleted events, by object.
    to_blank: BTreeMap<String, Vec<Range<u64>>>,
    /// Entities that could not be rebuilt.
    letters: Vec<DeadLetter>,
}

/// Rebuilds each entity from all of its events into rows and a segment list, and collects what
/// deletions leave to blank, so that one entity that cannot be read does not hold up the others.
fn rebuild_entities(
    settings: &ConsumerSettings,
    shard: u32,
    announced: &Announced,
    known: &Known,
    segments_of: &SegmentsOf,
    contents: &HashMap<StoredSegment, Content>,
) -> Rebuilding {
    let mut rebuilding = Rebuilding::default();
    let mut wrappers = BTreeSet::new();
    let written_at = write_clock_tick();
    for (entity, segments) in segments_of {
        let result = rebuild_entity(
            entity,
            segments,
            contents,
            known,
            announced,
            written_at,
            &mut rebuilding.rows,
            &mut wrappers,
        );
        let entity_result = match result {
            Ok(entity_result) => entity_result,
            Err(error) => {
                rebuilding
                    .letters
                    .push(letter(settings, shard, entity, announced, error));
                continue;
            }
        };
        if entity_result.deleted {
            rebuilding.deletions.push(entity.clone());
        }
        for segment in &entity_result.to_blank {
            rebuilding
                .to_blank
                .entry(segment.object.clone())
                .or_default()
                .push(segment.range());
        }
        // The entity's list changes when segments were announced, deleted or found gone.
        if announced.names_segments_of(entity)
            || !entity_result.to_blank.is_empty()
            || !entity_result.gone.is_empty()
        {
            rebuilding
                .lists
                .push(segment_list(entity, segments, &entity_result));
        }
    }
    rebuilding
}

/// The entity's complete segment list after the round, which replaces the recorded one: every
/// segment but those deleted now or found gone.
fn segment_list(
    entity: &EntityRef,
    segments: &BTreeSet<StoredSegment>,
    entity_result: &EntityResult,
) -> EntityEventsRow {
    let dropped: BTreeSet<&StoredSegment> = entity_result
        .to_blank
        .iter()
        .chain(&entity_result.gone)
        .copied()
        .collect();
    EntityEventsRow {
        key: entity_events::key_of(entity),
        trace_id: entity_result.trace_id.clone().unwrap_or_default(),
        segments: segments
            .iter()
            .filter(|s| !dropped.contains(s))
            .map(|s| (s.object.clone(), s.offset, s.length, s.received_at_ms))
            .collect(),
    }
}

/// Overwrites deleted events with spaces, one object at a time, so that they are gone from blob
/// storage too. An object that cannot be blanked dead-letters the deleted entities announced in
/// it, to be retried from there; their rows are deleted meanwhile.
async fn blank_deleted_segments(
    stores: &Stores,
    settings: &ConsumerSettings,
    shard: u32,
    announced: &Announced,
    deletions: &[EntityRef],
    to_blank: BTreeMap<String, Vec<Range<u64>>>,
) -> Vec<DeadLetter> {
    let mut letters = Vec::new();
    for (object, ranges) in to_blank {
        let path = Path::from(object.as_str());
        let blanked = with_retries(settings, || {
            raw_events::blank_segments(&stores.blob, &stores.redis, &path, &ranges)
        })
        .await;
        if let Err(err) = blanked {
            tracing::error!(%object, error = format!("{err:#}"), "cannot delete stored events");
            for entity in deletions {
                if announced.names_segment_in(entity, &object) {
                    letters.push(letter(
                        settings,
                        shard,
                        entity,
                        announced,
                        format!("{err:#}"),
                    ));
                }
            }
        }
    }
    letters
}

/// Records the entities that could not be rebuilt in the dead letters, from where they can be
/// retried (`queue retry`) without holding up their shard meanwhile.
async fn dead_letter_entities(stores: &Stores, shard: u32, letters: &[DeadLetter]) {
    if letters.is_empty() {
        return;
    }
    for letter in letters {
        tracing::error!(?letter, "entity moved to the dead letters");
    }
    if let Err(err) = queue::dead_letter(&stores.redis, shard, letters, &[]).await {
        // The entries stay pending and are processed again by the shard's next owner.
        tracing::error!(error = format!("{err:#}"), "cannot record dead letters");
    }
}

/// What a round asks ClickHouse.
#[derive(Default)]
struct Keys {
    entities: BTreeSet<EntityRef>,
    /// Deletions at or after this moment (Unix ms) are wanted.
    deletions_since: Option<i64>,
}

impl Keys {
    fn is_empty(&self) -> bool {
        self.entities.is_empty() && self.deletions_since.is_none()
    }
}

/// What the index, the deletions and the pending rounds say about the entities of a round.
#[derive(Default)]
struct Known {
    looked_up: BTreeSet<EntityRef>,
    /// Deletions at or after this moment (Unix ms) are known.
    deletions_since: Option<i64>,
    recorded: BTreeMap<EntityRef, Recorded>,
    deleted_at: BTreeMap<EntityRef, DateTime<Utc>>,
    pending: HashMap<EntityRef, Vec<Location>>,
}

impl Known {
    /// Learns about `keys`: the pending snapshot first, then the index (see `pending`'s ordering
    /// rule). Waits for ClickHouse as long as it is away; `None` only when stopped meanwhile.
    async fn learn(
        &mut self,
        lookups: &IndexLookups,
        pending: &Pending,
        keys: Keys,
        stop: &CancellationToken,
    ) -> Option<()> {
        self.pending.extend(pending.snapshot(&keys.entities));
        let question = || Question {
            entities: keys.entities.iter().cloned().collect(),
            deletions_since: keys
                .deletions_since
                .and_then(DateTime::from_timestamp_millis),
        };
        let mut backoff = Duration::from_millis(100);
        let answer = loop {
            match lookups.ask(question()).await {
                Ok(answer) => break answer,
                Err(err) => {
                    tracing::warn!(error = %err, "event index lookup failed; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return None,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        for key in &keys.entities {
            if let Some(recorded) = answer.recorded.get(key) {
                self.recorded.insert(key.clone(), recorded.clone());
            }
        }
        if let Some(since) = keys.deletions_since {
            for (trace, at) in &answer.deleted_at {
                let latest = self.deleted_at.entry(trace.clone()).or_insert(*at);
                *latest = (*latest).max(*at);
            }
            self.deletions_since = Some(self.deletions_since.map_or(since, |s| s.min(since)));
        }
        self.looked_up.extend(keys.entities);
        Some(())
    }

    fn segments(&self, entity: &EntityRef) -> Vec<StoredSegment> {
        let recorded = self.recorded.get(entity).into_iter().flat_map(|r| {
            r.segments.iter().map(|s| StoredSegment {
                object: s.object.clone(),
                offset: s.offset,
                length: s.length,
                received_at_ms: s.received_at.timestamp_millis(),
            })
        });
        let pending = self
            .pending
            .get(entity)
            .into_iter()
            .flatten()
            .map(StoredSegment::from);
        recorded.chain(pending).collect()
    }

    /// Events of `trace` and its children received up to this instant (Unix ms) are deleted.
    fn deleted_before(&self, trace: &EntityRef) -> i64 {
        self.deleted_at
            .get(trace)
            .map_or(i64::MIN, DateTime::timestamp_millis)
    }
}

fn trace_ref(project_id: &str, trace_id: &str) -> EntityRef {
    EntityRef {
        project_id: project_id.to_string(),
        kind: EntityKind::Trace,
        entity_id: trace_id.to_string(),
    }
}

/// Reads every distinct segment, grouped by object, retrying transient failures.
async fn read_segments<'a>(
    stores: &Stores,
    settings: &ConsumerSettings,
    segments: impl Iterator<Item = &'a StoredSegment>,
) -> HashMap<StoredSegment, Content> {
    let mut by_object: BTreeMap<String, BTreeSet<StoredSegment>> = BTreeMap::new();
    for segment in segments {
        by_object
            .entry(segment.object.clone())
            .or_default()
            .insert(segment.clone());
    }
    let reads = by_object
        .into_iter()
        .map(|(object, segments)| read_object(stores, settings, object, segments));
    futures::stream::iter(reads)
        .buffer_unordered(READ_CONCURRENCY)
        .flat_map(futures::stream::iter)
        .collect()
        .await
}

async fn read_object(
    stores: &Stores,
    settings: &ConsumerSettings,
    object: String,
    segments: BTreeSet<StoredSegment>,
) -> Vec<(StoredSegment, Content)> {
    let ranges: Vec<Range<u64>> = segments.iter().map(StoredSegment::range).collect();
    let path = Path::from(object);
    let read = with_retries(settings, || stores.blob.get_ranges(&path, &ranges)).await;
    match read {
        Ok(Some(parts)) => segments
            .into_iter()
            .zip(parts)
            .map(|(s, bytes)| {
                let content = decode(&bytes);
                (s, content)
            })
            .collect(),
        // Written by a request that then failed, and removed: no events.
        Ok(None) => segments.into_iter().map(|s| (s, Ok(None))).collect(),
        Err(err) => segments
            .into_iter()
            .map(|s| (s, Err(format!("{err:#}"))))
            .collect(),
    }
}

/// A segment's bytes to events. Stored envelopes passed validation when they were accepted; one
/// that no longer parses (an older format) is skipped rather than blocking the entity forever.
fn decode(bytes: &[u8]) -> Content {
    let Some(line) = raw_events::decode_segment_raw(bytes).map_err(|e| format!("{e:#}"))? else {
        return Ok(None);
    };
    let mut events = Vec::with_capacity(line.events.len());
    for envelope in &line.events {
        match parse_envelope_text(envelope.get()) {
            Ok(Parsed::Event(event)) => events.push(*event),
            Ok(Parsed::SdkLog { .. }) => {}
            Err(err) => tracing::warn!(id = %line.id, error = %err.message, "stored event skipped"),
        }
    }
    Ok(Some(events))
}

/// An entity's events split by a deletion instant.
struct LiveEvents<'a> {
    kept: Vec<&'a Event>,
    /// Segments with events received up to the deletion: to be overwritten.
    dropped: Vec<&'a StoredSegment>,
    /// Segments already deleted (blank) or whose object is gone.
    gone: Vec<&'a StoredSegment>,
}

fn live_events<'a>(
    segments: &'a BTreeSet<StoredSegment>,
    contents: &'a HashMap<StoredSegment, Content>,
    deleted_before: i64,
) -> Result<LiveEvents<'a>, String> {
    let mut live = LiveEvents {
        kept: Vec::new(),
        dropped: Vec::new(),
        gone: Vec::new(),
    };
    for segment in segments {
        match contents.get(segment) {
            Some(Ok(Some(events))) if segment.received_at_ms > deleted_before => {
                live.kept.extend(events)
            }
            Some(Ok(Some(_))) => live.dropped.push(segment),
            Some(Ok(None)) => live.gone.push(segment),
            Some(Err(error)) => return Err(error.clone()),
            None => return Err("a segment was not read".to_string()),
        }
    }
    Ok(live)
}

/// The trace an observation's or score's events belong to.
fn trace_of(entity: &EntityRef, events: &[&Event]) -> Option<EntityRef> {
    let id = &entity.entity_id;
    let trace_id = match entity.kind {
        EntityKind::Trace => None,
        EntityKind::Observation => merge::observation_trace_id(id, events.iter().copied()),
        EntityKind::Score => merge::score_trace_id(id, events.iter().copied()),
    }?;
    Some(trace_ref(&entity.project_id, &trace_id))
}

/// What rebuilding one entity came to.
struct EntityResult<'a> {
    trace_id: Option<String>,
    deleted: bool,
    to_blank: Vec<&'a StoredSegment>,
    gone: Vec<&'a StoredSegment>,
}

#[allow(clippy::too_many_arguments)]
fn rebuild_entity<'a>(
    entity: &EntityRef,
    segments: &'a BTreeSet<StoredSegment>,
    contents: &'a HashMap<StoredSegment, Content>,
    known: &Known,
    announced: &Announced,
    written_at: DateTime<Utc>,
    rows: &mut RowBatch,
    wrappers: &mut BTreeSet<EntityRef>,
) -> Result<EntityResult<'a>, String> {
    let traces_present = &announced.traces_present;
    let (project, id) = (entity.project_id.as_str(), entity.entity_id.as_str());
    let everything = live_events(segments, contents, i64::MIN)?;
    let trace = trace_of(entity, &everything.kept);
    // A deletion of the entity itself, or of its trace.
    let deleted_before = match &trace {
        Some(trace) => known
            .deleted_before(trace)
            .max(known.deleted_before(entity)),
        None => known.deleted_before(entity),
    };
    // Nearly always nothing was deleted: the events already read are the live ones.
    let live = if deleted_before == i64::MIN {
        everything
    } else {
        live_events(segments, contents, deleted_before)?
    };
    let mut result = EntityResult {
        trace_id: trace.as_ref().map(|t| t.entity_id.clone()),
        deleted: false,
        to_blank: live.dropped.clone(),
        gone: live.gone.clone(),
    };
    let written = match entity.kind {
        EntityKind::Trace => match merge::merge_trace(project, id, live.kept.iter().copied()) {
            Some(trace) => {
                let row = TraceRow {
                    updated_at: written_at,
                    ..TraceRow::from(trace)
                };
                let prior = prior_events(entity, segments, contents, deleted_before, announced)?
                    .and_then(|events| merge::merge_trace(project, id, events));
                if let Some(prior) = prior.map(TraceRow::from) {
                    if prior.sorting_key() != row.sorting_key() {
                        rows.traces.push(prior.tombstone_before(&row));
                    }
                }
                rows.traces.push(row);
                true
            }
            None => false,
        },
        EntityKind::Score => match merge::merge_score(project, id, live.kept.iter().copied()) {
            Some(score) => {
                let row = ScoreRow {
                    updated_at: written_at,
                    ..ScoreRow::from(score)
                };
                let prior = prior_events(entity, segments, contents, deleted_before, announced)?
                    .and_then(|events| merge::merge_score(project, id, events));
                if let Some(prior) = prior.map(ScoreRow::from) {
                    if prior.sorting_key() != row.sorting_key() {
                        rows.scores.push(prior.tombstone_before(&row));
                    }
                }
                rows.scores.push(row);
                true
            }
            None => false,
        },
        EntityKind::Observation => {
            match merge::merge_observation(project, id, live.kept.iter().copied()) {
                Some(observation) => {
                    let trace = trace_ref(project, &observation.trace_id);
                    if !trace_has_live_events(&trace, known, traces_present)
                        && wrappers.insert(trace)
                    {
                        rows.traces
                            .push(TraceRow::from(merge::wrapper_trace(project, &observation)));
                    }
                    let row = ObservationRow {
                        updated_at: written_at,
                        ..ObservationRow::from(observation)
                    };
                    let prior =
                        prior_events(entity, segments, contents, deleted_before, announced)?
                            .and_then(|events| merge::merge_observation(project, id, events));
                    if let Some(prior) = prior.map(ObservationRow::from) {
                        if prior.sorting_key() != row.sorting_key() {
                            rows.observations.push(prior.tombstone_before(&row));
                        }
                    }
                    rows.observations.push(row);
                    true
                }
                None => false,
            }
        }
    };
    result.deleted = !written && (!live.dropped.is_empty() || !live.gone.is_empty());
    Ok(result)
}

/// When this round writes its rows: their `updated_at`, the tie-break of the reads that pick each
/// id's newest version (`ORDER BY event_ts DESC, updated_at DESC`). A late event older than an
/// entity's newest leaves the new row's `event_ts` equal to the previous row's, so only this time
/// tells them apart. It is the wall clock in milliseconds (the column's precision), but strictly
/// later than every earlier round of this process, so two rounds in one millisecond still
/// differ; rounds of an entity in different processes are a lease apart.
fn write_clock_tick() -> DateTime<Utc> {
    static LAST: AtomicI64 = AtomicI64::new(i64::MIN);
    let now = Utc::now().timestamp_millis();
    let next = |last: i64| now.max(last.saturating_add(1));
    let (Ok(previous) | Err(previous)) =
        LAST.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(next(last))
        });
    DateTime::from_timestamp_millis(next(previous)).unwrap_or_else(Utc::now)
}

/// The live events of `entity` known before this round (every segment but those its entries
/// announced), from which the previous round built the row ClickHouse holds now; `None` when the
/// round announced all of them (nothing was written before) or none (a rebuild: the key cannot
/// have moved).
///
/// Traces, observations and scores are sorted by their date (and type or name), which a later
/// event can change: the row then lands under a new sorting key, and ReplacingMergeTree would
/// keep the row under the old one too. Writing a deleted copy of the previous row under its key,
/// newer than it, leaves `FINAL` one live row per entity (for traces: one built from their own
/// events, beside any wrapper rows), so aggregate reads can use it rather than picking each id's
/// newest version themselves.
fn prior_events<'a>(
    entity: &EntityRef,
    segments: &'a BTreeSet<StoredSegment>,
    contents: &'a HashMap<StoredSegment, Content>,
    deleted_before: i64,
    announced: &Announced,
) -> Result<Option<Vec<&'a Event>>, String> {
    let Some(locations) = announced.locations.get(entity).filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    let announced: BTreeSet<StoredSegment> = locations.iter().map(StoredSegment::from).collect();
    let mut prior = segments.difference(&announced).peekable();
    if prior.peek().is_none() {
        return Ok(None);
    }
    let mut events = Vec::new();
    for segment in prior {
        // As `live_events` reads them: deleted, blank and gone segments hold no live events.
        match contents.get(segment) {
            Some(Ok(Some(kept))) if segment.received_at_ms > deleted_before => events.extend(kept),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.clone()),
            None => return Err("a segment was not read".to_string()),
        }
    }
    Ok(Some(events))
}

/// Whether a trace has events of its own received after its latest deletion.
fn trace_has_live_events(
    trace: &EntityRef,
    known: &Known,
    traces_present: &HashMap<EntityRef, i64>,
) -> bool {
    let deleted_before = known.deleted_before(trace);
    traces_present
        .get(trace)
        .is_some_and(|at| *at > deleted_before)
        || known
            .segments(trace)
            .iter()
            .any(|s| s.received_at_ms > deleted_before)
}

/// A dead letter for an entity of this round, with the segments its entries announced.
fn letter(
    settings: &ConsumerSettings,
    shard: u32,
    entity: &EntityRef,
    announced: &Announced,
    error: String,
) -> DeadLetter {
    DeadLetter {
        shard,
        entity: Some(entity.clone()),
        locations: announced.locations.get(entity).cloned().unwrap_or_default(),
        raw: None,
        error,
        attempts: settings.max_attempts,
        failed_at: Utc::now(),
    }
}

async fn dead_letter_undecodable(stores: &Stores, shard: u32, undecodable: Vec<(String, String)>) {
    if undecodable.is_empty() {
        return;
    }
    let (ids, letters): (Vec<String>, Vec<DeadLetter>) = undecodable
        .into_iter()
        .map(|(id, raw)| {
            let letter = DeadLetter {
                shard,
                entity: None,
                locations: Vec::new(),
                raw: Some(raw),
                error: "undecodable queue entry".into(),
                attempts: 1,
                failed_at: Utc::now(),
            };
            (id, letter)
        })
        .unzip();
    if let Err(err) = queue::dead_letter(&stores.redis, shard, &letters, &ids).await {
        tracing::error!(
            error = format!("{err:#}"),
            "cannot dead-letter undecodable entries"
        );
    }
}

/// Runs `attempt` up to `max_attempts` times with exponential backoff.
async fn with_retries<T, F, Fut>(settings: &ConsumerSettings, mut attempt: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(err) if tries >= settings.max_attempts => return Err(err),
            Err(err) => {
                tracing::warn!(
                    tries,
                    error = format!("{err:#}"),
                    "blob storage failed; retrying"
                );
                tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(tries.min(6)))).await;
                tries += 1;
            }
        }
    }
}
