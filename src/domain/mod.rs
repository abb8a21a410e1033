//! Pure types and rules: no I/O.

pub mod api_key;
pub mod project;
pub mod prompt;
