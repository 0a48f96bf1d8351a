#!/usr/bin/env python3
"""Differential sqllogictest: expected results from a real PostgreSQL, then a diff against nowdb.

Generate (rewrite the files in place with PostgreSQL's results):

    python tests/python/slt_from_pg.py --pg 'host=127.0.0.1 port=5432 user=nowdb dbname=nowdb' tests/compat/*.slt

Compare (run every record against another server, e.g. nowdb, and print each difference):

    python tests/python/slt_from_pg.py --compare 'host=127.0.0.1 port=4566 user=nowdb dbname=nowdb' tests/compat/*.slt

Annotate (pin nowdb's current answer wherever it differs from PostgreSQL's, see below):

    python tests/python/slt_from_pg.py --annotate 'host=127.0.0.1 port=4566 user=nowdb dbname=nowdb' tests/compat/*.slt

Before each file the statements of `setup.sql` (found next to the file, or `--setup PATH`) are
run, one per line (`;`-terminated). Every statement is sent alone in the simple query protocol
and values are taken as the raw text the server sent, rendered as tests/slt.rs renders them:
NULL as `NULL`, the empty string as `(empty)`, columns joined by one space.

Generation keeps each record's SQL, sort mode and label; it sets the column type letters from
PostgreSQL's result types (I integer, R float/numeric, B bool, T anything else) and the result
rows from PostgreSQL's answer (sorted as lists of strings for `rowsort`, as sqllogictest-rs
sorts them). A record PostgreSQL answers with an error becomes `query error <SQLSTATE>` or
`statement error <SQLSTATE>`; a record written as an error that PostgreSQL answers without one
is rewritten as a result (with a warning). Comments, blank lines and other records (`control`,
`halt`, ...) are kept as they are.

Conditions. A `skipif LABEL` / `onlyif LABEL` line directly above a record is kept with it and
decides, as in sqllogictest-rs, on which servers the record runs: the e2e runner labels nowdb
`nowdb` and PostgreSQL `postgres`. `--pg` runs with the label `postgres` (so it regenerates the
`skipif nowdb` records like any other and leaves `onlyif nowdb` records untouched);
`--compare` and `--annotate` run with `--label` (default `nowdb`; pass `--label postgres` to
compare a PostgreSQL).

Annotations. `--annotate` runs every record on nowdb. Where nowdb's answer differs from the
expected (PostgreSQL) one, the record is pinned as a pair:

    # nowdb differs: <cause key>
    skipif nowdb
    query ...            <- PostgreSQL's record, unchanged
    <sql>
    ----
    <PostgreSQL's rows>

    onlyif nowdb
    query ...            <- nowdb's current answer: rows, or `query error <SQLSTATE>`
    <sql>
    ----
    <nowdb's rows>

The cause key names a `## <key>` section of docs/COMPATIBILITY.md (several keys may be given,
separated by commas, when one record shows several causes). Re-running `--annotate` is
idempotent: it refreshes the `onlyif nowdb` copies from nowdb's current answers, keeps the
cause keys written by hand, and removes the whole annotation where nowdb now agrees with
PostgreSQL. A newly differing record takes its key from `--causes FILE` (JSON: the record's
SQL text -> key), else the key of its previous annotation, else `unclassified`; unclassified
records and keys without a section in docs/COMPATIBILITY.md are reported and make the exit
status 1. Errors are pinned by SQLSTATE only, never by message.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import pq

INT_OIDS = {20, 21, 23, 26}  # int8, int2, int4, oid
REAL_OIDS = {700, 701, 1700}  # float4, float8, numeric
BOOL_OIDS = {16}


CAUSE_PREFIX = "# nowdb differs:"
CONDITION_RE = re.compile(r"^(skipif|onlyif) (\S+)\s*$")
NOWDB = "nowdb"


@dataclass
class Record:
    """A `statement` or `query` record, or a run of other lines (kind 'raw')."""

    kind: str  # 'statement' | 'query' | 'raw'
    line: int  # 1-based line of the header (or first raw line)
    header: str = ""
    sql: list[str] = field(default_factory=list)
    results: list[str] | None = None  # lines after ----, None when there is no ----
    raw: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)  # `skipif X` / `onlyif X` lines above
    causes: list[str] | None = None  # keys of a `# nowdb differs:` comment above, if any

    @property
    def tokens(self) -> list[str]:
        return self.header.split()

    @property
    def expects_error(self) -> bool:
        t = self.tokens
        return len(t) >= 2 and t[1] == "error"

    @property
    def error_pattern(self) -> str:
        t = self.header.split(None, 2)
        return t[2].strip() if len(t) > 2 else ""

    @property
    def sort_mode(self) -> str:
        t = self.tokens
        if self.kind == "query" and not self.expects_error and len(t) >= 3:
            return t[2]
        return "nosort"

    @property
    def label(self) -> str | None:
        t = self.tokens
        if self.kind == "query" and not self.expects_error and len(t) >= 4:
            return t[3]
        return None

    @property
    def sql_text(self) -> str:
        return "\n".join(self.sql)

    def has(self, condition: str) -> bool:
        return condition in self.conditions

    def runs_on(self, labels: set[str]) -> bool:
        """sqllogictest-rs' rule: skipped if any `skipif` label is set or any `onlyif` one is not."""
        for c in self.conditions:
            kind, label = c.split()
            if (kind == "skipif") == (label in labels):
                return False
        return True

    def render(self) -> list[str]:
        if self.kind == "raw":
            return self.raw
        out = []
        if self.causes is not None:
            out.append(f"{CAUSE_PREFIX} {', '.join(self.causes)}")
        out.extend(self.conditions)
        out.extend([self.header, *self.sql])
        if self.results is not None:
            out.append("----")
            out.extend(self.results)
        return out


def is_header(line: str) -> bool:
    return line.startswith("statement ") or line.startswith("query ")


def parse(path: Path) -> list[Record]:
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    records: list[Record] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        # A `# nowdb differs:` comment and condition lines belong to the record right below them.
        j = i
        causes = None
        if lines[j].startswith(CAUSE_PREFIX):
            causes = [k.strip() for k in lines[j][len(CAUSE_PREFIX):].split(",") if k.strip()]
            j += 1
        conditions = []
        while j < len(lines) and CONDITION_RE.match(lines[j]):
            conditions.append(" ".join(lines[j].split()))
            j += 1
        if j < len(lines) and is_header(lines[j]) and (causes is not None or conditions or j == i):
            rec = Record(kind=lines[j].split()[0], line=j + 1, header=lines[j].rstrip(),
                         conditions=conditions, causes=causes)
            i = j + 1
            while i < len(lines) and lines[i].strip() != "" and lines[i].rstrip() != "----":
                rec.sql.append(lines[i].rstrip())
                i += 1
            if i < len(lines) and lines[i].rstrip() == "----":
                rec.results = []
                i += 1
                while i < len(lines) and lines[i].strip() != "":
                    rec.results.append(lines[i].rstrip())
                    i += 1
            records.append(rec)
        else:
            if records and records[-1].kind == "raw":
                records[-1].raw.append(line)
            else:
                records.append(Record(kind="raw", line=i + 1, raw=[line]))
            i += 1
    return records


def write(path: Path, records: list[Record]) -> None:
    out: list[str] = []
    for rec in records:
        out.extend(rec.render())
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def is_blank(rec: Record) -> bool:
    return rec.kind == "raw" and all(x.strip() == "" for x in rec.raw)


def twins(records: list[Record]) -> dict[int, int]:
    """Index of each `skipif nowdb` record -> index of its `onlyif nowdb` copy (same SQL, next
    record, only blank lines between)."""
    out = {}
    for i, rec in enumerate(records):
        if rec.kind == "raw" or not rec.has(f"skipif {NOWDB}"):
            continue
        j = i + 1
        while j < len(records) and is_blank(records[j]):
            j += 1
        if j < len(records) and records[j].kind != "raw" and records[j].has(f"onlyif {NOWDB}") \
                and records[j].sql == rec.sql:
            out[i] = j
    return out


# --- running -------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a server answered to one statement."""

    error: str | None = None  # "<SQLSTATE>: <message>"
    sqlstate: str | None = None
    columns: list[int] | None = None  # type OIDs, None when the statement returned no rows
    rows: list[list[str]] = field(default_factory=list)


def cell(v: bytes | None) -> str:
    if v is None:
        return "NULL"
    s = v.decode("utf-8")
    return "(empty)" if s == "" else s


def run_sql(conn: psycopg.Connection, sql: str) -> Outcome:
    """Sends `sql` as one simple-protocol Query message; values as the server's raw text."""
    res = conn.pgconn.exec_(sql.encode("utf-8"))
    status = res.status
    if status == pq.ExecStatus.FATAL_ERROR:
        state = (res.error_field(pq.DiagnosticField.SQLSTATE) or b"?????").decode()
        msg = (res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or b"").decode("utf-8", "replace")
        return Outcome(error=f"{state}: {msg}", sqlstate=state)
    if status == pq.ExecStatus.TUPLES_OK:
        cols = [res.ftype(c) for c in range(res.nfields)]
        rows = [[cell(res.get_value(r, c)) for c in range(res.nfields)] for r in range(res.ntuples)]
        return Outcome(columns=cols, rows=rows)
    if status in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.EMPTY_QUERY):
        return Outcome()
    return Outcome(error=f"?????: unexpected result status {status!r}", sqlstate="?????")


def type_letters(oids: list[int]) -> str:
    out = ""
    for oid in oids:
        if oid in INT_OIDS:
            out += "I"
        elif oid in REAL_OIDS:
            out += "R"
        elif oid in BOOL_OIDS:
            out += "B"
        else:
            out += "T"
    return out


def connect(conninfo: str) -> psycopg.Connection:
    return psycopg.connect(conninfo, autocommit=True)


def setup_statements(path: Path | None) -> list[tuple[int, str]]:
    if path is None or not path.exists():
        return []
    stmts = []
    for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        s = line.strip()
        if not s or s.startswith("--"):
            continue
        stmts.append((n, s.rstrip(";")))
    return stmts


def run_setup(conn: psycopg.Connection, setup: Path | None, who: str) -> bool:
    ok = True
    for n, stmt in setup_statements(setup):
        out = run_sql(conn, stmt)
        if out.error:
            print(f"{setup}:{n}: setup failed on {who}: {out.error}\n    {stmt}", file=sys.stderr)
            ok = False
    return ok


def setup_for(file: Path, explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    candidate = file.parent / "setup.sql"
    return candidate if candidate.exists() else None


def normalize(s: str) -> str:
    """sqllogictest-rs' default normalizer: trim, then collapse whitespace."""
    return " ".join(s.split())


def rendered_rows(rows: list[list[str]], sort_mode: str) -> list[str]:
    if sort_mode == "rowsort":
        rows = sorted(rows)
    elif sort_mode == "valuesort":
        rows = sorted([v] for r in rows for v in r)
    return [" ".join(r) for r in rows]


# --- generate ------------------------------------------------------------------------------


def is_multirow_unordered(rec: Record, out: Outcome, sort_mode: str) -> bool:
    return sort_mode == "nosort" and len(out.rows) > 1 and "order by" not in rec.sql_text.lower()


def unsafe_values(out: Outcome) -> list[str]:
    return [v for row in out.rows for v in row if "\n" in v or (v.strip() == "" and v != "")]


def generate(conninfo: str, files: list[Path], setup: Path | None) -> int:
    warnings = 0
    labels = {"postgres"}
    total_q = 0
    for file in files:
        conn = connect(conninfo)
        if not run_setup(conn, setup_for(file, setup), "PostgreSQL"):
            return 2
        records = parse(file)
        nq = 0
        for rec in records:
            if rec.kind == "raw" or not rec.runs_on(labels):
                continue
            out = run_sql(conn, rec.sql_text)
            where = f"{file}:{rec.line}"
            if out.error:
                if rec.kind == "query":
                    rec.header = f"query error {out.sqlstate}"
                else:
                    rec.header = f"statement error {out.sqlstate}"
                rec.results = None
                if not rec.expects_error:
                    print(f"{where}: note: PostgreSQL errors: {out.error}", file=sys.stderr)
                continue
            if rec.expects_error:
                warnings += 1
                print(f"{where}: warning: written as an error, PostgreSQL succeeds; rewritten", file=sys.stderr)
            if rec.kind == "statement" or out.columns is None:
                if out.columns is not None and rec.kind == "statement":
                    print(f"{where}: warning: statement returns rows", file=sys.stderr)
                    warnings += 1
                rec.kind = "statement"
                rec.header = "statement ok"
                rec.results = None
                continue
            nq += 1
            sort_mode = rec.sort_mode if not rec.expects_error else ("rowsort" if len(out.rows) > 1 else "nosort")
            if is_multirow_unordered(rec, out, sort_mode):
                warnings += 1
                print(f"{where}: warning: {len(out.rows)} rows, no ORDER BY and no rowsort", file=sys.stderr)
            for v in unsafe_values(out):
                warnings += 1
                print(f"{where}: warning: value {v!r} does not survive the slt format", file=sys.stderr)
            rec.header = query_header(out.columns, sort_mode, rec.label)
            rec.results = rendered_rows(out.rows, sort_mode)
        write(file, records)
        conn.close()
        total_q += nq
        print(f"{file}: {nq} queries", file=sys.stderr)
    print(f"{total_q} queries with results in {len(files)} files", file=sys.stderr)
    return 1 if warnings else 0


def query_header(columns: list[int], sort_mode: str, label: str | None) -> str:
    header = f"query {type_letters(columns)}"
    if sort_mode != "nosort" or label:
        header += f" {sort_mode}"
    if label:
        header += f" {label}"
    return header


# --- compare -------------------------------------------------------------------------------


@dataclass
class Diff:
    file: str
    line: int
    sql: str
    expected: str
    actual: str
    causes: list[str] | None = None


def expected_text(rec: Record) -> str:
    if rec.expects_error:
        return f"error {rec.error_pattern}".rstrip()
    if rec.kind == "statement":
        return "ok"
    return "\n".join(rec.results or [])


def mismatch(rec: Record, out: Outcome) -> str | None:
    """What the server answered, when that is not what `rec` expects; None when it is."""
    if rec.expects_error:
        if out.error is None:
            return "ok" if out.columns is None else "\n".join(rendered_rows(out.rows, "nosort")) or "(no rows)"
        if rec.error_pattern and not re.search(rec.error_pattern, out.error):
            return f"error {out.error}"
        return None
    if out.error is not None:
        return f"error {out.error}"
    if rec.kind == "query":
        got = rendered_rows(out.rows, rec.sort_mode)
        want = rec.results or []
        if [normalize(x) for x in got] != [normalize(x) for x in want]:
            return "\n".join(got) if got else "(no rows)"
    return None


def compare(conninfo: str, files: list[Path], setup: Path | None, json_path: Path | None, label: str) -> int:
    diffs: list[Diff] = []
    total = skipped = 0
    labels = {label}
    for file in files:
        conn = connect(conninfo)
        run_setup(conn, setup_for(file, setup), "the server")
        for rec in parse(file):
            if rec.kind == "raw":
                continue
            if not rec.runs_on(labels):
                skipped += 1
                continue
            total += 1
            out = run_sql(conn, rec.sql_text)
            actual = mismatch(rec, out)
            if actual is not None:
                diffs.append(Diff(str(file), rec.line, rec.sql_text, expected_text(rec) or "(no rows)", actual, rec.causes))
        conn.close()
    for d in diffs:
        print(f"--- {d.file}:{d.line}")
        print(f"    {d.sql}")
        print("  expected:")
        print("\n".join("    " + x for x in d.expected.split("\n")))
        print("  actual:")
        print("\n".join("    " + x for x in d.actual.split("\n")))
    print(f"{len(diffs)} differences in {total} records run with label {label!r} ({skipped} skipped by skipif/onlyif)",
          file=sys.stderr)
    if json_path:
        json_path.write_text(json.dumps([d.__dict__ for d in diffs], indent=1, ensure_ascii=False), encoding="utf-8")
    return 1 if diffs else 0


# --- annotate ------------------------------------------------------------------------------


def doc_sections(path: Path) -> set[str] | None:
    if not path.exists():
        return None
    return {line[3:].strip() for line in path.read_text(encoding="utf-8").split("\n") if line.startswith("## ")}


def nowdb_copy(pg: Record, out: Outcome) -> Record:
    """The `onlyif nowdb` record that expects what nowdb answered to `pg`'s SQL."""
    rec = Record(kind=pg.kind, line=0, sql=list(pg.sql), conditions=[f"onlyif {NOWDB}"])
    if out.error is not None:
        rec.header = f"{pg.kind} error {out.sqlstate}"
        return rec
    if pg.kind == "statement" or out.columns is None:
        rec.kind = "statement"
        rec.header = "statement ok"
        return rec
    if pg.kind == "query" and not pg.expects_error:
        sort_mode = pg.sort_mode
    else:
        sort_mode = "rowsort" if len(out.rows) > 1 else "nosort"
    rec.header = query_header(out.columns, sort_mode, pg.label)
    rec.results = rendered_rows(out.rows, sort_mode)
    return rec


def annotate(conninfo: str, files: list[Path], setup: Path | None, causes_path: Path | None, docs: Path) -> int:
    causes_map: dict[str, str] = json.loads(causes_path.read_text(encoding="utf-8")) if causes_path else {}
    sections = doc_sections(docs)
    labels = {NOWDB}
    problems = 0
    counts: dict[str, int] = {}
    added = updated = removed = 0
    for file in files:
        conn = connect(conninfo)
        run_setup(conn, setup_for(file, setup), "nowdb")
        records = parse(file)
        pairs = twins(records)
        copies = set(pairs.values())
        result: list[Record] = []
        i = 0
        while i < len(records):
            rec = records[i]
            if rec.kind == "raw":
                result.append(rec)
                i += 1
                continue
            if i in copies:  # handled with its PostgreSQL record
                i += 1
                continue
            pinned = rec.has(f"skipif {NOWDB}") and (i in pairs or rec.causes is not None)
            if not pinned:
                if rec.runs_on(labels):
                    out = run_sql(conn, rec.sql_text)
                    if not rec.has(f"onlyif {NOWDB}") and mismatch(rec, out) is not None:
                        rec.causes = key_for(rec, causes_map, None)
                        rec.conditions.append(f"skipif {NOWDB}")
                        problems += check_copy(file, rec, out)
                        result.extend([rec, Record(kind="raw", line=0, raw=[""]), nowdb_copy(rec, out)])
                        added += 1
                        count_causes(rec, counts)
                        i += 1
                        continue
                result.append(rec)
                i += 1
                continue
            # An annotated pair: run the SQL once, as nowdb's runner would run the copy.
            out = run_sql(conn, rec.sql_text)
            j = pairs.get(i)
            old = records[j] if j is not None else None
            if mismatch(rec, out) is None:
                rec.conditions.remove(f"skipif {NOWDB}")
                rec.causes = None
                result.append(rec)
                removed += 1
                print(f"{file}:{rec.line}: nowdb now matches PostgreSQL; annotation removed", file=sys.stderr)
            else:
                rec.causes = key_for(rec, causes_map, rec.causes)
                copy = nowdb_copy(rec, out)
                problems += check_copy(file, rec, out)
                if old is None or old.render() != copy.render():
                    updated += 1
                    print(f"{file}:{rec.line}: nowdb's copy updated", file=sys.stderr)
                result.extend([rec, Record(kind="raw", line=0, raw=[""]), copy])
                count_causes(rec, counts)
            if j is None:
                i += 1
            else:
                i = j + 1
        for rec in result:
            if rec.kind == "raw" or rec.causes is None:
                continue
            for key in rec.causes:
                if key == "unclassified":
                    problems += 1
                    print(f"{file}: unclassified difference: {rec.sql_text}", file=sys.stderr)
                elif sections is not None and key not in sections:
                    problems += 1
                    print(f"{file}: cause key {key!r} has no '## {key}' section in {docs}", file=sys.stderr)
        write(file, result)
        conn.close()
    for key in sorted(counts):
        print(f"{counts[key]:4} {key}", file=sys.stderr)
    print(f"{sum(1 for _ in counts)} cause keys; {added} annotations added, {updated} nowdb copies updated, "
          f"{removed} annotations removed", file=sys.stderr)
    return 1 if problems else 0


def check_copy(file: Path, pg: Record, out: Outcome) -> int:
    """Warnings about an answer the `onlyif nowdb` copy cannot pin reliably."""
    n = 0
    if out.error is None and out.columns is not None and pg.kind == "query":
        sort_mode = pg.sort_mode if not pg.expects_error else ("rowsort" if len(out.rows) > 1 else "nosort")
        if is_multirow_unordered(pg, out, sort_mode):
            n += 1
            print(f"{file}:{pg.line}: warning: nowdb answers {len(out.rows)} rows, no ORDER BY and no rowsort",
                  file=sys.stderr)
        for v in unsafe_values(out):
            n += 1
            print(f"{file}:{pg.line}: warning: nowdb's value {v!r} does not survive the slt format", file=sys.stderr)
    return n


def key_for(rec: Record, causes_map: dict[str, str], current: list[str] | None) -> list[str]:
    if rec.sql_text in causes_map:
        return [k.strip() for k in causes_map[rec.sql_text].split(",") if k.strip()]
    return current or ["unclassified"]


def count_causes(rec: Record, counts: dict[str, int]) -> None:
    for key in rec.causes or []:
        counts[key] = counts.get(key, 0) + 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--pg", metavar="CONNINFO", help="PostgreSQL to take expected results from (rewrites FILES)")
    mode.add_argument("--compare", metavar="CONNINFO", help="server to compare FILES against (prints differences)")
    mode.add_argument("--annotate", metavar="CONNINFO",
                      help="nowdb to pin differences from (rewrites FILES: skipif/onlyif nowdb pairs)")
    ap.add_argument("--setup", type=Path, help="setup statements (default: setup.sql next to each file)")
    ap.add_argument("--json", type=Path, help="with --compare: also write the differences as JSON here")
    ap.add_argument("--label", default=NOWDB, help="with --compare: the server's label for skipif/onlyif (default nowdb)")
    ap.add_argument("--causes", type=Path, help="with --annotate: JSON object, SQL text -> cause key(s), for new differences")
    ap.add_argument("--docs", type=Path, default=Path(__file__).resolve().parents[2] / "docs" / "COMPATIBILITY.md",
                    help="with --annotate: the document whose '## <key>' sections the cause keys must name")
    ap.add_argument("files", nargs="+", type=Path)
    args = ap.parse_args()
    if args.pg:
        return generate(args.pg, args.files, args.setup)
    if args.annotate:
        return annotate(args.annotate, args.files, args.setup, args.causes, args.docs)
    return compare(args.compare, args.files, args.setup, args.json, args.label)


if __name__ == "__main__":
    sys.exit(main())
