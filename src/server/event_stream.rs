//! `GET /events`: server-sent events (WHATWG HTML §9.2). One response
//! head, then `id:` and `data:` lines per chat line, for as long as the
//! connection lasts. `Last-Event-ID` resumes after a reconnect.

use super::conn::{Protocol, Via};
use super::context::{Context, Next};
use super::long_poll::since;
use super::members::MemberKey;
use super::timers::ConnTimer;
use crate::http::{json_string, Request};
use std::time::Duration;

/// An idle event stream gets a comment line this often, so proxies and
/// browsers do not take the silence for a dead connection.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// A response that never ends, one event per chat line.
#[derive(Debug)]
pub(super) struct EventStream {
    /// The HTTP member it streams for, until it lets go.
    member: Option<MemberKey>,
    /// The room being streamed, and the last line number sent from it.
    /// (A `Box<str>`, not a `String`: it is never appended to, and the
    /// largest kind of connection sets every connection's size.)
    room: Box<str>,
    last_seq: u64,
}

impl EventStream {
    /// `GET /events` for member `key`: the request becomes a stream.
    pub fn start(cx: &mut Context, key: MemberKey, request: &Request) -> Next {
        let Some((member, room)) = cx.member_room(key) else {
            return Next::Continue;
        };
        let resume = request
            .header("last-event-id")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let last_seq = resume.unwrap_or_else(|| since(cx, member, &room, request));
        cx.members.attach(key);
        let secret = cx.members.get(key).map_or(String::new(), |m| m.token.clone());
        // An EventSource on a page of another origin the policy lets act
        // reads the stream only if the head names that origin (Fetch §3.2).
        let cors = cx.policy.cors_origin(request).map_or(String::new(), |origin| {
            format!("Access-Control-Allow-Origin: {origin}\r\nVary: Origin\r\n")
        });
        let date = cx.shared.date.now();
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-store\r\n\
X-Duplex-Token: {secret}\r\n{cors}Date: {date}\r\n\r\n"
        );
        let hello = format!(
            "event: member\ndata: {{\"token\":\"{secret}\",\"room\":{}}}\n\n",
            json_string(&room)
        );
        cx.out.push_bytes(head.as_bytes());
        cx.out.push_bytes(hello.as_bytes());
        let token = cx.token;
        cx.waiters.push(token);
        let at = cx.now + KEEPALIVE;
        cx.schedule(ConnTimer::Heartbeat, at);
        let mut stream = EventStream {
            member: Some(key),
            room: room.into_boxed_str(),
            last_seq,
        };
        stream.push_events(cx);
        Next::Become(Protocol::EventStream(stream))
    }

    pub fn member(&self) -> Option<MemberKey> {
        self.member
    }

    /// The stream no longer keeps its member present.
    pub fn detach(&mut self) -> Option<MemberKey> {
        self.member.take()
    }

    /// Writes what the stream has not sent yet: the inbox, and the room's
    /// lines after the last one sent.
    pub fn push_events(&mut self, cx: &mut Context) {
        let Some((member, room)) = self.member.and_then(|key| cx.member_room(key)) else {
            return;
        };
        if *room != *self.room {
            // The member moved (`/join`): follow it from its arrival.
            self.last_seq = cx.hub.joined_at(member);
            cx.out
                .push_bytes(format!("event: room\ndata: {room}\n\n").as_bytes());
            self.room = room.into_boxed_str();
        }
        let mut events = String::new();
        if let Some(m) = self.member.and_then(|key| cx.shared.members.get_mut(key)) {
            for text in m.inbox.drain(..) {
                events.push_str("event: reply\n");
                push_data(&mut events, &text);
            }
        }
        let history = cx.hub.history(&self.room, self.last_seq);
        if history.missed > 0 {
            events.push_str(&format!("event: missed\ndata: {}\n\n", history.missed));
        }
        for (seq, text) in &history.lines {
            events.push_str(&format!("id: {seq}\n"));
            push_data(&mut events, text);
        }
        self.last_seq = history.next.max(self.last_seq);
        if events.is_empty() {
            return;
        }
        cx.out.push_bytes(events.as_bytes());
        let delivered = history.lines.len() as u64;
        cx.stats.via(Via::EventStream).delivered += delivered;
        cx.message_out(delivered);
    }

    /// The keep-alive: an SSE comment line, ignored by the browser, but it
    /// keeps the connection visibly alive.
    pub fn on_timer(&mut self, cx: &mut Context, timer: ConnTimer) -> Next {
        if timer == ConnTimer::Heartbeat {
            cx.out.push_bytes(b": keep-alive\n\n");
            let at = cx.now + KEEPALIVE;
            cx.schedule(ConnTimer::Heartbeat, at);
        }
        Next::Continue
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
