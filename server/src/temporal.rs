//! Time-travel SQL: `FOR SYSTEM_TIME AS OF` and `ASOF JOIN`, rewritten into statements the
//! query engine plans.
//!
//! - `view FOR SYSTEM_TIME AS OF <constant>` becomes `view_as_of('view', <constant>)` (the
//!   view's rows at that event time, from its history); an event table's becomes its rows
//!   with an event time at or before it.
//! - `[LEFT] JOIN view FOR SYSTEM_TIME AS OF l.ts AS f ON <cond>` (Flink's event-time
//!   temporal join) becomes `[LEFT] JOIN view AS f ON nowdb_versioned(l.ts, <cond>)`.
//! - DuckDB's `ASOF [LEFT] JOIN r ON <cond>` becomes `[LEFT] JOIN r ON nowdb_asof(<cond>)`,
//!   and Snowflake's `ASOF JOIN r MATCH_CONDITION (<m>) ON <cond>` becomes
//!   `LEFT JOIN r ON nowdb_asof(<m> AND <cond>)`.
//!
//! The marked joins are planned by `nowdb_udfs::asof`. Statements that mention neither
//! keyword never come here.

use datafusion::sql::sqlparser::ast::{
    Expr, Ident, Join, JoinConstraint, JoinOperator, Query, SetExpr, Statement, TableFactor, TableVersion,
    TableWithJoins,
};
use datafusion::sql::sqlparser::dialect::{Dialect, PostgreSqlDialect};
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, Tokenizer};
use datafusion::sql::sqlparser::ast::Spanned;
use datafusion::sql::sqlparser::keywords::Keyword;
use nowdb_catalog::Catalog;

use crate::error::{NowError, NowResult};

/// Postgres, plus `FOR SYSTEM_TIME AS OF` after a table name.
#[derive(Debug)]
struct TimeTravelDialect(PostgreSqlDialect);

impl Dialect for TimeTravelDialect {
    fn is_identifier_start(&self, ch: char) -> bool {
        self.0.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        self.0.is_identifier_part(ch)
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        self.0.is_delimited_identifier_start(ch)
    }

    fn supports_table_versioning(&self) -> bool {
        true
    }
}

/// Whether `sql` may use time-travel syntax (a cheap test before the full parse).
pub fn mentions(sql: &str) -> bool {
    let upper = sql.to_ascii_uppercase();
    upper.contains("ASOF") || upper.contains("SYSTEM_TIME")
}

/// Parses `sql` (which [`mentions`] time travel) into plannable statements; `None` when it
/// uses none after all (a column named `asof`, say).
pub fn parse(sql: &str, catalog: &Catalog) -> NowResult<Option<Vec<Statement>>> {
    let dialect = TimeTravelDialect(PostgreSqlDialect {});
    let (text, asof_joins) = unmark_asof(sql, &dialect)?;
    let mut statements = Parser::new(&dialect).try_with_sql(&text)?.parse_statements()?;
    let found = !asof_joins.is_empty();
    let mut rewriter = Rewriter { catalog, asof_joins, dialect: &dialect, rewritten: found };
    for s in &mut statements {
        rewriter.statement(s)?;
    }
    if !rewriter.asof_joins.is_empty() {
        return Err(NowError::Unsupported("ASOF JOIN here (it joins relations in a FROM clause)".into()));
    }
    Ok(rewriter.rewritten.then_some(statements))
}

/// Blanks out the `ASOF` of DuckDB-style `ASOF [LEFT [OUTER]] JOIN` (leaving every other
/// character where it was) and returns where each such join's relation starts.
/// Snowflake's form (with `MATCH_CONDITION`) is left to the parser.
fn unmark_asof(sql: &str, dialect: &TimeTravelDialect) -> NowResult<(String, Vec<Location>)> {
    let tokens = Tokenizer::new(dialect, sql).tokenize_with_location().map_err(|e| NowError::Syntax(e.to_string()))?;
    let words: Vec<(usize, &Token)> = tokens.iter().enumerate().filter(|(_, t)| !matches!(t.token, Token::Whitespace(_))).map(|(i, t)| (i, &t.token)).collect();
    let keyword = |t: &Token| match t {
        Token::Word(w) => w.keyword,
        _ => Keyword::NoKeyword,
    };
    if words.iter().any(|(_, t)| keyword(t) == Keyword::MATCH_CONDITION) {
        return Ok((sql.to_string(), Vec::new()));
    }
    let mut text = sql.to_string();
    let mut starts = Vec::new();
    for (w, (i, t)) in words.iter().enumerate() {
        if keyword(t) != Keyword::ASOF {
            continue;
        }
        // ASOF [LEFT [OUTER]] JOIN <relation>
        let mut j = w + 1;
        while words.get(j).is_some_and(|(_, t)| matches!(keyword(t), Keyword::LEFT | Keyword::OUTER | Keyword::INNER)) {
            j += 1;
        }
        if words.get(j).is_none_or(|(_, t)| keyword(t) != Keyword::JOIN) {
            continue;
        }
        let Some((rel, _)) = words.get(j + 1) else { continue };
        starts.push(tokens[*rel].span.start);
        let at = offset(sql, tokens[*i].span.start);
        text.replace_range(at..at + 4, "    ");
    }
    Ok((text, starts))
}

/// Byte offset of a (1-based line and column, in characters) location.
fn offset(sql: &str, loc: Location) -> usize {
    let mut line: u64 = 1;
    let mut col: u64 = 1;
    for (i, ch) in sql.char_indices() {
        if line == loc.line && col == loc.column {
            return i;
        }
        if ch == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    sql.len()
}

struct Rewriter<'a> {
    catalog: &'a Catalog,
    /// Where DuckDB-style ASOF joins' relations start.
    asof_joins: Vec<Location>,
    dialect: &'a TimeTravelDialect,
    /// Whether any time-travel syntax was rewritten.
    rewritten: bool,
}

impl Rewriter<'_> {
    fn statement(&mut self, s: &mut Statement) -> NowResult<()> {
        match s {
            Statement::Query(q) => self.query(q),
            Statement::Explain { statement, .. } => self.statement(statement),
            Statement::Copy { source: datafusion::sql::sqlparser::ast::CopySource::Query(q), .. } => self.query(q),
            Statement::Insert(i) => match &mut i.source {
                Some(q) => self.query(q),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    fn query(&mut self, q: &mut Query) -> NowResult<()> {
        if let Some(with) = &mut q.with {
            for cte in &mut with.cte_tables {
                self.query(&mut cte.query)?;
            }
        }
        self.set_expr(&mut q.body)
    }

    fn set_expr(&mut self, body: &mut SetExpr) -> NowResult<()> {
        match body {
            SetExpr::Select(select) => {
                for from in &mut select.from {
                    self.from(from)?;
                }
                Ok(())
            }
            SetExpr::Query(q) => self.query(q),
            SetExpr::SetOperation { left, right, .. } => {
                self.set_expr(left)?;
                self.set_expr(right)
            }
            _ => Ok(()),
        }
    }

    fn from(&mut self, from: &mut TableWithJoins) -> NowResult<()> {
        self.relation(&mut from.relation)?;
        for join in &mut from.joins {
            self.join(join)?;
        }
        Ok(())
    }

    /// A relation outside a temporal join: `AS OF` must be a constant there.
    fn relation(&mut self, r: &mut TableFactor) -> NowResult<()> {
        match r {
            TableFactor::Derived { subquery, .. } => self.query(subquery),
            TableFactor::NestedJoin { table_with_joins, .. } => self.from(table_with_joins),
            TableFactor::Table { version: Some(_), .. } => self.as_of_constant(r),
            _ => Ok(()),
        }
    }

    fn join(&mut self, join: &mut Join) -> NowResult<()> {
        // Joins are visited in source order, and a relation starts at or after the token
        // following its JOIN (a derived table's span starts inside its parentheses).
        let start = join.relation.span().start;
        let duckdb_asof = match self.asof_joins.iter().position(|&l| l <= start) {
            Some(i) => {
                self.asof_joins.remove(i);
                true
            }
            None => false,
        };
        let temporal = match &mut join.relation {
            TableFactor::Table { version: Some(TableVersion::ForSystemTimeAsOf(e)), .. } if references_columns(e) => Some(e.clone()),
            _ => None,
        };
        if let Some(time) = temporal {
            self.rewritten = true;
            if let TableFactor::Table { version, .. } = &mut join.relation {
                *version = None;
            }
            let wrapped = |cond: &Expr| format!("nowdb_versioned({time}, {cond})");
            return self.mark(join, "FOR SYSTEM_TIME AS OF", wrapped);
        }
        self.relation(&mut join.relation)?;
        if duckdb_asof {
            return self.mark(join, "ASOF JOIN", |cond| format!("nowdb_asof({cond})"));
        }
        if let JoinOperator::AsOf { match_condition, constraint } = &join.join_operator {
            self.rewritten = true;
            let JoinConstraint::On(cond) = constraint else {
                return Err(NowError::Syntax("ASOF JOIN ... MATCH_CONDITION (...) needs an ON condition".into()));
            };
            let marked = self.expr(&format!("nowdb_asof(({match_condition}) AND ({cond}))"))?;
            join.join_operator = JoinOperator::LeftOuter(JoinConstraint::On(marked));
        }
        Ok(())
    }

    /// Wraps an INNER or LEFT join's ON condition.
    fn mark(&self, join: &mut Join, what: &str, wrap: impl Fn(&Expr) -> String) -> NowResult<()> {
        let constraint = match &mut join.join_operator {
            JoinOperator::Join(c) | JoinOperator::Inner(c) | JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => c,
            _ => return Err(NowError::Unsupported(format!("{what} is an INNER or LEFT join"))),
        };
        let JoinConstraint::On(cond) = constraint else {
            return Err(NowError::Syntax(format!("{what} needs an ON condition")));
        };
        *cond = self.expr(&wrap(cond))?;
        Ok(())
    }

    fn expr(&self, sql: &str) -> NowResult<Expr> {
        Ok(Parser::new(self.dialect).try_with_sql(sql)?.parse_expr()?)
    }

    /// `t FOR SYSTEM_TIME AS OF <constant>`.
    fn as_of_constant(&mut self, r: &mut TableFactor) -> NowResult<()> {
        self.rewritten = true;
        let TableFactor::Table { name, alias, version: Some(version), args: None, .. } = r else {
            return Err(NowError::Unsupported("FOR SYSTEM_TIME AS OF on a table function".into()));
        };
        let TableVersion::ForSystemTimeAsOf(at) = version else {
            return Err(NowError::Unsupported(format!("{version}")));
        };
        if references_columns(at) {
            return Err(NowError::Unsupported(
                "FOR SYSTEM_TIME AS OF a column outside a join (use [LEFT] JOIN view FOR SYSTEM_TIME AS OF l.ts AS f ON ...)".into(),
            ));
        }
        let table_name = crate::ddl::table_name(name)?;
        let table = self.catalog.require(&table_name)?;
        let quoted = |name: &str, q: char| Ident::with_quote(q, name).to_string();
        let alias = match alias {
            Some(a) if a.columns.is_empty() => a.name.to_string(),
            Some(a) => format!("{}({})", a.name, a.columns.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")),
            None => quoted(&table_name, '"'),
        };
        let sql = if table.is_view() {
            format!("view_as_of({}, {at}) AS {alias}", quoted(&table_name, '\''))
        } else if let (false, Some(col)) = (table.is_keyed(), table.def().event_time_column()) {
            let col = &table.def().columns[col].name;
            format!("(SELECT * FROM {} WHERE {} <= {at}) AS {alias}", quoted(&table_name, '"'), quoted(col, '"'))
        } else {
            return Err(NowError::Unsupported(format!(
                "FOR SYSTEM_TIME AS OF on \"{table_name}\": only materialized views (which keep their history) and event tables with a timestamp column can be read as of a time"
            )));
        };
        let mut parser = Parser::new(self.dialect).try_with_sql(&sql)?;
        *r = parser.parse_table_factor()?;
        parser.expect_token(&Token::EOF)?;
        Ok(())
    }
}

/// Whether an expression reads a column (a temporal join's time), not just constants.
fn references_columns(e: &Expr) -> bool {
    let mut found = false;
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(e, |e| {
        if matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
            found = true;
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asof_keyword_is_blanked_in_place() {
        let d = TimeTravelDialect(PostgreSqlDialect {});
        let sql = "SELECT * FROM l ASOF LEFT JOIN\n  p ON l.k = p.k AND p.t <= l.t";
        let (text, starts) = unmark_asof(sql, &d).unwrap();
        assert_eq!(text, "SELECT * FROM l      LEFT JOIN\n  p ON l.k = p.k AND p.t <= l.t");
        assert_eq!(starts, vec![Location::new(2, 3)]);
        let snowflake = "SELECT * FROM l ASOF JOIN p MATCH_CONDITION (l.t >= p.t) ON l.k = p.k";
        assert_eq!(unmark_asof(snowflake, &d).unwrap().0, snowflake);
    }

    #[test]
    fn column_references_are_found() {
        let d = TimeTravelDialect(PostgreSqlDialect {});
        let e = |s: &str| Parser::new(&d).try_with_sql(s).unwrap().parse_expr().unwrap();
        assert!(references_columns(&e("l.ts")));
        assert!(references_columns(&e("ts + INTERVAL '1 hour'")));
        assert!(!references_columns(&e("TIMESTAMP '2026-01-01 00:00:00'")));
    }
}
