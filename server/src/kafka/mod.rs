//! Kafka: tables fed from topics (sources, [`source`]) and views streamed to topics (sinks,
//! [`sink`]), with librdkafka through the `rdkafka` crate.
//!
//! [`Connectors`] runs them: a source starts when `CREATE TABLE ... WITH (connector =
//! 'kafka', ...)` commits and again at every server start; a sink when `CREATE SINK` commits
//! and at every start. It also answers the system tables `nowdb_catalog.sources` (per source
//! and partition: position, lag, rate, errors), `nowdb_catalog.dead_letters` (malformed
//! messages with their payload and error) and `nowdb_catalog.sinks`.

pub mod decode;
pub mod options;
pub mod positions;
pub mod sink;
pub mod source;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{ArrayRef, BinaryArray, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::error::{DataFusionError, Result as DfResult};
use nowdb_catalog::{Catalog, SinkDef, Table};
use tracing::warn;

use crate::error::{NowError, NowResult};
use options::{SinkOptions, SourceOptions};
use sink::SinkStatus;
use source::SourceStatus;

/// The running sources and sinks.
pub struct Connectors {
    catalog: Arc<Catalog>,
    runtime: tokio::runtime::Handle,
    ingested: Arc<dyn Fn(u64) + Send + Sync>,
    sources: Mutex<HashMap<u32, Arc<SourceStatus>>>,
    sinks: Mutex<HashMap<String, Arc<SinkStatus>>>,
}

impl std::fmt::Debug for Connectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connectors").finish_non_exhaustive()
    }
}

fn poisoned() -> NowError {
    NowError::coded("XX000", "connector registry lock poisoned")
}

impl Connectors {
    /// A registry writing through `catalog`; `ingested` counts rows written by sources.
    pub fn new(catalog: Arc<Catalog>, runtime: tokio::runtime::Handle, ingested: Arc<dyn Fn(u64) + Send + Sync>) -> Arc<Self> {
        Arc::new(Self { catalog, runtime, ingested, sources: Default::default(), sinks: Default::default() })
    }

    /// Starts every stored source and sink (server start). One that cannot start is logged
    /// and shows its error in the system tables.
    pub fn start_all(&self) {
        for table in self.catalog.tables() {
            if table.def().connector.is_some() {
                if let Err(e) = self.start_source(&table) {
                    warn!(table = %table.name(), error = %e, "Kafka source not started");
                }
            }
        }
        match self.catalog.sinks() {
            Ok(sinks) => {
                for def in sinks {
                    if let Err(e) = self.start_sink(def.clone()) {
                        warn!(sink = %def.name, error = %e, "Kafka sink not started");
                    }
                }
            }
            Err(e) => warn!(error = %e, "cannot read sink definitions"),
        }
    }

    /// Starts the source feeding `table` (its definition names the connector).
    pub fn start_source(&self, table: &Table) -> NowResult<()> {
        let Some(connector) = &table.def().connector else { return Ok(()) };
        let options = SourceOptions::parse(table.name(), &connector.options)?;
        let ingested = self.ingested.clone();
        let status = source::start(self.catalog.clone(), table, options, self.runtime.clone(), move |n| ingested(n))
            .map_err(|e| NowError::coded("58000", format!("cannot start the Kafka source: {e}")))?;
        let mut sources = self.sources.lock().map_err(|_| poisoned())?;
        sources.retain(|_, s| self.is_live(s));
        if let Some(old) = sources.insert(table.def().id, status) {
            old.stop();
        }
        Ok(())
    }

    /// Starts sink `def`.
    pub fn start_sink(&self, def: SinkDef) -> NowResult<()> {
        let options = SinkOptions::parse(&def.options)?;
        let name = def.name.clone();
        let status = sink::start(self.catalog.clone(), def, options).map_err(|e| NowError::coded("58000", format!("cannot start the Kafka sink: {e}")))?;
        if let Some(old) = self.sinks.lock().map_err(|_| poisoned())?.insert(name, status) {
            old.stop();
        }
        Ok(())
    }

    /// Stops sink `name` (DROP SINK).
    pub fn stop_sink(&self, name: &str) -> NowResult<()> {
        if let Some(s) = self.sinks.lock().map_err(|_| poisoned())?.remove(name) {
            s.stop();
        }
        Ok(())
    }

    /// Whether `s`'s table still exists (a table re-created under the same name is another).
    fn is_live(&self, s: &SourceStatus) -> bool {
        self.catalog.table(&s.table).is_some_and(|t| t.def().id == s.table_id)
    }

    /// The sources of tables that still exist.
    fn sources(&self) -> Vec<Arc<SourceStatus>> {
        let mut v: Vec<_> = self.sources.lock().map(|s| s.values().filter(|s| self.is_live(s)).cloned().collect()).unwrap_or_default();
        v.sort_by(|a, b| a.table.cmp(&b.table));
        v
    }

    /// Every partition a source of this node owns now: source, partition, state.
    pub fn owned_partitions(&self) -> Vec<(String, i32, source::PartitionStatus)> {
        let mut out = Vec::new();
        for s in self.sources() {
            let (parts, _, _) = s.snapshot();
            out.extend(parts.into_iter().filter(|(_, st)| st.owned).map(|(p, st)| (s.table.clone(), p, st)));
        }
        out
    }

    /// The rows of `nowdb_catalog.sources`: one per source and partition it has seen.
    pub fn sources_batch(&self) -> DfResult<RecordBatch> {
        let mut cols = SourceRows::default();
        for s in self.sources() {
            let (parts, state, error) = s.snapshot();
            if parts.is_empty() {
                cols.push(&s, None, state, &error);
            }
            for (p, st) in &parts {
                cols.push(&s, Some((*p, st)), state, &error);
            }
        }
        cols.finish()
    }

    /// The rows of `nowdb_catalog.dead_letters`.
    pub fn dead_letters_batch(&self) -> DfResult<RecordBatch> {
        let mut letters = Vec::new();
        for s in self.sources() {
            let stored = positions::dead_letters(self.catalog.store().as_ref(), s.table_id).map_err(|e| DataFusionError::External(Box::new(e)))?;
            letters.extend(stored.into_iter().map(|l| (s.clone(), l)));
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(letters.iter().map(|(s, _)| s.table.as_str()))),
            Arc::new(StringArray::from_iter_values(letters.iter().map(|(s, _)| s.options.topic.as_str()))),
            Arc::new(Int32Array::from_iter_values(letters.iter().map(|(_, l)| l.partition))),
            Arc::new(Int64Array::from_iter_values(letters.iter().map(|(_, l)| l.offset))),
            Arc::new(TimestampMicrosecondArray::from_iter_values(letters.iter().map(|(_, l)| l.received_micros)).with_timezone("UTC")),
            Arc::new(StringArray::from_iter_values(letters.iter().map(|(_, l)| l.error.as_str()))),
            Arc::new(StringArray::from_iter(letters.iter().map(|(_, l)| std::str::from_utf8(&l.payload).ok()))),
            Arc::new(BinaryArray::from_iter_values(letters.iter().map(|(_, l)| l.payload.as_slice()))),
        ];
        Ok(RecordBatch::try_new(dead_letters_schema(), columns)?)
    }

    /// The rows of `nowdb_catalog.sinks`.
    pub fn sinks_batch(&self) -> DfResult<RecordBatch> {
        let mut sinks: Vec<Arc<SinkStatus>> = self.sinks.lock().map(|s| s.values().cloned().collect()).unwrap_or_default();
        sinks.sort_by(|a, b| a.def.name.cmp(&b.def.name));
        let states: Vec<(&'static str, Option<String>)> = sinks.iter().map(|s| s.state()).collect();
        let count = |f: fn(&SinkStatus) -> u64| Int64Array::from_iter_values(sinks.iter().map(|s| f(s) as i64));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(sinks.iter().map(|s| s.def.name.as_str()))),
            Arc::new(StringArray::from_iter_values(sinks.iter().map(|s| s.def.view.as_str()))),
            Arc::new(StringArray::from_iter_values(sinks.iter().map(|s| s.options.topic.as_str()))),
            Arc::new(count(|s| s.sent.load(Ordering::Relaxed))),
            Arc::new(count(|s| s.failed.load(Ordering::Relaxed))),
            Arc::new(count(|s| s.next_seq.load(Ordering::Relaxed))),
            Arc::new(StringArray::from_iter_values(states.iter().map(|(st, _)| *st))),
            Arc::new(StringArray::from_iter(states.iter().map(|(_, e)| e.as_deref()))),
        ];
        Ok(RecordBatch::try_new(sinks_schema(), columns)?)
    }
}

/// Columns of `nowdb_catalog.sources`, filled row by row.
#[derive(Default)]
struct SourceRows {
    source: Vec<String>,
    topic: Vec<String>,
    mode: Vec<String>,
    group: Vec<String>,
    partition: Vec<Option<i32>>,
    owned: Vec<bool>,
    next: Vec<Option<i64>>,
    high: Vec<Option<i64>>,
    lag: Vec<Option<i64>>,
    messages: Vec<i64>,
    rate: Vec<f64>,
    errors: Vec<i64>,
    state: Vec<String>,
    error: Vec<Option<String>>,
}

impl SourceRows {
    fn push(&mut self, s: &SourceStatus, part: Option<(i32, &source::PartitionStatus)>, state: &str, error: &Option<String>) {
        self.source.push(s.table.clone());
        self.topic.push(s.options.topic.clone());
        self.mode.push(s.options.mode.name().to_string());
        self.group.push(s.options.group_id.clone());
        self.partition.push(part.map(|(p, _)| p));
        let st = part.map(|(_, st)| st.clone()).unwrap_or_default();
        self.owned.push(st.owned);
        self.next.push(st.next_offset);
        self.high.push(st.high_watermark);
        self.lag.push(st.lag());
        self.messages.push(st.messages as i64);
        self.rate.push(st.rate);
        self.errors.push(st.errors as i64);
        self.state.push(state.to_string());
        self.error.push(error.clone());
    }

    fn finish(self) -> DfResult<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(self.source)),
            Arc::new(StringArray::from(self.topic)),
            Arc::new(StringArray::from(self.mode)),
            Arc::new(StringArray::from(self.group)),
            Arc::new(Int32Array::from(self.partition)),
            Arc::new(BooleanArray::from(self.owned)),
            Arc::new(Int64Array::from(self.next)),
            Arc::new(Int64Array::from(self.high)),
            Arc::new(Int64Array::from(self.lag)),
            Arc::new(Int64Array::from(self.messages)),
            Arc::new(Float64Array::from(self.rate)),
            Arc::new(Int64Array::from(self.errors)),
            Arc::new(StringArray::from(self.state)),
            Arc::new(StringArray::from(self.error)),
        ];
        Ok(RecordBatch::try_new(sources_schema(), columns)?)
    }
}

/// Schema of `nowdb_catalog.sources`.
pub fn sources_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("topic", DataType::Utf8, false),
        Field::new("mode", DataType::Utf8, false),
        Field::new("group_id", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, true),
        Field::new("owned", DataType::Boolean, false),
        Field::new("next_offset", DataType::Int64, true),
        Field::new("high_watermark", DataType::Int64, true),
        Field::new("lag", DataType::Int64, true),
        Field::new("messages", DataType::Int64, false),
        Field::new("messages_per_sec", DataType::Float64, false),
        Field::new("errors", DataType::Int64, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("last_error", DataType::Utf8, true),
    ]))
}

/// Schema of `nowdb_catalog.dead_letters`.
pub fn dead_letters_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("topic", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("message_offset", DataType::Int64, false),
        Field::new("received_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("error", DataType::Utf8, false),
        Field::new("payload", DataType::Utf8, true),
        Field::new("payload_bytes", DataType::Binary, false),
    ]))
}

/// Schema of `nowdb_catalog.sinks`.
pub fn sinks_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("view", DataType::Utf8, false),
        Field::new("topic", DataType::Utf8, false),
        Field::new("messages_sent", DataType::Int64, false),
        Field::new("deliveries_failed", DataType::Int64, false),
        Field::new("next_history_seq", DataType::Int64, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("last_error", DataType::Utf8, true),
    ]))
}
