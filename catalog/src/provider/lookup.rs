//! The fast path for the online feature read: `SELECT cols FROM keyed_table WHERE pk = $1
//! [AND pk2 = $2]`, recognized once at prepare time and executed as one RocksDB `get` per
//! call, without DataFusion's per-execution optimizer, physical planner and thread hops.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator};
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
            .collect::<Option<Vec<_>>>()?;
        Some(Self { table: def.name.clone(), table_id: def.id, key, projection })
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
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        let batch = RecordBatch::try_new_with_options(schema.clone(), batch.columns().to_vec(), &options)?;
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
