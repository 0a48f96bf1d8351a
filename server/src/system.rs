//! nowdb's system tables (`nowdb_catalog.views`, `nowdb_catalog.models`): read-only tables
//! whose rows are computed from live state each time they are scanned.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider, Session, TableProvider};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::TableType;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

/// Where a system table's rows come from.
type Rows = Box<dyn Fn() -> DfResult<RecordBatch> + Send + Sync>;

/// A system table: a schema and a function producing its current rows.
pub struct SystemTable {
    schema: SchemaRef,
    rows: Rows,
}

impl std::fmt::Debug for SystemTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemTable").field("schema", &self.schema).finish_non_exhaustive()
    }
}

impl SystemTable {
    /// A table of `schema` whose rows `rows` computes.
    pub fn new(schema: SchemaRef, rows: impl Fn() -> DfResult<RecordBatch> + Send + Sync + 'static) -> Self {
        Self { schema, rows: Box::new(rows) }
    }
}

/// A schema provider holding `tables`, to register as `nowdb_catalog`.
pub fn schema_provider(tables: Vec<(&str, SystemTable)>) -> DfResult<Arc<dyn SchemaProvider>> {
    let schema = MemorySchemaProvider::new();
    for (name, table) in tables {
        schema.register_table(name.to_string(), Arc::new(table))?;
    }
    Ok(Arc::new(schema))
}

#[async_trait]
impl TableProvider for SystemTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let batch = (self.rows)()?;
        Ok(MemorySourceConfig::try_new_exec(&[vec![batch]], self.schema.clone(), projection.cloned())?)
    }
}
