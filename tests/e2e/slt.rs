//! The `.slt` files under `tests/slt`, each against a fresh server, in both protocols.

use std::path::PathBuf;

use nowdb_tests::slt::{PgSlt, Protocol};
use nowdb_tests::TestServer;

fn slt_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    files
}

async fn run_all(protocol: Protocol) {
    for file in slt_files() {
        let server = TestServer::start();
        let conn_str = server.conn_str();
        let mut runner = sqllogictest::Runner::new(move || {
            let conn_str = conn_str.clone();
            async move {
                let (client, conn) = tokio_postgres::connect(&conn_str, tokio_postgres::NoTls).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Ok::<_, nowdb_tests::slt::SltError>(PgSlt::new(client, protocol))
            }
        });
        // NOWDB_SLT_UPDATE=1 rewrites the expected results with nowdb's (review the diff!).
        if std::env::var("NOWDB_SLT_UPDATE").is_ok_and(|v| v == "1") && protocol == Protocol::Simple {
            runner
                .update_test_file(
                    &file,
                    " ",
                    sqllogictest::default_validator,
                    sqllogictest::default_normalizer,
                    sqllogictest::default_column_validator,
                )
                .await
                .unwrap_or_else(|e| panic!("updating {}: {e}", file.display()));
            continue;
        }
        if let Err(e) = runner.run_file_async(&file).await {
            panic!("{} ({protocol:?} protocol):\n{e}\nserver log:\n{}", file.display(), server.log_text());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slt_simple_protocol() {
    run_all(Protocol::Simple).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slt_extended_protocol() {
    run_all(Protocol::Extended).await;
}
