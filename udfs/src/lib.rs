//! # nowdb-udfs
//!
//! Owns nowdb's pure SQL functions: Arrow in, Arrow out, no storage and no I/O. The server
//! calls [`register_all`] once per query context; window table functions (`TUMBLE`, `HOP`) and
//! feature helpers arrive here with the continuous-views work.
//!
//! It must not depend on the catalog, storage or models.

use datafusion::prelude::SessionContext;

/// Registers every nowdb function into `ctx`. Today nowdb adds no function of its own beyond
/// DataFusion's built-ins; this is where the streaming and feature functions will register.
pub fn register_all(ctx: &SessionContext) {
    let _ = ctx;
}
