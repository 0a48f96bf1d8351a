//! [`Engine`]: what every connection shares: the store, the catalog and the query context.

use std::sync::Arc;

use datafusion::execution::context::SessionConfig;
use datafusion::prelude::SessionContext;
use nowdb_catalog::provider::NowdbSchema;
use nowdb_catalog::{Catalog, DATABASE, SCHEMA};
use nowdb_storage::RocksStore;
use tracing::info;

use crate::config::Config;
use crate::error::{NowError, NowResult};

/// Shared server state.
pub struct Engine {
    catalog: Arc<Catalog>,
    ctx: SessionContext,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("catalog", &self.catalog).finish_non_exhaustive()
    }
}

impl Engine {
    /// Opens the data directory and builds the query context.
    pub fn open(config: &Config) -> NowResult<Arc<Self>> {
        let store = Arc::new(RocksStore::open(&config.data_dir, config.durability)?);
        let catalog = Arc::new(Catalog::open(store)?);
        info!(tables = catalog.len(), data_dir = %config.data_dir.display(), "recovered catalog");
        let ctx = query_context(catalog.clone())?;
        Ok(Arc::new(Self { catalog, ctx }))
    }

    /// The catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The query context (shared; planning clones its state).
    pub fn ctx(&self) -> &SessionContext {
        &self.ctx
    }
}

fn query_context(catalog: Arc<Catalog>) -> NowResult<SessionContext> {
    let config = SessionConfig::new()
        .with_default_catalog_and_schema(DATABASE, SCHEMA)
        .with_create_default_catalog_and_schema(true)
        .with_information_schema(true);
    let ctx = SessionContext::new_with_config(config);
    let db = ctx
        .catalog(DATABASE)
        .ok_or_else(|| NowError::coded("XX000", "default catalog missing"))?;
    db.register_schema(SCHEMA, Arc::new(NowdbSchema::new(catalog)))?;
    nowdb_udfs::register_all(&ctx);
    nowdb_catalog::pg::install(&ctx)?;
    Ok(ctx)
}
