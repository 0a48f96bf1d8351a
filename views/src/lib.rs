//! # nowdb-views
//!
//! Owns continuous (materialized) views: compiling a view's SQL into shapes that can be
//! maintained incrementally ([`plan`]), the per-group aggregate state and its retractable
//! aggregates ([`agg`]), applying each table change to each view ([`apply`]), and the live
//! registry that follows every table write through the catalog's `ChangeSink` seam
//! ([`engine`]), with per-view counters and the `nowdb_catalog.views` system table
//! ([`stats`]).
//!
//! It must not speak the wire protocol or parse client statements (the server hands it the
//! view's query text), and it reaches storage only through the `Store` trait and the write
//! sets the catalog's writers hand it.

pub mod agg;
pub mod apply;
pub mod engine;
pub mod error;
pub mod history;
pub mod plan;
pub mod state;
pub mod stats;

pub use engine::ViewEngine;
pub use error::{ViewError, ViewErrorKind};
pub use stats::{views_batch, views_schema};

/// Result type of this crate.
pub type Result<T, E = ViewError> = std::result::Result<T, E>;
