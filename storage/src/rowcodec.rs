//! The row codec: how one row of a keyed table or view becomes a RocksDB value, and how many
//! such values become one Arrow batch again.
//!
//! A value is a format byte (`0x02`), a NULL bitmap (one bit per column) and the non-NULL
//! values in column order: fixed-width little-endian for numbers, dates, times, decimals and
//! intervals, a 4-byte length and the bytes for text and binary, a 4-byte count and the
//! elements (each with a presence byte) for lists. The schema is the table's, known to the
//! reader, so a row costs little more than its values (an Arrow IPC stream per row spends
//! hundreds of bytes on the schema and padding). Values written by [`crate::codec`] (an
//! Arrow IPC stream) are still read.

use std::sync::Arc;

use arrow::array::{
    make_builder, Array, ArrayBuilder, ArrayRef, AsArray, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder, IntervalMonthDayNanoBuilder,
    LargeStringBuilder, ListBuilder, RecordBatch, RecordBatchOptions, StringBuilder, TimestampMicrosecondBuilder,
    TimestampMillisecondBuilder, TimestampNanosecondBuilder, TimestampSecondBuilder, UInt16Builder, UInt32Builder,
    UInt64Builder, UInt8Builder,
};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit, SchemaRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type,
    UInt8Type,
};

use crate::{codec, Result, StorageError};

const FORMAT: u8 = 0x02;

fn unsupported(dt: &DataType) -> StorageError {
    StorageError::KeyEncoding(format!("type {dt} cannot be stored in a row"))
}

fn corrupt() -> StorageError {
    StorageError::Corrupt("truncated row value".into())
}

/// Encodes row `row` of `batch`.
pub fn encode_row(batch: &RecordBatch, row: usize) -> Result<Vec<u8>> {
    let n = batch.num_columns();
    let mut out = Vec::with_capacity(1 + n.div_ceil(8) + 9 * n);
    out.push(FORMAT);
    let bitmap_at = out.len();
    out.resize(bitmap_at + n.div_ceil(8), 0);
    for (c, col) in batch.columns().iter().enumerate() {
        if col.is_null(row) {
            out[bitmap_at + c / 8] |= 1 << (c % 8);
        } else {
            put_value(&mut out, col.as_ref(), row)?;
        }
    }
    Ok(out)
}

fn put_value(out: &mut Vec<u8>, col: &dyn Array, row: usize) -> Result<()> {
    macro_rules! prim {
        ($t:ty) => {
            out.extend_from_slice(&col.as_primitive::<$t>().value(row).to_le_bytes())
        };
    }
    match col.data_type() {
        DataType::Boolean => out.push(col.as_boolean().value(row) as u8),
        DataType::Int8 => prim!(Int8Type),
        DataType::Int16 => prim!(Int16Type),
        DataType::Int32 => prim!(Int32Type),
        DataType::Int64 => prim!(Int64Type),
        DataType::UInt8 => prim!(UInt8Type),
        DataType::UInt16 => prim!(UInt16Type),
        DataType::UInt32 => prim!(UInt32Type),
        DataType::UInt64 => prim!(UInt64Type),
        DataType::Float32 => prim!(Float32Type),
        DataType::Float64 => prim!(Float64Type),
        DataType::Date32 => prim!(Date32Type),
        DataType::Decimal128(_, _) => prim!(Decimal128Type),
        DataType::Timestamp(TimeUnit::Second, _) => prim!(TimestampSecondType),
        DataType::Timestamp(TimeUnit::Millisecond, _) => prim!(TimestampMillisecondType),
        DataType::Timestamp(TimeUnit::Microsecond, _) => prim!(TimestampMicrosecondType),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => prim!(TimestampNanosecondType),
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = col.as_primitive::<IntervalMonthDayNanoType>().value(row);
            out.extend_from_slice(&v.months.to_le_bytes());
            out.extend_from_slice(&v.days.to_le_bytes());
            out.extend_from_slice(&v.nanoseconds.to_le_bytes());
        }
        DataType::Utf8 => put_bytes(out, col.as_string::<i32>().value(row).as_bytes()),
        DataType::LargeUtf8 => put_bytes(out, col.as_string::<i64>().value(row).as_bytes()),
        DataType::Utf8View => put_bytes(out, col.as_string_view().value(row).as_bytes()),
        DataType::Binary => put_bytes(out, col.as_binary::<i32>().value(row)),
        DataType::List(_) => {
            let items = col.as_list::<i32>().value(row);
            out.extend_from_slice(&(items.len() as u32).to_le_bytes());
            for i in 0..items.len() {
                if items.is_null(i) {
                    out.push(0);
                } else {
                    out.push(1);
                    put_value(out, items.as_ref(), i)?;
                }
            }
        }
        other => return Err(unsupported(other)),
    }
    Ok(())
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Decodes values written by [`encode_row`] (or by [`codec::encode_batch`]) into one batch of
/// `schema` (the stored table's), keeping only the `projection` columns when given.
pub fn decode_rows<'a>(values: impl IntoIterator<Item = &'a [u8]>, schema: &SchemaRef, projection: Option<&[usize]>) -> Result<RecordBatch> {
    let out_schema: SchemaRef = match projection {
        Some(p) => Arc::new(schema.project(p)?),
        None => schema.clone(),
    };
    let keep: Vec<Option<usize>> = (0..schema.fields().len())
        .map(|c| match projection {
            Some(p) => p.iter().position(|&x| x == c),
            None => Some(c),
        })
        .collect();
    let mut builders: Vec<Box<dyn ArrayBuilder>> = out_schema.fields().iter().map(|f| make_builder(f.data_type(), 16)).collect();
    let mut ipc: Vec<RecordBatch> = Vec::new();
    let mut rows = 0;
    for v in values {
        if v.first() != Some(&FORMAT) {
            ipc.push(codec::decode_columns(v, projection)?);
            continue;
        }
        let n = schema.fields().len();
        let bitmap = v.get(1..1 + n.div_ceil(8)).ok_or_else(corrupt)?;
        let mut pos = 1 + n.div_ceil(8);
        for (c, field) in schema.fields().iter().enumerate() {
            let null = bitmap[c / 8] & (1 << (c % 8)) != 0;
            match keep[c] {
                Some(k) if null => append_null(builders[k].as_mut(), field.data_type())?,
                Some(k) => pos += append_value(builders[k].as_mut(), field.data_type(), v.get(pos..).ok_or_else(corrupt)?)?,
                None if null => {}
                None => pos += value_len(field.data_type(), v.get(pos..).ok_or_else(corrupt)?)?,
            }
        }
        rows += 1;
    }
    let columns = builders
        .iter_mut()
        .zip(out_schema.fields())
        .map(|(b, f)| {
            let a = b.finish();
            if a.data_type() == f.data_type() {
                Ok(a)
            } else {
                Ok(cast(&a, f.data_type())?)
            }
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    let batch = RecordBatch::try_new_with_options(out_schema.clone(), columns, &options)?;
    if ipc.is_empty() {
        return Ok(batch);
    }
    // Rows from the older format: re-wrap in the schema and append.
    let mut all = vec![batch];
    for b in ipc {
        let cols = b
            .columns()
            .iter()
            .zip(out_schema.fields())
            .map(|(a, f)| if a.data_type() == f.data_type() { Ok(a.clone()) } else { Ok(cast(a, f.data_type())?) })
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(b.num_rows()));
        all.push(RecordBatch::try_new_with_options(out_schema.clone(), cols, &options)?);
    }
    Ok(arrow::compute::concat_batches(&out_schema, &all)?)
}

/// The length of the row at the start of `value` (written by [`encode_row`] for `schema`);
/// whatever follows it is the writer's own (the view engine keeps a group's state there).
pub fn encoded_len(value: &[u8], schema: &SchemaRef) -> Result<usize> {
    if value.first() != Some(&FORMAT) {
        return Err(StorageError::Corrupt("not a row value".into()));
    }
    let n = schema.fields().len();
    let bitmap = value.get(1..1 + n.div_ceil(8)).ok_or_else(corrupt)?;
    let mut pos = 1 + n.div_ceil(8);
    for (c, field) in schema.fields().iter().enumerate() {
        if bitmap[c / 8] & (1 << (c % 8)) == 0 {
            pos += value_len(field.data_type(), value.get(pos..).ok_or_else(corrupt)?)?;
        }
    }
    Ok(pos)
}

fn fixed_width(dt: &DataType) -> Option<usize> {
    Some(match dt {
        DataType::Boolean | DataType::Int8 | DataType::UInt8 => 1,
        DataType::Int16 | DataType::UInt16 => 2,
        DataType::Int32 | DataType::UInt32 | DataType::Float32 | DataType::Date32 => 4,
        DataType::Int64 | DataType::UInt64 | DataType::Float64 | DataType::Timestamp(_, _) => 8,
        DataType::Decimal128(_, _) | DataType::Interval(IntervalUnit::MonthDayNano) => 16,
        _ => return None,
    })
}

fn u32_at(b: &[u8]) -> Result<usize> {
    Ok(u32::from_le_bytes(b.get(..4).ok_or_else(corrupt)?.try_into().map_err(|_| corrupt())?) as usize)
}

fn value_len(dt: &DataType, b: &[u8]) -> Result<usize> {
    if let Some(w) = fixed_width(dt) {
        return if b.len() >= w { Ok(w) } else { Err(corrupt()) };
    }
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Binary => {
            let len = u32_at(b)?;
            if b.len() >= 4 + len { Ok(4 + len) } else { Err(corrupt()) }
        }
        DataType::List(f) => {
            let n = u32_at(b)?;
            let mut pos = 4;
            for _ in 0..n {
                let present = *b.get(pos).ok_or_else(corrupt)?;
                pos += 1;
                if present != 0 {
                    pos += value_len(f.data_type(), b.get(pos..).ok_or_else(corrupt)?)?;
                }
            }
            Ok(pos)
        }
        other => Err(unsupported(other)),
    }
}

fn downcast<T: 'static>(b: &mut dyn ArrayBuilder) -> Result<&mut T> {
    b.as_any_mut().downcast_mut::<T>().ok_or_else(|| StorageError::Corrupt("row builder type".into()))
}

fn append_null(b: &mut dyn ArrayBuilder, dt: &DataType) -> Result<()> {
    macro_rules! null {
        ($t:ty) => {
            downcast::<$t>(b)?.append_null()
        };
    }
    match dt {
        DataType::Boolean => null!(BooleanBuilder),
        DataType::Int8 => null!(Int8Builder),
        DataType::Int16 => null!(Int16Builder),
        DataType::Int32 => null!(Int32Builder),
        DataType::Int64 => null!(Int64Builder),
        DataType::UInt8 => null!(UInt8Builder),
        DataType::UInt16 => null!(UInt16Builder),
        DataType::UInt32 => null!(UInt32Builder),
        DataType::UInt64 => null!(UInt64Builder),
        DataType::Float32 => null!(Float32Builder),
        DataType::Float64 => null!(Float64Builder),
        DataType::Date32 => null!(Date32Builder),
        DataType::Decimal128(_, _) => null!(Decimal128Builder),
        DataType::Timestamp(TimeUnit::Second, _) => null!(TimestampSecondBuilder),
        DataType::Timestamp(TimeUnit::Millisecond, _) => null!(TimestampMillisecondBuilder),
        DataType::Timestamp(TimeUnit::Microsecond, _) => null!(TimestampMicrosecondBuilder),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => null!(TimestampNanosecondBuilder),
        DataType::Interval(IntervalUnit::MonthDayNano) => null!(IntervalMonthDayNanoBuilder),
        DataType::Utf8 => null!(StringBuilder),
        DataType::LargeUtf8 => null!(LargeStringBuilder),
        DataType::Utf8View => null!(arrow::array::StringViewBuilder),
        DataType::Binary => null!(BinaryBuilder),
        DataType::List(_) => null!(ListBuilder<Box<dyn ArrayBuilder>>),
        other => return Err(unsupported(other)),
    }
    Ok(())
}

fn arr<const N: usize>(b: &[u8]) -> Result<[u8; N]> {
    b.get(..N).and_then(|s| s.try_into().ok()).ok_or_else(corrupt)
}

/// Appends one encoded value; returns its length.
fn append_value(b: &mut dyn ArrayBuilder, dt: &DataType, v: &[u8]) -> Result<usize> {
    macro_rules! prim {
        ($builder:ty, $native:ty, $n:expr) => {{
            downcast::<$builder>(b)?.append_value(<$native>::from_le_bytes(arr::<$n>(v)?));
            return Ok($n);
        }};
    }
    match dt {
        DataType::Boolean => {
            downcast::<BooleanBuilder>(b)?.append_value(*v.first().ok_or_else(corrupt)? != 0);
            Ok(1)
        }
        DataType::Int8 => prim!(Int8Builder, i8, 1),
        DataType::Int16 => prim!(Int16Builder, i16, 2),
        DataType::Int32 => prim!(Int32Builder, i32, 4),
        DataType::Int64 => prim!(Int64Builder, i64, 8),
        DataType::UInt8 => prim!(UInt8Builder, u8, 1),
        DataType::UInt16 => prim!(UInt16Builder, u16, 2),
        DataType::UInt32 => prim!(UInt32Builder, u32, 4),
        DataType::UInt64 => prim!(UInt64Builder, u64, 8),
        DataType::Float32 => prim!(Float32Builder, f32, 4),
        DataType::Float64 => prim!(Float64Builder, f64, 8),
        DataType::Date32 => prim!(Date32Builder, i32, 4),
        DataType::Decimal128(_, _) => prim!(Decimal128Builder, i128, 16),
        DataType::Timestamp(TimeUnit::Second, _) => prim!(TimestampSecondBuilder, i64, 8),
        DataType::Timestamp(TimeUnit::Millisecond, _) => prim!(TimestampMillisecondBuilder, i64, 8),
        DataType::Timestamp(TimeUnit::Microsecond, _) => prim!(TimestampMicrosecondBuilder, i64, 8),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => prim!(TimestampNanosecondBuilder, i64, 8),
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let months = i32::from_le_bytes(arr::<4>(v)?);
            let days = i32::from_le_bytes(arr::<4>(&v[4..])?);
            let nanos = i64::from_le_bytes(arr::<8>(v.get(8..).ok_or_else(corrupt)?)?);
            downcast::<IntervalMonthDayNanoBuilder>(b)?.append_value(IntervalMonthDayNano::new(months, days, nanos));
            Ok(16)
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Binary => {
            let len = u32_at(v)?;
            let bytes = v.get(4..4 + len).ok_or_else(corrupt)?;
            match dt {
                DataType::Binary => downcast::<BinaryBuilder>(b)?.append_value(bytes),
                _ => {
                    let s = std::str::from_utf8(bytes).map_err(|_| StorageError::Corrupt("row text is not UTF-8".into()))?;
                    match dt {
                        DataType::Utf8 => downcast::<StringBuilder>(b)?.append_value(s),
                        DataType::LargeUtf8 => downcast::<LargeStringBuilder>(b)?.append_value(s),
                        _ => downcast::<arrow::array::StringViewBuilder>(b)?.append_value(s),
                    }
                }
            }
            Ok(4 + len)
        }
        DataType::List(f) => {
            let list = downcast::<ListBuilder<Box<dyn ArrayBuilder>>>(b)?;
            let n = u32_at(v)?;
            let mut pos = 4;
            for _ in 0..n {
                let present = *v.get(pos).ok_or_else(corrupt)?;
                pos += 1;
                if present == 0 {
                    append_null(list.values().as_mut(), f.data_type())?;
                } else {
                    pos += append_value(list.values().as_mut(), f.data_type(), v.get(pos..).ok_or_else(corrupt)?)?;
                }
            }
            list.append(true);
            Ok(pos)
        }
        other => Err(unsupported(other)),
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{
        Decimal128Array, Float32Array, Int64Array, IntervalMonthDayNanoArray, ListArray, StringArray, TimestampMicrosecondArray,
    };
    use arrow::datatypes::{Field, Float32Type as F32, Schema};

    use super::*;

    fn sample() -> RecordBatch {
        let list = ListArray::from_iter_primitive::<F32, _, _>(vec![Some(vec![Some(1.5), None]), None, Some(vec![])]);
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![Some(1), None, Some(-3)])),
            Arc::new(StringArray::from(vec![Some("héllo"), Some(""), None])),
            Arc::new(Float32Array::from(vec![Some(0.5), Some(-1.0), Some(2.0)])),
            Arc::new(Decimal128Array::from(vec![Some(12345), None, Some(-1)]).with_precision_and_scale(10, 2).unwrap()),
            Arc::new(TimestampMicrosecondArray::from(vec![Some(1), Some(2), None]).with_timezone("UTC")),
            Arc::new(IntervalMonthDayNanoArray::from(vec![Some(IntervalMonthDayNano::new(1, 2, 3)), None, None])),
            Arc::new(list),
        ];
        let fields: Vec<Field> = cols.iter().enumerate().map(|(i, c)| Field::new(format!("c{i}"), c.data_type().clone(), true)).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
    }

    #[test]
    fn rows_round_trip_with_and_without_projection() {
        let batch = sample();
        let encoded: Vec<Vec<u8>> = (0..batch.num_rows()).map(|r| encode_row(&batch, r).unwrap()).collect();
        let schema = batch.schema();
        let all = decode_rows(encoded.iter().map(|v| v.as_slice()), &schema, None).unwrap();
        assert_eq!(all, batch);
        let some = decode_rows(encoded.iter().map(|v| v.as_slice()), &schema, Some(&[6, 1])).unwrap();
        assert_eq!(some, batch.project(&[6, 1]).unwrap());
        assert!(encoded[0].len() < 100, "{} bytes", encoded[0].len());
        let mut with_suffix = encoded[1].clone();
        with_suffix.extend_from_slice(b"state");
        assert_eq!(encoded_len(&with_suffix, &schema).unwrap(), encoded[1].len());
        assert_eq!(decode_rows([with_suffix.as_slice()], &schema, None).unwrap(), batch.slice(1, 1));
    }

    #[test]
    fn ipc_values_are_still_read_and_garbage_is_an_error() {
        let batch = sample();
        let old = codec::encode_batch(&batch.slice(1, 1)).unwrap();
        let new = encode_row(&batch, 2).unwrap();
        let schema = batch.schema();
        let mixed = decode_rows([new.as_slice(), old.as_slice()], &schema, None).unwrap();
        assert_eq!(mixed.num_rows(), 2);
        assert!(decode_rows([[FORMAT, 0].as_slice()], &schema, None).is_err());
        assert!(decode_rows([[FORMAT, 0, 0, 1].as_slice()], &schema, None).is_err());
    }
}
