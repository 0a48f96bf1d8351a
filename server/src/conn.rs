//! One client connection from accept to close: TLS negotiation, the message size limit, the
//! connection limit, and the message loop that hands each frontend message to the handlers.
//!
//! pgwire's own loop (`process_socket`) decodes any message up to 1 GB and has no connection
//! limit, so nowdb runs the loop itself on pgwire's public pieces (`negotiate_tls`,
//! `process_message`, `process_error`) with [`FrameLimit`] below the codec: a message whose
//! header declares more than `max_message_bytes` ends the connection with FATAL 54000 before
//! its body is read.

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

use crate::wire::Handlers;

/// Time a client has to finish startup and authentication.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Largest startup-phase message (startup packet, SSL/GSS/cancel requests), as pgwire and
/// PostgreSQL (10,000 bytes) allow.
const MAX_STARTUP_BYTES: u64 = 10_000;

/// SSLRequest and GSSENCRequest codes: untyped messages that may precede the startup packet.
const NEGOTIATION_CODES: [u32; 2] = [80_877_103, 80_877_104];

/// Why [`FrameLimit`] stopped reading.
#[derive(Debug)]
struct Oversized(String);

impl std::fmt::Display for Oversized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Oversized {}

/// Follows the frontend message framing of the bytes read and fails the read as soon as a
/// header announces a message over the limit, so the codec never buffers it.
#[derive(Debug)]
struct Framing {
    max: u64,
    /// Past the startup packet: messages are `type byte + i32 length`.
    typed: bool,
    header: [u8; 8],
    have: usize,
    /// Body bytes of the current message still to come.
    remaining: u64,
}

impl Framing {
    fn new(max: usize) -> Self {
        Self { max: max as u64, typed: false, header: [0; 8], have: 0, remaining: 0 }
    }

    fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Oversized> {
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let n = (self.remaining.min(bytes.len() as u64)) as usize;
                self.remaining -= n as u64;
                bytes = &bytes[n..];
                continue;
            }
            let need = if self.typed { 5 } else { 8 };
            let n = (need - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have < need {
                break;
            }
            self.have = 0;
            if self.typed {
                let len = i32::from_be_bytes([self.header[1], self.header[2], self.header[3], self.header[4]]);
                if len < 4 {
                    return Err(Oversized(format!("invalid message length {len}")));
                }
                let body = len as u64 - 4;
                if body > self.max {
                    return Err(Oversized(format!(
                        "message of {} bytes exceeds the limit of {} bytes (max_message_bytes)",
                        body + 5,
                        self.max
                    )));
                }
                self.remaining = body;
            } else {
                let len = i32::from_be_bytes([self.header[0], self.header[1], self.header[2], self.header[3]]);
                let code = u32::from_be_bytes([self.header[4], self.header[5], self.header[6], self.header[7]]);
                if !(8..=MAX_STARTUP_BYTES as i32).contains(&len) {
                    return Err(Oversized(format!("invalid startup packet length {len}")));
                }
                self.remaining = len as u64 - 8;
                self.typed = !NEGOTIATION_CODES.contains(&code);
            }
        }
        Ok(())
    }
}

/// Checks `bytes` (a connection's stream from its first byte) against the framing rules with
/// a limit of `max` body bytes per message: what [`serve`] enforces (the fuzz target's entry).
pub fn check_frames(bytes: &[u8], max: usize) -> Result<(), String> {
    Framing::new(max).feed(bytes).map_err(|e| e.0)
}

/// The connection's byte stream with [`Framing`] checked on every read.
struct FrameLimit<S> {
    inner: S,
    framing: Framing,
    failed: Option<String>,
}

impl<S: AsyncRead + Unpin> AsyncRead for FrameLimit<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(reason) = &this.failed {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, Oversized(reason.clone()))));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if let Err(e) = this.framing.feed(&buf.filled()[before..]) {
                    this.failed = Some(e.0.clone());
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

/// Whether the connection may proceed past startup (false: over `max_connections`).
pub type Admitted = bool;

/// Serves one accepted socket until the client leaves or breaks the protocol.
pub async fn serve(socket: TcpStream, tls: Option<TlsAcceptor>, handlers: Arc<Handlers>, max_message_bytes: usize, admitted: Admitted) -> io::Result<()> {
    let startup_deadline = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(startup_deadline);
    let negotiated = tokio::select! {
        _ = &mut startup_deadline => return Ok(()),
        negotiated = negotiate_tls(socket, tls) => negotiated?,
    };
    let Some(framed) = negotiated else { return Ok(()) };
    let old = framed.into_parts();
    let mut framing = Framing::new(max_message_bytes);
    let failed = framing.feed(&old.read_buf).err().map(|e| e.0);
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
            Some(Err(PgWireError::IoError(e))) if e.get_ref().is_some_and(|inner| inner.is::<Oversized>()) => {
                let _ = socket.send(fatal("54000", e.to_string())).await;
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
                let mut info = ErrorInfo::new("FATAL".to_owned(), info.code, info.message);
                info.detail = None;
                let _ = socket.send(PgWireBackendMessage::ErrorResponse(info.into())).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn startup() -> Vec<u8> {
        let body = b"\0\x03\0\0user\0u\0\0";
        let mut m = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        m.extend_from_slice(body);
        m
    }

    fn typed(kind: u8, body_len: usize) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&((body_len + 4) as i32).to_be_bytes());
        m.extend(std::iter::repeat_n(b'x', body_len));
        m
    }

    #[test]
    fn framing_passes_messages_under_the_limit_split_anywhere() {
        let mut stream = startup();
        stream.extend(typed(b'Q', 100));
        stream.extend(typed(b'Q', 1024));
        for split in 0..stream.len() {
            let mut f = Framing::new(1024);
            f.feed(&stream[..split]).unwrap();
            f.feed(&stream[split..]).unwrap();
        }
    }

    #[test]
    fn framing_refuses_a_large_header_before_its_body() {
        let mut f = Framing::new(1024);
        f.feed(&startup()).unwrap();
        let header = &typed(b'Q', 1025)[..5];
        let err = f.feed(header).unwrap_err();
        assert!(err.0.contains("exceeds the limit"), "{err}");
        let mut f = Framing::new(1024);
        f.feed(&startup()).unwrap();
        assert!(f.feed(&[b'B', 0xff, 0xff, 0xff, 0xf0]).unwrap_err().0.contains("invalid message length"));
    }

    #[test]
    fn framing_allows_ssl_request_before_startup_and_bounds_startup() {
        let mut f = Framing::new(1024);
        let ssl = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
        f.feed(&ssl).unwrap();
        f.feed(&startup()).unwrap();
        f.feed(&typed(b'S', 0)).unwrap();
        let mut f = Framing::new(1024);
        assert!(f.feed(&[0, 1, 0, 0, 0, 3, 0, 0]).is_err(), "a 65 KB startup packet");
    }
}
