//! DataFusion access to stored tables: [`NowdbSchema`] lists them, [`StoredTable`] plans
//! reads, [`scan::TableScanExec`] executes them.
//!
//! Filters are pushed down as `Inexact` (DataFusion re-checks them) and used to choose the
//! access path ([`access::Access`]): primary-key equality / `IN` on a keyed table becomes a
//! multi-get of those keys; comparisons on an event table's columns skip stored batches whose
//! min/max cannot match.

pub mod access;
pub mod history;
pub mod lookup;
pub mod scan;

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::{Constraint, Constraints};
use datafusion::datasource::TableType;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use crate::catalog::{Catalog, Table};

/// The `public` schema: every table of the [`Catalog`], live (DDL is visible at once).
#[derive(Debug)]
pub struct NowdbSchema {
    catalog: Arc<Catalog>,
}

impl NowdbSchema {
    /// A schema provider over `catalog`.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self { catalog }
    }
}

#[async_trait]
impl SchemaProvider for NowdbSchema {
    fn table_names(&self) -> Vec<String> {
        self.catalog.tables().iter().map(|t| t.name().to_string()).collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Ok(self
            .catalog
            .table(name)
            .map(|t| Arc::new(StoredTable::new(t)) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.catalog.table(name).is_some()
    }
}

/// A stored table as a DataFusion table.
#[derive(Debug)]
pub struct StoredTable {
    table: Arc<Table>,
    constraints: Constraints,
}

impl StoredTable {
    /// Wraps a table.
    pub fn new(table: Arc<Table>) -> Self {
        let pk = table.def().primary_key().to_vec();
        let constraints = if pk.is_empty() {
            Constraints::default()
        } else {
            Constraints::new_unverified(vec![Constraint::PrimaryKey(pk)])
        };
        Self { table, constraints }
    }

    /// The table.
    pub fn table(&self) -> &Arc<Table> {
        &self.table
    }
}

#[async_trait]
impl TableProvider for StoredTable {
    fn schema(&self) -> SchemaRef {
        self.table.schema().clone()
    }

    fn constraints(&self) -> Option<&Constraints> {
        Some(&self.constraints)
    }

    fn table_type(&self) -> TableType {
        if self.table.is_view() {
            TableType::View
        } else {
            TableType::Base
        }
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let access = access::Access::choose(&self.table, filters);
        Ok(Arc::new(scan::TableScanExec::try_new(
            self.table.clone(),
            access,
            projection.cloned(),
            limit,
        )?))
    }
}
