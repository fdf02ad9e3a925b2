//! Every option and limit in one place, each with its default and why.
//!
//! The same struct is the command line (`duplex --help` prints these doc
//! comments) and the library's configuration (`Config::default()`), so a
//! limit cannot exist in one and be forgotten in the other.

use crate::forwarded::TrustedProxy;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What `--help` says after the options: how to see the server work, which
/// no option controls.
const AFTER_HELP: &str = "\
SIZE is bytes, or a number with a unit: 4096, 64KiB, 16MiB. TIME is 500ms, 10s or 2m.

To watch it work: RUST_LOG=duplex=debug logs each connection, handshake, command and close \
with its reason; RUST_LOG=duplex=trace also narrates each turn of the event loop and each \
frame. --hexdump prints the raw bytes of handshakes and frames.";

/// A raw TCP and WebSocket server on one mio event loop, written to be read.
///
/// Two doors: a line service for telnet and an HTTP port that serves a web
/// page and upgrades to WebSocket. Both lead to the same chat rooms.
#[derive(Parser, Clone, Debug)]
#[command(
    name = "duplex",
    version,
    about,
    long_about = None,
    // Wrapped to the terminal, but never wider than this: a help line of
    // 200 columns on a wide screen is as hard to read as a cut one.
    max_term_width = 100,
    after_help = AFTER_HELP,
)]
pub struct Config {
    /// Address of the line service (telnet door). Port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:18001", value_name = "ADDR")]
    pub tcp: SocketAddr,

    /// Address of the web door: the page, HTTP and WebSocket. Port 0 picks
    /// a free port.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub http: SocketAddr,

    /// Address of the web door over TLS (`https://`, `wss://`): everything
    /// the web door serves, encrypted. Off unless given.
    #[arg(long, value_name = "ADDR")]
    pub https: Option<SocketAddr>,

    /// Address of the line service over TLS, for `openssl s_client
    /// -connect ADDR` or `socat`. Off unless given.
    #[arg(long, value_name = "ADDR")]
    pub tcps: Option<SocketAddr>,

    /// The TLS certificate chain, PEM, leaf first. Without it (and
    /// `--tls-key`), a self-signed certificate for localhost is made at
    /// start and its pin printed.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The TLS certificate's private key, PEM.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    // rustls's own default is 64 KiB too. Records wait here only while the
    // socket is full, so its size is a bound, not a cost.
    /// Most bytes rustls may hold for one TLS connection: plaintext written
    /// before the handshake is done, or records waiting for the socket (at
    /// least one record, 16 KiB).
    #[arg(long, default_value = "64KiB", value_parser = parse_size, value_name = "SIZE")]
    pub tls_buffer: usize,

    /// Connections open at once, all doors together. One more is told so
    /// (HTTP 503 or an error line; a TLS door just closes) and closed; the
    /// listeners keep going.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub max_connections: usize,

    /// Largest HTTP request head, request line and headers (431 beyond;
    /// 414 when the request line alone is longer).
    /// nginx allows 1 KiB plus 8 KiB buffers, Node 16 KiB.
    #[arg(long, default_value = "8KiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_head: usize,

    /// Most header lines in one request (431 beyond).
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_headers: usize,

    /// Largest request body (`POST /send`), 413 beyond.
    #[arg(long, default_value = "64KiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_body: usize,

    /// Time allowed for a whole request head, counted from its first byte
    /// or from the connection's start: a peer that trickles its head
    /// (slowloris) is answered 408 and closed. A TLS handshake, on either
    /// door, must be done within it too.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "TIME")]
    pub handshake_timeout: Duration,

    /// Make the line door an echo service instead of a chat: no greeting,
    /// no commands, every line sent back to its sender as it came (telnet
    /// commands dropped). The classic first server of every tutorial, and
    /// what line echo benchmarks expect.
    #[arg(long)]
    pub line_echo: bool,

    /// Longest telnet line; a longer one gets an error line and is skipped.
    #[arg(long, default_value = "4KiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_line: usize,

    /// Largest WebSocket message after reassembly (close 1009 beyond),
    /// checked on each frame header before its payload arrives.
    #[arg(long, default_value = "16MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_message: usize,

    /// permessage-deflate (RFC 7692): `on` accepts a client's offer to
    /// compress messages, `off` declines every offer. With one compressor
    /// for the whole loop, an idle connection costs the same either way.
    #[arg(long, default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set, value_name = "on|off")]
    pub permessage_deflate: bool,

    // ws (Node) uses 1 KiB too: below it, deflate's block overhead and the
    // time spent outweigh the few bytes saved.
    /// Messages shorter than this go uncompressed even when compression
    /// was agreed.
    #[arg(long, default_value = "1KiB", value_parser = parse_size, value_name = "SIZE")]
    pub deflate_threshold: usize,

    /// Let clients keep their compression context from one message to the
    /// next (better compression of many similar small messages). Each such
    /// client then needs an inflater of its own, 46 KiB, made at its first
    /// compressed message. Without it, every client is asked for
    /// `client_no_context_takeover` and one inflater serves them all.
    #[arg(long)]
    pub deflate_client_context: bool,

    /// Most continuation frames in one WebSocket message (close 1008 beyond).
    #[arg(long, default_value_t = 65_536, value_name = "N")]
    pub max_fragments: u32,

    /// Output a connection may have waiting for the peer to read. Above it,
    /// the loop stops reading from that peer, and a peer that stays above it
    /// for `--slow-reader-timeout` is closed (1008 or an error line).
    #[arg(long, default_value = "4MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_output: usize,

    /// Output above which a connection is closed at once.
    #[arg(long, default_value = "32MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_output_hard: usize,

    /// How long a connection may stay above `--max-output`.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "TIME")]
    pub slow_reader_timeout: Duration,

    /// Ping a WebSocket peer after this long without hearing from it.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "TIME")]
    pub ping_interval: Duration,

    /// Close a WebSocket peer that has not answered a ping within this long.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "TIME")]
    pub pong_timeout: Duration,

    /// Close telnet connections idle this long (default: never; a person
    /// at a telnet prompt may think for a while).
    #[arg(long, value_parser = parse_duration, value_name = "TIME")]
    pub idle_timeout: Option<Duration>,

    /// How long a closing connection may take to finish: the peer's answer
    /// to our close frame, and draining its last bytes.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "TIME")]
    pub close_timeout: Duration,

    /// On SIGINT/SIGTERM, how long to wait for goodbyes to be delivered.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "TIME")]
    pub shutdown_timeout: Duration,

    /// A browser Origin allowed besides the defaults (none, loopback, the
    /// Host asked for, and `null` for WebSockets only). Repeatable; `null`
    /// lets pages opened from disk (and sandboxed frames) post too; `*`
    /// allows any origin.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origins: Vec<String>,

    /// A Host name accepted while bound to loopback, besides `localhost`,
    /// `127.x.y.z` and `[::1]` (the DNS-rebinding guard). Repeatable.
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,

    /// A reverse proxy (nginx) whose `X-Forwarded-For` says who the client
    /// is: an address (`127.0.0.1`) or a network (`10.0.0.0/8`).
    /// Repeatable; by default no one is trusted and the header is ignored.
    /// Requests from it then show the client it names in greetings, logs
    /// and `/stats` (see docs/10-reverse-proxy.md).
    #[arg(long = "trust-proxy", value_name = "ADDR")]
    pub trust_proxies: Vec<TrustedProxy>,

    /// Lines of recent history each room keeps, so an HTTP poller that
    /// comes back loses nothing in between.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub history: usize,

    // 256 KiB holds the default 1000 lines of ordinary chat (about 100
    // bytes each, plus 40 of bookkeeping) but only 64 lines of the longest
    // (4 KiB): a room that floods loses its own old lines, not memory.
    /// Bytes of history each room keeps (text plus 40 bytes a line of
    /// bookkeeping). Older lines beyond it are dropped, and a poller that
    /// asks for them is told how many it missed.
    #[arg(long, default_value = "256KiB", value_parser = parse_size, value_name = "SIZE")]
    pub history_bytes: usize,

    // Without it the history would grow with the number of rooms: 10,000
    // rooms of 256 KiB is 2.5 GiB. 16 MiB is 64 full rooms, or thousands
    // of ordinary ones.
    /// Bytes of history all rooms keep together. Beyond it the oldest line
    /// of the room that keeps the most goes first, so whoever floods rooms
    /// loses their history before a quiet room loses any.
    #[arg(long, default_value = "16MiB", value_parser = parse_size, value_name = "SIZE")]
    pub history_total_bytes: usize,

    /// How long a parked long poll waits for a message before it is
    /// answered empty.
    #[arg(long, default_value = "25s", value_parser = parse_duration, value_name = "TIME")]
    pub longpoll_timeout: Duration,

    /// An HTTP chat member (polling, long polling, server-sent events) that
    /// has made no request and holds no stream for this long has left.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "TIME")]
    pub http_member_timeout: Duration,

    /// HTTP chat members at once (their tokens live on the server).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub max_http_members: usize,

    // One buffer for the whole loop, so its size costs nothing per
    // connection; 256 KiB lets a 64 KiB message arrive in one read and be
    // handled where it lies, without a copy.
    /// The loop's read buffer: the most one read call can take in.
    #[arg(long, default_value = "256KiB", value_parser = parse_size, value_name = "SIZE")]
    pub read_buffer: usize,

    /// Serve the files in DIR on the web door, as `express.static` does:
    /// `/a/b.html` is DIR/a/b.html, a folder is its `index.html`. The
    /// built-in page stays at `/` unless DIR has an index.html; the
    /// WebSocket endpoints and the chat transports keep their paths, and
    /// win over files of the same name. Dotfiles are hidden, folders are
    /// not listed, and nothing outside DIR is served (symlinks included).
    #[arg(long = "static", value_name = "DIR")]
    pub static_dir: Option<PathBuf>,

    /// Largest file `--static` serves; a larger one is refused (403) with
    /// its size. Files are streamed in chunks, never held whole in memory:
    /// this bounds what one request can make the server send.
    #[arg(long, default_value = "64MiB", value_parser = parse_size, value_name = "SIZE")]
    pub static_max_file: usize,

    // Node's socket.io: 25 s and 20 s (engine.io 6).
    /// socket.io: the server pings each session this often (Engine.IO's
    /// `pingInterval`).
    #[arg(long, default_value = "25s", value_parser = parse_duration, value_name = "TIME")]
    pub sio_ping_interval: Duration,

    /// socket.io: a session that has not answered a ping within this long
    /// is closed (Engine.IO's `pingTimeout`).
    #[arg(long, default_value = "20s", value_parser = parse_duration, value_name = "TIME")]
    pub sio_ping_timeout: Duration,

    // Node's socket.io: 45 s (`connectTimeout`).
    /// socket.io: a session whose client has not CONNECTed to the main
    /// namespace within this long is closed.
    #[arg(long, default_value = "45s", value_parser = parse_duration, value_name = "TIME")]
    pub sio_connect_timeout: Duration,

    // engine.io: 10 s (`upgradeTimeout`).
    /// socket.io: a WebSocket probing an upgrade that has not finished it
    /// (`5`) within this long is closed; the session stays on polling.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "TIME")]
    pub sio_upgrade_timeout: Duration,

    // Node's default (maxHttpBufferSize) is 1 MB; 64 KiB is this server's
    // request body limit, and a chat line is a few hundred bytes.
    /// socket.io: the largest polling body or WebSocket message (Engine.IO's
    /// `maxPayload`, at most `--max-body`): 413, or close 1009, beyond it.
    #[arg(long, default_value = "64KiB", value_parser = parse_size, value_name = "SIZE")]
    pub sio_max_payload: usize,

    /// socket.io: deepest JSON nesting in an event's arguments, checked
    /// before parsing; deeper ends the session.
    #[arg(long, default_value_t = crate::socketio::MAX_DEPTH, value_name = "N")]
    pub sio_max_depth: usize,

    /// socket.io sessions open at once (a new one beyond is refused, 400).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub sio_max_sessions: usize,

    /// Print the raw bytes of handshakes and frames (for learners; noisy).
    #[arg(long)]
    pub hexdump: bool,

    /// Step through the event loop: before each turn, wait for Enter on
    /// stdin (a terminal or a pipe), then run one turn and tell what it did.
    /// `c [TOKEN]` runs freely until the next event (on TOKEN), `q` quits,
    /// `h` helps.
    #[arg(long)]
    pub step: bool,

    // Ten a second is smooth to the eye; each update costs one frame per
    // observer, however busy the loop.
    /// Most updates a second the `/loop` endpoint sends each observer (the
    /// page's loop panels); the turns in between are coalesced.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100), value_name = "N")]
    pub loop_rate: u32,

    /// `/loop` observers at once (503 beyond); 0 turns `/loop` off.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub max_observers: usize,

    /// Join a cluster through Redis: rooms, names and presence shared with
    /// every instance given the same URL (redis://HOST:PORT). Off unless
    /// given; without it no Redis is needed.
    #[arg(long, value_name = "URL", value_parser = parse_redis_url)]
    pub redis: Option<String>,

    /// This instance's name in the cluster: in guest names (guest-7.b) and
    /// in Redis's client list. Unique per instance; 1 to 16 letters,
    /// digits, '-' or '_'. Default: four random letters.
    #[arg(long, value_name = "NAME", value_parser = parse_instance)]
    pub instance: Option<String>,

    /// Prefix of the Redis keys (the stream is PREFIX:stream), so that
    /// clusters can share one Redis.
    #[arg(long, default_value = "duplex", value_name = "PREFIX")]
    pub redis_prefix: String,

    // 100,000 entries of ordinary chat is about 15 MiB in Redis, and some
    // minutes of a busy cluster: the longest absence that loses nothing.
    /// Entries the Redis stream keeps (about: trimmed with MAXLEN ~). An
    /// instance away for longer than that many entries is told what it
    /// missed.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub redis_maxlen: usize,

    /// An instance not heard from for this long (heartbeats go every third
    /// of it) is gone: its members are announced as having left.
    #[arg(long, default_value = "15s", value_parser = parse_duration, value_name = "TIME")]
    pub redis_ttl: Duration,

    /// Longest wait for Redis to answer before the link is taken as broken
    /// and made again (with backoff, 100 ms doubling up to 5 s).
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "TIME")]
    pub redis_timeout: Duration,

    // Like a connection's --max-output: Redis that stalls costs this much
    // and no more. 8 MiB holds about 50,000 lines of ordinary chat.
    /// Bytes of entries held for Redis: waiting to be sent while it is
    /// away, and kept to be sent again should it restart empty. Beyond it
    /// the oldest go, and the other instances are told lines were lost.
    #[arg(long, default_value = "8MiB", value_parser = parse_size, value_name = "SIZE")]
    pub redis_buffer: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config::parse_from(["duplex"])
    }
}

impl Config {
    /// The hub's three bounds on history, from `--history`,
    /// `--history-bytes` and `--history-total-bytes`.
    pub fn history_limits(&self) -> crate::hub::HistoryLimits {
        crate::hub::HistoryLimits {
            lines: self.history,
            room_bytes: self.history_bytes,
            total_bytes: self.history_total_bytes,
        }
    }

    /// socket.io's `maxPayload`: `--sio-max-payload`, but no more than a
    /// polling POST may carry (`--max-body`), so both transports keep one
    /// promise.
    pub fn sio_max_payload(&self) -> usize {
        self.sio_max_payload.min(self.max_body)
    }

    /// A configuration for tests and examples: both doors on free ports.
    pub fn ephemeral() -> Config {
        Config::parse_from(["duplex", "--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0"])
    }
}

/// `redis://HOST:PORT` (the port defaults to 6379), as `HOST:PORT`.
/// Neither a password nor a database number is taken: the relay uses one
/// stream, whose key `--redis-prefix` sets.
pub fn parse_redis_url(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("redis://")
        .ok_or_else(|| format!("not a Redis URL: {text:?} (try redis://127.0.0.1:6379)"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '@', '?']) {
        return Err(format!(
            "only redis://HOST:PORT is understood, not {text:?} (no user, password or database)"
        ));
    }
    // The last colon starts the port, unless it is inside an IPv6
    // address in brackets (`[::1]` alone has no port).
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && (!host.starts_with('[') || host.ends_with(']')) => {
            port.parse::<u16>()
                .map_err(|_| format!("not a port: {port:?} in {text:?}"))?;
            Ok(rest.to_string())
        }
        _ => Ok(format!("{rest}:6379")),
    }
}

/// An instance name: 1 to 16 ASCII letters, digits, `-` or `_`, so that it
/// fits in guest names and Redis client names alike.
pub fn parse_instance(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 16
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(text.to_string())
    } else {
        Err(format!(
            "not an instance name: {text:?} (1 to 16 letters, digits, '-' or '_')"
        ))
    }
}

/// `4096`, `4KiB`, `16MiB`, `1GiB` (also `k`, `KB`, `M`, `MB`: all binary).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: usize = digits
        .parse()
        .map_err(|_| format!("not a size: {text:?} (try 4096, 64KiB, 16MiB)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        // Quote the unit as the user typed it, not the lower-cased form
        // used to match it.
        _ => {
            return Err(format!(
                "unknown size unit {:?} (use KiB, MiB or GiB)",
                unit.trim()
            ))
        }
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("size too large: {text}"))
}

/// `on` or `off` (also `true`/`false`, `yes`/`no`, `1`/`0`).
pub fn parse_on_off(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(format!("expected on or off, not {text:?}")),
    }
}

/// `10s`, `500ms`, `2m`, or plain seconds (`30`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("not a duration: {text:?} (try 10s, 500ms, 2m)"))?;
    match unit.trim() {
        "" | "s" => Ok(Duration::from_secs(number)),
        "ms" => Ok(Duration::from_millis(number)),
        "m" | "min" => Ok(Duration::from_secs(number.saturating_mul(60))),
        other => Err(format!("unknown time unit {other:?} (use ms, s or m)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_brief() {
        let c = Config::default();
        assert_eq!(c.tcp.to_string(), "127.0.0.1:18001");
        assert_eq!(c.http.to_string(), "127.0.0.1:8080");
        assert_eq!(c.max_connections, 10_000);
        assert_eq!((c.max_head, c.max_headers), (8192, 64));
        assert_eq!(c.handshake_timeout, Duration::from_secs(10));
        assert_eq!(c.max_line, 4096);
        assert_eq!(c.max_message, 16 << 20);
        assert_eq!(c.max_fragments, 65_536);
        assert!(c.permessage_deflate);
        assert_eq!(c.deflate_threshold, 1024);
        assert!(!c.deflate_client_context);
        assert_eq!((c.max_output, c.max_output_hard), (4 << 20, 32 << 20));
        assert_eq!(c.ping_interval, Duration::from_secs(30));
        assert_eq!(c.shutdown_timeout, Duration::from_secs(5));
        // The hub's own default is the command line's.
        assert_eq!(c.history_limits(), crate::hub::HistoryLimits::default());
    }

    #[test]
    fn units() {
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("12 parsecs").is_err());
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn errors_quote_the_input_as_typed() {
        assert_eq!(
            parse_size("4X"),
            Err(r#"unknown size unit "X" (use KiB, MiB or GiB)"#.to_string())
        );
        assert_eq!(
            parse_duration("10S"),
            Err(r#"unknown time unit "S" (use ms, s or m)"#.to_string())
        );
        assert_eq!(
            parse_size("Big"),
            Err(r#"not a size: "Big" (try 4096, 64KiB, 16MiB)"#.to_string())
        );
    }

    #[test]
    fn redis_urls_and_instance_names() {
        assert_eq!(
            parse_redis_url("redis://127.0.0.1:6380"),
            Ok("127.0.0.1:6380".into())
        );
        assert_eq!(parse_redis_url("redis://localhost"), Ok("localhost:6379".into()));
        assert_eq!(parse_redis_url("redis://localhost/"), Ok("localhost:6379".into()));
        assert_eq!(parse_redis_url("redis://[::1]:7000"), Ok("[::1]:7000".into()));
        assert!(parse_redis_url("127.0.0.1:6379")
            .unwrap_err()
            .contains("try redis://"));
        assert!(parse_redis_url("redis://u:p@h:1")
            .unwrap_err()
            .contains("no user"));
        assert!(parse_redis_url("redis://h:1/2").is_err());
        assert!(parse_redis_url("redis://h:port")
            .unwrap_err()
            .contains("not a port"));
        assert_eq!(parse_instance("b-2_x"), Ok("b-2_x".into()));
        for bad in ["", "a.b", "a b", "seventeen-letters", "é"] {
            assert!(parse_instance(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn help_is_wrapped_and_says_how_to_see_the_server_work() {
        // As printed: the terminal's width (or $COLUMNS), at most 100.
        let help = <Config as clap::CommandFactory>::command()
            .render_help()
            .to_string();
        let widest = help.lines().map(|l| l.chars().count()).max().unwrap_or(0);
        assert!(widest <= 100, "a help line of {widest} characters:\n{help}");
        for needle in ["RUST_LOG=duplex=debug", "RUST_LOG=duplex=trace", "--hexdump"] {
            assert!(help.contains(needle), "--help mentions {needle}:\n{help}");
        }
    }
}
