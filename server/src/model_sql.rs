//! Model statements: `CREATE [OR REPLACE] MODEL name FROM source [WITH (...)]` and
//! `DROP MODEL [IF EXISTS] name [, ...] [CASCADE | RESTRICT]`, which the Postgres parser does
//! not know. They are recognised before parsing ([`split`]), parsed with sqlparser's own
//! tokenizer and expression parser ([`parse`]), and run here ([`create`], [`drop`]) against
//! the catalog (persistence), the model registry (loaded versions), the query context (the
//! model's SQL function) and the view engine (views that call the model).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::common::ParamValues;
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{DataType as SqlType, Expr as SqlExpr, SqlOption, Value};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;
use nowdb_catalog::{CatalogError, ModelDef};
use nowdb_models::{Device, Model, SessionOptions};
use tracing::info;

use crate::ddl::table_name;
use crate::engine::Engine;
use crate::error::{NowError, NowResult};

/// A model statement.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelStatement {
    /// `CREATE [OR REPLACE] MODEL [IF NOT EXISTS] name FROM source [WITH (...)]`.
    Create(CreateModel),
    /// `DROP MODEL [IF EXISTS] name [, ...] [CASCADE | RESTRICT]`.
    Drop {
        /// Models to drop.
        names: Vec<String>,
        /// `IF EXISTS`.
        if_exists: bool,
        /// `CASCADE`: drop the views that call them too.
        cascade: bool,
    },
}

/// `CREATE MODEL`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateModel {
    /// Model (and function) name.
    pub name: String,
    /// `OR REPLACE`: a new version of an existing model.
    pub or_replace: bool,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// Where the ONNX bytes come from.
    pub source: ModelSource,
    /// `WITH (device = ..., output = ..., threads = ...)`.
    pub options: Vec<(String, String)>,
}

/// Where a model's bytes come from.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSource {
    /// A file under the server's model directory.
    File(String),
    /// A bytea literal in the statement.
    Literal(Vec<u8>),
    /// A bytea parameter (`$n`, 1-based).
    Param(usize),
}

impl std::fmt::Display for ModelStatement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelStatement::Create(c) => {
                let source = match &c.source {
                    ModelSource::File(p) => format!("'{}'", p.replace('\'', "''")),
                    ModelSource::Literal(b) => format!("<{} bytes>", b.len()),
                    ModelSource::Param(n) => format!("${n}"),
                };
                let replace = if c.or_replace { "OR REPLACE " } else { "" };
                write!(f, "CREATE {replace}MODEL {} FROM {source}", c.name)
            }
            ModelStatement::Drop { names, .. } => write!(f, "DROP MODEL {}", names.join(", ")),
        }
    }
}

/// Whether `sql` (one statement) starts as a model statement does.
fn is_model_statement(sql: &str) -> bool {
    let words: Vec<String> = sql.split_whitespace().take(4).map(|w| w.to_ascii_lowercase()).collect();
    let w = |i: usize| words.get(i).map(String::as_str);
    matches!((w(0), w(1), w(2), w(3)), (Some("create"), Some("model"), _, _) | (Some("create"), Some("or"), Some("replace"), Some("model")) | (Some("drop"), Some("model"), _, _))
}

/// One statement of a query string: nowdb's model statement, or SQL for the Postgres parser.
#[derive(Debug)]
pub enum Piece<'a> {
    /// A model statement's text.
    Model(&'a str),
    /// A sink statement's text (`crate::sink_sql`).
    Sink(&'a str),
    /// Anything else.
    Sql(&'a str),
}

/// Splits `sql` at its top-level semicolons when one of its statements is a model or sink
/// statement; `None` when there is none (the common case: the whole text goes to the Postgres
/// parser).
pub fn split(sql: &str) -> Option<Vec<Piece<'_>>> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (s, e) in crate::extensions::tokens(sql) {
        if &sql[s..e] == ";" {
            pieces.push(&sql[start..s]);
            start = e;
        }
    }
    pieces.push(&sql[start..]);
    let pieces: Vec<&str> = pieces.into_iter().filter(|p| !p.trim().is_empty()).collect();
    let sink = |p: &str| crate::sink_sql::is_sink_statement(p.trim_start());
    if !pieces.iter().any(|p| is_model_statement(p.trim_start()) || sink(p)) {
        return None;
    }
    Some(
        pieces
            .into_iter()
            .map(|p| match () {
                _ if is_model_statement(p.trim_start()) => Piece::Model(p),
                _ if sink(p) => Piece::Sink(p),
                _ => Piece::Sql(p),
            })
            .collect(),
    )
}

/// Parses one model statement.
pub fn parse(sql: &str) -> NowResult<ModelStatement> {
    let dialect = PostgreSqlDialect {};
    let mut p = Parser::new(&dialect).try_with_sql(sql)?;
    let stmt = if p.parse_keyword(Keyword::CREATE) {
        let or_replace = p.parse_keywords(&[Keyword::OR, Keyword::REPLACE]);
        expect_model(&mut p)?;
        let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let name = table_name(&p.parse_object_name(false)?)?;
        p.expect_keyword(Keyword::FROM)?;
        let source = source(&p.parse_expr()?)?;
        let options = p.parse_options(Keyword::WITH)?.iter().map(option).collect::<NowResult<_>>()?;
        ModelStatement::Create(CreateModel { name, or_replace, if_not_exists, source, options })
    } else {
        p.expect_keyword(Keyword::DROP)?;
        expect_model(&mut p)?;
        let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        let names = crate::ddl::name_list(&mut p)?;
        let cascade = p.parse_keyword(Keyword::CASCADE);
        if !cascade {
            let _ = p.parse_keyword(Keyword::RESTRICT);
        }
        ModelStatement::Drop { names, if_exists, cascade }
    };
    while p.consume_token(&Token::SemiColon) {}
    let rest = p.peek_token();
    if rest.token != Token::EOF {
        return Err(NowError::Syntax(format!("syntax error at or near \"{}\"", rest.token)));
    }
    Ok(stmt)
}

fn expect_model(p: &mut Parser<'_>) -> NowResult<()> {
    match p.next_token().token {
        Token::Word(w) if w.value.eq_ignore_ascii_case("model") => Ok(()),
        other => Err(NowError::Syntax(format!("syntax error at or near \"{other}\": expected MODEL"))),
    }
}

fn source(e: &SqlExpr) -> NowResult<ModelSource> {
    let bad = || {
        NowError::Syntax(format!(
            "CREATE MODEL ... FROM takes a file path ('fraud.onnx'), a bytea parameter ($1) or a bytea literal ('\\x...'::bytea), not {e}"
        ))
    };
    match e {
        SqlExpr::Value(v) => match &v.value {
            Value::SingleQuotedString(path) => Ok(ModelSource::File(path.clone())),
            Value::Placeholder(p) => placeholder(p).ok_or_else(bad),
            Value::HexStringLiteral(h) => hex(h).map(ModelSource::Literal),
            Value::EscapedStringLiteral(s) => bytea_text(s).map(ModelSource::Literal),
            _ => Err(bad()),
        },
        SqlExpr::Cast { expr, data_type: SqlType::Bytea, .. } => match expr.as_ref() {
            SqlExpr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => bytea_text(s).map(ModelSource::Literal),
                Value::Placeholder(p) => placeholder(p).ok_or_else(bad),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        },
        SqlExpr::TypedString(t) if t.data_type == SqlType::Bytea => match &t.value.value {
            Value::SingleQuotedString(s) => bytea_text(s).map(ModelSource::Literal),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

fn placeholder(p: &str) -> Option<ModelSource> {
    p.strip_prefix('$')?.parse().ok().filter(|n| (1..=65535).contains(n)).map(ModelSource::Param)
}

/// A bytea literal in Postgres's hex format (`\x0a0b...`).
fn bytea_text(s: &str) -> NowResult<Vec<u8>> {
    match s.strip_prefix("\\x").or_else(|| s.strip_prefix("\\X")) {
        Some(h) => hex(h),
        None => Err(NowError::coded("22P02", "a model literal must be bytea in hex format ('\\x...')")),
    }
}

fn hex(h: &str) -> NowResult<Vec<u8>> {
    let h = h.as_bytes();
    if !h.len().is_multiple_of(2) {
        return Err(NowError::coded("22P02", "invalid hexadecimal data: odd number of digits"));
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    h.chunks(2)
        .map(|p| match (digit(p[0]), digit(p[1])) {
            (Some(a), Some(b)) => Ok(a << 4 | b),
            _ => Err(NowError::coded("22P02", format!("invalid hexadecimal digit: \"{}\"", String::from_utf8_lossy(p)))),
        })
        .collect()
}

fn option(o: &SqlOption) -> NowResult<(String, String)> {
    match o {
        SqlOption::KeyValue { key, value } => {
            let v = match value {
                SqlExpr::Value(v) => match &v.value {
                    Value::SingleQuotedString(s) => s.clone(),
                    Value::Number(n, _) => n.to_string(),
                    other => other.to_string(),
                },
                SqlExpr::Identifier(i) => i.value.clone(),
                other => other.to_string(),
            };
            Ok((key.value.to_ascii_lowercase(), v))
        }
        other => Err(NowError::Syntax(format!("invalid model option {other}"))),
    }
}

/// The parameter types a model statement takes (a bytea `$n` source).
pub fn param_count(stmt: &ModelStatement) -> Option<usize> {
    match stmt {
        ModelStatement::Create(CreateModel { source: ModelSource::Param(n), .. }) => Some(*n),
        _ => None,
    }
}

fn session_options(options: &[(String, String)]) -> NowResult<SessionOptions> {
    let mut out = SessionOptions::default();
    for (k, v) in options {
        match k.as_str() {
            "device" => out.device = Device::parse(v)?,
            "output" => out.output = Some(v.clone()),
            "threads" => {
                let n: usize = v.parse().ok().filter(|n| (1..=256).contains(n)).ok_or_else(|| {
                    NowError::coded("22023", format!("invalid value for option \"threads\": \"{v}\" (expected 1 to 256)"))
                })?;
                out.threads = Some(n);
            }
            other => {
                return Err(NowError::coded("22023", format!("unrecognized model option \"{other}\" (known: device, output, threads)")))
            }
        }
    }
    Ok(out)
}

/// Reads `path` under `dir`, refusing paths that leave it (42501).
fn read_model_file(dir: &Path, path: &str) -> NowResult<Vec<u8>> {
    let not_found = |p: &Path, e: std::io::Error| NowError::coded("58P01", format!("could not open file \"{}\": {e}", p.display()));
    let root = dir.canonicalize().map_err(|e| not_found(dir, e))?;
    let wanted = root.join(path);
    let full: PathBuf = wanted.canonicalize().map_err(|e| {
        // A path that leaves the directory is refused whether or not the file exists.
        if crate::paths::escapes(&root, &wanted) {
            outside(path, &root)
        } else {
            not_found(Path::new(path), e)
        }
    })?;
    if !full.starts_with(&root) {
        return Err(outside(path, &root));
    }
    std::fs::read(&full).map_err(|e| not_found(Path::new(path), e))
}

fn outside(path: &str, root: &Path) -> NowError {
    NowError::coded("42501", format!("path \"{path}\" is outside the model directory {}", root.display()))
}


/// `CREATE [OR REPLACE] MODEL`. Returns the command tag.
pub async fn create(engine: &Arc<Engine>, c: &CreateModel, params: &ParamValues) -> NowResult<&'static str> {
    let options = session_options(&c.options)?;
    let limits = &engine.config().limits;
    if let Some(t) = options.threads.filter(|t| *t > limits.max_model_threads as usize) {
        return Err(NowError::coded(
            "22023",
            format!("threads = {t} exceeds the limit of {} intra-op threads per model (max_model_threads)", limits.max_model_threads),
        ));
    }
    let too_large = |size: u64| {
        NowError::coded("54000", format!("model of {size} bytes exceeds the limit of {} bytes (max_model_bytes)", limits.max_model_bytes))
    };
    let _ddl = engine.model_ddl().lock().await;
    let existing = engine.catalog().model(&c.name)?;
    if existing.is_some() && !c.or_replace {
        return if c.if_not_exists { Ok("CREATE MODEL") } else { Err(CatalogError::ModelExists(c.name.clone()).into()) };
    }
    if existing.is_none() && engine.is_builtin_function(&c.name) {
        return Err(NowError::coded("42723", format!("function \"{}\" already exists (a built-in function); choose another model name", c.name)));
    }
    let bytes: Vec<u8> = match &c.source {
        ModelSource::Literal(b) => b.clone(),
        ModelSource::Param(n) => match params {
            ParamValues::List(l) => match l.get(n - 1).map(|p| &p.value) {
                Some(ScalarValue::Binary(Some(b)) | ScalarValue::LargeBinary(Some(b)) | ScalarValue::BinaryView(Some(b))) => b.clone(),
                Some(ScalarValue::Utf8(Some(s))) => bytea_text(s)?,
                None => return Err(NowError::coded("42P02", format!("there is no parameter ${n}"))),
                Some(v) if v.is_null() => return Err(NowError::coded("22004", "the model parameter is NULL")),
                _ => return Err(NowError::coded("42804", format!("parameter ${n} must be bytea (the ONNX file's bytes)"))),
            },
            ParamValues::Map(_) => return Err(NowError::coded("08P01", format!("no value for parameter ${n}"))),
        },
        ModelSource::File(path) => {
            let size = std::fs::metadata(engine.model_dir().join(path)).map(|m| m.len()).unwrap_or(0);
            if size > limits.max_model_bytes {
                return Err(too_large(size));
            }
            let (dir, path) = (engine.model_dir().to_path_buf(), path.clone());
            tokio::task::spawn_blocking(move || read_model_file(&dir, &path))
                .await
                .map_err(|e| NowError::coded("XX000", format!("reading the model file failed: {e}")))??
        }
    };
    if bytes.len() as u64 > limits.max_model_bytes {
        return Err(too_large(bytes.len() as u64));
    }
    let version = existing.as_ref().map_or(1, |d| d.version + 1);
    let def = ModelDef {
        name: c.name.clone(),
        version,
        device: options.device.as_str().to_string(),
        output: options.output.clone(),
        threads: options.threads.map(|t| t as u32),
        size: bytes.len() as u64,
    };
    let shared: Arc<[u8]> = bytes.into();
    let (name, load_bytes) = (c.name.clone(), shared.clone());
    let model = tokio::task::spawn_blocking(move || Model::load(&name, version, load_bytes, options))
        .await
        .map_err(|e| NowError::coded("XX000", format!("loading the model failed: {e}")))??;
    // Views calling the model switch to the new version: it must fit where the old one is.
    if let Some(old) = engine.models().get(&c.name) {
        let (old_sig, new_sig) = (old.signature(), model.signature());
        if old_sig.arity() != new_sig.arity() || old_sig.return_type() != new_sig.return_type() {
            if let Some(view) = engine.views().calling_model(&c.name).first() {
                return Err(NowError::coded(
                    "42P13",
                    format!(
                        "cannot replace model \"{}\": materialized view \"{view}\" calls it and the new version has another signature ({} instead of {}); drop the view first",
                        c.name,
                        nowdb_models::signature::Display(&c.name, new_sig),
                        nowdb_models::signature::Display(&c.name, old_sig)
                    ),
                ));
            }
        }
    }
    engine.catalog().put_model(&def, &shared)?;
    engine.install_model(model.clone())?;
    let switched = engine.views().switch_model(&engine.ctx().state(), &c.name).await?;
    info!(model = %c.name, version, inputs = %model.signature().inputs_text(), output = %model.signature().output.name,
          device = model.session().device().as_str(), views_switched = switched.len(), "model created");
    Ok("CREATE MODEL")
}

/// `DROP MODEL`. Refused while a view calls the model (2BP01), unless `CASCADE`, which drops
/// those views first.
pub async fn drop(engine: &Arc<Engine>, names: &[String], if_exists: bool, cascade: bool) -> NowResult<&'static str> {
    let _ddl = engine.model_ddl().lock().await;
    for n in names {
        if engine.catalog().model(n)?.is_none() && !if_exists {
            return Err(CatalogError::NoSuchModel(n.clone()).into());
        }
        if let (Some(view), false) = (engine.views().calling_model(n).first(), cascade) {
            return Err(CatalogError::DependentObjects { name: format!("model {n}"), dependent: view.clone() }.into());
        }
    }
    for n in names {
        for view in engine.views().calling_model(n) {
            engine.catalog().drop_table(&view, true, true)?;
            engine.views().forget_dropped();
        }
        if engine.catalog().drop_model(n)? {
            engine.uninstall_model(n)?;
            info!(model = %n, "model dropped");
        }
    }
    Ok("DROP MODEL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_model_statements() {
        let c = parse("create or replace model Fraud from 'f/fraud.onnx' with (device = 'auto', threads = 2);").unwrap();
        assert_eq!(
            c,
            ModelStatement::Create(CreateModel {
                name: "fraud".into(),
                or_replace: true,
                if_not_exists: false,
                source: ModelSource::File("f/fraud.onnx".into()),
                options: vec![("device".into(), "auto".into()), ("threads".into(), "2".into())],
            })
        );
        assert!(matches!(parse("CREATE MODEL m FROM $1").unwrap(), ModelStatement::Create(CreateModel { source: ModelSource::Param(1), .. })));
        assert!(matches!(
            parse("CREATE MODEL m FROM '\\x0aff'::bytea").unwrap(),
            ModelStatement::Create(CreateModel { source: ModelSource::Literal(b), .. }) if b == vec![0x0a, 0xff]
        ));
        assert_eq!(
            parse("DROP MODEL IF EXISTS a, public.b CASCADE").unwrap(),
            ModelStatement::Drop { names: vec!["a".into(), "b".into()], if_exists: true, cascade: true }
        );
        assert!(parse("CREATE MODEL m FROM 1 + 2").is_err());
        assert!(parse("CREATE MODEL m FROM 'x' extra").is_err());
    }

    #[test]
    fn splits_only_around_model_statements() {
        assert!(split("select 1; select 'create model'").is_none());
        let pieces = split("select 1; create model m from 'a;b.onnx'; select 2").unwrap();
        assert_eq!(pieces.len(), 3);
        assert!(matches!(pieces[1], Piece::Model(s) if s.trim() == "create model m from 'a;b.onnx'"));
    }

    #[test]
    fn model_paths_stay_in_their_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.onnx"), b"x").unwrap();
        assert_eq!(read_model_file(dir.path(), "m.onnx").unwrap(), b"x");
        assert_eq!(read_model_file(dir.path(), "./m.onnx").unwrap(), b"x");
        let code = |p: &str| match read_model_file(dir.path(), p) {
            Err(NowError::Coded { code, .. }) => code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code("../m.onnx"), "42501");
        assert_eq!(code("/etc/passwd"), "42501");
        assert_eq!(code("missing.onnx"), "58P01");
    }
}
