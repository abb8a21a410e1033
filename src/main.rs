//! The `langfuse-rs` binary: parses arguments, loads settings, starts logging, and dispatches to
//! a role. Everything else is in the library.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use langfuse_rs::config::Settings;
use langfuse_rs::{app, telemetry};

/// Both roles allocate and free many short-lived buffers per event (parsed JSON, merged records,
/// rows); glibc's allocator spent about a third of the worker's CPU time on that in profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "langfuse-rs",
    version,
    about = "Langfuse-compatible LLM observability server"
)]
struct Cli {
    /// TOML configuration file (see config.example.toml); the environment overrides it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the web role).
    Serve {
        /// Also run the worker role in this process (a small install).
        #[arg(long)]
        with_worker: bool,
    },
    /// Run the queue consumers that write to ClickHouse (the worker role).
    Work,
    /// Inspect and repair the ingestion queue.
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// Apply pending PostgreSQL and ClickHouse schema migrations.
    Migrate {
        /// List applied and pending migrations instead of applying them.
        #[arg(long)]
        status: bool,
    },
}

#[derive(Debug, Subcommand)]
enum QueueCommand {
    /// List the entries that failed `worker.max_attempts` times, with their errors (JSON lines).
    DeadLetters,
    /// Put every dead letter back on the queue.
    Retry,
    /// Show how many entries wait in the queue.
    Backlog,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    let settings = match Settings::load(cli.config.as_deref(), &env) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line with the cause chain: operators read this in a deploy log.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve { with_worker } => {
            let stores = app::prepare(&settings).await?;
            let listener = bind(&settings.http_address())?;
            app::serve(
                &settings,
                stores,
                listener,
                with_worker,
                app::shutdown_on_signals(),
            )
            .await
        }
        Command::Work => {
            let stores = app::prepare(&settings).await?;
            let listener = bind(&settings.worker_health_address())?;
            app::work(&settings, stores, listener, app::shutdown_on_signals()).await
        }
        Command::Queue { command } => {
            let out = match command {
                QueueCommand::DeadLetters => app::queue_dead_letters(&settings).await?,
                QueueCommand::Retry => app::queue_retry(&settings).await?,
                QueueCommand::Backlog => app::queue_backlog(&settings).await?,
            };
            print!("{out}");
            Ok(())
        }
        Command::Migrate { status } => {
            print!("{}", app::migrate(&settings, status).await?);
            Ok(())
        }
    }
}

fn bind(address: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).map_err(|e| anyhow::anyhow!("cannot listen on {address}: {e}"))
}
