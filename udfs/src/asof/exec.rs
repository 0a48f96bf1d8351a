//! [`AsOfJoinExec`]: the ASOF join, hash-partitioned and sorted.
//!
//! The right side is read once (whatever the number of left partitions) and indexed, its
//! batches kept as they came: per key (the equality columns in Arrow's row format), its
//! rows' `(time, location)` sorted by time, laid out in one array. Each left batch then costs one hash lookup and one binary search per row,
//! and one `take` per output column.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, Array, ArrayRef, AsArray, BooleanArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{cast, interleave, take};
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef, TimeUnit};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{collect, DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, PlanProperties};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::OnceCell;

use super::MatchOrder;
use crate::window;

/// A compiled physical expression.
type Phys = Arc<dyn PhysicalExpr>;

/// What the join matches, compiled against its inputs.
#[derive(Debug, Clone)]
pub struct AsOfSpec {
    /// Equality keys: (over the left rows, over the right rows).
    pub on: Vec<(Phys, Phys)>,
    /// The left row's time.
    pub left_time: Phys,
    /// The right row's time.
    pub right_time: Phys,
    /// Which right time matches.
    pub order: MatchOrder,
    /// Temporal joins: whether a right row is a row's end (matching one is no match).
    pub ended: Option<Phys>,
    /// LEFT (keep unmatched left rows, with NULLs) rather than INNER.
    pub left_outer: bool,
    /// How many right columns (the first ones) are output.
    pub right_output: usize,
}

/// How a time column is read as an `i64`.
#[derive(Debug, Clone, Copy)]
pub enum TimeKind {
    /// A timestamp, in microseconds.
    Timestamp(TimeUnit),
    /// A date, in microseconds.
    Date,
    /// An integer as is.
    Integer,
}

/// How a time of type `ty` compares, if it can be an ASOF time.
pub fn time_kind(ty: &DataType) -> Option<TimeKind> {
    match ty {
        DataType::Timestamp(u, _) => Some(TimeKind::Timestamp(*u)),
        DataType::Date32 | DataType::Date64 => Some(TimeKind::Date),
        t if t.is_integer() => Some(TimeKind::Integer),
        _ => None,
    }
}

/// The times of `array` as comparable `i64`s (timestamps and dates in microseconds).
fn times(array: &ArrayRef) -> Result<Vec<Option<i64>>> {
    match time_kind(array.data_type()) {
        Some(TimeKind::Timestamp(unit)) => Ok(window::timestamps(array.as_ref())?.into_iter().map(|t| t.map(|t| window::unit_to_micros(t, &unit))).collect()),
        Some(TimeKind::Date) => {
            let micros = cast(array, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
            Ok(window::timestamps(micros.as_ref())?)
        }
        Some(TimeKind::Integer) => {
            let ints = cast(array, &DataType::Int64)?;
            Ok(ints.as_primitive::<Int64Type>().iter().collect())
        }
        None => Err(DataFusionError::Plan(format!("an ASOF JOIN time cannot be of type {}", array.data_type()))),
    }
}

fn eval(e: &Phys, batch: &RecordBatch) -> Result<ArrayRef> {
    e.evaluate(batch)?.into_array(batch.num_rows())
}

/// Where a right row is: (batch, row).
type Location = (u32, u32);

/// The right side, read and indexed (its batches are kept as they came: no copy).
struct RightIndex {
    /// The right batches, output columns only, then one all-NULL row (unmatched left rows
    /// point at it).
    batches: Vec<RecordBatch>,
    /// Each key's group number.
    groups: HashMap<Vec<u8>, u32, ahash::RandomState>,
    /// Group `g`'s rows are `rows[starts[g]..starts[g + 1]]`.
    starts: Vec<u32>,
    /// (time, location) of every indexed row, by group, each group sorted by time, then by
    /// arrival.
    rows: Vec<(i64, Location)>,
    /// Which rows are ends, per batch, for temporal joins.
    ended: Option<Vec<BooleanArray>>,
    converter: Option<RowConverter>,
}

impl RightIndex {
    fn build(spec: &AsOfSpec, schema: &SchemaRef, batches: Vec<RecordBatch>) -> Result<Self> {
        let mut groups: HashMap<Vec<u8>, u32, ahash::RandomState> = HashMap::default();
        let mut converter: Option<RowConverter> = None;
        let mut ended = spec.ended.as_ref().map(|_| Vec::with_capacity(batches.len()));
        let mut kept = Vec::with_capacity(batches.len() + 1);
        let output: Vec<usize> = (0..spec.right_output).collect();
        // First pass: each row's group, and the groups' sizes.
        let mut entries: Vec<(u32, i64, Location)> = Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
        let mut sizes: Vec<u32> = Vec::new();
        for (b, batch) in batches.iter().enumerate() {
            let time = times(&eval(&spec.right_time, batch)?)?;
            let keys: Vec<ArrayRef> = spec.on.iter().map(|(_, r)| eval(r, batch)).collect::<Result<_>>()?;
            if converter.is_none() && !keys.is_empty() {
                converter = Some(RowConverter::new(keys.iter().map(|k| SortField::new(k.data_type().clone())).collect())?);
            }
            let rows = converter.as_ref().map(|c| c.convert_columns(&keys)).transpose()?;
            for (i, t) in time.iter().enumerate() {
                let Some(t) = t else { continue };
                if keys.iter().any(|k| k.is_null(i)) {
                    continue;
                }
                let key = rows.as_ref().map_or(&[][..], |r| r.row(i).data());
                let g = match groups.get(key) {
                    Some(&g) => g,
                    None => {
                        let g = sizes.len() as u32;
                        groups.insert(key.to_vec(), g);
                        sizes.push(0);
                        g
                    }
                };
                sizes[g as usize] += 1;
                entries.push((g, *t, (b as u32, i as u32)));
            }
            if let (Some(ended), Some(e)) = (ended.as_mut(), &spec.ended) {
                ended.push(eval(e, batch)?.as_boolean().clone());
            }
            kept.push(batch.project(&output)?);
        }
        // Second pass: rows laid out by group, then each group sorted (arrival order is
        // usually time order already, which the sort finds quickly).
        let mut starts = Vec::with_capacity(sizes.len() + 1);
        let mut total = 0u32;
        for size in &sizes {
            starts.push(total);
            total += size;
        }
        starts.push(total);
        let mut next = starts.clone();
        let mut rows = vec![(0i64, (0u32, 0u32)); total as usize];
        for (g, t, at) in entries {
            let slot = &mut next[g as usize];
            rows[*slot as usize] = (t, at);
            *slot += 1;
        }
        for g in 0..sizes.len() {
            rows[starts[g] as usize..starts[g + 1] as usize].sort_unstable();
        }
        let nullable: Vec<_> = schema.project(&output)?.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
        let nulls = nullable.iter().map(|f| new_null_array(f.data_type(), 1)).collect();
        kept.push(RecordBatch::try_new(Arc::new(datafusion::arrow::datatypes::Schema::new(nullable)), nulls)?);
        Ok(Self { batches: kept, groups, starts, rows, ended, converter })
    }

    /// Where the unmatched point: the all-NULL row.
    fn no_match(&self) -> Location {
        ((self.batches.len() - 1) as u32, 0)
    }

    /// The right row matching a left row with key `key` at time `t`.
    fn find(&self, key: &[u8], t: i64, order: MatchOrder) -> Option<Location> {
        let g = *self.groups.get(key)? as usize;
        let rows = &self.rows[self.starts[g] as usize..self.starts[g + 1] as usize];
        let found = match order {
            MatchOrder::AtOrBefore => rows.partition_point(|(rt, _)| *rt <= t).checked_sub(1),
            MatchOrder::Before => rows.partition_point(|(rt, _)| *rt < t).checked_sub(1),
            MatchOrder::AtOrAfter => Some(rows.partition_point(|(rt, _)| *rt < t)).filter(|&i| i < rows.len()),
            MatchOrder::After => Some(rows.partition_point(|(rt, _)| *rt <= t)).filter(|&i| i < rows.len()),
        };
        let (b, r) = rows[found?].1;
        match &self.ended {
            Some(ended) if ended[b as usize].value(r as usize) => None,
            _ => Some((b, r)),
        }
    }
}

/// The physical ASOF join.
#[derive(Debug)]
pub struct AsOfJoinExec {
    left: Arc<dyn ExecutionPlan>,
    right: Arc<dyn ExecutionPlan>,
    spec: Arc<AsOfSpec>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    index: Arc<OnceCell<std::result::Result<Arc<RightIndex>, String>>>,
}

impl fmt::Debug for RightIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RightIndex({} batches, {} keys)", self.batches.len() - 1, self.groups.len())
    }
}

impl AsOfJoinExec {
    /// Joins `left` to `right` as `spec` says, producing `schema` (left columns, then the
    /// first `spec.right_output` right columns).
    pub fn new(left: Arc<dyn ExecutionPlan>, right: Arc<dyn ExecutionPlan>, spec: AsOfSpec, schema: SchemaRef) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            left.properties().output_partitioning().clone(),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self { left, right, spec: Arc::new(spec), schema, properties, index: Default::default() }
    }
}

impl DisplayAs for AsOfJoinExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let on: Vec<String> = self.spec.on.iter().map(|(l, r)| format!("({l}, {r})")).collect();
        write!(
            f,
            "AsOfJoinExec: type={}, method=hash_sorted_search, on=[{}], match={} {} {}",
            if self.spec.left_outer { "Left" } else { "Inner" },
            on.join(", "),
            self.spec.right_time,
            self.spec.order.symbol(),
            self.spec.left_time
        )?;
        if let Some(v) = &self.spec.ended {
            write!(f, ", unless {v}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for AsOfJoinExec {
    fn name(&self) -> &str {
        "AsOfJoinExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::UnspecifiedDistribution, Distribution::SinglePartition]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.left, &self.right]
    }

    fn apply_expressions(&self, f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>) -> Result<TreeNodeRecursion> {
        let s = &self.spec;
        let exprs = s.on.iter().flat_map(|(l, r)| [l, r]).chain([&s.left_time, &s.right_time]).chain(s.ended.iter());
        for e in exprs {
            if f(e)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let [left, right] = <[_; 2]>::try_from(children).map_err(|_| DataFusionError::Internal("AsOfJoinExec has two children".into()))?;
        Ok(Arc::new(Self::new(left, right, self.spec.as_ref().clone(), self.schema.clone())))
    }

    fn execute(&self, partition: usize, ctx: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let left = self.left.execute(partition, ctx.clone())?;
        let (right, spec, index, schema) = (self.right.clone(), self.spec.clone(), self.index.clone(), self.schema.clone());
        let stream = futures::stream::once(async move {
            let built = index
                .get_or_init(|| async {
                    let right_schema = right.schema();
                    let batches = collect(right, ctx).await.map_err(|e| e.to_string())?;
                    RightIndex::build(&spec, &right_schema, batches).map(Arc::new).map_err(|e| e.to_string())
                })
                .await
                .clone()
                .map_err(DataFusionError::Execution)?;
            Ok::<_, DataFusionError>(left.map(move |batch| probe(&spec, &built, &schema, &batch?)))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream)))
    }
}

/// Joins one left batch.
fn probe(spec: &AsOfSpec, index: &RightIndex, schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch> {
    let time = times(&eval(&spec.left_time, batch)?)?;
    let keys: Vec<ArrayRef> = spec.on.iter().map(|(l, _)| eval(l, batch)).collect::<Result<_>>()?;
    let rows = match &index.converter {
        Some(c) => Some(c.convert_columns(&keys)?),
        None => None,
    };
    let mut left_idx: Vec<u32> = Vec::with_capacity(batch.num_rows());
    let mut right_at: Vec<(usize, usize)> = Vec::with_capacity(batch.num_rows());
    for (i, t) in time.iter().enumerate() {
        let found = match t {
            Some(t) if !keys.iter().any(|k| k.is_null(i)) => {
                let key = rows.as_ref().map_or(&[][..], |r| r.row(i).data());
                index.find(key, *t, spec.order)
            }
            _ => None,
        };
        if found.is_some() || spec.left_outer {
            left_idx.push(i as u32);
            let (b, r) = found.unwrap_or_else(|| index.no_match());
            right_at.push((b as usize, r as usize));
        }
    }
    let left_idx = UInt32Array::from(left_idx);
    let mut columns: Vec<ArrayRef> = batch.columns().iter().map(|c| take(c.as_ref(), &left_idx, None)).collect::<std::result::Result<_, _>>()?;
    for (c, field) in schema.fields().iter().skip(batch.num_columns()).enumerate() {
        let sources: Vec<&dyn Array> = index.batches.iter().map(|b| b.column(c).as_ref()).collect();
        let taken = interleave(&sources, &right_at)?;
        columns.push(if taken.data_type() == field.data_type() { taken } else { cast(&taken, field.data_type())? });
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}
