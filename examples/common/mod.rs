//! The WebSocket server of `ws_echo_server.rs`, lifted out so that
//! `timer_push.rs` and `chat.rs` show only what is new in them. Read
//! example 3 first: this is the same loop and the same three phases, with
//! two changes. Messages are handed to the application instead of being
//! echoed, and the application can queue frames of its own.
//!
//! The loop is split where the application gets its turn, as in Redis's
//! `aeProcessEvents`:
//!
//! ```text
//! loop {
//!     let news = server.turn(timeout)?;   // poll, accept, read: who said what
//!     ... the application answers, pushes, broadcasts ...
//!     server.flush();                     // write everything queued, reap the finished
//! }
//! ```
//!
//! [`client`] is the other end, a blocking WebSocket client, for
//! `ws_client.rs`.
#![allow(dead_code)] // Each example uses a different part.

pub mod client;

use duplex::http::{HeadLimits, Request, RequestReader, Response, Status};
use duplex::outq::OutQueue;
use duplex::ws::close::close_payload;
use duplex::ws::decoder::MessageKind;
use duplex::ws::{encode_frame, handshake, CloseCode, Decoder, Event, Limits, Opcode, Role};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::io::{self, Read};
use std::rc::Rc;
use std::time::Duration;

const LISTENER: Token = Token(usize::MAX);
const HEAD: HeadLimits = HeadLimits {
    max_head: 8192,
    max_headers: 64,
    max_body: 0,
};
/// Stop reading from a peer while this much of its output waits.
const MAX_PENDING: usize = 1 << 20;
/// A client whose unsent output passes this cannot keep up with what we
/// push to it, and is dropped. Without a limit one stalled reader would
/// make the server hold every broadcast for it for ever. (Redis calls this
/// the client output buffer limit; duplex has a soft and a hard one.)
const MAX_OUTPUT: usize = 8 << 20;

/// What happened on a connection, for the application.
pub struct News {
    /// The slab key: `server.conns[key]` while the connection lasts.
    pub key: usize,
    pub id: u64,
    pub what: Incoming,
}

pub enum Incoming {
    /// The handshake is done: the browser's `open` event.
    Opened,
    Text(String),
    Binary(Vec<u8>),
    /// Gone, with or without a close handshake: the `close` event.
    Closed,
}

enum Phase {
    Handshake(RequestReader),
    Open(Decoder),
    Closing,
}

pub struct WsConn {
    /// Unique for the life of the process, unlike the slab key, which is
    /// reused: a timer that names a connection names it by `id`.
    pub id: u64,
    stream: TcpStream,
    phase: Phase,
    out: OutQueue,
    protocols: &'static [&'static str],
    /// The handshake succeeded, so the application has heard of it.
    opened: bool,
}

impl WsConn {
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open(_))
    }

    /// Queues a text message (`ws.send(text)`), if the connection is open.
    pub fn send_text(&mut self, text: &str) {
        if self.is_open() {
            self.out
                .encode_with(|out| encode_frame(out, true, Opcode::Text, text.as_bytes(), None));
        }
    }

    /// Queues a frame already encoded, shared with other connections.
    pub fn send_shared(&mut self, frame: Rc<[u8]>) {
        if self.is_open() {
            self.out.push_shared(frame);
        }
    }

    /// Starts the closing handshake with `code` (§7.1.2).
    pub fn close(&mut self, code: CloseCode, reason: &str) {
        if self.is_open() {
            self.send_close(&close_payload(code, reason));
        }
    }

    /// Queues our close frame, the last frame we send (§5.5.1).
    fn send_close(&mut self, payload: &[u8]) {
        self.out
            .encode_with(|out| encode_frame(out, true, Opcode::Close, payload, None));
        self.phase = Phase::Closing;
    }

    /// Example 3's `drive`, collecting messages into `news`.
    fn drive(&mut self, buf: &mut [u8], news: &mut Vec<Incoming>) -> io::Result<bool> {
        loop {
            self.out.write_to(&mut self.stream)?;
            if let Phase::Closing = self.phase {
                return Ok(!self.out.is_empty());
            }
            if self.out.len() >= MAX_PENDING {
                return Ok(true);
            }
            match self.stream.read(buf) {
                Ok(0) => return Ok(false),
                Ok(n) => self.on_bytes(&mut buf[..n], news),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn on_bytes(&mut self, bytes: &mut [u8], news: &mut Vec<Incoming>) {
        let mut pos = 0;
        while pos < bytes.len() {
            match &mut self.phase {
                Phase::Handshake(reader) => match reader.read(&bytes[pos..]) {
                    Ok((used, None)) => pos += used,
                    Ok((used, Some(request))) => {
                        pos += used;
                        self.phase = answer_handshake(&request, &mut self.out, self.protocols);
                        if self.is_open() {
                            self.opened = true;
                            news.push(Incoming::Opened);
                        }
                    }
                    Err(e) => {
                        let refusal = Response::refusal(e.status(), &e.to_string()).close(true);
                        self.out.encode_with(|out| refusal.encode(out));
                        self.phase = Phase::Closing;
                    }
                },
                Phase::Open(decoder) => match decoder.decode(&mut bytes[pos..]) {
                    Ok((used, event)) => {
                        pos += used;
                        match event {
                            None => {}
                            // The decoder has checked the UTF-8 (§8.1), so
                            // nothing is replaced here.
                            Some(Event::Message(MessageKind::Text, text)) => {
                                news.push(Incoming::Text(String::from_utf8_lossy(text).into()))
                            }
                            Some(Event::Message(MessageKind::Binary, bytes)) => {
                                news.push(Incoming::Binary(bytes.to_vec()))
                            }
                            Some(Event::Ping(payload)) => self
                                .out
                                .encode_with(|out| encode_frame(out, true, Opcode::Pong, payload, None)),
                            Some(Event::Pong(_)) => {}
                            Some(Event::Close(frame)) => {
                                let payload = frame.map_or(Vec::new(), |f| close_payload(f.code, f.reason));
                                self.send_close(&payload);
                            }
                            // Only after permessage-deflate was agreed, which
                            // these servers never do: RSV1 is refused (1002)
                            // before a message could be marked compressed.
                            Some(Event::Compressed(..)) => {
                                self.send_close(&close_payload(CloseCode::PROTOCOL_ERROR, ""))
                            }
                        }
                    }
                    Err(e) => self.send_close(&close_payload(e.close_code(), &e.to_string())),
                },
                Phase::Closing => return,
            }
        }
    }
}

/// Example 3's handshake, with the endpoint's own subprotocols.
fn answer_handshake(request: &Request, out: &mut OutQueue, protocols: &[&'static str]) -> Phase {
    let refusal = if !handshake::is_upgrade(request) {
        Response::refusal(Status::UPGRADE_REQUIRED, "this is a WebSocket server")
            .header("Upgrade", "websocket")
    } else {
        match handshake::validate(request) {
            Ok(key) => {
                let protocol = handshake::select_protocol(request, protocols);
                out.encode_with(|out| handshake::accept_response(&key, protocol).encode(out));
                return Phase::Open(Decoder::new(Role::Server, Limits::default()));
            }
            Err(e) => e.response(),
        }
    };
    out.encode_with(|out| refusal.close(true).encode(out));
    Phase::Closing
}

/// One listener, its connections, and the loop's phases.
pub struct Server {
    poll: Poll,
    events: Events,
    listener: TcpListener,
    pub conns: Slab<WsConn>,
    protocols: &'static [&'static str],
    next_id: u64,
    buf: Vec<u8>,
    /// Keys whose connection is over, to be removed after the batch.
    finished: Vec<usize>,
    /// News not yet handed over: departures found while flushing.
    news: Vec<News>,
}

impl Server {
    /// Binds the address in the first argument (or `default`), offering
    /// `protocols`, and prints the `listening on` line.
    pub fn bind(default: &str, protocols: &'static [&'static str]) -> io::Result<Server> {
        let text = std::env::args().nth(1).unwrap_or_else(|| default.into());
        let addr = text
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(addr)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        println!("listening on {}", listener.local_addr()?);
        Ok(Server {
            poll,
            events: Events::with_capacity(256),
            listener,
            conns: Slab::new(),
            protocols,
            next_id: 0,
            buf: vec![0; 64 * 1024],
            finished: Vec::new(),
            news: Vec::new(),
        })
    }

    /// Waits up to `timeout` (`None`: until something happens), then
    /// accepts and reads. Returns what each connection said, by slab key.
    pub fn turn(&mut self, timeout: Option<Duration>) -> io::Result<Vec<News>> {
        // News already waiting: look at the sockets, but do not sleep.
        let timeout = if self.news.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        match self.poll.poll(&mut self.events, timeout) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            result => result?,
        }
        let mut news = std::mem::take(&mut self.news);
        // The tokens first: handling them needs `self` whole.
        let tokens: Vec<Token> = self.events.iter().map(|event| event.token()).collect();
        for token in tokens {
            match token {
                LISTENER => self.accept_all(),
                Token(key) => {
                    let Some(conn) = self.conns.get_mut(key) else {
                        continue;
                    };
                    let mut said = Vec::new();
                    let alive = conn.drive(&mut self.buf, &mut said).unwrap_or_else(|e| {
                        eprintln!("client {}: {e}", conn.id);
                        false
                    });
                    let id = conn.id;
                    news.extend(said.into_iter().map(|what| News { key, id, what }));
                    if !alive {
                        self.finished.push(key);
                    }
                }
            }
        }
        news.extend(self.reap());
        Ok(news)
    }

    /// Writes what the application queued. Connections that are done, or
    /// too slow, are removed; their departure is news for the next turn.
    pub fn flush(&mut self) {
        // A look at every connection, O(n) per turn: fine for an example.
        // duplex keeps a list of the connections with output instead.
        for (key, conn) in self.conns.iter_mut() {
            let written = conn.out.write_to(&mut conn.stream);
            let closed = matches!(conn.phase, Phase::Closing) && conn.out.is_empty();
            if conn.out.len() > MAX_OUTPUT {
                eprintln!(
                    "client {}: {} bytes unsent, dropped as too slow",
                    conn.id,
                    conn.out.len()
                );
            }
            if written.is_err() || closed || conn.out.len() > MAX_OUTPUT {
                self.finished.push(key);
            }
        }
        let gone = self.reap();
        self.news.extend(gone);
    }

    fn accept_all(&mut self) {
        loop {
            let mut stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => return eprintln!("accept: {e}"),
            };
            let token = Token(self.conns.vacant_key());
            let both = Interest::READABLE | Interest::WRITABLE;
            if self.poll.registry().register(&mut stream, token, both).is_ok() {
                self.next_id += 1;
                self.conns.insert(WsConn {
                    id: self.next_id,
                    stream,
                    phase: Phase::Handshake(RequestReader::new(HEAD)),
                    out: OutQueue::new(),
                    protocols: self.protocols,
                    opened: false,
                });
            }
        }
    }

    /// Removes the finished connections (after the batch, so no key is
    /// reused while an event may still name it) and reports the departure
    /// of those the application knew.
    fn reap(&mut self) -> Vec<News> {
        let mut gone = Vec::new();
        for key in std::mem::take(&mut self.finished) {
            if let Some(mut conn) = self.conns.try_remove(key) {
                let _ = self.poll.registry().deregister(&mut conn.stream);
                if conn.opened {
                    gone.push(News {
                        key,
                        id: conn.id,
                        what: Incoming::Closed,
                    });
                }
            }
        }
        gone
    }
}
