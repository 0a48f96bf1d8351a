//! [`Engine`]: what every connection shares: the store, the catalog, the view engine, the
//! loaded models and the query context.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use datafusion::execution::context::SessionConfig;
use datafusion::execution::SessionStateBuilder;
use nowdb_catalog::provider::access::HistoryRead;
use nowdb_catalog::provider::history::HistoryTable;
use datafusion::prelude::SessionContext;
use datafusion::catalog::TableProvider;
use nowdb_catalog::provider::{NowdbSchema, StoredTable};
use nowdb_catalog::{Catalog, Roles, DATABASE, SCHEMA};
use nowdb_models::{Device, Model, ModelFunction, ModelRegistry, SessionOptions};
use nowdb_storage::RocksStore;
use nowdb_views::ViewEngine;
use tracing::{info, warn};

use crate::config::Config;
use crate::kafka::Connectors;
use crate::metrics::Metrics;
use crate::system::SystemTable;
use crate::error::{NowError, NowResult};

/// Schema of nowdb's own system tables (`nowdb_catalog.views`, `nowdb_catalog.models`).
pub const SYSTEM_SCHEMA: &str = "nowdb_catalog";

/// How often expired rows (retention) are purged.
const RETENTION_SWEEP: Duration = Duration::from_secs(5);

/// Shared server state.
pub struct Engine {
    catalog: Arc<Catalog>,
    views: Arc<ViewEngine>,
    models: Arc<ModelRegistry>,
    /// Serializes CREATE/DROP MODEL (versions, function registration, view switches).
    model_ddl: tokio::sync::Mutex<()>,
    ctx: SessionContext,
    /// `pg_class` OIDs of the tables and views, by name, and the catalog generation they
    /// are of (row descriptions name the table a column comes from).
    table_oids: tokio::sync::Mutex<Option<TableOids>>,
    /// The store itself (checkpoints, RocksDB statistics).
    store: Arc<RocksStore>,
    /// Roles and their privileges.
    roles: Arc<Roles>,
    /// Prometheus metrics.
    metrics: Metrics,
    /// The configuration the server was started with.
    config: Config,
    /// Running Kafka sources and sinks.
    connectors: Arc<Connectors>,
}

/// Table OIDs by name, and the catalog generation they are of.
type TableOids = (u64, Arc<HashMap<String, i32>>);

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("catalog", &self.catalog).finish_non_exhaustive()
    }
}

impl Engine {
    /// Opens the data directory, builds the query context and loads the views.
    pub async fn open(config: &Config) -> NowResult<Arc<Self>> {
        let store = Arc::new(RocksStore::open(&config.data_dir, config.durability.into())?);
        store.set_min_free_bytes(config.limits.min_free_disk_bytes);
        let catalog = Arc::new(Catalog::open(store.clone())?);
        let roles = Arc::new(Roles::open(store.clone())?);
        info!(tables = catalog.len(), data_dir = %config.data_dir.display(), "recovered catalog");
        let views = ViewEngine::new(catalog.clone());
        let models = ModelRegistry::new();
        let metrics = Metrics::new();
        let ingested = metrics.rows_ingested.clone();
        let connectors = Connectors::new(catalog.clone(), tokio::runtime::Handle::current(), Arc::new(move |n| {
            ingested.inc_by(n);
        }));
        let ctx = query_context(catalog.clone(), views.clone(), models.clone(), connectors.clone())?;
        let engine = Self {
            catalog,
            views,
            models,
            model_ddl: Default::default(),
            ctx,
            table_oids: Default::default(),
            store,
            roles,
            metrics,
            config: config.clone(),
            connectors,
        };
        // Models first: views that call them compile against their functions.
        engine.load_models().await;
        engine.views.load(&engine.ctx.state()).await?;
        engine.catalog.set_change_sink(engine.views.clone());
        engine.connectors.start_all();
        Ok(Arc::new(engine))
    }

    /// Loads every stored model. One that cannot be loaded (ONNX Runtime missing, a device
    /// gone) is logged and left out; the server runs on, and views calling it report why.
    async fn load_models(&self) {
        let defs = match self.catalog.models() {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "cannot read model definitions");
                return;
            }
        };
        for def in defs {
            let loaded = async {
                let bytes: Arc<[u8]> = self.catalog.model_bytes(&def.name)?.into();
                let options = SessionOptions {
                    device: Device::parse(&def.device)?,
                    threads: def.threads.map(|t| t as usize),
                    output: def.output.clone(),
                };
                let (name, version) = (def.name.clone(), def.version);
                let model = tokio::task::spawn_blocking(move || Model::load(&name, version, bytes, options))
                    .await
                    .map_err(|e| NowError::coded("XX000", e.to_string()))??;
                self.install_model(model)
            }
            .await;
            match loaded {
                Ok(()) => info!(model = %def.name, version = def.version, "loaded model"),
                Err(e) => warn!(model = %def.name, error = %e, "model could not be loaded"),
            }
        }
    }

    /// Makes `model` the current version of its name and (re)registers its SQL function;
    /// plans made before keep the function (and version) they were made with.
    pub fn install_model(&self, model: Arc<Model>) -> NowResult<()> {
        self.ctx.register_udf(ModelFunction::udf(model.clone()));
        self.models.install(model)?;
        // Statements prepared meanwhile re-plan against the function now registered.
        self.catalog.bump_generation();
        Ok(())
    }

    /// Forgets model `name` and its SQL function.
    pub fn uninstall_model(&self, name: &str) -> NowResult<()> {
        self.ctx.deregister_udf(name);
        self.models.remove(name)?;
        self.catalog.bump_generation();
        Ok(())
    }

    /// Whether `name` is one of the query engine's own functions (not a model).
    pub fn is_builtin_function(&self, name: &str) -> bool {
        let state = self.ctx.state();
        match state.scalar_functions().get(name) {
            Some(f) => ModelFunction::of(f).is_none(),
            None => state.aggregate_functions().contains_key(name) || state.window_functions().contains_key(name),
        }
    }

    /// The loaded models.
    pub fn models(&self) -> &Arc<ModelRegistry> {
        &self.models
    }

    /// Serializes model DDL.
    pub fn model_ddl(&self) -> &tokio::sync::Mutex<()> {
        &self.model_ddl
    }

    /// Where model files are read from.
    pub fn model_dir(&self) -> &Path {
        &self.config.model_dir
    }

    /// Where `COPY ... TO 'file'` writes.
    pub fn export_dir(&self) -> &Path {
        &self.config.export_dir
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

    /// The configuration the server runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Roles and privileges.
    pub fn roles(&self) -> &Arc<Roles> {
        &self.roles
    }

    /// Prometheus metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Running Kafka sources and sinks.
    pub fn connectors(&self) -> &Arc<Connectors> {
        &self.connectors
    }

    /// The RocksDB store (checkpoints, statistics).
    pub fn store(&self) -> &Arc<RocksStore> {
        &self.store
    }

    /// The view engine.
    pub fn views(&self) -> &Arc<ViewEngine> {
        &self.views
    }

    /// The catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The `pg_class` OIDs of nowdb's tables and views by name (assigned by the pg_catalog
    /// emulation; looked up again after a CREATE or DROP).
    pub async fn table_oids(&self) -> NowResult<Arc<HashMap<String, i32>>> {
        let generation = self.catalog.generation();
        let mut cached = self.table_oids.lock().await;
        if let Some((g, oids)) = cached.as_ref() {
            if *g == generation {
                return Ok(oids.clone());
            }
        }
        let sql = "SELECT c.relname, c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n \
                   ON c.relnamespace = n.oid WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm')";
        let batches = self.ctx.sql(sql).await?.collect().await?;
        let mut oids = HashMap::new();
        for batch in &batches {
            use datafusion::arrow::array::AsArray;
            let names = datafusion::arrow::compute::cast(batch.column(0), &datafusion::arrow::datatypes::DataType::Utf8).map_err(datafusion::error::DataFusionError::from)?;
            let values = datafusion::arrow::compute::cast(batch.column(1), &datafusion::arrow::datatypes::DataType::Int32).map_err(datafusion::error::DataFusionError::from)?;
            for (name, oid) in names.as_string::<i32>().iter().zip(values.as_primitive::<datafusion::arrow::datatypes::Int32Type>().iter()) {
                if let (Some(name), Some(oid)) = (name, oid) {
                    oids.insert(name.to_string(), oid);
                }
            }
        }
        let oids = Arc::new(oids);
        *cached = Some((generation, oids.clone()));
        Ok(oids)
    }

    /// The query context (shared; planning clones its state).
    pub fn ctx(&self) -> &SessionContext {
        &self.ctx
    }
}

/// `pg_get_function_result(oid)` / `pg_get_function_arguments(oid)` for the functions models
/// are in `pg_catalog.pg_proc` (psql's `\df`); NULL for other OIDs.
fn model_signature_functions(models: Arc<ModelRegistry>) -> Vec<datafusion::logical_expr::ScalarUDF> {
    use datafusion::arrow::array::{AsArray, StringArray};
    use datafusion::arrow::datatypes::{DataType, Int64Type};
    use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
    let udf = |name: &str, text: fn(&Model) -> String| {
        let models = models.clone();
        create_udf(
            name,
            vec![DataType::Int64],
            DataType::Utf8,
            Volatility::Stable,
            Arc::new(move |args: &[ColumnarValue]| {
                let oids = ColumnarValue::values_to_arrays(args)?;
                let all = models.all();
                let out: StringArray = oids[0]
                    .as_primitive::<Int64Type>()
                    .iter()
                    .map(|oid| {
                        let oid = oid?;
                        all.iter().find(|m| i64::from(nowdb_catalog::pg_overlay::model_oid(m.name())) == oid).map(|m| text(m))
                    })
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }),
        )
    };
    vec![
        udf("pg_get_function_result", |m| m.signature().return_text()),
        udf("pg_get_function_arguments", |m| m.signature().arguments_text()),
    ]
}

fn query_context(catalog: Arc<Catalog>, views: Arc<ViewEngine>, models: Arc<ModelRegistry>, connectors: Arc<Connectors>) -> NowResult<SessionContext> {
    let config = SessionConfig::new()
        .with_default_catalog_and_schema(DATABASE, SCHEMA)
        .with_create_default_catalog_and_schema(true)
        // nowdb's own information_schema (PostgreSQL's names and types) replaces DataFusion's.
        .with_information_schema(false);
    let history_catalog = catalog.clone();
    let history: nowdb_udfs::asof::HistoryResolver = Arc::new(move |name| {
        let table = history_catalog.require(name.table()).map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        let versions = HistoryTable::new(table, HistoryRead::Changes)?;
        Ok(Arc::new(versions) as Arc<dyn TableProvider>)
    });
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_query_planner(Arc::new(nowdb_udfs::asof::NowdbQueryPlanner))
        .build();
    let ctx = SessionContext::new_with_state(state);
    ctx.add_analyzer_rule(Arc::new(nowdb_udfs::asof::AsOfJoinRule::new(history)));
    for marker in nowdb_udfs::asof::markers() {
        ctx.register_udf(marker);
    }
    let db = ctx
        .catalog(DATABASE)
        .ok_or_else(|| NowError::coded("XX000", "default catalog missing"))?;
    db.register_schema(SCHEMA, Arc::new(NowdbSchema::new(catalog.clone())))?;
    let listed = models.clone();
    let system = crate::system::schema_provider(vec![
        ("views", SystemTable::new(nowdb_views::views_schema(), move || nowdb_views::views_batch(&views))),
        ("models", SystemTable::new(nowdb_models::models_schema(), move || nowdb_models::models_batch(&listed))),
        ("sources", { let c = connectors.clone(); SystemTable::new(crate::kafka::sources_schema(), move || c.sources_batch()) }),
        ("dead_letters", { let c = connectors.clone(); SystemTable::new(crate::kafka::dead_letters_schema(), move || c.dead_letters_batch()) }),
        ("sinks", SystemTable::new(crate::kafka::sinks_schema(), move || connectors.sinks_batch())),
    ])?;
    db.register_schema(SYSTEM_SCHEMA, system)?;
    nowdb_catalog::provider::history::install(&ctx, catalog.clone());
    let pg_catalog_view_source = catalog.clone();
    let resolve = Arc::new(move |name: &str| {
        catalog.table(name).map(|t| Arc::new(StoredTable::new(t)) as Arc<dyn TableProvider>)
    });
    nowdb_udfs::register_all(&ctx, resolve);
    nowdb_catalog::pg::install(&ctx, pg_catalog_view_source)?;
    for udf in model_signature_functions(models) {
        ctx.register_udf(udf);
    }
    Ok(ctx)
}
