//! Every SQLSTATE the foundation promises, each followed by a good query on the same
//! connection; plus cancel requests and statement timeouts.

use std::time::Duration;

use nowdb_tests::TestServer;
use tokio_postgres::Client;

async fn expect_code(c: &Client, sql: &str, code: &str) {
    let err = c.simple_query(sql).await.expect_err(sql);
    let db = err.as_db_error().unwrap_or_else(|| panic!("{sql}: not a server error: {err}"));
    assert_eq!(db.code().code(), code, "{sql}: {}", db.message());
    // The connection stays usable.
    let ok = c.query_one("SELECT 41 + 1", &[]).await.expect("query after error");
    assert_eq!(ok.get::<_, i64>(0), 42);
}

async fn expect_code_extended(c: &Client, sql: &str, code: &str) {
    let err = match c.prepare(sql).await {
        Err(e) => e,
        Ok(stmt) => c.execute(&stmt, &[]).await.expect_err(sql),
    };
    let db = err.as_db_error().unwrap_or_else(|| panic!("{sql}: not a server error: {err}"));
    assert_eq!(db.code().code(), code, "{sql}: {}", db.message());
    assert_eq!(c.query_one("SELECT 1::bigint", &[]).await.unwrap().get::<_, i64>(0), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlstates_and_connection_survives() {
    let server = TestServer::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE users (user_id BIGINT PRIMARY KEY, country TEXT, score REAL);
         CREATE TABLE events (user_id BIGINT NOT NULL, amount DOUBLE PRECISION, ts TIMESTAMP NOT NULL);
         INSERT INTO users VALUES (1, 'FR', 0.5);",
    )
    .await
    .unwrap();
    let cases = [
        ("SELEC 1", "42601"),
        ("SELECT * FROM no_such_table", "42P01"),
        ("SELECT no_such_column FROM users", "42703"),
        ("SELECT 1 + 'a'", "42804"),
        ("SELECT 'abc'::int", "22P02"),
        ("INSERT INTO users VALUES (2, 'x', 'not a number')", "22P02"),
        ("INSERT INTO events (amount, ts) VALUES (1, '2024-01-01')", "23502"),
        ("INSERT INTO users VALUES (1, 'DE', 0.1)", "23505"),
        ("UPDATE events SET amount = 0", "0A000"),
        ("CREATE TABLE users (x INT)", "42P07"),
        ("SELECT 1/0", "22012"),
        ("SHOW no_such_setting", "42704"),
    ];
    for (sql, code) in cases {
        expect_code(&c, sql, code).await;
    }
    for (sql, code) in [
        ("SELECT * FROM no_such_table", "42P01"),
        ("SELECT no_such_column FROM users", "42703"),
        ("INSERT INTO users VALUES (1, 'DE', 0.1)", "23505"),
        ("SELEC 1", "42601"),
    ] {
        expect_code_extended(&c, sql, code).await;
    }
    assert_eq!(c.query_one("SELECT count(*) FROM users", &[]).await.unwrap().get::<_, i64>(0), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_request_and_statement_timeout() {
    let server = TestServer::start();
    let c = server.connect().await;
    let slow = "SELECT count(*) FROM generate_series(1, 2000000000) a";
    let token = c.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(tokio_postgres::NoTls).await
    });
    let err = c.simple_query(slow).await.expect_err("canceled");
    assert_eq!(err.as_db_error().map(|e| e.code().code()), Some("57014"), "{err}");
    canceller.await.unwrap().unwrap();
    assert_eq!(c.query_one("SELECT 2::bigint", &[]).await.unwrap().get::<_, i64>(0), 2);

    c.batch_execute("SET statement_timeout = '200ms'").await.unwrap();
    let err = c.simple_query(slow).await.expect_err("timed out");
    assert_eq!(err.as_db_error().map(|e| e.code().code()), Some("57014"), "{err}");
    c.batch_execute("SET statement_timeout = 0").await.unwrap();
    assert_eq!(c.query_one("SELECT 3::bigint", &[]).await.unwrap().get::<_, i64>(0), 3);
}
