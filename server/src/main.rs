//! The `nowdb` binary.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use nowdb_server::config::{AuthMethod, DurabilityMode, LogFormat};
use nowdb_server::Config;
use tracing_subscriber::EnvFilter;

/// mimalloc: allocation was a tenth of the server's CPU time in the lookup and ingest profiles
/// (docs/BENCHMARKS.md) with glibc malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "nowdb",
    version,
    about = "Real-time feature store and inference database, Postgres wire compatible",
    after_help = "Every `serve` setting can also be given in a TOML file (--config), under the same names with\n\
                  underscores (e.g. `http_listen = \"off\"`, `[limits] max_connections = 500`); flags and NOWDB_*\n\
                  variables override the file. Logs go to stderr; NOWDB_LOG sets the filter (e.g. `info,nowdb=debug`)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Write a consistent copy of a data directory (RocksDB checkpoint), while a server runs on
    /// it or not. Restore by starting a server on the copy (`nowdb serve --data-dir <copy>`).
    Backup(BackupArgs),
}

#[derive(clap::Args)]
struct BackupArgs {
    /// Data directory to back up.
    #[arg(long, env = "NOWDB_DATA_DIR", default_value = "./nowdb-data")]
    data_dir: PathBuf,
    /// Directory to create with the backup (must not exist).
    #[arg(long)]
    to: PathBuf,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML configuration file; flags given here override it.
    #[arg(long, env = "NOWDB_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (HOST:PORT) [default: 127.0.0.1:5433].
    #[arg(long, env = "NOWDB_LISTEN")]
    listen: Option<String>,
    /// Data directory [default: ./nowdb-data].
    #[arg(long, env = "NOWDB_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// When writes are acknowledged: `sync` (after WAL fsync) or `async` (after the WAL write)
    /// [default: sync].
    #[arg(long, env = "NOWDB_DURABILITY", value_enum)]
    durability: Option<DurabilityMode>,
    /// Directory `CREATE MODEL ... FROM 'file.onnx'` reads model files from [default: ./models].
    #[arg(long, env = "NOWDB_MODEL_DIR")]
    model_dir: Option<PathBuf>,
    /// Directory `COPY ... TO 'file'` writes exports (Parquet, CSV) into [default: ./exports].
    #[arg(long, env = "NOWDB_EXPORT_DIR")]
    export_dir: Option<PathBuf>,
    /// Client authentication: `trust` (loopback only), `md5` or `scram-sha-256` [default: trust].
    #[arg(long, env = "NOWDB_AUTH", value_enum)]
    auth: Option<AuthMethod>,
    /// Creates the superuser `nowdb` with this password, or resets its password, at start.
    #[arg(long, env = "NOWDB_SUPERUSER_PASSWORD", hide_env_values = true)]
    superuser_password: Option<String>,
    /// TLS certificate chain (PEM); with --tls-key, clients may use sslmode=require.
    #[arg(long, env = "NOWDB_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "NOWDB_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Prometheus endpoint HOST:PORT serving GET /metrics, or `off` [default: 127.0.0.1:9187].
    #[arg(long, env = "NOWDB_HTTP_LISTEN")]
    http_listen: Option<String>,
    /// Log format: `text` or `json` [default: text].
    #[arg(long, env = "NOWDB_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Log statements slower than this many milliseconds (0: off) [default: 1000].
    #[arg(long, env = "NOWDB_SLOW_QUERY_MS")]
    slow_query_ms: Option<u64>,
    /// Largest frontend message in bytes [default: 67108864].
    #[arg(long, env = "NOWDB_MAX_MESSAGE_BYTES")]
    max_message_bytes: Option<usize>,
    /// Most connections served at once [default: 200].
    #[arg(long, env = "NOWDB_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Default statement_timeout of sessions in milliseconds (0: none) [default: 0].
    #[arg(long, env = "NOWDB_STATEMENT_TIMEOUT_MS")]
    statement_timeout_ms: Option<u64>,
    /// Memory one query may use in bytes (0: unlimited) [default: 1073741824].
    #[arg(long, env = "NOWDB_QUERY_MEMORY_BYTES")]
    query_memory_bytes: Option<usize>,
    /// Rows one result may return (0: unlimited) [default: 0].
    #[arg(long, env = "NOWDB_MAX_RESULT_ROWS")]
    max_result_rows: Option<u64>,
    /// Largest ONNX model accepted in bytes [default: 536870912].
    #[arg(long, env = "NOWDB_MAX_MODEL_BYTES")]
    max_model_bytes: Option<u64>,
    /// Most intra-op threads a model may use [default: number of cores].
    #[arg(long, env = "NOWDB_MAX_MODEL_THREADS")]
    max_model_threads: Option<u32>,
    /// Free disk space kept on the data directory's file system; writes are refused (53100)
    /// below it [default: 67108864].
    #[arg(long, env = "NOWDB_MIN_FREE_DISK_BYTES")]
    min_free_disk_bytes: Option<u64>,
}

impl ServeArgs {
    /// The file's configuration (or the defaults) with the given flags applied.
    fn into_config(self) -> Result<Config, String> {
        let mut c = match &self.config {
            Some(path) => Config::from_toml_file(path).map_err(|e| e.to_string())?,
            None => Config::default(),
        };
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { c.$field = v; } )* };
        }
        macro_rules! set_limit {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { c.limits.$field = v; } )* };
        }
        set!(listen, data_dir, durability, model_dir, export_dir, auth, http_listen, log_format, slow_query_ms);
        set_limit!(max_message_bytes, max_connections, statement_timeout_ms, query_memory_bytes, max_result_rows, max_model_bytes, max_model_threads, min_free_disk_bytes);
        if self.superuser_password.is_some() {
            c.superuser_password = self.superuser_password;
        }
        if self.tls_cert.is_some() {
            c.tls_cert = self.tls_cert;
        }
        if self.tls_key.is_some() {
            c.tls_key = self.tls_key;
        }
        Ok(c)
    }
}

fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_env("NOWDB_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).init(),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Command::Serve(args) => args,
        Command::Backup(b) => {
            init_logs(LogFormat::Text);
            return match nowdb_server::backup::backup(&b.data_dir, &b.to) {
                Ok(()) => {
                    eprintln!("backup of {} written to {}", b.data_dir.display(), b.to.display());
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("nowdb backup: {e}");
                    std::process::ExitCode::FAILURE
                }
            };
        }
    };
    let config = match args.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nowdb: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    init_logs(config.log_format);
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
