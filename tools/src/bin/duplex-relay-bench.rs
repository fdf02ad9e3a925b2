//! duplex-relay-bench: what relaying through Redis costs, against the
//! same work done on one instance, measured in one run.
//!
//! ```text
//! duplex-relay-bench [--rounds 2000] [--lines 100000] [--senders 4]
//!                    [--server PATH] [--redis-server redis-server]
//! ```
//!
//! It starts a `redis-server` (persistence off, free port), two instances
//! joined to it (`a`, `b`) and a lone instance without `--redis` (`solo`),
//! each with `RUST_LOG=duplex=warn`, and measures:
//!
//! 1. **Latency**: a telnet member on `a` says a line, one at a time; a
//!    member on `a` and a member on `b` time its arrival. The difference
//!    is what the way through Redis adds (p50, p99).
//! 2. **Throughput**: `--senders` members on `a` say `--lines` lines
//!    between them as fast as the server takes them; a member on `a` and
//!    one on `b` count them in. The same on `solo`. Lines a second, as
//!    each reader got them all.
//! 3. **CPU**: each server's CPU time over the throughput run, from
//!    `/proc`: per line on `solo`, per line on `a` + `b` (and Redis).
//!
//! Plain blocking sockets and one thread per reader: the tool is not the
//! server, and the numbers it times are milliseconds, not microseconds.

use clap::Parser;
use duplex_tools::procfs;
use duplex_tools::redis::RedisProcess;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "duplex-relay-bench",
    about = "Latency, throughput and CPU of lines relayed through Redis, against one instance"
)]
struct Cli {
    /// Lines timed one at a time for the latency.
    #[arg(long, default_value_t = 2000)]
    rounds: usize,
    /// Lines said for the throughput, all senders together.
    #[arg(long, default_value_t = 100_000)]
    lines: usize,
    /// Members saying them, each on its own connection.
    #[arg(long, default_value_t = 4)]
    senders: usize,
    /// The server binary (default: `duplex` next to this program).
    #[arg(long)]
    server: Option<PathBuf>,
    /// The Redis server program.
    #[arg(long, default_value = "redis-server")]
    redis_server: String,
}

/// How long any wait may take before the bench gives up.
const WAIT: Duration = Duration::from_secs(60);

/// A duplex child process, killed when dropped.
struct Instance {
    child: Child,
    tcp: SocketAddr,
}

impl Instance {
    fn start(program: &PathBuf, args: &[&str]) -> Result<Instance, String> {
        let mut child = Command::new(program)
            .args(["--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "duplex=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let tcp = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("tcp="))
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("no tcp= in {line:?}"))?;
        // Relaying starts once both links are up; the first member waits
        // for it (see `Member::join`).
        Ok(Instance { child, tcp })
    }

    fn cpu(&self) -> f64 {
        procfs::cpu_secs(&self.child.id().to_string()).unwrap_or(0.0)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A telnet member: a socket to write to, and a thread that reads its
/// lines and sends them, with their time of arrival, to a channel.
struct Member {
    stream: TcpStream,
    lines: mpsc::Receiver<(Instant, String)>,
}

impl Member {
    fn join(addr: SocketAddr) -> Result<Member, String> {
        let stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let reader = stream.try_clone().map_err(|e| e.to_string())?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Ok(Member { stream, lines })
    }

    fn say(&mut self, line: &str) -> Result<(), String> {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .map_err(|e| e.to_string())
    }

    /// The next line that ends with `suffix`, and when it came.
    fn until(&self, suffix: &str) -> Result<Instant, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, line)) if line.ends_with(suffix) => return Ok(at),
                Ok(_) => {}
                Err(_) => return Err(format!("no line ending {suffix:?} within {WAIT:?}")),
            }
        }
    }

    /// Counts lines containing `mark` until `n` came; when the last did.
    fn count(&self, mark: &str, n: usize) -> Result<Instant, String> {
        let mut seen = 0;
        let mut last = Instant::now();
        while seen < n {
            match self.lines.recv_timeout(WAIT) {
                Ok((at, line)) if line.contains(mark) => {
                    seen += 1;
                    last = at;
                }
                Ok(_) => {}
                Err(_) => return Err(format!("{seen} of {n} lines arrived")),
            }
        }
        Ok(last)
    }
}

/// Says `/who` until the room lists `n` members: everyone placed on every
/// instance.
fn wait_for_members(m: &mut Member, n: usize) -> Result<(), String> {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        m.say("/who")?;
        let at = Instant::now() + Duration::from_secs(2);
        while let Ok((_, line)) = m.lines.recv_timeout(at.saturating_duration_since(Instant::now())) {
            if let Some(list) = line.strip_prefix("* members of lobby: ") {
                if list.split(", ").count() == n {
                    return Ok(());
                }
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("the lobby never had {n} members"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One throughput run: senders on `from`, readers on each of `to`; the
/// lines a second as each reader had them all, and the CPU of `servers`.
fn throughput(cli: &Cli, from: SocketAddr, to: &[SocketAddr], mark: &str) -> Result<Vec<f64>, String> {
    let readers: Vec<Member> = to.iter().map(|&a| Member::join(a)).collect::<Result<_, _>>()?;
    let mut senders: Vec<Member> = (0..cli.senders)
        .map(|_| Member::join(from))
        .collect::<Result<_, _>>()?;
    let mut first = Member::join(from)?;
    wait_for_members(&mut first, cli.senders + to.len() + 1)?;
    let per = cli.lines / cli.senders;
    let total = per * cli.senders;
    let start = Instant::now();
    let writers: Vec<_> = senders
        .drain(..)
        .enumerate()
        .map(|(s, mut m)| {
            let mark = mark.to_string();
            std::thread::spawn(move || {
                // One write of many lines at a time: the server reads them
                // as a client that types fast would send them.
                let mut batch = String::new();
                for i in 0..per {
                    batch += &format!("{mark} {s} {i}\r\n");
                    if batch.len() > 16 << 10 || i + 1 == per {
                        if m.stream.write_all(batch.as_bytes()).is_err() {
                            return m;
                        }
                        batch.clear();
                    }
                }
                m
            })
        })
        .collect();
    let mut rates = Vec::new();
    for reader in &readers {
        let last = reader.count(mark, total)?;
        rates.push(total as f64 / last.duration_since(start).as_secs_f64());
    }
    for w in writers {
        let _ = w.join();
    }
    Ok(rates)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("duplex-relay-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), String> {
    let program = match &cli.server {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("duplex"),
    };
    let redis = RedisProcess::start(&cli.redis_server)?;
    let url = redis.url();
    let cluster = ["--redis", &url, "--redis-buffer", "256MiB"];
    let a = Instance::start(&program, &[&cluster[..], &["--instance", "a"]].concat())?;
    let b = Instance::start(&program, &[&cluster[..], &["--instance", "b"]].concat())?;
    let solo = Instance::start(&program, &[])?;
    println!(
        "load average: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );

    // 1. Latency, one line at a time.
    let mut sender = Member::join(a.tcp)?;
    let local = Member::join(a.tcp)?;
    let remote = Member::join(b.tcp)?;
    wait_for_members(&mut sender, 3)?;
    let (mut here, mut there) = (Vec::new(), Vec::new());
    for i in 0..cli.rounds {
        let tag = format!("ping-{i}");
        let sent = Instant::now();
        sender.say(&tag)?;
        here.push(local.until(&tag)?.duration_since(sent));
        there.push(remote.until(&tag)?.duration_since(sent));
    }
    here.sort();
    there.sort();
    let (p50l, p99l, p50r, p99r) = (
        percentile(&here, 0.5),
        percentile(&here, 0.99),
        percentile(&there, 0.5),
        percentile(&there, 0.99),
    );
    println!(
        "latency, {} lines one at a time (telnet on a -> telnet on a | on b through Redis):",
        cli.rounds
    );
    println!("  local   p50 {:.3} ms  p99 {:.3} ms", ms(p50l), ms(p99l));
    println!("  relayed p50 {:.3} ms  p99 {:.3} ms", ms(p50r), ms(p99r));
    println!(
        "  added by the relay: p50 +{:.3} ms, p99 +{:.3} ms",
        ms(p50r.saturating_sub(p50l)),
        ms(p99r.saturating_sub(p99l))
    );
    drop((sender, local, remote));

    // 2 and 3. Throughput and CPU: the lone instance, then the cluster.
    let solo_cpu = solo.cpu();
    let solo_rate = throughput(cli, solo.tcp, &[solo.tcp], "solo")?;
    let solo_cpu = solo.cpu() - solo_cpu;
    let (a_cpu, b_cpu, r_cpu) = (
        a.cpu(),
        b.cpu(),
        procfs::cpu_secs(&redis.pid().to_string()).unwrap_or(0.0),
    );
    let rates = throughput(cli, a.tcp, &[a.tcp, b.tcp], "many")?;
    let (a_cpu, b_cpu) = (a.cpu() - a_cpu, b.cpu() - b_cpu);
    let r_cpu = procfs::cpu_secs(&redis.pid().to_string()).unwrap_or(0.0) - r_cpu;
    let lines = (cli.lines / cli.senders * cli.senders) as f64;
    println!(
        "throughput, {} lines from {} senders, as the last reader had them all:",
        lines, cli.senders
    );
    println!("  one instance:          {:>9.0} lines/s", solo_rate[0]);
    println!("  cluster, reader on a:  {:>9.0} lines/s", rates[0]);
    println!(
        "  cluster, reader on b:  {:>9.0} lines/s (relayed; {:.2} of one instance)",
        rates[1],
        rates[1] / solo_rate[0]
    );
    let per = |secs: f64| secs / lines * 1e6;
    println!(
        "server CPU per line (each line goes to {} members):",
        cli.senders + 2
    );
    println!("  one instance:  {:.2} µs", per(solo_cpu));
    println!(
        "  cluster:       {:.2} µs on a (says it, sends it to Redis) + {:.2} µs on b (reads it back) = {:.2} µs, {:.2} times one instance; Redis {:.2} µs",
        per(a_cpu),
        per(b_cpu),
        per(a_cpu + b_cpu),
        (a_cpu + b_cpu) / solo_cpu.max(1e-9),
        per(r_cpu)
    );
    Ok(())
}
