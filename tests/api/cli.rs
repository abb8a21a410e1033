//! The binary as an operator runs it: arguments, configuration errors, signals.

use std::process::Stdio;
use std::time::Duration;

use crate::helpers::{becomes_healthy, free_port, TestConfig};

const BIN: &str = env!("CARGO_BIN_EXE_langfuse-rs");

fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn help_and_version_work_everywhere() {
    let out = run(&["--version"], &[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["work", "--help"],
        vec!["migrate", "--help"],
    ] {
        let out = run(&args, &[]);
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("--config"),
            "{args:?}"
        );
    }
    let out = run(&["serve", "--help"], &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("--with-worker"));
    let out = run(&["migrate", "--help"], &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("--status"));
}

#[test]
fn misconfiguration_exits_non_zero_with_one_line_naming_the_key() {
    for (env, key) in [
        (("PORT", "eighty"), "server.port"),
        (("CLICKHOUSE_URL", "not a url"), "clickhouse.url"),
        (("DATABASE_URL", "mysql:/x"), "database.url"),
        (("LANGFUSE_LOG_LEVEL", "loud"), "log.level"),
        (("REDIS_CONNECTION_STRING", "http://x"), "redis.url"),
    ] {
        let out = run(&["migrate"], &[env]);
        assert_eq!(out.status.code(), Some(2), "{env:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(key), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let out = run(&["--config", "/nonexistent.toml", "migrate"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn serve_without_a_salt_or_a_migrated_schema_says_what_to_do() {
    let mut config = TestConfig::new().await;
    config.env.remove("SALT");
    let (status, stderr) = config.run(&["serve"]).await;
    assert!(!status.success());
    assert!(stderr.contains("auth.salt"), "{stderr}");

    config.set("SALT", "s").set("PORT", "0");
    let (status, stderr) = config.run(&["serve"]).await;
    assert!(!status.success());
    assert!(stderr.contains("run `langfuse-rs migrate`"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

async fn wait_until_healthy(port: u16) {
    let healthy = becomes_healthy(port).await;
    assert!(healthy, "no health answer on port {port}");
}

async fn exits_cleanly_on(signal: &str, args: &[&str], port_key: &str) {
    let mut config = TestConfig::new().await;
    config.migrate().await;
    let port = free_port();
    config
        .set("HOSTNAME", "127.0.0.1")
        .set(port_key, port.to_string())
        .set("LANGFUSE_RS__WORKER__HEALTH_HOSTNAME", "127.0.0.1");
    let mut child = config
        .command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_healthy(port).await;
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exits after the signal")
        .unwrap();
    assert!(exit.success(), "{args:?} on SIG{signal}: {exit:?}");
}

#[tokio::test]
async fn serve_shuts_down_gracefully_on_sigterm() {
    exits_cleanly_on("TERM", &["serve"], "PORT").await;
}

#[tokio::test]
async fn serve_with_worker_shuts_down_gracefully_on_sigint() {
    exits_cleanly_on("INT", &["serve", "--with-worker"], "PORT").await;
}

#[tokio::test]
async fn work_shuts_down_gracefully_on_sigterm() {
    exits_cleanly_on("TERM", &["work"], "LANGFUSE_RS__WORKER__HEALTH_PORT").await;
}
