//! # nowdb-catalog
//!
//! Owns what tables are and how their rows are read and written:
//! - the persisted catalog of table definitions ([`Catalog`], [`TableDef`]);
//! - row writes with Postgres constraint semantics (NOT NULL, primary key uniqueness,
//!   `ON CONFLICT`), turned into atomic storage [`nowdb_storage::WriteSet`]s ([`write`]);
//! - DataFusion `SchemaProvider` / `TableProvider`s with projection and filter pushdown:
//!   primary-key point reads and per-batch min/max pruning ([`provider`]), and views'
//!   history: its stored format and its reads (`view_history`, `view_as_of`, the changes
//!   temporal joins read) ([`provider::history`]);
//! - model definitions and their ONNX bytes ([`models`]);
//! - sink definitions (views streamed to external systems) ([`sinks`]);
//! - roles (users): attributes, password verifiers and table privileges ([`roles`]);
//! - the pg_catalog / information_schema emulation clients introspect ([`pg`]).
//!
//! It must not speak the wire protocol, parse client SQL text, or touch RocksDB except through
//! the storage crate's `Store` trait.

pub mod catalog;
pub mod change;
pub mod error;
pub mod information_schema;
pub mod models;
pub mod pg;
pub mod pg_overlay;
pub mod pg_functions;
pub mod provider;
pub mod retention;
pub mod roles;
pub mod sinks;
pub mod table;
pub mod types;
pub mod write;

pub use catalog::{Catalog, Table, WriteGuard};
pub use error::{CatalogError, CatalogErrorKind};
pub use change::{ChangeSink, Derived, RowSet, TableChange};
pub use models::ModelDef;
pub use sinks::SinkDef;
pub use roles::{Privilege, RoleDef, Roles, ScramSecret};
pub use table::{ColumnDef, Connector, EventTime, TableDef, TableKind, ViewMeta};
pub use types::SqlType;

/// Result type of this crate.
pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

/// Name of the one database (DataFusion catalog) nowdb serves.
pub const DATABASE: &str = "nowdb";
/// Name of the schema user tables live in.
pub const SCHEMA: &str = "public";
