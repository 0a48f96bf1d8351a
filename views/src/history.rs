//! The history of a view's rows: every version of every row, with the event time from which
//! it is valid.
//!
//! A maintenance step that changes a row writes, beside the row itself, a version entry in
//! [`Cf::History`] keyed by the row key and the version's time (see
//! [`keys::version_key`]); a row that stops existing gets an empty entry. A version is valid
//! until the row's next version. Times come from the change's rows: a stream row's event
//! time (the stream's [`time_col`](crate::plan::StreamSource::time_col)), else the time of
//! the change that made it (a lower view's version, or the wall clock for tables without event
//! time). A view's times never go backwards: a row is stamped with at least the greatest time
//! the view has stamped before (its clock), so a late event changes the view "as of now", as
//! the online path saw it, and never rewrites the past.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use nowdb_storage::{keys, Cf, ScanControl, Store, WriteSet};
use nowdb_udfs::window;

use crate::Result;

/// How the rows of one change are stamped.
#[derive(Debug, Clone, Copy)]
pub struct Stamping {
    /// Whether the view keeps history at all.
    pub keep: bool,
    /// The greatest time the view has stamped so far.
    pub clock: Option<i64>,
    /// The time of rows without an event time of their own.
    pub default: i64,
}

impl Stamping {
    /// The version time of a row whose own event time is `own`.
    pub fn stamp(&self, own: Option<i64>) -> i64 {
        let t = own.unwrap_or(self.default);
        self.clock.map_or(t, |c| c.max(t))
    }

    /// The version time of each row of `rows`, whose column `time_col` (if any) holds the
    /// event time.
    pub fn row_stamps(&self, rows: &RecordBatch, time_col: Option<usize>) -> Result<Vec<i64>> {
        let n = rows.num_rows();
        let Some(col) = time_col.map(|c| rows.column(c)) else {
            return Ok(vec![self.stamp(None); n]);
        };
        let unit = match col.data_type() {
            DataType::Timestamp(u, _) => *u,
            _ => TimeUnit::Microsecond,
        };
        Ok(window::timestamps(col.as_ref())?
            .into_iter()
            .map(|t| self.stamp(t.map(|t| window::unit_to_micros(t, &unit))))
            .collect())
    }
}

/// Adds the version of row `row_key` valid from `from` (`None`: the row stopped existing).
pub fn put_version(ws: &mut WriteSet, row_key: &[u8], from: i64, row: Option<Vec<u8>>) {
    ws.put(Cf::History, keys::version_key(row_key, from), row.unwrap_or_default());
}

/// Deletes the versions of view `view` that stopped being valid before `horizon`
/// (microseconds): of each row's versions from at most `horizon`, only the last is kept (it
/// answers `AS OF horizon`), and not even that one when it ends the row. Returns how many
/// entries were deleted.
pub fn purge_before(store: &dyn Store, view: u32, horizon: i64) -> Result<u64> {
    let mut ws = WriteSet::new();
    let mut purged = 0u64;
    // The newest version from at most `horizon` of the row being scanned: (key, row, is end).
    let mut last: Option<(Vec<u8>, Vec<u8>, bool)> = None;
    store.scan(Cf::History, &keys::table_start(view), &keys::table_end(view), &mut |k, v| {
        let (row, from) = keys::split_version_key(k)?;
        match last.take() {
            Some(prev) if prev.1 == row && from <= horizon => {
                ws.delete(Cf::History, prev.0);
                purged += 1;
            }
            prev => purged += settle(prev, &mut ws),
        }
        if from <= horizon {
            last = Some((k.to_vec(), row.to_vec(), v.is_empty()));
        }
        Ok(ScanControl::Continue)
    })?;
    purged += settle(last, &mut ws);
    if purged > 0 {
        store.write(ws)?;
    }
    Ok(purged)
}

/// A row's newest version before the horizon is deleted too when it ends the row.
fn settle(last: Option<(Vec<u8>, Vec<u8>, bool)>, ws: &mut WriteSet) -> u64 {
    match last {
        Some((key, _, true)) => {
            ws.delete(Cf::History, key);
            1
        }
        _ => 0,
    }
}
