"""DuckDB's side of the point-in-time join benchmark: the labels and the view versions nowdb
exported (Parquet), loaded into in-memory tables (not timed), then

    SELECT l.user_id, l.ts, v.n, v.total FROM labels l
    ASOF LEFT JOIN versions v ON l.user_id = v.user_id AND v.valid_from <= l.ts

timed RUNS times with the result fetched as NumPy arrays; the best is reported (as nowdb's
side does).

    python bench/pit_duckdb.py EXPORT_DIR RUNS

Prints one JSON object: seconds, and rows ([user_id, ts in microseconds, n, total]) for the
harness to compare with nowdb's, row for row.
"""

import datetime
import json
import sys
import time

import duckdb

QUERY = """
SELECT l.user_id, l.ts, v.n, v.total FROM labels l
ASOF LEFT JOIN versions v ON l.user_id = v.user_id AND v.valid_from <= l.ts
"""


def main():
    export_dir, runs = sys.argv[1], int(sys.argv[2])
    con = duckdb.connect()
    con.execute(f"CREATE TABLE versions AS SELECT * FROM '{export_dir}/versions.parquet'")
    con.execute(f"CREATE TABLE labels AS SELECT * FROM '{export_dir}/labels.parquet'")
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        con.execute(QUERY).fetchnumpy()
        best = min(best, time.perf_counter() - start)
    epoch = datetime.datetime(1970, 1, 1)
    micros = datetime.timedelta(microseconds=1)
    rows = [[u, (ts - epoch) // micros, n, total] for u, ts, n, total in con.execute(QUERY).fetchall()]
    print(json.dumps({"seconds": best, "rows": rows}))


if __name__ == "__main__":
    main()
