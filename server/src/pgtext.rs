//! PostgreSQL's text output for the types whose rendering clients compare byte for byte:
//! floats (`float8out`/`float4out`: shortest round-trip digits, `1e+20`, `Infinity`,
//! `extra_float_digits`), timestamps and times (fractional seconds without trailing zeros,
//! `+00` offsets). Results in the text format, COPY text/CSV and exports all use it, so
//! `SELECT 2.0::float8` prints `2` as PostgreSQL does, not `2.0`.
//!
//! The wrappers implement both of pgwire's encodings: binary delegates to the inner value.

use std::error::Error;
use std::fmt::Write;

use bytes::BytesMut;
use chrono::{DateTime, FixedOffset, NaiveDateTime, NaiveTime, Timelike};
use pgwire::types::format::FormatOptions;
use pgwire::types::ToSqlText;
use postgres_types::{IsNull, ToSql, Type};

type BoxError = Box<dyn Error + Sync + Send>;

/// `v` as PostgreSQL's `float8out` writes it with `extra_float_digits` = `extra`.
pub fn float8(v: f64, extra: i8) -> String {
    float_text(v, extra, 15, |v| ryu::Buffer::new().format_finite(v).to_string(), |v, digits| format!("{v:.digits$e}"))
}

/// `v` as PostgreSQL's `float4out` writes it with `extra_float_digits` = `extra`.
pub fn float4(v: f32, extra: i8) -> String {
    float_text(v as f64, extra, 6, |_| ryu::Buffer::new().format_finite(v).to_string(), |_, digits| format!("{v:.digits$e}"))
}

/// `dig` is DBL_DIG or FLT_DIG. With `extra` > 0 PostgreSQL prints the shortest exact
/// digits (Ryu), in fixed notation when the decimal exponent is in [-4, dig); otherwise it
/// prints `dig + extra` significant digits like printf's `%g`.
fn float_text(v: f64, extra: i8, dig: i32, shortest: impl Fn(f64) -> String, rounded: impl Fn(f64, usize) -> String) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if extra > 0 {
        // Shortest digits, as PostgreSQL computes them: Ryu (ties to even, like PostgreSQL's
        // d2s.c; Rust's `{:e}` breaks ties differently).
        let (digits, exp) = normalize(&shortest(v));
        return place_point(&digits, exp, exp < -4 || exp >= dig, false);
    }
    // %g with precision P = dig + extra: scientific when exp < -4 or exp >= P, trailing
    // zeros removed.
    let precision = (dig + extra as i32).max(1) as usize;
    let s = rounded(v, precision - 1);
    let (mantissa, exp) = split_exp(&s);
    place_point(mantissa, exp, exp < -4 || exp >= precision as i32, true)
}

/// Splits Rust's `-1.25e-7` into (`-1.25`, -7).
fn split_exp(s: &str) -> (&str, i32) {
    match s.split_once('e') {
        Some((m, e)) => (m, e.parse().unwrap_or(0)),
        None => (s, 0),
    }
}

/// Any decimal rendering (`-0.0001`, `1.5e-7`, `2.0`, `1e20`) as (`-d.ddd`, exponent of the
/// first significant digit).
fn normalize(s: &str) -> (String, i32) {
    let (sign, s) = match s.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", s),
    };
    let (mantissa, exp) = split_exp(s);
    let point = mantissa.find('.').unwrap_or(mantissa.len()) as i32;
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let leading = digits.len() - digits.trim_start_matches('0').len();
    let significant = digits.trim_start_matches('0').trim_end_matches('0');
    if significant.is_empty() {
        return (format!("{sign}0"), 0);
    }
    let exponent = point - 1 - leading as i32 + exp;
    (format!("{sign}{}.{}", &significant[..1], &significant[1..]), exponent)
}

/// Writes the digits of `mantissa` (`-d.ddd`) times 10^`exp` in fixed or PostgreSQL's
/// scientific notation (`1.5e+20`, `1e-05`).
fn place_point(mantissa: &str, exp: i32, scientific: bool, trim: bool) -> String {
    let (sign, m) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let mut digits: String = m.chars().filter(|c| c.is_ascii_digit()).collect();
    if trim {
        while digits.len() > 1 && digits.ends_with('0') {
            digits.pop();
        }
    }
    let mut out = String::from(sign);
    if scientific {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs());
    } else if exp < 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', int_len - digits.len()));
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

/// An Arrow decimal (`v` × 10^-`scale`) as PostgreSQL writes a numeric: all `scale` digits.
pub fn numeric(v: i128, scale: i8) -> String {
    let (int_part, frac_part) = numeric_parts(v, scale);
    let sign = if v < 0 { "-" } else { "" };
    match frac_part.is_empty() {
        true => format!("{sign}{int_part}"),
        false => format!("{sign}{int_part}.{frac_part}"),
    }
}

/// The absolute value's integer digits (no leading zeros, `0` for none) and its `scale`
/// fraction digits.
fn numeric_parts(v: i128, scale: i8) -> (String, String) {
    let abs = v.unsigned_abs().to_string();
    if scale <= 0 {
        let int_part = if abs == "0" { abs } else { format!("{abs}{}", "0".repeat(scale.unsigned_abs() as usize)) };
        return (int_part, String::new());
    }
    let scale = scale as usize;
    let padded = format!("{abs:0>width$}", width = scale + 1);
    let (int_part, frac_part) = padded.split_at(padded.len() - scale);
    (int_part.to_string(), frac_part.to_string())
}

/// PostgreSQL's binary numeric: ndigits, weight, sign, dscale, base-10000 digits.
fn numeric_binary(v: i128, scale: i8, out: &mut BytesMut) {
    let (int_part, frac_part) = numeric_parts(v, scale);
    let int_part = int_part.trim_start_matches('0');
    // Base-10000 groups aligned on the decimal point.
    let int_pad = (4 - int_part.len() % 4) % 4;
    let int_digits = format!("{}{int_part}", "0".repeat(int_pad));
    let frac_pad = (4 - frac_part.len() % 4) % 4;
    let frac_digits = format!("{frac_part}{}", "0".repeat(frac_pad));
    let group = |s: &str| -> Vec<i16> { s.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).ok().and_then(|t| t.parse().ok()).unwrap_or(0)).collect() };
    let mut digits = group(&int_digits);
    let mut weight = digits.len() as i32 - 1;
    digits.extend(group(&frac_digits));
    while digits.first() == Some(&0) {
        digits.remove(0);
        weight -= 1;
    }
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() {
        weight = 0;
    }
    out.extend_from_slice(&(digits.len() as i16).to_be_bytes());
    out.extend_from_slice(&(weight as i16).to_be_bytes());
    out.extend_from_slice(&(if v < 0 && !digits.is_empty() { 0x4000u16 } else { 0 }).to_be_bytes());
    out.extend_from_slice(&(scale.max(0) as u16).to_be_bytes());
    for d in digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
}

/// An interval as PostgreSQL writes it in the default `postgres` IntervalStyle:
/// `1 year 2 mons -3 days +04:05:06.5`.
pub fn interval(months: i32, days: i32, micros: i64) -> String {
    let mut parts = Vec::new();
    let mut before_negative = false;
    for (value, unit) in [(months / 12, "year"), (months % 12, "mon"), (days, "day")] {
        if value != 0 {
            let plus = if before_negative && value > 0 { "+" } else { "" };
            parts.push(format!("{plus}{value} {unit}{}", if value != 1 { "s" } else { "" }));
            before_negative = value < 0;
        }
    }
    if micros != 0 || parts.is_empty() {
        let sign = if micros < 0 { "-" } else if before_negative { "+" } else { "" };
        let abs = micros.unsigned_abs();
        let (h, m, s, us) = (abs / 3_600_000_000, abs / 60_000_000 % 60, abs / 1_000_000 % 60, abs % 1_000_000);
        let mut t = format!("{sign}{h:02}:{m:02}:{s:02}");
        if us != 0 {
            t.push_str(format!(".{us:06}").trim_end_matches('0'));
        }
        parts.push(t);
    }
    parts.join(" ")
}

/// A binary numeric (ndigits, weight, sign, dscale, then base-10000 digits) as its text.
pub fn numeric_from_binary(raw: &[u8]) -> Result<String, BoxError> {
    let word = |i: usize| -> Result<i16, BoxError> {
        let b = raw.get(i * 2..i * 2 + 2).ok_or("short numeric")?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    };
    let (ndigits, weight, sign, dscale) = (word(0)? as usize, word(1)?, word(2)? as u16, word(3)? as usize);
    if sign == 0xC000 {
        return Ok("NaN".into());
    }
    if ndigits == 0 {
        return Ok(if dscale == 0 { "0".into() } else { format!("0.{}", "0".repeat(dscale)) });
    }
    let mut int_part = String::new();
    let mut frac_part = String::new();
    for i in 0..ndigits {
        let d = word(4 + i)?;
        let pos = weight as i32 - i as i32;
        if pos >= 0 {
            if int_part.is_empty() {
                int_part = d.to_string();
            } else {
                int_part.push_str(&format!("{d:04}"));
            }
        } else {
            while (frac_part.len() as i32) < (-pos - 1) * 4 {
                frac_part.push_str("0000");
            }
            frac_part.push_str(&format!("{d:04}"));
        }
    }
    if weight >= 0 {
        for _ in 0..(weight as i32 + 1 - ndigits.min(weight as usize + 1) as i32) {
            int_part.push_str("0000");
        }
    }
    if int_part.is_empty() {
        int_part = "0".into();
    }
    while frac_part.len() < dscale {
        frac_part.push('0');
    }
    frac_part.truncate(dscale);
    let sign = if sign == 0x4000 { "-" } else { "" };
    Ok(if dscale > 0 { format!("{sign}{int_part}.{frac_part}") } else { format!("{sign}{int_part}") })
}

/// An array element as `array_out` writes it: quoted (with `\` and `"` escaped) when it is
/// empty, `NULL` as text, or holds a delimiter, brace, quote, backslash or space.
pub fn array_element(text: &str) -> String {
    let quote = text.is_empty()
        || text.eq_ignore_ascii_case("null")
        || text.chars().any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_ascii_whitespace());
    if quote {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        text.to_string()
    }
}

/// A one-dimensional binary array's elements (`None` for NULL): the dimension header, then
/// a length and the bytes of each element.
pub fn binary_array_elements(raw: &[u8]) -> Result<Vec<Option<&[u8]>>, BoxError> {
    let word = |at: usize| -> Result<i32, BoxError> { Ok(i32::from_be_bytes(raw.get(at..at + 4).ok_or("short array")?.try_into()?)) };
    match word(0)? {
        0 => return Ok(vec![]),
        1 => {}
        _ => return Err("multi-dimensional arrays are not supported".into()),
    }
    let len = word(12)?;
    let mut at = 20;
    let mut items = Vec::with_capacity(len.max(0) as usize);
    for _ in 0..len {
        let n = word(at)?;
        at += 4;
        if n < 0 {
            items.push(None);
            continue;
        }
        items.push(Some(raw.get(at..at + n as usize).ok_or("insufficient data left in array")?));
        at += n as usize;
    }
    Ok(items)
}

/// `t` as PostgreSQL writes a `time`: `HH:MM:SS` plus the non-zero fraction digits.
pub fn time(t: NaiveTime) -> String {
    let mut out = t.format("%H:%M:%S").to_string();
    push_fraction(&mut out, t.nanosecond());
    out
}

/// `ts` as PostgreSQL writes a `timestamp` in the ISO date style.
pub fn timestamp(ts: NaiveDateTime) -> String {
    let mut out = ts.format("%Y-%m-%d %H:%M:%S").to_string();
    push_fraction(&mut out, ts.nanosecond());
    out
}

/// `ts` as PostgreSQL writes a `timestamptz` in the ISO date style: the local time then the
/// offset as `+HH`, or `+HH:MM` when it has minutes.
pub fn timestamptz(ts: DateTime<FixedOffset>) -> String {
    let mut out = timestamp(ts.naive_local());
    let secs = ts.offset().local_minus_utc();
    let (sign, secs) = if secs < 0 { ('-', -secs) } else { ('+', secs) };
    let _ = write!(out, "{sign}{:02}", secs / 3600);
    if secs % 3600 != 0 {
        let _ = write!(out, ":{:02}", secs % 3600 / 60);
    }
    out
}

/// Appends `.ffffff` (microseconds, trailing zeros removed) when the fraction is non-zero.
fn push_fraction(out: &mut String, nanos: u32) {
    let micros = nanos / 1000;
    if micros != 0 {
        let frac = format!("{micros:06}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
}

/// A value with PostgreSQL's text rendering (binary is the inner value's).
#[derive(Debug)]
pub enum PgText {
    /// float8.
    Float8(f64),
    /// float4.
    Float4(f32),
    /// timestamp.
    Timestamp(NaiveDateTime),
    /// timestamptz.
    TimestampTz(DateTime<FixedOffset>),
    /// time.
    Time(NaiveTime),
    /// An array's complete text form (text format only).
    Array(String),
    /// interval: months, days, microseconds.
    Interval(i32, i32, i64),
    /// numeric: an unscaled value and its scale (Arrow's Decimal128), sent with its scale in
    /// both formats (`0.00` stays `0.00`) and without a 28-digit limit.
    Numeric(i128, i8),
    /// An empty array of elements of this type OID: `{}`, and in binary zero dimensions, as
    /// PostgreSQL sends it (postgres-types would send one dimension of length zero).
    EmptyArray(u32),
}

impl ToSql for PgText {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            PgText::Float8(v) => v.to_sql(ty, out),
            PgText::Float4(v) => v.to_sql(ty, out),
            PgText::Timestamp(v) => v.to_sql(ty, out),
            PgText::TimestampTz(v) => v.to_sql(ty, out),
            PgText::Time(v) => v.to_sql(ty, out),
            PgText::Array(_) => Err("array text sent in the binary format".into()),
            PgText::Interval(months, days, micros) => {
                out.extend_from_slice(&micros.to_be_bytes());
                out.extend_from_slice(&days.to_be_bytes());
                out.extend_from_slice(&months.to_be_bytes());
                Ok(IsNull::No)
            }
            PgText::Numeric(v, scale) => {
                numeric_binary(*v, *scale, out);
                Ok(IsNull::No)
            }
            PgText::EmptyArray(element) => {
                // ndim, has-nulls flag, element type.
                out.extend_from_slice(&0i32.to_be_bytes());
                out.extend_from_slice(&0i32.to_be_bytes());
                out.extend_from_slice(&element.to_be_bytes());
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(ty: &Type) -> bool {
        f64::accepts(ty) || f32::accepts(ty) || NaiveDateTime::accepts(ty) || DateTime::<FixedOffset>::accepts(ty) || NaiveTime::accepts(ty)
    }

    postgres_types::to_sql_checked!();
}

impl PgText {
    /// The value's text form, floats with `extra_float_digits` = `extra`.
    pub fn text(&self, extra: i8) -> String {
        match self {
            PgText::Float8(v) => float8(*v, extra),
            PgText::Float4(v) => float4(*v, extra),
            PgText::Timestamp(v) => timestamp(*v),
            PgText::TimestampTz(v) => timestamptz(*v),
            PgText::Time(v) => time(*v),
            PgText::Array(text) => text.clone(),
            PgText::Interval(months, days, micros) => interval(*months, *days, *micros),
            PgText::Numeric(v, scale) => numeric(*v, *scale),
            PgText::EmptyArray(_) => "{}".to_string(),
        }
    }
}

impl ToSqlText for PgText {
    fn to_sql_text(&self, _ty: &Type, out: &mut BytesMut, options: &FormatOptions) -> Result<IsNull, BoxError> {
        out.extend_from_slice(self.text(options.extra_float_digits).as_bytes());
        Ok(IsNull::No)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outputs of PostgreSQL 15 (`SELECT x::float8`, default extra_float_digits = 1).
    #[test]
    fn float8_like_postgres() {
        let cases: &[(f64, &str)] = &[
            (2.0, "2"),
            (1.5, "1.5"),
            (-0.0, "-0"),
            (0.0, "0"),
            (1e20, "1e+20"),
            (1e15, "1e+15"),
            (123456789012345.0, "123456789012345"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.0 / 3.0, "0.3333333333333333"),
            (1.5e-7, "1.5e-07"),
            (1e100, "1e+100"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (f64::NAN, "NaN"),
            (-12.25, "-12.25"),
        ];
        for (v, want) in cases {
            assert_eq!(float8(*v, 1), *want, "{v}");
        }
        // Ryu's tie-breaking, as PostgreSQL's (Rust's `{:e}` prints ...03e+15 here).
        assert_eq!(float8(1e15 + 0.3, 1), "1.0000000000000002e+15");
        // extra_float_digits = 0: %.15g.
        assert_eq!(float8(0.1 + 0.2, 0), "0.3");
        assert_eq!(float8(1.0 / 3.0, 0), "0.333333333333333");
        assert_eq!(float8(1e20, 0), "1e+20");
        assert_eq!(float8(100.0, 0), "100");
    }

    #[test]
    fn numeric_like_postgres() {
        assert_eq!(numeric(0, 2), "0.00");
        assert_eq!(numeric(-5, 3), "-0.005");
        assert_eq!(numeric(123456, 2), "1234.56");
        assert_eq!(numeric(12, -2), "1200");
        let bin = |v, s| {
            let mut out = BytesMut::new();
            numeric_binary(v, s, &mut out);
            out.to_vec()
        };
        // 0.00: no digits, scale 2.
        assert_eq!(bin(0, 2), vec![0, 0, 0, 0, 0, 0, 0, 2]);
        // 1234.56: digits [1234, 5600], weight 0, scale 2.
        assert_eq!(bin(123456, 2), vec![0, 2, 0, 0, 0, 0, 0, 2, 0x04, 0xd2, 0x15, 0xe0]);
        // -0.005: digits [50], weight -1, negative, scale 3.
        assert_eq!(bin(-5, 3), vec![0, 1, 0xff, 0xff, 0x40, 0, 0, 3, 0, 50]);
    }

    #[test]
    fn float4_like_postgres() {
        let cases: &[(f32, &str)] = &[(2.5, "2.5"), (0.1, "0.1"), (1e6, "1e+06"), (123456.0, "123456"), (1234567.0, "1.234567e+06"), (3.0, "3")];
        for (v, want) in cases {
            assert_eq!(float4(*v, 1), *want, "{v}");
        }
        assert_eq!(float4(0.1, 0), "0.1");
    }

    #[test]
    fn timestamps_like_postgres() {
        let ts = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap();
        assert_eq!(timestamp(ts("2024-01-01 00:00:00")), "2024-01-01 00:00:00");
        assert_eq!(timestamp(ts("2024-01-01 10:00:00.5")), "2024-01-01 10:00:00.5");
        assert_eq!(timestamp(ts("2024-01-01 10:00:00.000120")), "2024-01-01 10:00:00.00012");
        let utc = FixedOffset::east_opt(0).unwrap();
        assert_eq!(timestamptz(ts("2024-01-01 08:00:00").and_local_timezone(utc).unwrap()), "2024-01-01 08:00:00+00");
        let ist = FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
        assert_eq!(timestamptz(ts("2024-01-01 08:00:00").and_local_timezone(ist).unwrap()), "2024-01-01 08:00:00+05:30");
        assert_eq!(time(NaiveTime::from_hms_micro_opt(1, 2, 3, 400_000).unwrap()), "01:02:03.4");
        assert_eq!(interval(0, 1, 2 * 3_600_000_000), "1 day 02:00:00");
        assert_eq!(interval(14, -3, 4 * 3_600_000_000 + 500_000), "1 year 2 mons -3 days +04:00:00.5");
        assert_eq!(interval(0, 0, 0), "00:00:00");
        assert_eq!(interval(0, -1, 0), "-1 days");
    }
}
