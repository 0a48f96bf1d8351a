//! COPY TO in the text and CSV formats, with PostgreSQL's quoting: in CSV a value is quoted
//! when it holds the delimiter, the quote, a line break, or equals the NULL string (so an
//! empty string stays distinguishable from NULL) or `\.`; in text, backslash escapes.

use bytes::{BufMut, BytesMut};
use pgwire::api::results::FieldInfo;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::copy::CopyData;
use pgwire::types::format::FormatOptions;
use pgwire::types::ToSqlText;
use postgres_types::{IsNull, ToSql};

use super::format::{CopyFormat, CopyKind};

/// Builds one COPY text/CSV row from values (arrow-pg's [`arrow_pg::encoder::Encoder`]).
pub struct CopyTextEncoder {
    format: CopyFormat,
    options: FormatOptions,
    row: BytesMut,
    value: BytesMut,
    first: bool,
}

impl CopyTextEncoder {
    /// An encoder for `format` (text or CSV).
    pub fn new(format: &CopyFormat) -> Self {
        Self { format: format.clone(), options: FormatOptions::default(), row: BytesMut::new(), value: BytesMut::new(), first: true }
    }

    /// Appends one field given as text (`None` for NULL).
    fn push(&mut self, text: Option<&[u8]>) {
        if !self.first {
            self.row.put_u8(self.format.delimiter);
        }
        self.first = false;
        match text {
            None => self.row.put_slice(self.format.null.as_bytes()),
            Some(t) => push_value(&mut self.row, t, &self.format),
        }
    }
}

/// `text` as a field of `format`, quoted or escaped as PostgreSQL writes it.
pub fn push_value(out: &mut BytesMut, text: &[u8], format: &CopyFormat) {
    if format.kind == CopyKind::Csv {
        let (q, e, d) = (format.quote, format.escape, format.delimiter);
        let quote = text.iter().any(|&b| b == d || b == q || b == b'\n' || b == b'\r')
            || text == format.null.as_bytes()
            || text == b"\\.";
        if !quote {
            out.put_slice(text);
            return;
        }
        out.put_u8(q);
        for &b in text {
            if b == q || b == e {
                out.put_u8(e);
            }
            out.put_u8(b);
        }
        out.put_u8(q);
    } else {
        for &b in text {
            match b {
                b'\\' => out.put_slice(b"\\\\"),
                b'\n' => out.put_slice(b"\\n"),
                b'\r' => out.put_slice(b"\\r"),
                b'\t' if format.delimiter == b'\t' => out.put_slice(b"\\t"),
                0x08 => out.put_slice(b"\\b"),
                0x0c => out.put_slice(b"\\f"),
                0x0b => out.put_slice(b"\\v"),
                b if b == format.delimiter => {
                    out.put_u8(b'\\');
                    out.put_u8(b);
                }
                b => out.put_u8(b),
            }
        }
    }
}

impl arrow_pg::encoder::Encoder for CopyTextEncoder {
    type Item = CopyData;

    fn encode_field<T>(&mut self, value: &T, pg_field: &FieldInfo) -> PgWireResult<()>
    where
        T: ToSql + ToSqlText + Sized,
    {
        self.value.clear();
        let is_null = value
            .to_sql_text(pg_field.datatype(), &mut self.value, &self.options)
            .map_err(PgWireError::ApiError)?;
        let value = std::mem::take(&mut self.value);
        self.push(match is_null {
            IsNull::Yes => None,
            IsNull::No => Some(&value),
        });
        self.value = value;
        Ok(())
    }

    fn take_row(&mut self) -> CopyData {
        self.row.put_u8(b'\n');
        self.first = true;
        CopyData::new(self.row.split().freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(text: &[u8], format: &CopyFormat) -> String {
        let mut out = BytesMut::new();
        push_value(&mut out, text, format);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn quoting_like_postgres() {
        let csv = CopyFormat::csv();
        assert_eq!(field(b"", &csv), "\"\"");
        assert_eq!(field(b"plain", &csv), "plain");
        assert_eq!(field(b"a,b \"q\"", &csv), "\"a,b \"\"q\"\"\"");
        assert_eq!(field(b"\\.", &csv), "\"\\.\"");
        let text = CopyFormat::text();
        assert_eq!(field(b"a\tb\\c\nd", &text), "a\\tb\\\\c\\nd");
        assert_eq!(field(b"", &text), "");
    }
}
