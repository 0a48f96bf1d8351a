//! `pg_catalog` as `datafusion-pg-catalog` builds it, with what that crate cannot know about
//! nowdb's tables:
//! - a materialized view is `relkind = 'm'` in `pg_class` (psql's `\dm`, DBeaver, Metabase),
//!   and `pg_class` has PostgreSQL's `reloptions` (NULL: no storage parameters);
//! - a keyed table's primary key is a constraint (`pg_constraint`, `contype = 'p'`, `conkey`)
//!   backed by a unique index (`pg_index`, `indkey`; `pg_class` row `<table>_pkey`, relkind
//!   `i`), which is what drivers reflect (pgjdbc's `getPrimaryKeys`, SQLAlchemy's
//!   `get_pk_constraint`, DBeaver, psql's `\di`);
//! - a model is a function in `pg_proc` (psql's `\df`), with the OID [`model_oid`] gives it;
//! - a column's type is its declared type in `pg_attribute` (`real[]`, `numeric(10,2)`; the
//!   crate reports arrays as text and drops numeric's precision).
//!
//! The overlay tables are views over the crate's `pg_class`, so tables keep the OIDs it
//! assigned; an index's OID is [`INDEX_OID_BASE`] plus nowdb's table id (its constraint's,
//! twice the base), so `pg_get_indexdef` can find the table. `pg_index` and `pg_constraint`
//! hold nowdb's keys only (the crate's are PostgreSQL's own system catalogs' rows, which no
//! client needs).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, Int16Builder, Int32Array, ListBuilder, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
use datafusion::catalog::{MemTable, SchemaProvider, TableProvider};
use datafusion::datasource::{provider_as_source, ViewTable};
use datafusion::error::DataFusionError;
use datafusion::functions::expr_fn::{coalesce, concat};
use datafusion::functions_nested::expr_fn::cardinality;
use datafusion::logical_expr::{
    cast, col, create_udf, lit, ColumnarValue, Expr, JoinType, LogicalPlan, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::scalar::ScalarValue;

use crate::catalog::Catalog;
use crate::table::TableKind;

/// A primary key index's OID is this plus the table's id; its constraint's, twice this plus
/// the id.
pub const INDEX_OID_BASE: i32 = 1 << 28;

/// Models' function OIDs are in [3 × 2^28, 4 × 2^28).
const MODEL_OID_BASE: i32 = 3 << 28;

/// The OID of the function a model is: stable for its name (FNV-1a).
pub fn model_oid(name: &str) -> i32 {
    let hash = name.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    MODEL_OID_BASE + (hash & 0x0fff_ffff) as i32
}

/// The overlay schema provider.
#[derive(Debug)]
pub struct PgCatalogOverlay {
    inner: Arc<dyn SchemaProvider>,
    catalog: Arc<Catalog>,
    relkind: ScalarUDF,
    key_attnums: ScalarUDF,
    index_oid: ScalarUDF,
    indexdef: ScalarUDF,
    column_type: ScalarUDF,
    viewdef: ScalarUDF,
}

impl PgCatalogOverlay {
    /// `inner` (the crate's pg_catalog) seen with `catalog`'s views and keys.
    pub fn new(inner: Arc<dyn SchemaProvider>, catalog: Arc<Catalog>) -> Self {
        Self {
            inner,
            catalog: catalog.clone(),
            relkind: relkind_udf(catalog.clone()),
            key_attnums: key_attnums_udf(catalog.clone()),
            index_oid: index_oid_udf(catalog.clone()),
            indexdef: ScalarUDF::new_from_impl(PgGetIndexdef::new(catalog.clone())),
            column_type: column_type_udf(catalog.clone()),
            viewdef: viewdef_udf(catalog),
        }
    }

    /// The functions the overlay's views call, to register on the session.
    pub fn functions(&self) -> Vec<ScalarUDF> {
        vec![self.relkind.clone(), self.key_attnums.clone(), self.index_oid.clone(), self.indexdef.clone(), self.column_type.clone(), self.viewdef.clone()]
    }

    /// `nowdb_key_attnums(relname, relkind)`: the primary key's column numbers, NULL when the
    /// relation has no primary key.
    fn keys(&self) -> Expr {
        self.key_attnums.call(vec![col("relname"), col("relkind")])
    }

    /// The primary key index's OID.
    fn index_oid(&self) -> Expr {
        self.index_oid.call(vec![col("relname")])
    }

    fn scan(class: &Arc<dyn TableProvider>) -> Result<LogicalPlanBuilder, DataFusionError> {
        LogicalPlanBuilder::scan("pg_class", provider_as_source(class.clone()), None)
    }

    /// pg_class: the crate's rows with materialized views' relkind, then one index row per
    /// primary key.
    fn pg_class(&self, class: &Arc<dyn TableProvider>) -> Result<LogicalPlan, DataFusionError> {
        let schema = class.schema();
        let base: Vec<Expr> = schema
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                "relkind" => self.relkind.call(vec![col("relname"), col("relkind")]).alias("relkind"),
                "relhasindex" => self.keys().is_not_null().alias("relhasindex"),
                other => col(other),
            })
            .chain(std::iter::once(null_list(DataType::Utf8).alias("reloptions")))
            .collect();
        let index: Vec<Expr> = schema
            .fields()
            .iter()
            .map(|f| {
                let name = f.name().as_str();
                let e = match name {
                    "oid" => self.index_oid(),
                    "relname" => concat(vec![col("relname"), lit("_pkey")]),
                    "relkind" => lit("i"),
                    "reltype" => lit(0i32),
                    "relam" => lit(403i32), // btree
                    "relnatts" => cast(cardinality(self.keys()), DataType::Int16),
                    "relhasindex" => lit(false),
                    other => col(other),
                };
                e.alias(name)
            })
            .chain(std::iter::once(null_list(DataType::Utf8).alias("reloptions")))
            .collect();
        let index = Self::scan(class)?.filter(self.keys().is_not_null())?.project(index)?.build()?;
        Self::scan(class)?.project(base)?.union(index)?.build()
    }

    /// pg_index: one unique, primary index per keyed table.
    fn pg_index(&self, class: &Arc<dyn TableProvider>) -> Result<LogicalPlan, DataFusionError> {
        let oids = || null_list(DataType::Int32);
        let exprs = vec![
            self.index_oid().alias("indexrelid"),
            col("oid").alias("indrelid"),
            cast(cardinality(self.keys()), DataType::Int16).alias("indnatts"),
            cast(cardinality(self.keys()), DataType::Int16).alias("indnkeyatts"),
            lit(true).alias("indisunique"),
            lit(false).alias("indnullsnotdistinct"),
            lit(true).alias("indisprimary"),
            lit(false).alias("indisexclusion"),
            lit(true).alias("indimmediate"),
            lit(false).alias("indisclustered"),
            lit(true).alias("indisvalid"),
            lit(false).alias("indcheckxmin"),
            lit(true).alias("indisready"),
            lit(true).alias("indislive"),
            lit(false).alias("indisreplident"),
            self.keys().alias("indkey"),
            oids().alias("indcollation"),
            oids().alias("indclass"),
            null_list(DataType::Int16).alias("indoption"),
            lit(ScalarValue::Utf8(None)).alias("indexprs"),
            lit(ScalarValue::Utf8(None)).alias("indpred"),
        ];
        Self::scan(class)?.filter(self.keys().is_not_null())?.project(exprs)?.build()
    }

    /// pg_constraint: the primary key constraint of each keyed table.
    fn pg_constraint(&self, class: &Arc<dyn TableProvider>) -> Result<LogicalPlan, DataFusionError> {
        let exprs = vec![
            (self.index_oid() + lit(INDEX_OID_BASE)).alias("oid"),
            concat(vec![col("relname"), lit("_pkey")]).alias("conname"),
            col("relnamespace").alias("connamespace"),
            lit("p").alias("contype"),
            lit(false).alias("condeferrable"),
            lit(false).alias("condeferred"),
            lit(true).alias("convalidated"),
            col("oid").alias("conrelid"),
            lit(0i32).alias("contypid"),
            self.index_oid().alias("conindid"),
            lit(0i32).alias("conparentid"),
            lit(0i32).alias("confrelid"),
            lit(" ").alias("confupdtype"),
            lit(" ").alias("confdeltype"),
            lit(" ").alias("confmatchtype"),
            lit(true).alias("conislocal"),
            lit(0i16).alias("coninhcount"),
            lit(true).alias("connoinherit"),
            self.keys().alias("conkey"),
            null_list(DataType::Int16).alias("confkey"),
            null_list(DataType::Int32).alias("conpfeqop"),
            null_list(DataType::Int32).alias("conppeqop"),
            null_list(DataType::Int32).alias("conffeqop"),
            null_list(DataType::Int16).alias("confdelsetcols"),
            null_list(DataType::Int32).alias("conexclop"),
            lit(ScalarValue::Utf8(None)).alias("conbin"),
        ];
        Self::scan(class)?.filter(self.keys().is_not_null())?.project(exprs)?.build()
    }
}

impl PgCatalogOverlay {
    /// pg_attribute: the crate's rows with nowdb columns' declared types (OID and modifier).
    fn pg_attribute(&self, attribute: &Arc<dyn TableProvider>, class: &Arc<dyn TableProvider>) -> Result<LogicalPlan, DataFusionError> {
        let relations = Self::scan(class)?.project(vec![col("oid").alias("rel_oid"), col("relname").alias("rel_name")])?.build()?;
        let typed = |what: &str| self.column_type.call(vec![col("rel_name"), col("attname"), lit(what)]);
        let exprs: Vec<Expr> = attribute
            .schema()
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                "atttypid" => coalesce(vec![typed("oid"), col("atttypid")]).alias("atttypid"),
                "atttypmod" => coalesce(vec![typed("typmod"), col("atttypmod")]).alias("atttypmod"),
                other => col(other),
            })
            .collect();
        LogicalPlanBuilder::scan("pg_attribute", provider_as_source(attribute.clone()), None)?
            .join(relations, JoinType::Left, (vec!["attrelid"], vec!["rel_oid"]), None)?
            .project(exprs)?
            .build()
    }

    /// pg_proc: the crate's functions, then one per model (in `public`), listed as of planning.
    fn pg_proc(&self, proc: &Arc<dyn TableProvider>, namespace: &Arc<dyn TableProvider>) -> Result<LogicalPlan, DataFusionError> {
        let models = self.catalog.models().map_err(|e| DataFusionError::External(Box::new(e)))?;
        let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
        let oids: Vec<i32> = names.iter().map(|n| model_oid(n)).collect();
        let schema = Arc::new(Schema::new(vec![Field::new("model_oid", DataType::Int32, false), Field::new("model_name", DataType::Utf8, false)]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int32Array::from(oids)), Arc::new(StringArray::from(names))])?;
        let models = Arc::new(MemTable::try_new(schema, vec![vec![batch]])?);
        let public = LogicalPlanBuilder::scan("pg_namespace", provider_as_source(namespace.clone()), None)?
            .filter(col("nspname").eq(lit("public")))?
            .project(vec![col("oid").alias("public_oid")])?
            .build()?;
        let exprs: Vec<Expr> = proc
            .schema()
            .fields()
            .iter()
            .map(|f| {
                let value = match f.name().as_str() {
                    "oid" => col("model_oid"),
                    "proname" => col("model_name"),
                    "pronamespace" => col("public_oid"),
                    "prokind" => lit("f"),
                    "proretset" => lit(false),
                    "provolatile" => lit("v"),
                    _ => lit(ScalarValue::Null),
                };
                cast(value, f.data_type().clone()).alias(f.name())
            })
            .collect();
        let model_rows = LogicalPlanBuilder::scan("nowdb_models", provider_as_source(models), None)?
            .cross_join(public)?
            .project(exprs)?
            .build()?;
        LogicalPlanBuilder::scan("pg_proc", provider_as_source(self.proc_namespaces_resolved(proc, namespace)?), None)?.union(model_rows)?.build()
    }

    /// The crate's pg_proc with every `pronamespace` naming a row of pg_namespace: its
    /// information_schema functions carry PostgreSQL's OID for that schema (13283), which its
    /// pg_namespace numbers differently, so a join or lookup by namespace found nothing
    /// (sqlsmith reads every routine's schema name that way).
    fn proc_namespaces_resolved(&self, proc: &Arc<dyn TableProvider>, namespace: &Arc<dyn TableProvider>) -> Result<Arc<dyn TableProvider>, DataFusionError> {
        let known = LogicalPlanBuilder::scan("pg_namespace", provider_as_source(namespace.clone()), None)?
            .project(vec![col("oid").alias("known_ns")])?
            .build()?;
        let info_schema = LogicalPlanBuilder::scan("pg_namespace", provider_as_source(namespace.clone()), None)?
            .filter(col("nspname").eq(lit("information_schema")))?
            .project(vec![col("oid").alias("info_schema_oid")])?
            .build()?;
        let exprs: Vec<Expr> = proc
            .schema()
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                "pronamespace" => datafusion::logical_expr::when(col("known_ns").is_null(), col("info_schema_oid"))
                    .otherwise(col("pronamespace"))
                    .map(|e| cast(e, f.data_type().clone()).alias("pronamespace")),
                name => Ok(col(format!("pg_proc.{name}")).alias(name)),
            })
            .collect::<Result<_, _>>()?;
        let plan = LogicalPlanBuilder::scan("pg_proc", provider_as_source(proc.clone()), None)?
            .join(known, JoinType::Left, (vec!["pronamespace"], vec!["known_ns"]), None)?
            .cross_join(info_schema)?
            .project(exprs)?
            .build()?;
        Ok(Arc::new(ViewTable::new(plan, None)))
    }
}

/// A NULL array of `element`s.
fn null_list(element: DataType) -> Expr {
    cast(lit(ScalarValue::Null), DataType::List(Arc::new(Field::new("item", element, true))))
}

#[async_trait]
impl SchemaProvider for PgCatalogOverlay {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        if name == "pg_proc" {
            let (Some(proc), Some(namespace)) = (self.inner.table("pg_proc").await?, self.inner.table("pg_namespace").await?) else {
                return self.inner.table(name).await;
            };
            return Ok(Some(Arc::new(ViewTable::new(self.pg_proc(&proc, &namespace)?, None))));
        }
        if name == "pg_attribute" {
            let (Some(attribute), Some(class)) = (self.inner.table("pg_attribute").await?, self.inner.table("pg_class").await?) else {
                return self.inner.table(name).await;
            };
            return Ok(Some(Arc::new(ViewTable::new(self.pg_attribute(&attribute, &class)?, None))));
        }
        if !matches!(name, "pg_class" | "pg_index" | "pg_constraint") {
            return self.inner.table(name).await;
        }
        let Some(class) = self.inner.table("pg_class").await? else { return self.inner.table(name).await };
        let plan = match name {
            "pg_class" => self.pg_class(&class)?,
            "pg_index" => self.pg_index(&class)?,
            _ => self.pg_constraint(&class)?,
        };
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

/// `nowdb_key_attnums(relname, relkind)`: a keyed table's primary key columns as 1-based
/// column numbers (`int2vector` in PostgreSQL), in key order; NULL for other relations.
fn key_attnums_udf(catalog: Arc<Catalog>) -> ScalarUDF {
    let list = DataType::List(Arc::new(Field::new("item", DataType::Int16, true)));
    create_udf(
        "nowdb_key_attnums",
        vec![DataType::Utf8, DataType::Utf8],
        list,
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let (names, kinds) = (arrays[0].as_string::<i32>(), arrays[1].as_string::<i32>());
            let mut out = ListBuilder::new(Int16Builder::new());
            for i in 0..names.len() {
                let key = match (names.is_valid(i).then(|| names.value(i)), kinds.is_valid(i).then(|| kinds.value(i))) {
                    (Some(name), Some("r")) => catalog.table(name).and_then(|t| match &t.def().kind {
                        TableKind::Keyed { primary_key } => Some(primary_key.clone()),
                        _ => None,
                    }),
                    _ => None,
                };
                match key {
                    Some(columns) => {
                        for c in columns {
                            out.values().append_value(c as i16 + 1);
                        }
                        out.append(true);
                    }
                    None => out.append(false),
                }
            }
            Ok(ColumnarValue::Array(Arc::new(out.finish())))
        }),
    )
}

/// `nowdb_index_oid(relname)`: the OID of a table's primary key index.
fn index_oid_udf(catalog: Arc<Catalog>) -> ScalarUDF {
    create_udf(
        "nowdb_index_oid",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let out: Int32Array = arrays[0]
                .as_string::<i32>()
                .iter()
                .map(|name| name.and_then(|n| catalog.table(n)).map(|t| INDEX_OID_BASE + t.def().id as i32))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    )
}

/// `pg_get_indexdef(index oid [, column, pretty])`: `CREATE UNIQUE INDEX users_pkey ON
/// public.users USING btree (user_id)` for a primary key index; NULL for other OIDs.
#[derive(Debug)]
struct PgGetIndexdef {
    catalog: Arc<Catalog>,
    signature: Signature,
}

impl PgGetIndexdef {
    fn new(catalog: Arc<Catalog>) -> Self {
        Self { catalog, signature: Signature::variadic_any(Volatility::Stable) }
    }

    fn definition(&self, oid: i64) -> Option<String> {
        let id = u32::try_from(oid - i64::from(INDEX_OID_BASE)).ok()?;
        let table = self.catalog.tables().into_iter().find(|t| t.def().id == id)?;
        let def = table.def();
        let TableKind::Keyed { primary_key } = &def.kind else { return None };
        let columns: Vec<&str> = primary_key.iter().filter_map(|&i| def.columns.get(i)).map(|c| c.name.as_str()).collect();
        Some(format!("CREATE UNIQUE INDEX {0}_pkey ON public.{0} USING btree ({1})", def.name, columns.join(", ")))
    }
}

impl PartialEq for PgGetIndexdef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.catalog, &other.catalog)
    }
}

impl Eq for PgGetIndexdef {}

impl std::hash::Hash for PgGetIndexdef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "pg_get_indexdef".hash(state);
    }
}

impl ScalarUDFImpl for PgGetIndexdef {
    fn name(&self) -> &str {
        "pg_get_indexdef"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType, DataFusionError> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue, DataFusionError> {
        let oids = args.args.first().ok_or_else(|| DataFusionError::Plan("pg_get_indexdef(oid)".into()))?;
        let oids = datafusion::arrow::compute::cast(&oids.to_array(args.number_rows)?, &DataType::Int64)?;
        let out: StringArray = oids.as_primitive::<Int64Type>().iter().map(|oid| oid.and_then(|o| self.definition(o))).collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `nowdb_column_type(relname, attname, 'oid' | 'typmod')`: a nowdb column's declared type
/// OID or modifier; NULL for other relations.
fn column_type_udf(catalog: Arc<Catalog>) -> ScalarUDF {
    create_udf(
        "nowdb_column_type",
        vec![DataType::Utf8, DataType::Utf8, DataType::Utf8],
        DataType::Int32,
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let (tables, columns, what) = (arrays[0].as_string::<i32>(), arrays[1].as_string::<i32>(), arrays[2].as_string::<i32>());
            let out: Int32Array = (0..tables.len())
                .map(|i| {
                    if tables.is_null(i) || columns.is_null(i) {
                        return None;
                    }
                    let table = catalog.table(tables.value(i))?;
                    let def = table.def();
                    let column = def.columns.get(def.column_index(columns.value(i))?)?;
                    match what.value(i) {
                        "typmod" => Some(column.ty.typmod()),
                        _ => column.ty.oid(),
                    }
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    )
}

/// `nowdb_viewdef(relname)`: a materialized view's defining query (what `pg_get_viewdef`
/// answers); NULL for other relations.
fn viewdef_udf(catalog: Arc<Catalog>) -> ScalarUDF {
    create_udf(
        "nowdb_viewdef",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let out: StringArray = arrays[0]
                .as_string::<i32>()
                .iter()
                .map(|name| match &catalog.table(name?)?.def().kind {
                    TableKind::View(meta) => Some(format!(" {};", meta.query)),
                    _ => None,
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    )
}
