//! Sink definitions: views streamed to an external system (`CREATE SINK ... FROM view`),
//! persisted in [`Cf::Catalog`] under `sink/<name>` (JSON). The catalog keeps the definition;
//! the server runs the sink.

use std::collections::BTreeMap;

use nowdb_storage::{Cf, StorageError, WriteSet};
use serde::{Deserialize, Serialize};

use crate::{Catalog, CatalogError, Result};

const PREFIX: &[u8] = b"sink/";
const PREFIX_END: &[u8] = b"sink0";

/// A sink as `CREATE SINK` defined it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkDef {
    /// The sink's name.
    pub name: String,
    /// The view it streams.
    pub view: String,
    /// The connector's kind (`kafka`).
    pub connector: String,
    /// The connector's options, lower-case keys.
    pub options: BTreeMap<String, String>,
}

fn key(name: &str) -> Vec<u8> {
    [PREFIX, name.as_bytes()].concat()
}

fn corrupt(e: serde_json::Error) -> CatalogError {
    CatalogError::Storage(StorageError::Corrupt(format!("sink definition: {e}")))
}

impl Catalog {
    /// Every sink definition, by name.
    pub fn sinks(&self) -> Result<Vec<SinkDef>> {
        self.json_entries(PREFIX, PREFIX_END, "sink definition")
    }

    /// The sinks streaming view `view`.
    pub fn sinks_of(&self, view: &str) -> Result<Vec<SinkDef>> {
        Ok(self.sinks()?.into_iter().filter(|s| s.view == view).collect())
    }

    /// Stores a new sink definition.
    pub fn put_sink(&self, def: &SinkDef) -> Result<()> {
        let mut ws = WriteSet::default();
        ws.put(Cf::Catalog, key(&def.name), serde_json::to_vec(def).map_err(corrupt)?);
        self.store().write(ws)?;
        Ok(())
    }

    /// Whether sink `name` exists.
    pub fn has_sink(&self, name: &str) -> Result<bool> {
        Ok(self.store().get(Cf::Catalog, &key(name))?.is_some())
    }

    /// Removes sink `name` and `extra` (its progress) in one write; `false` if there was none.
    pub fn drop_sink(&self, name: &str, extra: WriteSet) -> Result<bool> {
        if !self.has_sink(name)? {
            return Ok(false);
        }
        let mut ws = extra;
        ws.delete(Cf::Catalog, key(name));
        self.store().write(ws)?;
        Ok(true)
    }
}
