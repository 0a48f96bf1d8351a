//! The frontend-message harness, shared by the `frontend_messages` fuzz target and the corpus
//! replay in tests/e2e/fuzz_replay.rs: the bytes go to pgwire's decoder only where nowdb's
//! framing check lets them through, as on a connection, in the startup phase and after it.

use bytes::BytesMut;
use pgwire::messages::{DecodeContext, PgWireFrontendMessage, ProtocolVersion};

/// A startup packet (protocol 3.0, user nowdb), put before bytes fuzzed as post-startup ones.
pub const STARTUP: &[u8] = b"\0\0\0\x14\0\x03\0\0user\0nowdb\0\0";

/// Runs `data` through the path; `frames_ok` is nowdb's framing check of a whole stream.
pub fn run(data: &[u8], frames_ok: impl Fn(&[u8]) -> bool) {
    for startup in [true, false] {
        let stream = if startup { data.to_vec() } else { [STARTUP, data].concat() };
        if !frames_ok(&stream) {
            continue;
        }
        let mut ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
        ctx.awaiting_frontend_ssl = startup;
        ctx.awaiting_frontend_startup = startup;
        let mut buf = BytesMut::from(data);
        for _ in 0..64 {
            match PgWireFrontendMessage::decode(&mut buf, &ctx) {
                // An SSL or GSS request is still followed by a startup packet.
                Ok(Some(PgWireFrontendMessage::SslNegotiation(_))) => {}
                Ok(Some(_)) => {
                    ctx.awaiting_frontend_ssl = false;
                    ctx.awaiting_frontend_startup = false;
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
}
