//! The HTTP members on the soak's loop: their keep-alive connections, the
//! requests each makes when it is due, and what is done with each answer.
//!
//! A member has at most two connections at a time: one it reads with (an
//! event stream, or one poll after another), and one it sends with (one
//! `POST /send` after another; lines that pile up meanwhile go together in
//! the next). Both are HTTP/1.1 keep-alive connections, one request at a
//! time, on the same `mio::Poll` as every other client, with tokens from
//! [`HTTP_TOKENS`] up. Every request has a deadline, an event stream may
//! not fall silent for long, and an idle connection is closed by the soak
//! before the server would close it (its `--handshake-timeout`, 10 s), so
//! a request never races the server's idle close.

use crate::cast::{Member, Sender, Step};
use crate::http_cast::{HttpMember, Leave, Life, Reading, Stage};
use crate::soak::Soak;
use duplex::random::random_u64;
use duplex_tools::conn::Conn;
use duplex_tools::http::{parse_head, request, take_answer, take_events, Head};
use mio::event::Event;
use mio::Token;
use slab::Slab;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The HTTP connections' tokens start here, far above the other clients'.
pub const HTTP_TOKENS: usize = 1 << 30;

/// The longest any answer may take; a long poll has its own timeout more.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// The server writes a comment to an idle event stream every 15 s.
const STREAM_SILENCE: Duration = Duration::from_secs(30);

/// An idle keep-alive connection is closed by the soak after this (the
/// server's own idle limit is 10 s).
const IDLE_KEEPALIVE: Duration = Duration::from_secs(5);

/// Bytes read and not yet used, on one connection: a poll's answer holds at
/// most a room's history (256 KiB by default).
const MAX_UNREAD: usize = 4 << 20;

/// Lines waiting for a member's `POST /send`.
const MAX_OUTBOX: usize = 64;

/// How long `/quit` may take: its `204`, and the end of the member's
/// reading.
const QUIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a churner waits for its own line to come back past its time.
const CHURN_GRACE: Duration = Duration::from_secs(10);

/// Beyond the server's sweep (a member is forgotten at most 1.5 times
/// `--http-member-timeout` after its last request), before the probe.
const SWEEP_MARGIN: Duration = Duration::from_secs(2);

/// What a connection is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Reader,
    Writer,
    /// One question, with a vanished member's old token.
    Probe,
}

impl Role {
    /// A label for counting connections and requests.
    fn kind(self, reading: Reading) -> &'static str {
        match (self, reading) {
            (Role::Probe, _) => "http probe",
            // A member that only sends has no reader.
            (Role::Writer, _) | (Role::Reader, Reading::Nothing) => "http send",
            (Role::Reader, Reading::Events) => "http events",
            (Role::Reader, Reading::LongPoll) => "http longpoll",
            (Role::Reader, Reading::Poll) => "http poll",
        }
    }
}

/// Where a connection stands; it moves between `Asked` and `Idle`, and
/// otherwise only forward.
#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// The connect is under way, the request queued behind it.
    Connecting { deadline: Instant },
    /// The request is out; its answer is due by the deadline.
    Asked { deadline: Instant },
    /// An event stream: its next bytes are due by the deadline.
    Streaming { deadline: Instant },
    /// Keep-alive, between requests.
    Idle { since: Instant },
    /// Finished; freed after this round.
    Done,
}

struct HttpConn {
    conn: Conn,
    member: usize,
    role: Role,
    phase: Phase,
}

/// The HTTP members and their connections.
pub struct Web {
    pub members: Slab<HttpMember>,
    conns: Slab<HttpConn>,
    /// Connections in `Connecting`, at most `--max-pending`.
    connecting: usize,
    reap: Vec<usize>,
    /// `--poll-interval`, `--http-member-timeout`, `--longpoll-timeout`.
    pub poll_interval: Duration,
    pub member_timeout: Duration,
    pub longpoll_timeout: Duration,
}

impl Web {
    pub fn new(poll_interval: Duration, member_timeout: Duration, longpoll_timeout: Duration) -> Web {
        Web {
            members: Slab::new(),
            conns: Slab::new(),
            connecting: 0,
            reap: Vec::new(),
            poll_interval,
            member_timeout,
            longpoll_timeout,
        }
    }

    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.conns.is_empty()
    }

    pub fn count(&self, pick: impl Fn(&HttpMember) -> bool) -> usize {
        self.members.iter().filter(|(_, m)| pick(m)).count()
    }
}

impl Soak {
    // -- the loop's events --

    /// Readiness on HTTP connection `j`.
    pub fn http_event(&mut self, j: usize, event: &Event) {
        let Some(c) = self.web.conns.get(j) else {
            return;
        };
        if matches!(c.phase, Phase::Connecting { .. }) {
            self.http_connected(j);
        }
        if event.is_writable() {
            self.http_flush(j);
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.http_readable(j);
        }
    }

    fn http_connected(&mut self, j: usize) {
        let c = &mut self.web.conns[j];
        match c.conn.connected() {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => return self.http_lost(j, &format!("connect: {e}")),
        }
        let Phase::Connecting { deadline } = c.phase else {
            return;
        };
        c.phase = Phase::Asked { deadline };
        self.web.connecting -= 1;
        let kind = c.role.kind(self.web.members[c.member].reading);
        *self.t.opened.entry(kind).or_default() += 1;
        self.http_flush(j);
    }

    fn http_flush(&mut self, j: usize) {
        let c = &mut self.web.conns[j];
        if matches!(c.phase, Phase::Connecting { .. } | Phase::Done) {
            return;
        }
        if let Err(e) = c.conn.flush() {
            self.http_lost(j, &format!("write: {e}"));
        }
    }

    fn http_readable(&mut self, j: usize) {
        let c = &mut self.web.conns[j];
        if matches!(c.phase, Phase::Connecting { .. } | Phase::Done) {
            return;
        }
        let mut buf = std::mem::take(&mut self.read_buf);
        let ended = c.conn.read_to_input_within(&mut buf, MAX_UNREAD).err();
        self.read_buf = buf;
        self.http_input(j);
        match ended {
            Some(why) if self.web.conns[j].phase != Phase::Done => self.http_eof(j, &why),
            _ => {}
        }
    }

    /// Takes whole answers (or a stream's events) off the input.
    fn http_input(&mut self, j: usize) {
        while let Some(c) = self.web.conns.get_mut(j) {
            let m = c.member;
            match c.phase {
                Phase::Asked { .. } => {}
                Phase::Streaming { .. } => return self.http_stream(j),
                _ => return,
            }
            if let Ok(Some(head)) = parse_head(&c.conn.input) {
                if is_event_stream(&head) {
                    c.conn.input.drain(..head.len);
                    c.phase = Phase::Streaming {
                        deadline: Instant::now() + STREAM_SILENCE,
                    };
                    let token = head.header("x-duplex-token");
                    self.web.members[m].check_token(&mut self.t, token);
                    continue;
                }
            }
            match take_answer(&mut c.conn.input, MAX_UNREAD) {
                Ok(Some((head, body))) => self.http_answer(j, head, body),
                Ok(None) => return,
                Err(e) => {
                    self.web.members[m].bad(&mut self.t, &e);
                    return self.http_drop_member(m);
                }
            }
        }
    }

    /// An event stream's new events, each checked.
    fn http_stream(&mut self, j: usize) {
        let c = &mut self.web.conns[j];
        c.phase = Phase::Streaming {
            deadline: Instant::now() + STREAM_SILENCE,
        };
        let m = c.member;
        let member = &mut self.web.members[m];
        for event in take_events(&mut c.conn.input) {
            member.read_event(&mut self.t, &event);
        }
        self.http_joined(m);
    }

    /// The server closed connection `j`, or it broke.
    fn http_eof(&mut self, j: usize, why: &str) {
        let c = &self.web.conns[j];
        let m = c.member;
        let member = &self.web.members[m];
        match c.phase {
            // The server may close a keep-alive connection between requests.
            Phase::Idle { .. } => {
                self.t.http.idle_closed += 1;
                self.http_finish(j);
            }
            // A quitting member's stream ends: the right end, if its
            // `* bye` came first.
            Phase::Streaming { .. } if member.is_quitting() => {
                if !member.bye {
                    self.t.http.quit_failed += 1;
                    let name = member.chat.name.clone();
                    self.t
                        .note(format!("http {name}: stream ended without its * bye"));
                    return self.http_drop_member(m);
                }
                self.http_finish(j);
            }
            _ => self.http_lost(j, why),
        }
    }

    /// Connection `j` broke while it was needed: its member is lost.
    fn http_lost(&mut self, j: usize, why: &str) {
        let c = &self.web.conns[j];
        let m = c.member;
        let member = &self.web.members[m];
        self.t.http.conns_lost += 1;
        let kind = c.role.kind(member.reading);
        if matches!(c.phase, Phase::Connecting { .. }) {
            *self.t.connect_failed.entry(kind).or_default() += 1;
        }
        let note = format!("http {} ({kind}, {:?}): {why}", member.chat.name, c.phase);
        self.t.note(note);
        self.http_drop_member(m);
    }

    // -- answers --

    /// A whole answer on connection `j`, to the request it was asked.
    fn http_answer(&mut self, j: usize, head: Head, body: Vec<u8>) {
        let now = Instant::now();
        let c = &mut self.web.conns[j];
        c.phase = Phase::Idle { since: now };
        let (m, role) = (c.member, c.role);
        match role {
            Role::Probe => self.http_probe_answer(m, head.status),
            Role::Writer => self.http_send_answer(m, j, &head, &body),
            Role::Reader => self.http_poll_answer(m, j, &head, &body),
        }
        if head.close && self.web.conns.get(j).is_some_and(|c| c.phase != Phase::Done) {
            self.http_finish(j);
        }
        if self.web.members.contains(m) {
            self.http_drive(m, now);
        }
    }

    fn http_poll_answer(&mut self, m: usize, j: usize, head: &Head, body: &[u8]) {
        let member = &mut self.web.members[m];
        match head.status {
            200 => {
                member.next = member.read_answer(&mut self.t, body);
                member.next_poll = Instant::now() + self.web.poll_interval;
                self.http_joined(m);
            }
            // A quitting member's polls end with this.
            410 if member.is_quitting() => self.http_finish(j),
            status => self.http_refused(m, status, body),
        }
    }

    fn http_send_answer(&mut self, m: usize, j: usize, head: &Head, body: &[u8]) {
        let member = &mut self.web.members[m];
        match (head.status, &member.stage) {
            (200, _) => {
                member.read_sent(&mut self.t, body);
                self.http_joined(m);
            }
            // `/quit` answered: the member is gone, and its reading must
            // end now. A poller asks at once.
            (204, &Stage::Quitting { deadline }) => {
                member.stage = Stage::Quit { deadline };
                member.next_poll = Instant::now();
                self.http_finish(j);
            }
            (status, _) => self.http_refused(m, status, body),
        }
    }

    /// A vanished member's probe: the server must have forgotten it.
    fn http_probe_answer(&mut self, m: usize, status: u16) {
        let member = &self.web.members[m];
        match status {
            410 => self.t.http.swept += 1,
            status => {
                self.t.http.not_swept += 1;
                let (name, silent) = (
                    member.guest.clone(),
                    self.web.member_timeout.mul_f64(1.5) + SWEEP_MARGIN,
                );
                self.t.note(format!(
                    "http {name:?}: still known {:.1} s after its last request (answered {status})",
                    silent.as_secs_f64()
                ));
            }
        }
        self.http_drop_member(m);
    }

    /// An answer the member did not expect: `410 Gone` means the server
    /// forgot a member that had not left.
    fn http_refused(&mut self, m: usize, status: u16, body: &[u8]) {
        let member = &self.web.members[m];
        let body = String::from_utf8_lossy(body);
        if status == 410 {
            self.t.http.expired += 1;
            let name = member.chat.name.clone();
            self.t
                .note(format!("http {name}: 410 Gone while present: {}", body.trim()));
        } else {
            member.bad(&mut self.t, &format!("answered {status}: {}", body.trim()));
        }
        self.http_drop_member(m);
    }

    /// After what it read: once the member has its token, it says its
    /// first line (steady members `/nick NAME`, churners their one line).
    fn http_joined(&mut self, m: usize) {
        let member = &mut self.web.members[m];
        if member.chat.step != Step::Welcome || member.token.is_none() {
            return;
        }
        match member.churn_line() {
            Some(line) => {
                member.outbox.push(line);
                member.chat.step = Step::Ready;
            }
            None => {
                member.outbox.push(format!("/nick {}", member.chat.name));
                member.chat.step = Step::Naming;
            }
        }
    }

    // -- the clock's work --

    /// Deadlines, idle connections, and each member's due requests.
    pub fn http_tick(&mut self, now: Instant) {
        let conns: Vec<usize> = self.web.conns.iter().map(|(j, _)| j).collect();
        for j in conns {
            self.http_deadline(j, now);
        }
        let members: Vec<usize> = self.web.members.iter().map(|(m, _)| m).collect();
        for m in members {
            self.http_drive(m, now);
        }
        self.http_reap();
    }

    fn http_deadline(&mut self, j: usize, now: Instant) {
        let c = &self.web.conns[j];
        match c.phase {
            Phase::Idle { since } if now >= since + IDLE_KEEPALIVE => self.http_finish(j),
            Phase::Connecting { deadline } | Phase::Asked { deadline } | Phase::Streaming { deadline }
                if now >= deadline =>
            {
                self.t.http.timeouts += 1;
                let member = &self.web.members[c.member];
                let note = format!(
                    "http {} ({}): nothing in time ({:?})",
                    member.chat.name,
                    c.role.kind(member.reading),
                    c.phase
                );
                self.t.note(note);
                self.http_drop_member(c.member);
            }
            _ => {}
        }
    }

    /// What member `m` does now, by where it stands.
    fn http_drive(&mut self, m: usize, now: Instant) {
        let member = &mut self.web.members[m];
        match member.stage {
            Stage::Present => {
                self.http_resume_due(m, now);
                self.http_life(m, now);
                self.http_lines_due(m, now);
            }
            Stage::Quit { .. } if member.reader.is_none() => {
                self.t.http.quit_ok += 1;
                member.stage = Stage::Gone;
                return;
            }
            Stage::Quitting { deadline } | Stage::Quit { deadline } => {
                if now >= deadline {
                    self.t.http.quit_failed += 1;
                    let note = format!("http {}: /quit not over within 10 s", member.chat.name);
                    self.t.note(note);
                    return self.http_drop_member(m);
                }
            }
            Stage::Vanished { probe_at } if now >= probe_at => return self.http_probe(m, now),
            Stage::Vanished { .. } | Stage::Probing | Stage::Gone => return,
        }
        // It may have just left (vanished, or failed a check).
        let member = &self.web.members[m];
        if member.stage != Stage::Present && !member.is_quitting() {
            return;
        }
        self.http_read_due(m, now);
        self.http_write_due(m, now);
    }

    /// A churner whose time is up, and whose line came back (or will not),
    /// leaves the way it was planned to.
    fn http_life(&mut self, m: usize, now: Instant) {
        let member = &mut self.web.members[m];
        let Life::Churn { until, leave, .. } = member.life else {
            return;
        };
        if now < until || (!member.heard_own && now < until + CHURN_GRACE) {
            return;
        }
        if !member.heard_own {
            self.t.http.lost += 1;
            let note = format!("http {:?}: its own line never came back", member.guest);
            self.t.note(note);
        }
        match leave {
            Leave::Quit => self.http_quit(m, now),
            Leave::Vanish => {
                for j in [member.reader, member.writer].into_iter().flatten() {
                    self.http_finish(j);
                }
                let member = &mut self.web.members[m];
                member.outbox.clear();
                let probe_at = now + self.web.member_timeout.mul_f64(1.5) + SWEEP_MARGIN;
                member.stage = Stage::Vanished { probe_at };
            }
        }
    }

    /// Halfway through its stay, a churner reading over events lets its
    /// stream go; `http_read_due` opens a new one with `Last-Event-ID`.
    fn http_resume_due(&mut self, m: usize, now: Instant) {
        let member = &mut self.web.members[m];
        let Life::Churn { resume_at, .. } = &mut member.life else {
            return;
        };
        let streaming = |j: usize| matches!(self.web.conns[j].phase, Phase::Streaming { .. });
        match (*resume_at, member.reader) {
            (Some(at), Some(j)) if now >= at && streaming(j) && member.last_id.is_some() => {
                *resume_at = None;
                self.t.http.resumed += 1;
                self.http_finish(j);
            }
            _ => {}
        }
    }

    /// Says `/quit` (after any lines still waiting).
    pub fn http_quit(&mut self, m: usize, now: Instant) {
        let member = &mut self.web.members[m];
        member.outbox.push("/quit".to_string());
        member.stage = Stage::Quitting {
            deadline: now + QUIT_TIMEOUT,
        };
    }

    /// A sender's `seq` lines due by `now`, into its outbox; a member that
    /// only sends says an empty `POST /send` when it has been quiet for a
    /// third of the server's timeout, so that it is not forgotten.
    fn http_lines_due(&mut self, m: usize, now: Instant) {
        let member = &mut self.web.members[m];
        let heartbeat = now >= member.last_sent + self.web.member_timeout / 3 && member.outbox.is_empty();
        if member.reading == Reading::Nothing && member.chat.step == Step::Ready && heartbeat {
            member.outbox.push(String::new());
        }
        let Some(sender) = member.chat.sender.as_mut() else {
            return;
        };
        while self.load_on && member.chat.step == Step::Ready && now >= sender.next_at {
            if member.outbox.len() >= MAX_OUTBOX {
                self.t.http.held_back += 1;
                sender.next_at += sender.interval;
                continue;
            }
            member.outbox.push(sender.next_line(&member.chat.name));
            self.t.seq_sent += 1;
            let room = member.chat.room.clone();
            self.senders.insert(member.chat.name.clone(), (room, sender.sent));
        }
    }

    /// The member's next read, if one is due and its reader is free.
    fn http_read_due(&mut self, m: usize, now: Instant) {
        let member = &self.web.members[m];
        let free = member
            .reader
            .is_none_or(|j| matches!(self.web.conns[j].phase, Phase::Idle { .. }));
        // Quitting, it reads on only until its reader is refused (`410`).
        if member.is_quitting() && member.reader.is_none() {
            return;
        }
        let due = match member.reading {
            Reading::Nothing => false,
            // A stream, opened again if the member let it go.
            Reading::Events => member.reader.is_none(),
            Reading::LongPoll => true,
            Reading::Poll => now >= member.next_poll,
        };
        if !free || !due || (member.token.is_some() && member.chat.step == Step::Welcome) {
            return;
        }
        let path = member.reading.path();
        let target = match (&member.token, member.next) {
            (Some(token), Some(next)) => format!("{path}?token={token}&since={next}"),
            (Some(token), None) => format!("{path}?token={token}"),
            (None, _) => format!("{path}?room={}", member.chat.room),
        };
        let timeout = match member.reading {
            Reading::LongPoll => ANSWER_TIMEOUT + self.web.longpoll_timeout,
            _ => ANSWER_TIMEOUT,
        };
        // A stream opened again resumes after the last line read (WHATWG
        // HTML §9.2.4): none may be missed, and none come twice.
        let last = member.last_id.filter(|_| member.reading == Reading::Events);
        let last = last.map(|id| id.to_string());
        let headers: Vec<(&str, &str)> = last.iter().map(|id| ("Last-Event-ID", id.as_str())).collect();
        let bytes = self.http_bytes("GET", &target, &headers, b"");
        self.http_request(m, Role::Reader, bytes, now + timeout);
    }

    /// The member's waiting lines in one `POST /send`, if its writer is
    /// free. A member that only sends joins with its first one.
    fn http_write_due(&mut self, m: usize, now: Instant) {
        let member = &mut self.web.members[m];
        let link = member.writer;
        let free = link.is_none_or(|j| matches!(self.web.conns[j].phase, Phase::Idle { .. }));
        let target = match &member.token {
            Some(token) => format!("/send?token={token}"),
            None if member.reading == Reading::Nothing && link.is_none() => {
                format!("/send?room={}", member.chat.room)
            }
            None => return,
        };
        if member.outbox.is_empty() || !free {
            return;
        }
        let mut body = member.outbox.join("\n");
        body.push('\n');
        let deadline = now + ANSWER_TIMEOUT;
        let bytes = self.http_bytes("POST", &target, &[], body.as_bytes());
        if self.http_request(m, Role::Writer, bytes, deadline) {
            let member = &mut self.web.members[m];
            member.outbox.clear();
            member.last_sent = now;
        }
    }

    /// A vanished member asks once more with its old token.
    fn http_probe(&mut self, m: usize, now: Instant) {
        let member = &self.web.members[m];
        let target = format!("/poll?token={}", member.token.as_deref().unwrap_or(""));
        let bytes = self.http_bytes("GET", &target, &[], b"");
        if self.http_request(m, Role::Probe, bytes, now + ANSWER_TIMEOUT) {
            self.web.members[m].stage = Stage::Probing;
        }
    }

    // -- connections --

    /// A request's bytes, for this server.
    fn http_bytes(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
        request(method, &self.http.to_string(), target, headers, body)
    }

    /// Sends a request on the member's connection for `role`, opening one
    /// if it has none (or if it is a probe, which has its own). `false`
    /// when no connection can be had this round (the caller asks again).
    fn http_request(&mut self, m: usize, role: Role, bytes: Vec<u8>, deadline: Instant) -> bool {
        let member = &self.web.members[m];
        let link = match role {
            Role::Writer => member.writer,
            Role::Reader => member.reader,
            Role::Probe => None,
        };
        let kind = role.kind(member.reading);
        let j = match link {
            Some(j) => j,
            None => match self.http_open(m, role, deadline) {
                Some(j) => j,
                None => return false,
            },
        };
        self.t
            .http
            .count_request(kind.strip_prefix("http ").unwrap_or(kind));
        let c = &mut self.web.conns[j];
        c.conn.out.extend_from_slice(&bytes);
        if !matches!(c.phase, Phase::Connecting { .. }) {
            c.phase = Phase::Asked { deadline };
        }
        self.http_flush(j);
        true
    }

    /// A new connection for member `m`, or `None` while too many are
    /// connecting (the member asks again on a later round).
    fn http_open(&mut self, m: usize, role: Role, deadline: Instant) -> Option<usize> {
        if self.web.connecting >= self.cli.max_pending {
            return None;
        }
        let entry = self.web.conns.vacant_entry();
        let j = entry.key();
        let kind = role.kind(self.web.members[m].reading);
        match Conn::connect(self.poll.registry(), self.http, Token(HTTP_TOKENS + j)) {
            Ok(conn) => {
                entry.insert(HttpConn {
                    conn,
                    member: m,
                    role,
                    phase: Phase::Connecting { deadline },
                });
            }
            Err(e) => {
                *self.t.connect_failed.entry(kind).or_default() += 1;
                self.t.http.conns_lost += 1;
                self.t.note(format!("{kind}: connect: {e}"));
                self.http_drop_member(m);
                return None;
            }
        }
        self.web.connecting += 1;
        let member = &mut self.web.members[m];
        match role {
            Role::Writer => member.writer = Some(j),
            Role::Reader | Role::Probe => member.reader = Some(j),
        }
        Some(j)
    }

    /// Marks connection `j` finished: its member lets go of it, and it is
    /// freed (its socket closed) after this round.
    fn http_finish(&mut self, j: usize) {
        let Some(c) = self.web.conns.get_mut(j) else {
            return;
        };
        match c.phase {
            Phase::Done => return,
            Phase::Connecting { .. } => self.web.connecting -= 1,
            _ => {}
        }
        c.phase = Phase::Done;
        self.web.reap.push(j);
        let member = &mut self.web.members[c.member];
        if member.reader == Some(j) {
            member.reader = None;
        }
        if member.writer == Some(j) {
            member.writer = None;
        }
    }

    /// A member that failed a check is given up: its connections are
    /// closed, and it is gone (the failure is already counted).
    fn http_drop_member(&mut self, m: usize) {
        let member = &mut self.web.members[m];
        member.stage = Stage::Gone;
        for j in [member.reader, member.writer].into_iter().flatten() {
            self.http_finish(j);
        }
    }

    /// Frees the finished connections, and the members gone with them.
    pub fn http_reap(&mut self) {
        for j in std::mem::take(&mut self.web.reap) {
            if let Some(mut c) = self.web.conns.try_remove(j) {
                let _ = self.poll.registry().deregister(&mut c.conn.socket);
            }
        }
        self.web
            .members
            .retain(|_, m| m.stage != Stage::Gone || m.reader.is_some() || m.writer.is_some());
    }

    // -- the cast --

    /// Queues the steady HTTP members: by turns one reading over events,
    /// one long polling, one short polling and one that only sends. Every
    /// member that only sends is a sender, and one reader in
    /// `--sender-every` of each kind.
    pub fn plan_http_members(&mut self) {
        let now = Instant::now();
        for n in 0..self.cli.http_members {
            let reading = [
                Reading::Events,
                Reading::LongPoll,
                Reading::Poll,
                Reading::Nothing,
            ][n % 4];
            let every = self.cli.sender_every;
            let sends = reading == Reading::Nothing || (every > 0 && (n / 4) % every == 0);
            // A member that only sends joins with its first `POST /send`,
            // which names it too.
            let step = if reading == Reading::Nothing {
                Step::Naming
            } else {
                Step::Welcome
            };
            let chat = Member {
                name: format!("h{n}"),
                room: format!("room-{}", n % self.cli.rooms.max(1)),
                step,
                sender: sends.then(|| Sender {
                    interval: Duration::from_secs_f64(1.0 / self.cli.send_rate.max(0.001)),
                    next_at: now,
                    sent: 0,
                    pad: 0,
                }),
                seen: HashMap::new(),
                flooder: false,
            };
            let mut member = HttpMember::new(reading, Life::Steady, chat, now);
            if reading == Reading::Nothing {
                member.outbox.push(format!("/nick {}", member.chat.name));
            }
            self.web.members.insert(member);
        }
    }

    /// A churning HTTP member: it reads over events, long polls or short
    /// polls, in turn, and leaves by `/quit` or by vanishing, in turn, after
    /// 2 to 6 seconds.
    pub fn plan_http_churn(&mut self, n: u64) {
        let now = Instant::now();
        let reading = [Reading::Events, Reading::LongPoll, Reading::Poll][(n % 3) as usize];
        let leave = if (n / 3) % 2 == 0 {
            Leave::Quit
        } else {
            Leave::Vanish
        };
        if leave == Leave::Vanish {
            self.t.http.vanishing += 1;
        }
        let stay = Duration::from_millis(2000 + random_u64() % 4000);
        let chat = Member {
            name: format!("http-churn-{n}"),
            room: format!("room-{}", random_u64() % self.cli.rooms.max(1) as u64),
            step: Step::Welcome,
            sender: None,
            seen: HashMap::new(),
            flooder: false,
        };
        let life = Life::Churn {
            number: n,
            until: now + stay,
            leave,
            resume_at: (reading == Reading::Events).then(|| now + stay / 2),
        };
        self.web.members.insert(HttpMember::new(reading, life, chat, now));
    }

    /// At the end, every member still present says `/quit`; any other is
    /// let go.
    pub fn http_close_all(&mut self) {
        let now = Instant::now();
        let members: Vec<usize> = self.web.members.iter().map(|(m, _)| m).collect();
        for m in members {
            let member = &self.web.members[m];
            match member.stage {
                Stage::Present if member.token.is_some() => self.http_quit(m, now),
                Stage::Quitting { .. } | Stage::Quit { .. } => {}
                _ => self.http_drop_member(m),
            }
        }
        self.http_reap();
    }

    /// Frees every HTTP connection and member, whatever their state.
    pub fn http_drop_all(&mut self) {
        let members: Vec<usize> = self.web.members.iter().map(|(m, _)| m).collect();
        for m in members {
            self.http_drop_member(m);
        }
        self.http_reap();
    }
}

/// The head that starts an event stream: a `200` without a length.
fn is_event_stream(head: &Head) -> bool {
    head.status == 200
        && head.content_length.is_none()
        && head
            .header("content-type")
            .is_some_and(|v| v.starts_with("text/event-stream"))
}
