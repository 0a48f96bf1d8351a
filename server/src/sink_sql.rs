//! Sink statements, which the Postgres parser does not know: `CREATE SINK [IF NOT EXISTS]
//! name FROM view WITH (connector = 'kafka', topic = '...', bootstrap_servers = '...')` and
//! `DROP SINK [IF EXISTS] name [, ...]`. Recognised before parsing like the model statements
//! (`model_sql::split`), parsed with sqlparser's tokenizer, run against the catalog (the
//! definition) and the connectors (the running sink).

use std::collections::BTreeMap;

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;
use nowdb_catalog::SinkDef;
use nowdb_storage::WriteSet;
use tracing::info;

use crate::ddl::table_name;
use crate::engine::Engine;
use crate::error::{NowError, NowResult};
use crate::kafka::options::SinkOptions;

/// A sink statement.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkStatement {
    /// `CREATE SINK [IF NOT EXISTS] name FROM view WITH (...)`.
    Create {
        /// The sink's name.
        name: String,
        /// The view streamed.
        view: String,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
        /// Options, lower-case keys.
        options: BTreeMap<String, String>,
    },
    /// `DROP SINK [IF EXISTS] name [, ...]`.
    Drop {
        /// Sinks to drop.
        names: Vec<String>,
        /// `IF EXISTS`.
        if_exists: bool,
    },
}

impl std::fmt::Display for SinkStatement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkStatement::Create { name, view, .. } => write!(f, "CREATE SINK {name} FROM {view}"),
            SinkStatement::Drop { names, .. } => write!(f, "DROP SINK {}", names.join(", ")),
        }
    }
}

/// Whether `sql` (trimmed at the start) is a sink statement.
pub fn is_sink_statement(sql: &str) -> bool {
    let words: Vec<String> = sql.split_whitespace().take(2).map(|w| w.to_ascii_lowercase()).collect();
    matches!(words.as_slice(), [a, b] if (a == "create" || a == "drop") && b == "sink")
}

fn expect_sink(p: &mut Parser<'_>) -> NowResult<()> {
    match p.next_token().token {
        Token::Word(w) if w.value.eq_ignore_ascii_case("sink") => Ok(()),
        other => Err(NowError::Syntax(format!("expected SINK, found {other}"))),
    }
}

/// Parses one sink statement.
pub fn parse(sql: &str) -> NowResult<SinkStatement> {
    let dialect = PostgreSqlDialect {};
    let mut p = Parser::new(&dialect).try_with_sql(sql)?;
    let stmt = if p.parse_keyword(Keyword::CREATE) {
        expect_sink(&mut p)?;
        let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let name = table_name(&p.parse_object_name(false)?)?;
        p.expect_keyword(Keyword::FROM)?;
        let view = table_name(&p.parse_object_name(false)?)?;
        let options = p.parse_options(Keyword::WITH)?.iter().map(crate::ddl::option_pair).collect::<NowResult<BTreeMap<_, _>>>()?;
        SinkStatement::Create { name, view, if_not_exists, options }
    } else {
        p.expect_keyword(Keyword::DROP)?;
        expect_sink(&mut p)?;
        let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        let names = crate::ddl::name_list(&mut p)?;
        SinkStatement::Drop { names, if_exists }
    };
    let _ = p.consume_token(&Token::SemiColon);
    match p.peek_token().token {
        Token::EOF => Ok(stmt),
        other => Err(NowError::Syntax(format!("unexpected {other} after sink statement"))),
    }
}

/// Runs a sink statement; returns the command tag.
pub fn execute(engine: &Engine, stmt: &SinkStatement) -> NowResult<&'static str> {
    let catalog = engine.catalog();
    match stmt {
        SinkStatement::Create { name, view, if_not_exists, options } => {
            if catalog.has_sink(name)? {
                return match if_not_exists {
                    true => Ok("CREATE SINK"),
                    false => Err(NowError::coded("42710", format!("sink \"{name}\" already exists"))),
                };
            }
            let table = catalog.require(view)?;
            let meta = match &table.def().kind {
                nowdb_catalog::TableKind::View(meta) => meta,
                _ => return Err(NowError::coded("42809", format!("\"{view}\" is not a materialized view: a sink streams a view's changes"))),
            };
            if !meta.history {
                return Err(NowError::Unsupported(format!("view \"{view}\" keeps no history (WITH (history = false)); a sink streams its history")));
            }
            SinkOptions::parse(options)?;
            let def = SinkDef { name: name.clone(), view: view.clone(), connector: "kafka".into(), options: options.clone() };
            catalog.put_sink(&def)?;
            info!(sink = %name, view = %view, "created sink");
            engine.connectors().start_sink(def)?;
            Ok("CREATE SINK")
        }
        SinkStatement::Drop { names, if_exists } => {
            for n in names {
                if !catalog.has_sink(n)? && !if_exists {
                    return Err(NowError::coded("42704", format!("sink \"{n}\" does not exist")));
                }
            }
            for n in names {
                drop_sink(engine, n)?;
            }
            Ok("DROP SINK")
        }
    }
}

/// Stops and removes sink `name` with its progress.
pub fn drop_sink(engine: &Engine, name: &str) -> NowResult<()> {
    engine.connectors().stop_sink(name)?;
    let mut progress = WriteSet::new();
    progress.delete(nowdb_storage::Cf::Catalog, crate::kafka::sink::progress_key(name));
    engine.catalog().drop_sink(name, progress)?;
    Ok(())
}

/// Before `DROP MATERIALIZED VIEW`: without CASCADE, a view a sink streams is refused
/// (2BP01); with it, [`forget_dropped`] removes its sinks after the drop.
pub fn check_view_drop(engine: &Engine, views: &[String], cascade: bool) -> NowResult<()> {
    if cascade {
        return Ok(());
    }
    for v in views {
        if let Some(s) = engine.catalog().sinks_of(v)?.first() {
            return Err(NowError::coded("2BP01", format!("cannot drop materialized view {v} because sink {} depends on it", s.name)));
        }
    }
    Ok(())
}

/// After a DROP: removes the sinks of views that no longer exist (dropped, or dropped by
/// CASCADE with a table they read).
pub fn forget_dropped(engine: &Engine) -> NowResult<()> {
    for s in engine.catalog().sinks()? {
        if engine.catalog().table(&s.view).is_none() {
            drop_sink(engine, &s.name)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sink_statements() {
        assert!(is_sink_statement("CREATE  sink s FROM v"));
        assert!(is_sink_statement("drop SINK s"));
        assert!(!is_sink_statement("create table sink (a int)"));
        match parse("CREATE SINK IF NOT EXISTS s FROM v WITH (connector = 'kafka', topic = 't', bootstrap_servers = 'h:1')").unwrap() {
            SinkStatement::Create { name, view, if_not_exists, options } => {
                assert_eq!((name.as_str(), view.as_str(), if_not_exists), ("s", "v", true));
                assert_eq!(options["topic"], "t");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse("drop sink if exists a, b").unwrap(), SinkStatement::Drop { names: vec!["a".into(), "b".into()], if_exists: true });
        assert!(parse("CREATE SINK s v").is_err());
        assert!(parse("DROP SINK a b").is_err());
    }
}
