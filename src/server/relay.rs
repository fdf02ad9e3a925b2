//! The relay's two connections to Redis (`--redis`), driven by the loop
//! like any connection: non-blocking sockets in the same `Poll`, read until
//! `WouldBlock`, written from a bounded queue, timers in the loop's heap.
//! What the bytes mean is `crate::relay`'s business (sans-IO); this file
//! only moves them, and connects again with backoff when a link breaks.
//!
//! A Redis that stalls never stalls the loop: a reply is bytes that may
//! or may not arrive, and one that does not arrive within
//! `--redis-timeout` breaks the link (the relay's tick finds it). Memory
//! stays bounded: the writer's queue shares the relay's entries (bounded
//! by `--redis-buffer`), and a reply may be at most [`MAX_REPLY`] bytes.

use super::context::Link;
use super::timers::Timer;
use super::Server;
use crate::config::Config;
use crate::outq::OutQueue;
use crate::relay::{Relay, Settings, Side};
use crate::resp::{self, Limits};
use mio::net::TcpStream;
use mio::{Interest, Token};
use std::io::{self, Read};
use std::net::{SocketAddr, ToSocketAddrs};

/// The two links' tokens: fixed, far below the listeners' and far above
/// any connection's slab key.
pub(super) const WRITER: Token = Token(usize::MAX - 64);
pub(super) const READER: Token = Token(usize::MAX - 65);

/// The largest reply read before it is decoded: `XREAD COUNT 100` of
/// entries that are each at most a line, a relayed binary message or a
/// roster. A reply past it breaks the link, logged.
pub(super) const MAX_REPLY: usize = 64 << 20;

/// What the relay's timer does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RelayTimer {
    /// The backoff is over: connect this link again.
    Connect(Side),
    /// Heartbeat, stalled replies, silent instances.
    Tick,
}

impl RelayTimer {
    /// Its name in `--step`'s narration and the loop panel.
    pub(super) fn name(self) -> &'static str {
        match self {
            RelayTimer::Connect(_) => "RelayConnect",
            RelayTimer::Tick => "RelayTick",
        }
    }
}

/// One connection to Redis: its socket (none while down), the bytes read
/// and not yet decoded, and what waits to be written.
#[derive(Default)]
struct Wire {
    socket: Option<TcpStream>,
    connected: bool,
    input: Vec<u8>,
    out: OutQueue,
}

/// The relay and its two wires.
pub(super) struct RelayIo {
    pub relay: Relay,
    addr: SocketAddr,
    writer: Wire,
    reader: Wire,
    limits: Limits,
}

impl RelayIo {
    /// From the configuration, when `--redis` is given. The address is
    /// resolved once, here: a name that does not resolve is an error at
    /// start, not a retry for ever.
    pub fn new(config: &Config) -> io::Result<Option<RelayIo>> {
        let Some(url) = &config.redis else {
            return Ok(None);
        };
        let addr = url
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("--redis {url}: no address")))?;
        let instance = config.instance.clone().unwrap_or_else(random_instance);
        let origin = format!("{instance}:{:016x}", crate::random::random_u64());
        let settings = Settings {
            key: format!("{}:stream", config.redis_prefix),
            instance,
            origin,
            maxlen: config.redis_maxlen,
            ttl: config.redis_ttl,
            timeout: config.redis_timeout,
            buffer: config.redis_buffer,
        };
        Ok(Some(RelayIo {
            relay: Relay::new(settings),
            addr,
            writer: Wire::default(),
            reader: Wire::default(),
            limits: Limits {
                bulk: MAX_REPLY,
                ..Limits::default()
            },
        }))
    }

    /// Redis's address, for the start-up line.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn wire(&mut self, side: Side) -> &mut Wire {
        self.parts(side).1
    }

    /// The relay and one wire, borrowed together.
    fn parts(&mut self, side: Side) -> (&mut Relay, &mut Wire) {
        match side {
            Side::Writer => (&mut self.relay, &mut self.writer),
            Side::Reader => (&mut self.relay, &mut self.reader),
        }
    }
}

/// Four random lowercase letters: a name for an instance not given one.
fn random_instance() -> String {
    let mut n = crate::random::random_u64();
    (0..4)
        .map(|_| {
            let letter = char::from(b'a' + (n % 26) as u8);
            n /= 26;
            letter
        })
        .collect()
}

fn side_of(token: Token) -> Side {
    if token == WRITER {
        Side::Writer
    } else {
        Side::Reader
    }
}

impl Server {
    /// Joins the cluster at start: both links connect at once, and the
    /// tick begins.
    pub(super) fn start_relay(&mut self) {
        let Some(io) = &self.relay else { return };
        let instance = io.relay.settings().instance.clone();
        self.shared.hub.set_relaying(&instance);
        self.shared.relay = Some(super::context::RelayView {
            instance,
            ..Default::default()
        });
        self.connect_relay(Side::Writer);
        self.connect_relay(Side::Reader);
        let at = self.shared.now + self.relay_tick();
        self.shared.timers.schedule(at, Timer::Relay(RelayTimer::Tick));
    }

    fn relay_tick(&self) -> std::time::Duration {
        self.relay
            .as_ref()
            .map_or(std::time::Duration::from_secs(1), |io| io.relay.settings().tick())
    }

    /// Is this one of the relay's tokens?
    pub(super) fn is_relay(token: Token) -> bool {
        token == WRITER || token == READER
    }

    /// A relay timer fired.
    pub(super) fn on_relay_timer(&mut self, timer: RelayTimer) {
        match timer {
            RelayTimer::Connect(side) => self.connect_relay(side),
            RelayTimer::Tick => {
                let Some(io) = &mut self.relay else { return };
                let stalled = io.relay.tick(self.shared.now, &mut self.shared.hub);
                for side in stalled {
                    let timeout = self.shared.config.redis_timeout;
                    self.break_relay(side, &format!("no reply within --redis-timeout {timeout:?}"));
                }
                let at = self.shared.now + self.relay_tick();
                self.shared.timers.schedule(at, Timer::Relay(RelayTimer::Tick));
            }
        }
    }

    /// Starts a non-blocking connect; the socket says it is done (or
    /// failed) by becoming writable.
    fn connect_relay(&mut self, side: Side) {
        let Some(io) = &mut self.relay else { return };
        let token = match side {
            Side::Writer => WRITER,
            Side::Reader => READER,
        };
        let addr = io.addr;
        let result = TcpStream::connect(addr).and_then(|mut socket| {
            self.poll
                .registry()
                .register(&mut socket, token, Interest::READABLE | Interest::WRITABLE)?;
            Ok(socket)
        });
        match result {
            Ok(socket) => {
                log::debug!("redis {}: connecting to {addr}", side.name());
                io.relay.connecting(side);
                let wire = io.wire(side);
                *wire = Wire {
                    socket: Some(socket),
                    ..Wire::default()
                };
            }
            Err(e) => self.break_relay(side, &format!("cannot connect to {addr}: {e}")),
        }
    }

    /// A link is broken: its socket goes, and it connects again after the
    /// backoff the relay says.
    fn break_relay(&mut self, side: Side, why: &str) {
        let Some(io) = &mut self.relay else { return };
        let wire = io.wire(side);
        if let Some(mut socket) = wire.socket.take() {
            let _ = self.poll.registry().deregister(&mut socket);
        }
        *wire = Wire::default();
        let delay = io.relay.broken(side, &mut self.shared.hub);
        log::info!("redis {}: {why}; connecting again in {delay:?}", side.name());
        let at = self.shared.now + delay;
        self.shared
            .timers
            .schedule(at, Timer::Relay(RelayTimer::Connect(side)));
        self.deliver();
    }

    /// An event on one of the relay's sockets: the connect finished, or
    /// replies arrived, or the socket can take more.
    pub(super) fn on_relay_event(&mut self, token: Token) {
        let side = side_of(token);
        let Some(io) = &mut self.relay else { return };
        let addr = io.addr;
        let (relay, wire) = io.parts(side);
        let Some(socket) = &wire.socket else { return };
        if !wire.connected {
            // The TCP handshake (RFC 9293 §3.5) is over, one way or the
            // other: an error is the connect's, and a peer address means
            // done.
            let failed = match socket.take_error() {
                Ok(None) => match socket.peer_addr() {
                    Ok(_) => None,
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                    Err(e) => Some(e),
                },
                Ok(Some(e)) | Err(e) => Some(e),
            };
            if let Some(e) = failed {
                return self.break_relay(side, &format!("cannot connect to {addr}: {e}"));
            }
            wire.connected = true;
            log::debug!("redis {}: connected to {addr}", side.name());
            relay.connected(side, self.shared.now, &mut wire.out);
        }
        if let Err(why) = self.read_relay(side) {
            return self.break_relay(side, &why);
        }
        self.deliver();
        self.flush_relay();
    }

    /// Reads until `WouldBlock`, handing each whole reply to the relay.
    fn read_relay(&mut self, side: Side) -> Result<(), String> {
        let mut read_buf = std::mem::take(&mut self.read_buf);
        let result = self.read_relay_into(side, read_buf.bytes());
        self.read_buf = read_buf;
        result
    }

    fn read_relay_into(&mut self, side: Side, buf: &mut [u8]) -> Result<(), String> {
        loop {
            let Some(io) = &mut self.relay else { return Ok(()) };
            let limits = io.limits;
            let wire = io.wire(side);
            let Some(socket) = &mut wire.socket else {
                return Ok(());
            };
            let n = match socket.read(buf) {
                Ok(0) => return Err("Redis closed the connection".into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read error: {e}")),
            };
            wire.input.extend_from_slice(&buf[..n]);
            if wire.input.len() > MAX_REPLY {
                return Err(format!("a reply over {MAX_REPLY} bytes"));
            }
            log::trace!("redis {}: read {n} bytes", side.name());
            loop {
                let Some(io) = &mut self.relay else { return Ok(()) };
                let (relay, wire) = io.parts(side);
                let (reply, used) = match resp::decode(&wire.input, &limits) {
                    Ok(Some(decoded)) => decoded,
                    Ok(None) => break,
                    Err(e) => return Err(format!("bad reply: {e}")),
                };
                wire.input.drain(..used);
                let now = self.shared.now;
                relay.on_reply(
                    side,
                    reply,
                    now,
                    &mut self.shared.hub,
                    Link::Remote,
                    &mut wire.out,
                )?;
                self.deliver();
            }
        }
    }

    /// Shutdown is over: the relay says `bye` and writes what it can
    /// without waiting (the sockets are non-blocking).
    pub(super) fn relay_goodbye(&mut self) {
        if let Some(io) = &mut self.relay {
            io.relay.goodbye();
            self.flush_relay();
        }
    }

    /// Writes both links' queues, the writer's filled first with what the
    /// relay has to send. Called at the end of each flush of the turn.
    pub(super) fn flush_relay(&mut self) {
        for side in [Side::Writer, Side::Reader] {
            let Some(io) = &mut self.relay else { return };
            let (relay, wire) = io.parts(side);
            if side == Side::Writer {
                relay.fill_writer(self.shared.now, &mut wire.out);
            }
            let (Some(socket), true) = (&mut wire.socket, wire.connected) else {
                continue;
            };
            if wire.out.is_empty() {
                continue;
            }
            match wire.out.write_to(socket) {
                Ok(n) => log::trace!("redis {}: wrote {n} bytes, {} left", side.name(), wire.out.len()),
                Err(e) => self.break_relay(side, &format!("write error: {e}")),
            }
        }
        // The turn's last word on the relay, for `/stats` and `/metrics`.
        if let (Some(io), Some(view)) = (&self.relay, &mut self.shared.relay) {
            view.writer = io.relay.state(Side::Writer);
            view.reader = io.relay.state(Side::Reader);
            view.queued = io.relay.queued();
            view.stats = io.relay.stats();
        }
    }
}
