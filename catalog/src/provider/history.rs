//! Materialized views' history: its stored format ([`batch_schema`], written by the view
//! engine, see `views::history`) and reading it.
//!
//! [`HistoryTable`] is a view seen at one event time (`FOR SYSTEM_TIME AS OF`), as all its
//! versions (`view_history('v')`: the view's columns, then `valid_from` and `valid_to`, the
//! event times between which each version was the row; `valid_to` is NULL for current
//! rows), or as its changes (temporal joins, which order versions themselves). All are
//! scans of the view's range of [`nowdb_storage::Cf::History`] by
//! [`super::scan::TableScanExec`]. The table functions `view_history(name)` and
//! `view_as_of(name, time)` expose the first two to SQL.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;

use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch, RecordBatchOptions, TimestampMicrosecondArray, UInt32Array};
use datafusion::arrow::compute::{cast, concat_batches, lexsort_to_indices, take, SortColumn};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableFunctionImpl, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use nowdb_storage::{codec, keys, Cf, ScanControl};

use super::access::{Access, HistoryRead};
use super::scan::{ScanCounters, TableScanExec};
use crate::catalog::{Catalog, Table};
use crate::Result;

/// Name of a history batch's row identity column.
pub const KEY: &str = "key";
/// Name of the column holding the time from which a version is valid.
pub const VALID_FROM: &str = "valid_from";
/// Name of the column holding the time until which a version was valid (NULL: current).
pub const VALID_TO: &str = "valid_to";
/// Name of a history batch's end marker column (the row stopped existing).
pub const ENDED: &str = "ended";

/// The type of `valid_from` / `valid_to` as read.
fn time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}

/// The schema of a view's stored history batches: `key` (the row's identity), the view's
/// columns, `valid_from` (microseconds) and `ended`.
pub fn batch_schema(stored: &SchemaRef) -> SchemaRef {
    let mut fields = vec![Field::new(KEY, DataType::Binary, false)];
    fields.extend(stored.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)));
    fields.push(Field::new(VALID_FROM, DataType::Int64, false));
    fields.push(Field::new(ENDED, DataType::Boolean, false));
    Arc::new(Schema::new(fields))
}

/// The schema a history read produces: the view's columns, then for
/// [`HistoryRead::Versions`] `valid_from` and `valid_to`, for [`HistoryRead::Changes`]
/// `valid_from` and `ended`.
pub fn read_schema(table: &SchemaRef, read: HistoryRead) -> SchemaRef {
    let mut fields: Vec<Field> = table.fields().iter().map(|f| f.as_ref().clone()).collect();
    match read {
        HistoryRead::AsOf(_) => return table.clone(),
        HistoryRead::Versions => {
            fields.push(Field::new(VALID_FROM, time_type(), false));
            fields.push(Field::new(VALID_TO, time_type(), true));
        }
        HistoryRead::Changes => {
            fields.push(Field::new(VALID_FROM, time_type(), false));
            fields.push(Field::new(ENDED, DataType::Boolean, false));
        }
    }
    Arc::new(Schema::new(fields))
}

/// Reads `table`'s history as `read`, in the full [`read_schema`]. Changes stream batch by
/// batch as stored; the other reads order versions per row, which needs them all.
pub(crate) fn read(table: &Table, read: HistoryRead, counters: &ScanCounters) -> Result<Vec<RecordBatch>> {
    let id = table.def().id;
    let stored = batch_schema(table.schema());
    let mut batches = Vec::new();
    table.store().scan(Cf::History, &keys::table_start(id), &keys::table_end(id), &mut |_, v| {
        counters.entries_read.fetch_add(1, Ordering::Relaxed);
        let batch = codec::decode_batch(v)?;
        batches.push(RecordBatch::try_new(stored.clone(), batch.columns().to_vec())?);
        Ok(ScanControl::Continue)
    })?;
    let out = read_schema(table.schema(), read);
    let n = table.schema().fields().len();
    let view_columns = |b: &RecordBatch| -> Vec<ArrayRef> { b.columns()[1..=n].to_vec() };
    let from_col = |b: &RecordBatch| -> Result<ArrayRef> { Ok(cast(b.column(n + 1), &time_type())?) };
    match read {
        HistoryRead::Changes => batches
            .iter()
            .map(|b| {
                let mut cols = view_columns(b);
                cols.push(from_col(b)?);
                cols.push(b.column(n + 2).clone());
                Ok(RecordBatch::try_new(out.clone(), cols)?)
            })
            .collect(),
        HistoryRead::AsOf(at) => {
            let all = concat_batches(&stored, &batches)?;
            let ids = all.column(0).as_binary::<i32>();
            let from = all.column(n + 1).as_primitive::<Int64Type>();
            // The last version of each row from at most `at` (later arrivals win ties).
            let mut last: HashMap<&[u8], u32> = HashMap::new();
            for i in 0..all.num_rows() {
                if from.value(i) <= at {
                    last.insert(ids.value(i), i as u32);
                }
            }
            let ended = all.column(n + 2).as_boolean();
            let mut keep: Vec<(&[u8], u32)> = last.into_iter().filter(|(_, i)| !ended.value(*i as usize)).collect();
            keep.sort_unstable();
            let idx = UInt32Array::from_iter_values(keep.into_iter().map(|(_, i)| i));
            let cols = view_columns(&all).iter().map(|c| take(c.as_ref(), &idx, None)).collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(vec![RecordBatch::try_new_with_options(out, cols, &RecordBatchOptions::new().with_row_count(Some(idx.len())))?])
        }
        HistoryRead::Versions => {
            let all = concat_batches(&stored, &batches)?;
            let arrival: ArrayRef = Arc::new(UInt32Array::from_iter_values(0..all.num_rows() as u32));
            let order = lexsort_to_indices(
                &[
                    SortColumn { values: all.column(0).clone(), options: None },
                    SortColumn { values: all.column(n + 1).clone(), options: None },
                    SortColumn { values: arrival, options: None },
                ],
                None,
            )?;
            let ids = all.column(0).as_binary::<i32>();
            let from = all.column(n + 1).as_primitive::<Int64Type>();
            let ended = all.column(n + 2).as_boolean();
            // In that order, each version lasts until the row's next one; ends are not
            // versions, nor are versions replaced at the time they were made (valid for no
            // time at all).
            let order = order.values();
            let mut keep = Vec::new();
            let mut to = Vec::new();
            for (pos, &i) in order.iter().enumerate() {
                let i = i as usize;
                let next = order.get(pos + 1).map(|&j| j as usize).filter(|&j| ids.value(j) == ids.value(i)).map(|j| from.value(j));
                if ended.value(i) || next == Some(from.value(i)) {
                    continue;
                }
                keep.push(i as u32);
                to.push(next);
            }
            let idx = UInt32Array::from(keep);
            let mut cols = view_columns(&all).iter().map(|c| take(c.as_ref(), &idx, None)).collect::<std::result::Result<Vec<_>, _>>()?;
            cols.push(take(from_col(&all)?.as_ref(), &idx, None)?);
            cols.push(Arc::new(TimestampMicrosecondArray::from(to)));
            Ok(vec![RecordBatch::try_new_with_options(out, cols, &RecordBatchOptions::new().with_row_count(Some(idx.len())))?])
        }
    }
}

/// A view's history, read as one [`HistoryRead`].
#[derive(Debug)]
pub struct HistoryTable {
    table: Arc<Table>,
    read: HistoryRead,
    schema: SchemaRef,
}

impl HistoryTable {
    /// `table`'s history read as `read`; refused unless `table` is a view keeping history.
    pub fn new(table: Arc<Table>, read: HistoryRead) -> DfResult<Self> {
        match table.def().view() {
            Some(meta) if meta.history => {}
            Some(_) => return Err(DataFusionError::Plan(format!("materialized view \"{}\" keeps no history (it was created WITH (history = false))", table.name()))),
            None => return Err(DataFusionError::NotImplemented(format!("\"{}\" is not a materialized view: only materialized views keep the history of their rows", table.name()))),
        }
        let schema = read_schema(table.schema(), read);
        Ok(Self { table, read, schema })
    }
}

#[async_trait]
impl TableProvider for HistoryTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(&self, _state: &dyn Session, projection: Option<&Vec<usize>>, _filters: &[Expr], limit: Option<usize>) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(TableScanExec::try_new(self.table.clone(), Access::History(self.read), projection.cloned(), limit)?))
    }
}

/// A constant event time given to `AS OF`, in microseconds: a timestamp (any unit, with or
/// without a time zone) or a string that casts to one.
pub fn time_micros(value: &ScalarValue) -> DfResult<i64> {
    let array = value.to_array()?;
    let micros = cast(&array, &DataType::Timestamp(TimeUnit::Microsecond, None))
        .map_err(|_| DataFusionError::Plan(format!("AS OF needs a timestamp, not {}", value.data_type())))?;
    match ScalarValue::try_from_array(&micros, 0)? {
        ScalarValue::TimestampMicrosecond(Some(t), _) => Ok(t),
        _ => Err(DataFusionError::Plan("AS OF needs a timestamp, not NULL".into())),
    }
}

/// The table functions over views' history.
#[derive(Debug)]
struct HistoryFunction {
    catalog: Arc<Catalog>,
    as_of: bool,
}

impl TableFunctionImpl for HistoryFunction {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        let usage = if self.as_of { "view_as_of('view', TIMESTAMP '...')" } else { "view_history('view')" };
        let want = if self.as_of { 2 } else { 1 };
        let literal = |e: &Expr| match e {
            Expr::Literal(v, _) => Some(v.clone()),
            _ => None,
        };
        let name = match args.first().and_then(literal) {
            Some(ScalarValue::Utf8(Some(n)) | ScalarValue::LargeUtf8(Some(n)) | ScalarValue::Utf8View(Some(n))) if args.len() == want => n,
            _ => return Err(DataFusionError::Plan(format!("usage: {usage}"))),
        };
        let table = self.catalog.table(&name).ok_or_else(|| DataFusionError::Plan(format!("relation \"{name}\" does not exist")))?;
        let read = match args.get(1) {
            None => HistoryRead::Versions,
            Some(e) => HistoryRead::AsOf(time_micros(&literal(e).ok_or_else(|| DataFusionError::Plan(format!("AS OF needs a constant time: {e}")))?)?),
        };
        Ok(Arc::new(HistoryTable::new(table, read)?))
    }
}

/// Registers `view_history(name)` and `view_as_of(name, time)`.
pub fn install(ctx: &SessionContext, catalog: Arc<Catalog>) {
    ctx.register_udtf("view_history", Arc::new(HistoryFunction { catalog: catalog.clone(), as_of: false }));
    ctx.register_udtf("view_as_of", Arc::new(HistoryFunction { catalog, as_of: true }));
}
