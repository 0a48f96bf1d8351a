//! `kafka_partition(key, partitions)`: the partition Kafka's default key partitioner (the
//! Java client's, and librdkafka's `murmur2_random`) sends a message with key `key` to, in
//! a topic of `partitions` partitions: `(murmur2(key) & 0x7fffffff) % partitions`. In shard
//! mode, the node that owns that partition holds the key's rows, so an application can route
//! a lookup with the same function, in SQL or in its own language (docs/KAFKA.md).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

/// Kafka's murmur2 hash of `data` (seed 0x9747b28c), as `org.apache.kafka.common.utils.Utils.murmur2`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition of key `key` among `partitions`.
pub fn partition_of(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions
}

/// The `kafka_partition` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct KafkaPartition {
    signature: Signature,
}

impl KafkaPartition {
    /// The function, as a UDF.
    pub fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(Self {
            signature: Signature::user_defined(Volatility::Immutable),
        })
    }
}

impl ScalarUDFImpl for KafkaPartition {
    fn name(&self) -> &str {
        "kafka_partition"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        if args.len() != 2 {
            return exec_err!("kafka_partition(key, partitions) takes two arguments");
        }
        let key = match &args[0] {
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => DataType::Binary,
            _ => DataType::Utf8,
        };
        Ok(vec![key, DataType::Int64])
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let counts = arrays[1].as_primitive::<Int64Type>();
        let key = |i: usize| -> Option<&[u8]> {
            match arrays[0].data_type() {
                DataType::Binary => arrays[0].as_binary::<i32>().is_valid(i).then(|| arrays[0].as_binary::<i32>().value(i)),
                _ => arrays[0].as_string::<i32>().is_valid(i).then(|| arrays[0].as_string::<i32>().value(i).as_bytes()),
            }
        };
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let (Some(k), true) = (key(i), counts.is_valid(i)) else {
                out.push(None);
                continue;
            };
            let p = counts.value(i);
            if p <= 0 || p > i64::from(i32::MAX) {
                return exec_err!("kafka_partition: the number of partitions {p} is out of range (1 to {})", i32::MAX);
            }
            out.push(Some(partition_of(k, p as i32)));
        }
        let array: ArrayRef = Arc::new(Int32Array::from(out));
        Ok(ColumnarValue::Array(array))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from Kafka's own `UtilsTest.testMurmur2` and the Java producer's partitioning.
    #[test]
    fn matches_kafkas_murmur2() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            (b"abc", 479470107),
        ];
        for (input, expected) in cases {
            assert_eq!(murmur2(input), expected, "{}", String::from_utf8_lossy(input));
        }
        assert_eq!(partition_of(b"foobar", 4), (-790332482i32 & 0x7fffffff) % 4);
    }
}
