//! Accepting connections until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::engine::Engine;
use crate::error::{NowError, NowResult};
use crate::wire::Handlers;

/// Opens the data directory, binds, and serves until `shutdown` completes.
pub async fn serve(config: Config, shutdown: impl Future<Output = ()>) -> NowResult<()> {
    let engine = Engine::open(&config).await?;
    engine.start_retention();
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|e| NowError::coded("58000", format!("cannot listen on {}: {e}", config.listen)))?;
    let addr: SocketAddr = listener
        .local_addr()
        .map_err(|e| NowError::coded("58000", e.to_string()))?;
    info!(%addr, data_dir = %config.data_dir.display(), durability = ?config.durability, "nowdb listening");
    let handlers = Arc::new(Handlers::new(engine));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    let handlers = handlers.clone();
                    tokio::spawn(async move {
                        if let Err(e) = pgwire::tokio::process_socket(socket, None, handlers).await {
                            warn!(%peer, error = %e, "connection ended with an error");
                        }
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
    Ok(())
}
