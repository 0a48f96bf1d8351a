"""psycopg 3 against a running nowdb: simple and extended protocol, text and binary results."""
import datetime
import sys

import psycopg

conninfo = sys.argv[1]

# prepare_threshold=0: every statement goes through Parse/Bind/Execute as a named statement.
with psycopg.connect(conninfo, autocommit=True, prepare_threshold=0) as conn:
    conn.execute(
        "CREATE TABLE users (user_id BIGINT PRIMARY KEY, country TEXT, score REAL, emb REAL[], seen TIMESTAMP)"
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO users VALUES (%s, %s, %s, %s, %s)",
            [
                (1, "FR", 0.5, [0.1, 0.2], datetime.datetime(2024, 1, 1, 12, 0)),
                (2, "US", 0.75, [1.0, -1.0], None),
            ],
        )
        cur.execute(
            "INSERT INTO users VALUES (%s, %s, %s, %s, %s) ON CONFLICT (user_id) DO UPDATE SET score = excluded.score",
            (2, "US", 0.25, [1.0], None),
        )
    for _ in range(3):
        row = conn.execute("SELECT country, score FROM users WHERE user_id = %s", (2,)).fetchone()
        assert row == ("US", 0.25), row
    with conn.cursor(binary=True) as cur:
        cur.execute("SELECT user_id, score, emb, seen FROM users ORDER BY user_id")
        rows = cur.fetchall()
        assert rows[0][0] == 1 and abs(rows[0][1] - 0.5) < 1e-6, rows
        assert [round(x, 3) for x in rows[0][2]] == [0.1, 0.2], rows
        assert rows[0][3] == datetime.datetime(2024, 1, 1, 12, 0), rows
    try:
        conn.execute("INSERT INTO users VALUES (1, 'DE', 0, NULL, NULL)")
        raise AssertionError("duplicate key accepted")
    except psycopg.errors.UniqueViolation:
        pass
    assert conn.execute("SELECT count(*) FROM users").fetchone() == (2,)

# Default settings: simple protocol first, client-side binding.
with psycopg.connect(conninfo) as conn:
    with conn.cursor() as cur:
        cur.execute("SELECT current_database(), current_schema(), version()")
        db, schema, version = cur.fetchone()
        assert schema == "public", schema
        assert version.startswith("PostgreSQL 15"), version
        cur.execute("SELECT count(*) FROM users WHERE country = %s", ("FR",))
        assert cur.fetchone() == (1,)
    conn.commit()
    info = conn.info
    assert info.server_version >= 150000, info.server_version

print("psycopg ok")
