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

    /// Scores `rows` rows: `args` are the SQL arguments, already of the element types the
    /// signature asks for (the function's type coercion casts them). Rows with a NULL
    /// argument are not sent to the model and get NULL; the others go in one run.
    pub fn score(&self, args: &[ArrayRef], rows: usize) -> Result<ArrayRef, ModelError> {
        let sig = self.signature();
        if args.len() != sig.arity() {
            return Err(ModelError::WrongArity {
                name: self.name.clone(),
                given: format!("{} arguments", args.len()),
                signature: crate::signature::Display(&self.name, sig).to_string(),
            });
        }
        let valid: Vec<u32> = (0..rows).filter(|r| args.iter().all(|a| a.is_valid(*r))).map(|r| r as u32).collect();
        if valid.is_empty() {
            return Ok(new_null_array(&sig.return_type(), rows));
        }
        let all_valid = valid.len() == rows;
        let mut buffers = Vec::with_capacity(sig.inputs.len());
        let mut arg = 0;
        for input in &sig.inputs {
            let columns: Vec<ArrayRef> = args[arg..arg + input.width]
                .iter()
                .map(|a| cast(a, &input.element.data_type()))
                .collect::<Result<_, _>>()
                .map_err(|e| ModelError::Run { name: self.name.clone(), message: e.to_string() })?;
            let mut buf = InputBuffer::with_capacity(input.element, valid.len() * input.width);
            for &r in &valid {
                for (j, col) in columns.iter().enumerate() {
                    self.push(&mut buf, col, r as usize, arg + j + 1)?;
                }
            }
            buffers.push(buf);
            arg += input.width;
        }
        let started = Instant::now();
        let out = {
            let _span = debug_span!("model_run", model = %self.name, version = self.version, rows = valid.len()).entered();
            run_off_async(|| self.session.run(buffers, valid.len()))?
        };
        self.stats.record(valid.len(), started.elapsed());
        if all_valid {
            return Ok(out);
        }
        // Scatter back: row r takes result i where valid[i] == r, NULL elsewhere.
        let mut positions: Vec<Option<u32>> = vec![None; rows];
        for (i, &r) in valid.iter().enumerate() {
            positions[r as usize] = Some(i as u32);
        }
        take(&out, &UInt32Array::from(positions), None).map_err(|e| ModelError::Run { name: self.name.clone(), message: e.to_string() })
    }

    fn push(&self, buf: &mut InputBuffer, col: &ArrayRef, r: usize, position: usize) -> Result<(), ModelError> {
        let non_finite = |v: f64| ModelError::NonFinite {
            name: self.name.clone(),
            position,
            row: r + 1,
            value: if v.is_nan() { "NaN".into() } else if v > 0.0 { "Infinity".into() } else { "-Infinity".into() },
        };
        match buf {
            InputBuffer::F32(v) => {
                let x = col.as_primitive::<Float32Type>().value(r);
                if !x.is_finite() {
                    return Err(non_finite(x as f64));
                }
                v.push(x);
            }
            InputBuffer::F64(v) => {
                let x = col.as_primitive::<Float64Type>().value(r);
                if !x.is_finite() {
                    return Err(non_finite(x));
                }
                v.push(x);
            }
            InputBuffer::I64(v) => v.push(col.as_primitive::<Int64Type>().value(r)),
            InputBuffer::I32(v) => v.push(col.as_primitive::<Int32Type>().value(r)),
        }
        Ok(())
    }
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

/// Runs CPU-heavy inference so that it does not stall the async runtime: on a multi-threaded
/// tokio runtime the worker hands its other tasks off for the duration (`block_in_place`);
/// elsewhere (plain threads, tests) it simply runs.
fn run_off_async<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}
