//! `GET /poll` and `GET /longpoll`: the chat by asking. A short poll is
//! answered at once; a long poll with nothing to say yet is *parked* (a
//! state of its HTTP connection) until a line arrives in its room, a reply
//! arrives for its member, or `--longpoll-timeout` passes.

use super::conn::Via;
use super::context::{Context, Next};
use super::http::Http;
use super::members::{json_response, MemberKey};
use super::timers::ConnTimer;
use crate::http::{percent_decode, Request};
use crate::hub::{fold_name, MemberId};
use std::time::Instant;

/// A parked long poll.
#[derive(Debug)]
pub(super) struct LongPoll {
    /// The HTTP member it polls for.
    pub member: MemberKey,
    /// The room and line number the poller asked about.
    pub room: String,
    pub since: u64,
    /// Answered empty at this time if nothing came.
    pub deadline: Instant,
    /// The request allowed the connection to stay open after the answer.
    pub keep_alive: bool,
    /// The page's origin, if it polls from another one the policy lets
    /// act: named in the answer so the browser lets the page read it.
    pub allow_origin: Option<Box<str>>,
}

/// `GET /poll` (`long` false) and `GET /longpoll`, for member `key`.
pub(super) fn poll(http: &mut Http, cx: &mut Context, key: MemberKey, request: &Request, long: bool) -> Next {
    let Some((member, room)) = cx.member_room(key) else {
        return Next::Continue;
    };
    let since = since(cx, member, &room, request);
    let ready = !cx.hub.history(&room, since).lines.is_empty()
        || cx.members.get(key).is_some_and(|m| !m.inbox.is_empty());
    let allow_origin = cx.policy.cors_origin(request);
    if !long || ready {
        return answer(http, cx, key, &room, since, request.keep_alive(), allow_origin);
    }
    // Nothing yet: park the request. It is answered when a line arrives in
    // the room (see `Server::wake`) or when the timeout passes.
    let deadline = cx.now + cx.config.longpoll_timeout;
    cx.members.attach(key);
    http.park(LongPoll {
        member: key,
        room,
        since,
        deadline,
        keep_alive: request.keep_alive(),
        allow_origin: allow_origin.map(Box::from),
    });
    let token = cx.token;
    cx.waiters.push(token);
    cx.schedule(ConnTimer::LongPollDeadline, deadline);
    Next::Continue
}

impl Http {
    /// Answers the parked long poll now: a line arrived, or its time is
    /// up. The requests pipelined behind it are read next (`Server::resume`).
    pub fn release(&mut self, cx: &mut Context) -> Next {
        let Some(parked) = self.unpark() else {
            return Next::Continue;
        };
        let now = cx.now;
        cx.members.detach(parked.member, now);
        let Some((member, room)) = cx.member_room(parked.member) else {
            return Next::Continue;
        };
        // A member that moved rooms meanwhile reads its new room from its
        // arrival there.
        let since = if room == parked.room {
            parked.since
        } else {
            cx.hub.joined_at(member)
        };
        let origin = parked.allow_origin.as_deref();
        answer(self, cx, parked.member, &room, since, parked.keep_alive, origin)
    }
}

/// Answers a poll with the room's lines after `since` and the inbox.
fn answer(
    http: &mut Http,
    cx: &mut Context,
    key: MemberKey,
    room: &str,
    since: u64,
    keep_alive: bool,
    allow_origin: Option<&str>,
) -> Next {
    let history = cx.hub.history(room, since);
    let body = cx.poll_body(key, room, &history);
    let via = *cx.via;
    cx.stats.via(via).delivered += history.lines.len() as u64;
    http.respond(cx, json_response(body, keep_alive).allow_origin(allow_origin))
}

/// Where a poller starts reading: after `since` if it asks about the room
/// it is in, otherwise from its arrival in its (new) room.
pub(super) fn since(cx: &Context, member: MemberId, room: &str, request: &Request) -> u64 {
    let asked_room = request.query_param("room").map(percent_decode);
    let since = request.query_param("since").and_then(|s| s.parse().ok());
    match (asked_room, since) {
        // Rooms are one room however their names are spelled (`Lobby`).
        (Some(asked), Some(since)) if fold_name(&asked) == fold_name(room) => since,
        (None, Some(since)) => since,
        _ => cx.hub.joined_at(member),
    }
}

/// Counts a request and its bytes under its transport.
pub(super) fn count_request(cx: &mut Context, via: Via, request: &Request) {
    *cx.via = via;
    let stats = cx.stats.via(via);
    stats.requests += 1;
    stats.bytes_in += request.wire_len as u64;
}
