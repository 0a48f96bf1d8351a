//! Online backups: `nowdb backup --data-dir X --to Y` writes a RocksDB checkpoint of X into Y,
//! a complete data directory that `nowdb serve --data-dir Y` opens as it was (restore = start
//! a server on it, or copy it where the data directory belongs).
//!
//! A running server holds RocksDB's lock on its data directory, so the backup command asks it
//! through a Unix socket in that directory (`admin.sock`, mode 0600: whoever may read the data
//! may back it up); with no server running, the command opens the directory itself.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nowdb_storage::{Durability, RocksStore};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tracing::{info, warn};

use crate::engine::Engine;
use crate::error::{NowError, NowResult};

/// The admin socket's file name inside the data directory.
pub const ADMIN_SOCKET: &str = "admin.sock";

/// Listens on `<data_dir>/admin.sock` for backup requests until the task is dropped.
pub fn serve_admin_socket(engine: Arc<Engine>, data_dir: &Path) -> NowResult<tokio::task::JoinHandle<()>> {
    let path = data_dir.join(ADMIN_SOCKET);
    let _ = std::fs::remove_file(&path);
    let listener = match tokio::net::UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            warn!(path = %path.display(), error = %e, "no admin socket: online backups are unavailable");
            return Ok(tokio::spawn(async {}));
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|e| NowError::coded("58030", e.to_string()))?;
    }
    Ok(tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let engine = engine.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut line = String::new();
                let mut reader = tokio::io::BufReader::new(read);
                if reader.read_line(&mut line).await.is_err() {
                    return;
                }
                let answer = match line.trim_end().strip_prefix("checkpoint ") {
                    Some(to) => {
                        let to = PathBuf::from(to);
                        let engine = engine.clone();
                        match tokio::task::spawn_blocking(move || engine.store().checkpoint(&to).map(|_| to)).await {
                            Ok(Ok(to)) => {
                                info!(to = %to.display(), "online backup written");
                                "ok\n".to_string()
                            }
                            Ok(Err(e)) => format!("error: {e}\n"),
                            Err(e) => format!("error: {e}\n"),
                        }
                    }
                    None => "error: unknown request\n".to_string(),
                };
                let _ = write.write_all(answer.as_bytes()).await;
            });
        }
    }))
}

/// Writes a backup of `data_dir` into `to` (which must not exist): through the running
/// server if there is one, else directly.
pub fn backup(data_dir: &Path, to: &Path) -> NowResult<()> {
    if to.exists() {
        return Err(NowError::coded("58P02", format!("backup target {} already exists", to.display())));
    }
    let to = std::path::absolute(to).map_err(|e| NowError::coded("58030", e.to_string()))?;
    let socket = data_dir.join(ADMIN_SOCKET);
    match std::os::unix::net::UnixStream::connect(&socket) {
        Ok(mut stream) => {
            writeln!(stream, "checkpoint {}", to.display()).map_err(|e| NowError::coded("58030", e.to_string()))?;
            let mut answer = String::new();
            BufReader::new(stream).read_line(&mut answer).map_err(|e| NowError::coded("58030", e.to_string()))?;
            match answer.trim_end() {
                "ok" => Ok(()),
                other => Err(NowError::coded("58030", format!("the server could not write the backup: {}", other.trim_start_matches("error: ")))),
            }
        }
        // No server on this directory: open it (RocksDB's lock refuses if one holds it).
        Err(_) => {
            if !data_dir.join("CURRENT").exists() {
                return Err(NowError::coded("58P01", format!("{} is not a nowdb data directory", data_dir.display())));
            }
            let store = RocksStore::open(data_dir, Durability::Sync)?;
            store.checkpoint(&to)?;
            Ok(())
        }
    }
}
