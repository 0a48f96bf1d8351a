//! The `nowdb` binary.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use nowdb_server::Config;
use nowdb_storage::Durability;
use tracing_subscriber::EnvFilter;

/// mimalloc: allocation was a tenth of the server's CPU time in the lookup and ingest profiles
/// (docs/BENCHMARKS.md) with glibc malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "nowdb", version, about = "Real-time feature store and inference database, Postgres wire compatible")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on (HOST:PORT).
    #[arg(long, env = "NOWDB_LISTEN", default_value = "127.0.0.1:5433")]
    listen: String,
    /// Data directory.
    #[arg(long, env = "NOWDB_DATA_DIR", default_value = "./nowdb-data")]
    data_dir: PathBuf,
    /// When writes are acknowledged: `sync` (after WAL fsync) or `async` (after the WAL write).
    #[arg(long, env = "NOWDB_DURABILITY", value_enum, default_value_t = DurabilityArg::Sync)]
    durability: DurabilityArg,
    /// Directory `CREATE MODEL ... FROM 'file.onnx'` reads model files from.
    #[arg(long, env = "NOWDB_MODEL_DIR", default_value = "./models")]
    model_dir: PathBuf,
    /// Directory `COPY ... TO 'file'` writes exports (Parquet, CSV) into.
    #[arg(long, env = "NOWDB_EXPORT_DIR", default_value = "./exports")]
    export_dir: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum DurabilityArg {
    Sync,
    Async,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("NOWDB_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let Command::Serve(args) = cli.command;
    let config = Config {
        listen: args.listen,
        data_dir: args.data_dir,
        durability: match args.durability {
            DurabilityArg::Sync => Durability::Sync,
            DurabilityArg::Async => Durability::Async,
        },
        model_dir: args.model_dir,
        export_dir: args.export_dir,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(nowdb_server::server::serve(config, shutdown_signal()));
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "nowdb failed");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutdown signal received");
}
