//! The startup and frontend message path as the server runs it: nowdb's framing check (the
//! message size limit, and lengths pgwire's decoder would trip over), then pgwire's decoder on
//! what the check let through, in the startup phase and after it.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pgwire::messages::{DecodeContext, PgWireFrontendMessage, ProtocolVersion};

/// nowdb's framing check, compiled from the server's own source file.
#[path = "../../server/src/framing.rs"]
#[allow(dead_code)]
mod framing;

/// A startup packet (protocol 3.0, user nowdb), put before bytes fuzzed as post-startup ones.
const STARTUP: &[u8] = b"\0\0\0\x14\0\x03\0\0user\0nowdb\0\0";

fuzz_target!(|data: &[u8]| {
    for startup in [true, false] {
        let stream = if startup { data.to_vec() } else { [STARTUP, data].concat() };
        if framing::check_frames(&stream, 64 << 10).is_err() {
            continue;
        }
        let mut ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
        ctx.awaiting_frontend_ssl = startup;
        ctx.awaiting_frontend_startup = startup;
        let mut buf = BytesMut::from(data);
        for _ in 0..64 {
            match PgWireFrontendMessage::decode(&mut buf, &ctx) {
                Ok(Some(_)) => {
                    ctx.awaiting_frontend_ssl = false;
                    ctx.awaiting_frontend_startup = false;
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
});
