//! The models settings page in a real browser (the harness of `ui_browser.rs`): the owner reaches
//! it from the project settings, creates a project model in the form, finds it through
//! `GET /api/public/models`, asks the matching box which model a name is priced by, and deletes
//! it. Screenshots go to `target/ui-screenshots/` as `models-*.png` (light and dark).

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{ApiKey, TestApp, TestConfig};
use crate::ui_browser::Browser;
use crate::ui_browser::EmulateDarkTheme;

const OWNER_EMAIL: &str = "owner@example.com";
const OWNER_PASSWORD: &str = "initial password";
const PROJECT: &str = "/project/boot-project";

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

async fn project_models(app: &TestApp, key: &ApiKey) -> Vec<Value> {
    let mut all = Vec::new();
    let mut page = 1;
    loop {
        let (status, body) = app
            .get_json(&format!("/api/public/models?limit=100&page={page}"), key)
            .await;
        assert_eq!(status, 200, "{body}");
        all.extend(body["data"].as_array().unwrap().iter().cloned());
        if page >= body["meta"]["totalPages"].as_u64().unwrap() {
            break;
        }
        page += 1;
    }
    all.retain(|m| m["isLangfuseManaged"] == false);
    all
}

#[tokio::test]
async fn a_model_created_in_the_browser_is_what_the_models_api_answers() {
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
    let app = TestApp::spawn(config).await;
    let key = ApiKey::new("pk-lf-boot", "sk-lf-boot-secret");
    let page = format!("{PROJECT}/settings/models");

    let browser = Browser::start(&app).await;
    browser.goto(&format!("{PROJECT}/settings")).await;
    browser.sign_in(OWNER_EMAIL, OWNER_PASSWORD).await;
    wait_for_prefix(&browser, &format!("{PROJECT}/settings")).await;
    browser.click("#models-link").await;
    wait_for_prefix(&browser, &page).await;
    assert!(browser.text("#shipped-models").await.contains("gpt-4o"));
    assert!(browser
        .text("#project-models")
        .await
        .contains("no models of its own"));
    browser.screenshot("models-01-page").await;

    // A refusal of the models API comes back in the form, with what was written.
    browser.fill("#model-name", "support-bot").await;
    browser
        .fill("#model-pattern", "(?i)^(acme/)?support-bot$")
        .await;
    browser.click("#model-form button[type=submit]").await;
    assert!(browser
        .text("#form-error")
        .await
        .contains("Must provide either flat prices"));
    browser.screenshot("models-02-refused").await;

    browser.fill("#model-start", "2025-01-01T00:00:00Z").await;
    browser
        .client
        .find(fantoccini::Locator::Css("#model-unit"))
        .await
        .unwrap()
        .select_by_value("TOKENS")
        .await
        .unwrap();
    browser.fill("#price-input", "0.0000005").await;
    browser.fill("#price-output", "0.0000015").await;
    browser.click("#model-form button[type=submit]").await;
    wait_for_prefix(&browser, &format!("{page}?done=created")).await;
    assert!(browser
        .text("#project-models")
        .await
        .contains("support-bot"));

    let own = project_models(&app, &key).await;
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0]["modelName"], "support-bot");
    assert_eq!(own[0]["matchPattern"], "(?i)^(acme/)?support-bot$");
    assert_eq!(own[0]["startDate"], "2025-01-01T00:00:00.000Z");
    assert_eq!(own[0]["unit"], "TOKENS");
    assert_eq!(own[0]["inputPrice"], 0.0000005);
    assert_eq!(own[0]["outputPrice"], 0.0000015);
    assert_eq!(own[0]["pricingTiers"][0]["name"], "Standard");

    // Which model matches: the project's, from its start date on.
    browser.fill("#match-model", "acme/support-bot").await;
    browser.fill("#match-at", "2025-06-01T00:00:00Z").await;
    browser.click("#match-form button[type=submit]").await;
    assert_eq!(browser.text("#matched-model").await, "support-bot");
    assert!(browser.text("#match-result").await.contains("0.0000005"));
    browser.screenshot("models-03-match").await;
    browser.fill("#match-at", "2024-06-01T00:00:00Z").await;
    browser.click("#match-form button[type=submit]").await;
    assert!(browser.text("#no-match").await.contains("No model matches"));
    browser.fill("#match-model", "claude-sonnet-4-5").await;
    browser.fill("#match-at", "").await;
    browser.click("#match-form button[type=submit]").await;
    assert!(browser.text("#match-result").await.contains("shipped"));
    browser.screenshot("models-04-match-shipped").await;

    browser.client.issue_cmd(EmulateDarkTheme).await.unwrap();
    browser.goto(&page).await;
    browser.screenshot("models-05-page-dark").await;

    // Deleting asks first; then the API has no project model.
    browser
        .click("#project-models form[data-confirm*='support-bot'] button")
        .await;
    browser.client.accept_alert().await.unwrap();
    wait_for_prefix(&browser, &format!("{page}?done=deleted")).await;
    assert!(project_models(&app, &key).await.is_empty());
}
