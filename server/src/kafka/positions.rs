//! What a Kafka source stores beside its table's rows, in [`Cf::ViewState`] under the table's
//! id (so dropping the table drops it too):
//!
//! - `<table id> fd <partition:i32be>` → the partition's position: the next offset to consume
//!   (i64be) and how many malformed messages it had (u64be);
//! - `<table id> fc <partition:i32be> <offset:i64be>` → a dead letter: when it arrived
//!   (µs, i64be), the error's length (u32be), the error, the raw payload.
//!
//! Positions and dead letters go into the same write batch as the rows the messages produced
//! (and, through the view engine, the views' changes): a crash keeps all of it or none.

use std::collections::BTreeMap;

use nowdb_storage::{keys, Cf, ScanControl, Store, StorageError, WriteSet};

const POSITION: u8 = 0xfd;
const DEAD_LETTER: u8 = 0xfc;

/// A partition's stored position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    /// The next offset to consume.
    pub next_offset: i64,
    /// Malformed messages so far.
    pub errors: u64,
}

/// A malformed message, kept with the reason it was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// When nowdb read it (µs since the epoch).
    pub received_micros: i64,
    /// Why it was refused.
    pub error: String,
    /// The message's value as received.
    pub payload: Vec<u8>,
}

fn prefix(table: u32, tag: u8) -> Vec<u8> {
    let mut k = keys::table_start(table);
    k.push(tag);
    k
}

fn position_key(table: u32, partition: i32) -> Vec<u8> {
    let mut k = prefix(table, POSITION);
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt(format!("Kafka source {what}"))
}

/// The `N` bytes of `b` at `at`, or a corruption error naming `what`.
fn bytes<const N: usize>(b: &[u8], at: usize, what: &str) -> nowdb_storage::Result<[u8; N]> {
    b.get(at..at + N).and_then(|x| x.try_into().ok()).ok_or_else(|| corrupt(what))
}

/// The stored positions of `table`'s partitions.
pub fn load(store: &dyn Store, table: u32) -> nowdb_storage::Result<BTreeMap<i32, Position>> {
    let mut out = BTreeMap::new();
    let start = prefix(table, POSITION);
    let end = prefix(table, POSITION + 1);
    store.scan(Cf::ViewState, &start, &end, &mut |k, v| {
        let p = i32::from_be_bytes(bytes(k, start.len(), "position key")?);
        out.insert(p, decode_position(v)?);
        Ok(ScanControl::Continue)
    })?;
    Ok(out)
}

fn decode_position(v: &[u8]) -> nowdb_storage::Result<Position> {
    let next = i64::from_be_bytes(bytes(v, 0, "position")?);
    let errors = u64::from_be_bytes(bytes(v, 8, "position")?);
    Ok(Position { next_offset: next, errors })
}

/// Adds partition `partition`'s new position to `ws`.
pub fn put_position(ws: &mut WriteSet, table: u32, partition: i32, position: Position) {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&position.next_offset.to_be_bytes());
    v.extend_from_slice(&position.errors.to_be_bytes());
    ws.put(Cf::ViewState, position_key(table, partition), v);
}

/// Adds a dead letter to `ws`.
pub fn put_dead_letter(ws: &mut WriteSet, table: u32, letter: &DeadLetter) {
    let mut k = prefix(table, DEAD_LETTER);
    k.extend_from_slice(&letter.partition.to_be_bytes());
    k.extend_from_slice(&letter.offset.to_be_bytes());
    let mut v = Vec::with_capacity(12 + letter.error.len() + letter.payload.len());
    v.extend_from_slice(&letter.received_micros.to_be_bytes());
    v.extend_from_slice(&(letter.error.len() as u32).to_be_bytes());
    v.extend_from_slice(letter.error.as_bytes());
    v.extend_from_slice(&letter.payload);
    ws.put(Cf::ViewState, k, v);
}

/// Every dead letter of `table`, by partition and offset.
pub fn dead_letters(store: &dyn Store, table: u32) -> nowdb_storage::Result<Vec<DeadLetter>> {
    let mut out = Vec::new();
    let start = prefix(table, DEAD_LETTER);
    let end = prefix(table, DEAD_LETTER + 1);
    store.scan(Cf::ViewState, &start, &end, &mut |k, v| {
        let k = &k[start.len()..];
        let partition = i32::from_be_bytes(bytes(k, 0, "dead letter key")?);
        let offset = i64::from_be_bytes(bytes(k, 4, "dead letter key")?);
        let received_micros = i64::from_be_bytes(bytes(v, 0, "dead letter")?);
        let len = u32::from_be_bytes(bytes(v, 8, "dead letter")?) as usize;
        let error = v.get(12..12 + len).map(|b| String::from_utf8_lossy(b).into_owned()).ok_or_else(|| corrupt("dead letter"))?;
        let payload = v[12 + len..].to_vec();
        out.push(DeadLetter { partition, offset, received_micros, error, payload });
        Ok(ScanControl::Continue)
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nowdb_storage::{Durability, RocksStore};

    #[test]
    fn positions_and_dead_letters_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path(), Durability::Sync).unwrap();
        let mut ws = WriteSet::new();
        put_position(&mut ws, 7, 0, Position { next_offset: 42, errors: 1 });
        put_position(&mut ws, 7, 3, Position { next_offset: 5, errors: 0 });
        put_position(&mut ws, 8, 0, Position { next_offset: 9, errors: 0 });
        let letter = DeadLetter { partition: 3, offset: 4, received_micros: 123, error: "bad json".into(), payload: b"{nope".to_vec() };
        put_dead_letter(&mut ws, 7, &letter);
        store.write(ws).unwrap();
        let got = load(&store, 7).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[&0], Position { next_offset: 42, errors: 1 });
        assert_eq!(got[&3].next_offset, 5);
        assert_eq!(dead_letters(&store, 7).unwrap(), vec![letter]);
        assert!(dead_letters(&store, 8).unwrap().is_empty());
    }
}
