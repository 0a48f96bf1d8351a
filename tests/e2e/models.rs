//! Models over the wire: uploads from the client, persistence across restart and file
//! deletion, request-time scoring with parameters, versions and in-flight queries, and a
//! server without ONNX Runtime.

use std::path::Path;
use std::time::Duration;

use nowdb_tests::{model_fixtures, TestServer};
use tokio_postgres::Client;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(model_fixtures().join(name)).unwrap()
}

async fn scalar_f32(c: &Client, sql: &str) -> Option<f32> {
    c.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
}

async fn sqlstate(c: &Client, sql: &str) -> String {
    match c.batch_execute(sql).await {
        Ok(()) => panic!("{sql} succeeded"),
        Err(e) => {
            let db = e.as_db_error().unwrap_or_else(|| panic!("{sql}: {e}"));
            format!("{}: {}", db.code().code(), db.message())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_upload_from_the_client_and_survive_restart_and_file_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let (data, models) = (dir.path().join("data"), dir.path().join("models"));
    std::fs::create_dir(&models).unwrap();
    std::fs::copy(model_fixtures().join("linear.onnx"), models.join("linear.onnx")).unwrap();
    let mut server = TestServer::start_with(&data, &models, &[]);
    {
        let c = server.connect().await;
        c.batch_execute("CREATE MODEL lin FROM 'linear.onnx'").await.unwrap();
        // The bytes are nowdb's now: the file can go.
        std::fs::remove_file(models.join("linear.onnx")).unwrap();
        // A bytea parameter (binary format, extended protocol): no server file system needed.
        let bytes = fixture("classifier.onnx");
        c.execute("CREATE MODEL clf FROM $1", &[&bytes]).await.unwrap();
        // A second version of an uploaded model.
        c.execute("CREATE OR REPLACE MODEL clf FROM $1", &[&bytes]).await.unwrap();
        assert_eq!(scalar_f32(&c, "SELECT lin(0.5, 1, -2)").await, Some(-4.5));
        let p: Option<f32> = c.query_one("SELECT clf(0, 0.25, -0.25)[2]", &[]).await.unwrap().get(0);
        assert!((p.unwrap() - 0.8302).abs() < 1e-4, "{p:?}");
        // A parameter source needs a value: the simple protocol has none.
        let err = sqlstate(&c, "CREATE MODEL x FROM $1").await;
        assert!(err.starts_with("42P02: there is no parameter $1"), "{err}");
    }
    assert!(server.terminate(), "clean shutdown; log:\n{}", server.log_text());
    let server = TestServer::start_with(&data, &models, &[]);
    let c = server.connect().await;
    assert_eq!(scalar_f32(&c, "SELECT lin(0.5, 1, -2)").await, Some(-4.5));
    let p: Option<f32> = c.query_one("SELECT clf(0, 0.25, -0.25)[2]", &[]).await.unwrap().get(0);
    assert!((p.unwrap() - 0.8302).abs() < 1e-4);
    let versions: Vec<(String, i64)> = c
        .query("SELECT name, version FROM nowdb_catalog.models ORDER BY name", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(versions, vec![("clf".to_string(), 2), ("lin".to_string(), 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_time_scoring_combines_parameters_with_stored_features() {
    let server = TestServer::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE MODEL fraud FROM 'linear.onnx';
         CREATE TABLE payments (user_id BIGINT, amount DOUBLE PRECISION, ts TIMESTAMP);
         CREATE MATERIALIZED VIEW user_stats AS SELECT user_id, count(*) AS n, sum(amount) AS total FROM payments GROUP BY user_id;
         INSERT INTO payments VALUES (1, 10, '2024-01-01 00:00:00'), (1, 5, '2024-01-01 00:01:00'), (2, 7, '2024-01-01 00:02:00');",
    )
    .await
    .unwrap();
    // One round trip per request, prepared once (pgjdbc-style reuse).
    let stmt = c.prepare("SELECT fraud($2, f.n, f.total) FROM user_stats f WHERE f.user_id = $1").await.unwrap();
    for (user, amount, want) in [(1i64, 100.0f32, 0.5 * 100.0 - 2.0 + 2.0 * 15.0 + 0.25), (2, 3.0, 0.5 * 3.0 - 1.0 + 14.0 + 0.25)] {
        for _ in 0..3 {
            let rows = c.query(&stmt, &[&user, &amount]).await.unwrap();
            assert_eq!(rows.len(), 1);
            let got: f32 = rows[0].get(0);
            assert!((got as f64 - want).abs() < 1e-4, "user {user}: {got} != {want}");
        }
    }
    assert!(c.query(&stmt, &[&99i64, &1.0f32]).await.unwrap().is_empty());
    // `$2::real` types the parameter real, as in PostgreSQL.
    let cast = c.prepare("SELECT fraud($2::real, f.n, f.total) FROM user_stats f WHERE f.user_id = $1").await.unwrap();
    assert_eq!(cast.params()[1], tokio_postgres::types::Type::FLOAT4);
    let got: f32 = c.query_one(&cast, &[&1i64, &100.0f32]).await.unwrap().get(0);
    assert!((got as f64 - (0.5 * 100.0 - 2.0 + 30.0 + 0.25)).abs() < 1e-4, "{got}");
    // The feature read is a primary-key point read, not a scan.
    let plan: String = c
        .query("EXPLAIN SELECT fraud(1.0, f.n, f.total) FROM user_stats f WHERE f.user_id = 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(1))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(plan.contains("point_lookup"), "{plan}");
    // The read is consistent with the features written just before it (read-your-writes).
    c.batch_execute("INSERT INTO payments VALUES (2, 1, '2024-01-01 00:03:00')").await.unwrap();
    let got: f32 = c.query_one(&stmt, &[&2i64, &3.0f32]).await.unwrap().get(0);
    assert!((got as f64 - (0.5 * 3.0 - 2.0 + 16.0 + 0.25)).abs() < 1e-4, "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_in_flight_keeps_the_version_it_started_with() {
    let server = TestServer::start();
    let c = server.connect().await;
    c.batch_execute(
        "CREATE MODEL m FROM 'linear.onnx';
         CREATE TABLE big (a REAL, b REAL, c REAL);",
    )
    .await
    .unwrap();
    // 200k rows, scored in 8192-row batches: long enough to be in flight during the replace.
    for chunk in 0..20 {
        let values: Vec<String> = (0..10_000).map(|i| format!("({}, 1, 0)", (chunk * 10_000 + i) % 7)).collect();
        c.batch_execute(&format!("INSERT INTO big VALUES {}", values.join(","))).await.unwrap();
    }
    let reader = server.connect().await;
    let long = tokio::spawn(async move { reader.query("SELECT a, m(a, b, c) FROM big", &[]).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(30)).await;
    c.batch_execute("CREATE OR REPLACE MODEL m FROM 'logistic.onnx'").await.unwrap();
    assert!(!long.is_finished(), "the scoring query ended before the replace: the test needs more rows");
    let rows = long.await.unwrap();
    assert_eq!(rows.len(), 200_000);
    for r in &rows {
        let (a, y): (f32, f32) = (r.get(0), r.get(1));
        assert_eq!(y, 0.5 * a - 1.0 + 0.25, "row scored by the new version mid-query");
    }
    // New statements use the new version.
    let p = scalar_f32(&c, "SELECT m(0.5, 1, -2)").await.unwrap();
    assert!((p - 0.622_459_3).abs() < 1e-6, "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_onnx_runtime_the_server_runs_and_model_statements_say_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = TestServer::start_in(&data);
    {
        let c = server.connect().await;
        c.batch_execute(
            "CREATE MODEL lin FROM 'linear.onnx';
             CREATE TABLE t (k BIGINT PRIMARY KEY, a REAL);
             INSERT INTO t VALUES (1, 2);",
        )
        .await
        .unwrap();
    }
    assert!(server.terminate());
    let missing = dir.path().join("no-such-libonnxruntime.so");
    let server = TestServer::start_with(&data, &model_fixtures(), &[("ORT_DYLIB_PATH", missing.to_str().unwrap())]);
    let c = server.connect().await;
    let k: i64 = c.query_one("SELECT k FROM t", &[]).await.unwrap().get(0);
    assert_eq!(k, 1);
    let err = sqlstate(&c, "CREATE MODEL other FROM 'linear.onnx'").await;
    assert!(err.starts_with("0A000: ONNX Runtime is not available") && err.contains("pip install onnxruntime"), "{err}");
    assert!(sqlstate(&c, "SELECT lin(1, 2, 3)").await.starts_with("42883"));
    let one: i64 = c.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    assert!(Path::new(&data).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cuda_is_refused_clearly_without_a_gpu_and_auto_falls_back_to_cpu() {
    let server = TestServer::start();
    let c = server.connect().await;
    // With the CPU wheel (scripts/setup.sh) CUDA is missing; with onnxruntime-gpu on a GPU
    // machine the model runs on CUDA instead.
    match c.batch_execute("CREATE MODEL g FROM 'linear.onnx' WITH (device = 'cuda')").await {
        Ok(()) => {
            let device: String = c.query_one("SELECT device FROM nowdb_catalog.models WHERE name = 'g'", &[]).await.unwrap().get(0);
            assert_eq!(device, "cuda");
            c.batch_execute("DROP MODEL g").await.unwrap();
        }
        Err(e) => {
            let db = e.as_db_error().expect("a server error");
            assert_eq!(db.code().code(), "0A000");
            assert!(db.message().contains("CUDA execution provider is not available") && db.message().contains("device = 'auto'"), "{}", db.message());
        }
    }
    c.batch_execute("CREATE MODEL g FROM 'linear.onnx' WITH (device = 'auto')").await.unwrap();
    let device: String = c.query_one("SELECT device FROM nowdb_catalog.models WHERE name = 'g'", &[]).await.unwrap().get(0);
    assert!(device == "cpu" || device == "cuda", "{device}");
    assert_eq!(scalar_f32(&c, "SELECT g(0.5, 1, -2)").await, Some(-4.5));
}
