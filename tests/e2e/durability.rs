//! Restart and SIGKILL: acknowledged rows and catalog entries survive.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nowdb_tests::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_restart_keeps_tables_and_rows() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = TestServer::start_in(&data);
    {
        let c = server.connect().await;
        c.batch_execute(
            "CREATE TABLE users (user_id BIGINT PRIMARY KEY, country TEXT);
             CREATE TABLE events (user_id BIGINT NOT NULL, amount DOUBLE PRECISION);
             INSERT INTO users VALUES (1, 'FR'), (2, 'US');
             INSERT INTO events VALUES (1, 1.5), (2, 2.5), (1, 3.0);
             UPDATE users SET country = 'DE' WHERE user_id = 2;",
        )
        .await
        .unwrap();
    }
    assert!(server.terminate(), "SIGTERM should exit cleanly; log:\n{}", server.log_text());
    let server = TestServer::start_in(&data);
    assert!(server.log_text().contains("recovered table"), "{}", server.log_text());
    let c = server.connect().await;
    let countries: Vec<String> = c
        .query("SELECT country FROM users ORDER BY user_id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(countries, vec!["FR", "DE"]);
    let total: f64 = c.query_one("SELECT sum(amount) FROM events", &[]).await.unwrap().get(0);
    assert_eq!(total, 7.0);
    // The primary key is still enforced, and new appends go after the old ones.
    let err = c.execute("INSERT INTO users VALUES (1, 'X')", &[]).await.unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "23505");
    c.execute("INSERT INTO events VALUES (3, 4.0)", &[]).await.unwrap();
    assert_eq!(c.query_one("SELECT count(*) FROM events", &[]).await.unwrap().get::<_, i64>(0), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = TestServer::start_in(&data);
    let setup = server.connect().await;
    setup
        .batch_execute(
            "CREATE TABLE ev (id BIGINT NOT NULL, payload TEXT);
             CREATE TABLE kv (k BIGINT PRIMARY KEY, v BIGINT)",
        )
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..2i64 {
        let c = server.connect().await;
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = 0i64;
            while !stop.load(Ordering::Relaxed) {
                let id = w * 1_000_000 + i;
                let ok = c.execute("INSERT INTO ev VALUES ($1, 'x')", &[&id]).await.is_ok()
                    && c
                        .execute("INSERT INTO kv VALUES ($1, $1) ON CONFLICT (k) DO UPDATE SET v = excluded.v", &[&id])
                        .await
                        .is_ok();
                if !ok {
                    break;
                }
                acked.push(id);
                i += 1;
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    assert!(acked.len() > 10, "writers made too little progress: {}", acked.len());

    let server = TestServer::start_in(&data);
    let c = server.connect().await;
    let ev: std::collections::HashSet<i64> =
        c.query("SELECT id FROM ev", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    let kv: std::collections::HashSet<i64> =
        c.query("SELECT k FROM kv", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    for id in &acked {
        assert!(ev.contains(id), "acknowledged event {id} lost");
        assert!(kv.contains(id), "acknowledged key {id} lost");
    }
    let n: i64 = c.query_one("SELECT count(*) FROM ev", &[]).await.unwrap().get(0);
    assert_eq!(n as usize, ev.len(), "an event was stored twice");
}
