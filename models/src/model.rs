//! [`Model`]: one loaded version of a model, and scoring a batch of SQL arguments with it.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{new_null_array, Array, ArrayRef, AsArray, UInt32Array};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type, Int32Type, Int64Type};
use tracing::debug_span;

use crate::session::{InputBuffer, ModelSession, SessionOptions};
use crate::signature::{Element, Signature};
use crate::stats::ModelStats;
use crate::ModelError;

/// A model version, ready to score.
#[derive(Debug)]
pub struct Model {
    name: String,
    version: u64,
    size: usize,
    session: ModelSession,
    stats: ModelStats,
}

impl Model {
    /// Loads version `version` of model `name` from its ONNX bytes.
    pub fn load(name: &str, version: u64, bytes: Arc<[u8]>, options: SessionOptions) -> Result<Arc<Model>, ModelError> {
        let size = bytes.len();
        let session = ModelSession::open(name, bytes, options)?;
        Ok(Arc::new(Model { name: name.to_string(), version, size, session, stats: ModelStats::default() }))
    }

    /// The model's (function's) name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its version (1 for the first CREATE, then +1 per CREATE OR REPLACE).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Size of the ONNX file in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// How it is called.
    pub fn signature(&self) -> &Signature {
        self.session.signature()
    }

    /// Its sessions (device, options).
    pub fn session(&self) -> &ModelSession {
        &self.session
    }

    /// Its counters.
    pub fn stats(&self) -> &ModelStats {
        &self.stats
    }

    /// Scores `rows` rows: `args` are the SQL arguments (numeric; each is cast to its
    /// input's element type). Rows with a NULL argument are not sent to the model and get
    /// NULL; the others go in one run.
    pub fn score(&self, args: &[ArrayRef], rows: usize) -> Result<ArrayRef, ModelError> {
        let sig = self.signature();
        if args.len() != sig.arity() {
            return Err(ModelError::WrongArity {
                name: self.name.clone(),
                given: format!("{} arguments", args.len()),
                signature: crate::signature::Display(&self.name, sig).to_string(),
            });
        }
        // Rows with a NULL argument are left out; `None` when there is none (the usual case).
        let valid: Option<Vec<u32>> = if args.iter().any(|a| a.null_count() > 0) {
            Some((0..rows).filter(|r| args.iter().all(|a| a.is_valid(*r))).map(|r| r as u32).collect())
        } else {
            None
        };
        let scored = valid.as_ref().map_or(rows, Vec::len);
        if scored == 0 {
            return Ok(new_null_array(&sig.return_type(), rows));
        }
        let mut buffers = Vec::with_capacity(sig.inputs.len());
        let mut arg = 0;
        for input in &sig.inputs {
            let columns: Vec<ArrayRef> = args[arg..arg + input.width]
                .iter()
                .map(|a| cast(a, &input.element.data_type()))
                .collect::<Result<_, _>>()
                .map_err(|e| ModelError::Run { name: self.name.clone(), message: e.to_string() })?;
            let rows_of = |i: usize| valid.as_ref().map_or(i, |v| v[i] as usize);
            let non_finite = |pos: usize, v: f64| ModelError::NonFinite {
                name: self.name.clone(),
                position: arg + pos % input.width + 1,
                row: rows_of(pos / input.width) + 1,
                value: if v.is_nan() { "NaN".into() } else if v > 0.0 { "Infinity".into() } else { "-Infinity".into() },
            };
            let buf = match input.element {
                Element::F32 => {
                    let v = interleave(&columns.iter().map(|c| c.as_primitive::<Float32Type>().values().as_ref()).collect::<Vec<_>>(), valid.as_deref(), rows);
                    if let Some(pos) = v.iter().position(|x| !x.is_finite()) {
                        return Err(non_finite(pos, v[pos] as f64));
                    }
                    InputBuffer::F32(v)
                }
                Element::F64 => {
                    let v = interleave(&columns.iter().map(|c| c.as_primitive::<Float64Type>().values().as_ref()).collect::<Vec<_>>(), valid.as_deref(), rows);
                    if let Some(pos) = v.iter().position(|x| !x.is_finite()) {
                        return Err(non_finite(pos, v[pos]));
                    }
                    InputBuffer::F64(v)
                }
                Element::I64 => InputBuffer::I64(interleave(&columns.iter().map(|c| c.as_primitive::<Int64Type>().values().as_ref()).collect::<Vec<_>>(), valid.as_deref(), rows)),
                Element::I32 => InputBuffer::I32(interleave(&columns.iter().map(|c| c.as_primitive::<Int32Type>().values().as_ref()).collect::<Vec<_>>(), valid.as_deref(), rows)),
            };
            buffers.push(buf);
            arg += input.width;
        }
        let started = Instant::now();
        let out = {
            let _span = debug_span!("model_run", model = %self.name, version = self.version, rows = scored).entered();
            let long = self.stats.expected_micros(scored).map_or(scored >= LONG_RUN_ROWS, |us| us >= LONG_RUN_MICROS);
            run_off_async(long, || self.session.run(buffers, scored))?
        };
        self.stats.record(scored, started.elapsed());
        let Some(valid) = valid else { return Ok(out) };
        // Scatter back: row r takes result i where valid[i] == r, NULL elsewhere.
        let mut positions: Vec<Option<u32>> = vec![None; rows];
        for (i, &r) in valid.iter().enumerate() {
            positions[r as usize] = Some(i as u32);
        }
        take(&out, &UInt32Array::from(positions), None).map_err(|e| ModelError::Run { name: self.name.clone(), message: e.to_string() })
    }
}

/// Row-major values of `columns` (one per argument of an input) for the rows `valid` (all
/// `rows` when `None`): what an `[N, k]` tensor holds.
fn interleave<T: Copy>(columns: &[&[T]], valid: Option<&[u32]>, rows: usize) -> Vec<T> {
    let width = columns.len();
    let mut out = Vec::with_capacity(valid.map_or(rows, <[u32]>::len) * width);
    match (valid, columns) {
        (None, [only]) => out.extend_from_slice(&only[..rows]),
        (None, _) => {
            for r in 0..rows {
                out.extend(columns.iter().map(|c| c[r]));
            }
        }
        (Some(valid), _) => {
            for &r in valid {
                out.extend(columns.iter().map(|c| c[r as usize]));
            }
        }
    }
    out
}

/// Whether an Arrow type can be a model argument.
pub fn is_numeric(dt: &DataType) -> bool {
    dt.is_numeric() || matches!(dt, DataType::Null | DataType::Boolean)
}

/// The element type an argument is cast to.
pub fn argument_type(sig: &Signature, position: usize) -> Option<Element> {
    let mut start = 0;
    for i in &sig.inputs {
        if position < start + i.width {
            return Some(i.element);
        }
        start += i.width;
    }
    None
}

/// A run expected to take this long (microseconds, from the model's mean per row) is a long
/// one; see [`run_off_async`].
const LONG_RUN_MICROS: f64 = 5_000.0;
/// Before the first run of a model, a batch of this many rows counts as a long run.
const LONG_RUN_ROWS: usize = 1024;

/// Runs inference so that a long run does not stall the async runtime: on a multi-threaded
/// tokio runtime a long run goes through `block_in_place` (the worker's other tasks move to
/// another thread meanwhile). Short runs (request-time scoring: microseconds; a small model's
/// 8192-row batch: under a millisecond, like any other operator's work on a batch) run in
/// place: handing the worker off costs a thread wake-up per batch.
fn run_off_async<T>(long: bool, f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if long && h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}
