//! A Kafka source: one thread per table, consuming its topic into the table.
//!
//! Each round polls what the consumer has (up to [`MAX_BATCH`] messages), decodes it, and
//! writes the rows, every touched partition's next offset and the dead letters in one atomic
//! write through `catalog::write::insert_with`, which also carries the views' changes. The
//! stored positions, never the broker's committed offsets, decide where reading resumes: they
//! are applied when partitions are assigned (every assignment in shard mode, the one at start
//! in replica mode), and a message below its partition's stored position is skipped, so after
//! a crash or a rebalance nothing is counted twice and nothing is lost.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nowdb_catalog::write::{insert_with, OnConflict};
use nowdb_catalog::{Catalog, CatalogErrorKind, Table};
use nowdb_storage::{Store, WriteSet};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use tracing::{debug, info, info_span, warn};

use super::decode::decode;
use super::options::{Mode, SourceOptions, StartOffset};
use super::positions::{self, DeadLetter, Position};

/// Most messages written in one atomic write.
const MAX_BATCH: usize = 8192;
/// How long a round waits for a first message.
const POLL: Duration = Duration::from_millis(100);
/// How often lag and rates are refreshed.
const STATS_EVERY: Duration = Duration::from_secs(1);

/// What `nowdb_catalog.sources` shows of one partition.
#[derive(Debug, Clone, Default)]
pub struct PartitionStatus {
    /// Whether this node consumes the partition now.
    pub owned: bool,
    /// The next offset to consume (stored), once known.
    pub next_offset: Option<i64>,
    /// The broker's high watermark (offset of the next message produced).
    pub high_watermark: Option<i64>,
    /// Messages consumed since the server started.
    pub messages: u64,
    /// Malformed messages, over the partition's life.
    pub errors: u64,
    /// Messages per second over the last interval.
    pub rate: f64,
    counted: u64,
}

impl PartitionStatus {
    /// Messages in the partition not yet in the table (counted from offset 0 while nothing
    /// was read), once the high watermark is known.
    pub fn lag(&self) -> Option<i64> {
        self.high_watermark.map(|h| (h - self.next_offset.unwrap_or(0)).max(0))
    }
}

/// A running source's live state.
#[derive(Debug)]
pub struct SourceStatus {
    /// The table fed.
    pub table: String,
    /// Its id (a re-created table of the same name is another source).
    pub table_id: u32,
    /// The options it runs with.
    pub options: SourceOptions,
    inner: Mutex<StatusInner>,
    stop: AtomicBool,
}

#[derive(Debug, Default)]
struct StatusInner {
    partitions: BTreeMap<i32, PartitionStatus>,
    state: &'static str,
    last_error: Option<String>,
}

impl SourceStatus {
    /// Per partition, what it shows; with the source's state and last error.
    pub fn snapshot(&self) -> (Vec<(i32, PartitionStatus)>, &'static str, Option<String>) {
        match self.inner.lock() {
            Ok(i) => (i.partitions.iter().map(|(p, s)| (*p, s.clone())).collect(), i.state, i.last_error.clone()),
            Err(_) => (vec![], "failed", Some("status lock poisoned".into())),
        }
    }

    /// Asks the source's thread to stop.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn with<R>(&self, f: impl FnOnce(&mut StatusInner) -> R) -> Option<R> {
        self.inner.lock().ok().map(|mut i| f(&mut i))
    }

    fn set_error(&self, e: impl std::fmt::Display) {
        self.with(|i| i.last_error = Some(e.to_string()));
    }

    fn next_offset(&self, partition: i32) -> Option<i64> {
        self.with(|i| i.partitions.get(&partition).and_then(|p| p.next_offset)).flatten()
    }

    /// Records an assignment with the stored positions.
    fn assigned(&self, parts: &[i32], stored: &BTreeMap<i32, Position>) {
        self.with(|i| {
            for p in parts {
                let s = i.partitions.entry(*p).or_default();
                s.owned = true;
                s.next_offset = stored.get(p).map(|x| x.next_offset);
                s.errors = stored.get(p).map_or(0, |x| x.errors);
            }
            i.state = "running";
        });
    }

    fn revoked(&self) {
        self.with(|i| i.partitions.values_mut().for_each(|p| p.owned = false));
    }
}

/// Hooks librdkafka calls: errors, logs, and (shard mode) partition assignments, where the
/// stored positions are applied.
struct SourceContext {
    store: Arc<dyn Store>,
    status: Arc<SourceStatus>,
}

impl ClientContext for SourceContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        debug!(source = %self.status.table, ?level, fac, message, "librdkafka");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        warn!(source = %self.status.table, error = %error, reason, "Kafka client error");
        self.status.set_error(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for SourceContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            info!(source = %self.status.table, ?err, "partitions revoked");
            self.status.revoked();
            if let Err(e) = consumer.unassign() {
                self.status.set_error(e);
            }
            return;
        }
        match position(consumer, self.store.as_ref(), &self.status, tpl) {
            Ok(parts) => {
                info!(source = %self.status.table, partitions = ?parts, "partitions assigned");
                if let Err(e) = consumer.assign(tpl) {
                    self.status.set_error(e);
                }
            }
            // Without the stored positions, reading could repeat or skip messages: take
            // nothing until the next assignment.
            Err(e) => {
                warn!(source = %self.status.table, error = %e, "cannot read stored positions; partitions left unassigned");
                self.status.set_error(e);
                let _ = consumer.assign(&TopicPartitionList::new());
            }
        }
    }
}

/// Sets each partition of `tpl` to its stored position (or the start offset) and records
/// the assignment; returns the partitions. With `start_offset = 'latest'`, a partition read
/// for the first time starts at its end as `consumer` finds it now, and that position is
/// stored at once: messages produced after it are read even if nowdb restarts before any.
fn position<C: ConsumerContext>(consumer: &BaseConsumer<C>, store: &dyn Store, status: &SourceStatus, tpl: &mut TopicPartitionList) -> nowdb_storage::Result<Vec<i32>> {
    let mut stored = positions::load(store, status.table_id)?;
    let parts: Vec<(String, i32)> = tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
    let mut resolved = WriteSet::new();
    for (topic, p) in &parts {
        let offset = match (stored.get(p), status.options.start_offset) {
            (Some(s), _) => Offset::Offset(s.next_offset),
            (None, StartOffset::Earliest) => Offset::Beginning,
            (None, StartOffset::Latest) => match consumer.fetch_watermarks(topic, *p, Duration::from_secs(5)) {
                Ok((_, end)) => {
                    let position = Position { next_offset: end, errors: 0 };
                    positions::put_position(&mut resolved, status.table_id, *p, position);
                    stored.insert(*p, position);
                    Offset::Offset(end)
                }
                Err(e) => {
                    warn!(partition = p, error = %e, "cannot find the partition's end; starting at the end librdkafka finds");
                    Offset::End
                }
            },
        };
        if let Err(e) = tpl.set_partition_offset(topic, *p, offset) {
            warn!(error = %e, "cannot set a partition's offset");
        }
    }
    if !resolved.is_empty() {
        store.write(resolved)?;
    }
    let parts: Vec<i32> = parts.into_iter().map(|(_, p)| p).collect();
    status.assigned(&parts, &stored);
    Ok(parts)
}

/// One message kept for the next write.
struct Received {
    partition: i32,
    offset: i64,
    payload: Option<Vec<u8>>,
}

/// Starts the source feeding `table`; the thread runs until [`SourceStatus::stop`] or until
/// the table is dropped.
pub fn start(catalog: Arc<Catalog>, table: &Table, options: SourceOptions, runtime: tokio::runtime::Handle, ingested: impl Fn(u64) + Send + 'static) -> std::io::Result<Arc<SourceStatus>> {
    let status = Arc::new(SourceStatus {
        table: table.name().to_string(),
        table_id: table.def().id,
        options,
        inner: Mutex::new(StatusInner { state: "starting", ..Default::default() }),
        stop: AtomicBool::new(false),
    });
    let s = status.clone();
    std::thread::Builder::new().name(format!("kafka-source-{}", table.name())).spawn(move || {
        let span = info_span!("kafka_source", table = %s.table, topic = %s.options.topic);
        let _enter = span.enter();
        run(&catalog, &s, &runtime, &ingested);
        s.with(|i| {
            i.state = "stopped";
            i.partitions.values_mut().for_each(|p| p.owned = false);
        });
        info!("Kafka source stopped");
    })?;
    Ok(status)
}

fn run(catalog: &Arc<Catalog>, status: &Arc<SourceStatus>, runtime: &tokio::runtime::Handle, ingested: &dyn Fn(u64)) {
    let context = SourceContext { store: catalog.store().clone(), status: status.clone() };
    let consumer: BaseConsumer<SourceContext> = match status.options.client_config().create_with_context(context) {
        Ok(c) => c,
        Err(e) => {
            status.set_error(&e);
            status.with(|i| i.state = "failed");
            return;
        }
    };
    let topic = status.options.topic.clone();
    match status.options.mode {
        Mode::Shard => {
            if let Err(e) = consumer.subscribe(&[&topic]) {
                status.set_error(&e);
                status.with(|i| i.state = "failed");
                return;
            }
            status.with(|i| i.state = "joining group");
        }
        Mode::Replica => {
            if !assign_all(&consumer, catalog.store().as_ref(), status) {
                return;
            }
        }
    }
    let mut last_stats = Instant::now();
    while !status.stop.load(Ordering::Relaxed) {
        let Some(table) = catalog.table(&status.table).filter(|t| t.def().id == status.table_id) else {
            info!("table dropped; source stops");
            return;
        };
        let batch = poll_batch(&consumer, status);
        if !batch.is_empty() {
            write(&table, status, runtime, batch, &consumer, ingested);
        }
        if last_stats.elapsed() >= STATS_EVERY {
            refresh_stats(&consumer, status, last_stats.elapsed());
            last_stats = Instant::now();
        }
    }
}

/// Replica mode: every partition of the topic, from the stored positions. Retries until the
/// topic's metadata arrives or the source is stopped.
fn assign_all(consumer: &BaseConsumer<SourceContext>, store: &dyn Store, status: &SourceStatus) -> bool {
    let topic = &status.options.topic;
    status.with(|i| i.state = "connecting");
    loop {
        if status.stop.load(Ordering::Relaxed) {
            return false;
        }
        let parts = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)).map_err(|e| e.to_string()).and_then(|m| {
            let t = m.topics().iter().find(|t| t.name() == topic).ok_or_else(|| format!("topic {topic} not found"))?;
            if let Some(e) = t.error() {
                return Err(format!("topic {topic}: {:?}", rdkafka::error::RDKafkaErrorCode::from(e)));
            }
            Ok(t.partitions().iter().map(|p| p.id()).collect::<Vec<i32>>())
        });
        match parts {
            Ok(parts) if !parts.is_empty() => {
                let mut tpl = TopicPartitionList::new();
                for p in &parts {
                    tpl.add_partition(topic, *p);
                }
                match position(consumer, store, status, &mut tpl).map_err(|e| e.to_string()).and_then(|_| consumer.assign(&tpl).map_err(|e| e.to_string())) {
                    Ok(()) => {
                        info!(partitions = ?parts, "assigned every partition (replica mode)");
                        return true;
                    }
                    Err(e) => status.set_error(e),
                }
            }
            Ok(_) => status.set_error(format!("topic {topic} has no partitions")),
            Err(e) => status.set_error(e),
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The messages the consumer has now (waiting up to [`POLL`] for a first one), without those
/// below their partition's stored position.
fn poll_batch(consumer: &BaseConsumer<SourceContext>, status: &SourceStatus) -> Vec<Received> {
    let mut out = Vec::new();
    let mut wait = POLL;
    while out.len() < MAX_BATCH {
        match consumer.poll(wait) {
            None => break,
            Some(Err(e)) => {
                warn!(error = %e, "Kafka consumer error");
                status.set_error(&e);
                break;
            }
            Some(Ok(m)) => {
                if status.next_offset(m.partition()).is_none_or(|next| m.offset() >= next) {
                    out.push(Received { partition: m.partition(), offset: m.offset(), payload: m.payload().map(<[u8]>::to_vec) });
                }
            }
        }
        wait = Duration::ZERO;
    }
    out
}

/// Writes `batch` (rows, positions, dead letters) atomically, retrying while the store
/// refuses; a batch the table or a view refuses is written message by message, and a message
/// refused alone becomes a dead letter.
fn write(table: &Table, status: &SourceStatus, runtime: &tokio::runtime::Handle, batch: Vec<Received>, consumer: &BaseConsumer<SourceContext>, ingested: &dyn Fn(u64)) {
    match commit(table, status, runtime, &batch, None) {
        Ok(n) => return done(status, &batch, n, consumer, ingested),
        Err(e) if is_retryable(&e) => {
            warn!(error = %e, "write failed; retrying");
            status.set_error(&e);
            std::thread::sleep(Duration::from_secs(1));
            // The consumer has moved on: go back to the stored positions.
            return rewind(consumer, status, &batch);
        }
        Err(e) => debug!(error = %e, "batch refused; writing message by message"),
    }
    for (i, m) in batch.iter().enumerate() {
        let one = std::slice::from_ref(m);
        let result = match commit(table, status, runtime, one, None) {
            Err(e) if !is_retryable(&e) => commit(table, status, runtime, one, Some(e.to_string())),
            other => other,
        };
        match result {
            Ok(n) => done(status, one, n, consumer, ingested),
            Err(e) => {
                status.set_error(&e);
                std::thread::sleep(Duration::from_secs(1));
                return rewind(consumer, status, &batch[i..]);
            }
        }
    }
}

fn is_retryable(e: &nowdb_catalog::CatalogError) -> bool {
    matches!(e.kind(), CatalogErrorKind::Storage(_))
}

/// Seeks each partition of `batch` back to its stored position, so the messages are read
/// again.
fn rewind(consumer: &BaseConsumer<SourceContext>, status: &SourceStatus, batch: &[Received]) {
    let mut first: BTreeMap<i32, i64> = BTreeMap::new();
    for m in batch {
        first.entry(m.partition).or_insert(m.offset);
    }
    for (p, offset) in first {
        let at = status.next_offset(p).unwrap_or(offset);
        if let Err(e) = consumer.seek(&status.options.topic, p, Offset::Offset(at), Duration::from_secs(5)) {
            warn!(partition = p, error = %e, "cannot seek back; the source restarts reading at its stored positions after a restart");
            status.set_error(e);
        }
    }
}

/// One atomic write of `batch`: its rows, its dead letters and the partitions' new positions.
/// With `refuse_all`, every message becomes a dead letter with that reason.
fn commit(table: &Table, status: &SourceStatus, runtime: &tokio::runtime::Handle, batch: &[Received], refuse_all: Option<String>) -> Result<u64, nowdb_catalog::CatalogError> {
    let payloads: Vec<Option<&[u8]>> = batch.iter().map(|m| if refuse_all.is_some() { None } else { m.payload.as_deref() }).collect();
    let mut decoded = decode(table.def(), table.schema(), status.options.format, &payloads)?;
    if let Some(reason) = refuse_all {
        decoded.refused = (0..batch.len()).map(|i| (i, reason.clone())).collect();
    }
    let received_micros = chrono::Utc::now().timestamp_micros();
    let mut ws = WriteSet::new();
    let mut touched: BTreeMap<i32, Position> = BTreeMap::new();
    let errors = |p: i32| status.with(|i| i.partitions.get(&p).map_or(0, |s| s.errors)).unwrap_or(0);
    for m in batch {
        let e = touched.entry(m.partition).or_insert_with(|| Position { next_offset: 0, errors: errors(m.partition) });
        e.next_offset = e.next_offset.max(m.offset + 1);
    }
    for (i, error) in &decoded.refused {
        let m = &batch[*i];
        if let Some(p) = touched.get_mut(&m.partition) {
            p.errors += 1;
        }
        let letter = DeadLetter { partition: m.partition, offset: m.offset, received_micros, error: error.clone(), payload: m.payload.clone().unwrap_or_default() };
        positions::put_dead_letter(&mut ws, table.def().id, &letter);
    }
    for (p, position) in &touched {
        positions::put_position(&mut ws, table.def().id, *p, *position);
    }
    let rows = decoded.rows;
    runtime.block_on(insert_with(table, rows, OnConflict::Error, ws))?;
    let refused = decoded.refused.len() as u64;
    status.with(|i| {
        for (p, position) in &touched {
            let s = i.partitions.entry(*p).or_default();
            s.next_offset = Some(position.next_offset);
            s.errors = position.errors;
        }
    });
    Ok(batch.len() as u64 - refused)
}

/// Counts a written batch, and reports the positions to the broker (shard mode; for
/// monitoring tools, never read back).
fn done(status: &SourceStatus, batch: &[Received], rows: u64, consumer: &BaseConsumer<SourceContext>, ingested: &dyn Fn(u64)) {
    ingested(rows);
    let mut per_partition: BTreeMap<i32, u64> = BTreeMap::new();
    for m in batch {
        *per_partition.entry(m.partition).or_default() += 1;
    }
    status.with(|i| {
        for (p, n) in &per_partition {
            i.partitions.entry(*p).or_default().messages += n;
        }
        i.state = "running";
    });
    if status.options.mode == Mode::Shard {
        let mut tpl = TopicPartitionList::new();
        for p in per_partition.keys() {
            if let Some(next) = status.next_offset(*p) {
                let _ = tpl.add_partition_offset(&status.options.topic, *p, Offset::Offset(next));
            }
        }
        if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
            debug!(error = %e, "offset commit to the broker failed (monitoring only)");
        }
    }
}

/// Refreshes each owned partition's high watermark and message rate.
fn refresh_stats(consumer: &BaseConsumer<SourceContext>, status: &SourceStatus, elapsed: Duration) {
    let owned: Vec<i32> = status.with(|i| i.partitions.iter().filter(|(_, s)| s.owned).map(|(p, _)| *p).collect()).unwrap_or_default();
    let mut marks = Vec::with_capacity(owned.len());
    for p in owned {
        if let Ok((_, high)) = consumer.fetch_watermarks(&status.options.topic, p, Duration::from_millis(500)) {
            marks.push((p, high));
        }
    }
    status.with(|i| {
        for (p, high) in marks {
            if let Some(s) = i.partitions.get_mut(&p) {
                s.high_watermark = Some(high);
            }
        }
        for s in i.partitions.values_mut() {
            s.rate = (s.messages - s.counted) as f64 / elapsed.as_secs_f64().max(1e-3);
            s.counted = s.messages;
        }
    });
}
