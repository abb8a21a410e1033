//! The trace page and the sessions pages in a real browser (the harness of `ui_browser.rs`): the
//! link the Python SDK 5.x's `get_trace_url()` builds opens the tree and the generation's input
//! and output as a conversation; selecting another observation swaps the panel without a reload;
//! a score added on the page reads back through the public API; a session page shows its traces
//! in order; a trace full of script payloads runs none of them; `j`/`k` and `Esc` walk the list;
//! a person of another organization who opens the link gets the 404 page and nothing of the trace.
//! Screenshots go to `target/ui-screenshots/` as `trace-*.png` and `session-*.png`, light and dark.

use std::time::Duration;

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use serde_json::json;

use crate::helpers::{envelope, ApiKey, TestApp, UiClient, UI_PASSWORD};
use crate::sdk::{run_roundtrip, sdk_python, sdk_script};
use crate::ui_browser::Browser;
use crate::ui_browser::EmulateDarkTheme;

const OWNER_EMAIL: &str = "owner@example.com";
const OWNER_PASSWORD: &str = "initial password";
const FIRST: &str = "7aa1c2d3e4f5061728394a5b6c7d8e9f";
const SECOND: &str = "7aa1c2d3e4f5061728394a5b6c7d8ea0";
const PAYLOAD: &str =
    "<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2;alert(1)\">";

async fn eval(browser: &Browser, script: &str) -> serde_json::Value {
    browser.client.execute(script, vec![]).await.unwrap()
}

async fn press(browser: &Browser, key: char) {
    let actions = KeyActions::new("keyboard".to_string())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    browser.client.perform_actions(actions).await.unwrap();
}

/// Waits until `script` returns true.
async fn until(browser: &Browser, what: &str, script: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while eval(browser, script).await != json!(true) {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A payload that ran would have set `window.__pwned` or opened a dialog.
async fn assert_nothing_ran(browser: &Browser) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(browser.client.get_alert_text().await.is_err(), "no alert");
    let state = eval(
        browser,
        "return [typeof window.__pwned, document.querySelectorAll('img[src=x], script:not([src^=\"/static/\"])').length];",
    )
    .await;
    assert_eq!(state, json!(["undefined", 0]), "nothing injected or run");
}

#[tokio::test]
async fn the_sdks_trace_link_opens_the_tree_conversation_scores_and_session() {
    let python = sdk_python("LANGFUSE_TEST_PYTHON_SDK_V5", "sdk-python-v5");
    let (app, key): (TestApp, ApiKey) = crate::ui_trace_detail::boot_app().await;
    let mut command = tokio::process::Command::new(python);
    command
        .arg(sdk_script("python_v5_trace_page.py"))
        .env("TRACE_ID_2", SECOND);
    let ids = run_roundtrip(command, &app, &key, FIRST).await;
    let url = ids["url"].as_str().expect("get_trace_url() built a link");
    let path = url
        .strip_prefix(app.address.as_str())
        .unwrap_or(url)
        .to_string();
    assert_eq!(path, format!("/project/boot-project/traces/{FIRST}"));
    let generation = ids["first-generation"].as_str().unwrap().to_string();

    // A trace full of payloads, in its name, input, output, metadata and an observation.
    let at = (chrono::Utc::now() - chrono::Duration::minutes(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let batch = vec![
        envelope(
            "e-x",
            "trace-create",
            &at,
            json!({"id": "trace-payload", "timestamp": at, "name": PAYLOAD,
            "input": PAYLOAD, "output": [{"role": "assistant", "content": format!("[link](javascript:window.__pwned=3) {PAYLOAD}")}],
            "metadata": {"payload": PAYLOAD}, "userId": "user-ui"}),
        ),
        envelope(
            "e-xo",
            "span-create",
            &at,
            json!({"id": "obs-payload", "traceId": "trace-payload", "name": PAYLOAD,
            "startTime": at, "input": {"messages": [{"role": PAYLOAD, "content": PAYLOAD}]}, "statusMessage": PAYLOAD,
            "level": "ERROR"}),
        ),
    ];
    app.ingest_accepted(&key, &json!({ "batch": batch })).await;
    assert!(app.wait_until_written().await);

    let browser = Browser::start(&app).await;
    browser.goto(&path).await;
    browser.sign_in(OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(browser.wait_for_path(&path).await, path);
    let tree = browser.text("#obs-tree").await;
    for name in ["chat-first", "handle-request", "retrieve", "llm"] {
        assert!(tree.contains(name), "{name}: {tree}");
    }
    browser.screenshot("trace-01-page").await;

    // The generation: its input and output as a conversation, swapped in without a reload.
    eval(&browser, "window.__samePage = 1; return 1;").await;
    browser
        .click(&format!("a.obs-link[href^='?observation={generation}']"))
        .await;
    until(
        &browser,
        "the generation's panel",
        &format!("return document.getElementById('detail').dataset.id === '{generation}';"),
    )
    .await;
    assert_eq!(
        browser.path().await,
        format!("{path}?observation={generation}")
    );
    let chat = eval(
        &browser,
        "return Array.from(document.querySelectorAll('#detail .message')).map(m => [m.className, m.textContent]);",
    )
    .await;
    let chat = chat.as_array().unwrap();
    assert_eq!(chat.len(), 3, "system, user, assistant: {chat:?}");
    assert!(chat[0][0].as_str().unwrap().contains("role-system"));
    assert!(chat[1][1]
        .as_str()
        .unwrap()
        .contains("How do I reset my password?"));
    assert!(chat[2][0].as_str().unwrap().contains("role-assistant"));
    assert!(
        browser.has("#detail-output .message strong").await,
        "markdown rendered"
    );
    assert_eq!(eval(&browser, "return window.__samePage;").await, json!(1));
    browser.screenshot("trace-02-generation").await;

    // Another observation swaps the panel again.
    let retrieve = ids["first-retrieve"].as_str().unwrap().to_string();
    browser
        .click(&format!("a.obs-link[href^='?observation={retrieve}']"))
        .await;
    until(
        &browser,
        "the retrieval's panel",
        &format!("return document.getElementById('detail').dataset.id === '{retrieve}';"),
    )
    .await;
    assert!(browser
        .text("#detail-output")
        .await
        .contains("account-help.md"));
    assert_eq!(eval(&browser, "return window.__samePage;").await, json!(1));
    // The swapped-in panel's start and end are in the browser's zone, to the millisecond, with
    // the UTC text on hover.
    let times = eval(
        &browser,
        "return Array.from(document.querySelectorAll('#detail .detail-facts time')).map(t => [t.textContent, t.title, t.hasAttribute('data-local')]);",
    )
    .await;
    let times = times.as_array().unwrap();
    assert!(!times.is_empty(), "start and end are times");
    for time in times {
        let (shown, title) = (time[0].as_str().unwrap(), time[1].as_str().unwrap());
        assert!(!shown.contains("UTC") && title.ends_with(" UTC"), "{time}");
        let millis = &title[20..23];
        assert!(shown.contains(&format!(".{millis}")), "{time}");
        assert_eq!(time[2], json!(true));
    }

    // A score on the generation, added in the browser, reads back through the public API.
    browser
        .click(&format!("a.obs-link[href^='?observation={generation}']"))
        .await;
    until(
        &browser,
        "the generation's panel again",
        &format!("return document.getElementById('detail').dataset.id === '{generation}';"),
    )
    .await;
    let form_open = eval(
        &browser,
        "const d = document.querySelector('.score-form-box'); d.open = true; return d.open;",
    )
    .await;
    assert_eq!(form_open, json!(true));
    browser
        .fill("#score-form input[name=name]", "correctness")
        .await;
    browser.fill("#score-form input[name=value]", "0.9").await;
    browser
        .fill("#score-form input[name=comment]", "checked by hand")
        .await;
    browser.click("#score-form button[type=submit]").await;
    until(
        &browser,
        "the page after the score",
        "return !!document.getElementById('detail-notice');",
    )
    .await;
    assert!(browser.text("#detail-scores").await.contains("correctness"));
    browser.screenshot("trace-03-scored").await;
    let (status, scores) = app
        .get_json("/api/public/v2/scores?name=correctness", &key)
        .await;
    assert_eq!(status, 200);
    assert_eq!(scores["data"][0]["observationId"], generation.as_str());
    assert_eq!(scores["data"][0]["traceId"], FIRST);
    assert_eq!(scores["data"][0]["value"], 0.9);
    assert_eq!(scores["data"][0]["comment"], "checked by hand");
    assert_eq!(scores["data"][0]["source"], "ANNOTATION");
    assert!(scores["data"][0]["authorUserId"].is_string());

    // The session: both traces, in time order, their questions and answers.
    browser.click("#trace-session").await;
    assert_eq!(
        browser
            .wait_for_path("/project/boot-project/sessions/session-ui")
            .await,
        "/project/boot-project/sessions/session-ui"
    );
    let order = eval(
        &browser,
        "return Array.from(document.querySelectorAll('#session-traces > li')).map(li => li.dataset.trace);",
    )
    .await;
    assert_eq!(order, json!([FIRST, SECOND]));
    let text = browser.text("#session-traces").await;
    let first = text.find("How do I reset my password?").unwrap();
    let second = text.find("where do I change my e-mail address?").unwrap();
    assert!(first < second);
    browser.screenshot("session-02-page").await;
    browser.goto("/project/boot-project/sessions").await;
    assert!(browser.text("#sessions-table").await.contains("session-ui"));
    browser.screenshot("session-01-table").await;

    // j/k walk the list the trace was opened from, Esc goes back to it.
    let list = "/project/boot-project/traces?userId=user-ui&range=all";
    browser.goto(list).await;
    browser
        .click("#traces-table tbody tr:first-child a.row-link")
        .await;
    until(
        &browser,
        "a trace page",
        "return !!document.getElementById('obs-tree');",
    )
    .await;
    let first_trace = browser.path().await;
    press(&browser, 'j').await;
    until(&browser, "the next trace", &format!("return location.pathname + location.search !== {:?} && !!document.getElementById('obs-tree');", first_trace)).await;
    assert!(
        browser.path().await.contains("userId=user-ui"),
        "the list's filters travel"
    );
    press(&browser, 'k').await;
    assert_eq!(browser.wait_for_path(&first_trace).await, first_trace);
    press(&browser, Key::Escape.into()).await;
    until(
        &browser,
        "back to the table",
        "return !!document.getElementById('traces-table');",
    )
    .await;
    assert!(browser
        .path()
        .await
        .starts_with("/project/boot-project/traces?"));

    // Payloads are text: in the page, in its panel swapped in, in the session.
    browser
        .goto("/project/boot-project/traces/trace-payload")
        .await;
    assert!(
        browser.text(".trace-title").await.contains(PAYLOAD),
        "the name shows as text"
    );
    assert_nothing_ran(&browser).await;
    browser.screenshot("trace-04-payloads").await;
    browser
        .click("a.obs-link[href^='?observation=obs-payload']")
        .await;
    until(
        &browser,
        "the payload's panel",
        "return document.getElementById('detail').dataset.id === 'obs-payload';",
    )
    .await;
    assert_nothing_ran(&browser).await;
    assert!(browser
        .text("#detail")
        .await
        .contains("<script>window.__pwned=1</script>"));
    browser
        .goto("/project/boot-project/traces/trace-payload?observation=obs-payload")
        .await;
    assert_nothing_ran(&browser).await;
    let href = eval(&browser, "const a = document.querySelector('#detail a[href]:not(.show-all)'); return a ? a.getAttribute('href') : null;").await;
    assert_ne!(href, json!("javascript:window.__pwned=3"));

    // A person of another organization, signed in, opens the SDK's link: the 404 page, and
    // nothing of the trace.
    let stranger = UiClient::signed_up(&app, "Sam Stranger", "sam@example.com").await;
    stranger
        .create_org_and_project("Other Org", "Other Project")
        .await;
    browser.client.delete_all_cookies().await.unwrap();
    browser.goto(&path).await;
    browser.sign_in("sam@example.com", UI_PASSWORD).await;
    assert_eq!(browser.wait_for_path(&path).await, path);
    let page = browser.client.source().await.unwrap();
    assert!(
        browser
            .text(".error-page .status-code")
            .await
            .contains("404"),
        "{page}"
    );
    for secret in [
        "chat-first",
        "How do I reset my password?",
        "handle-request",
    ] {
        assert!(!page.contains(secret), "{secret} leaked: {page}");
    }
    assert!(!browser.has("#obs-tree").await && !browser.has("#detail").await);
    browser.screenshot("trace-10-other-organization-404").await;
    browser.client.delete_all_cookies().await.unwrap();
    browser.goto(&path).await;
    browser.sign_in(OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(browser.wait_for_path(&path).await, path);

    // The dark theme.
    browser.client.issue_cmd(EmulateDarkTheme).await.unwrap();
    browser
        .goto(&format!("{path}?observation={generation}"))
        .await;
    let background = eval(
        &browser,
        "return getComputedStyle(document.body).backgroundColor;",
    )
    .await;
    assert_eq!(background, "rgb(17, 20, 24)");
    browser.screenshot("trace-05-generation-dark").await;
    browser.goto(&path).await;
    browser.screenshot("trace-06-page-dark").await;
    browser
        .goto("/project/boot-project/sessions/session-ui")
        .await;
    browser.screenshot("session-03-page-dark").await;
    browser.goto("/project/boot-project/sessions").await;
    browser.screenshot("session-04-table-dark").await;
    // A narrow window stacks the tree over the panel.
    browser.client.set_window_size(800, 900).await.unwrap();
    browser
        .goto(&format!("{path}?observation={generation}"))
        .await;
    browser.screenshot("trace-07-narrow-dark").await;
    browser.client.clone().close().await.unwrap();
}

#[tokio::test]
#[ignore = "a measurement: cargo test --test api a_trace_of_10000_observations_stays_usable -- --ignored --nocapture"]
async fn a_trace_of_10000_observations_stays_usable_in_the_browser() {
    let (app, key) = crate::ui_trace_detail::boot_app().await;
    let path = crate::ui_trace_detail::seed_large_trace(&app, &key, 10_000).await;
    let browser = Browser::start(&app).await;
    browser.goto(&path).await;
    browser.sign_in(OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(browser.wait_for_path(&path).await, path);
    browser.goto(&path).await;
    let timing = eval(
        &browser,
        "const t = performance.getEntriesByType('navigation')[0];
         return [Math.round(t.responseEnd - t.requestStart), Math.round(t.domContentLoadedEventEnd - t.startTime),
                 Math.round(t.loadEventEnd - t.startTime),
                 document.querySelectorAll('#obs-tree li.obs').length,
                 document.querySelectorAll('#obs-tree li.obs:not([hidden])').length];",
    )
    .await;
    println!("10,000 observations in the browser: [response ms, DOMContentLoaded ms, load ms, rows, rows shown] = {timing}");
    assert_eq!(timing[3], 10_001);
    browser.screenshot("trace-08-10000-observations").await;
    // Selecting an observation swaps its panel in.
    let started = std::time::Instant::now();
    browser.click("a.obs-link[href='?observation=o-5']").await;
    until(
        &browser,
        "the panel",
        "return document.getElementById('detail').dataset.id === 'o-5';",
    )
    .await;
    println!("panel swap: {} ms", started.elapsed().as_millis());
    // Unfolding everything keeps the page working.
    let started = std::time::Instant::now();
    browser.click("#tree-expand").await;
    let shown = eval(
        &browser,
        "return document.querySelectorAll('#obs-tree li.obs:not([hidden])').length;",
    )
    .await;
    println!(
        "expand all: {} ms, {shown} rows shown",
        started.elapsed().as_millis()
    );
    assert_eq!(shown, 10_001);
    browser.screenshot("trace-09-10000-expanded").await;
    browser.client.clone().close().await.unwrap();
}
