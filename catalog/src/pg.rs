//! What Postgres clients introspect: `pg_catalog`, `information_schema`, and the functions
//! drivers call on connect.
//!
//! The `pg_catalog` schema and its functions come from the `datafusion-pg-catalog` crate, which
//! derives `pg_class`, `pg_attribute`, `pg_namespace`, ... from DataFusion's catalog list, so
//! every table of [`crate::Catalog`] shows up without a second registry. `information_schema`
//! is DataFusion's own. [`crate::pg_overlay`] adds what that crate cannot know (materialized
//! views, primary keys).

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
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
        let overlay = crate::pg_overlay::PgCatalogOverlay::new(inner, catalog);
        for udf in overlay.functions() {
            ctx.register_udf(udf);
        }
        db.register_schema("pg_catalog", Arc::new(overlay))?;
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
