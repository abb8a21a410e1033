//! The worker's index of stored events, against the real ClickHouse-compatible server: a lookup
//! finds exactly the entities recorded, whatever their ids contain, as the keys travel to
//! ClickHouse inside one string literal.

use chrono::{TimeZone, Utc};
use langfuse_rs::domain::entity::EntityKind;
use langfuse_rs::storage::clickhouse::entity_events::{self, EntityEventsRow};
use langfuse_rs::storage::queue::EntityRef;

use crate::helpers::TestConfig;

fn entity(kind: EntityKind, id: &str) -> EntityRef {
    EntityRef {
        project_id: "p'1\\".to_string(),
        kind,
        entity_id: id.to_string(),
    }
}

#[tokio::test]
async fn a_lookup_finds_exactly_the_recorded_entities_whatever_their_ids_contain() {
    let config = TestConfig::new().await;
    config.migrate().await;
    let ch = langfuse_rs::storage::clickhouse::connect(&config.settings().clickhouse);

    let odd_ids = [
        "plain",
        "with,comma",
        "with\nnewline",
        "with\\nescaped",
        "quote'd \"both\"",
        "back\\slash\\",
        "tab\tand\r\u{1}control",
        "ünïcödé 🦀",
        "`tick`",
        "",
    ];
    let recorded: Vec<EntityRef> = odd_ids
        .iter()
        .map(|id| entity(EntityKind::Observation, id))
        .collect();
    let rows: Vec<EntityEventsRow> = recorded
        .iter()
        .enumerate()
        .map(|(i, e)| EntityEventsRow {
            key: entity_events::key_of(e),
            trace_id: format!("trace-{i}"),
            segments: vec![(format!("events/{i}.jsonl"), i as u64, 10, 1_700_000_000_000)],
        })
        .collect();
    entity_events::upsert(&ch, &rows).await.unwrap();

    // The same ids as another kind, and ids that only look like a recorded one, are not recorded.
    let mut asked = recorded.clone();
    asked.extend(odd_ids.iter().map(|id| entity(EntityKind::Trace, id)));
    asked.push(entity(EntityKind::Observation, "with"));
    asked.push(entity(EntityKind::Observation, "comma"));
    asked.push(entity(EntityKind::Observation, "with\\"));
    let found = entity_events::lookup(&ch, &asked, None).await.unwrap();

    assert_eq!(found.recorded.len(), recorded.len(), "{:?}", found.recorded);
    for (i, e) in recorded.iter().enumerate() {
        let r = found
            .recorded
            .get(e)
            .unwrap_or_else(|| panic!("{e:?} not found"));
        assert_eq!(r.trace_id.as_deref(), Some(format!("trace-{i}").as_str()));
        assert_eq!(r.segments.len(), 1);
        assert_eq!(r.segments[0].object, format!("events/{i}.jsonl"));
        assert_eq!(r.segments[0].offset, i as u64);
        assert_eq!(
            r.segments[0].received_at,
            Utc.timestamp_millis_opt(1_700_000_000_000).unwrap()
        );
    }
}

#[tokio::test]
async fn a_lookup_of_more_keys_than_the_default_query_size_holds_finds_them_all() {
    let config = TestConfig::new().await;
    config.migrate().await;
    let ch = langfuse_rs::storage::clickhouse::connect(&config.settings().clickhouse);

    // About 400 KB of keys: past ClickHouse's default `max_query_size` of 256 KiB.
    let long_id = "x".repeat(180);
    let asked: Vec<EntityRef> = (0..2_000)
        .map(|i| entity(EntityKind::Observation, &format!("{long_id}-{i}")))
        .collect();
    let rows: Vec<EntityEventsRow> = asked
        .iter()
        .step_by(7)
        .map(|e| EntityEventsRow {
            key: entity_events::key_of(e),
            trace_id: String::new(),
            segments: vec![("events/o.jsonl".to_string(), 0, 1, 1_700_000_000_000)],
        })
        .collect();
    entity_events::upsert(&ch, &rows).await.unwrap();

    let found = entity_events::lookup(&ch, &asked, None).await.unwrap();
    assert_eq!(found.recorded.len(), rows.len());
    assert!(asked
        .iter()
        .step_by(7)
        .all(|e| found.recorded.contains_key(e)));
}

#[tokio::test]
async fn a_lookup_whose_keys_grow_when_escaped_past_the_default_query_size_finds_them_all() {
    let config = TestConfig::new().await;
    config.migrate().await;
    let ch = langfuse_rs::storage::clickhouse::connect(&config.settings().clickhouse);

    // About 195 KB of keys, each backslash of which JSON doubles and the literal doubles again:
    // about 375 KB as sent, past ClickHouse's default `max_query_size` of 256 KiB.
    let backslashes = "\\".repeat(180);
    let asked: Vec<EntityRef> = (0..500)
        .map(|i| entity(EntityKind::Observation, &format!("{backslashes}{i}")))
        .collect();
    let rows: Vec<EntityEventsRow> = asked
        .iter()
        .map(|e| EntityEventsRow {
            key: entity_events::key_of(e),
            trace_id: String::new(),
            segments: vec![("events/o.jsonl".to_string(), 0, 1, 1_700_000_000_000)],
        })
        .collect();
    entity_events::upsert(&ch, &rows).await.unwrap();

    let found = entity_events::lookup(&ch, &asked, None).await.unwrap();
    assert_eq!(found.recorded.len(), rows.len());
    assert!(asked.iter().all(|e| found.recorded.contains_key(e)));
}
