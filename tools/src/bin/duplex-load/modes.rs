//! The modes: each opens its connections on a [`Load`], turns its loop for
//! as long as the measure takes, and prints the one line of result.

use crate::load::{Load, Phase};
use crate::measure::{mb, rss_report, Histogram, Snapshot};
use crate::LoadArgs;
use duplex::ws::Opcode;
use duplex_tools::procfs;
use mio::Events;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Sends at a fixed total rate, spread round-robin over the connections.
struct Pacer {
    rate: f64,
    start: Instant,
    sent: u64,
    cursor: usize,
}

impl Pacer {
    /// Sends what is due by now. A backlog of more than 2 ms (the loop was
    /// late, or every connection was full) is dropped rather than sent as a
    /// burst, so the server sees a steady rate.
    fn send_due(&mut self, load: &mut Load) {
        let due = (self.rate * self.start.elapsed().as_secs_f64()) as u64;
        let mut owed = due.saturating_sub(self.sent);
        let max_backlog = ((self.rate * 0.002) as u64).max(1);
        if owed > max_backlog {
            self.sent += owed - max_backlog;
            owed = max_backlog;
        }
        let n = load.clients.len();
        let mut full_in_a_row = 0;
        while owed > 0 && full_in_a_row < n {
            let i = self.cursor;
            self.cursor = (self.cursor + 1) % n;
            let client = &load.clients[i];
            if client.phase == Phase::Open && client.in_flight.len() < load.depth {
                load.send_message(i);
                self.sent += 1;
                owed -= 1;
                full_in_a_row = 0;
            } else {
                full_in_a_row += 1;
            }
        }
        for i in 0..n {
            if !load.clients[i].conn.out.is_empty() {
                load.flush(i);
            }
        }
    }
}

/// `echo` and `tcp-echo`: `-c` connections with `-d` messages in flight
/// each, answered at once or paced, measured after a warm-up.
pub fn run_echo(load: &mut Load, args: LoadArgs, label: &str) -> ExitCode {
    let mut events = Events::with_capacity(1024);
    load.depth = args.depth.max(1);
    load.paced = args.rate.is_some();
    load.open_all(args.conns, &mut events);
    if load.opened == 0 {
        eprintln!("no connection opened");
        return ExitCode::from(3);
    }
    let mut pacer = args.rate.map(|rate| Pacer {
        rate,
        start: Instant::now(),
        sent: 0,
        cursor: 0,
    });
    if pacer.is_none() {
        // Closed loop: fill every pipe once; each echo then sends the next.
        let open: Vec<usize> = load.open_clients().collect();
        for i in open {
            for _ in 0..load.depth {
                load.send_message(i);
            }
            load.flush(i);
        }
    }
    let (start, end) = measure_echoes(load, &args, pacer.as_mut(), &mut events);
    print_echo_result(load, &args, label, &start, &end);
    exit_code(load)
}

/// Turns the loop through the warm-up and the measured window; returns the
/// CPU counters at the window's two ends.
fn measure_echoes(
    load: &mut Load,
    args: &LoadArgs,
    mut pacer: Option<&mut Pacer>,
    events: &mut Events,
) -> (Snapshot, Snapshot) {
    let measure_from = Instant::now() + Duration::from_secs_f64(args.warmup);
    let measure_until = measure_from + Duration::from_secs_f64(args.secs);
    let mut start: Option<Snapshot> = None;
    loop {
        let now = Instant::now();
        if start.is_none() && now >= measure_from {
            start = Some(Snapshot::take(load.common.server_pid));
            load.counting = true;
        }
        if now >= measure_until {
            break;
        }
        let timeout = match &mut pacer {
            Some(pacer) => {
                pacer.send_due(load);
                Duration::from_millis(1)
            }
            None => (measure_until - now).min(Duration::from_millis(100)),
        };
        load.turn(events, timeout);
    }
    let end = Snapshot::take(load.common.server_pid);
    let start = start.unwrap_or_else(|| Snapshot::take(load.common.server_pid));
    (start, end)
}

fn print_echo_result(load: &Load, args: &LoadArgs, label: &str, start: &Snapshot, end: &Snapshot) {
    let secs = end.at.duration_since(start.at).as_secs_f64();
    let rate = match args.rate {
        Some(rate) => format!(" rate={rate}"),
        None => String::new(),
    };
    println!(
        "duplex-load {label} c={} d={} s={}{rate}: {:.0} msg/s, {:.1} MB/s, p50 {:.3} ms, p99 {:.3} ms, \
max {:.3} ms, errors {}, conns {}, echoed {}, {}{}",
        args.conns,
        args.depth,
        args.size,
        load.echoes as f64 / secs,
        load.echo_bytes as f64 / secs / 1e6,
        load.latency.quantile_ms(0.50),
        load.latency.quantile_ms(0.99),
        load.latency.max_ms(),
        load.errors,
        load.opened,
        load.echoes,
        start.cpu_report(end),
        rss_report(load.common.server_pid),
    );
}

/// `idle`: opens `conns` connections, holds them `secs` seconds, and says
/// what they cost the server in memory.
pub fn run_idle(load: &mut Load, conns: usize, secs: f64) -> ExitCode {
    let mut events = Events::with_capacity(1024);
    let pid = load.common.server_pid;
    let base = pid.and_then(procfs::rss);
    let began = Instant::now();
    // Half first, then the rest: the second half's growth is the cost of
    // one more connection alone, without what the first ones paid once
    // (the code paged in, pools and tables set up).
    load.open_all(conns / 2, &mut events);
    let (half, opened_half) = (pid.and_then(procfs::rss), load.opened);
    load.open_all(conns, &mut events);
    let setup = began.elapsed().as_secs_f64();
    load.counting = true;
    let held_from = Instant::now();
    let until = held_from + Duration::from_secs_f64(secs);
    while Instant::now() < until {
        load.turn(&mut events, Duration::from_millis(100));
    }
    let mut line = format!(
        "duplex-load idle n={conns}: {} ok, {} failed, setup {setup:.2} s, held {:.1} s",
        load.opened,
        load.failed,
        held_from.elapsed().as_secs_f64()
    );
    if let (Some(pid), Some(base), Some(half)) = (pid, base, half) {
        let rss = procfs::rss(pid).unwrap_or(0);
        let per_conn = rss.saturating_sub(base) as f64 / load.opened.max(1) as f64;
        let second_half = load.opened.saturating_sub(opened_half).max(1) as f64;
        let marginal = rss.saturating_sub(half) as f64 / second_half;
        line += &format!(
            ", srv-rss-base {:.1} MB, srv-rss {:.1} MB, per-conn {:.2} kB, marginal {:.2} kB",
            mb(base),
            mb(rss),
            per_conn / 1e3,
            marginal / 1e3
        );
    }
    println!("{line}");
    exit_code(load)
}

/// `broadcast`: `members` in one room; the first sends `rounds` numbered
/// messages one after the other, each timed until the last member has it.
pub fn run_broadcast(load: &mut Load, members: usize, rounds: usize, size: usize) -> ExitCode {
    let mut events = Events::with_capacity(1024);
    let pid = load.common.server_pid;
    let base = pid.and_then(procfs::rss);
    load.open_all(members, &mut events);
    if load.opened == 0 || load.clients[0].phase != Phase::Open {
        eprintln!("the sender did not connect");
        return ExitCode::from(3);
    }
    // Every arrival is announced to the room; let that news die down.
    load.round = usize::MAX;
    let settle_until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < settle_until {
        load.turn(&mut events, Duration::from_millis(50));
    }
    let joined = pid.and_then(procfs::rss);
    load.counting = true;
    let start = Snapshot::take(pid);
    let (last_delivery, timeouts) = time_rounds(load, rounds, size, &mut events);
    let end = Snapshot::take(pid);
    let line = format!(
        "duplex-load broadcast n={members} k={rounds} s={size}: {}",
        broadcast_result(load, &last_delivery, timeouts, &start, &end)
    );
    println!("{line}{}", memory_result(load, pid, base, joined));
    load.errors += timeouts;
    exit_code(load)
}

/// Sends each round from the first member and waits (up to 5 s) until every
/// member has it. Returns the time to the last member, and the rounds that
/// did not reach everyone in time.
fn time_rounds(load: &mut Load, rounds: usize, size: usize, events: &mut Events) -> (Histogram, u64) {
    let mut last_delivery = Histogram::new();
    let mut timeouts = 0;
    for round in 0..rounds {
        let mut text = format!("bcast {round} ").into_bytes();
        text.resize(size.max(text.len()), b'x');
        load.round = round;
        load.delivered = 0;
        load.round_sent = Instant::now();
        load.clients[0].conn.send_frame(Opcode::Text, &text);
        load.flush(0);
        let deadline = load.round_sent + Duration::from_secs(5);
        while load.delivered < load.opened && Instant::now() < deadline {
            load.turn(events, Duration::from_millis(10));
        }
        if load.delivered < load.opened {
            timeouts += 1;
        } else {
            last_delivery.record(load.round_sent.elapsed());
        }
    }
    (last_delivery, timeouts)
}

fn broadcast_result(
    load: &Load,
    last: &Histogram,
    timeouts: u64,
    start: &Snapshot,
    end: &Snapshot,
) -> String {
    let secs = end.at.duration_since(start.at).as_secs_f64();
    format!(
        "last member p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; each delivery p50 {:.3} ms, p99 {:.3} ms; \
{:.0} deliveries/s, timeouts {timeouts}, errors {}, members {}, {}",
        last.quantile_ms(0.50),
        last.quantile_ms(0.99),
        last.max_ms(),
        load.latency.quantile_ms(0.50),
        load.latency.quantile_ms(0.99),
        load.latency.total as f64 / secs,
        load.errors,
        load.opened,
        start.cpu_report(end),
    )
}

/// The server's memory before the members came, once they had joined, and
/// after the rounds; nothing without `--server-pid`.
fn memory_result(load: &Load, pid: Option<u32>, base: Option<u64>, joined: Option<u64>) -> String {
    let (Some(pid), Some(base), Some(joined)) = (pid, base, joined) else {
        return String::new();
    };
    let rss = procfs::rss(pid).unwrap_or(0);
    format!(
        ", srv-rss-base {:.1} MB, after-join {:.1} MB ({:.2} kB/member), after-rounds {:.1} MB (+{:.1} MB)",
        mb(base),
        mb(joined),
        joined.saturating_sub(base) as f64 / load.opened.max(1) as f64 / 1e3,
        mb(rss),
        mb(rss.saturating_sub(joined)),
    )
}

/// 3 when anything went wrong, so scripts notice.
fn exit_code(load: &Load) -> ExitCode {
    if load.errors > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}
