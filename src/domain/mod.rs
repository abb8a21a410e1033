//! Pure types and rules: no I/O.
//!
//! - `account`: roles and what they allow, e-mail keys, argon2id passwords, session tokens.
//! - `api_key`: salted hashes of API-key secrets and their constant-time comparison.
//! - `dashboard`: the time range of dashboard pages, widgets as metrics queries, grid arranging.
//! - `dataset`: dataset names, item ids, JSON Schema checks of items, and how an item write
//!   changes an item.
//! - `entity`: the kinds of record ingestion writes (trace, observation, score).
//! - `metrics`: the Metrics API's views (dimensions, measures), its typed query and its reading
//!   from Langfuse's JSON `query`, with v2's rules.
//! - `model`: model definitions and prices: which model an observation's model name matches,
//!   which pricing tier its usage falls in, and the rules of a new model definition.
//! - `observation`: an observation's type and level.
//! - `pricing`: costs from a model's prices in exact decimals, over a catalog compiled once.
//! - `project`: `ProjectId`, the scope every query of one project's data takes.
//! - `prompt`: prompt validation, labels, and the resolution of composed prompts.
//! - `score_config`: score configs: data types, ranges, categories, and what a create or an
//!   update must satisfy.
//! - `time`: the date-time forms clients may send, and the one this server writes.
//! - `tokens`: token counts of an observation's input and output with its model's tokenizer.

pub mod account;
pub mod api_key;
pub mod dashboard;
pub mod dataset;
pub mod entity;
pub mod metrics;
pub mod model;
pub mod observation;
pub mod pricing;
pub mod project;
pub mod prompt;
pub mod score_config;
pub mod time;
pub mod tokens;
