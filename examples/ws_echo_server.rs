//! Example 3: a WebSocket echo server, example 1's loop with RFC 6455 on top.
//!
//! The Node original, with the `ws` package:
//!
//! ```js
//! const wss = new WebSocket.Server({ port: 9003 });
//! wss.on('connection', ws => ws.on('message', m => ws.send(m)));
//! ```
//!
//! ```text
//! cargo run --example ws_echo_server [ADDR]      # default 127.0.0.1:9003
//! cargo run --example ws_client                  # or any browser, `ws` client, ...
//! ```
//!
//! A connection goes through three phases, one enum: the HTTP request that
//! asks for the upgrade (§4), frames (§5), and closing (§7). Each phase
//! feeds bytes to one of duplex's sans-IO codecs and queues what they say
//! to answer; only `drive` touches the socket. (No Origin check here: see
//! `src/origin.rs` for why a real server needs one, §10.2.)

use duplex::http::{HeadLimits, RequestReader, Response};
use duplex::outq::OutQueue;
use duplex::ws::close::close_payload;
use duplex::ws::{encode_frame, handshake, CloseCode, Decoder, Event, Limits, Opcode, Role};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::io::{self, Read};

const LISTENER: Token = Token(usize::MAX);
/// Stop reading from a peer while this much output waits (see example 1).
const MAX_PENDING: usize = 1 << 20;
/// The same bounds as duplex's defaults: an 8 KiB head, 64 headers.
const HEAD: HeadLimits = HeadLimits {
    max_head: 8192,
    max_headers: 64,
    max_body: 0,
};

enum Phase {
    /// Reading the opening handshake, an HTTP/1.1 GET (§4.1).
    Handshake(RequestReader),
    /// Exchanging frames; the decoder reassembles messages (§5.4).
    Open(Decoder),
    /// Our last bytes (a refusal or a close frame) are queued. Once they
    /// are written we close TCP: the server closes first (§7.1.1).
    Closing,
}

struct Conn {
    stream: TcpStream,
    phase: Phase,
    out: OutQueue,
}

fn main() -> io::Result<()> {
    let text = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9003".into());
    let addr = text
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(256);
    let mut listener = TcpListener::bind(addr)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("listening on {}", listener.local_addr()?);

    let mut conns: Slab<Conn> = Slab::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let mut finished = Vec::new();
        for event in events.iter() {
            match event.token() {
                LISTENER => loop {
                    // Accept until WouldBlock, as in example 1.
                    let (mut stream, peer) = match listener.accept() {
                        Ok(pair) => pair,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                        Err(e) => {
                            eprintln!("accept: {e}");
                            break;
                        }
                    };
                    let token = Token(conns.vacant_key());
                    let both = Interest::READABLE | Interest::WRITABLE;
                    if poll.registry().register(&mut stream, token, both).is_ok() {
                        eprintln!("{peer}: connected");
                        let phase = Phase::Handshake(RequestReader::new(HEAD));
                        conns.insert(Conn {
                            stream,
                            phase,
                            out: OutQueue::new(),
                        });
                    }
                },
                Token(key) => {
                    let Some(conn) = conns.get_mut(key) else { continue };
                    match conn.drive(&mut buf) {
                        Ok(true) => {}
                        Ok(false) => finished.push(key),
                        Err(e) => {
                            eprintln!("connection {key}: {e}");
                            finished.push(key);
                        }
                    }
                }
            }
        }
        // Reap after the batch, never in the middle of it.
        for key in finished {
            if let Some(mut conn) = conns.try_remove(key) {
                let _ = poll.registry().deregister(&mut conn.stream);
            }
        }
    }
}

impl Conn {
    /// Writes what is queued, then reads and answers until the socket says
    /// `WouldBlock`. Returns `Ok(false)` once the connection is over.
    fn drive(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        loop {
            self.out.write_to(&mut self.stream)?;
            if let Phase::Closing = self.phase {
                return Ok(!self.out.is_empty());
            }
            if self.out.len() >= MAX_PENDING {
                return Ok(true); // The write blocked: WRITABLE will call us.
            }
            match self.stream.read(buf) {
                // TCP closed with no close frame: the RFC calls this 1006,
                // "abnormal closure" (§7.1.5). There is no one to tell.
                Ok(0) => return Ok(false),
                Ok(n) => self.on_bytes(&mut buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Feeds one read's bytes to the codec of the current phase. One read
    /// may hold the end of the handshake *and* the first frames, so loop
    /// until every byte is used.
    fn on_bytes(&mut self, bytes: &mut [u8]) {
        let mut pos = 0;
        while pos < bytes.len() {
            match &mut self.phase {
                Phase::Handshake(reader) => match reader.read(&bytes[pos..]) {
                    Ok((used, request)) => {
                        pos += used;
                        if let Some(request) = request {
                            self.phase = answer_handshake(&request, &mut self.out);
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
                        let Some(event) = event else { continue };
                        if let Some(next) = answer_event(event, &mut self.out) {
                            self.phase = next;
                        }
                    }
                    // A broken rule: close with the code that names it (§7.4.1).
                    Err(e) => {
                        eprintln!("protocol error: {e}");
                        let payload = close_payload(e.close_code(), &e.to_string());
                        self.out
                            .encode_with(|out| encode_frame(out, true, Opcode::Close, &payload, None));
                        self.phase = Phase::Closing;
                    }
                },
                // After a close frame nothing more is read (§5.5.1).
                Phase::Closing => return,
            }
        }
    }
}

/// Answers a complete upgrade request: `101 Switching Protocols`, or an
/// HTTP refusal that says why (§4.2.2).
fn answer_handshake(request: &duplex::http::Request, out: &mut OutQueue) -> Phase {
    if !handshake::is_upgrade(request) {
        let refusal = handshake::upgrade_required("this is a WebSocket server").close(true);
        out.encode_with(|out| refusal.encode(out));
        return Phase::Closing;
    }
    match handshake::validate(request) {
        Ok(key) => {
            // WebSocket-Node's `request.accept('echo-protocol', origin)`:
            // agree to the subprotocol if the client offered it (§1.9).
            let protocol = handshake::select_protocol(request, &["echo-protocol"]);
            out.encode_with(|out| handshake::accept_response(&key, protocol).encode(out));
            Phase::Open(Decoder::new(Role::Server, Limits::default()))
        }
        Err(e) => {
            out.encode_with(|out| e.response().close(true).encode(out));
            Phase::Closing
        }
    }
}

/// Answers one event. Server frames are never masked (§5.1).
fn answer_event(event: Event<'_>, out: &mut OutQueue) -> Option<Phase> {
    match event {
        // The echo itself: text stays text, binary stays binary.
        Event::Message(kind, payload) => {
            out.encode_with(|out| encode_frame(out, true, kind.opcode(), payload, None))
        }
        // "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame
        // in response ... [with] identical Application data" (§5.5.2).
        Event::Ping(payload) => out.encode_with(|out| encode_frame(out, true, Opcode::Pong, payload, None)),
        Event::Pong(_) => {}
        // "the endpoint MUST send a Close frame in response ... typically
        // echoing the status code it received" (§5.5.1).
        Event::Close(frame) => {
            let payload = frame.map_or(Vec::new(), |f| close_payload(f.code, f.reason));
            let code = frame.map_or(CloseCode::NO_STATUS, |f| f.code);
            eprintln!("close: {code}");
            out.encode_with(|out| encode_frame(out, true, Opcode::Close, &payload, None));
            return Some(Phase::Closing);
        }
        // Only a decoder told that permessage-deflate was agreed says this;
        // this server agrees to no extension, so RSV1 is refused (1002)
        // before a message could be marked compressed.
        Event::Compressed(..) => return Some(Phase::Closing),
    }
    None
}
