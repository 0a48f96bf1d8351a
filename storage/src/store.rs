//! The [`Store`] trait: the only door to durable state.

use crate::Result;

/// Column families: one key space per kind of data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cf {
    /// Catalog entries (table definitions, later views, models, users).
    Catalog,
    /// Event tables: append log of Arrow batches, key = table id + sequence.
    Log,
    /// Per-batch statistics of the append log (min/max per column), same keys as [`Cf::Log`],
    /// so that range scans can skip batches without reading them.
    LogStats,
    /// Keyed tables: one entry per row, key = table id + encoded primary key.
    Rows,
    /// Continuous views' maintenance state (per-group aggregate state, value multisets, join
    /// indexes), key = view id + what the view engine encodes.
    ViewState,
    /// Continuous views' history: per view, an append log of Arrow batches of row versions,
    /// key = view id + sequence (like [`Cf::Log`]).
    History,
}

impl Cf {
    /// All column families, in creation order.
    pub const ALL: [Cf; 6] = [Cf::Catalog, Cf::Log, Cf::LogStats, Cf::Rows, Cf::ViewState, Cf::History];

    /// The RocksDB column family name.
    pub fn name(self) -> &'static str {
        match self {
            Cf::Catalog => "catalog",
            Cf::Log => "log",
            Cf::LogStats => "log_stats",
            Cf::Rows => "rows",
            Cf::ViewState => "view_state",
            Cf::History => "history",
        }
    }
}

/// One operation of a [`WriteSet`].
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Set `key` to `value`.
    Put {
        /// Column family.
        cf: Cf,
        /// Key bytes.
        key: Vec<u8>,
        /// Value bytes.
        value: Vec<u8>,
    },
    /// Remove `key`.
    Delete {
        /// Column family.
        cf: Cf,
        /// Key bytes.
        key: Vec<u8>,
    },
    /// Remove every key in `[start, end)`.
    DeleteRange {
        /// Column family.
        cf: Cf,
        /// First key removed.
        start: Vec<u8>,
        /// First key kept.
        end: Vec<u8>,
    },
}

/// An atomic group of writes: all of them become durable together or none does.
#[derive(Debug, Clone, Default)]
pub struct WriteSet {
    ops: Vec<WriteOp>,
}

impl WriteSet {
    /// An empty write set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(&mut self, cf: Cf, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(WriteOp::Put { cf, key, value });
    }

    /// Adds a delete.
    pub fn delete(&mut self, cf: Cf, key: Vec<u8>) {
        self.ops.push(WriteOp::Delete { cf, key });
    }

    /// Adds a range delete of `[start, end)`.
    pub fn delete_range(&mut self, cf: Cf, start: Vec<u8>, end: Vec<u8>) {
        self.ops.push(WriteOp::DeleteRange { cf, start, end });
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The operations, in order.
    pub fn ops(&self) -> &[WriteOp] {
        &self.ops
    }
}

/// Whether a scan callback wants more entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanControl {
    /// Deliver the next entry.
    Continue,
    /// Stop the scan now.
    Stop,
}

/// A scan's per-entry callback: `(key, value)` in key order.
pub type Visit<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> Result<ScanControl>;

/// Durable ordered key-value storage with column families.
///
/// Reads see every write that returned `Ok` before they started. A scan reads from one
/// consistent point in time (the iterator's implicit snapshot).
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Reads one key.
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Reads several keys at once (one RocksDB multi-get), in the order given.
    fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>>;

    /// Visits every entry with `start <= key < end` in key order, until the callback stops.
    fn scan(
        &self,
        cf: Cf,
        start: &[u8],
        end: &[u8],
        visit: Visit<'_>,
    ) -> Result<()>;

    /// Like [`Store::scan`], in descending key order.
    fn scan_rev(
        &self,
        cf: Cf,
        start: &[u8],
        end: &[u8],
        visit: Visit<'_>,
    ) -> Result<()>;

    /// The greatest key in `[start, end)`, if any.
    fn last_key(&self, cf: Cf, start: &[u8], end: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Applies a write set atomically; returns once it is as durable as the store's
    /// [`crate::Durability`] promises.
    fn write(&self, set: WriteSet) -> Result<()>;
}
