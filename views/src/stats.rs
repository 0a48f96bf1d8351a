//! Per-view counters, persisted with the writes that change them, and the
//! `nowdb_catalog.views` system table that shows them.

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::error::Result as DfResult;
use serde::{Deserialize, Serialize};

use crate::engine::ViewEngine;

/// What a view has done, as persisted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ViewCounters {
    /// Rows the view holds.
    pub rows: i64,
    /// Source rows processed (inserted, deleted or updated rows of its sources).
    pub events_processed: u64,
    /// Greatest window time seen (microseconds), windowed views.
    pub last_event_time: Option<i64>,
    /// Stream rows dropped because they were behind the watermark.
    pub late_events_dropped: u64,
    /// Greatest version time (microseconds) written to the view's history: new versions are
    /// never stamped earlier.
    #[serde(default)]
    pub history_clock: Option<i64>,
}

/// A view's counters plus what is only kept in memory.
#[derive(Debug, Default)]
pub struct ViewStats {
    /// Persisted counters.
    pub counters: Mutex<ViewCounters>,
    /// Microseconds from the start of the last maintenance step to its durable commit.
    pub last_update_micros: Mutex<Option<i64>>,
}

/// The schema of `nowdb_catalog.views`.
pub fn views_schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("definition", DataType::Utf8, false),
        Field::new("rows", DataType::Int64, false),
        Field::new("events_processed", DataType::Int64, false),
        Field::new("last_event_time", ts.clone(), true),
        Field::new("watermark", ts.clone(), true),
        Field::new("late_events_dropped", DataType::Int64, false),
        Field::new("last_update_latency_us", DataType::Int64, true),
        Field::new("models", DataType::Utf8, false),
        Field::new("models_switched_at", ts, true),
    ]))
}

/// The rows of `nowdb_catalog.views` now.
pub fn views_batch(engine: &ViewEngine) -> DfResult<RecordBatch> {
    let rows = engine.describe();
    let col_ts = |v: Vec<Option<i64>>| -> ArrayRef { Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC")) };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(rows.iter().map(|r| r.name.clone()).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| r.definition.clone()).collect::<Vec<_>>())),
        Arc::new(Int64Array::from(rows.iter().map(|r| r.counters.rows).collect::<Vec<_>>())),
        Arc::new(Int64Array::from(rows.iter().map(|r| r.counters.events_processed as i64).collect::<Vec<_>>())),
        col_ts(rows.iter().map(|r| r.counters.last_event_time).collect()),
        col_ts(rows.iter().map(|r| r.watermark).collect()),
        Arc::new(Int64Array::from(rows.iter().map(|r| r.counters.late_events_dropped as i64).collect::<Vec<_>>())),
        Arc::new(Int64Array::from(rows.iter().map(|r| r.last_update_micros).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| r.models.clone()).collect::<Vec<_>>())),
        col_ts(rows.iter().map(|r| r.models_switched_at).collect()),
    ];
    Ok(RecordBatch::try_new(views_schema(), columns)?)
}

/// One row of `nowdb_catalog.views`.
#[derive(Debug, Clone)]
pub struct ViewDescription {
    /// View name.
    pub name: String,
    /// Defining query.
    pub definition: String,
    /// Counters.
    pub counters: ViewCounters,
    /// The source table's watermark (microseconds), windowed views over a table with one.
    pub watermark: Option<i64>,
    /// Last maintenance latency.
    pub last_update_micros: Option<i64>,
    /// Models called, with the version in use (`fraud v2`).
    pub models: String,
    /// When it last switched to a new model version.
    pub models_switched_at: Option<i64>,
}
