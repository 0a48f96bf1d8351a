#!/usr/bin/env bash
# Installs what building and testing nowdb needs on a fresh Debian machine that has Rust and
# Python: Debian's RocksDB (linked dynamically, see .cargo/config.toml), clang for the
# RocksDB bindings, psql and the PostgreSQL 15 server (the differential SQL tests run against
# it), Java 17 with Debian's pgjdbc and Node.js (client compatibility tests), a project-local
# virtualenv (.venv) with the Python test clients and ONNX Runtime (the `onnxruntime` wheel,
# whose shared library nowdb loads for models), node-postgres (tests/clients/node), and
# sqlsmith (random SQL against the server in the tests).
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pkg in librocksdb-dev libclang-dev clang postgresql-client postgresql-15 libpostgresql-jdbc-java sqlsmith; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# Commands that may come from elsewhere than Debian's packages (e.g. NodeSource's nodejs).
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if ! .venv/bin/python -c "import psycopg, onnxruntime, duckdb, asyncpg, pg8000, sqlalchemy, greenlet, pandas, polars" 2>/dev/null; then
    .venv/bin/pip install -q --disable-pip-version-check -r tests/python/requirements.txt
fi
if [ ! -d tests/clients/node/node_modules/pg ]; then
    npm ci --prefix tests/clients/node --silent --no-audit --no-fund
fi
