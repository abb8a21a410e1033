//! langfuse-rs: a Langfuse-compatible LLM-observability server in one binary.
//!
//! # Layout
//! - `config`: the typed settings tree (defaults < file < environment).
//! - `domain`: pure types and rules, no I/O: entity kinds, observation types and levels, date-time
//!   text, API-key hashing, prompt rules.
//! - `storage`: PostgreSQL, Redis, ClickHouse and blob storage clients and their queries; the
//!   only place the roles meet.
//! - `ingest`: pure ingestion rules: event parsing and validation, and the merge.
//! - `http`: the web role (`serve`), Langfuse's public API on actix-web.
//! - `write_path`: what the web role's ingestion endpoints share below HTTP: admission,
//!   preparation on the blocking pool, durable writes; and trace deletion.
//! - `worker`: the worker role (`work`), queue consumers that write to ClickHouse.
//! - `health`: liveness and readiness probes shared by both roles.
//! - `prompt_cache`: prompt reads served from memory, with Redis behind it, invalidated by epochs;
//!   the runtime that prompt misses, writes and lists run on.
//! - `migrate`: embedded, checksummed schema migrations for PostgreSQL and ClickHouse.
//! - `bootstrap`: `LANGFUSE_INIT_*` provisioning.
//! - `app`: composition of the roles, used by `main.rs` and by the tests.
//! - `telemetry`: logging.

pub mod app;
pub mod bootstrap;
pub mod config;
pub mod domain;
pub mod health;
pub mod http;
pub mod ingest;
pub mod migrate;
pub mod prompt_cache;
pub mod storage;
pub mod telemetry;
pub mod worker;
pub mod write_path;
