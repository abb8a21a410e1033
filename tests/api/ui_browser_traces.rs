//! The traces table and users pages in a real browser (the harness of `ui_browser.rs`): a trace
//! the official Python SDK 5.x sent is listed, a filter by user narrows the table, `j`/`k` and
//! Enter open a trace, and a trace full of script payloads runs none of them. Screenshots go to
//! `target/ui-screenshots/` as `traces-*.png`.

use std::time::Duration;

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::Locator;
use serde_json::json;

use crate::helpers::{envelope, ApiKey, TestApp, TestConfig};
use crate::sdk::{run_roundtrip, sdk_python, sdk_script};
use crate::ui_browser::{Browser, EmulateDarkTheme};

const OWNER_EMAIL: &str = "owner@example.com";
const OWNER_PASSWORD: &str = "initial password";
const SDK_TRACE: &str = "5dc5d1b8a3e94b0c9f1a2b3c4d5e6f71";
const TRACES: &str = "/project/boot-project/traces";

fn minutes_ago(minutes: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn press(browser: &Browser, keys: &[char]) {
    let mut actions = KeyActions::new("keyboard".to_string());
    for key in keys {
        actions = actions
            .then(KeyAction::Down { value: *key })
            .then(KeyAction::Up { value: *key });
    }
    browser.client.perform_actions(actions).await.unwrap();
}

async fn rows(browser: &Browser) -> usize {
    browser
        .client
        .find_all(Locator::Css("#traces-table tbody tr"))
        .await
        .unwrap()
        .len()
}

/// Runs `script` in the page and returns its JSON value.
async fn eval(browser: &Browser, script: &str) -> serde_json::Value {
    browser.client.execute(script, vec![]).await.unwrap()
}

#[tokio::test]
async fn the_traces_table_lists_sdk_traces_filters_steps_with_keys_and_runs_no_payload() {
    let python = sdk_python("LANGFUSE_TEST_PYTHON_SDK_V5", "sdk-python-v5");
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
    let key = ApiKey::new("pk-lf-boot", "sk-lf-boot-secret");

    let mut command = tokio::process::Command::new(python);
    command.arg(sdk_script("python_v5_otel_roundtrip.py"));
    run_roundtrip(command, &app, &key, SDK_TRACE).await;

    // Other users' traces, one with a long name and ids, and one full of payloads.
    let payload =
        "<script>alert(1)</script><img src=x onerror=\"document.title='pwned';alert(2)\">";
    let mut batch = Vec::new();
    for i in 0..6 {
        let at = minutes_ago(5 + i);
        batch.push(envelope(&format!("e-{i}"), "trace-create", &at, json!({
            "id": format!("trace-{i}-{}", "0123456789abcdef".repeat(2)), "timestamp": at,
            "name": if i == 0 { "a-very-long-trace-name-that-goes-on-and-on-describing-the-whole-pipeline-step".to_string() } else { format!("support-chat-{i}") },
            "userId": if i == 0 { "user-with-a-rather-long-identifier-from-an-external-system-0042" } else { "someone-else" },
            "sessionId": format!("session-{}", i % 2), "tags": ["support", "v2"], "environment": "production",
            "input": {"messages": [{"role": "user", "content": format!("Question {i}: how do I reset my password?")}]},
            "output": "Open the account settings and choose Reset password.",
        })));
        batch.push(envelope(&format!("g-{i}"), "generation-create", &at, json!({
            "id": format!("gen-{i}"), "traceId": format!("trace-{i}-{}", "0123456789abcdef".repeat(2)),
            "startTime": at, "endTime": (chrono::DateTime::parse_from_rfc3339(&at).unwrap() + chrono::Duration::milliseconds(700 * (i + 1))).to_rfc3339(),
            "usageDetails": {"input": 100 * (i + 1), "output": 20, "total": 100 * (i + 1) + 20},
            "costDetails": {"total": 0.000_35 * (i + 1) as f64},
            "level": if i == 2 { "ERROR" } else { "DEFAULT" },
        })));
    }
    let at = minutes_ago(30);
    batch.push(envelope("e-x", "trace-create", &at, json!({
        "id": "trace-payload", "timestamp": at, "name": payload, "userId": payload,
        "input": payload, "output": payload, "metadata": {"payload": payload}, "tags": [payload],
    })));
    app.ingest_accepted(&key, &json!({ "batch": batch })).await;
    assert!(app.wait_until_written().await);

    let browser = Browser::start(&app).await;
    browser.goto(TRACES).await;
    browser.sign_in(OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(browser.wait_for_path(TRACES).await, TRACES);
    let body = browser.text("#traces-table").await;
    assert!(body.contains("sdk-v5-trace"), "{body}");
    assert_eq!(rows(&browser).await, 8);
    browser.screenshot("traces-01-table").await;

    // A filter by user narrows the table, through the form: the table is swapped in place, the
    // page around it (and this marker in it) stays.
    eval(&browser, "window.__samePage = true; return null;").await;
    browser.fill("input[name=userId]", "user-1").await;
    browser
        .click("#trace-filters .filter-search button[type=submit]")
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !browser.path().await.contains("userId=user-1") {
        assert!(
            std::time::Instant::now() < deadline,
            "the form went nowhere"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let path = browser.path().await;
    assert!(
        !path.contains("name=&"),
        "empty fields stay out of the URL: {path}"
    );
    assert_eq!(rows(&browser).await, 1);
    assert!(browser.text("#traces-table").await.contains("sdk-v5-trace"));
    assert_eq!(
        eval(&browser, "return window.__samePage === true;").await,
        serde_json::json!(true),
        "a filter change reloads only the table"
    );
    let shown = eval(
        &browser,
        "return document.querySelector('#traces-table time').title;",
    )
    .await;
    assert!(
        shown.as_str().unwrap_or_default().ends_with("UTC"),
        "times of the swapped table are shown in the browser's zone: {shown}"
    );
    browser.screenshot("traces-02-filtered-by-user").await;
    // Back in history, the form (whose empty fields were left out of the URL) still works.
    browser.client.back().await.unwrap();
    browser.client.forward().await.unwrap();
    browser.client.back().await.unwrap();
    let disabled = eval(
        &browser,
        "return Array.from(document.querySelectorAll('#trace-filters [name]')).filter(f => f.disabled).length;",
    )
    .await;
    assert_eq!(disabled, 0, "no field left disabled");

    // A menu applies at once: the order.
    browser.goto(TRACES).await;
    browser
        .client
        .find(Locator::Css(
            "select[name=orderBy] option[value='latency.desc']",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !browser.path().await.contains("orderBy=latency.desc") {
        assert!(
            std::time::Instant::now() < deadline,
            "the menu did not apply"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    browser.screenshot("traces-03-by-latency").await;

    // j/k move the selection, Enter opens the selected trace with the table's query.
    browser.goto(&format!("{TRACES}?userId=someone-else")).await;
    press(&browser, &['j', 'j', 'j', 'k']).await;
    let selected = eval(
        &browser,
        "const rows = Array.from(document.querySelectorAll('#traces-table tbody tr'));
         return [rows.findIndex(r => r.classList.contains('selected')),
                 rows.filter(r => r.classList.contains('selected')).length,
                 rows[1].querySelector('a.row-link').getAttribute('href')];",
    )
    .await;
    assert_eq!(selected[0], 1, "the second row: {selected}");
    assert_eq!(selected[1], 1, "one selection");
    browser.screenshot("traces-04-keyboard-selection").await;
    let href = selected[2].as_str().unwrap().to_string();
    assert!(href.ends_with("?userId=someone-else"), "{href}");
    press(&browser, &[Key::Enter.into()]).await;
    assert_eq!(browser.wait_for_path(&href).await, href);

    // The payloads are text: no dialog, the title untouched, no element injected.
    browser.goto(&format!("{TRACES}?search=alert")).await;
    assert_eq!(rows(&browser).await, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        browser.client.get_alert_text().await.is_err(),
        "no alert is open"
    );
    let state = eval(
        &browser,
        "return [document.title, document.querySelectorAll('img[src=x], script:not([src^=\"/static/\"])').length,
                 document.querySelector('#traces-table .row-link').textContent];",
    )
    .await;
    assert_eq!(state[0], "Traces · Support Assistant · langfuse-rs");
    assert_eq!(state[1], 0, "no injected element");
    assert_eq!(state[2], payload, "the name shows as text");
    browser.screenshot("traces-05-payloads-as-text").await;

    browser.goto("/project/boot-project/users").await;
    let users = browser.text("#users-table").await;
    assert!(users.contains("user-1") && users.contains("someone-else"));
    assert!(browser.client.get_alert_text().await.is_err());
    browser.screenshot("traces-06-users").await;
    browser
        .click("#users-table a[href$='/users/someone-else']")
        .await;
    assert_eq!(
        browser
            .wait_for_path("/project/boot-project/users/someone-else")
            .await,
        "/project/boot-project/users/someone-else"
    );
    assert_eq!(rows(&browser).await, 5);
    browser.screenshot("traces-07-user").await;

    // An empty list says why and how to widen it.
    browser
        .goto(&format!("{TRACES}?range=1h&name=no-such-trace"))
        .await;
    assert!(browser
        .text(".empty-state")
        .await
        .contains("No traces match these filters"));
    browser.screenshot("traces-08-empty").await;

    // The dark theme, as a system set to dark shows it.
    browser.client.issue_cmd(EmulateDarkTheme).await.unwrap();
    browser.goto(TRACES).await;
    let background = eval(
        &browser,
        "return getComputedStyle(document.body).backgroundColor;",
    )
    .await;
    assert_eq!(background, "rgb(17, 20, 24)", "the dark palette applies");
    browser.screenshot("traces-10-table-dark").await;

    // Narrow screens keep the table usable.
    browser.client.set_window_size(800, 900).await.unwrap();
    browser.goto(TRACES).await;
    browser.screenshot("traces-09-table-800px").await;
    browser.client.clone().close().await.unwrap();
}
