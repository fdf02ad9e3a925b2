//! Shared test harness: the real `duplex` binary on free ports, and small
//! clients with bounded waits. Every test talks to the server over real
//! sockets.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running server process, killed when dropped.
pub struct Duplex {
    pub child: Child,
    pub tcp: SocketAddr,
    pub http: SocketAddr,
    /// stderr, read on a thread so the server never blocks on a full pipe.
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Duplex {
    /// Starts `duplex --tcp 127.0.0.1:0 --http 127.0.0.1:0 ARGS...` and
    /// waits for its `duplex listening ...` line.
    pub fn start(args: &[&str]) -> Duplex {
        Duplex::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Duplex {
        let mut command = Command::new(env!("CARGO_BIN_EXE_duplex"));
        command
            .args(["--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !env.iter().any(|(k, _)| *k == "RUST_LOG") {
            command.env("RUST_LOG", "duplex=debug");
        }
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start duplex");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the server never blocks on stdout.
            for _ in lines {}
        });
        let line = rx.recv_timeout(WAIT).expect("duplex printed its listening line");
        let rest = line
            .strip_prefix("duplex listening tcp=")
            .expect("listening line format");
        let (tcp, http) = rest.split_once(" http=").expect("listening line format");
        Duplex {
            child,
            tcp: tcp.parse().expect("tcp address"),
            http: http.parse().expect("http address"),
            log,
        }
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the server's log contains `needle`.
    pub fn wait_log(&self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("server log never showed {needle:?}; log:\n{}", self.log());
    }

    /// Sends a signal and waits for the process to exit; returns its status.
    pub fn signal_and_wait(&mut self, signal: &str) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("kill");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "duplex did not exit after SIG{signal}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `ws://127.0.0.1:PORT{path}`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.http)
    }
}

impl Drop for Duplex {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A telnet-style client: raw bytes out, lines in, every read bounded.
pub struct Telnet {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Telnet {
    pub fn connect(addr: SocketAddr) -> Telnet {
        let stream = TcpStream::connect(addr).expect("connect to the line service");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        Telnet {
            stream,
            buf: Vec::new(),
        }
    }

    /// Connects and reads the greeting; returns the client and its name.
    pub fn join(addr: SocketAddr) -> (Telnet, String) {
        let mut t = Telnet::connect(addr);
        let greeting = t.line();
        let name = greeting
            .split("your name is ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .unwrap_or_else(|| panic!("greeting names the client: {greeting:?}"))
            .to_string();
        (t, name)
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Sends a line with CR LF.
    pub fn say(&mut self, line: &str) {
        self.send(format!("{line}\r\n").as_bytes());
    }

    /// The next line, without its CR LF. Panics after [`WAIT`].
    pub fn line(&mut self) -> String {
        self.try_line().expect("a line before the connection closed")
    }

    /// The next line, or `None` at end of stream.
    pub fn try_line(&mut self) -> Option<String> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Some(String::from_utf8_lossy(&line).into_owned());
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read from the line service: {e}"),
            }
        }
    }

    /// Reads lines until one satisfies `pred`; returns it. Panics after
    /// [`WAIT`] or at end of stream.
    pub fn until(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "timed out waiting for a matching line");
            let line = self.line();
            if pred(&line) {
                return line;
            }
        }
    }

    /// Reads until the server closes; returns the lines seen.
    pub fn until_closed(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Some(line) = self.try_line() {
            lines.push(line);
        }
        lines
    }
}

/// Sends raw bytes to the web port and reads the whole answer until the
/// server closes or `WAIT` passes.
pub fn http_raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the web door");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(request).expect("send request");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// Reads exactly one HTTP response (head plus Content-Length body) from a
/// stream, leaving the stream open.
pub fn read_response(stream: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("read response head");
        assert!(
            n > 0,
            "connection closed in the response head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status: u16 = head[9..12].parse().expect("status code");
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })
        .map_or(0, |v| v.parse().expect("content-length"));
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).expect("read body");
    (status, head, body)
}

/// A standard upgrade request for `path`, with extra header lines.
pub fn upgrade_request(addr: SocketAddr, path: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .into_bytes()
}
