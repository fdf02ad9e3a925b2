//! What a connection's handlers may touch besides themselves, and what
//! they answer.
//!
//! Each kind of connection (`line`, `line_echo`, `http`, `websocket`,
//! `event_stream`) is a type with methods of one shape:
//!
//! ```text
//! fn on_input(&mut self, cx: &mut Context, input: &mut [u8]) -> (usize, Next)
//! fn on_timer(&mut self, cx: &mut Context, timer: ConnTimer) -> Next
//! ```
//!
//! The [`Context`] lends them this connection's output queue and the
//! loop's shared state: the hub, the time of this turn, the counters, the
//! timers. They never see a socket or another connection, and they never
//! read a clock: `cx.now` is the time of the turn. What they return,
//! [`Next`], says what the loop should do with the connection: carry on,
//! become another kind, or close for a reason.
//!
//! A handler that hands the hub a line returns at once, having used only
//! the bytes up to that line. The loop then carries out what the hub
//! asked ([`Server::deliver`](super::Server)) before it feeds the rest, so
//! a read full of chat lines never piles up one broadcast per line.

use super::close::Why;
use super::conn::{Protocol, Via};
use super::members::{HttpMembers, MemberKey};
use super::peer::Peer;
use super::timers::{ConnTimer, Timer};
use super::Stats;
use crate::config::Config;
use crate::hub::Hub;
use crate::origin::OriginPolicy;
use crate::outq::OutQueue;
use crate::timer::{Stamp, Timers};
use mio::net::TcpStream;
use mio::Token;
use std::ops::{Deref, DerefMut};
use std::time::Instant;

/// How the loop reaches a hub member: the hub copies these into its
/// outbox and never looks inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Link {
    /// A connection that carries the member for its whole life: a telnet
    /// line or a `/chat` WebSocket.
    Conn(Token),
    /// An HTTP member, which has no lasting connection: its key in the
    /// loop's member table.
    Http(MemberKey),
    /// A socket.io client: its Engine.IO session, whichever connection
    /// carries it now (`engineio.rs`).
    Sio(super::engineio::SessionKey),
    /// A member of another instance (`--redis`): reached by its own.
    Remote,
}

/// The loop's state that every connection shares.
pub(super) struct Shared {
    /// The time at the start of this turn; one clock read per turn.
    pub now: Instant,
    /// The same moment as a `Stamp`, what connections keep (converted
    /// once a turn, not once a read).
    pub stamp: Stamp,
    pub config: Config,
    pub policy: OriginPolicy,
    pub hub: Hub<Link>,
    /// permessage-deflate: the loop's one compressor and inflater.
    pub compression: super::compression::Compression,
    pub stats: Stats,
    pub timers: Timers<Timer>,
    /// HTTP chat members, by key and by secret token.
    pub members: HttpMembers,
    /// Connections waiting for chat lines: parked long polls and event
    /// streams.
    pub waiters: Vec<Token>,
    /// socket.io's Engine.IO sessions, by sid.
    pub sio: super::engineio::Sessions,
    /// The `Date` every HTTP answer carries.
    pub date: HttpDate,
    /// The relay as `/stats` and `/metrics` show it (`--redis`): a copy
    /// the loop refreshes each turn, since the relay itself is the loop's.
    pub relay: Option<RelayView>,
}

/// What `/stats` and `/metrics` tell of the relay to other instances.
#[derive(Clone, Debug, Default)]
pub(super) struct RelayView {
    pub instance: String,
    pub writer: crate::relay::LinkState,
    pub reader: crate::relay::LinkState,
    /// Entries waiting for Redis to answer, bounded by `--redis-buffer`.
    pub queued: usize,
    pub stats: crate::relay::RelayStats,
}

/// The `Date` field of HTTP answers. RFC 9110 §6.6.1: "An origin server
/// with a clock MUST generate a Date header field in all 2xx, 3xx, and
/// 4xx responses"; it is the time the answer was made, to the second, so
/// the text is made once a second and reused for every answer in it. The
/// wall clock is read here, in the loop, when an answer is made: the HTTP
/// code itself reads no clock.
#[derive(Default)]
pub(super) struct HttpDate {
    second: u64,
    text: String,
}

impl HttpDate {
    /// Now, as an IMF-fixdate: `Wed, 02 Dec 2026 06:33:06 GMT`.
    pub fn now(&mut self) -> &str {
        let now = std::time::SystemTime::now();
        let second = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if second != self.second || self.text.is_empty() {
            self.second = second;
            self.text = crate::http::date::format(now);
        }
        &self.text
    }
}

/// One connection's view of the loop, for the length of one call.
pub(super) struct Context<'a> {
    pub token: Token,
    /// Tells this connection from an earlier one with the same token.
    pub serial: u32,
    /// Who is at the other end; a request through a trusted proxy may
    /// change it (`routes.rs`).
    pub peer: &'a mut Peer,
    /// The socket itself, for what is asked of it rarely (the server's
    /// own address, in a welcome). Reading and writing are the loop's.
    pub socket: &'a TcpStream,
    /// This connection's output: everything it says goes here, and leaves
    /// through the loop's one write point.
    pub out: &'a mut OutQueue,
    /// Which transport this connection's bytes are counted under.
    pub via: &'a mut Via,
    pub shared: &'a mut Shared,
}

impl Deref for Context<'_> {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        self.shared
    }
}

impl DerefMut for Context<'_> {
    fn deref_mut(&mut self) -> &mut Shared {
        self.shared
    }
}

impl Shared {
    /// The clock has been read: this is the time of the turn from now on.
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
        self.stamp = self.timers.stamp(now);
    }
}

impl Context<'_> {
    /// Sets one of this connection's timers. It names the connection by
    /// token *and* serial, so it cannot fire on a newer connection that
    /// reused the token.
    pub fn schedule(&mut self, kind: ConnTimer, at: Instant) {
        let timer = Timer::conn(self.token, self.serial, kind);
        self.shared.timers.schedule(at, timer);
    }

    /// Queues one line of text with CR LF, as telnet and the NVT want it
    /// (RFC 854).
    pub fn send_line(&mut self, text: &str) {
        self.out.encode_with(|out| {
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
        });
        self.message_out(1);
    }

    /// Counts messages received on this connection, in all and under its
    /// transport.
    pub fn message_in(&mut self, n: u64) {
        let via = *self.via;
        self.shared.stats.message_in(via, n);
    }

    /// Counts messages queued to this connection, in all and under its
    /// transport.
    pub fn message_out(&mut self, n: u64) {
        let via = *self.via;
        self.shared.stats.message_out(via, n);
    }

    /// A chat member's `/time` clock ticked: the hub says the time, and
    /// the tick is set again while the clock is on.
    pub fn clock_tick(&mut self, member: crate::hub::MemberId, generation: u32) {
        let wall = std::time::SystemTime::now();
        if self.shared.hub.clock_tick(member, generation, wall) {
            let at = self.now + std::time::Duration::from_secs(1);
            self.schedule(ConnTimer::Clock(generation), at);
        }
    }

    /// What the hub greets a new member with: where it connected.
    pub fn welcome(&self, over: &str) -> String {
        super::conn::welcome(self.socket, self.peer, over)
    }
}

/// What a handler asks of the loop after a call.
pub(super) enum Next {
    /// Carry on as before.
    Continue,
    /// Become another kind of connection: an HTTP request upgraded to a
    /// WebSocket or turned into an event stream.
    Become(Protocol),
    /// Close, for this reason: the loop gives the goodbye the protocol
    /// has for it (see `close.rs`).
    Close(Why),
    /// A chat request over plain HTTP, answered by the loop in two steps
    /// (see `Server::chat_request`).
    Chat(Box<ChatRequest>),
    /// A request for a file under `--static`, answered by the loop, which
    /// owns the file system work (see `Server::serve_file`).
    File(Box<crate::http::Request>),
    /// `GET /metrics`, answered by the loop, which can see every
    /// connection's queue (see `Server::serve_metrics`).
    Metrics(Box<crate::http::Request>),
    /// An echo to write straight from where it lies, with no copy into
    /// the queue: this header (a WebSocket frame's, or none for the line
    /// echo), then the payload (see `Server::write`). Used for large
    /// WebSocket echoes and for a read that is all plain lines.
    WriteThrough {
        head: ([u8; crate::ws::frame::MAX_HEADER_LEN], usize),
        body: Body,
    },
}

/// The chat over plain HTTP: which transport, and the request.
pub(super) struct ChatRequest {
    pub via: Via,
    pub request: crate::http::Request,
}

/// Where a write-through payload lies.
pub(super) enum Body {
    /// In the input just handed to the handler, at this range.
    Input(std::ops::Range<usize>),
    /// In the WebSocket decoder's own buffer (a reassembled message).
    Message,
}
