//! The workloads: online lookups, ingest, freshness. Each runs the same data through the same
//! client library against every system.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::SinkExt;
use redis::AsyncCommands;
use tokio_postgres::{Client, NoTls};

use crate::measure::{self, record, Result, Rng};

/// How much data and time a run uses.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Keys in the feature table.
    pub keys: u64,
    /// Events ingested.
    pub events: u64,
    /// Seconds per lookup phase.
    pub lookup_secs: u64,
    /// Freshness samples.
    pub freshness_samples: u64,
    /// Rows scored by the model benchmark.
    pub score_rows: u64,
    /// View versions (events) in the point-in-time join benchmark.
    pub pit_versions: u64,
    /// Keys those versions are spread over.
    pub pit_keys: u64,
    /// Labels joined to them.
    pub pit_labels: u64,
    /// Seconds of the 64-connection load test.
    pub load_secs: u64,
}

/// A Postgres-protocol system (nowdb or PostgreSQL).
pub struct PgSystem {
    /// Name in the report.
    pub name: &'static str,
    /// Connection string.
    pub conn: String,
}

pub(crate) async fn connect(conn: &str) -> std::result::Result<Client, String> {
    let (client, connection) = tokio_postgres::connect(conn, NoTls).await.map_err(|e| format!("connect {conn}: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

fn feature_value(k: u64, j: u64) -> f64 {
    ((k * 31 + j * 7) % 1000) as f64 / 10.0
}

/// Sends rows `0..total` by COPY `sql` (`... FROM STDIN`), one COPY per `chunk` rows, each
/// row's text line written by `line`.
pub(crate) async fn copy_chunks(c: &Client, sql: &str, total: u64, chunk: u64, mut line: impl FnMut(u64, &mut String)) -> std::result::Result<(), String> {
    let mut i = 0;
    while i < total {
        let sink = c.copy_in(sql).await.map_err(|e| e.to_string())?;
        futures::pin_mut!(sink);
        let mut buf = String::new();
        for r in i..(i + chunk).min(total) {
            line(r, &mut buf);
        }
        sink.send(Bytes::from(buf)).await.map_err(|e| e.to_string())?;
        sink.finish().await.map_err(|e| e.to_string())?;
        i += chunk;
    }
    Ok(())
}

/// Loads the 10-column feature table of `scale.keys` rows with COPY.
pub async fn load_features(sys: &PgSystem, scale: Scale) -> std::result::Result<Duration, String> {
    let c = connect(&sys.conn).await?;
    let cols: Vec<String> = (1..=10).map(|j| format!("f{j} DOUBLE PRECISION")).collect();
    c.batch_execute(&format!("CREATE TABLE features (k BIGINT PRIMARY KEY, {})", cols.join(", ")))
        .await
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    copy_chunks(&c, "COPY features FROM STDIN", scale.keys, 10_000, |key, buf| {
        let _ = write!(buf, "{key}");
        for j in 1..=10 {
            let _ = write!(buf, "\t{}", feature_value(key, j));
        }
        buf.push('\n');
    })
    .await?;
    Ok(start.elapsed())
}

/// Loads the same features into Redis hashes `f:<k>`.
pub async fn load_redis(port: u16, scale: Scale) -> std::result::Result<Duration, String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).map_err(|e| e.to_string())?;
    let mut con = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut k = 0;
    while k < scale.keys {
        let mut pipe = redis::pipe();
        for key in k..(k + 1000).min(scale.keys) {
            let fields: Vec<(String, f64)> = (1..=10).map(|j| (format!("f{j}"), feature_value(key, j))).collect();
            pipe.hset_multiple(format!("f:{key}"), &fields).ignore();
        }
        let _: () = pipe.query_async(&mut con).await.map_err(|e| e.to_string())?;
        k += 1000;
    }
    Ok(start.elapsed())
}

/// Prepared single-key lookups from `conns` connections for `secs`.
pub async fn lookup(sys: &PgSystem, scale: Scale, conns: usize) -> std::result::Result<Result, String> {
    keyed_lookups(sys, scale, conns, "SELECT * FROM features WHERE k = $1", scale.keys, "lookup").await
}

/// `sql` with `$1` = a random key below `keys`, prepared, from `conns` connections for
/// `scale.lookup_secs`; every lookup must find one row.
async fn keyed_lookups(sys: &PgSystem, scale: Scale, conns: usize, sql: &'static str, keys: u64, workload: &str) -> std::result::Result<Result, String> {
    let deadline = Instant::now() + Duration::from_secs(scale.lookup_secs);
    let mut tasks = Vec::new();
    let start = Instant::now();
    for t in 0..conns {
        let c = connect(&sys.conn).await?;
        tasks.push(tokio::spawn(async move {
            let stmt = c.prepare(sql).await.map_err(|e| e.to_string())?;
            let mut h = measure::histogram();
            let mut rng = Rng::new(0x9e37_79b9 + t as u64);
            while Instant::now() < deadline {
                let k = rng.below(keys) as i64;
                let t0 = Instant::now();
                let rows = c.query(&stmt, &[&k]).await.map_err(|e| e.to_string())?;
                record(&mut h, t0.elapsed());
                if rows.len() != 1 {
                    return Err(format!("key {k}: {} rows", rows.len()));
                }
            }
            Ok::<_, String>(h)
        }));
    }
    let all = merge(tasks).await?;
    Ok(Result::from_histogram(&format!("{workload} c={conns}"), sys.name, &all, start.elapsed(), "lookups/s", ""))
}

type Task = tokio::task::JoinHandle<std::result::Result<hdrhistogram::Histogram<u64>, String>>;

/// Waits for the per-connection tasks and merges their latencies.
pub(crate) async fn merge(tasks: Vec<Task>) -> std::result::Result<hdrhistogram::Histogram<u64>, String> {
    let mut all = measure::histogram();
    for t in tasks {
        let h = t.await.map_err(|e| e.to_string())??;
        let _ = all.add(&h);
    }
    Ok(all)
}

/// HGETALL lookups from `conns` connections for `secs`.
pub async fn lookup_redis(port: u16, scale: Scale, conns: usize) -> std::result::Result<Result, String> {
    let deadline = Instant::now() + Duration::from_secs(scale.lookup_secs);
    let client = Arc::new(redis::Client::open(format!("redis://127.0.0.1:{port}/")).map_err(|e| e.to_string())?);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..conns {
        // One connection per task, like the SQL clients (no multiplexing advantage).
        let mut con = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
        let keys = scale.keys;
        tasks.push(tokio::spawn(async move {
            let mut h = measure::histogram();
            let mut rng = Rng::new(0x9e37_79b9 + t as u64);
            while Instant::now() < deadline {
                let k = rng.below(keys);
                let t0 = Instant::now();
                let v: Vec<(String, f64)> = con.hgetall(format!("f:{k}")).await.map_err(|e| e.to_string())?;
                record(&mut h, t0.elapsed());
                if v.len() != 10 {
                    return Err(format!("key {k}: {} fields", v.len()));
                }
            }
            Ok::<_, String>(h)
        }));
    }
    let all = merge(tasks).await?;
    Ok(Result::from_histogram(&format!("lookup c={conns}"), "redis", &all, start.elapsed(), "lookups/s", "HGETALL"))
}

/// The Postgres way to keep per-user aggregates current: a row trigger upserting them.
const PG_TRIGGER: &str = "
CREATE TABLE user_stats (user_id BIGINT PRIMARY KEY, n BIGINT NOT NULL, total DOUBLE PRECISION NOT NULL);
CREATE FUNCTION bump_stats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO user_stats VALUES (NEW.user_id, 1, NEW.amount)
  ON CONFLICT (user_id) DO UPDATE SET n = user_stats.n + 1, total = user_stats.total + EXCLUDED.total;
  RETURN NULL;
END $$;
CREATE TRIGGER events_stats AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION bump_stats();";

/// nowdb's way: three continuous views over the events (the first is the trigger's table).
const NOWDB_VIEWS: &str = "
CREATE MATERIALIZED VIEW user_stats AS SELECT user_id, count(*) AS n, sum(amount) AS total FROM events GROUP BY user_id;
CREATE MATERIALIZED VIEW per_minute AS SELECT window_start, count(*) AS n, sum(amount) AS total, max(amount) AS hi
  FROM TUMBLE(events, ts, INTERVAL '1 minute') GROUP BY window_start;
CREATE MATERIALIZED VIEW last_5_minutes AS SELECT window_start, count(*) AS n, avg(amount) AS mean
  FROM HOP(events, ts, INTERVAL '1 minute', INTERVAL '5 minutes') GROUP BY window_start;";

/// What each system maintains on ingest, for the report.
pub const NOWDB_VIEWS_NOTE: &str = "3 continuous views: GROUP BY user_id, TUMBLE 1 min, HOP 1 min/5 min";

/// Creates the event table and what keeps per-user aggregates current: on PostgreSQL the
/// aggregate trigger, on nowdb the continuous views.
pub async fn create_events(sys: &PgSystem, is_pg: bool) -> std::result::Result<(), String> {
    let c = connect(&sys.conn).await?;
    c.batch_execute("CREATE TABLE events (user_id BIGINT NOT NULL, amount DOUBLE PRECISION, ts TIMESTAMP NOT NULL)")
        .await
        .map_err(|e| e.to_string())?;
    c.batch_execute(if is_pg { PG_TRIGGER } else { NOWDB_VIEWS }).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// Prepared lookups of one user's aggregates (nowdb: the view; PostgreSQL: the trigger's
/// table) from `conns` connections, over the users the ingest wrote.
pub async fn view_lookup(sys: &PgSystem, scale: Scale, conns: usize) -> std::result::Result<Result, String> {
    let users = scale.keys.min(scale.events).max(1);
    keyed_lookups(sys, scale, conns, "SELECT n, total FROM user_stats WHERE user_id = $1", users, "view lookup").await
}

fn event_line(i: u64, users: u64, out: &mut String) {
    let secs = i / 100;
    let _ = writeln!(out, "{}\t{}\t2026-01-01 {:02}:{:02}:{:02}", i % users, (i % 997) as f64 / 10.0, (secs / 3600) % 24, (secs / 60) % 60, secs % 60);
}

/// Ingests `scale.events` by COPY in 10,000-row chunks; returns events/s.
pub async fn ingest_copy(sys: &PgSystem, scale: Scale, note: &str) -> std::result::Result<Result, String> {
    let c = connect(&sys.conn).await?;
    let users = scale.keys.max(1);
    let start = Instant::now();
    copy_chunks(&c, "COPY events FROM STDIN", scale.events, 10_000, |e, buf| event_line(e, users, buf)).await?;
    Ok(Result::throughput("ingest COPY", sys.name, scale.events, start.elapsed(), "events/s", note))
}

/// Ingests `scale.events` by 1,000-row INSERT statements; returns events/s.
pub async fn ingest_insert(sys: &PgSystem, scale: Scale, note: &str) -> std::result::Result<Result, String> {
    let c = connect(&sys.conn).await?;
    let users = scale.keys.max(1);
    let total = scale.events.max(1000);
    let start = Instant::now();
    let mut i = 0;
    while i < total {
        let mut sql = String::from("INSERT INTO events VALUES ");
        for e in i..(i + 1000).min(total) {
            let secs = e / 100;
            if e > i {
                sql.push(',');
            }
            let _ = write!(sql, "({}, {}, '2026-01-02 {:02}:{:02}:{:02}')", e % users, (e % 997) as f64 / 10.0, (secs / 3600) % 24, (secs / 60) % 60, secs % 60);
        }
        c.batch_execute(&sql).await.map_err(|e| e.to_string())?;
        i += 1000;
    }
    Ok(Result::throughput("ingest INSERT x1000", sys.name, total, start.elapsed(), "events/s", note))
}

/// Time from a write's acknowledgement to the new value being visible to a lookup on another
/// connection. `write` and `read` are SQL with `$1` = user, `$2` = value (write only).
pub async fn freshness(sys: &PgSystem, scale: Scale, write: &str, read: &str, note: &str) -> std::result::Result<Result, String> {
    let writer = connect(&sys.conn).await?;
    let reader = connect(&sys.conn).await?;
    let w = writer.prepare(write).await.map_err(|e| e.to_string())?;
    let r = reader.prepare(read).await.map_err(|e| e.to_string())?;
    let mut h = measure::histogram();
    let start = Instant::now();
    for i in 0..scale.freshness_samples {
        let user = 10_000_000 + i as i64;
        let value = i as f64 + 0.5;
        writer.execute(&w, &[&user, &value]).await.map_err(|e| e.to_string())?;
        let acked = Instant::now();
        loop {
            let rows = reader.query(&r, &[&user]).await.map_err(|e| e.to_string())?;
            if rows.first().map(|row| row.get::<_, f64>(0)) == Some(value) {
                break;
            }
            if acked.elapsed() > Duration::from_secs(10) {
                return Err(format!("{}: write never became visible", sys.name));
            }
        }
        record(&mut h, acked.elapsed());
    }
    Ok(Result::from_histogram("freshness", sys.name, &h, start.elapsed(), "samples/s", note))
}
