//! duplex-load: a load generator for WebSocket and line servers, built on
//! duplex's own client codec and one mio event loop.
//!
//! ```text
//! duplex-load echo      ws://127.0.0.1:8080/echo -c 100 -d 1 -s 32 -t 10 [--rate 150000]
//! duplex-load tcp-echo  127.0.0.1:18001 -c 100 -d 16 -s 32 [--join-rooms]
//! duplex-load idle      ws://127.0.0.1:8080/echo -n 5000 -t 10   (or 127.0.0.1:18001: telnet)
//! duplex-load broadcast ws://127.0.0.1:8080/chat -n 100 -k 200
//! common: --server-pid PID (server CPU% and RSS from /proc), --max-pending 64
//! ```
//!
//! It is the mirror image of the server: the same sans-IO pieces
//! (`handshake_request`, `check_response`, `encode_client_frame`, a
//! [`Decoder`] in the client role) driven by one `mio::Poll`, one thread, no
//! async runtime. Everything it measures happens on that one loop:
//!
//! * **echo**: `-c` connections each keep `-d` messages of `-s` bytes in
//!   flight. Every echo that comes back is answered with a new message at
//!   once (closed loop), or, with `--rate R`, messages are sent at R per
//!   second in all (open loop: every server gets the same load, and its CPU
//!   share tells what each message costs it).
//! * **tcp-echo**: the same over raw TCP, one message = `-s` bytes and `\n`,
//!   and any line that comes back counts as one echo. Aim it at a line echo
//!   (`duplex --line-echo`). duplex's usual line service is a chat, where a
//!   plain line goes to everyone in the room; with `--join-rooms` each
//!   connection first moves to a room of its own (`/join load-N`), so each
//!   line comes back exactly once, and the load measures the chat.
//! * **idle**: opens `-n` connections and holds them; with `--server-pid`
//!   it reports what each one costs the server in resident memory.
//! * **broadcast**: `-n` members of one chat room; one of them sends a
//!   numbered message and the time until the last member has it is
//!   measured, `-k` times over.
//!
//! The last line of output is the result, one line, so scripts can read it.
//! Latencies are from queuing a message to reading its answer (echoes come
//! back in order on each connection), kept in a log-linear histogram.

use clap::{Args, Parser, Subcommand};
use duplex::ws::{Decoder, Event, Limits, Opcode, Role};
use duplex_tools::client::{
    check_response, encode_client_frame, handshake_request, random_key, HandshakeFailure,
};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

// ---- command line -----------------------------------------------------------

#[derive(Parser)]
#[command(
    name = "duplex-load",
    about = "Load generator for WebSocket and line-based TCP servers"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Echo messages over WebSocket (ws://HOST:PORT/PATH).
    Echo {
        url: String,
        #[command(flatten)]
        load: LoadArgs,
        /// Send binary frames instead of text.
        #[arg(long)]
        binary: bool,
        /// Offer this subprotocol in the handshake.
        #[arg(long)]
        subprotocol: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Echo lines over raw TCP (HOST:PORT).
    TcpEcho {
        addr: String,
        #[command(flatten)]
        load: LoadArgs,
        /// First move each connection to a room of its own (`/join load-N`,
        /// then wait for `* you joined`): for duplex's line service.
        #[arg(long)]
        join_rooms: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Hold idle WebSocket (ws://...) or telnet (HOST:PORT) connections and
    /// measure the server's memory.
    Idle {
        url: String,
        /// Connections to open.
        #[arg(short = 'n', long, default_value_t = 5000)]
        conns: usize,
        /// Seconds to hold them.
        #[arg(short = 't', long, default_value_t = 10.0)]
        secs: f64,
        #[command(flatten)]
        common: Common,
    },
    /// Time one message to every member of a chat room (ws://HOST/chat).
    Broadcast {
        url: String,
        /// Members in the room (the first one also sends).
        #[arg(short = 'n', long, default_value_t = 100)]
        members: usize,
        /// Messages to time, one after the other.
        #[arg(short = 'k', long, default_value_t = 200)]
        rounds: usize,
        /// Message size in bytes.
        #[arg(short = 's', long, default_value_t = 32)]
        size: usize,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args, Clone, Copy)]
struct LoadArgs {
    /// Connections.
    #[arg(short = 'c', long, default_value_t = 100)]
    conns: usize,
    /// Messages in flight per connection.
    #[arg(short = 'd', long, default_value_t = 1)]
    depth: usize,
    /// Payload size in bytes.
    #[arg(short = 's', long, default_value_t = 32)]
    size: usize,
    /// Seconds measured.
    #[arg(short = 't', long, default_value_t = 10.0)]
    secs: f64,
    /// Seconds of warm-up before measuring.
    #[arg(short = 'w', long, default_value_t = 2.0)]
    warmup: f64,
    /// Send at this many messages per second in all, instead of answering
    /// each echo at once (still at most `-d` in flight per connection).
    #[arg(long)]
    rate: Option<f64>,
}

#[derive(Args, Clone, Copy)]
struct Common {
    /// The server's process id: report its CPU and RSS from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Connections being opened at once (a listen backlog is finite).
    #[arg(long, default_value_t = 64)]
    max_pending: usize,
    /// Seconds allowed for opening all connections.
    #[arg(long, default_value_t = 20.0)]
    connect_timeout: f64,
}

/// Where to connect and, for WebSocket, what to ask for.
struct Target {
    addr: SocketAddr,
    /// The `Host` header.
    host: String,
    /// `None` for raw TCP.
    path: Option<String>,
    subprotocol: Option<String>,
}

impl Target {
    fn websocket(url: &str, subprotocol: Option<String>) -> Result<Target, String> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| format!("{url}: expected ws://HOST:PORT/PATH (no TLS)"))?;
        let (host, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/"),
        };
        Ok(Target {
            addr: resolve(host)?,
            host: host.to_string(),
            path: Some(path.to_string()),
            subprotocol,
        })
    }

    fn tcp(addr: &str) -> Result<Target, String> {
        Ok(Target {
            addr: resolve(addr)?,
            host: addr.to_string(),
            path: None,
            subprotocol: None,
        })
    }
}

fn resolve(host: &str) -> Result<SocketAddr, String> {
    host.to_socket_addrs()
        .map_err(|e| format!("{host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}: no address"))
}

// ---- measuring ------------------------------------------------------------

/// Latencies in a log-linear histogram: below 128 ns every nanosecond has
/// its bucket; above, each power of two is cut into 128 equal buckets, so a
/// value read back is at most 1/128 (0.8%) below the truth. Fixed size,
/// nothing allocated per sample.
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max_ns: u64,
}

const SUB_BITS: u32 = 7;

impl Histogram {
    fn new() -> Histogram {
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

    fn record(&mut self, latency: Duration) {
        let ns = latency.as_nanos().min(u128::from(u64::MAX)) as u64;
        self.counts[Histogram::bucket(ns)] += 1;
        self.total += 1;
        self.max_ns = self.max_ns.max(ns);
    }

    /// The latency below which `q` (0..=1) of the samples fall, in ms.
    fn quantile_ms(&self, q: f64) -> f64 {
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

    fn max_ms(&self) -> f64 {
        self.max_ns as f64 / 1e6
    }
}

/// Clock ticks per second in /proc's CPU times (`USER_HZ`): 100 on every
/// mainstream Linux build.
const USER_HZ: f64 = 100.0;

/// CPU seconds (user + system) used so far by a process ("self" or a pid).
fn process_cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces; count fields
    // after it. Field 3 (state) is first there, so utime (14) and stime
    // (15) are at 11 and 12 (man 5 proc).
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / USER_HZ)
}

/// CPU seconds the whole machine has spent busy (all cores), from the
/// first line of /proc/stat: everything but idle and iowait.
fn machine_busy_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let (idle, iowait) = (*ticks.get(3)?, *ticks.get(4)?);
    let busy: u64 = ticks.iter().take(8).sum::<u64>() - idle - iowait;
    Some(busy as f64 / USER_HZ)
}

/// A field of /proc/PID/status in bytes, e.g. "VmRSS" (resident now) or
/// "VmHWM" (the high-water mark).
fn process_memory(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    let kb: u64 = line[field.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// CPU counters at one instant; two of them give shares over a window.
struct Snapshot {
    at: Instant,
    own: f64,
    server: Option<f64>,
    machine: Option<f64>,
}

impl Snapshot {
    fn take(server_pid: Option<u32>) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            own: process_cpu_secs("self").unwrap_or(0.0),
            server: server_pid.and_then(|pid| process_cpu_secs(&pid.to_string())),
            machine: machine_busy_secs(),
        }
    }

    /// "load-cpu 60%, srv-cpu 100%, foreign-cpu 2%": % of one core used by
    /// this tool, by the server, and by everything else (the noise).
    fn cpu_report(&self, end: &Snapshot) -> String {
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

fn rss_report(server_pid: Option<u32>) -> String {
    let Some(pid) = server_pid else {
        return String::new();
    };
    match (process_memory(pid, "VmRSS"), process_memory(pid, "VmHWM")) {
        (Some(rss), Some(hwm)) => format!(", srv-rss {:.1} MB, srv-hwm {:.1} MB", mb(rss), mb(hwm)),
        _ => ", srv-rss ?".to_string(),
    }
}

// ---- connections ----------------------------------------------------------

/// Where a connection stands. It only moves forward, and only through
/// [`Load::set_phase`].
#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// The TCP connect is under way (non-blocking).
    Connecting,
    /// The upgrade request is out; reading the `101`.
    Handshake { key: String },
    /// `/join load-N` is out; waiting for `* you joined`.
    Joining,
    /// Sending and receiving messages.
    Open,
    /// Failed or closed; ignored from now on.
    Closed,
}

struct Conn {
    socket: TcpStream,
    phase: Phase,
    /// Bytes to write; `written` of them are already out.
    out: Vec<u8>,
    written: usize,
    /// Read but not used yet: the handshake answer, or a partial line.
    input: Vec<u8>,
    decoder: Decoder,
    /// When each message still in flight was queued, oldest first.
    in_flight: VecDeque<Instant>,
}

/// What a decoded frame or a line asks of us, once the borrow of the read
/// buffer is over.
enum Received {
    /// A message (or line) of this many bytes; for broadcast, the round
    /// number it carries.
    Message {
        len: usize,
        round: Option<usize>,
    },
    Ping(Vec<u8>),
    Close,
}

/// What the loop does with each message that comes back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Job {
    /// Count it, time it, and (unless paced) send the next one.
    Echo,
    /// Nothing: the connections only sit there.
    Idle,
    /// Note which member got which round.
    Broadcast,
}

/// Prefix of a broadcast test message: `bcast ROUND padding`.
const ROUND_TAG: &[u8] = b"bcast ";

struct Load {
    poll: Poll,
    target: Target,
    job: Job,
    common: Common,
    conns: Vec<Conn>,
    /// The one read buffer, lent to each read in turn.
    read_buf: Vec<u8>,
    /// Messages ready to send, each a complete frame (or line).
    /// Masks are fresh per frame but the same frames are reused round-robin:
    /// encoding and masking a 64 KiB message every time would make this tool
    /// the bottleneck.
    messages: Vec<Vec<u8>>,
    next_message: usize,
    /// The expected echo length (payload only).
    size: usize,
    depth: usize,
    join_rooms: bool,
    /// Sends are paced (--rate): echoes do not trigger new messages.
    paced: bool,
    /// Connections that reached `Open`, and that failed.
    opened: usize,
    failed: usize,
    /// Inside the measured window: echoes count.
    counting: bool,
    echoes: u64,
    echo_bytes: u64,
    errors: u64,
    latency: Histogram,
    /// Broadcast: the current round, when it was sent, and how many members
    /// have it.
    round: usize,
    round_sent: Instant,
    delivered: usize,
    /// Error messages shown so far (the first few are enough).
    shown_errors: usize,
}

impl Load {
    fn new(target: Target, job: Job, common: Common) -> io::Result<Load> {
        Ok(Load {
            poll: Poll::new()?,
            target,
            job,
            common,
            conns: Vec::new(),
            read_buf: vec![0; 64 * 1024],
            messages: Vec::new(),
            next_message: 0,
            size: 0,
            depth: 1,
            join_rooms: false,
            paced: false,
            opened: 0,
            failed: 0,
            counting: false,
            echoes: 0,
            echo_bytes: 0,
            errors: 0,
            latency: Histogram::new(),
            round: 0,
            round_sent: Instant::now(),
            delivered: 0,
            shown_errors: 0,
        })
    }

    fn is_websocket(&self) -> bool {
        self.target.path.is_some()
    }

    /// Prepares 16 copies of the test message as ready-to-send bytes.
    fn prepare_messages(&mut self, size: usize, binary: bool) {
        let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        let opcode = if binary { Opcode::Binary } else { Opcode::Text };
        self.size = size;
        self.messages = (0..16)
            .map(|_| {
                let mut bytes = Vec::with_capacity(size + 14);
                if self.is_websocket() {
                    encode_client_frame(&mut bytes, true, opcode, &payload);
                } else {
                    bytes.extend_from_slice(&payload);
                    bytes.push(b'\n');
                }
                bytes
            })
            .collect();
    }

    // -- the loop --

    /// One turn: wait for readiness (at most `timeout`), then handle every
    /// event. Like the server, edge-triggered: read and write until the
    /// socket says `WouldBlock`.
    fn turn(&mut self, events: &mut Events, timeout: Duration) {
        if let Err(e) = self.poll.poll(events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                panic!("poll failed: {e}");
            }
            return;
        }
        for event in events.iter() {
            let i = event.token().0;
            if self.conns[i].phase == Phase::Connecting {
                self.on_connected(i);
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                self.on_readable(i);
            }
            if event.is_writable() {
                self.flush(i);
            }
        }
    }

    fn set_phase(&mut self, i: usize, phase: Phase) {
        let conn = &mut self.conns[i];
        if phase == Phase::Open {
            self.opened += 1;
        }
        conn.phase = phase;
    }

    fn fail(&mut self, i: usize, why: &str) {
        let conn = &mut self.conns[i];
        if conn.phase == Phase::Closed {
            return;
        }
        if conn.phase == Phase::Open {
            self.opened -= 1;
        }
        // A failure while measuring is an error of the run; before it, the
        // connection simply did not open.
        if self.counting || conn.phase == Phase::Open {
            self.errors += 1;
        }
        self.failed += 1;
        let _ = self.poll.registry().deregister(&mut conn.socket);
        conn.in_flight.clear();
        conn.phase = Phase::Closed;
        if self.shown_errors < 5 {
            self.shown_errors += 1;
            eprintln!("connection {i}: {why}");
        }
    }

    // -- opening --

    fn start_connect(&mut self) -> io::Result<()> {
        let i = self.conns.len();
        let mut socket = TcpStream::connect(self.target.addr)?;
        self.poll
            .registry()
            .register(&mut socket, Token(i), Interest::READABLE | Interest::WRITABLE)?;
        self.conns.push(Conn {
            socket,
            phase: Phase::Connecting,
            out: Vec::new(),
            written: 0,
            input: Vec::new(),
            decoder: Decoder::new(Role::Client, Limits::default()),
            in_flight: VecDeque::new(),
        });
        Ok(())
    }

    /// Opens `n` connections, at most `--max-pending` at a time, and waits
    /// until each is open or has failed.
    fn open_all(&mut self, n: usize, events: &mut Events) {
        let deadline = Instant::now() + Duration::from_secs_f64(self.common.connect_timeout);
        while self.opened + self.failed < n && Instant::now() < deadline {
            while self.conns.len() < n
                && self.conns.len() - self.opened - self.failed < self.common.max_pending
            {
                if let Err(e) = self.start_connect() {
                    eprintln!("connect: {e}");
                    self.failed += 1;
                    break;
                }
            }
            self.turn(events, Duration::from_millis(10));
        }
        for i in 0..self.conns.len() {
            if !matches!(self.conns[i].phase, Phase::Open | Phase::Closed) {
                self.fail(i, "not open before --connect-timeout");
            }
        }
    }

    /// The non-blocking connect finished (or failed): say hello.
    fn on_connected(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        match conn.socket.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => return self.fail(i, &format!("connect: {e}")),
        }
        match conn.socket.peer_addr() {
            Ok(_) => {}
            // Not yet: a spurious event.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
            Err(e) => return self.fail(i, &format!("connect: {e}")),
        }
        let _ = conn.socket.set_nodelay(true);
        if let Some(path) = &self.target.path {
            let key = random_key();
            let offered: Vec<&str> = self.target.subprotocol.iter().map(String::as_str).collect();
            conn.out
                .extend_from_slice(&handshake_request(&self.target.host, path, &key, &offered));
            self.set_phase(i, Phase::Handshake { key });
        } else if self.join_rooms {
            conn.out.extend_from_slice(format!("/join load-{i}\n").as_bytes());
            self.set_phase(i, Phase::Joining);
        } else {
            self.set_phase(i, Phase::Open);
        }
        self.flush(i);
    }

    // -- reading --

    fn on_readable(&mut self, i: usize) {
        let mut buf = std::mem::take(&mut self.read_buf);
        loop {
            let conn = &mut self.conns[i];
            if matches!(conn.phase, Phase::Closed | Phase::Connecting) {
                break;
            }
            match conn.socket.read(&mut buf) {
                Ok(0) => {
                    self.fail(i, "closed by the server");
                    break;
                }
                Ok(n) => self.on_input(i, &mut buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(i, &format!("read: {e}"));
                    break;
                }
            }
        }
        self.read_buf = buf;
        // Whatever the input asked for goes out in one write.
        self.flush(i);
    }

    fn on_input(&mut self, i: usize, bytes: &mut [u8]) {
        let websocket = self.is_websocket();
        let conn = &mut self.conns[i];
        match &conn.phase {
            Phase::Handshake { key } => {
                conn.input.extend_from_slice(bytes);
                let offered: Vec<&str> = self.target.subprotocol.iter().map(String::as_str).collect();
                match check_response(&conn.input, key, &offered) {
                    Ok(accepted) => {
                        // Frames may follow the head in the same read.
                        let mut rest = conn.input.split_off(accepted.head_len);
                        conn.input = Vec::new();
                        self.set_phase(i, Phase::Open);
                        self.on_frames(i, &mut rest);
                    }
                    Err(HandshakeFailure::Incomplete) if conn.input.len() < 16 * 1024 => {}
                    Err(e) => self.fail(i, &e.to_string()),
                }
            }
            Phase::Open if websocket => self.on_frames(i, bytes),
            Phase::Open | Phase::Joining => self.on_lines(i, bytes),
            Phase::Connecting | Phase::Closed => {}
        }
    }

    /// Decodes server frames and acts on each.
    fn on_frames(&mut self, i: usize, bytes: &mut [u8]) {
        let want_round = self.job == Job::Broadcast;
        let mut pos = 0;
        while pos < bytes.len() {
            let conn = &mut self.conns[i];
            let (used, received) = match conn.decoder.decode(&mut bytes[pos..]) {
                Ok((used, event)) => {
                    let received = match event {
                        None => None,
                        Some(Event::Message(_, payload)) => Some(Received::Message {
                            len: payload.len(),
                            round: if want_round { round_of(payload) } else { None },
                        }),
                        Some(Event::Ping(payload)) => Some(Received::Ping(payload.to_vec())),
                        Some(Event::Pong(_)) => None,
                        Some(Event::Close(_)) => Some(Received::Close),
                    };
                    (used, received)
                }
                Err(e) => return self.fail(i, &format!("protocol error from the server: {e}")),
            };
            pos += used;
            match received {
                None => {}
                Some(Received::Message { len, round }) => self.on_message(i, len, round),
                Some(Received::Ping(payload)) => {
                    // RFC 6455 §5.5.2: answer with the same payload.
                    encode_client_frame(&mut self.conns[i].out, true, Opcode::Pong, &payload);
                }
                Some(Received::Close) => return self.fail(i, "the server sent a close frame"),
            }
        }
    }

    /// Splits raw TCP input into lines; each is one echo.
    fn on_lines(&mut self, i: usize, bytes: &[u8]) {
        let conn = &mut self.conns[i];
        conn.input.extend_from_slice(bytes);
        let input = std::mem::take(&mut conn.input);
        let mut start = 0;
        while let Some(newline) = input[start..].iter().position(|&b| b == b'\n') {
            let line = &input[start..start + newline];
            start += newline + 1;
            if self.conns[i].phase == Phase::Joining {
                // The greeting and the room's news come first; ours is
                // the line that says we arrived.
                if line.starts_with(b"* you joined") {
                    self.set_phase(i, Phase::Open);
                }
            } else {
                self.on_message(i, line.len(), None);
            }
        }
        let conn = &mut self.conns[i];
        conn.input = input;
        conn.input.drain(..start);
    }

    fn on_message(&mut self, i: usize, len: usize, round: Option<usize>) {
        match self.job {
            Job::Echo => {
                let Some(sent) = self.conns[i].in_flight.pop_front() else {
                    return self.fail(i, "a message nobody asked for");
                };
                // A line may come back decorated (duplex's `[room] name: `).
                let wrong_size = if self.is_websocket() {
                    len != self.size
                } else {
                    len < self.size
                };
                if wrong_size {
                    self.errors += 1;
                }
                if self.counting {
                    self.echoes += 1;
                    self.echo_bytes += self.size as u64;
                    self.latency.record(sent.elapsed());
                }
                if !self.paced {
                    self.send_message(i);
                }
            }
            Job::Idle => {}
            Job::Broadcast => {
                if round == Some(self.round) {
                    self.delivered += 1;
                    self.latency.record(self.round_sent.elapsed());
                }
            }
        }
    }

    // -- writing --

    /// Queues the next test message on connection `i` (written by `flush`).
    fn send_message(&mut self, i: usize) {
        let message = &self.messages[self.next_message];
        self.next_message = (self.next_message + 1) % self.messages.len();
        let conn = &mut self.conns[i];
        conn.out.extend_from_slice(message);
        conn.in_flight.push_back(Instant::now());
    }

    /// Writes what is queued until done or `WouldBlock`; the next writable
    /// event brings us back for the rest.
    fn flush(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        while conn.written < conn.out.len() {
            match conn.socket.write(&conn.out[conn.written..]) {
                Ok(n) => conn.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Not yet connected: the writable event will come.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => return self.fail(i, &format!("write: {e}")),
            }
        }
        conn.out.clear();
        conn.written = 0;
    }

    fn open_conns(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.conns.len()).filter(|&i| self.conns[i].phase == Phase::Open)
    }
}

/// The round number in a broadcast line: `[room] name: bcast 17 ...`.
fn round_of(payload: &[u8]) -> Option<usize> {
    let at = payload.windows(ROUND_TAG.len()).position(|w| w == ROUND_TAG)? + ROUND_TAG.len();
    let digits = payload[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&payload[at..at + digits]).ok()?.parse().ok()
}

// ---- the modes ------------------------------------------------------------

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
        let n = load.conns.len();
        let mut full_in_a_row = 0;
        while owed > 0 && full_in_a_row < n {
            let i = self.cursor;
            self.cursor = (self.cursor + 1) % n;
            let conn = &load.conns[i];
            if conn.phase == Phase::Open && conn.in_flight.len() < load.depth {
                load.send_message(i);
                self.sent += 1;
                owed -= 1;
                full_in_a_row = 0;
            } else {
                full_in_a_row += 1;
            }
        }
        for i in 0..n {
            if !load.conns[i].out.is_empty() {
                load.flush(i);
            }
        }
    }
}

fn run_echo(load: &mut Load, args: LoadArgs, label: &str) -> ExitCode {
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
        let open: Vec<usize> = load.open_conns().collect();
        for i in open {
            for _ in 0..load.depth {
                load.send_message(i);
            }
            load.flush(i);
        }
    }
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
        load.turn(&mut events, timeout);
    }
    let end = Snapshot::take(load.common.server_pid);
    let start = start.unwrap_or_else(|| Snapshot::take(load.common.server_pid));
    let secs = end.at.duration_since(start.at).as_secs_f64();
    let rate = match args.rate {
        Some(rate) => format!(" rate={rate}"),
        None => String::new(),
    };
    println!(
        "duplex-load {label} c={} d={} s={}{rate}: {:.0} msg/s, {:.1} MB/s, p50 {:.3} ms, p99 {:.3} ms, \
max {:.3} ms, errors {}, conns {}, {}{}",
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
        start.cpu_report(&end),
        rss_report(load.common.server_pid),
    );
    exit_code(load)
}

fn run_idle(load: &mut Load, conns: usize, secs: f64) -> ExitCode {
    let mut events = Events::with_capacity(1024);
    let pid = load.common.server_pid;
    let base = pid.and_then(|pid| process_memory(pid, "VmRSS"));
    let began = Instant::now();
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
    if let (Some(pid), Some(base)) = (pid, base) {
        let rss = process_memory(pid, "VmRSS").unwrap_or(0);
        let per_conn = rss.saturating_sub(base) as f64 / load.opened.max(1) as f64;
        line += &format!(
            ", srv-rss-base {:.1} MB, srv-rss {:.1} MB, per-conn {:.2} kB",
            mb(base),
            mb(rss),
            per_conn / 1e3
        );
    }
    println!("{line}");
    exit_code(load)
}

fn run_broadcast(load: &mut Load, members: usize, rounds: usize, size: usize) -> ExitCode {
    let mut events = Events::with_capacity(1024);
    let pid = load.common.server_pid;
    let base = pid.and_then(|pid| process_memory(pid, "VmRSS"));
    load.open_all(members, &mut events);
    if load.opened == 0 || load.conns[0].phase != Phase::Open {
        eprintln!("the sender did not connect");
        return ExitCode::from(3);
    }
    // Every arrival is announced to the room; let that news die down.
    load.round = usize::MAX;
    let settle_until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < settle_until {
        load.turn(&mut events, Duration::from_millis(50));
    }
    let joined = pid.and_then(|pid| process_memory(pid, "VmRSS"));
    load.counting = true;
    let mut last_delivery = Histogram::new();
    let mut timeouts = 0;
    let start = Snapshot::take(pid);
    for round in 0..rounds {
        let mut text = format!("bcast {round} ").into_bytes();
        text.resize(size.max(text.len()), b'x');
        load.round = round;
        load.delivered = 0;
        load.round_sent = Instant::now();
        encode_client_frame(&mut load.conns[0].out, true, Opcode::Text, &text);
        load.flush(0);
        let deadline = load.round_sent + Duration::from_secs(5);
        while load.delivered < load.opened && Instant::now() < deadline {
            load.turn(&mut events, Duration::from_millis(10));
        }
        if load.delivered < load.opened {
            timeouts += 1;
        } else {
            last_delivery.record(load.round_sent.elapsed());
        }
    }
    let end = Snapshot::take(pid);
    let secs = end.at.duration_since(start.at).as_secs_f64();
    let mut line = format!(
        "duplex-load broadcast n={members} k={rounds} s={size}: last member p50 {:.3} ms, p99 {:.3} ms, \
max {:.3} ms; each delivery p50 {:.3} ms, p99 {:.3} ms; {:.0} deliveries/s, timeouts {timeouts}, \
errors {}, members {}, {}",
        last_delivery.quantile_ms(0.50),
        last_delivery.quantile_ms(0.99),
        last_delivery.max_ms(),
        load.latency.quantile_ms(0.50),
        load.latency.quantile_ms(0.99),
        load.latency.total as f64 / secs,
        load.errors,
        load.opened,
        start.cpu_report(&end),
    );
    if let (Some(pid), Some(base), Some(joined)) = (pid, base, joined) {
        let rss = process_memory(pid, "VmRSS").unwrap_or(0);
        line += &format!(
            ", srv-rss-base {:.1} MB, after-join {:.1} MB ({:.2} kB/member), after-rounds {:.1} MB (+{:.1} MB)",
            mb(base),
            mb(joined),
            joined.saturating_sub(base) as f64 / load.opened.max(1) as f64 / 1e3,
            mb(rss),
            mb(rss.saturating_sub(joined)),
        );
    }
    println!("{line}");
    load.errors += timeouts;
    exit_code(load)
}

/// 3 when anything went wrong, so scripts notice.
fn exit_code(load: &Load) -> ExitCode {
    if load.errors > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.mode {
        Mode::Echo {
            url,
            load: args,
            binary,
            subprotocol,
            common,
        } => Target::websocket(&url, subprotocol).map(|target| {
            let mut load = Load::new(target, Job::Echo, common).expect("poll");
            load.prepare_messages(args.size, binary);
            run_echo(&mut load, args, "echo")
        }),
        Mode::TcpEcho {
            addr,
            load: args,
            join_rooms,
            common,
        } => Target::tcp(&addr).map(|target| {
            let mut load = Load::new(target, Job::Echo, common).expect("poll");
            load.join_rooms = join_rooms;
            load.prepare_messages(args.size, false);
            run_echo(&mut load, args, "tcp-echo")
        }),
        Mode::Idle {
            url,
            conns,
            secs,
            common,
        } => {
            // ws://... holds WebSockets; HOST:PORT holds telnet clients,
            // who read whatever the chat sends them and say nothing.
            let target = if url.starts_with("ws://") {
                Target::websocket(&url, None)
            } else {
                Target::tcp(&url)
            };
            target.map(|target| {
                let mut load = Load::new(target, Job::Idle, common).expect("poll");
                run_idle(&mut load, conns, secs)
            })
        }
        Mode::Broadcast {
            url,
            members,
            rounds,
            size,
            common,
        } => Target::websocket(&url, None).map(|target| {
            let mut load = Load::new(target, Job::Broadcast, common).expect("poll");
            run_broadcast(&mut load, members, rounds, size)
        }),
    };
    result.unwrap_or_else(|e| {
        eprintln!("duplex-load: {e}");
        ExitCode::from(2)
    })
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

    #[test]
    fn finds_the_round() {
        assert_eq!(round_of(b"[lobby] guest-1: bcast 17 xxxx"), Some(17));
        assert_eq!(round_of(b"* guest-2 joined lobby"), None);
    }

    #[test]
    fn parses_targets() {
        let t = Target::websocket("ws://127.0.0.1:9/chat", None).unwrap();
        assert_eq!(t.path.as_deref(), Some("/chat"));
        assert_eq!(t.host, "127.0.0.1:9");
        assert!(Target::websocket("wss://127.0.0.1:9/", None).is_err());
    }
}
