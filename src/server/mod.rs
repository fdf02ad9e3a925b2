//! The event loop: one thread, one `mio::Poll`, every socket and timer.
//!
//! Read [`Server::run`] first. Each turn is the same recipe:
//!
//! 1. sleep in `poll` until a socket is ready or the nearest timer is due;
//! 2. for each event: accept everything waiting on a listener, or read
//!    from a connection until the kernel says `WouldBlock`;
//! 3. flush: write the output this turn produced, as few `write` calls as
//!    possible per connection;
//! 4. fire the timers that are due;
//! 5. free the connections that finished during the turn.
//!
//! Readiness is *edge-triggered*: mio reports a socket once when it
//! becomes readable, not again while unread bytes remain. So every read
//! loop runs until `WouldBlock`, and a connection that had to stop early
//! (its fair share of a turn was used up) is remembered and read again on
//! the next turn without waiting for a new event.

mod conn;
mod line;
mod stats;
mod transports;
mod web;
mod websocket;

pub use conn::{Door, Endpoint};
pub use stats::Stats;

use crate::config::Config;
use crate::hub::{Action, Hub, Payload, Transport};
use crate::origin::OriginPolicy;
use crate::timer::Timers;
use conn::{Closing, Connection, State, Via};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};
use transports::{HttpMember, HTTP_LINK_BASE};

/// The listeners and the signal pipe have fixed tokens at the top of the
/// range; connections use their slab key, which starts at 0.
const LINE_LISTENER: Token = Token(usize::MAX - 1);
const WEB_LISTENER: Token = Token(usize::MAX - 2);
const SIGNALS: Token = Token(usize::MAX - 3);

/// Reads one connection may do per turn before the others get a go.
const READS_PER_TURN: usize = 16;

/// How long to wait before accepting again after the process ran out of
/// file descriptors (EMFILE): long enough not to spin, short enough that
/// nobody notices.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Broadcast chunks a queue may collect within one turn before it is
/// written out at once rather than at the turn's end.
const EAGER_FLUSH_CHUNKS: usize = 32;

/// An idle event stream gets a comment line this often, so proxies and
/// browsers do not take the silence for a dead connection.
const EVENT_STREAM_KEEPALIVE: Duration = Duration::from_secs(15);

/// What a timer is for. A connection's timer names the connection by token
/// *and* serial, so it cannot fire on a newer connection that reused the
/// token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    Conn {
        token: Token,
        serial: u64,
        kind: ConnTimer,
    },
    /// Accepting was paused after an error such as EMFILE.
    ResumeAccept,
    /// Graceful shutdown has run out of time.
    ShutdownDeadline,
    /// Look for HTTP chat members that stopped polling.
    SweepHttpMembers,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnTimer {
    /// An HTTP request head must be complete by now.
    RequestDeadline,
    /// Ping a silent WebSocket peer, or give up on one that did not answer.
    Heartbeat,
    /// Push the time to a clock subscriber (`/clock`, or `/time` in chat).
    Clock(u32),
    /// A closing connection has had its time.
    CloseDeadline,
    /// Output stayed over the soft limit too long.
    SlowReader,
    /// A telnet connection with `--idle-timeout`.
    Idle,
    /// A parked long poll is answered empty.
    LongPollDeadline,
}

/// A running server: bind with [`Server::bind`], then [`Server::run`].
pub struct Server {
    poll: Poll,
    line_listener: Option<TcpListener>,
    web_listener: Option<TcpListener>,
    line_addr: SocketAddr,
    web_addr: SocketAddr,
    conns: Slab<Connection>,
    timers: Timers<Timer>,
    hub: Hub,
    config: Config,
    policy: OriginPolicy,
    stats: Stats,
    /// The loop's one read buffer: every read lands here first.
    read_buf: Vec<u8>,
    /// The time at the start of this turn; one clock read per turn.
    now: Instant,
    next_serial: u64,
    /// Connections with output queued this turn, flushed at its end.
    dirty: Vec<Token>,
    /// Connections to free at the end of this turn.
    reap: Vec<Token>,
    /// Connections to read again next turn without waiting for an event.
    again: Vec<Token>,
    accept_paused: bool,
    signals: Option<signal_hook_mio::v1_0::Signals>,
    /// Set once shutdown has begun: the instant it must be over.
    shutdown: Option<Instant>,
    /// HTTP chat members, and their tokens.
    http_members: Slab<HttpMember>,
    http_tokens: HashMap<String, usize>,
    /// Connections waiting for chat lines: parked long polls and event
    /// streams.
    waiters: Vec<Token>,
    /// `deliver` is running: a nested call leaves the new actions to it.
    delivering: bool,
}

impl Server {
    /// Binds both doors and prepares the loop. Nothing is accepted until
    /// [`Server::run`].
    pub fn bind(config: Config) -> io::Result<Server> {
        let poll = Poll::new()?;
        let mut line_listener = TcpListener::bind(config.tcp)?;
        let mut web_listener = TcpListener::bind(config.http)?;
        let line_addr = line_listener.local_addr()?;
        let web_addr = web_listener.local_addr()?;
        poll.registry()
            .register(&mut line_listener, LINE_LISTENER, Interest::READABLE)?;
        poll.registry()
            .register(&mut web_listener, WEB_LISTENER, Interest::READABLE)?;
        let policy = OriginPolicy::new(
            &config.allow_origins,
            &config.allow_hosts,
            web_addr.ip().is_loopback(),
        );
        let now = Instant::now();
        Ok(Server {
            poll,
            line_listener: Some(line_listener),
            web_listener: Some(web_listener),
            line_addr,
            web_addr,
            conns: Slab::new(),
            timers: Timers::new(),
            hub: Hub::new(config.max_line, config.history),
            policy,
            stats: Stats::new(now),
            read_buf: vec![0; config.read_buffer.max(1024)],
            now,
            next_serial: 0,
            dirty: Vec::new(),
            reap: Vec::new(),
            again: Vec::new(),
            accept_paused: false,
            signals: None,
            shutdown: None,
            http_members: Slab::new(),
            http_tokens: HashMap::new(),
            waiters: Vec::new(),
            delivering: false,
            config,
        })
    }

    /// The line service's address (the real port when bound to port 0).
    pub fn line_addr(&self) -> SocketAddr {
        self.line_addr
    }

    /// The web door's address.
    pub fn web_addr(&self) -> SocketAddr {
        self.web_addr
    }

    /// Turns SIGINT and SIGTERM into a graceful shutdown, delivered through
    /// the same `poll` as everything else.
    pub fn handle_signals(&mut self) -> io::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook_mio::v1_0::Signals::new([SIGINT, SIGTERM])?;
        self.poll
            .registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        self.signals = Some(signals);
        Ok(())
    }

    /// Runs until a graceful shutdown completes.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = if self.again.is_empty() {
                self.timers.timeout(Instant::now())
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.now = Instant::now();
            log::trace!(
                "turn: {} events, {} connections, {} timers",
                events.iter().count(),
                self.conns.len(),
                self.timers.len()
            );

            for token in std::mem::take(&mut self.again) {
                self.on_readable(token, false);
            }
            for event in events.iter() {
                match event.token() {
                    LINE_LISTENER => self.accept_all(Door::Line),
                    WEB_LISTENER => self.accept_all(Door::Web),
                    SIGNALS => self.on_signal(),
                    token => {
                        if log::log_enabled!(log::Level::Trace) {
                            if let Some(conn) = self.conns.get(token.0) {
                                log::trace!(
                                    "event: token {} {}{}{}",
                                    token.0,
                                    conn,
                                    if event.is_readable() { " readable" } else { "" },
                                    if event.is_writable() { " writable" } else { "" },
                                );
                            }
                        }
                        // Closed-by-peer and error readiness also surface
                        // through read and write, so these two cover them.
                        let closed = event.is_read_closed() || event.is_error();
                        if event.is_readable() || closed {
                            self.on_readable(token, closed);
                        }
                        if event.is_writable() {
                            self.mark_dirty(token);
                        }
                    }
                }
            }
            self.flush_dirty();
            self.run_timers();
            self.flush_dirty();
            self.reap_closed();

            if let Some(deadline) = self.shutdown {
                if self.conns.is_empty() {
                    log::info!("shutdown complete");
                    return Ok(());
                }
                if self.now >= deadline {
                    log::warn!(
                        "shutdown deadline passed; {} connections cut off",
                        self.conns.len()
                    );
                    return Ok(());
                }
            }
        }
    }

    // ---- accepting -------------------------------------------------------

    /// Accepts every connection waiting on a listener (edge-triggered: one
    /// event may stand for many).
    fn accept_all(&mut self, door: Door) {
        loop {
            let listener = match door {
                Door::Line => self.line_listener.as_ref(),
                Door::Web => self.web_listener.as_ref(),
            };
            let Some(listener) = listener else { return };
            match listener.accept() {
                Ok((socket, peer)) => self.on_accept(door, socket, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if is_transient_accept_error(&e) => {
                    // The peer gave up before we accepted (ECONNABORTED) or
                    // similar: that connection is gone, the others are not.
                    log::debug!("accept: {e}");
                }
                Err(e) => {
                    // Out of file descriptors or memory. Accepting again at
                    // once would fail again and spin; pause, then retry.
                    log::error!("accept failed: {e}; pausing accepts for {ACCEPT_BACKOFF:?}");
                    if !self.accept_paused {
                        self.accept_paused = true;
                        self.timers
                            .schedule(self.now + ACCEPT_BACKOFF, Timer::ResumeAccept);
                    }
                    return;
                }
            }
        }
    }

    fn on_accept(&mut self, door: Door, mut socket: TcpStream, peer: SocketAddr) {
        if self.conns.len() >= self.config.max_connections || self.shutdown.is_some() {
            self.refuse(door, socket, peer);
            return;
        }
        // Small messages should leave at once rather than wait for more
        // (Nagle's algorithm); the loop batches writes itself.
        if let Err(e) = socket.set_nodelay(true) {
            log::debug!("{peer}: set_nodelay: {e}");
        }
        let head_limits = self.head_limits();
        let entry = self.conns.vacant_entry();
        let token = Token(entry.key());
        // Both interests once, for the connection's whole life: with edge
        // triggering a writable event comes only when the socket's send
        // buffer drains after being full, so it costs nothing while idle,
        // and we never need a `reregister` call.
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut socket, token, Interest::READABLE | Interest::WRITABLE)
        {
            log::error!("{peer}: register: {e}");
            return;
        }
        let local = socket.local_addr().unwrap_or(match door {
            Door::Line => self.line_addr,
            Door::Web => self.web_addr,
        });
        self.next_serial += 1;
        let serial = self.next_serial;
        let state = match door {
            Door::Line => State::Line(crate::line::LineCodec::new(self.config.max_line)),
            Door::Web => State::Http(conn::Http {
                reader: crate::http::RequestReader::new(head_limits),
                deadline: self.now + self.config.handshake_timeout,
                parked: None,
                stash: Vec::new(),
            }),
        };
        log::debug!(
            "{peer}: connected to the {} door (token {})",
            door_name(door),
            token.0
        );
        entry.insert(Connection {
            socket,
            peer,
            local,
            serial,
            door,
            state,
            out: crate::outq::OutQueue::new(),
            member: None,
            last_heard: self.now,
            over_limit_since: None,
            dirty: false,
            eof: false,
            via: match door {
                Door::Line => Via::Telnet,
                Door::Web => Via::Other,
            },
        });
        self.stats.connected(door);
        match door {
            Door::Line => self.line_connected(token),
            Door::Web => self.schedule(
                token,
                ConnTimer::RequestDeadline,
                self.now + self.config.handshake_timeout,
            ),
        }
    }

    /// Over the connection limit: say so in the door's language and close.
    /// The listener goes on accepting, so the next one may get in.
    fn refuse(&mut self, door: Door, mut socket: TcpStream, peer: SocketAddr) {
        let why = if self.shutdown.is_some() {
            "shutting down"
        } else {
            "connection limit reached"
        };
        log::warn!("{peer}: refused: {why} ({} open)", self.conns.len());
        let answer = match door {
            Door::Line => format!("! server busy: {why}; try again later\r\n").into_bytes(),
            Door::Web => {
                let mut out = Vec::new();
                crate::http::Response::refusal(
                    crate::http::Status::SERVICE_UNAVAILABLE,
                    &format!("server busy: {why}"),
                )
                .header("Retry-After", "5")
                .close(true)
                .encode(&mut out);
                out
            }
        };
        // Best effort: a fresh socket's send buffer takes a short answer.
        let _ = socket.write(&answer);
        let _ = socket.shutdown(Shutdown::Write);
        self.stats.refused += 1;
    }

    // ---- reading ---------------------------------------------------------

    /// Reads until the socket is drained, or until this connection's share
    /// of the turn is used up.
    ///
    /// A read that returns less than the buffer could hold has emptied the
    /// socket's receive queue, so we stop there instead of paying one more
    /// `read` just to hear `WouldBlock`: with edge triggering, bytes that
    /// arrive later raise a new event. (That halves the system calls of a
    /// request/response exchange.) The exception is an event that also
    /// reported the peer's FIN or an error (`until_closed`): then we read
    /// on until the end of the stream shows itself.
    fn on_readable(&mut self, token: Token, until_closed: bool) {
        let mut buf = std::mem::take(&mut self.read_buf);
        let mut share_used = true;
        for _ in 0..READS_PER_TURN {
            let Some(conn) = self.conns.get_mut(token.0) else {
                share_used = false;
                break;
            };
            if conn.over_limit_since.is_some() || conn.eof {
                share_used = false;
                break;
            }
            match conn.socket.read(&mut buf) {
                Ok(0) => {
                    conn.eof = true;
                    log::trace!("read: token {} end of stream", token.0);
                    self.on_eof(token);
                    share_used = false;
                    break;
                }
                Ok(n) => {
                    conn.last_heard = self.now;
                    self.stats.bytes_in += n as u64;
                    // HTTP requests are counted whole, under the transport
                    // their path names, once they are parsed.
                    if !matches!(conn.state, State::Http(_)) {
                        self.stats.via(conn.via).bytes_in += n as u64;
                    }
                    log::trace!("read: token {} {n} bytes", token.0);
                    if self.config.hexdump {
                        log::info!(
                            "{} sent {n} bytes:\n{}",
                            conn.peer,
                            crate::hexdump::hexdump(&buf[..n])
                        );
                    }
                    self.on_input(token, &mut buf[..n]);
                    if n < buf.len() && !until_closed {
                        share_used = false;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    share_used = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.abort(token, &format!("read error: {e}"));
                    share_used = false;
                    break;
                }
            }
        }
        // Used up its share without reaching WouldBlock: more may be
        // waiting, and no new event will say so. Come back next turn.
        if share_used {
            self.again.push(token);
        }
        self.read_buf = buf;
    }

    /// Feeds bytes to whatever the connection's state makes of them. A
    /// state may hand over mid-input (an HTTP upgrade followed by the first
    /// frame in the same read), so this loops until all bytes are used.
    fn on_input(&mut self, token: Token, input: &mut [u8]) {
        let mut pos = 0;
        while pos < input.len() {
            let Some(conn) = self.conns.get_mut(token.0) else {
                return;
            };
            let used = match &conn.state {
                State::Line(_) => self.line_input(token, &input[pos..]),
                State::Http(_) => self.http_input(token, &input[pos..]),
                State::WebSocket(_) => self.ws_input(token, &mut input[pos..]),
                // An event stream only talks; saying goodbye: whatever
                // still comes is dropped.
                State::EventStream(_) | State::Closing(_) => return,
            };
            pos += used;
        }
    }

    /// The peer closed its side of the stream.
    fn on_eof(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        match &mut conn.state {
            State::Line(codec) => {
                // A last line without a line end still counts, and its
                // answer is still delivered: the peer may have closed only
                // its sending half (`nc -N`).
                if let Some(line) = codec.finish() {
                    let text = String::from_utf8_lossy(line).into_owned();
                    self.line_text(token, &text);
                }
                self.begin_closing(token, "peer closed the connection".into());
            }
            State::Http(http) => {
                let why = if http.reader.in_progress() {
                    "peer closed in the middle of a request"
                } else {
                    "peer closed the connection"
                };
                self.begin_closing(token, why.into());
            }
            State::WebSocket(_) => {
                // RFC 6455 §7.1.5: closed without a close frame: 1006.
                self.begin_closing(token, "peer closed without a close frame (1006)".into());
            }
            State::EventStream(_) => self.begin_closing(token, "event stream closed by the peer".into()),
            State::Closing(_) => {
                self.mark_dirty(token);
            }
        }
    }

    // ---- writing ---------------------------------------------------------

    fn mark_dirty(&mut self, token: Token) {
        if let Some(conn) = self.conns.get_mut(token.0) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(token);
            }
        }
    }

    /// Writes out what this turn queued, connection by connection.
    fn flush_dirty(&mut self) {
        while !self.dirty.is_empty() {
            for token in std::mem::take(&mut self.dirty) {
                if let Some(conn) = self.conns.get_mut(token.0) {
                    conn.dirty = false;
                    self.flush(token);
                }
            }
        }
    }

    /// Writes a connection's queue until it is empty or the socket is full,
    /// then enforces the output limits and finishes a closing connection.
    fn flush(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        if !conn.out.is_empty() {
            match conn.out.write_to(&mut conn.socket) {
                Ok(n) => {
                    self.stats.bytes_out += n as u64;
                    self.stats.via(conn.via).bytes_out += n as u64;
                    if n > 0 {
                        log::trace!("write: token {} {n} bytes, {} left", token.0, conn.out.len());
                    }
                }
                Err(e) => {
                    self.abort(token, &format!("write error: {e}"));
                    return;
                }
            }
        }
        self.check_output_limits(token);
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        if let State::Closing(closing) = &mut conn.state {
            if conn.out.is_empty() {
                if !closing.fin_sent {
                    closing.fin_sent = true;
                    // Our last word is out: send FIN, keep reading until the
                    // peer closes too.
                    let _ = conn.socket.shutdown(Shutdown::Write);
                }
                if conn.eof {
                    self.reap.push(token);
                }
            }
        }
    }

    /// Bounded output (DESIGN §2). Over the soft limit the loop stops
    /// reading from this peer, which is what TCP flow control would do; a
    /// peer that stays over it too long, or passes the hard limit, is
    /// closed.
    fn check_output_limits(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        let pending = conn.out.len();
        if pending > self.config.max_output_hard {
            let why = format!("output over the hard limit ({pending} bytes queued)");
            self.abort(token, &why);
            return;
        }
        if pending > self.config.max_output {
            if conn.over_limit_since.is_none() {
                conn.over_limit_since = Some(self.now);
                log::debug!("{}: {pending} bytes queued, reading paused", conn.peer);
                let at = self.now + self.config.slow_reader_timeout;
                self.schedule(token, ConnTimer::SlowReader, at);
            }
        } else if conn.over_limit_since.take().is_some() {
            log::debug!(
                "{}: output drained to {pending} bytes, reading resumed",
                conn.peer
            );
            self.again.push(token);
        }
    }

    /// Queues a text message for a connection in its own framing: a
    /// WebSocket text frame, or a line with CR LF.
    fn send_text(&mut self, token: Token, text: &str) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        if !conn.accepts_output() {
            return;
        }
        match conn.state {
            State::WebSocket(_) => {
                websocket::encode(&mut conn.out, crate::ws::Opcode::Text, text.as_bytes());
            }
            _ => conn.out.encode_with(|out| {
                out.extend_from_slice(text.as_bytes());
                out.extend_from_slice(b"\r\n");
            }),
        }
        self.stats.messages_out += 1;
        self.mark_dirty(token);
    }

    // ---- the hub ---------------------------------------------------------

    /// Carries out what the hub asked for. A broadcast is encoded once per
    /// framing (one WebSocket frame, one telnet line) and the same bytes
    /// are shared by every recipient's queue.
    ///
    /// Carrying out an action can make the hub say more (a write fails, the
    /// connection is dropped, its member's departure is announced). Those
    /// new actions are not carried out from inside this call but by its own
    /// loop, after the current batch: a crowd dropping at once would
    /// otherwise recurse once per member, each level holding its batch.
    fn deliver(&mut self) {
        if self.delivering {
            return;
        }
        self.delivering = true;
        while self.hub.has_actions() {
            let outbox = self.hub.drain();
            self.carry_out(&outbox);
            self.hub.recycle(outbox);
        }
        self.delivering = false;
    }

    fn carry_out(&mut self, outbox: &crate::hub::Outbox) {
        for action in &outbox.actions {
            match action {
                Action::Send { recipients, payload } => {
                    let mut frame: Option<Rc<[u8]>> = None;
                    let mut line: Option<Rc<[u8]>> = None;
                    // One recipient: encode straight into its queue. Two
                    // or more: encode once and share the bytes.
                    let shared = recipients.len() > 1;
                    for &link in &outbox.recipients[recipients.clone()] {
                        if link >= HTTP_LINK_BASE {
                            let text = match payload {
                                Payload::Text(text) => text,
                                Payload::Binary { notice, .. } => notice,
                            };
                            self.http_inbox(link - HTTP_LINK_BASE, text);
                            continue;
                        }
                        let token = Token(link);
                        let Some(conn) = self.conns.get_mut(link) else {
                            continue;
                        };
                        if !conn.accepts_output() {
                            continue;
                        }
                        if !shared {
                            encode_payload(conn, payload);
                            self.stats.messages_out += 1;
                            self.stats.via(conn.via).delivered += 1;
                            self.mark_dirty(token);
                            continue;
                        }
                        let bytes = match (&conn.state, payload) {
                            (State::WebSocket(_), Payload::Text(text)) => frame
                                .get_or_insert_with(|| {
                                    websocket::frame_bytes(crate::ws::Opcode::Text, text.as_bytes())
                                })
                                .clone(),
                            (State::WebSocket(_), Payload::Binary { data, .. }) => frame
                                .get_or_insert_with(|| {
                                    websocket::frame_bytes(crate::ws::Opcode::Binary, data)
                                })
                                .clone(),
                            (_, Payload::Text(text)) => line.get_or_insert_with(|| line_bytes(text)).clone(),
                            (_, Payload::Binary { notice, .. }) => {
                                line.get_or_insert_with(|| line_bytes(notice)).clone()
                            }
                        };
                        conn.out.push_shared(bytes);
                        self.stats.messages_out += 1;
                        self.stats.via(conn.via).delivered += 1;
                        let backlog = conn.out.chunks();
                        self.mark_dirty(token);
                        if backlog >= EAGER_FLUSH_CHUNKS {
                            // Many broadcasts in one turn (a crowd joining
                            // or dropping at once) would otherwise pile up
                            // in every member's queue until the turn ends:
                            // O(members²) memory. Write them now instead.
                            self.flush(token);
                        }
                    }
                }
                Action::StartClock { member, generation } => {
                    if let Some(token) = self.token_of(*member) {
                        let at = self.now + Duration::from_secs(1);
                        self.schedule(token, ConnTimer::Clock(*generation), at);
                    }
                }
                Action::Stats { member } => {
                    let line = self.stats_line();
                    self.hub.reply(*member, &line);
                }
                Action::Quit { member } => match self.hub.link(*member) {
                    Some(link) if link >= HTTP_LINK_BASE => {
                        self.remove_http_member(link - HTTP_LINK_BASE, "said /quit");
                    }
                    Some(link) => self.quit(Token(link)),
                    None => {}
                },
                Action::Appended { room, .. } => {
                    if !self.waiters.is_empty() {
                        self.wake(Some(room), None);
                    }
                }
            }
        }
    }

    fn token_of(&self, member: crate::hub::MemberId) -> Option<Token> {
        self.hub.link(member).map(Token)
    }

    /// Adds a connection to the chat, greeted and announced.
    fn join_hub(&mut self, token: Token, transport: Transport) {
        let Some(conn) = self.conns.get(token.0) else {
            return;
        };
        let welcome = format!("server {}, you are {}", conn.local, conn.peer);
        let member = self.hub.join(token.0, transport, &welcome);
        if let Some(conn) = self.conns.get_mut(token.0) {
            conn.member = Some(member);
        }
        self.deliver();
    }

    /// Takes a connection out of the chat (announced once).
    fn leave_hub(&mut self, token: Token) {
        let Some(member) = self.conns.get_mut(token.0).and_then(|c| c.member.take()) else {
            return;
        };
        self.hub.leave(member);
        self.deliver();
    }

    /// The member asked to leave: the goodbye is queued, then we close.
    fn quit(&mut self, token: Token) {
        let is_ws = matches!(
            self.conns.get(token.0).map(|c| &c.state),
            Some(State::WebSocket(_))
        );
        if is_ws {
            websocket::send_close(self, token, crate::ws::CloseCode::NORMAL, "bye");
        } else {
            self.begin_closing(token, "said /quit".into());
        }
    }

    // ---- state transitions -----------------------------------------------

    /// The one place a connection's state changes, so every transition
    /// can be seen in the log (`RUST_LOG=duplex=debug`).
    fn set_state(&mut self, token: Token, state: State) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        let old = std::mem::replace(&mut conn.state, state);
        log::debug!("{}: {} -> {}", conn.peer, old.name(), conn.state.name());
        self.stats.state_changed(&old, &conn.state);
    }

    /// Starts saying goodbye: the queued output is written, then FIN, then
    /// the peer's last bytes are read and dropped until it closes too.
    fn begin_closing(&mut self, token: Token, reason: String) {
        let Some(conn) = self.conns.get(token.0) else {
            return;
        };
        if matches!(conn.state, State::Closing(_)) {
            return;
        }
        self.leave_hub(token);
        self.detach(token);
        self.set_state(
            token,
            State::Closing(Closing {
                reason,
                fin_sent: false,
            }),
        );
        self.schedule(
            token,
            ConnTimer::CloseDeadline,
            self.now + self.config.close_timeout,
        );
        self.mark_dirty(token);
    }

    /// Ends a connection at once (the socket failed, or a hard limit).
    fn abort(&mut self, token: Token, why: &str) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        log::debug!("{}: closing at once: {why}", conn.peer);
        conn.out.clear();
        conn.eof = true;
        if !matches!(conn.state, State::Closing(_)) {
            // The member leaves the hub when the connection is freed, not
            // here: an abort can happen while the loop is delivering a
            // broadcast, and a departure announced from inside that would
            // pile a second broadcast on the first.
            self.detach(token);
            self.set_state(
                token,
                State::Closing(Closing {
                    reason: why.to_string(),
                    fin_sent: true,
                }),
            );
        }
        // Listed twice is harmless: the second removal finds nothing.
        self.reap.push(token);
    }

    /// Frees the connections that finished this turn. Done after all
    /// events are handled, so no handler ever finds its connection gone
    /// mid-way, and tokens stay stable within a turn.
    ///
    /// Each departure is announced and delivered before the next is freed,
    /// so a crowd that drops at once costs one broadcast's memory at a
    /// time, not one per member held together. Writing those announcements
    /// may find more dead peers; they are freed in the same pass.
    fn reap_closed(&mut self) {
        while let Some(token) = self.reap.pop() {
            let Some(mut conn) = self.conns.try_remove(token.0) else {
                continue;
            };
            self.leave_member(&mut conn);
            self.deliver();
            let _ = self.poll.registry().deregister(&mut conn.socket);
            let reason = match &conn.state {
                State::Closing(c) => c.reason.as_str(),
                _ => "closed",
            };
            log::debug!("{}: disconnected ({reason})", conn.peer);
            self.stats.disconnected(conn.door, &conn.state);
        }
        self.deliver();
        self.flush_dirty();
    }

    /// Releases what an HTTP chat connection held for its member: a
    /// parked long poll or an event stream keeps the member present.
    fn detach(&mut self, token: Token) {
        let key = match self.conns.get_mut(token.0).map(|c| &mut c.state) {
            Some(State::Http(http)) => http.parked.take().map(|p| p.member),
            Some(State::EventStream(stream)) => Some(stream.member),
            _ => None,
        };
        if let Some(key) = key {
            self.detach_http(key);
            // Not waiting any more; a later connection may get this token.
            self.waiters.retain(|&t| t != token);
        }
    }

    fn leave_member(&mut self, conn: &mut Connection) {
        if let Some(member) = conn.member.take() {
            self.hub.leave(member);
        }
    }

    // ---- timers ----------------------------------------------------------

    fn schedule(&mut self, token: Token, kind: ConnTimer, at: Instant) {
        let Some(conn) = self.conns.get(token.0) else {
            return;
        };
        let serial = conn.serial;
        self.timers.schedule(at, Timer::Conn { token, serial, kind });
    }

    fn run_timers(&mut self) {
        let now = Instant::now();
        self.now = now;
        while let Some((_, timer)) = self.timers.pop_due(now) {
            match timer {
                Timer::ResumeAccept => {
                    self.accept_paused = false;
                    self.accept_all(Door::Line);
                    self.accept_all(Door::Web);
                }
                Timer::ShutdownDeadline => {}
                Timer::SweepHttpMembers => self.sweep_http_members(),
                Timer::Conn { token, serial, kind } => {
                    // Stale: the connection is gone, or the token now
                    // belongs to a newer one.
                    if self.conns.get(token.0).is_none_or(|c| c.serial != serial) {
                        continue;
                    }
                    log::trace!("timer: token {} {kind:?}", token.0);
                    self.on_timer(token, kind);
                }
            }
        }
    }

    fn on_timer(&mut self, token: Token, kind: ConnTimer) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        match kind {
            ConnTimer::RequestDeadline => {
                let State::Http(http) = &conn.state else { return };
                if self.now < http.deadline {
                    let at = http.deadline;
                    self.schedule(token, kind, at);
                } else if http.reader.in_progress() {
                    log::info!(
                        "{}: request head not complete within {:?}",
                        conn.peer,
                        self.config.handshake_timeout
                    );
                    let response = crate::http::Response::refusal(
                        crate::http::Status::REQUEST_TIMEOUT,
                        "the request took too long to arrive",
                    )
                    .close(true);
                    self.respond(token, response);
                } else {
                    // An idle keep-alive connection: closing it is normal.
                    self.begin_closing(token, "idle keep-alive connection".into());
                }
            }
            ConnTimer::Heartbeat => {
                if let State::EventStream(_) = conn.state {
                    // An SSE comment line: ignored by the browser, but it
                    // keeps the connection visibly alive.
                    conn.out.push_bytes(b": keep-alive\n\n");
                    self.mark_dirty(token);
                    self.schedule(token, kind, self.now + EVENT_STREAM_KEEPALIVE);
                } else {
                    websocket::heartbeat(self, token);
                }
            }
            ConnTimer::LongPollDeadline => {
                if let State::Http(http) = &conn.state {
                    if http.parked.as_ref().is_some_and(|p| self.now >= p.deadline) {
                        self.release_parked(token);
                    }
                }
            }
            ConnTimer::Clock(generation) => self.clock_tick(token, generation),
            ConnTimer::CloseDeadline => {
                let reason = match &conn.state {
                    State::Closing(c) => format!("{} (close timeout)", c.reason),
                    _ => "close handshake timed out".to_string(),
                };
                log::debug!("{}: {reason}", conn.peer);
                self.abort(token, &reason);
            }
            ConnTimer::SlowReader => {
                if let Some(since) = conn.over_limit_since {
                    if self.now.duration_since(since) >= self.config.slow_reader_timeout {
                        let pending = conn.out.len();
                        log::warn!(
                            "{}: slow reader: over {} bytes of output for {:?} ({pending} queued); closing",
                            conn.peer,
                            self.config.max_output,
                            self.config.slow_reader_timeout
                        );
                        self.close_for_policy(token, "too slow: output buffer full");
                    }
                }
            }
            ConnTimer::Idle => {
                let Some(limit) = self.config.idle_timeout else {
                    return;
                };
                let due = conn.last_heard + limit;
                if self.now >= due {
                    self.send_text(token, &format!("! idle for {limit:?}; goodbye"));
                    self.begin_closing(token, "idle timeout".into());
                } else {
                    self.schedule(token, kind, due);
                }
            }
        }
    }

    /// Closes a connection that broke a limit, in its own protocol: close
    /// 1008 for a WebSocket, an error line for telnet.
    fn close_for_policy(&mut self, token: Token, why: &str) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        // The queue is what is too big; it will never be read in time. A
        // frame already half written is finished, or the close frame
        // behind it would land inside its payload (RFC 6455 §5.2).
        conn.out.clear_unsent();
        // Reading resumes: the peer's answering close frame, or its FIN,
        // must be heard for the connection to finish closing.
        if conn.over_limit_since.take().is_some() {
            self.again.push(token);
        }
        match conn.state {
            State::WebSocket(_) => {
                websocket::send_close(self, token, crate::ws::CloseCode::POLICY_VIOLATION, why);
                self.begin_closing(token, why.to_string());
            }
            State::Line(_) => {
                self.send_text(token, &format!("! {why}; goodbye"));
                self.begin_closing(token, why.to_string());
            }
            _ => self.begin_closing(token, why.to_string()),
        }
    }

    fn clock_tick(&mut self, token: Token, generation: u32) {
        let Some(conn) = self.conns.get(token.0) else {
            return;
        };
        let wall = SystemTime::now();
        let again = match (&conn.state, conn.member) {
            (State::WebSocket(ws), _)
                if ws.endpoint == Endpoint::Clock && ws.close == conn::CloseHandshake::Open =>
            {
                self.send_text(token, &crate::clock::format_utc(wall));
                true
            }
            (_, Some(member)) => {
                let again = self.hub.clock_tick(member, generation, wall);
                self.deliver();
                again
            }
            _ => false,
        };
        if again {
            self.schedule(
                token,
                ConnTimer::Clock(generation),
                self.now + Duration::from_secs(1),
            );
        }
    }

    // ---- shutdown --------------------------------------------------------

    fn on_signal(&mut self) {
        let Some(signals) = self.signals.as_mut() else {
            return;
        };
        let received: Vec<i32> = signals.pending().collect();
        if !received.is_empty() {
            log::info!("signal {:?} received", received);
            self.begin_shutdown();
        }
    }

    /// Graceful shutdown: stop accepting, say goodbye to everyone in their
    /// own protocol (close 1001, a goodbye line), and give the goodbyes up
    /// to `--shutdown-timeout` to be delivered.
    pub fn begin_shutdown(&mut self) {
        if self.shutdown.is_some() {
            return;
        }
        let deadline = self.now + self.config.shutdown_timeout;
        self.shutdown = Some(deadline);
        self.timers.schedule(deadline, Timer::ShutdownDeadline);
        log::info!(
            "shutting down: saying goodbye to {} connections",
            self.conns.len()
        );
        for mut listener in [self.line_listener.take(), self.web_listener.take()]
            .into_iter()
            .flatten()
        {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let tokens: Vec<Token> = self.conns.iter().map(|(key, _)| Token(key)).collect();
        for token in tokens {
            let Some(conn) = self.conns.get(token.0) else {
                continue;
            };
            match &conn.state {
                State::Line(_) => {
                    self.send_text(token, "* server shutting down; goodbye");
                    self.begin_closing(token, "server shutdown".into());
                }
                State::WebSocket(ws) if ws.close == conn::CloseHandshake::Open => {
                    websocket::send_close(
                        self,
                        token,
                        crate::ws::CloseCode::GOING_AWAY,
                        "server shutting down",
                    );
                }
                State::WebSocket(_) | State::Closing(_) => {}
                State::Http(_) | State::EventStream(_) => self.begin_closing(token, "server shutdown".into()),
            }
        }
        self.flush_dirty();
    }

    fn head_limits(&self) -> crate::http::HeadLimits {
        crate::http::HeadLimits {
            max_head: self.config.max_head,
            max_headers: self.config.max_headers,
            max_body: self.config.max_body,
        }
    }
}

/// Encodes a payload into one connection's own queue, in its framing.
fn encode_payload(conn: &mut Connection, payload: &Payload) {
    use crate::ws::Opcode;
    match (&conn.state, payload) {
        (State::WebSocket(_), Payload::Text(text)) => {
            websocket::encode(&mut conn.out, Opcode::Text, text.as_bytes())
        }
        (State::WebSocket(_), Payload::Binary { data, .. }) => {
            websocket::encode(&mut conn.out, Opcode::Binary, data)
        }
        (_, Payload::Text(text) | Payload::Binary { notice: text, .. }) => conn.out.encode_with(|out| {
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
        }),
    }
}

fn line_bytes(text: &str) -> Rc<[u8]> {
    let mut bytes = Vec::with_capacity(text.len() + 2);
    bytes.extend_from_slice(text.as_bytes());
    bytes.extend_from_slice(b"\r\n");
    Rc::from(bytes)
}

fn door_name(door: Door) -> &'static str {
    match door {
        Door::Line => "line",
        Door::Web => "web",
    }
}

/// Accept errors that concern only the one connection being accepted.
fn is_transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::PermissionDenied
    )
}
