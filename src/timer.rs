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

/// A moment as nanoseconds since the heap was made: 8 bytes, good for 584
/// years, where an `Instant` takes 16. Timer entries and what every
/// connection remembers (when it last heard from its peer) are kept this
/// way; [`Timers::stamp`] and [`Timers::instant`] convert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(u64);

/// One pending timer. Every connection keeps one of these for its whole
/// life, so the entry is kept small: 32 bytes with the server's `T`.
struct Entry<T> {
    at: Stamp,
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
    /// What the entries' deadlines count from.
    epoch: Instant,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            seq: 0,
            epoch: Instant::now(),
        }
    }
}

impl<T> Timers<T> {
    /// No timers pending.
    pub fn new() -> Timers<T> {
        Timers::default()
    }

    /// No timers pending, with room for `n` before the heap must grow.
    /// Growing a large heap copies it and leaves the old copy's pages to
    /// the allocator; reserving up front costs address space only, since
    /// the kernel backs a page when it is first written.
    pub fn with_capacity(n: usize) -> Timers<T> {
        Timers {
            heap: BinaryHeap::with_capacity(n),
            ..Timers::default()
        }
    }

    /// Arranges for `what` to come out of [`Timers::pop_due`] at `at`.
    pub fn schedule(&mut self, at: Instant, what: T) {
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            at: self.stamp(at),
            seq: self.seq,
            what,
        }));
    }

    /// How long `poll` may sleep: until the nearest deadline, or for ever.
    pub fn timeout(&self, now: Instant) -> Option<Duration> {
        self.heap
            .peek()
            .map(|Reverse(entry)| self.instant(entry.at).saturating_duration_since(now))
    }

    /// The next timer due at or before `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, T)> {
        if self.instant(self.heap.peek()?.0.at) > now {
            return None;
        }
        let Reverse(entry) = self.heap.pop()?;
        Some((self.instant(entry.at), entry.what))
    }

    /// `at` as a [`Stamp`]. A moment before the heap was made counts as
    /// that moment: as a deadline, it is already due.
    pub fn stamp(&self, at: Instant) -> Stamp {
        let since = at.saturating_duration_since(self.epoch);
        Stamp(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
    }

    /// The moment a [`Stamp`] stands for.
    pub fn instant(&self, stamp: Stamp) -> Instant {
        self.epoch + Duration::from_nanos(stamp.0)
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
