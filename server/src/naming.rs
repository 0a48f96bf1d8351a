//! Postgres names for result columns.
//!
//! DataFusion names an unaliased output column after its expression (`count(*)`,
//! `Int64(1)`) and requires names to be unique; Postgres names it after the function
//! (`count`), the cast or literal type (`int4`, `interval`) or `?column?`, duplicates allowed.
//! Clients that address columns by name (dict rows, ORMs) expect Postgres' names, so the
//! planned schema keeps DataFusion's names and only the row description uses these.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::sql::sqlparser::ast::{Expr, Ident, Query, SelectItem, SetExpr, Statement};

use crate::ddl::ident_name;

/// A top-level query ready for DataFusion, and the column names its clients see.
pub struct OutputNames {
    /// The statement to plan: the original, or one whose select list is aliased to unique
    /// internal names when Postgres' names repeat (`SELECT x, x::real`, `SELECT a.id, b.id`),
    /// which DataFusion refuses and Postgres allows.
    pub stmt: Statement,
    names: Option<Vec<Option<String>>>,
}

impl OutputNames {
    /// Names for `stmt`'s top-level select list (when it has no wildcard).
    pub fn of(stmt: &Statement) -> Self {
        Self::new(stmt, false)
    }

    /// Like [`OutputNames::of`], with the select list aliased to internal names even when
    /// Postgres' names are distinct: for lists whose DataFusion names collide
    /// (`CAST(NULL AS INT), NULL::text` are both `NULL` to DataFusion).
    pub fn aliased(stmt: &Statement) -> Self {
        Self::new(stmt, true)
    }

    fn new(stmt: &Statement, always: bool) -> Self {
        let names = select_list_names(stmt);
        let Some(items) = names.as_ref() else { return Self { stmt: stmt.clone(), names } };
        let seen: Vec<String> = items.iter().map(|n| n.clone().unwrap_or_default()).collect();
        let mut unique = std::collections::HashSet::new();
        if !always && seen.iter().all(|n| unique.insert(n.as_str())) {
            return Self { stmt: stmt.clone(), names };
        }
        let mut stmt = stmt.clone();
        if let Statement::Query(q) = &mut stmt {
            if let SetExpr::Select(select) = q.body.as_mut() {
                for (i, item) in select.projection.iter_mut().enumerate() {
                    let expr = match item {
                        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e.clone(),
                        _ => continue,
                    };
                    *item = SelectItem::ExprWithAlias { expr, alias: Ident::with_quote('"', format!("{}#{i}", seen[i])) };
                }
            }
        }
        Self { stmt, names: Some(seen.into_iter().map(Some).collect()) }
    }

    /// The row type clients see: `schema` with Postgres names for the select list's items.
    pub fn client_schema(&self, schema: SchemaRef) -> SchemaRef {
        let Some(names) = self.names.as_ref() else { return schema };
        if names.len() != schema.fields().len() || names.iter().all(Option::is_none) {
            return schema;
        }
        let fields: Vec<_> = schema
            .fields()
            .iter()
            .zip(names)
            .map(|(f, name)| match name {
                Some(n) => Arc::new(f.as_ref().clone().with_name(n)),
                None => f.clone(),
            })
            .collect();
        Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
    }
}

/// `query` with Postgres' names made explicit (`count(*)` becomes `count(*) AS count`): a
/// view's columns are named as PostgreSQL would name them.
pub fn alias_unnamed(query: &Query) -> Query {
    let mut q = query.clone();
    if let SetExpr::Select(select) = q.body.as_mut() {
        for item in select.projection.iter_mut() {
            if let SelectItem::UnnamedExpr(e) = item {
                if let Some(name) = pg_name(e) {
                    *item = SelectItem::ExprWithAlias { expr: e.clone(), alias: Ident::with_quote('"', name) };
                }
            }
        }
    }
    q
}

/// Each select-list item's output name as Postgres gives it; `None` with a wildcard.
fn select_list_names(stmt: &Statement) -> Option<Vec<Option<String>>> {
    let Statement::Query(query) = stmt else { return None };
    let SetExpr::Select(select) = query.body.as_ref() else { return None };
    select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(Some(ident_name(i))),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => Some(parts.last().map(ident_name)),
            SelectItem::UnnamedExpr(e) => Some(pg_name(e)),
            SelectItem::ExprWithAlias { alias, .. } => Some(Some(ident_name(alias))),
            // A wildcard expands to an unknown number of columns: leave the names alone.
            _ => None,
        })
        .collect()
}

/// The name Postgres gives an unaliased expression, when it differs from DataFusion's.
fn pg_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => None,
        Expr::Nested(inner) => pg_name(inner),
        Expr::Function(f) => f.name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_lowercase()),
        Expr::Cast { expr, data_type, .. } => Some(match expr.as_ref() {
            Expr::Identifier(i) => ident_name(i),
            Expr::CompoundIdentifier(parts) => parts.last().map(ident_name).unwrap_or_default(),
            inner => match pg_name(inner) {
                Some(n) if n != "?column?" => n,
                _ => type_name(&data_type.to_string()),
            },
        }),
        Expr::Interval(_) => Some("interval".into()),
        Expr::TypedString(t) => Some(type_name(&t.data_type.to_string())),
        _ => Some("?column?".into()),
    }
}

fn type_name(ty: &str) -> String {
    let t = ty.to_ascii_lowercase();
    let array = t.ends_with("[]");
    let base = t.trim_end_matches("[]");
    let base = base.split('(').next().unwrap_or(base).trim();
    let name = match base {
        "int" | "integer" | "int4" => "int4",
        "bigint" | "int8" => "int8",
        "smallint" | "int2" => "int2",
        "real" | "float4" => "float4",
        "double precision" | "float8" | "double" => "float8",
        "varchar" | "character varying" => "varchar",
        "boolean" | "bool" => "bool",
        "numeric" | "decimal" => "numeric",
        "timestamp with time zone" => "timestamptz",
        other => other,
    };
    // Postgres names array casts after the element type with a leading underscore.
    if array { format!("_{name}") } else { name.to_string() }
}
