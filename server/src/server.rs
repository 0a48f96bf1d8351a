//! Accepting connections until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::engine::Engine;
use crate::error::{NowError, NowResult};
use crate::wire::Handlers;

/// Opens the data directory, binds, and serves until `shutdown` completes.
pub async fn serve(config: Config, shutdown: impl Future<Output = ()>) -> NowResult<()> {
    config.validate()?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(crate::conn::tls_acceptor(cert, key).map_err(|e| NowError::coded("F0000", e))?),
        _ => None,
    };
    let engine = Engine::open(&config).await?;
    if let Some(password) = &config.superuser_password {
        crate::auth::bootstrap_superuser(&engine, password)?;
        info!(user = crate::auth::DEFAULT_USER, "superuser password set from the configuration");
    }
    if config.auth != crate::config::AuthMethod::Trust && engine.roles().all().iter().all(|r| !r.login || r.scram.is_none()) {
        warn!("password authentication is on but no role has a password: nobody can connect (set superuser_password)");
    }
    engine.start_retention();
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|e| NowError::coded("58000", format!("cannot listen on {}: {e}", config.listen)))?;
    let addr: SocketAddr = listener
        .local_addr()
        .map_err(|e| NowError::coded("58000", e.to_string()))?;
    let metrics_task = match config.http_address() {
        Some(http) => Some(crate::metrics::serve_http(http, engine.clone()).await?),
        None => None,
    };
    info!(%addr, data_dir = %config.data_dir.display(), durability = ?config.durability, auth = ?config.auth, tls = tls.is_some(), "nowdb listening");
    let backup_task = crate::backup::serve_admin_socket(engine.clone(), &config.data_dir)?;
    let handlers = Arc::new(Handlers::new(engine.clone()));
    let slots = Arc::new(Semaphore::new(config.limits.max_connections));
    let max_message = config.limits.max_message_bytes;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    let handlers = handlers.clone();
                    let tls = tls.clone();
                    let metrics = engine.clone();
                    // Over the limit, the connection still gets a protocol answer (53300).
                    let slot = slots.clone().try_acquire_owned().ok();
                    let admitted = slot.is_some();
                    if admitted {
                        metrics.metrics().connections_accepted.inc();
                    } else {
                        metrics.metrics().connections_refused.inc();
                    }
                    tokio::spawn(async move {
                        let open = metrics.metrics().connections.clone();
                        if admitted {
                            open.inc();
                        }
                        if let Err(e) = crate::conn::serve(socket, tls, handlers, max_message, admitted).await {
                            warn!(%peer, error = %e, "connection ended with an error");
                        }
                        if admitted {
                            open.dec();
                        }
                        drop(slot);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: keep serving.
                    error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    info!("shutting down");
    if let Some(task) = metrics_task {
        task.abort();
    }
    backup_task.abort();
    Ok(())
}
