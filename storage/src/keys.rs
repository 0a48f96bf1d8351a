//! Key encodings.
//!
//! Every key starts with the 4-byte big-endian table id, so one table is one contiguous range
//! (drop = one range delete). Append-log keys continue with an 8-byte big-endian sequence;
//! keyed-table row keys with the primary key values in an order-preserving ("memcomparable")
//! encoding, so that byte order is key order and a lookup by key is one `get`.

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, LargeStringArray, StringArray,
    StringViewArray,
};
use arrow::datatypes::{
    DataType, Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
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
    let mut k = Vec::with_capacity(4 + 9 * key_columns.len());
    k.extend_from_slice(&id.to_be_bytes());
    for col in key_columns {
        encode_value(&mut k, col.as_ref(), row)?;
    }
    Ok(k)
}

fn encode_value(out: &mut Vec<u8>, col: &dyn Array, row: usize) -> Result<()> {
    if col.is_null(row) {
        return Err(StorageError::KeyEncoding("NULL in a primary key".into()));
    }
    match col.data_type() {
        DataType::Boolean => {
            let a = col.as_any().downcast_ref::<BooleanArray>().ok_or_else(mismatch)?;
            out.push(a.value(row) as u8);
        }
        DataType::Int8 => put_i64(out, col.as_primitive::<Int8Type>().value(row) as i64),
        DataType::Int16 => put_i64(out, col.as_primitive::<Int16Type>().value(row) as i64),
        DataType::Int32 => put_i64(out, col.as_primitive::<Int32Type>().value(row) as i64),
        DataType::Int64 => put_i64(out, col.as_primitive::<Int64Type>().value(row)),
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
    fn null_key_is_refused() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![None, Some(1)]));
        assert!(row_key(1, &[a], 0).is_err());
    }
}
