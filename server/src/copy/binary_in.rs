//! `COPY ... FROM STDIN (FORMAT binary)`: PostgreSQL's binary COPY stream (asyncpg's
//! `copy_records_to_table`, psycopg's binary copies) read into the same records of text
//! fields the text and CSV formats give, so that one conversion path builds the batches.
//! Each value's binary form is decoded by its column's declared type and written in a text
//! form that path parses exactly (floats in shortest round-trip digits).

use chrono::{Duration, NaiveDate};
use nowdb_catalog::types::SqlType;

use crate::error::{NowError, NowResult};
use crate::pgtext;

/// The 11-byte signature that starts the stream.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Splits a binary COPY stream into records.
#[derive(Debug)]
pub struct BinaryRecords {
    types: Vec<SqlType>,
    pending: Vec<u8>,
    header_done: bool,
    ended: bool,
}

fn bad(message: impl Into<String>) -> NowError {
    NowError::coded("22P04", message)
}

impl BinaryRecords {
    /// A reader of rows of `types` (the target columns, in order).
    pub fn new(types: Vec<SqlType>) -> Self {
        Self { types, pending: Vec::new(), header_done: false, ended: false }
    }

    /// Adds bytes; returns the records they complete.
    pub fn push(&mut self, data: &[u8]) -> NowResult<Vec<Vec<Option<String>>>> {
        if self.ended {
            return Ok(vec![]);
        }
        self.pending.extend_from_slice(data);
        let mut records = Vec::new();
        let mut at = 0;
        if !self.header_done {
            // Signature, flags, then a header extension of the given length.
            let Some(ext) = self.pending.get(15..19) else { return Ok(records) };
            if !self.pending.starts_with(SIGNATURE) {
                return Err(bad("COPY file signature not recognized"));
            }
            let ext = u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]) as usize;
            if self.pending.len() < 19 + ext {
                return Ok(records);
            }
            at = 19 + ext;
            self.header_done = true;
        }
        while let Some(count) = self.pending.get(at..at + 2) {
            let count = i16::from_be_bytes([count[0], count[1]]);
            if count == -1 {
                self.ended = true;
                at += 2;
                break;
            }
            if count as usize != self.types.len() {
                return Err(bad(format!("row field count is {count}, expected {}", self.types.len())));
            }
            // A whole row, or wait for more bytes.
            let mut pos = at + 2;
            let mut fields = Vec::with_capacity(self.types.len());
            let mut complete = true;
            for ty in &self.types {
                let Some(len) = self.pending.get(pos..pos + 4) else {
                    complete = false;
                    break;
                };
                let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
                pos += 4;
                if len < 0 {
                    fields.push(None);
                    continue;
                }
                let Some(raw) = self.pending.get(pos..pos + len as usize) else {
                    complete = false;
                    break;
                };
                fields.push(Some(value_text(ty, raw)?));
                pos += len as usize;
            }
            if !complete {
                break;
            }
            records.push(fields);
            at = pos;
        }
        self.pending.drain(..at);
        Ok(records)
    }

    /// Ends the stream: leftover bytes that are not a whole row are an error.
    pub fn finish(&mut self) -> NowResult<()> {
        if !self.pending.is_empty() && !self.ended {
            return Err(bad("unexpected EOF in COPY data"));
        }
        Ok(())
    }
}

fn be<const N: usize>(raw: &[u8]) -> NowResult<[u8; N]> {
    raw.try_into().map_err(|_| bad(format!("incorrect binary data format: expected {N} bytes, got {}", raw.len())))
}

/// A binary value of `ty` in the text form the COPY value parser reads.
fn value_text(ty: &SqlType, raw: &[u8]) -> NowResult<String> {
    let pg_epoch = || NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
    Ok(match ty {
        SqlType::Bool => if be::<1>(raw)?[0] != 0 { "t" } else { "f" }.to_string(),
        SqlType::Int2 => i16::from_be_bytes(be(raw)?).to_string(),
        SqlType::Int4 => i32::from_be_bytes(be(raw)?).to_string(),
        SqlType::Int8 => i64::from_be_bytes(be(raw)?).to_string(),
        SqlType::Float4 => pgtext::float4(f32::from_be_bytes(be(raw)?), 1),
        SqlType::Float8 => pgtext::float8(f64::from_be_bytes(be(raw)?), 1),
        SqlType::Numeric { .. } => pgtext::numeric_from_binary(raw).map_err(|e| bad(e.to_string()))?,
        SqlType::Text => String::from_utf8(raw.to_vec()).map_err(|_| NowError::coded("22021", "invalid byte sequence for encoding \"UTF8\""))?,
        SqlType::Bytea => {
            let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            format!("\\x{hex}")
        }
        SqlType::Date => (pg_epoch() + Duration::days(i32::from_be_bytes(be(raw)?).into())).format("%Y-%m-%d").to_string(),
        SqlType::Timestamp | SqlType::Timestamptz => {
            let micros = i64::from_be_bytes(be(raw)?);
            let ts = pg_epoch().and_hms_opt(0, 0, 0).unwrap_or_default() + Duration::microseconds(micros);
            let text = ts.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
            if matches!(ty, SqlType::Timestamptz) { format!("{text}+00:00") } else { text }
        }
        SqlType::Interval => {
            let raw = be::<16>(raw)?;
            let micros = i64::from_be_bytes(raw[0..8].try_into().unwrap_or_default());
            let days = i32::from_be_bytes(raw[8..12].try_into().unwrap_or_default());
            let months = i32::from_be_bytes(raw[12..16].try_into().unwrap_or_default());
            format!("{months} months {days} days {micros} microseconds")
        }
        SqlType::Array(element) => array_text(element, raw)?,
    })
}

/// A one-dimensional binary array as `{e1,"e,2",NULL}`.
fn array_text(element: &SqlType, raw: &[u8]) -> NowResult<String> {
    let mut items = Vec::new();
    for value in pgtext::binary_array_elements(raw).map_err(|e| bad(e.to_string()))? {
        items.push(match value {
            None => "NULL".to_string(),
            Some(v) => pgtext::array_element(&value_text(element, v)?),
        });
    }
    Ok(format!("{{{}}}", items.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(rows: &[Vec<Option<Vec<u8>>>]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(&[0; 8]);
        for row in rows {
            out.extend_from_slice(&(row.len() as i16).to_be_bytes());
            for v in row {
                match v {
                    None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(b) => {
                        out.extend_from_slice(&(b.len() as i32).to_be_bytes());
                        out.extend_from_slice(b);
                    }
                }
            }
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    #[test]
    fn rows_split_across_chunks() {
        let data = stream(&[
            vec![Some(7i64.to_be_bytes().to_vec()), Some(b"a,b".to_vec()), Some(2.5f64.to_be_bytes().to_vec())],
            vec![Some(8i64.to_be_bytes().to_vec()), None, None],
        ]);
        let mut r = BinaryRecords::new(vec![SqlType::Int8, SqlType::Text, SqlType::Float8]);
        let mut records = Vec::new();
        for chunk in data.chunks(5) {
            records.extend(r.push(chunk).unwrap());
        }
        r.finish().unwrap();
        assert_eq!(records, vec![
            vec![Some("7".into()), Some("a,b".into()), Some("2.5".into())],
            vec![Some("8".into()), None, None],
        ]);
    }

    #[test]
    fn bad_streams_are_errors() {
        let mut r = BinaryRecords::new(vec![SqlType::Int8]);
        assert!(r.push(b"not a copy stream at all").is_err());
        let mut r = BinaryRecords::new(vec![SqlType::Int8]);
        let data = stream(&[vec![Some(vec![1, 2, 3])]]);
        assert!(r.push(&data).is_err(), "an int8 of 3 bytes");
    }
}
