//! The catalog: table definitions persisted in storage, and each table's runtime handle.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use datafusion::arrow::datatypes::SchemaRef;
use nowdb_storage::{keys, Cf, Store, WriteSet};
use tracing::info;

use crate::table::{ColumnDef, TableDef, TableKind};
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

    /// Whether this is a keyed table.
    pub fn is_keyed(&self) -> bool {
        matches!(self.def.kind, TableKind::Keyed { .. })
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
        for def in defs {
            let table = Self::table_handle(&store, def)?;
            info!(table = table.name(), id = table.def.id, keyed = table.is_keyed(), "recovered table");
            tables.insert(table.def.name.clone(), Arc::new(table));
        }
        Ok(Self { store, tables: RwLock::new(tables), ddl_lock: std::sync::Mutex::new(()), generation: AtomicU64::new(0) })
    }

    fn table_handle(store: &Arc<dyn Store>, def: TableDef) -> Result<Table> {
        let next_seq = match def.kind {
            TableKind::Event => {
                match store.last_key(Cf::Log, &keys::table_start(def.id), &keys::table_end(def.id))? {
                    Some(k) => keys::log_seq(&k)? + 1,
                    None => 0,
                }
            }
            TableKind::Keyed { .. } => 0,
        };
        Ok(Table {
            schema: def.arrow_schema(),
            def,
            store: store.clone(),
            next_seq: AtomicU64::new(next_seq),
            write_lock: tokio::sync::Mutex::new(()),
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

    /// Creates a table. Returns `Ok(false)` when it exists and `if_not_exists` is set.
    pub fn create_table(
        &self,
        name: &str,
        columns: Vec<ColumnDef>,
        primary_key: Vec<String>,
        if_not_exists: bool,
    ) -> Result<bool> {
        let _ddl = self.ddl_lock.lock().map_err(|_| poisoned())?;
        if self.table(name).is_some() {
            return if if_not_exists { Ok(false) } else { Err(CatalogError::TableExists(name.into())) };
        }
        let id = self.next_table_id()?;
        let def = TableDef::new(id, name.to_string(), columns, primary_key)?;
        let mut ws = WriteSet::new();
        ws.put(Cf::Catalog, table_key(id), serde_json::to_vec(&def).map_err(json_err)?);
        ws.put(Cf::Catalog, NEXT_ID_KEY.to_vec(), (id + 1).to_be_bytes().to_vec());
        self.store.write(ws)?;
        let table = Arc::new(Self::table_handle(&self.store, def)?);
        self.tables.write().map_err(|_| poisoned())?.insert(name.to_string(), table);
        self.generation.fetch_add(1, Ordering::SeqCst);
        info!(table = name, id, "created table");
        Ok(true)
    }

    /// Drops a table and all its rows. Returns `Ok(false)` when absent and `if_exists` is set.
    pub fn drop_table(&self, name: &str, if_exists: bool) -> Result<bool> {
        let _ddl = self.ddl_lock.lock().map_err(|_| poisoned())?;
        let Some(table) = self.table(name) else {
            return if if_exists { Ok(false) } else { Err(CatalogError::NoSuchTable(name.into())) };
        };
        let id = table.def.id;
        let mut ws = WriteSet::new();
        ws.delete(Cf::Catalog, table_key(id));
        for cf in [Cf::Log, Cf::LogStats, Cf::Rows] {
            ws.delete_range(cf, keys::table_start(id), keys::table_end(id));
        }
        self.store.write(ws)?;
        self.tables.write().map_err(|_| poisoned())?.remove(name);
        self.generation.fetch_add(1, Ordering::SeqCst);
        info!(table = name, id, "dropped table");
        Ok(true)
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
