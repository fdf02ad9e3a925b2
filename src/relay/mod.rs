//! Rooms across instances (`--redis`): what this instance tells the others
//! through one Redis stream, and what it makes of what they tell it.
//! Sans-IO, like the codecs: replies come in as [`Value`]s, commands go out
//! as bytes, time is an argument. The loop (`server/relay.rs`) owns the
//! two sockets and the timers.
//!
//! # The path of a line
//!
//! A member of this instance says a line. The hub delivers it here at
//! once (local chat never waits for Redis) and hands it to the relay
//! ([`Relay::on_action`]), which numbers it (the origin's sequence
//! number, 1, 2, 3...) and queues an `XADD` of it ([`entry`]). Every
//! instance reads the stream with `XREAD BLOCK` from the last entry id it
//! has seen, and replays other instances' entries into its own hub: the
//! line reaches the members here as if its sender were local.
//!
//! # Two connections
//!
//! `XREAD BLOCK` holds its connection until an entry arrives or its time
//! is up; commands sent behind it on the same connection would wait that
//! long. So the *reader* connection only reads, one `XREAD` at a time,
//! and the *writer* connection pipelines `XADD`s. Neither blocks the loop:
//! both are non-blocking sockets in its `Poll`, and a reply is just bytes
//! that arrive.
//!
//! # Nothing lost, nothing doubled
//!
//! At-least-once: an entry stays queued here until Redis has answered its
//! `XADD` with an id. If the link breaks first, every unanswered entry is
//! sent again on the next connection, in order. Redis may have added some
//! of them already (the answer was lost, not the command), so an entry
//! can be in the stream twice. De-duplication makes that exactly-once:
//! each reader keeps, per origin, the highest sequence number it has
//! applied, and skips any entry at or below it. Commands on one
//! connection are carried out in order, so what Redis added before the
//! break is a prefix of what was sent, and the resent entries follow it:
//! an origin's numbers only ever go up in the stream, apart from repeats.
//!
//! A reader that comes back reads on from its last id, so it misses
//! nothing the stream still holds. The stream is trimmed to about
//! `--redis-maxlen` entries; if a reader was away longer than that, the
//! numbers tell it: a jump from 17 to 42 is 24 lines missed, and its
//! members are told how many, as HTTP pollers are. Every instance writes a
//! heartbeat every `--redis-ttl` / 3, so a jump shows within that time.
//!
//! If Redis itself restarts without persistence, the stream is gone. Both
//! connections notice (Redis's `run_id` changed): the reader starts again
//! from the new stream's beginning, and the writer sends again what it
//! keeps of its recent entries (bounded by `--redis-buffer`), which the
//! readers de-duplicate. Only what was older than that is lost, and told.
//!
//! # Presence and names
//!
//! Each instance keeps a picture of every member of the cluster in its
//! own hub ([`crate::hub::Transport::Remote`]), so `/who` and `/rooms` are
//! answered locally. An instance that goes silent for `--redis-ttl` while
//! this one reads the stream without trouble is gone: its members leave,
//! announced. An instance that starts (or comes back) says `hello`, and
//! every other instance answers with its roster.
//!
//! Names are unique across the cluster, claimed first and settled by the
//! stream's order. `/nick alice` is checked against the whole picture
//! here and granted at once; the claim goes into the stream. Two
//! instances can grant the same name in the same instant (or while Redis
//! is away): every instance reads both claims in the same order, and the
//! first in the stream wins everywhere. The loser's own instance renames
//! it to a fresh guest name and tells it so. Guest names end in the
//! instance's name (`guest-7.b`), so they never collide.

pub mod entry;

use crate::hub::{fold_name, Hub, MemberId, Relayed};
use crate::outq::OutQueue;
use crate::resp::{encode_command, Value};
use entry::{Entry, Kind};
use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Entries asked for per `XREAD`: a reply is at most this many entries.
pub const READ_COUNT: usize = 100;

/// Largest binary message passed to other instances. Larger ones are
/// announced there by a notice only: an `XREAD` reply holds up to
/// [`READ_COUNT`] entries, and a hundred of them must fit within the
/// reader's bound on a reply (64 MiB).
pub const MAX_RELAYED_BINARY: usize = 256 << 10;

/// Longest wait before connecting again, however often it failed.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The first wait after a failure; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// How this instance joins the cluster (from `--redis` and its friends).
#[derive(Clone, Debug)]
pub struct Settings {
    /// The stream's key (`{prefix}:stream`).
    pub key: String,
    /// This instance's name (`--instance`).
    pub instance: String,
    /// `instance:nonce`, unique to this run.
    pub origin: String,
    /// Entries the stream keeps, about (`--redis-maxlen`).
    pub maxlen: usize,
    /// Silence after which an instance is gone (`--redis-ttl`).
    pub ttl: Duration,
    /// Longest wait for a reply before the link is taken as broken
    /// (`--redis-timeout`).
    pub timeout: Duration,
    /// Bytes of entries kept for sending and resending (`--redis-buffer`).
    pub buffer: usize,
}

impl Settings {
    /// How long one `XREAD` blocks: half the timeout, so a reply (if only
    /// an empty one) comes well within the time allowed.
    pub fn block(&self) -> Duration {
        self.timeout / 2
    }

    /// How long an entry Redis answered is kept to be sent again, should
    /// Redis restart empty: readers that are reading are milliseconds
    /// behind, and one that is away longer than twice the timeout has
    /// broken its link and will be told what it missed.
    pub fn replay_window(&self) -> Duration {
        self.timeout * 2
    }

    /// How often the relay's timer runs: heartbeats, stalls, presence.
    pub fn tick(&self) -> Duration {
        (self.ttl / 3)
            .min(self.timeout / 2)
            .max(Duration::from_millis(10))
    }
}

/// The two connections to Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Pipelines `XADD`s.
    Writer,
    /// Reads the stream with `XREAD BLOCK`, one at a time.
    Reader,
}

impl Side {
    /// For logs.
    pub fn name(self) -> &'static str {
        match self {
            Side::Writer => "writer",
            Side::Reader => "reader",
        }
    }
}

/// Where a connection to Redis is. Transitions only go forward, and from
/// anywhere back to `Down` (see [`Relay::set_state`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LinkState {
    /// No socket: waiting out the backoff before connecting again.
    #[default]
    Down,
    /// `connect` is under way (non-blocking).
    Connecting,
    /// Connected; asking Redis who it is (`INFO server`) and, for the
    /// reader, where to start.
    Greeting,
    /// Writing entries, or reading them.
    Ready,
}

impl LinkState {
    /// For `/stats` and `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            LinkState::Down => "down",
            LinkState::Connecting => "connecting",
            LinkState::Greeting => "greeting",
            LinkState::Ready => "ready",
        }
    }
}

/// The reply a command sent is waiting for, in the order sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// `CLIENT SETNAME`: `+OK`.
    Named,
    /// `INFO server`: Redis's `run_id`.
    Info,
    /// `XREVRANGE key + - COUNT 1`: the last entry now, where a new
    /// reader starts.
    Position,
    /// `XREAD`: entries, or null when the block timed out.
    Read,
    /// `XADD`: the new entry's id.
    Added,
}

#[derive(Debug)]
struct Link {
    state: LinkState,
    expect: VecDeque<Expect>,
    /// A reply is due by then, or the link is taken as stalled.
    deadline: Option<Instant>,
    /// The Redis this link last greeted (`INFO server`'s `run_id`).
    run_id: Option<String>,
    /// Failures in a row, for the backoff.
    failures: u32,
}

impl Link {
    fn new() -> Link {
        Link {
            state: LinkState::Down,
            expect: VecDeque::new(),
            deadline: None,
            run_id: None,
            failures: 0,
        }
    }
}

/// An entry on its way: numbered, encoded once as its `XADD`.
#[derive(Debug)]
struct Pending {
    seq: u64,
    command: Rc<[u8]>,
    /// When Redis answered it (kept entries only).
    added: Option<Instant>,
}

/// Another instance, as this one knows it.
#[derive(Debug)]
struct Origin {
    /// A small number for it, used in [`Claimant`]s.
    index: u32,
    instance: String,
    /// The highest sequence number applied from it.
    last_seq: u64,
    last_heard: Instant,
    /// Its members (by their number there) in this hub.
    members: HashMap<u32, MemberId>,
}

/// Who claimed a name: an origin (0 is this instance) and a member
/// number there.
type Claimant = (u32, u32);

/// Counters, for `/stats` and the logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Entries this instance added (answered by Redis).
    pub added: u64,
    /// Entries of other instances applied here.
    pub applied: u64,
    /// Entries read twice and skipped (a resent `XADD`).
    pub duplicates: u64,
    /// Entries of other instances never seen (trimmed away, or lost with
    /// a Redis that restarted).
    pub missed: u64,
    /// Entries of this instance dropped unsent (over `--redis-buffer`).
    pub dropped: u64,
}

/// The relay's whole state.
#[derive(Debug)]
pub struct Relay {
    settings: Settings,
    seq: u64,
    /// Entries not yet answered, oldest first; the first `inflight` have
    /// been sent on the current writer connection.
    queue: VecDeque<Pending>,
    inflight: usize,
    /// Entries answered, kept to be sent again should Redis restart and
    /// lose them before every reader had them: those answered within
    /// [`Settings::replay_window`], and fewer over the budget.
    kept: VecDeque<Pending>,
    /// What `queue` and `kept` hold, in bytes.
    bytes: usize,
    writer: Link,
    reader: Link,
    /// The id of the last entry read: where the next `XREAD` starts.
    position: Option<String>,
    /// Since when the reader has read without trouble: silence from
    /// another instance counts only from here.
    reading_since: Option<Instant>,
    origins: HashMap<String, Origin>,
    next_origin: u32,
    /// Members of other instances in this hub, and who they are there.
    remote: HashMap<MemberId, Claimant>,
    /// Names by folded key, and who claimed each first in the stream.
    owner: HashMap<String, Claimant>,
    held: HashMap<Claimant, String>,
    /// Both links are ready (and were, once: members are told when that
    /// changes, not at start).
    up: bool,
    ever_up: bool,
    /// This instance's own `hello` has been read back: from then on, an
    /// origin heard of for the first time mid-stream means a picture to
    /// catch up on, and a `hello` is said to get its roster.
    introduced: bool,
    roster_due: bool,
    hello_due: bool,
    last_heartbeat: Option<Instant>,
    /// A drop over the budget was logged (once until the queue drains).
    overflowing: bool,
    stats: RelayStats,
}

impl Relay {
    /// A relay that has not connected yet. Its first entry is a `hello`.
    pub fn new(settings: Settings) -> Relay {
        let mut relay = Relay {
            settings,
            seq: 0,
            queue: VecDeque::new(),
            inflight: 0,
            kept: VecDeque::new(),
            bytes: 0,
            writer: Link::new(),
            reader: Link::new(),
            position: None,
            reading_since: None,
            origins: HashMap::new(),
            next_origin: 1,
            remote: HashMap::new(),
            owner: HashMap::new(),
            held: HashMap::new(),
            up: false,
            ever_up: false,
            introduced: false,
            roster_due: false,
            hello_due: false,
            last_heartbeat: None,
            overflowing: false,
            stats: RelayStats::default(),
        };
        relay.publish(Kind::Hello, 0, "", "", Vec::new());
        relay
    }

    /// The settings it was made with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The counters.
    pub fn stats(&self) -> RelayStats {
        self.stats
    }

    /// Where a link is.
    pub fn state(&self, side: Side) -> LinkState {
        self.link(side).state
    }

    /// Both links ready: entries flow both ways.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Entries queued and not yet answered.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    fn link(&self, side: Side) -> &Link {
        match side {
            Side::Writer => &self.writer,
            Side::Reader => &self.reader,
        }
    }

    fn link_mut(&mut self, side: Side) -> &mut Link {
        match side {
            Side::Writer => &mut self.writer,
            Side::Reader => &mut self.reader,
        }
    }

    /// The one place a link's state changes, traced `A -> B`.
    fn set_state(&mut self, side: Side, to: LinkState) {
        let link = self.link_mut(side);
        if link.state != to {
            log::debug!("redis {}: {:?} -> {to:?}", side.name(), link.state);
            link.state = to;
        }
    }

    // ----- what this instance tells the others -----

    /// A member of this instance did something ([`crate::hub::Action::Relay`]).
    pub fn on_action(&mut self, member: MemberId, name: &str, room: &str, what: &Relayed) {
        let number = member.number();
        match what {
            Relayed::Joined => self.publish(Kind::Join, number, name, room, Vec::new()),
            Relayed::Left => self.publish(Kind::Leave, number, name, room, Vec::new()),
            Relayed::Renamed => self.publish(Kind::Nick, number, name, room, Vec::new()),
            Relayed::Moved => self.publish(Kind::Move, number, name, room, Vec::new()),
            Relayed::Line(text) => self.publish(Kind::Say, number, name, room, text.as_bytes().to_vec()),
            Relayed::Binary(data) if data.len() > MAX_RELAYED_BINARY => {
                let size = data.len().to_string().into_bytes();
                self.publish(Kind::Withheld, number, name, room, size);
            }
            Relayed::Binary(data) => self.publish(Kind::Binary, number, name, room, data.to_vec()),
        }
    }

    /// Numbers an entry and queues its `XADD`. Over `--redis-buffer`, what
    /// is kept for a replay goes first, then the oldest entries not yet
    /// sent: those are lost, counted, logged, and seen by the other
    /// instances as a jump in this one's numbers.
    fn publish(&mut self, kind: Kind, member: u32, name: &str, room: &str, payload: Vec<u8>) {
        self.seq += 1;
        let entry = Entry {
            origin: self.settings.origin.clone(),
            seq: self.seq,
            kind: Some(kind),
            member,
            name: name.to_string(),
            room: room.to_string(),
            payload,
        };
        let mut command = Vec::new();
        entry.xadd(&self.settings.key, self.settings.maxlen, &mut command);
        self.bytes += command.len();
        self.queue.push_back(Pending {
            seq: self.seq,
            command: Rc::from(command),
            added: None,
        });
        while self.bytes > self.settings.buffer {
            if let Some(old) = self.kept.pop_front() {
                self.bytes -= old.command.len();
            } else if self.queue.len() > self.inflight {
                let Some(old) = self.queue.remove(self.inflight) else {
                    break;
                };
                self.bytes -= old.command.len();
                self.stats.dropped += 1;
                if !std::mem::replace(&mut self.overflowing, true) {
                    log::warn!(
                        "redis: over --redis-buffer ({} bytes) while Redis is away; dropping the oldest unsent entries (#{} first)",
                        self.settings.buffer,
                        old.seq
                    );
                }
            } else {
                break;
            }
        }
    }

    /// The writer's output: every queued entry not yet sent on this
    /// connection, shared with the queue (no copy).
    pub fn fill_writer(&mut self, now: Instant, out: &mut OutQueue) {
        // Nothing goes out before the reader knows where the stream is:
        // this instance must read its own entries back to settle names.
        if self.writer.state != LinkState::Ready || self.position.is_none() {
            return;
        }
        while let Some(pending) = self.queue.get(self.inflight) {
            out.push_shared(pending.command.clone());
            self.inflight += 1;
            self.writer.expect.push_back(Expect::Added);
            self.writer.deadline.get_or_insert(now + self.settings.timeout);
        }
    }

    // ----- the links -----

    /// A socket is being connected.
    pub fn connecting(&mut self, side: Side) {
        self.set_state(side, LinkState::Connecting);
    }

    /// The socket connected: name the connection (for `CLIENT LIST` and
    /// `MONITOR`) and ask which Redis this is.
    pub fn connected(&mut self, side: Side, now: Instant, out: &mut OutQueue) {
        self.set_state(side, LinkState::Greeting);
        let name = format!("duplex-{}-{}", self.settings.instance, side.name());
        out.encode_with(|buf| {
            encode_command(buf, &["CLIENT", "SETNAME", &name]);
            encode_command(buf, &["INFO", "server"]);
        });
        let timeout = self.settings.timeout;
        let link = self.link_mut(side);
        link.expect.extend([Expect::Named, Expect::Info]);
        link.deadline = Some(now + timeout);
    }

    /// A link broke (or never connected, or stalled): everything it was
    /// waiting for is forgotten, and entries in flight will be sent again.
    /// Returns how long to wait before connecting again: 100 ms, doubling
    /// with each failure in a row, at most [`MAX_BACKOFF`].
    pub fn broken<L: Copy>(&mut self, side: Side, hub: &mut Hub<L>) -> Duration {
        self.set_state(side, LinkState::Down);
        let link = self.link_mut(side);
        link.expect.clear();
        link.deadline = None;
        link.failures = link.failures.saturating_add(1);
        let failures = link.failures;
        match side {
            Side::Writer => self.inflight = 0,
            Side::Reader => self.reading_since = None,
        }
        self.check_up(hub);
        FIRST_BACKOFF
            .saturating_mul(1 << (failures - 1).min(16))
            .min(MAX_BACKOFF)
    }

    /// Tells this instance's members once when the relay goes down, and
    /// once when it is back.
    fn check_up<L: Copy>(&mut self, hub: &mut Hub<L>) {
        let up = self.writer.state == LinkState::Ready && self.reader.state == LinkState::Ready;
        if up == self.up {
            return;
        }
        self.up = up;
        if up && self.ever_up {
            log::info!("redis: the relay is back");
            hub.tell_local("* the relay to the other instances is back");
        } else if up {
            log::info!("redis: relaying through {}", self.settings.key);
            self.ever_up = true;
        } else if self.ever_up {
            log::warn!("redis: the relay is down; chat goes on here");
            hub.tell_local(
                "* the relay to the other instances is down: chat here goes on, and what is said is passed on when it is back",
            );
        }
    }

    /// A reply on a link. `Err` says why the link cannot go on (the loop
    /// closes it and connects again).
    pub fn on_reply<L: Copy>(
        &mut self,
        side: Side,
        reply: Value,
        now: Instant,
        hub: &mut Hub<L>,
        remote: L,
        out: &mut OutQueue,
    ) -> Result<(), String> {
        let timeout = self.settings.timeout;
        let link = self.link_mut(side);
        let Some(expect) = link.expect.pop_front() else {
            return Err("a reply to nothing asked".into());
        };
        link.deadline = (!link.expect.is_empty()).then_some(now + timeout);
        if let Value::Error(e) = &reply {
            return Err(format!("Redis refused {expect:?}: {e}"));
        }
        match expect {
            Expect::Named => Ok(()),
            Expect::Info => self.on_info(side, &reply, now, hub, out),
            Expect::Position => {
                // The newest entry's id, or the very start of an empty
                // stream.
                let id = reply
                    .items()
                    .and_then(|entries| entries.first())
                    .and_then(|e| e.items()?.first()?.bytes())
                    .map_or("0-0".to_string(), |id| String::from_utf8_lossy(id).into_owned());
                log::debug!("redis reader: starting after {id}");
                self.position = Some(id);
                self.reader_ready(now, hub, out);
                Ok(())
            }
            Expect::Read => {
                self.on_entries(&reply, now, hub, remote)?;
                self.read_next(now, out);
                self.answer(hub);
                Ok(())
            }
            Expect::Added => {
                if reply.bytes().is_none() {
                    return Err(format!("XADD answered {reply:?}"));
                }
                let Some(mut pending) = self.queue.pop_front() else {
                    return Err("an XADD answered twice".into());
                };
                self.inflight = self.inflight.saturating_sub(1);
                self.stats.added += 1;
                pending.added = Some(now);
                self.kept.push_back(pending);
                self.forget_kept(now);
                if self.queue.is_empty() {
                    self.overflowing = false;
                }
                Ok(())
            }
        }
    }

    /// `INFO server` told us which Redis this is. A different `run_id`
    /// than last time: Redis restarted, and without persistence its
    /// stream is new.
    fn on_info<L: Copy>(
        &mut self,
        side: Side,
        reply: &Value,
        now: Instant,
        hub: &mut Hub<L>,
        out: &mut OutQueue,
    ) -> Result<(), String> {
        let info = reply.bytes().ok_or("INFO answered no text")?;
        let info = String::from_utf8_lossy(info);
        let run_id = info
            .lines()
            .find_map(|l| l.strip_prefix("run_id:"))
            .map(str::trim)
            .ok_or("INFO without a run_id")?
            .to_string();
        let link = self.link_mut(side);
        let before = link.run_id.replace(run_id.clone());
        link.failures = 0;
        let restarted = before.is_some_and(|b| b != run_id);
        match side {
            Side::Writer => {
                if restarted {
                    // Everything kept goes again, ahead of what is queued:
                    // readers skip what they had already.
                    log::warn!(
                        "redis writer: Redis restarted (run_id {run_id}); sending the last {} entries again",
                        self.kept.len()
                    );
                    while let Some(old) = self.kept.pop_back() {
                        self.queue.push_front(old);
                    }
                }
                self.set_state(Side::Writer, LinkState::Ready);
                // Whoever declared this instance gone while it was away
                // has its members back from the roster.
                self.publish_roster(hub);
                self.check_up(hub);
            }
            Side::Reader => {
                if restarted {
                    log::warn!("redis reader: Redis restarted (run_id {run_id}); reading its new stream from the start");
                    self.position = Some("0-0".into());
                }
                if self.position.is_some() {
                    self.reader_ready(now, hub, out);
                } else {
                    out.encode_with(|buf| {
                        encode_command(buf, &["XREVRANGE", &self.settings.key, "+", "-", "COUNT", "1"]);
                    });
                    self.reader.expect.push_back(Expect::Position);
                    self.reader.deadline = Some(now + self.settings.timeout);
                }
            }
        }
        Ok(())
    }

    fn reader_ready<L: Copy>(&mut self, now: Instant, hub: &mut Hub<L>, out: &mut OutQueue) {
        self.set_state(Side::Reader, LinkState::Ready);
        self.reading_since = Some(now);
        self.read_next(now, out);
        self.check_up(hub);
    }

    /// The next `XREAD`: up to [`READ_COUNT`] entries after the last one
    /// read, waiting up to [`Settings::block`] for the first.
    fn read_next(&mut self, now: Instant, out: &mut OutQueue) {
        let (count, block) = (
            READ_COUNT.to_string(),
            self.settings.block().as_millis().to_string(),
        );
        let position = self.position.as_deref().unwrap_or("$");
        let key = &self.settings.key;
        out.encode_with(|buf| {
            encode_command(
                buf,
                &[
                    "XREAD", "COUNT", &count, "BLOCK", &block, "STREAMS", key, position,
                ],
            );
        });
        self.reader.expect.push_back(Expect::Read);
        self.reader.deadline = Some(now + self.settings.block() + self.settings.timeout);
    }

    /// Answers `hello`s with a roster, asks for rosters with a `hello`,
    /// sends a heartbeat when due. Only while the writer is ready: an
    /// answer queued while Redis is away would be stale when it arrives.
    fn answer<L: Copy>(&mut self, hub: &Hub<L>) {
        if self.writer.state != LinkState::Ready {
            return;
        }
        if std::mem::take(&mut self.hello_due) {
            self.publish(Kind::Hello, 0, "", "", Vec::new());
        }
        if std::mem::take(&mut self.roster_due) {
            self.publish_roster(hub);
        }
    }

    fn publish_roster<L: Copy>(&mut self, hub: &Hub<L>) {
        let payload = entry::roster(
            hub.local_members()
                .map(|(id, name, room)| (id.number(), name, room)),
        );
        self.publish(Kind::Roster, 0, "", "", payload);
    }

    /// Lets go of kept entries older than the replay window.
    fn forget_kept(&mut self, now: Instant) {
        let window = self.settings.replay_window();
        while let Some(old) = self.kept.front() {
            if old.added.is_some_and(|at| now.duration_since(at) <= window) {
                break;
            }
            self.bytes -= old.command.len();
            self.kept.pop_front();
        }
    }

    /// This instance is shutting down: a `bye`, so the others let its
    /// members go at once rather than after `--redis-ttl`. Sent if the
    /// writer can take it now; the TTL covers the rest.
    pub fn goodbye(&mut self) {
        self.publish(Kind::Bye, 0, "", "", Vec::new());
    }

    /// The relay's timer: a heartbeat when due, links that stalled (to be
    /// broken by the loop), and instances silent for too long (gone).
    pub fn tick<L: Copy>(&mut self, now: Instant, hub: &mut Hub<L>) -> Vec<Side> {
        let interval = self.settings.ttl / 3;
        if self.writer.state == LinkState::Ready
            && self
                .last_heartbeat
                .is_none_or(|at| now.duration_since(at) >= interval)
        {
            self.last_heartbeat = Some(now);
            self.publish(Kind::Heartbeat, 0, "", "", Vec::new());
        }
        self.answer(hub);
        self.forget_kept(now);
        let stalled: Vec<Side> = [Side::Writer, Side::Reader]
            .into_iter()
            .filter(|&side| self.link(side).deadline.is_some_and(|d| now >= d))
            .collect();
        if let Some(since) = self.reading_since {
            let ttl = self.settings.ttl;
            let gone: Vec<String> = self
                .origins
                .iter()
                .filter(|(_, o)| now.duration_since(o.last_heard.max(since)) > ttl)
                .map(|(origin, _)| origin.clone())
                .collect();
            for origin in gone {
                let instance = entry::instance_of(&origin).to_string();
                log::info!("redis: instance {instance} ({origin}) silent for {ttl:?}: gone");
                self.remove_origin(&origin, hub, &format!("left (instance {instance} is gone)"));
            }
        }
        stalled
    }

    /// An instance is gone: its members leave, announced, and their
    /// names are free.
    fn remove_origin<L: Copy>(&mut self, origin: &str, hub: &mut Hub<L>, why: &str) {
        let Some(gone) = self.origins.remove(origin) else {
            return;
        };
        let mut members: Vec<(u32, MemberId)> = gone.members.into_iter().collect();
        members.sort_unstable();
        for (number, id) in members {
            self.release((gone.index, number));
            self.remote.remove(&id);
            hub.leave_saying(id, why);
        }
    }

    // ----- what the others tell this instance -----

    /// An `XREAD` reply: `[[key, [[id, [field, value, ...]], ...]]]`, or
    /// null when nothing came within the block.
    fn on_entries<L: Copy>(
        &mut self,
        reply: &Value,
        now: Instant,
        hub: &mut Hub<L>,
        remote: L,
    ) -> Result<(), String> {
        if reply.is_null() {
            return Ok(());
        }
        let streams = reply.items().ok_or("XREAD answered no array")?;
        for stream in streams {
            let entries = stream
                .items()
                .and_then(|s| s.get(1))
                .and_then(Value::items)
                .ok_or("XREAD answered a malformed stream")?;
            for item in entries {
                let (Some(id), Some(fields)) = (
                    item.items().and_then(|i| i.first()).and_then(Value::bytes),
                    item.items().and_then(|i| i.get(1)).and_then(Value::items),
                ) else {
                    return Err("XREAD answered a malformed entry".into());
                };
                self.position = Some(String::from_utf8_lossy(id).into_owned());
                if self.is_own_chatter(fields) {
                    continue;
                }
                match Entry::from_fields(fields) {
                    Ok(entry) => self.on_entry(entry, now, hub, remote),
                    Err(why) => log::warn!(
                        "redis: skipping stream entry {}: {why}",
                        String::from_utf8_lossy(id)
                    ),
                }
            }
        }
        Ok(())
    }

    /// Is this one of this instance's own lines (or heartbeats), read
    /// back? Those matter for nothing here (they were delivered when said)
    /// and are most of what an instance reads of itself, so they are
    /// skipped before an `Entry` is made of them. Its claims of names are
    /// not: they settle who keeps a name (`own_entry`).
    fn is_own_chatter(&self, fields: &[Value]) -> bool {
        let field = |name: &[u8]| {
            fields
                .chunks(2)
                .find(|pair| pair.first().and_then(Value::bytes) == Some(name))
                .and_then(|pair| pair.get(1)?.bytes())
        };
        field(b"o") == Some(self.settings.origin.as_bytes())
            && matches!(field(b"t"), Some(b"say" | b"bin" | b"withheld" | b"move" | b"hb"))
    }

    /// One entry, in stream order.
    fn on_entry<L: Copy>(&mut self, entry: Entry, now: Instant, hub: &mut Hub<L>, remote: L) {
        let Some(kind) = entry.kind else { return };
        if entry.origin == self.settings.origin {
            return self.own_entry(kind, &entry, hub);
        }
        if !self.origins.contains_key(&entry.origin) {
            if kind != Kind::Hello && self.introduced {
                // Heard of mid-stream (it was taken for gone, or the
                // stream was trimmed): ask for its roster.
                self.hello_due = true;
            }
            self.origins.insert(
                entry.origin.clone(),
                Origin {
                    index: self.next_origin,
                    instance: entry.instance().to_string(),
                    last_seq: entry.seq - 1,
                    last_heard: now,
                    members: HashMap::new(),
                },
            );
            self.next_origin += 1;
        }
        let Some(origin) = self.origins.get_mut(&entry.origin) else {
            return;
        };
        if entry.seq <= origin.last_seq {
            self.stats.duplicates += 1;
            log::trace!("redis: {} #{} again, skipped", entry.origin, entry.seq);
            return;
        }
        let missed = entry.seq - origin.last_seq - 1;
        origin.last_seq = entry.seq;
        origin.last_heard = now;
        let (index, instance) = (origin.index, origin.instance.clone());
        self.stats.applied += 1;
        if missed > 0 {
            self.stats.missed += missed;
            log::warn!(
                "redis: {missed} entries of {} never reached this instance",
                entry.origin
            );
            hub.tell_local(&format!(
                "! {missed} lines or notices from instance {instance} were lost on the way (the relay kept too few)"
            ));
            self.hello_due = true;
        }
        let who = (index, entry.member);
        match kind {
            Kind::Heartbeat => {}
            Kind::Hello => {
                self.roster_due = true;
                // One name, one instance at a time: an instance that says
                // hello under a name already known has restarted.
                let earlier: Vec<String> = self
                    .origins
                    .iter()
                    .filter(|(o, known)| known.instance == instance && **o != entry.origin)
                    .map(|(o, _)| o.clone())
                    .collect();
                for origin in earlier {
                    self.remove_origin(&origin, hub, &format!("left (instance {instance} restarted)"));
                }
                if instance == self.settings.instance {
                    log::error!(
                        "redis: another instance is also named {instance}; give each its own --instance"
                    );
                }
            }
            Kind::Bye => {
                self.remove_origin(&entry.origin, hub, &format!("left (instance {instance} stopped)"))
            }
            Kind::Roster => self.sync_roster(&entry, who.0, hub, remote),
            Kind::Join => {
                self.place(&entry.origin, who, &entry.name, &entry.room, true, hub, remote);
            }
            Kind::Leave => {
                if let Some(id) = self.forget(&entry.origin, who) {
                    hub.leave(id);
                }
            }
            Kind::Nick | Kind::Move | Kind::Say | Kind::Binary | Kind::Withheld => {
                // The member as the entry describes it, placed if missed.
                let Some(id) = self.place(&entry.origin, who, &entry.name, &entry.room, false, hub, remote)
                else {
                    return;
                };
                self.member_did(kind, id, who, &entry, hub);
            }
        }
    }

    /// What a known member of another instance did.
    fn member_did<L: Copy>(
        &mut self,
        kind: Kind,
        id: MemberId,
        who: Claimant,
        entry: &Entry,
        hub: &mut Hub<L>,
    ) {
        match kind {
            // A claim that loses is not shown: its own instance renames
            // the member, and that rename comes next.
            Kind::Nick if self.settle(who, &entry.name, hub) => hub.rename_remote(id, &entry.name, true),
            Kind::Move => hub.move_remote(id, &entry.room, true),
            Kind::Say => hub.say_remote(id, &String::from_utf8_lossy(&entry.payload)),
            Kind::Binary => hub.binary(id, &entry.payload),
            Kind::Withheld => {
                let size = String::from_utf8_lossy(&entry.payload).parse().unwrap_or(0);
                hub.binary_withheld(id, size);
            }
            _ => {}
        }
    }

    /// This instance's own entry, read back. Only names matter: a claim
    /// that lost to an earlier one in the stream makes its member a guest
    /// again, if it still holds that name.
    fn own_entry<L: Copy>(&mut self, kind: Kind, entry: &Entry, hub: &mut Hub<L>) {
        match kind {
            Kind::Hello => self.introduced = true,
            Kind::Join | Kind::Nick => self.settle_own(entry.member, &entry.name, hub),
            Kind::Roster => {
                for (number, name, _) in entry::roster_members(&entry.payload) {
                    self.settle_own(number, name, hub);
                }
            }
            Kind::Leave => self.release((0, entry.member)),
            _ => {}
        }
    }

    fn settle_own<L: Copy>(&mut self, number: u32, name: &str, hub: &mut Hub<L>) {
        let key = fold_name(name);
        if self.claim((0, number), &key) {
            return;
        }
        let id = MemberId::from_number(number);
        if !hub.is_remote(id) && hub.key(id) == Some(key.as_str()) {
            log::info!("redis: {name} was claimed on another instance first");
            hub.lose_name(id, "was claimed on another instance first");
        }
    }

    /// A claim of another instance's member: does it win? If so, and a
    /// member of this instance holds the name (its own claim is still on
    /// its way, and comes later in the stream), that member loses it now.
    fn settle<L: Copy>(&mut self, who: Claimant, name: &str, hub: &mut Hub<L>) -> bool {
        if !self.claim(who, &fold_name(name)) {
            return false;
        }
        if let Some(holder) = hub.holder(name) {
            if !hub.is_remote(holder) {
                hub.lose_name(holder, "was claimed on another instance first");
            }
        }
        true
    }

    /// The name `key` for `who`, if no one else claimed it first.
    fn claim(&mut self, who: Claimant, key: &str) -> bool {
        match self.owner.get(key) {
            Some(&owner) if owner != who => return false,
            _ => {}
        }
        if let Some(old) = self.held.insert(who, key.to_string()) {
            if old != key && self.owner.get(&old) == Some(&who) {
                self.owner.remove(&old);
            }
        }
        self.owner.insert(key.to_string(), who);
        true
    }

    fn release(&mut self, who: Claimant) {
        if let Some(key) = self.held.remove(&who) {
            if self.owner.get(&key) == Some(&who) {
                self.owner.remove(&key);
            }
        }
    }

    /// The member `who` of `origin` in this hub: known already, or added
    /// now (announced as joining when `announce`). Every entry carries
    /// the member's name and room, so a member whose arrival was missed
    /// is placed all the same.
    #[allow(clippy::too_many_arguments)]
    fn place<L: Copy>(
        &mut self,
        origin: &str,
        who: Claimant,
        name: &str,
        room: &str,
        announce: bool,
        hub: &mut Hub<L>,
        remote: L,
    ) -> Option<MemberId> {
        if let Some(&id) = self.origins.get(origin)?.members.get(&who.1) {
            // Its move may have been missed (trimmed away): the entry
            // says where it is now.
            if !announce && hub.room_of(id).is_some_and(|r| fold_name(r) != fold_name(room)) {
                hub.move_remote(id, room, false);
            }
            return Some(id);
        }
        // A name that loses is still shown, as `name~2`, until its own
        // instance renames the member.
        self.settle(who, name, hub);
        let id = hub.join_remote(remote, name, room, announce)?;
        self.origins.get_mut(origin)?.members.insert(who.1, id);
        self.remote.insert(id, who);
        Some(id)
    }

    fn forget(&mut self, origin: &str, who: Claimant) -> Option<MemberId> {
        let id = self.origins.get_mut(origin)?.members.remove(&who.1)?;
        self.release(who);
        self.remote.remove(&id);
        Some(id)
    }

    /// Another instance's roster: its members here are made to agree with
    /// it, quietly (nobody arrived or left; this instance catches up).
    fn sync_roster<L: Copy>(&mut self, entry: &Entry, index: u32, hub: &mut Hub<L>, remote: L) {
        let listed = entry::roster_members(&entry.payload);
        let numbers: HashSet<u32> = listed.iter().map(|(n, _, _)| *n).collect();
        let known: Vec<u32> = self
            .origins
            .get(&entry.origin)
            .map(|o| o.members.keys().copied().collect())
            .unwrap_or_default();
        for number in known.into_iter().filter(|n| !numbers.contains(n)) {
            if let Some(id) = self.forget(&entry.origin, (index, number)) {
                hub.leave(id);
            }
        }
        for (number, name, room) in listed {
            let who = (index, number);
            if let Some(id) = self.place(&entry.origin, who, name, room, false, hub, remote) {
                if hub.name(id) != Some(name) && self.settle(who, name, hub) {
                    hub.rename_remote(id, name, false);
                }
                hub.move_remote(id, room, false);
            }
        }
    }
}

#[cfg(test)]
mod tests;
