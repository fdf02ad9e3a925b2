//! The relay without a socket: instances with their own hubs, and a
//! stand-in for Redis that keeps one stream and answers the commands the
//! relay sends, byte for byte as Redis would. Links break, replies go
//! missing, Redis restarts empty, and the claims are checked: every line
//! once, in order, names unique.

use super::*;
use crate::hub::{Action, HistoryLimits, Payload, Transport};
use crate::resp::{decode, encode_value, Limits};
use std::time::SystemTime;

/// A stand-in for Redis: one stream, `INFO`'s `run_id`, and the commands
/// the relay sends.
struct FakeRedis {
    entries: Vec<(String, Vec<Value>)>,
    next_id: u64,
    run_id: String,
    maxlen: usize,
}

impl FakeRedis {
    fn new() -> FakeRedis {
        FakeRedis {
            entries: Vec::new(),
            next_id: 1,
            run_id: "first".into(),
            maxlen: usize::MAX,
        }
    }

    /// Restarted without persistence: empty, and another `run_id`.
    fn restart(&mut self) {
        self.entries.clear();
        self.run_id = format!("{}-again", self.run_id);
    }

    fn bulk(text: &str) -> Value {
        Value::Bulk(Some(text.as_bytes().to_vec()))
    }

    fn entry_value(&self, i: usize) -> Value {
        let (id, fields) = &self.entries[i];
        Value::Array(Some(vec![Self::bulk(id), Value::Array(Some(fields.clone()))]))
    }

    /// Answers one command; `None` for an `XREAD` with nothing after its
    /// position (it would block).
    fn answer(&mut self, command: &[Value]) -> Option<Value> {
        let word = |i: usize| String::from_utf8_lossy(command[i].bytes().unwrap()).into_owned();
        match word(0).as_str() {
            "CLIENT" => Some(Value::Simple("OK".into())),
            "INFO" => Some(Self::bulk(&format!("# Server\r\nrun_id:{}\r\n", self.run_id))),
            "XREVRANGE" => Some(Value::Array(Some(
                self.entries
                    .len()
                    .checked_sub(1)
                    .map(|i| self.entry_value(i))
                    .into_iter()
                    .collect(),
            ))),
            "XADD" => {
                let id = format!("{}-0", self.next_id);
                self.next_id += 1;
                self.entries.push((id.clone(), command[6..].to_vec()));
                if self.entries.len() > self.maxlen {
                    let cut = self.entries.len() - self.maxlen;
                    self.entries.drain(..cut);
                }
                Some(Self::bulk(&id))
            }
            "XREAD" => {
                let after = word(command.len() - 1);
                let after: u64 = after.split('-').next().unwrap().parse().unwrap();
                let start = self
                    .entries
                    .iter()
                    .position(|(id, _)| id.split('-').next().unwrap().parse::<u64>().unwrap() > after)?;
                let items = (start..self.entries.len())
                    .take(READ_COUNT)
                    .map(|i| self.entry_value(i))
                    .collect();
                Some(Value::Array(Some(vec![Value::Array(Some(vec![
                    Self::bulk("duplex:stream"),
                    Value::Array(Some(items)),
                ]))])))
            }
            other => panic!("unexpected command {other}"),
        }
    }
}

/// One wire's bytes in both directions.
#[derive(Default)]
struct Pipe {
    out: OutQueue,
    /// Commands Redis has read but not answered: an `XREAD` waiting.
    parked: Vec<Vec<Value>>,
    /// Replies on their way back, as bytes (so they can be lost).
    replies: Vec<u8>,
}

/// An instance: a relay, its hub, members' links are numbers.
struct Node {
    relay: Relay,
    hub: Hub<u32>,
    writer: Pipe,
    reader: Pipe,
    /// What each member link received, in order.
    seen: HashMap<u32, Vec<String>>,
}

const REMOTE: u32 = u32::MAX;

fn settings(instance: &str) -> Settings {
    Settings {
        key: "duplex:stream".into(),
        instance: instance.into(),
        origin: format!("{instance}:1"),
        maxlen: 1000,
        ttl: Duration::from_secs(3),
        timeout: Duration::from_secs(1),
        buffer: 1 << 20,
    }
}

impl Node {
    fn new(instance: &str) -> Node {
        let mut hub = Hub::new(4096, HistoryLimits::default());
        hub.set_relaying(instance);
        Node {
            relay: Relay::new(settings(instance)),
            hub,
            writer: Pipe::default(),
            reader: Pipe::default(),
            seen: HashMap::new(),
        }
    }

    fn pipe(&mut self, side: Side) -> &mut Pipe {
        match side {
            Side::Writer => &mut self.writer,
            Side::Reader => &mut self.reader,
        }
    }

    fn connect(&mut self, side: Side, now: Instant) {
        *self.pipe(side) = Pipe::default();
        self.relay.connecting(side);
        let mut out = OutQueue::new();
        self.relay.connected(side, now, &mut out);
        self.pipe(side).out = out;
    }

    fn connect_both(&mut self, now: Instant) {
        self.connect(Side::Writer, now);
        self.connect(Side::Reader, now);
    }

    fn break_link(&mut self, side: Side) {
        *self.pipe(side) = Pipe::default();
        self.relay.broken(side, &mut self.hub);
        self.carry_out();
    }

    /// The hub's actions, as the loop carries them out: sends noted per
    /// link, relay actions to the relay.
    fn carry_out(&mut self) {
        while self.hub.has_actions() {
            let outbox = self.hub.drain();
            for action in &outbox.actions {
                match action {
                    Action::Send { recipients, payload } => {
                        for &link in &outbox.recipients[recipients.clone()] {
                            let text = match payload {
                                Payload::Text(t) => t.to_string(),
                                Payload::Binary { notice, .. } => notice.to_string(),
                            };
                            self.seen.entry(link).or_default().push(text);
                        }
                    }
                    Action::Relay {
                        member,
                        name,
                        room,
                        what,
                    } => self.relay.on_action(*member, name, room, what),
                    _ => {}
                }
            }
        }
    }

    fn join(&mut self, link: u32) -> MemberId {
        let id = self.hub.join(link, Transport::Line, "test");
        self.carry_out();
        id
    }

    fn say(&mut self, id: MemberId, text: &str) {
        self.hub.text(id, text, SystemTime::UNIX_EPOCH);
        self.carry_out();
    }

    /// What link `link` received, taken.
    fn take(&mut self, link: u32) -> Vec<String> {
        self.seen.remove(&link).unwrap_or_default()
    }
}

/// Moves bytes between the nodes and the fake Redis until nothing moves.
/// `lose_replies`: the writer's replies are dropped on the way back, as
/// when a link breaks after Redis did the work.
fn pump(nodes: &mut [&mut Node], redis: &mut FakeRedis, now: Instant) {
    for _ in 0..100 {
        let mut moved = false;
        for node in nodes.iter_mut() {
            for side in [Side::Writer, Side::Reader] {
                if side == Side::Writer {
                    let (relay, pipe) = (&mut node.relay, &mut node.writer);
                    relay.fill_writer(now, &mut pipe.out);
                }
                let pipe = node.pipe(side);
                let mut bytes = Vec::new();
                pipe.out.write_to(&mut bytes).unwrap();
                let mut at = 0;
                while let Some((command, used)) = decode(&bytes[at..], &Limits::default()).unwrap() {
                    at += used;
                    pipe.parked.push(command.items().unwrap().to_vec());
                }
                // Answer in order; an XREAD with nothing new waits.
                let mut still = Vec::new();
                for command in std::mem::take(&mut pipe.parked) {
                    if !still.is_empty() {
                        still.push(command);
                        continue;
                    }
                    match redis.answer(&command) {
                        Some(reply) => encode_value(&mut pipe.replies, &reply),
                        None => still.push(command),
                    }
                }
                pipe.parked = still;
                let replies = std::mem::take(&mut pipe.replies);
                let mut at = 0;
                while let Some((reply, used)) = decode(&replies[at..], &Limits::default()).unwrap() {
                    at += used;
                    moved = true;
                    let mut out = OutQueue::new();
                    node.relay
                        .on_reply(side, reply, now, &mut node.hub, REMOTE, &mut out)
                        .unwrap();
                    let mut more = Vec::new();
                    out.write_to(&mut more).unwrap();
                    node.pipe(side).out.push_bytes(&more);
                    node.carry_out();
                }
            }
        }
        if !moved {
            return;
        }
    }
    panic!("the relay never settled");
}

fn two() -> (Node, Node, FakeRedis, Instant) {
    let now = Instant::now();
    let (mut a, mut b, mut redis) = (Node::new("a"), Node::new("b"), FakeRedis::new());
    a.connect_both(now);
    b.connect_both(now);
    pump(&mut [&mut a, &mut b], &mut redis, now);
    assert!(a.relay.is_up() && b.relay.is_up());
    (a, b, redis, now)
}

/// Two instances with a member each (links 1 on A, 2 on B), who know
/// each other, what they were told so far taken.
fn met() -> (Node, Node, FakeRedis, Instant, MemberId, MemberId) {
    let (mut a, mut b, mut redis, now) = two();
    let alice = a.join(1);
    let bob = b.join(2);
    pump(&mut [&mut a, &mut b], &mut redis, now);
    a.take(1);
    b.take(2);
    (a, b, redis, now, alice, bob)
}

#[test]
fn lines_cross_instances_once_and_in_order() {
    let (mut a, mut b, mut redis, now) = two();
    let alice = a.join(1);
    let _bob = b.join(2);
    pump(&mut [&mut a, &mut b], &mut redis, now);
    a.take(1);
    assert_eq!(
        b.take(2),
        [
            "* welcome to duplex: test, your name is guest-1.b, room lobby. Type /help for commands.",
            "* guest-1.a joined lobby"
        ]
    );
    for i in 0..5 {
        a.say(alice, &format!("line {i}"));
    }
    pump(&mut [&mut a, &mut b], &mut redis, now);
    let lines: Vec<String> = (0..5).map(|i| format!("[lobby] guest-1.a: line {i}")).collect();
    assert_eq!(a.take(1), lines);
    assert_eq!(b.take(2), lines);
    a.say(alice, "/who");
    assert_eq!(a.take(1), ["* members of lobby: guest-1.a, guest-1.b"]);
    a.hub.check_consistency().unwrap();
    b.hub.check_consistency().unwrap();
}

#[test]
fn a_resent_xadd_is_applied_once() {
    let (mut a, mut b, mut redis, now, alice, _bob) = met();
    // Redis adds three lines, but the answers are lost with the link.
    for i in 0..3 {
        a.say(alice, &format!("m{i}"));
    }
    a.relay.fill_writer(now, &mut a.writer.out);
    let mut bytes = Vec::new();
    a.writer.out.write_to(&mut bytes).unwrap();
    let mut at = 0;
    while let Some((command, used)) = decode(&bytes[at..], &Limits::default()).unwrap() {
        at += used;
        redis.answer(command.items().unwrap());
    }
    a.break_link(Side::Writer);
    a.say(alice, "m3");
    // Back: all four are sent again; the first three are in twice.
    a.connect(Side::Writer, now);
    pump(&mut [&mut a, &mut b], &mut redis, now);
    let lines: Vec<String> = (0..4).map(|i| format!("[lobby] guest-1.a: m{i}")).collect();
    assert_eq!(b.take(2), lines);
    assert_eq!(b.relay.stats().duplicates, 3);
}

#[test]
fn lines_said_while_redis_is_away_arrive_when_it_is_back() {
    let (mut a, mut b, mut redis, now, alice, bob) = met();
    for node in [&mut a, &mut b] {
        node.break_link(Side::Writer);
        node.break_link(Side::Reader);
    }
    let down = "* the relay to the other instances is down: chat here goes on, and what is said is passed on when it is back";
    assert_eq!(a.take(1), [down]);
    a.say(alice, "while away");
    b.say(bob, "me too");
    assert_eq!(a.take(1), ["[lobby] guest-1.a: while away"]);
    for node in [&mut a, &mut b] {
        node.connect_both(now);
    }
    pump(&mut [&mut a, &mut b], &mut redis, now);
    let back = "* the relay to the other instances is back";
    assert_eq!(a.take(1), [back, "[lobby] guest-1.b: me too"]);
    assert_eq!(
        b.take(2),
        [
            down,
            "[lobby] guest-1.b: me too",
            back,
            "[lobby] guest-1.a: while away"
        ]
    );
}

#[test]
fn a_redis_that_restarts_empty_is_refilled_from_what_was_kept() {
    let (mut a, mut b, mut redis, now, alice, _bob) = met();
    a.say(alice, "before");
    // Added, but B never read it: Redis goes before that.
    a.relay.fill_writer(now, &mut a.writer.out);
    pump(&mut [&mut a], &mut redis, now);
    redis.restart();
    for node in [&mut a, &mut b] {
        node.break_link(Side::Writer);
        node.break_link(Side::Reader);
        node.connect_both(now);
    }
    a.say(alice, "after");
    pump(&mut [&mut a, &mut b], &mut redis, now);
    let got: Vec<String> = b.take(2).into_iter().filter(|l| l.starts_with('[')).collect();
    assert_eq!(got, ["[lobby] guest-1.a: before", "[lobby] guest-1.a: after"]);
}

#[test]
fn a_trimmed_stream_tells_how_much_was_missed() {
    let (mut a, mut b, mut redis, now, alice, _bob) = met();
    b.break_link(Side::Reader);
    redis.maxlen = 2;
    for i in 0..5 {
        a.say(alice, &format!("m{i}"));
    }
    pump(&mut [&mut a], &mut redis, now);
    b.connect(Side::Reader, now);
    pump(&mut [&mut a, &mut b], &mut redis, now);
    let got = b.take(2);
    assert!(
        got.contains(
            &"! 3 lines or notices from instance a were lost on the way (the relay kept too few)".to_string()
        ),
        "{got:?}"
    );
    assert!(
        got.ends_with(&[
            "[lobby] guest-1.a: m3".to_string(),
            "[lobby] guest-1.a: m4".to_string()
        ]),
        "{got:?}"
    );
}

#[test]
fn the_first_claim_in_the_stream_keeps_the_name() {
    let (mut a, mut b, mut redis, now, alice, bob) = met();
    // Taken on A first: B refuses it at once, by its picture.
    a.say(alice, "/nick Ann");
    pump(&mut [&mut a, &mut b], &mut redis, now);
    b.say(bob, "/nick ANN");
    assert_eq!(b.take(2).last().unwrap(), "! name taken: ANN");
    // Both at the same instant: both granted, A's claim is first in the
    // stream, so B's member becomes a guest again, on both.
    a.say(alice, "/nick zed");
    b.say(bob, "/nick Zed");
    a.relay.fill_writer(now, &mut a.writer.out);
    pump(&mut [&mut a, &mut b], &mut redis, now);
    let told = b.take(2);
    assert!(
        told.contains(&"! Zed was claimed on another instance first; you are guest-2.b now".to_string()),
        "{told:?}"
    );
    assert_eq!(b.hub.name(bob), Some("guest-2.b"));
    a.say(alice, "/who");
    assert_eq!(a.take(1).last().unwrap(), "* members of lobby: zed, guest-2.b");
    // Each instance lists a room in the order its members arrived there.
    b.say(bob, "/who");
    assert_eq!(b.take(2).last().unwrap(), "* members of lobby: guest-2.b, zed");
    a.hub.check_consistency().unwrap();
    b.hub.check_consistency().unwrap();
}

#[test]
fn a_silent_instance_is_gone_within_the_ttl() {
    let (mut a, _b, _redis, now, _alice, _bob) = met();
    // B stops; A keeps reading and hears nothing from it.
    let later = now + Duration::from_secs(2);
    a.relay.tick(later, &mut a.hub);
    a.carry_out();
    assert!(a.take(1).is_empty());
    let gone = now + Duration::from_secs(4);
    a.relay.tick(gone, &mut a.hub);
    a.carry_out();
    assert_eq!(a.take(1), ["* guest-1.b left (instance b is gone)"]);
    a.hub.check_consistency().unwrap();
}

#[test]
fn a_late_instance_learns_who_is_there_from_rosters() {
    let now = Instant::now();
    let (mut a, mut redis) = (Node::new("a"), FakeRedis::new());
    a.connect_both(now);
    pump(&mut [&mut a], &mut redis, now);
    let alice = a.join(1);
    a.say(alice, "/nick alice");
    pump(&mut [&mut a], &mut redis, now);
    let mut c = Node::new("c");
    c.connect_both(now);
    pump(&mut [&mut a, &mut c], &mut redis, now);
    let carol = c.join(3);
    c.say(carol, "/who");
    assert_eq!(c.take(3).last().unwrap(), "* members of lobby: alice, guest-1.c");
}

#[test]
fn over_the_buffer_the_oldest_unsent_go_and_others_are_told() {
    let (mut a, mut b, mut redis, now, alice, _bob) = met();
    a.break_link(Side::Writer);
    a.relay.settings.buffer = 2000;
    for i in 0..100 {
        a.say(alice, &format!("m{i}"));
    }
    assert!(a.relay.queued() < 100 && a.relay.stats().dropped > 0);
    a.connect(Side::Writer, now);
    pump(&mut [&mut a, &mut b], &mut redis, now);
    let got = b.take(2);
    assert!(
        got[0].starts_with("! ") && got[0].contains("were lost on the way"),
        "{got:?}"
    );
    assert_eq!(got.last().unwrap(), "[lobby] guest-1.a: m99");
}

#[test]
fn binary_messages_cross_and_the_largest_as_a_notice() {
    let (mut a, mut b, mut redis, now, alice, _bob) = met();
    a.hub.binary(alice, b"\x00\x01");
    a.hub.binary(alice, &vec![7; MAX_RELAYED_BINARY + 1]);
    a.carry_out();
    pump(&mut [&mut a, &mut b], &mut redis, now);
    assert_eq!(
        b.take(2),
        [
            "* guest-1.a sent a binary message (2 bytes)".to_string(),
            format!(
                "* guest-1.a sent a binary message ({} bytes; too large to pass between instances)",
                MAX_RELAYED_BINARY + 1
            )
        ]
    );
}

#[test]
fn after_a_gap_the_rosters_make_the_pictures_agree() {
    let (mut a, mut b, mut redis, now, alice, bob) = met();
    let carol = b.join(3);
    pump(&mut [&mut a, &mut b], &mut redis, now);
    a.take(1);
    // A stops reading; on B, bob leaves and carol moves, and the stream
    // keeps too little for A to see either.
    a.break_link(Side::Reader);
    redis.maxlen = 1;
    b.hub.leave(bob);
    b.say(carol, "/join elsewhere");
    b.say(carol, "hi");
    pump(&mut [&mut b], &mut redis, now);
    a.connect(Side::Reader, now);
    pump(&mut [&mut a, &mut b], &mut redis, now);
    // A heard of the gap, asked for rosters, and now agrees with B.
    let told = a.take(1);
    assert!(
        told.iter().any(|l| l.contains("were lost on the way")),
        "{told:?}"
    );
    assert!(told.contains(&"* guest-1.b disconnected".to_string()), "{told:?}");
    a.say(alice, "/rooms");
    assert_eq!(a.take(1), ["* rooms: elsewhere (1), lobby (1)"]);
    a.hub.check_consistency().unwrap();
}

#[test]
fn a_remote_line_longer_than_this_instance_takes_is_told_not_dropped() {
    let mut hub: Hub<u32> = Hub::new(10, HistoryLimits::default());
    hub.join(1, Transport::Line, "test");
    let there = hub.join_remote(REMOTE, "zed", "lobby", false).unwrap();
    hub.drain();
    hub.say_remote(there, "short");
    hub.say_remote(there, "far too long for ten");
    let mut node = Node::new("a");
    node.hub = hub;
    node.carry_out();
    assert_eq!(
        node.take(1),
        [
            "[lobby] zed: short",
            "! a line from zed (20 bytes) is longer than this instance takes (10)"
        ]
    );
}
