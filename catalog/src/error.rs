//! Catalog errors and their category.

use datafusion::error::DataFusionError;
use nowdb_storage::StorageError;
use thiserror::Error;

/// Errors of table definitions and table writes.
#[derive(Debug, Error)]
pub enum CatalogError {
    /// CREATE TABLE of a name in use.
    #[error("relation \"{0}\" already exists")]
    TableExists(String),
    /// A table that does not exist.
    #[error("relation \"{0}\" does not exist")]
    NoSuchTable(String),
    /// A column that does not exist.
    #[error("column \"{column}\" of relation \"{table}\" does not exist")]
    NoSuchColumn {
        /// Table name.
        table: String,
        /// Column name.
        column: String,
    },
    /// A type name we do not know.
    #[error("type \"{0}\" does not exist")]
    UnknownType(String),
    /// A malformed table definition (duplicate column, bad key).
    #[error("{0}")]
    InvalidDefinition(String),
    /// A primary key already present.
    #[error("duplicate key value violates unique constraint \"{constraint}\"")]
    UniqueViolation {
        /// Constraint name (`<table>_pkey`).
        constraint: String,
        /// `Key (col)=(value) already exists.`
        detail: String,
    },
    /// NULL in a NOT NULL column.
    #[error("null value in column \"{column}\" of relation \"{table}\" violates not-null constraint")]
    NotNullViolation {
        /// Table name.
        table: String,
        /// Column name.
        column: String,
    },
    /// One statement touching the same row twice where Postgres forbids it.
    #[error("{0}")]
    Cardinality(String),
    /// DROP of something other objects depend on, without CASCADE.
    #[error("cannot drop {name} because other objects depend on it (materialized view {dependent} depends on it)")]
    DependentObjects {
        /// What was to be dropped.
        name: String,
        /// One object depending on it.
        dependent: String,
    },
    /// A write to something only nowdb writes (a materialized view).
    #[error("cannot change materialized view \"{0}\"")]
    ReadOnly(String),
    /// CREATE MODEL of a name in use.
    #[error("model \"{0}\" already exists")]
    ModelExists(String),
    /// A model that does not exist.
    #[error("model \"{0}\" does not exist")]
    NoSuchModel(String),
    /// CREATE ROLE of a name in use.
    #[error("role \"{0}\" already exists")]
    RoleExists(String),
    /// A role that does not exist.
    #[error("role \"{0}\" does not exist")]
    NoSuchRole(String),
    /// Valid SQL that nowdb does not do (yet).
    #[error("{0}")]
    Unsupported(String),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The query engine failed.
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
}

impl From<datafusion::arrow::error::ArrowError> for CatalogError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        CatalogError::DataFusion(DataFusionError::ArrowError(Box::new(e), None))
    }
}

/// Coarse classes of [`CatalogError`], mapped to SQLSTATEs in the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogErrorKind {
    /// 42P07
    DuplicateTable,
    /// 42P01
    UndefinedTable,
    /// 42703
    UndefinedColumn,
    /// 42704
    UndefinedObject,
    /// 42710
    DuplicateObject,
    /// 42P16
    InvalidDefinition,
    /// 23505
    UniqueViolation,
    /// 23502
    NotNullViolation,
    /// 21000
    Cardinality,
    /// 0A000
    FeatureNotSupported,
    /// 2BP01
    DependentObjectsStillExist,
    /// 42809
    WrongObjectType,
    /// Storage: see [`nowdb_storage::StorageErrorKind`].
    Storage(nowdb_storage::StorageErrorKind),
    /// Query engine errors: classified by the server from the DataFusion error itself.
    Engine,
}

impl CatalogError {
    /// The category of this error.
    pub fn kind(&self) -> CatalogErrorKind {
        match self {
            CatalogError::TableExists(_) => CatalogErrorKind::DuplicateTable,
            CatalogError::NoSuchTable(_) => CatalogErrorKind::UndefinedTable,
            CatalogError::NoSuchColumn { .. } => CatalogErrorKind::UndefinedColumn,
            CatalogError::UnknownType(_) => CatalogErrorKind::UndefinedObject,
            CatalogError::InvalidDefinition(_) => CatalogErrorKind::InvalidDefinition,
            CatalogError::UniqueViolation { .. } => CatalogErrorKind::UniqueViolation,
            CatalogError::NotNullViolation { .. } => CatalogErrorKind::NotNullViolation,
            CatalogError::Cardinality(_) => CatalogErrorKind::Cardinality,
            CatalogError::ModelExists(_) => CatalogErrorKind::DuplicateObject,
            CatalogError::NoSuchModel(_) => CatalogErrorKind::UndefinedObject,
            CatalogError::RoleExists(_) => CatalogErrorKind::DuplicateObject,
            CatalogError::NoSuchRole(_) => CatalogErrorKind::UndefinedObject,
            CatalogError::Unsupported(_) => CatalogErrorKind::FeatureNotSupported,
            CatalogError::DependentObjects { .. } => CatalogErrorKind::DependentObjectsStillExist,
            CatalogError::ReadOnly(_) => CatalogErrorKind::WrongObjectType,
            CatalogError::Storage(e) => CatalogErrorKind::Storage(e.kind()),
            CatalogError::DataFusion(_) => CatalogErrorKind::Engine,
        }
    }

    /// The DETAIL line Postgres would send with this error, if any.
    pub fn detail(&self) -> Option<&str> {
        match self {
            CatalogError::UniqueViolation { detail, .. } => Some(detail),
            _ => None,
        }
    }
}
