//! What the load tool measures: latencies in a histogram, and CPU and
//! memory from /proc, its own and the server's.

use duplex_tools::procfs;
use std::time::{Duration, Instant};

/// Latencies in a log-linear histogram: below 128 ns every nanosecond has
/// its bucket; above, each power of two is cut into 128 equal buckets, so a
/// value read back is at most 1/128 (0.8%) below the truth. Fixed size,
/// nothing allocated per sample.
pub struct Histogram {
    counts: Vec<u64>,
    /// Samples recorded.
    pub total: u64,
    max_ns: u64,
}

const SUB_BITS: u32 = 7;

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; (64 - SUB_BITS as usize + 1) << SUB_BITS],
            total: 0,
            max_ns: 0,
        }
    }

    fn bucket(ns: u64) -> usize {
        let log2 = 63 - ns.max(1).leading_zeros();
        if log2 < SUB_BITS {
            return ns as usize;
        }
        // The SUB_BITS bits after the leading one pick the bucket.
        let sub = (ns >> (log2 - SUB_BITS)) & ((1 << SUB_BITS) - 1);
        (((log2 - SUB_BITS + 1) as usize) << SUB_BITS) + sub as usize
    }

    /// The lowest value that falls into `bucket`.
    fn value(bucket: usize) -> u64 {
        let (block, sub) = (bucket >> SUB_BITS, (bucket & ((1 << SUB_BITS) - 1)) as u64);
        if block == 0 {
            sub
        } else {
            ((1 << SUB_BITS) + sub) << (block - 1)
        }
    }

    pub fn record(&mut self, latency: Duration) {
        let ns = latency.as_nanos().min(u128::from(u64::MAX)) as u64;
        self.counts[Histogram::bucket(ns)] += 1;
        self.total += 1;
        self.max_ns = self.max_ns.max(ns);
    }

    /// The latency below which `q` (0..=1) of the samples fall, in ms.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Histogram::value(bucket) as f64 / 1e6;
            }
        }
        self.max_ns as f64 / 1e6
    }

    pub fn max_ms(&self) -> f64 {
        self.max_ns as f64 / 1e6
    }
}

/// Bytes as megabytes (10^6 bytes), as the result lines print them.
pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// CPU counters at one instant; two of them give shares over a window.
pub struct Snapshot {
    pub at: Instant,
    own: f64,
    server: Option<f64>,
    machine: Option<f64>,
}

impl Snapshot {
    pub fn take(server_pid: Option<u32>) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            own: procfs::cpu_secs("self").unwrap_or(0.0),
            server: server_pid.and_then(|pid| procfs::cpu_secs(&pid.to_string())),
            machine: procfs::machine_busy_secs(),
        }
    }

    /// "load-cpu 60%, srv-cpu 100%, foreign-cpu 2%": % of one core used by
    /// this tool, by the server, and by everything else (the noise).
    pub fn cpu_report(&self, end: &Snapshot) -> String {
        let secs = end.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let own = end.own - self.own;
        let mut text = format!("load-cpu {:.0}%", 100.0 * own / secs);
        let server = match (self.server, end.server) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        if let Some(server) = server {
            text += &format!(", srv-cpu {:.0}%", 100.0 * server / secs);
        }
        if let (Some(a), Some(b)) = (self.machine, end.machine) {
            let foreign = (b - a) - own - server.unwrap_or(0.0);
            text += &format!(", foreign-cpu {:.0}%", (100.0 * foreign / secs).max(0.0));
        }
        text
    }
}

/// ", srv-rss 12.3 MB, srv-hwm 15.0 MB": the server's memory now and at
/// its highest, to end a result line; nothing without `--server-pid`.
pub fn rss_report(server_pid: Option<u32>) -> String {
    let Some(pid) = server_pid else {
        return String::new();
    };
    match (procfs::memory(pid, "VmRSS"), procfs::memory(pid, "VmHWM")) {
        (Some(rss), Some(hwm)) => format!(", srv-rss {:.1} MB, srv-hwm {:.1} MB", mb(rss), mb(hwm)),
        _ => ", srv-rss ?".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_round_trip() {
        for ns in [0, 1, 127, 128, 129, 255, 256, 1000, 123_456, 9_876_543_210] {
            let value = Histogram::value(Histogram::bucket(ns));
            assert!(
                value <= ns.max(1) && ns as f64 - value as f64 <= ns as f64 / 128.0,
                "{ns}"
            );
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::new();
        for us in 1..=100 {
            h.record(Duration::from_micros(us));
        }
        assert!((h.quantile_ms(0.5) - 0.050).abs() < 0.001);
        assert!((h.quantile_ms(0.99) - 0.099).abs() < 0.001);
    }
}
