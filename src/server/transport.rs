//! The layer under a connection: plain TCP, or TLS over it.
//!
//! A connection reads plaintext from its [`Transport`] and writes
//! plaintext to it. What speaks on the connection (a telnet line, HTTP, a
//! WebSocket) never learns which transport it has: `wss://` is `ws://`
//! with this layer in between (RFC 6455 §11.1.2), `https://` is `http://`
//! the same way.
//!
//! TLS is rustls, which is sans-IO like the rest of the server: it takes
//! bytes from the socket (`read_tls`), turns them into plaintext
//! (`process_new_packets`, then `reader`), takes plaintext (`writer`) and
//! hands back records for the socket (`write_tls`). The loop around it
//! keeps three promises that rustls's own `tlsserver-mio` example does not
//! (each one a bug some server shipped):
//!
//! * **Drain under edge triggering.** One `read_tls` per event is not
//!   enough: epoll reports a socket once, not again while bytes remain
//!   (mio#1085). [`Tls::read`] loops until the socket says `WouldBlock`
//!   or the caller's buffer is full.
//! * **Plaintext that arrives with the handshake is handed on at once.**
//!   A client's last handshake flight often carries its first request in
//!   the same segment; if it were left in rustls until the next event, it
//!   would wait for one that never comes (sozu#460). After every
//!   `process_new_packets` the reader is emptied first.
//! * **A full plaintext buffer is never a busy loop.** rustls refuses
//!   `read_tls` while its plaintext buffer is full; a loop that retried
//!   without reading the plaintext out spins forever (sozu#652, and the
//!   close loop of CVE-2019-15541). Here plaintext is always taken out
//!   before more ciphertext is read, and a full caller buffer ends the
//!   read with bytes to hand on, never with a retry.
//!
//! On the way out, plaintext from the connection's queue is sealed into
//! records only while rustls holds none unsent, and at most
//! `--tls-buffer` bytes at a time, so the bytes waiting after encryption
//! stay bounded too, and are counted against the output limits
//! ([`Sessions::sealed`]).
//!
//! Where the sessions live: in [`Sessions`], the loop's table of them by
//! connection token, not in the connection. A plain connection then pays
//! nothing for TLS, not even a pointer: an idle connection is a few
//! hundred bytes, and every byte of it counts ten thousand times.
//! [`Transport`] is the view the loop reads and writes through: the
//! connection's socket, and its session if it has one.
//!
//! What an idle TLS connection costs: about 8 KB, nearly all of it
//! rustls's. Its `ServerConnection` is 1,168 bytes (in the box here), and
//! holds about 7 KB more on the heap: both directions' keys, and a read
//! buffer that rustls keeps at 4 KiB from the first read on (it frees
//! larger ones once they are empty, and has no call to free the last).
//! See `docs/08-tls.md` for the measurements.

use mio::net::TcpStream;
use mio::Token;
use rustls::{ServerConfig, ServerConnection};
use std::collections::HashMap;
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;

/// The most plaintext one TLS record carries (RFC 8446 §5.1).
const MAX_RECORD: usize = 1 << 14;

/// The loop's TLS sessions, by connection token. Boxed, so the table's
/// slots are a pointer each and a session is allocated once, where it
/// stays.
#[derive(Default)]
pub(super) struct Sessions(HashMap<usize, Box<Tls>>);

impl Sessions {
    /// A new session for a connection just accepted on a TLS door: nothing
    /// is read or written until the peer's ClientHello arrives.
    pub fn open(&mut self, token: Token, config: Arc<ServerConfig>, buffer: usize) -> io::Result<()> {
        let mut session = ServerConnection::new(config).map_err(|e| io::Error::other(format!("TLS: {e}")))?;
        // Bounds both the plaintext written before the handshake is done
        // and the records waiting for the socket after it. At least one
        // full record (RFC 8446 §5.1: 2^14 bytes of plaintext), or a
        // `--tls-buffer` of 0 would let nothing be sealed, ever.
        session.set_buffer_limit(Some(buffer.max(MAX_RECORD)));
        let tls = Tls {
            session,
            input: Input::Records,
            sealed: 0,
            opening: Opening::default(),
        };
        self.0.insert(token.0, Box::new(tls));
        Ok(())
    }

    /// The connection is freed: so is its session.
    pub fn close(&mut self, token: Token) {
        self.0.remove(&token.0);
    }

    /// What `socket` reads and writes through: the socket itself, or the
    /// session over it.
    pub fn transport<'a>(&'a mut self, token: Token, socket: &'a TcpStream) -> Transport<'a> {
        match self.0.get_mut(&token.0) {
            Some(tls) => Transport::Tls(socket, tls),
            None => Transport::Plain(socket),
        }
    }

    /// Whether the connection has TLS under it.
    pub fn is_tls(&self, token: Token) -> bool {
        self.0.contains_key(&token.0)
    }

    /// Whether TLS is still being negotiated (for the handshake deadline).
    pub fn is_handshaking(&self, token: Token) -> bool {
        self.0
            .get(&token.0)
            .is_some_and(|tls| tls.session.is_handshaking())
    }

    /// rustls holds records to send: a handshake answer, an alert, or
    /// sealed plaintext the socket did not take.
    pub fn has_records(&self, token: Token) -> bool {
        self.0.get(&token.0).is_some_and(|tls| tls.session.wants_write())
    }

    /// Plaintext taken from the queue but not yet all on the wire as
    /// records (always 0 for plain TCP, where the kernel holds it).
    pub fn sealed(&self, token: Token) -> usize {
        self.0.get(&token.0).map_or(0, |tls| tls.sealed)
    }
}

/// How a connection's bytes reach the wire, for the length of one call.
pub(super) enum Transport<'a> {
    /// Straight to the socket.
    Plain(&'a TcpStream),
    /// Through TLS over the socket.
    Tls(&'a TcpStream, &'a mut Tls),
}

/// A connection's TLS session.
pub(super) struct Tls {
    session: ServerConnection,
    input: Input,
    /// Plaintext handed to rustls whose records may not all be on the
    /// wire yet: counted against the output limits until they are.
    sealed: usize,
    /// The first bytes the peer sent, kept while the handshake lasts, so a
    /// failed one can say what the peer spoke instead of TLS.
    opening: Opening,
}

/// Where reading stands. Moves only forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Input {
    /// Records arrive and are decrypted.
    Records,
    /// The peer's end (close_notify, or TCP's FIN) was met behind
    /// plaintext that has been handed on; the next read reports the end.
    Ending,
    /// We sent a fatal alert (RFC 8446 §6.2): the session is over, and
    /// whatever the peer still sends is read raw and dropped.
    Broken,
}

impl Transport<'_> {
    /// A short read does not prove the stream drained: the peer's end was
    /// met, and one more read reports it.
    pub fn read_again(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(_, tls) => tls.input == Input::Ending,
        }
    }

    /// Writes out the records rustls holds (handshake messages, alerts,
    /// sealed plaintext) until the socket is full. Returns whether none
    /// are left.
    pub fn send_records(&mut self) -> io::Result<bool> {
        match self {
            Transport::Plain(_) => Ok(true),
            Transport::Tls(socket, tls) => tls.send_records(socket),
        }
    }

    /// Our last byte is queued: end our side of the stream. Over TLS
    /// close_notify goes first (RFC 8446 §6.1), so the peer can tell our
    /// end from an attacker's cut. Returns whether the FIN was sent (not
    /// yet, while close_notify waits for room in the socket).
    pub fn shutdown_write(&mut self) -> io::Result<bool> {
        let (Transport::Plain(socket) | Transport::Tls(socket, _)) = self;
        let socket = *socket;
        if let Transport::Tls(_, tls) = self {
            // Does nothing after a fatal alert: that was the last word.
            // After the few failures rustls sends no alert for (a
            // handshake message over its size bound), this is the one
            // alert the peer gets.
            tls.session.send_close_notify();
            if !tls.send_records(socket)? {
                return Ok(false);
            }
        }
        // Already shut (or the peer reset): the FIN's job is done either way.
        let _ = socket.shutdown(Shutdown::Write);
        Ok(true)
    }
}

/// Reading plaintext: the socket's bytes, or TLS's decrypted records.
impl Read for Transport<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(socket) => socket.read(buf),
            Transport::Tls(socket, tls) => tls.read(socket, buf),
        }
    }
}

/// Writing plaintext: to the socket, or sealed into TLS records. Never
/// `Ok(0)`: a transport that cannot take more says `WouldBlock`.
impl Write for Transport<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(socket) => socket.write(buf),
            Transport::Tls(socket, tls) => tls.write_vectored(socket, &[IoSlice::new(buf)]),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice]) -> io::Result<usize> {
        match self {
            Transport::Plain(socket) => socket.write_vectored(bufs),
            Transport::Tls(socket, tls) => tls.write_vectored(socket, bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_records().map(|_| ())
    }
}

impl Tls {
    /// Fills `buf` with plaintext: what rustls has decrypted first, then
    /// more records from the socket, until the socket is drained
    /// (`WouldBlock`), the stream ends, or `buf` is full. A short count
    /// therefore means the same as on a plain socket: drained.
    fn read(&mut self, mut socket: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        if self.input == Input::Broken {
            return socket.read(buf);
        }
        let mut filled = 0;
        // The last read from the socket got less than rustls asked for:
        // the kernel had no more, as a short read means on a plain socket.
        let mut drained = false;
        loop {
            // Plaintext first, so rustls's buffer is never full when we
            // ask it to read more (sozu#652).
            match self.session.reader().read(&mut buf[filled..]) {
                Ok(0) => return self.end(filled, Ok(0)),
                Ok(n) => {
                    filled += n;
                    if filled == buf.len() {
                        return Ok(filled);
                    }
                    continue;
                }
                // Nothing decrypted is left. With plaintext to hand on and
                // the socket known to be drained, one more read would only
                // say `WouldBlock`: stop here (edge triggering raises a new
                // event for bytes that arrive later). That saves a system
                // call per message, as on a plain socket. Without plaintext
                // we read on, so a FIN behind a partial record is seen.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && drained && filled > 0 => {
                    return Ok(filled);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // TCP ended without close_notify (RFC 8446 §6.1).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    let cut = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "closed without close_notify: a truncation (RFC 8446 §6.1)",
                    );
                    return self.end(filled, Err(cut));
                }
                Err(e) => return Err(e),
            }
            let handshaking = self.session.is_handshaking();
            let mut from = Recording {
                socket,
                opening: handshaking.then_some(&mut self.opening),
                drained: &mut drained,
            };
            match self.session.read_tls(&mut from) {
                // The end of TCP: the reader says next whether it was clean.
                Ok(0) => {}
                Ok(_) => self.process()?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return if filled > 0 { Ok(filled) } else { Err(e) };
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // rustls refused the input (a handshake message over
                    // its 64 KiB bound): the session cannot go on.
                    if e.kind() == io::ErrorKind::InvalidData {
                        self.input = Input::Broken;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// The stream ended: report it now, or after the plaintext before it.
    fn end(&mut self, filled: usize, end: io::Result<usize>) -> io::Result<usize> {
        if filled > 0 {
            self.input = Input::Ending;
            return Ok(filled);
        }
        end
    }

    /// Decrypts what was read, and answers the handshake. A failure has
    /// queued its alert for the write point (RFC 8446 §6.2: a fatal alert,
    /// then the connection is closed), and is named for the log.
    fn process(&mut self) -> io::Result<()> {
        let Err(e) = self.session.process_new_packets() else {
            return Ok(());
        };
        let what = if self.session.is_handshaking() && self.opening.is_http() {
            // A browser or curl pointed at https:// on the plain port does
            // the reverse; this is someone typing http:// to the TLS one.
            "plain HTTP on the TLS port".to_string()
        } else if self.session.is_handshaking() {
            format!("TLS handshake failed: {e}")
        } else {
            format!("TLS: {e}")
        };
        self.input = Input::Broken;
        Err(io::Error::new(io::ErrorKind::InvalidData, what))
    }

    /// Seals plaintext into records, then sends them. Takes nothing while
    /// earlier records still wait for the socket, so rustls never holds
    /// more than one `--tls-buffer` of them.
    fn write_vectored(&mut self, socket: &TcpStream, bufs: &[IoSlice]) -> io::Result<usize> {
        if !self.send_records(socket)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        // Before the handshake is done rustls keeps plaintext as it is,
        // and seals it once the keys exist; the same limit bounds it.
        let n = self.session.writer().write_vectored(bufs)?;
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.sealed += n;
        self.send_records(socket)?;
        Ok(n)
    }

    /// `write_tls` until the socket is full or nothing is left. Returns
    /// whether nothing is left.
    fn send_records(&mut self, mut socket: &TcpStream) -> io::Result<bool> {
        while self.session.wants_write() {
            match self.session.write_tls(&mut socket) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if !self.session.is_handshaking() {
            self.sealed = 0;
        }
        Ok(true)
    }
}

/// The first bytes a peer sent, while the handshake lasts.
#[derive(Default)]
struct Opening {
    bytes: [u8; 4],
    len: u8,
}

impl Opening {
    fn record(&mut self, read: &[u8]) {
        let start = usize::from(self.len);
        let take = read.len().min(self.bytes.len() - start);
        self.bytes[start..start + take].copy_from_slice(&read[..take]);
        self.len += take as u8;
    }

    /// Starts like an HTTP request line (RFC 9110 §9: a method, then a
    /// space). A TLS record starts with a content type byte of 20 to 24
    /// (RFC 8446 §5.1), never a capital letter.
    fn is_http(&self) -> bool {
        const METHODS: [&[u8]; 8] = [
            b"GET ", b"POST", b"HEAD", b"PUT ", b"DELE", b"OPTI", b"PATC", b"CONN",
        ];
        let seen = &self.bytes[..usize::from(self.len)];
        seen.len() == 4 && METHODS.contains(&seen)
    }
}

/// The socket as `read_tls` sees it: notes whether a read drained it, and
/// the first bytes while asked to.
struct Recording<'a> {
    socket: &'a TcpStream,
    opening: Option<&'a mut Opening>,
    /// Set when a read gets less than it asked for.
    drained: &'a mut bool,
}

impl Read for Recording<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut socket = self.socket;
        let n = socket.read(buf)?;
        *self.drained = n < buf.len();
        if let Some(opening) = self.opening.as_deref_mut() {
            opening.record(&buf[..n]);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_told_from_a_client_hello() {
        let mut http = Opening::default();
        http.record(b"GE");
        http.record(b"T / HTTP/1.1\r\n");
        assert!(http.is_http());
        let mut hello = Opening::default();
        hello.record(&[0x16, 0x03, 0x01, 0x02, 0x00]);
        assert!(!hello.is_http());
        let mut short = Opening::default();
        short.record(b"GET");
        assert!(!short.is_http());
    }
}
