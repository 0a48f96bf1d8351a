//! Postgres SQL to statements DataFusion can plan, via datafusion-pg-catalog's rewrites.
//!
//! Catalog introspection (queries over `pg_catalog` / `information_schema`, as drivers and
//! BI tools send them) goes through its whole compatibility parser, whose canned answers
//! and simplifications make those queries run. Other queries get the same rewrites except
//! `RemoveSubqueryFromProjection`, which replaces a correlated subquery in a select list
//! with NULL: acceptable for a tool's catalog query, a wrong answer for a user's query.
//! Catalog queries additionally get [`catalog_rewrites`]: correlated subqueries in `CASE`s and
//! `ARRAY(subquery)` become NULL (SQLAlchemy's column reflection, asyncpg's type
//! introspection, psql's `\du`: DataFusion cannot plan them, and what they look up, column
//! defaults, identity sequences, collations, domains, role memberships, nowdb does not have),
//! and `x IN (subquery)` outside a filter becomes `array_has`. Before parsing, the text of a
//! few known tool queries is adjusted ([`crate::tool_queries`]).

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{visit_expressions_mut, Expr, ObjectName, Statement, Value, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion_pg_catalog::sql::rules::{
    AliasDuplicatedProjectionRewrite, CurrentUserVariableToSessionUserFunctionCall, FixArrayLiteral,
    FixVersionColumnName, PrependUnqualifiedPgTableName, ResolveUnqualifiedIdentifier, RewriteArrayAnyAllOperation,
    RewritePgCatalogOperator, RewriteRegCastToSubquery, SqlStatementRewriteRule, StripCallableQualifier, StripCollate,
};
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;

/// Parses and rewrites Postgres SQL.
#[derive(Debug)]
pub struct SqlFrontEnd {
    catalog: PostgresCompatibilityParser,
    user_rules: Vec<Arc<dyn SqlStatementRewriteRule>>,
}

impl Default for SqlFrontEnd {
    fn default() -> Self {
        Self::new()
    }
}

impl SqlFrontEnd {
    /// The rule sets.
    pub fn new() -> Self {
        let user_rules: Vec<Arc<dyn SqlStatementRewriteRule>> = vec![
            Arc::new(AliasDuplicatedProjectionRewrite),
            Arc::new(ResolveUnqualifiedIdentifier),
            Arc::new(RewriteArrayAnyAllOperation),
            Arc::new(PrependUnqualifiedPgTableName),
            Arc::new(StripCallableQualifier),
            Arc::new(FixArrayLiteral),
            Arc::new(CurrentUserVariableToSessionUserFunctionCall),
            Arc::new(StripCollate),
            Arc::new(RewritePgCatalogOperator),
            Arc::new(RewriteRegCastToSubquery::new()),
            Arc::new(FixVersionColumnName),
        ];
        Self { catalog: PostgresCompatibilityParser::new(), user_rules }
    }

    /// `sql`'s statements, rewritten.
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>, ParserError> {
        let sql = crate::tool_queries::rewrite(sql);
        let sql = sql.as_ref();
        match Parser::parse_sql(&PostgreSqlDialect {}, sql) {
            Ok(statements) if !statements.iter().any(reads_system_catalog) => {
                Ok(statements.into_iter().map(|s| self.rewrite_user(s)).collect())
            }
            // Catalog queries, and text only the compatibility parser's substitutions make
            // parseable.
            _ => Ok(self.catalog.parse(sql)?.into_iter().map(catalog_rewrites).collect()),
        }
    }

    /// `stmt`, rewritten.
    pub fn rewrite(&self, stmt: Statement) -> Statement {
        if reads_system_catalog(&stmt) {
            catalog_rewrites(self.catalog.rewrite(stmt))
        } else {
            self.rewrite_user(stmt)
        }
    }

    fn rewrite_user(&self, mut stmt: Statement) -> Statement {
        for rule in &self.user_rules {
            stmt = rule.rewrite(stmt);
        }
        // Tools call catalog functions without naming a catalog relation
        // (`SELECT pg_get_viewdef(16465, true)`).
        catalog_functions(stmt)
    }
}

/// The rewrites of catalog queries after datafusion-pg-catalog's.
fn catalog_rewrites(stmt: Statement) -> Statement {
    aggregate_scalar_subqueries(in_subquery_as_array(catalog_functions(null_case_subqueries(stmt))))
}

/// `(SELECT x FROM t WHERE t.oid = outer.col)` as `(SELECT max(x) ...)`: DataFusion
/// decorrelates a correlated scalar subquery only when it aggregates, and catalog lookups of
/// this shape (sqlsmith's routine list, tools' namespace names) match one row by key, so the
/// answer is the same. (PostgreSQL would raise 21000 where such a lookup matched several rows;
/// this is only applied to catalog queries.)
fn aggregate_scalar_subqueries(mut stmt: Statement) -> Statement {
    use datafusion::sql::sqlparser::ast::{SelectItem, SetExpr};
    const AGGREGATES: [&str; 11] = ["count", "max", "min", "sum", "avg", "array_agg", "string_agg", "bool_and", "bool_or", "every", "json_agg"];
    let _ = visit_expressions_mut(&mut stmt, |expr| {
        let Expr::Subquery(query) = expr else { return ControlFlow::<()>::Continue(()) };
        // datafusion-pg-catalog's rules add `LIMIT 1` to scalar subqueries; any other limit,
        // an ORDER BY or a CTE keeps the subquery as written.
        let limit_one = query.limit_clause.as_ref().is_some_and(|l| l.to_string().trim().eq_ignore_ascii_case("LIMIT 1"));
        if (query.limit_clause.is_some() && !limit_one) || query.order_by.is_some() || query.with.is_some() {
            return ControlFlow::Continue(());
        }
        let SetExpr::Select(select) = query.body.as_mut() else { return ControlFlow::Continue(()) };
        let grouped = !matches!(&select.group_by, datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(e, _) if e.is_empty());
        if grouped || select.distinct.is_some() || select.having.is_some() || select.projection.len() != 1 {
            return ControlFlow::Continue(());
        }
        let item = match &mut select.projection[0] {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
            _ => return ControlFlow::Continue(()),
        };
        let aggregated = matches!(&*item, Expr::Function(f)
            if f.name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| AGGREGATES.contains(&i.value.to_ascii_lowercase().as_str())));
        if !aggregated {
            if let Ok(e) = Parser::new(&PostgreSqlDialect {}).try_with_sql(&format!("max({item})")).and_then(|mut p| p.parse_expr()) {
                *item = e;
                query.limit_clause = None;
            }
        }
        ControlFlow::Continue(())
    });
    stmt
}

/// `x IN (uncorrelated subquery)` as `array_has((SELECT array_agg(...) ...), x)`: DataFusion
/// plans IN subqueries only as filters, and Grafana's table list uses one in its select list
/// and ORDER BY. (Only the non-negated form: `NOT IN` would lose its NULL semantics.)
fn in_subquery_as_array(mut stmt: Statement) -> Statement {
    let _ = visit_expressions_mut(&mut stmt, |expr| {
        if let Expr::InSubquery { expr: needle, subquery, negated: false } = expr {
            if !is_correlated(subquery) {
                let text = format!("array_has((SELECT array_agg(in_list.v) FROM ({subquery}) AS in_list(v)), {needle})");
                if let Ok(e) = Parser::new(&PostgreSqlDialect {}).try_with_sql(&text).and_then(|mut p| p.parse_expr()) {
                    *expr = e;
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    stmt
}

/// `pg_catalog` vector columns (`oidvector`) the emulation keeps as text ("23 25"); its
/// `pg_index.indkey` is an array already.
const VECTOR_COLUMNS: [&str; 1] = ["proargtypes"];

/// Catalog functions DataFusion cannot evaluate as called:
/// - `generate_subscripts(a, 1)` (SQLAlchemy's key reflection, next to `unnest(a)`) is
///   `unnest(generate_series(1, cardinality(a)))`, the same 1..n beside the elements;
/// - `pg_get_viewdef(oid, ...)` looks the view up by its `pg_class` row (`nowdb_viewdef`);
/// - `col_description(...)` is NULL (nowdb stores no comments) without evaluating its
///   arguments (Metabase casts computed text to `regclass` there);
/// - `unnest(proargtypes)` splits the vector's text.
fn catalog_functions(mut stmt: Statement) -> Statement {
    let _ = visit_expressions_mut(&mut stmt, |expr| {
        let Expr::Function(f) = expr else { return ControlFlow::<()>::Continue(()) };
        let Some(name) = f.name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_ascii_lowercase()) else {
            return ControlFlow::Continue(());
        };
        let first_arg = match &f.args {
            datafusion::sql::sqlparser::ast::FunctionArguments::List(list) => list.args.first(),
            _ => None,
        };
        let first = first_arg.map(ToString::to_string);
        // An unqualified column as the OID would bind inside the lookup subquery.
        let qualified_or_constant = first_arg.is_some_and(|a| {
            !matches!(a, datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(
                datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(Expr::Identifier(_))))
        });
        let text = match (name.as_str(), first) {
            ("generate_subscripts", Some(array)) => format!("unnest(generate_series(1, cardinality({array})))"),
            ("pg_get_viewdef", Some(oid)) if qualified_or_constant => format!(
                "(SELECT max(nowdb_viewdef(viewdef_rel.relname)) FROM pg_catalog.pg_class viewdef_rel WHERE viewdef_rel.oid = {oid})"
            ),
            ("col_description", _) => "NULL".to_string(),
            // `proargtypes` is text in the emulation ("23 25"); unnest it as PostgreSQL does,
            // element by element (sqlsmith's routine parameters).
            ("unnest", Some(column)) if VECTOR_COLUMNS.iter().any(|c| column.to_ascii_lowercase().rsplit('.').next() == Some(c)) => {
                format!("unnest(CAST(string_to_array({column}, ' ') AS bigint[]))")
            }
            _ => return ControlFlow::Continue(()),
        };
        if let Ok(e) = Parser::new(&PostgreSqlDialect {}).try_with_sql(&text).and_then(|mut p| p.parse_expr()) {
            *expr = e;
        }
        ControlFlow::Continue(())
    });
    stmt
}

/// `stmt` with every `CASE` that contains a correlated subquery (in a condition or a branch), and every
/// `ARRAY(subquery)` (psql's `\du` role memberships, `\d+` TOAST options), replaced by NULL
/// (catalog queries only).
fn null_case_subqueries(mut stmt: Statement) -> Statement {
    let _ = visit_expressions_mut(&mut stmt, |expr| {
        let array_subquery = matches!(expr, Expr::Function(f)
            if matches!(f.args, datafusion::sql::sqlparser::ast::FunctionArguments::Subquery(_))
                && f.name.to_string().eq_ignore_ascii_case("array"));
        if array_subquery || (matches!(expr, Expr::Case { .. }) && contains_subquery(expr)) {
            *expr = Expr::value(Value::Null);
        }
        ControlFlow::<()>::Continue(())
    });
    stmt
}

/// Whether `expr` holds a correlated subquery: one naming a relation (`t.col`) its own FROM
/// does not define. (Uncorrelated ones, like Grafana's search_path list, plan fine.)
fn contains_subquery(expr: &Expr) -> bool {
    struct Finder;
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            let correlated = match e {
                Expr::Subquery(q) | Expr::Exists { subquery: q, .. } | Expr::InSubquery { subquery: q, .. } => is_correlated(q),
                _ => false,
            };
            if correlated {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
    }
    expr.visit(&mut Finder).is_break()
}

fn is_correlated(query: &datafusion::sql::sqlparser::ast::Query) -> bool {
    use datafusion::sql::sqlparser::ast::TableFactor;
    #[derive(Default)]
    struct Names {
        defined: std::collections::HashSet<String>,
        used: Vec<String>,
    }
    impl Visitor for Names {
        type Break = ();
        fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
            let (name, alias) = match t {
                TableFactor::Table { name, alias, .. } => (name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.clone()), alias),
                TableFactor::Derived { alias, .. } | TableFactor::Function { alias, .. } | TableFactor::UNNEST { alias, .. } => (None, alias),
                _ => (None, &None),
            };
            self.defined.extend(name.map(|n| n.to_ascii_lowercase()));
            self.defined.extend(alias.as_ref().map(|a| a.name.value.to_ascii_lowercase()));
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if let Expr::CompoundIdentifier(parts) = e {
                if parts.len() >= 2 {
                    self.used.push(parts[parts.len() - 2].value.to_ascii_lowercase());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut names = Names::default();
    let _ = query.visit(&mut names);
    names.used.iter().any(|u| !names.defined.contains(u))
}

/// Whether `stmt` names a `pg_catalog` or `information_schema` relation.
fn reads_system_catalog(stmt: &Statement) -> bool {
    struct Finder;
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_relation(&mut self, name: &ObjectName) -> ControlFlow<()> {
            let parts: Vec<String> =
                name.0.iter().filter_map(|p| p.as_ident()).map(|i| i.value.to_ascii_lowercase()).collect();
            let system = match parts.as_slice() {
                [.., schema, _] if schema == "pg_catalog" || schema == "information_schema" => true,
                [table] => table.starts_with("pg_"),
                _ => false,
            };
            if system {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
    }
    stmt.visit(&mut Finder).is_break()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_lookups_in_select_lists_aggregate() {
        let front = SqlFrontEnd::new();
        let sql = "SELECT (SELECT nspname FROM pg_namespace WHERE oid = relnamespace), relname FROM pg_class";
        let stmt = front.parse(sql).unwrap().pop().unwrap();
        assert!(stmt.to_string().contains("SELECT max(nspname)"), "{stmt}");
        let params = front.parse("SELECT oid, unnest(proargtypes) FROM pg_proc").unwrap().pop().unwrap();
        assert!(params.to_string().contains("unnest(CAST(string_to_array(proargtypes, ' ') AS BIGINT[]))"), "{params}");
        let counted = "SELECT (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid) FROM pg_class c";
        assert!(!front.parse(counted).unwrap()[0].to_string().contains("max("));
    }

    #[test]
    fn user_queries_keep_correlated_subqueries() {
        let front = SqlFrontEnd::new();
        let sql = "SELECT c.id, (SELECT count(*) FROM orders o WHERE o.customer_id = c.id) AS n FROM customers c";
        let stmt = front.parse(sql).unwrap().pop().unwrap();
        assert!(stmt.to_string().contains("SELECT count(*) FROM orders"), "{stmt}");
        let catalog = "SELECT c.relname, (SELECT count(*) FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid) FROM pg_catalog.pg_class c";
        assert!(reads_system_catalog(&front.parse(catalog).unwrap()[0]));
    }
}
