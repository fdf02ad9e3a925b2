//! One connection: its socket, its state machine, its output.

use crate::http::RequestReader;
use crate::hub::MemberId;
use crate::line::LineCodec;
use crate::outq::OutQueue;
use crate::ws::Decoder;
use mio::net::TcpStream;
use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

/// Which listener a connection came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Door {
    /// The line service (telnet).
    Line,
    /// The web port (HTTP, then maybe WebSocket).
    Web,
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
}

impl Endpoint {
    /// The endpoint a request path names, if any.
    pub fn from_path(path: &str) -> Option<Endpoint> {
        match path {
            "/" | "/echo" => Some(Endpoint::Echo),
            "/chat" => Some(Endpoint::Chat),
            "/clock" => Some(Endpoint::Clock),
            _ => None,
        }
    }

    /// Subprotocols this endpoint speaks, in the server's order of
    /// preference (the client's order decides, RFC 6455 §4.2.2).
    pub fn subprotocols(self) -> &'static [&'static str] {
        match self {
            Endpoint::Echo => &["echo-protocol"],
            Endpoint::Chat => &["chat"],
            Endpoint::Clock => &[],
        }
    }

    /// The endpoint's own path, for log lines (`/` is logged as `/echo`).
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Echo => "/echo",
            Endpoint::Chat => "/chat",
            Endpoint::Clock => "/clock",
        }
    }
}

/// The WebSocket close handshake, from our side (RFC 6455 §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseHandshake {
    /// Messages flow both ways.
    Open,
    /// We sent a close frame and wait for the peer's (§7.1.2); data frames
    /// that still arrive are read and dropped.
    CloseSent,
}

/// An open WebSocket.
#[derive(Debug)]
pub struct WebSocket {
    pub endpoint: Endpoint,
    pub decoder: Decoder,
    pub close: CloseHandshake,
    /// When we pinged a silent peer, if its answer is still due.
    pub ping_sent: Option<Instant>,
}

/// An HTTP connection between requests, or reading one.
#[derive(Debug)]
pub struct Http {
    pub reader: RequestReader,
    /// The next request head must be complete by then.
    pub deadline: Instant,
    /// A long poll waiting for a message (the connection's current
    /// request: HTTP/1.1 answers in order, so later requests wait too).
    pub parked: Option<Parked>,
    /// Bytes of pipelined requests that arrived while parked.
    pub stash: Vec<u8>,
}

/// A parked long poll (`GET /longpoll`).
#[derive(Debug)]
pub struct Parked {
    /// The HTTP member (its key in the loop's table).
    pub member: usize,
    /// The room and line number the poller asked about.
    pub room: String,
    pub since: u64,
    /// Answered empty at this time if nothing came.
    pub deadline: Instant,
}

/// A server-sent event stream (`GET /events`): a response that never
/// ends, one event per chat line.
#[derive(Debug)]
pub struct EventStream {
    pub member: usize,
    /// The room being streamed, and the last line number sent from it.
    pub room: String,
    pub last_seq: u64,
}

/// A connection on its way out: its last bytes are being written, then
/// its write side is shut (FIN), then whatever the peer still sends is read
/// and dropped until it closes too or the deadline passes. Closing
/// gracefully like this, rather than at once, keeps the kernel from
/// answering unread bytes with a reset that could destroy our last words
/// (the close frame, the error line) before the peer reads them.
#[derive(Debug)]
pub struct Closing {
    /// Why, for the log line when it is finally freed.
    pub reason: String,
    /// Our FIN is sent.
    pub fin_sent: bool,
}

/// The connection's state machine (DESIGN §3). It changes in one place,
/// `Server::set_state`, which logs every transition.
#[derive(Debug)]
pub enum State {
    /// The telnet door: lines in, lines out.
    Line(LineCodec),
    /// The web door, reading HTTP requests.
    Http(Http),
    /// Upgraded: frames in, frames out.
    WebSocket(WebSocket),
    /// Streaming server-sent events.
    EventStream(EventStream),
    /// Saying goodbye.
    Closing(Closing),
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::Line(_) => "Line",
            State::Http(_) => "HttpRequest",
            State::WebSocket(ws) => match ws.endpoint {
                Endpoint::Echo => "WebSocket(/echo)",
                Endpoint::Chat => "WebSocket(/chat)",
                Endpoint::Clock => "WebSocket(/clock)",
            },
            State::EventStream(_) => "EventStream",
            State::Closing(_) => "Closing",
        }
    }
}

/// One accepted socket and all the loop knows about it. It lives in the
/// loop's slab, so its token stays the same until it is reaped.
pub struct Connection {
    pub socket: TcpStream,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// Tells this connection from an earlier one that had the same token,
    /// so a stale timer never touches the wrong connection.
    pub serial: u64,
    pub door: Door,
    pub state: State,
    pub out: OutQueue,
    /// The hub member this connection carries, on the chat doors.
    pub member: Option<MemberId>,
    /// Last time the peer sent anything: heartbeats and idle timeouts.
    pub last_heard: Instant,
    /// When the output first went over the soft limit, while it stays so.
    /// Reading from the peer is paused meanwhile (see
    /// `Server::check_output_limits`).
    pub over_limit_since: Option<Instant>,
    /// Listed in the loop's to-flush list for this turn.
    pub dirty: bool,
    /// The peer has closed its side (read returned 0).
    pub eof: bool,
    /// Which transport this connection's bytes are counted under.
    pub via: Via,
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
    /// Everything else: the page, `/stats`, the echo and clock endpoints.
    Other,
}

impl Via {
    /// Every transport, in the order `Stats::via` is indexed.
    pub const ALL: [Via; 7] = [
        Via::Telnet,
        Via::WebSocket,
        Via::EventStream,
        Via::LongPoll,
        Via::Poll,
        Via::Send,
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
            Via::Other => "other",
        }
    }
}

impl Connection {
    /// May new output be queued? Not once we are saying goodbye, nor after
    /// our close frame (RFC 6455 §5.5.1: no data after Close).
    pub fn accepts_output(&self) -> bool {
        match &self.state {
            State::Closing(_) => false,
            State::WebSocket(ws) => ws.close == CloseHandshake::Open,
            _ => true,
        }
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.state.name(), self.peer)
    }
}

#[cfg(test)]
mod tests {
    /// An idle connection costs its slab entry and nothing else, so the
    /// entry's size is most of the memory target (under 1 kB per idle
    /// connection). This keeps a careless field from doubling it.
    #[test]
    fn an_idle_connection_stays_small() {
        let size = std::mem::size_of::<super::Connection>();
        assert!(size <= 512, "Connection is {size} bytes");
    }
}
