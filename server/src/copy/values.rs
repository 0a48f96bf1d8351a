//! Postgres text representations to typed Arrow arrays.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BinaryArray, BooleanArray, ListArray, StringArray};
use datafusion::arrow::buffer::{OffsetBuffer, NullBuffer};
use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::DataType;

/// The first value that does not parse.
#[derive(Debug)]
pub struct BadValue {
    /// Row index within the column.
    pub row: usize,
    /// The text as received.
    pub value: String,
}

/// Parses one column of text values (None = NULL) as `ty`.
pub fn parse_column(texts: &[Option<String>], ty: &DataType) -> Result<ArrayRef, BadValue> {
    match ty {
        DataType::Utf8 => Ok(Arc::new(StringArray::from_iter(texts.iter().map(|t| t.as_deref())))),
        DataType::Boolean => {
            let mut out = Vec::with_capacity(texts.len());
            for (row, t) in texts.iter().enumerate() {
                out.push(match t {
                    None => None,
                    Some(s) => Some(parse_bool(s).ok_or_else(|| BadValue { row, value: s.clone() })?),
                });
            }
            Ok(Arc::new(BooleanArray::from(out)))
        }
        DataType::Binary => {
            let mut out: Vec<Option<Vec<u8>>> = Vec::with_capacity(texts.len());
            for (row, t) in texts.iter().enumerate() {
                out.push(match t {
                    None => None,
                    Some(s) => Some(parse_bytea(s).ok_or_else(|| BadValue { row, value: s.clone() })?),
                });
            }
            Ok(Arc::new(BinaryArray::from_iter(out.iter().map(|v| v.as_deref()))))
        }
        DataType::List(field) => parse_list(texts, field.clone()),
        other => {
            let strings = StringArray::from_iter(texts.iter().map(|t| t.as_deref().map(str::trim)));
            let strict = CastOptions { safe: false, ..Default::default() };
            match cast_with_options(&strings, other, &strict) {
                Ok(a) => Ok(a),
                Err(_) => {
                    // Find the offending value for the error message.
                    let lenient = cast_with_options(&strings, other, &CastOptions::default()).ok();
                    let row = (0..strings.len())
                        .find(|&i| strings.is_valid(i) && lenient.as_ref().is_none_or(|a| a.is_null(i)))
                        .unwrap_or(0);
                    Err(BadValue { row, value: texts.get(row).cloned().flatten().unwrap_or_default() })
                }
            }
        }
    }
}

/// Postgres boolean input: t/true/y/yes/on/1 and f/false/n/no/off/0 (any case, unique prefix).
pub fn parse_bool(s: &str) -> Option<bool> {
    let v = s.trim().to_ascii_lowercase();
    match v.as_str() {
        "t" | "tr" | "tru" | "true" | "y" | "ye" | "yes" | "on" | "1" => Some(true),
        "f" | "fa" | "fal" | "fals" | "false" | "n" | "no" | "of" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// bytea input: hex (`\x0a0b`) or, otherwise, the bytes of the text.
pub fn parse_bytea(s: &str) -> Option<Vec<u8>> {
    match s.strip_prefix("\\x") {
        Some(hex) => {
            let hex = hex.as_bytes();
            if hex.len() % 2 != 0 {
                return None;
            }
            hex.chunks(2)
                .map(|p| Some(((p[0] as char).to_digit(16)? * 16 + (p[1] as char).to_digit(16)?) as u8))
                .collect()
        }
        None => Some(s.as_bytes().to_vec()),
    }
}

/// Arrays: `{1,2,NULL}` (Postgres) or `[1,2]` (JSON-ish), one dimension.
fn parse_list(texts: &[Option<String>], field: Arc<datafusion::arrow::datatypes::Field>) -> Result<ArrayRef, BadValue> {
    let mut offsets = vec![0i32];
    let mut elements: Vec<Option<String>> = Vec::new();
    let mut valid = Vec::with_capacity(texts.len());
    for (row, t) in texts.iter().enumerate() {
        match t {
            None => valid.push(false),
            Some(s) => {
                let inner = s
                    .trim()
                    .strip_prefix(['{', '['])
                    .and_then(|r| r.strip_suffix(['}', ']']))
                    .ok_or_else(|| BadValue { row, value: s.clone() })?;
                if !inner.trim().is_empty() {
                    elements.extend(array_elements(inner).ok_or_else(|| BadValue { row, value: s.clone() })?);
                }
                valid.push(true);
            }
        }
        offsets.push(elements.len() as i32);
    }
    let values = parse_column(&elements, field.data_type()).map_err(|bad| {
        // Report the whole array literal that held the bad element.
        let row = offsets.iter().position(|&o| o as usize > bad.row).map_or(0, |p| p.saturating_sub(1));
        BadValue { row, value: texts.get(row).cloned().flatten().unwrap_or(bad.value) }
    })?;
    let list = ListArray::try_new(field, OffsetBuffer::new(offsets.into()), values, Some(NullBuffer::from(valid)))
        .map_err(|e| BadValue { row: 0, value: e.to_string() })?;
    Ok(Arc::new(list))
}

/// The elements of an array literal's inside (`a,"b,c",NULL,"NULL"`): commas split outside
/// double quotes, backslash escapes inside them, an unquoted NULL is NULL, a quoted one text.
fn array_elements(inner: &str) -> Option<Vec<Option<String>>> {
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let element = if chars.peek() == Some(&'"') {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next()? {
                    '\\' => text.push(chars.next()?),
                    '"' => break,
                    c => text.push(c),
                }
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            Some(text)
        } else {
            let mut text = String::new();
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                text.push(c);
                chars.next();
            }
            let text = text.trim();
            (!text.eq_ignore_ascii_case("null")).then(|| text.to_string())
        };
        out.push(element);
        match chars.next() {
            None => return Some(out),
            Some(',') => continue,
            Some(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Field, Float32Type, Int64Type, TimeUnit};

    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.into())
    }

    #[test]
    fn numbers_timestamps_and_errors() {
        let a = parse_column(&[s("1"), None, s(" 3 ")], &DataType::Int64).unwrap();
        assert_eq!(a.as_primitive::<Int64Type>().value(2), 3);
        assert!(a.is_null(1));
        let bad = parse_column(&[s("1"), s("x1")], &DataType::Int64).unwrap_err();
        assert_eq!((bad.row, bad.value.as_str()), (1, "x1"));
        let ts = parse_column(&[s("2024-01-02 03:04:05")], &DataType::Timestamp(TimeUnit::Microsecond, None)).unwrap();
        assert_eq!(ts.len(), 1);
    }

    #[test]
    fn array_elements_honour_quotes() {
        let got = array_elements(r#"a, "b,c" ,NULL,"NULL","x\"y""#).unwrap();
        assert_eq!(got, vec![s("a"), s("b,c"), None, s("NULL"), s("x\"y")]);
        assert!(array_elements(r#""open"#).is_none());
    }

    #[test]
    fn arrays_bools_bytea() {
        let ty = DataType::List(Arc::new(Field::new("item", DataType::Float32, true)));
        let a = parse_column(&[s("{1.5,2}"), None, s("{}")], &ty).unwrap();
        let l = a.as_list::<i32>();
        assert_eq!(l.value(0).as_primitive::<Float32Type>().values().to_vec(), vec![1.5, 2.0]);
        assert!(l.is_null(1));
        assert_eq!(l.value(2).len(), 0);
        assert_eq!(parse_bool("YES"), Some(true));
        assert_eq!(parse_bytea("\\x0aff"), Some(vec![10, 255]));
        assert_eq!(parse_bytea("\\x0"), None);
    }
}
