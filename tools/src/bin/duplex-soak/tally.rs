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
    /// The first few problems, word for word.
    pub notes: Vec<String>,
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
