//! View engine errors and their category.

use datafusion::error::DataFusionError;
use nowdb_catalog::CatalogError;
use nowdb_storage::StorageError;
use thiserror::Error;

/// Errors of defining and maintaining continuous views.
#[derive(Debug, Error)]
pub enum ViewError {
    /// A construct the engine cannot maintain incrementally (refused at CREATE, 0A000).
    #[error("materialized view cannot be maintained incrementally: {0}")]
    NotIncremental(String),
    /// A view definition that is wrong regardless of incrementality.
    #[error("{0}")]
    InvalidDefinition(String),
    /// A view whose stored definition could not be compiled at startup.
    #[error("materialized view \"{name}\" could not be loaded: {reason}; drop and recreate it")]
    Broken {
        /// View name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Catalog errors.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Storage errors.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Query engine errors (planning the definition, evaluating its expressions).
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
}

impl From<datafusion::arrow::error::ArrowError> for ViewError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        ViewError::DataFusion(DataFusionError::ArrowError(Box::new(e), None))
    }
}

/// Coarse classes of [`ViewError`], mapped to SQLSTATEs in the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewErrorKind {
    /// 0A000
    FeatureNotSupported,
    /// 42P16 / 42809-like definition errors
    InvalidDefinition,
    /// XX000: internal state problem
    Internal,
    /// Classified from the wrapped error.
    Wrapped,
}

impl ViewError {
    /// The category of this error.
    pub fn kind(&self) -> ViewErrorKind {
        match self {
            ViewError::NotIncremental(_) => ViewErrorKind::FeatureNotSupported,
            ViewError::InvalidDefinition(_) => ViewErrorKind::InvalidDefinition,
            ViewError::Broken { .. } => ViewErrorKind::Internal,
            ViewError::Catalog(_) | ViewError::Storage(_) | ViewError::DataFusion(_) => ViewErrorKind::Wrapped,
        }
    }
}

/// The catalog's write path only speaks [`CatalogError`]; view errors met while deriving a
/// write travel back through it.
impl From<ViewError> for CatalogError {
    fn from(e: ViewError) -> Self {
        match e {
            ViewError::Catalog(c) => c,
            ViewError::Storage(s) => CatalogError::Storage(s),
            ViewError::DataFusion(d) => CatalogError::DataFusion(d),
            other => CatalogError::DataFusion(DataFusionError::External(Box::new(other))),
        }
    }
}
