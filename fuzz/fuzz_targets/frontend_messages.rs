//! The startup and frontend message path: nowdb's framing check (the message size limit), then
//! pgwire's decoder, on arbitrary bytes, in the startup phase and after it.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pgwire::messages::{DecodeContext, PgWireFrontendMessage, ProtocolVersion};

fuzz_target!(|data: &[u8]| {
    let _ = nowdb_server::conn::check_frames(data, 64 << 10);
    for startup in [true, false] {
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
