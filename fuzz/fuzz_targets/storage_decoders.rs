//! The storage decoders on arbitrary bytes (harness/storage.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness/storage.rs"]
mod harness;

fuzz_target!(|data: &[u8]| harness::run(data));
