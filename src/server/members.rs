//! HTTP chat members: the chat over plain HTTP (short polling, long
//! polling, server-sent events, `POST /send`). They exist so a learner can
//! measure what WebSocket saves (~400 bytes of headers for ~10 bytes of
//! data, a round trip per message, lines that arrive late).
//!
//! An HTTP member has no socket of its own that lasts. It is known by a
//! secret token that its first answer gives it, and it reads its room's
//! history by line number ("everything after 17"), so nothing said between
//! two polls is lost. Answers to its own commands (`/who`, errors) wait in
//! a small inbox until its next request collects them. It leaves,
//! announced like anyone else, when it has made no request for a while
//! and holds no open stream, or when it says `/quit`.
//!
//! A [`MemberKey`] names a member by slot *and* generation, so an event
//! stream or a parked poll that outlives its member can never follow the
//! slot to whoever takes it next; and when a member leaves, the streams and
//! polls that served it are ended with it.

use super::close::Why;
use super::conn::{Protocol, Via};
use super::context::{ChatRequest, Link, Shared};
use super::event_stream::EventStream;
use super::long_poll::poll;
use super::timers::Timer;
use super::Server;
use crate::http::json_string;
use crate::http::{Request, Response, Status};
use crate::hub::{History, MemberId, Transport};
use mio::Token;
use slab::Slab;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Instant, SystemTime};

/// Answers a member may have waiting before the oldest are dropped (and
/// the drop is counted and told).
const INBOX_LIMIT: usize = 100;

/// An HTTP member's name in the loop: its slot, and which of the slot's
/// occupants it is. Eight bytes: an event stream carries one, and the
/// largest kind of connection sets every connection's size. Slots are
/// bounded by `--max-http-members`; generations wrap after four billion
/// members, and a stale key would have to outlive all of them, on the
/// same slot, to be mistaken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct MemberKey {
    slot: u32,
    generation: u32,
}

impl MemberKey {
    fn new(slot: usize, generation: u32) -> MemberKey {
        // Checked rather than truncated (see above for why it fits).
        let slot = u32::try_from(slot).unwrap_or(u32::MAX);
        MemberKey { slot, generation }
    }

    fn slot(self) -> usize {
        self.slot as usize
    }
}

/// An HTTP chat member, as the loop knows it.
#[derive(Debug)]
pub(super) struct HttpMember {
    generation: u32,
    pub token: String,
    pub member: MemberId,
    pub last_seen: Instant,
    /// Open event streams and parked long polls: while any is open, the
    /// member is present even without new requests.
    pub attached: u32,
    pub inbox: VecDeque<Rc<str>>,
    pub inbox_dropped: u64,
}

/// The table of HTTP members, by key and by secret token.
#[derive(Debug, Default)]
pub(super) struct HttpMembers {
    slots: Slab<HttpMember>,
    tokens: HashMap<String, MemberKey>,
    generations: u32,
    /// The sweep for members that stopped polling is scheduled: there is
    /// never more than one.
    sweeping: bool,
}

impl HttpMembers {
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn get(&self, key: MemberKey) -> Option<&HttpMember> {
        self.slots
            .get(key.slot())
            .filter(|m| m.generation == key.generation)
    }

    pub fn get_mut(&mut self, key: MemberKey) -> Option<&mut HttpMember> {
        self.slots
            .get_mut(key.slot())
            .filter(|m| m.generation == key.generation)
    }

    /// The member a secret token names, seen now.
    pub fn by_token(&mut self, token: &str, now: Instant) -> Option<MemberKey> {
        let key = *self.tokens.get(token)?;
        self.get_mut(key)?.last_seen = now;
        Some(key)
    }

    /// A stream or parked poll now keeps the member present.
    pub fn attach(&mut self, key: MemberKey) {
        if let Some(m) = self.get_mut(key) {
            m.attached += 1;
        }
    }

    /// A stream or parked poll that kept the member present is over.
    pub fn detach(&mut self, key: MemberKey, now: Instant) {
        if let Some(m) = self.get_mut(key) {
            m.attached = m.attached.saturating_sub(1);
            m.last_seen = now;
        }
    }

    /// The key the next member will have.
    fn next_key(&mut self) -> MemberKey {
        self.generations = self.generations.wrapping_add(1);
        MemberKey::new(self.slots.vacant_key(), self.generations)
    }

    /// Adds the member whose key `next_key` gave, with a fresh secret.
    fn insert(&mut self, key: MemberKey, member: MemberId, now: Instant) {
        let token = format!(
            "{:016x}{:016x}",
            crate::random::random_u64(),
            crate::random::random_u64()
        );
        self.tokens.insert(token.clone(), key);
        let slot = self.slots.insert(HttpMember {
            generation: key.generation,
            token,
            member,
            last_seen: now,
            attached: 0,
            inbox: VecDeque::new(),
            inbox_dropped: 0,
        });
        debug_assert_eq!(slot, key.slot());
    }

    fn remove(&mut self, key: MemberKey) -> Option<HttpMember> {
        self.get(key)?;
        let m = self.slots.remove(key.slot());
        self.tokens.remove(&m.token);
        Some(m)
    }
}

impl Shared {
    /// The member a request speaks for: the one its `token` names, or a
    /// new one (joined to `room`, default lobby) when it names none.
    pub fn http_member(
        &mut self,
        request: &Request,
        socket: &mio::net::TcpStream,
        peer: &super::peer::Peer,
    ) -> Result<MemberKey, Response> {
        if let Some(value) = request.query_param("token") {
            return self.members.by_token(value, self.now).ok_or_else(|| {
                Response::refusal(
                    Status::GONE,
                    "unknown or expired member token; start again without one",
                )
            });
        }
        if self.members.len() >= self.config.max_http_members {
            return Err(
                Response::refusal(Status::SERVICE_UNAVAILABLE, "too many HTTP chat members")
                    .header("Retry-After", "5"),
            );
        }
        let key = self.members.next_key();
        let welcome = super::conn::welcome(socket, peer, " over HTTP");
        let member = self.hub.join(Link::Http(key), Transport::Http, &welcome);
        self.members.insert(key, member, self.now);
        let members = &mut self.members;
        log::debug!(
            "HTTP member {} joined from {peer}",
            self.hub.name(member).unwrap_or("?")
        );
        if !members.sweeping {
            members.sweeping = true;
            let at = self.now + self.config.http_member_timeout / 2;
            self.timers.schedule(at, Timer::SweepHttpMembers);
        }
        if let Some(room) = request
            .query_param("room")
            .filter(|r| *r != crate::hub::LOBBY && !r.is_empty())
        {
            let room = crate::http::percent_decode(room);
            self.hub.text(member, &format!("/join {room}"), SystemTime::now());
        }
        Ok(key)
    }

    /// The hub member behind an HTTP member, and the room it is in now.
    pub fn member_room(&self, key: MemberKey) -> Option<(MemberId, String)> {
        let member = self.members.get(key)?.member;
        let room = self.hub.room_of(member).unwrap_or(crate::hub::LOBBY).to_string();
        Some((member, room))
    }

    /// The JSON every HTTP chat answer carries: the member, the room's
    /// lines in `history`, and the inbox (emptied).
    pub fn poll_body(&mut self, key: MemberKey, room: &str, history: &History) -> String {
        let Some(m) = self.members.get_mut(key) else {
            return "{}".into();
        };
        let name = self.hub.name(m.member).unwrap_or("");
        let mut body = format!(
            "{{\"token\":\"{}\",\"name\":{},\"room\":{},\"next\":{},\"missed\":{},\"messages\":[",
            m.token,
            json_string(name),
            json_string(room),
            history.next,
            history.missed
        );
        for (i, (seq, text)) in history.lines.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&format!("{{\"id\":{seq},\"text\":{}}}", json_string(text)));
        }
        body.push_str("],\"replies\":[");
        for (i, text) in m.inbox.drain(..).enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&json_string(&text));
        }
        let dropped = std::mem::take(&mut m.inbox_dropped);
        body.push_str(&format!("],\"replies_dropped\":{dropped}}}\n"));
        body
    }
}

impl Server {
    /// An answer from the hub for an HTTP member: into its inbox, and
    /// whoever waits for that member is woken.
    pub(super) fn http_inbox(&mut self, key: MemberKey, text: &Rc<str>) {
        let Some(m) = self.shared.members.get_mut(key) else {
            return;
        };
        if m.inbox.len() >= INBOX_LIMIT {
            m.inbox.pop_front();
            m.inbox_dropped += 1;
        }
        m.inbox.push_back(text.clone());
        self.wake(None, Some(key));
    }

    /// A line was added to `room`, or a member's inbox filled: answer the
    /// parked long polls and feed the event streams that were waiting for
    /// it. O(n) in waiting HTTP connections per line, which is fine for the
    /// thousands this transport is meant for (WebSocket is the scalable one).
    pub(super) fn wake(&mut self, room: Option<&str>, key: Option<MemberKey>) {
        let waiters = std::mem::take(&mut self.shared.waiters);
        let mut still = Vec::with_capacity(waiters.len());
        for token in waiters {
            let Some(conn) = self.conns.get_mut(token.0) else {
                continue;
            };
            let waiting_for = match &conn.protocol {
                Protocol::EventStream(stream) => stream.member(),
                Protocol::Http(http) => http.parked_member(),
                _ => None,
            };
            let Some(waiting_for) = waiting_for else { continue };
            let current = self.shared.member_room(waiting_for).map(|(_, room)| room);
            let hit = key == Some(waiting_for) || (room.is_some() && room == current.as_deref());
            let done = hit && self.wake_one(token);
            if !done {
                still.push(token);
            }
        }
        still.append(&mut self.shared.waiters);
        self.shared.waiters = still;
    }

    /// Feeds one waiting connection. Returns whether it waits no more.
    fn wake_one(&mut self, token: Token) -> bool {
        let Some((protocol, mut cx)) = self.split(token) else {
            return true;
        };
        let done = match protocol {
            Protocol::EventStream(stream) => {
                stream.push_events(&mut cx);
                false
            }
            Protocol::Http(http) => {
                let next = http.release(&mut cx);
                self.apply(token, next);
                true
            }
            _ => true,
        };
        self.mark_dirty(token);
        done
    }

    /// The member said `/quit`, or its time is up: it leaves the hub, and
    /// the streams and polls that served it end with it.
    pub(super) fn remove_http_member(&mut self, key: MemberKey, why: &str) {
        // Its last replies (`* bye`) still reach whoever waits for it.
        self.wake(None, Some(key));
        let streams: Vec<Token> = self
            .shared
            .waiters
            .iter()
            .copied()
            .filter(|&t| {
                matches!(self.conns.get(t.0).map(|c| &c.protocol),
                    Some(Protocol::EventStream(s)) if s.member() == Some(key))
            })
            .collect();
        for token in streams {
            self.close(token, Why::MemberLeft);
        }
        let Some(m) = self.shared.members.remove(key) else {
            return;
        };
        log::debug!(
            "HTTP member {} left: {why}",
            self.shared.hub.name(m.member).unwrap_or("?")
        );
        self.shared.hub.leave(m.member);
    }

    /// Drops HTTP members that stopped polling, and looks again later
    /// while any are left.
    pub(super) fn sweep_http_members(&mut self) {
        let timeout = self.shared.config.http_member_timeout;
        let now = self.shared.now;
        let gone: Vec<MemberKey> = self
            .shared
            .members
            .slots
            .iter()
            .filter(|(_, m)| m.attached == 0 && now.duration_since(m.last_seen) >= timeout)
            .map(|(slot, m)| MemberKey::new(slot, m.generation))
            .collect();
        log::trace!(
            "sweep: {} HTTP members, {} gone",
            self.shared.members.len(),
            gone.len()
        );
        for key in gone {
            self.remove_http_member(key, "stopped polling");
        }
        let members = &mut self.shared.members;
        members.sweeping = members.len() > 0;
        if members.sweeping {
            self.shared
                .timers
                .schedule(now + timeout / 2, Timer::SweepHttpMembers);
        }
    }

    /// The chat over plain HTTP, in two steps. First the member: the one
    /// the request's `token` names, or a new one, whose welcome is carried
    /// out at once so that this very answer carries it. Then the answer:
    /// lines said, a poll answered or parked, or a stream begun.
    pub(super) fn chat_request(&mut self, token: Token, chat: ChatRequest) {
        let Some(conn) = self.conns.get(token.0) else {
            return;
        };
        let request = chat.request;
        // A page on another origin the policy lets act reads every answer
        // (Fetch §3.2), refusals included.
        let origin = self.shared.policy.cors_origin(&request).map(Box::<str>::from);
        let key = match self.shared.http_member(&request, &conn.socket, &conn.peer) {
            Ok(key) => key,
            Err(response) => {
                let response = response.allow_origin(origin.as_deref());
                return self.respond(token, response.close(!request.keep_alive()));
            }
        };
        self.deliver();
        if chat.via == Via::Send {
            let body = String::from_utf8_lossy(&request.body);
            return self.send_lines(token, key, &body, request.keep_alive(), origin.as_deref());
        }
        let Some((Protocol::Http(http), mut cx)) = self.split(token) else {
            return;
        };
        let next = match chat.via {
            Via::EventStream => EventStream::start(&mut cx, key, &request),
            via => poll(http, &mut cx, key, &request, via == Via::LongPoll),
        };
        self.follow(token, next);
    }

    /// `POST /send`: each line of the body is said in turn, and what the
    /// hub answers is carried out before the next, as for a telnet member.
    /// A `/quit` among them ends the member: the rest is not said, and the
    /// answer is 204.
    fn send_lines(
        &mut self,
        token: Token,
        key: MemberKey,
        body: &str,
        keep_alive: bool,
        origin: Option<&str>,
    ) {
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            let Some(m) = self.shared.members.get(key) else {
                break;
            };
            let member = m.member;
            self.shared.stats.message_in(Via::Send, 1);
            self.shared.hub.text(member, line, SystemTime::now());
            self.deliver();
        }
        let Some((_, room)) = self.shared.member_room(key) else {
            let response = Response::new(Status::NO_CONTENT).allow_origin(origin);
            return self.respond(token, response.close(!keep_alive));
        };
        // Only the inbox and the position: the lines themselves come
        // through the member's reading transport.
        let history = History {
            lines: Vec::new(),
            missed: 0,
            next: self.shared.hub.room_seq(&room),
        };
        let body = self.shared.poll_body(key, &room, &history);
        self.respond(token, json_response(body, keep_alive).allow_origin(origin));
    }

    /// Queues an HTTP answer on a connection, from the loop.
    pub(super) fn respond(&mut self, token: Token, response: Response) {
        let Some((Protocol::Http(http), mut cx)) = self.split(token) else {
            return;
        };
        let next = http.respond(&mut cx, response);
        self.follow(token, next);
        self.mark_dirty(token);
    }
}

/// A chat answer: JSON, never cached.
pub(super) fn json_response(body: String, keep_alive: bool) -> Response {
    Response::new(Status::OK)
        .header("Content-Type", "application/json")
        .header("Cache-Control", "no-store")
        .body(body.into_bytes())
        .close(!keep_alive)
}
