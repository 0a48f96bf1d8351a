//! The storage decoders, on bytes that are not what was written: log keys, memcomparable key
//! values, the Arrow IPC batch codec, the keyed-row codec and the batch statistics.
#![no_main]

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use libfuzzer_sys::fuzz_target;
use nowdb_storage::{codec, keys, rowcodec, BatchStats};

fuzz_target!(|data: &[u8]| {
    let _ = keys::log_seq(data);
    let types = [
        DataType::Int64,
        DataType::Utf8,
        DataType::Float64,
        DataType::Boolean,
        DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::Int32,
    ];
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
});
