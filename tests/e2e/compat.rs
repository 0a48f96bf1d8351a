//! Differential SQL: the `tests/compat` files, whose expected results are PostgreSQL 15's
//! (`tests/python/slt_from_pg.py --pg`), run against a real PostgreSQL and against nowdb, each
//! in the simple and the extended protocol. Records where nowdb differs are pinned in pairs
//! (`skipif nowdb` on PostgreSQL's answer, `onlyif nowdb` on nowdb's) and explained in
//! docs/COMPATIBILITY.md.

use std::path::{Path, PathBuf};

use nowdb_tests::postgres::Postgres;
use nowdb_tests::slt::{PgSlt, Protocol};
use nowdb_tests::TestServer;

fn compat_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("compat")
}

fn compat_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(compat_dir())
        .expect("tests/compat")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in tests/compat");
    files
}

/// The shared dataset: one statement per `;`-terminated line.
fn setup_statements() -> Vec<String> {
    let text = std::fs::read_to_string(compat_dir().join("setup.sql")).expect("tests/compat/setup.sql");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .map(|l| l.trim_end_matches(';').to_string())
        .collect()
}

async fn connect(conn_str: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(conn_str, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// Runs every file against the server at `conn_str` under `label`; returns the failures.
async fn run_suite(conn_str: &str, label: &str, protocol: Protocol) -> Vec<String> {
    let mut failures = Vec::new();
    for file in compat_files() {
        let setup = connect(conn_str).await;
        for stmt in setup_statements() {
            if let Err(e) = setup.simple_query(&stmt).await {
                failures.push(format!("{label}: setup `{stmt}`: {e}"));
            }
        }
        let conn = conn_str.to_string();
        let mut runner = sqllogictest::Runner::new(move || {
            let conn = conn.clone();
            async move { Ok::<_, nowdb_tests::slt::SltError>(PgSlt::new(connect(&conn).await, protocol)) }
        });
        runner.add_label(label);
        if let Err(e) = runner.run_file_async(&file).await {
            failures.push(format!("{label} ({protocol:?} protocol) {}:\n{e}", short(&file)));
        }
    }
    failures
}

fn short(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn differential_sql_against_postgres() {
    let pg = Postgres::start().expect("PostgreSQL 15 server binaries (scripts/setup.sh installs postgresql-15)");
    let server = TestServer::start();
    let mut failures = Vec::new();
    for protocol in [Protocol::Simple, Protocol::Extended] {
        // PostgreSQL first: the expected results must be PostgreSQL's own.
        failures.extend(run_suite(&pg.conn_str(), "postgres", protocol).await);
        failures.extend(run_suite(&server.conn_str(), "nowdb", protocol).await);
    }
    assert!(failures.is_empty(), "{} failures:\n{}\nnowdb log:\n{}", failures.len(), failures.join("\n\n"), server.log_text());
}

/// `COPY ... TO STDOUT` in the binary and CSV formats gives PostgreSQL's bytes exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_out_formats_match_postgres_byte_for_byte() {
    use futures::TryStreamExt;

    let pg = Postgres::start().expect("PostgreSQL 15 server binaries (scripts/setup.sh installs postgresql-15)");
    let server = TestServer::start();
    let setup = [
        "CREATE TABLE feats (id BIGINT PRIMARY KEY, name TEXT, score DOUBLE PRECISION, r REAL, ok BOOLEAN, seen TIMESTAMP, d DATE, emb REAL[])",
        "INSERT INTO feats VALUES (1, 'a,b \"q\"', 2.0, 0.5, true, '2024-01-01 10:00:00.25', '2024-02-29', ARRAY[1.0, 0.25]::REAL[]), \
         (2, '', 1e20, 3, false, '2024-01-02 00:00:00', '1999-12-31', ARRAY[]::REAL[]), \
         (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL), (4, 'é', 0.1, 1e-7, true, '1970-01-01 00:00:00', '2000-01-01', ARRAY[-2.5]::REAL[])",
    ];
    let mut outputs = Vec::new();
    for conn_str in [pg.conn_str(), server.conn_str()] {
        let client = connect(&conn_str).await;
        for stmt in setup {
            client.batch_execute(stmt).await.unwrap_or_else(|e| panic!("{conn_str}: {stmt}: {e}"));
        }
        let mut per_format = Vec::new();
        for format in ["binary", "csv, HEADER", "text"] {
            let sql = format!("COPY (SELECT * FROM feats ORDER BY id) TO STDOUT (FORMAT {format})");
            let chunks: Vec<bytes::Bytes> = client.copy_out(&sql).await.expect("copy out").try_collect().await.expect("copy data");
            per_format.push((format, chunks.concat()));
        }
        let empty: Vec<bytes::Bytes> = client
            .copy_out("COPY (SELECT id FROM feats WHERE id > 100) TO STDOUT (FORMAT binary)")
            .await
            .expect("copy out")
            .try_collect()
            .await
            .expect("copy data");
        per_format.push(("binary, no rows", empty.concat()));
        outputs.push(per_format);
    }
    for ((format, pg_bytes), (_, nowdb_bytes)) in outputs[0].iter().zip(&outputs[1]) {
        assert_eq!(
            nowdb_bytes,
            pg_bytes,
            "COPY TO STDOUT (FORMAT {format}) differs:\nPostgreSQL: {}\nnowdb:      {}",
            String::from_utf8_lossy(pg_bytes).escape_debug(),
            String::from_utf8_lossy(nowdb_bytes).escape_debug()
        );
    }
}
