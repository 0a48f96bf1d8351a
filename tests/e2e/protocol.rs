//! Simple and extended protocol, types both ways, COPY, transactions, point reads.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use futures::{SinkExt, TryStreamExt};
use nowdb_tests::TestServer;
use tokio_postgres::SimpleQueryMessage;

pub(crate) fn rows_of(messages: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_protocol_parameters_and_binary_types() {
    let server = TestServer::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, flag BOOLEAN, i2 SMALLINT, i4 INT, f4 REAL, f8 DOUBLE PRECISION,
           name TEXT, data BYTEA, d DATE, ts TIMESTAMP, tz TIMESTAMPTZ, emb REAL[], emb8 DOUBLE PRECISION[], n NUMERIC(10,2))",
    )
    .await
    .unwrap();
    let ins = c
        .prepare("INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 12.5)")
        .await
        .unwrap();
    let d = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
    let ts: NaiveDateTime = d.and_hms_micro_opt(12, 34, 56, 789).unwrap();
    let tz: DateTime<Utc> = ts.and_utc();
    for id in 1..=3i64 {
        let n = c
            .execute(
                &ins,
                &[&id, &(id % 2 == 0), &(id as i16), &(id as i32), &1.5f32, &2.25f64, &format!("row {id}"),
                  &vec![0u8, 1, 255], &d, &ts, &tz, &vec![0.5f32, -1.0], &vec![1.0f64, 2.0, 3.0]],
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
    // A named statement executed many times, with a parameter in the key lookup.
    let get = c.prepare("SELECT * FROM t WHERE id = $1").await.unwrap();
    for _ in 0..10 {
        let rows = c.query(&get, &[&2i64]).await.unwrap();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.get::<_, i64>("id"), 2);
        assert!(r.get::<_, bool>("flag"));
        assert_eq!(r.get::<_, i16>("i2"), 2);
        assert_eq!(r.get::<_, i32>("i4"), 2);
        assert_eq!(r.get::<_, f32>("f4"), 1.5);
        assert_eq!(r.get::<_, f64>("f8"), 2.25);
        assert_eq!(r.get::<_, String>("name"), "row 2");
        assert_eq!(r.get::<_, Vec<u8>>("data"), vec![0u8, 1, 255]);
        assert_eq!(r.get::<_, NaiveDate>("d"), d);
        assert_eq!(r.get::<_, NaiveDateTime>("ts"), ts);
        assert_eq!(r.get::<_, DateTime<Utc>>("tz"), tz);
        assert_eq!(r.get::<_, Vec<f32>>("emb"), vec![0.5f32, -1.0]);
        assert_eq!(r.get::<_, Vec<f64>>("emb8"), vec![1.0f64, 2.0, 3.0]);
    }
    // Text results of the same row through the simple protocol.
    let rows = rows_of(&c.simple_query("SELECT id, flag, n, emb, ts FROM t WHERE id = 1").await.unwrap());
    assert_eq!(rows[0][0].as_deref(), Some("1"));
    assert_eq!(rows[0][1].as_deref(), Some("f"));
    assert_eq!(rows[0][2].as_deref(), Some("12.50"));
    // Floats print with a fractional digit (see docs/SQL.md, "Differences from PostgreSQL").
    assert_eq!(rows[0][3].as_deref(), Some("{0.5,-1}"));
    // Parameters in expressions, comparisons, LIMIT.
    let rows = c
        .query("SELECT id, f8 * $1 AS scaled FROM t WHERE id >= $2 ORDER BY id LIMIT $3", &[&2.0f64, &2i64, &1i64])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, f64>("scaled"), 4.5);
    // UPDATE / DELETE with parameters.
    assert_eq!(c.execute("UPDATE t SET name = $1 WHERE id = $2", &[&"renamed", &3i64]).await.unwrap(), 1);
    assert_eq!(c.execute("DELETE FROM t WHERE id = $1", &[&1i64]).await.unwrap(), 1);
    let names: Vec<String> = c.query("SELECT name FROM t ORDER BY id", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(names, vec!["row 2", "renamed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_protocol_multi_statement_empty_and_transactions() {
    let server = TestServer::start();
    let c = server.connect().await;
    let msgs = c
        .simple_query("CREATE TABLE e (a INT NOT NULL, b TEXT); INSERT INTO e VALUES (1, 'x'), (2, NULL); SELECT count(*) FROM e")
        .await
        .unwrap();
    assert_eq!(rows_of(&msgs), vec![vec![Some("2".to_string())]]);
    let counts: Vec<u64> = msgs
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .collect();
    assert_eq!(counts, vec![0, 2, 1]);
    // Empty queries are answered, not errors.
    assert!(rows_of(&c.simple_query("").await.unwrap()).is_empty());
    assert!(rows_of(&c.simple_query(" ; ").await.unwrap()).is_empty());
    // Transaction blocks are accepted; each statement is atomic on its own.
    c.batch_execute("BEGIN; INSERT INTO e VALUES (3, 'y'); COMMIT").await.unwrap();
    let mut tx_client = server.connect().await;
    let tx = tx_client.transaction().await.unwrap();
    tx.execute("INSERT INTO e VALUES ($1, $2)", &[&4i32, &"z"]).await.unwrap();
    tx.commit().await.unwrap();
    let rows = rows_of(&c.simple_query("SELECT a FROM e ORDER BY a").await.unwrap());
    assert_eq!(rows.len(), 4);
    // Postgres names for unnamed columns.
    let stmt = c.prepare("SELECT count(*), 1, 'a'::text, sum(a) FROM e").await.unwrap();
    let names: Vec<&str> = stmt.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, vec!["count", "?column?", "text", "sum"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_in_and_out() {
    let server = TestServer::start();
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE ev (user_id BIGINT NOT NULL, amount DOUBLE PRECISION, merchant TEXT, ts TIMESTAMP NOT NULL)")
        .await
        .unwrap();
    // Text format, through the extended protocol (tokio-postgres' copy_in).
    let sink = c.copy_in("COPY ev FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"1\t10.5\tshop\\ta\t2024-01-01 10:00:00\n2\t\\N\tb")).await.unwrap();
    sink.send(bytes::Bytes::from_static(b"\t2024-01-01 11:00:00\n")).await.unwrap();
    assert_eq!(sink.finish().await.unwrap(), 2);
    // CSV with a header.
    let sink = c.copy_in("COPY ev (user_id, ts, merchant) FROM STDIN WITH (FORMAT csv, HEADER)").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"user_id,ts,merchant\n3,2024-01-02 00:00:00,\"a,b\"\n")).await.unwrap();
    assert_eq!(sink.finish().await.unwrap(), 1);
    // A bad value fails the whole COPY, and the connection stays usable.
    let sink = c.copy_in("COPY ev FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"4\t1\tx\t2024-01-01\nnot_a_number\t1\tx\t2024-01-01\n")).await.unwrap();
    let err = sink.finish().await.unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "22P02");
    let out = c.copy_out("COPY (SELECT user_id, amount, merchant FROM ev ORDER BY user_id) TO STDOUT WITH (FORMAT csv, HEADER)").await.unwrap();
    let chunks: Vec<bytes::Bytes> = out.try_collect().await.unwrap();
    let text: String = chunks.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect();
    assert_eq!(text, "user_id,amount,merchant\n1,10.5,shop\ta\n2,,b\n3,,\"a,b\"\n");
    let out = c.copy_out("COPY ev TO STDOUT").await.unwrap();
    let chunks: Vec<bytes::Bytes> = out.try_collect().await.unwrap();
    assert_eq!(chunks.len(), 3);
    assert!(String::from_utf8_lossy(&chunks[1]).starts_with("2\t\\N\tb\t"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_lookups_are_point_reads_and_time_ranges_prune() {
    let server = TestServer::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE users (user_id BIGINT PRIMARY KEY, country TEXT);
         CREATE TABLE pairs (a INT, b TEXT, v INT, PRIMARY KEY (a, b));
         CREATE TABLE ev (id BIGINT NOT NULL, ts TIMESTAMP NOT NULL);
         INSERT INTO users VALUES (1, 'FR'), (2, 'US'), (3, 'DE');
         INSERT INTO pairs VALUES (1, 'x', 10), (1, 'y', 11), (2, 'x', 12);
         INSERT INTO ev VALUES (1, '2024-01-01 00:00:00'), (2, '2024-01-01 01:00:00');
         INSERT INTO ev VALUES (3, '2024-02-01 00:00:00'), (4, '2024-02-01 01:00:00');",
    )
    .await
    .unwrap();
    let plan = |rows: Vec<Vec<Option<String>>>| rows.into_iter().flatten().flatten().collect::<Vec<_>>().join("\n");
    let p = plan(rows_of(&c.simple_query("EXPLAIN SELECT country FROM users WHERE user_id = 2").await.unwrap()));
    assert!(p.contains("access=point_lookup keys=1"), "{p}");
    let p = plan(rows_of(&c.simple_query("EXPLAIN SELECT * FROM users WHERE user_id IN (1, 3, 99)").await.unwrap()));
    assert!(p.contains("access=point_lookup keys=3"), "{p}");
    let p = plan(rows_of(&c.simple_query("EXPLAIN SELECT * FROM pairs WHERE a = 1 AND b IN ('x', 'y')").await.unwrap()));
    assert!(p.contains("access=point_lookup keys=2"), "{p}");
    let p = plan(rows_of(&c.simple_query("EXPLAIN SELECT * FROM users WHERE country = 'FR'").await.unwrap()));
    assert!(p.contains("access=full_scan"), "{p}");
    let rows = c.query("SELECT a, b, v FROM pairs WHERE a = $1 AND b = $2", &[&1i32, &"y"]).await.unwrap();
    assert_eq!(rows[0].get::<_, i32>("v"), 11);
    // The prepared point read: found, missing, NULL key, and a key of another column order.
    let get = c.prepare("SELECT country, user_id AS id FROM users WHERE user_id = $1").await.unwrap();
    let names: Vec<&str> = get.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, vec!["country", "id"]);
    let rows = c.query(&get, &[&3i64]).await.unwrap();
    assert_eq!((rows[0].get::<_, String>(0), rows[0].get::<_, i64>(1)), ("DE".to_string(), 3));
    assert!(c.query(&get, &[&42i64]).await.unwrap().is_empty());
    assert!(c.query(&get, &[&None::<i64>]).await.unwrap().is_empty());
    let rows = c.query("SELECT v FROM pairs WHERE b = $1 AND a = $2", &[&"x", &2i32]).await.unwrap();
    assert_eq!(rows[0].get::<_, i32>(0), 12);
    let rows = rows_of(&c.simple_query("SELECT user_id FROM users WHERE user_id IN (3, 1, 99) ORDER BY user_id").await.unwrap());
    assert_eq!(rows, vec![vec![Some("1".into())], vec![Some("3".into())]]);
    // Two INSERTs made two stored batches; a February range reads only the second.
    let p = plan(rows_of(
        &c.simple_query("EXPLAIN ANALYZE SELECT id FROM ev WHERE ts >= '2024-02-01 00:00:00'").await.unwrap(),
    ));
    assert!(p.contains("entries_read=1, batches_pruned=1"), "{p}");
    let rows = rows_of(&c.simple_query("SELECT id FROM ev WHERE ts >= '2024-02-01 00:00:00' ORDER BY id").await.unwrap());
    assert_eq!(rows, vec![vec![Some("3".into())], vec![Some("4".into())]]);
    // After DROP and re-CREATE the prepared read sees the new table.
    c.batch_execute("DROP TABLE users; CREATE TABLE users (user_id BIGINT PRIMARY KEY, country TEXT); INSERT INTO users VALUES (3, 'NL')")
        .await
        .unwrap();
    let rows = c.query(&get, &[&3i64]).await.unwrap();
    assert_eq!(rows[0].get::<_, String>(0), "NL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_read_modify_write_updates_lose_nothing() {
    let server = TestServer::start();
    let setup = server.connect().await;
    setup.batch_execute("CREATE TABLE counters (id BIGINT PRIMARY KEY, n BIGINT NOT NULL); INSERT INTO counters VALUES (1, 0)").await.unwrap();
    let mut writers = Vec::new();
    for _ in 0..4 {
        let c = server.connect().await;
        writers.push(tokio::spawn(async move {
            for _ in 0..25 {
                assert_eq!(c.execute("UPDATE counters SET n = n + 1 WHERE id = 1", &[]).await.unwrap(), 1);
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let n: i64 = setup.query_one("SELECT n FROM counters WHERE id = 1", &[]).await.unwrap().get(0);
    assert_eq!(n, 100);
}
