//! `information_schema` as PostgreSQL defines it (the parts tools read: `tables`, `columns`,
//! `schemata`, `views`, `table_constraints`, `key_column_usage`), as views over `pg_catalog`.
//! DataFusion's own describes columns with Arrow type names (`Int64`) and 0-based positions;
//! Grafana, Metabase and ORMs expect `bigint`, `udt_name` and 1-based `ordinal_position`.
//!
//! Each view plans its SQL when scanned, so listing the schema (as `pg_class` does) needs no
//! planning; the declared column types below are what the planned SQL is cast to.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{cast, col, Expr, LogicalPlanBuilder};
use datafusion::physical_plan::ExecutionPlan;

/// One view: name, SQL, columns.
struct ViewDef {
    name: &'static str,
    sql: &'static str,
    columns: &'static [(&'static str, DataType)],
}

use DataType::{Int32, Utf8};

const VIEWS: &[ViewDef] = &[
    ViewDef {
        name: "schemata",
        sql: "SELECT current_database() AS catalog_name, n.nspname AS schema_name, 'nowdb' AS schema_owner, \
              NULL AS default_character_set_catalog, NULL AS default_character_set_schema, \
              NULL AS default_character_set_name, NULL AS sql_path FROM pg_catalog.pg_namespace n",
        columns: &[
            ("catalog_name", Utf8),
            ("schema_name", Utf8),
            ("schema_owner", Utf8),
            ("default_character_set_catalog", Utf8),
            ("default_character_set_schema", Utf8),
            ("default_character_set_name", Utf8),
            ("sql_path", Utf8),
        ],
    },
    ViewDef {
        name: "tables",
        sql: "SELECT current_database() AS table_catalog, n.nspname AS table_schema, c.relname AS table_name, \
              CASE WHEN c.relkind IN ('r', 'p') THEN 'BASE TABLE' WHEN c.relkind = 'v' THEN 'VIEW' \
                   WHEN c.relkind = 'f' THEN 'FOREIGN' END AS table_type, \
              NULL AS self_referencing_column_name, NULL AS reference_generation, \
              NULL AS user_defined_type_catalog, NULL AS user_defined_type_schema, NULL AS user_defined_type_name, \
              CASE WHEN c.relkind IN ('r', 'p') THEN 'YES' ELSE 'NO' END AS is_insertable_into, \
              'NO' AS is_typed, NULL AS commit_action \
              FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
              WHERE c.relkind IN ('r', 'v', 'f', 'p')",
        columns: &[
            ("table_catalog", Utf8),
            ("table_schema", Utf8),
            ("table_name", Utf8),
            ("table_type", Utf8),
            ("self_referencing_column_name", Utf8),
            ("reference_generation", Utf8),
            ("user_defined_type_catalog", Utf8),
            ("user_defined_type_schema", Utf8),
            ("user_defined_type_name", Utf8),
            ("is_insertable_into", Utf8),
            ("is_typed", Utf8),
            ("commit_action", Utf8),
        ],
    },
    ViewDef {
        name: "views",
        sql: "SELECT current_database() AS table_catalog, n.nspname AS table_schema, c.relname AS table_name, \
              NULL AS view_definition, 'NONE' AS check_option, 'NO' AS is_updatable, 'NO' AS is_insertable_into, \
              'NO' AS is_trigger_updatable, 'NO' AS is_trigger_deletable, 'NO' AS is_trigger_insertable_into \
              FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'v'",
        columns: &[
            ("table_catalog", Utf8),
            ("table_schema", Utf8),
            ("table_name", Utf8),
            ("view_definition", Utf8),
            ("check_option", Utf8),
            ("is_updatable", Utf8),
            ("is_insertable_into", Utf8),
            ("is_trigger_updatable", Utf8),
            ("is_trigger_deletable", Utf8),
            ("is_trigger_insertable_into", Utf8),
        ],
    },
    ViewDef {
        name: "columns",
        sql: "SELECT current_database() AS table_catalog, n.nspname AS table_schema, c.relname AS table_name, \
              a.attname AS column_name, a.attnum AS ordinal_position, NULL AS column_default, \
              CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END AS is_nullable, \
              CASE WHEN t.typcategory = 'A' THEN 'ARRAY' ELSE format_type(a.atttypid, -1) END AS data_type, \
              NULL AS character_maximum_length, NULL AS character_octet_length, \
              CASE a.atttypid WHEN 21 THEN 16 WHEN 23 THEN 32 WHEN 20 THEN 64 WHEN 700 THEN 24 WHEN 701 THEN 53 \
                   WHEN 1700 THEN CASE WHEN a.atttypmod = -1 THEN NULL ELSE (a.atttypmod - 4) / 65536 END END AS numeric_precision, \
              CASE WHEN a.atttypid IN (21, 23, 20, 1700) THEN 10 WHEN a.atttypid IN (700, 701) THEN 2 END AS numeric_precision_radix, \
              CASE WHEN a.atttypid IN (21, 23, 20) THEN 0 \
                   WHEN a.atttypid = 1700 THEN CASE WHEN a.atttypmod = -1 THEN NULL ELSE (a.atttypmod - 4) % 65536 END END AS numeric_scale, \
              CASE WHEN a.atttypid IN (1082) THEN 0 WHEN a.atttypid IN (1114, 1184, 1186) THEN 6 END AS datetime_precision, \
              NULL AS interval_type, NULL AS interval_precision, \
              NULL AS character_set_catalog, NULL AS character_set_schema, NULL AS character_set_name, \
              NULL AS collation_catalog, NULL AS collation_schema, NULL AS collation_name, \
              NULL AS domain_catalog, NULL AS domain_schema, NULL AS domain_name, \
              current_database() AS udt_catalog, 'pg_catalog' AS udt_schema, t.typname AS udt_name, \
              NULL AS scope_catalog, NULL AS scope_schema, NULL AS scope_name, NULL AS maximum_cardinality, \
              a.attnum AS dtd_identifier, 'NO' AS is_self_referencing, 'NO' AS is_identity, \
              NULL AS identity_generation, NULL AS identity_start, NULL AS identity_increment, \
              NULL AS identity_maximum, NULL AS identity_minimum, NULL AS identity_cycle, \
              'NEVER' AS is_generated, NULL AS generation_expression, \
              CASE WHEN c.relkind IN ('r', 'p') THEN 'YES' ELSE 'NO' END AS is_updatable \
              FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON a.attrelid = c.oid \
              JOIN pg_catalog.pg_namespace n ON c.relnamespace = n.oid \
              JOIN pg_catalog.pg_type t ON a.atttypid = t.oid \
              WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'v', 'f', 'p')",
        columns: &[
            ("table_catalog", Utf8),
            ("table_schema", Utf8),
            ("table_name", Utf8),
            ("column_name", Utf8),
            ("ordinal_position", Int32),
            ("column_default", Utf8),
            ("is_nullable", Utf8),
            ("data_type", Utf8),
            ("character_maximum_length", Int32),
            ("character_octet_length", Int32),
            ("numeric_precision", Int32),
            ("numeric_precision_radix", Int32),
            ("numeric_scale", Int32),
            ("datetime_precision", Int32),
            ("interval_type", Utf8),
            ("interval_precision", Int32),
            ("character_set_catalog", Utf8),
            ("character_set_schema", Utf8),
            ("character_set_name", Utf8),
            ("collation_catalog", Utf8),
            ("collation_schema", Utf8),
            ("collation_name", Utf8),
            ("domain_catalog", Utf8),
            ("domain_schema", Utf8),
            ("domain_name", Utf8),
            ("udt_catalog", Utf8),
            ("udt_schema", Utf8),
            ("udt_name", Utf8),
            ("scope_catalog", Utf8),
            ("scope_schema", Utf8),
            ("scope_name", Utf8),
            ("maximum_cardinality", Int32),
            ("dtd_identifier", Utf8),
            ("is_self_referencing", Utf8),
            ("is_identity", Utf8),
            ("identity_generation", Utf8),
            ("identity_start", Utf8),
            ("identity_increment", Utf8),
            ("identity_maximum", Utf8),
            ("identity_minimum", Utf8),
            ("identity_cycle", Utf8),
            ("is_generated", Utf8),
            ("generation_expression", Utf8),
            ("is_updatable", Utf8),
        ],
    },
    ViewDef {
        name: "table_constraints",
        sql: "SELECT current_database() AS constraint_catalog, n.nspname AS constraint_schema, con.conname AS constraint_name, \
              current_database() AS table_catalog, n.nspname AS table_schema, c.relname AS table_name, \
              'PRIMARY KEY' AS constraint_type, 'NO' AS is_deferrable, 'NO' AS initially_deferred, 'YES' AS enforced, \
              NULL AS nulls_distinct \
              FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_class c ON con.conrelid = c.oid \
              JOIN pg_catalog.pg_namespace n ON c.relnamespace = n.oid WHERE con.contype = 'p'",
        columns: &[
            ("constraint_catalog", Utf8),
            ("constraint_schema", Utf8),
            ("constraint_name", Utf8),
            ("table_catalog", Utf8),
            ("table_schema", Utf8),
            ("table_name", Utf8),
            ("constraint_type", Utf8),
            ("is_deferrable", Utf8),
            ("initially_deferred", Utf8),
            ("enforced", Utf8),
            ("nulls_distinct", Utf8),
        ],
    },
    ViewDef {
        name: "key_column_usage",
        sql: "SELECT current_database() AS constraint_catalog, k.nspname AS constraint_schema, k.conname AS constraint_name, \
              current_database() AS table_catalog, k.nspname AS table_schema, k.relname AS table_name, \
              a.attname AS column_name, k.position AS ordinal_position, NULL AS position_in_unique_constraint \
              FROM (SELECT con.conname, con.conrelid, n.nspname, c.relname, unnest(con.conkey) AS attnum, \
                           unnest(generate_series(1, cardinality(con.conkey))) AS position \
                    FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_class c ON con.conrelid = c.oid \
                    JOIN pg_catalog.pg_namespace n ON c.relnamespace = n.oid WHERE con.contype = 'p') k \
              JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.attnum",
        columns: &[
            ("constraint_catalog", Utf8),
            ("constraint_schema", Utf8),
            ("constraint_name", Utf8),
            ("table_catalog", Utf8),
            ("table_schema", Utf8),
            ("table_name", Utf8),
            ("column_name", Utf8),
            ("ordinal_position", Int32),
            ("position_in_unique_constraint", Int32),
        ],
    },
];

/// The `information_schema` schema.
#[derive(Debug, Default)]
pub struct InformationSchema;

#[async_trait]
impl SchemaProvider for InformationSchema {
    fn table_names(&self) -> Vec<String> {
        VIEWS.iter().map(|v| v.name.to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        Ok(VIEWS.iter().position(|v| v.name == name).map(|i| Arc::new(InformationView(i)) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        VIEWS.iter().any(|v| v.name == name)
    }
}

/// One view, planned when scanned.
#[derive(Debug)]
struct InformationView(usize);

impl InformationView {
    fn def(&self) -> &'static ViewDef {
        &VIEWS[self.0]
    }
}

#[async_trait]
impl TableProvider for InformationView {
    fn schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self.def().columns.iter().map(|(n, t)| Field::new(*n, t.clone(), true)).collect();
        Arc::new(Schema::new(fields))
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        let state = state
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| DataFusionError::Internal("information_schema needs a SessionState".into()))?;
        let plan = state.create_logical_plan(self.def().sql).await?;
        let columns = self.def().columns;
        let wanted: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..columns.len()).collect());
        let exprs: Vec<Expr> = wanted.iter().map(|&i| cast(col(columns[i].0), columns[i].1.clone()).alias(columns[i].0)).collect();
        let plan = LogicalPlanBuilder::from(plan).project(exprs)?.limit(0, limit)?.build()?;
        state.create_physical_plan(&plan).await
    }
}
