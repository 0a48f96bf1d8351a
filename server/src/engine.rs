//! [`Engine`]: what every connection shares: the store, the catalog, the view engine and the
//! query context.

use std::sync::Arc;
use std::time::Duration;

use datafusion::execution::context::SessionConfig;
use datafusion::prelude::SessionContext;
use datafusion::catalog::TableProvider;
use nowdb_catalog::provider::{NowdbSchema, StoredTable};
use nowdb_catalog::{Catalog, DATABASE, SCHEMA};
use nowdb_storage::RocksStore;
use nowdb_views::{ViewEngine, ViewsTable};
use tracing::{info, warn};

use crate::config::Config;
use crate::error::{NowError, NowResult};

/// Schema of nowdb's own system tables (`nowdb_catalog.views`).
pub const SYSTEM_SCHEMA: &str = "nowdb_catalog";

/// How often expired rows (retention) are purged.
const RETENTION_SWEEP: Duration = Duration::from_secs(5);

/// Shared server state.
pub struct Engine {
    catalog: Arc<Catalog>,
    views: Arc<ViewEngine>,
    ctx: SessionContext,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("catalog", &self.catalog).finish_non_exhaustive()
    }
}

impl Engine {
    /// Opens the data directory, builds the query context and loads the views.
    pub async fn open(config: &Config) -> NowResult<Arc<Self>> {
        let store = Arc::new(RocksStore::open(&config.data_dir, config.durability)?);
        let catalog = Arc::new(Catalog::open(store)?);
        info!(tables = catalog.len(), data_dir = %config.data_dir.display(), "recovered catalog");
        let views = ViewEngine::new(catalog.clone());
        let ctx = query_context(catalog.clone(), views.clone())?;
        views.load(&ctx.state()).await?;
        catalog.set_change_sink(views.clone());
        Ok(Arc::new(Self { catalog, views, ctx }))
    }

    /// Purges rows past their retention every few seconds, off the write path, until the
    /// engine is dropped.
    pub fn start_retention(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RETENTION_SWEEP).await;
                let Some(engine) = weak.upgrade() else { break };
                match engine.purge_expired().await {
                    Ok(0) => {}
                    Ok(n) => info!(purged = n, "retention purged expired rows and batches"),
                    Err(e) => warn!(error = %e, "retention sweep failed"),
                }
            }
        });
    }

    /// One retention sweep: event-table batches wholly older than their retention (whole
    /// batches, by their min/max statistics) and expired view windows.
    pub async fn purge_expired(&self) -> NowResult<u64> {
        let mut n = 0;
        for t in self.catalog.tables() {
            n += nowdb_catalog::retention::purge_log(&t)?;
        }
        n += self.views.purge_expired().await?;
        Ok(n)
    }

    /// The view engine.
    pub fn views(&self) -> &Arc<ViewEngine> {
        &self.views
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

fn query_context(catalog: Arc<Catalog>, views: Arc<ViewEngine>) -> NowResult<SessionContext> {
    let config = SessionConfig::new()
        .with_default_catalog_and_schema(DATABASE, SCHEMA)
        .with_create_default_catalog_and_schema(true)
        .with_information_schema(true);
    let ctx = SessionContext::new_with_config(config);
    let db = ctx
        .catalog(DATABASE)
        .ok_or_else(|| NowError::coded("XX000", "default catalog missing"))?;
    db.register_schema(SCHEMA, Arc::new(NowdbSchema::new(catalog.clone())))?;
    db.register_schema(SYSTEM_SCHEMA, ViewsTable::schema_provider(views)?)?;
    let resolve = Arc::new(move |name: &str| {
        catalog.table(name).map(|t| Arc::new(StoredTable::new(t)) as Arc<dyn TableProvider>)
    });
    nowdb_udfs::register_all(&ctx, resolve);
    nowdb_catalog::pg::install(&ctx)?;
    Ok(ctx)
}
