//! [`ModelError`]: what can go wrong loading, describing and running a model.

use thiserror::Error;

/// Errors of model loading and inference.
#[derive(Debug, Error)]
pub enum ModelError {
    /// No model of that name.
    #[error("model \"{0}\" does not exist")]
    NotFound(String),
    /// ONNX Runtime's shared library could not be found or loaded.
    #[error("ONNX Runtime is not available: {reason}. Install it with `pip install onnxruntime` (the README's setup puts it in .venv), or point ORT_DYLIB_PATH at libonnxruntime.so")]
    RuntimeUnavailable {
        /// What failed.
        reason: String,
    },
    /// The bytes are not a model ONNX Runtime can load (not ONNX, truncated, unknown operator).
    #[error("could not load model \"{name}\": {message}")]
    InvalidModel {
        /// Model name.
        name: String,
        /// ONNX Runtime's message.
        message: String,
    },
    /// A model using an operator this ONNX Runtime does not have.
    #[error("could not load model \"{name}\": unsupported operator: {message}")]
    UnsupportedOperator {
        /// Model name.
        name: String,
        /// ONNX Runtime's message.
        message: String,
    },
    /// A valid model whose graph nowdb cannot call as a function (non-numeric input, rank > 2).
    #[error("model \"{name}\" cannot be used as a SQL function: {reason}")]
    UnsupportedSignature {
        /// Model name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A bad `WITH (...)` option.
    #[error("{0}")]
    InvalidOption(String),
    /// `device = 'cuda'` where the CUDA execution provider is unavailable.
    #[error("model \"{name}\": the CUDA execution provider is not available ({reason}); install onnxruntime-gpu with CUDA 12 and cuDNN 9, or use device = 'auto' to fall back to CPU")]
    CudaUnavailable {
        /// Model name.
        name: String,
        /// ONNX Runtime's message.
        reason: String,
    },
    /// Called with the wrong number of arguments.
    #[error("function {name}({given}) does not exist: model {name} takes {signature}")]
    WrongArity {
        /// Model name.
        name: String,
        /// The argument types given.
        given: String,
        /// The expected signature.
        signature: String,
    },
    /// Called with an argument of a non-numeric type.
    #[error("argument {position} of model {name} is of type {given}, but the model takes {signature}")]
    WrongType {
        /// Model name.
        name: String,
        /// 1-based argument position.
        position: usize,
        /// The type given.
        given: String,
        /// The expected signature.
        signature: String,
    },
    /// A NaN or infinite argument value.
    #[error("argument {position} of model {name} is {value} in row {row}; models take finite numbers")]
    NonFinite {
        /// Model name.
        name: String,
        /// 1-based argument position.
        position: usize,
        /// 1-based row of the batch.
        row: usize,
        /// `NaN`, `Infinity` or `-Infinity`.
        value: String,
    },
    /// ONNX Runtime failed while running the model (e.g. a shape the graph rejects).
    #[error("model \"{name}\" failed: {message}")]
    Run {
        /// Model name.
        name: String,
        /// ONNX Runtime's message.
        message: String,
    },
    /// The model's output is not what its signature promised.
    #[error("model \"{name}\" returned {message}")]
    BadOutput {
        /// Model name.
        name: String,
        /// What was wrong.
        message: String,
    },
}

/// Coarse classes of [`ModelError`], which the server maps to SQLSTATEs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelErrorKind {
    /// An unknown model name (42704).
    UndefinedModel,
    /// A function call that matches no signature (42883).
    UndefinedFunction,
    /// An argument of the wrong type (42804).
    DatatypeMismatch,
    /// A bad value: NaN argument, bad option, bytes that are not a model (22023).
    InvalidParameterValue,
    /// Something nowdb or the runtime does not support (0A000).
    FeatureNotSupported,
    /// The runtime itself failed (XX000).
    Internal,
}

impl ModelError {
    /// The category of this error.
    pub fn kind(&self) -> ModelErrorKind {
        match self {
            ModelError::NotFound(_) => ModelErrorKind::UndefinedModel,
            ModelError::WrongArity { .. } => ModelErrorKind::UndefinedFunction,
            ModelError::WrongType { .. } => ModelErrorKind::DatatypeMismatch,
            ModelError::InvalidModel { .. } | ModelError::InvalidOption(_) | ModelError::NonFinite { .. } => {
                ModelErrorKind::InvalidParameterValue
            }
            ModelError::UnsupportedSignature { .. } | ModelError::UnsupportedOperator { .. } | ModelError::CudaUnavailable { .. } | ModelError::RuntimeUnavailable { .. } => {
                ModelErrorKind::FeatureNotSupported
            }
            ModelError::Run { .. } | ModelError::BadOutput { .. } => ModelErrorKind::Internal,
        }
    }
}
