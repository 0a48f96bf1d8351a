//! SQL column types and their Arrow representation.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::{CatalogError, Result};

/// A column type as declared in SQL (the Postgres name), stored in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SqlType {
    /// boolean
    Bool,
    /// smallint / int2
    Int2,
    /// integer / int4
    Int4,
    /// bigint / int8
    Int8,
    /// real / float4
    Float4,
    /// double precision / float8
    Float8,
    /// numeric(p, s), stored as decimal128
    Numeric {
        /// Total digits.
        precision: u8,
        /// Digits after the point.
        scale: i8,
    },
    /// text, varchar, char
    Text,
    /// bytea
    Bytea,
    /// date
    Date,
    /// timestamp without time zone (microseconds)
    Timestamp,
    /// timestamp with time zone (microseconds, UTC)
    Timestamptz,
    /// interval
    Interval,
    /// one-dimensional array of a scalar type
    Array(Box<SqlType>),
}

impl SqlType {
    /// Parses a type as written in DDL (`bigint`, `double precision`, `numeric(10,2)`,
    /// `real[]`, `timestamp with time zone`, ...), case-insensitively.
    pub fn parse(text: &str) -> Result<SqlType> {
        let t = text.trim().to_ascii_lowercase();
        if let Some(elem) = t.strip_suffix("[]") {
            let elem = SqlType::parse(elem)?;
            if matches!(elem, SqlType::Array(_)) {
                return Err(CatalogError::Unsupported(
                    "multidimensional arrays are not supported".into(),
                ));
            }
            return Ok(SqlType::Array(Box::new(elem)));
        }
        let (name, args) = match t.find('(') {
            Some(i) => {
                let close = t.rfind(')').unwrap_or(t.len());
                let rest = t.get(close + 1..).unwrap_or("").trim().to_string();
                let base = format!("{} {}", t[..i].trim(), rest);
                (base.trim().to_string(), Some(t[i + 1..close.max(i + 1)].to_string()))
            }
            None => (t.clone(), None),
        };
        let ty = match name.as_str() {
            "bool" | "boolean" => SqlType::Bool,
            "smallint" | "int2" => SqlType::Int2,
            "int" | "integer" | "int4" => SqlType::Int4,
            "bigint" | "int8" => SqlType::Int8,
            "real" | "float4" => SqlType::Float4,
            "double precision" | "double" | "float8" => SqlType::Float8,
            "float" => match args.as_deref().and_then(|a| a.trim().parse::<u32>().ok()) {
                Some(p) if p <= 24 => SqlType::Float4,
                _ => SqlType::Float8,
            },
            "numeric" | "decimal" => parse_numeric(args.as_deref())?,
            "text" | "varchar" | "character varying" | "char" | "character" | "string"
            | "bpchar" | "name" => SqlType::Text,
            "bytea" => SqlType::Bytea,
            "date" => SqlType::Date,
            "timestamp" | "timestamp without time zone" => SqlType::Timestamp,
            "timestamptz" | "timestamp with time zone" => SqlType::Timestamptz,
            "interval" => SqlType::Interval,
            _ => return Err(CatalogError::UnknownType(text.trim().to_string())),
        };
        Ok(ty)
    }

    /// The Arrow type values of this column are stored as.
    pub fn arrow_type(&self) -> DataType {
        match self {
            SqlType::Bool => DataType::Boolean,
            SqlType::Int2 => DataType::Int16,
            SqlType::Int4 => DataType::Int32,
            SqlType::Int8 => DataType::Int64,
            SqlType::Float4 => DataType::Float32,
            SqlType::Float8 => DataType::Float64,
            SqlType::Numeric { precision, scale } => DataType::Decimal128(*precision, *scale),
            SqlType::Text => DataType::Utf8,
            SqlType::Bytea => DataType::Binary,
            SqlType::Date => DataType::Date32,
            SqlType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            SqlType::Timestamptz => {
                DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
            }
            SqlType::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
            SqlType::Array(elem) => {
                DataType::List(Arc::new(Field::new("item", elem.arrow_type(), true)))
            }
        }
    }

    /// The SQL type that stores values of an Arrow type (a view's computed columns);
    /// `None` for Arrow types nowdb has no column type for.
    pub fn from_arrow(dt: &DataType) -> Option<SqlType> {
        Some(match dt {
            DataType::Boolean => SqlType::Bool,
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => SqlType::Int2,
            DataType::Int32 | DataType::UInt16 => SqlType::Int4,
            DataType::Int64 | DataType::UInt32 | DataType::UInt64 => SqlType::Int8,
            DataType::Float16 | DataType::Float32 => SqlType::Float4,
            DataType::Float64 => SqlType::Float8,
            DataType::Decimal128(p, s) if *s >= 0 => SqlType::Numeric { precision: *p, scale: *s },
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => SqlType::Text,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => SqlType::Bytea,
            DataType::Date32 => SqlType::Date,
            DataType::Timestamp(_, None) => SqlType::Timestamp,
            DataType::Timestamp(_, Some(_)) => SqlType::Timestamptz,
            DataType::Interval(_) => SqlType::Interval,
            DataType::List(f) | DataType::LargeList(f) => SqlType::Array(Box::new(SqlType::from_arrow(f.data_type())?)),
            _ => return None,
        })
    }

    /// The type's PostgreSQL OID (`pg_type.oid`); `None` for arrays of arrays.
    pub fn oid(&self) -> Option<i32> {
        Some(match self {
            SqlType::Bool => 16,
            SqlType::Int2 => 21,
            SqlType::Int4 => 23,
            SqlType::Int8 => 20,
            SqlType::Float4 => 700,
            SqlType::Float8 => 701,
            SqlType::Numeric { .. } => 1700,
            SqlType::Text => 25,
            SqlType::Bytea => 17,
            SqlType::Date => 1082,
            SqlType::Timestamp => 1114,
            SqlType::Timestamptz => 1184,
            SqlType::Interval => 1186,
            SqlType::Array(elem) => match elem.as_ref() {
                SqlType::Bool => 1000,
                SqlType::Int2 => 1005,
                SqlType::Int4 => 1007,
                SqlType::Int8 => 1016,
                SqlType::Float4 => 1021,
                SqlType::Float8 => 1022,
                SqlType::Numeric { .. } => 1231,
                SqlType::Text => 1009,
                SqlType::Bytea => 1001,
                SqlType::Date => 1182,
                SqlType::Timestamp => 1115,
                SqlType::Timestamptz => 1185,
                SqlType::Interval => 1187,
                SqlType::Array(_) => return None,
            },
        })
    }

    /// The type modifier PostgreSQL records (`pg_attribute.atttypmod`): numeric's precision
    /// and scale, -1 otherwise.
    pub fn typmod(&self) -> i32 {
        match self {
            SqlType::Numeric { precision, scale } => ((i32::from(*precision) << 16) | i32::from(*scale)) + 4,
            SqlType::Array(elem) => elem.typmod(),
            _ => -1,
        }
    }

    /// The Postgres spelling of the type (`format_type` style).
    pub fn pg_name(&self) -> String {
        match self {
            SqlType::Bool => "boolean".into(),
            SqlType::Int2 => "smallint".into(),
            SqlType::Int4 => "integer".into(),
            SqlType::Int8 => "bigint".into(),
            SqlType::Float4 => "real".into(),
            SqlType::Float8 => "double precision".into(),
            SqlType::Numeric { precision, scale } => format!("numeric({precision},{scale})"),
            SqlType::Text => "text".into(),
            SqlType::Bytea => "bytea".into(),
            SqlType::Date => "date".into(),
            SqlType::Timestamp => "timestamp without time zone".into(),
            SqlType::Timestamptz => "timestamp with time zone".into(),
            SqlType::Interval => "interval".into(),
            SqlType::Array(elem) => format!("{}[]", elem.pg_name()),
        }
    }

    /// Whether values of this type can form a primary key.
    pub fn can_be_key(&self) -> bool {
        !matches!(
            self,
            SqlType::Array(_) | SqlType::Interval | SqlType::Numeric { .. }
        )
    }
}

fn parse_numeric(args: Option<&str>) -> Result<SqlType> {
    let Some(args) = args else {
        // Postgres' unconstrained numeric; DataFusion's default decimal for it.
        return Ok(SqlType::Numeric { precision: 38, scale: 10 });
    };
    let parts: Vec<&str> = args.split(',').map(str::trim).collect();
    let bad = || CatalogError::InvalidDefinition(format!("invalid NUMERIC type modifier ({args})"));
    let precision: u8 = parts.first().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let scale: i8 = match parts.get(1) {
        Some(s) => s.parse().map_err(|_| bad())?,
        None => 0,
    };
    if precision == 0 || precision > 38 || scale < 0 || scale as u8 > precision {
        return Err(CatalogError::InvalidDefinition(format!(
            "NUMERIC precision {precision} must be between 1 and 38 and scale {scale} between 0 and the precision"
        )));
    }
    Ok(SqlType::Numeric { precision, scale })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_postgres_spellings() {
        assert_eq!(SqlType::parse("BIGINT").unwrap(), SqlType::Int8);
        assert_eq!(SqlType::parse("double precision").unwrap(), SqlType::Float8);
        assert_eq!(SqlType::parse("VARCHAR(20)").unwrap(), SqlType::Text);
        assert_eq!(
            SqlType::parse("numeric(10, 2)").unwrap(),
            SqlType::Numeric { precision: 10, scale: 2 }
        );
        assert_eq!(SqlType::parse("TIMESTAMP(3)").unwrap(), SqlType::Timestamp);
        assert_eq!(SqlType::parse("timestamp with time zone").unwrap(), SqlType::Timestamptz);
        assert_eq!(
            SqlType::parse("REAL[]").unwrap(),
            SqlType::Array(Box::new(SqlType::Float4))
        );
        assert!(matches!(SqlType::parse("geometry"), Err(CatalogError::UnknownType(_))));
    }
}
