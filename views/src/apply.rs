//! Applying one change of a source table to one view: the incremental step.
//!
//! Source rows become the view's input delta (late events dropped, join index kept, windows
//! assigned, the keyed table's row attached), WHERE filters it, and then either each row is
//! projected to an output row, or rows are folded into their groups' aggregate state. Every
//! state and output write goes into the caller's write set; the output rows that changed come
//! back as a [`TableChange`] for views reading this one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, RecordBatch, UInt32Array,
};
use datafusion::arrow::compute::{cast, cast_with_options, concat_batches, take, CastOptions};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int64Type, SchemaRef};
use datafusion::scalar::ScalarValue;
use nowdb_catalog::{RowSet, TableChange};
use nowdb_storage::{keys, rowcodec, Cf, ScanControl, Store, WriteSet};
use nowdb_udfs::window;

use crate::history::{self, Stamping};
use crate::agg::{finalize, AggKind, AggSpec, AggState, GroupState, NumKind};
use crate::plan::{AggPlan, JoinSpec, PhysExpr, Shape, ViewPlan};
use crate::state;
use crate::{Result, ViewError};

/// What the caller needs to apply a change to one view.
pub struct ViewTarget<'a> {
    /// The view's id (its rows' and state's key prefix).
    pub id: u32,
    /// The compiled definition.
    pub plan: &'a ViewPlan,
    /// The stored schema of the view's rows.
    pub stored: &'a SchemaRef,
    /// The store (for state reads; writes go to the write set).
    pub store: &'a Arc<dyn Store>,
    /// Stream rows with a time below this (microseconds) are late and dropped (windowed
    /// views over a table with a watermark).
    pub late_before: Option<i64>,
    /// How the view's new row versions are stamped in its history.
    pub stamping: Stamping,
}

/// The result of applying a change.
#[derive(Debug, Default)]
pub struct Applied {
    /// The view's rows that changed.
    pub out: TableChange,
    /// Net change in the number of the view's rows.
    pub rows_delta: i64,
    /// Source rows processed.
    pub events: u64,
    /// Late stream rows dropped.
    pub late: u64,
    /// Greatest window time (microseconds) seen in the stream rows, for windowed views.
    pub max_event_time: Option<i64>,
    /// Greatest version time the view's history got from this change.
    pub max_stamp: Option<i64>,
}

/// Rows with identities (see [`RowSet`]).
type Rows = RowSet;

fn concat_rows(schema: &SchemaRef, parts: Vec<Rows>) -> Result<Option<Rows>> {
    let parts: Vec<Rows> = parts.into_iter().filter(|p| p.rows.num_rows() > 0).collect();
    match parts.len() {
        0 => Ok(None),
        1 => Ok(parts.into_iter().next()),
        _ => {
            let batch = concat_batches(schema, parts.iter().map(|p| &p.rows))?;
            Ok(Some(Rows { rows: batch, ids: parts.into_iter().flat_map(|p| p.ids).collect() }))
        }
    }
}

fn take_rows(rows: &Rows, idx: &UInt32Array, schema: &SchemaRef) -> Result<Rows> {
    let cols = rows.rows.columns().iter().map(|c| take(c.as_ref(), idx, None)).collect::<std::result::Result<Vec<_>, _>>()?;
    let ids = if rows.ids.is_empty() { Vec::new() } else { idx.values().iter().map(|&i| rows.ids[i as usize].clone()).collect() };
    Ok(Rows { rows: RecordBatch::try_new(schema.clone(), cols)?, ids })
}

fn eval(expr: &PhysExpr, batch: &RecordBatch) -> Result<ArrayRef> {
    Ok(expr.evaluate(batch)?.into_array(batch.num_rows())?)
}

fn eval_bool(expr: &PhysExpr, batch: &RecordBatch) -> Result<BooleanArray> {
    let a = eval(expr, batch)?;
    let a = if a.data_type() == &DataType::Boolean { a } else { cast(&a, &DataType::Boolean)? };
    Ok(a.as_boolean().clone())
}

/// Applies `change` of the table with id `source` to the view.
pub fn apply(t: &ViewTarget<'_>, source: u32, change: &TableChange, ws: &mut WriteSet) -> Result<Applied> {
    let mut applied = Applied::default();
    let plan = t.plan;
    let (removed, added) = if source == plan.stream.table_id {
        let removed = change.removed.as_ref().map(|r| stream_rows(t, r, false, ws, &mut applied)).transpose()?.flatten();
        let added = change.added.as_ref().map(|r| stream_rows(t, r, true, ws, &mut applied)).transpose()?.flatten();
        (removed, added)
    } else if let Some(j) = plan.join.as_ref().filter(|j| j.right_id == source) {
        applied.events += change.removed.as_ref().map_or(0, |r| r.rows.num_rows()) as u64 + change.added.as_ref().map_or(0, |r| r.rows.num_rows()) as u64;
        right_change(t, j, change)?
    } else {
        return Ok(applied);
    };
    let removed = removed.map(|r| filter(plan, r)).transpose()?.flatten();
    let added = added.map(|r| filter(plan, r)).transpose()?.flatten();
    match &plan.shape {
        Shape::Project(exprs) => project(t, exprs, removed, added, ws, &mut applied)?,
        Shape::Aggregate(agg) => aggregate(t, agg, removed, added, ws, &mut applied)?,
    }
    Ok(applied)
}

/// Whether output rows are keyed by source row identities (projections) rather than groups.
fn needs_ids(plan: &ViewPlan) -> bool {
    matches!(plan.shape, Shape::Project(_))
}

fn filter(plan: &ViewPlan, rows: Rows) -> Result<Option<Rows>> {
    let Some(f) = &plan.filter else { return Ok(Some(rows)) };
    let mask = eval_bool(f, &rows.rows)?;
    let keep: Vec<u32> = (0..mask.len()).filter(|&i| mask.is_valid(i) && mask.value(i)).map(|i| i as u32).collect();
    if keep.len() == rows.rows.num_rows() {
        return Ok(Some(rows));
    }
    if keep.is_empty() {
        return Ok(None);
    }
    let schema = rows.rows.schema();
    Ok(Some(take_rows(&rows, &UInt32Array::from(keep), &schema)?))
}

/// Stream-side rows: late filter, join index, windows, join.
fn stream_rows(t: &ViewTarget<'_>, rows: &Rows, adding: bool, ws: &mut WriteSet, applied: &mut Applied) -> Result<Option<Rows>> {
    let plan = t.plan;
    applied.events += rows.rows.num_rows() as u64;
    // Row identities are only needed to key projection rows and join-index entries.
    let keep_ids = needs_ids(plan) || plan.join.is_some();
    let mut base = Rows { rows: rows.rows.clone(), ids: if keep_ids { rows.ids.clone() } else { Vec::new() } };
    if let Some((ts_col, _)) = plan.stream.window {
        let ts = window::timestamps(base.rows.column(ts_col).as_ref())?;
        let unit = match base.rows.column(ts_col).data_type() {
            DataType::Timestamp(u, _) => *u,
            _ => datafusion::arrow::datatypes::TimeUnit::Microsecond,
        };
        let micros: Vec<Option<i64>> = ts.iter().map(|v| v.map(|v| window::unit_to_micros(v, &unit))).collect();
        if let Some(m) = micros.iter().flatten().max() {
            applied.max_event_time = Some(applied.max_event_time.map_or(*m, |c| c.max(*m)));
        }
        if let (true, Some(wm)) = (adding, t.late_before) {
            let keep: Vec<u32> = micros.iter().enumerate().filter(|(_, m)| m.is_none_or(|m| m >= wm)).map(|(i, _)| i as u32).collect();
            if keep.len() < base.rows.num_rows() {
                applied.late += (base.rows.num_rows() - keep.len()) as u64;
                let schema = base.rows.schema();
                base = take_rows(&base, &UInt32Array::from(keep), &schema)?;
            }
        }
    }
    if base.rows.num_rows() == 0 {
        return Ok(None);
    }
    // The keyed table's row for each stream row, read once per stream row (not per window).
    let right = match &plan.join {
        None => None,
        Some(j) => {
            let keys = encoded_join_keys(j, &base.rows)?;
            for (i, k) in keys.iter().enumerate() {
                let Some(k) = k else { continue };
                let mut key = state::join_prefix(t.id, k);
                key.extend_from_slice(&base.ids[i]);
                if adding {
                    ws.put(Cf::ViewState, key, rowcodec::encode_row(&base.rows, i)?);
                } else {
                    ws.delete(Cf::ViewState, key);
                }
            }
            Some((j, right_rows(t, j, &keys)?))
        }
    };
    if !needs_ids(plan) {
        base.ids = Vec::new();
    }
    let (windowed, idx) = windowed(plan, base)?;
    match right {
        None => Ok(Some(windowed)),
        Some((j, right)) => {
            let right = match idx {
                Some(idx) => idx.values().iter().map(|&i| right[i as usize].clone()).collect(),
                None => right,
            };
            attach_right(plan, j, windowed, &right)
        }
    }
}

/// The keyed table's rows under `keys` (encoded as [`encoded_join_keys`] gives them).
fn right_rows(t: &ViewTarget<'_>, j: &JoinSpec, keys: &[Option<Vec<u8>>]) -> Result<Vec<Option<RecordBatch>>> {
    let lookups: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| {
            let mut full = j.right_id.to_be_bytes().to_vec();
            if let Some(k) = k {
                full.extend_from_slice(k);
            }
            full
        })
        .collect();
    let found = t.store.multi_get(Cf::Rows, &lookups)?;
    let mut right = Vec::with_capacity(found.len());
    for (k, v) in keys.iter().zip(found) {
        right.push(match (k, v) {
            (Some(_), Some(bytes)) => Some(rowcodec::decode_rows([bytes.as_slice()], &j.right_schema, None)?),
            _ => None,
        });
    }
    Ok(right)
}

/// Windows the rows (when the source is TUMBLE/HOP); with the input row of each output row.
fn windowed(plan: &ViewPlan, base: Rows) -> Result<(Rows, Option<UInt32Array>)> {
    let Some((ts_col, spec)) = &plan.stream.window else { return Ok((base, None)) };
    let (batch, idx) = window::expand(&base.rows, *ts_col, spec, &plan.stream.schema)?;
    if base.ids.is_empty() {
        return Ok((Rows { rows: batch, ids: Vec::new() }, Some(idx)));
    }
    let starts = batch.column(batch.num_columns() - 2);
    let starts = window::timestamps(starts.as_ref())?;
    let ids = idx
        .values()
        .iter()
        .zip(starts)
        .map(|(&i, s)| {
            let mut id = base.ids[i as usize].clone();
            id.extend_from_slice(&s.unwrap_or_default().to_be_bytes());
            id
        })
        .collect();
    Ok((Rows { rows: batch, ids }, Some(idx)))
}

/// The keyed table's key for each stream row, encoded like its row keys (`None`: a NULL).
fn encoded_join_keys(j: &JoinSpec, batch: &RecordBatch) -> Result<Vec<Option<Vec<u8>>>> {
    let cols: Vec<ArrayRef> = j
        .left_keys
        .iter()
        .zip(&j.key_types)
        .map(|(&c, ty)| {
            let col = batch.column(c);
            if col.data_type() == ty {
                Ok(col.clone())
            } else {
                Ok(cast_with_options(col, ty, &CastOptions { safe: true, ..Default::default() })?)
            }
        })
        .collect::<Result<_>>()?;
    let mut out = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        if cols.iter().any(|c| c.is_null(row)) {
            out.push(None);
            continue;
        }
        let mut k = Vec::new();
        keys::encode_values(&mut k, &cols, row)?;
        out.push(Some(k));
    }
    Ok(out)
}

/// Joins stream rows to their keyed-table rows (`None`: no match).
fn attach_right(plan: &ViewPlan, j: &JoinSpec, left: Rows, right: &[Option<RecordBatch>]) -> Result<Option<Rows>> {
    let n_left = left.rows.num_columns();
    let right_fields = &plan.input_schema.fields()[n_left..];
    let mut keep = Vec::with_capacity(right.len());
    let mut parts: Vec<RecordBatch> = Vec::new();
    let mut take_idx: Vec<u32> = Vec::with_capacity(right.len());
    let mut null_rows = 0;
    for (i, r) in right.iter().enumerate() {
        match r {
            Some(b) => {
                keep.push(i as u32);
                take_idx.push(parts.len() as u32);
                parts.push(b.clone());
            }
            None if j.left_outer => {
                keep.push(i as u32);
                take_idx.push(u32::MAX);
                null_rows += 1;
            }
            None => {}
        }
    }
    if keep.is_empty() {
        return Ok(None);
    }
    // Right columns: the found rows, then one all-NULL row for the unmatched.
    let null_at = parts.len() as u32;
    let mut right_cols: Vec<ArrayRef> = Vec::with_capacity(right_fields.len());
    for (c, f) in right_fields.iter().enumerate() {
        let mut arrays: Vec<ArrayRef> = parts.iter().map(|b| cast_to(b.column(c), f.data_type())).collect::<Result<_>>()?;
        if null_rows > 0 {
            arrays.push(new_null_array(f.data_type(), 1));
        }
        let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
        let all = datafusion::arrow::compute::concat(&refs)?;
        let idx = UInt32Array::from(take_idx.iter().map(|&i| if i == u32::MAX { null_at } else { i }).collect::<Vec<_>>());
        right_cols.push(take(all.as_ref(), &idx, None)?);
    }
    let keep = UInt32Array::from(keep);
    let mut cols: Vec<ArrayRef> = left.rows.columns().iter().map(|c| take(c.as_ref(), &keep, None)).collect::<std::result::Result<_, _>>()?;
    cols.extend(right_cols);
    let ids = if left.ids.is_empty() { Vec::new() } else { keep.values().iter().map(|&i| left.ids[i as usize].clone()).collect() };
    Ok(Some(Rows { rows: RecordBatch::try_new(plan.input_schema.clone(), cols)?, ids }))
}

fn cast_to(a: &ArrayRef, ty: &DataType) -> Result<ArrayRef> {
    if a.data_type() == ty {
        Ok(a.clone())
    } else {
        Ok(cast(a, ty)?)
    }
}

/// A keyed-table change: every stream row joined to a changed key leaves with the old row
/// (or NULLs) and comes back with the new one.
fn right_change(t: &ViewTarget<'_>, j: &JoinSpec, change: &TableChange) -> Result<(Option<Rows>, Option<Rows>)> {
    let mut per_key: BTreeMap<Vec<u8>, (Option<RecordBatch>, Option<RecordBatch>)> = BTreeMap::new();
    if let Some(r) = &change.removed {
        for (i, id) in r.ids.iter().enumerate() {
            per_key.entry(id.clone()).or_default().0 = Some(r.rows.slice(i, 1));
        }
    }
    if let Some(a) = &change.added {
        for (i, id) in a.ids.iter().enumerate() {
            per_key.entry(id.clone()).or_default().1 = Some(a.rows.slice(i, 1));
        }
    }
    let plan = t.plan;
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    for (key, (old, new)) in per_key {
        let prefix = state::join_prefix(t.id, &key);
        let mut left_rows: Vec<Vec<u8>> = Vec::new();
        let mut ids = Vec::new();
        t.store.scan(Cf::ViewState, &prefix, &state::prefix_end(&prefix), &mut |k, v| {
            ids.push(k[prefix.len()..].to_vec());
            left_rows.push(v.to_vec());
            Ok(ScanControl::Continue)
        })?;
        if ids.is_empty() {
            continue;
        }
        let ids = if needs_ids(plan) { ids } else { Vec::new() };
        let rows = rowcodec::decode_rows(left_rows.iter().map(|v| v.as_slice()), &plan.stream.base_schema, None)?;
        let base = Rows { rows, ids };
        let (left, _) = windowed(plan, base)?;
        let n = left.rows.num_rows();
        if old.is_some() || j.left_outer {
            if let Some(r) = attach_right(plan, j, left.clone(), &vec![old.clone(); n])? {
                removed.push(r);
            }
        }
        if new.is_some() || j.left_outer {
            if let Some(r) = attach_right(plan, j, left, &vec![new.clone(); n])? {
                added.push(r);
            }
        }
    }
    Ok((concat_rows(&plan.input_schema, removed)?, concat_rows(&plan.input_schema, added)?))
}

/// Output rows in the stored schema.
fn conform(stored: &SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    let columns = columns
        .into_iter()
        .zip(stored.fields())
        .map(|(c, f)| cast_to(&c, f.data_type()))
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(stored.clone(), columns)?)
}

fn row_key(view: u32, id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + id.len());
    k.extend_from_slice(&view.to_be_bytes());
    k.extend_from_slice(id);
    k
}

/// Deletes the view's removed rows and writes its added ones (a row both removed and added
/// is just overwritten); they become the change for views reading this one. `states`, when
/// given, are the added rows' group states, stored after their values.
///
/// With history kept, each removed row that is not rewritten gets an end version, and each
/// added row a version, at its stamp (`removed`/`added` carry one stamp per row).
fn write_rows(t: &ViewTarget<'_>, removed: Option<(Rows, Vec<i64>)>, added: Option<(Rows, Vec<i64>)>, states: Option<Vec<Vec<u8>>>, ws: &mut WriteSet, applied: &mut Applied) -> Result<()> {
    let rewritten: HashSet<&[u8]> = match (&removed, &added) {
        (Some(_), Some((a, _))) => a.ids.iter().map(|id| id.as_slice()).collect(),
        _ => HashSet::new(),
    };
    // Rows removed and not written again end; with history, their last values are kept.
    let mut ended: Vec<u32> = Vec::new();
    if let Some((r, _)) = &removed {
        for (i, id) in r.ids.iter().enumerate() {
            if !rewritten.contains(id.as_slice()) {
                ws.delete(Cf::Rows, row_key(t.id, id));
                ended.push(i as u32);
            }
        }
        applied.rows_delta -= r.ids.len() as i64;
    }
    if let Some((a, _)) = &added {
        for (i, id) in a.ids.iter().enumerate() {
            let mut value = rowcodec::encode_row(&a.rows, i)?;
            if let Some(state) = states.as_ref().and_then(|s| s.get(i)) {
                value.extend_from_slice(state);
            }
            ws.put(Cf::Rows, row_key(t.id, id), value);
        }
        applied.rows_delta += a.ids.len() as i64;
    }
    if t.stamping.keep {
        let ended = match &removed {
            Some((r, stamps)) if !ended.is_empty() => {
                let ended_stamps: Vec<i64> = ended.iter().map(|&i| stamps[i as usize]).collect();
                Some((take_rows(r, &UInt32Array::from(ended), &r.rows.schema())?, ended_stamps))
            }
            _ => None,
        };
        let versions = history::Versions { ended: ended.as_ref().map(|(r, s)| (r, s.as_slice())), written: added.as_ref().map(|(a, s)| (a, s.as_slice())) };
        let max = history::append(ws, t.id, t.stamping.seq, t.stored, versions)?;
        applied.max_stamp = applied.max_stamp.max(max);
    }
    applied.out = TableChange { removed: removed.map(|r| r.0), added: added.map(|a| a.0) };
    Ok(())
}

fn project(t: &ViewTarget<'_>, exprs: &[PhysExpr], removed: Option<Rows>, added: Option<Rows>, ws: &mut WriteSet, applied: &mut Applied) -> Result<()> {
    let out = |rows: Rows| -> Result<(Rows, Vec<i64>)> {
        let stamps = t.stamping.row_stamps(&rows.rows, t.plan.stream.time_col)?;
        let cols = exprs.iter().map(|e| eval(e, &rows.rows)).collect::<Result<Vec<_>>>()?;
        Ok((Rows { rows: conform(t.stored, cols)?, ids: rows.ids }, stamps))
    };
    let removed = removed.map(out).transpose()?;
    let added = added.map(out).transpose()?;
    write_rows(t, removed, added, None, ws, applied)
}

/// One side's evaluated aggregate inputs.
struct Inputs {
    rows: Rows,
    /// Each row's version time.
    stamps: Vec<i64>,
    sign: i64,
    groups: Vec<ArrayRef>,
    per_agg: Vec<AggInput>,
}

struct AggInput {
    values: Option<ArrayRef>,
    order: Option<ArrayRef>,
    mask: Option<BooleanArray>,
    int: Option<datafusion::arrow::array::Int64Array>,
    float: Option<datafusion::arrow::array::Float64Array>,
}

fn agg_inputs(spec: &AggSpec, batch: &RecordBatch) -> Result<AggInput> {
    let values = spec.args.first().map(|e| eval(e, batch)).transpose()?;
    let order = match &spec.kind {
        AggKind::Latest { order, .. } => Some(eval(order, batch)?),
        _ => None,
    };
    let mask = spec.filter.as_ref().map(|f| eval_bool(f, batch)).transpose()?;
    let (mut int, mut float) = (None, None);
    if let Some(v) = &values {
        match &spec.kind {
            AggKind::Sum(NumKind::Int) | AggKind::Avg(NumKind::Int) => int = Some(cast(v, &DataType::Int64)?.as_primitive::<Int64Type>().clone()),
            AggKind::Sum(NumKind::Float) | AggKind::Avg(NumKind::Float) | AggKind::Var { .. } => {
                float = Some(cast(v, &DataType::Float64)?.as_primitive::<Float64Type>().clone())
            }
            _ => {}
        }
    }
    Ok(AggInput { values, order, mask, int, float })
}

struct GroupWork {
    /// (side, row) of a row carrying the group's key values.
    key_row: (usize, usize),
    /// (side, row) of every contributing row.
    rows: Vec<(usize, usize)>,
}

fn aggregate(t: &ViewTarget<'_>, agg: &AggPlan, removed: Option<Rows>, added: Option<Rows>, ws: &mut WriteSet, applied: &mut Applied) -> Result<()> {
    let mut sides = Vec::new();
    for (rows, sign) in [(removed, -1i64), (added, 1i64)] {
        let Some(rows) = rows else { continue };
        let groups = agg.group.iter().map(|e| eval(e, &rows.rows)).collect::<Result<Vec<_>>>()?;
        let per_agg = agg.aggs.iter().map(|s| agg_inputs(s, &rows.rows)).collect::<Result<Vec<_>>>()?;
        let stamps = t.stamping.row_stamps(&rows.rows, t.plan.stream.time_col)?;
        sides.push(Inputs { rows, stamps, sign, groups, per_agg });
    }
    let mut order: Vec<Vec<u8>> = Vec::new();
    let mut work: HashMap<Vec<u8>, GroupWork> = HashMap::new();
    let mut gk = Vec::new();
    for (s, side) in sides.iter().enumerate() {
        for row in 0..side.rows.rows.num_rows() {
            gk.clear();
            keys::encode_values(&mut gk, &side.groups, row)?;
            match work.get_mut(gk.as_slice()) {
                Some(w) => w.rows.push((s, row)),
                None => {
                    order.push(gk.clone());
                    work.insert(gk.clone(), GroupWork { key_row: (s, row), rows: vec![(s, row)] });
                }
            }
        }
    }
    if order.is_empty() {
        return Ok(());
    }
    // Key order: RocksDB's memtable inserts sorted keys much faster than scattered ones.
    order.sort_unstable();
    let in_row = state_in_row(agg);
    let state_keys: Vec<Vec<u8>> = order.iter().map(|g| if in_row { row_key(t.id, g) } else { state::group_key(t.id, g) }).collect();
    let stored = t.store.multi_get(if in_row { Cf::Rows } else { Cf::ViewState }, &state_keys)?;
    let global = agg.group.is_empty();
    let mut old_rows: Vec<Vec<ScalarValue>> = Vec::new();
    let mut old_keys: Vec<(Vec<u8>, i64)> = Vec::new();
    let mut new_rows: Vec<Vec<ScalarValue>> = Vec::new();
    let mut new_keys: Vec<(Vec<u8>, i64)> = Vec::new();
    let mut new_states: Vec<Vec<u8>> = Vec::new();
    for ((gk, skey), bytes) in order.iter().zip(state_keys).zip(stored) {
        let w = &work[gk];
        let old = match bytes {
            Some(b) if in_row => GroupState::decode(&b[rowcodec::encoded_len(&b, t.stored)?..])?,
            Some(b) => GroupState::decode(&b)?,
            None => GroupState::empty(&agg.aggs),
        };
        let mut new = old.clone();
        let mut stamp = i64::MIN;
        for &(s, r) in &w.rows {
            new.rows += sides[s].sign;
            stamp = stamp.max(sides[s].stamps[r]);
        }
        for (a, spec) in agg.aggs.iter().enumerate() {
            fold(t, spec, a, gk, &sides, &w.rows, &mut new.aggs[a], ws)?;
        }
        let (ks, kr) = w.key_row;
        let key_values = sides[ks].groups.iter().map(|g| ScalarValue::try_from_array(g.as_ref(), kr)).collect::<std::result::Result<Vec<_>, _>>()?;
        let row_of = |st: &GroupState| -> Result<Vec<ScalarValue>> {
            let mut r = key_values.clone();
            for (spec, s) in agg.aggs.iter().zip(&st.aggs) {
                r.push(finalize(spec, s)?);
            }
            Ok(r)
        };
        // A global aggregate (no GROUP BY) always has its one row, created with the view.
        if old.rows > 0 || global {
            old_rows.push(row_of(&old)?);
            old_keys.push((gk.clone(), stamp));
        }
        if new.rows > 0 || global {
            new_rows.push(row_of(&new)?);
            new_keys.push((gk.clone(), stamp));
            if in_row {
                new_states.push(new.encode());
            } else {
                ws.put(Cf::ViewState, skey, new.encode());
            }
        } else if !in_row {
            ws.delete(Cf::ViewState, skey);
        }
    }
    let removed = output_rows(t, agg, old_rows, old_keys)?;
    let added = output_rows(t, agg, new_rows, new_keys)?;
    write_rows(t, removed, added, in_row.then_some(new_states), ws, applied)
}

/// Whether a group's state is stored after its row's values, in the row's entry (one RocksDB
/// entry per group), rather than in its own entry. Only when every group has a row: with
/// HAVING, a group can exist without one.
fn state_in_row(agg: &AggPlan) -> bool {
    agg.having.is_none()
}

/// Group rows (keys + aggregate values) through HAVING and the projection to output rows,
/// with their version times (`ids` pairs each row's group key with its time).
fn output_rows(t: &ViewTarget<'_>, agg: &AggPlan, rows: Vec<Vec<ScalarValue>>, ids: Vec<(Vec<u8>, i64)>) -> Result<Option<(Rows, Vec<i64>)>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let (ids, mut stamps): (Vec<Vec<u8>>, Vec<i64>) = ids.into_iter().unzip();
    let mut columns = Vec::with_capacity(agg.agg_schema.fields().len());
    for (c, f) in agg.agg_schema.fields().iter().enumerate() {
        let values = rows.iter().map(|r| r[c].clone());
        let array = ScalarValue::iter_to_array(values)?;
        columns.push(cast_to(&array, f.data_type())?);
    }
    let batch = RecordBatch::try_new(agg.agg_schema.clone(), columns)?;
    let mut rows = Rows { rows: batch, ids };
    if let Some(h) = &agg.having {
        let mask = eval_bool(h, &rows.rows)?;
        let keep: Vec<u32> = (0..mask.len()).filter(|&i| mask.is_valid(i) && mask.value(i)).map(|i| i as u32).collect();
        if keep.is_empty() {
            return Ok(None);
        }
        let schema = rows.rows.schema();
        stamps = keep.iter().map(|&i| stamps[i as usize]).collect();
        rows = take_rows(&rows, &UInt32Array::from(keep), &schema)?;
    }
    let cols = agg.project.iter().map(|e| eval(e, &rows.rows)).collect::<Result<Vec<_>>>()?;
    Ok(Some((Rows { rows: conform(t.stored, cols)?, ids: rows.ids }, stamps)))
}

fn encode_one(col: &ArrayRef, row: usize) -> Result<Vec<u8>> {
    let mut k = Vec::new();
    keys::encode_values(&mut k, std::slice::from_ref(col), row)?;
    Ok(k)
}

/// Folds one group's rows into one aggregate's state.
#[allow(clippy::too_many_arguments)]
fn fold(t: &ViewTarget<'_>, spec: &AggSpec, a: usize, gk: &[u8], sides: &[Inputs], rows: &[(usize, usize)], st: &mut AggState, ws: &mut WriteSet) -> Result<()> {
    let mut multiset: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
    for &(s, row) in rows {
        let side = &sides[s];
        let input = &side.per_agg[a];
        let sign = side.sign;
        if let Some(m) = &input.mask {
            if !(m.is_valid(row) && m.value(row)) {
                continue;
            }
        }
        let valid = input.values.as_ref().is_none_or(|v| v.is_valid(row));
        match (&spec.kind, &mut *st) {
            (AggKind::CountStar, AggState::Count(c)) => *c += sign,
            (AggKind::Count, AggState::Count(c)) if valid => *c += sign,
            (AggKind::Sum(kind) | AggKind::Avg(kind), _) if valid => {
                let (exact, float) = match kind {
                    NumKind::Int => (input.int.as_ref().map_or(0, |a| a.value(row) as i128), 0.0),
                    NumKind::Float => (0, input.float.as_ref().map_or(0.0, |a| a.value(row))),
                    NumKind::Decimal(_) => (input.values.as_ref().map_or(0, |v| v.as_primitive::<Decimal128Type>().value(row)), 0.0),
                };
                st.add_number(sign, exact, float);
            }
            (AggKind::Var { .. }, _) if valid => {
                let x = input.float.as_ref().map_or(0.0, |a| a.value(row));
                st.add_number(sign, 0, x);
            }
            (AggKind::BoolAnd | AggKind::BoolOr, AggState::Bool { t: tc, f: fc }) if valid => {
                if let Some(v) = &input.values {
                    if v.as_boolean().value(row) {
                        *tc += sign;
                    } else {
                        *fc += sign;
                    }
                }
            }
            (AggKind::Min | AggKind::Max | AggKind::CountDistinct, _) if valid => {
                if let Some(v) = &input.values {
                    let key = encode_one(v, row)?;
                    match st {
                        AggState::Extreme(_) => st.offer(&key, matches!(spec.kind, AggKind::Max)),
                        _ => *multiset.entry(key).or_default() += sign,
                    }
                }
            }
            (AggKind::Latest { last, .. }, _) => {
                let (Some(o), Some(v)) = (&input.order, &input.values) else { continue };
                if o.is_null(row) {
                    continue;
                }
                let mut key = encode_one(o, row)?;
                key.extend(encode_one(v, row)?);
                match st {
                    AggState::Extreme(_) => st.offer(&key, *last),
                    _ => *multiset.entry(key).or_default() += sign,
                }
            }
            _ => {}
        }
    }
    if multiset.is_empty() {
        return Ok(());
    }
    let prefix = state::values_prefix(t.id, a, gk);
    let entry_keys: Vec<Vec<u8>> = multiset.keys().map(|v| {
        let mut k = prefix.clone();
        k.extend_from_slice(v);
        k
    }).collect();
    let counts = t.store.multi_get(Cf::ViewState, &entry_keys)?;
    let mut zeroed: Vec<Vec<u8>> = Vec::new();
    let mut present: Vec<&Vec<u8>> = Vec::new();
    let mut distinct_delta = 0i64;
    for ((value, delta), (key, count)) in multiset.iter().zip(entry_keys.into_iter().zip(counts)) {
        let before = match count {
            Some(b) => i64::from_le_bytes(b.as_slice().try_into().map_err(|_| ViewError::Storage(nowdb_storage::StorageError::Corrupt("view multiset count".into())))?),
            None => 0,
        };
        let after = before + delta;
        if after > 0 {
            ws.put(Cf::ViewState, key, after.to_le_bytes().to_vec());
            present.push(value);
            if before <= 0 {
                distinct_delta += 1;
            }
        } else {
            ws.delete(Cf::ViewState, key);
            if before > 0 {
                distinct_delta -= 1;
                zeroed.push(value.clone());
            }
        }
    }
    match st {
        AggState::Values(n) => *n += distinct_delta,
        AggState::Multi(best) => {
            let greatest = matches!(spec.kind, AggKind::Max | AggKind::Latest { last: true, .. });
            let pick = |a: Option<Vec<u8>>, b: Option<&Vec<u8>>| -> Option<Vec<u8>> {
                match (a, b) {
                    (None, b) => b.cloned(),
                    (a, None) => a,
                    (Some(a), Some(b)) => Some(if (greatest && b > &a) || (!greatest && b < &a) { b.clone() } else { a }),
                }
            };
            let from_batch = if greatest { present.iter().copied().max() } else { present.iter().copied().min() };
            let kept = match best.take() {
                Some(b) if !zeroed.contains(&b) => Some(b),
                Some(_) => stored_extreme(t, &prefix, &zeroed, greatest)?,
                None => None,
            };
            *best = pick(kept, from_batch);
        }
        _ => {}
    }
    Ok(())
}

/// The least (or greatest) stored value of a multiset, skipping values this batch removed.
fn stored_extreme(t: &ViewTarget<'_>, prefix: &[u8], zeroed: &[Vec<u8>], greatest: bool) -> Result<Option<Vec<u8>>> {
    let end = state::prefix_end(prefix);
    let mut found = None;
    let mut visit = |k: &[u8], _: &[u8]| {
        let value = &k[prefix.len()..];
        if zeroed.iter().any(|z| z.as_slice() == value) {
            return Ok(ScanControl::Continue);
        }
        found = Some(value.to_vec());
        Ok(ScanControl::Stop)
    };
    if greatest {
        t.store.scan_rev(Cf::ViewState, prefix, &end, &mut visit)?;
    } else {
        t.store.scan(Cf::ViewState, prefix, &end, &mut visit)?;
    }
    Ok(found)
}

/// The row of a global aggregate (no GROUP BY) over no input: written when the view is
/// created, since SQL returns that one row even for an empty table.
pub fn init_global(t: &ViewTarget<'_>, ws: &mut WriteSet, applied: &mut Applied) -> Result<()> {
    let Shape::Aggregate(agg) = &t.plan.shape else { return Ok(()) };
    let exists = match state_in_row(agg) {
        true => t.store.get(Cf::Rows, &row_key(t.id, &[]))?.is_some(),
        false => t.store.get(Cf::ViewState, &state::group_key(t.id, &[]))?.is_some(),
    };
    if !agg.group.is_empty() || exists {
        return Ok(());
    }
    let empty = GroupState::empty(&agg.aggs);
    let row = agg.aggs.iter().zip(&empty.aggs).map(|(spec, s)| finalize(spec, s)).collect::<Result<Vec<_>>>()?;
    if !state_in_row(agg) {
        ws.put(Cf::ViewState, state::group_key(t.id, &[]), empty.encode());
    }
    // It exists from the beginning of time.
    let added = output_rows(t, agg, vec![row], vec![(Vec::new(), i64::MIN)])?;
    write_rows(t, None, added, state_in_row(agg).then(|| vec![empty.encode()]), ws, applied)
}
