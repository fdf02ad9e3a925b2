//! The chat, knowing nothing of sockets: members, rooms and commands.
//!
//! The telnet door and the WebSocket `/chat` endpoint are adapters around
//! this hub. They hand it lines of text (and binary messages) from a
//! member; it answers with [`Action`]s that say which text goes to whom.
//! Time comes in as an argument. So every rule of the chat can be tested
//! without a socket, and a third door (HTTP polling) is one more adapter.
//!
//! The seeds' vocabulary maps onto it like this: `io.emit` (everyone in the
//! room) is `Hub::say` (what [`Hub::text`] does with a plain line),
//! `socket.emit` (only the sender) is a reply such as `/echo`, and
//! `setInterval` is the `/time` clock the loop drives.

use slab::Slab;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Range;
use std::rc::Rc;
use std::time::SystemTime;

/// The room everyone starts in.
pub const LOBBY: &str = "lobby";

/// Longest member or room name, in characters.
pub const MAX_NAME: usize = 24;

/// A member's handle in the hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId(pub usize);

/// How a member is reached, which decides how it receives binary messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The telnet door: text lines only.
    Line,
    /// `/chat` over WebSocket: text and binary frames.
    WebSocket,
    /// Plain HTTP (polling, long polling, server-sent events): the member
    /// reads its room's history by sequence number instead of being sent
    /// each line, and answers to its commands wait in its inbox.
    Http,
}

/// What to deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// One line of text (a chat line, a notice, an answer).
    Text(Rc<str>),
    /// A binary message; members that can only take text get `notice`.
    Binary {
        /// The message as sent, shared by every recipient.
        data: Rc<[u8]>,
        /// The line a text-only member sees instead.
        notice: Rc<str>,
    },
}

impl Payload {
    /// What a text-only member receives: the line, or a binary message's
    /// notice.
    pub fn text(&self) -> &Rc<str> {
        match self {
            Payload::Text(text) | Payload::Binary { notice: text, .. } => text,
        }
    }

    /// The message's size in bytes, as a WebSocket member receives it.
    pub fn len(&self) -> usize {
        match self {
            Payload::Text(text) => text.len(),
            Payload::Binary { data, .. } => data.len(),
        }
    }

    /// An empty message.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the hub asks its adapters to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Deliver `payload` to the members whose links are in
    /// `recipients` (a range of [`Outbox::recipients`]), in that order.
    Send {
        /// Indices into [`Outbox::recipients`].
        recipients: Range<usize>,
        /// What each of them receives.
        payload: Payload,
    },
    /// Start (or restart) a member's once-a-second clock. `generation`
    /// tells a current clock from one switched off since.
    StartClock {
        /// Whose clock.
        member: MemberId,
        /// Bumped each time `/time` toggles the clock; a tick of an
        /// older generation is stale and ignored.
        generation: u32,
    },
    /// The member asked for `/stats`: the loop answers with
    /// [`Hub::reply`], since the numbers are the loop's.
    Stats {
        /// Who asked.
        member: MemberId,
    },
    /// The member said `/quit`: send what is queued, then close.
    Quit {
        /// Who is leaving.
        member: MemberId,
    },
    /// A line was added to a room's history as number `seq`: whoever
    /// waits on that room over HTTP can be answered now.
    Appended {
        /// The room that grew.
        room: Rc<str>,
        /// The new line's number in that room; the first is 1.
        seq: u64,
    },
}

/// The hub's answers since the last [`Hub::drain`].
#[derive(Debug)]
pub struct Outbox<L = usize> {
    /// What to do, in the order the hub decided it.
    pub actions: Vec<Action>,
    /// The links of recipients, shared by all `Send` actions: a broadcast
    /// to a room snapshots its members here, in join order.
    pub recipients: Vec<L>,
}

impl<L> Default for Outbox<L> {
    fn default() -> Outbox<L> {
        Outbox {
            actions: Vec::new(),
            recipients: Vec::new(),
        }
    }
}

#[derive(Debug)]
struct Member<L> {
    name: String,
    /// The room's name, shared with the room: cloning it costs no copy.
    room: Rc<str>,
    transport: Transport,
    /// The adapter's handle for this member: how the loop reaches it.
    link: L,
    clock: bool,
    clock_generation: u32,
    /// The room's line number just before this member's arrival there:
    /// where a poller that just moved rooms starts reading.
    joined_at: u64,
}

#[derive(Debug)]
struct Room {
    name: Rc<str>,
    /// Members in the order they joined.
    members: Vec<MemberId>,
    /// The number of the last line said in this room; the first is 1.
    seq: u64,
    /// The most recent lines with their numbers, oldest first, so a poller
    /// that comes back asks for "everything after N" and loses nothing.
    history: VecDeque<(u64, Rc<str>)>,
}

/// A slice of a room's history, as a poller receives it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// Lines after the one asked for, oldest first, with their numbers.
    pub lines: Vec<(u64, Rc<str>)>,
    /// Lines the poller asked for that are no longer kept: it fell further
    /// behind than the history reaches, and is told so rather than left
    /// to think it saw everything.
    pub missed: u64,
    /// The number to ask "after" next time.
    pub next: u64,
}

/// Counters the hub keeps for `/stats` and `GET /stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Members present now, on every door.
    pub members: usize,
    /// Rooms that exist now; a room vanishes with its last member.
    pub rooms: usize,
    /// Chat lines and binary messages members sent to rooms.
    pub messages: u64,
}

/// The chat's whole state: members in a slab (so a [`MemberId`] stays
/// valid while its member lives), rooms by name, and the outbox of
/// [`Action`]s the adapters carry out after each call.
///
/// `L` is the adapter's *link*: whatever it needs to reach a member (the
/// event loop uses an enum of connection tokens and HTTP member keys). The
/// hub only copies links into its outbox, so it knows nothing of sockets.
#[derive(Debug)]
pub struct Hub<L = usize> {
    members: Slab<Member<L>>,
    /// Rooms by name, sorted, so `/rooms` lists them in order.
    rooms: BTreeMap<String, Room>,
    /// Lower-cased names in use, for uniqueness regardless of case.
    names: HashMap<String, MemberId>,
    next_guest: u64,
    messages: u64,
    /// Longest chat line a member may send, in bytes.
    max_text: usize,
    /// Lines of history kept per room.
    history_limit: usize,
    outbox: Outbox<L>,
    /// Reused to build chat lines without a fresh allocation each.
    scratch: String,
}

impl<L: Copy> Hub<L> {
    /// `max_text` bounds a chat line, so a WebSocket member cannot send
    /// telnet members a line longer than they could send themselves.
    /// `history` is how many recent lines each room keeps for pollers.
    pub fn new(max_text: usize, history: usize) -> Hub<L> {
        Hub {
            members: Slab::new(),
            rooms: BTreeMap::new(),
            names: HashMap::new(),
            next_guest: 0,
            messages: 0,
            max_text,
            history_limit: history.max(1),
            outbox: Outbox::default(),
            scratch: String::new(),
        }
    }

    /// The lines of `room` after number `since` (0 for all that are kept).
    pub fn history(&self, room: &str, since: u64) -> History {
        let Some(room) = self.rooms.get(room) else {
            return History::default();
        };
        // A number from the future (say, from another room) is answered
        // from the start.
        let since = if since > room.seq { 0 } else { since };
        let oldest = room.history.front().map_or(room.seq + 1, |(seq, _)| *seq);
        // Everything between the number asked for and the oldest line
        // still kept is gone.
        let missed = if since == 0 {
            0
        } else {
            oldest.saturating_sub(since + 1)
        };
        let lines = room
            .history
            .iter()
            .filter(|(seq, _)| *seq > since)
            .cloned()
            .collect();
        History {
            lines,
            missed,
            next: room.seq,
        }
    }

    /// The number of the last line said in `room` (0 if none, or no room).
    pub fn room_seq(&self, room: &str) -> u64 {
        self.rooms.get(room).map_or(0, |r| r.seq)
    }

    /// Takes the actions produced so far.
    pub fn drain(&mut self) -> Outbox<L> {
        std::mem::take(&mut self.outbox)
    }

    /// Is there anything for [`Hub::drain`] to hand over?
    pub fn has_actions(&self) -> bool {
        !self.outbox.actions.is_empty()
    }

    /// Hands back an outbox's vectors so their memory is reused.
    pub fn recycle(&mut self, mut outbox: Outbox<L>) {
        if self.outbox.actions.is_empty() {
            outbox.actions.clear();
            outbox.recipients.clear();
            self.outbox = outbox;
        }
    }

    /// The hub's counters now.
    pub fn stats(&self) -> HubStats {
        HubStats {
            members: self.members.len(),
            rooms: self.rooms.len(),
            messages: self.messages,
        }
    }

    /// The member's current name, or `None` if it has left.
    pub fn name(&self, id: MemberId) -> Option<&str> {
        self.members.get(id.0).map(|m| m.name.as_str())
    }

    /// The room the member is in, or `None` if it has left.
    pub fn room_of(&self, id: MemberId) -> Option<&str> {
        self.members.get(id.0).map(|m| &*m.room)
    }

    /// The line number of the member's room just before it arrived there.
    pub fn joined_at(&self, id: MemberId) -> u64 {
        self.members.get(id.0).map_or(0, |m| m.joined_at)
    }

    /// A new member arrives: named `guest-N`, placed in the lobby, greeted,
    /// and announced to the lobby. `welcome` says where it connected from.
    pub fn join(&mut self, link: L, transport: Transport, welcome: &str) -> MemberId {
        let name = loop {
            self.next_guest += 1;
            let name = format!("guest-{}", self.next_guest);
            if !self.names.contains_key(&name) {
                break name;
            }
        };
        let lobby = self.room_entry(LOBBY).name.clone();
        let id = MemberId(self.members.insert(Member {
            name: name.clone(),
            room: lobby,
            transport,
            link,
            clock: false,
            clock_generation: 0,
            joined_at: self.room_seq(LOBBY),
        }));
        self.names.insert(name.clone(), id);
        self.reply(
            id,
            &format!(
                "* welcome to duplex: {welcome}, your name is {name}, room {LOBBY}. Type /help for commands."
            ),
        );
        self.announce(LOBBY, Some(id), &format!("* {name} joined {LOBBY}"));
        self.room_entry(LOBBY).members.push(id);
        id
    }

    /// A member is gone (quit, closed, or lost): told to the room once.
    pub fn leave(&mut self, id: MemberId) {
        let Some(member) = self.members.try_remove(id.0) else {
            return;
        };
        self.names.remove(&member.name.to_ascii_lowercase());
        self.names.remove(&member.name);
        self.remove_from_room(&member.room, id);
        self.announce(&member.room, None, &format!("* {} disconnected", member.name));
    }

    /// A line of text from a member: a command if it starts with `/`,
    /// otherwise a message to the member's room.
    pub fn text(&mut self, id: MemberId, line: &str, now: SystemTime) {
        if !self.members.contains(id.0) {
            return;
        }
        if line.len() > self.max_text {
            let limit = self.max_text;
            self.reply(
                id,
                &format!("! message too long ({} bytes; the limit is {limit})", line.len()),
            );
            return;
        }
        let line = sanitize(line.trim_end());
        if let Some(command) = line.strip_prefix('/') {
            self.command(id, command, now);
        } else if !line.trim().is_empty() {
            self.say(id, &line);
        }
    }

    /// A binary message from a WebSocket member, relayed to its room.
    pub fn binary(&mut self, id: MemberId, data: &[u8]) {
        let Some(member) = self.members.get(id.0) else {
            return;
        };
        self.messages += 1;
        let notice: Rc<str> = Rc::from(format!(
            "* {} sent a binary message ({} bytes)",
            member.name,
            data.len()
        ));
        let room = member.room.clone();
        let (recipients, pollers) = self.snapshot(&room, None);
        self.record(&room, notice.clone(), pollers);
        self.outbox.actions.push(Action::Send {
            recipients,
            payload: Payload::Binary {
                data: Rc::from(data),
                notice,
            },
        });
    }

    /// The loop's clock timer fired for `id`. Returns whether it should
    /// fire again in a second.
    pub fn clock_tick(&mut self, id: MemberId, generation: u32, now: SystemTime) -> bool {
        match self.members.get(id.0) {
            Some(m) if m.clock && m.clock_generation == generation => {
                self.reply(id, &format!("* time {}", crate::clock::format_utc(now)));
                true
            }
            _ => false,
        }
    }

    /// Sends one line to one member (`socket.emit`).
    pub fn reply(&mut self, id: MemberId, text: &str) {
        let Some(member) = self.members.get(id.0) else {
            return;
        };
        let start = self.outbox.recipients.len();
        self.outbox.recipients.push(member.link);
        self.outbox.actions.push(Action::Send {
            recipients: start..start + 1,
            payload: Payload::Text(Rc::from(text)),
        });
    }

    /// A chat line to everyone in the sender's room, sender included
    /// (`io.emit`): seeing your own line come back is how you know the
    /// room saw it, in the same order as everyone else.
    fn say(&mut self, id: MemberId, text: &str) {
        let Some(member) = self.members.get(id.0) else {
            return;
        };
        self.messages += 1;
        // `[room] name: text`, built by hand in a reused buffer: this is
        // the hot path of a busy chat.
        let mut line = std::mem::take(&mut self.scratch);
        line.clear();
        line.push('[');
        line.push_str(&member.room);
        line.push_str("] ");
        line.push_str(&member.name);
        line.push_str(": ");
        line.push_str(text);
        let room = member.room.clone();
        self.announce(&room, None, &line);
        self.scratch = line;
    }

    fn command(&mut self, id: MemberId, command: &str, now: SystemTime) {
        let (verb, arg) = command
            .split_once(' ')
            .map_or((command, ""), |(v, a)| (v, a.trim()));
        match verb.to_ascii_lowercase().as_str() {
            "help" => {
                for line in HELP {
                    self.reply(id, line);
                }
            }
            "nick" => self.nick(id, arg),
            "join" => self.join_room(id, arg),
            "rooms" => {
                let list: Vec<String> = self
                    .rooms
                    .iter()
                    .map(|(name, room)| format!("{name} ({})", room.members.len()))
                    .collect();
                self.reply(id, &format!("* rooms: {}", list.join(", ")));
            }
            "who" => {
                let Some(room) = self.room_of(id).map(str::to_string) else {
                    return;
                };
                let names: Vec<&str> = self.rooms.get(&room).map_or(Vec::new(), |r| {
                    r.members
                        .iter()
                        .filter_map(|m| self.members.get(m.0))
                        .map(|m| m.name.as_str())
                        .collect()
                });
                let line = format!("* members of {room}: {}", names.join(", "));
                self.reply(id, &line);
            }
            "echo" => self.reply(id, arg),
            "time" => self.toggle_clock(id, now),
            "stats" => self.outbox.actions.push(Action::Stats { member: id }),
            "quit" => {
                let name = self.name(id).unwrap_or_default().to_string();
                self.reply(id, &format!("* bye, {name}"));
                self.outbox.actions.push(Action::Quit { member: id });
            }
            "" => self.reply(id, "! empty command; try /help"),
            other => {
                let other: String = other.chars().take(MAX_NAME).collect();
                self.reply(id, &format!("! unknown command /{other}; try /help"));
            }
        }
    }

    fn nick(&mut self, id: MemberId, name: &str) {
        if name.is_empty() {
            return self.reply(id, "! usage: /nick NAME");
        }
        if let Err(why) = check_name(name) {
            return self.reply(id, &format!("! bad name {name:?}: {why}"));
        }
        let key = name.to_ascii_lowercase();
        match self.names.get(&key) {
            Some(&owner) if owner == id => {
                // A change of letter case only: allowed.
            }
            Some(_) => return self.reply(id, &format!("! name taken: {name}")),
            None if key.starts_with("guest-") => {
                return self.reply(
                    id,
                    &format!("! bad name {name:?}: guest-N names are given, not taken"),
                )
            }
            None => {}
        }
        let Some(member) = self.members.get_mut(id.0) else {
            return;
        };
        let old = std::mem::replace(&mut member.name, name.to_string());
        let room = member.room.clone();
        self.names.remove(&old.to_ascii_lowercase());
        self.names.insert(key, id);
        self.announce(&room, None, &format!("* {old} is now known as {name}"));
    }

    fn join_room(&mut self, id: MemberId, room: &str) {
        if room.is_empty() {
            return self.reply(id, "! usage: /join ROOM");
        }
        if let Err(why) = check_name(room) {
            return self.reply(id, &format!("! bad room name {room:?}: {why}"));
        }
        let Some(member) = self.members.get(id.0) else {
            return;
        };
        if &*member.room == room {
            return self.reply(id, &format!("* you are already in {room}"));
        }
        let name = member.name.clone();
        let new_room = self.room_entry(room);
        let (joined_at, new_name) = (new_room.seq, new_room.name.clone());
        let Some(member) = self.members.get_mut(id.0) else {
            return;
        };
        let old = std::mem::replace(&mut member.room, new_name);
        member.joined_at = joined_at;
        self.remove_from_room(&old, id);
        self.announce(&old, None, &format!("* {name} left {old}"));
        self.announce(room, None, &format!("* {name} joined {room}"));
        self.room_entry(room).members.push(id);
        self.reply(id, &format!("* you joined {room}"));
    }

    fn toggle_clock(&mut self, id: MemberId, now: SystemTime) {
        let Some(member) = self.members.get_mut(id.0) else {
            return;
        };
        if member.transport == Transport::Http {
            return self.reply(
                id,
                "! /time pushes a line every second: use WebSocket or telnet for it",
            );
        }
        member.clock = !member.clock;
        member.clock_generation = member.clock_generation.wrapping_add(1);
        if member.clock {
            let generation = member.clock_generation;
            self.reply(id, "* time on: one tick a second; /time again to stop");
            self.reply(id, &format!("* time {}", crate::clock::format_utc(now)));
            self.outbox.actions.push(Action::StartClock {
                member: id,
                generation,
            });
        } else {
            self.reply(id, "* time off");
        }
    }

    /// Sends a line to a room's members, minus `except`.
    fn announce(&mut self, room: &str, except: Option<MemberId>, text: &str) {
        let text: Rc<str> = Rc::from(text);
        let (recipients, pollers) = self.snapshot(room, except);
        self.record(room, text.clone(), pollers);
        if recipients.is_empty() {
            return;
        }
        self.outbox.actions.push(Action::Send {
            recipients,
            payload: Payload::Text(text),
        });
    }

    /// Adds a line to a room's history. A room that has vanished (its last
    /// member just left) keeps nothing. `pollers`: the room has HTTP
    /// members, whose waiting requests the loop must be told about.
    fn record(&mut self, room: &str, text: Rc<str>, pollers: bool) {
        let limit = self.history_limit;
        let Some(entry) = self.rooms.get_mut(room) else {
            return;
        };
        entry.seq += 1;
        entry.history.push_back((entry.seq, text));
        while entry.history.len() > limit {
            entry.history.pop_front();
        }
        if pollers {
            let (seq, room) = (entry.seq, entry.name.clone());
            self.outbox.actions.push(Action::Appended { room, seq });
        }
    }

    /// A room by name, created (empty) if it does not exist yet.
    fn room_entry(&mut self, name: &str) -> &mut Room {
        if !self.rooms.contains_key(name) {
            let room = Room {
                name: Rc::from(name),
                members: Vec::new(),
                seq: 0,
                history: VecDeque::new(),
            };
            self.rooms.insert(name.to_string(), room);
        }
        // Just inserted if it was missing.
        self.rooms.get_mut(name).expect("room exists")
    }

    /// Copies a room's member links into the outbox, as they are now.
    /// Also says whether the room has HTTP members, which are not sent
    /// lines but read them from the history.
    fn snapshot(&mut self, room: &str, except: Option<MemberId>) -> (Range<usize>, bool) {
        let start = self.outbox.recipients.len();
        let mut pollers = false;
        if let Some(room) = self.rooms.get(room) {
            for &member in &room.members {
                match self.members.get(member.0) {
                    Some(m) if m.transport == Transport::Http => pollers = true,
                    Some(m) if Some(member) != except => self.outbox.recipients.push(m.link),
                    _ => {}
                }
            }
        }
        (start..self.outbox.recipients.len(), pollers)
    }

    fn remove_from_room(&mut self, room: &str, id: MemberId) {
        if let Some(r) = self.rooms.get_mut(room) {
            r.members.retain(|&m| m != id);
            if r.members.is_empty() {
                // Rooms vanish with their last member.
                self.rooms.remove(room);
            }
        }
    }

    /// The adapter's handle for a member.
    pub fn link(&self, id: MemberId) -> Option<L> {
        self.members.get(id.0).map(|m| m.link)
    }

    /// The transport of a member, for the adapters' statistics.
    pub fn transport(&self, id: MemberId) -> Option<Transport> {
        self.members.get(id.0).map(|m| m.transport)
    }
}

const HELP: &[&str] = &[
    "* commands:",
    "*   /nick NAME   change your name (letters, digits, - _ .; up to 24)",
    "*   /join ROOM   move to another room (it is created if needed)",
    "*   /rooms       list the rooms and how many are in each",
    "*   /who         list the members of your room",
    "*   /echo TEXT   send TEXT back to you alone",
    "*   /time        switch a once-a-second clock on or off",
    "*   /stats       show the server's counters",
    "*   /quit        leave",
    "* anything else is a message to your room",
];

/// Names and room names: 1 to 24 letters, digits, `-`, `_` or `.`.
fn check_name(name: &str) -> Result<(), &'static str> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err("use 1 to 24 letters, digits, '-', '_' or '.'")
    }
}

/// Replaces control characters (other than tab) with U+FFFD, so nobody can
/// send escape sequences to other members' terminals.
fn sanitize(text: &str) -> std::borrow::Cow<'_, str> {
    // Control characters are C0 (bytes below 0x20), DEL (0x7F) and C1
    // (U+0080 to U+009F, which UTF-8 writes as 0xC2 0x80..0x9F): a byte
    // scan finds the lines that need a closer look.
    let suspect = text
        .bytes()
        .any(|b| (b < 0x20 && b != b'\t') || b == 0x7F || b == 0xC2);
    if !suspect || text.chars().all(|c| c == '\t' || !c.is_control()) {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(
            text.chars()
                .map(|c| {
                    if c != '\t' && c.is_control() {
                        '\u{FFFD}'
                    } else {
                        c
                    }
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flattens the outbox into (link, text) pairs, in order.
    fn sent(hub: &mut Hub) -> Vec<(usize, String)> {
        let outbox = hub.drain();
        let mut out = Vec::new();
        for action in &outbox.actions {
            if let Action::Send { recipients, payload } = action {
                let text = match payload {
                    Payload::Text(t) => t.to_string(),
                    Payload::Binary { notice, .. } => notice.to_string(),
                };
                for &link in &outbox.recipients[recipients.clone()] {
                    out.push((link, text.clone()));
                }
            }
        }
        out
    }

    const NOW: SystemTime = SystemTime::UNIX_EPOCH;

    #[test]
    fn join_say_and_leave() {
        let mut hub = Hub::new(4096, 100);
        let a = hub.join(10, Transport::Line, "hi");
        let b = hub.join(20, Transport::WebSocket, "hi");
        let out = sent(&mut hub);
        assert!(out[0]
            .1
            .starts_with("* welcome to duplex: hi, your name is guest-1"));
        assert_eq!(out[2], (10, "* guest-2 joined lobby".to_string()));
        hub.text(a, "hello", NOW);
        assert_eq!(
            sent(&mut hub),
            [
                (10, "[lobby] guest-1: hello".to_string()),
                (20, "[lobby] guest-1: hello".to_string())
            ]
        );
        hub.leave(b);
        hub.leave(b);
        assert_eq!(sent(&mut hub), [(10, "* guest-2 disconnected".to_string())]);
        assert_eq!(
            hub.stats(),
            HubStats {
                members: 1,
                rooms: 1,
                messages: 1
            }
        );
    }

    #[test]
    fn nick_rules() {
        let mut hub = Hub::new(4096, 100);
        let a = hub.join(1, Transport::Line, "");
        let b = hub.join(2, Transport::Line, "");
        sent(&mut hub);
        hub.text(a, "/nick alice", NOW);
        assert_eq!(sent(&mut hub)[0].1, "* guest-1 is now known as alice");
        hub.text(b, "/nick ALICE", NOW);
        assert_eq!(sent(&mut hub), [(2, "! name taken: ALICE".to_string())]);
        hub.text(b, "/nick a b", NOW);
        assert!(sent(&mut hub)[0].1.starts_with("! bad name \"a b\""));
        hub.text(b, "/nick guest-9", NOW);
        assert!(sent(&mut hub)[0].1.contains("given, not taken"));
        hub.leave(a);
        sent(&mut hub);
        hub.text(b, "/nick alice", NOW);
        assert_eq!(
            sent(&mut hub),
            [(2, "* guest-2 is now known as alice".to_string())]
        );
    }

    #[test]
    fn rooms_appear_and_vanish() {
        let mut hub = Hub::new(4096, 100);
        let a = hub.join(1, Transport::Line, "");
        let b = hub.join(2, Transport::Line, "");
        sent(&mut hub);
        hub.text(a, "/join dev", NOW);
        assert_eq!(
            sent(&mut hub),
            [
                (2, "* guest-1 left lobby".to_string()),
                (1, "* you joined dev".to_string())
            ]
        );
        hub.text(b, "/rooms", NOW);
        assert_eq!(sent(&mut hub), [(2, "* rooms: dev (1), lobby (1)".to_string())]);
        hub.text(a, "/join lobby", NOW);
        sent(&mut hub);
        hub.text(b, "/rooms", NOW);
        assert_eq!(sent(&mut hub), [(2, "* rooms: lobby (2)".to_string())]);
        hub.text(b, "/who", NOW);
        assert_eq!(
            sent(&mut hub),
            [(2, "* members of lobby: guest-2, guest-1".to_string())]
        );
    }

    #[test]
    fn echo_time_quit_and_errors() {
        let mut hub = Hub::new(10, 100);
        let a = hub.join(1, Transport::Line, "");
        sent(&mut hub);
        hub.text(a, "/echo hi", NOW);
        assert_eq!(sent(&mut hub), [(1, "hi".to_string())]);
        hub.text(a, "/bogus", NOW);
        assert_eq!(
            sent(&mut hub),
            [(1, "! unknown command /bogus; try /help".to_string())]
        );
        hub.text(a, "this is far too long", NOW);
        assert!(sent(&mut hub)[0].1.starts_with("! message too long"));
        hub.text(a, "/time", NOW);
        let out = hub.drain();
        assert!(out.actions.contains(&Action::StartClock {
            member: a,
            generation: 1
        }));
        assert!(hub.clock_tick(a, 1, NOW));
        assert_eq!(
            sent(&mut hub),
            [(1, "* time 1970-01-01 00:00:00 UTC".to_string())]
        );
        hub.text(a, "/time", NOW);
        assert!(!hub.clock_tick(a, 1, NOW));
        sent(&mut hub);
        hub.text(a, "/quit", NOW);
        assert!(hub.drain().actions.contains(&Action::Quit { member: a }));
    }

    #[test]
    fn history_by_number_and_what_was_missed() {
        let mut hub = Hub::new(100, 3);
        let a = hub.join(1, Transport::Line, "");
        let p = hub.join(2, Transport::Http, "");
        // Lines 1 and 2 are the two arrivals, then m0..m3 are 3..6.
        for i in 0..4 {
            hub.text(a, &format!("m{i}"), NOW);
        }
        // The HTTP member is not pushed room lines; it reads them.
        let pushed = sent(&mut hub);
        assert!(
            pushed
                .iter()
                .all(|(link, text)| *link == 1 || text.starts_with("* welcome")),
            "{pushed:?}"
        );
        let h = hub.history(LOBBY, 0);
        let texts: Vec<&str> = h.lines.iter().map(|(_, t)| &**t).collect();
        assert_eq!(
            texts,
            [
                "[lobby] guest-1: m1",
                "[lobby] guest-1: m2",
                "[lobby] guest-1: m3"
            ]
        );
        assert_eq!((h.missed, h.next), (0, 6));
        // Behind by more than the history: told how many are gone.
        let h = hub.history(LOBBY, 1);
        assert_eq!((h.lines.len(), h.missed), (3, 2));
        let h = hub.history(LOBBY, 6);
        assert!(h.lines.is_empty());
        hub.leave(a);
        hub.leave(p);
        assert_eq!(hub.history(LOBBY, 0), History::default());
        hub.text(p, "/time", NOW);
    }

    #[test]
    fn control_characters_are_neutralised() {
        let mut hub = Hub::new(100, 100);
        let a = hub.join(1, Transport::Line, "");
        sent(&mut hub);
        hub.text(a, "\x1b[2Jboo", NOW);
        assert_eq!(
            sent(&mut hub),
            [(1, "[lobby] guest-1: \u{FFFD}[2Jboo".to_string())]
        );
    }
}
