//! Functions whose value is the session's state, resolved to constants when a statement is
//! prepared: `current_setting(name [, missing_ok])`, `set_config(name, value, is_local)`,
//! `current_user` / `session_user` / `user`. DataFusion's functions are shared by every
//! session, so these cannot be ordinary functions. Drivers call them with literal arguments
//! (asyncpg's `current_setting('jit')`, Grafana's `search_path`) or a parameter
//! (SQLAlchemy's `current_setting($1::varchar)`, which becomes a CASE over every setting).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, BinaryOperator, CaseWhen, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList,
    FunctionArguments, Ident, ObjectName, Statement, Value,
};
use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;

use crate::error::{NowError, NowResult};
use crate::session::Session;

/// `stmt` with the session functions replaced by their values.
pub fn resolve(session: &Session, mut stmt: Statement) -> NowResult<Statement> {
    let mut failure = None;
    let _ = visit_expressions_mut(&mut stmt, |expr| {
        match value_of(session, expr) {
            Ok(Some(value)) => *expr = value,
            Ok(None) => {}
            Err(e) => {
                failure = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(stmt),
    }
}

fn value_of(session: &Session, expr: &Expr) -> NowResult<Option<Expr>> {
    let Expr::Function(f) = expr else {
        return Ok(match expr {
            Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("user") => Some(text(session.user())),
            _ => None,
        });
    };
    let Some(name) = f.name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_ascii_lowercase()) else {
        return Ok(None);
    };
    let args = match &f.args {
        FunctionArguments::List(list) => list.args.iter().map(literal).collect::<Vec<_>>(),
        FunctionArguments::None => vec![],
        FunctionArguments::Subquery(_) => return Ok(None),
    };
    Ok(match (name.as_str(), args.as_slice()) {
        ("current_user" | "session_user" | "current_role", []) => Some(text(session.user())),
        ("current_setting", [Some(Literal::Text(name))]) => Some(text(&session.settings()?.get(name)?)),
        ("current_setting", [Some(Literal::Text(name)), Some(Literal::Bool(missing_ok))]) => {
            match session.settings()?.get(name) {
                Ok(value) => Some(text(&value)),
                Err(_) if *missing_ok => Some(Expr::value(Value::Null)),
                Err(e) => return Err(e),
            }
        }
        ("set_config", [Some(Literal::Text(name)), Some(Literal::Text(value)), Some(Literal::Bool(_))]) => {
            let mut settings = session.settings()?;
            let canon = settings.set(name, value)?;
            Some(text(&settings.get(canon)?))
        }
        // A parameter as the name (`current_setting($1::varchar)`, SQLAlchemy's): a CASE over
        // every setting's value as of now.
        ("current_setting", [None, ..]) => match &f.args {
            FunctionArguments::List(list) => list.args.first().and_then(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(name)) => Some(setting_by_name(session, name)),
                _ => None,
            }).transpose()?,
            _ => None,
        },
        ("current_setting" | "set_config", _) => {
            return Err(NowError::Unsupported(format!("{name}() takes literal arguments in nowdb")));
        }
        _ => None,
    })
}

fn setting_by_name(session: &Session, name: &Expr) -> NowResult<Expr> {
    let settings = session.settings()?.all();
    let conditions = settings
        .iter()
        .map(|(key, value, _)| CaseWhen {
            condition: Expr::BinaryOp {
                left: Box::new(Expr::Function(lower(name.clone()))),
                op: BinaryOperator::Eq,
                right: Box::new(text(&key.to_ascii_lowercase())),
            },
            result: text(value),
        })
        .collect();
    Ok(Expr::Case { case_token: AttachedToken::empty(), end_token: AttachedToken::empty(), operand: None, conditions, else_result: None })
}

fn lower(arg: Expr) -> Function {
    Function {
        name: ObjectName::from(vec![Ident::new("lower")]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    }
}

enum Literal {
    Text(String),
    Bool(bool),
}

fn literal(arg: &FunctionArg) -> Option<Literal> {
    let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = arg else { return None };
    // `'name'`, `'name'::varchar` (SQLAlchemy), `('name')`.
    let mut e = e;
    while let Expr::Cast { expr, .. } | Expr::Nested(expr) = e {
        e = expr;
    }
    let Expr::Value(v) = e else { return None };
    match &v.value {
        Value::SingleQuotedString(s) => Some(Literal::Text(s.clone())),
        Value::Boolean(b) => Some(Literal::Bool(*b)),
        _ => None,
    }
}

fn text(s: &str) -> Expr {
    Expr::value(Value::SingleQuotedString(s.to_string()))
}
