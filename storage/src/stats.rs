//! Per-batch statistics of the append log: row count and min/max per orderable column, kept
//! beside each batch so that event-time range scans skip batches without reading them.

use arrow::array::{Array, AsArray};
use arrow::compute::{max, min};
use arrow::datatypes::{
    DataType, Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::{Result, StorageError};

/// Inclusive value range of one column in one batch, in the column's physical unit
/// (timestamps in their Arrow unit, dates in days).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ColumnRange {
    /// Integer-like columns (ints, dates, timestamps).
    Int(i64, i64),
    /// Floating point columns (NaN excluded).
    Float(f64, f64),
}

/// Statistics of one stored batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchStats {
    /// Number of rows.
    pub rows: u64,
    /// Per column (schema order): its range, or `None` when not tracked or all NULL.
    pub ranges: Vec<Option<ColumnRange>>,
}

macro_rules! int_range {
    ($col:expr, $t:ty) => {{
        let a = $col.as_primitive::<$t>();
        match (min(a), max(a)) {
            (Some(lo), Some(hi)) => Some(ColumnRange::Int(lo as i64, hi as i64)),
            _ => None,
        }
    }};
}

impl BatchStats {
    /// Computes the statistics of `batch`.
    pub fn of(batch: &RecordBatch) -> Self {
        let ranges = batch
            .columns()
            .iter()
            .map(|col| match col.data_type() {
                DataType::Int16 => int_range!(col, Int16Type),
                DataType::Int32 => int_range!(col, Int32Type),
                DataType::Int64 => int_range!(col, Int64Type),
                DataType::Date32 => int_range!(col, Date32Type),
                DataType::Timestamp(TimeUnit::Second, _) => int_range!(col, TimestampSecondType),
                DataType::Timestamp(TimeUnit::Millisecond, _) => {
                    int_range!(col, TimestampMillisecondType)
                }
                DataType::Timestamp(TimeUnit::Microsecond, _) => {
                    int_range!(col, TimestampMicrosecondType)
                }
                DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                    int_range!(col, TimestampNanosecondType)
                }
                DataType::Float32 => float_range(col.as_primitive::<Float32Type>().iter().map(|v| v.map(f64::from))),
                DataType::Float64 => float_range(col.as_primitive::<Float64Type>().iter()),
                _ => None,
            })
            .collect();
        BatchStats { rows: batch.num_rows() as u64, ranges }
    }

    /// Serializes the statistics.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain numbers and enums cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Deserializes statistics written by [`BatchStats::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| StorageError::Corrupt(format!("batch stats: {e}")))
    }
}

fn float_range(values: impl Iterator<Item = Option<f64>>) -> Option<ColumnRange> {
    let mut range: Option<(f64, f64)> = None;
    for v in values.flatten().filter(|v| !v.is_nan()) {
        range = Some(match range {
            None => (v, v),
            Some((lo, hi)) => (lo.min(v), hi.max(v)),
        });
    }
    range.map(|(lo, hi)| ColumnRange::Float(lo, hi))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};

    use super::*;

    #[test]
    fn ranges_per_column() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![Some(5), None, Some(-2)]));
        let f: ArrayRef = Arc::new(Float64Array::from(vec![1.5, f64::NAN, -3.0]));
        let s: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "c"]));
        let batch = RecordBatch::try_from_iter(vec![("a", a), ("f", f), ("s", s)]).unwrap();
        let stats = BatchStats::of(&batch);
        assert_eq!(stats.rows, 3);
        assert_eq!(stats.ranges[0], Some(ColumnRange::Int(-2, 5)));
        assert_eq!(stats.ranges[1], Some(ColumnRange::Float(-3.0, 1.5)));
        assert_eq!(stats.ranges[2], None);
        assert_eq!(BatchStats::decode(&stats.encode()).unwrap(), stats);
    }
}
