#!/usr/bin/env bash
# Runs every test: unit tests of each crate and the end-to-end tests, which start the real
# `nowdb` binary on ephemeral loopback ports with temporary data directories.
set -euo pipefail
cd "$(dirname "$0")/.."
# A one-shot build gains nothing from incremental artifacts; they would cost gigabytes of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
df -h . | tail -1
scripts/setup.sh
# The end-to-end tests run the binary, which `cargo test` does not rebuild for another package.
cargo build --bin nowdb
cargo test --workspace
# Benchmark smoke test (small scale, no thresholds): nowdb, PostgreSQL and Redis side by side,
# and the 64-connection load test (fails on any error or stuck connection).
bench/run.sh --scale small
# Fuzzing, 60 s per target, of the targets that build without the query engine (the others,
# and longer runs: scripts/fuzz.sh [seconds]); a crash fails the run.
scripts/fuzz.sh 60 frontend_messages storage_decoders
