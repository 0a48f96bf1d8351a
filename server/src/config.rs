//! The server's one typed configuration, passed explicitly.

use std::path::PathBuf;

use nowdb_storage::Durability;

/// Everything `nowdb serve` can be told.
#[derive(Debug, Clone)]
pub struct Config {
    /// `HOST:PORT` to listen on (default `127.0.0.1:5433`).
    pub listen: String,
    /// Where RocksDB keeps the data (default `./nowdb-data`).
    pub data_dir: PathBuf,
    /// When a write is acknowledged (default: after fsync of the WAL).
    pub durability: Durability,
    /// Where `CREATE MODEL name FROM 'file.onnx'` looks (default `./models`); paths leaving it
    /// are refused.
    pub model_dir: PathBuf,
    /// Where `COPY ... TO 'file'` writes (default `./exports`); paths leaving it are refused.
    pub export_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:5433".into(),
            data_dir: PathBuf::from("./nowdb-data"),
            durability: Durability::Sync,
            model_dir: PathBuf::from("./models"),
            export_dir: PathBuf::from("./exports"),
        }
    }
}
