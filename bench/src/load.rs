//! The load test: 64 connections mix point lookups, inserts into an event table feeding a
//! view, view reads and request-time model calls for a bounded time. It fails on any error
//! and on any request that does not answer within 10 s (a stuck connection), and reports
//! throughput, latency percentiles per kind of request and the server's peak RSS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::Mutex;

use crate::measure::{self, record, Result, Rng};
use crate::workloads::{connect, PgSystem};

/// Connections.
const CONNECTIONS: usize = 64;
/// Keys of the keyed table and the view.
const KEYS: i64 = 10_000;
/// A request slower than this counts as a stuck connection.
const STUCK: Duration = Duration::from_secs(10);

const KINDS: [(&str, &str); 4] = [
    ("lookup", "SELECT tier, balance FROM load_acct WHERE user_id = $1"),
    ("insert", "INSERT INTO load_ev VALUES ($1, 1.5)"),
    ("view read", "SELECT n, total FROM load_per_user WHERE user_id = $1"),
    ("model call", "SELECT load_lin(f.n::real, f.total::real, 1.0) FROM load_per_user f WHERE f.user_id = $1"),
];

fn rss_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs the load for `secs` seconds against `sys` (nowdb, whose process is `pid`).
pub async fn run(sys: &PgSystem, secs: u64, pid: u32) -> std::result::Result<Vec<Result>, String> {
    let c = connect(&sys.conn).await?;
    let model = std::fs::read("tests/models/linear.onnx").map_err(|e| format!("tests/models/linear.onnx: {e}"))?;
    c.batch_execute(
        "CREATE TABLE load_acct (user_id bigint PRIMARY KEY, tier bigint, balance double precision);
         CREATE TABLE load_ev (user_id bigint NOT NULL, amount double precision);
         CREATE MATERIALIZED VIEW load_per_user AS SELECT user_id, count(*) AS n, sum(amount) AS total FROM load_ev GROUP BY user_id;",
    )
    .await
    .map_err(|e| e.to_string())?;
    c.execute("CREATE MODEL load_lin FROM $1", &[&model]).await.map_err(|e| e.to_string())?;
    c.batch_execute(&format!(
        "INSERT INTO load_acct SELECT x, x % 5, x * 0.5 FROM generate_series(1, {KEYS}) a(x);
         INSERT INTO load_ev SELECT x, 1.0 FROM generate_series(1, {KEYS}) a(x);"
    ))
    .await
    .map_err(|e| e.to_string())?;

    let rss_start = rss_kib(pid, "VmRSS:").unwrap_or(0);
    let histograms: Arc<Mutex<Vec<Histogram<u64>>>> = Arc::new(Mutex::new(KINDS.iter().map(|_| measure::histogram()).collect()));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for conn in 0..CONNECTIONS {
        let sys_conn = sys.conn.clone();
        let histograms = histograms.clone();
        tasks.push(tokio::spawn(async move {
            let c = connect(&sys_conn).await?;
            let mut statements = Vec::new();
            for (_, sql) in KINDS {
                statements.push(c.prepare(sql).await.map_err(|e| format!("prepare {sql}: {e}"))?);
            }
            let mut local: Vec<Histogram<u64>> = KINDS.iter().map(|_| measure::histogram()).collect();
            let mut rng = Rng::new(conn as u64 + 1);
            let mut i = conn;
            while Instant::now() < deadline {
                let kind = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3][i % 10];
                i += 1;
                let key = 1 + rng.below(KEYS as u64) as i64;
                let t = Instant::now();
                let answer = tokio::time::timeout(STUCK, async {
                    match kind {
                        1 => c.execute(&statements[1], &[&key]).await.map(|_| ()),
                        k => c.query(&statements[k], &[&key]).await.map(|_| ()),
                    }
                })
                .await;
                match answer {
                    Ok(Ok(())) => record(&mut local[kind], t.elapsed()),
                    Ok(Err(e)) => return Err(format!("{} on connection {conn}: {e}", KINDS[kind].0)),
                    Err(_) => return Err(format!("{} on connection {conn} did not answer within {STUCK:?}", KINDS[kind].0)),
                }
            }
            let mut all = histograms.lock().await;
            for (h, l) in all.iter_mut().zip(&local) {
                h.add(l).map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(())
        }));
    }
    let mut peak_sampled = rss_start;
    let sampler = tokio::spawn(async move {
        let mut peak = 0;
        while Instant::now() < deadline {
            peak = peak.max(rss_kib(pid, "VmRSS:").unwrap_or(0));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        peak
    });
    let mut errors = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let elapsed = started.elapsed();
    peak_sampled = peak_sampled.max(sampler.await.unwrap_or(0));
    if !errors.is_empty() {
        return Err(format!("load test: {} connection(s) failed; first: {}", errors.len(), errors[0]));
    }
    let peak_hwm = rss_kib(pid, "VmHWM:").unwrap_or(peak_sampled);
    let note = format!(
        "{CONNECTIONS} connections, {secs} s, 0 errors, none stuck; server RSS {} MiB at start, peak {} MiB (VmHWM over the whole run {} MiB)",
        rss_start / 1024,
        peak_sampled / 1024,
        peak_hwm / 1024
    );
    let all = histograms.lock().await;
    let mut total = measure::histogram();
    for h in all.iter() {
        total.add(h).map_err(|e| e.to_string())?;
    }
    let mut out = vec![Result::from_histogram(&format!("load c={CONNECTIONS} mixed"), sys.name, &total, elapsed, "req/s", &note)];
    for ((kind, _), h) in KINDS.iter().zip(all.iter()) {
        out.push(Result::from_histogram(&format!("load c={CONNECTIONS} {kind}"), sys.name, h, elapsed, "req/s", ""));
    }
    Ok(out)
}
