//! The prompts pages, the scores table and the API keys in a real browser (the harness of
//! `ui_browser.rs`), checked through the official Python SDK 5.x, a fresh process per call with the
//! SDK's own cache off: a version made in the browser and labelled `production` is what
//! `get_prompt` returns next, a label moved in the browser too; the chat editor's rows; the diff; a
//! MEMBER offered no move of a protected label and refused a forged one; an API key made in the
//! settings ingests a score the table then shows, and once deleted is refused at once.
//! Screenshots go to `target/ui-screenshots/` as `prompts-*.png` (light and dark).

use std::time::Duration;

use fantoccini::Locator;
use serde_json::Value;

use crate::helpers::{ApiKey, TestApp, TestConfig, UiClient, UI_PASSWORD};
use crate::sdk::{sdk_python, sdk_script};
use crate::ui_browser::{Browser, EmulateDarkTheme};

const OWNER_EMAIL: &str = "owner@example.com";
const OWNER_PASSWORD: &str = "initial password";
const PROJECT: &str = "/project/boot-project";
const SDK_TRACE: &str = "7ac5d1b8a3e94b0c9f1a2b3c4d5e6f72";

/// Runs one step of `python_v5_ui.py` with `key`; the JSON it prints.
async fn sdk(app: &TestApp, key: &ApiKey, args: &[&str]) -> Value {
    let python = sdk_python("LANGFUSE_TEST_PYTHON_SDK_V5", "sdk-python-v5");
    let out = tokio::process::Command::new(python)
        .arg(sdk_script("python_v5_ui.py"))
        .args(args)
        .env("PK", &key.public)
        .env("SK", &key.secret)
        .env("HOST", &app.address)
        .output()
        .await
        .expect("run the SDK script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().expect("output")).expect("a JSON report")
}

async fn eval(browser: &Browser, script: &str) -> Value {
    browser.client.execute(script, vec![]).await.unwrap()
}

/// Waits until the page's path starts with `prefix`; the path.
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

#[tokio::test]
async fn prompts_labels_scores_and_keys_in_a_browser_are_what_the_sdk_sees() {
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
    let boot_key = ApiKey::new("pk-lf-boot", "sk-lf-boot-secret");
    // Max, a MEMBER of the project's organization.
    UiClient::signed_up(&app, "Max Member", "max@example.com").await;
    let owner_http = UiClient::new(&app);
    assert_eq!(
        owner_http
            .sign_in(OWNER_EMAIL, OWNER_PASSWORD)
            .await
            .status(),
        303
    );
    let settings = format!("{PROJECT}/settings");
    let added = owner_http
        .submit(
            &settings,
            &format!("{settings}/members"),
            &[("email", "max@example.com"), ("role", "MEMBER")],
        )
        .await;
    assert_eq!(added.status(), 303);

    let browser = Browser::start(&app).await;
    browser.goto(&format!("{PROJECT}/prompts")).await;
    browser.sign_in(OWNER_EMAIL, OWNER_PASSWORD).await;
    wait_for_prefix(&browser, &format!("{PROJECT}/prompts")).await;
    assert!(browser
        .text(".empty-state")
        .await
        .contains("no prompts yet"));

    // A text prompt in a folder, labelled production.
    browser.click("a[href$='/prompts/new']").await;
    wait_for_prefix(&browser, &format!("{PROJECT}/prompts/new")).await;
    browser.fill("#prompt-name", "support/greeting").await;
    browser
        .fill("#prompt-text", "Hello {{name}}!\nHow can I help you today?")
        .await;
    browser
        .fill("#prompt-config", r#"{"temperature": 0.2}"#)
        .await;
    browser.fill("#prompt-commit", "first words").await;
    browser.fill("#prompt-labels", "production").await;
    eval(&browser, "window.scrollTo(0, 0); return 0;").await;
    browser.screenshot("prompts-01-new-text").await;
    browser.click("#prompt-form button[type=submit]").await;
    let greeting = format!("{PROJECT}/prompts/support%2Fgreeting");
    wait_for_prefix(&browser, &format!("{greeting}?version=1")).await;
    let got = sdk(&app, &boot_key, &["get", "support/greeting"]).await;
    assert_eq!(got["version"], 1, "{got}");

    // A second version from the "New version" button, labelled production: the SDK's next read.
    browser.click("a[href$='/new?version=1']").await;
    wait_for_prefix(&browser, &format!("{greeting}/new")).await;
    browser
        .fill(
            "#prompt-text",
            "Hello {{name}}!\nWhat can I do for you today?\nAsk me anything.",
        )
        .await;
    browser.fill("#prompt-commit", "friendlier").await;
    browser.fill("#prompt-labels", "production, staging").await;
    browser.click("#prompt-form button[type=submit]").await;
    wait_for_prefix(&browser, &format!("{greeting}?version=2")).await;
    let got = sdk(&app, &boot_key, &["get", "support/greeting"]).await;
    assert_eq!(got["version"], 2, "{got}");
    assert_eq!(
        got["prompt"],
        "Hello {{name}}!\nWhat can I do for you today?\nAsk me anything."
    );
    browser.screenshot("prompts-02-prompt").await;

    // Moving production back to v1 in the browser: the SDK follows.
    browser.goto(&format!("{greeting}?version=1")).await;
    browser.fill("#new-label", "production").await;
    browser.click("#set-label button[type=submit]").await;
    wait_for_prefix(&browser, &format!("{greeting}?version=1&done=label-set")).await;
    let got = sdk(&app, &boot_key, &["get", "support/greeting"]).await;
    assert_eq!(got["version"], 1, "{got}");
    assert!(browser.text("#version-labels").await.contains("production"));

    // The diff of v1 and v2 shows the changed lines.
    browser.goto(&format!("{greeting}/diff?from=1&to=2")).await;
    let removed = browser.text("tr.diff-del").await;
    assert!(removed.contains("How can I help you today?"), "{removed}");
    let added = eval(
        &browser,
        "return Array.from(document.querySelectorAll('tr.diff-add')).map(r => r.textContent).join('|');",
    )
    .await;
    let added = added.as_str().unwrap();
    assert!(added.contains("What can I do for you today?") && added.contains("Ask me anything."));
    assert_diff_colours_are_not_the_error_colour(&browser).await;
    browser.screenshot("prompts-03-diff").await;
    browser
        .client
        .find(Locator::Css("#diff-view option[value=split]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_prefix(&browser, &format!("{greeting}/diff?from=1&to=2&view=split")).await;
    assert!(browser.has("table.diff-split").await);
    browser.screenshot("prompts-04-diff-split").await;

    // A chat prompt through the editor's rows, including a composed message.
    browser.goto(&format!("{PROJECT}/prompts/new")).await;
    browser.fill("#prompt-name", "support/chat").await;
    browser.click("input[name=type][value=chat]").await;
    assert!(
        browser.has("#message-rows .message-row").await,
        "the script made rows"
    );
    browser
        .fill(
            "#message-rows .message-row:nth-child(1) .message-role",
            "system",
        )
        .await;
    browser
        .fill(
            "#message-rows .message-row:nth-child(1) .message-content",
            "@@@langfusePrompt:name=support/greeting|label=production@@@",
        )
        .await;
    browser.click("#add-message").await;
    browser
        .fill(
            "#message-rows .message-row:nth-child(2) .message-content",
            "{{question}}",
        )
        .await;
    browser.fill("#prompt-labels", "production").await;
    eval(&browser, "window.scrollTo(0, 0); return 0;").await;
    browser.screenshot("prompts-05-new-chat").await;
    browser.click("#prompt-form button[type=submit]").await;
    wait_for_prefix(
        &browser,
        &format!("{PROJECT}/prompts/support%2Fchat?version=1"),
    )
    .await;
    let got = sdk(&app, &boot_key, &["get", "support/chat"]).await;
    let messages: Vec<(String, String)> = got["prompt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().into(),
                m["content"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        messages,
        vec![
            (
                "system".into(),
                "Hello {{name}}!\nHow can I help you today?".into()
            ),
            ("user".into(), "{{question}}".into())
        ],
        "{got}"
    );
    assert!(browser
        .text("#prompt-resolved")
        .await
        .contains("How can I help you today?"));
    browser.screenshot("prompts-06-chat-resolved").await;

    // The list.
    browser.goto(&format!("{PROJECT}/prompts")).await;
    let list = browser.text(".prompts-table").await;
    assert!(list.contains("support/greeting") && list.contains("support/chat"));
    browser.screenshot("prompts-07-list").await;

    // production is protected, in the settings.
    browser.goto(&settings).await;
    browser.fill("#protected-label", "production").await;
    browser.click("#protect-label button[type=submit]").await;
    wait_for_prefix(&browser, &format!("{settings}?done=label-protected")).await;
    assert!(browser
        .text("#protected-labels")
        .await
        .contains("production"));

    // An API key made here sends a trace and a score through the SDK; the scores table shows it.
    browser.fill("#key-note", "browser test").await;
    browser.click("#create-api-key button[type=submit]").await;
    let public = browser.text("#new-public-key").await;
    let secret = browser.text("#new-secret-key").await;
    let key = ApiKey::new(public, secret);
    assert_eq!(sdk(&app, &key, &["ingest", SDK_TRACE]).await["ok"], true);
    let scored = crate::helpers::eventually(Duration::from_secs(20), || async {
        app.get_json(&format!("/api/public/traces/{SDK_TRACE}"), &boot_key)
            .await
            .1["scores"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    })
    .await;
    assert!(scored, "the SDK's score arrived");
    browser.goto(&format!("{PROJECT}/scores")).await;
    browser
        .fill("#score-filters input[name=name]", "helpfulness")
        .await;
    browser.click("#score-filters button[type=submit]").await;
    let filtered = wait_for_prefix(&browser, &format!("{PROJECT}/scores?")).await;
    assert_eq!(
        filtered,
        format!("{PROJECT}/scores?name=helpfulness&limit=50"),
        "empty filters stay out of the URL"
    );
    let table = browser.text("#scores-table").await;
    assert!(
        table.contains("helpfulness") && table.contains("0.9") && table.contains("ui-user"),
        "{table}"
    );
    let rows = browser
        .client
        .find_all(Locator::Css("#scores-table tbody tr"))
        .await
        .unwrap()
        .len();
    assert_eq!(rows, 1);
    browser.screenshot("prompts-08-scores").await;

    // The key's last use shows; deleted in the settings, it is refused at once.
    browser.goto(&settings).await;
    let keys = browser.text("#api-keys").await;
    assert!(keys.contains("browser test"));
    browser.screenshot("prompts-09-settings").await;
    let delete = format!("#api-keys form[data-confirm*='{}'] button", key.public);
    browser.click(&delete).await;
    browser.client.accept_alert().await.unwrap();
    wait_for_prefix(&browser, &format!("{settings}?done=key-deleted")).await;
    assert_eq!(sdk(&app, &key, &["auth"]).await["ok"], false);

    // Dark theme, as a system set to dark shows these pages.
    browser.client.issue_cmd(EmulateDarkTheme).await.unwrap();
    for (path, shot) in [
        (format!("{PROJECT}/prompts"), "prompts-10-list-dark"),
        (format!("{greeting}?version=2"), "prompts-11-prompt-dark"),
        (
            format!("{greeting}/diff?from=1&to=2"),
            "prompts-12-diff-dark",
        ),
        (
            format!("{PROJECT}/prompts/support%2Fchat"),
            "prompts-13-chat-dark",
        ),
        (
            format!("{PROJECT}/prompts/support%2Fchat/new"),
            "prompts-14-edit-chat-dark",
        ),
        (format!("{PROJECT}/scores"), "prompts-15-scores-dark"),
        (settings.clone(), "prompts-16-settings-dark"),
    ] {
        browser.goto(&path).await;
        if shot == "prompts-12-diff-dark" {
            assert_diff_colours_are_not_the_error_colour(&browser).await;
        }
        browser.screenshot(shot).await;
    }

    // Max, a MEMBER: no control over the protected label, and a forged move is refused.
    browser.client.delete_all_cookies().await.unwrap();
    browser.goto(&format!("{greeting}?version=2")).await;
    browser.sign_in("max@example.com", UI_PASSWORD).await;
    wait_for_prefix(&browser, &greeting).await;
    assert!(
        !browser
            .has("form[action$='/labels/remove'] input[value=production]")
            .await,
        "no removal of the protected label offered"
    );
    let hint = browser.text("#set-label + .hint").await;
    assert!(hint.contains("only by owners and admins"), "{hint}");
    let status = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const token = document.querySelector('#set-label input[name=csrf_token]').value;
             fetch(document.querySelector('#set-label').action, {method: 'POST',
                   body: new URLSearchParams({csrf_token: token, version: '2', label: 'production'})})
               .then(r => done(r.status));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, 403);
    let got = sdk(&app, &boot_key, &["get", "support/greeting"]).await;
    assert_eq!(got["version"], 1, "production did not move: {got}");
    // Other labels are a member's to set.
    browser.fill("#new-label", "review").await;
    browser.click("#set-label button[type=submit]").await;
    wait_for_prefix(&browser, &format!("{greeting}?version=2&done=label-set")).await;
    browser.screenshot("prompts-17-member-dark").await;
}

/// A diff's removed and added lines are neither in the error colour nor on its background.
async fn assert_diff_colours_are_not_the_error_colour(browser: &Browser) {
    let colours = eval(
        browser,
        "const probe = document.createElement('p');
         document.body.appendChild(probe);
         const of = (v) => { probe.style.color = `var(${v})`; return getComputedStyle(probe).color; };
         const error = [of('--error'), of('--error-soft')];
         probe.remove();
         const del = document.querySelector('tr.diff-del pre');
         const row = document.querySelector('tr.diff-del td');
         const add = document.querySelector('tr.diff-add pre');
         return [error, [getComputedStyle(del).color, getComputedStyle(row).backgroundColor,
                         getComputedStyle(add).color, getComputedStyle(del).textDecorationLine]];",
    )
    .await;
    let (error, diff) = (&colours[0], &colours[1]);
    for shown in diff.as_array().unwrap()[..3].iter() {
        assert!(
            !error.as_array().unwrap().contains(shown),
            "a diff colour is the error colour: {colours}"
        );
    }
    assert_eq!(diff[3], "line-through", "{colours}");
}
