//! The examples, run as the programs they are: each server is started on a
//! free port, talked to over real sockets, and killed; each client is
//! pointed at the matching server example. tungstenite is the independent
//! WebSocket client, so the examples are not only checked against duplex's
//! own codec.
//!
//! `cargo test` builds the examples before it runs any test, next to the
//! `duplex` binary: `target/debug/duplex` → `target/debug/examples/NAME`.
//! All waits are bounded by [`WAIT`]; nothing sleeps to synchronise.

mod common;

use common::ProcessTree;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

/// The longest any single wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(10);

type Ws = tungstenite::WebSocket<TcpStream>;

/// Where cargo put the example's binary. `cargo test` builds every example
/// before it runs a test; `cargo test --test examples` does not, so then
/// they are built here, once.
fn example_path(name: &str) -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let duplex = PathBuf::from(env!("CARGO_BIN_EXE_duplex"));
    let profile_dir = duplex.parent().expect("the binary's directory");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        BUILT.call_once(|| build_examples(profile_dir));
    }
    assert!(
        path.exists(),
        "{} is missing after `cargo build --examples`",
        path.display()
    );
    path
}

/// `cargo build --examples` into the same target directory and profile as
/// this test, waiting at most a few minutes (and then stopping it, with
/// the compilers it started).
fn build_examples(profile_dir: &std::path::Path) {
    let target_dir = profile_dir.parent().expect("the target directory");
    let mut command = Command::new(env!("CARGO"));
    command
        .args(["build", "--examples", "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir);
    if profile_dir.ends_with("release") {
        command.arg("--release");
    }
    let (status, _, stderr) = ProcessTree::spawn(command).wait(Duration::from_secs(300));
    match status {
        Some(status) => assert!(status.success(), "cargo build --examples failed:\n{stderr}"),
        None => panic!("cargo build --examples took more than 5 minutes:\n{stderr}"),
    }
}

/// A running example, killed when dropped.
struct Running {
    child: Child,
    stdout: Receiver<String>,
    /// stderr, drained on a thread so the example never blocks on a pipe.
    log: Arc<Mutex<String>>,
}

impl Running {
    fn start(name: &str, args: &[&str]) -> Running {
        let mut child = Command::new(example_path(name))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start example {name}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut text);
            sink.lock().expect("log").push_str(&text);
        });
        Running {
            child,
            stdout: rx,
            log,
        }
    }

    /// Starts a server example on a free port and reads its address from
    /// the `listening on ADDR` line.
    fn server(name: &str) -> (Running, SocketAddr) {
        let running = Running::start(name, &["127.0.0.1:0"]);
        let line = running.line();
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{name}: unexpected first line {line:?}"))
            .parse()
            .expect("an address");
        (running, addr)
    }

    /// The next line on stdout, waiting at most [`WAIT`].
    fn line(&self) -> String {
        self.stdout.recv_timeout(WAIT).expect("a line on stdout in time")
    }

    /// Every line until the program closes stdout (it has exited), and its
    /// exit status.
    fn finish(mut self) -> (Vec<String>, bool) {
        let deadline = Instant::now() + WAIT;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("no exit in time; so far {lines:?}"),
            }
        }
        let success = self.child.wait().expect("wait").success();
        if !success {
            eprintln!("stderr: {}", self.log.lock().expect("log"));
        }
        (lines, success)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    stream.set_write_timeout(Some(WAIT)).expect("timeout");
    stream
}

fn ws_connect(addr: SocketAddr, protocol: Option<&str>) -> Ws {
    use tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}/").into_client_request().expect("request");
    if let Some(protocol) = protocol {
        let value = protocol.parse().expect("header value");
        request.headers_mut().insert("Sec-WebSocket-Protocol", value);
    }
    let (ws, _response) = tungstenite::client(request, tcp_connect(addr)).expect("handshake");
    ws
}

/// The next text message, skipping control frames.
fn next_text(ws: &mut Ws) -> String {
    loop {
        match ws.read().expect("a message in time") {
            Message::Text(text) => return text,
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected text, got {other:?}"),
        }
    }
}

#[test]
fn tcp_echo_server_echoes_everything_then_closes_after_fin() {
    let (_server, addr) = Running::server("tcp_echo_server");
    let mut stream = tcp_connect(addr);
    stream.write_all(b"hello\n").expect("write");
    let mut hello = [0u8; 6];
    stream.read_exact(&mut hello).expect("echo");
    assert_eq!(&hello, b"hello\n");

    // More than the server's 64 KiB queue and the socket buffers together:
    // the echo only completes if backpressure and short writes work. A
    // thread writes while this one reads, as a real peer would.
    let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut writer = stream.try_clone().expect("clone");
    let sent = data.clone();
    let writing = thread::spawn(move || {
        writer.write_all(&sent).expect("write");
        // FIN: the server echoes the rest, then closes its side too.
        writer.shutdown(Shutdown::Write).expect("shutdown");
    });
    let mut echoed = Vec::new();
    stream.read_to_end(&mut echoed).expect("the echo, then EOF");
    writing.join().expect("writer");
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data, "echo differs");
}

#[test]
fn tcp_client_prints_the_echo() {
    let (_server, addr) = Running::server("tcp_echo_server");
    let client = Running::start("tcp_client", &[&addr.to_string(), "hello", "world"]);
    let (lines, success) = client.finish();
    assert!(success, "{lines:?}");
    assert!(lines[0].starts_with(&format!("connected to {addr}")), "{lines:?}");
    assert_eq!(lines[1..], ["hello", "world"]);
}

#[test]
fn ws_echo_server_echoes_text_binary_and_ping_and_completes_close() {
    let (_server, addr) = Running::server("ws_echo_server");
    let mut ws = ws_connect(addr, Some("echo-protocol"));
    ws.send(Message::Text("Hello WebSocket!".into())).expect("send");
    assert_eq!(next_text(&mut ws), "Hello WebSocket!");
    // Large enough for a 64-bit length and many reads on the server.
    let binary: Vec<u8> = (0..200_000u32).map(|i| (i % 256) as u8).collect();
    ws.send(Message::Binary(binary.clone())).expect("send");
    assert_eq!(ws.read().expect("echo"), Message::Binary(binary));
    ws.send(Message::Ping(b"beat".to_vec())).expect("send");
    assert_eq!(ws.read().expect("pong"), Message::Pong(b"beat".to_vec()));

    // The server answers a close with the same code (§5.5.1).
    let bye = CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    };
    ws.close(Some(bye)).expect("close");
    match ws.read() {
        Ok(Message::Close(Some(frame))) => {
            assert_eq!((frame.code, &*frame.reason), (CloseCode::Normal, "bye"))
        }
        other => panic!("expected the close echo, got {other:?}"),
    }
    // Then the server closes TCP (§7.1.1).
    assert!(matches!(ws.read(), Err(tungstenite::Error::ConnectionClosed)));
}

#[test]
fn ws_echo_server_answers_plain_http_with_426() {
    let (_server, addr) = Running::server("ws_echo_server");
    let mut stream = tcp_connect(addr);
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("an answer, then EOF");
    assert!(answer.starts_with("HTTP/1.1 426 "), "{answer}");
    assert!(answer.contains("Upgrade: websocket\r\n"), "{answer}");
}

#[test]
fn ws_client_prints_the_echoes() {
    let (_server, addr) = Running::server("ws_echo_server");
    let url = format!("ws://{addr}/");
    let (lines, success) = Running::start("ws_client", &[&url]).finish();
    assert!(success, "{lines:?}");
    assert_eq!(
        lines,
        [
            format!("open: {url} (subprotocol: echo-protocol)"),
            "text: Hello WebSocket!".into(),
            "binary: de ad be ef".into(),
            "pong: are you there?".into(),
            "close: 1000 bye".into(),
            "closed".into(),
        ]
    );
}

#[test]
fn ws_client_talks_to_servers_that_talk_first() {
    // The clock pushes the time on its own and echoes nothing: every
    // push is printed as it comes, each step waits for its own answer at
    // most two seconds, and the close completes cleanly.
    let (_server, addr) = Running::server("timer_push");
    let url = format!("ws://{addr}/");
    let (lines, success) = Running::start("ws_client", &[&url]).finish();
    assert!(success, "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("text: server time: ")),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.starts_with("text: Hello")), "{lines:?}");
    assert_eq!(lines.last().map(String::as_str), Some("closed"), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("unexpected")), "{lines:?}");
    // The chat greets and relays: its lines are printed, the close is clean.
    let (_chat, addr) = Running::server("chat");
    let url = format!("ws://{addr}/");
    let (lines, success) = Running::start("ws_client", &[&url]).finish();
    assert!(success, "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("Hello WebSocket!")), "{lines:?}");
    assert_eq!(lines.last().map(String::as_str), Some("closed"), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("unexpected")), "{lines:?}");
}

#[test]
fn timer_push_sends_the_time_every_second() {
    let (_server, addr) = Running::server("timer_push");
    let mut ws = ws_connect(addr, Some("echo-protocol"));
    // Each read waits at most WAIT. "Every second" is checked on the
    // arrivals: each gap about a second (0.5 to 2 s, room for a loaded
    // machine), so a push at once or twice a second fails.
    let mut arrivals = Vec::new();
    for _ in 0..3 {
        let push = next_text(&mut ws);
        assert!(
            push.starts_with("server time: ") && push.ends_with(" UTC"),
            "{push}"
        );
        arrivals.push((Instant::now(), push));
    }
    for pair in arrivals.windows(2) {
        let gap = pair[1].0.duration_since(pair[0].0);
        assert!(
            gap >= Duration::from_millis(500) && gap <= Duration::from_secs(2),
            "{gap:?} between {:?} and {:?}",
            pair[0].1,
            pair[1].1
        );
        assert_ne!(pair[0].1, pair[1].1, "the time moved on");
    }
    // A second client gets its own pushes, and the first keeps getting
    // them: one loop, no thread per client.
    let mut other = ws_connect(addr, None);
    assert!(next_text(&mut other).starts_with("server time: "));
    assert!(next_text(&mut ws).starts_with("server time: "));
    ws.close(None).expect("close");
}

#[test]
fn chat_broadcasts_to_all_and_echo_answers_the_sender_alone() {
    let (_server, addr) = Running::server("chat");
    let mut alice = ws_connect(addr, Some("chat"));
    let welcome = next_text(&mut alice);
    let a = name_in(&welcome);
    assert_eq!(next_text(&mut alice), format!("* {a} joined"));

    let mut bob = ws_connect(addr, Some("chat"));
    let b = name_in(&next_text(&mut bob));
    assert_eq!(next_text(&mut bob), format!("* {b} joined"));
    assert_eq!(next_text(&mut alice), format!("* {b} joined"));

    // io.emit: both hear it, the sender included.
    alice.send(Message::Text("hello".into())).expect("send");
    assert_eq!(next_text(&mut alice), format!("{a}: hello"));
    assert_eq!(next_text(&mut bob), format!("{a}: hello"));

    // socket.emit: only bob hears his /echo. Once he has it, the server has
    // handled it; if alice had been sent it too, it would come before the
    // next broadcast, which is what she reads instead.
    bob.send(Message::Text("/echo secret".into())).expect("send");
    assert_eq!(next_text(&mut bob), "(to you alone) secret");
    alice.send(Message::Text("marker".into())).expect("send");
    assert_eq!(next_text(&mut alice), format!("{a}: marker"));
    assert_eq!(next_text(&mut bob), format!("{a}: marker"));

    // Binary is refused with 1003, and the others hear that bob left.
    bob.send(Message::Binary(vec![1, 2, 3])).expect("send");
    match bob.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Unsupported),
        other => panic!("expected close 1003, got {other:?}"),
    }
    assert_eq!(next_text(&mut alice), format!("* {b} left"));
}

/// `guest-7` from `welcome, guest-7; ...`.
fn name_in(welcome: &str) -> String {
    let rest = welcome.strip_prefix("welcome, ").expect("a welcome");
    rest.split(';').next().expect("a name").to_string()
}
