//! Aggregates maintained under inserts *and* retractions, and their per-group state.
//!
//! Counts, sums, averages, variances and boolean aggregates keep constant-size state that a
//! retraction can undo. `min`/`max`/`first_value`/`last_value` over append-only input keep
//! just the extreme value; over input that can be retracted (keyed tables, joins, views) they
//! keep the multiset of values in the view's state (one RocksDB entry per distinct value,
//! ordered by value), so deleting the current minimum finds the next one. `count(DISTINCT)`
//! keeps the same multiset and counts its keys.

use datafusion::arrow::datatypes::DataType;
use datafusion::scalar::ScalarValue;
use nowdb_storage::{keys, StorageError};

use crate::plan::PhysExpr;
use crate::Result;

/// How a numeric aggregate adds its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumKind {
    /// Integers, summed exactly in 128 bits.
    Int,
    /// Floating point.
    Float,
    /// Decimals, summed exactly as unscaled 128-bit integers of this scale.
    Decimal(i8),
}

impl NumKind {
    /// The kind for an input type.
    pub fn of(dt: &DataType) -> Result<Self> {
        Ok(match dt {
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 | DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => NumKind::Int,
            DataType::Float16 | DataType::Float32 | DataType::Float64 | DataType::Null => NumKind::Float,
            DataType::Decimal128(_, s) => NumKind::Decimal(*s),
            other => {
                return Err(crate::ViewError::InvalidDefinition(format!("cannot sum or average values of type {other}")))
            }
        })
    }
}

/// The aggregate functions the engine maintains.
#[derive(Debug, Clone)]
pub enum AggKind {
    /// `count(*)`
    CountStar,
    /// `count(x)`
    Count,
    /// `count(DISTINCT x)`
    CountDistinct,
    /// `sum(x)`
    Sum(NumKind),
    /// `avg(x)`
    Avg(NumKind),
    /// `min(x)`
    Min,
    /// `max(x)`
    Max,
    /// `var_samp`/`var_pop`/`stddev_samp`/`stddev_pop`.
    Var {
        /// Population (n) rather than sample (n - 1) denominator.
        population: bool,
        /// Square root (standard deviation).
        sqrt: bool,
    },
    /// `bool_and(x)`
    BoolAnd,
    /// `bool_or(x)`
    BoolOr,
    /// `last_value(x ORDER BY t)` (or `first_value`, or DESC): the value at the greatest
    /// (`last`) or least order key.
    Latest {
        /// Greatest order key wins.
        last: bool,
        /// The ORDER BY expression.
        order: PhysExpr,
        /// Its type.
        order_type: DataType,
    },
}

/// One aggregate of a view.
#[derive(Debug, Clone)]
pub struct AggSpec {
    /// Which function.
    pub kind: AggKind,
    /// Argument expressions (none for `count(*)`).
    pub args: Vec<PhysExpr>,
    /// `FILTER (WHERE ...)`.
    pub filter: Option<PhysExpr>,
    /// The argument's type.
    pub input_type: DataType,
    /// The result type DataFusion gives the aggregate.
    pub output_type: DataType,
    /// Whether the state is a value multiset in storage.
    pub needs_values: bool,
}

/// One aggregate's state in one group.
#[derive(Debug, Clone, PartialEq)]
pub enum AggState {
    /// Counts.
    Count(i64),
    /// Sums and averages: non-NULL inputs, integer/decimal sum, float sum.
    Sum {
        /// Non-NULL inputs.
        n: i64,
        /// Exact sum (integers, unscaled decimals).
        exact: i128,
        /// Float sum.
        float: f64,
    },
    /// Welford's running variance.
    Var {
        /// Non-NULL inputs.
        n: i64,
        /// Mean.
        mean: f64,
        /// Sum of squared deviations.
        m2: f64,
    },
    /// Boolean aggregates: TRUE and FALSE inputs.
    Bool {
        /// TRUE inputs.
        t: i64,
        /// FALSE inputs.
        f: i64,
    },
    /// Append-only extreme: the encoded winning value (for `Latest`: order key, value).
    Extreme(Option<Vec<u8>>),
    /// `count(DISTINCT)`: distinct values (the values themselves are a multiset in storage).
    Values(i64),
    /// Multiset-backed min/max/latest: the current winning entry (the multiset is in storage).
    Multi(Option<Vec<u8>>),
}

impl AggState {
    /// The state of an empty group.
    pub fn empty(spec: &AggSpec) -> Self {
        match &spec.kind {
            AggKind::CountStar | AggKind::Count => AggState::Count(0),
            AggKind::Sum(_) | AggKind::Avg(_) => AggState::Sum { n: 0, exact: 0, float: 0.0 },
            AggKind::Var { .. } => AggState::Var { n: 0, mean: 0.0, m2: 0.0 },
            AggKind::BoolAnd | AggKind::BoolOr => AggState::Bool { t: 0, f: 0 },
            AggKind::CountDistinct => AggState::Values(0),
            AggKind::Min | AggKind::Max | AggKind::Latest { .. } => {
                if spec.needs_values {
                    AggState::Multi(None)
                } else {
                    AggState::Extreme(None)
                }
            }
        }
    }

    /// Adds (`sign` 1) or retracts (`sign` -1) one non-NULL numeric input.
    pub fn add_number(&mut self, sign: i64, exact: i128, float: f64) {
        match self {
            AggState::Sum { n, exact: e, float: f } => {
                *n += sign;
                *e += sign as i128 * exact;
                *f += sign as f64 * float;
            }
            AggState::Var { n, mean, m2 } => {
                if sign > 0 {
                    *n += 1;
                    let d = float - *mean;
                    *mean += d / *n as f64;
                    *m2 += d * (float - *mean);
                } else if *n <= 1 {
                    *n = 0;
                    *mean = 0.0;
                    *m2 = 0.0;
                } else {
                    let d = float - *mean;
                    *n -= 1;
                    *mean -= d / *n as f64;
                    *m2 -= d * (float - *mean);
                    if *m2 < 0.0 {
                        *m2 = 0.0;
                    }
                }
            }
            _ => {}
        }
    }

    /// Offers an encoded value to an append-only extreme; `keep_greatest` for max/last.
    pub fn offer(&mut self, key: &[u8], keep_greatest: bool) {
        if let AggState::Extreme(cur) = self {
            let replace = match cur {
                None => true,
                Some(c) => {
                    if keep_greatest {
                        key >= c.as_slice()
                    } else {
                        key < c.as_slice()
                    }
                }
            };
            if replace {
                *cur = Some(key.to_vec());
            }
        }
    }
}

/// All aggregate states of one group, plus its row count.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupState {
    /// Input rows in the group (net of retractions).
    pub rows: i64,
    /// Per aggregate.
    pub aggs: Vec<AggState>,
}

impl GroupState {
    /// An empty group.
    pub fn empty(specs: &[AggSpec]) -> Self {
        Self { rows: 0, aggs: specs.iter().map(AggState::empty).collect() }
    }

    /// Binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.aggs.len() * 24);
        out.extend_from_slice(&self.rows.to_le_bytes());
        for a in &self.aggs {
            match a {
                AggState::Count(c) => {
                    out.push(0);
                    out.extend_from_slice(&c.to_le_bytes());
                }
                AggState::Sum { n, exact, float } => {
                    out.push(1);
                    out.extend_from_slice(&n.to_le_bytes());
                    out.extend_from_slice(&exact.to_le_bytes());
                    out.extend_from_slice(&float.to_le_bytes());
                }
                AggState::Var { n, mean, m2 } => {
                    out.push(2);
                    out.extend_from_slice(&n.to_le_bytes());
                    out.extend_from_slice(&mean.to_le_bytes());
                    out.extend_from_slice(&m2.to_le_bytes());
                }
                AggState::Bool { t, f } => {
                    out.push(3);
                    out.extend_from_slice(&t.to_le_bytes());
                    out.extend_from_slice(&f.to_le_bytes());
                }
                AggState::Extreme(v) => {
                    out.push(4);
                    put_opt(&mut out, v);
                }
                AggState::Values(n) => {
                    out.push(5);
                    out.extend_from_slice(&n.to_le_bytes());
                }
                AggState::Multi(v) => {
                    out.push(6);
                    put_opt(&mut out, v);
                }
            }
        }
        out
    }

    /// Decodes [`GroupState::encode`]'s bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { bytes, pos: 0 };
        let rows = r.i64()?;
        let mut aggs = Vec::new();
        while r.pos < bytes.len() {
            let tag = r.take(1)?[0];
            aggs.push(match tag {
                0 => AggState::Count(r.i64()?),
                1 => AggState::Sum { n: r.i64()?, exact: i128::from_le_bytes(r.arr()?), float: f64::from_le_bytes(r.arr()?) },
                2 => AggState::Var { n: r.i64()?, mean: f64::from_le_bytes(r.arr()?), m2: f64::from_le_bytes(r.arr()?) },
                3 => AggState::Bool { t: r.i64()?, f: r.i64()? },
                4 => AggState::Extreme(r.opt()?),
                5 => AggState::Values(r.i64()?),
                6 => AggState::Multi(r.opt()?),
                _ => return Err(corrupt()),
            });
        }
        Ok(Self { rows, aggs })
    }
}

fn put_opt(out: &mut Vec<u8>, v: &Option<Vec<u8>>) {
    match v {
        None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
        Some(v) => {
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v);
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let s = self.bytes.get(self.pos..self.pos + n).ok_or_else(corrupt)?;
        self.pos += n;
        Ok(s)
    }

    fn arr<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.take(N)?.try_into().map_err(|_| corrupt())
    }

    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.arr()?))
    }

    fn opt(&mut self) -> Result<Option<Vec<u8>>> {
        let len = u32::from_le_bytes(self.arr()?);
        if len == u32::MAX {
            Ok(None)
        } else {
            Ok(Some(self.take(len as usize)?.to_vec()))
        }
    }
}

fn corrupt() -> crate::ViewError {
    crate::ViewError::Storage(StorageError::Corrupt("view group state".into()))
}

/// Decodes an encoded value (see [`keys::encode_values`]) of `types`; returns the last one.
pub fn decode_last(bytes: &[u8], types: &[DataType]) -> Result<ScalarValue> {
    let (arrays, _) = keys::decode_values(bytes, types)?;
    let last = arrays.last().ok_or_else(corrupt)?;
    Ok(ScalarValue::try_from_array(last.as_ref(), 0)?)
}

/// The aggregate's value.
pub fn finalize(spec: &AggSpec, state: &AggState) -> Result<ScalarValue> {
    let out = &spec.output_type;
    let v = match (&spec.kind, state) {
        (AggKind::CountStar | AggKind::Count, AggState::Count(c)) => ScalarValue::Int64(Some(*c)),
        (AggKind::CountDistinct, AggState::Values(n)) => ScalarValue::Int64(Some(*n)),
        (AggKind::Sum(kind), AggState::Sum { n, exact, float }) => {
            if *n <= 0 {
                ScalarValue::try_from(out)?
            } else {
                match kind {
                    NumKind::Int => ScalarValue::Int64(Some(*exact as i64)),
                    NumKind::Float => ScalarValue::Float64(Some(*float)),
                    NumKind::Decimal(_) => match out {
                        DataType::Decimal128(p, s) => ScalarValue::Decimal128(Some(*exact), *p, *s),
                        _ => ScalarValue::Float64(Some(*exact as f64)),
                    },
                }
            }
        }
        (AggKind::Avg(kind), AggState::Sum { n, exact, float }) => {
            if *n <= 0 {
                ScalarValue::try_from(out)?
            } else {
                match (kind, out) {
                    (NumKind::Decimal(s_in), DataType::Decimal128(p, s_out)) => {
                        let shift = 10i128.pow((*s_out - *s_in).max(0) as u32);
                        ScalarValue::Decimal128(Some(exact * shift / *n as i128), *p, *s_out)
                    }
                    (NumKind::Int, _) => ScalarValue::Float64(Some(*exact as f64 / *n as f64)),
                    (NumKind::Decimal(s), _) => ScalarValue::Float64(Some(*exact as f64 / 10f64.powi(*s as i32) / *n as f64)),
                    (NumKind::Float, _) => ScalarValue::Float64(Some(*float / *n as f64)),
                }
            }
        }
        (AggKind::Var { population, sqrt }, AggState::Var { n, m2, .. }) => {
            let denom = if *population { *n } else { *n - 1 };
            if *n <= 0 || denom <= 0 {
                ScalarValue::Float64(None)
            } else {
                let var = m2 / denom as f64;
                ScalarValue::Float64(Some(if *sqrt { var.sqrt() } else { var }))
            }
        }
        (AggKind::BoolAnd, AggState::Bool { t, f }) => ScalarValue::Boolean((t + f > 0).then_some(*f == 0)),
        (AggKind::BoolOr, AggState::Bool { t, f }) => ScalarValue::Boolean((t + f > 0).then_some(*t > 0)),
        (AggKind::Min | AggKind::Max, AggState::Extreme(v) | AggState::Multi(v)) => match v {
            Some(v) => decode_last(v, std::slice::from_ref(&spec.input_type))?,
            None => ScalarValue::try_from(out)?,
        },
        (AggKind::Latest { order_type, .. }, AggState::Extreme(v) | AggState::Multi(v)) => match v {
            Some(v) => decode_last(v, &[order_type.clone(), spec.input_type.clone()])?,
            None => ScalarValue::try_from(out)?,
        },
        _ => return Err(corrupt()),
    };
    if v.data_type() == *out {
        Ok(v)
    } else {
        Ok(v.cast_to(out)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips() {
        let s = GroupState {
            rows: 3,
            aggs: vec![
                AggState::Count(3),
                AggState::Sum { n: 2, exact: -5, float: 1.5 },
                AggState::Var { n: 2, mean: 1.0, m2: 0.5 },
                AggState::Bool { t: 1, f: 0 },
                AggState::Extreme(Some(vec![1, 2, 3])),
                AggState::Extreme(None),
                AggState::Values(7),
                AggState::Multi(Some(vec![9])),
                AggState::Multi(None),
            ],
        };
        assert_eq!(GroupState::decode(&s.encode()).unwrap(), s);
        assert!(GroupState::decode(&[1, 2, 3]).is_err());
    }

    #[test]
    fn variance_retracts() {
        let mut v = AggState::Var { n: 0, mean: 0.0, m2: 0.0 };
        for x in [1.0, 2.0, 4.0, 8.0] {
            v.add_number(1, 0, x);
        }
        v.add_number(-1, 0, 8.0);
        let AggState::Var { n, mean, m2 } = v else { unreachable!() };
        assert_eq!(n, 3);
        assert!((mean - 7.0 / 3.0).abs() < 1e-9);
        let expected: f64 = [1.0f64, 2.0, 4.0].iter().map(|x| (x - 7.0 / 3.0).powi(2)).sum();
        assert!((m2 - expected).abs() < 1e-9);
    }
}
