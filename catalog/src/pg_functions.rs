//! Postgres functions that drivers and tools call and `datafusion-pg-catalog` lacks:
//! `pg_typeof`, `to_regtype`, `pg_size_pretty`, `json_build_object`, `format`, the lookups of what
//! nowdb does not have (`pg_get_serial_sequence`, descriptions and relation sizes are NULL,
//! every collation and function is visible), and
//! the no-op session calls a connection pool makes (`pg_advisory_unlock_all`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    create_udf, ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::scalar::ScalarValue;

use crate::types::SqlType;

/// The functions, to register on a session context.
pub fn functions() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(PgTypeof::default()),
        create_udf("to_regtype", vec![DataType::Utf8], DataType::Int32, Volatility::Stable, Arc::new(to_regtype)),
        create_udf("pg_size_pretty", vec![DataType::Int64], DataType::Utf8, Volatility::Immutable, Arc::new(size_pretty)),
        ScalarUDF::new_from_impl(RowText::new("json_build_object", json_build_object)),
        ScalarUDF::new_from_impl(RowText::new("format", format)),
        constant("pg_get_serial_sequence", vec![DataType::Utf8, DataType::Utf8], ScalarValue::Utf8(None)),
        constant("pg_function_is_visible", vec![DataType::Int32], ScalarValue::Boolean(Some(true))),
        constant("pg_collation_is_visible", vec![DataType::Int32], ScalarValue::Boolean(Some(true))),
        // Sizes on disk are RocksDB's, not per relation: unknown (NULL), as psql's \dt+ shows.
        constant("pg_table_size", vec![DataType::Int32], ScalarValue::Int64(None)),
        // Comments are not stored: every object's description is NULL.
        constant("col_description", vec![DataType::Int32, DataType::Int32], ScalarValue::Utf8(None)),
        constant("obj_description", vec![DataType::Int32, DataType::Utf8], ScalarValue::Utf8(None)),
        constant("pg_advisory_unlock_all", vec![], ScalarValue::Null),
    ]
}

/// A function of `args` that always returns `value`.
fn constant(name: &str, args: Vec<DataType>, value: ScalarValue) -> ScalarUDF {
    let ty = value.data_type();
    create_udf(name, args, ty, Volatility::Stable, Arc::new(move |_: &[ColumnarValue]| Ok(ColumnarValue::Scalar(value.clone()))))
}

/// `pg_typeof(any)`: the Postgres name of the argument's type (`bigint`, `text`, `real[]`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct PgTypeof {
    signature: Signature,
}

impl Default for PgTypeof {
    fn default() -> Self {
        Self { signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for PgTypeof {
    fn name(&self) -> &str {
        "pg_typeof"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let dt = args.arg_fields.first().map(|f| f.data_type().clone()).unwrap_or(DataType::Null);
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(type_name(&dt)))))
    }
}

/// A function of any arguments computing a text value row by row from the row's values:
/// `json_build_object`, `format`.
#[derive(Debug)]
struct RowText {
    name: &'static str,
    signature: Signature,
    row: fn(&[ScalarValue]) -> Result<Option<String>>,
}

impl RowText {
    fn new(name: &'static str, row: fn(&[ScalarValue]) -> Result<Option<String>>) -> Self {
        Self { name, signature: Signature::variadic_any(Volatility::Immutable), row }
    }
}

impl PartialEq for RowText {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for RowText {}

impl std::hash::Hash for RowText {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for RowText {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = args.args.iter().map(|a| a.to_array(args.number_rows)).collect::<Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(args.number_rows);
        for row in 0..args.number_rows {
            let values = arrays.iter().map(|a| ScalarValue::try_from_array(a, row)).collect::<Result<Vec<_>>>()?;
            out.push((self.row)(&values)?);
        }
        let out: ArrayRef = Arc::new(StringArray::from(out));
        match args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
            true => Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)),
            false => Ok(ColumnarValue::Array(out)),
        }
    }
}

/// `json_build_object(key, value, ...)`: a JSON object as text, spaced as Postgres prints it
/// (`{"a" : 1, "b" : "x"}`).
fn json_build_object(values: &[ScalarValue]) -> Result<Option<String>> {
    if !values.len().is_multiple_of(2) {
        return Err(DataFusionError::Execution("argument list must have even number of elements".into()));
    }
    let mut fields = Vec::with_capacity(values.len() / 2);
    for pair in values.chunks(2) {
        if pair[0].is_null() {
            return Err(DataFusionError::Execution("null value not allowed for object key".into()));
        }
        fields.push(format!("{} : {}", json_string(&pair[0].to_string()), json_value(&pair[1])));
    }
    Ok(Some(format!("{{{}}}", fields.join(", "))))
}

fn json_value(v: &ScalarValue) -> String {
    if v.is_null() {
        return "null".into();
    }
    match v.data_type() {
        DataType::Boolean | DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => v.to_string(),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => v.to_string(),
        DataType::Float32 | DataType::Float64 | DataType::Decimal128(_, _) => v.to_string(),
        _ => json_string(&v.to_string()),
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `format(fmt, args...)`: PostgreSQL's `%s` (text, NULL as empty), `%I` (identifier,
/// quoted when needed), `%L` (literal, NULL unquoted) and `%%`; NULL for a NULL format.
fn format(values: &[ScalarValue]) -> Result<Option<String>> {
    let (fmt, args) = values.split_first().ok_or_else(|| DataFusionError::Plan("format(formatstr, ...)".into()))?;
    if fmt.is_null() {
        return Ok(None);
    }
    format_one(&fmt.to_string(), args).map(Some)
}

fn format_one(fmt: &str, values: &[ScalarValue]) -> Result<String> {
    let mut out = String::with_capacity(fmt.len());
    let mut next = values.iter();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let spec = chars.next().ok_or_else(|| DataFusionError::Execution("unterminated format() type specifier".into()))?;
        if spec == '%' {
            out.push('%');
            continue;
        }
        let value = next.next().ok_or_else(|| DataFusionError::Execution("too few arguments for format()".into()))?;
        let text = (!value.is_null()).then(|| value.to_string());
        match (spec, text) {
            ('s', text) => out.push_str(text.as_deref().unwrap_or("")),
            ('I', Some(t)) => out.push_str(&quote_ident(&t)),
            ('I', None) => return Err(DataFusionError::Execution("null values cannot be formatted as an SQL identifier".into())),
            ('L', Some(t)) => out.push_str(&format!("'{}'", t.replace('\'', "''"))),
            ('L', None) => out.push_str("NULL"),
            (other, _) => return Err(DataFusionError::Execution(format!("unrecognized format() type specifier \"{other}\""))),
        }
    }
    Ok(out)
}

fn quote_ident(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// What `pg_typeof` prints for values of `dt` (no type modifiers, as Postgres).
fn type_name(dt: &DataType) -> String {
    match dt {
        DataType::Null => "unknown".into(),
        _ => match SqlType::from_arrow(dt) {
            Some(t) => strip_modifiers(&t.pg_name()),
            None => dt.to_string(),
        },
    }
}

fn strip_modifiers(name: &str) -> String {
    match (name.find('('), name.find(')')) {
        (Some(open), Some(close)) if close > open => format!("{}{}", &name[..open], &name[close + 1..]),
        _ => name.to_string(),
    }
}

/// The OID of a built-in type nowdb has, by any of its Postgres names.
fn type_oid(name: &str) -> Option<i32> {
    SqlType::parse(name.trim().trim_start_matches("pg_catalog.")).ok()?.oid()
}

/// `to_regtype(text)`: the type's OID, NULL when there is no such type (drivers probe for
/// extension types such as `hstore` this way).
fn to_regtype(args: &[ColumnarValue]) -> Result<ColumnarValue> {
    let names = one_array(args)?;
    let names = datafusion::arrow::compute::cast(&names, &DataType::Utf8)?;
    let oids: Int32Array = names.as_string::<i32>().iter().map(|n| n.and_then(type_oid)).collect();
    scalar_if_scalar(args, Arc::new(oids))
}

/// `pg_size_pretty(bigint)`: `123 bytes`, `10 kB`, `5 MB`... (Postgres' rounding).
fn size_pretty(args: &[ColumnarValue]) -> Result<ColumnarValue> {
    let sizes = one_array(args)?;
    let sizes = datafusion::arrow::compute::cast(&sizes, &DataType::Int64)?;
    let text: StringArray = sizes.as_primitive::<Int64Type>().iter().map(|s| s.map(pretty)).collect();
    scalar_if_scalar(args, Arc::new(text))
}

fn pretty(size: i64) -> String {
    let mut value = size;
    for unit in ["bytes", "kB", "MB", "GB", "TB"] {
        // Postgres switches unit at 10240 of the current one, rounding half up.
        if value.abs() < 10 * 1024 {
            return format!("{value} {unit}");
        }
        value = (value + value.signum() * 512) / 1024;
    }
    format!("{value} PB")
}

fn one_array(args: &[ColumnarValue]) -> Result<ArrayRef> {
    let arg = args.first().ok_or_else(|| DataFusionError::Plan("function takes one argument".into()))?;
    arg.to_array(1)
}

fn scalar_if_scalar(args: &[ColumnarValue], out: ArrayRef) -> Result<ColumnarValue> {
    match args.first() {
        Some(ColumnarValue::Scalar(_)) if out.len() == 1 => Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)),
        _ => Ok(ColumnarValue::Array(out)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_oids_like_postgres() {
        assert_eq!(type_name(&DataType::Int64), "bigint");
        assert_eq!(type_name(&DataType::Decimal128(10, 2)), "numeric");
        assert_eq!(type_oid("double precision"), Some(701));
        assert_eq!(type_oid("real[]"), Some(1021));
        assert_eq!(type_oid("hstore"), None);
        assert_eq!(pretty(123), "123 bytes");
        assert_eq!(pretty(10 * 1024), "10 kB");
        assert_eq!(pretty(5 * 1024 * 1024), "5120 kB");
        assert_eq!(pretty(20 * 1024 * 1024), "20 MB");
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(json_value(&ScalarValue::Int64(Some(3))), "3");
        assert_eq!(json_value(&ScalarValue::Utf8(None)), "null");
        let args = [ScalarValue::Utf8(Some("public".into())), ScalarValue::Utf8(Some("My Table".into())), ScalarValue::Utf8(None)];
        assert_eq!(format_one("%I.%I = %L%%", &args).unwrap(), "public.\"My Table\" = NULL%");
        assert_eq!(format_one("%s|%L", &args[..2]).unwrap(), "public|'My Table'");
    }
}
