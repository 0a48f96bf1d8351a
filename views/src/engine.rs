//! [`ViewEngine`]: the live views, the [`ChangeSink`] that keeps them current, and view DDL.
//!
//! A write to a table reaches every view that reads it, directly or through other views:
//! the engine locks those views (in id order, so two writers never deadlock), applies the
//! change to each in dependency order (a view's changed rows are the change its readers
//! see), and adds all state and row writes to the writer's own write set. The locks are held
//! until that write set is durable, so views change exactly with their base rows.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::execution::context::SessionState;
use nowdb_catalog::{Catalog, ChangeSink, ColumnDef, Derived, EventTime, RowSet, SqlType, Table, TableChange, TableDef, ViewMeta};
use nowdb_storage::{codec, keys, rowcodec, Cf, ScanControl, Store, WriteSet};
use tracing::{info, warn};

use crate::apply::{self, Applied, ViewTarget};
use crate::history::{self, Stamping};
use crate::plan::{compile, ViewPlan};
use crate::state;
use crate::stats::{ViewCounters, ViewDescription, ViewStats};
use crate::{Result, ViewError};

/// Rows per change batch when backfilling a view from history.
const BACKFILL_ROWS: usize = 8192;

/// Options of `CREATE MATERIALIZED VIEW ... WITH (...)`.
#[derive(Debug, Clone, Copy)]
pub struct ViewOptions {
    /// Rows (windowed views) and history versions are purged this long (event time) after
    /// the view's latest event time.
    pub retention_micros: Option<i64>,
    /// Whether the view keeps the history of its rows.
    pub history: bool,
}

impl Default for ViewOptions {
    fn default() -> Self {
        Self { retention_micros: None, history: true }
    }
}

/// Microseconds since the Unix epoch, now.
fn now_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// How a change reaching `plan` is stamped: rows without an event time of their own take the
/// time of the change that made them (`upstream`: a lower view's versions), else the view's
/// clock when its stream has event time, else the wall clock.
fn stamping(plan: &ViewPlan, history: bool, clock: Option<i64>, upstream: Option<i64>, seq: u64) -> Stamping {
    let default = match (upstream, plan.stream.time_col) {
        (Some(t), _) => t,
        (None, Some(_)) => clock.unwrap_or_else(now_micros),
        (None, None) => now_micros(),
    };
    Stamping { keep: history, clock, default, seq }
}

/// A view the engine maintains.
#[derive(Debug)]
pub struct LiveView {
    id: u32,
    name: String,
    query: String,
    /// The compiled definition, or why it failed to compile at startup. Replaced (under
    /// `lock`) when a model it calls gets a new version.
    compiled: RwLock<std::result::Result<Arc<ViewPlan>, String>>,
    /// Ids of the tables and views read.
    sources: Vec<u32>,
    /// The stored schema of its rows.
    stored: SchemaRef,
    /// Whether it keeps the history of its rows.
    history: bool,
    /// The sequence number of its next history batch.
    history_seq: AtomicU64,
    lock: Arc<tokio::sync::Mutex<()>>,
    stats: ViewStats,
    /// When the view last switched to a new version of a model it calls (microseconds since
    /// the epoch).
    models_switched_at: Mutex<Option<i64>>,
}

impl LiveView {
    fn reads(&self, table: u32) -> bool {
        self.sources.contains(&table)
    }

    fn plan(&self) -> Result<Arc<ViewPlan>> {
        match &*self.compiled.read().map_err(|_| poisoned())? {
            Ok(plan) => Ok(plan.clone()),
            Err(reason) => Err(ViewError::Broken { name: self.name.clone(), reason: reason.clone() }),
        }
    }

    /// Whether the view calls model `name`.
    fn calls(&self, model: &str) -> bool {
        self.plan().is_ok_and(|p| p.models.iter().any(|(m, _)| m == model))
    }
}

/// All live views.
#[derive(Debug)]
pub struct ViewEngine {
    catalog: Arc<Catalog>,
    views: RwLock<BTreeMap<u32, Arc<LiveView>>>,
    /// Greatest event time (microseconds) seen per table with a watermark.
    event_times: Arc<Mutex<HashMap<u32, i64>>>,
}

fn poisoned() -> ViewError {
    ViewError::InvalidDefinition("view registry lock poisoned".into())
}

impl ViewEngine {
    /// An engine over `catalog`, with no views loaded yet (see [`ViewEngine::load`]).
    pub fn new(catalog: Arc<Catalog>) -> Arc<Self> {
        Arc::new(Self { catalog, views: RwLock::new(BTreeMap::new()), event_times: Default::default() })
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.catalog.store()
    }

    /// Compiles every stored view definition (at startup, after the catalog is open). A view
    /// that no longer compiles stays listed and makes writes to its sources fail, rather than
    /// silently falling behind.
    pub async fn load(&self, state: &SessionState) -> Result<()> {
        for table in self.catalog.tables() {
            if table.def().event_time.watermark.is_some() {
                if let Some(v) = self.store().get(Cf::ViewState, &state::event_time_key(table.def().id))? {
                    if let Ok(b) = <[u8; 8]>::try_from(v.as_slice()) {
                        self.event_times.lock().map_err(|_| poisoned())?.insert(table.def().id, i64::from_le_bytes(b));
                    }
                }
            }
        }
        let mut views: Vec<Arc<Table>> = self.catalog.tables().into_iter().filter(|t| t.is_view()).collect();
        views.sort_by_key(|t| t.def().id);
        for t in views {
            let Some(meta) = t.def().view() else { continue };
            let compiled = compile(state, &self.catalog, &meta.query).await.map(Arc::new).map_err(|e| e.to_string());
            if let Err(e) = &compiled {
                warn!(view = t.name(), error = %e, "materialized view failed to compile");
            }
            let sources = meta.sources.iter().filter_map(|s| self.catalog.table(s)).map(|s| s.def().id).collect();
            let counters = match self.store().get(Cf::ViewState, &state::stats_key(t.def().id))? {
                Some(v) => serde_json::from_slice(&v).unwrap_or_default(),
                None => ViewCounters::default(),
            };
            let live = LiveView {
                id: t.def().id,
                name: t.name().to_string(),
                query: meta.query.clone(),
                compiled: RwLock::new(compiled),
                sources,
                stored: t.schema().clone(),
                history: meta.history,
                history_seq: AtomicU64::new(history::next_seq(self.store().as_ref(), t.def().id)?),
                lock: Default::default(),
                stats: ViewStats { counters: Mutex::new(counters), last_update_micros: Mutex::new(None) },
                models_switched_at: Mutex::new(None),
            };
            info!(view = t.name(), id = t.def().id, "loaded materialized view");
            self.views.write().map_err(|_| poisoned())?.insert(live.id, Arc::new(live));
        }
        Ok(())
    }

    /// Views affected by a write to `table`, directly or through other views, by id.
    fn affected(&self, table: u32) -> Vec<Arc<LiveView>> {
        let Ok(views) = self.views.read() else { return Vec::new() };
        let mut out: Vec<Arc<LiveView>> = Vec::new();
        let mut frontier = vec![table];
        while let Some(src) = frontier.pop() {
            for v in views.values() {
                if v.reads(src) && !out.iter().any(|o| o.id == v.id) {
                    out.push(v.clone());
                    frontier.push(v.id);
                }
            }
        }
        out.sort_by_key(|v| v.id);
        out
    }

    fn late_before(&self, view: &ViewPlan, table: &Table) -> Option<i64> {
        let (ts_col, _) = view.stream.window?;
        let (wm_col, delay) = table.def().event_time.watermark?;
        if view.stream.table_id != table.def().id || wm_col != ts_col {
            return None;
        }
        let max = *self.event_times.lock().ok()?.get(&table.def().id)?;
        Some(max.saturating_sub(delay))
    }

    /// The watermark (microseconds) of a view's windowed source, if it has one.
    fn view_watermark(&self, v: &LiveView) -> Option<i64> {
        let plan = v.plan().ok()?;
        let table = self.catalog.table(&plan.stream.table)?;
        self.late_before(&plan, &table)
    }

    /// Rows of `nowdb_catalog.views`.
    pub fn describe(&self) -> Vec<ViewDescription> {
        let Ok(views) = self.views.read() else { return Vec::new() };
        let mut out: Vec<ViewDescription> = views
            .values()
            .map(|v| ViewDescription {
                name: v.name.clone(),
                definition: v.query.clone(),
                counters: v.stats.counters.lock().map(|c| c.clone()).unwrap_or_default(),
                watermark: self.view_watermark(v),
                last_update_micros: v.stats.last_update_micros.lock().ok().and_then(|l| *l),
                models: v
                    .plan()
                    .map(|p| p.models.iter().map(|(m, ver)| format!("{m} v{ver}")).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default(),
                models_switched_at: v.models_switched_at.lock().ok().and_then(|t| *t),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// `CREATE MATERIALIZED VIEW name AS query`: compiles it (refusing what cannot be
    /// maintained), backfills it from the current rows of its sources with their writers held
    /// off, and starts maintaining it. `Ok(false)` when it exists and `if_not_exists` is set.
    pub async fn create(&self, state: &SessionState, name: &str, query: &str, if_not_exists: bool, options: ViewOptions) -> Result<bool> {
        if self.catalog.table(name).is_some() {
            return if if_not_exists { Ok(false) } else { Err(nowdb_catalog::CatalogError::TableExists(name.into()).into()) };
        }
        let plan = compile(state, &self.catalog, query).await?;
        if plan.join.as_ref().is_some_and(|j| j.right_id == plan.stream.table_id) {
            return Err(ViewError::NotIncremental("a JOIN of a table with itself".into()));
        }
        let mut columns: Vec<ColumnDef> = Vec::with_capacity(plan.output_schema.fields().len());
        for f in plan.output_schema.fields() {
            let ty = SqlType::from_arrow(f.data_type()).ok_or_else(|| {
                ViewError::NotIncremental(format!("output column \"{}\" of type {}", f.name(), f.data_type()))
            })?;
            if columns.iter().any(|c| &c.name == f.name()) {
                return Err(ViewError::InvalidDefinition(format!("column \"{}\" specified more than once", f.name())));
            }
            columns.push(ColumnDef { name: f.name().clone(), ty, nullable: true });
        }
        let stored: SchemaRef = Arc::new(Schema::new(
            columns.iter().map(|c| Field::new(&c.name, c.ty.arrow_type(), true)).collect::<Vec<_>>(),
        ));

        // Hold off every writer of the base tables underneath, so history and live changes
        // meet exactly once.
        let mut base: Vec<Arc<Table>> = Vec::new();
        let mut pending = plan.sources();
        while let Some(s) = pending.pop() {
            let t = self.catalog.require(&s)?;
            match t.def().view() {
                Some(meta) => pending.extend(meta.sources.iter().cloned()),
                None => {
                    if !base.iter().any(|b| b.def().id == t.def().id) {
                        base.push(t);
                    }
                }
            }
        }
        base.sort_by_key(|t| t.def().id);
        let mut guards = Vec::with_capacity(base.len());
        for t in &base {
            guards.push(t.exclude_writers().await);
        }

        let (id, ddl) = self.catalog.begin_view()?;
        if self.catalog.table(name).is_some() {
            return if if_not_exists { Ok(false) } else { Err(nowdb_catalog::CatalogError::TableExists(name.into()).into()) };
        }
        let source = self.catalog.require(&plan.stream.table)?;
        // A view over a view starts its history at the lower view's latest version time.
        let upstream = self.views.read().map_err(|_| poisoned())?.values().find(|v| v.id == source.def().id).and_then(|v| v.stats.counters.lock().ok().and_then(|c| c.history_clock));
        let mut ws = WriteSet::new();
        for cf in [Cf::Rows, Cf::ViewState, Cf::History] {
            ws.delete_range(cf, keys::table_start(id), keys::table_end(id));
        }
        let mut counters = ViewCounters::default();
        let store = self.store().clone();
        let fold = |applied: &Applied, counters: &mut ViewCounters| {
            counters.rows += applied.rows_delta;
            counters.events_processed += applied.events;
            if let Some(t) = applied.max_event_time {
                counters.last_event_time = Some(counters.last_event_time.map_or(t, |c| c.max(t)));
            }
            counters.history_clock = counters.history_clock.max(applied.max_stamp);
        };
        let mut seq = 0;
        let backfill = read_rows(&source, &mut |rows| {
            let change = TableChange { removed: None, added: Some(rows) };
            let stamping = stamping(&plan, options.history, counters.history_clock, upstream, seq);
            seq += 1;
            let target = ViewTarget { id, plan: &plan, stored: &stored, store: &store, late_before: None, stamping };
            let applied = apply::apply(&target, plan.stream.table_id, &change, &mut ws)?;
            fold(&applied, &mut counters);
            // The next batch reads the state this one wrote. Nothing reads the view before its
            // catalog entry commits; a failure clears what was written (below), and a crash
            // leaves it to the next object created with this id, which clears it first.
            store.write(std::mem::take(&mut ws))?;
            Ok(())
        });
        if let Err(e) = backfill {
            let mut undo = WriteSet::new();
            for cf in [Cf::Rows, Cf::ViewState, Cf::History] {
                undo.delete_range(cf, keys::table_start(id), keys::table_end(id));
            }
            if let Err(undo_error) = store.write(undo) {
                warn!(view = name, error = %undo_error, "could not clear a failed backfill");
            }
            return Err(e);
        }
        let mut initial = Applied::default();
        let stamping = stamping(&plan, options.history, counters.history_clock, upstream, seq);
        let target = ViewTarget { id, plan: &plan, stored: &stored, store: self.store(), late_before: None, stamping };
        apply::init_global(&target, &mut ws, &mut initial)?;
        fold(&initial, &mut counters);
        ws.put(Cf::ViewState, state::stats_key(id), serde_json::to_vec(&counters).unwrap_or_default());

        let key = plan.key.clone();
        let window_end = plan.window_end;
        let meta = ViewMeta { query: query.to_string(), primary_key: key, sources: plan.sources(), window_end, history: options.history };
        let event_time = EventTime { watermark: None, retention_micros: options.retention_micros };
        let def = TableDef::new_view(id, name.to_string(), columns, meta, event_time)?;
        let view = self.catalog.create_view(ddl, def, ws)?;
        let sources = plan.sources().iter().filter_map(|s| self.catalog.table(s)).map(|t| t.def().id).collect();
        let live = LiveView {
            id,
            name: name.to_string(),
            query: query.to_string(),
            compiled: RwLock::new(Ok(Arc::new(plan))),
            sources,
            stored: view.schema().clone(),
            history: options.history,
            history_seq: AtomicU64::new(seq + 1),
            lock: Default::default(),
            stats: ViewStats { counters: Mutex::new(counters), last_update_micros: Mutex::new(None) },
            models_switched_at: Mutex::new(None),
        };
        self.views.write().map_err(|_| poisoned())?.insert(id, Arc::new(live));
        drop(guards);
        Ok(true)
    }

    /// Names of the views that call model `model`, in creation order.
    pub fn calling_model(&self, model: &str) -> Vec<String> {
        let Ok(views) = self.views.read() else { return Vec::new() };
        views.values().filter(|v| v.calls(model)).map(|v| v.name.clone()).collect()
    }

    /// Switches every view calling `model` to the version now registered in `state`: each is
    /// compiled again and its plan swapped while its maintenance lock is held, so every
    /// change committed after this returns is scored by the new version, and every change
    /// committed before it by the old one. Rows no change has touched since keep the score
    /// they were computed with. Returns the views switched.
    pub async fn switch_model(&self, state: &SessionState, model: &str) -> Result<Vec<String>> {
        let calling: Vec<Arc<LiveView>> = {
            let views = self.views.read().map_err(|_| poisoned())?;
            views.values().filter(|v| v.calls(model)).cloned().collect()
        };
        let mut switched = Vec::with_capacity(calling.len());
        for v in calling {
            let _guard = v.lock.clone().lock_owned().await;
            let plan = compile(state, &self.catalog, &v.query).await?;
            *v.compiled.write().map_err(|_| poisoned())? = Ok(Arc::new(plan));
            *v.models_switched_at.lock().map_err(|_| poisoned())? = Some(now_micros());
            info!(view = %v.name, model, "materialized view switched to the new model version");
            switched.push(v.name.clone());
        }
        Ok(switched)
    }

    /// Forgets views the catalog no longer has (after a DROP).
    pub fn forget_dropped(&self) {
        if let Ok(mut views) = self.views.write() {
            views.retain(|id, v| self.catalog.table(&v.name).is_some_and(|t| t.def().id == *id));
        }
    }

    /// Purges rows of views with a retention whose window ended longer ago than the
    /// retention before the view's latest event time. Runs off the write path; returns the
    /// number of rows purged.
    pub async fn purge_expired(&self) -> Result<u64> {
        let views: Vec<Arc<LiveView>> = self.views.read().map_err(|_| poisoned())?.values().cloned().collect();
        let mut purged = 0;
        for v in views {
            let Some(table) = self.catalog.table(&v.name) else { continue };
            let (Some(retention), Some(meta)) = (table.def().event_time.retention_micros, table.def().view()) else { continue };
            let counters = v.stats.counters.lock().map_err(|_| poisoned())?.clone();
            let _guard = v.lock.lock().await;
            if let Some(clock) = counters.history_clock.filter(|_| v.history) {
                purged += history::purge_before(self.store().as_ref(), v.id, clock.saturating_sub(retention))?;
            }
            let (Some(end_col), Some(latest)) = (meta.window_end, counters.last_event_time) else { continue };
            let horizon = latest.saturating_sub(retention);
            purged += purge_view(self.store(), &table, &v, end_col, horizon)?;
        }
        Ok(purged)
    }
}

/// Deletes a windowed view's rows (and their group state) whose window ended before
/// `horizon` (microseconds).
fn purge_view(store: &Arc<dyn Store>, table: &Table, v: &LiveView, end_col: usize, horizon: i64) -> Result<u64> {
    let id = table.def().id;
    let mut ws = WriteSet::new();
    let mut purged = 0u64;
    let mut counters_delta = 0i64;
    store.scan(Cf::Rows, &keys::table_start(id), &keys::table_end(id), &mut |k, val| {
        let row = rowcodec::decode_rows([val], table.schema(), Some(&[end_col]))?;
        let ends = nowdb_udfs::window::timestamps(row.column(0).as_ref()).map_err(|e| nowdb_storage::StorageError::Corrupt(e.to_string()))?;
        let unit = match row.column(0).data_type() {
            datafusion::arrow::datatypes::DataType::Timestamp(u, _) => *u,
            _ => return Ok(ScanControl::Continue),
        };
        if let Some(Some(end)) = ends.first() {
            if nowdb_udfs::window::unit_to_micros(*end, &unit) < horizon {
                ws.delete(Cf::Rows, k.to_vec());
                ws.delete(Cf::ViewState, state::group_key(id, &k[4..]));
                let prefix_end = |a: usize| state::prefix_end(&state::values_prefix(id, a, &k[4..]));
                if let Ok(crate::plan::Shape::Aggregate(agg)) = v.plan().map(|p| p.shape.clone()) {
                    for a in 0..agg.aggs.len() {
                        ws.delete_range(Cf::ViewState, state::values_prefix(id, a, &k[4..]), prefix_end(a));
                    }
                }
                purged += 1;
                counters_delta -= 1;
            }
        }
        Ok(ScanControl::Continue)
    })?;
    if purged > 0 {
        let counters = {
            let mut c = v.stats.counters.lock().map_err(|_| poisoned())?;
            c.rows += counters_delta;
            c.clone()
        };
        ws.put(Cf::ViewState, state::stats_key(id), serde_json::to_vec(&counters).unwrap_or_default());
        store.write(ws)?;
    }
    Ok(purged)
}

/// Feeds every stored row of `table` to `visit`, in batches with their identities.
fn read_rows(table: &Table, visit: &mut dyn FnMut(RowSet) -> Result<()>) -> Result<()> {
    let id = table.def().id;
    let store = table.store().clone();
    let mut failure: Option<ViewError> = None;
    if table.is_keyed() {
        let mut rows: Vec<Vec<u8>> = Vec::new();
        let mut ids: Vec<Vec<u8>> = Vec::new();
        let mut flush = |rows: &mut Vec<Vec<u8>>, ids: &mut Vec<Vec<u8>>| -> Result<()> {
            if rows.is_empty() {
                return Ok(());
            }
            let batch = rowcodec::decode_rows(rows.iter().map(|v| v.as_slice()), table.schema(), None)?;
            rows.clear();
            visit(RowSet { rows: batch, ids: std::mem::take(ids) })
        };
        store.scan(Cf::Rows, &keys::table_start(id), &keys::table_end(id), &mut |k, v| {
            rows.push(v.to_vec());
            ids.push(k[4..].to_vec());
            if rows.len() >= BACKFILL_ROWS {
                if let Err(e) = flush(&mut rows, &mut ids) {
                    failure = Some(e);
                    return Ok(ScanControl::Stop);
                }
            }
            Ok(ScanControl::Continue)
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        flush(&mut rows, &mut ids)
    } else {
        store.scan(Cf::Log, &keys::table_start(id), &keys::table_end(id), &mut |k, v| {
            let b = codec::decode_batch(v)?;
            let b = RecordBatch::try_new(table.schema().clone(), b.columns().to_vec())?;
            let seq = keys::log_seq(k)?;
            let ids = RowSet::log_ids(seq, 0, b.num_rows());
            if let Err(e) = visit(RowSet { rows: b, ids }) {
                failure = Some(e);
                return Ok(ScanControl::Stop);
            }
            Ok(ScanControl::Continue)
        })?;
        failure.map_or(Ok(()), Err)
    }
}

/// What a maintenance step holds until its write is durable.
struct Commit {
    _guards: Vec<tokio::sync::OwnedMutexGuard<()>>,
    stats: Vec<(Arc<LiveView>, ViewCounters)>,
    event_time: Option<(u32, i64)>,
    event_times: Arc<Mutex<HashMap<u32, i64>>>,
    started: Instant,
}

impl Derived for Commit {
    fn committed(self: Box<Self>) {
        let micros = self.started.elapsed().as_micros() as i64;
        for (v, c) in &self.stats {
            if let Ok(mut cur) = v.stats.counters.lock() {
                *cur = c.clone();
            }
            if let Ok(mut l) = v.stats.last_update_micros.lock() {
                *l = Some(micros);
            }
        }
        if let (Some((t, m)), Ok(mut times)) = (self.event_time, self.event_times.lock()) {
            let e = times.entry(t).or_insert(m);
            *e = (*e).max(m);
        }
    }
}

#[async_trait]
impl ChangeSink for ViewEngine {
    fn observes(&self, table: &Table) -> bool {
        let id = table.def().id;
        table.def().event_time.watermark.is_some() || self.views.read().map(|v| v.values().any(|v| v.reads(id))).unwrap_or(false)
    }

    async fn derive(&self, table: &Table, change: TableChange, ws: &mut WriteSet) -> nowdb_catalog::Result<Box<dyn Derived>> {
        let started = Instant::now();
        let table_id = table.def().id;
        let affected = self.affected(table_id);
        let mut guards = Vec::with_capacity(affected.len());
        for v in &affected {
            guards.push(v.lock.clone().lock_owned().await);
        }
        // The table's event time, for its watermark.
        let mut event_time = None;
        if let (Some((col, _)), Some(added)) = (table.def().event_time.watermark, &change.added) {
            let array = added.rows.column(col);
            if let datafusion::arrow::datatypes::DataType::Timestamp(unit, _) = array.data_type() {
                let max = nowdb_udfs::window::timestamps(array.as_ref())?.into_iter().flatten().max();
                if let Some(m) = max.map(|m| nowdb_udfs::window::unit_to_micros(m, unit)) {
                    let cur = self.event_times.lock().ok().and_then(|t| t.get(&table_id).copied());
                    let new = cur.map_or(m, |c| c.max(m));
                    ws.put(Cf::ViewState, state::event_time_key(table_id), new.to_le_bytes().to_vec());
                    event_time = Some((table_id, new));
                }
            }
        }
        let mut stats = Vec::new();
        // Each change with the greatest version time of the view that made it.
        let mut queue: Vec<(u32, TableChange, Option<i64>)> = vec![(table_id, change, None)];
        let mut next = 0;
        while next < queue.len() {
            // Each change is applied once per reader, then not needed again.
            let (src, change, upstream) = (queue[next].0, std::mem::take(&mut queue[next].1), queue[next].2);
            next += 1;
            for v in affected.iter().filter(|v| v.reads(src)) {
                let plan = v.plan().map_err(nowdb_catalog::CatalogError::from)?;
                let late_before = if src == table_id { self.late_before(&plan, table) } else { None };
                let mut c = v.stats.counters.lock().map(|c| c.clone()).unwrap_or_default();
                let stamping = stamping(&plan, v.history, c.history_clock, upstream, v.history_seq.fetch_add(1, Ordering::Relaxed));
                let target = ViewTarget { id: v.id, plan: &plan, stored: &v.stored, store: self.store(), late_before, stamping };
                let applied = apply::apply(&target, src, &change, ws).map_err(nowdb_catalog::CatalogError::from)?;
                c.history_clock = c.history_clock.max(applied.max_stamp);
                c.rows += applied.rows_delta;
                c.events_processed += applied.events;
                c.late_events_dropped += applied.late;
                if let Some(t) = applied.max_event_time {
                    c.last_event_time = Some(c.last_event_time.map_or(t, |x| x.max(t)));
                }
                ws.put(Cf::ViewState, state::stats_key(v.id), serde_json::to_vec(&c).unwrap_or_default());
                stats.push((v.clone(), c));
                if applied.out.removed.is_some() || applied.out.added.is_some() {
                    queue.push((v.id, applied.out, applied.max_stamp));
                }
            }
        }
        Ok(Box::new(Commit { _guards: guards, stats, event_time, event_times: self.event_times.clone(), started }))
    }
}
