//! Hostile bytes on the socket: the server answers with an error or closes that connection,
//! never crashes, and keeps serving everyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use nowdb_tests::TestServer;

fn startup_message() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196608i32.to_be_bytes());
    for s in ["user", "nowdb", "database", "nowdb"] {
        body.extend_from_slice(s.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    msg.extend(body);
    msg
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
    let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
    let err = c.simple_query(&deep).await.expect_err("too deep");
    assert!(err.as_db_error().is_some(), "{err}");
    still_serving(&server).await;
}
