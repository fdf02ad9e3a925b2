//! Watching the loop: `--step` in a terminal, and the page's panels fed by
//! the `/loop` WebSocket endpoint. Both read the same record, the
//! [`Turn`](super::turn::Turn) the loop fills as it goes.
//!
//! ## Watching without feeding itself
//!
//! An observer is a connection of the loop it watches: every update sent
//! to it is a write, and the write's completion can be an event, and that
//! would be a turn to report, whose report is a write... Three rules keep
//! the panel from watching itself:
//!
//! 1. **Its own traffic is left out.** An observer's token is on the
//!    turn's `hidden` list: its events, reads, writes, timers and state
//!    changes are never noted (only counted, as "left out").
//! 2. **A turn with nothing else in it is not a turn to report.** The
//!    turn that sends an update (its timer, its write) is quiet once the
//!    observer's part is left out; quiet turns are counted, not shown.
//! 3. **Updates are coalesced.** At most `--loop-rate` a second, however
//!    busy the server; the turns in between are sent one by one up to
//!    `KEEP_TURNS`, and past that only summed. A busy server's cost of
//!    being watched is bounded by the rate, not by its own traffic.
//!
//! An update is framed once and shared by every observer's queue, as a
//! chat broadcast is. An observer that has not taken the last update yet
//! is skipped (it gets the next one, with everything since); its queue is
//! bounded by the same limits as any connection's, and a dead one is
//! caught by the usual ping.

use super::conn::{Connection, Endpoint, Protocol};
use super::step::Step;
use super::tcp_info::tcp_info;
use super::timers::Timer;
use super::turn::{Note, Source, Totals, Turn};
use super::{
    Ready, Server, LINE_LISTENER, LINE_TLS_LISTENER, SIGNALS, STDIN, WEB_LISTENER, WEB_TLS_LISTENER,
};
use crate::http::text::json_string;
use crate::timer::Stamp;
use crate::ws::Opcode;
use mio::Token;
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Turns sent one by one in an update; the rest since the last update are
/// summed. At ten updates a second that shows 160 turns a second in full,
/// more than anyone reads, and bounds what an update costs to build.
const KEEP_TURNS: usize = 16;

/// Connections listed in the table, lowest tokens first; the rest are
/// counted. Each row asks the kernel once (`TCP_INFO`).
const TABLE_ROWS: usize = 32;

/// Even with no turn to report, the table is refreshed this often (ages,
/// round-trip times).
const TABLE_REFRESH: Duration = Duration::from_secs(1);

/// What the loop keeps for its watchers.
pub(super) struct Watch {
    /// The record of the turn under way.
    pub turn: Turn,
    /// `--step`: the terminal, when stepping.
    pub step: Option<Step>,
    /// Updates for the `/loop` observers (whose tokens are `turn.hidden`).
    pub feed: Feed,
    /// When each connection was accepted, by token: the table's age. One
    /// store per accept, kept whether anyone watches or not, so the table
    /// can tell the age of connections older than the panel.
    pub opened: Vec<Stamp>,
    /// When the turn under way began (after `poll` returned).
    pub started: Instant,
}

/// The coalesced stream to the observers.
pub(super) struct Feed {
    /// The least time between two updates (`--loop-rate`).
    period: Duration,
    /// Turns since the last update, JSON objects separated by commas.
    turns: String,
    kept: usize,
    /// Turns since the last update beyond `KEEP_TURNS`, summed.
    left_out: Totals,
    /// Turns that only served the observers, since the last update.
    quiet: u64,
    /// Connections freed since the last update, JSON objects.
    gone: String,
    /// The close trail of each closing connection: our close state and the
    /// kernel's TCP state at each step.
    trails: Vec<(Token, String)>,
    last_push: Option<Instant>,
    /// The update timer pending, if any.
    next_push: Option<Instant>,
    /// Updates not sent to an observer that had not taken the last one.
    slow: u64,
}

impl Watch {
    pub fn new(capacity: usize, rate: u32, now: Instant) -> Watch {
        Watch {
            turn: Turn::default(),
            step: None,
            feed: Feed {
                period: Duration::from_secs(1) / rate.max(1),
                turns: String::new(),
                kept: 0,
                left_out: Totals::default(),
                quiet: 0,
                gone: String::new(),
                trails: Vec::new(),
                last_push: None,
                next_push: None,
                slow: 0,
            },
            // Address space only until written, like the slab.
            opened: Vec::with_capacity(capacity),
            started: now,
        }
    }

    /// Notes are taken while someone watches.
    fn refresh(&mut self) {
        self.turn.on = self.step.is_some() || !self.turn.hidden.is_empty();
    }

    pub fn start_stepping(&mut self, step: Step) {
        self.step = Some(step);
        self.refresh();
    }

    /// A connection was accepted at `at`.
    pub fn opened(&mut self, token: Token, at: Stamp) {
        if self.opened.len() <= token.0 {
            self.opened.resize(token.0 + 1, at);
        }
        self.opened[token.0] = at;
    }

    fn observers(&self) -> &[Token] {
        &self.turn.hidden
    }
}

impl Server {
    /// What a token stands for, for a narration.
    pub(super) fn source(&self, token: Token) -> Source {
        match token {
            LINE_LISTENER => Source::Listener(super::Door::Line, false),
            WEB_LISTENER => Source::Listener(super::Door::Web, false),
            LINE_TLS_LISTENER => Source::Listener(super::Door::Line, true),
            WEB_TLS_LISTENER => Source::Listener(super::Door::Web, true),
            SIGNALS => Source::Signals,
            STDIN => Source::Stdin,
            super::relay::WRITER => Source::Relay("writer"),
            super::relay::READER => Source::Relay("reader"),
            token => match self.conns.get(token.0) {
                Some(conn) => Source::Conn(conn.protocol.name(), conn.peer.socket()),
                None => Source::Conn("gone", ([0, 0, 0, 0], 0).into()),
            },
        }
    }

    /// Notes an event of this turn (called only while watched).
    #[cold]
    #[inline(never)]
    pub(super) fn note_event(&mut self, ready: Ready) {
        let source = self.source(ready.token);
        self.watch.turn.note(Note::Event {
            token: ready.token,
            source,
            readable: ready.readable,
            writable: ready.writable,
            closed: ready.closed,
        });
    }

    /// A turn begins: `poll` has returned and the clock was read.
    pub(super) fn begin_turn(&mut self) {
        self.watch.turn.begin();
        self.watch.started = self.shared.now;
    }

    /// A turn is over: narrate it (`--step`) and feed it to the observers.
    /// Unwatched, this is one test of a `bool`.
    #[inline]
    pub(super) fn end_turn(&mut self) {
        if self.watch.turn.on {
            self.tell_turn();
        }
    }

    #[cold]
    #[inline(never)]
    fn tell_turn(&mut self) {
        let took = self.watch.started.elapsed();
        self.narrate_turn(took);
        if self.watch.observers().is_empty() {
            return;
        }
        let turn = &self.watch.turn;
        let feed = &mut self.watch.feed;
        if turn.is_quiet() {
            feed.quiet += 1;
            return;
        }
        if feed.kept < KEEP_TURNS {
            if feed.kept > 0 {
                feed.turns.push(',');
            }
            turn.json(took, &mut feed.turns);
            feed.kept += 1;
        } else {
            feed.left_out.add(turn.totals());
        }
        // The next update: a period after the last, and not before now.
        let now = Instant::now();
        let due = feed.last_push.map_or(now, |at| (at + feed.period).max(now));
        if feed.next_push.is_none_or(|at| at > due) {
            feed.next_push = Some(due);
            self.shared.timers.schedule(due, Timer::LoopUpdate);
        }
    }

    /// A connection became a `/loop` observer.
    pub(super) fn add_observer(&mut self, token: Token) {
        if !self.watch.turn.hidden.contains(&token) {
            self.watch.turn.hidden.push(token);
        }
        self.watch.refresh();
        log::debug!("token {}: watching the loop", token.0);
        // The first update at once: the table as it stands.
        let now = self.shared.now;
        self.watch.feed.next_push = Some(now);
        self.shared.timers.schedule(now, Timer::LoopUpdate);
    }

    /// A close state changed (called only while watched): ask the kernel
    /// where TCP stands, note it, and keep it in the connection's trail.
    #[cold]
    #[inline(never)]
    pub(super) fn note_close(&mut self, token: Token, from: &'static str, to: &'static str) {
        let Some(conn) = self.conns.get(token.0) else {
            return;
        };
        let kernel = tcp_info(&conn.socket).ok().map(|info| info.state);
        self.watch.turn.note(Note::State {
            token,
            machine: "close",
            from,
            to,
            kernel,
        });
        if self.watch.observers().is_empty() || self.watch.turn.hidden.contains(&token) {
            return;
        }
        let trails = &mut self.watch.feed.trails;
        let i = match trails.iter().position(|(t, _)| *t == token) {
            Some(i) => i,
            None => {
                trails.push((token, String::new()));
                trails.len() - 1
            }
        };
        let trail = &mut trails[i].1;
        if !trail.is_empty() {
            trail.push(',');
        }
        let tcp = kernel.map_or("null".to_string(), json_string);
        let _ = write!(trail, "{{\"from\":\"{from}\",\"to\":\"{to}\",\"tcp\":{tcp}}}");
    }

    /// A connection is about to be freed (called only while watched): note
    /// it, and tell the observers how it went, with the kernel's last word
    /// before our descriptor closes.
    #[cold]
    #[inline(never)]
    pub(super) fn note_freed(&mut self, token: Token, conn: &Connection, why: &str) {
        self.watch.turn.note(Note::Freed {
            token,
            why: why.to_string(),
        });
        let feed = &mut self.watch.feed;
        let trail = match feed.trails.iter().position(|(t, _)| *t == token) {
            Some(i) => feed.trails.swap_remove(i).1,
            None => String::new(),
        };
        if let Some(i) = self.watch.turn.hidden.iter().position(|t| *t == token) {
            self.watch.turn.hidden.swap_remove(i);
            self.watch.refresh();
            log::debug!("token {}: stopped watching the loop", token.0);
            return;
        }
        if self.watch.turn.hidden.is_empty() {
            return;
        }
        let last = tcp_info(&conn.socket).ok().map(|info| info.state);
        if !feed.gone.is_empty() {
            feed.gone.push(',');
        }
        let _ = write!(
            feed.gone,
            "{{\"t\":{},\"door\":\"{}\",\"kind\":\"{}\",\"why\":{},\"trail\":[{trail}],\"last_tcp\":{}}}",
            token.0,
            door(conn),
            conn.protocol.name(),
            json_string(why),
            last.map_or("null".to_string(), json_string)
        );
    }

    /// The update timer: send the observers what happened since the last
    /// update, and the connection table as it stands.
    pub(super) fn push_loop(&mut self) {
        let now = self.shared.now;
        let feed = &mut self.watch.feed;
        match feed.next_push {
            // An earlier update made this timer stale.
            Some(at) if now >= at => {}
            _ => return,
        }
        feed.next_push = None;
        if self.watch.turn.hidden.is_empty() {
            return;
        }
        let message = self.loop_message();
        let feed = &mut self.watch.feed;
        feed.turns.clear();
        feed.kept = 0;
        feed.left_out = Totals::default();
        feed.quiet = 0;
        feed.gone.clear();
        feed.last_push = Some(now);
        // Framed once, shared by every observer's queue.
        let mut frame = Vec::with_capacity(message.len() + 10);
        crate::ws::encode_frame(&mut frame, true, Opcode::Text, message.as_bytes(), None);
        let frame: Rc<[u8]> = Rc::from(frame);
        let observers = self.watch.turn.hidden.clone();
        for token in observers {
            let Some(conn) = self.conns.get_mut(token.0) else {
                continue;
            };
            if !conn.close.is_open() || !conn.protocol.accepts_output() {
                continue;
            }
            if !conn.out.is_empty() {
                // It has not taken the last update: this one is folded
                // into the next.
                self.watch.feed.slow += 1;
                continue;
            }
            conn.out.push_shared(frame.clone());
            self.shared.stats.messages_out += 1;
            self.mark_dirty(token);
        }
        // Refresh the table even if nothing happens.
        let at = now + TABLE_REFRESH;
        self.watch.feed.next_push = Some(at);
        self.shared.timers.schedule(at, Timer::LoopUpdate);
    }

    /// One update, as JSON.
    fn loop_message(&self) -> String {
        let feed = &self.watch.feed;
        let mut json = format!(
            "{{\"type\":\"loop\",\"turn\":{},\"rate\":{},\"turns\":[{}],\"left_out\":{},\"quiet\":{},\"slow\":{},\"gone\":[{}],\"conns\":[",
            self.watch.turn.number,
            (1.0 / feed.period.as_secs_f64()).round(),
            feed.turns,
            feed.left_out.json(),
            feed.quiet,
            feed.slow,
            feed.gone
        );
        let mut rows = 0;
        for (key, conn) in self.conns.iter() {
            if rows == TABLE_ROWS {
                break;
            }
            if rows > 0 {
                json.push(',');
            }
            rows += 1;
            self.conn_json(Token(key), conn, &mut json);
        }
        let _ = write!(
            json,
            "],\"more_conns\":{},\"observers\":{}}}",
            self.conns.len() - rows,
            self.watch.turn.hidden.len()
        );
        json
    }

    /// One row of the connection table.
    fn conn_json(&self, token: Token, conn: &Connection, json: &mut String) {
        let age = self.watch.opened.get(token.0).map_or(0, |&at| {
            self.shared
                .now
                .saturating_duration_since(self.shared.timers.instant(at))
                .as_millis()
        });
        let queued = conn.out.len() + self.sessions.sealed(token);
        let _ = write!(
            json,
            "{{\"t\":{},\"door\":\"{}\",\"tls\":{},\"kind\":\"{}\",\"close\":\"{:?}\",\"eof\":{},\"queued\":{queued},\"age_ms\":{age},\"observer\":{},\"tcp\":",
            token.0,
            door(conn),
            self.sessions.is_tls(token),
            conn.protocol.name(),
            conn.close,
            conn.eof,
            self.watch.turn.hidden.contains(&token)
        );
        match tcp_info(&conn.socket) {
            Ok(info) => {
                let _ = write!(
                    json,
                    "{{\"state\":\"{}\",\"rtt_us\":{},\"unacked\":{},\"retrans\":{},\"total_retrans\":{},\"cwnd\":{}}}}}",
                    info.state,
                    info.rtt.as_micros(),
                    info.unacked,
                    info.retrans,
                    info.total_retrans,
                    info.cwnd
                );
            }
            Err(_) => json.push_str("null}"),
        }
    }
}

/// Which door a connection came through, by what it speaks.
fn door(conn: &Connection) -> &'static str {
    match conn.protocol {
        Protocol::Line(_) | Protocol::LineEcho(_) => "line",
        _ => "web",
    }
}

/// Whether a protocol is a `/loop` observer.
pub(super) fn is_observer(protocol: &Protocol) -> bool {
    matches!(protocol, Protocol::WebSocket(ws) if ws.endpoint == Endpoint::Loop)
}
