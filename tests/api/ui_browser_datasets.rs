//! Datasets in a real browser (the harness of `ui_browser.rs`). One test creates a dataset from
//! the sidebar's Datasets page, adds an item, edits it, archives and restores it, then adds an
//! observation of a Python SDK 5.x trace to the dataset from the trace's page; each step read
//! back through the public API. The other opens the runs of a dataset the SDK made, two
//! experiment runs whose traces the SDK sent and which `dataset-run-items` linked, and compares
//! them item by item. Screenshots go to `target/ui-screenshots/` as `datasets-*.png`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{ApiKey, TestApp};
use crate::sdk::{run_roundtrip, sdk_python, sdk_script};
use crate::ui_browser::{Browser, EmulateDarkTheme};

const OWNER_EMAIL: &str = "owner@example.com";
const OWNER_PASSWORD: &str = "initial password";
const PROJECT: &str = "/project/boot-project";
const TRACE: &str = "5c0fe1d2c3b4a5968778695a4b3c2d41";
const OTHER_TRACE: &str = "5c0fe1d2c3b4a5968778695a4b3c2d42";

async fn wait_for_prefix(browser: &Browser, prefix: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let path = browser.path().await;
        if path.starts_with(prefix) {
            return path;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still at {path}, not {prefix}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn eval(browser: &Browser, script: &str) -> Value {
    browser.client.execute(script, vec![]).await.unwrap()
}

async fn scroll_to(browser: &Browser, id: &str) {
    eval(
        browser,
        &format!("document.getElementById('{id}').scrollIntoView(); return 1;"),
    )
    .await;
}

/// The item id at the end of a path `…/items/{id}?…`.
fn item_id_of(path: &str) -> String {
    path.split("/items/")
        .nth(1)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string()
}

async fn api_item(app: &TestApp, key: &ApiKey, id: &str) -> Value {
    let (status, item) = app
        .get_json(&format!("/api/public/dataset-items/{id}"), key)
        .await;
    assert_eq!(status, 200, "{item}");
    item
}

#[tokio::test]
async fn a_dataset_made_in_the_browser_takes_items_edits_archives_and_an_sdk_observation() {
    let python = sdk_python("LANGFUSE_TEST_PYTHON_SDK_V5", "sdk-python-v5");
    let (app, key) = crate::ui_trace_detail::boot_app().await;
    let mut command = tokio::process::Command::new(python);
    command
        .arg(sdk_script("python_v5_trace_page.py"))
        .env("TRACE_ID_2", OTHER_TRACE);
    let ids = run_roundtrip(command, &app, &key, TRACE).await;
    let generation = ids["first-generation"].as_str().unwrap().to_string();
    assert!(app.wait_until_written().await);

    let browser = Browser::start(&app).await;
    browser.goto(PROJECT).await;
    browser.sign_in(OWNER_EMAIL, OWNER_PASSWORD).await;
    wait_for_prefix(&browser, PROJECT).await;
    browser
        .click(&format!("nav.sidenav a[href='{PROJECT}/datasets']"))
        .await;
    wait_for_prefix(&browser, &format!("{PROJECT}/datasets")).await;
    assert!(browser.has("#no-datasets").await);
    browser.screenshot("datasets-01-empty").await;

    browser.fill("#dataset-name", "support/faq").await;
    browser
        .fill(
            "#dataset-description",
            "Questions customers ask, and what we answer",
        )
        .await;
    browser.click("#new-dataset details summary").await;
    browser
        .fill(
            "#dataset-input-schema",
            r#"{"type": "object", "required": ["question"]}"#,
        )
        .await;
    browser.screenshot("datasets-02-form").await;
    browser.click("#dataset-form button[type=submit]").await;
    let dataset_path = wait_for_prefix(&browser, &format!("{PROJECT}/datasets/")).await;
    assert!(dataset_path.ends_with("?done=created"), "{dataset_path}");
    assert_eq!(browser.text("#dataset-title").await, "faq");
    let (status, dataset) = app
        .get_json("/api/public/v2/datasets/support%2Ffaq", &key)
        .await;
    assert_eq!(status, 200, "{dataset}");
    assert_eq!(dataset["inputSchema"]["required"], json!(["question"]));

    // An item: first refused by the schema (the message shows in the page), then added.
    browser.click("#tab-items").await;
    wait_for_prefix(&browser, &format!("{PROJECT}/datasets/")).await;
    browser
        .fill("#item-input", r#"{"query": "no question"}"#)
        .await;
    browser.click("#item-form button[type=submit]").await;
    let refusal = browser.text("#form-error").await;
    assert!(refusal.contains("question"), "{refusal}");
    browser.screenshot("datasets-03-item-refused").await;
    browser
        .fill("#item-input", r#"{"question": "How do I export my data?"}"#)
        .await;
    browser
        .fill("#item-expected", r#""Settings, then Export.""#)
        .await;
    browser.click("#item-form button[type=submit]").await;
    let item_path = wait_for_prefix(&browser, &format!("{PROJECT}/datasets/")).await;
    assert!(item_path.contains("/items/") && item_path.ends_with("?done=created"));
    let item_id = item_id_of(&item_path);
    assert_eq!(
        api_item(&app, &key, &item_id).await["expectedOutput"],
        "Settings, then Export."
    );

    // Edit it.
    browser.click("#edit-item summary").await;
    browser
        .fill("#item-expected", r#""Settings → Privacy → Export data.""#)
        .await;
    browser.screenshot("datasets-04-item-edit").await;
    browser.click("#item-form button[type=submit]").await;
    wait_for_prefix(&browser, &item_path.replace("?done=created", "?done=saved")).await;
    assert!(browser
        .text("#item-expected-view")
        .await
        .contains("Settings → Privacy → Export data."));
    assert_eq!(
        api_item(&app, &key, &item_id).await["expectedOutput"],
        "Settings → Privacy → Export data."
    );

    // Archive it (the page asks first), then restore it.
    browser.click("#archive-item").await;
    browser.client.accept_alert().await.unwrap();
    wait_for_prefix(
        &browser,
        &item_path.replace("?done=created", "?done=archived"),
    )
    .await;
    assert_eq!(browser.text("#item-status").await, "archived");
    assert_eq!(api_item(&app, &key, &item_id).await["status"], "ARCHIVED");
    browser.screenshot("datasets-05-item-archived").await;
    browser.click("#restore-item").await;
    wait_for_prefix(
        &browser,
        &item_path.replace("?done=created", "?done=restored"),
    )
    .await;
    assert_eq!(api_item(&app, &key, &item_id).await["status"], "ACTIVE");

    // "Add to dataset" from the SDK trace's generation: the form starts from its input and
    // output; the item keeps where it came from.
    browser
        .goto(&format!(
            "{PROJECT}/traces/{TRACE}?observation={generation}"
        ))
        .await;
    browser.click("#add-to-dataset summary").await;
    let prefilled: Value = eval(
        &browser,
        "return [document.querySelector('#dataset-item-form textarea[name=input]').value, document.querySelector('#dataset-item-form textarea[name=expected_output]').value];",
    )
    .await;
    assert!(
        prefilled[0]
            .as_str()
            .unwrap()
            .contains("How do I reset my password?"),
        "{prefilled}"
    );
    assert!(prefilled[1].as_str().unwrap().contains("Reset password"));
    // The schema wants an object with a question; the generation's input is a message list.
    browser
        .fill(
            "#dataset-item-form textarea[name=input]",
            r#"{"question": "How do I reset my password?"}"#,
        )
        .await;
    scroll_to(&browser, "add-to-dataset").await;
    browser.screenshot("datasets-06-add-from-trace").await;
    browser
        .click("#dataset-item-form button[type=submit]")
        .await;
    let added = wait_for_prefix(&browser, &format!("{PROJECT}/datasets/")).await;
    let added_id = item_id_of(&added);
    let item = api_item(&app, &key, &added_id).await;
    assert_eq!(item["sourceTraceId"], TRACE);
    assert_eq!(item["sourceObservationId"], json!(generation));
    assert!(item["expectedOutput"]["content"]
        .as_str()
        .unwrap()
        .contains("Reset password"));
    assert!(browser
        .text("#item-source")
        .await
        .starts_with("Observation"));
    browser.click("#item-source a").await;
    wait_for_prefix(&browser, &format!("{PROJECT}/traces/{TRACE}?observation=")).await;

    browser.goto(&format!("{PROJECT}/datasets")).await;
    browser.screenshot("datasets-07-list").await;
    browser.click(".datasets-table td.dataset-name a").await;
    wait_for_prefix(&browser, &format!("{PROJECT}/datasets/")).await;
    browser.click("#tab-items").await;
    wait_for_prefix(&browser, &format!("{PROJECT}/datasets/")).await;
    assert_eq!(
        eval(
            &browser,
            "return document.querySelectorAll('.items-table tbody tr').length;"
        )
        .await,
        json!(2)
    );
    browser.screenshot("datasets-08-items").await;

    // Renamed on the settings tab: the head and the API follow.
    browser.click("#tab-settings").await;
    let settings = wait_for_prefix(&browser, &format!("{PROJECT}/datasets/")).await;
    assert!(settings.ends_with("/settings"), "{settings}");
    browser.fill("#dataset-name", "support/faq-v2").await;
    browser.click("#save-dataset").await;
    wait_for_prefix(&browser, &format!("{settings}?done=saved")).await;
    assert_eq!(browser.text("#dataset-title").await, "faq-v2");
    let (status, _) = app
        .get_json("/api/public/v2/datasets/support%2Ffaq-v2", &key)
        .await;
    assert_eq!(status, 200);
    browser.screenshot("datasets-08b-settings").await;

    browser.client.issue_cmd(EmulateDarkTheme).await.unwrap();
    browser.goto(&added).await;
    browser.screenshot("datasets-09-item-dark").await;

    // Deleted, once its name is typed again.
    browser.goto(&settings).await;
    browser.fill("#confirm-name", "support/faq-v2").await;
    browser.click("#delete-dataset-button").await;
    wait_for_prefix(&browser, &format!("{PROJECT}/datasets?done=deleted")).await;
    assert!(browser.has("#no-datasets").await);
    let (status, _) = app
        .get_json("/api/public/v2/datasets/support%2Ffaq-v2", &key)
        .await;
    assert_eq!(status, 404);
    browser.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn two_sdk_runs_compare_side_by_side_with_their_totals() {
    let python = sdk_python("LANGFUSE_TEST_PYTHON_SDK_V5", "sdk-python-v5");
    let (app, key) = crate::ui_trace_detail::boot_app().await;
    let mut command = tokio::process::Command::new(python);
    command
        .arg(sdk_script("python_v5_dataset_runs.py"))
        .env("DATASET", "support-questions");
    let traces = run_roundtrip(command, &app, &key, TRACE).await;
    for run in ["baseline", "candidate"] {
        for (item, trace) in traces[run].as_object().unwrap() {
            let response = app
                .post_as(
                    "/api/public/dataset-run-items",
                    &key,
                    &json!({"runName": run, "datasetItemId": item, "traceId": trace,
                            "runDescription": format!("{run} prompt")}),
                )
                .await;
            assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        }
    }
    assert!(app.wait_until_written().await);

    let browser = Browser::start(&app).await;
    browser.goto(&format!("{PROJECT}/datasets")).await;
    browser.sign_in(OWNER_EMAIL, OWNER_PASSWORD).await;
    wait_for_prefix(&browser, &format!("{PROJECT}/datasets")).await;
    let row = browser.text(".datasets-table tbody tr").await;
    assert!(
        row.contains("support-questions") && row.contains('3') && row.contains('2'),
        "{row}"
    );
    browser.screenshot("datasets-10-list-with-runs").await;
    browser.click(".datasets-table td.dataset-name a").await;
    wait_for_prefix(&browser, &format!("{PROJECT}/datasets/")).await;
    let runs = browser.text("#runs").await;
    assert!(
        runs.contains("baseline") && runs.contains("candidate"),
        "{runs}"
    );
    browser.screenshot("datasets-10-runs-of-a-dataset").await;

    // The two newest runs start chosen; compare them.
    browser.click("#compare-button").await;
    wait_for_prefix(&browser, &format!("{PROJECT}/datasets/")).await;
    let compare = browser.path().await;
    assert!(compare.contains("/compare?runs="), "{compare}");
    let totals = browser.text("#run-totals").await;
    // baseline: $0.0012 + $0.0009 + $0.0010, accuracy (1 + 0 + 0.5) / 3; candidate all 1.
    assert!(totals.contains("$0.0031"), "{totals}");
    assert!(totals.contains("$0.0015"), "{totals}");
    assert!(
        totals.contains("0.5") && totals.contains("accuracy"),
        "{totals}"
    );
    let table = browser.text("#compare-table tbody").await;
    for text in [
        "How do I reset my password?",
        "Settings, then Reset password.",
        "Reset password",
        "Settings → Reset password.",
        "I do not know.",
        "<b>Unsafe</b> markup stays text.",
        "<img src=x onerror=alert(1)> what is this?",
    ] {
        assert!(table.contains(text), "{text} in {table}");
    }
    assert_eq!(
        eval(
            &browser,
            "return document.querySelectorAll('#compare-table img, #compare-table b').length;"
        )
        .await,
        json!(0),
        "strangers' markup is text"
    );
    browser.screenshot("datasets-11-compare").await;

    // An item's page lists both runs' results for it.
    let dataset_path = compare.split("/compare").next().unwrap().to_string();
    browser.goto(&format!("{dataset_path}/items/markup")).await;
    let item_runs = browser.text("#item-runs").await;
    assert!(
        item_runs.contains("baseline")
            && item_runs.contains("candidate")
            && item_runs.contains("<b>Unsafe</b> markup stays text."),
        "{item_runs}"
    );
    assert!(browser
        .text("#item-input-view")
        .await
        .contains("<img src=x onerror=alert(1)>"));
    browser.screenshot("datasets-11b-item-with-runs").await;
    browser.goto(&compare).await;

    // One run's own page.
    browser.click("#compare-table thead th.run-col a").await;
    wait_for_prefix(&browser, &format!("{PROJECT}/datasets/")).await;
    assert!(browser.text("#tab-extra").await.starts_with("Run: "));
    assert_eq!(
        eval(
            &browser,
            "return document.querySelectorAll('#compare-table thead th.run-col').length;"
        )
        .await,
        json!(1)
    );
    browser.screenshot("datasets-12-run").await;
    // Its trace link leads to the SDK's trace.
    browser.click("#compare-table tbody .trace-link").await;
    wait_for_prefix(&browser, &format!("{PROJECT}/traces/")).await;
    assert!(browser.has("#obs-tree").await);

    browser.client.issue_cmd(EmulateDarkTheme).await.unwrap();
    browser.goto(&compare).await;
    browser.screenshot("datasets-13-compare-dark").await;
    browser.client.clone().close().await.unwrap();
}
