"""Replay the introspection SQL that BI tools send (tests/clients/bi/*.sql) against a server.

Usage: bi_replay.py CONNINFO [FILE.sql ...]
  (default files: tests/clients/bi/dbeaver.sql, grafana.sql, metabase.sql)

Creates a small schema (keyed table users, event table events, materialized view user_totals),
then runs every entry of every file twice:
  simple    psycopg ClientCursor: simple query protocol, parameters merged client-side
  extended  prepare_threshold=0: Parse/Bind/Describe/Execute of a named statement for every
            query, parameters bound server-side (as pgjdbc and pgx do)
Each entry must succeed, and entries with '-- @expect...' directives must return our
tables/columns. Exits 1 with the list of failures. By default it stops at the first failure;
BI_REPLAY_ALL=1 runs everything and reports all failures. BI_REPLAY_VERBOSE=1 prints every entry.

File format (see the header of tests/clients/bi/grafana.sql): entries separated by lines holding
only ';'; directive lines before an entry:
  -- @name: label
  -- @params: JSON list bound to $1..$n ({"int8": X} binds X as bigint, like JDBC setLong)
  -- @expect: a, b, c        each value appears in some cell of the result
  -- @expect-row: a | b | c  some row contains all the values
  -- @expect-nonnull         the first cell of the first row is not NULL
  -- @gap: reason            a known gap (docs/COMPATIBILITY.md): the entry must still fail;
                             when it passes, the replay fails so that the gap gets removed
Tokens {{oid:REL}} and {{nspoid:SCHEMA}} (in SQL and params) are replaced by the oid the server
reports in pg_catalog.pg_class / pg_namespace.
"""
import json
import os
import re
import sys
from pathlib import Path

import psycopg
from psycopg.types.numeric import Int8

ROOT = Path(__file__).resolve().parents[2]
BI_DIR = ROOT / "tests" / "clients" / "bi"
DEFAULT_FILES = [BI_DIR / "dbeaver.sql", BI_DIR / "grafana.sql", BI_DIR / "metabase.sql", BI_DIR / "psql.sql"]

SETUP = [
    "DROP MATERIALIZED VIEW IF EXISTS user_totals",
    "DROP TABLE IF EXISTS events",
    "DROP TABLE IF EXISTS users",
    "CREATE TABLE users (user_id BIGINT PRIMARY KEY, country TEXT, score REAL)",
    "CREATE TABLE events (user_id BIGINT NOT NULL, amount DOUBLE PRECISION, ts TIMESTAMP NOT NULL)",
    "INSERT INTO users VALUES (1, 'FR', 0.2), (2, 'US', 0.9)",
    "INSERT INTO events VALUES (1, 12.5, '2026-01-01 09:00:00'), (2, 80, '2026-01-01 09:05:00'), "
    "(1, 3.2, '2026-01-01 09:30:00')",
    "CREATE MATERIALIZED VIEW user_totals AS "
    "SELECT user_id, count(*) AS n, sum(amount) AS total FROM events GROUP BY user_id",
]


class Entry:
    def __init__(self, path, index, line, name, sql, params, expect, expect_rows, expect_nonnull, gap):
        self.path, self.index, self.line, self.gap = path, index, line, gap
        self.name, self.sql, self.params = name, sql, params
        self.expect, self.expect_rows, self.expect_nonnull = expect, expect_rows, expect_nonnull

    def label(self):
        return f"{self.path.name}#{self.index} (line {self.line}) {self.name}"


def parse_file(path):
    entries = []
    lines = path.read_text().split("\n")
    # Skip the header: everything up to the first blank line.
    start = 0
    while start < len(lines) and lines[start].strip() != "":
        start += 1
    block, block_line = [], None
    for no, line in enumerate(lines[start:], start + 1):
        if line.strip() == ";":
            if block:
                entries.append(parse_entry(path, len(entries) + 1, block_line, block))
            block, block_line = [], None
            continue
        if not block and line.strip() == "":
            continue
        if block_line is None:
            block_line = no
        block.append(line)
    if any(l.strip() for l in block):
        entries.append(parse_entry(path, len(entries) + 1, block_line, block))
    return entries


def parse_entry(path, index, line, block):
    name, params, expect, expect_rows, nonnull, gap = None, None, [], [], False, None
    body = []
    for l in block:
        m = re.match(r"^-- @([a-z-]+)(?::\s*(.*))?$", l)
        if m and not body:
            key, val = m.group(1), (m.group(2) or "").strip()
            if key == "name":
                name = val
            elif key == "params":
                params = json.loads(val)
            elif key == "expect":
                expect += [v.strip() for v in val.split(",") if v.strip()]
            elif key == "expect-row":
                expect_rows.append([v.strip() for v in val.split("|")])
            elif key == "expect-nonnull":
                nonnull = True
            elif key == "gap":
                gap = val
            else:
                raise ValueError(f"{path}:{line}: unknown directive @{key}")
            continue
        body.append(l)
    while body and body[-1].strip() == "":
        body.pop()
    sql = "\n".join(body)
    return Entry(path, index, line, name or sql.strip().split("\n")[0][:60], sql, params, expect,
                 expect_rows, nonnull, gap)


class Failure(Exception):
    pass


def resolve_tokens(conn, text, cache):
    def oid_of(kind, name):
        key = (kind, name)
        if key not in cache:
            if kind == "oid":
                q = ("SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                     "ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relname = %s")
            else:
                q = "SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = %s"
            try:
                row = conn.execute(q, (name,)).fetchone()
            except psycopg.Error as e:
                raise Failure(f"cannot resolve {{{{{kind}:{name}}}}}: {e.sqlstate} {e}")
            if row is None:
                raise Failure(f"cannot resolve {{{{{kind}:{name}}}}}: no row in pg_catalog")
            cache[key] = str(row[0])
        return cache[key]

    return re.sub(r"\{\{(oid|nspoid):([A-Za-z_0-9]+)\}\}", lambda m: oid_of(m.group(1), m.group(2)), text)


def bind_params(conn, entry, cache):
    sql = resolve_tokens(conn, entry.sql, cache)
    if entry.params is None:
        return sql, None
    values = []
    for p in entry.params:
        if isinstance(p, dict) and "int8" in p:
            values.append(Int8(int(resolve_tokens(conn, str(p["int8"]), cache))))
        elif isinstance(p, str):
            values.append(resolve_tokens(conn, p, cache))
        else:
            values.append(p)
    # $n (pgjdbc / pgx wire placeholders) -> psycopg's %s, in order of appearance.
    ordered = []

    def repl(m):
        ordered.append(values[int(m.group(1)) - 1])
        return "%s"

    sql = re.sub(r"\$(\d+)", repl, sql.replace("%", "%%"))
    return sql, ordered


def cell_text(v):
    if v is None:
        return None
    if isinstance(v, float) and v.is_integer():
        return [str(v), str(int(v))]
    return [str(v)]


def check_result(entry, rows):
    cells = set()
    row_sets = []
    for r in rows:
        rs = set()
        for v in r:
            for t in cell_text(v) or []:
                rs.add(t)
        row_sets.append(rs)
        cells |= rs
    problems = []
    missing = [e for e in entry.expect if e not in cells]
    if missing:
        problems.append(f"missing values {missing}")
    for want in entry.expect_rows:
        if not any(all(w in rs for w in want) for rs in row_sets):
            problems.append(f"no row containing {want}")
    if entry.expect_nonnull and (not rows or rows[0][0] is None):
        problems.append("first cell is NULL or no rows")
    if problems:
        shown = rows[:8]
        raise Failure("; ".join(problems) + f"; got {len(rows)} rows, first: {shown!r}"[:1500])


def run_entry(conn, mode, entry, cache):
    sql, params = bind_params(conn, entry, cache)
    cur = psycopg.ClientCursor(conn) if mode == "simple" else conn.cursor()
    with cur:
        try:
            cur.execute(sql, params)
        except psycopg.Error as e:
            diag = e.diag
            msg = f"ERROR {e.sqlstate}: {diag.message_primary or e}"
            if diag.message_detail:
                msg += f" DETAIL: {diag.message_detail}"
            if diag.message_hint:
                msg += f" HINT: {diag.message_hint}"
            raise Failure(msg)
        rows = cur.fetchall() if cur.description is not None else []
    check_result(entry, rows)
    return len(rows)


def connect(conninfo, mode):
    if mode == "simple":
        return psycopg.connect(conninfo, autocommit=True)
    return psycopg.connect(conninfo, autocommit=True, prepare_threshold=0)


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    conninfo = sys.argv[1]
    files = [Path(f) for f in sys.argv[2:]] or DEFAULT_FILES
    run_all = os.environ.get("BI_REPLAY_ALL") == "1"
    verbose = os.environ.get("BI_REPLAY_VERBOSE") == "1"

    with psycopg.connect(conninfo, autocommit=True) as conn:
        for stmt in SETUP:
            conn.execute(stmt)

    entries = [e for f in files for e in parse_file(f)]
    failures = []
    counts = {}
    for mode in ("simple", "extended"):
        conn = connect(conninfo, mode)
        cache = {}
        for entry in entries:
            key = (entry.path.name, mode)
            counts.setdefault(key, [0, 0])
            counts[key][1] += 1
            try:
                n = run_entry(conn, mode, entry, cache)
                if entry.gap:
                    raise Failure(f"known gap now passes ({entry.gap}): remove its @gap line")
                counts[key][0] += 1
                if verbose:
                    print(f"ok   [{mode}] {entry.label()}: {n} rows")
            except Failure as f:
                if entry.gap and not str(f).startswith("known gap now passes"):
                    counts[key][0] += 1
                    if verbose:
                        print(f"gap  [{mode}] {entry.label()}: {entry.gap}")
                    if conn.closed or conn.broken:
                        conn = connect(conninfo, mode)
                        cache = {}
                    continue
                failures.append((mode, entry, str(f)))
                print(f"FAIL [{mode}] {entry.label()}: {f}")
                if conn.closed or conn.broken:
                    conn = connect(conninfo, mode)
                    cache = {}
                if not run_all:
                    break
        conn.close()
        if failures and not run_all:
            break

    print()
    for (fname, mode), (ok, total) in counts.items():
        print(f"{fname:14} {mode:9} {ok}/{total} passed")
    if failures:
        print(f"\n{len(failures)} failure(s):")
        for mode, entry, msg in failures:
            print(f"- [{mode}] {entry.label()}\n    {msg}")
        return 1
    print("all BI introspection queries passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
