//! The web UI in a real browser: Debian's headless chromium, driven over WebDriver by a
//! chromedriver each test starts on a free port (and which is killed when the test ends).
//! `scripts/test.sh` installs both and names them in `LANGFUSE_TEST_CHROMIUM` and
//! `LANGFUSE_TEST_CHROMEDRIVER`. Every page visited is saved as a PNG under
//! `target/ui-screenshots/` (not committed), to be looked at.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::{free_port, ApiKey, TestApp, TestConfig, UiClient, UI_PASSWORD};

const OWNER_EMAIL: &str = "owner@example.com";
const OWNER_PASSWORD: &str = "initial password";

fn var_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// A headless chromium session with its own chromedriver (the other browser tests use it too).
pub(crate) struct Browser {
    pub(crate) client: Client,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
    base: String,
}

impl Browser {
    pub(crate) async fn start(app: &TestApp) -> Browser {
        let driver = var_or("LANGFUSE_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = var_or("LANGFUSE_TEST_CHROMIUM", "/usr/bin/chromium");
        for (what, path) in [("chromedriver", &driver), ("chromium", &chromium)] {
            assert!(
                std::path::Path::new(path).exists(),
                "{what} not found at {path}: ./scripts/test.sh installs Debian's chromium and chromium-driver"
            );
        }
        let port = free_port();
        let child = tokio::process::Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            // Its own process group, which the chromium it starts joins: see `Drop`.
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let webdriver = format!("http://127.0.0.1:{port}");
        let ready = crate::helpers::eventually(Duration::from_secs(20), || {
            let url = format!("{webdriver}/status");
            async move { reqwest::get(url).await.is_ok_and(|r| r.status() == 200) }
        })
        .await;
        assert!(ready, "chromedriver did not answer on port {port}");
        let profile = tempfile::tempdir().unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_string(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    "--window-size=1280,900",
                    "--force-device-scale-factor=1",
                    "--disable-crash-reporter",
                    "--disable-breakpad",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&webdriver)
            .await
            .expect("a chromium session");
        let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            client,
            _driver: child,
            _profile: profile,
            shots,
            base: app.address.clone(),
        }
    }

    pub(crate) async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    pub(crate) async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Waits until the page is at `expected` (a form's answer may still be loading); the path.
    pub(crate) async fn wait_for_path(&self, expected: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let path = self.path().await;
            if path == expected || std::time::Instant::now() > deadline {
                return path;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    pub(crate) async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Clicks the element as a person would: brought to the middle of the window first. (The
    /// driver's own scrolling may stop with the element under the sticky top bar, which then
    /// takes the click.)
    pub(crate) async fn click(&self, css: &str) {
        let element = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        let argument = serde_json::to_value(&element).unwrap();
        self.client
            .execute(
                "arguments[0].scrollIntoView({block: 'center', inline: 'nearest'})",
                vec![argument],
            )
            .await
            .unwrap();
        element.click().await.unwrap();
    }

    /// The text of the first element matching `css`, once there is one. Found again when the
    /// page it was found on goes away before its text is read (a navigation still under way).
    pub(crate) async fn text(&self, css: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let element = self
                .client
                .wait()
                .at_most(Duration::from_secs(10))
                .for_element(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("{css}: {e}"));
            match element.text().await {
                Ok(text) => return text,
                Err(e) if std::time::Instant::now() < deadline => {
                    eprintln!("{css}: {e}; finding it again");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("{css}: {e}"),
            }
        }
    }

    pub(crate) async fn body(&self) -> String {
        self.text("body").await
    }

    pub(crate) async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .is_empty()
    }

    pub(crate) async fn sign_in(&self, email: &str, password: &str) {
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.click("form[action='/auth/sign-in'] button[type=submit]")
            .await;
    }
}

impl Drop for Browser {
    /// Ends chromedriver and every browser process it started, also when the test failed before
    /// closing its session, so no chromium is left running.
    fn drop(&mut self) {
        if let Some(pid) = self._driver.id() {
            // SAFETY: kill(2) with a negative pid signals that process group; no memory is touched.
            unsafe {
                libc::kill(-(pid as i32), libc::SIGKILL);
            }
        }
    }
}

/// An app with the bootstrap organization, project, key and first user.
async fn app_with_init_user() -> TestApp {
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
    TestApp::spawn(config).await
}

#[tokio::test]
async fn a_person_signs_in_creates_an_api_key_and_signs_out_in_a_browser() {
    let app = app_with_init_user().await;
    let browser = Browser::start(&app).await;

    browser.goto("/").await;
    assert_eq!(browser.path().await, "/auth/sign-in");
    browser.screenshot("01-sign-in").await;

    browser.sign_in(OWNER_EMAIL, "not the password").await;
    assert!(browser
        .text(".alert-error")
        .await
        .contains("Invalid email or password"));
    browser.screenshot("02-sign-in-wrong-password").await;

    browser.sign_in(OWNER_EMAIL, OWNER_PASSWORD).await;
    assert!(browser
        .text("h1")
        .await
        .contains("Organizations and projects"));
    assert_eq!(browser.path().await, "/");
    let body = browser.body().await;
    assert!(body.contains("Acme Research") && body.contains("Support Assistant"));
    browser.screenshot("03-start-page").await;

    browser.click(".project-list a").await;
    assert_eq!(
        browser.wait_for_path("/project/boot-project").await,
        "/project/boot-project"
    );
    assert!(browser.text("h1").await.contains("Support Assistant"));
    browser.screenshot("04-project-home").await;

    browser.click(".sidenav a[href$='/settings']").await;
    let settings = "/project/boot-project/settings";
    assert_eq!(browser.wait_for_path(settings).await, settings);
    // The script ran: times are shown in the browser's zone, the server's UTC text on hover.
    let time = browser
        .client
        .find(Locator::Css("#api-keys time"))
        .await
        .unwrap();
    assert!(time
        .attr("title")
        .await
        .unwrap()
        .unwrap_or_default()
        .ends_with("UTC"));
    browser.screenshot("05-settings").await;
    browser
        .client
        .execute(
            "document.getElementById('members').scrollIntoView()",
            vec![],
        )
        .await
        .unwrap();
    browser.screenshot("05b-settings-members").await;

    browser.fill("#key-note", "production backend").await;
    browser.click("#create-api-key button[type=submit]").await;
    let secret = browser.text("#new-secret-key").await;
    let public = browser.text("#new-public-key").await;
    assert!(secret.starts_with("sk-lf-") && public.starts_with("pk-lf-"));
    assert!(
        browser.has("button.copy:not([hidden])").await,
        "copy buttons shown"
    );
    browser.screenshot("06-new-api-key").await;
    let (status, body) = app
        .get_json("/api/public/projects", &ApiKey::new(public, secret))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["id"], "boot-project");

    // Usable at 800 pixels: the navigation moves above the content.
    browser.client.set_window_size(800, 900).await.unwrap();
    browser.goto("/project/boot-project/settings").await;
    browser.screenshot("07-settings-800px").await;
    browser.client.set_window_size(1280, 900).await.unwrap();

    browser.goto("/project/someone-elses").await;
    assert!(browser.text("h1").await.contains("Page not found"));
    browser.screenshot("08-not-found").await;

    browser.goto("/project/boot-project").await;
    browser.click(".user-menu summary").await;
    browser.screenshot("09-user-menu").await;
    browser
        .click(".user-menu form[action='/auth/sign-out'] button")
        .await;
    assert_eq!(
        browser.wait_for_path("/auth/sign-in").await,
        "/auth/sign-in"
    );
    browser.goto("/project/boot-project").await;
    assert_eq!(
        browser.path().await,
        "/auth/sign-in?next=%2Fproject%2Fboot-project"
    );
    browser.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_viewer_gets_no_controls_and_a_forged_post_is_refused_in_a_browser() {
    let app = app_with_init_user().await;
    let browser = Browser::start(&app).await;

    browser.goto("/auth/sign-up").await;
    browser.fill("#name", "Victor Viewer").await;
    browser.fill("#email", "victor@example.com").await;
    browser.fill("#password", UI_PASSWORD).await;
    browser.screenshot("10-sign-up").await;
    browser.click("form[action='/auth/sign-up'] button").await;
    assert!(browser
        .body()
        .await
        .contains("not a member of any organization yet"));
    browser.screenshot("11-start-page-no-organization").await;

    let owner = UiClient::new(&app);
    assert_eq!(
        owner.sign_in(OWNER_EMAIL, OWNER_PASSWORD).await.status(),
        303
    );
    let response = owner
        .submit(
            "/project/boot-project/settings",
            "/project/boot-project/settings/members",
            &[("email", "victor@example.com"), ("role", "VIEWER")],
        )
        .await;
    assert_eq!(response.status(), 303);

    browser.goto("/project/boot-project/settings").await;
    assert!(browser.body().await.contains("Only owners and admins"));
    assert!(!browser.has("#create-api-key").await, "no key form");
    assert!(!browser.has("#add-member").await, "no member form");
    assert!(
        !browser.has("button.danger").await,
        "no delete or remove buttons"
    );
    browser.screenshot("12-settings-as-viewer").await;

    // A forged form: the viewer's own session and token, posted by a script in the page. The
    // server refuses it for the role (and without the token, as a forgery).
    let keys_before = count_keys(&app).await;
    for (with_token, expected) in [(false, "Form expired"), (true, "Not allowed")] {
        browser
            .client
            .execute(
                "const form = document.createElement('form');
                 form.method = 'post';
                 form.action = '/project/boot-project/settings/api-keys';
                 if (arguments[0]) {
                   const token = document.createElement('input');
                   token.name = 'csrf_token';
                   token.value = document.querySelector('input[name=csrf_token]').value;
                   form.appendChild(token);
                 }
                 document.body.appendChild(form);
                 form.submit();",
                vec![json!(with_token)],
            )
            .await
            .unwrap();
        let heading = browser.text("h1").await;
        assert!(heading.contains(expected), "{heading}");
        browser
            .screenshot(if with_token {
                "14-forged-post-forbidden"
            } else {
                "13-forged-post-without-token"
            })
            .await;
        browser.goto("/project/boot-project/settings").await;
    }
    assert_eq!(count_keys(&app).await, keys_before);
    browser.client.clone().close().await.unwrap();
}

async fn count_keys(app: &TestApp) -> i64 {
    let client = app.stores.postgres.get().await.unwrap();
    client
        .query_one("SELECT count(*) FROM api_keys", &[])
        .await
        .unwrap()
        .get(0)
}

/// Chromium's own command to emulate a media feature (the system's dark theme), through
/// chromedriver's DevTools endpoint.
#[derive(Debug)]
pub(crate) struct EmulateDarkTheme;

impl fantoccini::wd::WebDriverCompatibleCommand for EmulateDarkTheme {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (reqwest::Method, Option<String>) {
        let body = json!({"cmd": "Emulation.setEmulatedMedia", "params": {
            "features": [{"name": "prefers-color-scheme", "value": "dark"}]}});
        (reqwest::Method::POST, Some(body.to_string()))
    }
}
