//! Retention of event tables: `WITH (retention = '7 days')` keeps the rows whose event time
//! is within that span of the newest event. Expiry works on whole stored batches, decided
//! from their min/max statistics and removed by key, never by scanning rows on the write path.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use nowdb_storage::{keys, BatchStats, Cf, ColumnRange, ScanControl, WriteSet};

use crate::catalog::Table;
use crate::Result;

/// The column retention measures event time by: the watermark column, else the first
/// timestamp column.
pub fn time_column(table: &Table) -> Option<(usize, TimeUnit)> {
    let def = table.def();
    let col = def.event_time.watermark.map(|(c, _)| c).or_else(|| {
        table.schema().fields().iter().position(|f| matches!(f.data_type(), DataType::Timestamp(_, _)))
    })?;
    match table.schema().field(col).data_type() {
        DataType::Timestamp(unit, _) => Some((col, *unit)),
        _ => None,
    }
}

fn micros_in(unit: &TimeUnit, micros: i64) -> i64 {
    match unit {
        TimeUnit::Second => micros / 1_000_000,
        TimeUnit::Millisecond => micros / 1_000,
        TimeUnit::Microsecond => micros,
        TimeUnit::Nanosecond => micros.saturating_mul(1_000),
    }
}

/// Deletes the stored batches of an event table whose newest event is older than the
/// table's retention before its newest event overall. Returns the batches deleted.
pub fn purge_log(table: &Table) -> Result<u64> {
    let def = table.def();
    let (Some(retention), false) = (def.event_time.retention_micros, table.is_keyed()) else { return Ok(0) };
    let Some((col, unit)) = time_column(table) else { return Ok(0) };
    let (start, end) = (keys::table_start(def.id), keys::table_end(def.id));
    let mut batches: Vec<(Vec<u8>, i64)> = Vec::new();
    let mut newest = i64::MIN;
    table.store().scan(Cf::LogStats, &start, &end, &mut |k, v| {
        if let Some(Some(ColumnRange::Int(_, hi))) = BatchStats::decode(v)?.ranges.get(col) {
            newest = newest.max(*hi);
            batches.push((k.to_vec(), *hi));
        }
        Ok(ScanControl::Continue)
    })?;
    let horizon = newest.saturating_sub(micros_in(&unit, retention));
    let mut ws = WriteSet::new();
    let mut n = 0;
    for (k, hi) in batches {
        if hi < horizon {
            ws.delete(Cf::Log, k.clone());
            ws.delete(Cf::LogStats, k);
            n += 1;
        }
    }
    if n > 0 {
        table.store().write(ws)?;
    }
    Ok(n)
}
