//! # nowdb-udfs
//!
//! Owns nowdb's pure SQL functions: Arrow in, Arrow out, no storage and no I/O. The server
//! calls [`register_all`] once per query context. Today that is the event-time window table
//! functions `TUMBLE` and `HOP` ([`window`]), whose kernel the view engine shares.
//!
//! It must not depend on the catalog, storage or models: the window functions find tables
//! through a resolver the caller passes in.

pub mod asof;
pub mod window;

use std::sync::Arc;

use datafusion::prelude::SessionContext;

use window::{TableResolver, WindowFunction, WindowKind};

/// Registers every nowdb function into `ctx`; `resolve` finds the tables window functions
/// read.
pub fn register_all(ctx: &SessionContext, resolve: TableResolver) {
    for (kind, names) in [(WindowKind::Tumble, ["tumble", "TUMBLE", "Tumble"]), (WindowKind::Hop, ["hop", "HOP", "Hop"])] {
        let f = Arc::new(WindowFunction::new(kind, resolve.clone()));
        for name in names {
            ctx.register_udtf(name, f.clone());
        }
    }
}
