//! Score configs in a real browser (the harness of `ui_browser.rs`): the owner reaches the score
//! configs page from the project settings, creates a categorical config (adding a category row
//! with the page's script), then opens a trace the Python SDK 5.x sent, scores it with the config
//! on the trace page (choosing the config turns the value into a select of its categories), and
//! reads the score back through the public API with its `configId` and the category's value.
//! Screenshots go to `target/ui-screenshots/` as `score-configs-*.png` (light and dark).

use std::time::Duration;

use fantoccini::Locator;
use serde_json::{json, Value};

use crate::helpers::{ApiKey, TestApp};
use crate::sdk::{run_roundtrip, sdk_python, sdk_script};
use crate::ui_browser::{Browser, EmulateDarkTheme};

const OWNER_EMAIL: &str = "owner@example.com";
const OWNER_PASSWORD: &str = "initial password";
const PROJECT: &str = "/project/boot-project";
const TRACE: &str = "5c0fe1d2c3b4a5968778695a4b3c2d2f";
const OTHER_TRACE: &str = "5c0fe1d2c3b4a5968778695a4b3c2d30";

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

async fn select(browser: &Browser, css: &str, value: &str) {
    browser
        .client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .select_by_value(value)
        .await
        .unwrap();
}

async fn eval(browser: &Browser, script: &str) -> Value {
    browser.client.execute(script, vec![]).await.unwrap()
}

#[tokio::test]
async fn a_categorical_config_made_in_settings_scores_an_sdk_trace_on_its_page() {
    let python = sdk_python("LANGFUSE_TEST_PYTHON_SDK_V5", "sdk-python-v5");
    let (app, key): (TestApp, ApiKey) = crate::ui_trace_detail::boot_app().await;
    let mut command = tokio::process::Command::new(python);
    command
        .arg(sdk_script("python_v5_trace_page.py"))
        .env("TRACE_ID_2", OTHER_TRACE);
    let ids = run_roundtrip(command, &app, &key, TRACE).await;
    let url = ids["url"].as_str().expect("get_trace_url() built a link");
    let trace_path = url
        .strip_prefix(app.address.as_str())
        .unwrap_or(url)
        .to_string();
    // A numeric config made through the API, so the list shows more than one kind.
    let response = app
        .post_as(
            "/api/public/score-configs",
            &key,
            &json!({"name": "accuracy", "dataType": "NUMERIC", "minValue": 0, "maxValue": 1,
                    "description": "Share of the facts that are right"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(app.wait_until_written().await);

    let browser = Browser::start(&app).await;
    browser.goto(&format!("{PROJECT}/settings")).await;
    browser.sign_in(OWNER_EMAIL, OWNER_PASSWORD).await;
    wait_for_prefix(&browser, &format!("{PROJECT}/settings")).await;
    browser.click("#score-configs-link").await;
    let page = format!("{PROJECT}/settings/scores");
    wait_for_prefix(&browser, &page).await;
    assert!(browser.text("#configs").await.contains("accuracy"));
    // The script shows the numeric range only while NUMERIC is chosen.
    assert_eq!(
        eval(&browser, "return [document.querySelector('[data-for-type=NUMERIC]').hidden, document.querySelector('[data-for-type=CATEGORICAL]').hidden];").await,
        json!([false, true])
    );
    browser.screenshot("score-configs-01-page").await;

    browser.fill("#config-name", "helpfulness").await;
    select(&browser, "#config-type", "CATEGORICAL").await;
    assert_eq!(
        eval(&browser, "return [document.querySelector('[data-for-type=NUMERIC]').hidden, document.querySelector('[data-for-type=CATEGORICAL]').hidden];").await,
        json!([true, false])
    );
    browser.click("#add-category").await;
    let rows = [
        ("not helpful", "0"),
        ("somewhat", "1"),
        ("helpful", "2"),
        ("very helpful", "3"),
    ];
    for (i, (label, value)) in rows.iter().enumerate() {
        let row = format!("#category-rows .category-row:nth-child({})", i + 1);
        browser
            .fill(&format!("{row} input[name=category_label]"), label)
            .await;
        browser
            .fill(&format!("{row} input[name=category_value]"), value)
            .await;
    }
    browser
        .fill("#config-description", "Did the answer solve the question?")
        .await;
    browser.screenshot("score-configs-02-form").await;
    browser.click("#config-form button[type=submit]").await;
    wait_for_prefix(&browser, &format!("{page}?done=created")).await;
    let list = browser.text("#configs").await;
    assert!(
        list.contains("helpfulness") && list.contains("very helpful = 3"),
        "{list}"
    );
    browser.screenshot("score-configs-03-created").await;

    let (_, configs) = app.get_json("/api/public/score-configs", &key).await;
    let config = configs["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "helpfulness")
        .expect("the config, through the API")
        .clone();
    assert_eq!(config["dataType"], "CATEGORICAL");
    assert_eq!(config["categories"].as_array().unwrap().len(), 4);
    let config_id = config["id"].as_str().unwrap().to_string();

    // The SDK's trace: choosing the config shows a select of its categories instead of the
    // free-form fields.
    browser.goto(&trace_path).await;
    let part = format!("[data-score-part='{config_id}']");
    assert!(browser.has("select[data-score-config]").await);
    assert_eq!(
        eval(
            &browser,
            &format!("return document.querySelector(\"{part}\").hidden;")
        )
        .await,
        json!(true)
    );
    eval(
        &browser,
        "document.getElementById('score-form').scrollIntoView(); return 1;",
    )
    .await;
    browser.screenshot("score-configs-04-trace-form-free").await;
    select(&browser, "select[data-score-config]", &config_id).await;
    assert_eq!(
        eval(
            &browser,
            &format!("return [document.querySelector(\"{part}\").hidden, document.querySelector(\"[data-score-part='']\").hidden, document.querySelector(\"{part} select\").disabled];"),
        )
        .await,
        json!([false, true, false])
    );
    select(&browser, &format!("{part} select[name=value]"), "helpful").await;
    browser
        .fill("#score-form input[name=comment]", "Answered in one step")
        .await;
    browser
        .screenshot("score-configs-05-trace-form-config")
        .await;
    browser.click("#score-form button[type=submit]").await;
    wait_for_prefix(&browser, &format!("{trace_path}?scored=")).await;
    let scores = browser.text("#detail-scores").await;
    assert!(
        scores.contains("helpfulness") && scores.contains("helpful"),
        "{scores}"
    );
    eval(
        &browser,
        "document.getElementById('detail-scores').scrollIntoView(); return 1;",
    )
    .await;
    browser.screenshot("score-configs-06-scored").await;

    let (status, read) = app
        .get_json("/api/public/v2/scores?name=helpfulness", &key)
        .await;
    assert_eq!(status, 200);
    let score = &read["data"][0];
    assert_eq!(score["traceId"], TRACE, "{read}");
    assert_eq!(score["configId"], json!(config_id));
    assert_eq!(score["value"], json!(2.0));
    assert_eq!(score["stringValue"], "helpful");
    assert_eq!(score["dataType"], "CATEGORICAL");
    assert_eq!(score["source"], "ANNOTATION");
    assert_eq!(score["comment"], "Answered in one step");

    browser.client.issue_cmd(EmulateDarkTheme).await.unwrap();
    browser.goto(&page).await;
    browser.screenshot("score-configs-07-page-dark").await;
    browser.goto(&trace_path).await;
    browser.click("#detail-scores summary").await;
    select(&browser, "select[data-score-config]", &config_id).await;
    browser.screenshot("score-configs-08-trace-form-dark").await;
    browser.client.clone().close().await.unwrap();
}
