//! [`TableScanExec`]: reads a stored table on a blocking thread and streams Arrow batches.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use nowdb_storage::{codec, keys, rowcodec, BatchStats, Cf, ScanControl};
use tokio::sync::mpsc;

use super::access::{Access, HistoryRead};
use crate::catalog::Table;
use crate::Result;

/// Rows per batch a keyed-table scan emits.
const SCAN_BATCH_ROWS: usize = 4096;
/// Append-log batches fetched per multi-get when pruning.
const LOG_FETCH: usize = 16;

/// Batches and rows a scan touched, for EXPLAIN ANALYZE and tests.
#[derive(Debug, Default)]
pub struct ScanCounters {
    /// Stored entries (log batches or keyed rows) read and decoded.
    pub entries_read: AtomicUsize,
    /// Stored log batches skipped thanks to their min/max statistics.
    pub batches_pruned: AtomicUsize,
}

/// Physical scan of one stored table.
#[derive(Debug)]
pub struct TableScanExec {
    table: Arc<Table>,
    access: Access,
    projection: Option<Vec<usize>>,
    limit: Option<usize>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    counters: Arc<ScanCounters>,
}

impl TableScanExec {
    /// Plans a scan of `table` by `access`, producing the `projection` columns.
    pub fn try_new(
        table: Arc<Table>,
        access: Access,
        projection: Option<Vec<usize>>,
        limit: Option<usize>,
    ) -> DfResult<Self> {
        let full = match access {
            Access::History(read) => super::history::read_schema(table.schema(), read),
            _ => table.schema().clone(),
        };
        let schema = match &projection {
            Some(p) => Arc::new(full.project(p)?),
            None => full,
        };
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(Self { table, access, projection, limit, schema, properties, counters: Default::default() })
    }

    /// The chosen access path.
    pub fn access(&self) -> &Access {
        &self.access
    }
}

impl DisplayAs for TableScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "TableScanExec: table={}, access={}", self.table.name(), self.access)?;
        if self.projection.is_some() {
            let names: Vec<&str> = self.schema.fields().iter().map(|f| f.name().as_str()).collect();
            write!(f, ", projection=[{}]", names.join(", "))?;
        }
        if let Some(l) = self.limit {
            write!(f, ", limit={l}")?;
        }
        let read = self.counters.entries_read.load(Ordering::Relaxed);
        let pruned = self.counters.batches_pruned.load(Ordering::Relaxed);
        if read + pruned > 0 {
            write!(f, ", entries_read={read}, batches_pruned={pruned}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for TableScanExec {
    fn name(&self) -> &str {
        "TableScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(&self, partition: usize, _ctx: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!("TableScanExec has one partition, not {partition}")));
        }
        let (tx, rx) = mpsc::channel::<DfResult<RecordBatch>>(2);
        let reader = Reader {
            table: self.table.clone(),
            access: self.access.clone(),
            projection: self.projection.clone(),
            schema: self.schema.clone(),
            remaining: self.limit.unwrap_or(usize::MAX),
            counters: self.counters.clone(),
            tx,
        };
        tokio::task::spawn_blocking(move || reader.run());
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream)))
    }
}

/// The blocking half of a scan: reads storage and feeds the channel.
struct Reader {
    table: Arc<Table>,
    access: Access,
    projection: Option<Vec<usize>>,
    /// The projected schema batches are emitted with.
    schema: SchemaRef,
    remaining: usize,
    counters: Arc<ScanCounters>,
    tx: mpsc::Sender<DfResult<RecordBatch>>,
}

impl Reader {
    fn run(mut self) {
        let result = match self.access.clone() {
            Access::Keys(keys) => self.read_keys(&keys),
            Access::AllRows => self.read_all_rows(),
            Access::Log { bounds } => self.read_log(&bounds),
            Access::History(read) => self.read_history(read),
        };
        if let Err(e) = result {
            let _ = self.tx.blocking_send(Err(DataFusionError::External(Box::new(e))));
        }
    }

    /// Sends a batch; returns false when the consumer is gone or the limit is reached.
    fn emit(&mut self, batch: RecordBatch) -> Result<bool> {
        if batch.num_rows() == 0 {
            return Ok(self.remaining > 0);
        }
        let batch = if batch.num_rows() > self.remaining { batch.slice(0, self.remaining) } else { batch };
        self.remaining -= batch.num_rows();
        Ok(self.tx.blocking_send(Ok(batch)).is_ok() && self.remaining > 0)
    }

    /// Decodes the projected columns of a stored log batch.
    fn decode(&self, bytes: &[u8]) -> nowdb_storage::Result<RecordBatch> {
        let batch = codec::decode_columns(bytes, self.projection.as_deref())?;
        self.rewrap(batch)
    }

    /// Decodes the projected columns of stored rows into one batch.
    fn decode_rows(&self, values: &[Vec<u8>]) -> nowdb_storage::Result<RecordBatch> {
        let batch = rowcodec::decode_rows(values.iter().map(|v| v.as_slice()), self.table.schema(), self.projection.as_deref())?;
        self.rewrap(batch)
    }

    fn rewrap(&self, batch: RecordBatch) -> nowdb_storage::Result<RecordBatch> {
        // Stored batches carry the table's schema; re-wrap to share the exact SchemaRef.
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        Ok(RecordBatch::try_new_with_options(self.schema.clone(), batch.columns().to_vec(), &options)?)
    }

    fn flush_rows(&mut self, rows: &mut Vec<Vec<u8>>) -> Result<bool> {
        if rows.is_empty() {
            return Ok(true);
        }
        let batch = self.decode_rows(rows)?;
        rows.clear();
        self.emit(batch)
    }

    fn read_keys(&mut self, keys: &[Vec<u8>]) -> Result<()> {
        let values = self.table.store().multi_get(Cf::Rows, keys)?;
        let mut rows: Vec<Vec<u8>> = values.into_iter().flatten().collect();
        self.counters.entries_read.fetch_add(rows.len(), Ordering::Relaxed);
        self.flush_rows(&mut rows)?;
        Ok(())
    }

    fn read_all_rows(&mut self) -> Result<()> {
        let id = self.table.def().id;
        let store = self.table.store().clone();
        let mut rows = Vec::new();
        let mut failure = None;
        store.scan(Cf::Rows, &keys::table_start(id), &keys::table_end(id), &mut |_, v| {
            self.counters.entries_read.fetch_add(1, Ordering::Relaxed);
            rows.push(v.to_vec());
            if rows.len() >= SCAN_BATCH_ROWS.min(self.remaining) {
                match self.flush_rows(&mut rows) {
                    Ok(true) => {}
                    Ok(false) => return Ok(ScanControl::Stop),
                    Err(e) => {
                        failure = Some(e);
                        return Ok(ScanControl::Stop);
                    }
                }
            }
            Ok(ScanControl::Continue)
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        self.flush_rows(&mut rows)?;
        Ok(())
    }

    /// Reads a view's history (see [`super::history`]).
    fn read_history(&mut self, read: HistoryRead) -> Result<()> {
        let batches = super::history::read(&self.table, read, &self.counters)?;
        for batch in batches {
            let batch = match &self.projection {
                Some(p) => batch.project(p)?,
                None => batch,
            };
            let mut at = 0;
            while at < batch.num_rows() {
                let n = SCAN_BATCH_ROWS.min(batch.num_rows() - at);
                if !self.emit(self.rewrap(batch.slice(at, n))?)? {
                    return Ok(());
                }
                at += n;
            }
        }
        Ok(())
    }

    fn read_log(&mut self, bounds: &[(usize, super::access::Bound)]) -> Result<()> {
        let id = self.table.def().id;
        let store = self.table.store().clone();
        let (start, end) = (keys::table_start(id), keys::table_end(id));
        if bounds.is_empty() {
            let mut failure = None;
            store.scan(Cf::Log, &start, &end, &mut |_, v| {
                self.counters.entries_read.fetch_add(1, Ordering::Relaxed);
                let batch = self.decode(v)?;
                match self.emit(batch) {
                    Ok(true) => Ok(ScanControl::Continue),
                    Ok(false) => Ok(ScanControl::Stop),
                    Err(e) => {
                        failure = Some(e);
                        Ok(ScanControl::Stop)
                    }
                }
            })?;
            return failure.map_or(Ok(()), Err);
        }
        // Read the small statistics entries first, then fetch only the batches that may match.
        let mut wanted = Vec::new();
        store.scan(Cf::LogStats, &start, &end, &mut |k, v| {
            let stats = BatchStats::decode(v)?;
            let keep = bounds.iter().all(|(col, bound)| match stats.ranges.get(*col) {
                Some(Some(range)) => bound.may_match(range),
                _ => true,
            });
            if keep {
                wanted.push(k.to_vec());
            } else {
                self.counters.batches_pruned.fetch_add(1, Ordering::Relaxed);
            }
            Ok(ScanControl::Continue)
        })?;
        for chunk in wanted.chunks(LOG_FETCH) {
            for v in store.multi_get(Cf::Log, chunk)?.iter().flatten() {
                self.counters.entries_read.fetch_add(1, Ordering::Relaxed);
                let batch = self.decode(v)?;
                if !self.emit(batch)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}
