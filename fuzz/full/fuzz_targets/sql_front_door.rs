//! The SQL front door on arbitrary text (harness/sql.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../harness/sql.rs"]
mod harness;

fuzz_target!(|data: &[u8]| harness::run(data));
