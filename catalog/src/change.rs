//! The seam through which derived state (continuous views) follows table writes.
//!
//! Every table write computes the rows it removes and adds and, when a [`ChangeSink`]
//! observes the table, hands them over *before* committing: the sink adds its own writes to
//! the same [`WriteSet`], so base rows and everything derived from them become durable in one
//! atomic batch. The catalog does not know what the sink derives.

use std::fmt::Debug;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use nowdb_storage::WriteSet;

use crate::catalog::Table;
use crate::Result;

/// Rows with their identities: for keyed tables the encoded primary key (the row key
/// without the table id), for event tables the log sequence and row index.
#[derive(Debug, Clone)]
pub struct RowSet {
    /// The rows, in the table's schema.
    pub rows: RecordBatch,
    /// One identity per row.
    pub ids: Vec<Vec<u8>>,
}

impl RowSet {
    /// Identities of an appended event batch: 8-byte sequence, 4-byte row index.
    pub fn log_ids(seq: u64, offset: usize, rows: usize) -> Vec<Vec<u8>> {
        (0..rows)
            .map(|i| {
                let mut id = Vec::with_capacity(12);
                id.extend_from_slice(&seq.to_be_bytes());
                id.extend_from_slice(&((offset + i) as u32).to_be_bytes());
                id
            })
            .collect()
    }
}

/// What one statement changed in one table.
#[derive(Debug, Clone, Default)]
pub struct TableChange {
    /// Rows as they were before (deleted, or the old version of updated rows).
    pub removed: Option<RowSet>,
    /// Rows as they are now (inserted, or the new version of updated rows).
    pub added: Option<RowSet>,
}

/// Holds whatever the sink needs held until the write is durable (its locks), and learns
/// when it is.
pub trait Derived: Send {
    /// The write set the sink added to is durable.
    fn committed(self: Box<Self>);
}

/// Follows table writes with derived writes.
#[async_trait]
pub trait ChangeSink: Send + Sync + Debug {
    /// Whether anything derives from `table`'s writes (cheap; checked on every write).
    fn observes(&self, table: &Table) -> bool;

    /// Adds the writes that follow from `change` to `ws`. The returned value is dropped (or
    /// told [`Derived::committed`]) once `ws` is committed or abandoned.
    async fn derive(&self, table: &Table, change: TableChange, ws: &mut WriteSet) -> Result<Box<dyn Derived>>;
}
