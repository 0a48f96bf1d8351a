//! Postgres COPY text and CSV framing: bytes to records of optional text fields.

use crate::error::{NowError, NowResult};

/// COPY's data format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyKind {
    /// Postgres' text format (tab-separated, `\N` for NULL).
    Text,
    /// CSV.
    Csv,
    /// Postgres' binary format (`PGCOPY` header, binary send form of each value).
    Binary,
    /// Parquet (only for `COPY ... TO 'file'`).
    Parquet,
}

/// How COPY data is framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFormat {
    /// The data format; the framing options below apply to text and CSV.
    pub kind: CopyKind,
    /// Field separator.
    pub delimiter: u8,
    /// The NULL marker (`\N` in text, empty in CSV).
    pub null: String,
    /// Whether the first line is a header (CSV only).
    pub header: bool,
    /// CSV quote character.
    pub quote: u8,
    /// CSV escape character (inside quotes).
    pub escape: u8,
}

impl CopyFormat {
    /// Postgres' text format defaults.
    pub fn text() -> Self {
        Self { kind: CopyKind::Text, delimiter: b'\t', null: "\\N".into(), header: false, quote: b'"', escape: b'"' }
    }

    /// Postgres' CSV format defaults.
    pub fn csv() -> Self {
        Self { kind: CopyKind::Csv, delimiter: b',', null: String::new(), header: false, quote: b'"', escape: b'"' }
    }
}

/// Splits a byte stream arriving in arbitrary chunks into records.
#[derive(Debug)]
pub struct RecordSplitter {
    format: CopyFormat,
    pending: Vec<u8>,
    header_pending: bool,
    ended: bool,
}

impl RecordSplitter {
    /// A splitter for `format`.
    pub fn new(format: CopyFormat) -> Self {
        let header_pending = format.header;
        Self { format, pending: Vec::new(), header_pending, ended: false }
    }

    /// Lines consumed by a header (for line numbers in errors).
    pub fn header_lines(&self) -> usize {
        usize::from(self.format.header)
    }

    /// Adds bytes; returns the records they complete.
    pub fn push(&mut self, data: &[u8]) -> NowResult<Vec<Vec<Option<String>>>> {
        if self.ended {
            return Ok(vec![]);
        }
        self.pending.extend_from_slice(data);
        let mut records = Vec::new();
        let mut start = 0;
        let mut in_quotes = false;
        let mut i = 0;
        let bytes = std::mem::take(&mut self.pending);
        while i < bytes.len() {
            let b = bytes[i];
            if self.format.kind == CopyKind::Csv {
                if in_quotes {
                    if b == self.format.escape && self.format.escape != self.format.quote && i + 1 < bytes.len() {
                        i += 2;
                        continue;
                    }
                    if b == self.format.quote {
                        in_quotes = false;
                    }
                } else if b == self.format.quote {
                    in_quotes = true;
                }
            } else if b == b'\\' {
                i += 2;
                continue;
            }
            if b == b'\n' && !in_quotes {
                let line = &bytes[start..i];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                start = i + 1;
                if let Some(r) = self.record(line)? {
                    records.push(r);
                }
                if self.ended {
                    return Ok(records);
                }
            }
            i += 1;
        }
        self.pending = bytes[start..].to_vec();
        Ok(records)
    }

    /// Ends the stream: a last line without a newline is a record too.
    pub fn finish(&mut self) -> NowResult<Vec<Vec<Option<String>>>> {
        if self.ended || self.pending.is_empty() {
            return Ok(vec![]);
        }
        let line = std::mem::take(&mut self.pending);
        let line = line.strip_suffix(b"\r").unwrap_or(&line).to_vec();
        Ok(self.record(&line)?.into_iter().collect())
    }

    fn record(&mut self, line: &[u8]) -> NowResult<Option<Vec<Option<String>>>> {
        if line == b"\\." {
            self.ended = true;
            return Ok(None);
        }
        let text = std::str::from_utf8(line).map_err(|_| NowError::InvalidValue {
            code: "22021",
            message: "invalid byte sequence for encoding \"UTF8\"".into(),
            detail: None,
        })?;
        if self.header_pending {
            self.header_pending = false;
            return Ok(None);
        }
        Ok(Some(if self.format.kind == CopyKind::Csv { self.csv_fields(text)? } else { self.text_fields(text)? }))
    }

    fn text_fields(&self, line: &str) -> NowResult<Vec<Option<String>>> {
        let delim = self.format.delimiter as char;
        let mut out = Vec::new();
        // `written` is the field as sent (compared with the NULL marker), `value` de-escaped.
        let mut written = String::new();
        let mut value = String::new();
        let mut chars = line.chars().peekable();
        let end_field = |written: &mut String, value: &mut String, out: &mut Vec<Option<String>>| {
            let v = std::mem::take(value);
            out.push(if *written == self.format.null { None } else { Some(v) });
            written.clear();
        };
        while let Some(c) = chars.next() {
            if c == delim {
                end_field(&mut written, &mut value, &mut out);
                continue;
            }
            written.push(c);
            if c != '\\' {
                value.push(c);
                continue;
            }
            let Some(n) = chars.next() else { break };
            written.push(n);
            let radix = match n {
                'x' => 16,
                '0'..='7' => 8,
                _ => 0,
            };
            if radix == 0 {
                value.push(match n {
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'v' => '\u{b}',
                    other => other,
                });
                continue;
            }
            let (mut v, mut digits, max) = if radix == 8 { (n.to_digit(8).unwrap_or(0), 1, 3) } else { (0, 0, 2) };
            while digits < max {
                match chars.peek().and_then(|c| c.to_digit(radix)) {
                    Some(d) => {
                        v = v * radix + d;
                        written.extend(chars.next());
                        digits += 1;
                    }
                    None => break,
                }
            }
            if digits == 0 {
                value.push(n);
            } else {
                value.push(char::from_u32(v).unwrap_or('\u{fffd}'));
            }
        }
        end_field(&mut written, &mut value, &mut out);
        Ok(out)
    }

    fn csv_fields(&self, line: &str) -> NowResult<Vec<Option<String>>> {
        let (delim, quote, escape) = (self.format.delimiter as char, self.format.quote as char, self.format.escape as char);
        let mut out = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut in_quotes = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if in_quotes {
                // `""` (or `<escape>"`) inside quotes is a literal quote; a lone quote closes.
                if c == escape && chars.peek() == Some(&quote) {
                    chars.next();
                    field.push(quote);
                    continue;
                }
                if c == escape && escape != quote && chars.peek() == Some(&escape) {
                    chars.next();
                    field.push(escape);
                    continue;
                }
                if c == quote {
                    in_quotes = false;
                    continue;
                }
                field.push(c);
            } else if c == quote {
                in_quotes = true;
                quoted = true;
            } else if c == delim {
                out.push(self.csv_value(std::mem::take(&mut field), quoted));
                quoted = false;
            } else {
                field.push(c);
            }
        }
        if in_quotes {
            return Err(NowError::InvalidValue {
                code: "22P04",
                message: "unterminated CSV quoted field".into(),
                detail: None,
            });
        }
        out.push(self.csv_value(field, quoted));
        Ok(out)
    }

    fn csv_value(&self, field: String, quoted: bool) -> Option<String> {
        if !quoted && field == self.format.null {
            None
        } else {
            Some(field)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(format: CopyFormat, chunks: &[&str]) -> Vec<Vec<Option<String>>> {
        let mut s = RecordSplitter::new(format);
        let mut out = Vec::new();
        for c in chunks {
            out.extend(s.push(c.as_bytes()).unwrap());
        }
        out.extend(s.finish().unwrap());
        out
    }

    fn f(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn text_format_with_escapes_and_nulls_across_chunks() {
        let rows = all(CopyFormat::text(), &["1\ta\\tb\t\\N\n2\t", "x\\\\y\tz\n\\.\nignored\n"]);
        assert_eq!(rows, vec![vec![f("1"), f("a\tb"), None], vec![f("2"), f("x\\y"), f("z")]]);
    }

    #[test]
    fn csv_with_header_quotes_and_newlines() {
        let mut fmt = CopyFormat::csv();
        fmt.header = true;
        let rows = all(fmt, &["id,name\n1,\"a,\"\"b\"\"\nc\"\n2,", ",\"\"\r\n3,x"]);
        assert_eq!(
            rows,
            vec![vec![f("1"), f("a,\"b\"\nc")], vec![f("2"), None, f("")], vec![f("3"), f("x")]]
        );
    }
}
