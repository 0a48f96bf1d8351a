//! Table definitions as persisted in the catalog.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::types::SqlType;
use crate::{CatalogError, Result};

/// One column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    /// Column name (already case-folded).
    pub name: String,
    /// Declared type.
    pub ty: SqlType,
    /// Whether NULL is allowed.
    pub nullable: bool,
}

/// How a table stores its rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableKind {
    /// Append-only event stream: batches in arrival order.
    Event,
    /// Keyed table: one row per primary key (column indexes, in key order).
    Keyed {
        /// Indexes of the primary key columns.
        primary_key: Vec<usize>,
    },
    /// A continuous (materialized) view: rows stored by key like a keyed table, written only
    /// by the view engine.
    View(ViewMeta),
}

/// What the catalog keeps of a continuous view; the view engine compiles `query` again at
/// startup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewMeta {
    /// The defining `SELECT`, as written.
    pub query: String,
    /// Output columns that form the row key (the GROUP BY columns), when the view has one a
    /// lookup can bind; empty otherwise (rows are keyed by an internal id).
    pub primary_key: Vec<usize>,
    /// Names of the tables and views the query reads.
    pub sources: Vec<String>,
    /// For windowed views, the output column holding `window_end` (retention and
    /// watermarks apply to it).
    #[serde(default)]
    pub window_end: Option<usize>,
    /// Whether the view keeps the history of its rows (`WITH (history = false)` turns it off).
    #[serde(default = "keeps_history")]
    pub history: bool,
}

fn keeps_history() -> bool {
    true
}

/// A table as stored in the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    /// Stable id: the prefix of every storage key of this table.
    pub id: u32,
    /// Table name (already case-folded).
    pub name: String,
    /// Columns in order.
    pub columns: Vec<ColumnDef>,
    /// Storage kind.
    pub kind: TableKind,
    /// Event-time options (`WATERMARK FOR`, `WITH (retention = ...)`).
    #[serde(default)]
    pub event_time: EventTime,
    /// The external stream the table is fed from (`WITH (connector = 'kafka', ...)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<Connector>,
}

/// An external stream feeding a table, as `CREATE TABLE ... WITH (connector = ...)` named it.
/// The catalog keeps the options; the server interprets them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connector {
    /// The connector's kind (`kafka`).
    pub kind: String,
    /// Its options, lower-case keys, values as written.
    pub options: BTreeMap<String, String>,
}

/// Event-time options of a table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventTime {
    /// `WATERMARK FOR col AS col - delay`: the column index and the delay in microseconds.
    pub watermark: Option<(usize, i64)>,
    /// `WITH (retention = '7 days')`, in microseconds of event time.
    pub retention_micros: Option<i64>,
}

impl TableDef {
    /// Builds and validates a definition.
    pub fn new(id: u32, name: String, columns: Vec<ColumnDef>, primary_key: Vec<String>) -> Result<Self> {
        if columns.is_empty() {
            return Err(CatalogError::InvalidDefinition(
                "a table needs at least one column".into(),
            ));
        }
        let mut seen = HashSet::new();
        for c in &columns {
            if !seen.insert(c.name.as_str()) {
                return Err(CatalogError::InvalidDefinition(format!(
                    "column \"{}\" specified more than once",
                    c.name
                )));
            }
        }
        let mut columns = columns;
        let kind = if primary_key.is_empty() {
            TableKind::Event
        } else {
            let mut idx = Vec::with_capacity(primary_key.len());
            for k in &primary_key {
                let i = columns.iter().position(|c| &c.name == k).ok_or_else(|| {
                    CatalogError::InvalidDefinition(format!(
                        "column \"{k}\" named in key does not exist"
                    ))
                })?;
                if idx.contains(&i) {
                    return Err(CatalogError::InvalidDefinition(format!(
                        "column \"{k}\" appears twice in primary key constraint"
                    )));
                }
                if !columns[i].ty.can_be_key() {
                    return Err(CatalogError::Unsupported(format!(
                        "type {} cannot be part of a primary key",
                        columns[i].ty.pg_name()
                    )));
                }
                // Like Postgres, a primary key implies NOT NULL.
                columns[i].nullable = false;
                idx.push(i);
            }
            TableKind::Keyed { primary_key: idx }
        };
        Ok(TableDef { id, name, columns, kind, event_time: EventTime::default(), connector: None })
    }

    /// Builds and validates a view's definition.
    pub fn new_view(id: u32, name: String, columns: Vec<ColumnDef>, meta: ViewMeta, event_time: EventTime) -> Result<Self> {
        let mut def = TableDef::new(id, name, columns, vec![])?;
        if meta.primary_key.iter().chain(meta.window_end.iter()).any(|&k| k >= def.columns.len()) {
            return Err(CatalogError::InvalidDefinition("view key column out of range".into()));
        }
        def.kind = TableKind::View(meta);
        def.event_time = event_time;
        Ok(def)
    }

    /// The Arrow schema of the table's rows.
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.ty.arrow_type(), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }

    /// Primary key column indexes (empty for event tables).
    pub fn primary_key(&self) -> &[usize] {
        match &self.kind {
            TableKind::Event => &[],
            TableKind::Keyed { primary_key } => primary_key,
            TableKind::View(meta) => &meta.primary_key,
        }
    }

    /// Index of a column by name.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The column holding a row's event time: the `WATERMARK FOR` column, else an event
    /// table's first timestamp column. Keyed tables without a watermark and views have none
    /// (their changes happen at the time of the write that makes them).
    pub fn event_time_column(&self) -> Option<usize> {
        if let Some((col, _)) = self.event_time.watermark {
            return Some(col);
        }
        match self.kind {
            TableKind::Event => self.columns.iter().position(|c| matches!(c.ty, SqlType::Timestamp | SqlType::Timestamptz)),
            _ => None,
        }
    }

    /// The view definition, for views.
    pub fn view(&self) -> Option<&ViewMeta> {
        match &self.kind {
            TableKind::View(meta) => Some(meta),
            _ => None,
        }
    }

    /// Name of the primary key constraint, Postgres style.
    pub fn pkey_name(&self) -> String {
        format!("{}_pkey", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: SqlType) -> ColumnDef {
        ColumnDef { name: name.into(), ty, nullable: true }
    }

    #[test]
    fn primary_key_implies_not_null_and_keyed_kind() {
        let def = TableDef::new(1, "t".into(), vec![col("a", SqlType::Int8), col("b", SqlType::Text)], vec!["a".into()]).unwrap();
        assert_eq!(def.kind, TableKind::Keyed { primary_key: vec![0] });
        assert!(!def.columns[0].nullable);
        assert!(!def.arrow_schema().field(0).is_nullable());
        assert_eq!(def.pkey_name(), "t_pkey");
        let events = TableDef::new(2, "e".into(), vec![col("a", SqlType::Int8)], vec![]).unwrap();
        assert_eq!(events.kind, TableKind::Event);
        assert_eq!(events.event_time_column(), None);
        let timed = TableDef::new(3, "e".into(), vec![col("a", SqlType::Int8), col("ts", SqlType::Timestamptz)], vec![]).unwrap();
        assert_eq!(timed.event_time_column(), Some(1));
        let keyed = TableDef::new(4, "k".into(), vec![col("a", SqlType::Int8), col("ts", SqlType::Timestamp)], vec!["a".into()]).unwrap();
        assert_eq!(keyed.event_time_column(), None);
    }

    #[test]
    fn invalid_definitions_are_refused() {
        let dup = TableDef::new(1, "t".into(), vec![col("a", SqlType::Int8), col("a", SqlType::Text)], vec![]);
        assert!(matches!(dup, Err(CatalogError::InvalidDefinition(_))));
        let missing = TableDef::new(1, "t".into(), vec![col("a", SqlType::Int8)], vec!["b".into()]);
        assert!(matches!(missing, Err(CatalogError::InvalidDefinition(_))));
        let array_key = TableDef::new(1, "t".into(), vec![col("a", SqlType::Array(Box::new(SqlType::Float4)))], vec!["a".into()]);
        assert!(matches!(array_key, Err(CatalogError::Unsupported(_))));
        assert!(TableDef::new(1, "t".into(), vec![], vec![]).is_err());
    }
}
