//! Reading materialized views' history (written by the view engine, see `views::history`).
//!
//! [`HistoryTable`] is a view seen at one event time (`FOR SYSTEM_TIME AS OF`) or as all its
//! versions (`view_history('v')`: the view's columns, then `valid_from` and `valid_to`, the
//! event times between which each version was the row; `valid_to` is NULL for current
//! rows). Both are scans of the view's range of [`nowdb_storage::Cf::History`] by
//! [`super::scan::TableScanExec`], streamed in batches. The table functions
//! `view_history(name)` and `view_as_of(name, time)` expose them to SQL.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableFunctionImpl, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use nowdb_storage::rowcodec;

use super::access::{Access, HistoryRead};
use super::scan::TableScanExec;
use crate::catalog::{Catalog, Table};

/// Name of the column holding the time from which a version is valid.
pub const VALID_FROM: &str = "valid_from";
/// Name of the column holding the time until which a version was valid (NULL: current).
pub const VALID_TO: &str = "valid_to";

/// The type of `valid_from` / `valid_to`.
fn time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}

/// A view's columns, then `valid_from` and `valid_to`.
pub fn versions_schema(table: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = table.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(VALID_FROM, time_type(), false));
    fields.push(Field::new(VALID_TO, time_type(), true));
    Arc::new(Schema::new(fields))
}

/// Versions collected for one output batch.
pub(crate) struct VersionBatch {
    table: SchemaRef,
    projection: Option<Vec<usize>>,
    out: SchemaRef,
    values: Vec<Vec<u8>>,
    from: Vec<i64>,
    to: Vec<Option<i64>>,
}

impl VersionBatch {
    /// A batch of rows of `table`, emitted as `out` (the projection of the table's schema, or
    /// of its [`versions_schema`]).
    pub(crate) fn new(table: SchemaRef, projection: Option<Vec<usize>>, out: SchemaRef) -> Self {
        Self { table, projection, out, values: Vec::new(), from: Vec::new(), to: Vec::new() }
    }

    /// Adds a version (an empty value is a row's end and adds nothing); `valid` is its
    /// (from, to) when the batch has those columns.
    pub(crate) fn push(&mut self, value: Vec<u8>, valid: Option<(i64, Option<i64>)>) {
        if value.is_empty() {
            return;
        }
        self.values.push(value);
        if let Some((from, to)) = valid {
            self.from.push(from);
            self.to.push(to);
        }
    }

    /// Versions held.
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    /// The held versions as a batch (`None` when there are none).
    pub(crate) fn flush(&mut self) -> nowdb_storage::Result<Option<RecordBatch>> {
        if self.values.is_empty() {
            return Ok(None);
        }
        let n_table = self.table.fields().len();
        let wanted: Vec<usize> = self.projection.clone().unwrap_or_else(|| (0..self.out.fields().len()).collect());
        let table_cols: Vec<usize> = wanted.iter().copied().filter(|&i| i < n_table).collect();
        let decoded = rowcodec::decode_rows(self.values.iter().map(|v| v.as_slice()), &self.table, Some(&table_cols))?;
        let from: ArrayRef = Arc::new(TimestampMicrosecondArray::from(std::mem::take(&mut self.from)));
        let to: ArrayRef = Arc::new(TimestampMicrosecondArray::from(std::mem::take(&mut self.to)));
        let mut decoded_cols = decoded.columns().iter();
        let columns: Vec<ArrayRef> = wanted
            .iter()
            .map(|&i| match i.checked_sub(n_table) {
                None => decoded_cols.next().cloned(),
                Some(0) => Some(from.clone()),
                Some(_) => Some(to.clone()),
            })
            .collect::<Option<_>>()
            .ok_or_else(|| nowdb_storage::StorageError::Corrupt("history projection".into()))?;
        let options = RecordBatchOptions::new().with_row_count(Some(self.values.len()));
        self.values.clear();
        Ok(Some(RecordBatch::try_new_with_options(self.out.clone(), columns, &options)?))
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
        let schema = match read {
            HistoryRead::AsOf(_) => table.schema().clone(),
            HistoryRead::Versions => versions_schema(table.schema()),
        };
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
