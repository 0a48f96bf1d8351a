//! # nowdb-udfs
//!
//! Owns nowdb's pure SQL functions and operators: Arrow in, Arrow out, no storage and no
//! I/O. The server calls [`register_all`] once per query context. Today that is the
//! event-time window table functions `TUMBLE` and `HOP` ([`window`]), whose kernel the view
//! engine shares, and the ASOF join ([`asof`]: its logical node, the analyzer rule that plans
//! marked joins as it, `AsOfJoinExec`, and the query planner that plans it), and
//! `kafka_partition` ([`partition`]: Kafka's key partitioner, for routing in shard mode).
//!
//! It must not depend on the catalog, storage or models: the window functions find tables,
//! and temporal joins find view histories, through resolvers the caller passes in.

pub mod asof;
pub mod partition;
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
    ctx.register_udf(partition::KafkaPartition::udf());
}
