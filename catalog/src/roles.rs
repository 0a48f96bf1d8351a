//! Roles (users and groups, as in PostgreSQL one kind of object): attributes, password
//! verifiers and privileges on relations, persisted in [`Cf::Catalog`] under `role/<name>`
//! (JSON) and cached in memory, since every statement checks them.
//!
//! Passwords are never stored: a role keeps a SCRAM-SHA-256 salted password (PBKDF2 of the
//! password with a random salt) and PostgreSQL's md5 verifier (`md5(password || name)`), both
//! computed by the server. The catalog neither hashes nor authenticates.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use nowdb_storage::{Cf, ScanControl, Store, StorageError, WriteSet};
use serde::{Deserialize, Serialize};

use crate::{CatalogError, Result};

const PREFIX: &[u8] = b"role/";
const PREFIX_END: &[u8] = b"role0";

/// A privilege on a table or view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Privilege {
    /// Read rows (SELECT, COPY TO).
    Select,
    /// Add rows (INSERT, COPY FROM).
    Insert,
    /// Change rows (UPDATE, and INSERT ... ON CONFLICT DO UPDATE).
    Update,
    /// Remove rows (DELETE, TRUNCATE).
    Delete,
}

impl Privilege {
    /// Every privilege, as `GRANT ALL` gives.
    pub const ALL: [Privilege; 4] = [Privilege::Select, Privilege::Insert, Privilege::Update, Privilege::Delete];

    /// The SQL keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            Privilege::Select => "SELECT",
            Privilege::Insert => "INSERT",
            Privilege::Update => "UPDATE",
            Privilege::Delete => "DELETE",
        }
    }
}

/// A SCRAM-SHA-256 verifier: what the server needs to check a proof, not the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramSecret {
    /// Random salt.
    pub salt: Vec<u8>,
    /// PBKDF2-HMAC-SHA-256 iterations.
    pub iterations: u32,
    /// `Hi(password, salt, iterations)`.
    pub salted_password: Vec<u8>,
}

/// A role as `CREATE ROLE` / `CREATE USER` and `GRANT` left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleDef {
    /// Name.
    pub name: String,
    /// Bypasses every privilege check.
    pub superuser: bool,
    /// May connect (CREATE USER implies it; CREATE ROLE does not).
    pub login: bool,
    /// SCRAM verifier, if a password is set.
    pub scram: Option<ScramSecret>,
    /// PostgreSQL md5 verifier (`md5` + hex of `md5(password || name)`), if a password is set.
    pub md5: Option<String>,
    /// Privileges by relation name.
    #[serde(default)]
    pub privileges: BTreeMap<String, BTreeSet<Privilege>>,
}

impl RoleDef {
    /// A role with no password, no attributes and no privileges.
    pub fn new(name: &str) -> Self {
        Self { name: name.to_string(), superuser: false, login: false, scram: None, md5: None, privileges: BTreeMap::new() }
    }

    /// Whether the role may do `privilege` on `relation`.
    pub fn may(&self, privilege: Privilege, relation: &str) -> bool {
        self.superuser || self.privileges.get(relation).is_some_and(|p| p.contains(&privilege))
    }
}

/// The persisted roles and their in-memory copy.
pub struct Roles {
    store: Arc<dyn Store>,
    cache: RwLock<HashMap<String, Arc<RoleDef>>>,
}

impl std::fmt::Debug for Roles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Roles").finish_non_exhaustive()
    }
}

fn key(name: &str) -> Vec<u8> {
    [PREFIX, name.as_bytes()].concat()
}

fn corrupt(e: serde_json::Error) -> StorageError {
    StorageError::Corrupt(format!("role definition: {e}"))
}

fn poisoned() -> CatalogError {
    CatalogError::Unsupported("role cache poisoned by an earlier panic".into())
}

impl Roles {
    /// Loads every role from `store`.
    pub fn open(store: Arc<dyn Store>) -> Result<Self> {
        let mut cache = HashMap::new();
        store.scan(Cf::Catalog, PREFIX, PREFIX_END, &mut |_, v| {
            let def: RoleDef = serde_json::from_slice(v).map_err(corrupt)?;
            cache.insert(def.name.clone(), Arc::new(def));
            Ok(ScanControl::Continue)
        })?;
        Ok(Self { store, cache: RwLock::new(cache) })
    }

    /// Role `name`, if it exists.
    pub fn get(&self, name: &str) -> Option<Arc<RoleDef>> {
        self.cache.read().ok()?.get(name).cloned()
    }

    /// Every role, by name.
    pub fn all(&self) -> Vec<Arc<RoleDef>> {
        let mut out: Vec<_> = self.cache.read().map(|c| c.values().cloned().collect()).unwrap_or_default();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Whether no role exists yet.
    pub fn is_empty(&self) -> bool {
        self.cache.read().map(|c| c.is_empty()).unwrap_or(true)
    }

    /// Creates `def`; an existing name is an error.
    pub fn create(&self, def: RoleDef) -> Result<()> {
        let mut cache = self.cache.write().map_err(|_| poisoned())?;
        if cache.contains_key(&def.name) {
            return Err(CatalogError::RoleExists(def.name));
        }
        self.persist(&def)?;
        cache.insert(def.name.clone(), Arc::new(def));
        Ok(())
    }

    /// Changes role `name` with `change`, durably; a missing role is an error.
    pub fn alter(&self, name: &str, change: impl FnOnce(&mut RoleDef)) -> Result<()> {
        let mut cache = self.cache.write().map_err(|_| poisoned())?;
        let mut def = cache.get(name).map(|d| d.as_ref().clone()).ok_or_else(|| CatalogError::NoSuchRole(name.to_string()))?;
        change(&mut def);
        self.persist(&def)?;
        cache.insert(name.to_string(), Arc::new(def));
        Ok(())
    }

    /// Creates `def` or, if its name exists, replaces it (the superuser bootstrap).
    pub fn upsert(&self, def: RoleDef) -> Result<()> {
        let mut cache = self.cache.write().map_err(|_| poisoned())?;
        self.persist(&def)?;
        cache.insert(def.name.clone(), Arc::new(def));
        Ok(())
    }

    /// Removes role `name`; `false` if there was none.
    pub fn drop_role(&self, name: &str) -> Result<bool> {
        let mut cache = self.cache.write().map_err(|_| poisoned())?;
        if !cache.contains_key(name) {
            return Ok(false);
        }
        let mut ws = WriteSet::default();
        ws.delete(Cf::Catalog, key(name));
        self.store.write(ws)?;
        cache.remove(name);
        Ok(true)
    }

    /// Drops every privilege on `relation` (it was dropped: a new relation of the same name
    /// starts with none, as in PostgreSQL).
    pub fn forget_relation(&self, relation: &str) -> Result<()> {
        let holders: Vec<String> = self
            .all()
            .into_iter()
            .filter(|r| r.privileges.contains_key(relation))
            .map(|r| r.name.clone())
            .collect();
        for name in holders {
            self.alter(&name, |def| {
                def.privileges.remove(relation);
            })?;
        }
        Ok(())
    }

    fn persist(&self, def: &RoleDef) -> Result<()> {
        let mut ws = WriteSet::default();
        ws.put(Cf::Catalog, key(&def.name), serde_json::to_vec(def).map_err(corrupt)?);
        self.store.write(ws)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nowdb_storage::{Durability, RocksStore};

    #[test]
    fn roles_persist_and_privileges_follow_grants() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(RocksStore::open(dir.path(), Durability::Sync).unwrap());
        let roles = Roles::open(store.clone()).unwrap();
        assert!(roles.is_empty());
        let mut analyst = RoleDef::new("analyst");
        analyst.login = true;
        roles.create(analyst.clone()).unwrap();
        assert!(matches!(roles.create(analyst), Err(CatalogError::RoleExists(_))));
        roles.alter("analyst", |r| {
            r.privileges.entry("features".into()).or_default().insert(Privilege::Select);
        })
        .unwrap();
        let reopened = Roles::open(store).unwrap();
        let a = reopened.get("analyst").unwrap();
        assert!(a.may(Privilege::Select, "features"));
        assert!(!a.may(Privilege::Insert, "features"));
        assert!(!a.may(Privilege::Select, "events"));
        reopened.forget_relation("features").unwrap();
        assert!(!reopened.get("analyst").unwrap().may(Privilege::Select, "features"));
        assert!(reopened.drop_role("analyst").unwrap());
        assert!(!reopened.drop_role("analyst").unwrap());
        assert!(matches!(reopened.alter("analyst", |_| {}), Err(CatalogError::NoSuchRole(_))));
    }
}
