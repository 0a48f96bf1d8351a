//! Choosing how to read a table from the pushed-down filters.

use std::collections::HashMap;
use std::fmt;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
use datafusion::scalar::ScalarValue;
use nowdb_storage::{keys, ColumnRange};

use crate::catalog::Table;

/// Most keys a point read will fetch before a scan is cheaper to plan.
const MAX_POINT_KEYS: usize = 10_000;

/// How a scan reads its table.
#[derive(Debug, Clone)]
pub enum Access {
    /// Multi-get these encoded primary keys (keyed tables).
    Keys(Vec<Vec<u8>>),
    /// Every row of a keyed table, in key order.
    AllRows,
    /// The append log, skipping batches whose statistics contradict `bounds`.
    Log {
        /// Per column index: the allowed range.
        bounds: Vec<(usize, Bound)>,
    },
    /// A view's history (see [`super::history`]).
    History(HistoryRead),
}

/// What a read of a view's history returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryRead {
    /// The rows as they were at this event time (microseconds).
    AsOf(i64),
    /// Every version, with the columns `valid_from` and `valid_to` appended.
    Versions,
    /// Every change as stored, with `valid_from` and `ended` appended (temporal joins).
    Changes,
}

/// An inclusive range constraint on one column, in the column's physical unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    /// Lowest allowed value.
    pub lo: f64,
    /// Highest allowed value.
    pub hi: f64,
}

impl Bound {
    /// Whether a stored batch with this column range may hold a matching row.
    pub fn may_match(&self, range: &ColumnRange) -> bool {
        let (lo, hi) = match *range {
            ColumnRange::Int(lo, hi) => (lo as f64, hi as f64),
            ColumnRange::Float(lo, hi) => (lo, hi),
        };
        hi >= self.lo && lo <= self.hi
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Access::Keys(k) => write!(f, "point_lookup keys={}", k.len()),
            Access::AllRows => write!(f, "full_scan"),
            Access::Log { bounds } if bounds.is_empty() => write!(f, "log_scan"),
            Access::Log { bounds } => write!(f, "log_scan pruning_columns={}", bounds.len()),
            Access::History(HistoryRead::AsOf(t)) => write!(f, "history as_of={t}"),
            Access::History(HistoryRead::Versions) => write!(f, "history versions"),
            Access::History(HistoryRead::Changes) => write!(f, "history changes"),
        }
    }
}

impl Access {
    /// Picks the access path for `table` given the conjunctive `filters`.
    pub fn choose(table: &Table, filters: &[Expr]) -> Access {
        let mut conjuncts = Vec::new();
        for f in filters {
            split_and(f, &mut conjuncts);
        }
        if table.is_keyed() {
            if table.def().primary_key().is_empty() {
                return Access::AllRows;
            }
            match point_keys(table, &conjuncts) {
                Some(keys) => Access::Keys(keys),
                None => Access::AllRows,
            }
        } else {
            Access::Log { bounds: log_bounds(table, &conjuncts) }
        }
    }
}

/// The conjuncts of `e` (`a AND b AND c` gives `a`, `b`, `c`), appended to `out`.
pub fn split_and<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::And, right }) => {
            split_and(left, out);
            split_and(right, out);
        }
        other => out.push(other),
    }
}

fn column_name(e: &Expr) -> Option<&str> {
    match e {
        Expr::Column(c) => Some(c.name.as_str()),
        _ => None,
    }
}

fn literal(e: &Expr) -> Option<&ScalarValue> {
    match e {
        Expr::Literal(v, _) if !v.is_null() => Some(v),
        _ => None,
    }
}

/// `column <op> literal` or `literal <op> column`: the column's name and the literal.
fn column_vs_literal<'a>(left: &'a Expr, right: &'a Expr) -> Option<(&'a str, &'a ScalarValue)> {
    match (column_name(left), literal(right), column_name(right), literal(left)) {
        (Some(c), Some(v), _, _) | (_, _, Some(c), Some(v)) => Some((c, v)),
        _ => None,
    }
}

/// Equality candidates per column name: `col = lit`, `lit = col`, `col IN (lits)`.
fn equalities<'a>(conjuncts: &[&'a Expr]) -> HashMap<&'a str, Vec<ScalarValue>> {
    let mut out: HashMap<&str, Vec<ScalarValue>> = HashMap::new();
    for e in conjuncts {
        match e {
            Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) => {
                if let Some((c, v)) = column_vs_literal(left, right) {
                    let v = v.clone();
                    // Two equalities on one column: keep the intersection.
                    match out.get_mut(c) {
                        Some(existing) => existing.retain(|x| *x == v),
                        None => {
                            out.insert(c, vec![v]);
                        }
                    }
                }
            }
            Expr::BinaryExpr(BinaryExpr { op: Operator::Or, .. }) => {
                // `c = 1 OR c = 2` (how DataFusion rewrites short IN lists).
                if let Some((c, values)) = or_equalities(e) {
                    if !out.contains_key(c) {
                        out.insert(c, values);
                    }
                }
            }
            Expr::InList(list) if !list.negated => {
                if let Some(c) = column_name(&list.expr) {
                    let values: Option<Vec<ScalarValue>> =
                        list.list.iter().map(|v| literal(v).cloned()).collect();
                    if let (Some(values), false) = (values, out.contains_key(c)) {
                        out.insert(c, values);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn or_equalities(e: &Expr) -> Option<(&str, Vec<ScalarValue>)> {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Or, right }) => {
            let (lc, mut lv) = or_equalities(left)?;
            let (rc, rv) = or_equalities(right)?;
            (lc == rc).then(|| {
                lv.extend(rv);
                (lc, lv)
            })
        }
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) => {
            column_vs_literal(left, right).map(|(c, v)| (c, vec![v.clone()]))
        }
        _ => None,
    }
}

fn point_keys(table: &Table, conjuncts: &[&Expr]) -> Option<Vec<Vec<u8>>> {
    let def = table.def();
    let eq = equalities(conjuncts);
    let mut per_column: Vec<ArrayRef> = Vec::new();
    let mut total = 1usize;
    for &i in def.primary_key() {
        let values = eq.get(def.columns[i].name.as_str())?;
        let target = table.schema().field(i).data_type();
        let cast: Option<Vec<ScalarValue>> = values.iter().map(|v| cast_exact(v, target)).collect();
        let cast = cast?;
        total = total.checked_mul(cast.len().max(1))?;
        if total > MAX_POINT_KEYS {
            return None;
        }
        per_column.push(ScalarValue::iter_to_array(cast).ok()?);
    }
    // Cartesian product of the candidate values, key order.
    let mut combos: Vec<Vec<usize>> = vec![vec![]];
    for col in &per_column {
        combos = combos
            .into_iter()
            .flat_map(|c| (0..col.len()).map(move |i| {
                let mut c = c.clone();
                c.push(i);
                c
            }))
            .collect();
    }
    let mut out = Vec::with_capacity(combos.len());
    for combo in combos {
        let cols: Vec<ArrayRef> = combo
            .iter()
            .zip(&per_column)
            .map(|(&i, col)| col.slice(i, 1))
            .collect();
        out.push(keys::row_key(def.id, &cols, 0).ok()?);
    }
    out.sort();
    out.dedup();
    Some(out)
}

/// Casts a literal to the column type only when the value survives unchanged.
pub(crate) fn cast_exact(v: &ScalarValue, target: &DataType) -> Option<ScalarValue> {
    if v.data_type() == *target {
        return Some(v.clone());
    }
    let cast = v.cast_to(target).ok()?;
    let back = cast.cast_to(&v.data_type()).ok()?;
    (back == *v && !cast.is_null()).then_some(cast)
}

fn log_bounds(table: &Table, conjuncts: &[&Expr]) -> Vec<(usize, Bound)> {
    let mut bounds: HashMap<usize, Bound> = HashMap::new();
    for e in conjuncts {
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else { continue };
        let (col, op, lit) = match (column_name(left), literal(right), column_name(right), literal(left)) {
            (Some(c), Some(v), _, _) => (c, *op, v),
            (_, _, Some(c), Some(v)) => match op.swap() {
                Some(op) => (c, op, v),
                None => continue,
            },
            _ => continue,
        };
        let Some(idx) = table.def().column_index(col) else { continue };
        let target = table.schema().field(idx).data_type();
        let Some(value) = cast_exact(lit, target).as_ref().and_then(numeric_value) else { continue };
        let b = bounds.entry(idx).or_insert(Bound { lo: f64::NEG_INFINITY, hi: f64::INFINITY });
        match op {
            Operator::Eq => {
                b.lo = b.lo.max(value);
                b.hi = b.hi.min(value);
            }
            Operator::Gt | Operator::GtEq => b.lo = b.lo.max(value),
            Operator::Lt | Operator::LtEq => b.hi = b.hi.min(value),
            _ => {}
        }
    }
    let mut out: Vec<(usize, Bound)> = bounds
        .into_iter()
        .filter(|(_, b)| b.lo.is_finite() || b.hi.is_finite())
        .collect();
    out.sort_by_key(|(i, _)| *i);
    out
}

fn numeric_value(v: &ScalarValue) -> Option<f64> {
    Some(match v {
        ScalarValue::Int8(Some(x)) => *x as f64,
        ScalarValue::Int16(Some(x)) => *x as f64,
        ScalarValue::Int32(Some(x)) => *x as f64,
        ScalarValue::Int64(Some(x)) => *x as f64,
        ScalarValue::Float32(Some(x)) => *x as f64,
        ScalarValue::Float64(Some(x)) => *x,
        ScalarValue::Date32(Some(x)) => *x as f64,
        ScalarValue::TimestampSecond(Some(x), _)
        | ScalarValue::TimestampMillisecond(Some(x), _)
        | ScalarValue::TimestampMicrosecond(Some(x), _)
        | ScalarValue::TimestampNanosecond(Some(x), _) => *x as f64,
        _ => return None,
    })
}
