//! [`ModelRegistry`]: the current version of every model, by name.
//!
//! The registry only holds loaded versions; their bytes and definitions are persisted by the
//! catalog, and the server keeps the two in step.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::model::Model;
use crate::ModelError;

/// Loaded models.
#[derive(Debug, Default)]
pub struct ModelRegistry {
    models: RwLock<BTreeMap<String, Arc<Model>>>,
}

impl ModelRegistry {
    /// An empty registry.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The current version of `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Model>> {
        self.models.read().ok()?.get(name).cloned()
    }

    /// Makes `model` the current version of its name; returns the version it replaces.
    pub fn install(&self, model: Arc<Model>) -> Result<Option<Arc<Model>>, ModelError> {
        let mut models = self.models.write().map_err(|_| poisoned())?;
        Ok(models.insert(model.name().to_string(), model))
    }

    /// Forgets `name`.
    pub fn remove(&self, name: &str) -> Result<Option<Arc<Model>>, ModelError> {
        Ok(self.models.write().map_err(|_| poisoned())?.remove(name))
    }

    /// Every current model, by name.
    pub fn all(&self) -> Vec<Arc<Model>> {
        self.models.read().map(|m| m.values().cloned().collect()).unwrap_or_default()
    }
}

fn poisoned() -> ModelError {
    ModelError::Run { name: String::new(), message: "model registry lock poisoned".into() }
}
