//! Storage errors and their category.

use thiserror::Error;

/// What went wrong below the catalog.
#[derive(Debug, Error)]
pub enum StorageError {
    /// RocksDB refused or failed an operation.
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// Encoding or decoding an Arrow batch failed.
    #[error("arrow batch codec: {0}")]
    Codec(#[from] arrow::error::ArrowError),
    /// Bytes on disk do not decode: a bug or corruption.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// A value cannot be encoded as a key (type not orderable, NULL in a key).
    #[error("cannot encode key: {0}")]
    KeyEncoding(String),
    /// The data directory's disk has less free space than the configured reserve.
    #[error("could not write: disk full ({free} bytes free on the data directory's file system, below the reserve of {reserve} bytes); free space and retry")]
    NoSpace {
        /// Free bytes.
        free: u64,
        /// The reserve (min_free_disk_bytes).
        reserve: u64,
    },
    /// File system error (opening the data directory).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Coarse classes of [`StorageError`], mapped to SQLSTATEs once, in the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageErrorKind {
    /// The disk or the database refused the operation (read-only, I/O error).
    Io,
    /// The disk is full: the write was not made.
    DiskFull,
    /// Stored bytes are not what we wrote.
    Corruption,
    /// The caller asked for something the encodings cannot represent.
    InvalidInput,
}

impl StorageError {
    /// The category of this error.
    pub fn kind(&self) -> StorageErrorKind {
        match self {
            StorageError::Rocks(e) => match e.kind() {
                rocksdb::ErrorKind::Corruption => StorageErrorKind::Corruption,
                // RocksDB reports ENOSPC as an IOError whose message carries the OS text; once
                // it has, it refuses writes (NoSpace) until the database is reopened.
                _ if e.as_ref().contains("No space left") || e.as_ref().contains("NoSpace") => StorageErrorKind::DiskFull,
                _ => StorageErrorKind::Io,
            },
            StorageError::Io(e) if e.raw_os_error() == Some(28) => StorageErrorKind::DiskFull,
            StorageError::NoSpace { .. } => StorageErrorKind::DiskFull,
            StorageError::Io(_) => StorageErrorKind::Io,
            StorageError::Codec(_) | StorageError::Corrupt(_) => StorageErrorKind::Corruption,
            StorageError::KeyEncoding(_) => StorageErrorKind::InvalidInput,
        }
    }
}
