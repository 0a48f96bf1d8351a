//! The frontend message framing, followed byte by byte: which bytes are a message header and
//! how long each message says it is, so that a header announcing more than the limit is
//! refused before its body is read ([`crate::conn`] puts this below pgwire's codec).
//!
//! Plain `std` on purpose: the fuzz target `frontend_messages` compiles this file on its own.

/// Largest startup-phase message (startup packet, SSL/GSS/cancel requests), as pgwire and
/// PostgreSQL (10,000 bytes) allow.
const MAX_STARTUP_BYTES: u64 = 10_000;

/// SSLRequest and GSSENCRequest codes: untyped messages that may precede the startup packet.
const NEGOTIATION_CODES: [u32; 2] = [80_877_103, 80_877_104];

/// Why the framing refused the stream.
#[derive(Debug, Clone)]
pub struct Refused {
    /// 54000 for a message over the limit, 08P01 for a malformed one.
    pub sqlstate: &'static str,
    /// What was wrong.
    pub message: String,
}

impl Refused {
    fn too_large(message: String) -> Self {
        Self { sqlstate: "54000", message }
    }

    fn malformed(message: String) -> Self {
        Self { sqlstate: "08P01", message }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refused {}

/// Follows the frontend message framing of the bytes read and fails the read as soon as a
/// header announces a message over the limit, so the codec never buffers it.
#[derive(Debug)]
pub struct Framing {
    max: u64,
    /// Past the startup packet: messages are `type byte + i32 length`.
    typed: bool,
    header: [u8; 8],
    have: usize,
    /// Body bytes of the current message still to come.
    remaining: u64,
    /// The body so far of a message whose contents are checked ([`CHECKED`]).
    inner: Option<Vec<u8>>,
}

impl Framing {
    /// Framing with a limit of `max` body bytes per message.
    pub fn new(max: usize) -> Self {
        Self { max: max as u64, typed: false, header: [0; 8], have: 0, remaining: 0, inner: None }
    }

    /// Follows `bytes`, the next bytes of the stream; an error once a header is refused.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Refused> {
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let n = (self.remaining.min(bytes.len() as u64)) as usize;
                self.remaining -= n as u64;
                if let Some(inner) = self.inner.as_mut() {
                    inner.extend_from_slice(&bytes[..n]);
                }
                bytes = &bytes[n..];
                self.finish_inner()?;
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
                    return Err(Refused::malformed(format!("invalid message length {len}")));
                }
                let body = len as u64 - 4;
                if body > self.max {
                    return Err(Refused::too_large(format!(
                        "message of {} bytes exceeds the limit of {} bytes (max_message_bytes)",
                        body + 5,
                        self.max
                    )));
                }
                self.remaining = body;
                if CHECKED.contains(&self.header[0]) {
                    self.inner = Some(Vec::with_capacity(body.min(1 << 16) as usize));
                    self.finish_inner()?;
                }
            } else {
                let len = i32::from_be_bytes([self.header[0], self.header[1], self.header[2], self.header[3]]);
                let code = u32::from_be_bytes([self.header[4], self.header[5], self.header[6], self.header[7]]);
                if !(8..=MAX_STARTUP_BYTES as i32).contains(&len) {
                    return Err(Refused::malformed(format!("invalid startup packet length {len}")));
                }
                self.remaining = len as u64 - 8;
                self.typed = !NEGOTIATION_CODES.contains(&code);
            }
        }
        Ok(())
    }
}

impl Framing {
    /// Once a checked message's body is complete, checks that it is exactly what its type says.
    fn finish_inner(&mut self) -> Result<(), Refused> {
        if self.remaining > 0 {
            return Ok(());
        }
        let Some(body) = self.inner.take() else { return Ok(()) };
        let kind = self.header[0];
        let mut b = Body(&body);
        let checked = match kind {
            b'B' => check_bind(&mut b),
            b'P' => check_parse(&mut b),
            b'Q' | b'f' => b.cstring(),
            b'E' => b.cstring().and_then(|_| b.i32().map(drop)),
            b'D' | b'C' => b.take(1).and_then(|_| b.cstring()),
            _ => Ok(()),
        };
        checked
            .and_then(|_| match b.0.len() {
                0 => Ok(()),
                n => Err(format!("{n} bytes after the end of its contents")),
            })
            .map_err(|e| Refused::malformed(format!("invalid message of type '{}': {e}", char::from(kind))))
    }
}

/// Message types whose bodies are checked to be exactly their contents: pgwire's decoders read
/// what they parse from the buffer, not the length the header gave, so a Query with bytes
/// after its terminator, or a Sync with a body, would leave bytes it then decodes as the next
/// message (found by fuzzing), and its Bind and Parse decoders panic on inner lengths past the
/// message. Query, Parse, Bind, Execute, Describe, Close, CopyFail; Sync, Flush, Terminate and
/// CopyDone have empty bodies. CopyData and password messages are taken by their length.
const CHECKED: [u8; 11] = [b'Q', b'P', b'B', b'E', b'D', b'C', b'f', b'S', b'H', b'X', b'c'];

/// A cursor over a message body that refuses to read past its end.
struct Body<'a>(&'a [u8]);

impl<'a> Body<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.0.len() {
            return Err(format!("insufficient data left in message ({n} bytes wanted, {} left)", self.0.len()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn cstring(&mut self) -> Result<(), String> {
        let end = self.0.iter().position(|b| *b == 0).ok_or("unterminated string")?;
        self.0 = &self.0[end + 1..];
        Ok(())
    }

    fn i16(&mut self) -> Result<i16, String> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn count(&mut self) -> Result<usize, String> {
        let n = self.i16()?;
        usize::try_from(n).map_err(|_| format!("negative count {n}"))
    }
}

/// Bind: portal, statement, format codes, parameters (length -1 = NULL, else that many bytes),
/// result format codes.
fn check_bind(b: &mut Body<'_>) -> Result<(), String> {
    b.cstring()?;
    b.cstring()?;
    let formats = b.count()?;
    b.take(formats * 2)?;
    for _ in 0..b.count()? {
        match b.i32()? {
            -1 => {}
            len if len < 0 => return Err(format!("invalid parameter length {len}")),
            len => {
                b.take(len as usize)?;
            }
        }
    }
    let results = b.count()?;
    b.take(results * 2)?;
    Ok(())
}

/// Parse: statement name, query, parameter type OIDs.
fn check_parse(b: &mut Body<'_>) -> Result<(), String> {
    b.cstring()?;
    b.cstring()?;
    let types = b.count()?;
    b.take(types * 4)?;
    Ok(())
}

/// Checks `bytes` (a connection's stream from its first byte) against the framing rules with
/// a limit of `max` body bytes per message: what [`crate::conn::serve`] enforces (the fuzz target's entry).
pub fn check_frames(bytes: &[u8], max: usize) -> Result<(), String> {
    Framing::new(max).feed(bytes).map_err(|e| e.message)
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
        with_body(kind, &vec![b'x'; body_len])
    }

    #[test]
    fn framing_passes_messages_under_the_limit_split_anywhere() {
        let mut stream = startup();
        stream.extend(typed(b'd', 100));
        stream.extend(typed(b'd', 1024));
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
        assert!(err.message.contains("exceeds the limit") && err.sqlstate == "54000", "{err}");
        let mut f = Framing::new(1024);
        f.feed(&startup()).unwrap();
        assert!(f.feed(&[b'B', 0xff, 0xff, 0xff, 0xf0]).unwrap_err().message.contains("invalid message length"));
    }

    fn with_body(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn bind_and_parse_lengths_are_checked() {
        let bind = |len: i32| {
            let mut b = b"\0s\0\0\0\0\x01".to_vec();
            b.extend_from_slice(&len.to_be_bytes());
            b.extend_from_slice(b"42\0\0");
            [startup(), with_body(b'B', &b)].concat()
        };
        assert!(check_frames(&bind(2), 1024).is_ok());
        assert!(check_frames(&bind(-1), 1024).is_err(), "NULL, then two stray bytes where the result formats are");
        for bad in [-2, 3, 1_000_000, i32::MAX] {
            let err = check_frames(&bind(bad), 1024).unwrap_err();
            assert!(err.starts_with("invalid message of type 'B'"), "{bad}: {err}");
        }
        let parse = |n: i16| {
            let mut b = b"s\0SELECT $1\0".to_vec();
            b.extend_from_slice(&n.to_be_bytes());
            b.extend_from_slice(&20i32.to_be_bytes());
            [startup(), with_body(b'P', &b)].concat()
        };
        assert!(check_frames(&parse(1), 1024).is_ok());
        assert!(check_frames(&parse(2), 1024).is_err());
        assert!(check_frames(&parse(-1), 1024).is_err());
        // Bytes after a query's terminator, or a Sync with a body: refused, not left for the
        // decoder to read as the next message.
        let query = |body: &[u8]| check_frames(&[startup(), with_body(b'Q', body)].concat(), 1024);
        assert!(query(b"SELECT 1\0").is_ok());
        assert!(query(b"SELECT 1\0P\0\0\0\x04").unwrap_err().contains("after the end"));
        assert!(query(b"SELECT 1").is_err());
        assert!(check_frames(&[startup(), with_body(b'S', b"x")].concat(), 1024).is_err());
        assert!(check_frames(&[startup(), with_body(b'S', b""), with_body(b'd', b"1\t2\n")].concat(), 1024).is_ok());
        // A body split across reads is checked once complete.
        let stream = bind(3);
        let mut f = Framing::new(1024);
        let (a, b) = stream.split_at(stream.len() - 3);
        f.feed(a).unwrap();
        assert!(f.feed(b).is_err());
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
