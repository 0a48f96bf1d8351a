//! The model workloads: batch scoring in SQL against the raw ONNX Runtime on the same rows
//! (bench/model_raw.py), and request-time scoring that joins parameters with a view's
//! features in one prepared statement.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};


use crate::measure::{self, record, Result, Rng};
use crate::workloads::{connect, copy_chunks, merge, PgSystem, Scale};

/// The model both sides run: tests/models/logistic.onnx (3 float inputs -> sigmoid).
pub const MODEL: &str = "tests/models/logistic.onnx";
/// Rows per Arrow batch in nowdb (DataFusion's default) and per run in Python.
const BATCH: usize = 8192;
/// Intra-op threads per run on both sides (nowdb runs one per query partition: as many as
/// cores; the Python baseline as many worker threads).
const THREADS: usize = 1;

/// Row `i` of the scoring table; bench/model_raw.py computes the same values.
fn score_row(i: u64, out: &mut String) {
    let a = ((i * 37) % 1000) as f32 / 100.0;
    let b = ((i * 11) % 500) as f32 / 50.0;
    let c = ((i * 7) % 300) as f32 / 30.0;
    let _ = writeln!(out, "{a}\t{b}\t{c}");
}

/// Creates model `fraud` (uploaded as a bytea parameter) and the `scoring` table.
pub async fn setup(sys: &PgSystem, scale: Scale) -> std::result::Result<(), String> {
    let c = connect(&sys.conn).await?;
    let bytes = std::fs::read(MODEL).map_err(|e| format!("{MODEL}: {e}"))?;
    c.execute(&format!("CREATE MODEL fraud FROM $1 WITH (threads = {THREADS})") as &str, &[&bytes]).await.map_err(|e| e.to_string())?;
    c.batch_execute("CREATE TABLE scoring (a REAL, b REAL, c REAL)").await.map_err(|e| e.to_string())?;
    copy_chunks(&c, "COPY scoring FROM STDIN", scale.score_rows, 50_000, score_row).await
}

/// Timed runs per side; the best is reported (both sides, the same way).
const RUNS: usize = 5;

/// `SELECT sum(fraud(a, b, c)) FROM scoring` (best of [`RUNS`]) against the same model, rows,
/// batch size and thread count in onnxruntime's Python API. Both sums must agree.
pub async fn batch_scoring(sys: &PgSystem, scale: Scale, python: &Path) -> std::result::Result<Vec<Result>, String> {
    let c = connect(&sys.conn).await?;
    let mut best = Duration::MAX;
    let mut sum = 0.0;
    for _ in 0..RUNS {
        let start = Instant::now();
        let row = c.query_one("SELECT sum(fraud(a, b, c)) FROM scoring", &[]).await.map_err(|e| e.to_string())?;
        best = best.min(start.elapsed());
        sum = row.get::<_, f64>(0);
    }
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let args = [MODEL.to_string(), scale.score_rows.to_string(), BATCH.to_string(), THREADS.to_string(), workers.to_string()];
    let raw = crate::peers::python_baseline(python, "model_raw.py", &args)?;
    let raw_secs = raw["seconds"].as_f64().ok_or("model_raw.py: no seconds")?;
    let raw_sum = raw["sum"].as_f64().ok_or("model_raw.py: no sum")?;
    if (raw_sum - sum).abs() > 1e-4 * raw_sum.abs().max(1.0) {
        return Err(format!("scores differ: nowdb sum {sum}, onnxruntime sum {raw_sum}"));
    }
    let note = format!(
        "{MODEL}, {} rows, batch {BATCH}, {workers} concurrent runs of {THREADS} intra-op thread; sums agree ({sum:.3})",
        scale.score_rows
    );
    Ok(vec![
        Result::throughput("model batch scoring", sys.name, scale.score_rows, best, "rows/s", &format!("SELECT sum(fraud(a, b, c)) FROM scoring; {note}")),
        Result::throughput(
            "model batch scoring",
            "onnxruntime (Python)",
            scale.score_rows,
            Duration::from_secs_f64(raw_secs),
            "rows/s",
            &format!("InferenceSession.run per batch on in-memory arrays; {note}"),
        ),
    ])
}

/// Prepared `SELECT fraud($2, f.n, f.total) FROM user_stats f WHERE f.user_id = $1` from
/// `conns` connections: request-time scoring of a parameter with a view's features.
pub async fn request_time(sys: &PgSystem, scale: Scale, conns: usize) -> std::result::Result<Result, String> {
    let users = scale.keys.min(scale.events).max(1);
    let deadline = Instant::now() + Duration::from_secs(scale.lookup_secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..conns {
        let c = connect(&sys.conn).await?;
        tasks.push(tokio::spawn(async move {
            let stmt = c
                .prepare("SELECT fraud($2, f.n, f.total) FROM user_stats f WHERE f.user_id = $1")
                .await
                .map_err(|e| e.to_string())?;
            let mut h = measure::histogram();
            let mut rng = Rng::new(0x5eed + t as u64);
            while Instant::now() < deadline {
                let k = rng.below(users) as i64;
                let amount = (rng.below(10_000) as f32) / 100.0;
                let t0 = Instant::now();
                let rows = c.query(&stmt, &[&k, &amount]).await.map_err(|e| e.to_string())?;
                record(&mut h, t0.elapsed());
                if rows.len() != 1 || rows[0].get::<_, Option<f32>>(0).is_none() {
                    return Err(format!("user {k}: no score"));
                }
            }
            Ok::<_, String>(h)
        }));
    }
    let all = merge(tasks).await?;
    Ok(Result::from_histogram(&format!("request-time scoring c={conns}"), sys.name, &all, start.elapsed(), "requests/s", "fraud($2, f.n, f.total) over user_stats"))
}
