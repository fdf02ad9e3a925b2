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
//!
//! # Names
//!
//! Member and room names are compared by a folded key, never by their
//! spelling, so that two names a reader cannot tell apart cannot belong to
//! two people (or be two rooms): `ÄRGER` and `ärger`, fullwidth `ａｌｉｃｅ`
//! and `alice`, `Kate` spelled with the Kelvin sign, `ΣOFIA` and `σofia`
//! are one name each. The key is Unicode's compatibility caseless match
//! (The Unicode Standard, §3.13, D146): `NFKD(fold(NFKD(fold(NFD(name)))))`,
//! kept in NFC, which is what NFKC_Casefold (UAX #31 §5) gives as well for
//! the characters a name may hold. See [`fold_name`] for how the case fold
//! is done without Unicode's CaseFolding table, and why that is enough.
//! What a member sees is their own spelling (in NFC): only the key is
//! folded. A room keeps the spelling of whoever created it.
//!
//! A name is also refused if it could not be read: default-ignorable code
//! points (zero-width spaces and joiners, bidi controls, Hangul fillers,
//! variation selectors; Unicode's Default_Ignorable_Code_Point), a
//! combining mark at the start, code points Unicode has not assigned yet,
//! and anything but letters, digits (of any script), combining marks after
//! them, `-`, `_` and `.`, so no whitespace at all.
//!
//! # History
//!
//! Each room keeps its recent lines so an HTTP poller that comes back
//! loses nothing ([`Hub::history`]). The history is bounded three ways
//! ([`HistoryLimits`]): lines per room, bytes per room, and bytes for all
//! rooms together, so the memory it holds does not grow with the number
//! of rooms. Over the total, the oldest line of the room that holds the
//! most bytes goes first: whoever floods rooms pays with the history of
//! those rooms, and a quiet room keeps its lines until every room is as
//! full as it. A poller whose lines went is told how many (`missed`).

use slab::Slab;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Range;
use std::rc::Rc;
use std::time::SystemTime;

/// The room everyone starts in.
pub const LOBBY: &str = "lobby";

/// Longest member or room name, in characters.
pub const MAX_NAME: usize = 24;

/// A member's handle in the hub: its slot in the hub's slab. Four bytes,
/// not eight: every chat connection carries one, and members are bounded
/// by connections and `--max-http-members`, far below four billion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId(u32);

impl MemberId {
    fn new(slot: usize) -> MemberId {
        // Slots stay far below `u32::MAX` (see above); converting checks
        // it rather than truncating.
        MemberId(u32::try_from(slot).unwrap_or(u32::MAX))
    }

    /// The slot in the hub's slab.
    fn index(self) -> usize {
        self.0 as usize
    }

    /// The member's number, as other instances know it (`--redis`): the
    /// slot, which stays this member's while it is present.
    pub fn number(self) -> u32 {
        self.0
    }

    /// The member with this number (see [`MemberId::number`]).
    pub fn from_number(number: u32) -> MemberId {
        MemberId(number)
    }
}

/// How a member is reached, which decides how it receives binary messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The telnet door: text lines only.
    Line,
    /// `/chat` over WebSocket: text and binary frames.
    WebSocket,
    /// socket.io (Engine.IO over polling or WebSocket): text lines, each
    /// pushed to the member as a `servermessage` event.
    SocketIo,
    /// Plain HTTP (polling, long polling, server-sent events): the member
    /// reads its room's history by sequence number instead of being sent
    /// each line, and answers to its commands wait in its inbox.
    Http,
    /// A member of another instance (`--redis`): present in rooms, `/who`
    /// and `/rooms`, but reached by its own instance, never from here.
    Remote,
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
    /// A member of this instance did something the other instances must
    /// hear of (only while relaying, see [`Hub::set_relaying`]).
    Relay {
        /// Who.
        member: MemberId,
        /// The member's name and room after it.
        name: Rc<str>,
        /// The member's room after it.
        room: Rc<str>,
        /// What happened.
        what: Relayed,
    },
}

/// What a member did, as the relay passes it on (`--redis`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Relayed {
    /// Arrived (in `room`, as `name`).
    Joined,
    /// Left the chat.
    Left,
    /// Took `name`.
    Renamed,
    /// Moved to `room`.
    Moved,
    /// Said a line to its room (the text as typed, sanitised).
    Line(Rc<str>),
    /// Sent a binary message to its room.
    Binary(Rc<[u8]>),
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
    /// As the member spelled it (in NFC).
    name: String,
    /// The folded name, by which names are unique ([`fold_name`]).
    key: String,
    /// The room's name as shown, shared with the room: cloning it costs no
    /// copy.
    room: Rc<str>,
    /// The room's folded name, by which it is found.
    room_key: Rc<str>,
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
    /// As its creator spelled it.
    name: Rc<str>,
    /// Folded: the key in [`Hub::rooms`].
    key: Rc<str>,
    /// Members in the order they joined.
    members: Vec<MemberId>,
    /// The number of the last line said in this room; the first is 1.
    seq: u64,
    /// The most recent lines with their numbers, oldest first, so a poller
    /// that comes back asks for "everything after N" and loses nothing.
    history: VecDeque<(u64, Rc<str>)>,
    /// What `history` costs, as [`line_cost`] counts it.
    bytes: usize,
}

/// How much history the hub keeps for pollers. Every bound is strict:
/// a line that does not fit is not kept, and a poller that asks for it is
/// told it `missed` it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Lines each room keeps (`--history`).
    pub lines: usize,
    /// Bytes each room keeps (`--history-bytes`), counted as
    /// [`line_cost`] does.
    pub room_bytes: usize,
    /// Bytes all rooms keep together (`--history-total-bytes`).
    pub total_bytes: usize,
}

impl Default for HistoryLimits {
    /// The command line's defaults (see `config.rs` for the reasons).
    fn default() -> HistoryLimits {
        HistoryLimits {
            lines: 1000,
            room_bytes: 256 << 10,
            total_bytes: 16 << 20,
        }
    }
}

/// What one history line costs: its text, its `Rc` counts, and its slot
/// in the room's queue (number and pointer). The bookkeeping is counted so
/// that a flood of empty lines is not free.
pub fn line_cost(text: &str) -> usize {
    const OVERHEAD: usize = 2 * std::mem::size_of::<usize>() + std::mem::size_of::<(u64, Rc<str>)>();
    text.len() + OVERHEAD
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
    /// Rooms by folded name, sorted, so `/rooms` lists them in order.
    rooms: BTreeMap<Rc<str>, Room>,
    /// Folded names in use ([`fold_name`]), so names are unique however
    /// they are spelled.
    names: HashMap<String, MemberId>,
    next_guest: u64,
    messages: u64,
    /// Longest chat line a member may send, in bytes.
    max_text: usize,
    /// How much history to keep.
    limits: HistoryLimits,
    /// What all rooms' histories cost together.
    history_bytes: usize,
    /// Rooms that keep any history, by what it costs and then by folded
    /// name: the last is where the next line goes when over the total.
    by_size: BTreeSet<(usize, Rc<str>)>,
    outbox: Outbox<L>,
    /// Reused to build chat lines without a fresh allocation each.
    scratch: String,
    /// Members' doings are also handed to the relay ([`Action::Relay`]).
    relaying: bool,
    /// Appended to guest names (`guest-7.b`), so that instances sharing
    /// rooms never hand out the same one; empty on its own.
    guest_suffix: String,
}

impl<L: Copy> Hub<L> {
    /// `max_text` bounds a chat line, so a WebSocket member cannot send
    /// telnet members a line longer than they could send themselves.
    /// `history` bounds what each room keeps for pollers.
    pub fn new(max_text: usize, history: HistoryLimits) -> Hub<L> {
        Hub {
            members: Slab::new(),
            rooms: BTreeMap::new(),
            names: HashMap::new(),
            next_guest: 0,
            messages: 0,
            max_text,
            limits: history,
            history_bytes: 0,
            by_size: BTreeSet::new(),
            outbox: Outbox::default(),
            scratch: String::new(),
            relaying: false,
            guest_suffix: String::new(),
        }
    }

    /// Joins a cluster (`--redis`): members' doings are handed to the relay
    /// as [`Action::Relay`], and guest names end in `.{instance}`.
    pub fn set_relaying(&mut self, instance: &str) {
        self.relaying = true;
        self.guest_suffix = format!(".{instance}");
    }

    /// The lines of `room` (any spelling of its name) after number `since`
    /// (0 for all that are kept).
    pub fn history(&self, room: &str, since: u64) -> History {
        let Some(room) = self.rooms.get(fold_name(room).as_str()) else {
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

    /// The number of the last line said in `room` (any spelling; 0 if
    /// none, or no room).
    pub fn room_seq(&self, room: &str) -> u64 {
        self.rooms.get(fold_name(room).as_str()).map_or(0, |r| r.seq)
    }

    /// What all rooms' histories cost now, as [`line_cost`] counts.
    pub fn history_bytes(&self) -> usize {
        self.history_bytes
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
        self.members.get(id.index()).map(|m| m.name.as_str())
    }

    /// The room the member is in, or `None` if it has left.
    pub fn room_of(&self, id: MemberId) -> Option<&str> {
        self.members.get(id.index()).map(|m| &*m.room)
    }

    /// The line number of the member's room just before it arrived there.
    pub fn joined_at(&self, id: MemberId) -> u64 {
        self.members.get(id.index()).map_or(0, |m| m.joined_at)
    }

    /// A new member arrives: named `guest-N`, placed in the lobby, greeted,
    /// and announced to the lobby. `welcome` says where it connected from.
    pub fn join(&mut self, link: L, transport: Transport, welcome: &str) -> MemberId {
        let name = self.next_guest_name();
        let lobby = self.room_entry(LOBBY, LOBBY);
        let (room, room_key, joined_at) = (lobby.name.clone(), lobby.key.clone(), lobby.seq);
        let id = MemberId::new(self.members.insert(Member {
            name: name.clone(),
            // `guest-N` is its own folded key.
            key: name.clone(),
            room: room.clone(),
            room_key: room_key.clone(),
            transport,
            link,
            clock: false,
            clock_generation: 0,
            joined_at,
        }));
        self.names.insert(name.clone(), id);
        self.reply(
            id,
            &format!(
                "* welcome to duplex: {welcome}, your name is {name}, room {room}. Type /help for commands."
            ),
        );
        self.announce(&room_key, Some(id), &format!("* {name} joined {room}"));
        self.room_entry(&room, &room_key).members.push(id);
        self.relay(id, Relayed::Joined);
        id
    }

    /// A guest name nobody has: `guest-N`, with this instance's suffix.
    fn next_guest_name(&mut self) -> String {
        loop {
            self.next_guest += 1;
            let name = format!("guest-{}{}", self.next_guest, self.guest_suffix);
            if !self.names.contains_key(&name) {
                break name;
            }
        }
    }

    /// Hands what a member of this instance did to the relay, if relaying.
    fn relay(&mut self, id: MemberId, what: Relayed) {
        if !self.relaying {
            return;
        }
        let Some(member) = self.members.get(id.index()) else {
            return;
        };
        if member.transport == Transport::Remote {
            return;
        }
        let (name, room) = (Rc::from(member.name.as_str()), member.room.clone());
        self.outbox.actions.push(Action::Relay {
            member: id,
            name,
            room,
            what,
        });
    }

    /// A member is gone (quit, closed, or lost): told to the room once.
    pub fn leave(&mut self, id: MemberId) {
        self.leave_saying(id, "disconnected");
    }

    /// A member is gone, told to its room as `* NAME {why}`.
    pub fn leave_saying(&mut self, id: MemberId, why: &str) {
        self.relay(id, Relayed::Left);
        let Some(member) = self.members.try_remove(id.index()) else {
            return;
        };
        self.names.remove(&member.key);
        self.remove_from_room(&member.room_key, id);
        self.announce(&member.room_key, None, &format!("* {} {why}", member.name));
    }

    /// A line of text from a member: a command if it starts with `/`,
    /// otherwise a message to the member's room.
    pub fn text(&mut self, id: MemberId, line: &str, now: SystemTime) {
        if !self.members.contains(id.index()) {
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
        let Some(member) = self.members.get(id.index()) else {
            return;
        };
        self.messages += 1;
        let notice: Rc<str> = Rc::from(format!(
            "* {} sent a binary message ({} bytes)",
            member.name,
            data.len()
        ));
        let room = member.room_key.clone();
        let (recipients, pollers) = self.snapshot(&room, None);
        self.record(&room, notice.clone(), pollers);
        let data: Rc<[u8]> = Rc::from(data);
        self.outbox.actions.push(Action::Send {
            recipients,
            payload: Payload::Binary {
                data: data.clone(),
                notice,
            },
        });
        self.relay(id, Relayed::Binary(data));
    }

    /// A binary message of `len` bytes from a member of another instance,
    /// too large to have been passed on: its room here gets a notice.
    pub fn binary_withheld(&mut self, id: MemberId, len: u64) {
        let Some(member) = self.members.get(id.index()) else {
            return;
        };
        self.messages += 1;
        let notice = format!(
            "* {} sent a binary message ({len} bytes; too large to pass between instances)",
            member.name
        );
        let room = member.room_key.clone();
        self.announce(&room, None, &notice);
    }

    /// The loop's clock timer fired for `id`. Returns whether it should
    /// fire again in a second.
    pub fn clock_tick(&mut self, id: MemberId, generation: u32, now: SystemTime) -> bool {
        match self.members.get(id.index()) {
            Some(m) if m.clock && m.clock_generation == generation => {
                self.reply(id, &format!("* time {}", crate::clock::format_utc(now)));
                true
            }
            _ => false,
        }
    }

    /// Sends one line to one member (`socket.emit`).
    pub fn reply(&mut self, id: MemberId, text: &str) {
        let Some(member) = self.members.get(id.index()) else {
            return;
        };
        if member.transport == Transport::Remote {
            // Its own instance answers it.
            return;
        }
        let start = self.outbox.recipients.len();
        self.outbox.recipients.push(member.link);
        self.outbox.actions.push(Action::Send {
            recipients: start..start + 1,
            payload: Payload::Text(Rc::from(text)),
        });
    }

    /// A chat line (already checked and sanitised) to everyone in the
    /// sender's room, sender included
    /// (`io.emit`): seeing your own line come back is how you know the
    /// room saw it, in the same order as everyone else.
    pub fn say(&mut self, id: MemberId, text: &str) {
        let Some(member) = self.members.get(id.index()) else {
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
        let room = member.room_key.clone();
        self.announce(&room, None, &line);
        self.scratch = line;
        if self.relaying {
            self.relay(id, Relayed::Line(Rc::from(text)));
        }
    }

    fn command(&mut self, id: MemberId, command: &str, now: SystemTime) {
        let (verb, arg) = command
            .split_once(' ')
            .map_or((command, ""), |(v, a)| (v, a.trim()));
        let verb = verb.to_ascii_lowercase();
        let takes_nothing = matches!(
            verb.as_str(),
            "help" | "rooms" | "who" | "time" | "stats" | "quit"
        );
        if takes_nothing && !arg.is_empty() {
            // Not run with an argument it would ignore: whoever typed one
            // meant something else, and is told what works.
            return self.reply(id, &format!("! usage: /{verb} (it takes nothing after it)"));
        }
        match verb.as_str() {
            "help" => {
                for line in HELP {
                    self.reply(id, line);
                }
            }
            "nick" => self.nick(id, arg),
            "join" => self.join_room(id, arg),
            "rooms" => self.list_rooms(id),
            "who" => self.who(id),
            "echo" if arg.is_empty() => self.reply(id, "! usage: /echo TEXT"),
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

    /// `/rooms`: every room and how many are in it.
    fn list_rooms(&mut self, id: MemberId) {
        let list: Vec<String> = self
            .rooms
            .values()
            .map(|room| format!("{} ({})", room.name, room.members.len()))
            .collect();
        self.reply(id, &format!("* rooms: {}", list.join(", ")));
    }

    /// `/who`: the members of the asker's room.
    fn who(&mut self, id: MemberId) {
        let Some(member) = self.members.get(id.index()) else {
            return;
        };
        let room = member.room.clone();
        let names: Vec<&str> = self.rooms.get(&member.room_key).map_or(Vec::new(), |r| {
            r.members
                .iter()
                .filter_map(|m| self.members.get(m.index()))
                .map(|m| m.name.as_str())
                .collect()
        });
        let line = format!("* members of {room}: {}", names.join(", "));
        self.reply(id, &line);
    }

    fn nick(&mut self, id: MemberId, asked: &str) {
        if asked.is_empty() {
            return self.reply(id, "! usage: /nick NAME");
        }
        let name = match check_name(asked) {
            Ok(name) => name,
            Err(why) => return self.reply(id, &format!("! bad name {asked:?}: {why}")),
        };
        let key = fold_name(&name);
        match self.names.get(&key) {
            Some(&owner) if owner == id => {
                // Another spelling of one's own name: allowed.
            }
            Some(_) => return self.reply(id, &format!("! name taken: {name}")),
            None if key.starts_with("guest-") => {
                return self.reply(
                    id,
                    &format!("! bad name {asked:?}: guest-N names are given, not taken"),
                )
            }
            None => {}
        }
        self.set_name(id, name, key, true);
        self.relay(id, Relayed::Renamed);
    }

    /// Gives a member a name whose folded `key` is free (or its own), told
    /// to its room when `announce`.
    fn set_name(&mut self, id: MemberId, name: String, key: String, announce: bool) {
        let Some(member) = self.members.get_mut(id.index()) else {
            return;
        };
        let old = std::mem::replace(&mut member.name, name);
        let old_key = std::mem::replace(&mut member.key, key.clone());
        let (room, name) = (member.room_key.clone(), member.name.clone());
        self.names.remove(&old_key);
        self.names.insert(key, id);
        if announce {
            self.announce(&room, None, &format!("* {old} is now known as {name}"));
        }
    }

    fn join_room(&mut self, id: MemberId, asked: &str) {
        if asked.is_empty() {
            return self.reply(id, "! usage: /join ROOM");
        }
        let spelling = match check_name(asked) {
            Ok(spelling) => spelling,
            Err(why) => return self.reply(id, &format!("! bad room name {asked:?}: {why}")),
        };
        let key = fold_name(&spelling);
        let Some(member) = self.members.get(id.index()) else {
            return;
        };
        if *member.room_key == *key {
            let here = member.room.clone();
            return self.reply(id, &format!("* you are already in {here}"));
        }
        let room = self.move_member(id, &spelling, &key, true);
        self.reply(id, &format!("* you joined {room}"));
        self.relay(id, Relayed::Moved);
    }

    /// Moves a member to the room `key` (created as `spelling` if new),
    /// told to both rooms when `announce`. Returns the room's name.
    fn move_member(&mut self, id: MemberId, spelling: &str, key: &str, announce: bool) -> Rc<str> {
        let Some(member) = self.members.get(id.index()) else {
            return Rc::from(spelling);
        };
        if *member.room_key == *key {
            return member.room.clone();
        }
        let name = member.name.clone();
        // An existing room keeps the spelling of whoever made it.
        let new_room = self.room_entry(spelling, key);
        let (joined_at, room, room_key) = (new_room.seq, new_room.name.clone(), new_room.key.clone());
        let Some(member) = self.members.get_mut(id.index()) else {
            return room;
        };
        let old = std::mem::replace(&mut member.room, room.clone());
        let old_key = std::mem::replace(&mut member.room_key, room_key.clone());
        member.joined_at = joined_at;
        self.remove_from_room(&old_key, id);
        if announce {
            self.announce(&old_key, None, &format!("* {name} left {old}"));
            self.announce(&room_key, None, &format!("* {name} joined {room}"));
        }
        self.room_entry(&room, &room_key).members.push(id);
        room
    }

    // Members of other instances (`--redis`). The relay keeps this hub's
    // picture of the cluster: it adds, renames, moves and removes the
    // members other instances announce, and hands their lines to `say`
    // and `binary`. They take part in rooms, `/who` and `/rooms` like
    // anyone, but are never sent anything from here.

    /// A member of another instance arrives in `room` as `name`, told to
    /// the room when `announce`. Both were checked by their own instance
    /// and are checked again here (they came through Redis); `None` if
    /// either is not a name.
    ///
    /// Names stay unique in this hub whatever arrives: the relay settles
    /// who owns a contested name (see `relay.rs`), and a name already held
    /// here is shown as `name~2` until its own instance renames it.
    pub fn join_remote(&mut self, link: L, name: &str, room: &str, announce: bool) -> Option<MemberId> {
        let (name, spelling) = (check_name(name).ok()?, check_name(room).ok()?);
        let (name, key) = self.unique_name(name);
        let room_key = fold_name(&spelling);
        let lobby = self.room_entry(&spelling, &room_key);
        let (room, room_key, joined_at) = (lobby.name.clone(), lobby.key.clone(), lobby.seq);
        let id = MemberId::new(self.members.insert(Member {
            name: name.clone(),
            key: key.clone(),
            room: room.clone(),
            room_key: room_key.clone(),
            transport: Transport::Remote,
            link,
            clock: false,
            clock_generation: 0,
            joined_at,
        }));
        self.names.insert(key, id);
        if announce {
            self.announce(&room_key, None, &format!("* {name} joined {room}"));
        }
        self.room_entry(&room, &room_key).members.push(id);
        Some(id)
    }

    /// A member of another instance took `name` (told to its room when
    /// `announce`); ignored if it is not a name.
    pub fn rename_remote(&mut self, id: MemberId, name: &str, announce: bool) {
        let Ok(name) = check_name(name) else { return };
        if self.members.get(id.index()).is_some_and(|m| m.name == name) {
            return;
        }
        let (name, key) = self.unique_name_for(name, Some(id));
        self.set_name(id, name, key, announce);
    }

    /// A member of another instance moved to `room` (told to both rooms
    /// when `announce`); ignored if it is not a room name.
    pub fn move_remote(&mut self, id: MemberId, room: &str, announce: bool) {
        let Ok(spelling) = check_name(room) else { return };
        let key = fold_name(&spelling);
        self.move_member(id, &spelling, &key, announce);
    }

    /// A line from a member of another instance, to its room here. It
    /// came through Redis, so it is bounded and sanitised again. A line
    /// longer than this instance allows (the other has a larger
    /// `--max-line`) is not shown: its room is told so instead.
    pub fn say_remote(&mut self, id: MemberId, text: &str) {
        if text.len() > self.max_text {
            let (Some(name), Some(room)) = (self.name(id), self.members.get(id.index())) else {
                return;
            };
            let notice = format!(
                "! a line from {name} ({} bytes) is longer than this instance takes ({})",
                text.len(),
                self.max_text
            );
            let room = room.room_key.clone();
            return self.announce(&room, None, &notice);
        }
        if !text.trim().is_empty() {
            let text = sanitize(text);
            self.say(id, &text);
        }
    }

    /// Is this a member of another instance?
    pub fn is_remote(&self, id: MemberId) -> bool {
        self.transport(id) == Some(Transport::Remote)
    }

    /// The member's folded name ([`fold_name`]).
    pub fn key(&self, id: MemberId) -> Option<&str> {
        self.members.get(id.index()).map(|m| m.key.as_str())
    }

    /// The member who holds `name` (in any spelling), if anyone does.
    pub fn holder(&self, name: &str) -> Option<MemberId> {
        self.names.get(&fold_name(name)).copied()
    }

    /// A member of this instance loses the name it holds to a member of
    /// another instance who claimed it first: it becomes a guest again,
    /// is told why, and the room sees the change.
    pub fn lose_name(&mut self, id: MemberId, why: &str) {
        let Some(lost) = self.name(id).map(str::to_string) else {
            return;
        };
        let name = self.next_guest_name();
        self.set_name(id, name.clone(), name.clone(), true);
        self.reply(id, &format!("! {lost} {why}; you are {name} now"));
        self.relay(id, Relayed::Renamed);
    }

    /// A line to every member of this instance (the relay's news).
    pub fn tell_local(&mut self, text: &str) {
        let local: Vec<MemberId> = self
            .members
            .iter()
            .filter(|(_, m)| m.transport != Transport::Remote)
            .map(|(i, _)| MemberId::new(i))
            .collect();
        for id in local {
            self.reply(id, text);
        }
    }

    /// The members of this instance: what the relay's roster lists.
    pub fn local_members(&self) -> impl Iterator<Item = (MemberId, &str, &str)> {
        self.members
            .iter()
            .filter(|(_, m)| m.transport != Transport::Remote)
            .map(|(i, m)| (MemberId::new(i), m.name.as_str(), &*m.room))
    }

    /// `name` as given, or, if someone holds it, `name~2`, `name~3`...: a
    /// spelling no one can claim, shown until the contest is settled.
    fn unique_name(&self, name: String) -> (String, String) {
        self.unique_name_for(name, None)
    }

    fn unique_name_for(&self, name: String, owner: Option<MemberId>) -> (String, String) {
        let key = fold_name(&name);
        let free = |key: &str| self.names.get(key).is_none_or(|&h| Some(h) == owner);
        if free(&key) {
            return (name, key);
        }
        (2..)
            .map(|n| format!("{name}~{n}"))
            .map(|name| {
                let key = fold_name(&name);
                (name, key)
            })
            .find(|(_, key)| free(key))
            .unwrap_or_default()
    }

    fn toggle_clock(&mut self, id: MemberId, now: SystemTime) {
        let Some(member) = self.members.get_mut(id.index()) else {
            return;
        };
        if matches!(member.transport, Transport::Http | Transport::Remote) {
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

    /// Sends a line to a room's members (`room` is its folded name), minus
    /// `except`.
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

    /// Adds a line to a room's history (`room` is its folded name). A room
    /// that has vanished (its last member just left) keeps nothing.
    /// `pollers`: the room has HTTP members, whose waiting requests the
    /// loop must be told about.
    ///
    /// Each line is added once and dropped at most once, and each drop is
    /// O(log rooms) (the `by_size` index), so keeping within the bounds
    /// costs O(log rooms) per line, amortised, however many rooms there
    /// are.
    fn record(&mut self, room: &str, text: Rc<str>, pollers: bool) {
        let limits = self.limits;
        let Some(entry) = self.rooms.get_mut(room) else {
            return;
        };
        let before = entry.bytes;
        let cost = line_cost(&text);
        entry.seq += 1;
        entry.history.push_back((entry.seq, text));
        entry.bytes += cost;
        self.history_bytes += cost;
        // The room's own bounds: its oldest lines go first.
        while entry.history.len() > limits.lines || entry.bytes > limits.room_bytes {
            let Some((_, old)) = entry.history.pop_front() else {
                break;
            };
            entry.bytes -= line_cost(&old);
            self.history_bytes -= line_cost(&old);
        }
        if before != entry.bytes {
            self.by_size.remove(&(before, entry.key.clone()));
            if entry.bytes > 0 {
                self.by_size.insert((entry.bytes, entry.key.clone()));
            }
        }
        if pollers {
            let (seq, room) = (entry.seq, entry.name.clone());
            self.outbox.actions.push(Action::Appended { room, seq });
        }
        self.keep_within_total();
    }

    /// Over the total, drops the oldest line of the room whose history
    /// costs the most, until under it again.
    fn keep_within_total(&mut self) {
        while self.history_bytes > self.limits.total_bytes {
            let Some((_, key)) = self.by_size.pop_last() else {
                break;
            };
            let Some(room) = self.rooms.get_mut(&key) else {
                continue;
            };
            let Some((_, old)) = room.history.pop_front() else {
                continue;
            };
            room.bytes -= line_cost(&old);
            self.history_bytes -= line_cost(&old);
            if room.bytes > 0 {
                self.by_size.insert((room.bytes, key));
            }
        }
    }

    /// A room by folded name, created empty and spelled `spelling` if it
    /// does not exist yet.
    fn room_entry(&mut self, spelling: &str, key: &str) -> &mut Room {
        if !self.rooms.contains_key(key) {
            let key: Rc<str> = Rc::from(key);
            let room = Room {
                name: Rc::from(spelling),
                key: key.clone(),
                members: Vec::new(),
                seq: 0,
                history: VecDeque::new(),
                bytes: 0,
            };
            self.rooms.insert(key, room);
        }
        // Just inserted if it was missing.
        self.rooms.get_mut(key).expect("room exists")
    }

    /// Copies a room's member links into the outbox, as they are now.
    /// Also says whether the room has HTTP members, which are not sent
    /// lines but read them from the history.
    fn snapshot(&mut self, room: &str, except: Option<MemberId>) -> (Range<usize>, bool) {
        let start = self.outbox.recipients.len();
        let mut pollers = false;
        if let Some(room) = self.rooms.get(room) {
            for &member in &room.members {
                match self.members.get(member.index()) {
                    Some(m) if m.transport == Transport::Http => pollers = true,
                    // Reached by their own instance.
                    Some(m) if m.transport == Transport::Remote => {}
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
                // Rooms vanish with their last member, and their history
                // with them.
                self.history_bytes -= r.bytes;
                self.by_size.remove(&(r.bytes, r.key.clone()));
                self.rooms.remove(room);
            }
        }
    }

    /// Checks that the hub's books agree with each other: every member in
    /// exactly one room, names unique by their folded key, every room with
    /// a member, the history within its bounds and its costs added up
    /// right. O(members + rooms + lines): for tests and fuzzing.
    pub fn check_consistency(&self) -> Result<(), String> {
        let mut placed = 0;
        for (key, room) in &self.rooms {
            if *room.key != **key || fold_name(&room.name) != **key {
                return Err(format!("room {:?} filed under {key:?}", room.name));
            }
            if room.members.is_empty() {
                return Err(format!("room {key:?} is empty"));
            }
            for &id in &room.members {
                let Some(member) = self.members.get(id.index()) else {
                    return Err(format!("room {key:?} lists a member that left"));
                };
                if *member.room_key != **key {
                    return Err(format!(
                        "{} is listed in {key:?} but is in {:?}",
                        member.name, member.room_key
                    ));
                }
                if room.members.iter().filter(|&&m| m == id).count() != 1 {
                    return Err(format!("{} is listed twice in {key:?}", member.name));
                }
                placed += 1;
            }
            let bytes: usize = room.history.iter().map(|(_, text)| line_cost(text)).sum();
            if bytes != room.bytes || bytes > self.limits.room_bytes {
                return Err(format!(
                    "room {key:?} history: {bytes} bytes, counted {}",
                    room.bytes
                ));
            }
            if room.history.len() > self.limits.lines {
                return Err(format!("room {key:?} keeps {} lines", room.history.len()));
            }
            if (bytes > 0) != self.by_size.contains(&(bytes, room.key.clone())) {
                return Err(format!("room {key:?} is misfiled by size"));
            }
        }
        if placed != self.members.len() {
            return Err(format!("{} members, {placed} in rooms", self.members.len()));
        }
        for (i, member) in &self.members {
            if member.key != fold_name(&member.name) || self.names.get(&member.key) != Some(&MemberId::new(i))
            {
                return Err(format!("{:?} is not filed under its folded name", member.name));
            }
        }
        if self.names.len() != self.members.len() {
            return Err(format!(
                "{} names for {} members",
                self.names.len(),
                self.members.len()
            ));
        }
        let total: usize = self.rooms.values().map(|r| r.bytes).sum();
        let indexed = self.by_size.len() == self.rooms.values().filter(|r| r.bytes > 0).count();
        if total != self.history_bytes || total > self.limits.total_bytes || !indexed {
            return Err(format!("history costs {total}, counted {}", self.history_bytes));
        }
        Ok(())
    }

    /// The adapter's handle for a member.
    pub fn link(&self, id: MemberId) -> Option<L> {
        self.members.get(id.index()).map(|m| m.link)
    }

    /// The transport of a member, for the adapters' statistics.
    pub fn transport(&self, id: MemberId) -> Option<Transport> {
        self.members.get(id.index()).map(|m| m.transport)
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

/// Checks a member or room name as typed, and returns it as it is kept
/// and shown: in NFC, so that the same name typed on two keyboards (one
/// sending `é`, the other `e` and a combining accent) is spelled alike.
///
/// A name is 1 to 24 characters (after NFC): letters and digits of any
/// script, `-`, `_`, `.`, and combining marks after one of them. Refused,
/// each with its reason: whitespace and other punctuation or symbols;
/// default-ignorable code points, which show as nothing and would let
/// `alice` and `al\u{200B}ice` pass for one another (Hangul fillers are
/// letters, but blank); a combining mark with nothing to combine with; a
/// code point not assigned in the Unicode version this build knows, whose
/// folding could change once it is.
fn check_name(name: &str) -> Result<String, &'static str> {
    use unicode_normalization::char::{is_combining_mark, is_public_assigned};
    use unicode_normalization::UnicodeNormalization;
    const RULE: &str = "use 1 to 24 letters, digits, '-', '_' or '.'";
    let name: String = if name.is_ascii() {
        name.to_string()
    } else {
        name.nfc().collect()
    };
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(RULE);
    }
    for (i, c) in name.chars().enumerate() {
        if is_default_ignorable(c) {
            return Err("invisible characters (zero-width, bidi controls, fillers) are not allowed");
        }
        if !is_public_assigned(c) {
            return Err("it holds a code point Unicode has not assigned");
        }
        if is_combining_mark(c) {
            if i == 0 {
                return Err("a name cannot start with a combining mark");
            }
            continue;
        }
        if !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.')) {
            return Err(RULE);
        }
    }
    Ok(name)
}

/// Unicode's Default_Ignorable_Code_Point property (DerivedCoreProperties,
/// Unicode 16): code points a renderer shows as nothing when it does not
/// support them, which includes every bidi control (U+061C, U+200E-200F,
/// U+202A-202E, U+2066-2069), zero-width spaces and joiners, variation
/// selectors and the Hangul fillers.
fn is_default_ignorable(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x061C
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFF8
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

/// The key by which two names (or room names) are the same name.
///
/// Unicode's compatibility caseless match (The Unicode Standard §3.13,
/// D146) says X and Y match when `NFKD(fold(NFKD(fold(NFD(X)))))` and the
/// same of Y are equal, where `fold` is full case folding. The key is that
/// string, put in NFC to be shorter (NFC of an NFKD string changes only
/// its representation, so equal keys stay equal and unequal ones unequal).
/// An ASCII name folds to its lower case, without the work.
///
/// Rust's standard library has no case folding, only lower- and
/// upper-case mappings, so `fold` here is `lower(upper(lower(c)))` for each
/// character. Where full case folding differs from lowercasing, this
/// agrees with the folding: final sigma (`ς` and `σ` both fold to `σ`, so
/// `ΟΔΥΣΣΕΥΣ` matches `οδυσσευς` and `οδυσσευσ`), `ß` and `ẞ` (to `ss`),
/// the Greek iota subscript (`ᾳ` to `αι`), the old Cyrillic letter forms
/// (U+1C80-1C88), Cherokee (either case, consistently). The one place it
/// folds more than Unicode does is the Turkish dotless `ı`, which it
/// matches with `i`; for uniqueness that is the safe side: two names that
/// differ only there look alike anyway. Compatibility forms (fullwidth
/// letters, the Kelvin and Ohm signs, ligatures, `ſ`, `µ`) are taken care
/// of by the NFKD steps, and default-ignorable code points, which
/// NFKC_Casefold would delete, are refused in names before they get here.
pub fn fold_name(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    if name.is_ascii() {
        return name.to_ascii_lowercase();
    }
    fn fold(chars: impl Iterator<Item = char>) -> impl Iterator<Item = char> {
        chars
            .flat_map(char::to_lowercase)
            .flat_map(char::to_uppercase)
            .flat_map(char::to_lowercase)
    }
    let once: String = fold(name.nfd()).collect();
    // NFKC is NFC of NFKD: the last NFKD of D146, kept in NFC.
    fold(once.nfkd()).nfkc().collect()
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

    /// History bounded in lines only (bytes as by default).
    fn lines(n: usize) -> HistoryLimits {
        HistoryLimits {
            lines: n,
            ..HistoryLimits::default()
        }
    }

    /// Flattens the outbox into (link, text) pairs, in order, after
    /// checking that the hub's books still agree.
    fn sent(hub: &mut Hub) -> Vec<(usize, String)> {
        if let Err(why) = hub.check_consistency() {
            panic!("hub inconsistent: {why}");
        }
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
        let mut hub = Hub::new(4096, lines(100));
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
        let mut hub = Hub::new(4096, lines(100));
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
        let mut hub = Hub::new(4096, lines(100));
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
        let mut hub = Hub::new(10, lines(100));
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
        let mut hub = Hub::new(100, lines(3));
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
        let mut hub = Hub::new(100, lines(100));
        let a = hub.join(1, Transport::Line, "");
        sent(&mut hub);
        hub.text(a, "\x1b[2Jboo", NOW);
        assert_eq!(
            sent(&mut hub),
            [(1, "[lobby] guest-1: \u{FFFD}[2Jboo".to_string())]
        );
    }

    /// Two members in the lobby, links 1 and 2, outbox drained.
    fn two() -> (Hub, MemberId, MemberId) {
        let mut hub = Hub::new(4096, lines(100));
        let a = hub.join(1, Transport::Line, "");
        let b = hub.join(2, Transport::Line, "");
        sent(&mut hub);
        (hub, a, b)
    }

    #[test]
    fn names_that_look_alike_are_one_name() {
        let pairs = [
            ("ÄRGER", "ärger"),
            // Fullwidth letters, as an East Asian keyboard types them.
            ("\u{FF41}\u{FF4C}\u{FF49}\u{FF43}\u{FF45}", "alice"),
            // K is the Kelvin sign U+212A.
            ("\u{212A}ate", "kate"),
            ("ΣOFIA", "σofia"),
            // Final sigma: ς and σ fold alike.
            ("ΟΔΥΣΣΕΥΣ", "οδυσσευσ"),
            ("Straße", "STRASSE"),
            // A precomposed letter and its decomposed spelling.
            ("Jos\u{E9}", "Jose\u{301}"),
            // The iota subscript folds to iota.
            ("\u{1FB3}", "\u{3B1}\u{3B9}"),
        ];
        for (first, second) in pairs {
            let (mut hub, a, b) = two();
            hub.text(a, &format!("/nick {first}"), NOW);
            let spelled: String = {
                use unicode_normalization::UnicodeNormalization;
                first.nfc().collect()
            };
            assert_eq!(
                sent(&mut hub)[0].1,
                format!("* guest-1 is now known as {spelled}"),
                "{first}"
            );
            hub.text(b, &format!("/nick {second}"), NOW);
            let out = sent(&mut hub);
            assert_eq!(out.len(), 1, "{first} / {second}: {out:?}");
            assert!(
                out[0].1.starts_with("! name taken: "),
                "{first} / {second}: {out:?}"
            );
            assert_eq!(fold_name(first), fold_name(second));
            // The owner may change the spelling of their own name.
            hub.text(a, &format!("/nick {second}"), NOW);
            assert!(sent(&mut hub)[0].1.ends_with(&format!("is now known as {}", {
                use unicode_normalization::UnicodeNormalization;
                second.nfc().collect::<String>()
            })));
        }
    }

    #[test]
    fn invisible_and_unreadable_names_are_refused() {
        let refused = [
            // Hangul fillers: letters, but blank.
            "\u{3164}",
            "\u{115F}\u{1160}",
            "\u{FFA0}",
            "a\u{3164}",
            // Zero-width and soft hyphen inside a name.
            "al\u{200B}ice",
            "al\u{200D}ice",
            "a\u{AD}b",
            // Bidi controls: the name would read backwards.
            "\u{202E}ecila",
            "bob\u{2066}",
            "x\u{61C}",
            // A variation selector, a tag character.
            "a\u{FE0F}",
            "a\u{E0041}",
            // A combining mark with nothing before it.
            "\u{301}a",
            // Whitespace of every kind.
            "a b",
            "a\u{3000}b",
            "a\u{A0}b",
            "a\tb",
            // A code point not assigned (yet).
            "a\u{0378}",
            // Symbols and the blank braille pattern.
            "a\u{2800}",
            "\u{1F600}",
        ];
        for name in refused {
            let (mut hub, a, _) = two();
            hub.text(a, &format!("/nick {name}"), NOW);
            let out = sent(&mut hub);
            assert!(
                out.len() == 1 && out[0].1.starts_with("! bad name"),
                "{name:?}: {out:?}"
            );
            hub.text(a, &format!("/join {name}"), NOW);
            let out = sent(&mut hub);
            assert!(
                out.len() == 1 && out[0].1.starts_with("! bad room name"),
                "{name:?}: {out:?}"
            );
        }
    }

    #[test]
    fn names_in_every_script_are_welcome() {
        let welcome = [
            "小明",
            "José",
            "Łukasz",
            "Ολυμπία",
            "Дмитрий",
            "محمد",
            "שרה",
            // Devanagari with a virama, a combining mark inside the name.
            "नमस्ते",
            "สมชาย",
            "ゆうき",
            "김민준",
            "a.b-c_d",
        ];
        for name in welcome {
            let (mut hub, a, _) = two();
            hub.text(a, &format!("/nick {name}"), NOW);
            assert_eq!(
                sent(&mut hub)[0].1,
                format!("* guest-1 is now known as {name}"),
                "{name}"
            );
            hub.text(a, &format!("/join {name}"), NOW);
            assert_eq!(sent(&mut hub).last().unwrap().1, format!("* you joined {name}"));
        }
        // Kept as typed, in NFC: a decomposed é is shown composed.
        let (mut hub, a, _) = two();
        hub.text(a, "/nick Jose\u{301}", NOW);
        assert_eq!(sent(&mut hub)[0].1, "* guest-1 is now known as Jos\u{E9}");
        // 24 characters, not bytes.
        hub.text(a, &format!("/nick {}", "字".repeat(24)), NOW);
        assert!(sent(&mut hub)[0].1.contains("is now known as"));
        hub.text(a, &format!("/nick {}", "字".repeat(25)), NOW);
        assert!(sent(&mut hub)[0].1.starts_with("! bad name"));
    }

    #[test]
    fn guest_names_are_reserved_however_spelled() {
        let (mut hub, a, b) = two();
        // guest-1 is free once a has another name; still nobody may take it.
        hub.text(a, "/nick alice", NOW);
        sent(&mut hub);
        let fullwidth = "\u{FF27}\u{FF35}\u{FF25}\u{FF33}\u{FF34}";
        for name in [
            "guest-1".to_string(),
            "GUEST-1".to_string(),
            format!("{fullwidth}-1"),
            "Guest-\u{FF11}".to_string(),
            format!("{fullwidth}-99"),
        ] {
            hub.text(b, &format!("/nick {name}"), NOW);
            let out = sent(&mut hub);
            assert_eq!(out.len(), 1, "{name}: {out:?}");
            assert!(
                out[0].1.ends_with("guest-N names are given, not taken"),
                "{name}: {out:?}"
            );
        }
        // Another spelling of one's own guest name is still one's own.
        hub.text(b, &format!("/nick {fullwidth}-2"), NOW);
        assert!(sent(&mut hub)[0]
            .1
            .ends_with(&format!("is now known as {fullwidth}-2")));
        // And the next guest is not given a name that folds to it.
        hub.join(3, Transport::Line, "");
        assert!(sent(&mut hub)[0].1.contains("your name is guest-3,"));
    }

    #[test]
    fn rooms_that_look_alike_are_one_room() {
        let (mut hub, a, b) = two();
        // Someone stays in the lobby, so it stays.
        hub.join(3, Transport::Line, "");
        sent(&mut hub);
        hub.text(a, "/join Room", NOW);
        assert_eq!(sent(&mut hub).last().unwrap().1, "* you joined Room");
        // Joining ROOM puts b in the existing room, shown as first spelled.
        hub.text(b, "/join ROOM", NOW);
        assert_eq!(
            sent(&mut hub),
            [
                (3, "* guest-2 left lobby".to_string()),
                (1, "* guest-2 joined Room".to_string()),
                (2, "* you joined Room".to_string())
            ]
        );
        hub.text(a, "/join \u{FF52}\u{FF4F}\u{FF4F}\u{FF4D}", NOW);
        assert_eq!(sent(&mut hub), [(1, "* you are already in Room".to_string())]);
        hub.text(b, "/rooms", NOW);
        assert_eq!(sent(&mut hub), [(2, "* rooms: lobby (1), Room (2)".to_string())]);
        hub.text(a, "hi", NOW);
        assert_eq!(sent(&mut hub)[0].1, "[Room] guest-1: hi");
        // Any spelling finds its history.
        assert_eq!(hub.room_seq("room"), hub.room_seq("ROOM"));
        assert_eq!(hub.history("rOOm", 0), hub.history("Room", 0));
        assert!(!hub.history("ROOM", 0).lines.is_empty());
        // The lobby too.
        hub.text(a, "/join LOBBY", NOW);
        assert_eq!(sent(&mut hub).last().unwrap().1, "* you joined lobby");
        // Once gone, a room may come back spelled anew.
        hub.text(b, "/join Lobby", NOW);
        sent(&mut hub);
        hub.text(b, "/join rOOM", NOW);
        assert_eq!(sent(&mut hub).last().unwrap().1, "* you joined rOOM");
    }

    #[test]
    fn commands_with_bad_arguments_say_what_works() {
        let (mut hub, a, _) = two();
        let usage = [
            ("/echo", "! usage: /echo TEXT"),
            ("/echo    ", "! usage: /echo TEXT"),
            ("/nick", "! usage: /nick NAME"),
            ("/join  ", "! usage: /join ROOM"),
            ("/who is here", "! usage: /who (it takes nothing after it)"),
            ("/rooms all", "! usage: /rooms (it takes nothing after it)"),
            ("/time now", "! usage: /time (it takes nothing after it)"),
            ("/stats x", "! usage: /stats (it takes nothing after it)"),
            ("/help nick", "! usage: /help (it takes nothing after it)"),
            ("/QUIT now", "! usage: /quit (it takes nothing after it)"),
        ];
        for (line, answer) in usage {
            hub.text(a, line, NOW);
            assert_eq!(sent(&mut hub), [(1, answer.to_string())], "{line}");
        }
        // Still here, and the plain forms work.
        hub.text(a, "/echo  hi ", NOW);
        assert_eq!(sent(&mut hub), [(1, "hi".to_string())]);
    }

    /// One HTTP member in each of `rooms` rooms (links 100..), so their
    /// histories are kept for them.
    fn pollers_in_rooms(hub: &mut Hub, rooms: usize) -> Vec<MemberId> {
        let ids: Vec<MemberId> = (0..rooms)
            .map(|i| {
                let id = hub.join(100 + i, Transport::Http, "");
                hub.text(id, &format!("/join r{i}"), NOW);
                id
            })
            .collect();
        sent(hub);
        ids
    }

    #[test]
    fn a_room_keeps_its_history_within_its_bytes() {
        let limits = HistoryLimits {
            lines: 1000,
            room_bytes: 10 * line_cost(&"x".repeat(100)),
            total_bytes: 1 << 20,
        };
        let mut hub = Hub::new(4096, limits);
        let ids = pollers_in_rooms(&mut hub, 1);
        let since = hub.room_seq("r0");
        for i in 0..50 {
            // "[r0] guest-1: " is 14 bytes: 86 more make 100.
            hub.text(ids[0], &format!("{i:0>86}"), NOW);
        }
        sent(&mut hub);
        let h = hub.history("r0", since);
        assert_eq!(h.lines.len(), 10);
        assert_eq!(h.missed, 40);
        assert_eq!(h.lines[0].1.len(), 100);
        assert_eq!(hub.history_bytes(), 10 * line_cost(&h.lines[0].1));
        // A line longer than the whole budget is not kept, and said so.
        hub.text(ids[0], &"y".repeat(2000), NOW);
        sent(&mut hub);
        let h = hub.history("r0", since + 50);
        assert_eq!((h.lines.len(), h.missed), (0, 1));
    }

    #[test]
    fn over_the_total_the_fullest_room_gives_way() {
        let line = |i: usize| format!("{i:0>986}"); // 1000 bytes with "[rN] guest-M: "
        let cost = line_cost(&format!("[r0] guest-1: {}", line(0)));
        let limits = HistoryLimits {
            lines: 1000,
            room_bytes: 100 * cost,
            total_bytes: 20 * cost,
        };
        let mut hub = Hub::new(4096, limits);
        let ids = pollers_in_rooms(&mut hub, 3);
        let start: Vec<u64> = (0..3).map(|i| hub.room_seq(&format!("r{i}"))).collect();
        // A quiet room says two lines; then a flood into the other two.
        for i in 0..2 {
            hub.text(ids[0], &line(i), NOW);
        }
        for i in 0..200 {
            hub.text(ids[1 + i % 2], &line(i), NOW);
            sent(&mut hub);
        }
        assert!(hub.history_bytes() <= limits.total_bytes);
        // The quiet room lost nothing; the flooded ones lost their old
        // lines, and a poller that comes back is told how many.
        let quiet = hub.history("r0", start[0]);
        assert_eq!((quiet.lines.len(), quiet.missed), (2, 0));
        for (i, &since) in start.iter().enumerate().skip(1) {
            let h = hub.history(&format!("r{i}"), since);
            assert_eq!(h.missed + h.lines.len() as u64, 100, "{h:?}");
            assert!(h.missed > 80, "{}", h.missed);
        }
        // Rooms that vanish give their bytes back.
        for id in ids {
            hub.leave(id);
        }
        sent(&mut hub);
        assert_eq!(hub.history_bytes(), 0);
    }
}
