//! [`Store`] on RocksDB.

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, Direction, IteratorMode, Options, ReadOptions, WriteBatch,
    WriteOptions, DB,
};
use tracing::info;

use crate::store::{Cf, ScanControl, Store, Visit, WriteOp, WriteSet};
use crate::{Result, StorageError};

/// Bytes of RocksDB's block cache (uncompressed table blocks), shared by all column families.
const BLOCK_CACHE_BYTES: usize = 256 << 20;

/// When a write is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// After the WAL is fsynced (survives power loss). RocksDB groups concurrent commits.
    #[default]
    Sync,
    /// After the WAL is written to the OS (survives a process crash, not a power loss).
    Async,
}

/// RocksDB-backed store.
#[derive(Debug)]
pub struct RocksStore {
    db: DB,
    durability: Durability,
    path: std::path::PathBuf,
    /// Writes are refused while the data directory's file system has less free space than
    /// this (bytes; 0 = never). See [`RocksStore::set_min_free_bytes`].
    min_free: std::sync::atomic::AtomicU64,
}

impl RocksStore {
    /// Opens (or creates) the store in `path`.
    pub fn open(path: &Path, durability: Durability) -> Result<Self> {
        std::fs::create_dir_all(path)?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(2);
        opts.set_keep_log_file_num(4);
        // One block cache for all column families, and bloom filters so that reads of absent
        // keys (new view groups, new primary keys) skip the table files that cannot hold them.
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_bloom_filter(10.0, false);
        let cfs = Cf::ALL.iter().map(|cf| {
            let mut cf_opts = Options::default();
            cf_opts.set_block_based_table_factory(&table);
            ColumnFamilyDescriptor::new(cf.name(), cf_opts)
        });
        let db = DB::open_cf_descriptors(&opts, path, cfs)?;
        info!(path = %path.display(), ?durability, "opened rocksdb");
        Ok(Self { db, durability, path: path.to_path_buf(), min_free: Default::default() })
    }

    /// Keeps `bytes` of the data directory's file system free: writes that would start with
    /// less free are refused with [`StorageError::NoSpace`]. RocksDB itself must never reach
    /// ENOSPC: after a failed WAL write it refuses every later write until reopened, and the
    /// Debian build asserts (aborts) on the next one. The reserve also leaves flushes and
    /// compactions room to finish.
    pub fn set_min_free_bytes(&self, bytes: u64) {
        self.min_free.store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Free bytes (for unprivileged users) of the file system holding the data directory.
    pub fn free_bytes(&self) -> Result<u64> {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(self.path.as_os_str().as_bytes())
            .map_err(|_| StorageError::Io(std::io::Error::other("data directory path contains NUL")))?;
        let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: `path` is a valid NUL-terminated string and `stat` a valid out-pointer;
        // statvfs initializes it when it returns 0.
        let rc = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
        if rc != 0 {
            return Err(StorageError::Io(std::io::Error::last_os_error()));
        }
        // SAFETY: statvfs returned 0, so `stat` is initialized.
        let stat = unsafe { stat.assume_init() };
        // The field types differ across platforms (u32 on some 32-bit ones).
        #[allow(clippy::unnecessary_cast)]
        let free = stat.f_bavail as u64 * stat.f_frsize as u64;
        Ok(free)
    }

    fn check_space(&self) -> Result<()> {
        let reserve = self.min_free.load(std::sync::atomic::Ordering::Relaxed);
        if reserve == 0 {
            return Ok(());
        }
        let free = self.free_bytes()?;
        if free < reserve {
            return Err(StorageError::NoSpace { free, reserve });
        }
        Ok(())
    }

    /// Visits `[start, end)` of `cf` in `direction` until `visit` stops.
    fn iterate(&self, cf: Cf, start: &[u8], end: &[u8], direction: Direction, visit: Visit<'_>) -> Result<()> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(start.to_vec());
        ro.set_iterate_upper_bound(end.to_vec());
        let mode = match direction {
            Direction::Forward => IteratorMode::Start,
            Direction::Reverse => IteratorMode::End,
        };
        for item in self.db.iterator_cf_opt(self.cf(cf)?, ro, mode) {
            let (k, v) = item?;
            if visit(&k, &v)? == ScanControl::Stop {
                break;
            }
        }
        Ok(())
    }

    fn cf(&self, cf: Cf) -> Result<&rocksdb::ColumnFamily> {
        self.db
            .cf_handle(cf.name())
            .ok_or_else(|| StorageError::Corrupt(format!("missing column family {}", cf.name())))
    }
}

impl RocksStore {
    /// Writes a consistent, openable copy of the database to `to` (a directory that must not
    /// exist) while it keeps serving: RocksDB flushes the memtables and hard-links the table
    /// files (copies them across file systems), so a checkpoint costs little disk on the same
    /// file system.
    pub fn checkpoint(&self, to: &Path) -> Result<()> {
        let checkpoint = rocksdb::checkpoint::Checkpoint::new(&self.db)?;
        checkpoint.create_checkpoint(to)?;
        Ok(())
    }

    /// An integer RocksDB property summed over the column families (e.g.
    /// `rocksdb.estimate-live-data-size`, `rocksdb.num-running-compactions`).
    pub fn property(&self, name: &str) -> Option<u64> {
        let mut total = None;
        for cf in Cf::ALL {
            let handle = self.cf(cf).ok()?;
            if let Ok(Some(v)) = self.db.property_int_value_cf(handle, name) {
                total = Some(total.unwrap_or(0) + v);
            }
        }
        total
    }
}

impl Store for RocksStore {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(cf)?, key)?)
    }

    fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let handle = self.cf(cf)?;
        self.db
            .multi_get_cf(keys.iter().map(|k| (handle, k.as_slice())))
            .into_iter()
            .map(|r| r.map_err(StorageError::from))
            .collect()
    }

    fn scan(
        &self,
        cf: Cf,
        start: &[u8],
        end: &[u8],
        visit: Visit<'_>,
    ) -> Result<()> {
        self.iterate(cf, start, end, Direction::Forward, visit)
    }

    fn scan_rev(
        &self,
        cf: Cf,
        start: &[u8],
        end: &[u8],
        visit: Visit<'_>,
    ) -> Result<()> {
        self.iterate(cf, start, end, Direction::Reverse, visit)
    }

    fn last_key(&self, cf: Cf, start: &[u8], end: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut last = None;
        self.scan_rev(cf, start, end, &mut |k, _| {
            last = Some(k.to_vec());
            Ok(ScanControl::Stop)
        })?;
        Ok(last)
    }

    fn write(&self, set: WriteSet) -> Result<()> {
        self.check_space()?;
        let mut batch = WriteBatch::default();
        for op in set.ops() {
            match op {
                WriteOp::Put { cf, key, value } => batch.put_cf(self.cf(*cf)?, key, value),
                WriteOp::Delete { cf, key } => batch.delete_cf(self.cf(*cf)?, key),
                WriteOp::DeleteRange { cf, start, end } => {
                    batch.delete_range_cf(self.cf(*cf)?, start, end)
                }
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(self.durability == Durability::Sync);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_is_a_full_copy() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(&dir.path().join("db"), Durability::Sync).unwrap();
        let mut ws = WriteSet::new();
        ws.put(Cf::Rows, b"k".to_vec(), b"v".to_vec());
        store.write(ws).unwrap();
        store.checkpoint(&dir.path().join("copy")).unwrap();
        assert!(store.checkpoint(&dir.path().join("copy")).is_err(), "an existing target is refused");
        let copy = RocksStore::open(&dir.path().join("copy"), Durability::Sync).unwrap();
        assert_eq!(copy.get(Cf::Rows, b"k").unwrap(), Some(b"v".to_vec()));
        assert!(store.property("rocksdb.estimate-live-data-size").is_some());
    }

    #[test]
    fn write_scan_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = RocksStore::open(dir.path(), Durability::Sync).unwrap();
            let mut ws = WriteSet::new();
            ws.put(Cf::Rows, b"a1".to_vec(), b"x".to_vec());
            ws.put(Cf::Rows, b"a2".to_vec(), b"y".to_vec());
            ws.put(Cf::Rows, b"b1".to_vec(), b"z".to_vec());
            store.write(ws).unwrap();
        }
        let store = RocksStore::open(dir.path(), Durability::Sync).unwrap();
        let mut seen = vec![];
        store
            .scan(Cf::Rows, b"a", b"b", &mut |k, v| {
                seen.push((k.to_vec(), v.to_vec()));
                Ok(ScanControl::Continue)
            })
            .unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(store.last_key(Cf::Rows, b"a", b"b").unwrap(), Some(b"a2".to_vec()));
        assert_eq!(store.last_key(Cf::Rows, b"c", b"d").unwrap(), None);
        let got = store
            .multi_get(Cf::Rows, &[b"a2".to_vec(), b"zz".to_vec()])
            .unwrap();
        assert_eq!(got, vec![Some(b"y".to_vec()), None]);
        let mut ws = WriteSet::new();
        ws.delete_range(Cf::Rows, b"a".to_vec(), b"b".to_vec());
        store.write(ws).unwrap();
        assert_eq!(store.get(Cf::Rows, b"a1").unwrap(), None);
        assert_eq!(store.get(Cf::Rows, b"b1").unwrap(), Some(b"z".to_vec()));
    }
}
