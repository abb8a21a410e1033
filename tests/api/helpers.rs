//! Shared test set-up: every test gets its own PostgreSQL database, ClickHouse database, Redis key
//! prefix and blob directory, on the real services that `scripts/test.sh` starts.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use langfuse_rs::config::Settings;
use langfuse_rs::storage::Stores;
use reqwest::header::AUTHORIZATION;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

pub const SALT: &str = "test-salt";

/// The batch ingestion endpoint.
pub const INGESTION: &str = "/api/public/ingestion";

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// A PostgreSQL URL of the server's maintenance database, used to create test databases.
pub fn admin_database_url() -> String {
    var(
        "LANGFUSE_TEST_DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/postgres",
    )
}

pub fn clickhouse_url() -> String {
    var("LANGFUSE_TEST_CLICKHOUSE_URL", "http://127.0.0.1:8123")
}

pub fn redis_url() -> String {
    var("LANGFUSE_TEST_REDIS_URL", "redis://127.0.0.1:6379")
}

pub fn redis_cluster_nodes() -> String {
    var(
        "LANGFUSE_TEST_REDIS_CLUSTER_NODES",
        "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003",
    )
}

pub fn s3_endpoint() -> String {
    var("LANGFUSE_TEST_S3_ENDPOINT", "http://127.0.0.1:5055")
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// The name of a test database: `lfrs_test_<unix seconds>_<uuid>`. The time lets `scripts/test.sh`
/// drop what old runs left behind without touching the databases of a run going on beside it.
pub fn test_database_name() -> String {
    format!(
        "lfrs_test_{}_{}",
        chrono::Utc::now().timestamp(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The host:port of a URL, for pointing a proxy at it.
pub fn socket_of(url: &str) -> SocketAddr {
    let parsed = url::Url::parse(url).expect("test URL");
    let host = parsed.host_str().expect("host");
    let port = parsed
        .port_or_known_default()
        .unwrap_or(match parsed.scheme() {
            "postgres" | "postgresql" => 5432,
            "redis" => 6379,
            _ => 80,
        });
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    format!("{host}:{port}").parse().expect("socket address")
}

/// Replaces host and port of a URL with `addr`.
pub fn with_socket(url: &str, addr: SocketAddr) -> String {
    let mut parsed = url::Url::parse(url).expect("test URL");
    parsed.set_host(Some(&addr.ip().to_string())).unwrap();
    parsed.set_port(Some(addr.port())).unwrap();
    parsed.to_string()
}

/// One test's private slice of every store, as the environment a deployment would set.
pub struct TestConfig {
    pub env: HashMap<String, String>,
    pub clickhouse_database: String,
    _blob_dir: tempfile::TempDir,
}

impl TestConfig {
    /// Creates an empty PostgreSQL database; ClickHouse's database is created by `migrate`.
    pub async fn new() -> TestConfig {
        let database_name = test_database_name();
        let (admin, connection) =
            tokio_postgres::connect(&admin_database_url(), tokio_postgres::NoTls)
                .await
                .expect("connect to PostgreSQL (is it running? see scripts/test.sh)");
        tokio::spawn(connection);
        admin
            .batch_execute(&format!("CREATE DATABASE {database_name}"))
            .await
            .expect("create test database");
        let mut db_url = url::Url::parse(&admin_database_url()).unwrap();
        db_url.set_path(&format!("/{database_name}"));
        let clickhouse_database = test_database_name();
        let blob_dir = tempfile::tempdir().unwrap();
        let env: HashMap<String, String> = [
            ("DATABASE_URL", db_url.to_string()),
            ("CLICKHOUSE_URL", clickhouse_url()),
            ("CLICKHOUSE_DB", clickhouse_database.clone()),
            ("REDIS_CONNECTION_STRING", redis_url()),
            ("REDIS_KEY_PREFIX", format!("{}:", unique("test"))),
            ("SALT", SALT.to_string()),
            (
                "LANGFUSE_RS__BLOB__LOCAL_DIR",
                blob_dir.path().to_string_lossy().into_owned(),
            ),
            ("LANGFUSE_LOG_LEVEL", "warn".to_string()),
            (
                "LANGFUSE_RS__SERVER__SHUTDOWN_TIMEOUT_SECS",
                "5".to_string(),
            ),
            ("LANGFUSE_RS__SERVER__HTTP_WORKERS", "2".to_string()),
            // Fast leases and flushes, so tests see their rows within a second or two.
            ("LANGFUSE_RS__WORKER__LEASE_TTL_SECS", "3".to_string()),
            ("LANGFUSE_RS__WORKER__FLUSH_INTERVAL_MS", "100".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        TestConfig {
            env,
            clickhouse_database,
            _blob_dir: blob_dir,
        }
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.env.insert(key.to_string(), value.into());
        self
    }

    /// Points the application at the test Redis Cluster instead of the standalone server.
    pub fn use_redis_cluster(&mut self) -> &mut Self {
        self.set("REDIS_CLUSTER_ENABLED", "true")
            .set("REDIS_CLUSTER_NODES", redis_cluster_nodes())
    }

    pub fn settings(&self) -> Settings {
        Settings::load(None, &self.env).expect("test settings")
    }

    /// The `langfuse-rs` binary with exactly this environment, as an operator would run it.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_langfuse-rs"));
        command.args(args).env_clear().envs(&self.env);
        command
    }

    /// Runs the binary to completion; returns its exit status and standard error.
    pub async fn run(&self, args: &[&str]) -> (std::process::ExitStatus, String) {
        let out = self.command(args).output().await.expect("run langfuse-rs");
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Applies the embedded migrations.
    pub async fn migrate(&self) {
        langfuse_rs::app::migrate(&self.settings(), false)
            .await
            .expect("migrate");
    }
}

/// A running `serve` on 127.0.0.1:<random>, stopped when dropped.
pub struct TestApp {
    pub address: String,
    pub config: TestConfig,
    pub stores: Stores,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Migrates `config`'s stores and starts the web role on them.
    pub async fn spawn(config: TestConfig) -> TestApp {
        config.migrate().await;
        Self::spawn_migrated(config).await.expect("app starts")
    }

    /// Like [`TestApp::spawn`], with the worker role in the same process (`serve --with-worker`).
    pub async fn spawn_with_worker(config: TestConfig) -> TestApp {
        config.migrate().await;
        Self::start(config, true).await.expect("app starts")
    }

    pub async fn spawn_migrated(config: TestConfig) -> anyhow::Result<TestApp> {
        Self::start(config, false).await
    }

    async fn start(config: TestConfig, with_worker: bool) -> anyhow::Result<TestApp> {
        let settings = config.settings();
        let stores = langfuse_rs::app::prepare(&settings).await?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let address = format!("http://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let stores = stores.clone();
            let shutdown = shutdown.clone();
            async move {
                langfuse_rs::app::serve(&settings, stores, listener, with_worker, shutdown).await
            }
        });
        Ok(TestApp {
            address,
            config,
            stores,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            shutdown,
            task: Some(task),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("request")
    }

    pub async fn get_as(&self, path: &str, key: &ApiKey) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .header(AUTHORIZATION, key.basic_auth())
            .send()
            .await
            .expect("request")
    }

    /// GETs `path` with `key`; returns the status and the JSON body (every answer here is JSON).
    pub async fn get_json(&self, path: &str, key: &ApiKey) -> (u16, Value) {
        let response = self.get_as(path, key).await;
        let status = response.status().as_u16();
        let body = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {path} answered {status} without JSON: {e}"));
        (status, body)
    }

    pub async fn post_as(&self, path: &str, key: &ApiKey, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header(AUTHORIZATION, key.basic_auth())
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Sends `batch` to the ingestion API and checks that every event in it was accepted.
    pub async fn ingest_accepted(&self, key: &ApiKey, batch: &Value) {
        let response = self.post_as(INGESTION, key, batch).await;
        assert_eq!(response.status(), 207);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"], json!([]), "{body}");
    }

    /// Counts the rows of `table` for `project_id`, as merged (FINAL).
    pub async fn count_rows(&self, table: &str, project_id: &str) -> u64 {
        self.stores
            .clickhouse
            .query(&format!(
                "SELECT count() FROM {table} FINAL WHERE project_id = ?"
            ))
            .bind(project_id)
            .fetch_one()
            .await
            .expect("count rows")
    }

    /// Waits until `table` holds `expected` merged rows of the project; false on timeout.
    pub async fn wait_for_rows(&self, table: &str, project_id: &str, expected: u64) -> bool {
        eventually(Duration::from_secs(20), || async {
            self.count_rows(table, project_id).await == expected
        })
        .await
    }

    /// Waits until the worker has acknowledged every queue entry: what it wrote is then readable
    /// whole (the traces it held back are released before the acknowledgements).
    pub async fn wait_until_written(&self) -> bool {
        let shards = self.config.settings().ingestion.queue_shards;
        eventually(Duration::from_secs(20), || async {
            langfuse_rs::storage::queue::backlog(&self.stores.redis, shards)
                .await
                .is_ok_and(|backlog| backlog == 0)
        })
        .await
    }

    /// Stops the server and waits for it to drain.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A project's API key pair, as an SDK holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub public: String,
    pub secret: String,
}

impl ApiKey {
    pub fn new(public: impl Into<String>, secret: impl Into<String>) -> ApiKey {
        ApiKey {
            public: public.into(),
            secret: secret.into(),
        }
    }

    /// This public key with another secret: a wrong secret for a known key.
    pub fn with_secret(&self, secret: &str) -> ApiKey {
        ApiKey::new(self.public.clone(), secret)
    }

    /// Another public key with this secret: an unknown key.
    pub fn with_public(&self, public: &str) -> ApiKey {
        ApiKey::new(public, self.secret.clone())
    }

    /// The `Authorization` header value of HTTP Basic auth, as the SDKs send it.
    pub fn basic_auth(&self) -> String {
        let pair = format!("{}:{}", self.public, self.secret);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

/// Creates an organization, project and API key through the bootstrap path; returns the key.
pub async fn create_project(config: &TestConfig, project_id: &str) -> ApiKey {
    let public_key = format!("pk-lf-{}", uuid::Uuid::new_v4().simple());
    let secret_key = format!("sk-lf-{}", uuid::Uuid::new_v4().simple());
    let mut env = config.env.clone();
    env.insert("LANGFUSE_INIT_ORG_ID".into(), format!("org-{project_id}"));
    env.insert(
        "LANGFUSE_INIT_ORG_NAME".into(),
        format!("Org of {project_id}"),
    );
    env.insert("LANGFUSE_INIT_PROJECT_ID".into(), project_id.into());
    env.insert(
        "LANGFUSE_INIT_PROJECT_NAME".into(),
        format!("Project {project_id}"),
    );
    env.insert(
        "LANGFUSE_INIT_PROJECT_PUBLIC_KEY".into(),
        public_key.clone(),
    );
    env.insert(
        "LANGFUSE_INIT_PROJECT_SECRET_KEY".into(),
        secret_key.clone(),
    );
    let settings = Settings::load(None, &env).unwrap();
    let pool = langfuse_rs::storage::postgres::connect(&settings.database).unwrap();
    langfuse_rs::bootstrap::run(&pool, &settings).await.unwrap();
    ApiKey::new(public_key, secret_key)
}

/// One event of an ingestion batch: its envelope around an entity's `body`.
pub fn envelope(id: &str, kind: &str, at: &str, body: Value) -> Value {
    json!({"id": id, "type": kind, "timestamp": at, "body": body})
}

/// `bytes` gzip-compressed, as a client sends a `Content-Encoding: gzip` body.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A TCP port nothing listens on right now, for a process started with its port in the environment.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TCP forwarder in front of a real service, which a test can stop (and resume) to take the
/// service away from the application without disturbing other tests that share the server.
/// While stopped, new connections are closed at once and open ones are cut.
pub struct TcpProxy {
    pub addr: SocketAddr,
    connections: std::sync::Arc<std::sync::Mutex<CancellationToken>>,
    stopped: std::sync::Arc<std::sync::atomic::AtomicBool>,
    _listener_task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> TcpProxy {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = std::sync::Arc::new(std::sync::Mutex::new(CancellationToken::new()));
        let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let task = tokio::spawn({
            let connections = connections.clone();
            let stopped = stopped.clone();
            async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    if stopped.load(Ordering::SeqCst) {
                        continue; // dropped: the client sees the connection closed
                    }
                    let cut = connections.lock().unwrap().clone();
                    tokio::spawn(async move {
                        let Ok(mut outbound) = TcpStream::connect(target).await else {
                            return;
                        };
                        tokio::select! {
                            _ = cut.cancelled() => {}
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        }
                    });
                }
            }
        });
        TcpProxy {
            addr,
            connections,
            stopped,
            _listener_task: task,
        }
    }

    pub fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.connections.lock().unwrap().cancel();
    }

    pub fn resume(&self) {
        *self.connections.lock().unwrap() = CancellationToken::new();
        self.stopped
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self._listener_task.abort();
        self.connections.lock().unwrap().cancel();
    }
}

/// Creates a bucket on the S3-compatible test server.
pub async fn create_bucket(bucket: &str) {
    // The local S3-compatible server accepts an unsigned bucket creation.
    let response = reqwest::Client::new()
        .put(format!("{}/{bucket}", s3_endpoint()))
        .send()
        .await
        .expect("S3 server reachable (see scripts/test.sh)");
    assert!(response.status().is_success(), "{}", response.status());
}

/// Polls the health probe on 127.0.0.1:`port` for up to 30 seconds; whether it answered 200.
pub async fn becomes_healthy(port: u16) -> bool {
    let url = format!("http://127.0.0.1:{port}/api/public/health");
    eventually(Duration::from_secs(30), || {
        let url = url.clone();
        async move { reqwest::get(url).await.is_ok_and(|r| r.status() == 200) }
    })
    .await
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A browser without a browser, for the web UI: a cookie store, no redirects followed (tests look
/// at them), and forms posted with the CSRF token of the page they are on, as a browser would.
pub struct UiClient {
    pub http: reqwest::Client,
    base: String,
}

impl UiClient {
    pub fn new(app: &TestApp) -> UiClient {
        UiClient {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: app.address.clone(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("request")
    }

    /// GETs a page; its status and HTML.
    pub async fn page(&self, path: &str) -> (u16, String) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// The CSRF token of the forms of the page at `path`.
    pub async fn csrf_token(&self, path: &str) -> String {
        let (status, html) = self.page(path).await;
        assert_eq!(status, 200, "GET {path}: {html}");
        form_value(&html, "csrf_token").unwrap_or_else(|| panic!("no csrf_token on {path}"))
    }

    /// POSTs `fields` to `action` exactly as given (no token added).
    pub async fn post_raw(&self, action: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url(action))
            .form(fields)
            .send()
            .await
            .expect("request")
    }

    /// Submits a form of the page at `page` to `action`, with that page's CSRF token.
    pub async fn submit(
        &self,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let token = self.csrf_token(page).await;
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(action, &all).await
    }

    pub async fn sign_up(&self, name: &str, email: &str, password: &str) -> reqwest::Response {
        self.submit(
            "/auth/sign-up",
            "/auth/sign-up",
            &[("name", name), ("email", email), ("password", password)],
        )
        .await
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> reqwest::Response {
        self.submit(
            "/auth/sign-in",
            "/auth/sign-in",
            &[("email", email), ("password", password)],
        )
        .await
    }

    /// Signs up a new person (they are then signed in); panics unless it worked.
    pub async fn signed_up(app: &TestApp, name: &str, email: &str) -> UiClient {
        let client = UiClient::new(app);
        let response = client.sign_up(name, email, UI_PASSWORD).await;
        assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
        client
    }

    /// Creates an organization and a project in it through the start page; the project's id.
    pub async fn create_org_and_project(&self, org: &str, project: &str) -> String {
        let response = self.submit("/", "/organizations", &[("name", org)]).await;
        assert_eq!(response.status(), 303);
        let (_, home) = self.page("/").await;
        let action = form_actions(&home)
            .into_iter()
            .find(|a| a.starts_with("/organization/") && a.ends_with("/projects"))
            .expect("a create-project form");
        let response = self.submit("/", &action, &[("name", project)]).await;
        assert_eq!(response.status(), 303);
        let location = location(&response);
        location
            .strip_prefix("/project/")
            .expect("redirected to the project")
            .to_string()
    }
}

/// The password test accounts get.
pub const UI_PASSWORD: &str = "correct horse battery";

/// The `Location` of a redirect.
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The `value` of the first form field named `name` in `html`, entities decoded.
pub fn form_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = start + html[start..].find('"')?;
    Some(unescape(&html[start..end]))
}

/// Every form `action` of `html`, entities decoded.
pub fn form_actions(html: &str) -> Vec<String> {
    html.split("action=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(unescape)
        .collect()
}

/// The text of the element with `id` in `html` (for `<code id=...>` values).
pub fn element_text(html: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\">");
    let start = html.find(&marker)? + marker.len();
    let end = start + html[start..].find('<')?;
    Some(unescape(&html[start..end]))
}

fn unescape(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

/// Owner Olga's project of organization Acme, with Max a MEMBER and Vera a VIEWER, and an API key
/// Olga created on the settings page: the cast of the UI tests that check roles.
pub struct UiTeam {
    pub app: TestApp,
    pub project_id: String,
    pub owner: UiClient,
    pub member: UiClient,
    pub viewer: UiClient,
    pub key: ApiKey,
}

impl UiTeam {
    pub async fn new() -> UiTeam {
        let app = TestApp::spawn(TestConfig::new().await).await;
        let owner = UiClient::signed_up(&app, "Olga", "olga@example.com").await;
        let member = UiClient::signed_up(&app, "Max", "max@example.com").await;
        let viewer = UiClient::signed_up(&app, "Vera", "vera@example.com").await;
        let project_id = owner.create_org_and_project("Acme", "Assistant").await;
        let settings = format!("/project/{project_id}/settings");
        for (email, role) in [
            ("max@example.com", "MEMBER"),
            ("vera@example.com", "VIEWER"),
        ] {
            let response = owner
                .submit(
                    &settings,
                    &format!("{settings}/members"),
                    &[("email", email), ("role", role)],
                )
                .await;
            assert_eq!(response.status(), 303);
        }
        let response = owner
            .submit(
                &settings,
                &format!("{settings}/api-keys"),
                &[("note", "tests")],
            )
            .await;
        assert_eq!(response.status(), 200);
        let html = response.text().await.unwrap();
        let key = ApiKey::new(
            element_text(&html, "new-public-key").expect("public key shown"),
            element_text(&html, "new-secret-key").expect("secret key shown"),
        );
        UiTeam {
            app,
            project_id,
            owner,
            member,
            viewer,
            key,
        }
    }
}
