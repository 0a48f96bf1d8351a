//! # nowdb-models
//!
//! Will own ONNX models as SQL functions: the model registry, ONNX Runtime sessions, batched
//! inference on Arrow arrays on a CPU pool, and the model-as-`ScalarUDF` adapter. Until the
//! models work lands it only defines the crate's error type and its category, so that the
//! server's SQLSTATE mapping has its seam.
//!
//! It must not depend on the catalog's tables or on the wire protocol.

use thiserror::Error;

/// Errors of model loading and inference.
#[derive(Debug, Error)]
pub enum ModelError {
    /// No model of that name.
    #[error("model \"{0}\" does not exist")]
    NotFound(String),
}

/// Coarse classes of [`ModelError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelErrorKind {
    /// An unknown model name (42883 when called as a function).
    UndefinedModel,
}

impl ModelError {
    /// The category of this error.
    pub fn kind(&self) -> ModelErrorKind {
        match self {
            ModelError::NotFound(_) => ModelErrorKind::UndefinedModel,
        }
    }
}
