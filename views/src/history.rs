//! The history of a view's rows: every version of every row, with the event time from which
//! it is valid.
//!
//! Each maintenance step that changes a view appends one Arrow record batch to the view's
//! range of [`Cf::History`] (key: view id + a per-view sequence number, like an event table's
//! log): one row per changed view row, with its identity (`key`, the row key), its values,
//! the time it is valid from (`valid_from`, microseconds) and whether it is the row's end
//! (`ended`: the row stopped existing; its values are the last ones). A version is valid
//! until the row's next one. Columnar batches keep the write cheap (the changed rows are
//! already Arrow arrays) and make reading a million versions a matter of decoding a few
//! hundred batches.
//!
//! Times come from the change's rows: a stream row's event time (the stream's
//! [`time_col`](crate::plan::StreamSource::time_col)), else the time of the change that made
//! it (a lower view's versions, or the wall clock for tables without event time). A view's
//! times never go backwards: a row is stamped with at least the greatest time the view has
//! stamped before (its clock), so a late event changes the view "as of now", as the online
//! path saw it, and never rewrites the past.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Int64Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat_batches, take};
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef, TimeUnit};
use nowdb_catalog::provider::history::batch_schema;
use nowdb_catalog::RowSet;
use nowdb_storage::{codec, keys, Cf, ScanControl, Store, WriteSet};
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
    /// The sequence number the change's history batch is stored under.
    pub seq: u64,
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

/// Versions of one change: rows that ended (with their last values) and rows written.
pub struct Versions<'a> {
    /// Rows that stopped existing, with their stamps.
    pub ended: Option<(&'a RowSet, &'a [i64])>,
    /// Rows written, with their stamps.
    pub written: Option<(&'a RowSet, &'a [i64])>,
}

/// Adds the change's versions to `ws` as one history batch of view `view` under `seq`.
/// Returns the greatest stamp written.
pub fn append(ws: &mut WriteSet, view: u32, seq: u64, stored: &SchemaRef, versions: Versions<'_>) -> Result<Option<i64>> {
    let schema = batch_schema(stored);
    let mut parts = Vec::with_capacity(2);
    let mut max = None;
    let sides = [(versions.ended, true), (versions.written, false)];
    for (rows, stamps, ended) in sides.into_iter().filter_map(|(side, ended)| side.map(|(r, s)| (r, s, ended))) {
        if rows.ids.is_empty() {
            continue;
        }
        max = max.max(stamps.iter().copied().max());
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        columns.push(Arc::new(BinaryArray::from_iter_values(rows.ids.iter())));
        columns.extend(rows.rows.columns().iter().cloned());
        columns.push(Arc::new(Int64Array::from(stamps.to_vec())));
        columns.push(Arc::new(BooleanArray::from(vec![ended; rows.ids.len()])));
        parts.push(RecordBatch::try_new(schema.clone(), columns)?);
    }
    if parts.is_empty() {
        return Ok(None);
    }
    let batch = concat_batches(&schema, &parts)?;
    ws.put(Cf::History, keys::log_key(view, seq), codec::encode_batch(&batch)?);
    Ok(max)
}

/// The sequence number the next history batch of view `view` takes.
pub fn next_seq(store: &dyn Store, view: u32) -> Result<u64> {
    Ok(match store.last_key(Cf::History, &keys::table_start(view), &keys::table_end(view))? {
        Some(k) => keys::log_seq(&k)? + 1,
        None => 0,
    })
}

/// Compacts the versions of view `view` that stopped being valid before `horizon`
/// (microseconds): the batches wholly at or before `horizon` are replaced by one batch
/// holding, per row, its last version from at most `horizon` (it answers `AS OF horizon`),
/// unless that version ends the row or a later batch has a newer one. Returns how many
/// versions were dropped.
pub fn purge_before(store: &dyn Store, view: u32, horizon: i64) -> Result<u64> {
    let mut old: Vec<(Vec<u8>, RecordBatch)> = Vec::new();
    let mut newer_keys: Vec<Vec<u8>> = Vec::new();
    store.scan(Cf::History, &keys::table_start(view), &keys::table_end(view), &mut |k, v| {
        let batch = codec::decode_batch(v)?;
        let from = batch.column(batch.num_columns() - 2).as_primitive::<Int64Type>();
        if newer_keys.is_empty() && from.values().iter().all(|&t| t <= horizon) {
            old.push((k.to_vec(), batch));
        } else {
            // Versions from at most `horizon` in later batches supersede the old ones.
            let ids = batch.column(0).as_binary::<i32>();
            newer_keys.extend((0..batch.num_rows()).filter(|&i| from.value(i) <= horizon).map(|i| ids.value(i).to_vec()));
        }
        Ok(ScanControl::Continue)
    })?;
    let versions: usize = old.iter().map(|(_, b)| b.num_rows()).sum();
    if old.len() < 2 && versions == old.first().map_or(0, |(_, b)| distinct_keys(b)) {
        return Ok(0);
    }
    let schema = old[0].1.schema();
    let all = concat_batches(&schema, old.iter().map(|(_, b)| b))?;
    let newer: std::collections::HashSet<Vec<u8>> = newer_keys.into_iter().collect();
    // The last version of each row (arrival order breaks ties between equal times).
    let ids = all.column(0).as_binary::<i32>();
    let mut last: HashMap<&[u8], u32> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        if let Some(id) = id {
            last.insert(id, i as u32);
        }
    }
    let ended = all.column(all.num_columns() - 1).as_boolean();
    let mut keep: Vec<u32> = last
        .into_iter()
        .filter(|(id, i)| !ended.value(*i as usize) && !newer.contains(*id))
        .map(|(_, i)| i)
        .collect();
    keep.sort_unstable();
    let idx = UInt32Array::from(keep);
    let compacted = RecordBatch::try_new(schema.clone(), all.columns().iter().map(|c| take(c.as_ref(), &idx, None)).collect::<std::result::Result<Vec<_>, _>>()?)?;
    let mut ws = WriteSet::new();
    for (k, _) in &old[1..] {
        ws.delete(Cf::History, k.clone());
    }
    if compacted.num_rows() > 0 {
        ws.put(Cf::History, old[0].0.clone(), codec::encode_batch(&compacted)?);
    } else {
        ws.delete(Cf::History, old[0].0.clone());
    }
    store.write(ws)?;
    Ok((versions - compacted.num_rows()) as u64)
}

fn distinct_keys(b: &RecordBatch) -> usize {
    b.column(0).as_binary::<i32>().iter().flatten().collect::<std::collections::HashSet<_>>().len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, Schema};
    use nowdb_storage::{Durability, RocksStore};

    fn rows(ids: &[u8], values: &[i64]) -> RowSet {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]));
        RowSet { rows: RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))]).unwrap(), ids: ids.iter().map(|i| vec![*i]).collect() }
    }

    fn versions(store: &dyn Store) -> Vec<(u8, i64, i64, bool)> {
        let mut out = Vec::new();
        store
            .scan(Cf::History, &keys::table_start(7), &keys::table_end(7), &mut |_, v| {
                let b = codec::decode_batch(v)?;
                for i in 0..b.num_rows() {
                    out.push((
                        b.column(0).as_binary::<i32>().value(i)[0],
                        b.column(1).as_primitive::<Int64Type>().value(i),
                        b.column(2).as_primitive::<Int64Type>().value(i),
                        b.column(3).as_boolean().value(i),
                    ));
                }
                Ok(ScanControl::Continue)
            })
            .unwrap();
        out
    }

    #[test]
    fn purge_keeps_the_version_valid_at_the_horizon() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path(), Durability::Async).unwrap();
        let stored = rows(&[], &[]).rows.schema();
        let steps: Vec<(RowSet, Vec<i64>, bool)> = vec![
            (rows(&[1, 2], &[10, 20]), vec![100, 100], false),
            (rows(&[1], &[11]), vec![200], false),
            (rows(&[2], &[20]), vec![250], true),
            (rows(&[1, 3], &[12, 30]), vec![300, 300], false),
            (rows(&[3], &[31]), vec![400], false),
        ];
        for (seq, (r, stamps, ended)) in steps.iter().enumerate() {
            let mut ws = WriteSet::new();
            let v = if *ended { Versions { ended: Some((r, stamps)), written: None } } else { Versions { ended: None, written: Some((r, stamps)) } };
            append(&mut ws, 7, seq as u64, &stored, v).unwrap();
            store.write(ws).unwrap();
        }
        assert_eq!(next_seq(&store, 7).unwrap(), 5);
        // At 260: row 1 is 11 (from 200), row 2 ended at 250; later batches stay as they are.
        assert_eq!(purge_before(&store, 7, 260).unwrap(), 3);
        assert_eq!(versions(&store), vec![(1, 11, 200, false), (1, 12, 300, false), (3, 30, 300, false), (3, 31, 400, false)]);
        // At 350 row 1's version from 300 is newest; row 3's from 400 supersedes its 300.
        assert_eq!(purge_before(&store, 7, 350).unwrap(), 1);
        assert_eq!(versions(&store), vec![(1, 12, 300, false), (3, 30, 300, false), (3, 31, 400, false)]);
        assert_eq!(purge_before(&store, 7, 350).unwrap(), 0);
    }
}
