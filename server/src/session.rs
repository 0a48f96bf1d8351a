//! [`Session`]: one client connection's state.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::copy::CopyIn;
use crate::engine::Engine;
use crate::error::{NowError, NowResult};
use crate::settings::Settings;

/// A COPY FROM STDIN in progress, or the error that poisoned it (reported at CopyDone, after
/// the client has finished sending, like Postgres does).
#[derive(Debug)]
pub enum CopyState {
    /// Receiving data.
    Receiving(Box<CopyIn>),
    /// A data error happened; the rest of the data is discarded.
    Failed(NowError),
}

/// Per-connection state, kept in pgwire's session extensions.
#[derive(Debug)]
pub struct Session {
    engine: Arc<Engine>,
    user: String,
    settings: Mutex<Settings>,
    copy: Mutex<Option<CopyState>>,
}

impl Session {
    /// A fresh session of `user` (the startup message's user name).
    pub fn new(engine: Arc<Engine>, user: &str) -> Self {
        Self { engine, user: user.to_string(), settings: Mutex::new(Settings::default()), copy: Mutex::new(None) }
    }

    /// The user the client connected as (`current_user`, `session_user`).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The shared engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The session's settings.
    pub fn settings(&self) -> NowResult<MutexGuard<'_, Settings>> {
        self.settings.lock().map_err(|_| NowError::coded("XX000", "session settings lock poisoned"))
    }

    /// The COPY slot.
    pub fn copy(&self) -> NowResult<MutexGuard<'_, Option<CopyState>>> {
        self.copy.lock().map_err(|_| NowError::coded("XX000", "session copy lock poisoned"))
    }
}
