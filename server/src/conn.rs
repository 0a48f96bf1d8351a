//! One client connection from accept to close: TLS negotiation, the message size limit, the
//! connection limit, and the message loop that hands each frontend message to the handlers.
//!
//! pgwire's own loop (`process_socket`) decodes any message up to 1 GB and has no connection
//! limit, so nowdb runs the loop itself on pgwire's public pieces (`negotiate_tls`,
//! `process_message`, `process_error`) with [`FrameLimit`] below the codec: a message whose
//! header declares more than `max_message_bytes` ends the connection with FATAL 54000 before
//! its body is read, and a Bind or Parse whose inner counts or lengths run past the message
//! (on which pgwire's decoder panics; found by fuzzing) with FATAL 08P01.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pgwire::api::{ClientInfo, ErrorHandler, PgWireConnectionState, PgWireServerHandlers};
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{negotiate_tls, process_error, process_message};
use pgwire::tokio::TlsAcceptor;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, FramedParts};

use crate::framing::{Framing, Refused};
use crate::wire::Handlers;

pub use crate::framing::check_frames;

/// Time a client has to finish startup and authentication.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The connection's byte stream with [`Framing`] checked on every read.
struct FrameLimit<S> {
    inner: S,
    framing: Framing,
    failed: Option<Refused>,
}

impl<S: AsyncRead + Unpin> AsyncRead for FrameLimit<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(refused) = &this.failed {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, refused.clone())));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if let Err(e) = this.framing.feed(&buf.filled()[before..]) {
                    this.failed = Some(e.clone());
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FrameLimit<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

fn fatal(code: &str, message: String) -> PgWireBackendMessage {
    PgWireBackendMessage::ErrorResponse(ErrorInfo::new("FATAL".to_owned(), code.to_owned(), message).into())
}

/// Serves one accepted socket until the client leaves or breaks the protocol. A connection
/// not `admitted` (over `max_connections`) gets FATAL 53300 in answer to its startup packet.
pub async fn serve(socket: TcpStream, tls: Option<TlsAcceptor>, handlers: Arc<Handlers>, max_message_bytes: usize, admitted: bool) -> io::Result<()> {
    let startup_deadline = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(startup_deadline);
    // pgwire reads the first packet (SSL/GSS request or startup) before FrameLimit is in place:
    // its length is checked here first.
    let first_ok = tokio::select! {
        _ = &mut startup_deadline => return Ok(()),
        ok = first_packet_is_sane(&socket) => ok,
    };
    if !first_ok {
        return Ok(());
    }
    let negotiated = tokio::select! {
        _ = &mut startup_deadline => return Ok(()),
        negotiated = negotiate_tls(socket, tls) => negotiated?,
    };
    let Some(framed) = negotiated else { return Ok(()) };
    let old = framed.into_parts();
    let mut framing = Framing::new(max_message_bytes);
    let failed = framing.feed(&old.read_buf).err();
    let mut parts = FramedParts::new(FrameLimit { inner: old.io, framing, failed }, old.codec);
    parts.read_buf = old.read_buf;
    parts.write_buf = old.write_buf;
    let mut socket = Framed::from_parts(parts);

    let startup = handlers.startup_handler();
    let simple = handlers.simple_query_handler();
    let extended = handlers.extended_query_handler();
    let copy = handlers.copy_handler();
    let cancel = handlers.cancel_handler();
    loop {
        let starting = matches!(socket.state(), PgWireConnectionState::AwaitingStartup | PgWireConnectionState::AuthenticationInProgress);
        let next = if starting {
            tokio::select! {
                _ = &mut startup_deadline => None,
                msg = socket.next() => msg,
            }
        } else {
            socket.next().await
        };
        let msg = match next {
            Some(Ok(msg)) => msg,
            Some(Err(PgWireError::IoError(e))) if e.get_ref().is_some_and(|inner| inner.is::<Refused>()) => {
                let code = e.get_ref().and_then(|inner| inner.downcast_ref::<Refused>()).map_or("08P01", |r| r.sqlstate);
                let _ = socket.send(fatal(code, e.to_string())).await;
                let _ = socket.close().await;
                return Ok(());
            }
            Some(Err(e)) => {
                // A message that does not decode: say why, then close (the stream's framing
                // can no longer be trusted).
                let _ = socket.send(fatal("08P01", e.to_string())).await;
                let _ = socket.close().await;
                return Ok(());
            }
            None => return Ok(()),
        };
        if matches!(msg, PgWireFrontendMessage::Terminate(_)) {
            return Ok(());
        }
        if !admitted && matches!(msg, PgWireFrontendMessage::Startup(_)) {
            let _ = socket.send(fatal("53300", "sorry, too many clients already".into())).await;
            let _ = socket.close().await;
            return Ok(());
        }
        let extended_protocol = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => msg.is_extended_query(),
        };
        let starting = matches!(socket.state(), PgWireConnectionState::AwaitingStartup | PgWireConnectionState::AuthenticationInProgress);
        if let Err(mut e) = process_message(msg, &mut socket, startup.clone(), simple.clone(), extended.clone(), copy.clone(), cancel.clone()).await {
            handlers.error_handler().on_error(&socket, &mut e);
            if starting {
                // A failed startup (bad password, a query before authentication) ends the
                // connection here: pgwire's error path would answer ReadyForQuery and move the
                // connection to the query state.
                let info: ErrorInfo = e.into();
                let _ = socket.send(fatal(&info.code, info.message)).await;
                let _ = socket.close().await;
                return Ok(());
            }
            let fatal = matches!(&e, PgWireError::UserError(info) if info.is_fatal());
            process_error(&mut socket, e, extended_protocol).await?;
            if fatal {
                return Ok(());
            }
        }
    }
}

/// Whether the first packet's length (peeked, not consumed) is one a startup-phase message
/// can have; a direct TLS handshake (0x16) passes to rustls.
async fn first_packet_is_sane(socket: &TcpStream) -> bool {
    let mut head = [0u8; 8];
    loop {
        match socket.peek(&mut head).await {
            Ok(0) | Err(_) => return false,
            Ok(_) if head[0] == 0x16 => return true,
            Ok(n) if n >= 8 => break,
            Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    // The header alone: the framing rules judge its length (the body is not needed).
    check_frames(&head, usize::MAX).is_ok()
}

/// Loads the TLS certificate chain and key (PEM) into an acceptor.
pub fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> Result<TlsAcceptor, String> {
    use pgwire::tokio::tokio_rustls::rustls;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read TLS certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("cannot read TLS key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate and key do not match: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
