#!/usr/bin/env bash
# Builds and starts nowdb on 127.0.0.1:5433 with data in ./nowdb-data (override with
# --listen / --data-dir, or NOWDB_LISTEN / NOWDB_DATA_DIR). Set NOWDB_RELEASE=1 for an
# optimized build (slower to compile, faster to run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
profile=()
[ "${NOWDB_RELEASE:-0}" = "1" ] && profile=(--release)
exec cargo run "${profile[@]}" --bin nowdb -- serve "$@"
