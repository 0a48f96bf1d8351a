//! A Kafka sink: one thread per `CREATE SINK`, streaming a view's changes to a topic as
//! upserts.
//!
//! The sink follows the view's history (`Cf::History`, one batch per maintenance step): each
//! changed row becomes a message keyed by the row's key columns (JSON), whose value is the
//! row (JSON), or a tombstone (no value) when the row stopped existing. A batch's messages
//! are flushed and acknowledged by the brokers (idempotent producer, `acks=all`) before the
//! sink stores the history position it reached, so after a crash it resends at most the
//! batches that were not yet acknowledged: at-least-once delivery of upserts, which a
//! compacted topic and any upserting consumer take as exactly the view's state. A new sink
//! starts at the beginning of the view's history.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use nowdb_catalog::{Catalog, SinkDef, Table};
use nowdb_storage::{codec, keys, Cf, ScanControl, Store, WriteSet};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use tracing::{info, info_span, warn};

use super::options::SinkOptions;

/// History batches sent per round.
const BATCHES_PER_ROUND: usize = 64;
/// How long an idle sink waits before looking at the history again.
const IDLE: Duration = Duration::from_millis(50);

const PROGRESS_PREFIX: &[u8] = b"sink_progress/";

/// The catalog key under which sink `name` keeps the next history sequence to send.
pub fn progress_key(name: &str) -> Vec<u8> {
    [PROGRESS_PREFIX, name.as_bytes()].concat()
}

/// A running sink's live state.
#[derive(Debug)]
pub struct SinkStatus {
    /// The sink's definition.
    pub def: SinkDef,
    /// Its Kafka options.
    pub options: SinkOptions,
    /// Messages the brokers acknowledged since the server started.
    pub sent: AtomicU64,
    /// Deliveries that failed (resent).
    pub failed: AtomicU64,
    /// The next history sequence to send.
    pub next_seq: AtomicU64,
    state: Mutex<(&'static str, Option<String>)>,
    stop: AtomicBool,
}

impl SinkStatus {
    /// The sink's state and last error.
    pub fn state(&self) -> (&'static str, Option<String>) {
        self.state.lock().map(|s| s.clone()).unwrap_or(("failed", Some("status lock poisoned".into())))
    }

    /// Asks the sink's thread to stop.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn set(&self, state: &'static str, error: Option<String>) {
        if let Ok(mut s) = self.state.lock() {
            let keep = if error.is_none() { s.1.take() } else { error };
            *s = (state, keep);
        }
    }
}

struct SinkContext {
    status: Arc<SinkStatus>,
    failed_now: AtomicU64,
}

impl ClientContext for SinkContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        warn!(sink = %self.status.def.name, error = %error, reason, "Kafka client error");
        self.status.set("running", Some(format!("{error}: {reason}")));
    }
}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_ok() {
            self.status.sent.fetch_add(1, Ordering::Relaxed);
        }
        if let Err((e, _)) = result {
            self.failed_now.fetch_add(1, Ordering::Relaxed);
            self.status.failed.fetch_add(1, Ordering::Relaxed);
            self.status.set("running", Some(format!("delivery failed: {e}")));
        }
    }
}

/// Starts sink `def`; the thread runs until [`SinkStatus::stop`] or until the view is dropped.
pub fn start(catalog: Arc<Catalog>, def: SinkDef, options: SinkOptions) -> std::io::Result<Arc<SinkStatus>> {
    let status = Arc::new(SinkStatus {
        def,
        options,
        sent: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        next_seq: AtomicU64::new(0),
        state: Mutex::new(("starting", None)),
        stop: AtomicBool::new(false),
    });
    let s = status.clone();
    std::thread::Builder::new().name(format!("kafka-sink-{}", s.def.name)).spawn(move || {
        let span = info_span!("kafka_sink", sink = %s.def.name, view = %s.def.view, topic = %s.options.topic);
        let _enter = span.enter();
        if let Err(e) = run(&catalog, &s) {
            warn!(error = %e, "Kafka sink failed");
            s.set("failed", Some(e));
        } else {
            s.set("stopped", None);
        }
    })?;
    Ok(status)
}

fn run(catalog: &Arc<Catalog>, status: &Arc<SinkStatus>) -> Result<(), String> {
    let context = SinkContext { status: status.clone(), failed_now: AtomicU64::new(0) };
    let producer: BaseProducer<SinkContext> = status.options.client_config().create_with_context(context).map_err(|e| e.to_string())?;
    let store = catalog.store().clone();
    let key = progress_key(&status.def.name);
    let mut next = match store.get(Cf::Catalog, &key).map_err(|e| e.to_string())? {
        Some(v) => v.as_slice().try_into().map(u64::from_be_bytes).map_err(|_| "corrupt sink progress".to_string())?,
        None => 0,
    };
    status.next_seq.store(next, Ordering::Relaxed);
    status.set("running", None);
    while !status.stop.load(Ordering::Relaxed) {
        let Some(view) = catalog.table(&status.def.view) else {
            status.set("stopped", Some(format!("view {} was dropped", status.def.view)));
            return Ok(());
        };
        let batches = read_history(store.as_ref(), view.def().id, next).map_err(|e| e.to_string())?;
        let Some(&(last, _)) = batches.last() else {
            producer.poll(IDLE);
            continue;
        };
        producer.context().failed_now.store(0, Ordering::Relaxed);
        for (_, batch) in &batches {
            send(&producer, &view, status, batch)?;
        }
        let flushed = producer.flush(Duration::from_secs(30));
        if flushed.is_err() || producer.context().failed_now.load(Ordering::Relaxed) > 0 {
            // Resend from the same position: upserts make repeats harmless.
            warn!(error = ?flushed.err(), "sink delivery incomplete; resending");
            std::thread::sleep(Duration::from_secs(1));
            continue;
        }
        next = last + 1;
        let mut ws = WriteSet::new();
        ws.put(Cf::Catalog, key.clone(), next.to_be_bytes().to_vec());
        store.write(ws).map_err(|e| e.to_string())?;
        status.next_seq.store(next, Ordering::Relaxed);
        status.set("running", None);
    }
    info!("Kafka sink stopped");
    Ok(())
}

/// History batches of view `view` from sequence `from` on (at most [`BATCHES_PER_ROUND`]).
fn read_history(store: &dyn Store, view: u32, from: u64) -> nowdb_storage::Result<Vec<(u64, RecordBatch)>> {
    let mut out = Vec::new();
    store.scan(Cf::History, &keys::log_key(view, from), &keys::table_end(view), &mut |k, v| {
        out.push((keys::log_seq(k)?, codec::decode_batch(v)?));
        Ok(if out.len() >= BATCHES_PER_ROUND { ScanControl::Stop } else { ScanControl::Continue })
    })?;
    Ok(out)
}

/// Produces one message per row of history batch `batch` (columns: `key`, the view's
/// columns, `valid_from`, `ended`).
fn send(producer: &BaseProducer<SinkContext>, view: &Table, status: &SinkStatus, batch: &RecordBatch) -> Result<(), String> {
    let ncols = view.def().columns.len();
    let values = batch.project(&(1..=ncols).collect::<Vec<_>>()).map_err(|e| e.to_string())?;
    let pk: Vec<usize> = view.def().primary_key().iter().map(|i| i + 1).collect();
    let keys = match pk.is_empty() {
        false => json_lines(&batch.project(&pk).map_err(|e| e.to_string())?)?,
        true => {
            let ids = batch.column(0).as_binary::<i32>();
            (0..batch.num_rows()).map(|i| format!("{{\"row\":\"{}\"}}", hex(ids.value(i)))).collect()
        }
    };
    let rows = json_lines(&values)?;
    let ended = batch.column(ncols + 2).as_boolean();
    for i in 0..batch.num_rows() {
        let tombstone = ended.is_valid(i) && ended.value(i);
        loop {
            let mut record: BaseRecord<'_, str, str> = BaseRecord::to(&status.options.topic).key(&keys[i]);
            if !tombstone {
                record = record.payload(&rows[i]);
            }
            match producer.send(record) {
                Ok(()) => break,
                Err((e, _)) if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) => {
                    producer.poll(Duration::from_millis(100));
                }
                Err((e, _)) => return Err(format!("cannot produce to {}: {e}", status.options.topic)),
            }
        }
    }
    producer.poll(Duration::ZERO);
    Ok(())
}

/// Each row of `batch` as one JSON object (NULLs written as `null`).
fn json_lines(batch: &RecordBatch) -> Result<Vec<String>, String> {
    let mut buf = Vec::new();
    let mut writer = arrow_json::WriterBuilder::new().with_explicit_nulls(true).build::<_, arrow_json::writer::LineDelimited>(&mut buf);
    writer.write(batch).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    drop(writer);
    let text = String::from_utf8(buf).map_err(|e| e.to_string())?;
    Ok(text.lines().map(str::to_string).collect())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
