//! Row writes with Postgres constraint semantics.
//!
//! Every statement becomes one [`WriteSet`], committed atomically and durably before the
//! statement is acknowledged. Keyed tables serialize their read-check-write sequences on the
//! table's write lock, so uniqueness checks and `ON CONFLICT` see a stable table.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{cast_with_options, concat_batches, take, CastOptions};
use datafusion::arrow::util::display::array_value_to_string;
use nowdb_storage::{codec, keys, rowcodec, BatchStats, Cf, Store, WriteSet};

use crate::catalog::{Table, WriteGuard};
use crate::change::{RowSet, TableChange};
use crate::table::TableDef;
use crate::{CatalogError, Result};

/// Rows per stored append-log batch: the unit of min/max pruning.
pub const LOG_BATCH_ROWS: usize = 8192;

/// Computes `ON CONFLICT DO UPDATE` results.
#[async_trait]
pub trait ConflictResolver: Send + Sync {
    /// Given the stored rows and the rows proposed for insertion (`excluded`), row-aligned and
    /// both in the table's schema, returns the updated rows (table schema, same row count) and
    /// for each row whether the update applies (the `WHERE` of `DO UPDATE`).
    async fn resolve(&self, existing: RecordBatch, excluded: RecordBatch) -> Result<(RecordBatch, Vec<bool>)>;
}

/// What an INSERT does with a row whose primary key is already present.
pub enum OnConflict<'a> {
    /// Fail with 23505 (plain INSERT).
    Error,
    /// Skip the row.
    DoNothing,
    /// Replace the stored row with the resolver's result.
    DoUpdate(&'a dyn ConflictResolver),
}

/// Casts `batch` to the table's column types and enforces NOT NULL. The batch's columns must
/// be the table's columns, in order.
pub fn conform(def: &TableDef, schema: &datafusion::arrow::datatypes::SchemaRef, batch: &RecordBatch) -> Result<RecordBatch> {
    if batch.num_columns() != def.columns.len() {
        return Err(CatalogError::InvalidDefinition(format!(
            "INSERT has {} expressions but table \"{}\" has {} columns",
            batch.num_columns(),
            def.name,
            def.columns.len()
        )));
    }
    let opts = CastOptions { safe: false, ..Default::default() };
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (i, col) in batch.columns().iter().enumerate() {
        let column = &def.columns[i];
        if !column.nullable && col.null_count() > 0 {
            return Err(CatalogError::NotNullViolation {
                table: def.name.clone(),
                column: column.name.clone(),
            });
        }
        let target = schema.field(i).data_type();
        let col = if col.data_type() == target {
            col.clone()
        } else {
            cast_with_options(col, target, &opts)?
        };
        columns.push(col);
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Inserts rows; returns the number of rows inserted or updated.
pub async fn insert(table: &Table, batch: RecordBatch, on_conflict: OnConflict<'_>) -> Result<u64> {
    insert_with(table, batch, on_conflict, WriteSet::new()).await
}

/// Inserts rows and commits `extra` in the same atomic write (a stream source's consumed
/// offsets, so rows and the position they were read up to are durable together). `extra` is
/// committed even when there are no rows.
pub async fn insert_with(table: &Table, batch: RecordBatch, on_conflict: OnConflict<'_>, extra: WriteSet) -> Result<u64> {
    writable(table)?;
    let batch = conform(table.def(), table.schema(), &batch)?;
    if batch.num_rows() == 0 {
        commit(table.store(), extra).await?;
        return Ok(0);
    }
    if !table.is_keyed() {
        if !matches!(on_conflict, OnConflict::Error) {
            return Err(CatalogError::Unsupported(format!(
                "ON CONFLICT needs a primary key, and \"{}\" is an event table without one",
                table.name()
            )));
        }
        return append(table, &batch, extra).await;
    }
    let _guard = table.lock_writes().await;
    let def = table.def();
    let key_cols = key_columns(def, &batch);
    let mut row_keys = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        row_keys.push(keys::row_key(def.id, &key_cols, row)?);
    }
    let existing = table.store().multi_get(Cf::Rows, &row_keys)?;

    let mut ws = extra;
    let mut seen: HashSet<&[u8]> = HashSet::new();
    let mut conflicts: Vec<usize> = Vec::new();
    let mut affected = 0u64;
    let mut change = ChangeRows::default();
    for row in 0..batch.num_rows() {
        let key = row_keys[row].as_slice();
        let first_in_statement = seen.insert(key);
        let present = existing[row].is_some() || !first_in_statement;
        match (&on_conflict, present) {
            (_, false) => {
                ws.put(Cf::Rows, key.to_vec(), rowcodec::encode_row(&batch, row)?);
                change.added.push((batch.slice(row, 1), key[4..].to_vec()));
                affected += 1;
            }
            (OnConflict::Error, true) => {
                return Err(unique_violation(def, &key_cols, row));
            }
            (OnConflict::DoNothing, true) => {}
            (OnConflict::DoUpdate(_), true) => {
                if !first_in_statement {
                    return Err(CatalogError::Cardinality(
                        "ON CONFLICT DO UPDATE command cannot affect row a second time".into(),
                    ));
                }
                conflicts.push(row);
            }
        }
    }
    if let (OnConflict::DoUpdate(resolver), false) = (&on_conflict, conflicts.is_empty()) {
        let stored = conflicts
            .iter()
            .map(|&row| {
                existing[row].as_deref().ok_or_else(|| {
                    CatalogError::Cardinality("ON CONFLICT DO UPDATE command cannot affect row a second time".into())
                })
            })
            .collect::<Result<Vec<&[u8]>>>()?;
        let existing_rows = rowcodec::decode_rows(stored, table.schema(), None)?;
        let idx = UInt32Array::from(conflicts.iter().map(|&r| r as u32).collect::<Vec<_>>());
        let excluded = take_rows(table, &batch, &idx)?;
        let (updated, applies) = resolver.resolve(existing_rows.clone(), excluded).await?;
        let updated = conform(def, table.schema(), &updated)?;
        let new_key_cols = key_columns(def, &updated);
        for (i, &row) in conflicts.iter().enumerate() {
            if !applies.get(i).copied().unwrap_or(false) {
                continue;
            }
            let new_key = keys::row_key(def.id, &new_key_cols, i)?;
            if new_key != row_keys[row] {
                if seen.contains(new_key.as_slice()) || table.store().get(Cf::Rows, &new_key)?.is_some() {
                    return Err(unique_violation(def, &new_key_cols, i));
                }
                ws.delete(Cf::Rows, row_keys[row].clone());
            }
            change.removed.push((existing_rows.slice(i, 1), row_keys[row][4..].to_vec()));
            change.added.push((updated.slice(i, 1), new_key[4..].to_vec()));
            ws.put(Cf::Rows, new_key, rowcodec::encode_row(&updated, i)?);
            affected += 1;
        }
    }
    commit_derived(table, ws, change).await?;
    Ok(affected)
}

/// Rows a statement removed and added, one-row batches with their identities, collected
/// while the write set is built (cheap slices; only turned into a [`TableChange`] when a
/// sink observes the table).
#[derive(Default)]
struct ChangeRows {
    removed: Vec<(RecordBatch, Vec<u8>)>,
    added: Vec<(RecordBatch, Vec<u8>)>,
}

impl ChangeRows {
    fn into_change(self, table: &Table) -> Result<TableChange> {
        let set = |rows: Vec<(RecordBatch, Vec<u8>)>| -> Result<Option<RowSet>> {
            if rows.is_empty() {
                return Ok(None);
            }
            let batch = concat_batches(table.schema(), rows.iter().map(|(b, _)| b))?;
            Ok(Some(RowSet { rows: batch, ids: rows.into_iter().map(|(_, id)| id).collect() }))
        };
        Ok(TableChange { removed: set(self.removed)?, added: set(self.added)? })
    }
}

/// Commits `ws` after the table's observer (if any) added what derives from `change`.
async fn commit_derived(table: &Table, mut ws: WriteSet, change: ChangeRows) -> Result<()> {
    let derived = match table.observer() {
        Some(sink) => Some(sink.derive(table, change.into_change(table)?, &mut ws).await?),
        None => None,
    };
    commit(table.store(), ws).await?;
    if let Some(d) = derived {
        d.committed();
    }
    Ok(())
}

/// The stored rows under `row_keys` (full row keys), for the observer's `removed` rows.
fn stored_rows(table: &Table, row_keys: &[Vec<u8>]) -> Result<Vec<(RecordBatch, Vec<u8>)>> {
    let values = table.store().multi_get(Cf::Rows, row_keys)?;
    let found: Vec<(&Vec<u8>, Vec<u8>)> = row_keys.iter().zip(values).filter_map(|(k, v)| v.map(|v| (k, v))).collect();
    let rows = rowcodec::decode_rows(found.iter().map(|(_, v)| v.as_slice()), table.schema(), None)?;
    Ok(found.iter().enumerate().map(|(i, (key, _))| (rows.slice(i, 1), key[4..].to_vec())).collect())
}

fn writable(table: &Table) -> Result<()> {
    if table.is_view() {
        Err(CatalogError::ReadOnly(table.name().to_string()))
    } else {
        Ok(())
    }
}

/// Appends rows to an event table.
async fn append(table: &Table, batch: &RecordBatch, extra: WriteSet) -> Result<u64> {
    let _gate = table.share_appends().await;
    let chunks = batch.num_rows().div_ceil(LOG_BATCH_ROWS);
    let first = table.reserve_seqs(chunks as u64);
    let id = table.def().id;
    let mut ws = extra;
    let mut ids = Vec::new();
    let observer = table.observer();
    for c in 0..chunks {
        let offset = c * LOG_BATCH_ROWS;
        let slice = batch.slice(offset, LOG_BATCH_ROWS.min(batch.num_rows() - offset));
        let key = keys::log_key(id, first + c as u64);
        ws.put(Cf::LogStats, key.clone(), BatchStats::of(&slice).encode());
        ws.put(Cf::Log, key, codec::encode_batch(&slice)?);
        if observer.is_some() {
            ids.extend(RowSet::log_ids(first + c as u64, 0, slice.num_rows()));
        }
    }
    match observer {
        Some(sink) => {
            let change = TableChange { removed: None, added: Some(RowSet { rows: batch.clone(), ids }) };
            let derived = sink.derive(table, change, &mut ws).await?;
            commit(table.store(), ws).await?;
            derived.committed();
        }
        None => commit(table.store(), ws).await?,
    }
    Ok(batch.num_rows() as u64)
}

/// Deletes the rows whose primary keys are in `rows` (which holds at least the key columns,
/// named as in the table). Returns the number of rows deleted. The caller holds the table's
/// write lock since it read `rows`.
pub async fn delete(table: &Table, _lock: &WriteGuard<'_>, rows: &RecordBatch) -> Result<u64> {
    writable(table)?;
    if !table.is_keyed() {
        return Err(append_only(table));
    }
    let key_cols = named_key_columns(table.def(), rows)?;
    let mut ws = WriteSet::new();
    let mut seen = HashSet::new();
    let mut deleted = Vec::new();
    for row in 0..rows.num_rows() {
        let key = keys::row_key(table.def().id, &key_cols, row)?;
        if seen.insert(key.clone()) {
            ws.delete(Cf::Rows, key.clone());
            deleted.push(key);
        }
    }
    let n = seen.len() as u64;
    let mut change = ChangeRows::default();
    if table.observer().is_some() {
        change.removed = stored_rows(table, &deleted)?;
    }
    commit_derived(table, ws, change).await?;
    Ok(n)
}

/// Replaces rows: `old_keys` holds the key columns of the rows as they were (named as in the
/// table), `new_rows` the full new rows, row-aligned. Returns the number of rows updated. The
/// caller holds the table's write lock since it read the rows.
pub async fn update(table: &Table, _lock: &WriteGuard<'_>, old_keys: &RecordBatch, new_rows: &RecordBatch) -> Result<u64> {
    writable(table)?;
    if !table.is_keyed() {
        return Err(append_only(table));
    }
    let def = table.def();
    let new_rows = conform(def, table.schema(), new_rows)?;
    let observed = table.observer().is_some();
    let mut change = ChangeRows::default();
    let mut old_row_keys = Vec::new();
    let old_cols = named_key_columns(def, old_keys)?;
    let new_cols = key_columns(def, &new_rows);
    let mut ws = WriteSet::new();
    let mut removed: HashSet<Vec<u8>> = HashSet::new();
    let mut written: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut moved = Vec::new();
    for row in 0..new_rows.num_rows() {
        let old = keys::row_key(def.id, &old_cols, row)?;
        let new = keys::row_key(def.id, &new_cols, row)?;
        if written.insert(new.clone(), row).is_some() {
            return Err(unique_violation(def, &new_cols, row));
        }
        if observed {
            old_row_keys.push(old.clone());
            change.added.push((new_rows.slice(row, 1), new[4..].to_vec()));
        }
        if old != new {
            removed.insert(old.clone());
            ws.delete(Cf::Rows, old);
            moved.push((new.clone(), row));
        }
        ws.put(Cf::Rows, new, rowcodec::encode_row(&new_rows, row)?);
    }
    // A key moved onto a row that exists and is not itself being moved away collides.
    for (key, row) in moved {
        if !removed.contains(&key) && table.store().get(Cf::Rows, &key)?.is_some() {
            return Err(unique_violation(def, &new_cols, row));
        }
    }
    if observed {
        change.removed = stored_rows(table, &old_row_keys)?;
    }
    commit_derived(table, ws, change).await?;
    Ok(new_rows.num_rows() as u64)
}

async fn commit(store: &Arc<dyn Store>, ws: WriteSet) -> Result<()> {
    if ws.is_empty() {
        return Ok(());
    }
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.write(ws))
        .await
        .map_err(|e| CatalogError::Storage(nowdb_storage::StorageError::Io(std::io::Error::other(e))))??;
    Ok(())
}

fn key_columns(def: &TableDef, batch: &RecordBatch) -> Vec<ArrayRef> {
    def.primary_key().iter().map(|&i| batch.column(i).clone()).collect()
}

fn named_key_columns(def: &TableDef, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
    def.primary_key()
        .iter()
        .map(|&i| {
            let name = &def.columns[i].name;
            batch.column_by_name(name).cloned().ok_or_else(|| CatalogError::NoSuchColumn {
                table: def.name.clone(),
                column: name.clone(),
            })
        })
        .collect()
}

fn take_rows(table: &Table, batch: &RecordBatch, idx: &UInt32Array) -> Result<RecordBatch> {
    let cols = batch
        .columns()
        .iter()
        .map(|c| take(c.as_ref(), idx, None))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(CatalogError::from)?;
    RecordBatch::try_new(table.schema().clone(), cols).map_err(CatalogError::from)
}

fn unique_violation(def: &TableDef, key_cols: &[ArrayRef], row: usize) -> CatalogError {
    let names: Vec<&str> = def.primary_key().iter().map(|&i| def.columns[i].name.as_str()).collect();
    let values: Vec<String> = key_cols
        .iter()
        .map(|c| array_value_to_string(c.as_ref(), row).unwrap_or_else(|_| "?".into()))
        .collect();
    CatalogError::UniqueViolation {
        constraint: def.pkey_name(),
        detail: format!("Key ({})=({}) already exists.", names.join(", "), values.join(", ")),
    }
}

fn append_only(table: &Table) -> CatalogError {
    CatalogError::Unsupported(format!(
        "\"{}\" is an append-only event table: UPDATE and DELETE need a primary key",
        table.name()
    ))
}
