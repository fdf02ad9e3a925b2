//! socket.io at `/socket.io/`: Engine.IO 4 sessions on the loop, and
//! Socket.IO 5 over them into the hub.
//!
//! A *session* is one socket.io client, named by its `sid`. It outlives
//! any one connection: over polling, each GET (a long poll, parked until
//! there is something to say) and each POST (the client's packets) is a
//! request of its own, on whatever keep-alive connection the browser
//! picks. Over WebSocket one connection carries it. So sessions live in a
//! table of their own ([`Sessions`]), like the HTTP chat members, and each
//! knows its *carrier*: polling (and the GET parked for it, if any) or the
//! WebSocket.
//!
//! ```text
//!   GET  /socket.io/?EIO=4&transport=polling           → 0{"sid":"…",…}   a session
//!   POST /socket.io/?EIO=4&transport=polling&sid=…     40                 the client's packets
//!   GET  /socket.io/?EIO=4&transport=polling&sid=…     40{"sid":"…"}      parked until there is output
//!   GET  /socket.io/?EIO=4&transport=websocket&sid=…   (101)              the upgrade:
//!        ws → 2probe   ws ← 3probe   poll ← 6   ws → 5                    the WebSocket carries it now
//! ```
//!
//! Everything a session says goes into its queue first
//! ([`Sessions::send`]); after each step of the loop, [`Server::flush_sessions`]
//! moves the queues to the carriers: frames onto the WebSocket, or one
//! response (packets joined by `\x1e`) to the parked GET. A broadcast to a
//! session on WebSocket skips the queue (`Server::sio_broadcast`).
//!
//! The heartbeat is the server's (EIO §"Heartbeat"): a ping (`2`) every
//! `--sio-ping-interval`, and a session that has not answered (`3`) within
//! `--sio-ping-timeout` is closed. So is one that has not CONNECTed within
//! `--sio-connect-timeout`; a probe that has not finished the upgrade
//! within `--sio-upgrade-timeout` is closed, and the session stays on
//! polling. A session's deadlines share one timer in the loop's heap
//! ([`Timer::Session`]), which looks at them all when it fires.

use super::close::Why;
use super::conn::{Protocol, Via};
use super::context::{Context, Link, Next, Shared};
use super::http::Http;
use super::timers::Timer;
use super::websocket::WebSocket;
use super::Server;
use crate::engineio::{self, ErrorCode, Packet, PacketType, TransportName};
use crate::http::{Request, Response, Status};
use crate::hub::{MemberId, Transport};
use crate::origin::Purpose;
use crate::socketio;
use crate::ws::{decoder::MessageKind, CloseCode};
use mio::Token;
use slab::Slab;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

/// Most packets one polling POST may carry. The reference client sends
/// what it has buffered, a handful at a time.
const MAX_PACKETS_PER_POST: usize = 256;

/// The event the tutorials' clients emit, and the one they listen for.
const CLIENT_EVENT: &str = "message";
const SERVER_EVENT: &str = "servermessage";

/// A session's name in the loop: its slot and which of the slot's
/// occupants it is, so a stale timer or connection can never reach the
/// session that took the slot next.
///
/// Sixteen bits of generation are enough, where an HTTP member's key has
/// thirty-two: every holder of a session's key lets go of it when the
/// session ends (its WebSocket and probe are closed, its parked poll is
/// answered, its member leaves). Only a timer may outlive it, and a stale
/// timer only makes a session look at its deadlines again. Small, because
/// a WebSocket carries one ([`SessionKey::parts`]), and a WebSocket's size
/// is every idle connection's cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SessionKey {
    slot: u32,
    generation: u16,
}

impl SessionKey {
    /// The key as two numbers, for a WebSocket to keep inline.
    pub fn parts(self) -> (u32, u16) {
        (self.slot, self.generation)
    }

    /// The key again from its parts.
    pub fn from_parts(slot: u32, generation: u16) -> SessionKey {
        SessionKey { slot, generation }
    }
}

/// What a parked poll's answer must carry, kept until it is answered.
#[derive(Debug)]
pub(super) struct PollReply {
    /// Whether the request allowed keep-alive.
    pub keep_alive: bool,
    /// The page's origin, for `Access-Control-Allow-Origin` (see
    /// `OriginPolicy::cors_origin`).
    pub allow_origin: Option<Box<str>>,
}

/// What carries a session's packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Carrier {
    /// HTTP long polling; the GET parked for it, if one is.
    Polling { get: Option<Token> },
    /// A WebSocket connection.
    WebSocket(Token),
}

/// Where the heartbeat stands (EIO §"Heartbeat").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Heartbeat {
    /// The next ping goes out at this time.
    PingAt(Instant),
    /// A ping is out; without a pong by this time the session is closed.
    PongBy(Instant),
}

/// Why a session ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Ending {
    /// No pong within the ping timeout.
    PingTimeout,
    /// No CONNECT within `--sio-connect-timeout`.
    NoConnect(Duration),
    /// The client sent a close packet (`1`).
    ClientClosed,
    /// The client broke the protocol, or sent what is refused here; the
    /// WebSocket close code for it.
    Refused(CloseCode, String),
    /// Its queue passed `--max-output`: nobody is reading it.
    TooSlow,
    /// The member said `/quit`.
    Quit,
    /// The connection carrying it (a WebSocket, or a parked poll) closed
    /// first.
    CarrierGone,
    /// A second GET while one was parked (EIO §"HTTP long-polling").
    Overlap,
}

impl Ending {
    /// What the carrying WebSocket is closed with.
    fn why(&self, ping_timeout: Duration) -> Why {
        match self {
            Ending::PingTimeout => Why::NoPong(ping_timeout),
            Ending::NoConnect(limit) => Why::Violation(
                CloseCode::POLICY_VIOLATION,
                format!("no Socket.IO CONNECT within {limit:?}"),
            ),
            Ending::ClientClosed => Why::PeerClosed("the Engine.IO session (close packet)"),
            Ending::Refused(code, text) => Why::Violation(*code, text.clone()),
            Ending::TooSlow => Why::TooSlow,
            Ending::Quit => Why::Quit,
            Ending::CarrierGone | Ending::Overlap => Why::MemberLeft,
        }
    }
}

/// An upgrade under way (EIO §"Upgrade"): a WebSocket that asked to take
/// the session over, until it sends `5` or goes away.
#[derive(Clone, Copy, Debug)]
struct Upgrade {
    /// The WebSocket.
    probe: Token,
    /// It is closed if `5` has not come by then (`--sio-upgrade-timeout`).
    by: Instant,
    /// It has answered `3probe`, and `5` has not come: the client waits for
    /// its poll to return before it sends `5`. Every poll is answered at
    /// once until then, `6` if there is nothing else: the client may have
    /// sent a new GET before it read `3probe` (the reference server writes
    /// a noop to a waiting poll every 100 ms while upgrading, for the same
    /// reason).
    probed: bool,
}

/// One Engine.IO session, and the Socket.IO socket over it.
#[derive(Debug)]
struct Session {
    generation: u16,
    sid: Rc<str>,
    carrier: Carrier,
    /// The upgrade under way, if one is.
    upgrade: Option<Upgrade>,
    /// Encoded Engine.IO packets waiting for the carrier, and their bytes.
    queue: VecDeque<Rc<[u8]>>,
    queued: usize,
    heartbeat: Heartbeat,
    /// The earliest time a timer for this session is in the heap.
    armed: Option<Instant>,
    /// The hub member, once the client has CONNECTed to `/`.
    member: Option<MemberId>,
    /// Until the first CONNECT: when the session is closed without one.
    connect_by: Option<Instant>,
    /// The name its `{name, msg}` messages last asked for: asked of the
    /// hub (`/nick`) once, not with every line.
    asked_name: Option<String>,
    /// The `/time` clock: its generation and next tick.
    clock: Option<(u32, Instant)>,
    /// Why it is ending, once it is: carried out by `flush_sessions`.
    ending: Option<Ending>,
    /// Listed in `Sessions::ready`.
    listed: bool,
}

impl Session {
    /// Whether an upgrade has answered `3probe`: every poll is answered
    /// at once until `5` (see [`Upgrade::probed`]).
    fn is_probed(&self) -> bool {
        self.upgrade.is_some_and(|u| u.probed)
    }
}

/// The live sessions, by key and by sid.
pub(super) struct Sessions {
    slots: Slab<Session>,
    by_sid: HashMap<Rc<str>, SessionKey>,
    generations: u16,
    ids: SidSource,
    /// Sessions with output for their carrier, or ending: seen to after
    /// each step of the loop (`Server::flush_sessions`).
    ready: Vec<SessionKey>,
    /// Polls parked for sessions that have upgraded since: each is
    /// answered `6` (EIO §"Upgrade").
    pub retired_polls: Vec<(Token, SessionKey)>,
}

impl Sessions {
    /// An empty table, with a fresh key for its session ids.
    pub fn new() -> std::io::Result<Sessions> {
        Ok(Sessions {
            slots: Slab::new(),
            by_sid: HashMap::new(),
            generations: 0,
            ids: SidSource::new()?,
            ready: Vec::new(),
            retired_polls: Vec::new(),
        })
    }

    /// Sessions open now.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    fn get(&self, key: SessionKey) -> Option<&Session> {
        self.slots
            .get(key.slot as usize)
            .filter(|s| s.generation == key.generation)
    }

    fn get_mut(&mut self, key: SessionKey) -> Option<&mut Session> {
        self.slots
            .get_mut(key.slot as usize)
            .filter(|s| s.generation == key.generation)
    }

    fn by_sid(&self, sid: &str) -> Option<SessionKey> {
        self.by_sid.get(sid).copied()
    }

    fn insert(&mut self, carrier: Carrier, heartbeat: Heartbeat, connect_by: Instant) -> SessionKey {
        self.generations = self.generations.wrapping_add(1);
        let sid: Rc<str> = Rc::from(self.ids.next());
        let slot = self.slots.insert(Session {
            generation: self.generations,
            sid: sid.clone(),
            carrier,
            upgrade: None,
            queue: VecDeque::new(),
            queued: 0,
            heartbeat,
            armed: None,
            member: None,
            connect_by: Some(connect_by),
            asked_name: None,
            clock: None,
            ending: None,
            listed: false,
        });
        let key = SessionKey {
            // Bounded by `--sio-max-sessions`, so it fits.
            slot: u32::try_from(slot).unwrap_or(u32::MAX),
            generation: self.generations,
        };
        self.by_sid.insert(sid, key);
        key
    }

    fn remove(&mut self, key: SessionKey) -> Option<Session> {
        self.get(key)?;
        let session = self.slots.remove(key.slot as usize);
        self.by_sid.remove(&session.sid);
        Some(session)
    }

    fn list(&mut self, key: SessionKey) {
        if let Some(session) = self.get_mut(key) {
            if !session.listed {
                session.listed = true;
                self.ready.push(key);
            }
        }
    }

    /// Queues one encoded Engine.IO packet for a session's carrier. A
    /// queue over `limit` bytes means nobody reads it: the session ends.
    pub fn send(&mut self, key: SessionKey, packet: Rc<[u8]>, limit: usize) {
        let Some(session) = self.get_mut(key) else {
            return;
        };
        if session.ending.is_some() {
            return;
        }
        session.queued += packet.len();
        session.queue.push_back(packet);
        if session.queued > limit {
            log::info!(
                "socket.io session {}: {} bytes queued for a client that does not take them \
                 (--max-output {limit}); ending it",
                session.sid,
                session.queued
            );
            session.ending = Some(Ending::TooSlow);
            session.queue.clear();
        }
        self.list(key);
    }

    /// The session is to end: carried out by `Server::flush_sessions`.
    pub fn end(&mut self, key: SessionKey, ending: Ending) {
        if let Some(session) = self.get_mut(key) {
            session.ending.get_or_insert(ending);
            self.list(key);
        }
    }
}

/// Session ids nobody can guess, never the same twice.
///
/// A key of 256 bits is drawn once, at start, from the operating system's
/// random source (ring's `SystemRandom`: `getrandom(2)`); each id is the
/// HMAC-SHA-256 under that key of a counter, cut to 120 bits and written
/// in base64url (20 characters, as the reference server's are). The counter
/// never repeats, so no two ids come from the same input; guessing one
/// means breaking HMAC. std's `RandomState` would not do: its SipHash keys
/// are random, but SipHash is not meant to stand against someone who sees
/// many of its outputs.
struct SidSource {
    key: ring::hmac::Key,
    counter: u64,
}

impl SidSource {
    fn new() -> std::io::Result<SidSource> {
        use ring::rand::SecureRandom;
        let mut secret = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| std::io::Error::other("the operating system's random source failed"))?;
        Ok(SidSource {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret),
            counter: 0,
        })
    }

    fn next(&mut self) -> String {
        use base64::Engine as _;
        self.counter += 1;
        let tag = ring::hmac::sign(&self.key, &self.counter.to_be_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag.as_ref()[..15])
    }
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sessions({})", self.slots.len())
    }
}

/// An Engine.IO error answer: 400 (403 for `Forbidden`) and its JSON, with
/// the reference message or a more precise one.
fn error_response(code: ErrorCode, detail: Option<&str>) -> Response {
    let body = match detail {
        Some(detail) => format!(
            "{{\"code\":{},\"message\":{}}}",
            code.code(),
            serde_json::Value::String(detail.to_string())
        ),
        None => code.body(),
    };
    Response::new(code.status())
        .header("Content-Type", "application/json")
        .header("Cache-Control", "no-store")
        .body(body.into_bytes())
}

/// A polling answer: packets as text (EIO §4).
fn packets_response(body: Vec<u8>) -> Response {
    Response::new(Status::OK)
        .header("Content-Type", "text/plain; charset=UTF-8")
        .header("Cache-Control", "no-store")
        .body(body)
}

/// Wraps a Socket.IO packet in an Engine.IO message: `4` and the text.
fn message(socketio: &str) -> Rc<[u8]> {
    let mut bytes = Vec::with_capacity(socketio.len() + 1);
    engineio::encode_packet(&mut bytes, PacketType::Message, socketio);
    Rc::from(bytes)
}

/// A packet with no data: `2`, `6`, `1`.
fn bare(kind: PacketType) -> Rc<[u8]> {
    Rc::from([kind.byte()].as_slice())
}

impl Shared {
    fn handshake(&self, sid: &str, upgrades: &[&str]) -> String {
        engineio::Handshake {
            sid,
            upgrades,
            ping_interval: self.config.sio_ping_interval.as_millis() as u64,
            ping_timeout: self.config.sio_ping_timeout.as_millis() as u64,
            max_payload: self.config.sio_max_payload(),
        }
        .open_packet()
    }

    /// A new session, its heartbeat started and its CONNECT awaited.
    fn open_session(&mut self, carrier: Carrier) -> SessionKey {
        let ping_at = self.now + self.config.sio_ping_interval;
        let connect_by = self.now + self.config.sio_connect_timeout;
        let key = self.sio.insert(carrier, Heartbeat::PingAt(ping_at), connect_by);
        self.arm_session(key);
        key
    }

    /// Makes sure a timer will fire by the session's nearest deadline.
    /// One fire looks at every deadline (`Server::session_timer`), so a
    /// timer already due earlier is enough.
    fn arm_session(&mut self, key: SessionKey) {
        let Some(session) = self.sio.get_mut(key) else {
            return;
        };
        let mut due = match session.heartbeat {
            Heartbeat::PingAt(at) | Heartbeat::PongBy(at) => at,
        };
        let deadlines = [
            session.clock.map(|(_, tick)| tick),
            session.connect_by,
            session.upgrade.map(|u| u.by),
        ];
        for at in deadlines.into_iter().flatten() {
            due = due.min(at);
        }
        if session.armed.is_some_and(|armed| armed <= due) {
            return;
        }
        session.armed = Some(due);
        self.timers.schedule(due, Timer::Session(key));
    }

    /// Queues an encoded packet for a session (see [`Sessions::send`]).
    fn sio_send(&mut self, key: SessionKey, packet: Rc<[u8]>) {
        let limit = self.config.max_output;
        self.sio.send(key, packet, limit);
    }

    /// One Engine.IO packet from the client, by either carrier. Returns
    /// why the session must end, if it must.
    fn on_packet(
        &mut self,
        key: SessionKey,
        packet: Packet,
        welcome: &dyn Fn() -> String,
    ) -> Result<(), Ending> {
        match packet {
            Packet::Text(PacketType::Pong, _) => {
                // EIO §"Heartbeat": the answer; the next ping after the interval.
                let ping_at = self.now + self.config.sio_ping_interval;
                if let Some(session) = self.sio.get_mut(key) {
                    session.heartbeat = Heartbeat::PingAt(ping_at);
                }
                self.arm_session(key);
                Ok(())
            }
            Packet::Text(PacketType::Message, text) => self.on_socketio(key, text, welcome),
            Packet::Text(PacketType::Close, _) => Err(Ending::ClientClosed),
            Packet::Text(PacketType::Noop, _) => Ok(()),
            Packet::Text(kind @ (PacketType::Ping | PacketType::Open | PacketType::Upgrade), _) => {
                // Protocol 4's client never pings (the server does), and
                // the other two belong to the upgrade's own WebSocket.
                Err(Ending::Refused(
                    CloseCode::PROTOCOL_ERROR,
                    format!("unexpected Engine.IO {} packet", kind.name()),
                ))
            }
            Packet::Binary(_) => Err(Ending::Refused(
                CloseCode::UNSUPPORTED_DATA,
                "binary Socket.IO events are not supported here: send text".into(),
            )),
        }
    }

    /// One Socket.IO packet (SIO §"Exchange protocol").
    fn on_socketio(
        &mut self,
        key: SessionKey,
        text: &str,
        welcome: &dyn Fn() -> String,
    ) -> Result<(), Ending> {
        let refused = |e: &dyn std::fmt::Display| {
            Ending::Refused(CloseCode::POLICY_VIOLATION, format!("socket.io: {e}"))
        };
        let packet = socketio::decode(text, self.config.sio_max_depth).map_err(|e| refused(&e))?;
        let member = self.sio.get(key).and_then(|s| s.member);
        if packet.namespace != "/" {
            // Only the main namespace exists here.
            if packet.kind == socketio::PacketType::Connect {
                let answer = socketio::connect_error(packet.namespace, "Invalid namespace");
                self.sio_send(key, message(&answer));
            }
            return Ok(());
        }
        use socketio::PacketType as P;
        match (packet.kind, member) {
            (P::Connect, None) => {
                let id = self.sio.ids.next();
                self.sio_send(key, message(&socketio::connect(&id)));
                let member = self.hub.join(Link::Sio(key), Transport::SocketIo, &welcome());
                if let Some(session) = self.sio.get_mut(key) {
                    session.member = Some(member);
                    session.connect_by = None;
                }
                Ok(())
            }
            // A second CONNECT to a namespace already joined: nothing new.
            (P::Connect, Some(_)) => Ok(()),
            // SIO: "If the server does not receive a CONNECT packet first,
            // then it MUST close the connection immediately."
            (_, None) => Err(refused(&format!("{} before CONNECT", packet.kind.name()))),
            (P::Disconnect, Some(member)) => {
                self.hub.leave(member);
                if let Some(session) = self.sio.get_mut(key) {
                    session.member = None;
                }
                Ok(())
            }
            (P::Event, Some(member)) => {
                self.on_event(key, member, &packet);
                Ok(())
            }
            // The server asks for no acknowledgements, so none is due.
            (P::Ack, Some(_)) => Ok(()),
            (P::BinaryEvent | P::BinaryAck, Some(_)) => Err(Ending::Refused(
                CloseCode::UNSUPPORTED_DATA,
                "binary Socket.IO events are not supported here: send text".into(),
            )),
            (P::ConnectError, Some(_)) => Err(refused(&"CONNECT_ERROR is the server's to send")),
        }
    }

    /// An EVENT: `'message'` is a chat line (a string, or the tutorial's
    /// `{name, msg}`); any other is answered with what works. An ACK goes
    /// back when asked for, saying who and where the line was said.
    fn on_event(&mut self, key: SessionKey, member: MemberId, packet: &socketio::Packet) {
        let Some((name, args)) = packet.event() else {
            return;
        };
        let now = SystemTime::now();
        let line = match (name, args.first()) {
            (CLIENT_EVENT, Some(serde_json::Value::String(line))) => Some(line.as_str()),
            (CLIENT_EVENT, Some(serde_json::Value::Object(fields))) => {
                if let Some(serde_json::Value::String(asked)) = fields.get("name") {
                    self.ask_name(key, member, asked, now);
                }
                fields.get("msg").and_then(|m| m.as_str())
            }
            _ => None,
        };
        match line {
            Some(line) => self.hub.text(member, line, now),
            None if name == CLIENT_EVENT => self.hub.reply(
                member,
                "! 'message' takes a string, or {name, msg} with msg a string",
            ),
            None => self.hub.reply(
                member,
                &format!(
                    "! no event {:?} here: emit 'message' with a line",
                    name.chars().take(32).collect::<String>()
                ),
            ),
        }
        if let Some(id) = packet.id {
            let who = serde_json::json!({
                "name": self.hub.name(member).unwrap_or(""),
                "room": self.hub.room_of(member).unwrap_or(""),
            });
            self.sio_send(key, message(&socketio::ack("/", id, &[who])));
        }
    }

    /// `{name: "laney", msg}`: the name is asked of the hub as `/nick`
    /// when it changes, so the room sees it; a name the hub refuses is
    /// said to the sender once.
    fn ask_name(&mut self, key: SessionKey, member: MemberId, asked: &str, now: SystemTime) {
        let Some(session) = self.sio.get_mut(key) else {
            return;
        };
        if asked.trim().is_empty() || session.asked_name.as_deref() == Some(asked) {
            return;
        }
        session.asked_name = Some(asked.to_string());
        if self.hub.name(member) != Some(asked) {
            self.hub.text(member, &format!("/nick {asked}"), now);
        }
    }
}

/// What every request to `/socket.io/` is checked for first, in the
/// reference server's order: the revision, the transport (`want`: a plain
/// request polls, an Upgrade asks for WebSocket), then the Origin. Polling
/// makes and speaks for a chat member, so a page on another site may not
/// (as for `/poll`, docs/07); a WebSocket gets the hijacking guard (RFC
/// 6455 §10.2).
fn checked_query<'r>(
    cx: &Context,
    request: &'r Request,
    want: TransportName,
) -> Result<engineio::Query<'r>, (ErrorCode, Option<String>)> {
    let query = engineio::parse_query(|name| request.query_param(name)).map_err(|code| (code, None))?;
    if query.transport != want {
        let why = match want {
            TransportName::Polling => "transport=websocket needs an Upgrade",
            TransportName::WebSocket => "an Upgrade asks for transport=websocket",
        };
        return Err((ErrorCode::BadRequest, Some(why.to_string())));
    }
    let purpose = match want {
        TransportName::Polling => Purpose::Action,
        TransportName::WebSocket => Purpose::WebSocket,
    };
    cx.policy
        .check_origin(request, purpose)
        .map_err(|forbidden| (ErrorCode::Forbidden, Some(forbidden.to_string())))?;
    Ok(query)
}

/// Refuses a request to `/socket.io/` with Engine.IO's error answer. An
/// upgrade that fails closes the connection; a poll keeps it if it may.
fn refuse(
    http: &mut Http,
    cx: &mut Context,
    request: &Request,
    code: ErrorCode,
    detail: Option<&str>,
) -> Next {
    log::info!(
        "{}: socket.io {} refused: {}",
        cx.peer,
        request.method,
        detail.unwrap_or(code.message())
    );
    let close = crate::ws::handshake::is_upgrade(request) || !request.keep_alive();
    let response = error_response(code, detail).allow_origin(cx.policy.cors_origin(request));
    http.respond(cx, response.close(close))
}

/// A CORS preflight (`OPTIONS`), sent by a browser before a POST with
/// headers of its own (socket.io's `extraHeaders`): the methods and the
/// one header polling uses, for an origin the policy lets act; 403 for
/// any other.
fn preflight(http: &mut Http, cx: &mut Context, request: &Request) -> Next {
    let close = !request.keep_alive();
    if let Err(forbidden) = cx.policy.check_origin(request, Purpose::Action) {
        log::info!("{}: socket.io preflight refused: {forbidden}", cx.peer);
        let response = Response::refusal(Status::FORBIDDEN, &forbidden.to_string());
        return http.respond(cx, response.close(close));
    }
    let response = Response::new(Status::NO_CONTENT)
        .header("Access-Control-Allow-Methods", "GET, POST")
        .header("Access-Control-Allow-Headers", "Content-Type")
        .header("Access-Control-Max-Age", "600")
        .allow_origin(cx.policy.cors_origin(request));
    http.respond(cx, response.close(close))
}

/// A request to `/socket.io/` that is not a WebSocket upgrade: the
/// polling transport.
pub(super) fn request(http: &mut Http, cx: &mut Context, request: &Request) -> Next {
    if request.method == "OPTIONS" {
        return preflight(http, cx, request);
    }
    let refuse = |http: &mut Http, cx: &mut Context, code: ErrorCode, detail: Option<&str>| {
        refuse(http, cx, request, code, detail)
    };
    let query = match checked_query(cx, request, TransportName::Polling) {
        Ok(query) => query,
        Err((code, detail)) => return refuse(http, cx, code, detail.as_deref()),
    };
    let Some(sid) = query.sid else {
        // The handshake (EIO §"Handshake") is a GET without sid.
        if request.method != "GET" {
            return refuse(http, cx, ErrorCode::BadHandshakeMethod, None);
        }
        if cx.sio.len() >= cx.config.sio_max_sessions {
            log::warn!("{}: socket.io refused: too many sessions", cx.peer);
            let response = error_response(ErrorCode::BadRequest, Some("too many socket.io sessions"));
            let response = response.allow_origin(cx.policy.cors_origin(request));
            return http.respond(cx, response.close(!request.keep_alive()));
        }
        let key = cx.open_session(Carrier::Polling { get: None });
        let sid = cx.sio.get(key).map(|s| s.sid.clone()).unwrap_or_default();
        log::debug!("{}: socket.io session {sid} opened (polling)", cx.peer);
        let open = cx.handshake(&sid, &["websocket"]);
        let response = packets_response(open.into_bytes()).allow_origin(cx.policy.cors_origin(request));
        return http.respond(cx, response.close(!request.keep_alive()));
    };
    let Some(key) = cx.sio.by_sid(sid) else {
        return refuse(http, cx, ErrorCode::UnknownSid, None);
    };
    let Some(session) = cx.sio.get(key) else {
        return refuse(http, cx, ErrorCode::UnknownSid, None);
    };
    let Carrier::Polling { get } = session.carrier else {
        // Upgraded: polling is over for this session.
        return refuse(
            http,
            cx,
            ErrorCode::BadRequest,
            Some("this session has upgraded to WebSocket"),
        );
    };
    match request.method.as_str() {
        "GET" if get.is_some() => {
            // EIO §4: one GET at a time. The reference server answers the
            // second 400 and closes the session.
            cx.sio.end(key, Ending::Overlap);
            refuse(
                http,
                cx,
                ErrorCode::BadRequest,
                Some("a poll is already pending for this session"),
            )
        }
        "GET" => {
            let reply = PollReply {
                keep_alive: request.keep_alive(),
                allow_origin: cx.policy.cors_origin(request).map(Box::from),
            };
            poll(http, cx, key, reply)
        }
        "POST" => post(http, cx, key, request),
        _ => {
            let response = error_response(ErrorCode::BadRequest, Some("socket.io polling is GET or POST"))
                .header("Allow", "GET, POST, OPTIONS");
            http.respond(cx, response.close(!request.keep_alive()))
        }
    }
}

/// A GET for a session's packets: answered now if any wait, otherwise
/// parked until there are (the heartbeat's ping comes within the ping
/// interval at the latest).
fn poll(http: &mut Http, cx: &mut Context, key: SessionKey, reply: PollReply) -> Next {
    let token = cx.token;
    let Some(session) = cx.shared.sio.get_mut(key) else {
        return Next::Continue;
    };
    session.carrier = Carrier::Polling { get: Some(token) };
    log::debug!("{}: socket.io poll parked for session {}", cx.peer, session.sid);
    http.park_poll(key, reply);
    let waiting = !session.queue.is_empty() || session.is_probed() || session.ending.is_some();
    if waiting {
        cx.sio.list(key);
    }
    Next::Continue
}

/// A POST of the client's packets, joined by `\x1e`: each is acted on in
/// turn; a bad one ends the session, and the answer says why.
fn post(http: &mut Http, cx: &mut Context, key: SessionKey, request: &Request) -> Next {
    let keep_alive = request.keep_alive();
    let origin = cx.policy.cors_origin(request);
    let cors = |response: Response| response.allow_origin(origin);
    if request.body.len() > cx.config.sio_max_payload() {
        // EIO: a payload over `maxPayload` closes the session.
        let limit = cx.config.sio_max_payload();
        log::info!(
            "{}: socket.io POST of {} bytes, over {limit}",
            cx.peer,
            request.body.len()
        );
        cx.sio.end(
            key,
            Ending::Refused(CloseCode::MESSAGE_TOO_BIG, "payload over maxPayload".into()),
        );
        let why = format!("the payload is over maxPayload ({limit} bytes)");
        return http.respond(
            cx,
            cors(Response::refusal(Status::PAYLOAD_TOO_LARGE, &why)).close(!keep_alive),
        );
    }
    let packets = match engineio::decode_payload(&request.body, MAX_PACKETS_PER_POST) {
        Ok(packets) => packets,
        Err(e) => {
            let why = e.to_string();
            log::info!("{}: socket.io: {why}", cx.peer);
            cx.sio
                .end(key, Ending::Refused(CloseCode::PROTOCOL_ERROR, why.clone()));
            return http.respond(
                cx,
                cors(error_response(ErrorCode::BadRequest, Some(&why))).close(!keep_alive),
            );
        }
    };
    cx.message_in(packets.len() as u64);
    let hexdump = cx.config.hexdump;
    let (socket, peer) = (cx.socket, &*cx.peer);
    let welcome = move || super::conn::welcome(socket, peer, " over socket.io (polling)");
    let mut ending = None;
    for packet in packets {
        if hexdump {
            log::info!("{peer} socket.io in: {}", engineio::describe(&packet));
        }
        if let Err(e) = cx.shared.on_packet(key, packet, &welcome) {
            ending = Some(e);
            break;
        }
    }
    if let Some(ending) = ending {
        let detail = match &ending {
            Ending::Refused(_, why) => Some(why.clone()),
            _ => None,
        };
        cx.sio.end(key, ending);
        if let Some(why) = detail {
            log::info!("{}: {why}", cx.peer);
            let response = cors(error_response(ErrorCode::BadRequest, Some(&why)));
            return http.respond(cx, response.close(!keep_alive));
        }
    }
    // EIO §4: the answer to a POST is `ok` (text/html, as the reference
    // server sends it, so old browsers do not try to parse it).
    let response = Response::new(Status::OK)
        .header("Content-Type", "text/html")
        .header("Cache-Control", "no-store")
        .body(b"ok".to_vec());
    http.respond(cx, cors(response).close(!keep_alive))
}

/// A WebSocket upgrade at `/socket.io/`: a session that starts on
/// WebSocket (no sid), or the upgrade of a polling one (its sid).
pub(super) fn upgrade(http: &mut Http, cx: &mut Context, request: &Request) -> Next {
    let refuse = |http: &mut Http, cx: &mut Context, code: ErrorCode, detail: Option<&str>| {
        refuse(http, cx, request, code, detail)
    };
    let query = match checked_query(cx, request, TransportName::WebSocket) {
        Ok(query) => query,
        Err((code, detail)) => return refuse(http, cx, code, detail.as_deref()),
    };
    let ws_key = match crate::ws::handshake::validate(request) {
        Ok(ws_key) => ws_key,
        Err(error) => {
            log::info!("{}: refused WebSocket: {error}", cx.peer);
            return http.respond(cx, error.response().close(true));
        }
    };
    let token = cx.token;
    let key = match query.sid {
        None => {
            if cx.sio.len() >= cx.config.sio_max_sessions {
                return refuse(
                    http,
                    cx,
                    ErrorCode::BadRequest,
                    Some("too many socket.io sessions"),
                );
            }
            let key = cx.open_session(Carrier::WebSocket(token));
            let sid = cx.sio.get(key).map(|s| s.sid.clone()).unwrap_or_default();
            log::debug!("{}: socket.io session {sid} opened (WebSocket)", cx.peer);
            // A session born on WebSocket has nowhere to upgrade to.
            let open = cx.handshake(&sid, &[]);
            cx.sio_send(key, Rc::from(open.into_bytes()));
            key
        }
        Some(sid) => {
            let Some(key) = cx.sio.by_sid(sid) else {
                return refuse(http, cx, ErrorCode::UnknownSid, None);
            };
            let by = cx.now + cx.config.sio_upgrade_timeout;
            match cx.sio.get_mut(key) {
                Some(session)
                    if matches!(session.carrier, Carrier::Polling { .. }) && session.upgrade.is_none() =>
                {
                    session.upgrade = Some(Upgrade {
                        probe: token,
                        by,
                        probed: false,
                    });
                    log::debug!("{}: socket.io session {sid} probing WebSocket", cx.peer);
                }
                _ => {
                    return refuse(
                        http,
                        cx,
                        ErrorCode::BadRequest,
                        Some("this session has upgraded already, or is upgrading"),
                    )
                }
            }
            cx.arm_session(key);
            key
        }
    };
    let response = crate::ws::handshake::accept_response(&ws_key, None);
    cx.out.encode_with(|out| response.encode(out));
    Next::Become(Protocol::WebSocket(WebSocket::socket_io(cx, key)))
}

/// A message on a socket.io WebSocket: the session's packets, or, on the
/// WebSocket an upgrade is probing, the probe and the `5` that completes
/// it (EIO §"Upgrade").
pub(super) fn on_frame(cx: &mut Context, key: SessionKey, kind: MessageKind, payload: &[u8]) -> Option<Next> {
    let token = cx.token;
    let Some(session) = cx.sio.get(key) else {
        return Some(Next::Close(Why::MemberLeft));
    };
    let carrier = session.carrier == Carrier::WebSocket(token);
    let probing = session.upgrade.is_some_and(|u| u.probe == token);
    if cx.config.hexdump {
        log::info!(
            "{} socket.io in: {}",
            cx.peer,
            String::from_utf8_lossy(&payload[..payload.len().min(200)])
        );
    }
    let packet = match kind {
        MessageKind::Binary => Packet::Binary(payload.to_vec()),
        MessageKind::Text => match engineio::decode_packet(payload) {
            Ok(Packet::Binary(_)) => {
                // `b…` is polling's way of carrying binary, not WebSocket's.
                return Some(refusal(
                    cx,
                    key,
                    CloseCode::PROTOCOL_ERROR,
                    "a b… packet on WebSocket".into(),
                ));
            }
            Ok(packet) => packet,
            Err(e) => return Some(refusal(cx, key, CloseCode::PROTOCOL_ERROR, e.to_string())),
        },
    };
    if probing {
        return probe(cx, key, packet);
    }
    if !carrier {
        return Some(Next::Close(Why::MemberLeft));
    }
    let (socket, peer) = (cx.socket, &*cx.peer);
    let welcome = move || super::conn::welcome(socket, peer, " over socket.io (WebSocket)");
    match cx.shared.on_packet(key, packet, &welcome) {
        Ok(()) => Some(Next::Continue),
        Err(ending) => {
            cx.sio.end(key, ending);
            Some(Next::Continue)
        }
    }
}

/// The WebSocket an upgrade is probing: `2probe` is answered `3probe`
/// here, and the parked poll gets a `6` so the client can finish with it;
/// `5` makes this WebSocket the carrier. Anything else ends the probe.
fn probe(cx: &mut Context, key: SessionKey, packet: Packet) -> Option<Next> {
    let token = cx.token;
    match packet {
        Packet::Text(PacketType::Ping, "probe") => {
            let mut pong = Vec::new();
            engineio::encode_packet(&mut pong, PacketType::Pong, "probe");
            super::websocket::encode(cx.out, crate::ws::Opcode::Text, &pong);
            if let Some(upgrade) = cx.sio.get_mut(key).and_then(|s| s.upgrade.as_mut()) {
                upgrade.probed = true;
            }
            cx.sio.list(key);
            Some(Next::Continue)
        }
        Packet::Text(PacketType::Upgrade, _) => {
            let Some(session) = cx.sio.get_mut(key) else {
                return Some(Next::Close(Why::MemberLeft));
            };
            let parked = match session.carrier {
                Carrier::Polling { get } => get,
                Carrier::WebSocket(_) => None,
            };
            session.carrier = Carrier::WebSocket(token);
            // The parked GET, if any, is answered `6` by the flush (it is
            // retired): the queue goes to the WebSocket now.
            session.upgrade = None;
            log::debug!("socket.io session {} upgraded to WebSocket", session.sid);
            cx.sio.list(key);
            if let Some(get) = parked {
                cx.sio.retired_polls.push((get, key));
            }
            Some(Next::Continue)
        }
        other => {
            log::info!(
                "{}: socket.io upgrade probe got {}; closing the probe",
                cx.peer,
                engineio::describe(&other)
            );
            Some(Next::Close(Why::Violation(
                CloseCode::PROTOCOL_ERROR,
                "expected 2probe, then 5".into(),
            )))
        }
    }
}

/// The session ends for a protocol error found on its WebSocket.
fn refusal(cx: &mut Context, key: SessionKey, code: CloseCode, why: String) -> Next {
    log::info!("{}: socket.io: {why}", cx.peer);
    cx.sio.end(key, Ending::Refused(code, why));
    Next::Continue
}

impl Server {
    /// Step of every delivery: sessions with output get it moved to their
    /// carrier, and sessions that are ending are ended.
    pub(super) fn flush_sessions(&mut self) {
        for (get, key) in std::mem::take(&mut self.shared.sio.retired_polls) {
            self.answer_poll(get, key, vec![bare(PacketType::Noop)]);
        }
        while !self.shared.sio.ready.is_empty() {
            for key in std::mem::take(&mut self.shared.sio.ready) {
                self.flush_session(key);
            }
        }
    }

    fn flush_session(&mut self, key: SessionKey) {
        let Some(session) = self.shared.sio.get_mut(key) else {
            return;
        };
        session.listed = false;
        if let Some(ending) = session.ending.clone() {
            return self.close_session(key, ending);
        }
        match session.carrier {
            Carrier::WebSocket(token) => {
                let packets = std::mem::take(&mut session.queue);
                session.queued = 0;
                let Some(conn) = self.conns.get_mut(token.0) else {
                    return;
                };
                if !conn.close.is_open() || !conn.protocol.accepts_output() {
                    return;
                }
                for packet in &packets {
                    super::websocket::encode(&mut conn.out, crate::ws::Opcode::Text, packet);
                }
                self.shared.stats.message_out(conn.via, packets.len() as u64);
                self.mark_dirty(token);
            }
            Carrier::Polling { get: Some(get) } => {
                if session.queue.is_empty() && !session.is_probed() {
                    return;
                }
                let mut packets: Vec<Rc<[u8]>> = std::mem::take(&mut session.queue).into();
                session.queued = 0;
                if session.is_probed() {
                    packets.push(bare(PacketType::Noop));
                }
                session.carrier = Carrier::Polling { get: None };
                self.answer_poll(get, key, packets);
            }
            Carrier::Polling { get: None } => {}
        }
    }

    /// Answers the GET parked on `get` for session `key` with these
    /// packets, joined by `\x1e`.
    fn answer_poll(&mut self, get: Token, key: SessionKey, packets: Vec<Rc<[u8]>>) {
        let Some((Protocol::Http(http), mut cx)) = self.split(get) else {
            return;
        };
        let Some(reply) = http.unpark_poll(key) else {
            return;
        };
        let mut body = Vec::new();
        engineio::encode_payload(&mut body, packets.iter().map(|p| &p[..]));
        cx.message_out(packets.len() as u64);
        let response = packets_response(body).allow_origin(reply.allow_origin.as_deref());
        let next = http.respond(&mut cx, response.close(!reply.keep_alive));
        self.apply(get, next);
    }

    /// Ends a session: the member leaves the hub, the WebSocket carrying
    /// it is closed with the reason, a parked poll gets the close packet
    /// (`1`), and a probing WebSocket is closed. Its sid is unknown from
    /// now on, and never given again.
    pub(super) fn close_session(&mut self, key: SessionKey, ending: Ending) {
        let Some(session) = self.shared.sio.remove(key) else {
            return;
        };
        log::debug!("socket.io session {} closed: {ending:?}", session.sid);
        if let Some(member) = session.member {
            self.shared.hub.leave(member);
        }
        if let Some(Upgrade { probe, .. }) = session.upgrade {
            self.close(probe, Why::MemberLeft);
        }
        match session.carrier {
            Carrier::WebSocket(token) => {
                let why = ending.why(self.shared.config.sio_ping_timeout);
                if ending != Ending::CarrierGone {
                    self.close(token, why);
                }
            }
            Carrier::Polling { get: Some(get) } => {
                if ending != Ending::CarrierGone {
                    self.answer_poll(get, key, vec![bare(PacketType::Close)]);
                }
            }
            Carrier::Polling { get: None } => {}
        }
    }

    /// A connection that served a session is going: a carrier or a parked
    /// poll takes the session with it (as the reference server does); a
    /// probe only stops probing.
    pub(super) fn session_connection_gone(&mut self, token: Token, key: SessionKey) {
        let Some(session) = self.shared.sio.get_mut(key) else {
            return;
        };
        if session.upgrade.is_some_and(|u| u.probe == token) {
            // The upgrade is off: nothing is owed to a poll for it.
            session.upgrade = None;
            return;
        }
        let carried = match session.carrier {
            Carrier::WebSocket(carrier) => carrier == token,
            Carrier::Polling { get } => get == Some(token),
        };
        if carried {
            if let Carrier::Polling { .. } = session.carrier {
                session.carrier = Carrier::Polling { get: None };
            }
            self.close_session(key, Ending::CarrierGone);
        }
    }

    /// A session's timer: a ping due, a pong overdue, a clock tick.
    pub(super) fn session_timer(&mut self, key: SessionKey) {
        let now = self.shared.now;
        let Some(session) = self.shared.sio.get_mut(key) else {
            return;
        };
        if session.armed.is_some_and(|armed| armed <= now) {
            session.armed = None;
        }
        match session.heartbeat {
            Heartbeat::PongBy(deadline) if now >= deadline => {
                log::info!(
                    "socket.io session {}: no pong within {:?}; closing",
                    session.sid,
                    self.shared.config.sio_ping_timeout
                );
                return self.close_session(key, Ending::PingTimeout);
            }
            Heartbeat::PingAt(at) if now >= at => {
                session.heartbeat = Heartbeat::PongBy(now + self.shared.config.sio_ping_timeout);
                self.shared.sio_send(key, bare(PacketType::Ping));
            }
            _ => {}
        }
        let Some(session) = self.shared.sio.get_mut(key) else {
            return;
        };
        if session.connect_by.is_some_and(|by| now >= by) {
            // socket.io's `connectTimeout`: a client that never joins a
            // namespace holds a session for nothing.
            let limit = self.shared.config.sio_connect_timeout;
            log::info!(
                "socket.io session {}: no CONNECT within {limit:?}; closing",
                session.sid
            );
            return self.close_session(key, Ending::NoConnect(limit));
        }
        if let Some(Upgrade { probe, by, .. }) = session.upgrade {
            if now >= by {
                // engine.io's `upgradeTimeout`: the probe goes, the session
                // stays on polling and may probe again.
                let limit = self.shared.config.sio_upgrade_timeout;
                log::info!(
                    "socket.io session {}: upgrade not finished within {limit:?}; closing the probe",
                    session.sid
                );
                session.upgrade = None;
                self.close(
                    probe,
                    Why::Violation(
                        CloseCode::POLICY_VIOLATION,
                        format!("upgrade not finished within {limit:?}"),
                    ),
                );
            }
        }
        let Some(session) = self.shared.sio.get_mut(key) else {
            return;
        };
        if let (Some((generation, tick)), Some(member)) = (session.clock, session.member) {
            if now >= tick {
                let on = self.shared.hub.clock_tick(member, generation, SystemTime::now());
                if let Some(session) = self.shared.sio.get_mut(key) {
                    session.clock = on.then(|| (generation, now + Duration::from_secs(1)));
                }
            }
        }
        self.shared.arm_session(key);
        self.deliver();
    }

    /// Is this hub member a socket.io client?
    pub(super) fn is_session_member(&self, member: MemberId) -> bool {
        matches!(self.shared.hub.link(member), Some(Link::Sio(_)))
    }

    /// The hub started (or restarted) a socket.io member's `/time` clock.
    pub(super) fn session_clock(&mut self, member: MemberId, generation: u32) {
        let Some(Link::Sio(key)) = self.shared.hub.link(member) else {
            return;
        };
        let at = self.shared.now + Duration::from_secs(1);
        if let Some(session) = self.shared.sio.get_mut(key) {
            session.clock = Some((generation, at));
        }
        self.shared.arm_session(key);
    }

    /// A hub line for a socket.io member, as `42["servermessage","…"]`:
    /// encoded once per broadcast (`packet`), and framed straight into the
    /// queue of a WebSocket carrier; polling sessions queue it.
    pub(super) fn sio_deliver(&mut self, key: SessionKey, text: &str, packet: &mut Option<Rc<[u8]>>) {
        let Some(session) = self.shared.sio.get(key) else {
            return;
        };
        let packet = packet
            .get_or_insert_with(|| message(&socketio::event(SERVER_EVENT, text)))
            .clone();
        // Handed to the session: on its WebSocket now, or to its next poll.
        self.shared.stats.via(Via::SocketIo).delivered += 1;
        match session.carrier {
            Carrier::WebSocket(token) if session.queue.is_empty() && session.ending.is_none() => {
                let Some(conn) = self.conns.get_mut(token.0) else {
                    return;
                };
                if !conn.close.is_open() || !conn.protocol.accepts_output() {
                    return;
                }
                super::websocket::encode(&mut conn.out, crate::ws::Opcode::Text, &packet);
                self.shared.stats.message_out(conn.via, 1);
                self.mark_dirty(token);
            }
            _ => self.shared.sio_send(key, packet),
        }
    }

    /// `/quit` from a socket.io member: its last replies go out, then the
    /// session ends.
    pub(super) fn session_quit(&mut self, key: SessionKey) {
        self.shared.sio.end(key, Ending::Quit);
    }
}

/// Whether a request is for the Engine.IO endpoint. The reference server
/// answers `/socket.io/` and nothing else there but its client bundle,
/// which `--static` serves here.
pub(super) fn is_endpoint(path: &str) -> bool {
    path == "/socket.io/"
}
