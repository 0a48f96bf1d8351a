//! `nowdb_catalog.models`: every loaded model, its signature and what it has done.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::error::Result as DfResult;

use crate::registry::ModelRegistry;

/// The schema of `nowdb_catalog.models`.
pub fn models_schema() -> SchemaRef {
    let text = |n: &str| Field::new(n, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        text("name"),
        Field::new("version", DataType::Int64, false),
        text("inputs"),
        text("outputs"),
        text("output"),
        text("return_type"),
        text("device"),
        Field::new("threads", DataType::Int64, true),
        Field::new("size_bytes", DataType::Int64, false),
        Field::new("calls", DataType::Int64, false),
        Field::new("rows_scored", DataType::Int64, false),
        Field::new("mean_batch_latency_us", DataType::Float64, true),
        Field::new("p99_batch_latency_us", DataType::Int64, true),
    ]))
}

/// The rows of `nowdb_catalog.models` now.
pub fn models_batch(registry: &ModelRegistry) -> DfResult<RecordBatch> {
    let models = registry.all();
    let stats: Vec<_> = models.iter().map(|m| m.stats().snapshot()).collect();
    let text = |f: &dyn Fn(&crate::Model) -> String| -> ArrayRef {
        Arc::new(StringArray::from(models.iter().map(|m| f(m)).collect::<Vec<_>>()))
    };
    let int = |v: Vec<Option<i64>>| -> ArrayRef { Arc::new(Int64Array::from(v)) };
    let columns: Vec<ArrayRef> = vec![
        text(&|m| m.name().to_string()),
        int(models.iter().map(|m| Some(m.version() as i64)).collect()),
        text(&|m| m.signature().inputs_text()),
        text(&|m| m.signature().all_outputs.join(", ")),
        text(&|m| m.signature().output.name.clone()),
        text(&|m| m.signature().return_text()),
        text(&|m| m.session().device().as_str().to_string()),
        int(models.iter().map(|m| m.session().options().threads.map(|t| t as i64)).collect()),
        int(models.iter().map(|m| Some(m.size() as i64)).collect()),
        int(stats.iter().map(|s| Some(s.calls as i64)).collect()),
        int(stats.iter().map(|s| Some(s.rows as i64)).collect()),
        Arc::new(Float64Array::from(stats.iter().map(|s| s.mean_us).collect::<Vec<_>>())),
        int(stats.iter().map(|s| s.p99_us.map(|v| v as i64)).collect()),
    ];
    Ok(RecordBatch::try_new(models_schema(), columns)?)
}
