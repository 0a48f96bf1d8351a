//! The startup and frontend message path as the server runs it (harness/frontend.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// nowdb's framing check, compiled from the server's own source file.
#[path = "../../server/src/framing.rs"]
#[allow(dead_code)]
mod framing;

#[path = "../harness/frontend.rs"]
mod harness;

fuzz_target!(|data: &[u8]| harness::run(data, |stream| framing::check_frames(stream, 64 << 10).is_ok()));
