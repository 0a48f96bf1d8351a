//! Postgres SQL to statements DataFusion can plan, via datafusion-pg-catalog's rewrites.
//!
//! Catalog introspection (queries over `pg_catalog` / `information_schema`, as drivers and
//! BI tools send them) goes through its whole compatibility parser, whose canned answers
//! and simplifications make those queries run. Other queries get the same rewrites except
//! `RemoveSubqueryFromProjection`, which replaces a correlated subquery in a select list
//! with NULL: acceptable for a tool's catalog query, a wrong answer for a user's query.
//! Catalog queries additionally get [`null_case_subqueries`], which extends that to
//! subqueries that are the branches of a `CASE` (SQLAlchemy's column reflection, asyncpg's
//! type introspection): DataFusion cannot plan those correlated subqueries, and what they
//! look up (column defaults, identity sequences, collations, domains) nowdb does not have.

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
        let sql = driver_query(sql);
        let sql = sql.as_ref();
        match Parser::parse_sql(&PostgreSqlDialect {}, sql) {
            Ok(statements) if !statements.iter().any(reads_system_catalog) => {
                Ok(statements.into_iter().map(|s| self.rewrite_user(s)).collect())
            }
            // Catalog queries, and text only the compatibility parser's substitutions make
            // parseable.
            _ => Ok(self.catalog.parse(sql)?.into_iter().map(|s| generate_subscripts(null_case_subqueries(s))).collect()),
        }
    }

    /// `stmt`, rewritten.
    pub fn rewrite(&self, stmt: Statement) -> Statement {
        if reads_system_catalog(&stmt) {
            generate_subscripts(null_case_subqueries(self.catalog.rewrite(stmt)))
        } else {
            self.rewrite_user(stmt)
        }
    }

    fn rewrite_user(&self, mut stmt: Statement) -> Statement {
        for rule in &self.user_rules {
            stmt = rule.rewrite(stmt);
        }
        stmt
    }
}

/// pgjdbc's `getPrimaryKeys` expands `indkey` with `information_schema._pg_expandarray`, a
/// set-returning function of a composite type that DataFusion cannot express; the same
/// answer, key columns in key order, is `array_position` / `array_has` on the array.
const PGJDBC_PRIMARY_KEYS: [(&str, &str); 3] = [
    ("(information_schema._pg_expandarray(i.indkey)).n", "array_position(i.indkey, a.attnum)"),
    ("information_schema._pg_expandarray(i.indkey)", "i.indkey"),
    ("result.A_ATTNUM = (result.KEYS).x", "array_has(result.KEYS, result.A_ATTNUM)"),
];

/// Known driver queries that need a textual rewrite.
fn driver_query(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains("information_schema._pg_expandarray(i.indkey)") {
        return sql.into();
    }
    let mut out = sql.to_string();
    for (from, to) in PGJDBC_PRIMARY_KEYS {
        out = out.replace(from, to);
    }
    out.into()
}

/// `generate_subscripts(a, 1)` (SQLAlchemy's key reflection, next to `unnest(a)`) as
/// `unnest(generate_series(1, cardinality(a)))`: the same 1..n beside the elements.
fn generate_subscripts(mut stmt: Statement) -> Statement {
    let _ = visit_expressions_mut(&mut stmt, |expr| {
        if let Expr::Function(f) = expr {
            let is_it = f.name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| i.value.eq_ignore_ascii_case("generate_subscripts"));
            if let (true, datafusion::sql::sqlparser::ast::FunctionArguments::List(list)) = (is_it, &f.args) {
                if let Some(array) = list.args.first() {
                    let text = format!("unnest(generate_series(1, cardinality({array})))");
                    if let Ok(e) = Parser::new(&PostgreSqlDialect {}).try_with_sql(&text).and_then(|mut p| p.parse_expr()) {
                        *expr = e;
                    }
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    stmt
}

/// `stmt` with every `CASE` that contains a subquery (in a condition or a branch), and every
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

fn contains_subquery(expr: &Expr) -> bool {
    struct Finder;
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
    }
    expr.visit(&mut Finder).is_break()
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
    fn user_queries_keep_correlated_subqueries() {
        let front = SqlFrontEnd::new();
        let sql = "SELECT c.id, (SELECT count(*) FROM orders o WHERE o.customer_id = c.id) AS n FROM customers c";
        let stmt = front.parse(sql).unwrap().pop().unwrap();
        assert!(stmt.to_string().contains("SELECT count(*) FROM orders"), "{stmt}");
        let catalog = "SELECT c.relname, (SELECT count(*) FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid) FROM pg_catalog.pg_class c";
        assert!(reads_system_catalog(&front.parse(catalog).unwrap()[0]));
    }
}
