//! # nowdb-models
//!
//! Owns ONNX models as SQL functions: loading ONNX Runtime ([`runtime`]), reading a graph's
//! SQL signature ([`signature`]), pooled sessions and batched runs on Arrow arrays
//! ([`session`], [`model`]), the model-as-`ScalarUDFImpl` adapter ([`function`]), the
//! registry of current versions ([`registry`]) and the `nowdb_catalog.models` system table
//! ([`table`]).
//!
//! It must not depend on the catalog's tables, storage or the wire protocol: the catalog
//! persists model bytes, the server wires the two together.

pub mod error;
pub mod function;
pub mod model;
pub mod registry;
pub mod runtime;
pub mod session;
pub mod signature;
pub mod stats;
pub mod table;

pub use error::{ModelError, ModelErrorKind};
pub use function::ModelFunction;
pub use model::Model;
pub use registry::ModelRegistry;
pub use runtime::Runtime;
pub use session::{Device, SessionOptions};
pub use signature::Signature;
pub use table::{models_batch, models_schema};

#[cfg(test)]
mod tests;
