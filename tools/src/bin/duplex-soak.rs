//! duplex-soak: minutes of mixed traffic against a fresh duplex, with every
//! well-behaved client checking what it gets.
//!
//! ```text
//! duplex-soak [--minutes 3 | --seconds 30] [--members 2000] [--rooms 20]
//!             [--echoes 100] [--slow 50] [--churn-per-minute 300] [--server PATH]
//! ```
//!
//! It starts the server itself (the `duplex` next to this program, as
//! `cargo build --release --workspace` puts them, unless `--server` says
//! otherwise) on free loopback ports, with limits that make the interesting
//! things happen within a soak (`--max-output 256KiB --slow-reader-timeout
//! 2s --max-connections 20000`), and drives it from one `mio::Poll` on one
//! thread, with duplex's own client codec. The cast:
//!
//! * **Members** (well-behaved): WebSocket `/chat` and telnet, 3 to 1, spread
//!   over `--rooms` rooms with `/join`, each renamed with `/nick` to a unique
//!   name. One in `--sender-every` also sends `seq NAME N` lines, N = 1, 2,
//!   3, ..., at `--send-rate` a second. Senders start only when every member
//!   is in its room, so each member must see, for each sender of its room
//!   (itself included: the room echoes to the sender), exactly 1, 2, 3, ...:
//!   no gap, no duplicate, no reordering, and at the end everything sent.
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
//!   after the line, some before the handshake is even done.
//!
//! The server's resident memory is read from `/proc/PID/status` before the
//! clients connect, every 10 s during the run, and after every client has
//! gone (when `GET /stats` counts no connection but its own). The report
//! ends with the checks; the exit status is non-zero if one failed.

use clap::Parser;
use duplex::random::random_u64;
use duplex::ws::close::close_payload;
use duplex::ws::decoder::MessageKind;
use duplex::ws::{CloseCode, Decoder, Event, Limits, Opcode, Role};
use duplex_tools::client::HandshakeFailure;
use duplex_tools::client::{check_response, encode_client_frame, handshake_request, random_key};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
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
}

impl Cli {
    fn load_time(&self) -> Duration {
        Duration::from_secs_f64(self.seconds.unwrap_or(self.minutes * 60.0).max(1.0))
    }
}

// ---- the server process -----------------------------------------------------

struct ServerProcess {
    child: Child,
    pid: u32,
    tcp: SocketAddr,
    http: SocketAddr,
    log: PathBuf,
}

/// Starts the server on free loopback ports and reads its one line:
/// `duplex listening tcp=ADDR http=ADDR`.
fn start_server(cli: &Cli) -> Result<ServerProcess, String> {
    let path = match &cli.server {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .map_err(|e| format!("where am I? {e}"))?
            .with_file_name("duplex"),
    };
    // The server is another crate's binary: building the tools alone does
    // not build it.
    if cli.server.is_none() && !path.exists() {
        return Err(format!(
            "no server at {}: build it with `cargo build --release`, or name one with --server",
            path.display()
        ));
    }
    let log = cli
        .server_log
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("duplex-soak-server.log"));
    let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut command = Command::new(&path);
    command
        .args(["--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .args(["--max-output", &cli.max_output])
        .args(["--slow-reader-timeout", &cli.slow_reader_timeout])
        .args(["--max-connections", &cli.max_connections.to_string()])
        .args(["--close-timeout", &cli.close_timeout])
        .args(&cli.server_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file);
    if std::env::var_os("RUST_LOG").is_none() {
        // Warnings only: a slow reader closed is one; a connection is not.
        command.env("RUST_LOG", "duplex=warn");
    }
    println!("server: {} (log: {})", describe(&command), log.display());
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", path.display()))?;
    let pid = child.id();
    // Read the first line on another thread, so waiting for it has a timeout;
    // the thread then drains stdout until the server exits.
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        for _ in lines {}
    });
    let line = match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Some(Ok(line))) => line,
        other => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the server did not say where it listens: {other:?}"));
        }
    };
    let addr = |key: &str| -> Result<SocketAddr, String> {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(key))
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("no {key}ADDR in {line:?}"))
    };
    let (tcp, http) = match (addr("tcp="), addr("http=")) {
        (Ok(tcp), Ok(http)) => (tcp, http),
        (Err(e), _) | (_, Err(e)) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    Ok(ServerProcess {
        child,
        pid,
        tcp,
        http,
        log,
    })
}

fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

impl ServerProcess {
    /// `None` while the server runs; its exit status once it has stopped.
    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown ({e})")),
        }
    }

    /// SIGTERM (graceful shutdown), then SIGKILL if it takes over 10 s.
    fn stop(&mut self) -> String {
        if let Some(status) = self.exited() {
            return format!("had already exited: {status}");
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return format!("stopped by SIGTERM: {status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        "did not stop within 10 s of SIGTERM; killed".to_string()
    }
}

/// The server's resident memory (`VmRSS`), in bytes.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line["VmRSS:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// `GET /stats` on a blocking socket, every step bounded by `timeout`.
/// Returns the JSON body.
fn get_stats(http: SocketAddr, timeout: Duration) -> Result<String, String> {
    let mut stream = std::net::TcpStream::connect_timeout(&http, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let request = format!("GET /stats HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 8192];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
        // The body is one JSON object ending in a newline.
        if answer.ends_with(b"}\n") {
            break;
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").ok_or("no complete answer")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("answered {}", head.lines().next().unwrap_or("")));
    }
    Ok(body.trim().to_string())
}

/// The first number after `"key":` in the stats JSON.
fn json_number(json: &str, key: &str) -> Option<u64> {
    let at = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let digits: String = json[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

// ---- what each client does --------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wire {
    /// `/chat` or `/echo` over WebSocket.
    WebSocket,
    /// The telnet door: lines ending CR LF.
    Telnet,
}

/// Where a connection stands; it only moves forward.
#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// The non-blocking connect is under way.
    Connecting,
    /// The upgrade request is out; reading the `101`.
    Handshake { key: String },
    /// Talking.
    Open,
    /// We said goodbye (close frame or `/quit`); waiting for the server to
    /// close the TCP connection.
    Closing { deadline: Instant },
    /// Finished; freed after this batch of events.
    Done,
}

/// A chat member's way into its room.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Waiting for `* welcome ...`.
    Welcome,
    /// `/join ROOM` sent; waiting for `* you joined ROOM`.
    Joining,
    /// `/nick NAME` sent; waiting for `* OLD is now known as NAME`.
    Naming,
    /// In its room, under its name: every line counts.
    Ready,
}

struct Sender {
    interval: Duration,
    next_at: Instant,
    /// The last number sent; the first line is 1.
    sent: u64,
    /// Bytes of padding after the number (flooders).
    pad: usize,
}

struct Member {
    name: String,
    room: String,
    step: Step,
    sender: Option<Sender>,
    /// Per sender in the room, the last number seen.
    seen: HashMap<String, u64>,
    flooder: bool,
}

struct Echo {
    /// Sent and not yet echoed, oldest first.
    in_flight: VecDeque<(MessageKind, Vec<u8>)>,
    next_at: Instant,
    count: u64,
}

#[derive(Debug, PartialEq, Eq)]
enum SlowStep {
    Welcome,
    Joining,
    /// Not reading, until then.
    Holding {
        until: Instant,
    },
    /// Reading everything, looking for the server's goodbye; if none comes by
    /// the deadline, the server let this reader live.
    Draining {
        deadline: Instant,
    },
}

struct Slow {
    room: String,
    step: SlowStep,
    /// How the server said goodbye, once it has.
    goodbye: Option<String>,
}

impl Slow {
    /// Notes how this reader was let go; only the first word counts.
    fn record(&mut self, t: &mut Tally, outcome: String) {
        if self.goodbye.is_none() {
            *t.slow_outcomes.entry(outcome.clone()).or_default() += 1;
            self.goodbye = Some(outcome);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChurnMode {
    /// Line, then close 1000 or `/quit`, waiting for the server's close.
    Polite,
    /// Line, then the socket is dropped at once.
    DropAfterLine,
    /// Dropped before the greeting (telnet) or the `101` (WebSocket).
    DropEarly,
}

struct Churn {
    mode: ChurnMode,
    room: String,
    number: u64,
}

enum Job {
    Member(Member),
    Echo(Echo),
    Slow(Slow),
    Churn(Churn),
}

impl Job {
    /// A label for counting connections by kind.
    fn kind(&self, wire: Wire) -> &'static str {
        let ws = wire == Wire::WebSocket;
        match self {
            Job::Member(m) if m.flooder => "flooder (ws)",
            Job::Member(_) if ws => "member (ws)",
            Job::Member(_) => "member (telnet)",
            Job::Echo(_) => "echo (ws)",
            Job::Slow(_) if ws => "slow reader (ws)",
            Job::Slow(_) => "slow reader (telnet)",
            Job::Churn(_) if ws => "churn (ws)",
            Job::Churn(_) => "churn (telnet)",
        }
    }

    fn well_behaved(&self) -> bool {
        matches!(self, Job::Member(_) | Job::Echo(_))
    }
}

/// A connection waiting to be opened.
struct Plan {
    wire: Wire,
    job: Job,
}

struct Conn {
    socket: TcpStream,
    wire: Wire,
    phase: Phase,
    job: Job,
    /// Bytes to write; `written` of them are already out.
    out: Vec<u8>,
    written: usize,
    /// Read and not used yet.
    input: Vec<u8>,
    decoder: Decoder,
    /// The last close frame the server sent: code and reason.
    close: Option<(u16, String)>,
}

/// What the server said, owned, once the borrow of the input is over.
enum Incoming {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Close(Option<u16>, String),
}

// ---- counting -----------------------------------------------------------------

#[derive(Default)]
struct Tally {
    opened: BTreeMap<&'static str, u64>,
    connect_failed: BTreeMap<&'static str, u64>,
    members_ready: usize,
    echo_ready: usize,
    seq_sent: u64,
    /// Of `seq_sent`, the flooders' lines.
    flood_sent: u64,
    seq_received: u64,
    /// A number more than one past the last: lines lost (counted in lines).
    seq_missing: u64,
    /// A number at or below the last: a duplicate or a reordering.
    seq_repeated: u64,
    /// A line whose room or name is not what it should be.
    seq_misattributed: u64,
    /// Lines sent that a member had not received when the run ended.
    seq_tail_missing: u64,
    echo_sent: u64,
    echo_received: u64,
    echo_bytes: u64,
    echo_mismatches: u64,
    echo_unanswered: u64,
    /// `!` lines a well-behaved member was sent.
    error_lines: u64,
    /// Well-behaved connections the server closed or broke.
    unexpected_closes: u64,
    slow_started: u64,
    /// How slow readers were let go: "close 1008 ...", "line ...",
    /// "no goodbye", "not closed".
    slow_outcomes: BTreeMap<String, u64>,
    churn_started: u64,
    churn_polite: u64,
    churn_dropped: u64,
    churn_dropped_early: u64,
    churn_failed: u64,
    close_timeouts: u64,
    /// The first few problems, word for word.
    notes: Vec<String>,
}

impl Tally {
    /// Slow readers the server closed as it should: close 1008, or the
    /// telnet line that says why.
    fn slow_closed(&self) -> u64 {
        self.slow_outcomes
            .iter()
            .filter(|(o, _)| o.starts_with("close 1008") || o.starts_with("line \"! too slow"))
            .map(|(_, n)| n)
            .sum()
    }

    fn note(&mut self, text: String) {
        if self.notes.len() < 20 {
            eprintln!("  ! {text}");
            self.notes.push(text);
        }
    }
}

// ---- the loop ---------------------------------------------------------------

/// A reading a chat line answers: `[ROOM] NAME: seq SENDER N ...`.
struct SeqLine<'a> {
    room: &'a str,
    name: &'a str,
    sender: &'a str,
    number: u64,
}

fn parse_seq(line: &str) -> Option<SeqLine<'_>> {
    let (room, rest) = line.strip_prefix('[')?.split_once("] ")?;
    let (name, text) = rest.split_once(": ")?;
    let mut words = text.strip_prefix("seq ")?.split(' ');
    let sender = words.next()?;
    let number = words.next()?.parse().ok()?;
    Some(SeqLine {
        room,
        name,
        sender,
        number,
    })
}

/// Appends one line in the connection's framing.
fn queue_line(wire: Wire, out: &mut Vec<u8>, text: &str) {
    match wire {
        Wire::WebSocket => encode_client_frame(out, true, Opcode::Text, text.as_bytes()),
        Wire::Telnet => {
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Says goodbye the polite way: close 1000, or `/quit`.
fn queue_goodbye(wire: Wire, out: &mut Vec<u8>) {
    match wire {
        Wire::WebSocket => {
            encode_client_frame(out, true, Opcode::Close, &close_payload(CloseCode::NORMAL, ""))
        }
        Wire::Telnet => out.extend_from_slice(b"/quit\r\n"),
    }
}

/// An echo test message: its kind and a size from 1 to 2 KiB alternate, and
/// its bytes depend on the client and the count, so a mix-up shows.
fn echo_message(client: usize, count: u64) -> (MessageKind, Vec<u8>) {
    let len = 1 + (random_u64() % 2048) as usize;
    let seed = client as u64 * 7919 + count;
    if count % 2 == 0 {
        let text = (0..len).map(|i| b'a' + ((seed + i as u64) % 26) as u8).collect();
        (MessageKind::Text, text)
    } else {
        let data = (0..len)
            .map(|i| (seed.wrapping_mul(31) + i as u64) as u8)
            .collect();
        (MessageKind::Binary, data)
    }
}

struct Soak {
    cli: Cli,
    poll: Poll,
    tcp: SocketAddr,
    http: SocketAddr,
    conns: Slab<Conn>,
    /// Connections to open, in order, at most `--max-pending` at a time.
    queue: VecDeque<Plan>,
    /// Connections in `Connecting` or `Handshake`.
    pending: usize,
    /// Connections finished in this batch, freed after it.
    reap: Vec<usize>,
    read_buf: Vec<u8>,
    /// Senders send, echo clients echo, churn churns.
    load_on: bool,
    /// Each sender's room and how many lines it has sent.
    senders: HashMap<String, (String, u64)>,
    /// When [`Soak::tick`] does its round next.
    next_tick: Instant,
    t: Tally,
}

/// How often the clock's work is done: sends, holds, deadlines.
const TICK: Duration = Duration::from_millis(5);

impl Soak {
    fn new(cli: Cli, tcp: SocketAddr, http: SocketAddr) -> io::Result<Soak> {
        Ok(Soak {
            cli,
            poll: Poll::new()?,
            tcp,
            http,
            conns: Slab::new(),
            queue: VecDeque::new(),
            pending: 0,
            reap: Vec::new(),
            read_buf: vec![0; 256 * 1024],
            load_on: false,
            senders: HashMap::new(),
            next_tick: Instant::now(),
            t: Tally::default(),
        })
    }

    /// One turn: wait for readiness (at most `timeout`), handle every event,
    /// free what finished. Edge-triggered like the server: read and write
    /// until `WouldBlock`.
    fn turn(&mut self, events: &mut Events, timeout: Duration) {
        if let Err(e) = self.poll.poll(events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                panic!("poll failed: {e}");
            }
            return;
        }
        for event in events.iter() {
            let i = event.token().0;
            let Some(conn) = self.conns.get(i) else {
                continue;
            };
            if conn.phase == Phase::Connecting {
                self.on_connected(i);
            }
            if event.is_writable() {
                self.flush(i);
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                self.on_readable(i);
            }
        }
        self.reap_finished();
    }

    fn reap_finished(&mut self) {
        for i in std::mem::take(&mut self.reap) {
            if let Some(mut conn) = self.conns.try_remove(i) {
                let _ = self.poll.registry().deregister(&mut conn.socket);
            }
        }
    }

    /// Marks a connection finished; it is freed (and its socket closed)
    /// after this batch of events.
    fn finish(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        if conn.phase == Phase::Done {
            return;
        }
        if matches!(conn.phase, Phase::Connecting | Phase::Handshake { .. }) {
            self.pending -= 1;
        }
        conn.phase = Phase::Done;
        self.reap.push(i);
    }

    /// A connection went away without us asking.
    fn lost(&mut self, i: usize, why: &str) {
        let conn = &mut self.conns[i];
        if conn.phase == Phase::Done {
            return;
        }
        let kind = conn.job.kind(conn.wire);
        let close = conn.close.clone();
        match &mut conn.job {
            Job::Member(_) | Job::Echo(_) => {
                if matches!(conn.phase, Phase::Connecting | Phase::Handshake { .. }) {
                    *self.t.connect_failed.entry(kind).or_default() += 1;
                }
                if !matches!(conn.phase, Phase::Closing { .. }) {
                    self.t.unexpected_closes += 1;
                    self.t
                        .note(format!("{kind} #{i}: {why} (close frame: {close:?})"));
                }
            }
            Job::Slow(slow) => {
                if slow.goodbye.is_none() {
                    let outcome = match (&slow.step, close) {
                        (_, Some((code, reason))) => format!("close {code} {reason:?}"),
                        (SlowStep::Draining { .. }, None) => format!("no goodbye ({why})"),
                        (step, None) => format!("lost before draining, in {step:?} ({why})"),
                    };
                    slow.record(&mut self.t, outcome);
                }
            }
            Job::Churn(churn) => {
                if matches!(conn.phase, Phase::Closing { .. }) && churn.mode == ChurnMode::Polite {
                    self.t.churn_polite += 1;
                } else {
                    self.t.churn_failed += 1;
                    self.t.note(format!("{kind} #{i}: {why}"));
                }
            }
        }
        self.finish(i);
    }

    // -- opening --

    fn open_queued(&mut self) {
        while self.pending < self.cli.max_pending {
            let Some(plan) = self.queue.pop_front() else {
                return;
            };
            let addr = match plan.wire {
                Wire::Telnet => self.tcp,
                Wire::WebSocket => self.http,
            };
            let kind = plan.job.kind(plan.wire);
            let mut socket = match TcpStream::connect(addr) {
                Ok(socket) => socket,
                Err(e) => {
                    *self.t.connect_failed.entry(kind).or_default() += 1;
                    self.t.note(format!("{kind}: connect: {e}"));
                    if plan.job.well_behaved() {
                        self.t.unexpected_closes += 1;
                    }
                    continue;
                }
            };
            let entry = self.conns.vacant_entry();
            let token = Token(entry.key());
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut socket, token, Interest::READABLE | Interest::WRITABLE)
            {
                self.t.note(format!("{kind}: register: {e}"));
                continue;
            }
            entry.insert(Conn {
                socket,
                wire: plan.wire,
                phase: Phase::Connecting,
                job: plan.job,
                out: Vec::new(),
                written: 0,
                input: Vec::new(),
                decoder: Decoder::new(Role::Client, Limits::default()),
                close: None,
            });
            self.pending += 1;
        }
    }

    fn on_connected(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        match conn.socket.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => return self.lost(i, &format!("connect: {e}")),
        }
        match conn.socket.peer_addr() {
            Ok(_) => {}
            // Not yet: a spurious event.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
            Err(e) => return self.lost(i, &format!("connect: {e}")),
        }
        let _ = conn.socket.set_nodelay(true);
        *self.t.opened.entry(conn.job.kind(conn.wire)).or_default() += 1;
        match conn.wire {
            Wire::WebSocket => {
                let key = random_key();
                let (path, protocols): (&str, &[&str]) = match conn.job {
                    Job::Echo(_) => ("/echo", &[]),
                    _ => ("/chat", &["chat"]),
                };
                let host = self.http.to_string();
                conn.out
                    .extend_from_slice(&handshake_request(&host, path, &key, protocols));
                conn.phase = Phase::Handshake { key };
                self.flush(i);
                if let Job::Churn(churn) = &self.conns[i].job {
                    if churn.mode == ChurnMode::DropEarly {
                        self.t.churn_dropped_early += 1;
                        self.finish(i);
                    }
                }
            }
            Wire::Telnet => {
                if let Job::Churn(churn) = &conn.job {
                    if churn.mode == ChurnMode::DropEarly {
                        self.t.churn_dropped_early += 1;
                        return self.finish(i);
                    }
                }
                conn.phase = Phase::Open;
                self.pending -= 1;
                self.on_open(i);
            }
        }
    }

    /// The connection speaks the chat or echo protocol now.
    fn on_open(&mut self, i: usize) {
        if let Job::Echo(echo) = &mut self.conns[i].job {
            echo.next_at = Instant::now();
            self.t.echo_ready += 1;
        }
    }

    // -- reading --

    fn on_readable(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        if matches!(conn.phase, Phase::Connecting | Phase::Done) {
            return;
        }
        if let Job::Slow(Slow {
            step: SlowStep::Holding { .. },
            ..
        }) = conn.job
        {
            // The point of a slow reader: the bytes stay where they are.
            return;
        }
        let mut buf = std::mem::take(&mut self.read_buf);
        let mut ended = None;
        loop {
            match conn.socket.read(&mut buf) {
                Ok(0) => {
                    ended = Some("closed by the server".to_string());
                    break;
                }
                Ok(n) => conn.input.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    ended = Some(format!("read: {e}"));
                    break;
                }
            }
        }
        self.read_buf = buf;
        self.process_input(i);
        if let Some(why) = ended {
            if self.conns[i].phase != Phase::Done {
                self.on_eof(i, &why);
            }
        } else {
            self.flush(i);
        }
    }

    /// Turns the bytes read into messages and handles each.
    fn process_input(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        if let Phase::Handshake { key } = &conn.phase {
            let offered: &[&str] = if matches!(conn.job, Job::Echo(_)) {
                &[]
            } else {
                &["chat"]
            };
            match check_response(&conn.input, key, offered) {
                Ok(accepted) => {
                    conn.input.drain(..accepted.head_len);
                    conn.phase = Phase::Open;
                    self.pending -= 1;
                    self.on_open(i);
                }
                Err(HandshakeFailure::Incomplete) => return,
                Err(e) => return self.lost(i, &format!("handshake: {e}")),
            }
        }
        let conn = &mut self.conns[i];
        let mut incoming = Vec::new();
        let mut broken = None;
        match conn.wire {
            Wire::WebSocket => {
                let mut pos = 0;
                loop {
                    match conn.decoder.decode(&mut conn.input[pos..]) {
                        Ok((used, event)) => {
                            pos += used;
                            let Some(event) = event else { break };
                            incoming.push(match event {
                                Event::Message(MessageKind::Text, p) => {
                                    Incoming::Text(String::from_utf8_lossy(p).into_owned())
                                }
                                Event::Message(MessageKind::Binary, p) => Incoming::Binary(p.to_vec()),
                                Event::Ping(p) => Incoming::Ping(p.to_vec()),
                                Event::Pong(_) => continue,
                                Event::Close(frame) => Incoming::Close(
                                    frame.as_ref().map(|f| f.code.0),
                                    frame.map_or(String::new(), |f| f.reason.to_string()),
                                ),
                            });
                        }
                        Err(e) => {
                            broken = Some(format!("bad frame from the server: {e}"));
                            break;
                        }
                    }
                }
                conn.input.drain(..pos);
            }
            Wire::Telnet => {
                let mut pos = 0;
                while let Some(nl) = conn.input[pos..].iter().position(|&b| b == b'\n') {
                    let line = &conn.input[pos..pos + nl];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    incoming.push(Incoming::Text(String::from_utf8_lossy(line).into_owned()));
                    pos += nl + 1;
                }
                conn.input.drain(..pos);
            }
        }
        for message in incoming {
            if self.conns[i].phase == Phase::Done {
                return;
            }
            self.on_message(i, message);
        }
        if let Some(why) = broken {
            self.lost(i, &why);
        }
    }

    fn on_message(&mut self, i: usize, message: Incoming) {
        let conn = &mut self.conns[i];
        match message {
            Incoming::Ping(payload) => {
                encode_client_frame(&mut conn.out, true, Opcode::Pong, &payload);
            }
            Incoming::Close(code, reason) => {
                conn.close = Some((code.unwrap_or(1005), reason.clone()));
                if let Job::Slow(slow) = &mut conn.job {
                    slow.record(&mut self.t, format!("close {} {reason:?}", code.unwrap_or(1005)));
                }
                if !matches!(conn.phase, Phase::Closing { .. }) {
                    // Answer with the same code (§5.5.1) and wait for the
                    // server to close the TCP connection.
                    let payload = code.map_or(Vec::new(), |c| close_payload(CloseCode(c), ""));
                    encode_client_frame(&mut conn.out, true, Opcode::Close, &payload);
                    conn.phase = Phase::Closing {
                        deadline: Instant::now() + Duration::from_secs(10),
                    };
                }
            }
            Incoming::Text(line) => self.on_line(i, &line),
            Incoming::Binary(data) => self.on_binary(i, data),
        }
    }

    fn on_line(&mut self, i: usize, line: &str) {
        let conn = &mut self.conns[i];
        let wire = conn.wire;
        match &mut conn.job {
            Job::Member(member) => {
                if line.starts_with('!') {
                    self.t.error_lines += 1;
                    self.t.note(format!("member {}: {line}", member.name));
                    return;
                }
                match member.step {
                    Step::Welcome if line.starts_with("* welcome") => {
                        queue_line(wire, &mut conn.out, &format!("/join {}", member.room));
                        member.step = Step::Joining;
                    }
                    Step::Joining if line == format!("* you joined {}", member.room) => {
                        queue_line(wire, &mut conn.out, &format!("/nick {}", member.name));
                        member.step = Step::Naming;
                    }
                    Step::Naming
                        if line.starts_with("* guest-")
                            && line.ends_with(&format!(" is now known as {}", member.name)) =>
                    {
                        member.step = Step::Ready;
                        self.t.members_ready += 1;
                    }
                    Step::Ready | Step::Naming => {
                        if let Some(seq) = parse_seq(line) {
                            check_seq(&mut self.t, member, &seq);
                        }
                    }
                    _ => {}
                }
            }
            Job::Echo(_) => {
                let copy = line.as_bytes().to_vec();
                self.check_echo(i, MessageKind::Text, copy);
            }
            Job::Slow(slow) => match slow.step {
                SlowStep::Welcome if line.starts_with("* welcome") => {
                    queue_line(wire, &mut conn.out, &format!("/join {}", slow.room));
                    slow.step = SlowStep::Joining;
                }
                SlowStep::Joining if line == format!("* you joined {}", slow.room) => {
                    let hold = Duration::from_secs_f64(self.cli.slow_hold);
                    slow.step = SlowStep::Holding {
                        until: Instant::now() + hold,
                    };
                }
                SlowStep::Draining { .. } if line.starts_with('!') => {
                    slow.record(&mut self.t, format!("line {line:?}"));
                }
                _ => {}
            },
            Job::Churn(churn) => {
                if line.starts_with("* welcome") {
                    queue_line(wire, &mut conn.out, &format!("/join {}", churn.room));
                    queue_line(wire, &mut conn.out, &format!("churn {}", churn.number));
                    match churn.mode {
                        ChurnMode::Polite => {
                            queue_goodbye(wire, &mut conn.out);
                            conn.phase = Phase::Closing {
                                deadline: Instant::now() + Duration::from_secs(10),
                            };
                        }
                        ChurnMode::DropAfterLine | ChurnMode::DropEarly => {
                            self.flush(i);
                            self.t.churn_dropped += 1;
                            self.finish(i);
                        }
                    }
                }
            }
        }
    }

    fn on_binary(&mut self, i: usize, data: Vec<u8>) {
        if let Job::Echo(_) = self.conns[i].job {
            self.check_echo(i, MessageKind::Binary, data);
        }
    }

    fn check_echo(&mut self, i: usize, kind: MessageKind, data: Vec<u8>) {
        let Job::Echo(echo) = &mut self.conns[i].job else {
            return;
        };
        self.t.echo_received += 1;
        self.t.echo_bytes += data.len() as u64;
        match echo.in_flight.pop_front() {
            Some((sent_kind, sent)) if sent_kind == kind && sent == data => {}
            Some((sent_kind, sent)) => {
                self.t.echo_mismatches += 1;
                let at = sent.iter().zip(&data).position(|(a, b)| a != b);
                self.t.note(format!(
                    "echo #{i}: sent {sent_kind:?} of {} bytes, got {kind:?} of {} (first difference at {at:?})",
                    sent.len(),
                    data.len()
                ));
            }
            None => {
                self.t.echo_mismatches += 1;
                self.t.note(format!(
                    "echo #{i}: an echo of nothing sent ({} bytes)",
                    data.len()
                ));
            }
        }
    }

    /// The server closed the TCP connection, or it broke.
    fn on_eof(&mut self, i: usize, why: &str) {
        let conn = &mut self.conns[i];
        if matches!(conn.phase, Phase::Closing { .. }) {
            if let Job::Churn(churn) = &conn.job {
                if churn.mode == ChurnMode::Polite {
                    self.t.churn_polite += 1;
                }
            }
            if let Job::Slow(slow) = &mut conn.job {
                slow.record(&mut self.t, "closed by us (run over)".to_string());
            }
            return self.finish(i);
        }
        self.lost(i, why);
    }

    // -- writing --

    fn flush(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        if matches!(conn.phase, Phase::Connecting | Phase::Done) {
            return;
        }
        while conn.written < conn.out.len() {
            match conn.socket.write(&conn.out[conn.written..]) {
                Ok(n) => conn.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.lost(i, &format!("write: {e}")),
            }
        }
        conn.out.clear();
        conn.written = 0;
    }

    // -- the clock's work --

    /// Everything that happens because time passed: lines and echoes due,
    /// slow readers whose hold is over, goodbyes that took too long.
    fn tick(&mut self, now: Instant) {
        // A turn can be much shorter than this; visiting every connection
        // each time would cost more than the traffic.
        if now < self.next_tick {
            return;
        }
        self.next_tick = now + TICK;
        self.open_queued();
        let keys: Vec<usize> = self.conns.iter().map(|(i, _)| i).collect();
        for i in keys {
            let conn = &mut self.conns[i];
            if let Phase::Closing { deadline } = conn.phase {
                if now >= deadline {
                    self.t.close_timeouts += 1;
                    let kind = conn.job.kind(conn.wire);
                    self.t
                        .note(format!("{kind} #{i}: no close from the server within 10 s"));
                    self.finish(i);
                    continue;
                }
            }
            if conn.phase != Phase::Open {
                continue;
            }
            let wire = conn.wire;
            match &mut conn.job {
                Job::Member(Member {
                    name,
                    room,
                    sender: Some(sender),
                    step: Step::Ready,
                    ..
                }) if self.load_on => {
                    while now >= sender.next_at {
                        sender.sent += 1;
                        sender.next_at += sender.interval;
                        let mut text = format!("seq {name} {}", sender.sent);
                        if sender.pad > 0 {
                            text.push(' ');
                            text.extend(std::iter::repeat_n('x', sender.pad));
                        }
                        queue_line(wire, &mut conn.out, &text);
                        self.t.seq_sent += 1;
                        if sender.pad > 0 {
                            self.t.flood_sent += 1;
                        }
                        self.senders.insert(name.clone(), (room.clone(), sender.sent));
                    }
                    self.flush(i);
                }
                Job::Echo(echo) if self.load_on => {
                    let interval = Duration::from_secs_f64(1.0 / self.cli.echo_rate.max(0.001));
                    while now >= echo.next_at && echo.in_flight.len() < self.cli.echo_depth {
                        echo.next_at += interval;
                        echo.count += 1;
                        let (kind, data) = echo_message(i, echo.count);
                        encode_client_frame(&mut conn.out, true, kind.opcode(), &data);
                        echo.in_flight.push_back((kind, data));
                        self.t.echo_sent += 1;
                    }
                    // Behind because the server was slow to answer: do not
                    // make up for it in a burst.
                    if now >= echo.next_at + interval {
                        echo.next_at = now;
                    }
                    self.flush(i);
                }
                Job::Slow(slow) => match slow.step {
                    SlowStep::Holding { until } if now >= until => {
                        slow.step = SlowStep::Draining {
                            deadline: now + Duration::from_secs(10),
                        };
                        self.on_readable(i);
                    }
                    SlowStep::Draining { deadline } if now >= deadline && slow.goodbye.is_none() => {
                        // The server let it live: say so, and leave.
                        slow.record(&mut self.t, "not closed by the server".to_string());
                        queue_goodbye(wire, &mut conn.out);
                        conn.phase = Phase::Closing {
                            deadline: now + Duration::from_secs(10),
                        };
                        self.flush(i);
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        self.reap_finished();
    }

    // -- the cast --

    fn plan_members(&mut self) {
        let cli = &self.cli;
        for m in 0..cli.members {
            let wire = if cli.telnet_every > 0 && m % cli.telnet_every == cli.telnet_every - 1 {
                Wire::Telnet
            } else {
                Wire::WebSocket
            };
            let is_sender = cli.sender_every > 0 && m % cli.sender_every == 0;
            let sender = is_sender.then(|| Sender {
                interval: Duration::from_secs_f64(1.0 / cli.send_rate.max(0.001)),
                next_at: Instant::now(),
                sent: 0,
                pad: 0,
            });
            self.queue.push_back(Plan {
                wire,
                job: Job::Member(Member {
                    name: format!("m{m}"),
                    room: format!("room-{}", m % cli.rooms.max(1)),
                    step: Step::Welcome,
                    sender,
                    seen: HashMap::new(),
                    flooder: false,
                }),
            });
        }
        for f in 0..cli.flood_rooms {
            self.queue.push_back(Plan {
                wire: Wire::WebSocket,
                job: Job::Member(Member {
                    name: format!("flood{f}"),
                    room: format!("flood-{f}"),
                    step: Step::Welcome,
                    sender: Some(Sender {
                        interval: Duration::from_secs_f64(1.0 / cli.flood_rate.max(0.001)),
                        next_at: Instant::now(),
                        sent: 0,
                        pad: cli.flood_size,
                    }),
                    seen: HashMap::new(),
                    flooder: true,
                }),
            });
        }
        for _ in 0..cli.echoes {
            self.queue.push_back(Plan {
                wire: Wire::WebSocket,
                job: Job::Echo(Echo {
                    in_flight: VecDeque::new(),
                    next_at: Instant::now(),
                    count: 0,
                }),
            });
        }
    }

    fn plan_slow(&mut self, n: u64) {
        let wire = if n % 4 == 3 { Wire::Telnet } else { Wire::WebSocket };
        let room = format!("flood-{}", n % self.cli.flood_rooms.max(1) as u64);
        self.t.slow_started += 1;
        self.queue.push_back(Plan {
            wire,
            job: Job::Slow(Slow {
                room,
                step: SlowStep::Welcome,
                goodbye: None,
            }),
        });
    }

    fn plan_churn(&mut self, n: u64) {
        let wire = if n % 4 == 3 { Wire::Telnet } else { Wire::WebSocket };
        let mode = match n % 5 {
            0 | 1 => ChurnMode::Polite,
            2 | 3 => ChurnMode::DropAfterLine,
            _ => ChurnMode::DropEarly,
        };
        let room = format!("room-{}", random_u64() % self.cli.rooms.max(1) as u64);
        self.t.churn_started += 1;
        self.queue.push_back(Plan {
            wire,
            job: Job::Churn(Churn {
                mode,
                room,
                number: n,
            }),
        });
    }

    /// Staggers the senders' first lines over one interval, so a second's
    /// lines do not all leave at once.
    fn start_senders(&mut self, now: Instant) {
        for (_, conn) in self.conns.iter_mut() {
            if let Job::Member(Member {
                sender: Some(sender), ..
            }) = &mut conn.job
            {
                let offset = (random_u64() % 1_000_000) as f64 / 1e6;
                sender.next_at = now + sender.interval.mul_f64(offset);
            }
        }
        self.load_on = true;
    }

    // -- the end --

    fn members(&self) -> impl Iterator<Item = &Member> {
        self.conns.iter().filter_map(|(_, c)| match &c.job {
            Job::Member(m) => Some(m),
            _ => None,
        })
    }

    /// Lines sent to each member's room that it has not received yet.
    fn lines_outstanding(&self) -> u64 {
        let mut missing = 0;
        for member in self.members().filter(|m| m.step == Step::Ready) {
            for (sender, (room, sent)) in &self.senders {
                if *room == member.room {
                    missing += sent.saturating_sub(member.seen.get(sender).copied().unwrap_or(0));
                }
            }
        }
        missing
    }

    fn echoes_outstanding(&self) -> u64 {
        self.conns
            .iter()
            .map(|(_, c)| match &c.job {
                Job::Echo(e) => e.in_flight.len() as u64,
                _ => 0,
            })
            .sum()
    }

    fn count_jobs(&self, pick: fn(&Job) -> bool) -> usize {
        self.conns.iter().filter(|(_, c)| pick(&c.job)).count()
    }

    /// Lines each member should have had: per sender, its lines times the
    /// members of its room.
    fn seq_expected(&self) -> u64 {
        let mut room_size: HashMap<&str, u64> = HashMap::new();
        for member in self.members().filter(|m| m.step == Step::Ready) {
            *room_size.entry(member.room.as_str()).or_default() += 1;
        }
        self.senders
            .values()
            .map(|(room, sent)| sent * room_size.get(room.as_str()).copied().unwrap_or(0))
            .sum()
    }

    /// Every connection still open says goodbye politely.
    fn close_all(&mut self) {
        let now = Instant::now();
        let keys: Vec<usize> = self.conns.iter().map(|(i, _)| i).collect();
        for i in keys {
            let conn = &mut self.conns[i];
            match conn.phase {
                Phase::Open => {
                    queue_goodbye(conn.wire, &mut conn.out);
                    conn.phase = Phase::Closing {
                        deadline: now + Duration::from_secs(10),
                    };
                    self.flush(i);
                }
                Phase::Connecting | Phase::Handshake { .. } => self.finish(i),
                Phase::Closing { .. } | Phase::Done => {}
            }
        }
        self.reap_finished();
    }
}

/// Checks one `seq` line against what the member saw from that sender.
fn check_seq(t: &mut Tally, member: &mut Member, seq: &SeqLine<'_>) {
    t.seq_received += 1;
    if seq.room != member.room || seq.name != seq.sender {
        t.seq_misattributed += 1;
        t.note(format!(
            "member {} in {}: line from {} in [{}] says it is from {}",
            member.name, member.room, seq.name, seq.room, seq.sender
        ));
        return;
    }
    let last = member.seen.get(seq.sender).copied().unwrap_or(0);
    if seq.number == last + 1 {
        // The one case that is right.
    } else if seq.number > last + 1 {
        t.seq_missing += seq.number - last - 1;
        t.note(format!(
            "member {}: from {} got {} after {last} (gap)",
            member.name, seq.sender, seq.number
        ));
    } else {
        t.seq_repeated += 1;
        t.note(format!(
            "member {}: from {} got {} after {last} (duplicate or reordered)",
            member.name, seq.sender, seq.number
        ));
        return;
    }
    match member.seen.get_mut(seq.sender) {
        Some(last) => *last = seq.number,
        None => {
            member.seen.insert(seq.sender.to_string(), seq.number);
        }
    }
}

// ---- the run ----------------------------------------------------------------

struct RssSamples {
    before: Option<u64>,
    during: Vec<(Duration, u64)>,
    after: Option<u64>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut server = match start_server(&cli) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("duplex-soak: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "server pid {} listening tcp={} http={}",
        server.pid, server.tcp, server.http
    );
    let outcome = run(cli, &mut server);
    let stopped = server.stop();
    println!("server: {stopped}");
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("duplex-soak: {e} (server log: {})", server.log.display());
            ExitCode::FAILURE
        }
    }
}

/// Runs the whole soak; `Ok(true)` if every check passed.
fn run(cli: Cli, server: &mut ServerProcess) -> Result<bool, String> {
    let started = Instant::now();
    let load_time = cli.load_time();
    std::thread::sleep(Duration::from_millis(300));
    let stats_before = get_stats(server.http, Duration::from_secs(5))?;
    let mut rss = RssSamples {
        before: rss_bytes(server.pid),
        during: Vec::new(),
        after: None,
    };
    let mut soak = Soak::new(cli.clone(), server.tcp, server.http).map_err(|e| e.to_string())?;
    let mut events = Events::with_capacity(4096);
    let step = Duration::from_millis(10);
    let mut crashed: Option<String> = None;
    let mut last_check = Instant::now();
    // Keeps an eye on the server while the loop turns.
    let mut server_alive = |server: &mut ServerProcess, crashed: &mut Option<String>| {
        if last_check.elapsed() >= Duration::from_millis(500) {
            last_check = Instant::now();
            if let Some(status) = server.exited() {
                *crashed = Some(status);
            }
        }
        crashed.is_none()
    };

    // 1. Setup: members into their rooms under their names, echo clients open.
    soak.plan_members();
    let wanted = cli.members + cli.flood_rooms;
    let setup_deadline = Instant::now() + Duration::from_secs_f64(cli.setup_timeout);
    println!(
        "setup: {} members ({} flooders), {} echo clients ...",
        wanted, cli.flood_rooms, cli.echoes
    );
    while (soak.t.members_ready < wanted || soak.t.echo_ready < cli.echoes)
        && Instant::now() < setup_deadline
        && server_alive(server, &mut crashed)
    {
        soak.turn(&mut events, step);
        soak.tick(Instant::now());
        // Nothing left on its way: some did not make it, and waiting longer
        // will not change that.
        let on_the_way = soak.count_jobs(|j| matches!(j, Job::Member(m) if m.step != Step::Ready));
        if on_the_way == 0 && soak.pending == 0 && soak.queue.is_empty() && soak.t.echo_ready < cli.echoes {
            break;
        }
        if on_the_way == 0 && soak.pending == 0 && soak.queue.is_empty() && soak.t.members_ready < wanted {
            break;
        }
    }
    let setup_time = started.elapsed();
    println!(
        "setup: {}/{} members ready, {}/{} echo clients, in {:.1} s",
        soak.t.members_ready,
        wanted,
        soak.t.echo_ready,
        cli.echoes,
        setup_time.as_secs_f64()
    );

    // 2. Load.
    let load_start = Instant::now();
    soak.start_senders(load_start);
    let slow_spread = (load_time.as_secs_f64() / 2.0)
        .min(load_time.as_secs_f64() - cli.slow_hold - 5.0)
        .max(0.0);
    let churn_interval = Duration::from_secs_f64(60.0 / cli.churn_per_minute.max(0.001));
    let mut next_churn = load_start;
    let mut churn_count = 0u64;
    let mut slow_count = 0u64;
    let mut next_sample = load_start + Duration::from_secs(10);
    while crashed.is_none() && load_start.elapsed() < load_time && server_alive(server, &mut crashed) {
        soak.turn(&mut events, step);
        let now = Instant::now();
        let into = now.duration_since(load_start);
        while slow_count < cli.slow as u64 {
            let due = if cli.slow > 1 {
                slow_spread * slow_count as f64 / (cli.slow - 1) as f64
            } else {
                0.0
            };
            if into.as_secs_f64() < due {
                break;
            }
            soak.plan_slow(slow_count);
            slow_count += 1;
        }
        if cli.churn_per_minute > 0.0 {
            while now >= next_churn {
                soak.plan_churn(churn_count);
                churn_count += 1;
                next_churn += churn_interval;
            }
        }
        soak.tick(now);
        if now >= next_sample {
            next_sample += Duration::from_secs(10);
            let sample = rss_bytes(server.pid).unwrap_or(0);
            rss.during.push((into, sample));
            let t = &soak.t;
            println!(
                "[{:>4.0} s] conns {:>5} | seq sent {:>7} recv {:>9} | echoes {:>7} | slow closed {:>3} | churn {:>5} | rss {:.1} MiB",
                into.as_secs_f64(),
                soak.conns.len(),
                t.seq_sent,
                t.seq_received,
                t.echo_received,
                t.slow_closed(),
                t.churn_started,
                mb(sample)
            );
        }
    }
    let load_elapsed = load_start.elapsed();
    if let Some(sample) = rss_bytes(server.pid) {
        rss.during.push((load_elapsed, sample));
    }

    // 3. Settle: no new lines; the last ones and the echoes arrive; slow
    // readers still holding look for their goodbye now.
    soak.load_on = false;
    soak.queue.retain(|plan| !matches!(plan.job, Job::Churn(_)));
    let now = Instant::now();
    for (_, conn) in soak.conns.iter_mut() {
        if let Job::Slow(slow) = &mut conn.job {
            if let SlowStep::Holding { until } = &mut slow.step {
                *until = now;
            }
        }
    }
    let settle_start = Instant::now();
    let settle_deadline = settle_start + Duration::from_secs_f64(cli.settle_timeout);
    let mut next_look = settle_start;
    while Instant::now() < settle_deadline && server_alive(server, &mut crashed) {
        soak.turn(&mut events, step);
        soak.tick(Instant::now());
        // Counting what is outstanding visits every member: not every turn.
        if Instant::now() < next_look {
            continue;
        }
        next_look = Instant::now() + Duration::from_millis(100);
        let busy = soak.count_jobs(|j| matches!(j, Job::Slow(_) | Job::Churn(_)));
        if busy == 0
            && soak.queue.is_empty()
            && soak.lines_outstanding() == 0
            && soak.echoes_outstanding() == 0
        {
            break;
        }
    }
    let settle_time = settle_start.elapsed();
    soak.t.seq_tail_missing = soak.lines_outstanding();
    soak.t.echo_unanswered = soak.echoes_outstanding();
    let seq_expected = soak.seq_expected();
    let leftover_slow = soak.count_jobs(|j| matches!(j, Job::Slow(_)));
    let leftover_churn = soak.count_jobs(|j| matches!(j, Job::Churn(_)));

    // 4. Everyone leaves politely; wait for the server to close each one.
    let members_at_end = soak.count_jobs(|j| matches!(j, Job::Member(_)));
    let close_start = Instant::now();
    soak.close_all();
    let close_deadline = Instant::now() + Duration::from_secs(15);
    while !soak.conns.is_empty() && Instant::now() < close_deadline && server_alive(server, &mut crashed) {
        soak.turn(&mut events, step);
        soak.tick(Instant::now());
    }
    let close_time = close_start.elapsed();
    let left_open = soak.conns.len();
    let keys: Vec<usize> = soak.conns.iter().map(|(i, _)| i).collect();
    for i in keys {
        soak.finish(i);
    }
    soak.reap_finished();

    // 5. After: the server counts no connection but the one asking.
    let mut stats_after = String::new();
    let mut others = u64::MAX;
    // A connection the server is closing lingers at most its close timeout:
    // wait that long and more, and say how long it took.
    let close_timeout = duplex::config::parse_duration(&cli.close_timeout).unwrap_or(Duration::from_secs(5));
    let zero_start = Instant::now();
    let zero_deadline = zero_start + close_timeout + Duration::from_secs(15);
    while crashed.is_none() && Instant::now() < zero_deadline {
        match get_stats(server.http, Duration::from_secs(5)) {
            Ok(json) => {
                others = json_number(&json, "total").unwrap_or(1).saturating_sub(1);
                stats_after = json;
                if others == 0 {
                    break;
                }
            }
            Err(e) => stats_after = format!("GET /stats failed: {e}"),
        }
        std::thread::sleep(Duration::from_millis(250));
        server_alive(server, &mut crashed);
    }
    let zero_time = zero_start.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    rss.after = rss_bytes(server.pid);
    server_alive(server, &mut crashed);

    // 6. The report.
    let t = &soak.t;
    let peak = rss.during.iter().map(|(_, b)| *b).max().unwrap_or(0);
    println!();
    println!("==== duplex-soak report ====");
    println!(
        "durations: setup {:.1} s, load {:.1} s, settle {:.1} s, goodbyes {:.1} s, until /stats shows 0 {:.1} s, total {:.1} s",
        setup_time.as_secs_f64(),
        load_elapsed.as_secs_f64(),
        settle_time.as_secs_f64(),
        close_time.as_secs_f64(),
        zero_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    println!("connections opened, by kind:");
    for (kind, n) in &t.opened {
        let failed = t.connect_failed.get(kind).copied().unwrap_or(0);
        println!(
            "  {kind:<22} {n:>6}{}",
            if failed > 0 {
                format!(" ({failed} failed to connect)")
            } else {
                String::new()
            }
        );
    }
    println!(
        "chat: {} members ready of {} ({} senders at {}/s, {} flooders at {}/s x {} B)",
        t.members_ready,
        wanted,
        soak.senders.len().saturating_sub(cli.flood_rooms),
        cli.send_rate,
        cli.flood_rooms,
        cli.flood_rate,
        cli.flood_size
    );
    println!(
        "  seq lines sent {} ({} by senders, {} by flooders), received {} (expected {}), {:.0} sent/s",
        t.seq_sent,
        t.seq_sent - t.flood_sent,
        t.flood_sent,
        t.seq_received,
        seq_expected,
        t.seq_sent as f64 / load_elapsed.as_secs_f64()
    );
    println!(
        "  violations: missing {} | duplicate/reordered {} | misattributed {} | not received by the end {}",
        t.seq_missing, t.seq_repeated, t.seq_misattributed, t.seq_tail_missing
    );
    println!("  error lines to members: {}", t.error_lines);
    println!(
        "echo: {} clients, sent {}, received {} ({:.1} MB), mismatches {}, unanswered {}",
        t.echo_ready,
        t.echo_sent,
        t.echo_received,
        t.echo_bytes as f64 / 1e6,
        t.echo_mismatches,
        t.echo_unanswered
    );
    println!(
        "slow readers: {} started (hold {} s), {} still open at the end",
        t.slow_started, cli.slow_hold, leftover_slow
    );
    for (outcome, n) in &t.slow_outcomes {
        println!("  {n:>4} x {outcome}");
    }
    println!(
        "churn: {} started ({:.0}/min): {} polite, {} dropped after their line, {} dropped early, {} failed, {} still open",
        t.churn_started,
        t.churn_started as f64 * 60.0 / load_elapsed.as_secs_f64(),
        t.churn_polite,
        t.churn_dropped,
        t.churn_dropped_early,
        t.churn_failed,
        leftover_churn
    );
    println!(
        "well-behaved closed by the server: {}, goodbyes without the server's close: {}, left open: {left_open}",
        t.unexpected_closes, t.close_timeouts
    );
    let samples: Vec<String> = rss
        .during
        .iter()
        .map(|(at, b)| format!("{:.0}s {:.1}", at.as_secs_f64(), mb(*b)))
        .collect();
    println!(
        "server RSS: before {:.1} MiB, peak during {:.1} MiB, after {:.1} MiB",
        mb(rss.before.unwrap_or(0)),
        mb(peak),
        mb(rss.after.unwrap_or(0))
    );
    println!("  samples (MiB): {}", samples.join(", "));
    println!("GET /stats before: {stats_before}");
    println!("GET /stats after:  {stats_after}");
    if let Some(status) = &crashed {
        println!("THE SERVER EXITED during the run: {status}");
    }

    let slow_closed = t.slow_closed();
    let checks = [
        ("server ran to the end", crashed.is_none()),
        ("every member ready", t.members_ready == wanted),
        ("every echo client open", t.echo_ready == cli.echoes),
        (
            "no sequence violation",
            t.seq_missing + t.seq_repeated + t.seq_misattributed + t.seq_tail_missing == 0,
        ),
        ("every line delivered", t.seq_received == seq_expected),
        ("no error line to a member", t.error_lines == 0),
        ("no echo mismatch", t.echo_mismatches + t.echo_unanswered == 0),
        (
            "no well-behaved client closed by the server",
            t.unexpected_closes == 0,
        ),
        ("members still there at the end", members_at_end == wanted),
        (
            "every slow reader closed by the server (1008 / too slow)",
            slow_closed == t.slow_started,
        ),
        (
            "no polite goodbye left unanswered",
            t.close_timeouts == 0 && left_open == 0,
        ),
        ("GET /stats back to zero connections", others == 0),
        (
            "... within 10 s of the last client leaving",
            others == 0 && zero_time < Duration::from_secs(10),
        ),
        (
            "hub empty at the end",
            json_number(&stats_after, "members") == Some(0) && json_number(&stats_after, "rooms") == Some(0),
        ),
    ];
    println!("checks:");
    let mut all = true;
    for (what, ok) in checks {
        println!("  [{}] {what}", if ok { "ok" } else { "FAIL" });
        all &= ok;
    }
    println!("result: {}", if all { "PASS" } else { "FAIL" });
    Ok(all)
}
