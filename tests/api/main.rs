//! The one integration-test binary: every module runs against the real PostgreSQL, Redis (standalone
//! and cluster), ClickHouse-compatible server and blob storage that `scripts/test.sh` starts.

mod auth;
mod blob;
mod bootstrap;
mod cli;
mod health;
mod helpers;
mod ingestion;
mod migrations;
mod prompts;
mod read_api;
mod redis;
mod sdk;
mod torture;
