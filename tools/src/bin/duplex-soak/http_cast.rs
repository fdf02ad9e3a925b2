//! The HTTP members: chat members with no lasting socket, known to the
//! server by a token, that read their room over server-sent events
//! (`/events`), long polling (`/longpoll`) or short polling (`/poll`), or
//! do not read at all, and say their lines with `POST /send`. Here is what
//! each remembers and how it checks what it reads; `http_soak.rs` carries
//! their requests on the loop.
//!
//! Every line said in a room has a number there, one more than the line
//! before, and an HTTP member reads it with that number (the event's `id:`,
//! or `messages[].id` in a poll's answer). So besides the `seq` lines' own
//! numbers, which every member checks, an HTTP member checks that the room's
//! numbers follow on, 1 by 1, from its own arrival (`* NAME joined ROOM` is
//! the first line it reads): a gap is a line lost, a number at or below the
//! last is a line doubled or reordered, and the server's `missed` must stay
//! 0.

use crate::cast::{check_order_from_first, check_seq, parse_seq, Member, Step};
use crate::tally::Tally;
use duplex_tools::http::Event;
use duplex_tools::json::Json;
use std::time::Instant;

/// How a member reads its room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// `GET /events`: one response that never ends.
    Events,
    /// `GET /longpoll?since=N`, asked again as soon as it is answered.
    LongPoll,
    /// `GET /poll?since=N`, every `--poll-interval`.
    Poll,
    /// It only sends.
    Nothing,
}

impl Reading {
    pub fn label(self) -> &'static str {
        match self {
            Reading::Events => "sse",
            Reading::LongPoll => "longpoll",
            Reading::Poll => "poll",
            Reading::Nothing => "send only",
        }
    }

    /// The request it reads with; a member that only sends joins with its
    /// first `POST /send`.
    pub fn path(self) -> &'static str {
        match self {
            Reading::Events => "/events",
            Reading::LongPoll => "/longpoll",
            Reading::Poll => "/poll",
            Reading::Nothing => "/send",
        }
    }
}

/// How a churning member leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leave {
    /// `POST /send` with `/quit`.
    Quit,
    /// It stops asking and drops its connections: the server must forget
    /// it after `--http-member-timeout`.
    Vanish,
}

pub enum Life {
    /// There from the setup to the goodbyes, under its own name.
    Steady,
    /// Joins during the load as `guest-N`, says one line, and leaves once
    /// it has read that line back and its time is up.
    Churn {
        number: u64,
        until: Instant,
        leave: Leave,
        /// Reading over events: when it lets its stream go and resumes it
        /// with `Last-Event-ID` (once).
        resume_at: Option<Instant>,
    },
}

/// Where a member stands on its way out; it only moves forward.
#[derive(Debug, PartialEq, Eq)]
pub enum Stage {
    Present,
    /// `/quit` said (or about to be), its `204` not in yet.
    Quitting {
        deadline: Instant,
    },
    /// `/quit` answered `204`: its reading must end by the same deadline
    /// (the stream closed after `* bye`, or the next poll refused with
    /// `410 Gone`).
    Quit {
        deadline: Instant,
    },
    /// It stopped asking and dropped its connections; at `probe_at`, past
    /// the server's sweep, it asks once more with its old token.
    Vanished {
        probe_at: Instant,
    },
    /// That last question is out: `410 Gone` is the right answer.
    Probing,
    /// Finished; freed with its last connection.
    Gone,
}

pub struct HttpMember {
    pub reading: Reading,
    pub life: Life,
    /// Its name, room, way in (`step`), lines to send and `seq` lines seen,
    /// as for any member.
    pub chat: Member,
    pub stage: Stage,
    /// The server's secret for it, from its first answer.
    pub token: Option<String>,
    /// The name the server gave it (`guest-N`).
    pub guest: Option<String>,
    /// The number of the last room line it read.
    pub last_id: Option<u64>,
    /// `next` from its last poll's answer: it asks `since` that next time.
    pub next: Option<u64>,
    pub next_poll: Instant,
    /// Its connections: the one it reads with (or probes with, once it has
    /// vanished) and the one it sends with.
    pub reader: Option<usize>,
    pub writer: Option<usize>,
    /// Lines waiting for the writer: they go in one `POST /send` once the
    /// one before is answered. Bounded by `http_soak::MAX_OUTBOX`.
    pub outbox: Vec<String>,
    /// When it last sent a `POST /send`.
    pub last_sent: Instant,
    /// A churner's own line came back to it.
    pub heard_own: bool,
    /// `* bye, NAME` reached it.
    pub bye: bool,
}

impl HttpMember {
    pub fn new(reading: Reading, life: Life, chat: Member, now: Instant) -> HttpMember {
        HttpMember {
            reading,
            life,
            chat,
            stage: Stage::Present,
            token: None,
            guest: None,
            last_id: None,
            next: None,
            next_poll: now,
            reader: None,
            writer: None,
            outbox: Vec::new(),
            last_sent: now,
            heard_own: false,
            bye: false,
        }
    }

    pub fn is_quitting(&self) -> bool {
        matches!(self.stage, Stage::Quitting { .. } | Stage::Quit { .. })
    }

    pub fn is_steady(&self) -> bool {
        matches!(self.life, Life::Steady)
    }

    /// A label for counting members by kind.
    pub fn kind(&self) -> &'static str {
        match (self.is_steady(), self.reading) {
            (true, reading) => reading.label(),
            (false, Reading::Events) => "churn (sse)",
            (false, Reading::LongPoll) => "churn (longpoll)",
            (false, _) => "churn (poll)",
        }
    }

    /// A member every line of its room must reach by the end: it stays,
    /// it reads, and it is in its room under its name.
    pub fn counts_lines(&self) -> bool {
        self.is_steady() && self.reading != Reading::Nothing && self.chat.step == Step::Ready
    }

    /// The name the room knows it by now.
    fn name(&self) -> &str {
        match (&self.life, &self.chat.step) {
            (Life::Steady, Step::Ready) => &self.chat.name,
            _ => self.guest.as_deref().unwrap_or(""),
        }
    }

    /// The line a churner says, and must read back.
    pub fn churn_line(&self) -> Option<String> {
        match self.life {
            Life::Churn { number, .. } => Some(format!("churn-http {number}")),
            Life::Steady => None,
        }
    }

    /// The token an answer carries must be this member's own; the first
    /// is how it learns it, and from then on it is a member.
    pub fn check_token(&mut self, t: &mut Tally, token: Option<&str>) {
        match (token, &self.token) {
            (Some(token), None) => {
                self.token = Some(token.to_string());
                *t.http.joined.entry(self.kind()).or_default() += 1;
            }
            (Some(token), Some(own)) if token != own => {
                t.http.foreign += 1;
                t.note(format!(
                    "http {}: an answer carries another member's token",
                    self.chat.name
                ));
            }
            _ => {}
        }
    }

    /// One room line, numbered `id` in the room.
    pub fn read_line(&mut self, t: &mut Tally, id: u64, text: &str) {
        if !self.in_order(t, id, text) {
            return;
        }
        *t.http.lines.entry(self.reading.label()).or_default() += 1;
        self.check_room(t, text);
        if self.chat.step == Step::Naming
            && text.starts_with("* guest-")
            && text.ends_with(&format!(" is now known as {}", self.chat.name))
        {
            self.chat.step = Step::Ready;
            t.http.ready += 1;
        }
        if let Some(seq) = parse_seq(text) {
            match self.life {
                Life::Steady => check_seq(t, &mut self.chat, &seq),
                // It arrived after the senders began: each sender's first
                // line it hears is where it starts counting.
                Life::Churn { .. } => check_order_from_first(t, &mut self.chat, &seq),
            }
        }
        if let Some(own) = self.churn_line() {
            self.heard_own |= text == format!("[{}] {}: {own}", self.chat.room, self.name());
        }
    }

    /// Checks a line's number against the last; `false` if it is doubled
    /// or reordered (and then not looked at further).
    fn in_order(&mut self, t: &mut Tally, id: u64, text: &str) -> bool {
        let expected = match self.last_id {
            Some(last) => last + 1,
            None => {
                let arrival = format!("* {} joined {}", self.name(), self.chat.room);
                if text != arrival {
                    t.http.lost += 1;
                    t.note(format!(
                        "http {}: first line #{id} is {text:?}, not its arrival {arrival:?}",
                        self.chat.name
                    ));
                }
                id
            }
        };
        if id < expected {
            t.http.doubled += 1;
            t.note(format!(
                "http {}: line #{id} after #{}",
                self.chat.name,
                expected - 1
            ));
            return false;
        }
        if id > expected {
            t.http.lost += id - expected;
            t.note(format!(
                "http {}: line #{id} after #{} (gap)",
                self.chat.name,
                expected - 1
            ));
        }
        self.last_id = Some(id);
        true
    }

    /// A chat line must come from its own room, and none may come after
    /// its own departure.
    fn check_room(&mut self, t: &mut Tally, text: &str) {
        let room = text
            .strip_prefix('[')
            .and_then(|rest| rest.split_once("] "))
            .map(|(room, _)| room);
        let gone = format!("* {} disconnected", self.name());
        if room.is_some_and(|room| room != self.chat.room) || text == gone {
            t.http.foreign += 1;
            t.note(format!(
                "http {} in {}: read {text:?}",
                self.chat.name, self.chat.room
            ));
        }
    }

    /// An answer to its own command, or the server's welcome.
    pub fn read_reply(&mut self, t: &mut Tally, text: &str) {
        if text.starts_with('!') {
            t.error_lines += 1;
            t.note(format!("http {}: {text}", self.chat.name));
        }
        if text.starts_with("* bye, ") {
            self.bye = true;
        }
        let Some(name) = welcome_name(text) else {
            return;
        };
        match &self.guest {
            None => self.guest = Some(name.to_string()),
            Some(guest) if guest != name => {
                t.http.foreign += 1;
                t.note(format!(
                    "http {}: another member's welcome: {text:?}",
                    self.chat.name
                ));
            }
            Some(_) => {}
        }
    }

    /// An answer to `GET /poll` or `GET /longpoll`: its lines and replies,
    /// checked. Returns `next`, the number to ask after next time.
    pub fn read_answer(&mut self, t: &mut Tally, body: &[u8]) -> Option<u64> {
        let json = self.parse(t, body)?;
        if self.guest.is_none() {
            self.guest = json.get("name").and_then(Json::as_str).map(str::to_string);
        }
        self.read_common(t, &json);
        if let Some(missed) = json.get("missed").and_then(Json::as_u64).filter(|&m| m > 0) {
            t.http.missed += missed;
            t.note(format!("http {}: missed {missed} lines", self.chat.name));
        }
        for message in json.get("messages").and_then(Json::as_array).unwrap_or(&[]) {
            let id = message.get("id").and_then(Json::as_u64);
            let text = message.get("text").and_then(Json::as_str);
            match (id, text) {
                (Some(id), Some(text)) => self.read_line(t, id, text),
                _ => self.bad(t, "a message without id or text"),
            }
        }
        let next = json.get("next").and_then(Json::as_u64);
        if next.is_none() || next != self.last_id {
            let why = format!("next {next:?} after line {:?}", self.last_id);
            self.bad(t, &why);
        }
        next
    }

    /// An answer to `POST /send`: the replies, and for a member that only
    /// sends, its name (it is in its room under its name once the answer
    /// says so).
    pub fn read_sent(&mut self, t: &mut Tally, body: &[u8]) {
        let Some(json) = self.parse(t, body) else {
            return;
        };
        self.read_common(t, &json);
        let name = json.get("name").and_then(Json::as_str);
        if self.reading == Reading::Nothing && self.chat.step == Step::Naming && name == Some(&self.chat.name)
        {
            self.chat.step = Step::Ready;
            t.http.ready += 1;
        }
    }

    fn parse(&mut self, t: &mut Tally, body: &[u8]) -> Option<Json> {
        let parsed = std::str::from_utf8(body)
            .map_err(|e| e.to_string())
            .and_then(Json::parse);
        match parsed {
            Ok(json) => Some(json),
            Err(e) => {
                self.bad(t, &format!("an answer that is not JSON ({e})"));
                None
            }
        }
    }

    /// What every JSON answer carries: the token, the replies, and how
    /// many replies were dropped (none may be).
    fn read_common(&mut self, t: &mut Tally, json: &Json) {
        self.check_token(t, json.get("token").and_then(Json::as_str));
        for reply in json.get("replies").and_then(Json::as_array).unwrap_or(&[]) {
            self.read_reply(t, reply.as_str().unwrap_or(""));
        }
        if json.get("replies_dropped").and_then(Json::as_u64) != Some(0) {
            self.bad(t, "replies dropped");
        }
    }

    /// One server-sent event.
    pub fn read_event(&mut self, t: &mut Tally, event: &Event) {
        match (event.kind.as_str(), &event.id) {
            ("member", _) => {
                let json = Json::parse(&event.data).unwrap_or(Json::Null);
                self.check_token(t, json.get("token").and_then(Json::as_str));
            }
            ("reply", _) => self.read_reply(t, &event.data),
            ("missed", _) => {
                t.http.missed += event.data.parse().unwrap_or(1);
                t.note(format!("http {}: event: missed {}", self.chat.name, event.data));
            }
            ("message", Some(id)) => match id.parse() {
                Ok(id) => self.read_line(t, id, &event.data),
                Err(_) => self.bad(t, &format!("an event id {id:?}")),
            },
            (kind, _) => self.bad(t, &format!("an event {kind:?}: {:?}", event.data)),
        }
    }

    pub fn bad(&self, t: &mut Tally, what: &str) {
        t.http.bad_answers += 1;
        t.note(format!("http {} ({}): {what}", self.chat.name, self.kind()));
    }
}

/// The name in the server's welcome: `* welcome to duplex: ..., your name
/// is guest-7, room lobby. ...`.
fn welcome_name(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("* welcome")?;
    let (_, name) = rest.split_once("your name is ")?;
    name.split_once(',').map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn reader() -> HttpMember {
        let chat = Member {
            name: "h1".into(),
            room: "room-1".into(),
            step: Step::Naming,
            sender: None,
            seen: HashMap::new(),
            flooder: false,
        };
        HttpMember::new(Reading::Poll, Life::Steady, chat, Instant::now())
    }

    /// Everything that says a check failed.
    fn failures(t: &Tally) -> u64 {
        let h = &t.http;
        h.lost + h.doubled + h.missed + h.foreign + h.bad_answers + h.expired
    }

    const WELCOME: &str = "* welcome to duplex: server a, you are b over HTTP, your name is guest-3, room lobby. Type /help for commands.";

    #[test]
    fn numbers_follow_on_from_its_arrival() {
        let (mut t, mut m) = (Tally::default(), reader());
        m.read_reply(&mut t, WELCOME);
        assert_eq!(m.guest.as_deref(), Some("guest-3"));
        m.read_line(&mut t, 5, "* guest-3 joined room-1");
        m.read_line(&mut t, 6, "* guest-3 is now known as h1");
        assert_eq!((m.chat.step == Step::Ready, t.http.ready), (true, 1));
        m.read_line(&mut t, 7, "[room-1] m2: seq m2 1");
        m.read_line(&mut t, 9, "[room-1] m2: seq m2 2");
        m.read_line(&mut t, 9, "[room-1] m2: seq m2 2");
        assert_eq!((t.http.lines_read(), t.http.lost, t.http.doubled), (4, 1, 1));
        assert_eq!((t.seq_received, t.seq_missing), (2, 0));
        m.read_line(&mut t, 10, "[room-2] m3: hello");
        m.read_line(&mut t, 11, "* h1 disconnected");
        assert_eq!(t.http.foreign, 2);
    }

    #[test]
    fn a_poll_answer_is_checked_whole() {
        let (mut t, mut m) = (Tally::default(), reader());
        let body = br#"{"token":"t1","name":"guest-3","room":"room-1","next":5,"missed":0,"messages":[{"id":5,"text":"* guest-3 joined room-1"}],"replies":["* you joined room-1"],"replies_dropped":0}"#;
        assert_eq!(m.read_answer(&mut t, body), Some(5));
        assert_eq!((m.token.as_deref(), failures(&t)), (Some("t1"), 0));
        let body = br#"{"token":"t2","name":"h1","room":"room-1","next":9,"missed":2,"messages":[],"replies":[],"replies_dropped":0}"#;
        assert_eq!(m.read_answer(&mut t, body), Some(9));
        assert_eq!((t.http.foreign, t.http.missed, t.http.bad_answers), (1, 2, 1));
    }

    #[test]
    fn reads_events() {
        let (mut t, mut m) = (Tally::default(), reader());
        m.token = Some("t1".into());
        let event = |kind: &str, id: Option<&str>, data: &str| Event {
            kind: kind.into(),
            id: id.map(str::to_string),
            data: data.into(),
        };
        m.read_event(
            &mut t,
            &event("member", None, r#"{"token":"t1","room":"room-1"}"#),
        );
        m.read_event(&mut t, &event("reply", None, WELCOME));
        m.read_event(&mut t, &event("message", Some("3"), "* guest-3 joined room-1"));
        m.read_event(&mut t, &event("reply", None, "* bye, guest-3"));
        assert_eq!((t.http.lines_read(), failures(&t), m.bye), (1, 0, true));
        m.read_event(&mut t, &event("room", None, "room-2"));
        assert_eq!(t.http.bad_answers, 1);
    }
}
