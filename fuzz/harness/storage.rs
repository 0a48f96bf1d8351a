//! The storage-decoder harness, shared by the `storage_decoders` fuzz target and the corpus
//! replay: log keys, memcomparable key values, the Arrow IPC batch codec, the keyed-row codec
//! and the batch statistics, on bytes that are not what was written.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use nowdb_storage::{codec, keys, rowcodec, BatchStats};

/// Runs `data` through every decoder.
pub fn run(data: &[u8]) {
    let types = [
        DataType::Int64,
        DataType::Utf8,
        DataType::Float64,
        DataType::Boolean,
        DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::Int32,
    ];
    let _ = keys::log_seq(data);
    let _ = keys::decode_values(data, &types);
    let _ = keys::decode_values(data, &types[1..2]);
    let _ = codec::decode_batch(data);
    let _ = codec::decode_columns(data, Some(&[0]));
    let schema = Arc::new(Schema::new(
        types.iter().enumerate().map(|(i, t)| Field::new(format!("c{i}"), t.clone(), true)).collect::<Vec<_>>(),
    ));
    let _ = rowcodec::encoded_len(data, &schema);
    let _ = rowcodec::decode_rows([data], &schema, None);
    let _ = BatchStats::decode(data);
}
