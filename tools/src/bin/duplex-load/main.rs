//! duplex-load: a load generator for WebSocket and line servers, built on
//! duplex's own client codec and one mio event loop.
//!
//! ```text
//! duplex-load echo      ws://127.0.0.1:8080/echo -c 100 -d 1 -s 32 -t 10 [--rate 150000]
//! duplex-load tcp-echo  127.0.0.1:18001 -c 100 -d 16 -s 32 [--join-rooms]
//! duplex-load idle      ws://127.0.0.1:8080/echo -n 5000 -t 10   (or 127.0.0.1:18001: telnet)
//! duplex-load echo      wss://127.0.0.1:8443/echo ...            (any mode: TLS, any certificate)
//! duplex-load broadcast ws://127.0.0.1:8080/chat -n 100 -k 200
//! common: --server-pid PID (server CPU% and RSS from /proc), --max-pending 64
//! ```
//!
//! It is the mirror image of the server: duplex's own sans-IO codecs, used
//! from the client's side (`duplex_tools::conn`), driven by one
//! `mio::Poll`, one thread, no async runtime. Everything it measures
//! happens on that one loop:
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

mod load;
mod measure;
mod modes;

use clap::{Args, Parser, Subcommand};
use load::{Job, Load};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

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
    /// Echo messages over WebSocket (ws://HOST:PORT/PATH, or wss://).
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
        /// Speak socket.io over the WebSocket (the URL is then
        /// ws://HOST:PORT/socket.io/?EIO=4&transport=websocket): each message
        /// is the event `42["message","/echo PAYLOAD"]`, each echo
        /// `42["servermessage","PAYLOAD"]`; the server's pings are answered.
        #[arg(long)]
        socketio: bool,
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
        /// Hold socket.io clients (ws://HOST:PORT/socket.io/?EIO=4&transport=websocket),
        /// each connected to the main namespace and answering pings.
        #[arg(long)]
        socketio: bool,
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
    /// Offer permessage-deflate (RFC 7692) as browsers do, and require it:
    /// echo messages then go compressed, and the server's compressed
    /// messages are inflated.
    #[arg(long)]
    deflate: bool,
}

/// Where to connect and, for WebSocket, what to ask for.
struct Target {
    addr: SocketAddr,
    /// The `Host` header.
    host: String,
    /// `None` for raw TCP.
    path: Option<String>,
    subprotocol: Option<String>,
    /// `wss://`: TLS under the WebSocket.
    tls: bool,
}

impl Target {
    fn websocket(url: &str, subprotocol: Option<String>) -> Result<Target, String> {
        let (rest, tls) = match (url.strip_prefix("ws://"), url.strip_prefix("wss://")) {
            (Some(rest), _) => (rest, false),
            (_, Some(rest)) => (rest, true),
            _ => return Err(format!("{url}: expected ws://HOST:PORT/PATH or wss://...")),
        };
        let (host, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/"),
        };
        Ok(Target {
            addr: resolve(host)?,
            host: host.to_string(),
            path: Some(path.to_string()),
            subprotocol,
            tls,
        })
    }

    fn tcp(addr: &str) -> Result<Target, String> {
        Ok(Target {
            addr: resolve(addr)?,
            host: addr.to_string(),
            path: None,
            subprotocol: None,
            tls: false,
        })
    }

    /// The subprotocols the handshake offers: the one asked for, or none.
    fn offered(&self) -> Vec<&str> {
        self.subprotocol.iter().map(String::as_str).collect()
    }
}

fn resolve(host: &str) -> Result<SocketAddr, String> {
    host.to_socket_addrs()
        .map_err(|e| format!("{host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}: no address"))
}

fn main() -> ExitCode {
    match run(Cli::parse().mode) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("duplex-load: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs one mode; `Err` when it cannot start (a bad address, no poll).
fn run(mode: Mode) -> Result<ExitCode, String> {
    match mode {
        Mode::Echo {
            url,
            load: args,
            binary,
            subprotocol,
            socketio,
            common,
        } => {
            let mut load = Load::new(Target::websocket(&url, subprotocol)?, Job::Echo, common)?;
            load.socketio = socketio;
            load.prepare_messages(args.size, binary);
            Ok(modes::run_echo(&mut load, args, "echo"))
        }
        Mode::TcpEcho {
            addr,
            load: args,
            join_rooms,
            common,
        } => {
            let mut load = Load::new(Target::tcp(&addr)?, Job::Echo, common)?;
            load.join_rooms = join_rooms;
            load.prepare_messages(args.size, false);
            Ok(modes::run_echo(&mut load, args, "tcp-echo"))
        }
        Mode::Idle {
            url,
            conns,
            secs,
            socketio,
            common,
        } => {
            // ws://... holds WebSockets; HOST:PORT holds telnet clients,
            // who read whatever the chat sends them and say nothing.
            let target = if url.starts_with("ws://") || url.starts_with("wss://") {
                Target::websocket(&url, None)?
            } else {
                Target::tcp(&url)?
            };
            let mut load = Load::new(target, Job::Idle, common)?;
            load.socketio = socketio;
            Ok(modes::run_idle(&mut load, conns, secs))
        }
        Mode::Broadcast {
            url,
            members,
            rounds,
            size,
            common,
        } => {
            let mut load = Load::new(Target::websocket(&url, None)?, Job::Broadcast, common)?;
            Ok(modes::run_broadcast(&mut load, members, rounds, size))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        let t = Target::websocket("ws://127.0.0.1:9/chat", None).unwrap();
        assert_eq!(t.path.as_deref(), Some("/chat"));
        assert_eq!(t.host, "127.0.0.1:9");
        assert!(Target::websocket("wss://127.0.0.1:9/", None).is_ok_and(|t| t.tls));
        assert!(Target::websocket("http://127.0.0.1:9/", None).is_err());
    }
}
