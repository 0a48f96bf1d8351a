//! # nowdb-storage
//!
//! Owns durable bytes: RocksDB behind the small [`Store`] trait (column families, atomic write
//! sets, ordered scans), the key encodings ([`keys`]), the Arrow IPC batch codec of the append
//! log ([`codec`]) and the compact row codec of keyed rows ([`rowcodec`]).
//!
//! It knows Arrow but not DataFusion, SQL, tables or views: callers hand it keys and values and
//! get them back. Everything above it (catalog, views, server) reaches RocksDB only through
//! [`Store`], so a write that must be atomic across a table and its views is one [`WriteSet`].

pub mod codec;
pub mod error;
pub mod keys;
pub mod rocks;
pub mod rowcodec;
pub mod stats;
pub mod store;

pub use error::{StorageError, StorageErrorKind};
pub use rocks::{Durability, RocksStore};
pub use stats::{BatchStats, ColumnRange};
pub use store::{Cf, ScanControl, Store, WriteSet};

/// Result type of this crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
