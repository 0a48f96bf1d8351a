//! `CREATE TABLE`, `CREATE MATERIALIZED VIEW` and `DROP`: from the SQL AST to catalog
//! definitions and the view engine.

use datafusion::execution::context::SessionState;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, ColumnOption, CreateTable, CreateTableOptions, CreateView, Expr as SqlExpr, Ident,
    ObjectName, ObjectType, SqlOption, TableConstraint, Value,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use nowdb_catalog::{Catalog, ColumnDef, Connector, EventTime, SqlType};
use nowdb_views::engine::ViewOptions;
use nowdb_views::ViewEngine;

use crate::error::{NowError, NowResult};

/// Postgres identifier folding: unquoted names are lower-cased.
pub fn ident_name(id: &Ident) -> String {
    if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_lowercase()
    }
}

/// `name [, name ...]` at the parser's position (DROP MODEL, DROP SINK).
pub fn name_list(p: &mut Parser<'_>) -> NowResult<Vec<String>> {
    let mut names = vec![table_name(&p.parse_object_name(false)?)?];
    while p.consume_token(&datafusion::sql::sqlparser::tokenizer::Token::Comma) {
        names.push(table_name(&p.parse_object_name(false)?)?);
    }
    Ok(names)
}

/// The table name of a possibly schema-qualified object name (`public.t` or `t`).
pub fn table_name(name: &ObjectName) -> NowResult<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| p.as_ident().map(ident_name).ok_or_else(|| NowError::Syntax(format!("invalid name {name}"))))
        .collect::<NowResult<_>>()?;
    match parts.as_slice() {
        [t] => Ok(t.clone()),
        [s, t] if s == nowdb_catalog::SCHEMA => Ok(t.clone()),
        [d, s, t] if s == nowdb_catalog::SCHEMA && d == nowdb_catalog::DATABASE => Ok(t.clone()),
        [.., s, _] => Err(NowError::coded("3F000", format!("schema \"{s}\" does not exist"))),
        [] => Err(NowError::Syntax("empty table name".into())),
    }
}

/// `CREATE TABLE`. Returns false when the table existed and `IF NOT EXISTS` was given.
pub fn create_table(catalog: &Catalog, ct: &CreateTable) -> NowResult<bool> {
    if ct.query.is_some() {
        return Err(NowError::Unsupported("CREATE TABLE ... AS SELECT is not supported; create the table, then INSERT ... SELECT".into()));
    }
    if ct.temporary {
        return Err(NowError::Unsupported("temporary tables are not supported".into()));
    }
    let name = table_name(&ct.name)?;
    let mut columns = Vec::with_capacity(ct.columns.len());
    let mut primary_key: Vec<String> = Vec::new();
    let mut set_pk = |cols: Vec<String>| -> NowResult<()> {
        if !primary_key.is_empty() {
            return Err(NowError::coded("42P16", format!("multiple primary keys for table \"{name}\" are not allowed")));
        }
        primary_key = cols;
        Ok(())
    };
    for col in &ct.columns {
        let col_name = ident_name(&col.name);
        let ty = SqlType::parse(&col.data_type.to_string())?;
        let mut nullable = true;
        for opt in &col.options {
            match &opt.option {
                ColumnOption::Null => nullable = true,
                ColumnOption::NotNull => nullable = false,
                ColumnOption::PrimaryKey(_) => set_pk(vec![col_name.clone()])?,
                ColumnOption::Collation(_) | ColumnOption::Comment(_) => {}
                ColumnOption::Default(_) => {
                    return Err(NowError::Unsupported(format!(
                        "column defaults are not supported yet (column \"{col_name}\")"
                    )))
                }
                other => {
                    return Err(NowError::Unsupported(format!(
                        "column constraint {other} is not supported (column \"{col_name}\"); only NOT NULL and PRIMARY KEY are"
                    )))
                }
            }
        }
        columns.push(ColumnDef { name: col_name, ty, nullable });
    }
    for constraint in &ct.constraints {
        match constraint {
            TableConstraint::PrimaryKey(pk) => {
                let cols = pk
                    .columns
                    .iter()
                    .map(|c| match &c.column.expr {
                        SqlExpr::Identifier(id) => Ok(ident_name(id)),
                        other => Err(NowError::Unsupported(format!("primary key on expression {other}"))),
                    })
                    .collect::<NowResult<Vec<_>>>()?;
                set_pk(cols)?;
            }
            other => {
                return Err(NowError::Unsupported(format!(
                    "table constraint {other} is not supported; only PRIMARY KEY is"
                )))
            }
        }
    }
    let mut event_time = EventTime::default();
    let mut connector_options = std::collections::BTreeMap::new();
    for (key, value) in options(&ct.table_options)? {
        match key.as_str() {
            k if crate::kafka::options::is_source_option(k) => {
                connector_options.insert(key, value);
            }
            "retention" => event_time.retention_micros = Some(interval_micros(&value)?),
            "watermark" => {
                let (col, delay) = watermark(&value)?;
                let idx = columns.iter().position(|c| c.name == col).ok_or_else(|| {
                    NowError::coded("42703", format!("column \"{col}\" named in WATERMARK FOR does not exist"))
                })?;
                if !matches!(columns[idx].ty, SqlType::Timestamp | SqlType::Timestamptz) {
                    return Err(NowError::coded("42804", format!("WATERMARK FOR column \"{col}\" must be a timestamp")));
                }
                event_time.watermark = Some((idx, delay));
            }
            other => return Err(NowError::coded("22023", format!("unrecognized parameter \"{other}\""))),
        }
    }
    if event_time.retention_micros.is_some() && !primary_key.is_empty() {
        return Err(NowError::Unsupported("retention applies to event tables (tables without a primary key)".into()));
    }
    let connector = match connector_options.is_empty() {
        true => None,
        false => {
            if !primary_key.is_empty() {
                return Err(NowError::Unsupported("a Kafka source feeds an event table (a table without a primary key)".into()));
            }
            crate::kafka::options::SourceOptions::parse(&name, &connector_options)?;
            Some(Connector { kind: "kafka".into(), options: connector_options })
        }
    };
    Ok(catalog.create_table(&name, columns, primary_key, event_time, connector, ct.if_not_exists)?)
}

/// `WITH (k = v, ...)` as lower-case keys and unquoted values.
fn options(opts: &CreateTableOptions) -> NowResult<Vec<(String, String)>> {
    let list = match opts {
        CreateTableOptions::None => return Ok(vec![]),
        CreateTableOptions::With(l) => l,
        other => return Err(NowError::Unsupported(format!("table options {other}"))),
    };
    list.iter().map(option_pair).collect()
}

/// One `key = value` option: the key case-folded (dotted keys such as `properties.x` kept
/// whole), the value unquoted.
pub fn option_pair(o: &SqlOption) -> NowResult<(String, String)> {
    match o {
        SqlOption::KeyValue { key, value } => {
            let v = match value {
                SqlExpr::Value(v) => match &v.value {
                    Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                },
                other => other.to_string(),
            };
            Ok((ident_name(key), v))
        }
        other => Err(NowError::Unsupported(format!("option {other}"))),
    }
}

/// `col AS col - INTERVAL '5 seconds'` (the lifted WATERMARK FOR clause): the column and the
/// delay in microseconds.
fn watermark(text: &str) -> NowResult<(String, i64)> {
    let bad = || NowError::Syntax(format!("WATERMARK FOR {text}: expected WATERMARK FOR col AS col - INTERVAL '...'"));
    let (col, expr) = text.split_once(|c: char| c.is_whitespace()).ok_or_else(bad)?;
    let expr = expr.trim_start();
    let expr = expr.strip_prefix("AS").or_else(|| expr.strip_prefix("as")).or_else(|| expr.strip_prefix("As")).ok_or_else(bad)?;
    let col = ident_name(&Ident::new(col.trim_matches('"')));
    let parsed = Parser::new(&PostgreSqlDialect {}).try_with_sql(expr)?.parse_expr()?;
    let same_col = |e: &SqlExpr| matches!(e, SqlExpr::Identifier(i) if ident_name(i) == col);
    match parsed {
        ref e if same_col(e) => Ok((col, 0)),
        SqlExpr::BinaryOp { left, op: BinaryOperator::Minus, right } if same_col(&left) => match *right {
            SqlExpr::Interval(iv) => {
                let value = match iv.value.as_ref() {
                    SqlExpr::Value(v) => match &v.value {
                        Value::SingleQuotedString(s) => s.clone(),
                        other => other.to_string(),
                    },
                    _ => return Err(bad()),
                };
                let text = match iv.leading_field {
                    Some(f) => format!("{value} {f}"),
                    None => value,
                };
                Ok((col, interval_micros(&text)?))
            }
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

/// A Postgres interval text (`'7 days'`, `'1 hour 30 minutes'`, `'00:00:05'`) in
/// microseconds. Months and years are refused: their length in event time varies.
pub fn interval_micros(text: &str) -> NowResult<i64> {
    let bad = || NowError::coded("22007", format!("invalid input syntax for type interval: \"{text}\""));
    let mut total: i64 = 0;
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        if w.contains(':') {
            let parts: Vec<f64> = w.split(':').map(|p| p.parse::<f64>()).collect::<Result<_, _>>().map_err(|_| bad())?;
            let secs = match parts.as_slice() {
                [h, m, s] => h * 3600.0 + m * 60.0 + s,
                [h, m] => h * 3600.0 + m * 60.0,
                _ => return Err(bad()),
            };
            total += (secs * 1e6) as i64;
            i += 1;
            continue;
        }
        let n: f64 = w.parse().map_err(|_| bad())?;
        let unit = words.get(i + 1).map(|u| u.to_ascii_lowercase()).unwrap_or_else(|| "second".into());
        let per: f64 = match unit.trim_end_matches('s') {
            "microsecond" | "u" => 1.0,
            "millisecond" | "m" if unit == "ms" || unit.starts_with("milli") => 1e3,
            "second" | "sec" | "" => 1e6,
            "minute" | "min" | "m" => 60e6,
            "hour" | "hr" | "h" => 3600e6,
            "day" | "d" => 86_400e6,
            "week" | "w" => 7.0 * 86_400e6,
            "month" | "mon" | "year" | "y" => {
                return Err(NowError::Unsupported(format!("interval \"{text}\": months and years have no fixed length in event time")))
            }
            _ => return Err(bad()),
        };
        total += (n * per) as i64;
        i += if words.get(i + 1).is_some() { 2 } else { 1 };
    }
    if words.is_empty() || total <= 0 {
        return Err(bad());
    }
    Ok(total)
}

/// A boolean option value, spelled as Postgres accepts them.
fn bool_option(key: &str, value: &str) -> NowResult<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        _ => Err(NowError::coded("22023", format!("{key} requires a Boolean value"))),
    }
}

/// `CREATE MATERIALIZED VIEW [IF NOT EXISTS] name [WITH (retention = '...', history = false)]
/// AS query`.
/// Returns the number of rows the view starts with, or `None` when it existed.
pub async fn create_view(views: &ViewEngine, state: &SessionState, cv: &CreateView) -> NowResult<Option<i64>> {
    if !cv.materialized {
        return Err(NowError::Unsupported("CREATE VIEW is not supported; use CREATE MATERIALIZED VIEW (maintained incrementally)".into()));
    }
    if cv.or_replace || cv.or_alter {
        return Err(NowError::Unsupported("CREATE OR REPLACE MATERIALIZED VIEW is not supported; drop the view and create it again".into()));
    }
    if !cv.columns.is_empty() {
        return Err(NowError::Unsupported("a column list on CREATE MATERIALIZED VIEW is not supported; name the columns with AS in the query".into()));
    }
    let name = table_name(&cv.name)?;
    let mut view_options = ViewOptions::default();
    for (key, value) in options(&cv.options)? {
        match key.as_str() {
            "retention" => view_options.retention_micros = Some(interval_micros(&value)?),
            "history" => view_options.history = bool_option(&key, &value)?,
            other => return Err(NowError::coded("22023", format!("unrecognized parameter \"{other}\""))),
        }
    }
    let query = crate::naming::alias_unnamed(&cv.query).to_string();
    let created = views.create(state, &name, &query, cv.if_not_exists, view_options).await?;
    Ok(created.then(|| views.describe().into_iter().find(|d| d.name == name).map_or(0, |d| d.counters.rows)))
}

/// `DROP TABLE | MATERIALIZED VIEW [IF EXISTS] a, b [CASCADE]`. All names are checked
/// before anything is dropped. Returns the command tag.
pub fn drop(catalog: &Catalog, views: &ViewEngine, object_type: &ObjectType, if_exists: bool, cascade: bool, names: &[ObjectName]) -> NowResult<&'static str> {
    let (want_view, tag) = match object_type {
        ObjectType::Table => (false, "DROP TABLE"),
        ObjectType::MaterializedView => (true, "DROP MATERIALIZED VIEW"),
        other => return Err(NowError::Unsupported(format!("DROP {other} is not supported"))),
    };
    let names = names.iter().map(table_name).collect::<NowResult<Vec<_>>>()?;
    for n in &names {
        match catalog.table(n) {
            None if !if_exists => {
                return Err(if want_view {
                    NowError::coded("42P01", format!("materialized view \"{n}\" does not exist"))
                } else {
                    nowdb_catalog::CatalogError::NoSuchTable(n.clone()).into()
                })
            }
            Some(t) if t.is_view() != want_view => {
                let msg = if want_view {
                    format!("\"{n}\" is not a materialized view")
                } else {
                    format!("\"{n}\" is not a table; use DROP MATERIALIZED VIEW")
                };
                return Err(NowError::coded("42809", msg));
            }
            _ => {}
        }
    }
    let result = names.iter().try_for_each(|n| catalog.drop_table(n, if_exists, cascade).map(|_| ()));
    views.forget_dropped();
    result?;
    Ok(tag)
}
