#!/usr/bin/env bash
# Profiles the nowdb side of each benchmark workload with `perf record` (sampling, so it works
# without hardware counters) on the optimized build, and prints the top costs per workload
# into target/bench/profile-<workload>.txt.
#
#   bench/profile.sh [--scale small|full]
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${2:-small}"
[ "${1:-}" = "--scale" ] || scale=small
command -v perf >/dev/null || { echo "perf not found (apt-get install linux-perf)" >&2; exit 1; }
target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target/bench"
cargo build --release --bin nowdb --bin nowdb-bench
for w in ${WORKLOADS:-lookup ingest freshness}; do
    data="$target/bench/perf-$w.data"
    "$target/release/nowdb-bench" --scale "$scale" --nowdb "$target/release/nowdb" --systems nowdb --workloads "$w" \
        --nowdb-wrapper "perf record -F 999 -g -o $data --" \
        --report "$target/bench/profile-runs.md" --curves "$target/bench/profile-curves.csv" >/dev/null
    { perf report -i "$data" --no-children -g none --percent-limit 0.7 --sort dso,symbol --stdio 2>/dev/null || true; } \
        | { grep -v -e '^#' -e '^$' || true; } | head -40 > "$target/bench/profile-$w.txt"
    echo "== $w: top self-time symbols in $target/bench/profile-$w.txt"
    head -15 "$target/bench/profile-$w.txt"
done
