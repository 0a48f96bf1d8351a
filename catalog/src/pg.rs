//! What Postgres clients introspect: `pg_catalog`, `information_schema`, and the functions
//! drivers call on connect.
//!
//! The `pg_catalog` schema and its functions come from the `datafusion-pg-catalog` crate, which
//! derives `pg_class`, `pg_attribute`, `pg_namespace`, ... from DataFusion's catalog list, so
//! every table of [`crate::Catalog`] shows up without a second registry. `information_schema`
//! is DataFusion's own. [`PgCatalogOverlay`] adjusts what that crate cannot know: a
//! materialized view is `relkind = 'm'` in `pg_class` (psql's `\dm`, DBeaver, Metabase).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{AsArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::datasource::ViewTable;
use datafusion::datasource::provider_as_source;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{col, create_udf, ColumnarValue, Expr, LogicalPlanBuilder, ScalarUDF, Volatility};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;

use crate::{Catalog, DATABASE};

/// The PostgreSQL version nowdb speaks, as reported in `server_version`.
pub const PG_VERSION: &str = "15.0";

/// `version()`'s text: PostgreSQL-style, so that ORMs and drivers that parse it work.
pub fn version_string() -> String {
    format!(
        "PostgreSQL {PG_VERSION} (nowdb {}) on {}-unknown-linux-gnu, 64-bit",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
}

/// Installs `pg_catalog` and the Postgres functions into `ctx`.
pub fn install(ctx: &SessionContext, catalog: Arc<Catalog>) -> Result<(), DataFusionError> {
    datafusion_pg_catalog::setup_pg_catalog(ctx, DATABASE, EmptyContextProvider).map_err(|e| *e)?;
    let db = ctx.catalog(DATABASE).ok_or_else(|| DataFusionError::Plan(format!("catalog {DATABASE} missing")))?;
    if let Some(inner) = db.schema("pg_catalog") {
        let relkind = relkind_udf(catalog);
        ctx.register_udf(relkind.clone());
        db.register_schema("pg_catalog", Arc::new(PgCatalogOverlay { inner, relkind }))?;
    }
    for f in crate::pg_functions::functions() {
        ctx.register_udf(f);
    }
    let version = version_string();
    ctx.register_udf(create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_args: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(version.clone()))))
        }),
    ));
    Ok(())
}

/// `pg_catalog` as `datafusion-pg-catalog` builds it, with `pg_class` seen through a view that
/// gives materialized views their relkind.
#[derive(Debug)]
pub struct PgCatalogOverlay {
    inner: Arc<dyn SchemaProvider>,
    relkind: ScalarUDF,
}

#[async_trait]
impl SchemaProvider for PgCatalogOverlay {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        let Some(table) = self.inner.table(name).await? else { return Ok(None) };
        if name != "pg_class" {
            return Ok(Some(table));
        }
        let exprs: Vec<Expr> = table
            .schema()
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                "relkind" => self.relkind.call(vec![col("relname"), col("relkind")]).alias("relkind"),
                other => col(other),
            })
            .collect();
        let plan = LogicalPlanBuilder::scan("pg_class", provider_as_source(table), None)?.project(exprs)?.build()?;
        Ok(Some(Arc::new(ViewTable::new(plan, None))))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

/// `nowdb_relkind(relname, relkind)`: `m` for nowdb's materialized views, else `relkind`.
fn relkind_udf(catalog: Arc<Catalog>) -> ScalarUDF {
    create_udf(
        "nowdb_relkind",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let (names, kinds) = (arrays[0].as_string::<i32>(), arrays[1].as_string::<i32>());
            let out: StringArray = names
                .iter()
                .zip(kinds.iter())
                .map(|(name, kind)| match (name, kind) {
                    (Some(n), Some("v")) if catalog.table(n).is_some_and(|t| t.is_view()) => Some("m"),
                    (_, kind) => kind,
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    )
}
