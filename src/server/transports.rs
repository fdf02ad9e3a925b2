//! The chat over plain HTTP: short polling, long polling, server-sent
//! events, and `POST /send`. They exist so a learner can measure what
//! WebSocket saves (the seeds' argument: ~400 bytes of headers for ~10
//! bytes of data, a round trip per message, lines that arrive late).
//!
//! An HTTP member has no socket of its own that lasts. It is known by a
//! token that its first answer gives it, and it reads its room's history
//! by line number ("everything after 17"), so nothing said between two
//! polls is lost. Answers to its own commands (`/who`, errors) wait in a
//! small inbox until its next request collects them. It leaves, announced
//! like anyone else, when it has made no request for a while and holds no
//! open stream.

use super::conn::{EventStream, Parked, State, Via};
use super::{ConnTimer, Server, Timer};
use crate::http::{Request, Response, Status};
use crate::hub::{History, MemberId, Transport};
use mio::Token;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Instant, SystemTime};

/// Hub links at and above this number are HTTP members (in the loop's
/// table), below it connection tokens.
pub(super) const HTTP_LINK_BASE: usize = 1 << 48;

/// Answers a member may have waiting before the oldest are dropped (and
/// the drop is counted and told).
const INBOX_LIMIT: usize = 100;

/// An HTTP chat member, as the loop knows it.
#[derive(Debug)]
pub(super) struct HttpMember {
    pub token: String,
    pub member: MemberId,
    pub last_seen: Instant,
    /// Open event streams and parked long polls: while any is open, the
    /// member is present even without new requests.
    pub attached: u32,
    pub inbox: VecDeque<Rc<str>>,
    pub inbox_dropped: u64,
}

impl Server {
    /// The member a request speaks for: the one its `token` names, or a
    /// new one (joined to `room`, default lobby) when it names none.
    fn http_member(&mut self, token: Token, request: &Request) -> Result<usize, Response> {
        if let Some(value) = request.query_param("token") {
            return match self.http_tokens.get(value) {
                Some(&key) => {
                    if let Some(m) = self.http_members.get_mut(key) {
                        m.last_seen = self.now;
                    }
                    Ok(key)
                }
                None => Err(Response::refusal(
                    Status::GONE,
                    "unknown or expired member token; start again without one",
                )),
            };
        }
        if self.http_members.len() >= self.config.max_http_members {
            return Err(
                Response::refusal(Status::SERVICE_UNAVAILABLE, "too many HTTP chat members")
                    .header("Retry-After", "5"),
            );
        }
        let secret = format!(
            "{:016x}{:016x}",
            crate::client::random_u64(),
            crate::client::random_u64()
        );
        let entry = self.http_members.vacant_entry();
        let key = entry.key();
        let (local, peer) = self
            .conns
            .get(token.0)
            .map_or((self.web_addr, self.web_addr), |c| (c.local, c.peer));
        let welcome = format!("server {local}, you are {peer} over HTTP");
        let member = self.hub.join(HTTP_LINK_BASE + key, Transport::Http, &welcome);
        entry.insert(HttpMember {
            token: secret.clone(),
            member,
            last_seen: self.now,
            attached: 0,
            inbox: VecDeque::new(),
            inbox_dropped: 0,
        });
        self.http_tokens.insert(secret, key);
        log::debug!(
            "HTTP member {} joined from {peer}",
            self.hub.name(member).unwrap_or("?")
        );
        if self.http_members.len() == 1 {
            let at = self.now + self.config.http_member_timeout / 2;
            self.timers.schedule(at, Timer::SweepHttpMembers);
        }
        self.deliver();
        if let Some(room) = request
            .query_param("room")
            .filter(|r| *r != crate::hub::LOBBY && !r.is_empty())
        {
            let room = percent_decode(room);
            self.hub.text(member, &format!("/join {room}"), SystemTime::now());
            self.deliver();
        }
        Ok(key)
    }

    /// `GET /poll` and `GET /longpoll`.
    pub(super) fn poll(&mut self, token: Token, request: &Request, long: bool) {
        let via = if long { Via::LongPoll } else { Via::Poll };
        self.count_request(token, via, request);
        let key = match self.http_member(token, request) {
            Ok(key) => key,
            Err(response) => return self.respond(token, response.close(!request.keep_alive())),
        };
        let Some(member) = self.http_members.get(key).map(|m| m.member) else {
            return;
        };
        let room = self.hub.room_of(member).unwrap_or(crate::hub::LOBBY).to_string();
        let since = self.since(member, &room, request);
        let ready = !self.hub.history(&room, since).lines.is_empty()
            || self.http_members.get(key).is_some_and(|m| !m.inbox.is_empty());
        if !long || ready {
            return self.answer_poll(token, key, &room, since, request.keep_alive());
        }
        // Nothing yet: park the request. It is answered when a line
        // arrives in the room (see `wake`) or when the timeout passes.
        let deadline = self.now + self.config.longpoll_timeout;
        if let Some(m) = self.http_members.get_mut(key) {
            m.attached += 1;
        }
        if let Some(conn) = self.conns.get_mut(token.0) {
            if let State::Http(http) = &mut conn.state {
                http.parked = Some(Parked {
                    member: key,
                    room,
                    since,
                    deadline,
                });
            }
        }
        self.waiters.push(token);
        self.schedule(token, ConnTimer::LongPollDeadline, deadline);
    }

    /// Where a poller starts reading: after `since` if it asks about the
    /// room it is in, otherwise from its arrival in its (new) room.
    fn since(&self, member: MemberId, room: &str, request: &Request) -> u64 {
        let asked_room = request.query_param("room").map(percent_decode);
        let since = request.query_param("since").and_then(|s| s.parse().ok());
        match (asked_room, since) {
            (Some(asked), Some(since)) if asked == room => since,
            (None, Some(since)) => since,
            _ => self.hub.joined_at(member),
        }
    }

    /// Answers a poll with the room's lines after `since` and the inbox.
    fn answer_poll(&mut self, token: Token, key: usize, room: &str, since: u64, keep_alive: bool) {
        let history = self.hub.history(room, since);
        let body = self.poll_body(key, room, &history);
        let delivered = history.lines.len() as u64;
        let via = self.conns.get(token.0).map_or(Via::Other, |c| c.via);
        self.stats.via(via).delivered += delivered;
        let response = Response::new(Status::OK)
            .header("Content-Type", "application/json")
            .header("Cache-Control", "no-store")
            .body(body.into_bytes())
            .close(!keep_alive);
        self.respond(token, response);
    }

    /// The JSON every HTTP chat answer carries.
    fn poll_body(&mut self, key: usize, room: &str, history: &History) -> String {
        let Some(m) = self.http_members.get_mut(key) else {
            return "{}".into();
        };
        let name = self.hub.name(m.member).unwrap_or("").to_string();
        let mut body = format!(
            "{{\"token\":\"{}\",\"name\":{},\"room\":{},\"next\":{},\"missed\":{},\"messages\":[",
            m.token,
            json_string(&name),
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
        body.push_str(&format!(
            "],\"replies_dropped\":{}}}\n",
            std::mem::take(&mut m.inbox_dropped)
        ));
        body
    }

    /// `POST /send`: the body is one line, as a telnet user would type it.
    pub(super) fn send_line(&mut self, token: Token, request: &Request) {
        self.count_request(token, Via::Send, request);
        // A page on another site must not post into the chat as the user
        // (cross-site request forgery); `Origin: null` included.
        if let Err(forbidden) = self.policy.check_origin(request, crate::origin::Purpose::Action) {
            return self.respond(
                token,
                Response::refusal(Status::FORBIDDEN, &forbidden.to_string()).close(true),
            );
        }
        let key = match self.http_member(token, request) {
            Ok(key) => key,
            Err(response) => return self.respond(token, response.close(!request.keep_alive())),
        };
        let Ok(text) = std::str::from_utf8(&request.body) else {
            return self.respond(
                token,
                Response::refusal(Status::BAD_REQUEST, "the body must be UTF-8 text"),
            );
        };
        let Some(member) = self.http_members.get(key).map(|m| m.member) else {
            return;
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            self.stats.messages_in += 1;
            self.hub.text(member, line, SystemTime::now());
            self.deliver();
            if !self.http_members.contains(key) {
                // The line was /quit.
                return self.respond(token, Response::new(Status::NO_CONTENT));
            }
        }
        let room = self.hub.room_of(member).unwrap_or(crate::hub::LOBBY).to_string();
        // Only the inbox and the position: the lines themselves come
        // through the member's reading transport.
        let seq = self.hub.room_seq(&room);
        let history = History {
            lines: Vec::new(),
            missed: 0,
            next: seq,
        };
        let body = self.poll_body(key, &room, &history);
        let response = Response::new(Status::OK)
            .header("Content-Type", "application/json")
            .header("Cache-Control", "no-store")
            .body(body.into_bytes())
            .close(!request.keep_alive());
        self.respond(token, response);
    }

    /// `GET /events`: server-sent events (WHATWG HTML §9.2). One response
    /// head, then `id:` and `data:` lines per chat line, for as long as the
    /// connection lasts. `Last-Event-ID` resumes after a reconnect.
    pub(super) fn event_stream(&mut self, token: Token, request: &Request) {
        self.count_request(token, Via::EventStream, request);
        let key = match self.http_member(token, request) {
            Ok(key) => key,
            Err(response) => return self.respond(token, response.close(!request.keep_alive())),
        };
        let Some(member) = self.http_members.get(key).map(|m| m.member) else {
            return;
        };
        let room = self.hub.room_of(member).unwrap_or(crate::hub::LOBBY).to_string();
        let resume = request
            .header("last-event-id")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let since = match resume {
            Some(id) => id,
            None => self.since(member, &room, request),
        };
        let Some(m) = self.http_members.get_mut(key) else {
            return;
        };
        m.attached += 1;
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-store\r\n\
X-Duplex-Token: {}\r\n\r\n",
            m.token
        );
        let hello = format!(
            "event: member\ndata: {{\"token\":\"{}\",\"room\":{}}}\n\n",
            m.token,
            json_string(&room)
        );
        if let Some(conn) = self.conns.get_mut(token.0) {
            conn.out.push_bytes(head.as_bytes());
            conn.out.push_bytes(hello.as_bytes());
        }
        self.set_state(
            token,
            State::EventStream(EventStream {
                member: key,
                room,
                last_seq: since,
            }),
        );
        self.waiters.push(token);
        self.schedule(
            token,
            ConnTimer::Heartbeat,
            self.now + super::EVENT_STREAM_KEEPALIVE,
        );
        self.mark_dirty(token);
        self.push_events(token);
    }

    /// Writes what an event stream has not sent yet: the inbox, and the
    /// room's lines after the last one sent.
    fn push_events(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        let State::EventStream(stream) = &mut conn.state else {
            return;
        };
        let Some(m) = self.http_members.get_mut(stream.member) else {
            return;
        };
        let room = self.hub.room_of(m.member).unwrap_or(crate::hub::LOBBY);
        if room != stream.room {
            // The member moved (`/join`): follow it from its arrival.
            stream.room = room.to_string();
            stream.last_seq = self.hub.joined_at(m.member);
            conn.out
                .push_bytes(format!("event: room\ndata: {}\n\n", stream.room).as_bytes());
        }
        let mut events = String::new();
        let mut delivered = 0;
        for text in m.inbox.drain(..) {
            events.push_str("event: reply\n");
            push_data(&mut events, &text);
        }
        let history = self.hub.history(&stream.room, stream.last_seq);
        if history.missed > 0 {
            events.push_str(&format!("event: missed\ndata: {}\n\n", history.missed));
        }
        for (seq, text) in &history.lines {
            events.push_str(&format!("id: {seq}\n"));
            push_data(&mut events, text);
            delivered += 1;
        }
        stream.last_seq = history.next.max(stream.last_seq);
        if events.is_empty() {
            return;
        }
        conn.out.push_bytes(events.as_bytes());
        self.stats.via(Via::EventStream).delivered += delivered;
        self.stats.messages_out += delivered;
        self.mark_dirty(token);
    }

    /// A line was added to `room`, or an inbox filled: answer the parked
    /// long polls and feed the event streams that were waiting for it.
    /// O(n) in waiting HTTP connections per line, which is fine for the
    /// thousands this transport is meant for (WebSocket is the scalable one).
    pub(super) fn wake(&mut self, room: Option<&str>, member_key: Option<usize>) {
        let waiters = std::mem::take(&mut self.waiters);
        let mut still = Vec::with_capacity(waiters.len());
        for token in waiters {
            let Some(conn) = self.conns.get(token.0) else {
                continue;
            };
            match &conn.state {
                State::EventStream(stream) => {
                    still.push(token);
                    let member = self.http_members.get(stream.member).map(|m| m.member);
                    let current = member.and_then(|m| self.hub.room_of(m));
                    if room.is_some_and(|r| Some(r) == current) || member_key == Some(stream.member) {
                        self.push_events(token);
                    }
                }
                State::Http(http) => {
                    let Some(parked) = &http.parked else { continue };
                    let member = self.http_members.get(parked.member).map(|m| m.member);
                    let current = member.and_then(|m| self.hub.room_of(m)).map(str::to_string);
                    let hit =
                        (room.is_some() && room == current.as_deref()) || member_key == Some(parked.member);
                    if hit {
                        self.release_parked(token);
                    } else {
                        still.push(token);
                    }
                }
                _ => {}
            }
        }
        still.append(&mut self.waiters);
        self.waiters = still;
    }

    /// Answers a parked long poll now (a line arrived, or its time is up),
    /// then reads the requests that were pipelined behind it.
    pub(super) fn release_parked(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        let State::Http(http) = &mut conn.state else {
            return;
        };
        let Some(parked) = http.parked.take() else { return };
        let stash = std::mem::take(&mut http.stash);
        if let Some(m) = self.http_members.get_mut(parked.member) {
            m.attached = m.attached.saturating_sub(1);
            m.last_seen = self.now;
        }
        let member = self.http_members.get(parked.member).map(|m| m.member);
        let room = member
            .and_then(|m| self.hub.room_of(m))
            .unwrap_or(&parked.room)
            .to_string();
        let since = if room == parked.room {
            parked.since
        } else {
            member.map_or(0, |m| self.hub.joined_at(m))
        };
        self.answer_poll(token, parked.member, &room, since, true);
        if !stash.is_empty() {
            let mut stash = stash;
            self.on_input(token, &mut stash);
        }
    }

    /// A connection that carried a member's stream or parked poll is done.
    pub(super) fn detach_http(&mut self, key: usize) {
        if let Some(m) = self.http_members.get_mut(key) {
            m.attached = m.attached.saturating_sub(1);
            m.last_seen = self.now;
        }
    }

    /// An answer from the hub for an HTTP member: into its inbox.
    pub(super) fn http_inbox(&mut self, key: usize, text: &Rc<str>) {
        let Some(m) = self.http_members.get_mut(key) else {
            return;
        };
        if m.inbox.len() >= INBOX_LIMIT {
            m.inbox.pop_front();
            m.inbox_dropped += 1;
        }
        m.inbox.push_back(text.clone());
        self.wake(None, Some(key));
    }

    /// The member said `/quit`, or its time is up: it leaves the hub.
    pub(super) fn remove_http_member(&mut self, key: usize, why: &str) {
        let Some(m) = self.http_members.try_remove(key) else {
            return;
        };
        self.http_tokens.remove(&m.token);
        log::debug!(
            "HTTP member {} left: {why}",
            self.hub.name(m.member).unwrap_or("?")
        );
        self.hub.leave(m.member);
        self.deliver();
    }

    /// Drops HTTP members that stopped polling.
    pub(super) fn sweep_http_members(&mut self) {
        let timeout = self.config.http_member_timeout;
        let gone: Vec<usize> = self
            .http_members
            .iter()
            .filter(|(_, m)| m.attached == 0 && self.now.duration_since(m.last_seen) >= timeout)
            .map(|(key, _)| key)
            .collect();
        for key in gone {
            self.remove_http_member(key, "stopped polling");
        }
        if !self.http_members.is_empty() {
            self.timers
                .schedule(self.now + timeout / 2, Timer::SweepHttpMembers);
        }
    }

    /// Counts a request and its bytes under its transport.
    fn count_request(&mut self, token: Token, via: Via, request: &Request) {
        if let Some(conn) = self.conns.get_mut(token.0) {
            conn.via = via;
        }
        let stats = self.stats.via(via);
        stats.requests += 1;
        stats.bytes_in += request.wire_len as u64;
    }
}

/// One SSE `data:` field per line of text, then the blank line that ends
/// the event.
fn push_data(events: &mut String, text: &str) {
    for line in text.split('\n') {
        events.push_str("data: ");
        events.push_str(line.trim_end_matches('\r'));
        events.push('\n');
    }
    events.push('\n');
}

/// A JSON string literal (RFC 8259 §7).
pub(super) fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Decodes `%XX` and `+` in a query value.
pub(super) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings() {
        assert_eq!(json_string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }

    #[test]
    fn percent() {
        assert_eq!(percent_decode("a%20b+c%zz%4"), "a b c%zz%4");
    }
}
