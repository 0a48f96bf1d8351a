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
        let mut settings = Settings::default();
        let timeout = engine.config().limits.statement_timeout_ms;
        if timeout > 0 {
            // A valid number of milliseconds is always accepted.
            let _ = settings.set("statement_timeout", &timeout.to_string());
        }
        Self { engine, user: user.to_string(), settings: Mutex::new(settings), copy: Mutex::new(None) }
    }

    /// Whether the session's role bypasses privilege checks: a superuser role, or, under
    /// `trust` authentication, a user name no role has (trust believes any name, and before
    /// any role exists everyone is the owner).
    pub fn is_superuser(&self) -> bool {
        match self.engine.roles().get(&self.user) {
            Some(role) => role.superuser,
            None => self.engine.config().auth == crate::config::AuthMethod::Trust,
        }
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
