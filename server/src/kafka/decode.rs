//! Kafka messages to table rows. Each message is one row: a JSON object (fields by column
//! name; missing fields are NULL) or one CSV record (columns in table order). Values are read
//! as PostgreSQL reads text input (the COPY parsers), so a value means the same in a message
//! as in `COPY ... FROM STDIN`. A message that cannot become a row (not JSON, a value of the
//! wrong type, a missing NOT NULL field) is refused alone, with the reason: the caller keeps it
//! as a dead letter and the rest of the batch goes on.

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use nowdb_catalog::{SqlType, TableDef};
use serde_json::Value;

use super::options::Format;
use crate::copy::format::{CopyFormat, RecordSplitter};
use crate::copy::values::parse_column;

/// A batch of messages decoded: the rows of the good ones, and the refused ones.
#[derive(Debug)]
pub struct Decoded {
    /// One row per accepted message, in message order (table schema).
    pub rows: RecordBatch,
    /// Refused messages: index into the input and the reason.
    pub refused: Vec<(usize, String)>,
}

/// Decodes `payloads` (one per message; `None` for a message without a value) into rows of
/// `def`.
pub fn decode(def: &TableDef, schema: &SchemaRef, format: Format, payloads: &[Option<&[u8]>]) -> Result<Decoded, datafusion::arrow::error::ArrowError> {
    let mut refused = Vec::new();
    let mut texts: Vec<(usize, Vec<Option<String>>)> = Vec::with_capacity(payloads.len());
    for (i, payload) in payloads.iter().enumerate() {
        let fields = match payload {
            None => Err("message has no value".to_string()),
            Some(bytes) => match format {
                Format::Json => json_fields(def, bytes),
                Format::Csv => csv_fields(def, bytes),
            },
        };
        match fields.and_then(|f| not_null(def, f)) {
            Ok(f) => texts.push((i, f)),
            Err(e) => refused.push((i, e)),
        }
    }
    // Parse column by column; a value that does not parse refuses its message, and the
    // column is parsed again without it.
    let columns = loop {
        match parse_columns(def, schema, &texts) {
            Ok(columns) => break columns,
            Err((row, column, value)) => {
                let (i, _) = texts.remove(row);
                let c = &def.columns[column];
                refused.push((i, format!("invalid input syntax for type {}: \"{value}\" (column \"{}\")", c.ty.pg_name(), c.name)));
            }
        }
    };
    refused.sort_by_key(|(i, _)| *i);
    let rows = RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(texts.len())),
    )?;
    Ok(Decoded { rows, refused })
}

/// Each column parsed, or the first bad value: (row, column, text).
fn parse_columns(def: &TableDef, schema: &SchemaRef, texts: &[(usize, Vec<Option<String>>)]) -> Result<Vec<ArrayRef>, (usize, usize, String)> {
    let mut columns = Vec::with_capacity(def.columns.len());
    for (c, field) in schema.fields().iter().enumerate() {
        let column: Vec<Option<String>> = texts.iter().map(|(_, row)| row[c].clone()).collect();
        match parse_column(&column, field.data_type()) {
            Ok(a) => columns.push(a),
            Err(bad) => return Err((bad.row, c, bad.value)),
        }
    }
    Ok(columns)
}

fn not_null(def: &TableDef, fields: Vec<Option<String>>) -> Result<Vec<Option<String>>, String> {
    for (c, v) in def.columns.iter().zip(&fields) {
        if v.is_none() && !c.nullable {
            return Err(format!("null value in column \"{}\" violates not-null constraint", c.name));
        }
    }
    Ok(fields)
}

fn json_fields(def: &TableDef, bytes: &[u8]) -> Result<Vec<Option<String>>, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(object) = value else {
        return Err("message is not a JSON object".into());
    };
    let mut row = Vec::with_capacity(def.columns.len());
    for c in &def.columns {
        let v = object.get(&c.name).or_else(|| object.iter().find(|(k, _)| k.eq_ignore_ascii_case(&c.name)).map(|(_, v)| v));
        row.push(match v {
            None | Some(Value::Null) => None,
            Some(v) => Some(json_text(&c.ty, v)),
        });
    }
    Ok(row)
}

/// A JSON value as PostgreSQL text input for a column of type `ty`: strings as they are,
/// numbers and booleans in their JSON spelling, a number for a timestamp as milliseconds since
/// the epoch (Kafka's own convention), arrays as PostgreSQL array literals, objects as JSON.
fn json_text(ty: &SqlType, v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if matches!(ty.arrow_type(), DataType::Timestamp(_, _)) => match n.as_i64().and_then(chrono::DateTime::from_timestamp_millis) {
            Some(t) => t.to_rfc3339(),
            None => n.to_string(),
        },
        Value::Array(items) if matches!(ty.arrow_type(), DataType::List(_)) => {
            let items: Vec<String> = items
                .iter()
                .map(|i| match i {
                    Value::Null => "NULL".to_string(),
                    Value::String(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
                    other => other.to_string(),
                })
                .collect();
            format!("{{{}}}", items.join(","))
        }
        other => other.to_string(),
    }
}

fn csv_fields(def: &TableDef, bytes: &[u8]) -> Result<Vec<Option<String>>, String> {
    let mut splitter = RecordSplitter::new(CopyFormat::csv());
    let mut records = splitter.push(bytes).map_err(|e| e.to_string())?;
    records.extend(splitter.finish().map_err(|e| e.to_string())?);
    let mut records = records.into_iter();
    match (records.next(), records.next()) {
        (Some(r), None) if r.len() == def.columns.len() => Ok(r),
        (Some(r), None) => Err(format!("CSV record has {} fields, the table has {} columns", r.len(), def.columns.len())),
        (None, _) => Err("empty CSV message".into()),
        (Some(_), Some(_)) => Err("a CSV message must hold one record".into()),
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{AsArray, Int64Array};
    use datafusion::arrow::datatypes::Int64Type;
    use nowdb_catalog::ColumnDef;

    use super::*;

    fn table() -> TableDef {
        let col = |name: &str, ty, nullable| ColumnDef { name: name.into(), ty, nullable };
        TableDef::new(1, "e".into(), vec![col("user_id", SqlType::Int8, false), col("amount", SqlType::Float8, true), col("ts", SqlType::Timestamptz, true)], vec![]).unwrap()
    }

    #[test]
    fn json_messages_become_rows_and_bad_ones_are_refused_alone() {
        let def = table();
        let schema = def.arrow_schema();
        let msgs: Vec<Option<&[u8]>> = vec![
            Some(br#"{"user_id": 1, "amount": 2.5, "ts": "2026-01-01T00:00:00Z"}"#),
            Some(b"{not json"),
            Some(br#"{"user_id": "x"}"#),
            Some(br#"{"amount": 1}"#),
            Some(br#"{"USER_ID": 4, "ts": 1767225600000, "extra": true}"#),
            None,
            Some(br#"[1,2]"#),
            Some(br#"{"user_id": 6, "amount": "lots"}"#),
        ];
        let d = decode(&def, &schema, Format::Json, &msgs).unwrap();
        assert_eq!(d.rows.num_rows(), 2);
        assert_eq!(d.rows.column(0).as_primitive::<Int64Type>(), &Int64Array::from(vec![1, 4]));
        assert_eq!(d.rows.column(2).as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>().value(1), 1_767_225_600_000_000);
        let refused: Vec<usize> = d.refused.iter().map(|(i, _)| *i).collect();
        assert_eq!(refused, vec![1, 2, 3, 5, 6, 7]);
        assert!(d.refused[0].1.starts_with("invalid JSON"));
        assert!(d.refused[1].1.contains("bigint") && d.refused[1].1.contains("\"x\""));
        assert!(d.refused[2].1.contains("not-null"));
        assert!(d.refused[5].1.contains("double precision"));
    }

    #[test]
    fn csv_messages_follow_copy_rules() {
        let def = table();
        let schema = def.arrow_schema();
        let msgs: Vec<Option<&[u8]>> = vec![Some(b"1,2.5,2026-01-01 00:00:00+00"), Some(b"2,,"), Some(b"3,1"), Some(b",1,"), Some(b"4,\"1.5\",\n")];
        let d = decode(&def, &schema, Format::Csv, &msgs).unwrap();
        assert_eq!(d.rows.column(0).as_primitive::<Int64Type>(), &Int64Array::from(vec![1, 2, 4]));
        assert_eq!(d.refused.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![2, 3]);
    }
}
