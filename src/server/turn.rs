//! One turn of the loop, written down as it happens: the record behind
//! `--step`'s narration and the page's loop panel (`/loop`).
//!
//! The loop fills a [`Turn`] as it goes: the events, what was read and
//! decoded, what the hub asked for, each state change, what was written and
//! in how many calls, the timers that fired. It is plain data (no socket,
//! no clock: the loop hands it times), so it can be printed for a terminal
//! ([`Turn::narrate`]) or summed up as JSON for the page ([`Turn::json`]).
//!
//! Nobody watching is the common case, and it must cost nothing: every
//! place that would note something first checks [`Turn::on`], one `bool`,
//! and does nothing else. No allocation, no formatting, no clock read. The
//! notes' vector is kept from turn to turn, so a watched loop allocates it
//! once too.
//!
//! The observers' own traffic is left out ([`Turn::hidden`]): a `/loop`
//! connection's events, reads and writes are never noted, so the page's
//! panel does not watch itself being fed (see docs/02).

use super::conn::Door;
use mio::Token;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

/// Notes kept per turn; more are counted, not kept. A turn that accepts a
/// thousand connections is told in its first 256 steps and a count.
const MAX_NOTES: usize = 256;

/// What a token stands for, in a narration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    /// A listening door.
    Listener(Door, bool),
    /// The signal pipe (SIGINT, SIGTERM).
    Signals,
    /// `--step`'s terminal.
    Stdin,
    /// A link to Redis (`--redis`): which one.
    Relay(&'static str),
    /// A connection: its kind (`Protocol::name`) and peer.
    Conn(&'static str, SocketAddr),
}

/// One thing that happened in a turn, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Note {
    /// `poll` reported this token ready.
    Event {
        token: Token,
        source: Source,
        readable: bool,
        writable: bool,
        /// The peer's FIN or a socket error came with it.
        closed: bool,
    },
    /// A connection was accepted on a door.
    Accepted {
        token: Token,
        door: Door,
        peer: SocketAddr,
    },
    /// A read returned this many bytes (0: the peer's FIN).
    Read { token: Token, bytes: usize },
    /// The connection's protocol made this many units of its input (lines,
    /// messages, requests) in one step.
    Decoded {
        token: Token,
        count: u64,
        unit: &'static str,
    },
    /// The hub's action, carried out (`Server::carry_out`).
    Hub { action: &'static str, recipients: usize },
    /// A state machine moved: `machine` `from -> to`, with what the kernel
    /// said of the socket right after, when asked (the close machine).
    State {
        token: Token,
        machine: &'static str,
        from: &'static str,
        to: &'static str,
        kernel: Option<&'static str>,
    },
    /// The one write point wrote `bytes` in `writes` system calls.
    Wrote { token: Token, bytes: usize, writes: u32 },
    /// A timer fired, `late` after its deadline.
    Timer {
        token: Option<Token>,
        kind: &'static str,
        late: Duration,
    },
    /// A connection was freed, for this reason.
    Freed { token: Token, why: String },
}

impl Note {
    /// The connection the note is about, if any.
    pub fn token(&self) -> Option<Token> {
        match self {
            Note::Event { token, .. }
            | Note::Accepted { token, .. }
            | Note::Read { token, .. }
            | Note::Decoded { token, .. }
            | Note::State { token, .. }
            | Note::Wrote { token, .. }
            | Note::Freed { token, .. } => Some(*token),
            Note::Timer { token, .. } => *token,
            Note::Hub { .. } => None,
        }
    }
}

/// The record of the turn under way.
#[derive(Debug, Default)]
pub(super) struct Turn {
    /// Someone is watching (`--step`, or a `/loop` observer): take notes.
    /// Every note site checks this first; while it is false nothing else
    /// here is touched.
    pub on: bool,
    /// Turns since start, counted whether watched or not (one add a turn).
    pub number: u64,
    pub notes: Vec<Note>,
    /// Notes past `MAX_NOTES` this turn, counted only.
    pub dropped: usize,
    /// Tokens whose activity is never noted: the `/loop` observers.
    pub hidden: Vec<Token>,
    /// Notes left out this turn because they were an observer's.
    pub hidden_notes: usize,
}

impl Turn {
    /// A new turn begins: the notes of the last are forgotten (their
    /// memory kept).
    pub fn begin(&mut self) {
        self.number += 1;
        if self.on {
            self.notes.clear();
            self.dropped = 0;
            self.hidden_notes = 0;
        }
    }

    /// Notes one thing, unless it is an observer's own. Callers check
    /// `on` first, so that building the note costs nothing unwatched; kept
    /// out of line (`cold`), so the unwatched path around each call site
    /// stays as small as it was.
    #[cold]
    #[inline(never)]
    pub fn note(&mut self, note: Note) {
        if let Some(token) = note.token() {
            if self.hidden.contains(&token) {
                self.hidden_notes += 1;
                return;
            }
        }
        if self.notes.len() < MAX_NOTES {
            self.notes.push(note);
        } else {
            self.dropped += 1;
        }
    }

    /// Nothing but observers happened: the turn that fed the panel, or a
    /// ping to it. Such turns are not shown, or watching would show itself.
    pub fn is_quiet(&self) -> bool {
        self.notes.is_empty() && self.dropped == 0
    }

    /// Whether a socket event on `token` (any connection, for `None`) is
    /// among the notes: what `c TOKEN` in `--step` waits for.
    pub fn has_event_on(&self, token: Option<Token>) -> bool {
        self.notes.iter().any(|note| match note {
            Note::Event { token: t, source, .. } => match token {
                Some(token) => *t == token,
                None => matches!(source, Source::Conn(..)),
            },
            Note::Accepted { .. } => token.is_none(),
            _ => false,
        })
    }

    /// The turn told for a terminal, one line per note, as `--step`
    /// prints it.
    pub fn narrate(&self, took: Duration) -> String {
        let events = self
            .notes
            .iter()
            .filter(|n| matches!(n, Note::Event { .. }))
            .count();
        let mut text = format!(
            "── turn {} · {} · {} ──\n",
            self.number,
            counted(events, "event"),
            micros(took)
        );
        if self.notes.is_empty() {
            text += "  nothing was ready: poll returned no events and no timer was due\n";
        }
        for note in &self.notes {
            text += "  ";
            narrate_note(&mut text, note);
            text.push('\n');
        }
        if self.dropped > 0 {
            let _ = writeln!(text, "  … and {} more steps, not shown", self.dropped);
        }
        if self.hidden_notes > 0 {
            let _ = writeln!(
                text,
                "  ({} left out: the /loop observers' own traffic)",
                counted(self.hidden_notes, "step")
            );
        }
        text
    }

    /// The turn summed up for the page, as one JSON object: per
    /// connection, its events, bytes in and out, writes and units
    /// decoded; the timers, hub actions and state changes.
    pub fn json(&self, took: Duration, out: &mut String) {
        let mut tokens: Vec<TokenSum> = Vec::new();
        let (mut events, mut timers, mut hub, mut states) = (0, 0, 0, String::new());
        for note in &self.notes {
            match note {
                Note::Event {
                    token,
                    source,
                    readable,
                    writable,
                    closed,
                } => {
                    events += 1;
                    if let Source::Conn(..) = source {
                        let sum = sum_for(&mut tokens, *token);
                        sum.ready.push(match (readable, writable, closed) {
                            (_, _, true) => 'c',
                            (true, true, _) => 'b',
                            (true, false, _) => 'r',
                            (false, true, _) => 'w',
                            _ => '?',
                        });
                    }
                }
                Note::Accepted { token, .. } => sum_for(&mut tokens, *token).accepted = true,
                Note::Read { token, bytes } => sum_for(&mut tokens, *token).bytes_in += bytes,
                Note::Decoded { token, count, unit } => {
                    let sum = sum_for(&mut tokens, *token);
                    sum.decoded += count;
                    sum.unit = unit;
                }
                Note::Wrote { token, bytes, writes } => {
                    let sum = sum_for(&mut tokens, *token);
                    sum.bytes_out += bytes;
                    sum.writes += writes;
                }
                Note::Timer { token, .. } => {
                    timers += 1;
                    if let Some(token) = token {
                        sum_for(&mut tokens, *token).timers += 1;
                    }
                }
                Note::Hub { .. } => hub += 1,
                Note::State {
                    token,
                    machine,
                    from,
                    to,
                    kernel,
                } => {
                    if !states.is_empty() {
                        states.push(',');
                    }
                    let _ = write!(
                        states,
                        "{{\"t\":{},\"m\":\"{machine}\",\"from\":\"{from}\",\"to\":\"{to}\",\"tcp\":{}}}",
                        token.0,
                        kernel.map_or("null".to_string(), |k| format!("\"{k}\""))
                    );
                }
                Note::Freed { token, .. } => sum_for(&mut tokens, *token).freed = true,
            }
        }
        let _ = write!(
            out,
            "{{\"n\":{},\"us\":{},\"events\":{events},\"timers\":{timers},\"hub\":{hub},\"more\":{},\"states\":[{states}],\"tokens\":[",
            self.number,
            took.as_micros(),
            self.dropped
        );
        for (i, sum) in tokens.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{{\"t\":{},\"ready\":\"{}\",\"in\":{},\"out\":{},\"writes\":{},\"decoded\":{},\"unit\":\"{}\",\"timers\":{},\"accepted\":{},\"freed\":{}}}",
                sum.token.0,
                sum.ready,
                sum.bytes_in,
                sum.bytes_out,
                sum.writes,
                sum.decoded,
                sum.unit,
                sum.timers,
                sum.accepted,
                sum.freed
            );
        }
        out.push_str("]}");
    }

    /// Totals of the turn, for the counters of turns the page was not sent
    /// one by one.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals {
            turns: 1,
            ..Totals::default()
        };
        for note in &self.notes {
            match note {
                Note::Event { .. } => totals.events += 1,
                Note::Read { bytes, .. } => totals.bytes_in += *bytes as u64,
                Note::Wrote { bytes, writes, .. } => {
                    totals.bytes_out += *bytes as u64;
                    totals.writes += u64::from(*writes);
                }
                Note::Timer { .. } => totals.timers += 1,
                _ => {}
            }
        }
        totals
    }
}

/// Sums over turns: what the page is told of the turns between two
/// updates that it was not sent one by one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Totals {
    pub turns: u64,
    pub events: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub writes: u64,
    pub timers: u64,
}

impl Totals {
    pub fn add(&mut self, other: Totals) {
        self.turns += other.turns;
        self.events += other.events;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.writes += other.writes;
        self.timers += other.timers;
    }

    pub fn json(&self) -> String {
        format!(
            "{{\"turns\":{},\"events\":{},\"in\":{},\"out\":{},\"writes\":{},\"timers\":{}}}",
            self.turns, self.events, self.bytes_in, self.bytes_out, self.writes, self.timers
        )
    }
}

/// One connection's part in a turn.
struct TokenSum {
    token: Token,
    ready: String,
    bytes_in: usize,
    bytes_out: usize,
    writes: u32,
    decoded: u64,
    unit: &'static str,
    timers: u32,
    accepted: bool,
    freed: bool,
}

fn sum_for(tokens: &mut Vec<TokenSum>, token: Token) -> &mut TokenSum {
    let i = match tokens.iter().position(|s| s.token == token) {
        Some(i) => i,
        None => {
            tokens.push(TokenSum {
                token,
                ready: String::new(),
                bytes_in: 0,
                bytes_out: 0,
                writes: 0,
                decoded: 0,
                unit: "",
                timers: 0,
                accepted: false,
                freed: false,
            });
            tokens.len() - 1
        }
    };
    &mut tokens[i]
}

/// One note, as a line of narration.
pub(super) fn narrate_note(text: &mut String, note: &Note) {
    let _ = write_note(text, note);
}

/// What became ready while `--step` was stopped, as one line.
pub(super) fn narrate_held(text: &mut String, token: Token, source: &Source, readable: bool, writable: bool) {
    let what = match (readable, writable) {
        (true, true) => "readable and writable",
        (true, false) => "readable",
        (false, true) => "writable",
        (false, false) => "ready",
    };
    let _ = write!(
        text,
        "{} is {what}; it waits for the next turn",
        describe(token, source)
    );
}

fn write_note(text: &mut String, note: &Note) -> std::fmt::Result {
    match note {
        Note::Event {
            token,
            source,
            readable,
            writable,
            closed,
        } => {
            let mut ready = Vec::new();
            if *readable {
                ready.push("readable");
            }
            if *writable {
                ready.push("writable");
            }
            if *closed {
                ready.push("the peer's FIN or an error");
            }
            write!(text, "event   {}: {}", describe(*token, source), ready.join(", "))
        }
        Note::Accepted { token, door, peer } => {
            write!(text, "accept  {} door: {peer} is token {}", door.name(), token.0)
        }
        Note::Read { token, bytes: 0 } => {
            write!(text, "read    token {}: end of stream (the peer's FIN)", token.0)
        }
        Note::Read { token, bytes } => write!(text, "read    token {}: {}", token.0, counted(*bytes, "byte")),
        Note::Decoded { token, count, unit } => {
            write!(
                text,
                "decode  token {}: {}",
                token.0,
                counted(*count as usize, unit)
            )
        }
        Note::Hub { action, recipients } => match recipients {
            0 => write!(text, "hub     {action}"),
            n => write!(text, "hub     {action} to {}", counted(*n, "member")),
        },
        Note::State {
            token,
            machine,
            from,
            to,
            kernel,
        } => {
            write!(text, "state   token {}: {machine} {from} -> {to}", token.0)?;
            match kernel {
                Some(state) => write!(text, " (kernel: {state})"),
                None => Ok(()),
            }
        }
        Note::Wrote { token, bytes, writes } => write!(
            text,
            "write   token {}: {} in {}",
            token.0,
            counted(*bytes, "byte"),
            counted(*writes as usize, "write")
        ),
        Note::Timer { token, kind, late } => {
            match token {
                Some(token) => write!(text, "timer   token {} {kind}", token.0)?,
                None => write!(text, "timer   {kind}")?,
            }
            // A timer can only fire at the end of a turn: a few ms late is
            // the loop's own pace. Later than that, it waited for the loop
            // (in --step, for you).
            if *late >= Duration::from_millis(50) {
                write!(
                    text,
                    ", due {} ago: it came due while the loop was stopped, and fires now, \
                     as it would in a slow loop",
                    human(*late)
                )
            } else {
                Ok(())
            }
        }
        Note::Freed { token, why } => write!(text, "free    token {}: {why}", token.0),
    }
}

/// `token 3 (Line 127.0.0.1:50412)`, `the line door`, `stdin`.
fn describe(token: Token, source: &Source) -> String {
    match source {
        Source::Listener(door, tls) => {
            format!("the {} door{}", door.name(), if *tls { " (TLS)" } else { "" })
        }
        Source::Signals => "the signal pipe".to_string(),
        Source::Stdin => "stdin (this terminal)".to_string(),
        Source::Relay(side) => format!("the Redis relay's {side}"),
        Source::Conn(kind, peer) => format!("token {} ({kind} {peer})", token.0),
    }
}

/// `1 byte`, `2 bytes`; units that end in `s` already are left alone.
pub(super) fn counted(n: usize, noun: &str) -> String {
    if n == 1 || noun.is_empty() {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `85 µs`, `1.3 ms`.
fn micros(d: Duration) -> String {
    let us = d.as_micros();
    if us < 1000 {
        format!("{us} µs")
    } else {
        format!("{:.1} ms", us as f64 / 1000.0)
    }
}

/// `3.2 s`, `250 ms`.
fn human(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:50000".parse().unwrap()
    }

    #[test]
    fn an_unwatched_turn_keeps_nothing() {
        let mut turn = Turn::default();
        turn.begin();
        assert_eq!(turn.number, 1);
        assert!(turn.notes.capacity() == 0 && turn.is_quiet());
    }

    #[test]
    fn an_observers_own_traffic_is_left_out() {
        let mut turn = Turn {
            on: true,
            hidden: vec![Token(4)],
            ..Turn::default()
        };
        turn.begin();
        turn.note(Note::Wrote {
            token: Token(4),
            bytes: 300,
            writes: 1,
        });
        assert!(turn.is_quiet(), "a turn that only fed an observer is quiet");
        turn.note(Note::Read {
            token: Token(1),
            bytes: 6,
        });
        assert!(!turn.is_quiet());
        assert!(turn
            .narrate(Duration::from_micros(40))
            .contains("1 step left out"));
    }

    #[test]
    fn a_line_and_its_echo_are_narrated_in_order() {
        let mut turn = Turn {
            on: true,
            ..Turn::default()
        };
        turn.begin();
        let source = Source::Conn("Line", peer());
        turn.note(Note::Event {
            token: Token(0),
            source,
            readable: true,
            writable: false,
            closed: false,
        });
        turn.note(Note::Read {
            token: Token(0),
            bytes: 10,
        });
        turn.note(Note::Decoded {
            token: Token(0),
            count: 1,
            unit: "line",
        });
        turn.note(Note::Hub {
            action: "send",
            recipients: 1,
        });
        turn.note(Note::Wrote {
            token: Token(0),
            bytes: 6,
            writes: 1,
        });
        let text = turn.narrate(Duration::from_micros(85));
        let expected = "── turn 1 · 1 event · 85 µs ──\n\
            \x20 event   token 0 (Line 127.0.0.1:50000): readable\n\
            \x20 read    token 0: 10 bytes\n\
            \x20 decode  token 0: 1 line\n\
            \x20 hub     send to 1 member\n\
            \x20 write   token 0: 6 bytes in 1 write\n";
        assert_eq!(text, expected);
        assert!(turn.has_event_on(Some(Token(0))) && !turn.has_event_on(Some(Token(1))));
        let mut json = String::new();
        turn.json(Duration::from_micros(85), &mut json);
        assert!(
            json.contains("\"t\":0,\"ready\":\"r\",\"in\":10,\"out\":6,\"writes\":1,\"decoded\":1"),
            "{json}"
        );
    }

    #[test]
    fn a_late_timer_says_it_waited_for_the_loop() {
        let mut turn = Turn {
            on: true,
            ..Turn::default()
        };
        turn.note(Note::Timer {
            token: Some(Token(2)),
            kind: "Heartbeat",
            late: Duration::from_millis(3200),
        });
        assert!(turn
            .narrate(Duration::ZERO)
            .contains("timer   token 2 Heartbeat, due 3.2 s ago: it came due while the loop was stopped"));
    }

    #[test]
    fn notes_are_bounded() {
        let mut turn = Turn {
            on: true,
            ..Turn::default()
        };
        for _ in 0..MAX_NOTES + 5 {
            turn.note(Note::Hub {
                action: "send",
                recipients: 2,
            });
        }
        assert_eq!((turn.notes.len(), turn.dropped), (MAX_NOTES, 5));
        assert!(turn.narrate(Duration::ZERO).contains("… and 5 more steps"));
    }
}
