//! One timer structure for the whole loop: a min-heap of deadlines.
//!
//! Handshake deadlines, heartbeats, clock pushes, close timeouts and the
//! shutdown deadline all live here, and the nearest one becomes the `poll`
//! timeout (as in Redis's `aeProcessEvents`). Nothing is ever removed from
//! the middle: a timer whose reason has gone (the connection closed, the
//! clock was switched off) fires anyway and the loop sees that it no longer
//! applies. That keeps scheduling O(log n) and cancelling free, at the cost
//! of a few stale entries, which each connection bounds by keeping at most
//! one pending timer of each kind.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

struct Entry<T> {
    at: Instant,
    /// Breaks ties so that timers due at the same instant fire in the
    /// order they were set.
    seq: u64,
    what: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Pending deadlines, each carrying a `T` that says what to do when it
/// fires (the server uses a connection token and a timer kind).
pub struct Timers<T> {
    heap: BinaryHeap<Reverse<Entry<T>>>,
    seq: u64,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
}

impl<T> Timers<T> {
    /// No timers pending.
    pub fn new() -> Timers<T> {
        Timers::default()
    }

    /// Arranges for `what` to come out of [`Timers::pop_due`] at `at`.
    pub fn schedule(&mut self, at: Instant, what: T) {
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            at,
            seq: self.seq,
            what,
        }));
    }

    /// How long `poll` may sleep: until the nearest deadline, or for ever.
    pub fn timeout(&self, now: Instant) -> Option<Duration> {
        self.heap
            .peek()
            .map(|Reverse(entry)| entry.at.saturating_duration_since(now))
    }

    /// The next timer due at or before `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, T)> {
        if self.heap.peek()?.0.at > now {
            return None;
        }
        self.heap.pop().map(|Reverse(entry)| (entry.at, entry.what))
    }

    /// Timers pending, stale ones included.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// No timers pending at all.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_deadline_order_then_insertion_order() {
        let now = Instant::now();
        let mut t = Timers::new();
        t.schedule(now + Duration::from_secs(2), "b");
        t.schedule(now + Duration::from_secs(1), "a1");
        t.schedule(now + Duration::from_secs(1), "a2");
        assert_eq!(t.timeout(now), Some(Duration::from_secs(1)));
        assert_eq!(t.pop_due(now), None);
        let later = now + Duration::from_secs(5);
        let order: Vec<_> = std::iter::from_fn(|| t.pop_due(later).map(|(_, w)| w)).collect();
        assert_eq!(order, ["a1", "a2", "b"]);
        assert_eq!(t.timeout(later), None);
    }
}
