//! One typed settings tree, loaded once at start-up.
//!
//! Sources, later wins: the defaults in `config.example.toml` (embedded, so the documented values
//! and the real defaults cannot drift apart) < the `--config` file < the environment. The
//! environment is read through a map handed in by the caller, so tests never touch the process
//! environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

const DEFAULTS_TOML: &str = include_str!("../config.example.toml");
const ENV_PREFIX: &str = "LANGFUSE_RS";
const ENV_SEPARATOR: &str = "__";

/// Environment names of a Langfuse self-hosted deployment, and the key each one sets.
const LANGFUSE_ENV_NAMES: &[(&str, &str)] = &[
    ("DATABASE_URL", "database.url"),
    ("CLICKHOUSE_URL", "clickhouse.url"),
    ("CLICKHOUSE_USER", "clickhouse.user"),
    ("CLICKHOUSE_PASSWORD", "clickhouse.password"),
    ("CLICKHOUSE_DB", "clickhouse.database"),
    ("REDIS_CONNECTION_STRING", "redis.url"),
    ("REDIS_CLUSTER_ENABLED", "redis.cluster"),
    ("REDIS_CLUSTER_NODES", "redis.cluster_nodes"),
    ("REDIS_TLS_ENABLED", "redis.tls"),
    ("REDIS_KEY_PREFIX", "redis.key_prefix"),
    ("LANGFUSE_S3_EVENT_UPLOAD_BUCKET", "blob.bucket"),
    ("LANGFUSE_S3_EVENT_UPLOAD_PREFIX", "blob.prefix"),
    ("LANGFUSE_S3_EVENT_UPLOAD_REGION", "blob.region"),
    ("LANGFUSE_S3_EVENT_UPLOAD_ENDPOINT", "blob.endpoint"),
    (
        "LANGFUSE_S3_EVENT_UPLOAD_ACCESS_KEY_ID",
        "blob.access_key_id",
    ),
    (
        "LANGFUSE_S3_EVENT_UPLOAD_SECRET_ACCESS_KEY",
        "blob.secret_access_key",
    ),
    (
        "LANGFUSE_S3_EVENT_UPLOAD_FORCE_PATH_STYLE",
        "blob.force_path_style",
    ),
    (
        "LANGFUSE_S3_MEDIA_MAX_CONTENT_LENGTH",
        "media.max_content_length",
    ),
    ("LANGFUSE_S3_MEDIA_UPLOAD_PREFIX", "media.prefix"),
    (
        "LANGFUSE_S3_MEDIA_DOWNLOAD_URL_EXPIRY_SECONDS",
        "media.download_url_expiry_secs",
    ),
    ("SALT", "auth.salt"),
    ("PORT", "server.port"),
    ("HOSTNAME", "server.hostname"),
    ("LANGFUSE_LOG_LEVEL", "log.level"),
    ("LANGFUSE_LOG_FORMAT", "log.format"),
    ("LANGFUSE_INIT_ORG_ID", "init.org_id"),
    ("LANGFUSE_INIT_ORG_NAME", "init.org_name"),
    ("LANGFUSE_INIT_PROJECT_ID", "init.project_id"),
    ("LANGFUSE_INIT_PROJECT_NAME", "init.project_name"),
    ("LANGFUSE_INIT_PROJECT_PUBLIC_KEY", "init.public_key"),
    ("LANGFUSE_INIT_PROJECT_SECRET_KEY", "init.secret_key"),
    ("LANGFUSE_INIT_USER_EMAIL", "init.user_email"),
    ("LANGFUSE_INIT_USER_NAME", "init.user_name"),
    ("LANGFUSE_INIT_USER_PASSWORD", "init.user_password"),
    ("AUTH_DISABLE_SIGNUP", "auth.disable_signup"),
    ("AUTH_SESSION_MAX_AGE", "auth.session_max_age_minutes"),
    ("NEXTAUTH_URL", "auth.public_url"),
    ("LANGFUSE_CACHE_PROMPT_ENABLED", "prompts.cache_enabled"),
    (
        "LANGFUSE_CACHE_PROMPT_TTL_SECONDS",
        "prompts.redis_ttl_secs",
    ),
];

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub server: ServerSettings,
    pub worker: WorkerSettings,
    pub database: DatabaseSettings,
    pub clickhouse: ClickHouseSettings,
    pub redis: RedisSettings,
    pub blob: BlobSettings,
    pub media: MediaSettings,
    pub auth: AuthSettings,
    pub ingestion: IngestionSettings,
    pub prompts: PromptSettings,
    pub log: LogSettings,
    pub init: InitSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub hostname: String,
    pub port: u16,
    pub http_workers: usize,
    pub shutdown_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkerSettings {
    pub health_hostname: String,
    pub health_port: u16,
    pub flush_rows: usize,
    pub flush_interval_ms: u64,
    pub max_attempts: u32,
    pub lease_ttl_secs: u64,
    pub recovery_window_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IngestionSettings {
    pub max_body_bytes: usize,
    /// Largest body of `POST /api/public/otel/v1/traces`, as sent and after gzip.
    pub otel_max_body_bytes: usize,
    pub max_backlog: u64,
    pub queue_shards: u32,
    pub max_concurrent_requests: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PromptSettings {
    pub cache_enabled: bool,
    pub redis_ttl_secs: u64,
    pub memory_max_entries: usize,
    pub invalidation_poll_ms: u64,
    pub max_connections: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// A secret: the URL usually carries the password.
    pub url: SecretString,
    pub ca_cert_file: String,
    pub max_connections: usize,
    pub connect_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ClickHouseSettings {
    pub url: String,
    pub user: String,
    pub password: SecretString,
    pub database: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    /// A secret: the URL may carry the password.
    pub url: SecretString,
    pub cluster: bool,
    pub cluster_nodes: String,
    pub tls: bool,
    pub password: SecretString,
    pub key_prefix: String,
}

impl RedisSettings {
    /// The cluster seed nodes as `(host, port)`; validated at load time, so this cannot fail later.
    pub fn cluster_nodes(&self) -> Vec<(String, u16)> {
        parse_host_ports(&self.cluster_nodes).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct BlobSettings {
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub force_path_style: bool,
    pub local_dir: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MediaSettings {
    pub max_content_length: u64,
    /// Comma-separated; empty: every type of `domain::media::CONTENT_TYPES`.
    pub allowed_content_types: String,
    pub prefix: String,
    pub upload_url_expiry_secs: u64,
    pub download_url_expiry_secs: u64,
    pub url_signing_secret: SecretString,
}

impl MediaSettings {
    /// The content types accepted; validated at load time against Langfuse's list.
    pub fn allowed_content_types(&self) -> Vec<String> {
        let listed: Vec<String> = self
            .allowed_content_types
            .split(',')
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        if listed.is_empty() {
            crate::domain::media::CONTENT_TYPES
                .iter()
                .map(|(t, _)| t.to_string())
                .collect()
        } else {
            listed
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub salt: SecretString,
    pub key_cache_ttl_secs: u64,
    /// The address people open the web UI at; `https://` makes its cookies `Secure`.
    pub public_url: String,
    pub disable_signup: bool,
    pub session_max_age_minutes: u64,
    pub signin_max_failures: u32,
    pub signin_failure_window_secs: u64,
}

impl AuthSettings {
    /// Whether the web UI is served over TLS (behind App Runner's, say), as `public_url` says.
    pub fn public_url_is_https(&self) -> bool {
        self.public_url
            .trim()
            .to_ascii_lowercase()
            .starts_with("https://")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InitSettings {
    pub org_id: String,
    pub org_name: String,
    pub project_id: String,
    pub project_name: String,
    pub public_key: String,
    pub secret_key: SecretString,
    pub user_email: String,
    pub user_name: String,
    pub user_password: SecretString,
}

/// A configuration problem, phrased for an operator: which key, set where, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    fn key(key: &str, problem: impl std::fmt::Display) -> Self {
        ConfigError(format!("{} ({}): {problem}", key, env_names_of(key)))
    }
}

impl Settings {
    /// Loads the settings from the embedded defaults, an optional TOML file and `env`.
    pub fn load(
        file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULTS_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!(
                    "--config {}: no such file",
                    path.display()
                )));
            }
            builder = builder.add_source(
                config::File::from(path.to_path_buf()).format(config::FileFormat::Toml),
            );
        }
        let env_map = environment_overrides(env)?;
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator(ENV_SEPARATOR)
                .separator(ENV_SEPARATOR)
                .source(Some(env_map)),
        );
        let settings: Settings = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(describe_config_error)?;
        settings.validate()?;
        Ok(settings)
    }

    /// The port `work` serves its health endpoints on.
    pub fn worker_health_address(&self) -> String {
        format!(
            "{}:{}",
            self.worker.health_hostname, self.worker.health_port
        )
    }

    pub fn http_address(&self) -> String {
        format!("{}:{}", self.server.hostname, self.server.port)
    }

    /// The directory of the local blob backend.
    pub fn local_blob_dir(&self) -> PathBuf {
        if self.blob.local_dir.is_empty() {
            self.data_dir.join("blob")
        } else {
            PathBuf::from(&self.blob.local_dir)
        }
    }

    /// `serve` and `work` hash API-key secrets with the salt; `migrate` does not need it.
    pub fn require_salt(&self) -> Result<(), ConfigError> {
        if self.auth.salt.expose_secret().is_empty() {
            return Err(ConfigError::key(
                "auth.salt",
                "must be set: it salts the API-key hashes",
            ));
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let db_url = self.database.url.expose_secret();
        if db_url.parse::<tokio_postgres::Config>().is_err() {
            // The parser's message may quote the URL, password included: keep it out.
            return Err(ConfigError::key(
                "database.url",
                "is not a valid PostgreSQL URL (postgres://user:password@host:port/database)",
            ));
        }
        if self.ingestion.queue_shards == 0 || self.ingestion.queue_shards > 1024 {
            return Err(ConfigError::key(
                "ingestion.queue_shards",
                "must be between 1 and 1024",
            ));
        }
        if self.ingestion.max_concurrent_requests == 0 {
            return Err(ConfigError::key(
                "ingestion.max_concurrent_requests",
                "must be at least 1",
            ));
        }
        if self.worker.flush_rows == 0 {
            return Err(ConfigError::key("worker.flush_rows", "must be at least 1"));
        }
        if self.worker.max_attempts == 0 {
            return Err(ConfigError::key(
                "worker.max_attempts",
                "must be at least 1",
            ));
        }
        if self.worker.lease_ttl_secs < 3 {
            return Err(ConfigError::key(
                "worker.lease_ttl_secs",
                "must be at least 3",
            ));
        }
        if self.prompts.max_connections == 0 {
            return Err(ConfigError::key(
                "prompts.max_connections",
                "must be at least 1",
            ));
        }
        if self.prompts.invalidation_poll_ms == 0 {
            return Err(ConfigError::key(
                "prompts.invalidation_poll_ms",
                "must be at least 1",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::key(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        check_http_url("clickhouse.url", &self.clickhouse.url)?;
        if self.clickhouse.database.is_empty() {
            return Err(ConfigError::key("clickhouse.database", "must not be empty"));
        }
        if self.redis.cluster {
            match parse_host_ports(&self.redis.cluster_nodes) {
                Ok(nodes) if !nodes.is_empty() => {}
                Ok(_) => {
                    return Err(ConfigError::key(
                        "redis.cluster_nodes",
                        "must list at least one host:port when redis.cluster is true",
                    ))
                }
                Err(problem) => return Err(ConfigError::key("redis.cluster_nodes", problem)),
            }
        } else {
            let url = self.redis.url.expose_secret();
            let scheme_ok = url::Url::parse(url)
                .map(|u| matches!(u.scheme(), "redis" | "rediss" | "valkey" | "valkeys"))
                .unwrap_or(false);
            if !scheme_ok {
                return Err(ConfigError::key(
                    "redis.url",
                    "is not a valid Redis URL (redis://[:password@]host:port[/db] or rediss://)",
                ));
            }
        }
        if self.redis.key_prefix.contains(['{', '}']) {
            // Only the first {...} of a key picks its cluster slot: braces in the prefix would
            // pin every key to one slot.
            return Err(ConfigError::key(
                "redis.key_prefix",
                "must not contain '{' or '}'",
            ));
        }
        if !self.blob.endpoint.is_empty() {
            check_http_url("blob.endpoint", &self.blob.endpoint)?;
        }
        if !self.blob.bucket.is_empty()
            && self.blob.access_key_id.is_empty()
                != self.blob.secret_access_key.expose_secret().is_empty()
        {
            return Err(ConfigError::key(
                "blob.access_key_id",
                "and blob.secret_access_key must be set together (or neither, for the AWS credential chain)",
            ));
        }
        self.validate_media()?;
        if !self.auth.public_url.is_empty() {
            check_http_url("auth.public_url", &self.auth.public_url)?;
        }
        if self.auth.session_max_age_minutes == 0 {
            return Err(ConfigError::key(
                "auth.session_max_age_minutes",
                "must be at least 1",
            ));
        }
        if self.auth.signin_max_failures == 0 || self.auth.signin_failure_window_secs == 0 {
            return Err(ConfigError::key(
                "auth.signin_max_failures",
                "and auth.signin_failure_window_secs must be at least 1",
            ));
        }
        if !is_log_filter(&self.log.level) {
            return Err(ConfigError::key(
                "log.level",
                format!(
                    "{:?} is not a level (trace, debug, info, warn, error) or filter",
                    self.log.level
                ),
            ));
        }
        self.validate_init()
    }

    fn validate_media(&self) -> Result<(), ConfigError> {
        if self.media.max_content_length == 0 {
            return Err(ConfigError::key(
                "media.max_content_length",
                "must be at least 1",
            ));
        }
        if self.media.upload_url_expiry_secs == 0 {
            return Err(ConfigError::key(
                "media.upload_url_expiry_secs",
                "must be at least 1",
            ));
        }
        for content_type in self.media.allowed_content_types() {
            if crate::domain::media::extension_of(&content_type).is_none() {
                return Err(ConfigError::key(
                    "media.allowed_content_types",
                    format!("{content_type:?} is not a content type media accepts"),
                ));
            }
        }
        Ok(())
    }

    fn validate_init(&self) -> Result<(), ConfigError> {
        let init = &self.init;
        let required = [
            ("init.org_id", init.org_id.is_empty()),
            ("init.project_id", init.project_id.is_empty()),
            ("init.public_key", init.public_key.is_empty()),
            (
                "init.secret_key",
                init.secret_key.expose_secret().is_empty(),
            ),
        ];
        let any_set = required.iter().any(|(_, empty)| !empty);
        if let Some((missing, _)) = required.iter().find(|(_, empty)| *empty) {
            if any_set {
                return Err(ConfigError::key(
                    missing,
                    "must be set: the bootstrap needs the organization id, project id, public key and secret key together",
                ));
            }
        }
        let user = [
            ("init.user_email", init.user_email.is_empty()),
            (
                "init.user_password",
                init.user_password.expose_secret().is_empty(),
            ),
        ];
        if user.iter().any(|(_, empty)| !empty) {
            if let Some((missing, _)) = user.iter().find(|(_, empty)| *empty) {
                return Err(ConfigError::key(
                    missing,
                    "must be set: the first user needs an email address and a password together",
                ));
            }
            if init.org_id.is_empty() {
                return Err(ConfigError::key(
                    "init.org_id",
                    "must be set: the first user (init.user_email) becomes an owner of that organization",
                ));
            }
            if crate::domain::account::normalize_email(&init.user_email).is_err() {
                return Err(ConfigError::key(
                    "init.user_email",
                    "is not an email address",
                ));
            }
            if let Err(problem) =
                crate::domain::account::check_new_password(init.user_password.expose_secret())
            {
                return Err(ConfigError::key("init.user_password", problem));
            }
        }
        Ok(())
    }
}

/// Turns the process environment into `LANGFUSE_RS__*` entries: Langfuse's names are translated,
/// and a `LANGFUSE_RS__` name that is set explicitly takes precedence over its Langfuse alias.
fn environment_overrides(
    env: &HashMap<String, String>,
) -> Result<HashMap<String, String>, ConfigError> {
    let mut out: HashMap<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}{ENV_SEPARATOR}")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut alias = |key: &str, value: String| {
        let name = env_name(key);
        out.entry(name).or_insert(value);
    };
    for (langfuse_name, key) in LANGFUSE_ENV_NAMES {
        if let Some(value) = env.get(*langfuse_name) {
            alias(key, value.clone());
        }
    }
    // REDIS_HOST/PORT/AUTH are Langfuse's alternative to a connection string.
    if !env.contains_key("REDIS_CONNECTION_STRING") {
        if let Some(host) = env.get("REDIS_HOST").filter(|h| !h.is_empty()) {
            let port = env.get("REDIS_PORT").map(String::as_str).unwrap_or("6379");
            if port.parse::<u16>().is_err() {
                return Err(ConfigError(format!(
                    "redis port (REDIS_PORT): {port:?} is not a port number"
                )));
            }
            let auth = env
                .get("REDIS_AUTH")
                .filter(|a| !a.is_empty())
                .map(|a| format!(":{}@", url_encode(a)))
                .unwrap_or_default();
            let scheme = match env.get("REDIS_TLS_ENABLED").map(String::as_str) {
                Some("true") | Some("1") => "rediss",
                _ => "redis",
            };
            alias("redis.url", format!("{scheme}://{auth}{host}:{port}"));
        }
    }
    if let Some(auth) = env.get("REDIS_AUTH").filter(|a| !a.is_empty()) {
        alias("redis.password", auth.clone());
    }
    Ok(out)
}

fn url_encode(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

/// `database.url` → `LANGFUSE_RS__DATABASE__URL`.
fn env_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{ENV_SEPARATOR}{}",
        key.replace('.', ENV_SEPARATOR).to_uppercase()
    )
}

/// Every environment name that sets `key`, for error messages.
fn env_names_of(key: &str) -> String {
    let mut names = vec![env_name(key)];
    names.extend(
        LANGFUSE_ENV_NAMES
            .iter()
            .filter(|(_, k)| *k == key)
            .map(|(name, _)| name.to_string()),
    );
    names.join(" or ")
}

fn describe_config_error(err: config::ConfigError) -> ConfigError {
    // The config crate's messages name the key path; say which environment names feed it too.
    let text = err.to_string();
    let key = text
        .split("for key `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .map(str::to_owned);
    match key {
        Some(key) => ConfigError::key(&key, text),
        None => ConfigError(text),
    }
}

/// A level name, or a directive list such as `info,langfuse_rs=debug`. A bare word that is not a
/// level would parse as a target filter and silence everything, so it is refused.
fn is_log_filter(value: &str) -> bool {
    let is_level = |word: &str| {
        matches!(
            word.to_ascii_lowercase().as_str(),
            "trace" | "debug" | "info" | "warn" | "error" | "off"
        )
    };
    if !value.contains(['=', ',']) {
        return is_level(value.trim());
    }
    tracing_subscriber::EnvFilter::try_new(value).is_ok()
}

fn check_http_url(key: &str, value: &str) -> Result<(), ConfigError> {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(ConfigError::key(
            key,
            format!("{value:?} is not an http(s) URL"),
        )),
    }
}

fn parse_host_ports(list: &str) -> Result<Vec<(String, u16)>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|node| {
            let node = node
                .trim_start_matches("redis://")
                .trim_start_matches("rediss://");
            let (host, port) = node
                .rsplit_once(':')
                .ok_or_else(|| format!("{node:?} is not host:port"))?;
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("{node:?} has no valid port"))?;
            Ok((host.to_string(), port))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_come_from_the_example_file() {
        let s = Settings::load(None, &env(&[])).unwrap();
        assert_eq!(s.server.port, 3000);
        assert_eq!(s.worker.health_port, 3030);
        assert_eq!(s.clickhouse.database, "default");
        assert!(!s.redis.cluster);
        assert_eq!(s.local_blob_dir(), PathBuf::from("./data/blob"));
    }

    #[test]
    fn file_beats_defaults_and_env_beats_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[server]\nport = 4000\nhostname = \"127.0.0.9\"\n").unwrap();
        let s = Settings::load(Some(&path), &env(&[])).unwrap();
        assert_eq!(s.server.port, 4000);
        let s = Settings::load(Some(&path), &env(&[("PORT", "5000")])).unwrap();
        assert_eq!(s.server.port, 5000);
        assert_eq!(s.server.hostname, "127.0.0.9");
        let s = Settings::load(
            Some(&path),
            &env(&[("PORT", "5000"), ("LANGFUSE_RS__SERVER__PORT", "6000")]),
        )
        .unwrap();
        assert_eq!(
            s.server.port, 6000,
            "the LANGFUSE_RS__ name wins over the alias"
        );
    }

    #[test]
    fn langfuse_names_are_honoured() {
        let s = Settings::load(
            None,
            &env(&[
                ("DATABASE_URL", "postgres://u:pw@db:5432/lf"),
                ("CLICKHOUSE_URL", "http://ch:8123"),
                ("CLICKHOUSE_USER", "lf"),
                ("CLICKHOUSE_PASSWORD", "chpw"),
                ("CLICKHOUSE_DB", "lfdb"),
                ("REDIS_HOST", "cache"),
                ("REDIS_PORT", "6380"),
                ("REDIS_AUTH", "p@ss"),
                ("REDIS_KEY_PREFIX", "lf:"),
                ("LANGFUSE_S3_EVENT_UPLOAD_BUCKET", "events"),
                ("LANGFUSE_S3_EVENT_UPLOAD_FORCE_PATH_STYLE", "true"),
                ("SALT", "pepper"),
                ("HOSTNAME", "127.0.0.1"),
                ("LANGFUSE_LOG_FORMAT", "json"),
            ]),
        )
        .unwrap();
        assert_eq!(s.database.url.expose_secret(), "postgres://u:pw@db:5432/lf");
        assert_eq!(s.clickhouse.url, "http://ch:8123");
        assert_eq!(s.clickhouse.user, "lf");
        assert_eq!(s.clickhouse.password.expose_secret(), "chpw");
        assert_eq!(s.clickhouse.database, "lfdb");
        assert_eq!(s.redis.url.expose_secret(), "redis://:p%40ss@cache:6380");
        assert_eq!(s.redis.key_prefix, "lf:");
        assert_eq!(s.blob.bucket, "events");
        assert!(s.blob.force_path_style);
        assert_eq!(s.auth.salt.expose_secret(), "pepper");
        assert_eq!(s.server.hostname, "127.0.0.1");
        assert_eq!(s.log.format, LogFormat::Json);
    }

    #[test]
    fn the_prompt_cache_follows_langfuse_names() {
        let s = Settings::load(None, &env(&[])).unwrap();
        assert!(s.prompts.cache_enabled);
        assert_eq!(s.prompts.redis_ttl_secs, 3600);
        let s = Settings::load(
            None,
            &env(&[
                ("LANGFUSE_CACHE_PROMPT_ENABLED", "false"),
                ("LANGFUSE_CACHE_PROMPT_TTL_SECONDS", "60"),
            ]),
        )
        .unwrap();
        assert!(!s.prompts.cache_enabled);
        assert_eq!(s.prompts.redis_ttl_secs, 60);
        let err = Settings::load(
            None,
            &env(&[("LANGFUSE_RS__PROMPTS__MAX_CONNECTIONS", "0")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("prompts.max_connections"), "{err}");
    }

    #[test]
    fn connection_string_beats_redis_host() {
        let s = Settings::load(
            None,
            &env(&[
                ("REDIS_CONNECTION_STRING", "redis://a:1"),
                ("REDIS_HOST", "b"),
            ]),
        )
        .unwrap();
        assert_eq!(s.redis.url.expose_secret(), "redis://a:1");
    }

    #[test]
    fn errors_name_the_key_and_its_environment_names() {
        let err = Settings::load(None, &env(&[("PORT", "eighty")])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("server.port"), "{text}");
        assert!(text.contains("PORT"), "{text}");
        assert!(!text.contains('\n'), "one line: {text}");

        let err = Settings::load(None, &env(&[("CLICKHOUSE_URL", "ch:8123")])).unwrap_err();
        assert!(err.to_string().contains("clickhouse.url"), "{err}");

        let err = Settings::load(None, &env(&[("LANGFUSE_LOG_FORMAT", "xml")])).unwrap_err();
        assert!(err.to_string().contains("log.format"), "{err}");

        let err = Settings::load(
            None,
            &env(&[
                ("REDIS_CLUSTER_ENABLED", "true"),
                ("REDIS_CLUSTER_NODES", ""),
            ]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("redis.cluster_nodes"), "{err}");

        let err = Settings::load(None, &env(&[("REDIS_KEY_PREFIX", "{lf}")])).unwrap_err();
        assert!(err.to_string().contains("redis.key_prefix"), "{err}");

        let err = Settings::load(None, &env(&[("LANGFUSE_INIT_ORG_ID", "o")])).unwrap_err();
        assert!(err.to_string().contains("init.project_id"), "{err}");
    }

    #[test]
    fn the_web_ui_follows_langfuse_names() {
        let s = Settings::load(None, &env(&[])).unwrap();
        assert!(!s.auth.disable_signup);
        assert!(!s.auth.public_url_is_https());
        assert_eq!(s.auth.session_max_age_minutes, 43200);
        let s = Settings::load(
            None,
            &env(&[
                ("AUTH_DISABLE_SIGNUP", "true"),
                ("NEXTAUTH_URL", "https://langfuse.example.com"),
                ("AUTH_SESSION_MAX_AGE", "60"),
                ("LANGFUSE_INIT_ORG_ID", "o"),
                ("LANGFUSE_INIT_PROJECT_ID", "p"),
                ("LANGFUSE_INIT_PROJECT_PUBLIC_KEY", "pk-lf-1"),
                ("LANGFUSE_INIT_PROJECT_SECRET_KEY", "sk-lf-1"),
                ("LANGFUSE_INIT_USER_EMAIL", "ada@example.com"),
                ("LANGFUSE_INIT_USER_NAME", "Ada"),
                ("LANGFUSE_INIT_USER_PASSWORD", "long enough"),
            ]),
        )
        .unwrap();
        assert!(s.auth.disable_signup);
        assert!(s.auth.public_url_is_https());
        assert_eq!(s.auth.session_max_age_minutes, 60);
        assert_eq!(s.init.user_email, "ada@example.com");
        assert_eq!(s.init.user_name, "Ada");
        assert_eq!(s.init.user_password.expose_secret(), "long enough");

        let err = Settings::load(None, &env(&[("LANGFUSE_INIT_USER_EMAIL", "a@b.c")])).unwrap_err();
        assert!(err.to_string().contains("init.user_password"), "{err}");
        let err = Settings::load(
            None,
            &env(&[
                ("LANGFUSE_INIT_USER_EMAIL", "a@b.c"),
                ("LANGFUSE_INIT_USER_PASSWORD", "long enough"),
            ]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("init.org_id"), "{err}");
        let err =
            Settings::load(None, &env(&[("NEXTAUTH_URL", "langfuse.example.com")])).unwrap_err();
        assert!(err.to_string().contains("auth.public_url"), "{err}");
    }

    #[test]
    fn a_bad_database_url_does_not_echo_its_password() {
        let err = Settings::load(
            None,
            &env(&[("DATABASE_URL", "postgres://u:hunter2@h:notaport/x")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("database.url"));
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let s = Settings::load(
            None,
            &env(&[
                ("DATABASE_URL", "postgres://u:hunter2@db/lf"),
                ("CLICKHOUSE_PASSWORD", "chsecret"),
                ("SALT", "saltsecret"),
                ("LANGFUSE_S3_EVENT_UPLOAD_SECRET_ACCESS_KEY", "s3secret"),
                ("REDIS_CONNECTION_STRING", "redis://:redissecret@r:6379"),
                ("LANGFUSE_INIT_ORG_ID", "o"),
                ("LANGFUSE_INIT_PROJECT_ID", "p"),
                ("LANGFUSE_INIT_PROJECT_PUBLIC_KEY", "pk-lf-1"),
                ("LANGFUSE_INIT_PROJECT_SECRET_KEY", "sk-lf-1"),
                ("LANGFUSE_INIT_USER_EMAIL", "ada@example.com"),
                ("LANGFUSE_INIT_USER_PASSWORD", "userpwsecret"),
            ]),
        )
        .unwrap();
        let debug = format!("{s:?}");
        for secret in [
            "hunter2",
            "chsecret",
            "saltsecret",
            "s3secret",
            "redissecret",
            "userpwsecret",
        ] {
            assert!(!debug.contains(secret), "{secret} leaked in {debug}");
        }
    }

    #[test]
    fn missing_config_file_is_an_error() {
        let err = Settings::load(Some(Path::new("/nonexistent/x.toml")), &env(&[])).unwrap_err();
        assert!(err.to_string().contains("--config"), "{err}");
    }

    #[test]
    fn media_settings_take_langfuses_names_and_refuse_unknown_types() {
        let s = Settings::load(None, &env(&[])).unwrap();
        assert_eq!(s.media.max_content_length, 1_000_000_000);
        assert_eq!(
            s.media.allowed_content_types().len(),
            crate::domain::media::CONTENT_TYPES.len()
        );
        let s = Settings::load(
            None,
            &env(&[
                ("LANGFUSE_S3_MEDIA_MAX_CONTENT_LENGTH", "5000"),
                ("LANGFUSE_S3_MEDIA_UPLOAD_PREFIX", "files/"),
                ("LANGFUSE_S3_MEDIA_DOWNLOAD_URL_EXPIRY_SECONDS", "60"),
                (
                    "LANGFUSE_RS__MEDIA__ALLOWED_CONTENT_TYPES",
                    "image/png, Audio/WAV",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(s.media.max_content_length, 5000);
        assert_eq!(s.media.prefix, "files/");
        assert_eq!(s.media.download_url_expiry_secs, 60);
        assert_eq!(
            s.media.allowed_content_types(),
            vec!["image/png", "audio/wav"]
        );
        let err = Settings::load(
            None,
            &env(&[(
                "LANGFUSE_RS__MEDIA__ALLOWED_CONTENT_TYPES",
                "image/png,text/x-evil",
            )]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("media.allowed_content_types") && err.contains("text/x-evil"),
            "{err}"
        );
        let err = Settings::load(None, &env(&[("LANGFUSE_S3_MEDIA_MAX_CONTENT_LENGTH", "0")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("LANGFUSE_S3_MEDIA_MAX_CONTENT_LENGTH"),
            "{err}"
        );
    }
}
