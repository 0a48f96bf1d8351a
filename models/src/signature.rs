//! [`Signature`]: how a model's ONNX graph is called from SQL, read from the graph itself.
//!
//! A numeric input of shape `[N]` takes one SQL argument, `[N, k]` takes `k`; several inputs
//! take their arguments one after the other, in graph order. The result is one output: the
//! one named by `WITH (output = ...)`, else the first float tensor, else skl2onnx's ZipMap
//! probabilities (a sequence of class -> probability maps), else the first numeric tensor.
//! `[N]` and `[N, 1]` outputs are scalars, `[N, k]` outputs are arrays.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use ort::value::{Outlet, TensorElementType, ValueType};

use crate::ModelError;

/// Element types a model's tensors may hold, as nowdb calls them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    /// `float` / `real`.
    F32,
    /// `double` / `double precision`.
    F64,
    /// `int64` / `bigint`.
    I64,
    /// `int32` / `integer`.
    I32,
}

impl Element {
    fn from_onnx(ty: TensorElementType) -> Option<Element> {
        match ty {
            TensorElementType::Float32 => Some(Element::F32),
            TensorElementType::Float64 => Some(Element::F64),
            TensorElementType::Int64 => Some(Element::I64),
            TensorElementType::Int32 => Some(Element::I32),
            _ => None,
        }
    }

    /// The SQL type name.
    pub fn sql_name(self) -> &'static str {
        match self {
            Element::F32 => "real",
            Element::F64 => "double precision",
            Element::I64 => "bigint",
            Element::I32 => "integer",
        }
    }

    /// The Arrow type.
    pub fn data_type(self) -> DataType {
        match self {
            Element::F32 => DataType::Float32,
            Element::F64 => DataType::Float64,
            Element::I64 => DataType::Int64,
            Element::I32 => DataType::Int32,
        }
    }

    fn is_float(self) -> bool {
        matches!(self, Element::F32 | Element::F64)
    }
}

/// One graph input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// Its name in the graph.
    pub name: String,
    /// Element type.
    pub element: Element,
    /// SQL arguments it takes (`k` of `[N, k]`, 1 for `[N]`).
    pub width: usize,
    /// 1 for `[N]`, 2 for `[N, k]`.
    pub rank: usize,
}

/// How the chosen output becomes a SQL value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputKind {
    /// A tensor: a scalar per row (`[N]`, `[N, 1]`) or an array (`[N, k]`).
    Tensor {
        /// Element type.
        element: Element,
        /// Values per row when it is an array; `None` for a scalar.
        per_row: Option<Option<usize>>,
    },
    /// skl2onnx's ZipMap: one `{class: probability}` map per row, returned as the array of
    /// probabilities in class order.
    ZipMap {
        /// Whether class labels are strings (else int64).
        string_keys: bool,
    },
}

/// The chosen output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Its name in the graph.
    pub name: String,
    /// How it is read.
    pub kind: OutputKind,
}

/// How a model is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Inputs in graph order.
    pub inputs: Vec<Input>,
    /// The output the function returns.
    pub output: Output,
    /// Every output of the graph, described (`name: type shape`).
    pub all_outputs: Vec<String>,
}

impl Signature {
    /// Reads the signature of a loaded session's graph.
    pub fn from_graph(model: &str, inputs: &[Outlet], outputs: &[Outlet], wanted: Option<&str>) -> Result<Signature, ModelError> {
        let unsupported = |reason: String| ModelError::UnsupportedSignature { name: model.to_string(), reason };
        if inputs.is_empty() {
            return Err(unsupported("the graph has no inputs".into()));
        }
        let mut ins = Vec::with_capacity(inputs.len());
        for i in inputs {
            let ValueType::Tensor { ty, shape, .. } = i.dtype() else {
                return Err(unsupported(format!("input \"{}\" is {}, not a tensor", i.name(), describe(i.dtype()))));
            };
            let element = Element::from_onnx(*ty).ok_or_else(|| {
                unsupported(format!("input \"{}\" is a tensor of {ty}; models take numeric (float, double, int32, int64) inputs", i.name()))
            })?;
            let dims: &[i64] = shape;
            let width = match dims {
                [n] | [n, 1] if *n < 0 => 1,
                [n, k] if *n < 0 && *k > 0 => *k as usize,
                [n, ..] if *n >= 0 => {
                    return Err(unsupported(format!(
                        "input \"{}\" has a fixed batch dimension ({n}); export the model with a dynamic first dimension",
                        i.name()
                    )))
                }
                _ => {
                    return Err(unsupported(format!(
                        "input \"{}\" has shape {}; inputs must be [N] or [N, k] with k fixed",
                        i.name(),
                        shape_text(dims)
                    )))
                }
            };
            ins.push(Input { name: i.name().to_string(), element, width, rank: dims.len() });
        }
        let readable: Vec<Option<OutputKind>> = outputs.iter().map(|o| output_kind(o.dtype())).collect();
        let chosen = match wanted {
            Some(name) => {
                let i = outputs.iter().position(|o| o.name() == name).ok_or_else(|| {
                    ModelError::InvalidOption(format!(
                        "model \"{model}\" has no output \"{name}\" (its outputs: {})",
                        outputs.iter().map(|o| o.name().to_string()).collect::<Vec<_>>().join(", ")
                    ))
                })?;
                if readable[i].is_none() {
                    return Err(unsupported(format!("output \"{name}\" is {}, which SQL cannot return", describe(outputs[i].dtype()))));
                }
                i
            }
            None => {
                let float = |k: &Option<OutputKind>| matches!(k, Some(OutputKind::Tensor { element, .. }) if element.is_float());
                let zipmap = |k: &Option<OutputKind>| matches!(k, Some(OutputKind::ZipMap { .. }));
                readable
                    .iter()
                    .position(float)
                    .or_else(|| readable.iter().position(zipmap))
                    .or_else(|| readable.iter().position(Option::is_some))
                    .ok_or_else(|| unsupported("no output is a numeric tensor".into()))?
            }
        };
        let kind = readable[chosen].clone().ok_or_else(|| unsupported("unreadable output".into()))?;
        Ok(Signature {
            inputs: ins,
            output: Output { name: outputs[chosen].name().to_string(), kind },
            all_outputs: outputs.iter().map(|o| format!("{}: {}", o.name(), describe(o.dtype()))).collect(),
        })
    }

    /// Number of SQL arguments.
    pub fn arity(&self) -> usize {
        self.inputs.iter().map(|i| i.width).sum()
    }

    /// The SQL type of the result.
    pub fn return_type(&self) -> DataType {
        let list = |dt: DataType| DataType::List(Arc::new(Field::new("item", dt, true)));
        match &self.output.kind {
            OutputKind::Tensor { element, per_row: None } => element.data_type(),
            OutputKind::Tensor { element, per_row: Some(_) } => list(element.data_type()),
            OutputKind::ZipMap { .. } => list(DataType::Float32),
        }
    }

    /// The inputs, described (`x: real[N, 3]`).
    pub fn inputs_text(&self) -> String {
        self.inputs
            .iter()
            .map(|i| {
                let shape = if i.rank == 1 { "[N]".to_string() } else { format!("[N, {}]", i.width) };
                format!("{}: {}{}", i.name, i.element.sql_name(), shape)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The SQL arguments, as psql's `\df` lists them: `real, real` or `3 x real`.
    pub fn arguments_text(&self) -> String {
        let args: Vec<String> = self
            .inputs
            .iter()
            .map(|i| if i.width == 1 { i.element.sql_name().to_string() } else { format!("{} x {}", i.width, i.element.sql_name()) })
            .collect();
        args.join(", ")
    }

    /// The SQL type name of the result.
    pub fn return_text(&self) -> String {
        match &self.output.kind {
            OutputKind::Tensor { element, per_row: None } => element.sql_name().to_string(),
            OutputKind::Tensor { element, per_row: Some(_) } => format!("{}[]", element.sql_name()),
            OutputKind::ZipMap { .. } => "real[]".into(),
        }
    }
}

/// `fraud(3 x real) returns real`: what error messages show as the expected signature.
#[derive(Debug)]
pub struct Display<'a>(pub &'a str, pub &'a Signature);

impl fmt::Display for Display<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({}) returns {}", self.0, self.1.arguments_text(), self.1.return_text())
    }
}

fn output_kind(ty: &ValueType) -> Option<OutputKind> {
    match ty {
        ValueType::Tensor { ty, shape, .. } => {
            let element = Element::from_onnx(*ty)?;
            let dims: &[i64] = shape;
            let per_row = match dims {
                [_] | [_, 1] => None,
                [_, k] => Some((*k > 0).then_some(*k as usize)),
                _ => return None,
            };
            Some(OutputKind::Tensor { element, per_row })
        }
        ValueType::Sequence(inner) => match inner.as_ref() {
            ValueType::Map { key, value: TensorElementType::Float32 } => match key {
                TensorElementType::Int64 => Some(OutputKind::ZipMap { string_keys: false }),
                TensorElementType::String => Some(OutputKind::ZipMap { string_keys: true }),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

fn shape_text(dims: &[i64]) -> String {
    let parts: Vec<String> = dims.iter().map(|d| if *d < 0 { "?".to_string() } else { d.to_string() }).collect();
    format!("[{}]", parts.join(", "))
}

/// `real[N, 3]`, `seq(map(bigint, real))`: SQL names where nowdb reads the type.
fn describe(ty: &ValueType) -> String {
    let name = |t: &TensorElementType| Element::from_onnx(*t).map_or_else(|| t.to_string(), |e| e.sql_name().to_string());
    match ty {
        ValueType::Tensor { ty, shape, .. } => {
            let dims: Vec<String> = shape.iter().enumerate().map(|(i, d)| match (i, *d) {
                (0, d) if d < 0 => "N".to_string(),
                (_, d) if d < 0 => "?".to_string(),
                (_, d) => d.to_string(),
            }).collect();
            format!("{}[{}]", name(ty), dims.join(", "))
        }
        ValueType::Sequence(inner) => format!("seq({})", describe(inner)),
        ValueType::Map { key, value } => format!("map({}, {})", name(key), name(value)),
        ValueType::Optional(inner) => format!("optional({})", describe(inner)),
    }
}
