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
    check_framing(bytes)?;
    let mut reader = StreamReader::try_new(Cursor::new(bytes), projection.map(<[usize]>::to_vec))?;
    match reader.next() {
        Some(batch) => Ok(batch?),
        None => Err(StorageError::Corrupt("IPC stream without a batch".into())),
    }
}

/// Walks the IPC stream's message framing (continuation marker, metadata length, the body
/// length the metadata gives) and refuses any length past the end of `bytes`. Arrow's reader
/// allocates what a length says before reading it, so a corrupt stored value would otherwise
/// ask for gigabytes (found by fuzzing the decoders).
fn check_framing(bytes: &[u8]) -> Result<()> {
    let corrupt = |what: String| StorageError::Corrupt(format!("IPC stream: {what}"));
    let i32_at = |at: usize| bytes.get(at..at + 4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let mut pos = 0usize;
    while pos < bytes.len() {
        let (meta_len, meta_start) = match i32_at(pos) {
            Some(-1) => (i32_at(pos + 4).ok_or_else(|| corrupt("truncated message header".into()))?, pos + 8),
            Some(n) => (n, pos + 4),
            None => return Err(corrupt("truncated message header".into())),
        };
        if meta_len == 0 {
            return Ok(());
        }
        let meta_end = usize::try_from(meta_len).ok().and_then(|n| meta_start.checked_add(n)).filter(|end| *end <= bytes.len());
        let Some(meta_end) = meta_end else {
            return Err(corrupt(format!("metadata of {meta_len} bytes past the end of {} bytes", bytes.len())));
        };
        let message = arrow::ipc::root_as_message(&bytes[meta_start..meta_end]).map_err(|e| corrupt(e.to_string()))?;
        let body = message.bodyLength();
        pos = usize::try_from(body)
            .ok()
            .and_then(|n| meta_end.checked_add(n))
            .filter(|end| *end <= bytes.len())
            .ok_or_else(|| corrupt(format!("body of {body} bytes past the end of {} bytes", bytes.len())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, StringArray};

    use super::*;

    #[test]
    fn corrupt_lengths_are_refused_before_allocation() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
        let bytes = encode_batch(&RecordBatch::try_from_iter(vec![("a", a)]).unwrap()).unwrap();
        for cut in [1, 7, 12, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode_batch(&bytes[..cut]).is_err(), "truncated at {cut}");
        }
        // A metadata length of ~2 GB in a 13-byte value.
        let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5];
        assert!(matches!(decode_batch(&huge), Err(StorageError::Corrupt(_))));
    }

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
