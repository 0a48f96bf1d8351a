#!/usr/bin/env bash
# Runs every test: unit tests of each crate and the end-to-end tests, which start the real
# `nowdb` binary on ephemeral loopback ports with temporary data directories.
set -euo pipefail
cd "$(dirname "$0")/.."
# A one-shot build gains nothing from incremental artifacts; they would cost gigabytes of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
df -h . | tail -1
scripts/setup.sh
# The Kafka tests run against a real single-node Apache Kafka broker (KRaft) on loopback,
# started here and stopped on exit. Where Kafka's jars cannot be fetched from Maven Central,
# they run against librdkafka's mock cluster instead, and this says so loudly.
if scripts/kafka.sh fetch; then
    KAFKA_DIR="$(mktemp -d)"
    trap 'scripts/kafka.sh stop "$KAFKA_DIR"; rm -rf "$KAFKA_DIR"' EXIT
    NOWDB_TEST_KAFKA="$(scripts/kafka.sh start "$KAFKA_DIR")"
    export NOWDB_TEST_KAFKA
    echo "Kafka broker for the tests: $NOWDB_TEST_KAFKA"
else
    echo "WARNING: Apache Kafka's jars could not be fetched from Maven Central;" >&2
    echo "WARNING: the Kafka tests run against librdkafka's mock cluster, not a real broker." >&2
fi
# The end-to-end tests run the binary, which `cargo test` does not rebuild for another package.
cargo build --bin nowdb
cargo test --workspace
# Benchmark smoke test (small scale, no thresholds): nowdb, PostgreSQL and Redis side by side,
# and the 64-connection load test (fails on any error or stuck connection).
bench/run.sh --scale small
# Fuzzing, 60 s per target, of the targets that build without the query engine (the others,
# and longer runs: scripts/fuzz.sh [seconds]); a crash fails the run.
scripts/fuzz.sh 60 frontend_messages storage_decoders
