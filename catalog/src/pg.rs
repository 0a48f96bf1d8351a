//! What Postgres clients introspect: `pg_catalog`, `information_schema`, and the functions
//! drivers call on connect.
//!
//! The `pg_catalog` schema and its functions come from the `datafusion-pg-catalog` crate, which
//! derives `pg_class`, `pg_attribute`, `pg_namespace`, ... from DataFusion's catalog list, so
//! every table of [`crate::Catalog`] shows up without a second registry.
//! `information_schema` is PostgreSQL's, over `pg_catalog` ([`crate::information_schema`]). [`crate::pg_overlay`] adds what that crate cannot know (materialized
//! views, primary keys).

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use datafusion_pg_catalog::pg_catalog::context::{PgCatalogContextProvider, Role};

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

/// The role nowdb has: one superuser that can log in, named like the database. nowdb does
/// not authenticate (it listens on loopback by default), so `pg_roles` lists that role for
/// tools that look for a login role (DBeaver, psql's `\du`).
#[derive(Debug, Clone)]
struct Roles;

/// The role's name.
pub const ROLE: &str = "nowdb";

#[async_trait::async_trait]
impl PgCatalogContextProvider for Roles {
    async fn roles(&self) -> Vec<String> {
        vec![ROLE.to_string()]
    }

    async fn role(&self, name: &str) -> Option<Role> {
        (name == ROLE).then(|| Role {
            name: ROLE.to_string(),
            is_superuser: true,
            can_login: true,
            can_create_db: true,
            can_create_role: true,
            can_create_user: true,
            can_replication: false,
            grants: vec![],
            inherited_roles: vec![],
        })
    }
}

/// Installs `pg_catalog` and the Postgres functions into `ctx`.
pub fn install(ctx: &SessionContext, catalog: Arc<Catalog>) -> Result<(), DataFusionError> {
    datafusion_pg_catalog::setup_pg_catalog(ctx, DATABASE, Roles).map_err(|e| *e)?;
    let db = ctx.catalog(DATABASE).ok_or_else(|| DataFusionError::Plan(format!("catalog {DATABASE} missing")))?;
    db.register_schema("information_schema", Arc::new(crate::information_schema::InformationSchema))?;
    if let Some(inner) = db.schema("pg_catalog") {
        let overlay = crate::pg_overlay::PgCatalogOverlay::new(inner, catalog);
        for udf in overlay.functions() {
            ctx.register_udf(udf);
        }
        db.register_schema("pg_catalog", Arc::new(overlay))?;
    }
    // Every object is owned by the one role.
    ctx.register_udf(create_udf(
        "pg_get_userbyid",
        vec![DataType::Int32],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|_args: &[ColumnarValue]| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(ROLE.to_string()))))),
    ));
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
