//! Prometheus metrics and the HTTP endpoint that serves them (`GET /metrics`).
//!
//! Counters and histograms on the request path are atomics updated in place
//! (`prometheus-client`); gauges that describe state kept elsewhere (views, models, RocksDB)
//! are read when scraped. The endpoint is a small HTTP/1.1 responder on tokio: it answers
//! one GET path, so a web framework would add much and give nothing.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use crate::engine::Engine;
use crate::error::{NowError, NowResult};

/// Label of a statement's kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct KindLabel {
    /// `select`, `lookup`, `insert`, `update`, `delete`, `copy`, `ddl`, `model`, `other`.
    pub kind: &'static str,
}

/// Label of an error's SQLSTATE.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SqlStateLabel {
    /// The five-character SQLSTATE.
    pub sqlstate: String,
}

/// Label naming a view or a model.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct NameLabel {
    /// The object's name.
    pub name: String,
}

/// Label of a Kafka source's partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PartitionLabel {
    /// The source's table.
    pub source: String,
    /// The partition.
    pub partition: i32,
}

/// Label naming a RocksDB property.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PropertyLabel {
    /// The RocksDB property, without its `rocksdb.` prefix.
    pub property: &'static str,
}

/// Every metric nowdb exports.
pub struct Metrics {
    registry: Registry,
    /// Statements executed, by kind (the histogram's count), and their latency in seconds.
    pub statement_seconds: Family<KindLabel, Histogram>,
    /// Statements that failed, by kind.
    pub statement_errors: Family<KindLabel, Counter>,
    /// Statements logged as slow.
    pub slow_statements: Counter,
    /// Rows written by INSERT and COPY.
    pub rows_ingested: Counter,
    /// Connections open now.
    pub connections: Gauge,
    /// Connections accepted since start.
    pub connections_accepted: Counter,
    /// Connections refused (max_connections).
    pub connections_refused: Counter,
    /// Failed authentications.
    pub auth_failures: Counter,
    /// Errors sent to clients, by SQLSTATE (planning and protocol errors included).
    pub client_errors: Family<SqlStateLabel, Counter>,
    /// Per view: seconds since its last maintained event time (window views), at scrape.
    view_lag: Family<NameLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// Per view: events dropped behind the watermark.
    view_late_events: Family<NameLabel, Gauge>,
    /// Per view: source rows processed.
    view_events: Family<NameLabel, Gauge>,
    /// Per view: last maintenance step's latency in seconds.
    view_update_seconds: Family<NameLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// Per model: batches run, rows scored, mean and p99 batch latency.
    model_calls: Family<NameLabel, Gauge>,
    model_rows: Family<NameLabel, Gauge>,
    model_mean_seconds: Family<NameLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    model_p99_seconds: Family<NameLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// Per Kafka source partition this node owns: messages not yet read, messages read
    /// since start, malformed messages.
    source_lag: Family<PartitionLabel, Gauge>,
    source_messages: Family<PartitionLabel, Gauge>,
    source_errors: Family<PartitionLabel, Gauge>,
    /// RocksDB integer properties summed over column families.
    rocksdb: Family<PropertyLabel, Gauge>,
}

/// RocksDB properties exported.
const ROCKSDB_PROPERTIES: [&str; 7] = [
    "estimate-live-data-size",
    "total-sst-files-size",
    "cur-size-all-mem-tables",
    "estimate-num-keys",
    "num-running-compactions",
    "num-running-flushes",
    "estimate-pending-compaction-bytes",
];

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// All metrics, registered, at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("nowdb");
        // 20 µs .. ~42 s.
        let statement_seconds = Family::<KindLabel, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.00002, 2.0, 22)));
        let m = Self {
            statement_seconds,
            statement_errors: Family::default(),
            slow_statements: Counter::default(),
            rows_ingested: Counter::default(),
            connections: Gauge::default(),
            connections_accepted: Counter::default(),
            connections_refused: Counter::default(),
            auth_failures: Counter::default(),
            client_errors: Family::default(),
            view_lag: Family::default(),
            view_late_events: Family::default(),
            view_events: Family::default(),
            view_update_seconds: Family::default(),
            model_calls: Family::default(),
            model_rows: Family::default(),
            model_mean_seconds: Family::default(),
            model_p99_seconds: Family::default(),
            source_lag: Family::default(),
            source_messages: Family::default(),
            source_errors: Family::default(),
            rocksdb: Family::default(),
            registry: Registry::default(),
        };
        registry.register("statement_duration_seconds", "Statement latency by kind (count = statements executed)", m.statement_seconds.clone());
        registry.register("statement_errors", "Statements that failed, by kind", m.statement_errors.clone());
        registry.register("slow_statements", "Statements slower than slow_query_ms", m.slow_statements.clone());
        registry.register("ingested_rows", "Rows written by INSERT, COPY and Kafka sources", m.rows_ingested.clone());
        registry.register("connections", "Client connections open", m.connections.clone());
        registry.register("connections_accepted", "Client connections accepted", m.connections_accepted.clone());
        registry.register("connections_refused", "Client connections refused by max_connections", m.connections_refused.clone());
        registry.register("authentication_failures", "Failed password authentications", m.auth_failures.clone());
        registry.register("client_errors", "Errors sent to clients, by SQLSTATE", m.client_errors.clone());
        registry.register("view_lag_seconds", "Seconds between now and the view's greatest event time", m.view_lag.clone());
        registry.register("view_late_events", "Events dropped behind the view's watermark", m.view_late_events.clone());
        registry.register("view_events", "Source rows the view has processed", m.view_events.clone());
        registry.register("view_update_seconds", "Latency of the view's last maintenance step", m.view_update_seconds.clone());
        registry.register("model_batches", "Batches the model has run", m.model_calls.clone());
        registry.register("model_rows", "Rows the model has scored", m.model_rows.clone());
        registry.register("model_batch_mean_seconds", "Mean batch latency of the model", m.model_mean_seconds.clone());
        registry.register("model_batch_p99_seconds", "99th percentile batch latency of the model", m.model_p99_seconds.clone());
        registry.register("kafka_source_lag", "Messages in the Kafka partition not yet in the table", m.source_lag.clone());
        registry.register("kafka_source_messages", "Messages read from the Kafka partition since start", m.source_messages.clone());
        registry.register("kafka_source_errors", "Malformed messages of the Kafka partition (dead letters)", m.source_errors.clone());
        registry.register("rocksdb", "RocksDB integer properties, summed over column families", m.rocksdb.clone());
        Self { registry, ..m }
    }

    /// Records one statement.
    pub fn observe(&self, kind: &'static str, elapsed: Duration, ok: bool) {
        self.statement_seconds.get_or_create(&KindLabel { kind }).observe(elapsed.as_secs_f64());
        if !ok {
            self.statement_errors.get_or_create(&KindLabel { kind }).inc();
        }
    }

    /// The text exposition of every metric, state-derived gauges read now.
    pub fn render(&self, engine: &Engine) -> String {
        let now_us = chrono::Utc::now().timestamp_micros();
        self.view_lag.clear();
        self.view_update_seconds.clear();
        for v in engine.views().describe() {
            let label = NameLabel { name: v.name.clone() };
            self.view_events.get_or_create(&label).set(v.counters.events_processed as i64);
            self.view_late_events.get_or_create(&label).set(v.counters.late_events_dropped as i64);
            if let Some(t) = v.counters.last_event_time {
                self.view_lag.get_or_create(&label).set((now_us - t) as f64 / 1e6);
            }
            if let Some(us) = v.last_update_micros {
                self.view_update_seconds.get_or_create(&label).set(us as f64 / 1e6);
            }
        }
        self.model_mean_seconds.clear();
        self.model_p99_seconds.clear();
        for model in engine.models().all() {
            let label = NameLabel { name: model.name().to_string() };
            let s = model.stats().snapshot();
            self.model_calls.get_or_create(&label).set(s.calls as i64);
            self.model_rows.get_or_create(&label).set(s.rows as i64);
            if let Some(us) = s.mean_us {
                self.model_mean_seconds.get_or_create(&label).set(us / 1e6);
            }
            if let Some(us) = s.p99_us {
                self.model_p99_seconds.get_or_create(&label).set(us as f64 / 1e6);
            }
        }
        self.source_lag.clear();
        self.source_messages.clear();
        self.source_errors.clear();
        for (source, partition, st) in engine.connectors().owned_partitions() {
            let label = PartitionLabel { source, partition };
            if let Some(lag) = st.lag() {
                self.source_lag.get_or_create(&label).set(lag);
            }
            self.source_messages.get_or_create(&label).set(st.messages as i64);
            self.source_errors.get_or_create(&label).set(st.errors as i64);
        }
        for property in ROCKSDB_PROPERTIES {
            if let Some(v) = engine.store().property(&format!("rocksdb.{property}")) {
                self.rocksdb.get_or_create(&PropertyLabel { property }).set(v as i64);
            }
        }
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            warn!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// Serves `GET /metrics` on `addr` until the task is dropped.
pub async fn serve_http(addr: &str, engine: Arc<Engine>) -> NowResult<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| NowError::coded("58000", format!("cannot listen for metrics on {addr}: {e}")))?;
    let local = listener.local_addr().map_err(|e| NowError::coded("58000", e.to_string()))?;
    info!(addr = %local, "metrics endpoint listening (GET /metrics)");
    Ok(tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((socket, _)) => {
                    let engine = engine.clone();
                    tokio::spawn(async move {
                        if let Err(e) = answer(socket, &engine).await {
                            debug!(error = %e, "metrics request failed");
                        }
                    });
                }
                Err(e) => {
                    warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }))
}

/// Reads one request head (up to 8 KiB, 5 s) and answers it.
async fn answer(mut socket: TcpStream, engine: &Engine) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
            let n = socket.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    };
    if tokio::time::timeout(Duration::from_secs(5), read).await.is_err() {
        return Ok(());
    }
    let line = String::from_utf8_lossy(head.split(|b| *b == b'\r').next().unwrap_or_default()).to_string();
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => ("200 OK", "application/openmetrics-text; version=1.0.0; charset=utf-8", engine.metrics().render(engine)),
        ("GET", "/health") => ("200 OK", "text/plain", "ok\n".to_string()),
        ("GET", _) => ("404 Not Found", "text/plain", "not found: try /metrics\n".to_string()),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(response.as_bytes()).await?;
    socket.shutdown().await
}
