//! Hostile bytes on the socket: the server answers with an error or closes that connection,
//! never crashes, and keeps serving everyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use nowdb_tests::TestServer;

fn startup_message() -> Vec<u8> {
    startup_with(&[("user", "nowdb"), ("database", "nowdb")])
}

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// Reads backend messages until one with `tag` arrives (or the connection ends); returns the
/// tags seen.
fn read_until(s: &mut TcpStream, tag: u8) -> Vec<u8> {
    let mut tags = Vec::new();
    loop {
        let mut head = [0u8; 5];
        if s.read_exact(&mut head).is_err() {
            return tags;
        }
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len.saturating_sub(4)];
        if s.read_exact(&mut body).is_err() {
            return tags;
        }
        tags.push(head[0]);
        if head[0] == tag {
            return tags;
        }
    }
}

fn connect_raw(server: &TestServer) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn ready(server: &TestServer) -> TcpStream {
    let mut s = connect_raw(server);
    s.write_all(&startup_message()).unwrap();
    assert!(read_until(&mut s, b'Z').ends_with(b"Z"), "no ReadyForQuery after startup");
    s
}

async fn still_serving(server: &TestServer) {
    let c = server.connect().await;
    assert_eq!(c.query_one("SELECT 7::bigint", &[]).await.unwrap().get::<_, i64>(0), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_messages_do_not_hurt_the_server() {
    let server = TestServer::start();

    // Random bytes instead of a startup packet.
    let mut s = connect_raw(&server);
    let _ = s.write_all(&[0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xff, 0xff]);
    let _ = read_until(&mut s, b'E');
    still_serving(&server).await;

    // A startup packet claiming 2 GB.
    let mut s = connect_raw(&server);
    let _ = s.write_all(&i32::MAX.to_be_bytes());
    let _ = s.write_all(&196608i32.to_be_bytes());
    let _ = read_until(&mut s, b'E');
    still_serving(&server).await;

    // After startup: a Query claiming 2 GB is refused without waiting for (or allocating) it.
    let mut s = ready(&server);
    let mut q = vec![b'Q'];
    q.extend_from_slice(&i32::MAX.to_be_bytes());
    q.extend_from_slice(b"SELECT 1");
    let _ = s.write_all(&q);
    let _ = read_until(&mut s, b'Z');
    still_serving(&server).await;

    // Invalid UTF-8 in a query, then a good query on the same connection.
    let mut s = ready(&server);
    s.write_all(&message(b'Q', b"SELECT '\xff\xfe'\0")).unwrap();
    let _ = read_until(&mut s, b'Z');
    s.write_all(&message(b'Q', b"SELECT 1\0")).unwrap();
    // The connection may answer or be closed; either way nothing else is affected.
    let _ = read_until(&mut s, b'Z');
    still_serving(&server).await;

    // Extended-protocol garbage: Bind to a statement that does not exist, then Sync.
    let mut s = ready(&server);
    s.write_all(&message(b'B', b"\0nope\0\0\0\0\0\0\0")).unwrap();
    s.write_all(&message(b'S', b"")).unwrap();
    let tags = read_until(&mut s, b'Z');
    assert!(tags.contains(&b'E'), "expected an ErrorResponse, got {:?}", String::from_utf8_lossy(&tags));
    // Parse without Sync, then recovery.
    s.write_all(&message(b'P', b"\0SELEC broken\0\0\0")).unwrap();
    s.write_all(&message(b'S', b"")).unwrap();
    let tags = read_until(&mut s, b'Z');
    assert!(tags.contains(&b'E'), "{:?}", String::from_utf8_lossy(&tags));
    s.write_all(&message(b'Q', b"SELECT 1\0")).unwrap();
    let tags = read_until(&mut s, b'Z');
    assert!(tags.contains(&b'D'), "{:?}", String::from_utf8_lossy(&tags));

    // Deeply nested SQL is an error, not a stack overflow.
    let c = server.connect().await;
    let deep = format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000));
    let err = c.simple_query(&deep).await.expect_err("too deep");
    assert!(err.as_db_error().is_some(), "{err}");
    still_serving(&server).await;
}

fn startup_with(params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = 196608i32.to_be_bytes().to_vec();
    for (k, v) in params {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    msg.extend(body);
    msg
}

/// The SQLSTATE of the first ErrorResponse among the next messages, if any.
fn error_code(s: &mut TcpStream) -> Option<String> {
    loop {
        let mut head = [0u8; 5];
        s.read_exact(&mut head).ok()?;
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len.saturating_sub(4)];
        s.read_exact(&mut body).ok()?;
        if head[0] == b'E' {
            let mut fields = body.split(|b| *b == 0);
            return fields.find(|f| f.first() == Some(&b'C')).map(|f| String::from_utf8_lossy(&f[1..]).to_string());
        }
    }
}

fn bind_with_param_length(len: i32) -> Vec<u8> {
    let mut b = b"\0s1\0".to_vec(); // portal "", statement "s1"
    b.extend_from_slice(&0i16.to_be_bytes()); // no parameter formats
    b.extend_from_slice(&1i16.to_be_bytes()); // one parameter
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(b"42");
    b.extend_from_slice(&0i16.to_be_bytes()); // no result formats
    message(b'B', &b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_abuse_from_the_issue_list() {
    let server = TestServer::start_env(&[("NOWDB_MAX_MESSAGE_BYTES", "65536")]);

    // A startup packet over 10 KB (a real one: a 20 KB parameter value).
    let mut s = connect_raw(&server);
    let big = "x".repeat(20_000);
    let _ = s.write_all(&startup_with(&[("user", "nowdb"), ("application_name", &big)]));
    assert!(!read_until(&mut s, b'Z').ends_with(b"Z"), "an oversized startup packet must not start a session");
    still_serving(&server).await;

    // Bind with a negative (other than -1 = NULL) or a huge parameter length.
    for len in [-2, -1000, i32::MAX, 1_000_000] {
        let mut s = ready(&server);
        s.write_all(&message(b'P', b"s1\0SELECT $1::bigint\0\0\0")).unwrap();
        s.write_all(&bind_with_param_length(len)).unwrap();
        s.write_all(&message(b'S', b"")).unwrap();
        let tags = read_until(&mut s, b'Z');
        assert!(!tags.contains(&b'2'), "Bind with parameter length {len} was accepted: {:?}", String::from_utf8_lossy(&tags));
        still_serving(&server).await;
    }

    // Parse without Sync, then recovery: after the error, messages up to Sync are skipped
    // (the Query inside is not run), then the connection works.
    let mut s = ready(&server);
    s.write_all(&message(b'P', b"\0SELEC broken\0\0\0")).unwrap();
    s.write_all(&message(b'B', b"\0\0\0\0\0\0\0\0")).unwrap();
    s.write_all(&message(b'E', b"\0\0\0\0\0")).unwrap();
    s.write_all(&message(b'S', b"")).unwrap();
    let tags = read_until(&mut s, b'Z');
    assert_eq!(tags.iter().filter(|t| **t == b'E').count(), 1, "one error, then skipped to Sync: {:?}", String::from_utf8_lossy(&tags));
    s.write_all(&message(b'Q', b"SELECT 1\0")).unwrap();
    let tags = read_until(&mut s, b'Z');
    assert!(tags.contains(&b'D'), "{:?}", String::from_utf8_lossy(&tags));

    // A message over max_message_bytes ends that connection with 54000, before its body is sent.
    let mut s = ready(&server);
    let mut q = vec![b'Q'];
    q.extend_from_slice(&(1_000_000i32).to_be_bytes());
    s.write_all(&q).unwrap();
    assert_eq!(error_code(&mut s).as_deref(), Some("54000"));
    still_serving(&server).await;
    // ... and one just under it works.
    let c = server.connect().await;
    let long = format!("SELECT '{}' AS s", "y".repeat(60_000));
    let answer = c.simple_query(&long).await.unwrap();
    assert_eq!(answer.iter().filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_))).count(), 1);

    // Found by the frontend_messages fuzz target: a password message claiming length 0 makes
    // pgwire's decoder panic; nowdb's framing refuses it first (fuzz/regressions/).
    let crash = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/regressions/frontend_messages/pgwire-password-message-length-zero")).unwrap();
    for first in [false, true] {
        let mut s = if first { connect_raw(&server) } else { ready(&server) };
        let _ = s.write_all(&crash);
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(!server.log_text().contains("panicked"), "{}", server.log_text());
        still_serving(&server).await;
    }

    // Found by fuzzing: pgwire decodes a Query up to its first NUL and takes what follows in
    // the same message as the next message. A message is exactly its contents here, so nothing
    // can be smuggled inside another.
    let mut smuggling = b"SELECT 1\0".to_vec();
    smuggling.extend(message(b'Q', b"CREATE TABLE smuggled (x bigint)\0"));
    let mut s = ready(&server);
    s.write_all(&message(b'Q', &smuggling)).unwrap();
    assert_eq!(error_code(&mut s).as_deref(), Some("08P01"));
    let c = server.connect().await;
    let e = c.query("SELECT * FROM smuggled", &[]).await.unwrap_err();
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("42P01"), "the smuggled statement must not run");

    // A CancelRequest with a wrong key cancels nothing.
    let victim = server.connect().await;
    let slow = tokio::spawn(async move {
        victim.query_one("SELECT count(*) FROM generate_series(1, 3000000) a(x) WHERE x % 7 = 0", &[]).await.map(|r| r.get::<_, i64>(0))
    });
    let mut s = connect_raw(&server);
    let mut cancel = 16i32.to_be_bytes().to_vec();
    cancel.extend_from_slice(&80877102i32.to_be_bytes());
    cancel.extend_from_slice(&12345i32.to_be_bytes());
    cancel.extend_from_slice(&6789i32.to_be_bytes());
    s.write_all(&cancel).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "a cancel request gets no answer");
    assert_eq!(slow.await.unwrap().expect("not canceled by a wrong key"), 428571);
    still_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_where_the_password_is_expected_is_refused() {
    for method in ["scram-sha-256", "md5"] {
        let server = TestServer::start_env(&[("NOWDB_AUTH", method), ("NOWDB_SUPERUSER_PASSWORD", "pw")]);
        let mut s = connect_raw(&server);
        s.write_all(&startup_message()).unwrap();
        // The server asks for a password ('R' = authentication request) ...
        let mut head = [0u8; 5];
        s.read_exact(&mut head).unwrap();
        assert_eq!(head[0], b'R', "{method}: expected an authentication request");
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len - 4];
        s.read_exact(&mut body).unwrap();
        // ... and gets a query instead: refused, connection closed, nothing ran.
        s.write_all(&message(b'Q', b"CREATE TABLE pwned (x bigint)\0")).unwrap();
        assert_eq!(error_code(&mut s).as_deref(), Some("08P01"), "{method}");
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(!rest.contains(&b'Z'), "{method}: no ReadyForQuery after the refusal");
        let admin = {
            let (c, conn) = tokio_postgres::connect(&format!("host=127.0.0.1 port={} user=nowdb password=pw dbname=nowdb", server.port), tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            c
        };
        let e = admin.query("SELECT * FROM pwned", &[]).await.unwrap_err();
        assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("42P01"), "{method}: the query must not have run");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_refuses_the_next_one_with_53300() {
    let server = TestServer::start_env(&[("NOWDB_MAX_CONNECTIONS", "3")]);
    let held = [server.connect().await, server.connect().await, server.connect().await];
    let e = tokio_postgres::connect(&server.conn_str(), tokio_postgres::NoTls).await.err().expect("a fourth connection is refused");
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("53300"), "{e}");
    for c in &held {
        assert_eq!(c.query_one("SELECT 1::bigint", &[]).await.unwrap().get::<_, i64>(0), 1);
    }
    drop(held);
    // Slots are given back when connections close.
    let mut ok = false;
    for _ in 0..50 {
        if tokio_postgres::connect(&server.conn_str(), tokio_postgres::NoTls).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ok, "connections are admitted again after others close");
}
