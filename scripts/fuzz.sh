#!/usr/bin/env bash
# Fuzzes nowdb's input decoders with cargo-fuzz (libFuzzer + AddressSanitizer), each target for
# a bounded time (default 60 s), starting from and adding to its corpus in fuzz/corpus/<target>.
# A crash fails the run and leaves the input in fuzz/artifacts/<target>/; it then becomes a
# regression test (fuzz/regressions/, replayed by `cargo test -p nowdb-tests`).
#
#   scripts/fuzz.sh [seconds per target] [target ...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frontend_messages sql_front_door storage_decoders model_bytes)
scripts/setup.sh
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.1
# cargo-fuzz passes nightly-only flags (-Zsanitizer=address); this machine has one stable
# toolchain, which accepts them with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
root="$PWD"
# The model target loads ONNX Runtime from the .venv wheel, like the server.
ORT_DYLIB_PATH="$(ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so* 2>/dev/null | head -1)"
export ORT_DYLIB_PATH
for t in "${targets[@]}"; do
    # fuzz/ builds without DataFusion (CI fuzzes these); fuzz/full needs it.
    # The full targets build in dev mode: a release build of DataFusion with AddressSanitizer
    # takes far longer on 2 cores (dev: about 12 minutes cold).
    case "$t" in
        frontend_messages|storage_decoders) dir="$root/fuzz"; mode=--release ;;
        *) dir="$root/fuzz/full"; mode=--dev ;;
    esac
    corpus="$root/fuzz/corpus/$t"
    artifacts="$root/fuzz/artifacts/$t"
    mkdir -p "$corpus" "$artifacts"
    echo "fuzz: $t for ${secs}s"
    log="$CARGO_TARGET_DIR/fuzz-$t.log"
    mkdir -p "$CARGO_TARGET_DIR"
    if ! cargo fuzz run --fuzz-dir "$dir" "$mode" "$t" "$corpus" -- -max_total_time="$secs" -rss_limit_mb=4096 -max_len=65536 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "fuzz: $t failed; the input is in fuzz/artifacts/$t (copy it to fuzz/regressions/$t/)" >&2
        exit 1
    fi
    grep -E "^stat::(number_of_executed_units|new_units_added|peak_rss_mb)" "$log" | tr '\n' ' '
    echo
done
