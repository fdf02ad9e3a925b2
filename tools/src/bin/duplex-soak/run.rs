//! The soak, phase by phase: setup, load, settle, goodbyes, and the wait
//! until the server counts no connection. Each phase turns the same loop
//! and returns what the report needs of it.

use crate::cast::Job;
use crate::cluster::Cluster;
use crate::server::{get_stats, json_number, ServerProcess, Watch};
use crate::soak::Soak;
use crate::Cli;
use duplex_tools::procfs;
use mio::Events;
use std::time::{Duration, Instant};

/// The longest a turn waits for readiness: short, so that the clock's
/// work (sends, holds, deadlines) is on time.
const STEP: Duration = Duration::from_millis(10);

/// How often the server's memory is sampled during the load.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// The server's resident memory: before the clients, during the load (with
/// the time into it), and after the last client has gone.
pub struct RssSamples {
    pub before: Option<u64>,
    pub during: Vec<(Duration, u64)>,
    pub after: Option<u64>,
}

pub struct Run<'a> {
    pub cli: Cli,
    server: &'a mut ServerProcess,
    /// `--cluster`: the second instance and Redis.
    pub cluster: Option<&'a mut Cluster>,
    pub soak: Soak,
    events: Events,
    pub watch: Watch,
    pub rss: RssSamples,
}

/// What is left when the load has stopped and the last lines are in.
pub struct Settled {
    pub took: Duration,
    pub seq_expected: u64,
    pub leftover_slow: usize,
    pub leftover_churn: usize,
}

/// How the polite goodbyes at the end went.
pub struct Goodbyes {
    pub took: Duration,
    pub members_at_end: usize,
    /// Steady HTTP members still there.
    pub http_at_end: usize,
    /// Connections the server had not closed (or HTTP members whose `/quit`
    /// was not over) when the wait ended.
    pub left_open: usize,
}

/// The server's own count once every client has gone.
pub struct After {
    /// The last `GET /stats` answer (or why there was none).
    pub stats: String,
    /// Connections it counts beside the one asking.
    pub others: u64,
    pub took: Duration,
    /// `--cluster`: the second instance's `GET /stats` at the end.
    pub peer_stats: Option<String>,
}

impl<'a> Run<'a> {
    pub fn new(
        cli: Cli,
        server: &'a mut ServerProcess,
        cluster: Option<&'a mut Cluster>,
    ) -> Result<Run<'a>, String> {
        let rss = RssSamples {
            before: procfs::rss(server.pid),
            during: Vec::new(),
            after: None,
        };
        let peer = cluster.as_ref().map(|c| (c.peer.tcp, c.peer.http));
        let soak = Soak::new(cli.clone(), server.tcp, server.http, peer).map_err(|e| e.to_string())?;
        Ok(Run {
            cli,
            server,
            cluster,
            soak,
            events: Events::with_capacity(4096),
            watch: Watch::new(),
            rss,
        })
    }

    fn alive(&mut self) -> bool {
        let peer_alive = match &mut self.cluster {
            Some(c) => c.peer.exited().is_none(),
            None => true,
        };
        self.watch.alive(self.server) && peer_alive
    }

    /// `--cluster`: Redis is killed and started again, empty, at a third
    /// and at two thirds of the load.
    fn restart_redis_when_due(&mut self, into: Duration, load_time: Duration) {
        let Some(cluster) = &mut self.cluster else { return };
        let due = load_time * (cluster.restarts.len() as u32 + 1) / 3;
        if cluster.restarts.len() >= 2 || into < due {
            return;
        }
        match cluster.redis.restart() {
            Ok(()) => println!(
                "[{:>4.0} s] redis-server killed and started again, empty",
                into.as_secs_f64()
            ),
            Err(e) => self.soak.t.note(format!("redis restart: {e}")),
        }
        cluster.restarts.push(into);
    }

    /// One turn of the loop, then the clock's work.
    fn step(&mut self) {
        self.soak.turn(&mut self.events, STEP);
        self.soak.tick(Instant::now());
    }

    /// Phase 1, setup: members into their rooms under their names, echo
    /// clients open.
    pub fn setup(&mut self) -> Duration {
        let start = Instant::now();
        self.soak.plan_members();
        self.soak.plan_http_members();
        let (wanted, echoes) = (self.cli.members + self.cli.flood_rooms, self.cli.echoes);
        let http = self.cli.http_members;
        let deadline = start + Duration::from_secs_f64(self.cli.setup_timeout);
        println!(
            "setup: {wanted} members ({} flooders), {http} HTTP members, {echoes} echo clients ...",
            self.cli.flood_rooms
        );
        while !self.everyone_ready() && Instant::now() < deadline && self.alive() {
            self.step();
            // Some did not make it, and waiting longer will not change that.
            if self.soak.nothing_on_the_way() {
                break;
            }
        }
        let took = start.elapsed();
        let t = &self.soak.t;
        println!(
            "setup: {}/{wanted} members ready, {}/{http} HTTP members, {}/{echoes} echo clients, in {:.1} s",
            t.members_ready,
            t.http.ready,
            t.echo_ready,
            took.as_secs_f64()
        );
        took
    }

    /// Every member in its room under its name, every echo client open.
    fn everyone_ready(&self) -> bool {
        let t = &self.soak.t;
        t.members_ready >= self.cli.members + self.cli.flood_rooms
            && t.http.ready >= self.cli.http_members
            && t.echo_ready >= self.cli.echoes
    }

    /// Phase 2, load: senders send and echo clients echo; slow readers
    /// arrive over the first half, churners all along; the server's memory
    /// is sampled every 10 s.
    pub fn load(&mut self) -> Duration {
        let start = Instant::now();
        let load_time = self.cli.load_time();
        self.soak.start_senders(start);
        let mut arrivals = Arrivals::new(&self.cli, start);
        let mut next_sample = start + SAMPLE_EVERY;
        while start.elapsed() < load_time && self.alive() {
            self.soak.turn(&mut self.events, STEP);
            let now = Instant::now();
            arrivals.plan_due(&mut self.soak, &self.cli, now);
            self.soak.tick(now);
            self.restart_redis_when_due(now.duration_since(start), load_time);
            if now >= next_sample {
                next_sample += SAMPLE_EVERY;
                self.sample(now.duration_since(start));
            }
        }
        let took = start.elapsed();
        if let Some(bytes) = procfs::rss(self.server.pid) {
            self.rss.during.push((took, bytes));
        }
        self.sample_peer(took);
        took
    }

    fn sample_peer(&mut self, into: Duration) {
        if let Some(c) = &mut self.cluster {
            if let Some(bytes) = procfs::rss(c.peer.pid) {
                c.peer_rss.during.push((into, bytes));
            }
        }
    }

    /// Samples the server's memory and prints a line of progress.
    fn sample(&mut self, into: Duration) {
        self.sample_peer(into);
        let bytes = procfs::rss(self.server.pid).unwrap_or(0);
        self.rss.during.push((into, bytes));
        let t = &self.soak.t;
        println!(
            "[{:>4.0} s] conns {:>5} + http {:>3} | seq sent {:>7} recv {:>9} | http lines {:>8} | echoes {:>7} | slow closed {:>3} | churn {:>5} | rss {:.1} MiB",
            into.as_secs_f64(),
            self.soak.clients.len(),
            self.soak.web.connections(),
            t.seq_sent,
            t.seq_received,
            t.http.lines_read(),
            t.echo_received,
            t.slow_closed(),
            t.churn_started,
            crate::mib(bytes)
        );
    }

    /// Phase 3, settle: no new lines; the last ones and the echoes arrive;
    /// slow readers still holding look for their goodbye now.
    pub fn settle(&mut self) -> Settled {
        self.soak.stop_load();
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(self.cli.settle_timeout);
        let mut next_look = start;
        while Instant::now() < deadline && self.alive() {
            self.step();
            // Counting what is outstanding visits every member: not every
            // turn.
            if Instant::now() < next_look {
                continue;
            }
            next_look = Instant::now() + Duration::from_millis(100);
            if self.soak.settled() {
                break;
            }
        }
        let soak = &mut self.soak;
        soak.t.seq_tail_missing = soak.lines_outstanding();
        soak.t.echo_unanswered = soak.echoes_outstanding();
        Settled {
            took: start.elapsed(),
            seq_expected: soak.seq_expected(),
            leftover_slow: soak.count_jobs(|j| matches!(j, Job::Slow(_))),
            leftover_churn: soak.count_jobs(|j| matches!(j, Job::Churn(_))),
        }
    }

    /// Phase 4, goodbyes: everyone leaves politely, and the server closes
    /// each one (or, for an HTTP member, ends its reading).
    pub fn goodbyes(&mut self) -> Goodbyes {
        let members_at_end = self.soak.count_jobs(|j| matches!(j, Job::Member(_)));
        let http_at_end = self.soak.web.count(|m| m.is_steady());
        let start = Instant::now();
        self.soak.close_all();
        let deadline = Instant::now() + Duration::from_secs(15);
        let open = |soak: &Soak| !soak.clients.is_empty() || !soak.web.is_empty();
        while open(&self.soak) && Instant::now() < deadline && self.alive() {
            self.step();
        }
        let took = start.elapsed();
        let left_open = self.soak.clients.len() + self.soak.web.members.len();
        self.soak.drop_all();
        Goodbyes {
            took,
            members_at_end,
            http_at_end,
            left_open,
        }
    }

    /// Phase 5, after: wait until the server counts no connection but the
    /// one asking.
    pub fn after(&mut self) -> After {
        let mut stats = String::new();
        let mut others = u64::MAX;
        // A connection the server is closing lingers at most its close
        // timeout: wait that long and more, and say how long it took.
        let close_timeout =
            duplex::config::parse_duration(&self.cli.close_timeout).unwrap_or(Duration::from_secs(5));
        let start = Instant::now();
        let deadline = start + close_timeout + Duration::from_secs(15);
        while self.watch.crashed.is_none() && Instant::now() < deadline {
            match get_stats(self.server.http, Duration::from_secs(5)) {
                Ok(json) => {
                    others = json_number(&json, "total").unwrap_or(1).saturating_sub(1);
                    stats = json;
                    if others == 0 {
                        break;
                    }
                }
                Err(e) => stats = format!("GET /stats failed: {e}"),
            }
            std::thread::sleep(Duration::from_millis(250));
            self.alive();
        }
        let took = start.elapsed();
        std::thread::sleep(Duration::from_millis(500));
        self.rss.after = procfs::rss(self.server.pid);
        let mut peer_stats = None;
        if let Some(c) = &mut self.cluster {
            c.peer_rss.after = procfs::rss(c.peer.pid);
            peer_stats =
                Some(get_stats(c.peer.http, Duration::from_secs(5)).unwrap_or_else(|e| e.to_string()));
        }
        self.alive();
        After {
            stats,
            others,
            took,
            peer_stats,
        }
    }
}

/// When the slow readers and the churners arrive during the load: slow
/// readers spread evenly over its first half (so each has time to be
/// closed before the end), churners at a steady rate all along.
struct Arrivals {
    start: Instant,
    /// Seconds over which the slow readers arrive.
    slow_spread: f64,
    slow_planned: u64,
    churn_interval: Duration,
    next_churn: Instant,
    churn_planned: u64,
}

impl Arrivals {
    fn new(cli: &Cli, start: Instant) -> Arrivals {
        let load_secs = cli.load_time().as_secs_f64();
        Arrivals {
            start,
            slow_spread: (load_secs / 2.0).min(load_secs - cli.slow_hold - 5.0).max(0.0),
            slow_planned: 0,
            churn_interval: Duration::from_secs_f64(60.0 / cli.churn_per_minute.max(0.001)),
            next_churn: start,
            churn_planned: 0,
        }
    }

    /// Queues the arrivals due by `now`.
    fn plan_due(&mut self, soak: &mut Soak, cli: &Cli, now: Instant) {
        let into = now.duration_since(self.start).as_secs_f64();
        while self.slow_planned < cli.slow as u64 {
            let due = if cli.slow > 1 {
                self.slow_spread * self.slow_planned as f64 / (cli.slow - 1) as f64
            } else {
                0.0
            };
            if into < due {
                break;
            }
            soak.plan_slow(self.slow_planned);
            self.slow_planned += 1;
        }
        if cli.churn_per_minute > 0.0 {
            while now >= self.next_churn {
                soak.plan_churn(self.churn_planned);
                soak.plan_http_churn(self.churn_planned);
                self.churn_planned += 1;
                self.next_churn += self.churn_interval;
            }
        }
    }
}
