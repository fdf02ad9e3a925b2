//! `--cluster`: the soak against two instances sharing rooms through a
//! real `redis-server` (persistence off, on a free port, in a directory of
//! its own), which is killed and started again, empty, twice during the
//! load. Members are spread over both instances, so every checked line
//! crosses Redis for about half its readers: a line lost or doubled on the
//! way, or one reordered, fails the sequence checks as it would on one
//! instance.

use crate::run::RssSamples;
use crate::server::ServerProcess;
pub use duplex_tools::redis::RedisProcess;
use std::time::Duration;

/// The second instance, Redis, and when Redis was restarted.
pub struct Cluster {
    pub redis: RedisProcess,
    pub peer: ServerProcess,
    pub peer_rss: RssSamples,
    /// Seconds into the load at which Redis was restarted.
    pub restarts: Vec<Duration>,
}
