#!/usr/bin/env bash
# Runs nowdb side by side with PostgreSQL and Redis and appends the results to a report.
#
#   bench/run.sh [--scale small|full] [--report FILE] [--chart FILE.png]
#
# small: a few minutes on 2 cores, on the debug build the tests already made (CI's smoke
#        test; writes to target/bench/ unless --report/--chart are given).
# full:  the numbers for reports, on an optimized build; appends to docs/BENCHMARKS.md and
#        draws docs/bench-latency.png.
# Peers are installed when missing (Debian's postgresql-15 and redis-server, matplotlib into
# .venv) and each runs on a free loopback port in its own temp directory.
set -euo pipefail
cd "$(dirname "$0")/.."

scale=small
report=""
chart=""
while [ $# -gt 0 ]; do
    case "$1" in
        --scale) scale="$2"; shift 2 ;;
        --report) report="$2"; shift 2 ;;
        --chart) chart="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target/bench"
if [ "$scale" = full ]; then
    profile=(--release); build=release
    : "${report:=docs/BENCHMARKS.md}"; : "${chart:=docs/bench-latency.png}"
else
    profile=(); build=debug
    : "${report:=$target/bench/BENCHMARKS.md}"; : "${chart:=$target/bench/latency.png}"
fi

scripts/setup.sh
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql-15)
command -v redis-server >/dev/null || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
.venv/bin/python -c "import matplotlib" 2>/dev/null || .venv/bin/pip install -q --disable-pip-version-check -r bench/requirements.txt

cargo build "${profile[@]}" --bin nowdb --bin nowdb-bench
"$target/$build/nowdb-bench" --scale "$scale" --nowdb "$target/$build/nowdb" --nowdb-build "$build" \
    --report "$report" --curves "$target/bench/curves.csv"
.venv/bin/python bench/plot.py "$target/bench/curves.csv" "$chart"
echo "bench: results appended to $report, chart in $chart"
