//! duplex-soak: minutes of mixed traffic against a fresh duplex, with every
//! well-behaved client checking what it gets.
//!
//! ```text
//! duplex-soak [--minutes 3 | --seconds 30] [--members 2000] [--rooms 20]
//!             [--http-members 200] [--poll-interval 1] [--echoes 100] [--slow 50]
//!             [--churn-per-minute 300] [--server PATH]
//! ```
//!
//! It starts the server itself (the `duplex` next to this program, as
//! `cargo build --release --workspace` puts them, unless `--server` says
//! otherwise) on free loopback ports, with limits that make the interesting
//! things happen within a soak (`--max-output 256KiB --slow-reader-timeout
//! 2s --max-connections 20000 --http-member-timeout 4s --longpoll-timeout
//! 5s`), and drives it from one `mio::Poll` on one
//! thread, with duplex's own client codec. The cast:
//!
//! * **Members** (well-behaved): WebSocket `/chat` and telnet, 3 to 1, spread
//!   over `--rooms` rooms with `/join`, each renamed with `/nick` to a unique
//!   name. One in `--sender-every` also sends `seq NAME N` lines, N = 1, 2,
//!   3, ..., at `--send-rate` a second. Senders start only when every member
//!   is in its room, so each member must see, for each sender of its room
//!   (itself included: the room echoes to the sender), exactly 1, 2, 3, ...:
//!   no gap, no duplicate, no reordering, and at the end everything sent.
//! * **HTTP members** (well-behaved): the chat over plain HTTP, spread over
//!   the same rooms and named `hN`: by turns one reads over server-sent
//!   events (`/events`), one long polls (`/longpoll?since=next`), one short
//!   polls (`/poll`, every `--poll-interval`) and one only sends. They say
//!   their lines with `POST /send` on keep-alive connections: every member
//!   that only sends is a sender, and one reader in `--sender-every`. Each
//!   reader checks its `seq` lines like any member, and also the room's own
//!   line numbers (the event `id:`, `messages[].id`): they must follow on
//!   from its arrival, 1 by 1, and `missed` must stay 0 (see `http_cast.rs`).
//! * **Flooders** (well-behaved too): one per flood room, sending long `seq`
//!   lines fast. They make those rooms busy enough to overflow a reader that
//!   does not read, and check their own lines like any member.
//! * **Echo clients** (well-behaved): `/echo`, a few messages in flight, text
//!   and binary of varied sizes, each echo compared byte for byte.
//! * **Slow readers**: join a flood room, then stop reading. The server must
//!   close them. A reader that never reads never sees the goodbye either, so
//!   after `--slow-hold` seconds each one reads everything that waits for it
//!   and records how the server said goodbye: close 1008, or the telnet line
//!   `! too slow: ...`. The server's `--close-timeout` is raised (30 s) so
//!   the goodbye is still queued when the reader comes back for it.
//! * **Churn**: clients that connect, join a room, say one line and leave:
//!   some politely (close 1000 or `/quit`), some by dropping the socket right
//!   after the line, some before the handshake is even done. And as many
//!   HTTP churners, reading over events, long or short polls in turn: each
//!   says one line, reads it back (those reading over events let their
//!   stream go halfway and open it again with `Last-Event-ID`, which must
//!   bring every line after the last one read, and none twice), and leaves
//!   after 2 to 6 s, half of them
//!   with `/quit` (answered 204; the stream must then end, after `* bye`,
//!   or the next poll be refused 410) and half by going silent (the server
//!   must forget them: after 1.5 times its `--http-member-timeout`, a poll
//!   with the old token must be refused 410).
//!
//! The server's resident memory is read from `/proc/PID/status` before the
//! clients connect, every 10 s during the run, and after every client has
//! gone (when `GET /stats` counts no connection but its own). The report
//! ends with the checks, the last of which reads the server's own counts
//! per transport in that `GET /stats`: `sse`, `longpoll`, `poll` and `send`
//! must each have served what the HTTP members asked, request for request.
//! The exit status is non-zero if a check failed.
//!
//! Where things are: [`run`](mod@run) is the soak phase by phase,
//! [`soak`] the loop and what each client does with what it hears,
//! [`cast`] the kinds of client, [`http_cast`] and [`http_soak`] the HTTP
//! members and their connections, [`server`] the server process, [`tally`]
//! the counts and [`report`] what is made of them.

mod cast;
mod cluster;
mod http_cast;
mod http_soak;
mod report;
mod run;
mod server;
mod soak;
mod tally;

use clap::Parser;
use report::Findings;
use run::Run;
use server::{get_stats, start_server, ServerProcess};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

// ---- command line -----------------------------------------------------------

#[derive(Parser, Clone)]
#[command(
    name = "duplex-soak",
    about = "Soak test: starts duplex and holds checked chat, echo, slow and churning clients on it"
)]
struct Cli {
    /// The server binary (default: `duplex` next to this program).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Minutes of load.
    #[arg(long, default_value_t = 3.0)]
    minutes: f64,
    /// Seconds of load, instead of --minutes (for short runs).
    #[arg(long)]
    seconds: Option<f64>,
    /// Well-behaved chat members.
    #[arg(long, default_value_t = 2000)]
    members: usize,
    /// Chat rooms they are spread over.
    #[arg(long, default_value_t = 20)]
    rooms: usize,
    /// One member in this many is also a sender.
    #[arg(long, default_value_t = 10)]
    sender_every: usize,
    /// One member in this many uses the telnet door; the others WebSocket.
    #[arg(long, default_value_t = 4)]
    telnet_every: usize,
    /// Lines a second from each sender.
    #[arg(long, default_value_t = 1.0)]
    send_rate: f64,
    /// HTTP chat members: by turns over server-sent events, long polling,
    /// short polling, and sending only.
    #[arg(long, default_value_t = 200)]
    http_members: usize,
    /// Seconds between a short poller's polls.
    #[arg(long, default_value_t = 1.0)]
    poll_interval: f64,
    /// Passed to the server: an HTTP member that stops asking is forgotten
    /// this soon, so that the soak sees it happen.
    #[arg(long, default_value = "4s")]
    http_member_timeout: String,
    /// Passed to the server.
    #[arg(long, default_value = "5s")]
    longpoll_timeout: String,
    /// Echo clients on /echo.
    #[arg(long, default_value_t = 100)]
    echoes: usize,
    /// Echo messages in flight per echo client.
    #[arg(long, default_value_t = 4)]
    echo_depth: usize,
    /// Echo messages a second per echo client.
    #[arg(long, default_value_t = 10.0)]
    echo_rate: f64,
    /// Slow readers (they join flood rooms and stop reading).
    #[arg(long, default_value_t = 50)]
    slow: usize,
    /// Seconds a slow reader goes without reading before it looks for the
    /// server's goodbye.
    #[arg(long, default_value_t = 15.0)]
    slow_hold: f64,
    /// Flood rooms, each with one flooder; slow readers go there.
    #[arg(long, default_value_t = 5)]
    flood_rooms: usize,
    /// Lines a second from each flooder. A reader that does not read has
    /// about 4 MB of kernel buffers (its receive buffer and the server's send
    /// buffer, on loopback) to fill before the server's queue grows at all:
    /// 250 lines of 4000 bytes fill them in about 4 s.
    #[arg(long, default_value_t = 250.0)]
    flood_rate: f64,
    /// Bytes of padding in each flooder line (the line limit is 4 KiB).
    #[arg(long, default_value_t = 4000)]
    flood_size: usize,
    /// Churning clients started a minute.
    #[arg(long, default_value_t = 300.0)]
    churn_per_minute: f64,
    /// Passed to the server.
    #[arg(long, default_value = "256KiB")]
    max_output: String,
    /// Passed to the server.
    #[arg(long, default_value = "2s")]
    slow_reader_timeout: String,
    /// Passed to the server.
    #[arg(long, default_value_t = 20_000)]
    max_connections: usize,
    /// Passed to the server: long enough for a slow reader to come back for
    /// its close frame.
    #[arg(long, default_value = "30s")]
    close_timeout: String,
    /// One more argument for the server, as it is (repeatable).
    #[arg(long = "server-arg", allow_hyphen_values = true, value_name = "ARG")]
    server_args: Vec<String>,
    /// Where the server's log (stderr) goes.
    #[arg(long)]
    server_log: Option<PathBuf>,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 64)]
    max_pending: usize,
    /// Seconds allowed for every member to connect, join and take its name.
    #[arg(long, default_value_t = 120.0)]
    setup_timeout: f64,
    /// Seconds allowed, after the load stops, for the last lines and echoes
    /// to arrive.
    #[arg(long, default_value_t = 30.0)]
    settle_timeout: f64,
    /// Two instances sharing rooms through a redis-server started here,
    /// members spread over both, Redis killed and restarted (empty) at a
    /// third and two thirds of the load.
    #[arg(long)]
    cluster: bool,
    /// The Redis server program for --cluster.
    #[arg(long, default_value = "redis-server")]
    redis_server: String,
}

impl Cli {
    fn load_time(&self) -> Duration {
        Duration::from_secs_f64(self.seconds.unwrap_or(self.minutes * 60.0).max(1.0))
    }

    fn http_member_timeout(&self) -> Duration {
        duplex::config::parse_duration(&self.http_member_timeout).unwrap_or(Duration::from_secs(30))
    }

    fn longpoll_timeout(&self) -> Duration {
        duplex::config::parse_duration(&self.longpoll_timeout).unwrap_or(Duration::from_secs(25))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let started = start_cluster(&cli).and_then(|cluster| {
        let extra = cluster_args(&cluster, "a");
        let name = if cluster.is_some() { "a" } else { "" };
        Ok((start_server(&cli, &extra, name)?, cluster))
    });
    let (mut server, mut cluster) = match started {
        Ok(started) => started,
        Err(e) => {
            eprintln!("duplex-soak: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "server pid {} listening tcp={} http={}",
        server.pid, server.tcp, server.http
    );
    if let Some(cluster) = &cluster {
        println!(
            "cluster: redis-server on port {}, second instance pid {} tcp={} http={}",
            cluster.redis.port, cluster.peer.pid, cluster.peer.tcp, cluster.peer.http
        );
    }
    let outcome = run(cli, &mut server, cluster.as_mut());
    let stopped = server.stop();
    println!("server: {stopped}");
    if let Some(cluster) = &mut cluster {
        println!("second instance: {}", cluster.peer.stop());
    }
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("duplex-soak: {e} (server log: {})", server.log.display());
            ExitCode::FAILURE
        }
    }
}

/// With `--cluster`: Redis, and the second instance.
fn start_cluster(cli: &Cli) -> Result<Option<cluster::Cluster>, String> {
    if !cli.cluster {
        return Ok(None);
    }
    let redis = cluster::RedisProcess::start(&cli.redis_server)?;
    let url = redis.url();
    let peer = start_server(cli, &redis_args(&url, "b"), "b")?;
    Ok(Some(cluster::Cluster {
        redis,
        peer_rss: run::RssSamples {
            before: duplex_tools::procfs::rss(peer.pid),
            during: Vec::new(),
            after: None,
        },
        peer,
        restarts: Vec::new(),
    }))
}

/// The first instance's arguments: none alone, the cluster's with one.
fn cluster_args(cluster: &Option<cluster::Cluster>, instance: &str) -> Vec<String> {
    cluster
        .as_ref()
        .map_or(Vec::new(), |c| redis_args(&c.redis.url(), instance))
}

/// An instance of the cluster. Its buffer for Redis holds the seconds a
/// restart takes at the soak's rate of lines (flood rooms included), and
/// the stream keeps enough for a reader that comes back after one.
fn redis_args(url: &str, instance: &str) -> Vec<String> {
    [
        "--redis",
        url,
        "--instance",
        instance,
        "--redis-buffer",
        "64MiB",
        "--redis-maxlen",
        "50000",
    ]
    .map(String::from)
    .to_vec()
}

/// Runs the whole soak, one phase after the other; `Ok(true)` if every
/// check passed.
fn run(cli: Cli, server: &mut ServerProcess, cluster: Option<&mut cluster::Cluster>) -> Result<bool, String> {
    let started = Instant::now();
    // A moment for the server to settle before it is first measured.
    std::thread::sleep(Duration::from_millis(300));
    let stats_before = get_stats(server.http, Duration::from_secs(5))?;
    let mut run = Run::new(cli, server, cluster)?;
    let setup = run.setup();
    let load = run.load();
    let settled = run.settle();
    let goodbyes = run.goodbyes();
    let after = run.after();
    let findings = Findings {
        stats_before,
        setup,
        load,
        settled,
        goodbyes,
        after,
        total: started.elapsed(),
    };
    Ok(run.report(&findings))
}

/// Bytes as mebibytes, as the soak prints memory.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
