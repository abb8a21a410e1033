//! The one integration-test binary: every module runs against the real PostgreSQL, Redis (standalone
//! and cluster), ClickHouse-compatible server and blob storage that `scripts/test.sh` starts, except
//! `architecture`, a check of the sources' layering.

mod architecture;
mod auth;
mod blob;
mod bootstrap;
mod cli;
mod costs;
mod dockerfile;
mod experiments;
mod filter;
mod health;
mod helpers;
mod ingestion;
mod metrics;
mod migrations;
mod models;
mod openapi_contract;
mod otel;
mod otel_sdk;
mod prompts;
mod read_api;
mod read_api_v1;
mod read_api_v2;
mod redis;
mod score_config_checks;
mod score_configs;
mod scores;
mod sdk;
mod tokens;
mod torture;
mod ui_accounts;
mod ui_browser;
mod ui_browser_dashboards;
mod ui_browser_models;
mod ui_browser_prompts;
mod ui_browser_score_configs;
mod ui_browser_trace_detail;
mod ui_browser_traces;
mod ui_dashboards;
mod ui_models;
mod ui_prompts;
mod ui_score_configs;
mod ui_scores;
mod ui_trace_detail;
mod ui_traces;
