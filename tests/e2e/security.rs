//! Authentication (SCRAM-SHA-256, md5), TLS, roles and privileges, and SQL injection through
//! parameters, against the real server and real clients (tokio-postgres, psql).

use std::process::Command;

use nowdb_tests::{tls_fixtures, TestServer};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

async fn connect_as(server: &TestServer, user: &str, password: Option<&str>) -> Result<Client, tokio_postgres::Error> {
    let mut conf = format!("host=127.0.0.1 port={} user={user} dbname=nowdb", server.port);
    if let Some(p) = password {
        conf.push_str(&format!(" password={p}"));
    }
    let (client, conn) = tokio_postgres::connect(&conf, NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

fn code(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map(|d| d.code().code().to_string()).unwrap_or_else(|| format!("not a server error: {e}"))
}

async fn setup_roles(c: &Client) {
    c.batch_execute(
        "CREATE TABLE accounts (id bigint PRIMARY KEY, owner text, balance double precision);
         INSERT INTO accounts VALUES (1, 'ann', 10.5), (2, 'bo', 20);
         CREATE TABLE events (user_id bigint, amount double precision);
         INSERT INTO events VALUES (1, 2), (1, 3), (2, 4);
         CREATE MATERIALIZED VIEW spend AS SELECT user_id, sum(amount) AS total, count(*) AS n FROM events GROUP BY user_id;
         CREATE MODEL lin FROM 'linear.onnx';
         CREATE USER analyst WITH PASSWORD 'an4lyst';
         CREATE USER writer WITH PASSWORD 'wr1ter';
         GRANT SELECT ON spend TO analyst;
         GRANT SELECT, INSERT ON events TO writer;",
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_authentication_refuses_wrong_and_missing_passwords() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let server = TestServer::start_with(&dir, &nowdb_tests::model_fixtures(), &[("NOWDB_AUTH", "scram-sha-256"), ("NOWDB_SUPERUSER_PASSWORD", "s3cret")]);
    let admin = connect_as(&server, "nowdb", Some("s3cret")).await.expect("superuser logs in with SCRAM");
    setup_roles(&admin).await;

    let e = connect_as(&server, "nowdb", Some("wrong")).await.expect_err("wrong password refused");
    assert_eq!(code(&e), "28P01", "{e}");
    let e = connect_as(&server, "ghost", Some("whatever")).await.expect_err("unknown user refused");
    assert_eq!(code(&e), "28P01", "an unknown user gets the same answer as a wrong password: {e}");
    assert!(connect_as(&server, "analyst", None).await.is_err(), "no password: no connection");

    let analyst = connect_as(&server, "analyst", Some("an4lyst")).await.expect("analyst logs in");
    let row = analyst.query_one("SELECT current_user, total FROM spend WHERE user_id = 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "analyst");
    assert_eq!(row.get::<_, f64>(1), 5.0);

    // ALTER USER changes the password; the old one stops working.
    admin.batch_execute("ALTER USER analyst WITH PASSWORD 'n3w'").await.unwrap();
    assert_eq!(code(&connect_as(&server, "analyst", Some("an4lyst")).await.err().unwrap()), "28P01");
    connect_as(&server, "analyst", Some("n3w")).await.expect("new password works");
    // DROP USER: gone.
    admin.batch_execute("CREATE USER temp PASSWORD 't'; DROP USER temp").await.unwrap();
    assert_eq!(code(&connect_as(&server, "temp", Some("t")).await.err().unwrap()), "28P01");
    let e = admin.batch_execute("DROP USER temp").await.unwrap_err();
    assert_eq!(code(&e), "42704");
    admin.batch_execute("DROP USER IF EXISTS temp").await.unwrap();
    // A role without LOGIN cannot connect even with a password.
    admin.batch_execute("CREATE ROLE grouprole PASSWORD 'g'").await.unwrap();
    assert_eq!(code(&connect_as(&server, "grouprole", Some("g")).await.err().unwrap()), "28P01");

    // Users survive a restart.
    drop((admin, analyst));
    drop(server);
    let server = TestServer::start_with(&dir, &nowdb_tests::model_fixtures(), &[("NOWDB_AUTH", "scram-sha-256")]);
    let analyst = connect_as(&server, "analyst", Some("n3w")).await.expect("users persist");
    assert_eq!(analyst.query_one("SELECT n FROM spend WHERE user_id = 2", &[]).await.unwrap().get::<_, i64>(0), 1);
    assert!(connect_as(&server, "nowdb", Some("s3cret")).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_authentication_for_old_clients() {
    let server = TestServer::start_env(&[("NOWDB_AUTH", "md5"), ("NOWDB_SUPERUSER_PASSWORD", "m")]);
    let admin = connect_as(&server, "nowdb", Some("m")).await.expect("md5 login");
    admin.batch_execute("CREATE USER old PASSWORD 'client'").await.unwrap();
    let old = connect_as(&server, "old", Some("client")).await.expect("md5 login of a created user");
    assert_eq!(old.query_one("SELECT 1::bigint", &[]).await.unwrap().get::<_, i64>(0), 1);
    assert_eq!(code(&connect_as(&server, "old", Some("x")).await.err().unwrap()), "28P01");

    // An empty password message (what a client without a password might send) is refused.
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut body = 196608i32.to_be_bytes().to_vec();
    body.extend_from_slice(b"user\0old\0\0");
    let mut startup = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    startup.extend(body);
    s.write_all(&startup).unwrap();
    let mut challenge = [0u8; 13];
    s.read_exact(&mut challenge).unwrap();
    assert_eq!((challenge[0], challenge[8]), (b'R', 5), "an md5 challenge");
    s.write_all(&[b'p', 0, 0, 0, 5, 0]).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert_eq!(answer.first(), Some(&b'E'));
    assert!(String::from_utf8_lossy(&answer).contains("28P01"), "{}", String::from_utf8_lossy(&answer));
    assert!(!answer.contains(&b'Z'), "no ReadyForQuery after a refused password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_role_reads_views_and_calls_models_but_cannot_write() {
    let server = TestServer::start();
    let admin = server.connect().await;
    setup_roles(&admin).await;
    // Under trust a connection names its role; the role's privileges apply.
    let analyst = connect_as(&server, "analyst", None).await.unwrap();
    assert_eq!(analyst.query_one("SELECT total FROM spend WHERE user_id = 2", &[]).await.unwrap().get::<_, f64>(0), 4.0);
    let scored = analyst.query_one("SELECT lin(1.0, 2.0, 3.0)", &[]).await.expect("models are callable by every role");
    assert!(scored.get::<_, f32>(0).is_finite());
    for (sql, why) in [
        ("INSERT INTO events VALUES (3, 1)", "write a table"),
        ("UPDATE accounts SET balance = 0", "update"),
        ("DELETE FROM accounts", "delete"),
        ("SELECT * FROM accounts", "read an ungranted table"),
        ("SELECT s.total FROM spend s JOIN accounts a ON a.id = s.user_id", "join an ungranted table"),
        ("SELECT * FROM spend WHERE user_id IN (SELECT id FROM accounts)", "read it in a subquery"),
        ("CREATE TABLE mine (x bigint)", "create a table"),
        ("CREATE MODEL lin2 FROM 'linear.onnx'", "create a model"),
        ("DROP MODEL lin", "drop a model"),
        ("DROP MATERIALIZED VIEW spend", "drop a view"),
        ("CREATE USER sneaky PASSWORD 'x'", "create a user"),
        ("GRANT SELECT ON accounts TO analyst", "grant itself more"),
        ("COPY accounts TO STDOUT", "copy an ungranted table out"),
    ] {
        let e = analyst.batch_execute(sql).await.expect_err(why);
        assert_eq!(code(&e), "42501", "{why}: {e}");
    }
    let e = analyst.query("SELECT * FROM accounts", &[]).await.unwrap_err();
    let message = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_default();
    assert_eq!(message, "permission denied for table accounts");
    // COPY FROM STDIN needs INSERT.
    let e = analyst.simple_query("COPY events FROM STDIN").await.expect_err("copy in refused");
    assert_eq!(code(&e), "42501");
    // The connection stays usable, and catalogs stay readable.
    assert!(!analyst.query("SELECT relname FROM pg_catalog.pg_class", &[]).await.unwrap().is_empty());

    // A writer may insert but not update; what it inserted reaches the view.
    let writer = connect_as(&server, "writer", None).await.unwrap();
    writer.batch_execute("INSERT INTO events VALUES (2, 6)").await.unwrap();
    assert_eq!(code(&writer.batch_execute("UPDATE events SET amount = 0").await.unwrap_err()), "42501");
    assert_eq!(analyst.query_one("SELECT total FROM spend WHERE user_id = 2", &[]).await.unwrap().get::<_, f64>(0), 10.0);

    // REVOKE applies at once, also to a statement prepared before it.
    let stmt = analyst.prepare("SELECT total FROM spend WHERE user_id = $1").await.unwrap();
    analyst.query(&stmt, &[&1i64]).await.unwrap();
    admin.batch_execute("REVOKE SELECT ON spend FROM analyst").await.unwrap();
    assert_eq!(code(&analyst.query(&stmt, &[&1i64]).await.unwrap_err()), "42501");
    // GRANT ... ON ALL TABLES IN SCHEMA public.
    admin.batch_execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO analyst").await.unwrap();
    assert_eq!(analyst.query("SELECT * FROM accounts", &[]).await.unwrap().len(), 2);
    // A dropped and re-created table starts without grants.
    admin.batch_execute("DROP TABLE accounts; CREATE TABLE accounts (id bigint PRIMARY KEY)").await.unwrap();
    assert_eq!(code(&analyst.query("SELECT * FROM accounts", &[]).await.unwrap_err()), "42501");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injection_through_parameters_stays_data() {
    let server = TestServer::start();
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE users (id bigint PRIMARY KEY, name text)").await.unwrap();
    c.execute("INSERT INTO users VALUES (1, 'ann')", &[]).await.unwrap();
    let payloads = [
        "'; DROP TABLE users; --",
        "x' OR '1'='1",
        "ann' --",
        "1; DELETE FROM users",
        "$1",
        "\\'; SELECT 1; --",
        "ann\"; --",
    ];
    for (i, p) in payloads.iter().enumerate() {
        let rows = c.query("SELECT id FROM users WHERE name = $1", &[&p]).await.unwrap();
        assert!(rows.is_empty(), "{p:?} matched rows");
        let id = 100 + i as i64;
        c.execute("INSERT INTO users VALUES ($1, $2)", &[&id, &p]).await.unwrap();
        let back: String = c.query_one("SELECT name FROM users WHERE id = $1", &[&id]).await.unwrap().get(0);
        assert_eq!(&back, p, "stored verbatim");
    }
    assert_eq!(c.query_one("SELECT count(*) FROM users", &[]).await.unwrap().get::<_, i64>(0), 1 + payloads.len() as i64);
    // A payload as the "table name" of a parameter is just a value, never an identifier.
    let e = c.query("SELECT * FROM $1", &[&"users"]).await.unwrap_err();
    assert_eq!(e.as_db_error().map(|d| d.code().clone()), Some(SqlState::SYNTAX_ERROR), "{e}");
}

fn psql(server: &TestServer, conninfo: &str, sql: &str) -> std::process::Output {
    Command::new("psql")
        .arg(format!("host=127.0.0.1 port={} dbname=nowdb {conninfo}", server.port))
        .args(["-X", "-A", "-t", "-c", sql])
        .output()
        .expect("psql runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_sslmode_require() {
    let (cert, key) = tls_fixtures();
    let server = TestServer::start_env(&[
        ("NOWDB_AUTH", "scram-sha-256"),
        ("NOWDB_SUPERUSER_PASSWORD", "tls-pw"),
        ("NOWDB_TLS_CERT", cert.to_str().unwrap()),
        ("NOWDB_TLS_KEY", key.to_str().unwrap()),
    ]);
    // sslmode=require fails unless the server accepts TLS.
    let out = psql(&server, "user=nowdb password=tls-pw sslmode=require", "SELECT 42");
    assert!(out.status.success(), "sslmode=require over TLS: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    // verify-full against the test certificate (CN=localhost, SAN 127.0.0.1) also works.
    let out = psql(&server, &format!("user=nowdb password=tls-pw sslmode=verify-full sslrootcert={}", cert.display()), "SELECT 42");
    assert!(out.status.success(), "verify-full: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    // Plaintext clients still work (sslmode=disable), with the password.
    let out = psql(&server, "user=nowdb password=tls-pw sslmode=disable", "SELECT 1");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = psql(&server, "user=nowdb password=nope sslmode=require", "SELECT 1");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("password authentication failed"));

    // Without TLS configured, sslmode=require is refused by the client (the server says no).
    let plain = TestServer::start();
    let out = psql(&plain, "user=nowdb sslmode=require", "SELECT 1");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SSL"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn trust_off_loopback_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(nowdb_tests::nowdb_binary())
        .args(["serve", "--listen", "0.0.0.0:0", "--http-listen", "off", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("NOWDB_AUTH", "trust")
        .output()
        .unwrap();
    assert!(!out.status.success(), "started with trust on 0.0.0.0");
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to listen on 0.0.0.0:0 with trust authentication"));
}
