//! The event loop: one thread, one `mio::Poll`, every socket and timer.
//!
//! Read [`Server::run`] first. Each turn is the same recipe:
//!
//! 1. `wait`: sleep in `poll` until a socket is ready or the nearest timer
//!    is due;
//! 2. `dispatch`: for each event, accept everything waiting on a listener,
//!    or read from a connection until its socket is drained;
//! 3. `flush_dirty`: write the output this turn produced, in as few `write`
//!    calls as possible per connection;
//! 4. `run_timers`: fire the timers that are due;
//! 5. `reap_closed`: free the connections that finished during the turn.
//!
//! Readiness is *edge-triggered*: mio reports a socket once when it
//! becomes readable, not again while unread bytes remain. So every read
//! loop runs until the socket is drained (`WouldBlock`, or a read shorter
//! than the buffer), and a connection that had to stop early (its fair
//! share of a turn was used up) is remembered and read again on the next
//! turn without waiting for a new event.

mod conn;
mod deliver;
mod line;
mod shutdown;
mod stats;
mod timers;
mod transports;
mod web;
mod websocket;

pub use conn::{Door, Endpoint};
pub use stats::Stats;

use crate::config::Config;
use crate::hub::Hub;
use crate::origin::OriginPolicy;
use crate::timer::Timers;
use conn::{Closing, Connection, State, Via};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};

use std::time::{Duration, Instant};
use transports::HttpMember;

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
/// written out at once rather than at the turn's end. Each queued chunk is
/// 32 bytes of list in every member's queue, and a storm (ten thousand
/// telnet users joining one lobby, each arrival announced to all) fills
/// every queue at once: at 32 chunks that high-water mark stayed in the
/// heap as 0.2 kB per connection; at 8 it costs more writes during the
/// storm and nothing after it.
const EAGER_FLUSH_CHUNKS: usize = 8;

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

/// The loop's one read buffer, its start aligned to a cache line.
///
/// The kernel copies every byte read into it, and that copy is measurably
/// slower into memory that starts in the middle of a cache line. A large
/// block from the allocator begins 16 bytes past a page boundary; echoing
/// 64 KiB messages at a fixed rate, aligning the start cut the server's
/// system time by 9% (four interleaved runs each, every pair agreeing).
#[derive(Default)]
struct ReadBuffer {
    memory: Vec<u8>,
    start: usize,
    len: usize,
}

impl ReadBuffer {
    const ALIGN: usize = 64;

    fn new(len: usize) -> ReadBuffer {
        let memory = vec![0; len + Self::ALIGN - 1];
        // align_offset may decline to answer (usize::MAX); unaligned is
        // then still correct, only slower.
        let start = memory.as_ptr().align_offset(Self::ALIGN);
        let start = if start < Self::ALIGN { start } else { 0 };
        ReadBuffer { memory, start, len }
    }

    fn bytes(&mut self) -> &mut [u8] {
        &mut self.memory[self.start..self.start + self.len]
    }
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
    read_buf: ReadBuffer,
    /// The time at the start of this turn; one clock read per turn.
    now: Instant,
    next_serial: u64,
    /// Connections with output queued this turn, flushed at its end.
    dirty: Vec<Token>,
    /// Connections to free at the end of this turn.
    reap: Vec<Token>,
    /// Connections to read again next turn without waiting for an event.
    again: Vec<Token>,
    /// An empty list kept for `again` and `dirty` to swap with.
    spare_tokens: Vec<Token>,
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
            hub: Hub::new(config.max_line, config.history_limits()),
            policy,
            stats: Stats::new(now),
            read_buf: ReadBuffer::new(config.read_buffer.max(1024)),
            now,
            next_serial: 0,
            dirty: Vec::new(),
            reap: Vec::new(),
            again: Vec::new(),
            spare_tokens: Vec::new(),
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

    /// Runs until a graceful shutdown completes. Every turn is the same
    /// recipe (see the module documentation).
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            self.wait(&mut events)?;
            self.dispatch(&events);
            self.flush_dirty();
            self.run_timers();
            self.flush_dirty();
            self.reap_closed();
            if self.shutdown_done() {
                return Ok(());
            }
        }
    }

    /// Step 1: sleep until a socket is ready or the nearest timer is due.
    /// A connection that still has bytes to read (its share of the last
    /// turn ran out) means no sleep at all.
    fn wait(&mut self, events: &mut Events) -> io::Result<()> {
        loop {
            let timeout = if self.again.is_empty() {
                self.timers.timeout(Instant::now())
            } else {
                Some(Duration::ZERO)
            };
            match self.poll.poll(events, timeout) {
                Ok(()) => break,
                // A signal arrived during the sleep: just sleep again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        self.now = Instant::now();
        log::trace!(
            "turn: {} events, {} connections, {} timers",
            events.iter().count(),
            self.conns.len(),
            self.timers.len()
        );
        Ok(())
    }

    /// Step 2: hand each event to its listener or connection. Reading
    /// happens here; writing is only noted, and done in one go afterwards.
    fn dispatch(&mut self, events: &Events) {
        let mut again = std::mem::replace(&mut self.again, std::mem::take(&mut self.spare_tokens));
        for &token in &again {
            self.on_readable(token, false);
        }
        again.clear();
        self.spare_tokens = again;
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
                    // The peer's FIN and socket errors show up as their own
                    // flags; reading is how we learn what they mean.
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
    }

    /// After a turn: has a graceful shutdown finished, or run out of time?
    fn shutdown_done(&self) -> bool {
        let Some(deadline) = self.shutdown else {
            return false;
        };
        if self.conns.is_empty() {
            log::info!("shutdown complete");
            return true;
        }
        if self.now >= deadline {
            log::warn!(
                "shutdown deadline passed; {} connections cut off",
                self.conns.len()
            );
            return true;
        }
        false
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
        let mut read_buf = std::mem::take(&mut self.read_buf);
        let buf = read_buf.bytes();
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
            match conn.socket.read(buf) {
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
        self.read_buf = read_buf;
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
                    let line = line.to_vec();
                    self.last_line(token, &line);
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
        // Flushing can dirty more connections (a closed one's departure is
        // announced), so take the list, work through it, and look again.
        // The two lists swap rather than being freed, so a busy loop does
        // not allocate them anew each turn.
        let mut batch = std::mem::take(&mut self.spare_tokens);
        while !self.dirty.is_empty() {
            std::mem::swap(&mut batch, &mut self.dirty);
            for &token in &batch {
                if let Some(conn) = self.conns.get_mut(token.0) {
                    conn.dirty = false;
                    self.flush(token);
                }
            }
            batch.clear();
        }
        self.spare_tokens = batch;
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
