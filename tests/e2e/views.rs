//! Continuous views, differentially: random event streams (inserts, COPY, keyed upserts,
//! updates and deletes, out-of-order times, NULLs) flow into tables read by views of every
//! shape; after every step each view must equal its defining query run as a batch query,
//! also after a clean restart and after SIGKILL under concurrent writes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use nowdb_tests::TestServer;
use tokio_postgres::{Client, SimpleQueryMessage};

const TABLES: &str = "
    CREATE TABLE events (user_id BIGINT, amount DOUBLE PRECISION, kind TEXT, ts TIMESTAMP);
    CREATE TABLE users (user_id BIGINT PRIMARY KEY, country TEXT, score INT);";

/// (name, defining query): one of each shape.
const VIEWS: &[(&str, &str)] = &[
    ("v_filter", "SELECT user_id, amount * 2 AS doubled, upper(kind) AS k FROM events WHERE amount > 50"),
    (
        "v_agg",
        "SELECT user_id, count(*) AS n, count(amount) AS amounts, sum(amount) AS total, avg(amount) AS mean, \
         min(amount) AS lo, max(amount) AS hi, stddev(amount) AS sd, var_pop(amount) AS vp, \
         bool_and(amount > 50) AS all_big, bool_or(amount > 90) AS any_huge, count(DISTINCT kind) AS kinds, \
         last_value(amount ORDER BY ts) AS last_amount FROM events GROUP BY user_id",
    ),
    ("v_keyed", "SELECT country, count(*) AS n, min(score) AS lo, max(score) AS hi, sum(score) AS total, count(DISTINCT score) AS scores FROM users GROUP BY country"),
    (
        "v_tumble",
        "SELECT user_id, window_start, window_end, count(*) AS n, sum(amount) AS total, min(amount) AS lo \
         FROM TUMBLE(events, ts, INTERVAL '1 minute') GROUP BY user_id, window_start, window_end",
    ),
    ("v_hop", "SELECT window_start, count(*) AS n, max(amount) AS hi FROM HOP(events, ts, INTERVAL '1 minute', INTERVAL '3 minutes') GROUP BY window_start"),
    ("v_left", "SELECT e.user_id, e.amount, u.country, u.score FROM events e LEFT JOIN users u ON e.user_id = u.user_id"),
    (
        "v_join_agg",
        "SELECT u.country, count(*) AS n, sum(e.amount) AS total, min(e.amount) AS lo, max(u.score) AS top_score \
         FROM events e JOIN users u ON e.user_id = u.user_id WHERE e.kind <> 'z' GROUP BY u.country",
    ),
    ("v_over_view", "SELECT country, n * 10 AS n10, hi FROM v_keyed WHERE n > 1"),
    (
        "v_window_join",
        "SELECT u.country, window_start, count(*) AS n, sum(e.amount) AS total \
         FROM HOP(events, ts, INTERVAL '1 minute', INTERVAL '2 minutes') e LEFT JOIN users u ON e.user_id = u.user_id \
         GROUP BY u.country, window_start",
    ),
    ("v_global", "SELECT count(*) AS n, sum(amount) AS total, max(ts) AS latest FROM events WHERE kind = 'a'"),
    // Model scores over a view's features (tests/models/linear.onnx and classifier.onnx): a
    // key's score is recomputed exactly when its features change.
    ("v_model", "SELECT user_id, lin(n, total, amounts) AS score, clf(n, total, hi)[2] AS p FROM v_agg"),
];

/// xorshift64*: deterministic, no dependency.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Rows as text cells (NULL as "NULL"), sorted by a rendering with numbers rounded to 6
/// significant digits (so float noise does not reorder them).
async fn rows(c: &Client, sql: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for m in c.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")) {
        if let SimpleQueryMessage::Row(r) = m {
            out.push((0..r.len()).map(|i| r.get(i).unwrap_or("NULL").to_string()).collect::<Vec<_>>());
        }
    }
    let key = |row: &Vec<String>| -> String {
        row.iter().map(|c| c.parse::<f64>().map_or_else(|_| c.clone(), |f| format!("{f:.5e}"))).collect::<Vec<_>>().join("|")
    };
    out.sort_by_key(key);
    out
}

/// Equal, numbers within a relative 1e-9 (running sums and variances round differently).
fn same(a: &[Vec<String>], b: &[Vec<String>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.len() == y.len()
                && x.iter().zip(y).all(|(p, q)| match (p.parse::<f64>(), q.parse::<f64>()) {
                    (Ok(p), Ok(q)) => (p - q).abs() <= 1e-9 * p.abs().max(q.abs()).max(1.0),
                    _ => p == q,
                })
        })
}

async fn check_views(c: &Client, when: &str) {
    for (name, query) in VIEWS {
        let view = rows(c, &format!("SELECT * FROM {name}")).await;
        let batch = rows(c, query).await;
        assert!(same(&view, &batch), "view {name} differs from its query {when}:\nview:  {view:?}\nquery: {batch:?}");
    }
}

/// One random step of the stream.
async fn step(c: &Client, rng: &mut Rng, seq: &mut u64) {
    let kinds = ["a", "b", "c", "z"];
    match rng.below(10) {
        // Events: out-of-order times within ~10 minutes, unique to the microsecond.
        0..=3 => {
            let n = 1 + rng.below(40);
            let mut values = Vec::new();
            for _ in 0..n {
                *seq += 1;
                let user = rng.below(12);
                let amount = if rng.below(10) == 0 { "NULL".to_string() } else { format!("{}", rng.below(1000) as f64 / 10.0) };
                let kind = if rng.below(15) == 0 { "NULL".to_string() } else { format!("'{}'", kinds[rng.below(4) as usize]) };
                let micros = rng.below(600) * 1_000_000 + *seq;
                values.push(format!("({user}, {amount}, {kind}, TIMESTAMP '2024-01-01 00:00:00' + INTERVAL '{micros} microseconds')"));
            }
            c.batch_execute(&format!("INSERT INTO events VALUES {}", values.join(", "))).await.unwrap();
        }
        4..=5 => {
            let n = 1 + rng.below(300);
            let sink = c.copy_in("COPY events FROM STDIN").await.unwrap();
            let mut data = String::new();
            for _ in 0..n {
                *seq += 1;
                let secs = rng.below(600);
                let amount = if rng.below(10) == 0 { "\\N".to_string() } else { format!("{}", rng.below(1000) as f64 / 10.0) };
                data.push_str(&format!(
                    "{}\t{}\t{}\t2024-01-01 00:{:02}:{:02}.{:06}\n",
                    rng.below(12),
                    amount,
                    kinds[rng.below(4) as usize],
                    secs / 60,
                    secs % 60,
                    *seq % 1_000_000
                ));
            }
            let mut sink = Box::pin(sink);
            sink.send(Bytes::from(data)).await.unwrap();
            sink.as_mut().finish().await.unwrap();
        }
        6..=7 => {
            let mut values = Vec::new();
            let mut used = std::collections::HashSet::new();
            for _ in 0..1 + rng.below(4) {
                let id = rng.below(12);
                if used.insert(id) {
                    let country = ["de", "fr", "it", "es"][rng.below(4) as usize];
                    values.push(format!("({id}, '{country}', {})", rng.below(100)));
                }
            }
            c.batch_execute(&format!(
                "INSERT INTO users VALUES {} ON CONFLICT (user_id) DO UPDATE SET country = excluded.country, score = excluded.score",
                values.join(", ")
            ))
            .await
            .unwrap();
        }
        8 => {
            let id = rng.below(12);
            c.batch_execute(&format!("UPDATE users SET score = score + {}, country = 'fr' WHERE user_id <= {id} AND score > 40", rng.below(10)))
                .await
                .unwrap();
        }
        _ => {
            c.batch_execute(&format!("DELETE FROM users WHERE user_id = {}", rng.below(12))).await.unwrap();
        }
    }
}

async fn create_views(c: &Client) {
    c.batch_execute("CREATE MODEL lin FROM 'linear.onnx'; CREATE MODEL clf FROM 'classifier.onnx'").await.unwrap();
    for (name, query) in VIEWS {
        c.batch_execute(&format!("CREATE MATERIALIZED VIEW {name} AS {query}")).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_equal_their_queries_under_random_streams_restart_and_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = TestServer::start_in(&data);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut seq = 0u64;
    {
        let c = server.connect().await;
        c.batch_execute(TABLES).await.unwrap();
        // Some history first: half the views are backfilled, half start empty.
        for _ in 0..6 {
            step(&c, &mut rng, &mut seq).await;
        }
        create_views(&c).await;
        check_views(&c, "after backfill").await;
        for i in 0..40 {
            step(&c, &mut rng, &mut seq).await;
            check_views(&c, &format!("after step {i}")).await;
        }
    }
    assert!(server.terminate(), "clean shutdown; log:\n{}", server.log_text());
    let mut server = TestServer::start_in(&data);
    {
        let c = server.connect().await;
        check_views(&c, "after restart").await;
        for i in 0..15 {
            step(&c, &mut rng, &mut seq).await;
            check_views(&c, &format!("after restart, step {i}")).await;
        }
    }
    // SIGKILL while two writers stream events and user changes.
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..2u64 {
        let c = server.connect().await;
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut rng = Rng(0xDEAD_BEEF + w);
            let mut seq = 10_000_000 * (w + 1);
            while !stop.load(Ordering::Relaxed) {
                let _ = tokio::time::timeout(Duration::from_secs(5), step(&c, &mut rng, &mut seq)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.await;
    }
    let server = TestServer::start_in(&data);
    let c = server.connect().await;
    check_views(&c, "after SIGKILL under concurrent writes").await;
    for i in 0..10 {
        step(&c, &mut rng, &mut seq).await;
        check_views(&c, &format!("after SIGKILL, step {i}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_reads_your_writes_and_point_lookup_is_one_get() {
    let server = TestServer::start();
    let writer = server.connect().await;
    let reader = server.connect().await;
    writer
        .batch_execute(
            "CREATE TABLE tx (card BIGINT, amount DOUBLE PRECISION, ts TIMESTAMP);
             CREATE MATERIALIZED VIEW card_stats AS SELECT card, count(*) AS n, sum(amount) AS total FROM tx GROUP BY card;",
        )
        .await
        .unwrap();
    let lookup = reader.prepare("SELECT n, total FROM card_stats WHERE card = $1").await.unwrap();
    for i in 1..=20i64 {
        writer.execute("INSERT INTO tx VALUES ($1, $2, TIMESTAMP '2024-01-01 00:00:00')", &[&7i64, &(i as f64)]).await.unwrap();
        // Acknowledged means visible, on another connection.
        let row = reader.query_one(&lookup, &[&7i64]).await.unwrap();
        assert_eq!(row.get::<_, i64>(0), i);
        assert_eq!(row.get::<_, f64>(1), (i * (i + 1) / 2) as f64);
    }
    let plan: Vec<String> = reader
        .simple_query("EXPLAIN SELECT n FROM card_stats WHERE card = 7")
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(1).map(str::to_string),
            _ => None,
        })
        .collect();
    assert!(plan.iter().any(|p| p.contains("access=point_lookup keys=1")), "{plan:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_purges_old_windows_and_event_batches() {
    let server = TestServer::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE readings (sensor INT, v DOUBLE PRECISION, ts TIMESTAMP) WITH (retention = '1 hour');
         CREATE MATERIALIZED VIEW per_min WITH (retention = '10 minutes') AS
           SELECT sensor, window_start, window_end, avg(v) AS mean FROM TUMBLE(readings, ts, INTERVAL '1 minute') GROUP BY sensor, window_start, window_end;
         INSERT INTO readings VALUES (1, 1.0, '2024-01-01 00:00:00'), (1, 2.0, '2024-01-01 00:00:30');
         INSERT INTO readings VALUES (1, 3.0, '2024-01-01 05:00:00');",
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let windows = rows(&c, "SELECT window_start FROM per_min").await;
        let events = rows(&c, "SELECT ts FROM readings").await;
        if windows.len() == 1 && events.len() == 1 {
            assert_eq!(windows, vec![vec!["2024-01-01 05:00:00".to_string()]]);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not purged: windows {windows:?}, events {events:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let n = rows(&c, "SELECT rows FROM nowdb_catalog.views WHERE name = 'per_min'").await;
    assert_eq!(n, vec![vec!["1".to_string()]]);
}
