//! One connection: its socket, what speaks on it, its output, and where it
//! stands in closing.
//!
//! Three machines, one per concern, each changed by one function that logs
//! every `A -> B`:
//!
//! * [`Protocol`]: what the bytes mean (a telnet line, an HTTP request, a
//!   WebSocket, an event stream), changed by `Server::become_protocol`;
//! * [`Close`](super::close::Close): how far the goodbye has got, changed
//!   by `Server::set_close`; it only ever moves forward;
//! * inside a WebSocket, its close handshake (RFC 6455 §7), changed by
//!   `WebSocket::set_handshake`.
//!
//! `eof` says one thing only: the peer sent FIN (a read returned 0).

use super::close::{Close, Why};
use super::context::{Context, Next};
use super::event_stream::EventStream;
use super::http::Http;
use super::line::LineChat;
use super::line_echo::LineEcho;
use super::peer::Peer;
use super::timers::ConnTimer;
use super::websocket::WebSocket;
use crate::hub::MemberId;
use crate::outq::OutQueue;
use crate::timer::Stamp;
use mio::net::TcpStream;
use std::fmt;
use std::time::Instant;

/// Which listener a connection came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Door {
    /// The line service (telnet).
    Line,
    /// The web port (HTTP, then maybe WebSocket).
    Web,
}

impl Door {
    /// The door's name in log lines.
    pub fn name(self) -> &'static str {
        match self {
            Door::Line => "line",
            Door::Web => "web",
        }
    }
}

/// The WebSocket endpoints (DESIGN §1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `/echo` and `/`: every message back, unchanged.
    Echo,
    /// `/chat`: the hub's rooms, one line per text frame.
    Chat,
    /// `/clock`: a timestamp pushed every second.
    Clock,
    /// `/socket.io/`: Engine.IO's WebSocket transport, reached through
    /// its own route (`engineio.rs`), never by `from_path`.
    SocketIo,
    /// `/loop`: the event loop's own turns and connections, for the page's
    /// panels (see `watch.rs`).
    Loop,
}

impl Endpoint {
    /// The endpoint a request path names, if any.
    pub fn from_path(path: &str) -> Option<Endpoint> {
        match path {
            "/" | "/echo" => Some(Endpoint::Echo),
            "/chat" => Some(Endpoint::Chat),
            "/clock" => Some(Endpoint::Clock),
            "/loop" => Some(Endpoint::Loop),
            _ => None,
        }
    }

    /// Subprotocols this endpoint speaks, in the server's order of
    /// preference (the client's order decides, RFC 6455 §4.2.2).
    pub fn subprotocols(self) -> &'static [&'static str] {
        match self {
            Endpoint::Echo => &["echo-protocol"],
            Endpoint::Chat => &["chat"],
            Endpoint::Clock | Endpoint::Loop | Endpoint::SocketIo => &[],
        }
    }

    /// The endpoint's own path, for log lines (`/` is logged as `/echo`).
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Echo => "/echo",
            Endpoint::Chat => "/chat",
            Endpoint::Clock => "/clock",
            Endpoint::SocketIo => "/socket.io/",
            Endpoint::Loop => "/loop",
        }
    }
}

/// The transports whose cost the server measures (`GET /stats`), so the
/// page can compare them with real numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The line door.
    Telnet,
    /// The `/chat` WebSocket.
    WebSocket,
    /// `GET /events`.
    EventStream,
    /// `GET /longpoll`.
    LongPoll,
    /// `GET /poll`.
    Poll,
    /// `POST /send`.
    Send,
    /// socket.io at `/socket.io/`: its polls, posts and WebSockets.
    SocketIo,
    /// Everything else: the page, `/stats`, the echo and clock endpoints.
    Other,
}

impl Via {
    /// Every transport, in the order `Stats::via` is indexed.
    pub const ALL: [Via; 8] = [
        Via::Telnet,
        Via::WebSocket,
        Via::EventStream,
        Via::LongPoll,
        Via::Poll,
        Via::Send,
        Via::SocketIo,
        Via::Other,
    ];

    /// The transport's key in the `GET /stats` JSON.
    pub fn name(self) -> &'static str {
        match self {
            Via::Telnet => "telnet",
            Via::WebSocket => "websocket",
            Via::EventStream => "sse",
            Via::LongPoll => "longpoll",
            Via::Poll => "poll",
            Via::Send => "send",
            Via::SocketIo => "socketio",
            Via::Other => "other",
        }
    }
}

/// How a member's text is framed on its connection: decided here, once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    /// One WebSocket frame per message (RFC 6455 §5.6); with the window
    /// bits of permessage-deflate when it was agreed (RFC 7692), so the
    /// message goes compressed.
    Frame(Option<u8>),
    /// One line with CR LF (RFC 854).
    Line,
    /// Not sent at all: an HTTP member reads the room's history instead.
    None,
}

/// What speaks on a connection. Each kind is its own type in its own file.
pub(super) enum Protocol {
    /// The telnet door's chat: lines in, lines out (`line.rs`).
    Line(LineChat),
    /// The telnet door as an echo service, `--line-echo` (`line_echo.rs`).
    LineEcho(LineEcho),
    /// The web door, reading HTTP requests; a parked long poll is one of
    /// its states (`http.rs`, `long_poll.rs`). Boxed: a request being read
    /// needs far more room than an idle WebSocket or telnet line, and an
    /// enum is as large as its largest variant, so every connection
    /// would pay for it.
    Http(Box<Http>),
    /// Upgraded: frames in, frames out (`websocket.rs`).
    WebSocket(WebSocket),
    /// Streaming server-sent events (`event_stream.rs`).
    EventStream(EventStream),
}

impl Protocol {
    /// The name in `A -> B` log lines.
    pub fn name(&self) -> &'static str {
        match self {
            Protocol::Line(_) => "Line",
            Protocol::LineEcho(_) => "LineEcho",
            Protocol::Http(http) if http.is_parked() => "LongPoll",
            Protocol::Http(http) if http.polled_session().is_some() => "EngineIoPoll",
            Protocol::Http(http) if http.is_sending_file() => "HttpFile",
            Protocol::Http(_) => "HttpRequest",
            Protocol::WebSocket(ws) => match ws.endpoint {
                Endpoint::Echo => "WebSocket(/echo)",
                Endpoint::Chat => "WebSocket(/chat)",
                Endpoint::Clock => "WebSocket(/clock)",
                Endpoint::SocketIo => "WebSocket(/socket.io/)",
                Endpoint::Loop => "WebSocket(/loop)",
            },
            Protocol::EventStream(_) => "EventStream",
        }
    }

    /// The door a connection of this kind came through.
    pub fn door(&self) -> Door {
        match self {
            Protocol::Line(_) | Protocol::LineEcho(_) => Door::Line,
            Protocol::Http(_) | Protocol::WebSocket(_) | Protocol::EventStream(_) => Door::Web,
        }
    }

    /// How hub messages to this connection's member are framed.
    pub fn framing(&self) -> Framing {
        match self {
            Protocol::WebSocket(ws) => Framing::Frame(ws.deflate.map(|d| d.server_window_bits)),
            Protocol::Line(_) | Protocol::LineEcho(_) => Framing::Line,
            Protocol::Http(_) | Protocol::EventStream(_) => Framing::None,
        }
    }

    /// May new output be queued? Not after our WebSocket close frame
    /// (RFC 6455 §5.5.1: no data after Close).
    pub fn accepts_output(&self) -> bool {
        match self {
            Protocol::WebSocket(ws) => ws.is_open(),
            _ => true,
        }
    }

    /// Forgets the hub member (it has left), returning it.
    pub fn take_member(&mut self) -> Option<MemberId> {
        match self {
            Protocol::Line(line) => line.member.take(),
            Protocol::WebSocket(ws) => ws.role.take_member(),
            _ => None,
        }
    }

    /// Forgets the socket.io session this connection serves (a WebSocket
    /// carrying or probing it, or a poll parked for it), returning it.
    pub fn take_session(&mut self) -> Option<super::engineio::SessionKey> {
        match self {
            Protocol::WebSocket(ws) => ws.role.take_session(),
            Protocol::Http(http) => http.take_poll(),
            _ => None,
        }
    }

    /// Bytes from the peer. Returns how many were used and what next.
    /// (A `match` that only dispatches: inlined into the read path.)
    #[inline]
    pub fn on_input(&mut self, cx: &mut Context, input: &mut [u8]) -> (usize, Next) {
        match self {
            Protocol::Line(line) => line.on_input(cx, input),
            Protocol::LineEcho(echo) => echo.on_input(cx, input),
            Protocol::Http(http) => http.on_input(cx, input),
            Protocol::WebSocket(ws) => ws.on_input(cx, input),
            // An event stream only talks: whatever the peer sends is read
            // and dropped.
            Protocol::EventStream(_) => (input.len(), Next::Continue),
        }
    }

    /// The peer sent FIN.
    pub fn on_eof(&mut self, cx: &mut Context) -> Next {
        match self {
            Protocol::Line(line) => line.on_eof(cx),
            Protocol::LineEcho(echo) => echo.on_eof(cx),
            Protocol::Http(http) => http.on_eof(),
            Protocol::WebSocket(_) => {
                // RFC 6455 §7.1.5: closed without a close frame: 1006.
                Next::Close(super::close::Why::PeerClosed("without a close frame (1006)"))
            }
            Protocol::EventStream(_) => Next::Close(super::close::Why::PeerClosed("the event stream")),
        }
    }

    /// One of this connection's own timers fired.
    pub fn on_timer(&mut self, cx: &mut Context, timer: ConnTimer, last_heard: Instant) -> Next {
        match self {
            Protocol::Line(line) => line.on_timer(cx, timer, last_heard),
            Protocol::LineEcho(echo) if timer == ConnTimer::Idle => echo.on_timer(cx, last_heard),
            Protocol::LineEcho(_) => Next::Continue,
            Protocol::Http(http) => http.on_timer(cx, timer),
            Protocol::WebSocket(ws) => ws.on_timer(cx, timer, last_heard),
            Protocol::EventStream(stream) => stream.on_timer(cx, timer),
        }
    }
}

/// One accepted socket and all the loop knows about it. It lives in the
/// loop's slab, so its token stays the same until it is reaped.
pub(super) struct Connection {
    pub socket: TcpStream,
    /// Who is at the other end: the socket's peer, or the client behind
    /// a trusted proxy (`peer.rs`).
    pub peer: Peer,
    /// Tells this connection from an earlier one that had the same token,
    /// so a stale timer never touches the wrong connection. It wraps after
    /// four billion connections: a stale timer would have to outlive all
    /// of them, and land on the same token, to be mistaken.
    pub serial: u32,
    pub protocol: Protocol,
    pub close: Close,
    /// Why it is closing, once it is (see `Close`).
    pub why: Option<Box<Why>>,
    pub out: OutQueue,
    /// Last time the peer sent anything: heartbeats and idle timeouts.
    pub last_heard: Stamp,
    /// The output is over the soft limit: reading from the peer is paused
    /// meanwhile (see `Server::check_output_limits`).
    pub over_limit: bool,
    /// How many times the output has gone over the soft limit. The
    /// slow-reader timer set at one crossing carries its number, so it
    /// judges only a queue that has stayed over since (four bytes where a
    /// time would take sixteen).
    pub crossings: u32,
    /// Listed in the loop's to-flush list for this turn.
    pub dirty: bool,
    /// The peer sent FIN: a read returned 0.
    pub eof: bool,
    /// Which transport this connection's bytes are counted under.
    pub via: Via,
}

/// What the hub greets a new member with: where it connected. The server's
/// own address is asked of the socket here, once per member, rather than
/// kept in every connection for the whole of its life.
pub(super) fn welcome(socket: &TcpStream, peer: &Peer, over: &str) -> String {
    match socket.local_addr() {
        Ok(local) => format!("server {local}, you are {peer}{over}"),
        Err(_) => format!("you are {peer}{over}"),
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.protocol.name(), self.peer)
    }
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    /// An idle connection costs its slab entry and one timer in the heap,
    /// nothing else, so their sizes are the memory target: at most what
    /// uWebSockets needs per idle WebSocket (about 0.26 kB, `bench/compare.sh`
    /// scenario d). This keeps a careless field from undoing it.
    #[test]
    fn an_idle_connection_stays_small() {
        // 168 bytes in a release build; mio's socket carries a selector id
        // for its own checks in a debug build, 8 bytes more.
        let size = size_of::<super::Connection>();
        assert!(size <= 176, "Connection is {size} bytes");
        // Each state is as large as the largest: the rare, large parts (a
        // request being read, a message in progress, a closing reason) are
        // boxed so an idle WebSocket or telnet line does not pay for them.
        let protocol = size_of::<super::Protocol>();
        assert!(protocol <= 48, "Protocol is {protocol} bytes");
        let websocket = size_of::<super::WebSocket>();
        assert!(websocket <= 40, "WebSocket is {websocket} bytes");
        let close = size_of::<super::super::close::Close>();
        assert_eq!(close, 1, "Close is {close} bytes");
        // A timer entry is a `Stamp`, a sequence number and this.
        let timer = size_of::<super::super::timers::Timer>();
        assert!(timer <= 16, "Timer is {timer} bytes");
    }
}
