//! The loop's counters, for `/stats`, `GET /stats` and `GET /metrics`.
//!
//! Counting is a few additions on paths the loop takes anyway: nothing is
//! measured that would not be there without the counters, and the clock
//! is read for the loop's own sake (once before each sleep, once after).

use super::close::Why;
use super::conn::{Endpoint, Protocol, Via};
use super::context::Shared;
use crate::http::Status;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// What the loop has counted since it started. Gauges (`usize`) say how
/// many connections are in each state now; counters (`u64`) only grow.
#[derive(Debug)]
pub struct Stats {
    /// When the server started; uptime is measured from here.
    pub started: Instant,
    /// Telnet connections on the line door, open now.
    pub line: usize,
    /// Web-port connections still speaking HTTP (not yet upgraded).
    pub http: usize,
    /// WebSockets open on `/echo` (or `/`).
    pub ws_echo: usize,
    /// WebSockets open on `/chat`.
    pub ws_chat: usize,
    /// WebSockets open on `/clock`.
    pub ws_clock: usize,
    /// WebSockets open on `/socket.io/` (carrying or probing a session).
    pub ws_socketio: usize,
    /// WebSockets open on `/loop`: the page's loop panels.
    pub ws_loop: usize,
    /// Connections on their way out: flushing, then draining the peer.
    pub closing: usize,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Connections turned away at accept (at the connection limit or
    /// shutting down), told why and shut.
    pub refused: u64,
    /// HTTP requests parsed on the web port.
    pub http_requests: u64,
    /// Messages received from clients: telnet lines, WebSocket messages,
    /// lines of a `POST /send`.
    pub messages_in: u64,
    /// Messages queued to clients: chat lines delivered and echoes.
    pub messages_out: u64,
    /// Bytes read from peers since start.
    pub bytes_in: u64,
    /// Bytes written to peers since start.
    pub bytes_out: u64,
    /// Per transport, indexed like `Via::ALL`.
    pub via: [ViaStats; Via::ALL.len()],
    /// `GET /events` streams open now (Server-Sent Events).
    pub event_streams: usize,
    /// Connections accepted, by door (`Door as usize`).
    pub accepted_by_door: [u64; 2],
    /// Connections freed, by the reason they closed, indexed like
    /// `Why::REASONS`.
    pub closes: [u64; Why::REASONS.len()],
    /// HTTP refusals sent, by status: `refusals[status - 400]`, 400 to 599.
    pub refusals: [u64; 200],
    /// How long the loop's turns took, from waking to sleeping again.
    pub turns: TurnTimes,
    /// Requests whose client a trusted proxy named (`--trust-proxy`).
    pub forwarded: u64,
    /// Requests that carried `X-Forwarded-For` from a peer not trusted to
    /// send it: the header was ignored.
    pub forwarded_ignored: u64,
    /// Requests from a trusted proxy whose `X-Forwarded-For` had an entry
    /// that is no address: that entry was not believed.
    pub forwarded_malformed: u64,
    /// WebSockets that agreed to permessage-deflate, since start.
    pub deflate_negotiated: u64,
    /// permessage-deflate offers declined (and the connection carried on
    /// without the extension), since start.
    pub deflate_declined: u64,
}

/// A histogram of loop-turn durations: how many turns took at most each
/// bound, the time of all of them, and how many there were. Recording one
/// is a comparison per bound and three additions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TurnTimes {
    /// Turns in each bucket (not cumulative): `counts[i]` took at most
    /// `TURN_BOUNDS[i]` and more than the bound before; the last counts
    /// the turns over every bound.
    pub counts: [u64; TURN_BOUNDS.len() + 1],
    /// All turns together.
    pub sum: Duration,
    /// Turns recorded.
    pub count: u64,
}

/// The histogram's bucket bounds, from 10 µs (an idle turn that answers
/// one message) to a second (a turn that something held up badly).
pub const TURN_BOUNDS: [Duration; 11] = [
    Duration::from_micros(10),
    Duration::from_micros(50),
    Duration::from_micros(100),
    Duration::from_micros(500),
    Duration::from_millis(1),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(1),
];

impl TurnTimes {
    /// One turn took `took`.
    pub fn record(&mut self, took: Duration) {
        let bucket = TURN_BOUNDS
            .iter()
            .position(|&bound| took <= bound)
            .unwrap_or(TURN_BOUNDS.len());
        self.counts[bucket] += 1;
        self.sum += took;
        self.count += 1;
    }
}

/// What permessage-deflate did (RFC 7692), kept with the loop's
/// compressor (`compression.rs`) and shown by `GET /stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeflateStats {
    /// Times the compressor ran. A broadcast to a room of any size counts
    /// once: that is the point of sharing one compressor.
    pub compressions: u64,
    /// Messages sent compressed, each recipient counted.
    pub messages_compressed: u64,
    /// Payload bytes those messages did not need on the wire.
    pub bytes_saved: u64,
    /// Compressed messages received and inflated.
    pub inflated: u64,
    /// Their payloads as they came, and once inflated.
    pub compressed_in_bytes: u64,
    pub inflated_bytes: u64,
    /// Connections holding an inflater of their own now (clients allowed
    /// to keep their context, `--deflate-client-context`).
    pub own_inflaters: usize,
}

impl DeflateStats {
    /// One message sent compressed: `len` bytes became `deflated`.
    pub fn count_sent(&mut self, len: usize, deflated: usize) {
        self.messages_compressed += 1;
        self.bytes_saved += len.saturating_sub(deflated) as u64;
    }
}

/// What one transport cost: requests made, bytes on the wire both ways
/// (HTTP heads included), and chat lines delivered with them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViaStats {
    /// HTTP requests made over this transport.
    pub requests: u64,
    /// Bytes read, HTTP heads included.
    pub bytes_in: u64,
    /// Bytes written, HTTP heads included.
    pub bytes_out: u64,
    /// Chat lines delivered to clients over this transport.
    pub delivered: u64,
    /// Messages received over this transport (see `Stats::messages_in`).
    pub messages_in: u64,
    /// Messages queued over this transport (see `Stats::messages_out`).
    pub messages_out: u64,
}

impl Stats {
    /// All counters at zero, with the clock started at `now`.
    pub fn new(now: Instant) -> Stats {
        Stats {
            started: now,
            line: 0,
            http: 0,
            ws_echo: 0,
            ws_chat: 0,
            ws_socketio: 0,
            ws_clock: 0,
            ws_loop: 0,
            closing: 0,
            accepted: 0,
            refused: 0,
            http_requests: 0,
            messages_in: 0,
            messages_out: 0,
            bytes_in: 0,
            bytes_out: 0,
            via: [ViaStats::default(); Via::ALL.len()],
            event_streams: 0,
            accepted_by_door: [0; 2],
            closes: [0; Why::REASONS.len()],
            refusals: [0; 200],
            turns: TurnTimes::default(),
            forwarded: 0,
            forwarded_ignored: 0,
            forwarded_malformed: 0,
            deflate_negotiated: 0,
            deflate_declined: 0,
        }
    }

    /// `n` messages received over `via`.
    pub fn message_in(&mut self, via: Via, n: u64) {
        self.messages_in += n;
        self.via(via).messages_in += n;
    }

    /// `n` messages queued to a client over `via`.
    pub fn message_out(&mut self, via: Via, n: u64) {
        self.messages_out += n;
        self.via(via).messages_out += n;
    }

    /// An HTTP answer went out: counted if it refused.
    pub fn answered(&mut self, status: Status) {
        if let Some(count) = (status.0 as usize)
            .checked_sub(400)
            .and_then(|i| self.refusals.get_mut(i))
        {
            *count += 1;
        }
    }

    /// The counters for one transport.
    pub fn via(&mut self, via: Via) -> &mut ViaStats {
        &mut self.via[via as usize]
    }

    /// Connections open now, in every state.
    pub fn open(&self) -> usize {
        self.line + self.http + self.websocket_total() + self.event_streams + self.closing
    }

    /// Open WebSockets on every endpoint.
    pub fn websocket_total(&self) -> usize {
        self.ws_echo + self.ws_chat + self.ws_clock + self.ws_loop + self.ws_socketio
    }

    pub(super) fn connected(&mut self, protocol: &Protocol) {
        self.accepted += 1;
        self.accepted_by_door[protocol.door() as usize] += 1;
        *self.count(protocol) += 1;
    }

    pub(super) fn protocol_changed(&mut self, old: &Protocol, new: &Protocol) {
        *self.count(old) -= 1;
        *self.count(new) += 1;
    }

    /// A connection began to close: from now on it counts as closing.
    pub(super) fn closing_started(&mut self, protocol: &Protocol) {
        *self.count(protocol) -= 1;
        self.closing += 1;
    }

    /// A closed connection was freed, for this reason.
    pub(super) fn disconnected(&mut self, why: Option<&Why>) {
        self.closing -= 1;
        self.closes[why.map_or(Why::UNKNOWN, Why::reason_index)] += 1;
    }

    fn count(&mut self, protocol: &Protocol) -> &mut usize {
        match protocol {
            Protocol::Line(_) | Protocol::LineEcho(_) => &mut self.line,
            Protocol::Http(_) => &mut self.http,
            Protocol::WebSocket(ws) => match ws.endpoint {
                Endpoint::Echo => &mut self.ws_echo,
                Endpoint::Chat => &mut self.ws_chat,
                Endpoint::Clock => &mut self.ws_clock,
                Endpoint::SocketIo => &mut self.ws_socketio,
                Endpoint::Loop => &mut self.ws_loop,
            },
            Protocol::EventStream(_) => &mut self.event_streams,
        }
    }
}

/// `/stats` in chat: one line.
pub(super) fn line(shared: &Shared) -> String {
    let hub = shared.hub.stats();
    let s = &shared.stats;
    format!(
        "* stats: {} (telnet {}, websocket {}, http {}), {} in {}, \
messages in {} out {}, bytes in {} out {}, up {}s",
        counted(s.open(), "connection"),
        s.line,
        s.websocket_total(),
        s.http,
        counted(hub.members, "member"),
        counted(hub.rooms, "room"),
        s.messages_in,
        s.messages_out,
        s.bytes_in,
        s.bytes_out,
        shared.now.duration_since(s.started).as_secs()
    )
}

/// `1 room`, `2 rooms`.
fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `GET /stats`: the same numbers as JSON, written by hand, and the
/// address of the client that asked, as the server sees it (behind a
/// trusted proxy, the one the proxy named).
pub(super) fn json(shared: &Shared, client: IpAddr) -> String {
    let hub = shared.hub.stats();
    let s = &shared.stats;
    format!(
        concat!(
            "{{\"connections\":{{\"total\":{},\"telnet\":{},\"http\":{},\"closing\":{},",
            "\"websocket\":{{\"echo\":{},\"chat\":{},\"clock\":{},\"loop\":{},\"socketio\":{}}}}},",
            "\"accepted\":{},\"refused\":{},\"http_requests\":{},",
            "\"hub\":{{\"members\":{},\"rooms\":{},\"messages\":{}}},",
            "\"messages\":{{\"in\":{},\"out\":{}}},\"bytes\":{{\"in\":{},\"out\":{}}},",
            "\"http_members\":{},\"socketio_sessions\":{},\"event_streams\":{},\"transports\":{{{}}},",
            "\"client\":\"{}\",\"forwarded\":{{\"trusted\":{},\"ignored\":{},\"malformed\":{}}},",
            "\"permessage_deflate\":{},\"relay\":{},",
            "\"uptime_seconds\":{}}}\n"
        ),
        s.open(),
        s.line,
        s.http,
        s.closing,
        s.ws_echo,
        s.ws_chat,
        s.ws_clock,
        s.ws_loop,
        s.ws_socketio,
        s.accepted,
        s.refused,
        s.http_requests,
        hub.members,
        hub.rooms,
        hub.messages,
        s.messages_in,
        s.messages_out,
        s.bytes_in,
        s.bytes_out,
        shared.members.len(),
        shared.sio.len(),
        s.event_streams,
        transports(s),
        client,
        s.forwarded,
        s.forwarded_ignored,
        s.forwarded_malformed,
        deflate(shared),
        relay(shared),
        shared.now.duration_since(s.started).as_secs()
    )
}

/// The relay to other instances (`--redis`), or `null` without one.
fn relay(shared: &Shared) -> String {
    let Some(r) = &shared.relay else {
        return "null".into();
    };
    format!(
        concat!(
            "{{\"instance\":{},\"writer\":\"{}\",\"reader\":\"{}\",\"queued\":{},",
            "\"added\":{},\"applied\":{},\"duplicates\":{},\"missed\":{},\"dropped\":{}}}"
        ),
        crate::http::json_string(&r.instance),
        r.writer.name(),
        r.reader.name(),
        r.queued,
        r.stats.added,
        r.stats.applied,
        r.stats.duplicates,
        r.stats.missed,
        r.stats.dropped
    )
}

/// permessage-deflate: who agreed, what was compressed, what it saved.
fn deflate(shared: &Shared) -> String {
    let (s, d) = (&shared.stats, &shared.compression.stats);
    format!(
        concat!(
            "{{\"enabled\":{},\"threshold\":{},\"negotiated\":{},\"declined\":{},\"compressions\":{},",
            "\"messages_compressed\":{},\"bytes_saved\":{},\"inflated\":{},",
            "\"compressed_in_bytes\":{},\"inflated_bytes\":{},\"own_inflaters\":{}}}"
        ),
        shared.config.permessage_deflate,
        shared.config.deflate_threshold,
        s.deflate_negotiated,
        s.deflate_declined,
        d.compressions,
        d.messages_compressed,
        d.bytes_saved,
        d.inflated,
        d.compressed_in_bytes,
        d.inflated_bytes,
        d.own_inflaters
    )
}

/// Per transport: requests, bytes in and out, lines delivered.
fn transports(stats: &Stats) -> String {
    Via::ALL
        .iter()
        .map(|&via| {
            let v = stats.via[via as usize];
            format!(
                "\"{}\":{{\"requests\":{},\"bytes_in\":{},\"bytes_out\":{},\"delivered\":{}}}",
                via.name(),
                v.requests,
                v.bytes_in,
                v.bytes_out,
                v.delivered
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}
