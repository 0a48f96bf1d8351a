//! The catalog: table definitions persisted in storage, and each table's runtime handle.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use datafusion::arrow::datatypes::SchemaRef;
use nowdb_storage::{keys, Cf, Store, WriteSet};
use tracing::info;

use crate::change::ChangeSink;
use crate::table::{ColumnDef, Connector, EventTime, TableDef, TableKind};
use crate::{CatalogError, Result};

const TABLE_PREFIX: &[u8] = b"table/";
const TABLE_PREFIX_END: &[u8] = b"table0";
const NEXT_ID_KEY: &[u8] = b"meta/next_table_id";

/// A table's definition plus what writers share at run time.
#[derive(Debug)]
pub struct Table {
    def: TableDef,
    schema: SchemaRef,
    store: Arc<dyn Store>,
    /// Next append-log sequence number (event tables).
    next_seq: AtomicU64,
    /// Serializes read-check-write sequences on keyed tables (uniqueness, ON CONFLICT,
    /// UPDATE and DELETE from the rows they read).
    write_lock: tokio::sync::Mutex<()>,
    /// Appends hold it shared (they run concurrently); creating a view over the table holds
    /// it exclusively while it backfills, so no append slips between backfill and view.
    append_gate: tokio::sync::RwLock<()>,
    /// What derives from this table's writes (the view engine), shared with the catalog.
    sink: Arc<OnceLock<Arc<dyn ChangeSink>>>,
}

impl Table {
    /// The definition.
    pub fn def(&self) -> &TableDef {
        &self.def
    }

    /// Table name.
    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// The Arrow schema of the rows.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The store the rows live in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Whether rows are stored by key (keyed tables and views), not in an append log.
    pub fn is_keyed(&self) -> bool {
        matches!(self.def.kind, TableKind::Keyed { .. } | TableKind::View(_))
    }

    /// Whether this is a continuous view.
    pub fn is_view(&self) -> bool {
        matches!(self.def.kind, TableKind::View(_))
    }

    /// The sink observing this table's writes, if any does.
    pub fn observer(&self) -> Option<&Arc<dyn ChangeSink>> {
        self.sink.get().filter(|s| s.observes(self))
    }

    /// Holds the append gate shared (appends run under it).
    pub async fn share_appends(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.append_gate.read().await
    }

    /// Excludes every writer of this table: keyed writers and appends. Held while a view
    /// over the table is created and backfilled.
    pub async fn exclude_writers(&self) -> (WriteGuard<'_>, tokio::sync::RwLockWriteGuard<'_, ()>) {
        let lock = self.lock_writes().await;
        (lock, self.append_gate.write().await)
    }

    /// Takes the table's write lock. UPDATE and DELETE hold it from reading the rows they change
    /// until their write is durable, so concurrent read-modify-writes do not lose updates.
    pub async fn lock_writes(&self) -> WriteGuard<'_> {
        WriteGuard(self.write_lock.lock().await)
    }

    /// Reserves `n` consecutive append-log sequence numbers; returns the first.
    pub(crate) fn reserve_seqs(&self, n: u64) -> u64 {
        self.next_seq.fetch_add(n, Ordering::SeqCst)
    }
}

/// Proof that the holder has the table's write lock.
#[derive(Debug)]
pub struct WriteGuard<'a>(#[allow(dead_code)] tokio::sync::MutexGuard<'a, ()>);

/// All tables, persisted in [`Cf::Catalog`].
#[derive(Debug)]
pub struct Catalog {
    store: Arc<dyn Store>,
    tables: RwLock<BTreeMap<String, Arc<Table>>>,
    /// Serializes DDL so that ids and names are assigned once.
    ddl_lock: std::sync::Mutex<()>,
    /// Bumped by every DDL, so that prepared plans know to re-plan.
    generation: AtomicU64,
    /// Set once by the view engine.
    sink: Arc<OnceLock<Arc<dyn ChangeSink>>>,
}

impl Catalog {
    /// Loads the catalog from `store`.
    pub fn open(store: Arc<dyn Store>) -> Result<Self> {
        let mut defs = Vec::new();
        store.scan(Cf::Catalog, TABLE_PREFIX, TABLE_PREFIX_END, &mut |_, v| {
            let def: TableDef = serde_json::from_slice(v).map_err(|e| {
                nowdb_storage::StorageError::Corrupt(format!("table definition: {e}"))
            })?;
            defs.push(def);
            Ok(nowdb_storage::ScanControl::Continue)
        })?;
        let mut tables = BTreeMap::new();
        let sink = Arc::new(OnceLock::new());
        for def in defs {
            let table = Self::table_handle(&store, &sink, def)?;
            info!(table = table.name(), id = table.def.id, keyed = table.is_keyed(), "recovered table");
            tables.insert(table.def.name.clone(), Arc::new(table));
        }
        Ok(Self { store, tables: RwLock::new(tables), ddl_lock: std::sync::Mutex::new(()), generation: AtomicU64::new(0), sink })
    }

    /// Installs the sink that follows table writes (once; later calls are ignored).
    pub fn set_change_sink(&self, sink: Arc<dyn ChangeSink>) {
        let _ = self.sink.set(sink);
    }

    fn table_handle(store: &Arc<dyn Store>, sink: &Arc<OnceLock<Arc<dyn ChangeSink>>>, def: TableDef) -> Result<Table> {
        let next_seq = match def.kind {
            TableKind::Event => {
                match store.last_key(Cf::Log, &keys::table_start(def.id), &keys::table_end(def.id))? {
                    Some(k) => keys::log_seq(&k)? + 1,
                    None => 0,
                }
            }
            TableKind::Keyed { .. } | TableKind::View(_) => 0,
        };
        Ok(Table {
            schema: def.arrow_schema(),
            def,
            store: store.clone(),
            next_seq: AtomicU64::new(next_seq),
            write_lock: tokio::sync::Mutex::new(()),
            append_gate: tokio::sync::RwLock::new(()),
            sink: sink.clone(),
        })
    }

    /// The store behind the catalog.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Changes whenever a table is created or dropped.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Looks a table up by name.
    pub fn table(&self, name: &str) -> Option<Arc<Table>> {
        self.tables.read().ok()?.get(name).cloned()
    }

    /// Looks a table up by name, or fails with 42P01.
    pub fn require(&self, name: &str) -> Result<Arc<Table>> {
        self.table(name).ok_or_else(|| CatalogError::NoSuchTable(name.to_string()))
    }

    /// All tables, by name.
    pub fn tables(&self) -> Vec<Arc<Table>> {
        self.tables.read().map(|t| t.values().cloned().collect()).unwrap_or_default()
    }

    /// Number of tables.
    pub fn len(&self) -> usize {
        self.tables.read().map(|t| t.len()).unwrap_or(0)
    }

    /// Whether there are no tables.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every JSON value stored in [`Cf::Catalog`] under keys in `[start, end)` (model and sink
    /// definitions); `what` names them in a corruption error.
    pub(crate) fn json_entries<T: serde::de::DeserializeOwned>(&self, start: &[u8], end: &[u8], what: &str) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.store().scan(Cf::Catalog, start, end, &mut |_, v| {
            out.push(serde_json::from_slice(v).map_err(|e| nowdb_storage::StorageError::Corrupt(format!("{what}: {e}")))?);
            Ok(nowdb_storage::ScanControl::Continue)
        })?;
        Ok(out)
    }

    /// Creates a table. Returns `Ok(false)` when it exists and `if_not_exists` is set.
    pub fn create_table(
        &self,
        name: &str,
        columns: Vec<ColumnDef>,
        primary_key: Vec<String>,
        event_time: EventTime,
        connector: Option<Connector>,
        if_not_exists: bool,
    ) -> Result<bool> {
        let _ddl = self.ddl_lock.lock().map_err(|_| poisoned())?;
        if self.table(name).is_some() {
            return if if_not_exists { Ok(false) } else { Err(CatalogError::TableExists(name.into())) };
        }
        let id = self.next_table_id()?;
        let mut def = TableDef::new(id, name.to_string(), columns, primary_key)?;
        def.event_time = event_time;
        def.connector = connector;
        // Nothing may be stored under a new id; clear what a crashed view backfill left.
        let mut ws = WriteSet::new();
        for cf in Cf::ALL {
            ws.delete_range(cf, keys::table_start(id), keys::table_end(id));
        }
        self.persist_new(def, ws)?;
        info!(table = name, id, "created table");
        Ok(true)
    }

    /// Reserves the id a view about to be created will get, and holds DDL off until
    /// [`Catalog::create_view`] (or the returned guard's drop).
    pub fn begin_view(&self) -> Result<(u32, std::sync::MutexGuard<'_, ()>)> {
        let guard = self.ddl_lock.lock().map_err(|_| poisoned())?;
        Ok((self.next_table_id()?, guard))
    }

    /// Creates a view from its definition (built with [`TableDef::new_view`] and the id from
    /// [`Catalog::begin_view`]); `backfill` holds the view's initial rows and state,
    /// committed with the definition.
    pub fn create_view(&self, _ddl: std::sync::MutexGuard<'_, ()>, def: TableDef, backfill: WriteSet) -> Result<Arc<Table>> {
        if def.view().is_none() {
            return Err(CatalogError::InvalidDefinition(format!("\"{}\" is not a view definition", def.name)));
        }
        if self.table(&def.name).is_some() {
            return Err(CatalogError::TableExists(def.name));
        }
        let (name, id) = (def.name.clone(), def.id);
        let table = self.persist_new(def, backfill)?;
        info!(view = name, id, "created materialized view");
        Ok(table)
    }

    fn persist_new(&self, def: TableDef, mut ws: WriteSet) -> Result<Arc<Table>> {
        let id = def.id;
        ws.put(Cf::Catalog, table_key(id), serde_json::to_vec(&def).map_err(json_err)?);
        ws.put(Cf::Catalog, NEXT_ID_KEY.to_vec(), (id + 1).to_be_bytes().to_vec());
        self.store.write(ws)?;
        let name = def.name.clone();
        let table = Arc::new(Self::table_handle(&self.store, &self.sink, def)?);
        self.tables.write().map_err(|_| poisoned())?.insert(name, table.clone());
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(table)
    }

    /// The views that read `name` directly.
    pub fn dependents(&self, name: &str) -> Vec<Arc<Table>> {
        self.tables()
            .into_iter()
            .filter(|t| t.def.view().is_some_and(|v| v.sources.iter().any(|s| s == name)))
            .collect()
    }

    /// Drops a table or view and all its rows and state. Returns `Ok(false)` when absent and
    /// `if_exists` is set. Views reading it are dropped too with `cascade`; without, their
    /// existence fails the drop (2BP01).
    pub fn drop_table(&self, name: &str, if_exists: bool, cascade: bool) -> Result<bool> {
        let _ddl = self.ddl_lock.lock().map_err(|_| poisoned())?;
        let Some(table) = self.table(name) else {
            return if if_exists { Ok(false) } else { Err(CatalogError::NoSuchTable(name.into())) };
        };
        // Everything that (transitively) reads it, dependents before what they read.
        let mut doomed = vec![table];
        let mut i = 0;
        while i < doomed.len() {
            for d in self.dependents(doomed[i].name()) {
                if !doomed.iter().any(|t| t.def.id == d.def.id) {
                    doomed.push(d);
                }
            }
            i += 1;
        }
        if doomed.len() > 1 && !cascade {
            return Err(CatalogError::DependentObjects {
                name: name.to_string(),
                dependent: doomed[1].name().to_string(),
            });
        }
        let mut ws = WriteSet::new();
        for t in &doomed {
            let id = t.def.id;
            ws.delete(Cf::Catalog, table_key(id));
            for cf in [Cf::Log, Cf::LogStats, Cf::Rows, Cf::ViewState, Cf::History] {
                ws.delete_range(cf, keys::table_start(id), keys::table_end(id));
            }
        }
        self.store.write(ws)?;
        let mut tables = self.tables.write().map_err(|_| poisoned())?;
        for t in doomed.iter().rev() {
            tables.remove(t.name());
            info!(table = t.name(), id = t.def.id, "dropped");
        }
        drop(tables);
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(true)
    }

    /// Tells prepared plans to re-plan (a DDL that changes what names mean, e.g. a model's
    /// function replaced in the query context).
    pub fn bump_generation(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn next_table_id(&self) -> Result<u32> {
        let persisted = match self.store.get(Cf::Catalog, NEXT_ID_KEY)? {
            Some(v) => u32::from_be_bytes(v.as_slice().try_into().map_err(|_| {
                nowdb_storage::StorageError::Corrupt("next table id".into())
            })?),
            None => 1,
        };
        let in_use = self.tables().iter().map(|t| t.def.id + 1).max().unwrap_or(1);
        Ok(persisted.max(in_use))
    }
}

fn table_key(id: u32) -> Vec<u8> {
    let mut k = TABLE_PREFIX.to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn json_err(e: serde_json::Error) -> CatalogError {
    CatalogError::Storage(nowdb_storage::StorageError::Corrupt(e.to_string()))
}

fn poisoned() -> CatalogError {
    CatalogError::Storage(nowdb_storage::StorageError::Corrupt("catalog lock poisoned".into()))
}
