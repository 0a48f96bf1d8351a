//! Operations: the Prometheus endpoint, the configuration file and `--help`, online backup
//! and restore, resource limits with their SQLSTATEs, and a full disk at write time.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use nowdb_tests::{free_port, nowdb_binary, TestServer};

pub(crate) fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("metrics endpoint");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The value of the first sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn code(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map(|d| d.code().code().to_string()).unwrap_or_else(|| format!("not a server error: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_metrics_endpoint() {
    let http = free_port();
    let server = TestServer::start_env(&[("NOWDB_HTTP_LISTEN", &format!("127.0.0.1:{http}"))]);
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE ev (user_id bigint, amount double precision);
         CREATE MATERIALIZED VIEW per_user AS SELECT user_id, sum(amount) AS total FROM ev GROUP BY user_id;
         CREATE MODEL lin FROM 'linear.onnx';
         INSERT INTO ev VALUES (1, 1.0), (2, 2.0), (1, 3.0);",
    )
    .await
    .unwrap();
    c.query("SELECT lin(1.0, 2.0, 3.0)", &[]).await.unwrap();
    c.query("SELECT total FROM per_user WHERE user_id = $1", &[&1i64]).await.unwrap();
    let _ = c.query("SELECT * FROM missing", &[]).await.unwrap_err();
    let _ = c.query("SELECT 1 / (user_id - user_id) FROM ev", &[]).await.unwrap_err();

    // EXPLAIN ANALYZE runs the query and reports per-operator metrics.
    let explained = c.simple_query("EXPLAIN ANALYZE SELECT user_id, total FROM per_user WHERE total > 0").await.unwrap();
    let plan: String = explained
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(1).map(str::to_string),
            _ => None,
        })
        .collect();
    assert!(plan.contains("output_rows=2"), "{plan}");

    let response = http_get(http, "/metrics");
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(sample(&response, "nowdb_statement_duration_seconds_count{kind=\"insert\"}").unwrap() >= 1.0, "{response}");
    assert!(sample(&response, "nowdb_statement_duration_seconds_count{kind=\"lookup\"}").unwrap() >= 1.0, "{response}");
    assert!(response.contains("nowdb_statement_duration_seconds_bucket{le="), "latency histograms");
    assert!(sample(&response, "nowdb_statement_errors_total{kind=\"select\"}").unwrap() >= 1.0, "{response}");
    assert!(sample(&response, "nowdb_client_errors_total{sqlstate=\"42P01\"}").unwrap() >= 1.0, "{response}");
    assert_eq!(sample(&response, "nowdb_ingested_rows_total"), Some(3.0), "{response}");
    assert_eq!(sample(&response, "nowdb_connections "), Some(1.0), "{response}");
    assert_eq!(sample(&response, "nowdb_view_events{name=\"per_user\"}"), Some(3.0), "{response}");
    assert!(response.contains("nowdb_view_late_events{name=\"per_user\"} 0"), "{response}");
    assert!(sample(&response, "nowdb_model_rows{name=\"lin\"}").unwrap() >= 1.0, "{response}");
    assert!(response.contains("nowdb_model_batch_p99_seconds{name=\"lin\"}"), "{response}");
    assert!(sample(&response, "nowdb_rocksdb{property=\"estimate-num-keys\"}").is_some(), "{response}");
    assert!(response.trim_end().ends_with("# EOF"), "OpenMetrics text ends with # EOF");
    assert!(http_get(http, "/nope").starts_with("HTTP/1.1 404"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_and_help_document_every_setting() {
    let help = Command::new(nowdb_binary()).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    for flag in [
        "--config", "--listen", "--data-dir", "--durability", "--model-dir", "--export-dir", "--auth", "--superuser-password",
        "--tls-cert", "--tls-key", "--http-listen", "--log-format", "--slow-query-ms", "--max-message-bytes",
        "--max-connections", "--statement-timeout-ms", "--query-memory-bytes", "--max-result-rows", "--max-model-bytes",
        "--max-model-threads", "--min-free-disk-bytes",
    ] {
        assert!(help.contains(flag), "serve --help lacks {flag}:\n{help}");
    }
    let top = Command::new(nowdb_binary()).arg("--help").output().unwrap();
    let top = String::from_utf8_lossy(&top.stdout).to_string();
    assert!(top.contains("serve") && top.contains("backup") && top.contains("TOML"), "{top}");

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = dir.path().join("nowdb.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\nhttp_listen = \"off\"\nlog_format = \"json\"\nslow_query_ms = 1\n\n[limits]\nstatement_timeout_ms = 2500\nmax_result_rows = 5\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("log")).unwrap();
    let mut child = Command::new(nowdb_binary()).args(["serve", "--config"]).arg(&file).stderr(log).spawn().unwrap();
    let mut client = None;
    for _ in 0..200 {
        if let Ok((c, conn)) = tokio_postgres::connect(&format!("host=127.0.0.1 port={port} user=nowdb"), tokio_postgres::NoTls).await {
            tokio::spawn(conn);
            client = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let c = client.expect("server from the config file");
    let timeout: String = c.query_one("SHOW statement_timeout", &[]).await.unwrap().get(0);
    assert_eq!(timeout, "2500ms");
    let e = c.query("SELECT * FROM generate_series(1, 10)", &[]).await.unwrap_err();
    assert_eq!(code(&e), "54000", "max_result_rows from [limits]: {e}");
    assert_eq!(c.query("SELECT * FROM generate_series(1, 5)", &[]).await.unwrap().len(), 5);
    c.query_one("SELECT count(*) FROM generate_series(1, 2000000) a(x) WHERE x % 3 = 0", &[]).await.unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert!(log.lines().filter(|l| !l.trim().is_empty()).all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()), "every line is JSON:\n{log}");
    let slow = log.lines().find(|l| l.contains("slow statement") && l.contains("2000000")).expect("the slow query is logged with its text");
    let json: serde_json::Value = serde_json::from_str(slow).unwrap();
    assert!(json["duration_ms"].is_u64(), "{slow}");
    assert_eq!(json["level"], "WARN", "{slow}");

    // A bad file is refused with the reason.
    std::fs::write(&file, "listen = 5\n").unwrap();
    let out = Command::new(nowdb_binary()).args(["serve", "--config"]).arg(&file).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid type"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_backup_and_restore() {
    let target = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(&target.path().join("data"));
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE ev (user_id bigint, amount double precision);
         CREATE TABLE profile (user_id bigint PRIMARY KEY, tier text);
         CREATE MATERIALIZED VIEW per_user AS SELECT user_id, count(*) AS n FROM ev GROUP BY user_id;
         CREATE MODEL lin FROM 'linear.onnx';
         CREATE USER analyst PASSWORD 'a';
         INSERT INTO profile VALUES (1, 'gold'), (2, 'silver');",
    )
    .await
    .unwrap();
    for i in 0..200i64 {
        c.execute("INSERT INTO ev VALUES ($1, 1.0)", &[&(i % 7)]).await.unwrap();
    }
    // Writers keep going during the backup; the backup holds at least what was acknowledged
    // before it started and is itself consistent (the view equals its query).
    let writer = server.connect().await;
    let busy = tokio::spawn(async move {
        for i in 0..300i64 {
            writer.execute("INSERT INTO ev VALUES ($1, 2.0)", &[&(i % 5)]).await.unwrap();
        }
    });
    let copy = target.path().join("backup");
    let out = Command::new(nowdb_binary()).args(["backup", "--data-dir"]).arg(server.data_dir()).arg("--to").arg(&copy).output().unwrap();
    assert!(out.status.success(), "backup while serving: {}", String::from_utf8_lossy(&out.stderr));
    busy.await.unwrap();
    let again = Command::new(nowdb_binary()).args(["backup", "--data-dir"]).arg(server.data_dir()).arg("--to").arg(&copy).output().unwrap();
    assert!(!again.status.success(), "an existing target is refused");
    let live_total: i64 = c.query_one("SELECT count(*) FROM ev", &[]).await.unwrap().get(0);
    assert_eq!(live_total, 500);

    let restored = TestServer::start_in(&copy);
    let r = restored.connect().await;
    let n: i64 = r.query_one("SELECT count(*) FROM ev", &[]).await.unwrap().get(0);
    assert!((200..=500).contains(&n), "backup has {n} rows");
    let view: i64 = r.query_one("SELECT sum(n)::bigint FROM per_user", &[]).await.unwrap().get(0);
    assert_eq!(view, n, "the restored view equals its query over the restored table");
    assert_eq!(r.query("SELECT tier FROM profile ORDER BY user_id", &[]).await.unwrap().len(), 2);
    assert!(r.query_one("SELECT lin(1.0, 2.0, 3.0)", &[]).await.is_ok(), "models are in the backup");
    drop(restored);

    // Offline: with no server running, the command opens the directory itself.
    let dir = server.data_dir().to_path_buf();
    drop((c, r));
    drop(server);
    let offline = target.path().join("offline");
    let out = Command::new(nowdb_binary()).args(["backup", "--data-dir"]).arg(&dir).arg("--to").arg(&offline).output().unwrap();
    assert!(out.status.success(), "offline backup: {}", String::from_utf8_lossy(&out.stderr));
    let restored = TestServer::start_in(&offline);
    let n: i64 = restored.connect().await.query_one("SELECT count(*) FROM ev", &[]).await.unwrap().get(0);
    assert_eq!(n, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_answer_with_their_sqlstates() {
    let server = TestServer::start_env(&[
        ("NOWDB_QUERY_MEMORY_BYTES", "2000000"),
        ("NOWDB_MAX_MODEL_BYTES", "300"),
        ("NOWDB_MAX_MODEL_THREADS", "2"),
    ]);
    let c = server.connect().await;
    // statement_timeout: 57014, and the session goes on.
    c.batch_execute("SET statement_timeout = 50").await.unwrap();
    let e = c.query("SELECT count(*) FROM generate_series(1, 200000000) a(x) WHERE x % 3 = 0", &[]).await.unwrap_err();
    assert_eq!(code(&e), "57014", "{e}");
    c.batch_execute("RESET statement_timeout").await.unwrap();
    // Per-query memory: 53200.
    let e = c.query("SELECT x, x * 2 AS y FROM generate_series(1, 1000000) a(x)", &[]).await.unwrap_err();
    assert_eq!(code(&e), "53200", "{e}");
    assert_eq!(c.query("SELECT x FROM generate_series(1, 1000) a(x)", &[]).await.unwrap().len(), 1000);
    // Model size and threads.
    let e = c.batch_execute("CREATE MODEL big FROM 'classifier_zipmap.onnx'").await.unwrap_err();
    assert_eq!(code(&e), "54000", "{e}");
    let e = c.batch_execute("CREATE MODEL lin FROM 'linear.onnx' WITH (threads = 64)").await.unwrap_err();
    assert_eq!(code(&e), "22023", "{e}");
    assert_eq!(c.query_one("SELECT 1::bigint", &[]).await.unwrap().get::<_, i64>(0), 1);
}

/// A data directory on a 24 MiB tmpfs with an 8 MiB reserve: writes that would eat into the
/// reserve fail with 53100 (disk full) for the writer, acknowledged rows stay, and after a restart with space the server has every
/// acknowledged row and nothing else. Needs root (mount); skipped with a note otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_fails_the_writer_and_corrupts_nothing() {
    let base = tempfile::tempdir().unwrap();
    let mnt = base.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=24m", "tmpfs"]).arg(&mnt).status().map(|s| s.success()).unwrap_or(false);
    if !mounted {
        eprintln!("SKIPPED disk_full_fails_the_writer_and_corrupts_nothing: cannot mount a tmpfs here (not root?)");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let data = mnt.join("data");
    let mut server = TestServer::start_with(&data, &nowdb_tests::model_fixtures(), &[("NOWDB_MIN_FREE_DISK_BYTES", "8388608")]);
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE blobs (id bigint PRIMARY KEY, payload text);
         CREATE MATERIALIZED VIEW blob_count AS SELECT count(*) AS n FROM blobs;",
    )
    .await
    .unwrap();
    let payload = "z".repeat(256 * 1024);
    let mut acknowledged = Vec::new();
    let mut failure = None;
    for id in 0..400i64 {
        // Incompressible-ish payloads: vary them so compression does not hide the size.
        let p = format!("{id}{payload}{}", id * 7919);
        match c.execute("INSERT INTO blobs VALUES ($1, $2)", &[&id, &p]).await {
            Ok(_) => acknowledged.push(id),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let e = failure.expect("24 MiB must fill up");
    assert_eq!(code(&e), "53100", "disk full is reported to the writer as 53100: {e}\nserver log:\n{}", server.log_text());
    // Reads keep working; the server did not crash.
    let n: i64 = c.query_one("SELECT count(*) FROM blobs", &[]).await.unwrap().get(0);
    assert!(n >= acknowledged.len() as i64, "acknowledged rows are readable");
    drop(c);
    server.kill();
    // Make room (move the data to a bigger disk, as an operator would) and restart.
    let roomy = base.path().join("roomy");
    let status = Command::new("cp").arg("-a").arg(&data).arg(&roomy).status().unwrap();
    assert!(status.success());
    let server = TestServer::start_in(&roomy);
    let c = server.connect().await;
    let ids: Vec<i64> = c.query("SELECT id FROM blobs ORDER BY id", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    for id in &acknowledged {
        assert!(ids.contains(id), "acknowledged row {id} lost");
    }
    assert!(ids.len() <= acknowledged.len() + 1, "at most the failed write may have landed");
    let view: i64 = c.query_one("SELECT n FROM blob_count", &[]).await.unwrap().get(0);
    assert_eq!(view, ids.len() as i64, "the view agrees with its table");
    c.execute("INSERT INTO blobs VALUES (100000, 'after')", &[]).await.expect("writes work again with space");
}
