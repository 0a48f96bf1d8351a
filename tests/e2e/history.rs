//! Point-in-time correctness: during a replayed ingest, the answers of online point lookups
//! are recorded (key k after the events up to time t were written); afterwards the training
//! set built with the temporal join for those (k, t) must equal them row for row, also after
//! a restart. Plus exports read back by another engine, and the plans behind them.

use std::process::Command;

use bytes::Bytes;
use futures::{SinkExt, TryStreamExt};
use nowdb_tests::TestServer;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use crate::protocol::rows_of;

use crate::views::Rng;

const SCHEMA: &str = "
    CREATE TABLE events (user_id BIGINT, amount DOUBLE PRECISION, ts TIMESTAMP);
    CREATE TABLE users (user_id BIGINT PRIMARY KEY, tier TEXT);
    CREATE MATERIALIZED VIEW feat AS SELECT user_id, count(*) AS n, sum(amount) AS total, min(amount) AS lo,
        max(amount) AS hi, last_value(amount ORDER BY ts) AS last_amount FROM events GROUP BY user_id;
    CREATE MATERIALIZED VIEW tier_feat AS SELECT u.tier, count(*) AS n, sum(e.amount) AS total
        FROM events e JOIN users u ON e.user_id = u.user_id GROUP BY u.tier;
    CREATE TABLE labels (user_id BIGINT, ts TIMESTAMP, step INT);
    CREATE TABLE tier_labels (tier TEXT, ts TIMESTAMP, step INT);";

const USERS: u64 = 12;
const TIERS: [&str; 3] = ["gold", "silver", "bronze"];

/// One recorded online answer: the features of `key` after step `step`.
type Answer = (i32, Vec<Option<String>>);

fn base_time() -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2026, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).expect("date")
}

async fn copy_events(c: &Client, rows: &[(u64, f64, chrono::NaiveDateTime)]) {
    let sink = c.copy_in("COPY events (user_id, amount, ts) FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    let text: String = rows.iter().map(|(u, a, t)| format!("{u}\t{a}\t{t}\n")).collect();
    sink.send(Bytes::from(text)).await.unwrap();
    sink.finish().await.unwrap();
}

/// The training set for the recorded (key, time) pairs, through the temporal joins.
async fn training_sets(c: &Client) -> (Vec<Answer>, Vec<Answer>) {
    let by_user = rows_of(
        &c.simple_query(
            "SELECT l.step, l.user_id, f.n, f.total, f.lo, f.hi, f.last_amount FROM labels l \
             LEFT JOIN feat FOR SYSTEM_TIME AS OF l.ts AS f ON f.user_id = l.user_id ORDER BY l.step, l.user_id",
        )
        .await
        .unwrap(),
    );
    let by_tier = rows_of(
        &c.simple_query(
            "SELECT l.step, l.tier, f.n, f.total FROM tier_labels l \
             LEFT JOIN tier_feat FOR SYSTEM_TIME AS OF l.ts AS f ON f.tier = l.tier ORDER BY l.step, l.tier",
        )
        .await
        .unwrap(),
    );
    let answers = |rows: Vec<Vec<Option<String>>>| -> Vec<Answer> {
        let mut a: Vec<Answer> = rows.into_iter().map(|r| (r[0].as_deref().unwrap_or("0").parse().unwrap(), r[1..].to_vec())).collect();
        a.sort();
        a
    };
    (answers(by_user), answers(by_tier))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_in_time_join_reproduces_online_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = TestServer::start_in(&data);
    let c = server.connect().await;
    c.batch_execute(SCHEMA).await.unwrap();
    let lookup_user = c.prepare("SELECT user_id, n, total, lo, hi, last_amount FROM feat WHERE user_id = $1").await.unwrap();
    let lookup_tier = c.prepare("SELECT tier, n, total FROM tier_feat WHERE tier = $1").await.unwrap();
    let mut rng = Rng(0x5eed_1234_abcd);
    let (mut online_users, mut online_tiers): (Vec<Answer>, Vec<Answer>) = (Vec::new(), Vec::new());
    let mut t = base_time();
    for step in 1..=60i32 {
        // Events strictly after the previous step's time, out of order within the step.
        let end = t + chrono::Duration::seconds(10);
        let n = 1 + rng.next() % 6;
        let events: Vec<(u64, f64, chrono::NaiveDateTime)> = (0..n)
            .map(|_| {
                let at = t + chrono::Duration::seconds(1 + (rng.next() % 10) as i64);
                (1 + rng.next() % USERS, (rng.next() % 1000) as f64 / 4.0, at)
            })
            .collect();
        match rng.next() % 3 {
            0 => copy_events(&c, &events).await,
            1 => {
                for (u, a, at) in &events {
                    c.execute("INSERT INTO events VALUES ($1, $2, $3)", &[&(*u as i64), a, at]).await.unwrap();
                }
            }
            _ => {
                let values: Vec<String> = events.iter().map(|(u, a, at)| format!("({u}, {a}, '{at}')")).collect();
                c.batch_execute(&format!("INSERT INTO events VALUES {}", values.join(", "))).await.unwrap();
            }
        }
        // Dimension changes, stamped at the stream's current time.
        if rng.next().is_multiple_of(4) {
            let user = 1 + rng.next() % USERS;
            let tier = TIERS[(rng.next() % 3) as usize];
            if rng.next().is_multiple_of(5) {
                c.execute("DELETE FROM users WHERE user_id = $1", &[&(user as i64)]).await.unwrap();
            } else {
                c.execute(
                    "INSERT INTO users VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET tier = excluded.tier",
                    &[&(user as i64), &tier],
                )
                .await
                .unwrap();
            }
        }
        t = end;
        // Online answers now, recorded with the step's time.
        for _ in 0..3 {
            let user = (1 + rng.next() % (USERS + 2)) as i64;
            let rows = c.query(&lookup_user, &[&user]).await.unwrap();
            let values = match rows.first() {
                Some(r) => vec![
                    Some(r.get::<_, i64>(1).to_string()),
                    r.get::<_, Option<f64>>(2).map(|v| v.to_string()),
                    r.get::<_, Option<f64>>(3).map(|v| v.to_string()),
                    r.get::<_, Option<f64>>(4).map(|v| v.to_string()),
                    r.get::<_, Option<f64>>(5).map(|v| v.to_string()),
                ],
                None => vec![None; 5],
            };
            c.execute("INSERT INTO labels VALUES ($1, $2, $3)", &[&user, &t, &step]).await.unwrap();
            let mut answer = vec![Some(user.to_string())];
            answer.extend(values);
            online_users.push((step, answer));
        }
        let tier = TIERS[(rng.next() % 3) as usize];
        let rows = c.query(&lookup_tier, &[&tier]).await.unwrap();
        let values = match rows.first() {
            Some(r) => vec![Some(r.get::<_, i64>(1).to_string()), r.get::<_, Option<f64>>(2).map(|v| v.to_string())],
            None => vec![None; 2],
        };
        c.execute("INSERT INTO tier_labels VALUES ($1, $2, $3)", &[&tier as &(dyn ToSql + Sync), &t, &step]).await.unwrap();
        let mut answer = vec![Some(tier.to_string())];
        answer.extend(values);
        online_tiers.push((step, answer));
    }
    online_users.sort();
    online_tiers.sort();
    // The simple protocol prints floats as text; bring the recorded ones to the same form.
    let normalize = |answers: Vec<Answer>| -> Vec<Answer> {
        answers
            .into_iter()
            .map(|(s, row)| (s, row.into_iter().map(|v| v.map(|v| v.parse::<f64>().map_or(v.clone(), |f| f.to_string()))).collect()))
            .collect()
    };
    let (online_users, online_tiers) = (normalize(online_users), normalize(online_tiers));
    let (users, tiers) = training_sets(&c).await;
    assert_eq!(normalize(users), online_users, "per-user training set differs from the online answers");
    assert_eq!(normalize(tiers), online_tiers, "per-tier training set differs from the online answers");
    assert!(online_users.iter().any(|(_, r)| r[1].is_none()), "some lookups should find no features yet");

    // The history is durable: the same training set after a restart.
    drop(c);
    assert!(server.terminate());
    let server = TestServer::start_in(&data);
    let c = server.connect().await;
    let (users, tiers) = training_sets(&c).await;
    assert_eq!(normalize(users), online_users, "after restart");
    assert_eq!(normalize(tiers), online_tiers, "after restart");

    // The join is planned as an ASOF join over the history, never a nested loop.
    let plan = rows_of(
        &c.simple_query("EXPLAIN SELECT l.step, f.n FROM labels l JOIN feat FOR SYSTEM_TIME AS OF l.ts AS f ON f.user_id = l.user_id")
            .await
            .unwrap(),
    );
    let plan: String = plan.into_iter().flatten().flatten().collect::<Vec<_>>().join("\n");
    assert!(plan.contains("AsOfJoinExec: type=Inner, method=hash_sorted_search"), "{plan}");
    assert!(plan.contains("access=history changes"), "{plan}");
    assert!(!plan.contains("NestedLoop") && !plan.contains("CrossJoin"), "{plan}");
}

fn python() -> std::path::PathBuf {
    match std::env::var("NOWDB_PYTHON") {
        Ok(p) => p.into(),
        Err(_) => std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_are_read_back_by_duckdb() {
    let server = TestServer::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE events (user_id BIGINT, amount DOUBLE PRECISION, kind TEXT, ts TIMESTAMP);
         CREATE MATERIALIZED VIEW feat AS SELECT user_id, count(*) AS n, sum(amount) AS total FROM events GROUP BY user_id;",
    )
    .await
    .unwrap();
    // 50,000 events in 25 writes (several stored batches to stream).
    for chunk in 0..25 {
        let rows: Vec<(u64, f64, chrono::NaiveDateTime)> = (0..2000u64)
            .map(|i| {
                let n = chunk * 2000 + i;
                (n % 500, (n % 97) as f64 * 0.5, base_time() + chrono::Duration::seconds(n as i64))
            })
            .collect();
        copy_events(&c, &rows).await;
    }
    // An event table as of a time reads only the stored batches that can hold it.
    let plan = rows_of(
        &c.simple_query("EXPLAIN ANALYZE SELECT count(*) FROM events FOR SYSTEM_TIME AS OF TIMESTAMP '2026-01-01 01:00:00'").await.unwrap(),
    );
    let plan: String = plan.into_iter().flatten().flatten().collect::<Vec<_>>().join("\n");
    assert!(plan.contains("entries_read=2, batches_pruned=23"), "{plan}");
    let at = "2026-01-01 05:00:00";
    let query = format!("SELECT * FROM feat FOR SYSTEM_TIME AS OF TIMESTAMP '{at}'");
    let expected = rows_of(&c.simple_query(&format!("SELECT count(*), sum(n), sum(total) FROM ({query})")).await.unwrap());
    let n = c.execute(&format!("COPY ({query}) TO 'pit/feat.parquet' (FORMAT parquet)"), &[]).await.unwrap();
    assert_eq!(n, 500);
    c.batch_execute(&format!("COPY ({query}) TO 'pit/feat.csv' (FORMAT csv, HEADER)")).await.unwrap();
    c.batch_execute("COPY events TO 'events.txt'").await.unwrap();
    let dir = server.export_dir();
    let script = format!(
        "import duckdb\n\
         print(duckdb.sql(\"SELECT count(*), sum(n), sum(total) FROM '{p}'\").fetchall()[0])\n\
         print(duckdb.sql(\"SELECT count(*), sum(n), sum(total) FROM read_csv('{c}', header=true)\").fetchall()[0])\n",
        p = dir.join("pit/feat.parquet").display(),
        c = dir.join("pit/feat.csv").display()
    );
    let out = Command::new(python()).arg("-c").arg(&script).output().expect("run python (scripts/setup.sh installs duckdb into .venv)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let e = &expected[0];
    let want = format!("({}, {}, {})", e[0].as_deref().unwrap(), e[1].as_deref().unwrap(), e[2].as_deref().unwrap());
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(lines, vec![want.clone(), want], "DuckDB reads back the exports");
    // The text export equals COPY TO STDOUT, byte for byte.
    let out = c.copy_out("COPY events TO STDOUT").await.unwrap();
    let chunks: Vec<Bytes> = out.try_collect().await.unwrap();
    let stdout: Vec<u8> = chunks.concat();
    assert_eq!(std::fs::read(dir.join("events.txt")).unwrap(), stdout);
    assert_eq!(stdout.iter().filter(|&&b| b == b'\n').count(), 50_000);
    // A COPY TO STDOUT that fails part way is a clean error.
    let err = match c.copy_out("COPY (SELECT 100 / (user_id - 250) FROM events) TO STDOUT").await {
        Ok(stream) => stream.try_collect::<Vec<Bytes>>().await.unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(err.as_db_error().map(|e| e.code().code()), Some("22012"), "{err}");
    // Nothing is left half-written, and the connection is usable after a refused path.
    let err = c.batch_execute("COPY events TO '../../escape.csv'").await.unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "42501");
    let names: Vec<String> = std::fs::read_dir(dir.join("pit")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.contains("partial")), "{names:?}");
    assert_eq!(rows_of(&c.simple_query("SELECT 1").await.unwrap()), vec![vec![Some("1".into())]]);
}
