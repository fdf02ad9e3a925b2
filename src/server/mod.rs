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
//! Around the recipe, `--step` stops before each turn (`pause`), and a
//! watched loop tells each turn when it ends (`end_turn`): see `watch.rs`.
//!
//! The layers, from the wire up:
//!
//! ```text
//!  listeners      accept.rs       two doors: line (telnet) and web (HTTP),
//!      │                          each plain or with TLS under it
//!  transports     transport.rs    plain TCP, or TLS (rustls) over it:
//!      │                          plaintext in and out, whichever it is
//!  connections    conn.rs         one type per kind, each in its own file:
//!      │                          line.rs, line_echo.rs, http.rs (with
//!      │                          long_poll.rs), websocket.rs, event_stream.rs
//!      │                          io.rs: the one read point, the one write point
//!      │                          close.rs: the one close machine
//!  codecs         crate::line, crate::http, crate::ws   (sans-IO: bytes in, events out)
//!      │
//!  hub            crate::hub      the chat: members, rooms, commands
//!                 deliver.rs      the seam: the hub's actions carried out
//! ```
//!
//! Readiness is *edge-triggered*: mio reports a socket once when it
//! becomes readable, not again while unread bytes remain. So every read
//! loop runs until the socket is drained (`WouldBlock`, or a read shorter
//! than the buffer), and a connection that had to stop early (its fair
//! share of a turn was used up) is remembered and read again on the next
//! turn without waiting for a new event.

mod accept;
mod close;
mod compression;
mod conn;
mod context;
mod deliver;
mod descriptors;
mod engineio;
mod event_stream;
mod files;
mod http;
mod io;
mod line;
mod line_echo;
mod long_poll;
mod members;
mod metrics;
mod peer;
mod relay;
mod routes;
mod shutdown;
mod stats;
mod step;
mod tcp_info;
mod timers;
mod transport;
mod turn;
mod watch;
mod websocket;

pub use conn::{Door, Endpoint, Via};
pub use stats::Stats;
/// What `--step` prints at start: the commands it takes.
pub use step::HELP as STEP_HELP;

use crate::config::Config;
use crate::hub::Hub;
use crate::origin::OriginPolicy;
use crate::timer::Timers;
use accept::{Doors, Layer};
use conn::Connection;
use context::Shared;
use members::HttpMembers;
use mio::{Events, Poll, Token};
use slab::Slab;
use std::io as stdio;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use transport::Sessions;

/// The listeners and the signal pipe have fixed tokens at the top of the
/// range; connections use their slab key, which starts at 0.
const LINE_LISTENER: Token = Token(usize::MAX - 1);
const WEB_LISTENER: Token = Token(usize::MAX - 2);
const SIGNALS: Token = Token(usize::MAX - 3);
const LINE_TLS_LISTENER: Token = Token(usize::MAX - 4);
const WEB_TLS_LISTENER: Token = Token(usize::MAX - 5);
/// `--step`'s terminal.
const STDIN: Token = Token(usize::MAX - 6);

/// Reads one connection may do per turn before the others get a go.
const READS_PER_TURN: usize = 16;

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

/// One readiness event, as `poll` reported it: what `dispatch` acts on,
/// whether it comes straight from `poll` or was held while `--step` was
/// stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ready {
    token: Token,
    readable: bool,
    writable: bool,
    /// The peer's FIN, or a socket error, came with it.
    closed: bool,
}

impl From<&mio::event::Event> for Ready {
    fn from(event: &mio::event::Event) -> Ready {
        Ready {
            token: event.token(),
            readable: event.is_readable(),
            writable: event.is_writable(),
            closed: event.is_read_closed() || event.is_error(),
        }
    }
}

/// A running server: bind with [`Server::bind`], then [`Server::run`].
pub struct Server {
    poll: Poll,
    doors: Doors,
    conns: Slab<Connection>,
    /// The TLS sessions of connections that came through a TLS door, by
    /// token: kept beside the connections so a plain one pays nothing.
    sessions: Sessions,
    /// What every connection's handlers share: the hub, the counters, the
    /// timers, the time of this turn.
    shared: Shared,
    /// The loop's one read buffer: every read lands here first.
    read_buf: ReadBuffer,
    next_serial: u32,
    /// Connections with output queued this turn, flushed at its end.
    dirty: Vec<Token>,
    /// Connections to free at the end of this turn.
    reap: Vec<Token>,
    /// Connections to read again next turn without waiting for an event.
    again: Vec<Token>,
    /// Connections sending a file that used their share of the last turn
    /// with room left in the socket: written again next turn, since no
    /// writable event will come for them.
    write_again: Vec<Token>,
    /// An empty list kept for `again` and `dirty` to swap with.
    spare_tokens: Vec<Token>,
    /// `--static DIR`, canonical: every file served must lie under it.
    static_root: Option<std::path::PathBuf>,
    signals: Option<signal_hook_mio::v1_0::Signals>,
    /// Set once shutdown has begun: the instant it must be over.
    shutdown: Option<Instant>,
    /// When the current turn began (the clock read after `poll`), for the
    /// loop-turn histogram; none before the first turn.
    turn_began: Option<Instant>,
    /// `--step` and the `/loop` observers: the record of each turn.
    watch: watch::Watch,
    /// The relay to other instances through Redis (`--redis`).
    relay: Option<relay::RelayIo>,
}

impl Server {
    /// Binds both doors and prepares the loop. Nothing is accepted until
    /// [`Server::run`].
    pub fn bind(mut config: Config) -> stdio::Result<Server> {
        config.max_connections = descriptors::fit_connection_cap(config.max_connections);
        let poll = Poll::new()?;
        let doors = Doors::bind(&poll, &config)?;
        let policy = OriginPolicy::new(
            &config.allow_origins,
            &config.allow_hosts,
            doors.web_addr.ip().is_loopback(),
        );
        // One timer per connection, most of the time (see `timers.rs`).
        let timers = Timers::with_capacity(config.max_connections);
        let now = Instant::now();
        let read_buf = ReadBuffer::new(config.read_buffer.max(1024));
        let relay = relay::RelayIo::new(&config)?;
        let static_root = match &config.static_dir {
            Some(dir) => Some(static_root(dir)?),
            None => None,
        };
        let mut watch = watch::Watch::new(config.max_connections, config.loop_rate, now);
        if config.step {
            watch.start_stepping(step::Step::open(&poll)?);
        }
        let mut server = Server {
            poll,
            doors,
            // Reserved for the most connections allowed: address space
            // only until a connection is written into it, and growing
            // never copies the live ones.
            conns: Slab::with_capacity(config.max_connections),
            sessions: Sessions::default(),
            shared: Shared {
                now,
                stamp: timers.stamp(now),
                policy,
                hub: Hub::new(config.max_line, config.history_limits()),
                compression: compression::Compression::new(config.deflate_threshold),
                stats: Stats::new(now),
                timers,
                members: HttpMembers::default(),
                waiters: Vec::new(),
                sio: engineio::Sessions::new()?,
                date: context::HttpDate::default(),
                relay: None,
                config,
            },
            read_buf,
            next_serial: 0,
            dirty: Vec::new(),
            reap: Vec::new(),
            again: Vec::new(),
            write_again: Vec::new(),
            spare_tokens: Vec::new(),
            static_root,
            signals: None,
            shutdown: None,
            turn_began: None,
            watch,
            relay,
        };
        server.start_relay();
        Ok(server)
    }

    /// The Redis server the relay connects to (`--redis`), and this
    /// instance's name in the cluster.
    pub fn redis(&self) -> Option<(SocketAddr, &str)> {
        self.relay
            .as_ref()
            .map(|io| (io.addr(), io.relay.settings().instance.as_str()))
    }

    /// The line service's address (the real port when bound to port 0).
    pub fn line_addr(&self) -> SocketAddr {
        self.doors.line_addr
    }

    /// The web door's address.
    pub fn web_addr(&self) -> SocketAddr {
        self.doors.web_addr
    }

    /// The web door over TLS (`--https`), if open.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.doors.web_tls_addr
    }

    /// The line door over TLS (`--tcps`), if open.
    pub fn tcps_addr(&self) -> Option<SocketAddr> {
        self.doors.line_tls_addr
    }

    /// The SHA-256 pin of the self-signed certificate made at start, if
    /// one was (see [`crate::tls`]).
    pub fn tls_pin(&self) -> Option<&str> {
        self.doors.pin.as_deref()
    }

    /// Runs until a graceful shutdown completes. Every turn is the same
    /// recipe (see the module documentation).
    pub fn run(&mut self) -> stdio::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            self.pause(&mut events)?;
            self.wait(&mut events)?;
            self.dispatch(&events);
            self.flush_dirty();
            self.run_timers();
            self.flush_dirty();
            self.reap_closed();
            self.end_turn();
            if self.shutdown_done() {
                return Ok(());
            }
        }
    }

    /// Step 1: sleep until a socket is ready or the nearest timer is due.
    /// A connection that still has bytes to read (its share of the last
    /// turn ran out) means no sleep at all.
    fn wait(&mut self, events: &mut Events) -> stdio::Result<()> {
        // Before sleeping, the output buffers kept for reuse shrink to what
        // the last turn used (`outq::trim_spare_buffers`).
        crate::outq::trim_spare_buffers();
        // The clock read that sets the timeout also ends the last turn:
        // its length goes into the histogram `GET /metrics` shows.
        let mut now = Instant::now();
        if let Some(began) = self.turn_began {
            self.shared
                .stats
                .turns
                .record(now.saturating_duration_since(began));
        }
        loop {
            let timeout = if self.again.is_empty() && self.write_again.is_empty() && !self.step_now() {
                self.shared.timers.timeout(now)
            } else {
                Some(Duration::ZERO)
            };
            match self.poll.poll(events, timeout) {
                Ok(()) => break,
                // A signal arrived during the sleep: just sleep again.
                Err(e) if e.kind() == stdio::ErrorKind::Interrupted => now = Instant::now(),
                Err(e) => return Err(e),
            }
        }
        let now = Instant::now();
        self.shared.set_now(now);
        self.turn_began = Some(now);
        self.begin_turn();
        log::trace!(
            "turn: {} events, {} connections, {} timers",
            events.iter().count(),
            self.conns.len(),
            self.shared.timers.len()
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
        for token in std::mem::take(&mut self.write_again) {
            self.mark_dirty(token);
        }
        if self.watch.step.is_some() {
            self.dispatch_held();
        }
        for event in events.iter() {
            self.on_event(Ready::from(event));
        }
    }

    /// `--step` only: what became ready while the loop was stopped comes
    /// first, as `poll` reported it.
    #[cold]
    #[inline(never)]
    fn dispatch_held(&mut self) {
        let Some(step) = self.watch.step.as_mut() else {
            return;
        };
        step.go_now = false;
        for ready in std::mem::take(&mut step.held) {
            self.on_event(ready);
        }
    }

    /// One event, to its listener or connection. (Inlined into both its
    /// callers: in `dispatch` it is the hottest path of the server.)
    #[inline(always)]
    fn on_event(&mut self, ready: Ready) {
        if self.watch.turn.on {
            self.note_event(ready);
        }
        match ready.token {
            LINE_LISTENER => self.accept_all(Door::Line, Layer::Plain),
            WEB_LISTENER => self.accept_all(Door::Web, Layer::Plain),
            LINE_TLS_LISTENER => self.accept_all(Door::Line, Layer::Tls),
            WEB_TLS_LISTENER => self.accept_all(Door::Web, Layer::Tls),
            SIGNALS => self.on_signal(),
            STDIN => self.on_stdin(),
            token if Self::is_relay(token) => self.on_relay_event(token),
            token => {
                if log::log_enabled!(log::Level::Trace) {
                    if let Some(conn) = self.conns.get(token.0) {
                        log::trace!(
                            "event: token {} {conn}{}{}",
                            token.0,
                            if ready.readable { " readable" } else { "" },
                            if ready.writable { " writable" } else { "" },
                        );
                    }
                }
                // The peer's FIN and socket errors show up as their own
                // flags; reading is how we learn what they mean.
                if ready.readable || ready.closed {
                    self.on_readable(token, ready.closed);
                }
                if ready.writable {
                    self.mark_dirty(token);
                }
            }
        }
    }

    /// `--step` said "go": the turn runs on what is ready now, without
    /// sleeping in `poll`.
    fn step_now(&self) -> bool {
        self.watch
            .step
            .as_ref()
            .is_some_and(|step| step.go_now || !step.held.is_empty())
    }

    /// After a turn: has a graceful shutdown finished, or run out of time?
    fn shutdown_done(&mut self) -> bool {
        let Some(deadline) = self.shutdown else {
            return false;
        };
        if self.conns.is_empty() {
            log::info!("shutdown complete");
            self.relay_goodbye();
            return true;
        }
        if self.shared.now >= deadline {
            log::warn!(
                "shutdown deadline passed; {} connections cut off",
                self.conns.len()
            );
            self.relay_goodbye();
            return true;
        }
        false
    }
}

/// `--static DIR` made canonical (links resolved), so that every file
/// served can be checked to lie under it. A DIR that is not a folder stops
/// the server at start, saying so, rather than answering 404 to everything.
fn static_root(dir: &std::path::Path) -> stdio::Result<std::path::PathBuf> {
    let fail = |why: String| stdio::Error::new(stdio::ErrorKind::InvalidInput, why);
    let root = std::fs::canonicalize(dir).map_err(|e| fail(format!("--static {}: {e}", dir.display())))?;
    if !root.is_dir() {
        return Err(fail(format!("--static {}: not a folder", dir.display())));
    }
    Ok(root)
}
