//! Replays the fuzz corpus (fuzz/corpus/<target>) and every input a fuzzer once crashed on
//! (fuzz/regressions/<target>) through the fuzz targets' own harnesses (fuzz/harness), in the
//! ordinary test build: none may panic. scripts/fuzz.sh grows the corpus with libFuzzer.

use std::path::{Path, PathBuf};

#[path = "../../fuzz/harness/frontend.rs"]
mod frontend;
#[path = "../../fuzz/harness/sql.rs"]
mod sql;
#[path = "../../fuzz/harness/storage.rs"]
mod storage;

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

fn frontend_path(data: &[u8]) {
    frontend::run(data, |stream| nowdb_server::conn::check_frames(stream, 64 << 10).is_ok());
}

#[test]
fn fuzz_corpus_and_regressions_replay_without_panics() {
    let mut n = 0;
    for (target, run) in [("frontend_messages", frontend_path as fn(&[u8])), ("sql_front_door", sql::run), ("storage_decoders", storage::run)] {
        for (path, data) in inputs(target) {
            let result = std::panic::catch_unwind(|| run(&data));
            assert!(result.is_ok(), "{target}: {} panics", path.display());
            n += 1;
        }
    }
    assert!(n >= 10, "the corpus is there ({n} inputs)");
}
