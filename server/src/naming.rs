//! Postgres names for unnamed result columns.
//!
//! DataFusion names an unaliased output column after its expression (`count(*)`,
//! `Int64(1)`); Postgres names it after the function (`count`), the cast type (`int4`) or
//! `?column?`. Clients that address columns by name (dict rows, ORMs) expect the latter, so
//! the outermost SELECT list gets those names as explicit aliases before planning.

use std::collections::HashMap;

use datafusion::sql::sqlparser::ast::{Expr, Ident, SelectItem, SetExpr, Statement};

/// Adds Postgres-style aliases to the unaliased expressions of a top-level SELECT.
pub fn apply(stmt: &mut Statement) {
    let Statement::Query(query) = stmt else { return };
    let SetExpr::Select(select) = query.body.as_mut() else { return };
    let names: Vec<Option<String>> = select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) => pg_name(e),
            _ => None,
        })
        .collect();
    // Only where the name is unique: DataFusion refuses duplicate output names.
    let mut counts: HashMap<String, usize> = HashMap::new();
    for item in &select.projection {
        let n = match item {
            SelectItem::UnnamedExpr(e) => pg_name(e).unwrap_or_else(|| e.to_string()),
            SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
            _ => continue,
        };
        *counts.entry(n).or_default() += 1;
    }
    for (item, name) in select.projection.iter_mut().zip(names) {
        let Some(name) = name else { continue };
        if counts.get(&name) != Some(&1) {
            continue;
        }
        if let SelectItem::UnnamedExpr(e) = item {
            *item = SelectItem::ExprWithAlias { expr: e.clone(), alias: Ident::with_quote('"', name) };
        }
    }
}

/// The name Postgres gives an unaliased expression, when it differs from a column name.
fn pg_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => None,
        Expr::Nested(inner) => pg_name(inner),
        Expr::Function(f) => f.name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_lowercase()),
        Expr::Cast { expr, data_type, .. } => match pg_name(expr) {
            Some(n) if n != "?column?" => Some(n),
            _ => Some(cast_name(&data_type.to_string())),
        },
        _ => Some("?column?".into()),
    }
}

fn cast_name(ty: &str) -> String {
    let t = ty.to_ascii_lowercase();
    let base = t.split('(').next().unwrap_or(&t).trim();
    match base {
        "int" | "integer" | "int4" => "int4",
        "bigint" | "int8" => "int8",
        "smallint" | "int2" => "int2",
        "real" | "float4" => "float4",
        "double precision" | "float8" | "double" => "float8",
        "text" => "text",
        "varchar" | "character varying" => "varchar",
        "boolean" | "bool" => "bool",
        "numeric" | "decimal" => "numeric",
        "timestamp" => "timestamp",
        "timestamptz" | "timestamp with time zone" => "timestamptz",
        "date" => "date",
        "interval" => "interval",
        "bytea" => "bytea",
        other => return other.to_string(),
    }
    .to_string()
}
