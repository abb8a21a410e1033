//! The dashboards in a real browser (the harness of `ui_browser.rs`), over data the Python SDK
//! 5.x sent (`tests/sdk/python_v5_dashboard.py`): the project home shows the generation's model
//! with its cost and tokens, a preset and a custom time range change the charts, a person builds
//! a custom dashboard with widgets, arranges it, reloads and finds it as they left it, and a
//! VIEWER sees it without any control. Names that are markup stay text. Screenshots go to
//! `target/ui-screenshots/` as `dashboard-*.png` (light and dark).

use fantoccini::Locator;
use serde_json::{json, Value};

use crate::helpers::{ApiKey, TestApp, TestConfig, UiClient, UI_PASSWORD};
use crate::sdk::{sdk_python, sdk_script};
use crate::ui_browser::{Browser, EmulateDarkTheme};

const OWNER_EMAIL: &str = "owner@example.com";
const OWNER_PASSWORD: &str = "initial password";
const PROJECT: &str = "/project/boot-project";

async fn select(browser: &Browser, css: &str, value: &str) {
    browser
        .client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .select_by_value(value)
        .await
        .unwrap_or_else(|e| panic!("{css} = {value}: {e}"));
}

async fn eval(browser: &Browser, script: &str) -> Value {
    browser.client.execute(script, vec![]).await.unwrap()
}

/// The titles of the dashboard's widgets, in their order on the page.
async fn widget_titles(browser: &Browser) -> Vec<String> {
    let titles = eval(
        browser,
        "return [...document.querySelectorAll('.widget .widget-title')].map(h => h.textContent);",
    )
    .await;
    serde_json::from_value(titles).unwrap()
}

#[tokio::test]
async fn dashboards_in_a_browser_over_data_from_the_python_sdk() {
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

    let python = sdk_python("LANGFUSE_TEST_PYTHON_SDK_V5", "sdk-python-v5");
    let out = tokio::process::Command::new(python)
        .arg(sdk_script("python_v5_dashboard.py"))
        .env("PK", &key.public)
        .env("SK", &key.secret)
        .env("HOST", &app.address)
        .output()
        .await
        .expect("run the SDK script");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(app.wait_for_rows("traces", "boot-project", 2).await);
    assert!(app.wait_for_rows("observations", "boot-project", 8).await);
    assert!(app.wait_for_rows("scores", "boot-project", 4).await);
    let browser = Browser::start(&app).await;
    browser.goto(PROJECT).await;
    browser.sign_in(OWNER_EMAIL, OWNER_PASSWORD).await;
    browser.wait_for_path(PROJECT).await;

    // The home dashboard: the model with its cost and tokens.
    let body = browser.body().await;
    assert!(body.contains("Cost by model"), "{body}");
    let table = browser.text(".chart-table").await;
    assert!(table.contains("gpt-4o"), "{table}");
    // 2,000 input and 500 output tokens, $0.006 and $0.004.
    assert!(table.contains("2,000 tokens"), "{table}");
    assert!(table.contains("500 tokens"), "{table}");
    assert!(table.contains("2,500 tokens"), "{table}");
    assert!(table.contains("$0.01"), "{table}");
    assert!(
        table.contains("<img src=x onerror=alert(1)>"),
        "a model name that is markup reads as text: {table}"
    );
    assert!(
        body.contains("<script>alert('t')</script>"),
        "so does a trace name"
    );
    assert!(body.contains("<b>tone</b>: friendly"), "and a score name");
    assert_eq!(
        eval(
            &browser,
            "return document.querySelectorAll('main img, main script, main b').length;"
        )
        .await,
        json!(0),
        "no markup of strangers became elements"
    );
    let totals = browser.text(".totals").await;
    assert!(
        totals.contains("TRACES\n2") || totals.contains("Traces\n2"),
        "{totals}"
    );
    browser.screenshot("dashboard-01-home").await;

    // The time range: a preset, then a custom range of the past, through the form.
    browser.click(".range-presets a[href$='range=1h']").await;
    browser.wait_for_path(&format!("{PROJECT}?range=1h")).await;
    assert!(browser.text(".chart-table").await.contains("gpt-4o"));
    assert!(
        browser
            .has(".range-presets a.current[href$='range=1h']")
            .await
    );
    eval(
        &browser,
        "document.querySelector('input[name=from]').value = '2024-01-01T00:00';
         document.querySelector('input[name=to]').value = '2024-01-02T00:00'; return null;",
    )
    .await;
    browser.click(".range-control button[type=submit]").await;
    let path = browser
        .wait_for_path(&format!(
            "{PROJECT}?range=custom&from=2024-01-01T00%3A00&to=2024-01-02T00%3A00"
        ))
        .await;
    assert!(path.contains("range=custom"), "{path}");
    let body = browser.body().await;
    assert!(body.contains("No data in this range"), "{body}");
    assert!(!body.contains("gpt-4o"));
    assert!(body.contains("Send data to this project"));
    browser.screenshot("dashboard-02-home-empty-range").await;

    // A custom dashboard, its widgets built in the editor.
    browser.goto(&format!("{PROJECT}/dashboards")).await;
    browser.fill("#new-dashboard-name", "Model costs").await;
    browser
        .click("form[action$='/dashboards'] button[type=submit]")
        .await;
    let heading = browser.text("h1").await;
    assert_eq!(heading, "Model costs");
    let dashboard = browser.path().await;

    browser.click("a[href*='/widgets/new']").await;
    browser.fill("#widget-name", "Cost by model").await;
    select(&browser, "select[name=view]", "observations").await;
    browser
        .click("#widget-measure optgroup[data-view=observations] option[value=totalCost]")
        .await;
    select(&browser, "select[name=aggregation]", "sum").await;
    select(&browser, "select[name=dimension]", "providedModelName").await;
    select(&browser, "select[name=granularity]", "none").await;
    select(&browser, "select[name=chart_type]", "bar").await;
    // Only the chosen view's measures are offered.
    assert_eq!(
        eval(
            &browser,
            "return document.querySelector('#widget-measure optgroup[data-view=traces]').hidden;"
        )
        .await,
        json!(true)
    );
    browser.click("button[value=preview]").await;
    let preview = browser.text(".widget-preview").await;
    assert!(preview.contains("gpt-4o"), "{preview}");
    assert!(preview.contains("$0.01"), "the cost of gpt-4o: {preview}");
    browser.screenshot("dashboard-03-widget-preview").await;
    browser.click("button[value=save]").await;
    browser.text(".widget").await;

    browser.click("a[href*='/widgets/new']").await;
    browser.fill("#widget-name", "Traces over time").await;
    select(&browser, "select[name=view]", "traces").await;
    select(&browser, "select[name=measure]", "count").await;
    select(&browser, "select[name=aggregation]", "count").await;
    select(&browser, "select[name=granularity]", "auto").await;
    select(&browser, "select[name=chart_type]", "line").await;
    select(&browser, "select[name=width]", "12").await;
    browser.click("button[value=save]").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while widget_titles(&browser).await.len() < 2 {
        assert!(std::time::Instant::now() < deadline, "two widgets");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        widget_titles(&browser).await,
        ["Cost by model", "Traces over time"]
    );

    // Arranging: the line moves up, the bars get wider; a reload shows the same.
    browser
        .click("button[aria-label='Move up: Traces over time']")
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while widget_titles(&browser).await.first().map(String::as_str) != Some("Traces over time") {
        assert!(std::time::Instant::now() < deadline, "moved up");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    browser
        .click("button[aria-label='Wider: Cost by model']")
        .await;
    browser.text(".widget").await;
    browser.goto(&dashboard).await;
    assert_eq!(
        widget_titles(&browser).await,
        ["Traces over time", "Cost by model"]
    );
    assert!(browser.has(".widget.w-8[aria-label='Cost by model']").await);
    let bars = browser.text(".widget.w-8").await;
    assert!(bars.contains("gpt-4o") && bars.contains("$0.01"), "{bars}");
    browser.screenshot("dashboard-04-custom").await;

    browser.client.issue_cmd(EmulateDarkTheme).await.unwrap();
    browser.goto(&dashboard).await;
    browser.screenshot("dashboard-05-custom-dark").await;
    browser.goto(PROJECT).await;
    browser.screenshot("dashboard-06-home-dark").await;

    // A VIEWER reads the dashboard without controls.
    let viewer = UiClient::signed_up(&app, "Vera Viewer", "vera@example.com").await;
    drop(viewer);
    let owner = UiClient::new(&app);
    assert_eq!(
        owner.sign_in(OWNER_EMAIL, OWNER_PASSWORD).await.status(),
        303
    );
    let response = owner
        .submit(
            &format!("{PROJECT}/settings"),
            &format!("{PROJECT}/settings/members"),
            &[("email", "vera@example.com"), ("role", "VIEWER")],
        )
        .await;
    assert_eq!(response.status(), 303);
    browser.click(".user-menu summary").await;
    browser.click("form[action='/auth/sign-out'] button").await;
    browser.goto(&dashboard).await;
    browser.sign_in("vera@example.com", UI_PASSWORD).await;
    browser.wait_for_path(&dashboard).await;
    assert!(browser.text(".widget.w-8").await.contains("gpt-4o"));
    assert!(!browser.has(".widget-controls").await, "no arranging");
    assert!(
        !browser.has("a[href*='/widgets/new']").await,
        "no new widget"
    );
    assert!(!browser.has("#layout-form").await);
    assert!(!browser.has(".widget-title[draggable]").await);
    browser.screenshot("dashboard-07-viewer").await;
    browser.client.clone().close().await.unwrap();
}
