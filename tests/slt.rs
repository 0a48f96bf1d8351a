//! sqllogictest over the wire: a tokio-postgres connection in simple or extended protocol.

use std::fmt;

use async_trait::async_trait;
use sqllogictest::{DBOutput, DefaultColumnType};
use tokio_postgres::types::{FromSql, Kind, Type};
use nowdb_server::pgtext;
use tokio_postgres::{Client, SimpleQueryMessage};

/// Which protocol statements are sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Query messages (text results).
    Simple,
    /// Parse/Bind/Describe/Execute/Sync (binary results).
    Extended,
}

/// An error as the slt files see it: `<SQLSTATE>: <message>`.
#[derive(Debug)]
pub struct SltError(String);

impl fmt::Display for SltError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SltError {}

impl From<tokio_postgres::Error> for SltError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => SltError(format!("{}: {}", db.code().code(), db.message())),
            None => SltError(format!("client: {e}")),
        }
    }
}

/// One slt connection.
pub struct PgSlt {
    client: Client,
    protocol: Protocol,
}

impl PgSlt {
    /// Wraps a connected client.
    pub fn new(client: Client, protocol: Protocol) -> Self {
        Self { client, protocol }
    }
}

#[async_trait]
impl sqllogictest::AsyncDB for PgSlt {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<Self::ColumnType>, Self::Error> {
        match self.protocol {
            Protocol::Simple => simple(&self.client, sql).await,
            Protocol::Extended => extended(&self.client, sql).await,
        }
    }

    async fn shutdown(&mut self) {}
}

async fn simple(client: &Client, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
    let messages = client.simple_query(sql).await?;
    let mut columns = None;
    let mut rows = Vec::new();
    let mut count = 0;
    for m in messages {
        match m {
            SimpleQueryMessage::RowDescription(cols) => columns = Some(cols.len()),
            SimpleQueryMessage::Row(r) => {
                columns.get_or_insert(r.len());
                rows.push((0..r.len()).map(|i| text(r.get(i))).collect());
            }
            SimpleQueryMessage::CommandComplete(n) => count = n,
            _ => {}
        }
    }
    Ok(match columns {
        Some(n) => DBOutput::Rows { types: vec![DefaultColumnType::Any; n], rows },
        None => DBOutput::StatementComplete(count),
    })
}

async fn extended(client: &Client, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
    let stmt = client.prepare(sql).await?;
    if stmt.columns().is_empty() {
        let n = client.execute(&stmt, &[]).await?;
        return Ok(DBOutput::StatementComplete(n));
    }
    let result = client.query(&stmt, &[]).await?;
    let mut rows = Vec::with_capacity(result.len());
    for r in &result {
        let mut row = Vec::with_capacity(r.len());
        for i in 0..r.len() {
            let value = r.try_get::<_, Option<AnyText>>(i).map_err(|e| SltError(format!("client: decoding column {i}: {e:?}")))?;
            row.push(text(value.map(|t| t.0).as_deref()));
        }
        rows.push(row);
    }
    Ok(DBOutput::Rows { types: vec![DefaultColumnType::Any; stmt.columns().len()], rows })
}

fn text(v: Option<&str>) -> String {
    match v {
        None => "NULL".into(),
        Some("") => "(empty)".into(),
        Some(s) => s.to_string(),
    }
}

/// Any binary-format value rendered as the server's text format would render it.
pub struct AnyText(pub String);

impl<'a> FromSql<'a> for AnyText {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let s = match *ty {
            Type::BOOL => if bool::from_sql(ty, raw)? { "t" } else { "f" }.to_string(),
            Type::INT2 => i16::from_sql(ty, raw)?.to_string(),
            Type::INT4 => i32::from_sql(ty, raw)?.to_string(),
            Type::INT8 => i64::from_sql(ty, raw)?.to_string(),
            Type::FLOAT4 => pgtext::float4(f32::from_sql(ty, raw)?, 1),
            Type::FLOAT8 => pgtext::float8(f64::from_sql(ty, raw)?, 1),
            Type::NUMERIC => pgtext::numeric_from_binary(raw)?,
            Type::DATE => {
                let days = i32::from_sql(&Type::INT4, raw)?;
                (pg_epoch().date() + chrono::Duration::days(days as i64)).format("%Y-%m-%d").to_string()
            }
            Type::TIMESTAMP => pgtext::timestamp(chrono::NaiveDateTime::from_sql(ty, raw)?),
            Type::TIMESTAMPTZ => {
                let utc = chrono::DateTime::<chrono::Utc>::from_sql(ty, raw)?;
                pgtext::timestamptz(utc.fixed_offset())
            }
            Type::BYTEA => {
                let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
                format!("\\x{hex}")
            }
            Type::FLOAT4_ARRAY => array_text(Vec::<Option<f32>>::from_sql(ty, raw)?, |x| pgtext::float4(x, 1)),
            Type::FLOAT8_ARRAY => array_text(Vec::<Option<f64>>::from_sql(ty, raw)?, |x| pgtext::float8(x, 1)),
            Type::INT4_ARRAY => array_text(Vec::<Option<i32>>::from_sql(ty, raw)?, |x| x.to_string()),
            Type::INT8_ARRAY => array_text(Vec::<Option<i64>>::from_sql(ty, raw)?, |x| x.to_string()),
            Type::TIME => pgtext::time(chrono::NaiveTime::from_sql(ty, raw)?),
            Type::INTERVAL => interval_text(raw)?,
            Type::REGTYPE => regtype_text(u32::from_sql(&Type::OID, raw)?),
            Type::OID => u32::from_sql(ty, raw)?.to_string(),
            _ => match ty.kind() {
                Kind::Array(element) => generic_array_text(element, raw)?,
                _ => String::from_utf8(raw.to_vec())?,
            },
        };
        Ok(AnyText(s))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// Binary interval: microseconds, days, months.
fn interval_text(raw: &[u8]) -> Result<String, BoxError> {
    let micros = i64::from_be_bytes(raw.get(0..8).ok_or("short interval")?.try_into()?);
    let days = i32::from_be_bytes(raw.get(8..12).ok_or("short interval")?.try_into()?);
    let months = i32::from_be_bytes(raw.get(12..16).ok_or("short interval")?.try_into()?);
    Ok(pgtext::interval(months, days, micros))
}

/// A `regtype` as PostgreSQL prints it, for the built-in types the suites use.
fn regtype_text(oid: u32) -> String {
    match Type::from_oid(oid) {
        Some(Type::INT2) => "smallint".into(),
        Some(Type::INT4) => "integer".into(),
        Some(Type::INT8) => "bigint".into(),
        Some(Type::FLOAT4) => "real".into(),
        Some(Type::FLOAT8) => "double precision".into(),
        Some(Type::BOOL) => "boolean".into(),
        Some(Type::VARCHAR) => "character varying".into(),
        Some(Type::TIMESTAMP) => "timestamp without time zone".into(),
        Some(Type::TIMESTAMPTZ) => "timestamp with time zone".into(),
        Some(Type::TIME) => "time without time zone".into(),
        Some(t) => t.name().to_string(),
        None => oid.to_string(),
    }
}

/// Any one-dimensional binary array, each element rendered like a value of its type and
/// quoted as PostgreSQL's array output quotes it.
fn generic_array_text(element: &Type, raw: &[u8]) -> Result<String, BoxError> {
    let mut items = Vec::new();
    for value in pgtext::binary_array_elements(raw)? {
        items.push(match value {
            None => "NULL".to_string(),
            Some(bytes) => pgtext::array_element(&AnyText::from_sql(element, bytes)?.0),
        });
    }
    Ok(format!("{{{}}}", items.join(",")))
}

fn pg_epoch() -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2000, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).unwrap_or_default()
}

fn array_text<T>(v: Vec<Option<T>>, show: impl Fn(T) -> String) -> String {
    let items: Vec<String> = v.into_iter().map(|x| x.map_or("NULL".into(), &show)).collect();
    format!("{{{}}}", items.join(","))
}

