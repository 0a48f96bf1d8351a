//! [`ModelSession`]: ONNX Runtime sessions of one model version, and one batched run.
//!
//! ONNX Runtime's `Run` is not safe to call concurrently on one session (`ort` takes
//! `&mut Session`), so a model version keeps a small pool: a run takes an idle session, or
//! creates one while fewer than the machine's cores exist, or waits for one. Sessions are made
//! from the stored bytes once and reused by every query until the version is replaced.

use std::sync::{Arc, Condvar, Mutex};

use datafusion::arrow::array::{ArrayRef, Float32Array, Float64Array, Int32Array, Int64Array, ListArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field};
use ort::ep::ExecutionProvider;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{Session, SessionOutputs};
use ort::value::{DynMapValueType, DynValue, Tensor};
use tracing::warn;

use crate::runtime::Runtime;
use crate::signature::{Element, Output, OutputKind, Signature};
use crate::ModelError;

/// Where a model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// ONNX Runtime's CPU execution provider.
    #[default]
    Cpu,
    /// The CUDA execution provider (`onnxruntime-gpu`); an error where it is missing.
    Cuda,
    /// CUDA where available, else CPU (with a warning).
    Auto,
}

impl Device {
    /// Parses `cpu`, `cuda` or `auto`.
    pub fn parse(s: &str) -> Result<Device, ModelError> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda),
            "auto" => Ok(Device::Auto),
            other => Err(ModelError::InvalidOption(format!("invalid device \"{other}\": expected 'cpu', 'cuda' or 'auto'"))),
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
            Device::Auto => "auto",
        }
    }
}

/// How sessions of a model are made.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionOptions {
    /// Requested device.
    pub device: Device,
    /// Intra-op threads per run; `None` is one. A query already scores its partitions in
    /// parallel, and ONNX Runtime's spinning thread pool only pays for large single runs.
    pub threads: Option<usize>,
    /// The output to return (see [`Signature`]).
    pub output: Option<String>,
}

/// One argument column of a batch, converted to a model input's element type, row-major.
#[derive(Debug)]
pub enum InputBuffer {
    /// float32 values.
    F32(Vec<f32>),
    /// float64 values.
    F64(Vec<f64>),
    /// int64 values.
    I64(Vec<i64>),
    /// int32 values.
    I32(Vec<i32>),
}

impl InputBuffer {
    /// An empty buffer for `element` with room for `n` values.
    pub fn with_capacity(element: Element, n: usize) -> Self {
        match element {
            Element::F32 => InputBuffer::F32(Vec::with_capacity(n)),
            Element::F64 => InputBuffer::F64(Vec::with_capacity(n)),
            Element::I64 => InputBuffer::I64(Vec::with_capacity(n)),
            Element::I32 => InputBuffer::I32(Vec::with_capacity(n)),
        }
    }

    fn into_value(self, shape: Vec<i64>) -> ort::Result<DynValue> {
        Ok(match self {
            InputBuffer::F32(v) => Tensor::from_array((shape, v))?.into_dyn(),
            InputBuffer::F64(v) => Tensor::from_array((shape, v))?.into_dyn(),
            InputBuffer::I64(v) => Tensor::from_array((shape, v))?.into_dyn(),
            InputBuffer::I32(v) => Tensor::from_array((shape, v))?.into_dyn(),
        })
    }
}

/// The sessions of one model version.
#[derive(Debug)]
pub struct ModelSession {
    name: String,
    bytes: Arc<[u8]>,
    options: SessionOptions,
    runtime: Arc<Runtime>,
    /// What the sessions actually run on.
    device: Device,
    signature: Signature,
    /// Most sessions made (one per core: more would only queue on the CPUs).
    max_sessions: usize,
    pool: Mutex<Pool>,
    returned: Condvar,
}

#[derive(Debug)]
struct Pool {
    idle: Vec<Session>,
    created: usize,
}

impl ModelSession {
    /// Loads `bytes` as model `name`: creates its first session (which validates the graph)
    /// and reads its signature.
    pub fn open(name: &str, bytes: Arc<[u8]>, options: SessionOptions) -> Result<ModelSession, ModelError> {
        let runtime = Runtime::get()?;
        let (session, device) = create(&runtime, name, &bytes, &options)?;
        let signature = Signature::from_graph(name, session.inputs(), session.outputs(), options.output.as_deref())?;
        Ok(ModelSession {
            name: name.to_string(),
            bytes,
            options,
            runtime,
            device,
            signature,
            max_sessions: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).max(1),
            pool: Mutex::new(Pool { idle: vec![session], created: 1 }),
            returned: Condvar::new(),
        })
    }

    /// How the model is called.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// What the sessions run on (`cpu` where `auto` fell back).
    pub fn device(&self) -> Device {
        self.device
    }

    /// The options it was created with.
    pub fn options(&self) -> &SessionOptions {
        &self.options
    }

    /// Runs one batch of `rows` rows: one buffer per graph input, each `rows x width`
    /// values. Returns the chosen output as an Arrow array of `rows` values.
    pub fn run(&self, inputs: Vec<InputBuffer>, rows: usize) -> Result<ArrayRef, ModelError> {
        let run_err = |e: ort::Error| ModelError::Run { name: self.name.clone(), message: e.to_string() };
        let mut values: Vec<(String, DynValue)> = Vec::with_capacity(inputs.len());
        for (buf, spec) in inputs.into_iter().zip(&self.signature.inputs) {
            let shape = if spec.rank == 1 { vec![rows as i64] } else { vec![rows as i64, spec.width as i64] };
            values.push((spec.name.clone(), buf.into_value(shape).map_err(run_err)?));
        }
        let mut session = self.checkout()?;
        let result = session.run(values).map_err(run_err).and_then(|out| read_output(&self.name, &out, &self.signature.output, rows));
        self.checkin(session);
        result
    }

    fn checkout(&self) -> Result<Session, ModelError> {
        let max = self.max_sessions;
        let mut pool = self.pool.lock().map_err(|_| self.poisoned())?;
        loop {
            if let Some(s) = pool.idle.pop() {
                return Ok(s);
            }
            if pool.created < max {
                pool.created += 1;
                drop(pool);
                return match create(&self.runtime, &self.name, &self.bytes, &self.options) {
                    Ok((s, _)) => Ok(s),
                    Err(e) => {
                        if let Ok(mut p) = self.pool.lock() {
                            p.created -= 1;
                        }
                        Err(e)
                    }
                };
            }
            pool = self.returned.wait(pool).map_err(|_| self.poisoned())?;
        }
    }

    fn checkin(&self, session: Session) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.idle.push(session);
            self.returned.notify_one();
        }
    }

    fn poisoned(&self) -> ModelError {
        ModelError::Run { name: self.name.clone(), message: "session pool lock poisoned".into() }
    }
}

/// Creates one session, on the requested device.
fn create(runtime: &Runtime, name: &str, bytes: &[u8], options: &SessionOptions) -> Result<(Session, Device), ModelError> {
    let load_err = |e: ort::Error| classify_load_error(name, e.to_string());
    let mut builder = Session::builder(runtime.environment())
        .map_err(load_err)?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| load_err(e.into()))?
        .with_inter_threads(1)
        .map_err(|e| load_err(e.into()))?;
    builder = builder.with_intra_threads(options.threads.unwrap_or(1)).map_err(|e| load_err(e.into()))?;
    let device = match options.device {
        Device::Cpu => Device::Cpu,
        Device::Cuda => {
            ort::ep::CUDA::default()
                .register(&mut builder)
                .map_err(|e| ModelError::CudaUnavailable { name: name.to_string(), reason: e.to_string() })?;
            Device::Cuda
        }
        Device::Auto => match ort::ep::CUDA::default().register(&mut builder) {
            Ok(()) => Device::Cuda,
            Err(e) => {
                warn!(model = name, reason = %e, "CUDA execution provider not available; model runs on CPU");
                Device::Cpu
            }
        },
    };
    let session = builder.commit_from_memory(bytes).map_err(load_err)?;
    Ok((session, device))
}

/// Tells an unsupported operator (0A000) from bytes that are not a usable model (22023).
fn classify_load_error(name: &str, message: String) -> ModelError {
    let lower = message.to_ascii_lowercase();
    if lower.contains("not a registered function/op") || lower.contains("no opset import for domain") || lower.contains("could not find an implementation") {
        ModelError::UnsupportedOperator { name: name.to_string(), message }
    } else {
        ModelError::InvalidModel { name: name.to_string(), message }
    }
}

fn read_output(name: &str, out: &SessionOutputs<'_>, spec: &Output, rows: usize) -> Result<ArrayRef, ModelError> {
    let bad = |message: String| ModelError::BadOutput { name: name.to_string(), message };
    let value = out.get(&spec.name).ok_or_else(|| bad(format!("no output \"{}\"", spec.name)))?;
    let run_err = |e: ort::Error| ModelError::Run { name: name.to_string(), message: e.to_string() };
    match &spec.kind {
        OutputKind::Tensor { element, per_row } => {
            let array: ArrayRef = match element {
                Element::F32 => Arc::new(Float32Array::from(value.try_extract_tensor::<f32>().map_err(run_err)?.1.to_vec())),
                Element::F64 => Arc::new(Float64Array::from(value.try_extract_tensor::<f64>().map_err(run_err)?.1.to_vec())),
                Element::I64 => Arc::new(Int64Array::from(value.try_extract_tensor::<i64>().map_err(run_err)?.1.to_vec())),
                Element::I32 => Arc::new(Int32Array::from(value.try_extract_tensor::<i32>().map_err(run_err)?.1.to_vec())),
            };
            match per_row {
                None if array.len() == rows => Ok(array),
                None => Err(bad(format!("{} values for {rows} rows", array.len()))),
                Some(_) if rows > 0 && array.len().is_multiple_of(rows) => {
                    let width = array.len() / rows;
                    let field = Arc::new(Field::new("item", element.data_type(), true));
                    let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(width, rows));
                    Ok(Arc::new(ListArray::try_new(field, offsets, array, None).map_err(|e| bad(e.to_string()))?))
                }
                Some(_) => Err(bad(format!("{} values for {rows} rows", array.len()))),
            }
        }
        OutputKind::ZipMap { string_keys } => {
            let maps = value.try_extract_sequence::<DynMapValueType>().map_err(run_err)?;
            if maps.len() != rows {
                return Err(bad(format!("{} maps for {rows} rows", maps.len())));
            }
            let mut values = Vec::new();
            let mut lengths = Vec::with_capacity(rows);
            for m in &maps {
                let probs: Vec<f32> = if *string_keys {
                    let mut kv = m.try_extract_key_values::<String, f32>().map_err(run_err)?;
                    kv.sort_by(|a, b| a.0.cmp(&b.0));
                    kv.into_iter().map(|(_, v)| v).collect()
                } else {
                    let mut kv = m.try_extract_key_values::<i64, f32>().map_err(run_err)?;
                    kv.sort_by_key(|a| a.0);
                    kv.into_iter().map(|(_, v)| v).collect()
                };
                lengths.push(probs.len());
                values.extend(probs);
            }
            let field = Arc::new(Field::new("item", DataType::Float32, true));
            let list = ListArray::try_new(field, OffsetBuffer::from_lengths(lengths), Arc::new(Float32Array::from(values)), None)
                .map_err(|e| bad(e.to_string()))?;
            Ok(Arc::new(list))
        }
    }
}
