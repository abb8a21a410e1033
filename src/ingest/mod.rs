//! Ingestion as pure code, shared by both roles: what an event means (`event`) and how every event
//! of one entity becomes one record (`merge`). No I/O here.

pub mod event;
pub mod gzip;
pub mod merge;
pub mod otel;
