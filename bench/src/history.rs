//! The history workloads: what keeping view history costs the write path (the same COPY into
//! the same three views, with and without history), and the point-in-time join of labels
//! against a view's history in nowdb vs DuckDB's `ASOF JOIN` over the same versions
//! (bench/pit_duckdb.py), results compared row for row.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::measure::{Result, Rng};
use crate::workloads::{connect, copy_chunks, PgSystem, Scale};

/// The ingest workload's three views over `table`, history kept or not.
fn views(table: &str, history: bool) -> String {
    let with = if history { "" } else { " WITH (history = false)" };
    format!(
        "CREATE TABLE {table} (user_id BIGINT NOT NULL, amount DOUBLE PRECISION, ts TIMESTAMP NOT NULL);
         CREATE MATERIALIZED VIEW {table}_stats{with} AS SELECT user_id, count(*) AS n, sum(amount) AS total FROM {table} GROUP BY user_id;
         CREATE MATERIALIZED VIEW {table}_minute{with} AS SELECT window_start, count(*) AS n, sum(amount) AS total, max(amount) AS hi
           FROM TUMBLE({table}, ts, INTERVAL '1 minute') GROUP BY window_start;
         CREATE MATERIALIZED VIEW {table}_5min{with} AS SELECT window_start, count(*) AS n, avg(amount) AS mean
           FROM HOP({table}, ts, INTERVAL '1 minute', INTERVAL '5 minutes') GROUP BY window_start;"
    )
}

/// Event `i` of the overhead workload (as the ingest workload's: 100 events per second).
fn event_line(i: u64, users: u64, out: &mut String) {
    let secs = i / 100;
    let _ = writeln!(out, "{}\t{}\t2026-01-01 {:02}:{:02}:{:02}", i % users, (i % 997) as f64 / 10.0, (secs / 3600) % 24, (secs / 60) % 60, secs % 60);
}

/// Rounds per side of the overhead workload, alternating, so that drift (compactions, other
/// load) falls on both sides alike.
const ROUNDS: u64 = 4;

/// COPY of `scale.events / 2` events into three views with history, and the same into three
/// views without, in alternating rounds.
pub async fn write_overhead(sys: &PgSystem, scale: Scale) -> std::result::Result<Vec<Result>, String> {
    let c = connect(&sys.conn).await?;
    c.batch_execute(&views("hist_on", true)).await.map_err(|e| e.to_string())?;
    c.batch_execute(&views("hist_off", false)).await.map_err(|e| e.to_string())?;
    let per_round = (scale.events / 2 / ROUNDS).max(1);
    let users = scale.keys.max(1);
    let (mut on, mut off) = (Duration::ZERO, Duration::ZERO);
    for round in 0..ROUNDS {
        for (table, total) in [("hist_on", &mut on), ("hist_off", &mut off)] {
            let start = Instant::now();
            let sql = format!("COPY {table} FROM STDIN");
            copy_chunks(&c, &sql, per_round, 10_000, |e, buf| event_line(round * per_round + e, users, buf)).await?;
            *total += start.elapsed();
        }
    }
    let n = per_round * ROUNDS;
    let note = format!("same events, {ROUNDS} alternating rounds; history costs {:+.1}% of the write path's time", (on.as_secs_f64() / off.as_secs_f64() - 1.0) * 100.0);
    Ok(vec![
        Result::throughput("ingest COPY, 3 views with history", sys.name, n, on, "events/s", &note),
        Result::throughput("ingest COPY, 3 views without history", sys.name, n, off, "events/s", "WITH (history = false)"),
    ])
}

/// One row of the point-in-time training set: user, label time (µs), n, total.
type TrainingRow = (i64, i64, Option<i64>, Option<f64>);

/// Timed runs per side; the best is reported (both sides, the same way).
const RUNS: usize = 5;

/// `versions` events over `keys` users (one view version each: no COPY chunk repeats a
/// user), `labels` labels at random times; then the point-in-time join in nowdb and DuckDB's
/// ASOF JOIN of the same labels and the same versions (exported from nowdb as Parquet).
pub async fn pit_join(sys: &PgSystem, scale: Scale, python: &Path, export_dir: &Path) -> std::result::Result<Vec<Result>, String> {
    let (versions, keys, labels) = (scale.pit_versions, scale.pit_keys, scale.pit_labels);
    let c = connect(&sys.conn).await?;
    c.batch_execute(
        "CREATE TABLE pit_events (user_id BIGINT NOT NULL, amount DOUBLE PRECISION, ts TIMESTAMP NOT NULL);
         CREATE MATERIALIZED VIEW pit_stats AS SELECT user_id, count(*) AS n, sum(amount) AS total FROM pit_events GROUP BY user_id;
         CREATE TABLE pit_labels (user_id BIGINT NOT NULL, ts TIMESTAMP NOT NULL);",
    )
    .await
    .map_err(|e| e.to_string())?;
    // Event i at i ms past midnight: strictly increasing times.
    let time = |ms: u64| format!("2026-01-01 {:02}:{:02}:{:02}.{:03}", ms / 3_600_000, (ms / 60_000) % 60, (ms / 1000) % 60, ms % 1000);
    let chunk = keys.min(10_000);
    copy_chunks(&c, "COPY pit_events FROM STDIN", versions, chunk, |i, buf| {
        let _ = writeln!(buf, "{}\t{}\t{}", i % keys, (i % 991) as f64 / 8.0, time(i));
    })
    .await?;
    let mut rng = Rng::new(0x9174);
    copy_chunks(&c, "COPY pit_labels FROM STDIN", labels, 50_000, |_, buf| {
        // Some labels before the first version: the LEFT JOIN keeps them, with NULLs.
        let at = rng.below(versions + versions / 50);
        let _ = writeln!(buf, "{}\t{}", rng.below(keys), time(at.saturating_sub(versions / 50)));
    })
    .await?;
    let history: i64 = c.query_one("SELECT count(*) FROM view_history('pit_stats')", &[]).await.map_err(|e| e.to_string())?.get(0);
    if history as u64 != versions {
        return Err(format!("pit_stats has {history} versions, expected {versions}"));
    }
    let sql = "SELECT l.user_id, l.ts, f.n, f.total FROM pit_labels l \
               LEFT JOIN pit_stats FOR SYSTEM_TIME AS OF l.ts AS f ON f.user_id = l.user_id";
    let mut best = Duration::MAX;
    let mut ours: Vec<TrainingRow> = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let rows = c.query(sql, &[]).await.map_err(|e| e.to_string())?;
        best = best.min(start.elapsed());
        ours = rows
            .iter()
            .map(|r| (r.get(0), r.get::<_, chrono::NaiveDateTime>(1).and_utc().timestamp_micros(), r.get(2), r.get(3)))
            .collect();
    }
    // The same versions and labels, for DuckDB.
    c.batch_execute(
        "COPY (SELECT user_id, n, total, valid_from FROM view_history('pit_stats')) TO 'pit/versions.parquet' (FORMAT parquet);
         COPY pit_labels TO 'pit/labels.parquet' (FORMAT parquet);",
    )
    .await
    .map_err(|e| e.to_string())?;
    let args = [export_dir.join("pit").display().to_string(), RUNS.to_string()];
    let duck = crate::peers::python_baseline(python, "pit_duckdb.py", &args)?;
    let duck_secs = duck["seconds"].as_f64().ok_or("pit_duckdb.py: no seconds")?;
    let mut theirs: Vec<TrainingRow> = duck["rows"]
        .as_array()
        .ok_or("pit_duckdb.py: no rows")?
        .iter()
        .map(|r| (r[0].as_i64().unwrap_or(-1), r[1].as_i64().unwrap_or(-1), r[2].as_i64(), r[3].as_f64()))
        .collect();
    let order = |a: &TrainingRow, b: &TrainingRow| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2));
    ours.sort_by(order);
    theirs.sort_by(order);
    if ours != theirs {
        let first = ours.iter().zip(&theirs).position(|(a, b)| a != b);
        return Err(format!("point-in-time results differ: nowdb {} rows, DuckDB {} rows, first difference at {first:?}", ours.len(), theirs.len()));
    }
    let matched = ours.iter().filter(|r| r.2.is_some()).count();
    let note = format!("{labels} labels, {versions} versions over {keys} keys; {matched} labels matched; results identical (compared row for row)");
    Ok(vec![
        Result::throughput("point-in-time join", sys.name, labels, best, "labels/s", &format!("LEFT JOIN pit_stats FOR SYSTEM_TIME AS OF l.ts, all rows fetched by the client; {note}")),
        Result::throughput(
            "point-in-time join",
            "DuckDB",
            labels,
            Duration::from_secs_f64(duck_secs),
            "labels/s",
            &format!("ASOF LEFT JOIN on in-memory tables loaded from nowdb's Parquet export, all rows fetched into Python; {note}"),
        ),
    ])
}
