use std::time::Duration;

use fred::prelude::*;
use langfuse_rs::storage::redis::{connect, hash_slot};

use crate::helpers::{unique, TestApp, TestConfig};

/// Round trips and a script over two keys of one slot tag: what every Redis user of the
/// application relies on, on both topologies.
async fn exercise(settings: &langfuse_rs::config::Settings) {
    let store = connect(&settings.redis).await.expect("connect");
    store.ping().await.unwrap();

    let tag = unique("tag");
    let a = store.keyspace.key("test", &tag, Some("a"));
    let b = store.keyspace.key("test", &tag, Some("b"));
    assert_eq!(hash_slot(&a), hash_slot(&b));

    store
        .set_json(&a, &serde_json::json!({"n": 1}), Duration::from_secs(30))
        .await
        .unwrap();
    let read: Option<serde_json::Value> = store.get_json(&a).await.unwrap();
    assert_eq!(read, Some(serde_json::json!({"n": 1})));

    // A script touching both keys: on a cluster this fails with CROSSSLOT unless the keys share a
    // slot, which the keyspace guarantees.
    let moved: i64 = store
        .client
        .eval(
            "local v = redis.call('GET', KEYS[1]); redis.call('SET', KEYS[2], v); redis.call('DEL', KEYS[1]); return 1",
            vec![a.clone(), b.clone()],
            Vec::<String>::new(),
        )
        .await
        .unwrap();
    assert_eq!(moved, 1);
    assert_eq!(store.get_json::<serde_json::Value>(&a).await.unwrap(), None);
    assert_eq!(
        store.get_json::<serde_json::Value>(&b).await.unwrap(),
        Some(serde_json::json!({"n": 1}))
    );
    store.delete(&b).await.unwrap();
    assert_eq!(store.get_json::<serde_json::Value>(&b).await.unwrap(), None);
    store.quit().await;
}

#[tokio::test]
async fn standalone_redis_works() {
    let config = TestConfig::new().await;
    exercise(&config.settings()).await;
}

#[tokio::test]
async fn redis_cluster_works() {
    let mut config = TestConfig::new().await;
    config.use_redis_cluster();
    exercise(&config.settings()).await;
}

#[tokio::test]
async fn the_cluster_really_spreads_slot_tags_over_nodes() {
    // Guards the test above against a "cluster" of one node that would accept anything.
    let mut config = TestConfig::new().await;
    config.use_redis_cluster();
    let store = connect(&config.settings().redis).await.unwrap();
    let nodes = store
        .client
        .cached_cluster_state()
        .expect("cluster state")
        .unique_primary_nodes();
    assert!(nodes.len() >= 3, "{nodes:?}");
    let result: Result<i64, Error> = store
        .client
        .eval("return 1", vec!["{a}x", "{b}y"], Vec::<String>::new())
        .await;
    if hash_slot("{a}x") != hash_slot("{b}y") {
        assert!(
            result.is_err(),
            "cross-slot script must be refused by a real cluster"
        );
    }
}

#[tokio::test]
async fn the_application_serves_and_is_ready_on_a_cluster() {
    let mut config = TestConfig::new().await;
    config.use_redis_cluster();
    let app = TestApp::spawn(config).await;
    assert_eq!(app.get("/api/public/ready").await.status(), 200);
}

/// The gate that holds a trace back until what was accepted with it is written: held while any
/// segment is pending, readable once all are released, and readable for good after that, but
/// only once the trace's own events were written.
async fn trace_gates_hold_until_everything_is_released(settings: &langfuse_rs::config::Settings) {
    use langfuse_rs::storage::trace_gate::{hold, is_readable, release, Held};
    let store = connect(&settings.redis).await.expect("connect");
    let project = unique("p");
    // Braces and any length: trace ids are the client's text.
    let trace = format!("{{t}}-{}", "x".repeat(300));
    let own = |offset| Held::of_trace(&project, &trace, "events/a.jsonl", offset);
    let child = |offset| Held::of_child(&project, &trace, "events/a.jsonl", offset);
    let readable = || is_readable(&store, &project, &trace);

    assert!(readable().await.unwrap(), "nothing held");
    // A score flushed before its trace, as the SDKs' flows do: released before the trace exists.
    hold(&store, &[child(0)]).await.unwrap();
    assert!(!readable().await.unwrap());
    release(&store, &[child(0)]).await.unwrap();
    assert!(readable().await.unwrap(), "nothing held any more");
    // The trace's first request is still held whole: the score made nothing readable for good.
    hold(&store, &[own(10), child(20), child(30)])
        .await
        .unwrap();
    assert!(!readable().await.unwrap());
    release(&store, &[own(10)]).await.unwrap();
    assert!(
        !readable().await.unwrap(),
        "the trace is written, its children are not"
    );
    release(&store, &[child(20)]).await.unwrap();
    // A release repeated after a crash changes nothing.
    release(&store, &[child(20)]).await.unwrap();
    assert!(!readable().await.unwrap(), "one left");
    release(&store, &[child(30)]).await.unwrap();
    assert!(readable().await.unwrap());
    // Readable for good: a later request does not hide it again.
    hold(&store, &[child(40)]).await.unwrap();
    assert!(readable().await.unwrap());

    // A trace with no events of its own (a wrapper of its observations) is readable once its
    // request is written, and held again by the next one.
    let wrapper = |offset| Held::of_child(&project, "wrapper", "events/b.jsonl", offset);
    hold(&store, &[wrapper(0), wrapper(10)]).await.unwrap();
    assert!(!is_readable(&store, &project, "wrapper").await.unwrap());
    release(&store, &[wrapper(0), wrapper(10)]).await.unwrap();
    assert!(is_readable(&store, &project, "wrapper").await.unwrap());
    hold(&store, &[wrapper(20)]).await.unwrap();
    assert!(!is_readable(&store, &project, "wrapper").await.unwrap());
    store.quit().await;
}

#[tokio::test]
async fn trace_gates_work_on_standalone_redis() {
    let config = TestConfig::new().await;
    trace_gates_hold_until_everything_is_released(&config.settings()).await;
}

#[tokio::test]
async fn trace_gates_work_on_redis_cluster() {
    let mut config = TestConfig::new().await;
    config.use_redis_cluster();
    trace_gates_hold_until_everything_is_released(&config.settings()).await;
}
