//! Random SQL: Debian's sqlsmith (which learns the schema, types, operators and functions from
//! the catalogs) sends generated queries to a populated server for a bounded number of
//! queries. Most are refused with an error (PostgreSQL features nowdb does not have); what
//! matters is that the server never panics or crashes and still answers afterwards.

use std::time::Duration;

use nowdb_tests::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlsmith_random_queries_do_not_crash_the_server() {
    let server = TestServer::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE ev (user_id bigint NOT NULL, amount double precision, merchant text, ts timestamp NOT NULL);
         CREATE TABLE acct (user_id bigint PRIMARY KEY, tier text, score real, tags text[]);
         INSERT INTO acct VALUES (1, 'gold', 0.5, ARRAY['a']), (2, NULL, 0.7, NULL), (3, 'bronze', NULL, ARRAY['b', 'c']);
         INSERT INTO ev VALUES (1, 2.5, 'x', '2026-01-01 00:00:00'), (2, 3.5, NULL, '2026-01-01 00:01:00'), (1, NULL, 'y', '2026-01-02 00:00:00');
         CREATE MATERIALIZED VIEW per_user AS SELECT user_id, count(*) AS n, sum(amount) AS total FROM ev GROUP BY user_id;
         CREATE MODEL lin FROM 'linear.onnx';",
    )
    .await
    .unwrap();
    let queries = 300;
    let port = server.port;
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sqlsmith")
            .arg(format!("--target=host=127.0.0.1 port={port} user=nowdb dbname=nowdb"))
            .args([&format!("--max-queries={queries}"), "--seed=20261129", "--verbose"])
            .output()
    });
    let out = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("sqlsmith finished in time")
        .unwrap()
        .expect("sqlsmith runs (scripts/setup.sh installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(stderr.contains("Loading routines...done"), "sqlsmith could not read the catalogs:\n{stderr}");
    assert!(out.status.success(), "sqlsmith failed (a lost connection means a crash):\n{stderr}");
    // The server is alive, answers, and never panicked.
    assert_eq!(c.query_one("SELECT count(*) FROM ev", &[]).await.unwrap().get::<_, i64>(0), 3);
    let log = server.log_text();
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
}
