//! Replays the fuzz corpus (fuzz/corpus/<target>) and every input a fuzzer once crashed on
//! (fuzz/regressions/<target>) through the code the fuzz targets exercise, in the ordinary
//! test build: none may panic. scripts/fuzz.sh grows the corpus with libFuzzer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::BytesMut;
use nowdb_server::dialect::SqlFrontEnd;
use nowdb_server::{extensions, model_sql};
use pgwire::messages::{DecodeContext, PgWireFrontendMessage, ProtocolVersion};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut out = Vec::new();
    for dir in [root.join("corpus").join(target), root.join("regressions").join(target)] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            if let Ok(bytes) = std::fs::read(entry.path()) {
                out.push((entry.path(), bytes));
            }
        }
    }
    out
}

/// A startup packet (protocol 3.0, user nowdb), put before bytes fuzzed as post-startup ones.
const STARTUP: &[u8] = b"\0\0\0\x14\0\x03\0\0user\0nowdb\0\0";

/// As the server (and the fuzz target): pgwire decodes only what the framing check accepts.
fn frontend(data: &[u8]) {
    for startup in [true, false] {
        let stream = if startup { data.to_vec() } else { [STARTUP, data].concat() };
        if nowdb_server::conn::check_frames(&stream, 64 << 10).is_err() {
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
}

fn sql(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let text = extensions::rewrite(text);
    let front = SqlFrontEnd::new();
    match model_sql::split(&text) {
        Some(pieces) => {
            for piece in pieces {
                match piece {
                    model_sql::Piece::Model(t) => drop(model_sql::parse(t)),
                    model_sql::Piece::Sql(t) => drop(front.parse(t)),
                }
            }
        }
        None => drop(front.parse(&text)),
    }
}

fn storage(data: &[u8]) {
    use nowdb_storage::{codec, keys, rowcodec, BatchStats};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let types = [DataType::Int64, DataType::Utf8, DataType::Float64, DataType::Boolean, DataType::Timestamp(TimeUnit::Microsecond, None), DataType::Int32];
    let _ = keys::log_seq(data);
    let _ = keys::decode_values(data, &types);
    let _ = keys::decode_values(data, &types[1..2]);
    let _ = codec::decode_batch(data);
    let _ = codec::decode_columns(data, Some(&[0]));
    let schema = Arc::new(Schema::new(types.iter().enumerate().map(|(i, t)| Field::new(format!("c{i}"), t.clone(), true)).collect::<Vec<_>>()));
    let _ = rowcodec::encoded_len(data, &schema);
    let _ = rowcodec::decode_rows([data], &schema, None);
    let _ = BatchStats::decode(data);
}

#[test]
fn fuzz_corpus_and_regressions_replay_without_panics() {
    let mut n = 0;
    for (target, run) in [("frontend_messages", frontend as fn(&[u8])), ("sql_front_door", sql), ("storage_decoders", storage)] {
        for (path, data) in inputs(target) {
            let result = std::panic::catch_unwind(|| run(&data));
            assert!(result.is_ok(), "{target}: {} panics", path.display());
            n += 1;
        }
    }
    assert!(n >= 10, "the corpus is there ({n} inputs)");
}
