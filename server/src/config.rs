//! The server's one typed configuration, passed explicitly.
//!
//! It is read from an optional TOML file (`nowdb serve --config nowdb.toml`, same names as the
//! fields below, `[limits]` as a table), then every command-line flag or `NOWDB_*` variable that
//! is given overrides the file. [`Config::validate`] refuses unsafe combinations before anything
//! listens.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use nowdb_storage::Durability;
use serde::Deserialize;

use crate::error::{NowError, NowResult};

/// Everything `nowdb serve` can be told.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `HOST:PORT` to listen on (default `127.0.0.1:5433`).
    pub listen: String,
    /// Where RocksDB keeps the data (default `./nowdb-data`).
    pub data_dir: PathBuf,
    /// When a write is acknowledged (default: after fsync of the WAL).
    pub durability: DurabilityMode,
    /// Where `CREATE MODEL name FROM 'file.onnx'` looks (default `./models`); paths leaving it
    /// are refused.
    pub model_dir: PathBuf,
    /// Where `COPY ... TO 'file'` writes (default `./exports`); paths leaving it are refused.
    pub export_dir: PathBuf,
    /// How clients prove who they are (default `trust`, allowed only on a loopback address).
    pub auth: AuthMethod,
    /// If set, the superuser `nowdb` is created (or its password reset) with this password at
    /// start, so that a server with password authentication can be entered the first time.
    pub superuser_password: Option<String>,
    /// PEM certificate chain for TLS; with `tls_key`, clients may (and `sslmode=require` ones
    /// will) encrypt.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// `HOST:PORT` of the HTTP endpoint serving Prometheus `/metrics` (default
    /// `127.0.0.1:9187`); `off` disables it.
    pub http_listen: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// Statements running longer than this many milliseconds are logged at WARN with their
    /// text and duration (0: off).
    pub slow_query_ms: u64,
    /// Resource limits.
    pub limits: Limits,
}

/// Resource limits; each refusal is a PostgreSQL error with its SQLSTATE.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest frontend message accepted, in bytes (a Query, a Bind, one CopyData); larger ones
    /// end the connection with 54000 before they are buffered (default 64 MiB).
    pub max_message_bytes: usize,
    /// Connections served at once; the next one is refused with 53300 (default 200).
    pub max_connections: usize,
    /// Default `statement_timeout` of new sessions in milliseconds (0: none); `SET
    /// statement_timeout` changes it per session. Exceeding it is 57014.
    pub statement_timeout_ms: u64,
    /// Memory one query may use for sorts, joins and aggregations, in bytes (0: unlimited);
    /// exceeding it is 53200 (default 1 GiB).
    pub query_memory_bytes: usize,
    /// Rows one result may return (0: unlimited); more is 54000.
    pub max_result_rows: u64,
    /// Largest ONNX model `CREATE MODEL` accepts, in bytes (default 512 MiB); larger is 54000.
    pub max_model_bytes: u64,
    /// Most intra-op threads one model may ask for in `WITH (threads = N)` (default: the number
    /// of cores); more is 22023.
    pub max_model_threads: u32,
    /// Free space kept on the data directory's file system: writes are refused with 53100
    /// below it, so that RocksDB never runs into a full disk (default 64 MiB; 0: off).
    pub min_free_disk_bytes: u64,
}

/// Acknowledgement point of writes (the `--durability` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityMode {
    /// After the WAL is fsynced.
    #[default]
    Sync,
    /// After the WAL is written to the OS.
    Async,
}

impl From<DurabilityMode> for Durability {
    fn from(mode: DurabilityMode) -> Self {
        match mode {
            DurabilityMode::Sync => Durability::Sync,
            DurabilityMode::Async => Durability::Async,
        }
    }
}

/// Client authentication method, as in `pg_hba.conf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
pub enum AuthMethod {
    /// No password; the startup message's user name is believed. Loopback only.
    #[default]
    #[serde(rename = "trust")]
    #[value(name = "trust")]
    Trust,
    /// MD5 challenge (for old clients): `md5(md5(password || user) || salt)`.
    #[serde(rename = "md5")]
    #[value(name = "md5")]
    Md5,
    /// SCRAM-SHA-256 (PostgreSQL's default since 14).
    #[serde(rename = "scram-sha-256")]
    #[value(name = "scram-sha-256")]
    ScramSha256,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, fields included.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:5433".into(),
            data_dir: PathBuf::from("./nowdb-data"),
            durability: DurabilityMode::Sync,
            model_dir: PathBuf::from("./models"),
            export_dir: PathBuf::from("./exports"),
            auth: AuthMethod::Trust,
            superuser_password: None,
            tls_cert: None,
            tls_key: None,
            http_listen: "127.0.0.1:9187".into(),
            log_format: LogFormat::Text,
            slow_query_ms: 1000,
            limits: Limits::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 << 20,
            max_connections: 200,
            statement_timeout_ms: 0,
            query_memory_bytes: 1 << 30,
            max_result_rows: 0,
            max_model_bytes: 512 << 20,
            max_model_threads: std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(4),
            min_free_disk_bytes: 64 << 20,
        }
    }
}

impl Config {
    /// Reads a TOML configuration file; absent fields keep their defaults.
    pub fn from_toml_file(path: &Path) -> NowResult<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| NowError::coded("58P01", format!("cannot read config file {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| NowError::coded("22023", format!("config file {}: {e}", path.display())))
    }

    /// Whether the metrics endpoint is enabled.
    pub fn http_address(&self) -> Option<&str> {
        match self.http_listen.trim() {
            "" | "off" | "none" => None,
            addr => Some(addr),
        }
    }

    /// Refuses configurations that would expose data: `trust` on an address other than
    /// loopback, half a TLS configuration, limits of zero where zero means nothing works.
    pub fn validate(&self) -> NowResult<()> {
        if self.auth == AuthMethod::Trust && !is_loopback(&self.listen) {
            return Err(NowError::coded(
                "28000",
                format!(
                    "refusing to listen on {} with trust authentication: set auth = \"scram-sha-256\" (or md5) and create users, or listen on 127.0.0.1",
                    self.listen
                ),
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(NowError::coded("22023", "tls_cert and tls_key must be given together"));
        }
        if self.limits.max_connections == 0 || self.limits.max_message_bytes < 1024 {
            return Err(NowError::coded("22023", "max_connections must be positive and max_message_bytes at least 1024"));
        }
        Ok(())
    }
}

/// Whether `listen` (`HOST:PORT`) names only loopback: `127.0.0.0/8`, `::1` or `localhost`.
fn is_loopback(listen: &str) -> bool {
    if let Ok(addr) = listen.parse::<SocketAddr>() {
        return addr.ip().is_loopback();
    }
    matches!(listen.rsplit_once(':'), Some(("localhost", _)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_is_refused_off_loopback() {
        let mut c = Config { listen: "0.0.0.0:5433".into(), ..Config::default() };
        assert_eq!(c.validate().unwrap_err().to_error_info().code, "28000");
        c.auth = AuthMethod::ScramSha256;
        assert!(c.validate().is_ok());
        for addr in ["127.0.0.1:1", "[::1]:1", "localhost:5433"] {
            let c = Config { listen: addr.into(), ..Config::default() };
            assert!(c.validate().is_ok(), "{addr}");
        }
    }

    #[test]
    fn toml_file_fills_nested_limits_and_refuses_unknown_keys() {
        let c: Config = toml::from_str(
            "listen = \"127.0.0.1:6000\"\nauth = \"scram-sha-256\"\n[limits]\nmax_connections = 7\n",
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:6000");
        assert_eq!(c.auth, AuthMethod::ScramSha256);
        assert_eq!(c.limits.max_connections, 7);
        assert_eq!(c.limits.max_message_bytes, Limits::default().max_message_bytes);
        assert!(toml::from_str::<Config>("lisen = \"x\"").is_err());
    }
}
