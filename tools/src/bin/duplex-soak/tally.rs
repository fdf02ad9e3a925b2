//! What the soak counts as it goes, and the first few problems word for
//! word. The report (`report.rs`) reads it at the end.

use std::collections::BTreeMap;

#[derive(Default)]
pub struct Tally {
    pub opened: BTreeMap<&'static str, u64>,
    pub connect_failed: BTreeMap<&'static str, u64>,
    pub members_ready: usize,
    pub echo_ready: usize,
    pub seq_sent: u64,
    /// Of `seq_sent`, the flooders' lines.
    pub flood_sent: u64,
    pub seq_received: u64,
    /// A number more than one past the last: lines lost (counted in lines).
    pub seq_missing: u64,
    /// A number at or below the last: a duplicate or a reordering.
    pub seq_repeated: u64,
    /// A line whose room or name is not what it should be.
    pub seq_misattributed: u64,
    /// Lines sent that a member had not received when the run ended.
    pub seq_tail_missing: u64,
    pub echo_sent: u64,
    pub echo_received: u64,
    pub echo_bytes: u64,
    pub echo_mismatches: u64,
    pub echo_unanswered: u64,
    /// `!` lines a well-behaved member was sent.
    pub error_lines: u64,
    /// Well-behaved connections the server closed or broke.
    pub unexpected_closes: u64,
    pub slow_started: u64,
    /// How slow readers were let go: "close 1008 ...", "line ...",
    /// "no goodbye", "not closed".
    pub slow_outcomes: BTreeMap<String, u64>,
    pub churn_started: u64,
    pub churn_polite: u64,
    pub churn_dropped: u64,
    pub churn_dropped_early: u64,
    pub churn_failed: u64,
    pub close_timeouts: u64,
    /// The HTTP members' own counts.
    pub http: HttpTally,
    /// The first few problems, word for word.
    pub notes: Vec<String>,
}

/// What the HTTP members (server-sent events, long and short polling,
/// `POST /send`) count. Their `seq` lines count in [`Tally`]'s own
/// `seq_*` fields with everyone else's.
#[derive(Default)]
pub struct HttpTally {
    /// Members by kind (`sse`, `longpoll`, `poll`, `send only`, and the
    /// churners by what they read with).
    pub joined: BTreeMap<&'static str, u64>,
    /// Members that stay, in their room under their name.
    pub ready: usize,
    /// Numbers skipped: lines lost on the way.
    pub lost: u64,
    /// A number at or below the last one read: doubled or reordered.
    pub doubled: u64,
    /// Lines the server said a poller missed (`missed`, `event: missed`).
    pub missed: u64,
    /// Lines of another room, another member's token or welcome, or a line
    /// past the member's own departure.
    pub foreign: u64,
    /// Answers that break the protocol: a status not expected, JSON that
    /// does not parse, a `next` that is not the last line's number, replies
    /// dropped.
    pub bad_answers: u64,
    /// `410 Gone` to a member that had not left: the server forgot it.
    pub expired: u64,
    /// Connections broken, or closed with a request unanswered.
    pub conns_lost: u64,
    /// Answers, or a stream's next bytes, that did not come in time.
    pub timeouts: u64,
    /// Keep-alive connections the server closed between requests (allowed).
    pub idle_closed: u64,
    /// `/quit`: answered 204 and the member's reading ended (the stream
    /// closed after its `* bye`, or the next poll refused) ...
    pub quit_ok: u64,
    /// ... or not.
    pub quit_failed: u64,
    /// Members that stopped asking: the server forgot them in time (a poll
    /// with the old token answered 410) ...
    pub swept: u64,
    /// ... or still knew them.
    pub not_swept: u64,
    /// Churners planned to leave by going silent.
    pub vanishing: u64,
    /// Event streams let go and opened again with `Last-Event-ID`.
    pub resumed: u64,
    /// Requests made, by kind: `events`, `longpoll`, `poll`, `send`, `probe`.
    pub requests: BTreeMap<&'static str, u64>,
    /// Room lines read, each checked by its number in the room, by the
    /// transport that brought them (`sse`, `longpoll`, `poll`).
    pub lines: BTreeMap<&'static str, u64>,
    /// Sender lines held back because the member's earlier lines were
    /// still on their way (the outbox is bounded).
    pub held_back: u64,
}

impl HttpTally {
    pub fn count_request(&mut self, kind: &'static str) {
        *self.requests.entry(kind).or_default() += 1;
    }

    /// Room lines read over every transport.
    pub fn lines_read(&self) -> u64 {
        self.lines.values().sum()
    }
}

impl Tally {
    /// Slow readers the server closed as it should: close 1008, or the
    /// telnet line that says why.
    pub fn slow_closed(&self) -> u64 {
        self.slow_outcomes
            .iter()
            .filter(|(o, _)| o.starts_with("close 1008") || o.starts_with("line \"! too slow"))
            .map(|(_, n)| n)
            .sum()
    }

    /// Shows a problem as it happens, and keeps the first 20 of them.
    pub fn note(&mut self, text: String) {
        if self.notes.len() < 20 {
            eprintln!("  ! {text}");
            self.notes.push(text);
        }
    }
}
