//! The fast path for the online feature read: `SELECT cols FROM keyed_table WHERE pk = $1
//! [AND pk2 = $2]`, recognized once at prepare time and executed as one RocksDB `get` per
//! call, without DataFusion's per-execution optimizer, physical planner and thread hops.
//!
//! The select list may also compute over the row and the parameters (request-time scoring:
//! `SELECT fraud($2, f.n, f.total) FROM user_stats f WHERE f.user_id = $1`): those
//! expressions are compiled once, with each `$n` read as a column of the one-row batch the
//! lookup builds, and evaluated on the row read.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema};
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::expr::Placeholder;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator};
use datafusion::physical_expr::{create_physical_expr, PhysicalExpr};
use datafusion::scalar::ScalarValue;
use nowdb_storage::{keys, rowcodec, Cf};

use super::access::{cast_exact, split_and};
use crate::catalog::{Catalog, Table};
use crate::{CatalogError, Result};

/// Where a key column's value comes from.
#[derive(Debug, Clone)]
enum KeyValue {
    /// `$n` (0-based index).
    Param(usize),
    /// A constant in the query.
    Literal(ScalarValue),
}

/// A recognized point lookup.
#[derive(Debug, Clone)]
pub struct PointLookup {
    table: String,
    table_id: u32,
    /// Per primary-key column, in key order.
    key: Vec<KeyValue>,
    /// Table column indexes returned, in output order.
    projection: Vec<usize>,
    /// Set when the select list computes: expressions over the whole row followed by the
    /// parameters they read.
    computed: Option<Computed>,
}

/// A select list evaluated over `[row columns..., $a, $b, ...]`.
#[derive(Debug, Clone)]
struct Computed {
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    /// (0-based parameter index, its type) per extra input column.
    params: Vec<(usize, datafusion::arrow::datatypes::DataType)>,
    input: SchemaRef,
}

impl PointLookup {
    /// Recognizes `Projection(columns) <- Filter(pk equalities) <- TableScan(keyed table)`.
    pub fn recognize(catalog: &Catalog, plan: &LogicalPlan) -> Option<Self> {
        let LogicalPlan::Projection(p) = plan else { return None };
        let mut input = p.input.as_ref();
        let LogicalPlan::Filter(f) = input else { return None };
        input = f.input.as_ref();
        while let LogicalPlan::SubqueryAlias(a) = input {
            input = a.input.as_ref();
        }
        let LogicalPlan::TableScan(scan) = input else { return None };
        if !scan.filters.is_empty() || scan.fetch.is_some() {
            return None;
        }
        let table = catalog.table(scan.table_name.table())?;
        let def = table.def();
        if !table.is_keyed() || def.primary_key().is_empty() || scan.projection.as_ref().is_some_and(|proj| proj.len() != def.columns.len()) {
            return None;
        }
        let mut found: Vec<Option<KeyValue>> = vec![None; def.primary_key().len()];
        let mut conjuncts = Vec::new();
        split_and(&f.predicate, &mut conjuncts);
        for e in conjuncts {
            let Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) = e else { return None };
            let (col, value) = match (left.as_ref(), right.as_ref()) {
                (Expr::Column(c), other) | (other, Expr::Column(c)) => (c, key_value(other)?),
                _ => return None,
            };
            let idx = def.column_index(&col.name)?;
            let pos = def.primary_key().iter().position(|&k| k == idx)?;
            if found[pos].replace(value).is_some() {
                return None;
            }
        }
        let key = found.into_iter().collect::<Option<Vec<_>>>()?;
        let projection = p
            .expr
            .iter()
            .map(|e| match e.clone().unalias() {
                Expr::Column(c) => def.column_index(&c.name),
                _ => None,
            })
            .collect::<Option<Vec<_>>>();
        match projection {
            Some(projection) => Some(Self { table: def.name.clone(), table_id: def.id, key, projection, computed: None }),
            None => {
                let computed = Computed::compile(&p.expr, p.input.schema())?;
                let projection = (0..def.columns.len()).collect();
                Some(Self { table: def.name.clone(), table_id: def.id, key, projection, computed: Some(computed) })
            }
        }
    }

    /// Whether the select list only names columns (no expression to evaluate).
    pub fn is_plain(&self) -> bool {
        self.computed.is_none()
    }

    /// Reads the row for `params` (`$1` first). `Ok(None)` when the table changed since the
    /// lookup was recognized (the caller falls back to the general plan).
    pub fn execute(&self, catalog: &Catalog, params: &[ScalarValue], schema: &SchemaRef) -> Result<Option<RecordBatch>> {
        let Some(table) = catalog.table(&self.table).filter(|t| t.def().id == self.table_id) else {
            return Ok(None);
        };
        let Some(key) = self.encode_key(&table, params)? else {
            return Ok(Some(RecordBatch::new_empty(schema.clone())));
        };
        let batch = match table.store().get(Cf::Rows, &key)? {
            Some(bytes) => rowcodec::decode_rows([bytes.as_slice()], table.schema(), Some(&self.projection))?,
            None => return Ok(Some(RecordBatch::new_empty(schema.clone()))),
        };
        let batch = match &self.computed {
            Some(c) => c.evaluate(batch, params)?,
            None => batch,
        };
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        let columns = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(c, f)| if c.data_type() == f.data_type() { Ok(c.clone()) } else { datafusion::arrow::compute::cast(c, f.data_type()) })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let batch = RecordBatch::try_new_with_options(schema.clone(), columns, &options)?;
        Ok(Some(batch))
    }

    /// The encoded key, or `None` when no row can match (a NULL or unrepresentable value).
    fn encode_key(&self, table: &Arc<Table>, params: &[ScalarValue]) -> Result<Option<Vec<u8>>> {
        let def = table.def();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.key.len());
        for (source, &col) in self.key.iter().zip(def.primary_key()) {
            let value = match source {
                KeyValue::Param(i) => params.get(*i).cloned().ok_or_else(|| {
                    CatalogError::DataFusion(datafusion::error::DataFusionError::Execution(format!(
                        "Placeholder '${}' was not provided a value for execution.",
                        i + 1
                    )))
                })?,
                KeyValue::Literal(v) => v.clone(),
            };
            if value.is_null() {
                return Ok(None);
            }
            // A value the key type cannot hold exactly (1.5 for a bigint key) matches no row.
            let Some(value) = cast_exact(&value, table.schema().field(col).data_type()) else {
                return Ok(None);
            };
            columns.push(value.to_array()?);
        }
        Ok(Some(keys::row_key(def.id, &columns, 0)?))
    }
}

impl Computed {
    /// Compiles a select list over `input` (the scanned row's schema); `None` for what the
    /// fast path does not do (aggregates, subqueries, untyped parameters).
    fn compile(select: &[Expr], input: &DFSchema) -> Option<Computed> {
        let mut params: Vec<(usize, datafusion::arrow::datatypes::DataType)> = Vec::new();
        let mut rewritten = Vec::with_capacity(select.len());
        for e in select {
            let mut ok = true;
            // `$n` as a column of type `ty` (the value is cast to it at execution).
            let mut param = |id: &str, ty: &datafusion::arrow::datatypes::DataType| -> Option<Expr> {
                let n = id.trim_start_matches('$').parse::<usize>().ok()?.checked_sub(1)?;
                if !params.iter().any(|(i, _)| *i == n) {
                    params.push((n, ty.clone()));
                }
                Some(Expr::Column(Column::from_name(param_column(n))))
            };
            let e = e
                .clone()
                .unalias()
                .transform_down(|e| {
                    let replaced = match &e {
                        // `$n::type`: the parameter read as that type.
                        Expr::Cast(c) => match c.expr.as_ref() {
                            Expr::Placeholder(Placeholder { id, field: None }) => Some(param(id, c.field.data_type())),
                            _ => None,
                        },
                        Expr::Placeholder(Placeholder { id, field: Some(f) }) => Some(param(id, f.data_type())),
                        Expr::Placeholder(_)
                        | Expr::AggregateFunction(_)
                        | Expr::WindowFunction(_)
                        | Expr::ScalarSubquery(_)
                        | Expr::Exists(_)
                        | Expr::InSubquery(_) => Some(None),
                        _ => None,
                    };
                    match replaced {
                        Some(Some(col)) => Ok(Transformed::yes(col)),
                        Some(None) => {
                            ok = false;
                            Ok(Transformed::no(e))
                        }
                        None => Ok(Transformed::no(e)),
                    }
                })
                .ok()?
                .data;
            if !ok {
                return None;
            }
            rewritten.push(e);
        }
        let extra: Vec<Field> = params.iter().map(|(n, t)| Field::new(param_column(*n), t.clone(), true)).collect();
        let extra = DFSchema::try_from(Schema::new(extra)).ok()?;
        let mut full = input.clone();
        full.merge(&extra);
        let props = ExecutionProps::new();
        let exprs = rewritten
            .iter()
            .map(|e| create_physical_expr(e, &full, &props, &PhysicalPlanningContext::default()).ok())
            .collect::<Option<Vec<_>>>()?;
        Some(Computed { exprs, params, input: Arc::new(full.as_arrow().clone()) })
    }

    /// Evaluates the select list on `row` (every column of the table) and `params`.
    fn evaluate(&self, row: RecordBatch, params: &[ScalarValue]) -> Result<RecordBatch> {
        let n = row.num_rows();
        let mut columns = row.columns().to_vec();
        for (i, ty) in &self.params {
            let value = params.get(*i).ok_or_else(|| {
                CatalogError::DataFusion(datafusion::error::DataFusionError::Execution(format!(
                    "Placeholder '${}' was not provided a value for execution.",
                    i + 1
                )))
            })?;
            columns.push(value.cast_to(ty)?.to_array_of_size(n)?);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(n));
        let input = RecordBatch::try_new_with_options(self.input.clone(), columns, &options)?;
        let out = self
            .exprs
            .iter()
            .map(|e| e.evaluate(&input).and_then(|v| v.into_array(n)))
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        let schema = Arc::new(Schema::new(out.iter().enumerate().map(|(i, a)| Field::new(format!("c{i}"), a.data_type().clone(), true)).collect::<Vec<_>>()));
        Ok(RecordBatch::try_new_with_options(schema, out, &options)?)
    }
}

/// The column a parameter is read from in a computed select list.
fn param_column(n: usize) -> String {
    format!("${}", n + 1)
}

fn key_value(e: &Expr) -> Option<KeyValue> {
    match e {
        Expr::Placeholder(p) => {
            let n: usize = p.id.trim_start_matches('$').parse().ok()?;
            n.checked_sub(1).map(KeyValue::Param)
        }
        Expr::Literal(v, _) => Some(KeyValue::Literal(v.clone())),
        _ => None,
    }
}
