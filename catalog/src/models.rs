//! Model definitions and their ONNX bytes, persisted in [`Cf::Catalog`] so that a model
//! survives restarts and the deletion of the file it was created from.
//!
//! `model/<name>` holds the [`ModelDef`] (JSON) and `model_bytes/<name>` the ONNX file of its
//! current version; both are written in one atomic batch, so a replaced model is never seen
//! half-written. The catalog does not load models: the models crate does, from these bytes.

use nowdb_storage::{Cf, StorageError, WriteSet};
use serde::{Deserialize, Serialize};

use crate::{Catalog, CatalogError, Result};

const DEF_PREFIX: &[u8] = b"model/";
const DEF_PREFIX_END: &[u8] = b"model0";
const BYTES_PREFIX: &[u8] = b"model_bytes/";

/// A model as `CREATE MODEL` defined it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelDef {
    /// Name (also the SQL function's name).
    pub name: String,
    /// 1 at CREATE, +1 at each CREATE OR REPLACE.
    pub version: u64,
    /// Requested device: `cpu`, `cuda` or `auto`.
    pub device: String,
    /// The output to return, if not the default.
    pub output: Option<String>,
    /// Intra-op threads per run, if set.
    pub threads: Option<u32>,
    /// Size of the ONNX file in bytes.
    pub size: u64,
}

fn def_key(name: &str) -> Vec<u8> {
    [DEF_PREFIX, name.as_bytes()].concat()
}

fn bytes_key(name: &str) -> Vec<u8> {
    [BYTES_PREFIX, name.as_bytes()].concat()
}

fn corrupt(e: serde_json::Error) -> CatalogError {
    CatalogError::Storage(StorageError::Corrupt(format!("model definition: {e}")))
}

impl Catalog {
    /// Every model definition, by name.
    pub fn models(&self) -> Result<Vec<ModelDef>> {
        self.json_entries(DEF_PREFIX, DEF_PREFIX_END, "model definition")
    }

    /// The definition of model `name`.
    pub fn model(&self, name: &str) -> Result<Option<ModelDef>> {
        match self.store().get(Cf::Catalog, &def_key(name))? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(corrupt)?)),
            None => Ok(None),
        }
    }

    /// The ONNX bytes of model `name`'s current version.
    pub fn model_bytes(&self, name: &str) -> Result<Vec<u8>> {
        self.store().get(Cf::Catalog, &bytes_key(name))?.ok_or_else(|| CatalogError::NoSuchModel(name.to_string()))
    }

    /// Stores `def` and its bytes as the current version, atomically (a new model or a new
    /// version of one). The caller serializes model DDL.
    pub fn put_model(&self, def: &ModelDef, bytes: &[u8]) -> Result<()> {
        let mut ws = WriteSet::default();
        ws.put(Cf::Catalog, def_key(&def.name), serde_json::to_vec(def).map_err(corrupt)?);
        ws.put(Cf::Catalog, bytes_key(&def.name), bytes.to_vec());
        self.store().write(ws)?;
        self.bump_generation();
        Ok(())
    }

    /// Removes model `name`; `false` if there was none.
    pub fn drop_model(&self, name: &str) -> Result<bool> {
        if self.model(name)?.is_none() {
            return Ok(false);
        }
        let mut ws = WriteSet::default();
        ws.delete(Cf::Catalog, def_key(name));
        ws.delete(Cf::Catalog, bytes_key(name));
        self.store().write(ws)?;
        self.bump_generation();
        Ok(true)
    }
}
