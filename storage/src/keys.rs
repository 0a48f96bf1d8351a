//! Key encodings.
//!
//! Every key starts with the 4-byte big-endian table id, so one table is one contiguous range
//! (drop = one range delete). Append-log keys continue with an 8-byte big-endian sequence;
//! keyed-table row keys with the primary key values in an order-preserving ("memcomparable")
//! encoding, so that byte order is key order and a lookup by key is one `get`.
//!
//! Each value is a tag byte (`0x00` NULL, `0x01` present) then its bytes, so NULL sorts first
//! and values can be decoded back given their types ([`decode_values`]). Table primary keys
//! refuse NULL ([`row_key`]); view group keys allow it ([`nullable_row_key`]).

use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array,
    Decimal128Array, Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, Int8Array,
    LargeStringArray, StringArray, StringViewArray, TimestampMicrosecondArray,
    TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray, UInt16Array,
    UInt32Array, UInt64Array, UInt8Array,
};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Int8Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};

use crate::{Result, StorageError};

/// The first key of table `id`'s range.
pub fn table_start(id: u32) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

/// The first key after table `id`'s range.
pub fn table_end(id: u32) -> Vec<u8> {
    match id.checked_add(1) {
        Some(next) => next.to_be_bytes().to_vec(),
        None => vec![0xff; 5],
    }
}

/// Append-log key of batch `seq` of table `id`.
pub fn log_key(id: u32, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(12);
    k.extend_from_slice(&id.to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Decodes the sequence number of an append-log key.
pub fn log_seq(key: &[u8]) -> Result<u64> {
    let bytes: [u8; 8] = key
        .get(4..12)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| StorageError::Corrupt(format!("bad log key of {} bytes", key.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

/// Row key of the row at `row` of `key_columns` (the primary key columns, in key order).
pub fn row_key(id: u32, key_columns: &[ArrayRef], row: usize) -> Result<Vec<u8>> {
    if key_columns.iter().any(|c| c.is_null(row)) {
        return Err(StorageError::KeyEncoding("NULL in a primary key".into()));
    }
    nullable_row_key(id, key_columns, row)
}

/// Like [`row_key`], with NULLs allowed (they sort first): the key of a view's group.
pub fn nullable_row_key(id: u32, key_columns: &[ArrayRef], row: usize) -> Result<Vec<u8>> {
    let mut k = Vec::with_capacity(4 + 10 * key_columns.len());
    k.extend_from_slice(&id.to_be_bytes());
    encode_values(&mut k, key_columns, row)?;
    Ok(k)
}

/// Appends the encoding of row `row` of `columns` (NULLs allowed) to `out`.
pub fn encode_values(out: &mut Vec<u8>, columns: &[ArrayRef], row: usize) -> Result<()> {
    for col in columns {
        encode_value(out, col.as_ref(), row)?;
    }
    Ok(())
}

fn encode_value(out: &mut Vec<u8>, col: &dyn Array, row: usize) -> Result<()> {
    if col.is_null(row) {
        out.push(0x00);
        return Ok(());
    }
    out.push(0x01);
    match col.data_type() {
        DataType::Boolean => {
            let a = col.as_any().downcast_ref::<BooleanArray>().ok_or_else(mismatch)?;
            out.push(a.value(row) as u8);
        }
        DataType::Int8 => put_i64(out, col.as_primitive::<Int8Type>().value(row) as i64),
        DataType::Int16 => put_i64(out, col.as_primitive::<Int16Type>().value(row) as i64),
        DataType::Int32 => put_i64(out, col.as_primitive::<Int32Type>().value(row) as i64),
        DataType::Int64 => put_i64(out, col.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => put_i64(out, col.as_primitive::<UInt8Type>().value(row) as i64),
        DataType::UInt16 => put_i64(out, col.as_primitive::<UInt16Type>().value(row) as i64),
        DataType::UInt32 => put_i64(out, col.as_primitive::<UInt32Type>().value(row) as i64),
        DataType::UInt64 => out.extend_from_slice(&col.as_primitive::<UInt64Type>().value(row).to_be_bytes()),
        DataType::Decimal128(_, _) => {
            let v = col.as_primitive::<Decimal128Type>().value(row);
            out.extend_from_slice(&((v as u128) ^ (1 << 127)).to_be_bytes());
        }
        DataType::Date32 => put_i64(out, col.as_primitive::<Date32Type>().value(row) as i64),
        DataType::Timestamp(unit, _) => {
            let v = match unit {
                TimeUnit::Second => col.as_primitive::<TimestampSecondType>().value(row),
                TimeUnit::Millisecond => col.as_primitive::<TimestampMillisecondType>().value(row),
                TimeUnit::Microsecond => col.as_primitive::<TimestampMicrosecondType>().value(row),
                TimeUnit::Nanosecond => col.as_primitive::<TimestampNanosecondType>().value(row),
            };
            put_i64(out, v)
        }
        DataType::Float32 => put_f64(out, col.as_primitive::<Float32Type>().value(row) as f64),
        DataType::Float64 => put_f64(out, col.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => {
            let a = col.as_any().downcast_ref::<StringArray>().ok_or_else(mismatch)?;
            put_bytes(out, a.value(row).as_bytes())
        }
        DataType::LargeUtf8 => {
            let a = col.as_any().downcast_ref::<LargeStringArray>().ok_or_else(mismatch)?;
            put_bytes(out, a.value(row).as_bytes())
        }
        DataType::Utf8View => {
            let a = col.as_any().downcast_ref::<StringViewArray>().ok_or_else(mismatch)?;
            put_bytes(out, a.value(row).as_bytes())
        }
        DataType::Binary => {
            let a = col.as_any().downcast_ref::<BinaryArray>().ok_or_else(mismatch)?;
            put_bytes(out, a.value(row))
        }
        other => {
            return Err(StorageError::KeyEncoding(format!(
                "type {other} cannot be part of a primary key"
            )))
        }
    }
    Ok(())
}

/// Decodes values encoded by [`encode_values`] (e.g. a key without its 4-byte id), one per
/// type in `types`; each comes back as a one-element array. Returns the arrays and the number
/// of bytes read.
pub fn decode_values(bytes: &[u8], types: &[DataType]) -> Result<(Vec<ArrayRef>, usize)> {
    let mut pos = 0;
    let mut out = Vec::with_capacity(types.len());
    for ty in types {
        let tag = *bytes.get(pos).ok_or_else(truncated)?;
        pos += 1;
        if tag == 0 {
            out.push(new_null_array(ty, 1));
            continue;
        }
        let (array, used) = decode_value(&bytes[pos..], ty)?;
        pos += used;
        out.push(array);
    }
    Ok((out, pos))
}

fn take8(bytes: &[u8]) -> Result<[u8; 8]> {
    bytes.get(..8).and_then(|s| s.try_into().ok()).ok_or_else(truncated)
}

fn get_i64(bytes: &[u8]) -> Result<i64> {
    Ok((u64::from_be_bytes(take8(bytes)?) ^ (1 << 63)) as i64)
}

fn get_f64(bytes: &[u8]) -> Result<f64> {
    let ordered = u64::from_be_bytes(take8(bytes)?);
    let bits = if ordered >> 63 == 1 { ordered & !(1 << 63) } else { !ordered };
    Ok(f64::from_bits(bits))
}

fn get_bytes(bytes: &[u8]) -> Result<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let b = *bytes.get(i).ok_or_else(truncated)?;
        if b == 0 {
            match bytes.get(i + 1) {
                Some(0xff) => out.push(0),
                Some(0x01) => return Ok((out, i + 2)),
                _ => return Err(truncated()),
            }
            i += 2;
        } else {
            out.push(b);
            i += 1;
        }
    }
}

fn decode_value(bytes: &[u8], ty: &DataType) -> Result<(ArrayRef, usize)> {
    let array: ArrayRef = match ty {
        DataType::Boolean => {
            let b = *bytes.first().ok_or_else(truncated)?;
            return Ok((Arc::new(BooleanArray::from(vec![b != 0])), 1));
        }
        DataType::Int8 => Arc::new(Int8Array::from(vec![get_i64(bytes)? as i8])),
        DataType::Int16 => Arc::new(Int16Array::from(vec![get_i64(bytes)? as i16])),
        DataType::Int32 => Arc::new(Int32Array::from(vec![get_i64(bytes)? as i32])),
        DataType::Int64 => Arc::new(Int64Array::from(vec![get_i64(bytes)?])),
        DataType::UInt8 => Arc::new(UInt8Array::from(vec![get_i64(bytes)? as u8])),
        DataType::UInt16 => Arc::new(UInt16Array::from(vec![get_i64(bytes)? as u16])),
        DataType::UInt32 => Arc::new(UInt32Array::from(vec![get_i64(bytes)? as u32])),
        DataType::UInt64 => Arc::new(UInt64Array::from(vec![u64::from_be_bytes(take8(bytes)?)])),
        DataType::Date32 => Arc::new(Date32Array::from(vec![get_i64(bytes)? as i32])),
        DataType::Float32 => Arc::new(Float32Array::from(vec![get_f64(bytes)? as f32])),
        DataType::Float64 => Arc::new(Float64Array::from(vec![get_f64(bytes)?])),
        DataType::Timestamp(unit, tz) => {
            let v = get_i64(bytes)?;
            match unit {
                TimeUnit::Second => Arc::new(TimestampSecondArray::from(vec![v]).with_timezone_opt(tz.clone())),
                TimeUnit::Millisecond => Arc::new(TimestampMillisecondArray::from(vec![v]).with_timezone_opt(tz.clone())),
                TimeUnit::Microsecond => Arc::new(TimestampMicrosecondArray::from(vec![v]).with_timezone_opt(tz.clone())),
                TimeUnit::Nanosecond => Arc::new(TimestampNanosecondArray::from(vec![v]).with_timezone_opt(tz.clone())),
            }
        }
        DataType::Decimal128(p, s) => {
            let raw: [u8; 16] = bytes.get(..16).and_then(|s| s.try_into().ok()).ok_or_else(truncated)?;
            let v = (u128::from_be_bytes(raw) ^ (1 << 127)) as i128;
            let a = Decimal128Array::from(vec![v]).with_precision_and_scale(*p, *s)?;
            return Ok((Arc::new(a), 16));
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let (raw, used) = get_bytes(bytes)?;
            let s = String::from_utf8(raw).map_err(|_| StorageError::Corrupt("key text is not UTF-8".into()))?;
            let a: ArrayRef = match ty {
                DataType::Utf8 => Arc::new(StringArray::from(vec![s])),
                DataType::LargeUtf8 => Arc::new(LargeStringArray::from(vec![s])),
                _ => Arc::new(StringViewArray::from(vec![s])),
            };
            return Ok((a, used));
        }
        DataType::Binary => {
            let (raw, used) = get_bytes(bytes)?;
            return Ok((Arc::new(BinaryArray::from(vec![raw.as_slice()])), used));
        }
        other => return Err(StorageError::KeyEncoding(format!("type {other} cannot be part of a key"))),
    };
    Ok((array, 8))
}

fn truncated() -> StorageError {
    StorageError::Corrupt("truncated key".into())
}

fn mismatch() -> StorageError {
    StorageError::KeyEncoding("array does not match its data type".into())
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&((v as u64) ^ (1 << 63)).to_be_bytes());
}

fn put_f64(out: &mut Vec<u8>, v: f64) {
    // -0.0 and 0.0 are one key, like in SQL comparisons.
    let v = if v == 0.0 { 0.0 } else { v };
    let bits = v.to_bits();
    let ordered = if bits >> 63 == 1 { !bits } else { bits | (1 << 63) };
    out.extend_from_slice(&ordered.to_be_bytes());
}

/// Bytes with 0x00 escaped as 0x00 0xff and terminated by 0x00 0x01: prefix-free and ordered.
fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xff);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array};

    use super::*;

    fn key_of(cols: &[ArrayRef], row: usize) -> Vec<u8> {
        row_key(7, cols, row).unwrap()
    }

    #[test]
    fn integer_keys_sort_like_integers() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![-5, -1, 0, 3, i64::MAX, i64::MIN]));
        let mut keys: Vec<(Vec<u8>, i64)> = (0..6)
            .map(|i| (key_of(std::slice::from_ref(&a), i), a.as_primitive::<Int64Type>().value(i)))
            .collect();
        keys.sort();
        let order: Vec<i64> = keys.into_iter().map(|(_, v)| v).collect();
        assert_eq!(order, vec![i64::MIN, -5, -1, 0, 3, i64::MAX]);
    }

    #[test]
    fn float_and_string_keys_sort() {
        let f: ArrayRef = Arc::new(Float64Array::from(vec![-2.5, -0.0, 0.0, 1.5]));
        assert!(key_of(std::slice::from_ref(&f), 0) < key_of(std::slice::from_ref(&f), 1));
        assert_eq!(key_of(std::slice::from_ref(&f), 1), key_of(std::slice::from_ref(&f), 2));
        assert!(key_of(std::slice::from_ref(&f), 2) < key_of(&[f], 3));
        let s: ArrayRef = Arc::new(StringArray::from(vec!["a", "a\0b", "ab", "b"]));
        let ks: Vec<_> = (0..4).map(|i| key_of(std::slice::from_ref(&s), i)).collect();
        assert!(ks.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn composite_keys_are_prefix_free() {
        let a: ArrayRef = Arc::new(StringArray::from(vec!["ab", "a"]));
        let b: ArrayRef = Arc::new(StringArray::from(vec!["c", "bc"]));
        assert_ne!(key_of(&[a.clone(), b.clone()], 0), key_of(&[a, b], 1));
    }

    #[test]
    fn values_decode_back() {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![Some(-7), None])),
            Arc::new(StringArray::from(vec![Some("a\0b"), Some("")])),
            Arc::new(Float64Array::from(vec![-1.5, 2.0])),
            Arc::new(Decimal128Array::from(vec![-12345i128, 5]).with_precision_and_scale(10, 2).unwrap()),
            Arc::new(TimestampMicrosecondArray::from(vec![1_000_000i64, -3]).with_timezone("UTC")),
        ];
        let types: Vec<DataType> = cols.iter().map(|c| c.data_type().clone()).collect();
        for row in 0..2 {
            let mut buf = Vec::new();
            encode_values(&mut buf, &cols, row).unwrap();
            let (decoded, used) = decode_values(&buf, &types).unwrap();
            assert_eq!(used, buf.len());
            for (d, c) in decoded.iter().zip(&cols) {
                assert_eq!(d.as_ref(), c.slice(row, 1).as_ref());
            }
        }
        let nulls_first = nullable_row_key(1, &cols[..1], 1).unwrap();
        assert!(nulls_first < nullable_row_key(1, &cols[..1], 0).unwrap());
    }

    #[test]
    fn null_key_is_refused() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![None, Some(1)]));
        assert!(row_key(1, &[a], 0).is_err());
    }
}
