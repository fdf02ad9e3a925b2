//! One client connection on a mio loop, as both tools drive it: a
//! non-blocking connect, the opening handshake from the client's side,
//! output queued and written until `WouldBlock`, input read until
//! `WouldBlock`, and the server's frames decoded into owned values.
//!
//! What a connection is *for* (echoing, chatting, holding still, reading
//! nothing on purpose) is each tool's business, and so is its state
//! machine: [`Conn`] is only the plumbing under it, the same in both.
//! The soak's HTTP members use it for plain HTTP/1.1 too: the same connect,
//! writes and reads, with [`http`](crate::http) instead of the handshake
//! and the frame decoder.
//!
//! Over TLS (`wss://`) the socket is read and written through a rustls
//! client session instead: the same calls, plaintext above it.

use crate::client::{check_response, encode_client_frame, handshake_request, random_key};
use crate::client::{Accepted, HandshakeFailure};
use duplex::ws::decoder::MessageKind;
use duplex::ws::deflate::{InflateError, Inflater};
use duplex::ws::{CloseCode, Decoder, Event, Limits, Opcode, ProtocolError, Role};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A server whose answer to the handshake has no end after this many bytes
/// is not answering the handshake.
const MAX_ANSWER_HEAD: usize = 16 * 1024;

/// A socket, what waits to go out on it, what came in and is not used yet,
/// and the decoder for the server's frames.
pub struct Conn {
    pub socket: TcpStream,
    /// TLS over the socket, for `wss://`.
    tls: Option<Box<ClientConnection>>,
    /// TLS's end was met behind plaintext that the last read returned.
    ended: bool,
    /// Bytes to write; the first `written` of them are already out.
    pub out: Vec<u8>,
    written: usize,
    /// Read and not used yet: the handshake's answer, a partial line, or
    /// frames.
    pub input: Vec<u8>,
    /// The server's frames, in the client role: they must arrive unmasked
    /// (RFC 6455 §5.1).
    pub decoder: Decoder,
    /// Offer permessage-deflate in the handshake (RFC 7692).
    pub offer_deflate: bool,
    /// permessage-deflate, once the server agreed to it.
    pub deflate: Option<Box<Deflate>>,
}

/// The offer the tools make: what browsers send.
pub const DEFLATE_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// A client's side of permessage-deflate: how to read the server's
/// compressed messages (RFC 7692 §7.2.2).
pub struct Deflate {
    /// The server said `server_no_context_takeover`: every message starts
    /// from an empty window, so the thread's one inflater reads them all.
    server_resets: bool,
    /// Otherwise this connection's own, made at the first message.
    own: Option<Inflater>,
}

thread_local! {
    /// One inflater and one buffer for every connection whose server
    /// resets its context (duplex does): like the server, the tools need
    /// no inflater per connection for those.
    static SHARED: std::cell::RefCell<(Inflater, Vec<u8>)> = std::cell::RefCell::new((Inflater::new(), Vec::new()));
}

/// What one frame from the server said, owned, so the caller can act on it
/// once the borrow of the input is over. `T` is what the caller keeps of a
/// message: the load tool its length, the soak its bytes.
pub enum Received<T> {
    Message(MessageKind, T),
    /// A ping, whose payload the pong must carry back (§5.5.2).
    Ping(Vec<u8>),
    /// The server's close frame: its code if it had one, and its reason.
    Close(Option<CloseCode>, String),
}

impl Conn {
    /// Starts a non-blocking connect to `addr`, registered for both kinds
    /// of readiness under `token`. The first event on it says how the
    /// connect went: see [`Conn::connected`].
    pub fn connect(registry: &Registry, addr: SocketAddr, token: Token) -> io::Result<Conn> {
        let mut socket = TcpStream::connect(addr)?;
        registry.register(&mut socket, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(Conn {
            socket,
            tls: None,
            ended: false,
            out: Vec::new(),
            written: 0,
            input: Vec::new(),
            decoder: Decoder::new(Role::Client, Limits::default()),
            offer_deflate: false,
            deflate: None,
        })
    }

    /// [`Conn::connect`], with TLS over the connection: the ClientHello
    /// goes out with the first flush.
    pub fn connect_tls(
        registry: &Registry,
        addr: SocketAddr,
        token: Token,
        config: &Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<Conn> {
        let mut conn = Conn::connect(registry, addr, token)?;
        let mut session = ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
        // The tool bounds what it queues itself (`-d` messages in flight);
        // rustls's own 64 KiB bound would refuse one 64 KiB message.
        session.set_buffer_limit(None);
        conn.tls = Some(Box::new(session));
        Ok(conn)
    }

    /// After an event on a socket still connecting: `Ok(true)` once it is
    /// connected, `Ok(false)` if the event was spurious and the connect is
    /// still under way, `Err` if it failed (the error `connect(2)` would
    /// have returned, had it blocked).
    pub fn connected(&mut self) -> io::Result<bool> {
        if let Some(e) = self.socket.take_error()? {
            return Err(e);
        }
        match self.socket.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(false),
            Err(e) => return Err(e),
        }
        // Small messages leave at once rather than after Nagle's delay:
        // the tools measure latency. A refusal costs only that, so it is
        // not an error.
        let _ = self.socket.set_nodelay(true);
        Ok(true)
    }

    /// Queues the opening handshake's request (§4.1) and returns its key,
    /// which the answer must prove it has read.
    pub fn send_handshake(&mut self, host: &str, path: &str, protocols: &[&str]) -> String {
        let key = random_key();
        self.out.extend_from_slice(&handshake_request(
            host,
            path,
            &key,
            protocols,
            self.offer_deflate.then_some(DEFLATE_OFFER),
        ));
        key
    }

    /// Reads the handshake's answer from `input`. `Ok(Some(..))`: a valid
    /// `101`; its head is taken off `input`, and any frames that came right
    /// after it stay there. `Ok(None)`: not complete yet, read more.
    pub fn handshake_answer(
        &mut self,
        key: &str,
        offered: &[&str],
    ) -> Result<Option<Accepted>, HandshakeFailure> {
        match check_response(&self.input, key, offered) {
            Ok(accepted) => {
                self.input.drain(..accepted.head_len);
                match (&accepted.extensions, self.offer_deflate) {
                    (None, _) => {}
                    (Some(agreed), true) if agreed.starts_with("permessage-deflate") => {
                        self.decoder.set_compression(true);
                        self.deflate = Some(Box::new(Deflate {
                            server_resets: agreed.contains("server_no_context_takeover"),
                            own: None,
                        }));
                    }
                    (Some(_), _) => {
                        return Err(HandshakeFailure::Invalid("an extension that was not offered"))
                    }
                }
                Ok(Some(accepted))
            }
            Err(HandshakeFailure::Incomplete) if self.input.len() < MAX_ANSWER_HEAD => Ok(None),
            Err(HandshakeFailure::Incomplete) => Err(HandshakeFailure::Invalid("an answer head over 16 KiB")),
            Err(e) => Err(e),
        }
    }

    /// Queues one frame, masked with a fresh key (§5.3).
    pub fn send_frame(&mut self, opcode: Opcode, payload: &[u8]) {
        encode_client_frame(&mut self.out, true, opcode, payload);
    }

    /// Writes what is queued until all of it is out or the socket would
    /// block; the next writable event brings the caller back for the rest.
    pub fn flush(&mut self) -> io::Result<()> {
        if let Some(tls) = &mut self.tls {
            // rustls keeps what it is given (sealed once the handshake is
            // done): the queue moves into it whole, then its records go out.
            tls.writer().write_all(&self.out[self.written..])?;
            self.out.clear();
            self.written = 0;
            return send_records(tls, &mut self.socket);
        }
        while self.written < self.out.len() {
            match self.socket.write(&self.out[self.written..]) {
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Not connected yet: the writable event that says it is
                // will come.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.written = 0;
        Ok(())
    }

    /// One read into `buf`: `Some(n)` bytes (0 when the server has closed
    /// its side), or `None` when there is nothing more for now
    /// (`WouldBlock`). A signal in the middle is retried.
    // `#[inline]` here and on `decode`: both run once or more per echo in
    // the load tool, in another crate, and without it the calls cost the
    // tool 8% more instructions per echo (callgrind, 32-byte echoes).
    #[inline]
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if let Some(tls) = &mut self.tls {
            return read_tls(tls, &mut self.socket, buf, &mut self.ended);
        }
        loop {
            match self.socket.read(buf) {
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// A read returned fewer bytes than asked, yet the socket is not
    /// drained: over TLS, the end of the stream came right behind them,
    /// and the next read reports it.
    pub fn read_again(&self) -> bool {
        self.ended
    }

    /// Reads everything there is into `input`, through `buf`: edge-triggered
    /// readiness is reported once, so a read must go on until `WouldBlock`.
    /// `Err` says why the connection ended, if it did.
    pub fn read_to_input(&mut self, buf: &mut [u8]) -> Result<(), String> {
        self.read_to_input_within(buf, usize::MAX)
    }

    /// [`Conn::read_to_input`], with `input` bounded: a server that sends
    /// more than `limit` bytes the caller has not used yet is an error, not
    /// memory.
    pub fn read_to_input_within(&mut self, buf: &mut [u8], limit: usize) -> Result<(), String> {
        loop {
            match self.read(buf) {
                Ok(None) => return Ok(()),
                Ok(Some(0)) => return Err("closed by the server".to_string()),
                Ok(Some(n)) if self.input.len() + n > limit => {
                    return Err(format!("over {limit} bytes unread"))
                }
                Ok(Some(n)) => self.input.extend_from_slice(&buf[..n]),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    /// Decodes the next frame of `bytes`. Returns how many bytes it used,
    /// and what the frame said; `None` when all of `bytes` went into a frame
    /// not complete yet (the decoder keeps it), or for a pong, which answers
    /// a ping the tools never send. `keep` makes a message's payload into
    /// what the caller wants of it.
    #[inline]
    pub fn decode<T>(
        &mut self,
        bytes: &mut [u8],
        keep: impl FnOnce(MessageKind, &[u8]) -> T,
    ) -> Result<(usize, Option<Received<T>>), ProtocolError> {
        let (used, event) = self.decoder.decode(bytes)?;
        let received = match event {
            None | Some(Event::Pong(_)) => None,
            Some(Event::Message(kind, payload)) => Some(Received::Message(kind, keep(kind, payload))),
            Some(Event::Compressed(kind, payload)) => {
                let Some(deflate) = self.deflate.as_deref_mut() else {
                    return Err(ProtocolError::ReservedBits(duplex::ws::frame::RSV1));
                };
                Some(Received::Message(kind, inflate(deflate, kind, payload, keep)?))
            }
            Some(Event::Ping(payload)) => Some(Received::Ping(payload.to_vec())),
            Some(Event::Close(frame)) => Some(match frame {
                Some(frame) => Received::Close(Some(frame.code), frame.reason.to_string()),
                None => Received::Close(None, String::new()),
            }),
        };
        Ok((used, received))
    }
}

/// A compressed message from the server, inflated (RFC 7692 §7.2.2) and
/// handed to `keep`.
fn inflate<T>(
    deflate: &mut Deflate,
    kind: MessageKind,
    payload: &[u8],
    keep: impl FnOnce(MessageKind, &[u8]) -> T,
) -> Result<T, ProtocolError> {
    let limit = Limits::default().max_message;
    let corrupt = |e| match e {
        InflateError::TooBig => ProtocolError::MessageTooBig { limit },
        InflateError::Corrupt => ProtocolError::CorruptDeflate,
    };
    if deflate.server_resets {
        return SHARED.with(|shared| {
            let (inflater, out) = &mut *shared.borrow_mut();
            let result = inflater.inflate(payload, out, limit);
            inflater.reset();
            result.map_err(corrupt)?;
            Ok(keep(kind, out))
        });
    }
    let inflater = deflate.own.get_or_insert_with(Inflater::new);
    let mut out = Vec::new();
    inflater.inflate(payload, &mut out, limit).map_err(corrupt)?;
    Ok(keep(kind, &out))
}

/// Writes a TLS session's records until none are left or the socket
/// would block.
fn send_records(tls: &mut ClientConnection, socket: &mut TcpStream) -> io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(socket) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// [`Conn::read`] over TLS, meaning what a read means on a plain socket:
/// as much plaintext as fits in `buf`, and less only once the socket is
/// drained. The end of the stream, clean or not, is `Some(0)`; met behind
/// plaintext, it is left for the next read (see [`Conn::read_again`]).
fn read_tls(
    tls: &mut ClientConnection,
    socket: &mut TcpStream,
    buf: &mut [u8],
    ended: &mut bool,
) -> io::Result<Option<usize>> {
    let mut filled = 0;
    // The last socket read got less than rustls asked for.
    let mut drained = false;
    loop {
        match tls.reader().read(&mut buf[filled..]) {
            Ok(n) if n > 0 => {
                filled += n;
                if filled == buf.len() {
                    return Ok(Some(filled));
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && drained && filled > 0 => {
                return Ok(Some(filled));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // The end: close_notify (Ok(0)) or a cut (UnexpectedEof).
            Ok(_) => return Ok(Some(end(filled, ended))),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Some(end(filled, ended))),
            Err(e) => return Err(e),
        }
        let mut from = Drained {
            socket,
            drained: &mut drained,
        };
        match tls.read_tls(&mut from) {
            // The end: the reader says so on the next turn.
            Ok(0) => {}
            Ok(_) => {
                tls.process_new_packets().map_err(io::Error::other)?;
                // The handshake's answers, and plaintext it held back.
                send_records(tls, socket)?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Ok((filled > 0).then_some(filled));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The stream ended after `filled` bytes of plaintext: those first.
fn end(filled: usize, ended: &mut bool) -> usize {
    *ended = filled > 0;
    filled
}

/// The socket as rustls reads it, noting whether a read drained it.
struct Drained<'a> {
    socket: &'a mut TcpStream,
    drained: &'a mut bool,
}

impl Read for Drained<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.socket.read(buf)?;
        *self.drained = n < buf.len();
        Ok(n)
    }
}

/// Waits for readiness, at most `timeout`. A signal that cuts the wait
/// short is not an error: the caller simply turns again, with no events.
pub fn wait(poll: &mut Poll, events: &mut Events, timeout: Duration) {
    match poll.poll(events, Some(timeout)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::Interrupted => events.clear(),
        // Only a bug makes epoll_wait fail (a bad descriptor or argument),
        // and a tool that cannot wait cannot go on.
        Err(e) => panic!("poll failed: {e}"),
    }
}
