//! Every store the roles share, built once per process.
//!
//! The web role and the worker meet only here: at the tables, the Redis key scheme and the blob
//! key scheme, which are read and written across processes and versions.
//! `models` holds model definitions and prices (and the shipped set `migrate` loads) and the
//! per-process cache matching reads through. `score_configs` holds score configs. `signin_throttle` counts the web UI's failed sign-ins in Redis.

pub mod blob;
pub mod clickhouse;
pub mod media;
pub mod models;
pub mod postgres;
pub mod prompts;
pub mod queue;
pub mod raw_events;
pub mod redis;
pub mod score_configs;
pub mod signin_throttle;
pub mod trace_gate;
pub mod trace_outline;
pub mod whole_trace;

use anyhow::Context;

use crate::config::Settings;

/// The shared clients. Each is a cheap handle; clone freely.
#[derive(Clone)]
pub struct Stores {
    pub postgres: deadpool_postgres::Pool,
    pub redis: redis::RedisStore,
    pub clickhouse: ::clickhouse::Client,
    pub blob: blob::BlobStore,
}

impl Stores {
    pub async fn connect(settings: &Settings) -> anyhow::Result<Stores> {
        let postgres = postgres::connect(&settings.database)?;
        let redis = redis::connect(&settings.redis).await.context("redis")?;
        let clickhouse = clickhouse::connect(&settings.clickhouse);
        let blob = blob::connect(settings).context("blob storage")?;
        Ok(Stores {
            postgres,
            redis,
            clickhouse,
            blob,
        })
    }

    pub async fn close(&self) {
        self.redis.quit().await;
        self.postgres.close();
    }
}
