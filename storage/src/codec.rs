//! The Arrow IPC batch codec: how record batches become RocksDB values and back.
//!
//! A value is one Arrow IPC stream (schema message + one record batch message). Carrying the
//! schema makes every value self-describing, so stored data outlives catalog changes and can
//! be read by any Arrow implementation.

use std::io::Cursor;

use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;

use crate::{Result, StorageError};

/// Encodes one batch as an Arrow IPC stream.
pub fn encode_batch(batch: &RecordBatch) -> Result<Vec<u8>> {
    // Not `get_array_memory_size()`: for a slice that is the whole parent's buffers.
    let mut buf = Vec::with_capacity(1024);
    {
        let mut writer = StreamWriter::try_new(&mut buf, batch.schema_ref())?;
        writer.write(batch)?;
        writer.finish()?;
    }
    Ok(buf)
}

/// Decodes a value written by [`encode_batch`].
pub fn decode_batch(bytes: &[u8]) -> Result<RecordBatch> {
    decode_columns(bytes, None)
}

/// Decodes only the columns at `projection` (all when `None`); the others are skipped, not
/// materialized.
pub fn decode_columns(bytes: &[u8], projection: Option<&[usize]>) -> Result<RecordBatch> {
    let mut reader = StreamReader::try_new(Cursor::new(bytes), projection.map(<[usize]>::to_vec))?;
    match reader.next() {
        Some(batch) => Ok(batch?),
        None => Err(StorageError::Corrupt("IPC stream without a batch".into())),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, StringArray};

    use super::*;

    #[test]
    fn round_trip() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(3)]));
        let b: ArrayRef = Arc::new(StringArray::from(vec!["x", "y", "z"]));
        let batch = RecordBatch::try_from_iter(vec![("a", a), ("b", b)]).unwrap();
        let bytes = encode_batch(&batch).unwrap();
        assert_eq!(decode_batch(&bytes).unwrap(), batch);
    }

    #[test]
    fn a_slice_encodes_only_its_rows() {
        let a: ArrayRef = Arc::new(Int64Array::from((0..100_000).collect::<Vec<i64>>()));
        let batch = RecordBatch::try_from_iter(vec![("a", a)]).unwrap();
        let one = encode_batch(&batch.slice(50_000, 1)).unwrap();
        assert!(one.len() < 2_000, "a one-row slice took {} bytes", one.len());
        assert_eq!(decode_batch(&one).unwrap(), batch.slice(50_000, 1));
    }

    #[test]
    fn projection_decodes_only_some_columns() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![1, 2]));
        let b: ArrayRef = Arc::new(StringArray::from(vec!["x", "y"]));
        let batch = RecordBatch::try_from_iter(vec![("a", a), ("b", b.clone())]).unwrap();
        let only_b = decode_columns(&encode_batch(&batch).unwrap(), Some(&[1])).unwrap();
        assert_eq!(only_b.num_columns(), 1);
        assert_eq!(only_b.column(0), &b);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_batch(b"not arrow at all").is_err());
        assert!(decode_batch(&[]).is_err());
        assert!(decode_batch(&[0xff; 64]).is_err());
    }
}
