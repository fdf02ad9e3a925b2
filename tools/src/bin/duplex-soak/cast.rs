//! The cast: what each kind of client is, what it remembers, and how a
//! chat member checks the numbered lines it receives.

use crate::tally::Tally;
use duplex::random::random_u64;
use duplex::ws::close::close_payload;
use duplex::ws::decoder::MessageKind;
use duplex::ws::{CloseCode, Opcode};
use duplex_tools::conn::Conn;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// `/chat` or `/echo` over WebSocket.
    WebSocket,
    /// The telnet door: lines ending CR LF.
    Telnet,
}

/// A chat member's way into its room.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Waiting for `* welcome ...`.
    Welcome,
    /// `/join ROOM` sent; waiting for `* you joined ROOM`.
    Joining,
    /// `/nick NAME` sent; waiting for `* OLD is now known as NAME`.
    Naming,
    /// In its room, under its name: every line counts.
    Ready,
}

pub struct Sender {
    pub interval: Duration,
    pub next_at: Instant,
    /// The last number sent; the first line is 1.
    pub sent: u64,
    /// Bytes of padding after the number (flooders).
    pub pad: usize,
}

impl Sender {
    /// The next line `name` sends: `seq NAME N`, padded for a flooder.
    pub fn next_line(&mut self, name: &str) -> String {
        self.sent += 1;
        self.next_at += self.interval;
        let mut text = format!("seq {name} {}", self.sent);
        if self.pad > 0 {
            text.push(' ');
            text.extend(std::iter::repeat_n('x', self.pad));
        }
        text
    }
}

pub struct Member {
    pub name: String,
    pub room: String,
    pub step: Step,
    pub sender: Option<Sender>,
    /// Per sender in the room, the last number seen.
    pub seen: HashMap<String, u64>,
    pub flooder: bool,
}

pub struct Echo {
    /// Sent and not yet echoed, oldest first.
    pub in_flight: VecDeque<(MessageKind, Vec<u8>)>,
    pub next_at: Instant,
    pub count: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum SlowStep {
    Welcome,
    Joining,
    /// Not reading, until then.
    Holding {
        until: Instant,
    },
    /// Reading everything, looking for the server's goodbye; if none comes by
    /// the deadline, the server let this reader live.
    Draining {
        deadline: Instant,
    },
}

pub struct Slow {
    pub room: String,
    pub step: SlowStep,
    /// How the server said goodbye, once it has.
    pub goodbye: Option<String>,
}

impl Slow {
    /// Notes how this reader was let go; only the first word counts.
    pub fn record(&mut self, t: &mut Tally, outcome: String) {
        if self.goodbye.is_none() {
            *t.slow_outcomes.entry(outcome.clone()).or_default() += 1;
            self.goodbye = Some(outcome);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChurnMode {
    /// Line, then close 1000 or `/quit`, waiting for the server's close.
    Polite,
    /// Line, then the socket is dropped at once.
    DropAfterLine,
    /// Dropped before the greeting (telnet) or the `101` (WebSocket).
    DropEarly,
}

pub struct Churn {
    pub mode: ChurnMode,
    pub room: String,
    pub number: u64,
}

pub enum Job {
    Member(Member),
    Echo(Echo),
    Slow(Slow),
    Churn(Churn),
}

impl Job {
    /// A label for counting connections by kind.
    pub fn kind(&self, wire: Wire) -> &'static str {
        let ws = wire == Wire::WebSocket;
        match self {
            Job::Member(m) if m.flooder => "flooder (ws)",
            Job::Member(_) if ws => "member (ws)",
            Job::Member(_) => "member (telnet)",
            Job::Echo(_) => "echo (ws)",
            Job::Slow(_) if ws => "slow reader (ws)",
            Job::Slow(_) => "slow reader (telnet)",
            Job::Churn(_) if ws => "churn (ws)",
            Job::Churn(_) => "churn (telnet)",
        }
    }

    pub fn well_behaved(&self) -> bool {
        matches!(self, Job::Member(_) | Job::Echo(_))
    }

    /// The WebSocket endpoint this client asks for, and the subprotocols it
    /// offers there.
    pub fn endpoint(&self) -> (&'static str, &'static [&'static str]) {
        match self {
            Job::Echo(_) => ("/echo", &[]),
            _ => ("/chat", &["chat"]),
        }
    }

    /// A slow reader in the middle of not reading.
    pub fn is_holding(&self) -> bool {
        matches!(
            self,
            Job::Slow(Slow {
                step: SlowStep::Holding { .. },
                ..
            })
        )
    }

    /// A churner that leaves before it hears a word.
    pub fn drops_early(&self) -> bool {
        matches!(self, Job::Churn(churn) if churn.mode == ChurnMode::DropEarly)
    }
}

/// A connection waiting to be opened.
pub struct Plan {
    pub wire: Wire,
    pub job: Job,
}

/// Appends one line in the connection's framing.
pub fn send_line(wire: Wire, conn: &mut Conn, text: &str) {
    match wire {
        Wire::WebSocket => conn.send_frame(Opcode::Text, text.as_bytes()),
        Wire::Telnet => {
            conn.out.extend_from_slice(text.as_bytes());
            conn.out.extend_from_slice(b"\r\n");
        }
    }
}

/// Says goodbye the polite way: close 1000, or `/quit`.
pub fn send_goodbye(wire: Wire, conn: &mut Conn) {
    match wire {
        Wire::WebSocket => conn.send_frame(Opcode::Close, &close_payload(CloseCode::NORMAL, "")),
        Wire::Telnet => conn.out.extend_from_slice(b"/quit\r\n"),
    }
}

/// An echo test message: its kind and a size from 1 to 2 KiB alternate, and
/// its bytes depend on the client and the count, so a mix-up shows.
pub fn echo_message(client: usize, count: u64) -> (MessageKind, Vec<u8>) {
    let len = 1 + (random_u64() % 2048) as usize;
    let seed = client as u64 * 7919 + count;
    if count % 2 == 0 {
        let text = (0..len).map(|i| b'a' + ((seed + i as u64) % 26) as u8).collect();
        (MessageKind::Text, text)
    } else {
        let data = (0..len)
            .map(|i| (seed.wrapping_mul(31) + i as u64) as u8)
            .collect();
        (MessageKind::Binary, data)
    }
}

/// What a chat line says when it carries a `seq` line:
/// `[ROOM] NAME: seq SENDER N ...`.
pub struct SeqLine<'a> {
    room: &'a str,
    name: &'a str,
    sender: &'a str,
    number: u64,
}

pub fn parse_seq(line: &str) -> Option<SeqLine<'_>> {
    let (room, rest) = line.strip_prefix('[')?.split_once("] ")?;
    let (name, text) = rest.split_once(": ")?;
    let mut words = text.strip_prefix("seq ")?.split(' ');
    let sender = words.next()?;
    let number = words.next()?.parse().ok()?;
    Some(SeqLine {
        room,
        name,
        sender,
        number,
    })
}

/// Checks one `seq` line against what the member saw from that sender,
/// and counts it as received: it is one of the lines that must reach the
/// member by the end.
pub fn check_seq(t: &mut Tally, member: &mut Member, seq: &SeqLine<'_>) {
    t.seq_received += 1;
    check_order(t, member, seq);
}

/// For a member that arrived after the senders began (an HTTP churner):
/// the first line it hears from a sender is where it starts counting, and
/// its lines are not among those that must reach everyone by the end.
pub fn check_order_from_first(t: &mut Tally, member: &mut Member, seq: &SeqLine<'_>) {
    if !member.seen.contains_key(seq.sender) {
        member
            .seen
            .insert(seq.sender.to_string(), seq.number.saturating_sub(1));
    }
    check_order(t, member, seq);
}

/// No gap, no repeat, no line under another name or from another room.
fn check_order(t: &mut Tally, member: &mut Member, seq: &SeqLine<'_>) {
    if seq.room != member.room || seq.name != seq.sender {
        t.seq_misattributed += 1;
        t.note(format!(
            "member {} in {}: line from {} in [{}] says it is from {}",
            member.name, member.room, seq.name, seq.room, seq.sender
        ));
        return;
    }
    let last = member.seen.get(seq.sender).copied().unwrap_or(0);
    if seq.number == last + 1 {
        // The one case that is right.
    } else if seq.number > last + 1 {
        t.seq_missing += seq.number - last - 1;
        t.note(format!(
            "member {}: from {} got {} after {last} (gap)",
            member.name, seq.sender, seq.number
        ));
    } else {
        t.seq_repeated += 1;
        t.note(format!(
            "member {}: from {} got {} after {last} (duplicate or reordered)",
            member.name, seq.sender, seq.number
        ));
        return;
    }
    match member.seen.get_mut(seq.sender) {
        Some(last) => *last = seq.number,
        None => {
            member.seen.insert(seq.sender.to_string(), seq.number);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member() -> Member {
        Member {
            name: "m1".into(),
            room: "room-1".into(),
            step: Step::Ready,
            sender: None,
            seen: HashMap::new(),
            flooder: false,
        }
    }

    #[test]
    fn a_gap_and_a_repeat_are_counted() {
        let (mut t, mut m) = (Tally::default(), member());
        for line in [
            "[room-1] m2: seq m2 1",
            "[room-1] m2: seq m2 3",
            "[room-1] m2: seq m2 3",
        ] {
            let seq = parse_seq(line).expect("a seq line");
            check_seq(&mut t, &mut m, &seq);
        }
        assert_eq!((t.seq_received, t.seq_missing, t.seq_repeated), (3, 1, 1));
        assert_eq!(m.seen.get("m2"), Some(&3));
    }

    #[test]
    fn a_line_under_another_name_is_misattributed() {
        let (mut t, mut m) = (Tally::default(), member());
        let seq = parse_seq("[room-1] m3: seq m2 1 xxxx").expect("a seq line");
        check_seq(&mut t, &mut m, &seq);
        assert_eq!(t.seq_misattributed, 1);
        assert!(parse_seq("* m2 joined room-1").is_none());
    }
}
