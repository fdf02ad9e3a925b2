//! Unpredictable numbers without a dependency, for the HTTP chat members'
//! secret tokens: a poller proves it is the member it claims to be by
//! sending back, in its `token` query parameter, the token it was given.
//! A guessable token would let anyone speak as anyone.
//!
//! The standard library's `RandomState` draws its hash keys from the
//! operating system's random source (once per thread; each new state
//! steps them on). Hashing a counter under those keys with SipHash
//! (std's hasher today) gives numbers nobody outside the process can
//! predict, which is all a token needs. It is not a general random number
//! generator: no seeding, no distributions, no guarantee beyond that.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// 64 bits an outsider cannot predict: SipHash, keyed by std's random keys
/// (drawn from the OS; the server has one thread, so one set per process),
/// over a counter, so no two calls hash the same input.
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_differ() {
        let (a, b) = (random_u64(), random_u64());
        assert_ne!(a, b);
    }
}
