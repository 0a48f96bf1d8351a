//! Model loading from arbitrary bytes: ONNX Runtime parses them and nowdb reads the graph's
//! signature; anything that is not a supported model must be an error, not a crash.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use nowdb_models::{Device, Model, SessionOptions};

fuzz_target!(|data: &[u8]| {
    let options = SessionOptions { device: Device::Cpu, threads: Some(1), output: None };
    let _ = Model::load("fuzzed", 1, Arc::from(data), options);
});
