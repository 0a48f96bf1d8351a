//! Event-time windows, RisingWave style: `TUMBLE(table, ts, size)` and
//! `HOP(table, ts, slide, size)` are table functions that return the table's rows with two
//! more columns, `window_start` and `window_end`. A tumbling window assigns each row to one
//! window; a hopping window to every window (`size / slide` of them) whose
//! `[start, start + size)` contains the row's time. Rows with a NULL time belong to no window.
//!
//! [`assign`] is the one kernel: batch queries (through [`WindowTable`]) and the incremental
//! view engine both call it, so a view and its defining query window rows identically.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, PrimitiveArray, RecordBatch, UInt32Array,
};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{
    DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties};
use datafusion::scalar::ScalarValue;
use futures::StreamExt;

/// Name of the added column holding a window's inclusive start.
pub const WINDOW_START: &str = "window_start";
/// Name of the added column holding a window's exclusive end.
pub const WINDOW_END: &str = "window_end";

/// A window shape, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    /// Distance between consecutive window starts (= size for tumbling windows).
    pub slide_micros: i64,
    /// Window length.
    pub size_micros: i64,
}

impl WindowSpec {
    /// A tumbling window of `size` microseconds.
    pub fn tumble(size_micros: i64) -> Result<Self> {
        Self::hop(size_micros, size_micros)
    }

    /// A hopping window: a new window every `slide`, each `size` long.
    pub fn hop(slide_micros: i64, size_micros: i64) -> Result<Self> {
        if slide_micros <= 0 || size_micros <= 0 {
            return Err(DataFusionError::Plan("window size and slide must be positive intervals".into()));
        }
        if size_micros % slide_micros != 0 {
            return Err(DataFusionError::Plan(
                "HOP window size must be a multiple of its slide".into(),
            ));
        }
        if size_micros / slide_micros > 1024 {
            return Err(DataFusionError::Plan("HOP window size / slide must be at most 1024".into()));
        }
        Ok(Self { slide_micros, size_micros })
    }

    /// Windows per row.
    pub fn windows_per_row(&self) -> usize {
        (self.size_micros / self.slide_micros) as usize
    }
}

fn unit_per_micro(unit: &TimeUnit) -> (i64, i64) {
    // (multiply, divide) to convert microseconds into the unit
    match unit {
        TimeUnit::Second => (1, 1_000_000),
        TimeUnit::Millisecond => (1, 1_000),
        TimeUnit::Microsecond => (1, 1),
        TimeUnit::Nanosecond => (1_000, 1),
    }
}

/// Raw values of a timestamp array (in its own unit), NULL as `None`.
pub fn timestamps(array: &dyn Array) -> Result<Vec<Option<i64>>> {
    fn collect<T: datafusion::arrow::datatypes::ArrowPrimitiveType<Native = i64>>(a: &dyn Array) -> Vec<Option<i64>> {
        a.as_primitive::<T>().iter().collect()
    }
    Ok(match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => collect::<TimestampSecondType>(array),
        DataType::Timestamp(TimeUnit::Millisecond, _) => collect::<TimestampMillisecondType>(array),
        DataType::Timestamp(TimeUnit::Microsecond, _) => collect::<TimestampMicrosecondType>(array),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => collect::<TimestampNanosecondType>(array),
        other => return Err(DataFusionError::Plan(format!("window time column must be a timestamp, not {other}"))),
    })
}

/// Converts microseconds to `unit`.
pub fn micros_to_unit(micros: i64, unit: &TimeUnit) -> i64 {
    let (mul, div) = unit_per_micro(unit);
    micros.saturating_mul(mul) / div
}

/// Converts a value in `unit` to microseconds.
pub fn unit_to_micros(v: i64, unit: &TimeUnit) -> i64 {
    let (mul, div) = unit_per_micro(unit);
    v.saturating_mul(div) / mul
}

/// Assigns rows to windows: for every (row, window) pair, the row index and the window start
/// (in the time column's unit), rows in order and each row's windows by ascending start.
pub fn assign(ts: &dyn Array, spec: &WindowSpec) -> Result<(UInt32Array, Vec<i64>)> {
    let DataType::Timestamp(unit, _) = ts.data_type() else {
        return Err(DataFusionError::Plan(format!("window time column must be a timestamp, not {}", ts.data_type())));
    };
    let slide = micros_to_unit(spec.slide_micros, unit).max(1);
    let size = micros_to_unit(spec.size_micros, unit).max(1);
    let mut rows = Vec::with_capacity(ts.len());
    let mut starts = Vec::with_capacity(ts.len());
    for (i, t) in timestamps(ts)?.into_iter().enumerate() {
        let Some(t) = t else { continue };
        let last = t.div_euclid(slide) * slide;
        let mut first = last;
        while first - slide > t - size {
            first -= slide;
        }
        let mut s = first;
        while s <= last {
            rows.push(i as u32);
            starts.push(s);
            s += slide;
        }
    }
    Ok((UInt32Array::from(rows), starts))
}

/// The schema of a windowed table: `input` plus `window_start` and `window_end` of the time
/// column's type.
pub fn windowed_schema(input: &Schema, ts_col: usize) -> SchemaRef {
    let ty = input.field(ts_col).data_type().clone();
    let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(WINDOW_START, ty.clone(), false));
    fields.push(Field::new(WINDOW_END, ty, false));
    Arc::new(Schema::new(fields))
}

/// Windows `batch` (see [`assign`]); returns the windowed rows (in `schema`, from
/// [`windowed_schema`]) and, per output row, the input row it came from.
pub fn expand(batch: &RecordBatch, ts_col: usize, spec: &WindowSpec, schema: &SchemaRef) -> Result<(RecordBatch, UInt32Array)> {
    let ts = batch.column(ts_col);
    let DataType::Timestamp(unit, tz) = ts.data_type().clone() else {
        return Err(DataFusionError::Plan("window time column must be a timestamp".into()));
    };
    let (rows, starts) = assign(ts.as_ref(), spec)?;
    let size = micros_to_unit(spec.size_micros, &unit);
    let mut columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| take(c.as_ref(), &rows, None))
        .collect::<std::result::Result<_, _>>()?;
    let ends: Vec<i64> = starts.iter().map(|s| s + size).collect();
    columns.push(timestamp_array(starts, &unit, tz.clone()));
    columns.push(timestamp_array(ends, &unit, tz));
    Ok((RecordBatch::try_new(schema.clone(), columns)?, rows))
}

fn timestamp_array(values: Vec<i64>, unit: &TimeUnit, tz: Option<Arc<str>>) -> ArrayRef {
    match unit {
        TimeUnit::Second => Arc::new(PrimitiveArray::<TimestampSecondType>::from(values).with_timezone_opt(tz)),
        TimeUnit::Millisecond => Arc::new(PrimitiveArray::<TimestampMillisecondType>::from(values).with_timezone_opt(tz)),
        TimeUnit::Microsecond => Arc::new(PrimitiveArray::<TimestampMicrosecondType>::from(values).with_timezone_opt(tz)),
        TimeUnit::Nanosecond => Arc::new(PrimitiveArray::<TimestampNanosecondType>::from(values).with_timezone_opt(tz)),
    }
}

/// An interval literal as microseconds (months are refused: their length varies).
pub fn interval_micros(value: &ScalarValue) -> Result<i64> {
    let micros = match value {
        ScalarValue::IntervalMonthDayNano(Some(v)) => {
            if v.months != 0 {
                return Err(DataFusionError::Plan("window intervals cannot use months or years".into()));
            }
            v.days as i64 * 86_400_000_000 + v.nanoseconds / 1_000
        }
        ScalarValue::IntervalDayTime(Some(v)) => v.days as i64 * 86_400_000_000 + v.milliseconds as i64 * 1_000,
        ScalarValue::IntervalYearMonth(_) => {
            return Err(DataFusionError::Plan("window intervals cannot use months or years".into()))
        }
        other => return Err(DataFusionError::Plan(format!("expected an INTERVAL, got {other}"))),
    };
    Ok(micros)
}

/// Finds a table by name (the server resolves through its catalog).
pub type TableResolver = Arc<dyn Fn(&str) -> Option<Arc<dyn TableProvider>> + Send + Sync>;

/// Which window table function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// `TUMBLE(table, ts, size)`
    Tumble,
    /// `HOP(table, ts, slide, size)`
    Hop,
}

/// The `TUMBLE` / `HOP` table function.
pub struct WindowFunction {
    kind: WindowKind,
    resolve: TableResolver,
}

impl fmt::Debug for WindowFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WindowFunction({:?})", self.kind)
    }
}

impl WindowFunction {
    /// The table function of `kind`, resolving table names with `resolve`.
    pub fn new(kind: WindowKind, resolve: TableResolver) -> Self {
        Self { kind, resolve }
    }
}

fn column_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Column(c) => Some(c.name.clone()),
        _ => None,
    }
}

fn literal(e: &Expr) -> Option<&ScalarValue> {
    match e {
        Expr::Literal(v, _) => Some(v),
        _ => None,
    }
}

impl TableFunctionImpl for WindowFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let (name, usage) = match self.kind {
            WindowKind::Tumble => ("TUMBLE", "TUMBLE(table, time_column, INTERVAL size)"),
            WindowKind::Hop => ("HOP", "HOP(table, time_column, INTERVAL slide, INTERVAL size)"),
        };
        let want = if self.kind == WindowKind::Tumble { 3 } else { 4 };
        if exprs.len() != want {
            return Err(DataFusionError::Plan(format!("{name} takes {want} arguments: {usage}")));
        }
        let table_name = column_name(&exprs[0])
            .ok_or_else(|| DataFusionError::Plan(format!("{name}: the first argument must be a table name")))?;
        let input = (self.resolve)(&table_name)
            .ok_or_else(|| DataFusionError::Plan(format!("relation \"{table_name}\" does not exist")))?;
        let ts_name = column_name(&exprs[1])
            .ok_or_else(|| DataFusionError::Plan(format!("{name}: the second argument must be a time column")))?;
        let schema = input.schema();
        let ts_col = schema
            .index_of(&ts_name)
            .map_err(|_| DataFusionError::Plan(format!("column \"{ts_name}\" does not exist in \"{table_name}\"")))?;
        if !matches!(schema.field(ts_col).data_type(), DataType::Timestamp(_, _)) {
            return Err(DataFusionError::Plan(format!("{name}: column \"{ts_name}\" must be a timestamp")));
        }
        let interval = |e: &Expr| -> Result<i64> {
            interval_micros(literal(e).ok_or_else(|| DataFusionError::Plan(format!("{name}: window sizes must be INTERVAL literals")))?)
        };
        let spec = match self.kind {
            WindowKind::Tumble => WindowSpec::tumble(interval(&exprs[2])?)?,
            WindowKind::Hop => WindowSpec::hop(interval(&exprs[2])?, interval(&exprs[3])?)?,
        };
        Ok(Arc::new(WindowTable { kind: self.kind, table_name, input, ts_col, spec, schema: windowed_schema(&schema, ts_col) }))
    }
}

/// A table seen through a window function.
#[derive(Debug)]
pub struct WindowTable {
    /// Which function made it.
    pub kind: WindowKind,
    /// The windowed table's name.
    pub table_name: String,
    input: Arc<dyn TableProvider>,
    /// Index of the time column in the input.
    pub ts_col: usize,
    /// The window shape.
    pub spec: WindowSpec,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for WindowTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = self.input.scan(state, None, &[], None).await?;
        let out_schema = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => self.schema.clone(),
        };
        Ok(Arc::new(WindowExec {
            properties: window_properties(&input, &out_schema),
            input,
            ts_col: self.ts_col,
            spec: self.spec,
            full_schema: self.schema.clone(),
            projection: projection.cloned(),
            schema: out_schema,
        }))
    }
}

/// One output partition per input partition.
fn window_properties(input: &Arc<dyn ExecutionPlan>, schema: &SchemaRef) -> Arc<PlanProperties> {
    Arc::new(PlanProperties::new(
        EquivalenceProperties::new(schema.clone()),
        Partitioning::UnknownPartitioning(input.properties().partitioning.partition_count()),
        EmissionType::Incremental,
        Boundedness::Bounded,
    ))
}

/// Applies [`expand`] to every batch of its input.
#[derive(Debug)]
struct WindowExec {
    input: Arc<dyn ExecutionPlan>,
    ts_col: usize,
    spec: WindowSpec,
    full_schema: SchemaRef,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl DisplayAs for WindowExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "WindowExec: slide={}us, size={}us", self.spec.slide_micros, self.spec.size_micros)
    }
}

impl ExecutionPlan for WindowExec {
    fn name(&self) -> &str {
        "WindowExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.into_iter().next().ok_or_else(|| DataFusionError::Internal("WindowExec needs its input".into()))?;
        Ok(Arc::new(WindowExec {
            properties: window_properties(&input, &self.schema),
            input,
            ts_col: self.ts_col,
            spec: self.spec,
            full_schema: self.full_schema.clone(),
            projection: self.projection.clone(),
            schema: self.schema.clone(),
        }))
    }

    fn execute(&self, partition: usize, ctx: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let (ts_col, spec, full, projection) = (self.ts_col, self.spec, self.full_schema.clone(), self.projection.clone());
        let stream = self.input.execute(partition, ctx)?.map(move |batch| {
            let (windowed, _) = expand(&batch?, ts_col, &spec, &full)?;
            match &projection {
                Some(p) => Ok(windowed.project(p)?),
                None => Ok(windowed),
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream)))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::TimestampMicrosecondArray;

    use super::*;

    const MIN: i64 = 60_000_000;

    #[test]
    fn tumble_assigns_one_window_and_floors_negative_times() {
        let ts = TimestampMicrosecondArray::from(vec![Some(0), Some(MIN - 1), Some(MIN), None, Some(-1)]);
        let (rows, starts) = assign(&ts, &WindowSpec::tumble(MIN).unwrap()).unwrap();
        assert_eq!(rows.values().to_vec(), vec![0, 1, 2, 4]);
        assert_eq!(starts, vec![0, 0, MIN, -MIN]);
    }

    #[test]
    fn hop_assigns_every_covering_window() {
        let ts = TimestampMicrosecondArray::from(vec![5 * MIN + 30_000_000]);
        let (rows, starts) = assign(&ts, &WindowSpec::hop(MIN, 3 * MIN).unwrap()).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(starts, vec![3 * MIN, 4 * MIN, 5 * MIN]);
        for s in starts {
            assert!(s <= 5 * MIN + 30_000_000 && 5 * MIN + 30_000_000 < s + 3 * MIN);
        }
        assert!(WindowSpec::hop(2 * MIN, 3 * MIN).is_err());
    }
}
