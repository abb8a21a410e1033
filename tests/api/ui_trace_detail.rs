//! The web UI's trace page, its observation panels, the score form and the sessions pages over
//! HTTP, on traces sent through the public ingestion API: the tree, the panel's rendering,
//! access (404 across projects, a VIEWER's refused score), CSRF, and the timing of large traces.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{envelope, eventually, location, ApiKey, TestApp, TestConfig, UiClient};

const OWNER_EMAIL: &str = "owner@example.com";
const OWNER_PASSWORD: &str = "initial password";
const PROJECT: &str = "/project/boot-project";
const TRACE: &str = "/project/boot-project/traces/t-chat";
const PAYLOAD: &str = "<script>window.__pwned=1</script><img src=x onerror=alert(1)>";

fn at(minutes_ago: i64, plus_ms: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes_ago)
        + chrono::Duration::milliseconds(plus_ms))
    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) async fn boot_app() -> (TestApp, ApiKey) {
    let mut config = TestConfig::new().await;
    config
        .set("LANGFUSE_INIT_ORG_ID", "boot-org")
        .set("LANGFUSE_INIT_ORG_NAME", "Acme Research")
        .set("LANGFUSE_INIT_PROJECT_ID", "boot-project")
        .set("LANGFUSE_INIT_PROJECT_NAME", "Support Assistant")
        .set("LANGFUSE_INIT_PROJECT_PUBLIC_KEY", "pk-lf-boot")
        .set("LANGFUSE_INIT_PROJECT_SECRET_KEY", "sk-lf-boot-secret")
        .set("LANGFUSE_INIT_USER_EMAIL", OWNER_EMAIL)
        .set("LANGFUSE_INIT_USER_NAME", "Olivia Owner")
        .set("LANGFUSE_INIT_USER_PASSWORD", OWNER_PASSWORD);
    let app = TestApp::spawn_with_worker(config).await;
    (app, ApiKey::new("pk-lf-boot", "sk-lf-boot-secret"))
}

async fn owner(app: &TestApp) -> UiClient {
    let owner = UiClient::new(app);
    assert_eq!(
        owner.sign_in(OWNER_EMAIL, OWNER_PASSWORD).await.status(),
        303
    );
    owner
}

/// Trace `t-chat` (session `s-1`, user `u-1`): a root span, under it a generation with chat
/// messages in and out and an ERROR tool call; trace `t-next` later in the same session; and
/// `t-xss`, whose name, input, output and metadata are payloads.
async fn seeded() -> (TestApp, ApiKey, UiClient) {
    let (app, key) = boot_app().await;
    let t0 = at(30, 0);
    let batch = vec![
        envelope(
            "e-t",
            "trace-create",
            &t0,
            json!({"id": "t-chat", "timestamp": t0, "name": "support-chat",
            "userId": "u-1", "sessionId": "s-1", "tags": ["support"], "release": "r-7", "version": "v-2",
            "input": {"question": "How do I reset my password?"}, "output": "Use **Reset password**.",
            "metadata": {"team": "search", "nested": {"deep": [1, 2]}}}),
        ),
        envelope(
            "e-root",
            "span-create",
            &t0,
            json!({"id": "o-root", "traceId": "t-chat", "name": "handle-request",
            "startTime": t0, "endTime": at(30, 3000)}),
        ),
        envelope(
            "e-gen",
            "generation-create",
            &t0,
            json!({"id": "o-gen", "traceId": "t-chat", "parentObservationId": "o-root",
            "name": "llm", "startTime": at(30, 100), "endTime": at(30, 2100), "model": "gpt-4o-mini",
            "modelParameters": {"temperature": 0.1},
            "input": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How do I reset my password?"}],
            "output": {"role": "assistant", "content": "Open **Settings** and choose Reset.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup_user", "arguments": "{\"id\":\"u-1\"}"}}]},
            "usageDetails": {"input": 12, "output": 7, "total": 19}, "costDetails": {"total": 0.0033},
            "promptName": "support", "promptVersion": 3}),
        ),
        envelope(
            "e-tool",
            "span-create",
            &t0,
            json!({"id": "o-tool", "traceId": "t-chat", "parentObservationId": "o-gen",
            "name": "lookup", "startTime": at(30, 2200), "endTime": at(30, 2900), "level": "ERROR",
            "statusMessage": "KeyError: 'x'", "input": {"key": "x"}}),
        ),
        envelope(
            "e-s",
            "score-create",
            &t0,
            json!({"id": "sc-1", "traceId": "t-chat", "name": "helpful", "value": 0.8}),
        ),
        envelope(
            "e-n",
            "trace-create",
            &t0,
            json!({"id": "t-next", "timestamp": at(20, 0), "name": "follow-up",
            "userId": "u-1", "sessionId": "s-1", "input": [{"role": "user", "content": "And my username?"}],
            "output": {"role": "assistant", "content": "It is your e-mail address."}}),
        ),
        envelope(
            "e-x",
            "trace-create",
            &t0,
            json!({"id": "t-xss", "timestamp": at(10, 0), "name": PAYLOAD,
            "input": PAYLOAD, "output": {"role": "assistant", "content": PAYLOAD}, "metadata": {"p": PAYLOAD},
            "sessionId": PAYLOAD}),
        ),
    ];
    app.ingest_accepted(&key, &json!({ "batch": batch })).await;
    assert!(app.wait_until_written().await, "the worker wrote the batch");
    let owner = owner(&app).await;
    (app, key, owner)
}

#[tokio::test]
async fn a_trace_page_shows_its_tree_timeline_and_the_traces_values() {
    let (_app, _key, owner) = seeded().await;
    let (status, html) = owner.page(&format!("{TRACE}?userId=u-1&range=all")).await;
    assert_eq!(status, 200, "{html}");
    let html = html.replace("&#38;", "&").replace("&amp;", "&");
    for text in [
        "support-chat",
        "t-chat",
        "u-1",
        "r-7",
        "v-2",
        "handle-request",
        "llm",
        "lookup",
        "gpt-4o-mini",
        "$0.0033",
        "19",
        "How do I reset my password?",
        "<strong>Reset password</strong>",
        "<dt>team</dt>",
        "helpful",
    ] {
        assert!(html.contains(text), "{text}: {html}");
    }
    // Nested: the tool call under the generation under the root span, and it is marked.
    let depth = |id: &str| {
        let marker = format!("observation={id}&");
        let at = html.find(&marker).unwrap_or_else(|| panic!("{id}"));
        let li = html[..at].rfind("<li ").unwrap();
        html[li..at]
            .split("data-depth=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        (depth("o-root"), depth("o-gen"), depth("o-tool")),
        ("1".into(), "2".into(), "3".into())
    );
    assert!(
        html.contains("level-error"),
        "the ERROR observation is marked"
    );
    assert_eq!(
        html.matches("<svg class=\"obs-bar\"").count(),
        4,
        "a bar per row"
    );
    assert!(
        !html.contains("Be brief."),
        "no observation's input on the trace's page"
    );
    // Links: the user and the session pages; j/k within the list; back to the table.
    assert!(html.contains("href=\"/project/boot-project/users/u-1\""));
    assert!(html.contains("href=\"/project/boot-project/sessions/s-1\""));
    assert!(
        html.contains("/traces/t-chat/neighbour?dir=next&range=all&userId=u-1"),
        "{html}"
    );
    assert!(html
        .contains("id=\"trace-back\" href=\"/project/boot-project/traces?range=all&userId=u-1\""));
    assert!(html.contains("id=\"score-form\""), "an owner may score");
}

#[tokio::test]
async fn an_observation_shows_its_conversation_and_its_panel_loads_alone() {
    let (_app, _key, owner) = seeded().await;
    let (status, html) = owner.page(&format!("{TRACE}?observation=o-gen")).await;
    assert_eq!(status, 200);
    for text in [
        "role-system",
        "Be brief.",
        "role-assistant",
        "<strong>Settings</strong>",
        "Tool call <strong>lookup_user</strong>",
        "gpt-4o-mini",
        "temperature",
        "$0.0033",
        "href=\"/project/boot-project/prompts/support?version=3\"",
        "support v3",
    ] {
        assert!(html.contains(text), "{text}: {html}");
    }
    // The fragment is the panel alone, for the page's script.
    let (status, fragment) = owner.page(&format!("{TRACE}/observations/o-tool")).await;
    assert_eq!(status, 200);
    assert!(!fragment.contains("<html") && fragment.contains("id=\"detail\""));
    assert!(
        fragment.contains("KeyError: &#39;x&#39;")
            || fragment.contains("KeyError: &#x27;x&#x27;")
            || fragment.contains("KeyError: &#39;x&#39;"),
        "{fragment}"
    );
    assert!(fragment.contains("is-error"));
    // Opened as a page, the panel's address leads to the whole page with it selected.
    let response = owner
        .http
        .get(owner.url(&format!("{TRACE}/observations/o-tool?userId=u-1")))
        .header("Sec-Fetch-Mode", "navigate")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        location(&response),
        format!("{TRACE}?observation=o-tool&userId=u-1")
    );
    // An observation of another trace, or none, is not found; the page falls back to the trace.
    let (status, _) = owner
        .page(&format!("{PROJECT}/traces/t-next/observations/o-gen"))
        .await;
    assert_eq!(status, 404);
    let (status, _) = owner.page(&format!("{TRACE}/observations/nope")).await;
    assert_eq!(status, 404);
    let (status, html) = owner.page(&format!("{TRACE}?observation=nope")).await;
    assert_eq!(status, 200);
    assert!(html.contains("no such observation"));
    let (status, _) = owner.page(&format!("{PROJECT}/traces/nope")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn payloads_in_a_trace_come_out_as_text() {
    let (_app, _key, owner) = seeded().await;
    let (status, html) = owner.page(&format!("{PROJECT}/traces/t-xss")).await;
    assert_eq!(status, 200);
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script>window"), "{html}");
    assert!(!lower.contains("<img src=x"), "{html}");
    assert!(html.contains("&lt;script&gt;") || html.contains("&#60;script&#62;"));
}

#[tokio::test]
async fn scores_are_added_by_members_and_refused_to_viewers_and_forgeries() {
    let (app, key, owner) = seeded().await;
    let token = owner.csrf_token(TRACE).await;
    let action = format!("{TRACE}/scores");
    // On an observation, categorical; through the API's path, readable through the API.
    let response = owner
        .post_raw(
            &action,
            &[
                ("csrf_token", &token),
                ("observation_id", "o-gen"),
                ("name", "tone"),
                ("data_type", "CATEGORICAL"),
                ("value", "friendly"),
                ("comment", "nice <b>"),
                ("list_query", "userId=u-1"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let back = location(&response);
    assert!(
        back.starts_with(
            "/project/boot-project/traces/t-chat?observation=o-gen&userId=u-1&scored="
        ),
        "{back}"
    );
    let (_, html) = owner.page(&back).await;
    assert!(
        html.contains("friendly") && html.contains("nice &lt;b&gt;")
            || html.contains("nice &#60;b&#62;"),
        "{html}"
    );
    let (status, scores) = app.get_json("/api/public/v2/scores?name=tone", &key).await;
    assert_eq!(status, 200);
    let score: &Value = &scores["data"][0];
    assert_eq!(score["observationId"], "o-gen");
    assert_eq!(score["traceId"], "t-chat");
    assert_eq!(score["stringValue"], "friendly");
    assert_eq!(score["comment"], "nice <b>");
    // An annotation, as in Langfuse: its author is the signed-in person.
    let owner_id =
        langfuse_rs::storage::postgres::users::find_by_email(&app.stores.postgres, OWNER_EMAIL)
            .await
            .unwrap()
            .unwrap()
            .user
            .id;
    assert_eq!(score["source"], "ANNOTATION");
    assert_eq!(score["authorUserId"], json!(owner_id));
    let (_, annotations) = app
        .get_json("/api/public/v2/scores?source=ANNOTATION", &key)
        .await;
    assert_eq!(annotations["data"].as_array().unwrap().len(), 1);
    let (_, table) = owner.page("/project/boot-project/scores").await;
    assert!(
        table.contains("ANNOTATION") && table.contains("by Olivia Owner"),
        "{table}"
    );
    // The observation's panel names the author too, on the page and in the fragment.
    for path in [
        "/project/boot-project/traces/t-chat?observation=o-gen",
        "/project/boot-project/traces/t-chat/observations/o-gen",
    ] {
        let (status, panel) = owner.page(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(panel.contains("by Olivia Owner"), "{path}: {panel}");
    }
    // On the trace, numeric; a bad value is a 400 and writes nothing.
    let response = owner
        .post_raw(
            &action,
            &[
                ("csrf_token", &token),
                ("name", "accuracy"),
                ("data_type", "NUMERIC"),
                ("value", "0.25"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let (_, html) = owner.page(TRACE).await;
    assert!(html.contains("accuracy") && html.contains("0.25"));
    let response = owner
        .post_raw(
            &action,
            &[
                ("csrf_token", &token),
                ("name", "x"),
                ("data_type", "BOOLEAN"),
                ("value", "perhaps"),
            ],
        )
        .await;
    assert_eq!(response.status(), 400);
    // No token, a wrong token: refused before anything is written.
    for fields in [
        vec![("name", "forged"), ("value", "1")],
        vec![("csrf_token", "0123"), ("name", "forged"), ("value", "1")],
    ] {
        let response = owner.post_raw(&action, &fields).await;
        assert_eq!(response.status(), 403);
    }
    // A VIEWER sees the scores but no form, and a forged POST with their own token is refused.
    let viewer = UiClient::signed_up(&app, "Victor Viewer", "victor@example.com").await;
    let response = owner
        .submit(
            &format!("{PROJECT}/settings"),
            &format!("{PROJECT}/settings/members"),
            &[("email", "victor@example.com"), ("role", "VIEWER")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let (status, html) = viewer.page(TRACE).await;
    assert_eq!(status, 200);
    assert!(html.contains("accuracy") && !html.contains("id=\"score-form\""));
    let token = viewer.csrf_token(TRACE).await;
    let response = viewer
        .post_raw(
            &action,
            &[
                ("csrf_token", &token),
                ("name", "forged"),
                ("data_type", "NUMERIC"),
                ("value", "1"),
            ],
        )
        .await;
    assert_eq!(response.status(), 403);
    let (_, scores) = app
        .get_json("/api/public/v2/scores?name=forged", &key)
        .await;
    assert_eq!(scores["data"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn api_scores_stay_api_scores_and_cannot_name_an_author() {
    let (app, key, _owner) = seeded().await;
    // The direct score API takes neither a source nor an author, as Langfuse's.
    let response = app
        .post_as(
            "/api/public/scores",
            &key,
            &json!({"id": "s-api", "traceId": "t-chat", "name": "api-score", "value": 1,
                "source": "ANNOTATION", "authorUserId": "someone-else"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    // The batch API takes a source, as Langfuse's ingestion schema does, but never an author.
    let t = at(1, 0);
    app.ingest_accepted(
        &key,
        &json!({"batch": [envelope("e-s", "score-create", &t,
            json!({"id": "s-batch", "traceId": "t-chat", "name": "batch-score", "value": 1,
                "source": "EVAL", "authorUserId": "someone-else"}))]}),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            let (a, _) = app.get_json("/api/public/v2/scores/s-api", &key).await;
            let (b, _) = app.get_json("/api/public/v2/scores/s-batch", &key).await;
            (a, b) == (200, 200)
        })
        .await
    );
    let by_id = |id: &'static str| {
        let app = &app;
        let key = &key;
        async move {
            app.get_json(&format!("/api/public/v2/scores/{id}"), key)
                .await
                .1
        }
    };
    let (api_score, batch_score) = (by_id("s-api").await, by_id("s-batch").await);
    assert_eq!(api_score["source"], "API");
    assert_eq!(api_score["authorUserId"], Value::Null);
    assert_eq!(batch_score["source"], "EVAL");
    assert_eq!(batch_score["authorUserId"], Value::Null);
    // A source Langfuse does not know is refused.
    let response = app
        .post_as(
            "/api/public/ingestion",
            &key,
            &json!({"batch": [envelope("e-x", "score-create", &t,
                json!({"id": "s-x", "traceId": "t-chat", "name": "x", "value": 1,
                    "source": "HUMAN"}))]}),
        )
        .await;
    let status = response.status();
    let answer = response.text().await.unwrap();
    assert_eq!(status, 207, "{answer}");
    assert!(answer.contains("body.source"), "{answer}");
}

#[tokio::test]
async fn another_organization_gets_404_for_the_trace_its_panels_and_its_session() {
    let (app, _key, _owner) = seeded().await;
    let stranger = UiClient::signed_up(&app, "Mallory", "mallory@example.com").await;
    let other = stranger.create_org_and_project("Elsewhere", "Other").await;
    for path in [
        TRACE.to_string(),
        format!("{TRACE}?observation=o-gen"),
        format!("{TRACE}/observations/o-gen"),
        format!("{PROJECT}/sessions"),
        format!("{PROJECT}/sessions/s-1"),
        // Their own project does not hold it either.
        format!("/project/{other}/traces/t-chat"),
        format!("/project/{other}/traces/t-chat/observations/o-gen"),
        format!("/project/{other}/sessions/s-1"),
    ] {
        let (status, html) = stranger.page(&path).await;
        assert_eq!(status, 404, "{path}");
        assert!(
            !html.contains("support-chat") && !html.contains("Be brief"),
            "{path}"
        );
    }
    let token = stranger.csrf_token("/").await;
    let response = stranger
        .post_raw(
            &format!("{TRACE}/scores"),
            &[("csrf_token", &token), ("name", "x"), ("value", "1")],
        )
        .await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn sessions_are_listed_and_a_session_reads_as_its_conversation() {
    let (_app, _key, owner) = seeded().await;
    let (status, html) = owner.page(&format!("{PROJECT}/sessions")).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("href=\"/project/boot-project/sessions/s-1\""),
        "{html}"
    );
    assert!(
        !html.contains("<script>window"),
        "the payload session id is text"
    );
    let (status, html) = owner.page(&format!("{PROJECT}/sessions/s-1")).await;
    assert_eq!(status, 200, "{html}");
    let first = html
        .find("How do I reset my password?")
        .expect("the first trace's input");
    let second = html
        .find("And my username?")
        .expect("the second trace's input");
    assert!(first < second, "in time order");
    assert!(html.contains("It is your e-mail address.") && html.contains("role-assistant"));
    assert!(html.contains("href=\"/project/boot-project/traces/t-chat\""));
    assert!(html.contains("href=\"/project/boot-project/traces/t-next\""));
    let (status, _) = owner
        .page(&format!("{PROJECT}/sessions/no-such-session"))
        .await;
    assert_eq!(status, 404);
}

/// Seeds a trace of `count` observations (a root, 10 under it, the rest spread under those, all
/// generations with ~1 KB of input and output); the path of its page.
pub(crate) async fn seed_large_trace(app: &TestApp, key: &ApiKey, count: usize) -> String {
    let trace = format!("t-large-{count}");
    let t0 = at(60, 0);
    let text = "lorem ipsum dolor sit amet ".repeat(40);
    let mut events = vec![envelope(
        "e-t",
        "trace-create",
        &t0,
        json!({"id": trace, "timestamp": t0, "name": "large", "input": "go"}),
    )];
    for i in 0..count {
        let parent = match i {
            0 => Value::Null,
            1..=10 => json!("o-0"),
            _ => json!(format!("o-{}", 1 + i % 10)),
        };
        events.push(envelope(&format!("e-{i}"), "generation-create", &t0, json!({
            "id": format!("o-{i}"), "traceId": trace, "parentObservationId": parent,
            "name": format!("step-{i}"), "startTime": at(60, i as i64), "endTime": at(60, i as i64 + 50),
            "input": [{"role": "user", "content": text}], "output": {"role": "assistant", "content": text},
            "usageDetails": {"input": 10, "output": 5, "total": 15}, "costDetails": {"total": 0.0001}})));
    }
    for chunk in events.chunks(1000) {
        app.ingest_accepted(key, &json!({ "batch": chunk })).await;
    }
    assert!(app.wait_until_written().await);
    assert!(
        app.wait_for_rows("observations", "boot-project", count as u64)
            .await
    );
    format!("{PROJECT}/traces/{trace}")
}

/// Times the page of a trace of `count` observations: the server's time and the page's size,
/// printed for the README (`--nocapture`).
async fn time_a_large_trace(count: usize) -> (f64, usize, f64) {
    let (app, key) = boot_app().await;
    let path = seed_large_trace(&app, &key, count).await;
    let owner = owner(&app).await;
    let (status, _) = owner.page(&path).await; // warm
    assert_eq!(status, 200);
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let (status, html) = owner.page(&path).await;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status, 200);
        assert_eq!(html.matches("<li class=\"obs").count(), count + 1);
        size = html.len();
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let started = Instant::now();
    let (status, fragment) = owner
        .page(&format!("{path}/observations/o-{}", count / 2))
        .await;
    let panel_ms = started.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(status, 200);
    assert!(fragment.contains("lorem ipsum"));
    println!(
        "trace of {count} observations: page median {:.0} ms (min {:.0}, max {:.0}), {} KB; one panel {:.0} ms",
        times[times.len() / 2], times[0], times[times.len() - 1], size / 1024, panel_ms
    );
    (times[times.len() / 2], size, panel_ms)
}

#[tokio::test]
async fn a_trace_of_1000_observations_opens_fast() {
    let (median_ms, size, _) = time_a_large_trace(1_000).await;
    // The target is 300 ms on the 2-core machine in a release build; a debug build under a
    // parallel test run gets room.
    assert!(median_ms < 3_000.0, "{median_ms} ms");
    assert!(size < 1_000_000, "{size} bytes: the page carries no values");
}

#[tokio::test]
#[ignore = "a measurement: cargo test --release --test api a_trace_of_10000 -- --ignored --nocapture"]
async fn a_trace_of_10000_observations_opens() {
    let (median_ms, _, panel_ms) = time_a_large_trace(10_000).await;
    assert!(median_ms < 10_000.0 && panel_ms < 2_000.0);
}
