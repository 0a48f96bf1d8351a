"""Python clients other than plain psycopg against a running nowdb (psycopg_check.py covers psycopg).

Usage: clients_check.py CONNINFO   (a libpq conninfo string, e.g. "host=127.0.0.1 port=5433 user=nowdb dbname=nowdb")

Sections: asyncpg, pg8000, SQLAlchemy (psycopg driver; asyncpg dialect when greenlet is
installed), pandas, polars, and a batch job reading a day of history through COPY TO STDOUT.
Each section uses its own tables. The first failure exits non-zero; with CLIENTS_CHECK_ALL=1
every section runs and all failures are listed at the end.
"""
import asyncio
import datetime
import decimal
import io
import math
import os
import sys
import traceback

import psycopg
from psycopg.conninfo import conninfo_to_dict

CONNINFO = sys.argv[1]
_params = conninfo_to_dict(CONNINFO)
HOST = _params.get("host", "127.0.0.1")
PORT = int(_params.get("port", 5432))
USER = _params.get("user", "nowdb")
DBNAME = _params.get("dbname", USER)
PASSWORD = _params.get("password")
SA_URL = f"{USER}{':' + PASSWORD if PASSWORD else ''}@{HOST}:{PORT}/{DBNAME}"

RUN_ALL = os.environ.get("CLIENTS_CHECK_ALL") == "1"
FAILURES = []
SKIPPED = []


def drop(*tables):
    """Drop a section's tables, so that a rerun against the same server starts clean."""
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        for t in tables:
            conn.execute(f"DROP TABLE IF EXISTS {t}")


def near(a, b, tol=1e-9):
    return a is not None and b is not None and math.isclose(a, b, rel_tol=tol, abs_tol=tol)


# ---------------------------------------------------------------------------------------------
# 1. asyncpg: binary protocol, type introspection, prepared statements, errors, pool.
# ---------------------------------------------------------------------------------------------

async def _asyncpg_check():
    import asyncpg

    connect_args = dict(host=HOST, port=PORT, user=USER, database=DBNAME, password=PASSWORD)
    conn = await asyncpg.connect(**connect_args)
    try:
        await conn.execute("DROP TABLE IF EXISTS ap_users")
        await conn.execute(
            # The array columns make asyncpg run its type introspection query (it has no
            # built-in codec for real[] / float8[]).
            "CREATE TABLE ap_users (id BIGINT PRIMARY KEY, n INT, score DOUBLE PRECISION, r REAL,"
            " name TEXT, active BOOLEAN, seen TIMESTAMP, born DATE, emb REAL[], vec DOUBLE PRECISION[])"
        )
        rows = [
            (1, 10, 1.5, 0.5, "ann", True, datetime.datetime(2024, 1, 1, 12, 0, 0, 250000),
             datetime.date(1990, 5, 17), [0.5, -1.0], [1.25, 2.5, -3.75]),
            (2, 20, -2.25, 0.25, "bob", False, datetime.datetime(2024, 1, 2, 8, 30),
             datetime.date(2000, 2, 29), [1.0], [0.0]),
            (3, 30, 1e10, 2.0, "cé", True, datetime.datetime(1999, 12, 31, 23, 59, 59),
             datetime.date(1970, 1, 1), [], [4.5]),
            (4, None, None, None, None, None, None, None, None, None),
        ]
        await conn.executemany("INSERT INTO ap_users VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)", rows)

        r = await conn.fetchrow("SELECT * FROM ap_users WHERE id = $1", 1)
        assert r is not None, "asyncpg fetchrow id=1: no row"
        assert tuple(r.keys()) == ("id", "n", "score", "r", "name", "active", "seen", "born", "emb", "vec"), r.keys()
        assert r["id"] == 1 and type(r["id"]) is int, r
        assert r["n"] == 10 and type(r["n"]) is int, r
        assert r["score"] == 1.5 and type(r["score"]) is float, r
        assert r["r"] == 0.5 and type(r["r"]) is float, r
        assert r["name"] == "ann", r
        assert r["active"] is True, r
        assert r["seen"] == datetime.datetime(2024, 1, 1, 12, 0, 0, 250000), r
        assert r["born"] == datetime.date(1990, 5, 17) and type(r["born"]) is datetime.date, r
        assert list(r["emb"]) == [0.5, -1.0], r
        assert list(r["vec"]) == [1.25, 2.5, -3.75], r

        r = await conn.fetchrow("SELECT name, emb, born FROM ap_users WHERE id = $1", 3)
        assert r["name"] == "cé" and list(r["emb"]) == [] and r["born"] == datetime.date(1970, 1, 1), r

        r = await conn.fetchrow("SELECT * FROM ap_users WHERE id = $1", 4)
        assert r["id"] == 4 and all(r[k] is None for k in list(r.keys())[1:]), r

        # Bulk load through asyncpg's binary COPY (COPY ... FROM STDIN (FORMAT binary)).
        await conn.execute("DROP TABLE IF EXISTS ap_bulk")
        await conn.execute(
            "CREATE TABLE ap_bulk (id BIGINT PRIMARY KEY, name TEXT, score DOUBLE PRECISION, seen TIMESTAMP,"
            " emb REAL[], price NUMERIC(10,2))"
        )
        bulk = [
            (i, f"n,{i}" if i % 3 else None, i / 4, datetime.datetime(2024, 1, 1) + datetime.timedelta(seconds=i),
             [float(i), 0.5] if i % 2 else [], decimal.Decimal(i) / 100)
            for i in range(1, 501)
        ]
        status = await conn.copy_records_to_table("ap_bulk", records=bulk)
        assert status == "COPY 500", status
        back = await conn.fetch("SELECT id, name, score, seen, emb, price FROM ap_bulk ORDER BY id")
        assert [tuple(r) for r in back] == bulk, (back[:3], bulk[:3])

        # Parameters of several types in one WHERE.
        got = await conn.fetch(
            "SELECT id FROM ap_users WHERE active = $1 AND seen >= $2 AND score > $3 AND name <> $4 ORDER BY id",
            True, datetime.datetime(2000, 1, 1), 0.0, "x",
        )
        assert [x["id"] for x in got] == [1], got

        assert await conn.fetchval("SELECT count(*) FROM ap_users") == 4
        assert await conn.fetchval("SELECT count(*) FROM ap_users WHERE n > $1", 15) == 2

        stmt = await conn.prepare("SELECT name, score FROM ap_users WHERE id = $1")
        for _ in range(3):
            assert tuple(await stmt.fetchrow(2)) == ("bob", -2.25)
            assert tuple(await stmt.fetchrow(1)) == ("ann", 1.5)
        assert await stmt.fetchrow(99) is None

        got = await conn.fetch("SELECT id FROM ap_users ORDER BY id LIMIT $1", 2)
        assert [x["id"] for x in got] == [1, 2], got
        got = await conn.fetch("SELECT id FROM ap_users ORDER BY id LIMIT $1 OFFSET $2", 2, 1)
        assert [r["id"] for r in got] == [2, 3], got

        # NULL parameters.
        await conn.execute("INSERT INTO ap_users (id, name) VALUES ($1, $2)", 5, None)
        assert await conn.fetchval("SELECT count(*) FROM ap_users WHERE name IS NULL") == 2

        # Errors: the right exception class, and the connection stays usable.
        try:
            await conn.execute("INSERT INTO ap_users (id, name) VALUES ($1, $2)", 1, "dup")
            raise AssertionError("asyncpg: duplicate key accepted")
        except asyncpg.UniqueViolationError:
            pass
        assert await conn.fetchval("SELECT name FROM ap_users WHERE id = $1", 1) == "ann"
        try:
            await conn.fetch("SELECT * FROM ap_no_such_table")
            raise AssertionError("asyncpg: missing table accepted")
        except asyncpg.UndefinedTableError:
            pass
        assert await conn.fetchval("SELECT 1") == 1

        async with conn.transaction():
            await conn.execute("INSERT INTO ap_users (id, name) VALUES (6, 'tx')")
        assert await conn.fetchval("SELECT name FROM ap_users WHERE id = 6") == "tx"
    finally:
        await conn.close()

    pool = await asyncpg.create_pool(min_size=2, max_size=4, **connect_args)
    try:
        async def one(i):
            async with pool.acquire() as c:
                return await c.fetchval("SELECT count(*) FROM ap_users WHERE id <= $1", i)

        got = await asyncio.gather(*(one(i % 7) for i in range(40)))
        assert got == [min(i % 7, 6) for i in range(40)], got
        assert await pool.fetchval("SELECT name FROM ap_users WHERE id = $1", 2) == "bob"
    finally:
        await asyncio.wait_for(pool.close(), 10)


def check_asyncpg():
    asyncio.run(_asyncpg_check())


# ---------------------------------------------------------------------------------------------
# 2. pg8000: native and DB-API.
# ---------------------------------------------------------------------------------------------

def check_pg8000():
    import pg8000.dbapi
    import pg8000.native

    drop("p8n_items", "p8d_items")
    con = pg8000.native.Connection(USER, host=HOST, port=PORT, database=DBNAME, password=PASSWORD)
    try:
        con.run(
            "CREATE TABLE p8n_items (id BIGINT PRIMARY KEY, name TEXT, price DOUBLE PRECISION, qty INT,"
            " ok BOOLEAN, at TIMESTAMP, day DATE)"
        )
        at = datetime.datetime(2024, 3, 4, 5, 6, 7, 123000)
        for i in range(1, 4):
            con.run(
                "INSERT INTO p8n_items VALUES (:id, :name, :price, :qty, :ok, :at, :day)",
                id=i, name=f"item{i}", price=i * 1.5, qty=i * 10, ok=i % 2 == 1,
                at=at + datetime.timedelta(days=i), day=datetime.date(2024, 1, i),
            )
        con.run("INSERT INTO p8n_items VALUES (:id, :name, NULL, NULL, NULL, NULL, NULL)", id=4, name=None)
        rows = con.run("SELECT id, name, price, qty, ok, at, day FROM p8n_items WHERE id = :id", id=2)
        assert rows == [[2, "item2", 3.0, 20, False, at + datetime.timedelta(days=2), datetime.date(2024, 1, 2)]], rows
        assert con.columns[0]["name"] == "id", con.columns
        rows = con.run("SELECT id FROM p8n_items WHERE price > :p ORDER BY id LIMIT :n", p=2.0, n=5)
        assert rows == [[2], [3]], rows
        assert con.run("SELECT name, price FROM p8n_items WHERE id = 4") == [[None, None]]
        assert con.run("SELECT count(*) FROM p8n_items") == [[4]]
        try:
            con.run("INSERT INTO p8n_items (id, name, price, qty, ok, at, day) VALUES (1, 'x', 0, 0, true, NULL, NULL)")
            raise AssertionError("pg8000 native: duplicate key accepted")
        except pg8000.native.DatabaseError as e:
            assert e.args[0]["C"] == "23505", e.args
        try:
            con.run("SELECT * FROM p8n_no_such_table")
            raise AssertionError("pg8000 native: missing table accepted")
        except pg8000.native.DatabaseError as e:
            assert e.args[0]["C"] == "42P01", e.args
        assert con.run("SELECT name FROM p8n_items WHERE id = :id", id=1) == [["item1"]]
        ps = con.prepare("SELECT qty FROM p8n_items WHERE id = :id")
        assert [ps.run(id=i) for i in (1, 3)] == [[[10]], [[30]]]
        ps.close()
    finally:
        con.close()

    conn = pg8000.dbapi.connect(user=USER, host=HOST, port=PORT, database=DBNAME, password=PASSWORD)
    try:
        cur = conn.cursor()
        cur.execute("CREATE TABLE p8d_items (id BIGINT PRIMARY KEY, name TEXT, score REAL, at TIMESTAMP)")
        conn.commit()
        cur.executemany(
            "INSERT INTO p8d_items VALUES (%s, %s, %s, %s)",
            [(1, "a", 0.5, datetime.datetime(2024, 1, 1)), (2, "b", 1.25, None), (3, None, None, None)],
        )
        conn.commit()
        cur.execute("SELECT id, name, score, at FROM p8d_items WHERE id >= %s ORDER BY id", (2,))
        assert [d[0] for d in cur.description] == ["id", "name", "score", "at"], cur.description
        assert cur.fetchall() == ([2, "b", 1.25, None], [3, None, None, None]), "pg8000 dbapi rows"
        cur.execute("SELECT at FROM p8d_items WHERE id = %s", (1,))
        assert cur.fetchone() == [datetime.datetime(2024, 1, 1)]
        try:
            cur.execute("INSERT INTO p8d_items VALUES (%s, %s, %s, %s)", (1, "dup", 0.0, None))
            raise AssertionError("pg8000 dbapi: duplicate key accepted")
        except pg8000.dbapi.DatabaseError as e:
            assert e.args[0]["C"] == "23505", e.args
            conn.rollback()
        cur.execute("SELECT count(*) FROM p8d_items")
        assert cur.fetchone() == [3]
        conn.commit()
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# 3. SQLAlchemy 2 (psycopg driver): inspection, reflection, Core insert/select.
# ---------------------------------------------------------------------------------------------

def _sa_engine(**kw):
    import sqlalchemy as sa

    return sa.create_engine(f"postgresql+psycopg://{SA_URL}", **kw)


def check_sqlalchemy():
    import sqlalchemy as sa

    drop("sa_items")
    engine = _sa_engine(echo=os.environ.get("CLIENTS_CHECK_ECHO") == "1")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(
                "CREATE TABLE sa_items (id BIGINT PRIMARY KEY, name TEXT NOT NULL, price DOUBLE PRECISION,"
                " qty INT, created TIMESTAMP)"
            ))
            conn.commit()

        insp = sa.inspect(engine)
        names = insp.get_table_names()
        assert "sa_items" in names, names
        cols = {c["name"]: c for c in insp.get_columns("sa_items")}
        assert list(cols) == ["id", "name", "price", "qty", "created"], list(cols)
        assert isinstance(cols["id"]["type"], sa.BigInteger), cols["id"]
        assert isinstance(cols["name"]["type"], sa.Text), cols["name"]
        assert isinstance(cols["price"]["type"], sa.Double), cols["price"]
        assert isinstance(cols["qty"]["type"], sa.Integer) and not isinstance(cols["qty"]["type"], sa.BigInteger), cols["qty"]
        assert isinstance(cols["created"]["type"], sa.DateTime), cols["created"]
        assert cols["id"]["nullable"] is False and cols["name"]["nullable"] is False, cols
        assert cols["price"]["nullable"] is True and cols["created"]["nullable"] is True, cols
        pk = insp.get_pk_constraint("sa_items")
        assert pk["constrained_columns"] == ["id"] and pk["name"] == "sa_items_pkey", pk

        meta = sa.MetaData()
        items = sa.Table("sa_items", meta, autoload_with=engine)
        assert [c.name for c in items.columns] == ["id", "name", "price", "qty", "created"], items.columns
        assert [c.name for c in items.primary_key] == ["id"], items.primary_key

        t0 = datetime.datetime(2024, 6, 1, 10, 0)
        with engine.begin() as conn:
            conn.execute(items.insert(), [
                {"id": i, "name": f"n{i}", "price": i * 2.5, "qty": i, "created": t0 + datetime.timedelta(hours=i)}
                for i in range(1, 11)
            ])
            conn.execute(items.insert().values(id=11, name="cheap", price=None, qty=None, created=None))

        with engine.connect() as conn:
            q = (sa.select(items.c.id, items.c.name, items.c.price, items.c.created)
                 .where(items.c.price > 10).where(items.c.name.like("n%"))
                 .order_by(items.c.price.desc()).limit(3))
            got = conn.execute(q).all()
            assert [tuple(r) for r in got] == [
                (10, "n10", 25.0, t0 + datetime.timedelta(hours=10)),
                (9, "n9", 22.5, t0 + datetime.timedelta(hours=9)),
                (8, "n8", 20.0, t0 + datetime.timedelta(hours=8)),
            ], got
            assert conn.execute(sa.select(sa.func.count()).select_from(items)).scalar_one() == 11
            assert conn.execute(
                sa.select(sa.func.count(items.c.price), sa.func.sum(items.c.qty)).where(items.c.id <= 4)
            ).one() == (4, 10)
            row = conn.execute(sa.select(items).where(items.c.id == sa.bindparam("k")), {"k": 11}).one()
            assert row.name == "cheap" and row.price is None and row.created is None, row
    finally:
        engine.dispose()

    # The asyncpg dialect with SQLAlchemy's async engine (which needs greenlet).

    async def async_select():
        from sqlalchemy.ext.asyncio import create_async_engine

        aengine = create_async_engine(f"postgresql+asyncpg://{SA_URL}")
        try:
            async with aengine.connect() as conn:
                res = await conn.execute(sa.text("SELECT name FROM sa_items WHERE id = :id"), {"id": 3})
                assert res.scalar_one() == "n3"
        finally:
            await aengine.dispose()

    asyncio.run(async_select())


# ---------------------------------------------------------------------------------------------
# 4. pandas.read_sql over a SQLAlchemy engine.
# ---------------------------------------------------------------------------------------------

def check_pandas():
    import pandas as pd
    import sqlalchemy as sa

    drop("pd_trades")
    engine = _sa_engine()
    try:
        t0 = datetime.datetime(2024, 2, 1, 9, 0)
        with engine.begin() as conn:
            conn.execute(sa.text(
                "CREATE TABLE pd_trades (id BIGINT PRIMARY KEY, qty INT NOT NULL, px DOUBLE PRECISION NOT NULL,"
                " sym TEXT NOT NULL, ts TIMESTAMP NOT NULL)"
            ))
            conn.execute(
                sa.text("INSERT INTO pd_trades VALUES (:id, :qty, :px, :sym, :ts)"),
                [{"id": i, "qty": i * 100, "px": 10 + i / 4, "sym": "AB" if i % 2 else "CD",
                  "ts": t0 + datetime.timedelta(minutes=i)} for i in range(20)],
            )

        df = pd.read_sql(
            sa.text("SELECT id, qty, px, sym, ts FROM pd_trades WHERE sym = :sym AND ts >= :since ORDER BY id"),
            engine, params={"sym": "AB", "since": t0 + datetime.timedelta(minutes=5)},
        )
        assert list(df["id"]) == [5, 7, 9, 11, 13, 15, 17, 19], df
        assert str(df["id"].dtype) == "int64", df.dtypes
        assert str(df["qty"].dtype) == "int64", df.dtypes
        assert str(df["px"].dtype) == "float64", df.dtypes
        assert pd.api.types.is_datetime64_any_dtype(df["ts"]), df.dtypes
        assert df["ts"].iloc[0] == pd.Timestamp(t0 + datetime.timedelta(minutes=5)), df["ts"]
        assert df["qty"].sum() == 100 * (5 + 7 + 9 + 11 + 13 + 15 + 17 + 19), df
        assert near(float(df["px"].sum()), sum(10 + i / 4 for i in (5, 7, 9, 11, 13, 15, 17, 19))), df
        assert set(df["sym"]) == {"AB"}, df

        # A plain string query with the driver's parameter style, through a Connection.
        with engine.connect() as conn:
            agg = pd.read_sql("SELECT sym, count(*) AS n, sum(qty) AS q FROM pd_trades WHERE id < %(n)s"
                              " GROUP BY sym ORDER BY sym", conn, params={"n": 10})
        assert agg.to_dict("list") == {"sym": ["AB", "CD"], "n": [5, 5], "q": [2500, 2000]}, agg
        assert str(agg["n"].dtype) == "int64" and str(agg["q"].dtype) == "int64", agg.dtypes

        # read_sql_table reflects the table through SQLAlchemy.
        full = pd.read_sql_table("pd_trades", engine)
        assert len(full) == 20 and pd.api.types.is_datetime64_any_dtype(full["ts"]), full.dtypes
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------
# 5. polars.read_database over a SQLAlchemy connection.
# ---------------------------------------------------------------------------------------------

def check_polars():
    import polars as pl
    import sqlalchemy as sa

    drop("pl_scores")
    engine = _sa_engine()
    try:
        t0 = datetime.datetime(2024, 4, 1)
        with engine.begin() as conn:
            conn.execute(sa.text(
                "CREATE TABLE pl_scores (id BIGINT PRIMARY KEY, score DOUBLE PRECISION, label TEXT,"
                " ok BOOLEAN, ts TIMESTAMP)"
            ))
            conn.execute(
                sa.text("INSERT INTO pl_scores VALUES (:id, :score, :label, :ok, :ts)"),
                [{"id": i, "score": i * 0.5, "label": f"l{i % 3}", "ok": i % 2 == 0,
                  "ts": t0 + datetime.timedelta(hours=i)} for i in range(12)],
            )
        with engine.connect() as conn:
            df = pl.read_database("SELECT id, score, label, ok, ts FROM pl_scores ORDER BY id", connection=conn)
            assert df.height == 12, df
            assert df.schema["id"] == pl.Int64, df.schema
            assert df.schema["score"] == pl.Float64, df.schema
            assert df.schema["label"] == pl.String, df.schema
            assert df.schema["ok"] == pl.Boolean, df.schema
            assert isinstance(df.schema["ts"], pl.Datetime), df.schema
            assert df["score"].sum() == 33.0, df
            assert df["ts"][3] == t0 + datetime.timedelta(hours=3), df

            df = pl.read_database(
                sa.text("SELECT label, count(*) AS n FROM pl_scores WHERE id >= :lo GROUP BY label ORDER BY label"),
                connection=conn, execute_options={"parameters": {"lo": 6}},
            )
            assert df.rows() == [("l0", 2), ("l1", 2), ("l2", 2)], df
    finally:
        engine.dispose()

    try:
        import connectorx  # noqa: F401
    except ImportError:
        try:
            import adbc_driver_postgresql  # noqa: F401
        except ImportError:
            SKIPPED.append("polars read_database_uri: needs connectorx or adbc-driver-postgresql, neither installed")
            return
    df = pl.read_database_uri("SELECT count(*) AS n FROM pl_scores", f"postgresql://{SA_URL}")
    assert df["n"][0] == 12, df


# ---------------------------------------------------------------------------------------------
# 6. A batch job reads a day of history (COPY TO STDOUT into pandas and polars).
# ---------------------------------------------------------------------------------------------

def read_day(conninfo, table, day):
    """Read one day of an event table as CSV bytes with COPY ... TO STDOUT (the fastest way out).

    Returns the CSV (with a header line); hand it to pandas.read_csv or polars.read_csv.
    psycopg binds COPY's parameters on the client side, so `%s` placeholders work here.
    """
    start = datetime.datetime.combine(day, datetime.time())
    end = start + datetime.timedelta(days=1)
    buf = io.BytesIO()
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.cursor() as cur:
        with cur.copy(
            f"COPY (SELECT user_id, amount, ts FROM {table} WHERE ts >= %s AND ts < %s ORDER BY ts)"
            " TO STDOUT (FORMAT csv, HEADER)",
            (start, end),
        ) as copy:
            for chunk in copy:
                buf.write(chunk)
    return buf.getvalue()


def check_batch_day():
    import pandas as pd
    import polars as pl

    drop("bj_events")
    day0 = datetime.datetime(2024, 5, 1)
    n_days, per_day = 5, 800
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        conn.execute("CREATE TABLE bj_events (user_id BIGINT NOT NULL, amount DOUBLE PRECISION, ts TIMESTAMP NOT NULL)")
        with conn.cursor() as cur:
            with cur.copy("COPY bj_events (user_id, amount, ts) FROM STDIN") as copy:
                for d in range(n_days):
                    for i in range(per_day):
                        ts = day0 + datetime.timedelta(days=d, seconds=i * 86400 // per_day)
                        amount = None if i % 97 == 0 else (i % 40) * 1.25
                        copy.write_row((i % 50, amount, ts))
        assert conn.execute("SELECT count(*) FROM bj_events").fetchone() == (n_days * per_day,)

        day = datetime.date(2024, 5, 3)
        start = datetime.datetime.combine(day, datetime.time())
        end = start + datetime.timedelta(days=1)
        n, n_amount, total, users = conn.execute(
            "SELECT count(*), count(amount), sum(amount), count(DISTINCT user_id) FROM bj_events"
            " WHERE ts >= %s AND ts < %s", (start, end),
        ).fetchone()
        assert n == per_day, n

    data = read_day(CONNINFO, "bj_events", day)
    assert data.startswith(b"user_id,amount,ts\n"), data[:100]

    pdf = pd.read_csv(io.BytesIO(data), parse_dates=["ts"])
    assert len(pdf) == n and pdf["amount"].count() == n_amount, (len(pdf), pdf["amount"].count(), n, n_amount)
    assert near(float(pdf["amount"].sum()), total), (pdf["amount"].sum(), total)
    assert pdf["user_id"].nunique() == users and str(pdf["user_id"].dtype) == "int64", pdf.dtypes
    assert pd.api.types.is_datetime64_any_dtype(pdf["ts"]), pdf.dtypes
    assert pdf["ts"].min() >= pd.Timestamp(start) and pdf["ts"].max() < pd.Timestamp(end), pdf["ts"].describe()

    plf = pl.read_csv(io.BytesIO(data), try_parse_dates=True)
    assert plf.height == n and plf["amount"].count() == n_amount, plf
    assert near(plf["amount"].sum(), total), (plf["amount"].sum(), total)
    assert plf.schema["user_id"] == pl.Int64 and isinstance(plf.schema["ts"], pl.Datetime), plf.schema
    assert plf["ts"].min() == start and plf["ts"].max() < end, plf


SECTIONS = [
    ("asyncpg", check_asyncpg),
    ("pg8000", check_pg8000),
    ("sqlalchemy", check_sqlalchemy),
    ("pandas", check_pandas),
    ("polars", check_polars),
    ("batch_day", check_batch_day),
]


def main():
    only = os.environ.get("CLIENTS_CHECK_ONLY")
    for name, fn in SECTIONS:
        if only and name not in only.split(","):
            continue
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            text = str(e).split("\n[SQL:")[0].strip()  # SQLAlchemy appends the whole statement
            sqlstate = getattr(getattr(e, "orig", e), "sqlstate", None)
            msg = f"{name}: {type(e).__module__}.{type(e).__name__}{f' [{sqlstate}]' if sqlstate else ''}: {text[:400]}"
            if not RUN_ALL:
                traceback.print_exc()
                sys.exit(f"clients_check FAILED in {msg}")
            FAILURES.append(msg)
            print(f"--- {name} FAILED ---", file=sys.stderr)
            traceback.print_exc()
    for s in SKIPPED:
        print(f"skipped: {s}")
    if FAILURES:
        sys.exit("clients_check FAILED:\n" + "\n".join(f"  {f}" for f in FAILURES))
    print("clients ok")


if __name__ == "__main__":
    main()
