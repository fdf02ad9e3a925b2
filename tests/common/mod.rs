//! Shared test harness: the real `duplex` binary on free ports, and small
//! clients with bounded waits. Every test talks to the server over real
//! sockets.
#![allow(dead_code)]

pub mod nginx;
pub mod redis;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running server process, killed when dropped.
pub struct Duplex {
    pub child: Child,
    pub tcp: SocketAddr,
    pub http: SocketAddr,
    /// The TLS doors, when asked for (`--https`, `--tcps`).
    pub https: Option<SocketAddr>,
    pub tcps: Option<SocketAddr>,
    /// stderr, read on a thread so the server never blocks on a full pipe.
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
    /// What stdout said after the listening line (the TLS pin).
    pub stdout: std::sync::Arc<std::sync::Mutex<String>>,
    /// The listening line itself.
    pub listening: String,
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
            .args(args);
        if !env.iter().any(|(k, _)| *k == "RUST_LOG") {
            command.env("RUST_LOG", "duplex=debug");
        }
        for (k, v) in env {
            command.env(k, v);
        }
        Duplex::spawn(command)
    }

    /// Starts a server from a prepared command (for one that wraps the
    /// binary, such as `sh -c 'ulimit -n 32 && exec duplex ...'`) and waits
    /// for its `duplex listening ...` line. Its stdout and stderr are taken
    /// here.
    pub fn spawn(mut command: Command) -> Duplex {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start duplex");
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
        let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = said.clone();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the server never blocks on stdout.
            for line in lines.map_while(Result::ok) {
                let mut said = sink.lock().unwrap();
                said.push_str(&line);
                said.push('\n');
            }
        });
        let line = match rx.recv_timeout(WAIT) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("duplex printed no listening line within {WAIT:?} ({e})");
            }
        };
        // `duplex listening tcp=ADDR http=ADDR`, then the optional doors.
        let rest = line
            .strip_prefix("duplex listening ")
            .expect("listening line format")
            .to_string();
        let door = |name: &str| -> Option<SocketAddr> {
            rest.split(' ')
                .find_map(|field| field.strip_prefix(name)?.strip_prefix('='))
                .map(|addr| addr.parse().expect("a door's address"))
        };
        Duplex {
            tcp: door("tcp").expect("tcp= on the listening line"),
            http: door("http").expect("http= on the listening line"),
            https: door("https"),
            tcps: door("tcps"),
            child,
            log,
            stdout: said,
            listening: line,
        }
    }

    /// Waits until stdout, after the listening line, contains `needle`;
    /// returns all it said.
    pub fn wait_stdout(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let said = self.stdout.lock().unwrap().clone();
            if said.contains(needle) {
                return said;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("stdout never showed {needle:?}");
    }

    /// The pin of the self-signed certificate duplex made at start, from
    /// the Chromium flag it printed.
    pub fn tls_pin(&self) -> String {
        let flag = "--ignore-certificate-errors-spki-list=";
        let said = self.wait_stdout(flag);
        said.split(flag)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("a pin")
            .to_string()
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
        self.wait_exit()
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

impl Telnet {
    /// The next line as raw bytes (without its CR LF), so a test can see
    /// exactly what the server sent, or `None` at end of stream.
    pub fn line_bytes(&mut self) -> Option<Vec<u8>> {
        let line = self.try_line_raw();
        line.map(|mut l| {
            if l.last() == Some(&b'\r') {
                l.pop();
            }
            l
        })
    }

    fn try_line_raw(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                return Some(line);
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

    /// Lines already received and not yet read, without waiting.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }
}

/// Opens a plain connection to the web door with every read bounded.
pub fn web_connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the web door");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// One request on a fresh connection, one response read back.
pub fn http_request(addr: SocketAddr, request: &[u8]) -> (u16, String, Vec<u8>) {
    let mut stream = web_connect(addr);
    stream.write_all(request).expect("send request");
    read_response(&mut stream)
}

/// The value of a header in a response head (names are case-insensitive).
pub fn header_value(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// A tungstenite client on a plain `TcpStream` whose reads are bounded by
/// [`WAIT`]. `protocols` become one `Sec-WebSocket-Protocol` header.
pub fn ws_connect(
    addr: SocketAddr,
    path: &str,
    protocols: &[&str],
) -> (
    tungstenite::WebSocket<TcpStream>,
    tungstenite::handshake::client::Response,
) {
    use tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}{path}")
        .into_client_request()
        .expect("request");
    if !protocols.is_empty() {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            protocols.join(", ").parse().expect("header value"),
        );
    }
    let stream = web_connect(addr);
    tungstenite::client(request, stream).expect("WebSocket handshake")
}

/// Reads tungstenite messages until a text message satisfies `pred`.
pub fn ws_until_text<S: Read + Write>(
    ws: &mut tungstenite::WebSocket<S>,
    pred: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for a matching message"
        );
        match ws.read().expect("read a WebSocket message") {
            tungstenite::Message::Text(text) if pred(&text) => return text.to_string(),
            _ => {}
        }
    }
}

/// A WebSocket client with nothing between the test and the wire: it sends
/// frames exactly as given (masked or not, any opcode, any bits) and parses
/// the server's frames by hand, so the server's answer to a bad frame can be
/// seen byte for byte.
pub struct RawWs {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

/// A frame as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// The close code and reason of a close frame.
    pub fn close(&self) -> (u16, String) {
        assert_eq!(self.opcode, 0x8, "expected a close frame, got {self:?}");
        if self.payload.is_empty() {
            return (1005, String::new());
        }
        let code = u16::from_be_bytes([self.payload[0], self.payload[1]]);
        let reason = String::from_utf8(self.payload[2..].to_vec()).expect("UTF-8 close reason");
        (code, reason)
    }
}

/// The RFC 6455 §1.3 example key and its accept value.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

impl RawWs {
    /// Connects and completes a standard handshake on `path`.
    pub fn connect(addr: SocketAddr, path: &str) -> RawWs {
        RawWs::connect_with(addr, &upgrade_request(addr, path, ""))
    }

    /// Connects, sends `request` as is and expects `101` with the right
    /// `Sec-WebSocket-Accept`. Returns the client and the response head.
    pub fn connect_with(addr: SocketAddr, request: &[u8]) -> RawWs {
        let (ws, head) = RawWs::connect_head(addr, request);
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        assert_eq!(
            header_value(&head, "Sec-WebSocket-Accept").as_deref(),
            Some(ACCEPT),
            "{head}"
        );
        ws
    }

    /// Connects, sends `request`, and returns the response head, whatever
    /// its status; bytes after the head stay buffered as frames.
    pub fn connect_head(addr: SocketAddr, request: &[u8]) -> (RawWs, String) {
        let mut ws = RawWs {
            stream: web_connect(addr),
            buf: Vec::new(),
        };
        ws.stream.write_all(request).expect("send handshake");
        let head = ws.read_head();
        (ws, head)
    }

    /// Reads an HTTP response head; what follows it stays buffered.
    pub fn read_head(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                return String::from_utf8_lossy(&head).into_owned();
            }
            assert!(self.fill(), "closed before the response head ended");
        }
    }

    /// Reads more bytes; false at end of stream (or a reset).
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => false,
            Err(e) => panic!("read from the web door: {e}"),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Sends one masked frame.
    pub fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let frame = frame(fin, opcode, payload, Some([0x37, 0xfa, 0x21, 0x3d]));
        self.send_raw(&frame);
    }

    /// The next frame from the server, or `None` if it closed the TCP
    /// connection first.
    pub fn read_frame(&mut self) -> Option<RawFrame> {
        loop {
            if let Some((frame, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            if !self.fill() {
                let tail = &self.buf[self.buf.len().saturating_sub(48)..];
                assert!(
                    self.buf.is_empty(),
                    "connection closed inside a frame: {} bytes left over, ending {tail:?} ({:?})",
                    self.buf.len(),
                    String::from_utf8_lossy(tail)
                );
                return None;
            }
        }
    }

    /// Reads frames until a close frame; returns its code and reason.
    pub fn expect_close(&mut self) -> (u16, String) {
        loop {
            let frame = self
                .read_frame()
                .expect("a close frame before the connection closed");
            if frame.opcode == 0x8 {
                return frame.close();
            }
        }
    }

    /// Asserts the server closes the TCP connection (after any frames).
    pub fn expect_eof(&mut self) {
        while let Some(frame) = self.read_frame() {
            assert_ne!(frame.opcode, 0x8, "a second close frame: {frame:?}");
        }
    }

    /// The server's close code, then its end of the TCP connection.
    pub fn expect_close_then_eof(&mut self) -> (u16, String) {
        let close = self.expect_close();
        self.expect_eof();
        close
    }
}

/// Encodes one frame as given: `mask` `None` sends it unmasked. The
/// opcode byte may carry RSV bits (`0x40 | 0x1`).
pub fn frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(if fin { 0x80 } else { 0 } | opcode);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// Parses one server frame from the front of `buf`: the frame and its
/// length on the wire, or `None` if it is not all there yet.
pub fn parse_frame(buf: &[u8]) -> Option<(RawFrame, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let masked = b1 & 0x80 != 0;
    let (len, mut pos) = match b1 & 0x7f {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as u64, 4),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().unwrap()), 10),
        n => (u64::from(n), 2),
    };
    let mask = if masked {
        let key: [u8; 4] = buf.get(pos..pos + 4)?.try_into().unwrap();
        pos += 4;
        Some(key)
    } else {
        None
    };
    let end = pos + usize::try_from(len).ok()?;
    let mut payload = buf.get(pos..end)?.to_vec();
    if let Some(key) = mask {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }
    Some((
        RawFrame {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0x7,
            opcode: b0 & 0x0f,
            masked,
            payload,
        },
        end,
    ))
}

/// A top-level JSON field, as text (numbers and strings without quotes).
pub fn json_field(json: &str, name: &str) -> String {
    let start = json
        .find(&format!("\"{name}\":"))
        .unwrap_or_else(|| panic!("{name} in {json}"))
        + name.len()
        + 3;
    let rest = &json[start..];
    if let Some(rest) = rest.strip_prefix('"') {
        rest[..rest.find('"').unwrap()].to_string()
    } else {
        rest[..rest.find([',', '}']).unwrap()].to_string()
    }
}

/// The peak resident memory of a process so far (`VmHWM`), in KiB. The
/// peak, not the current size: memory taken and given back during a test
/// still shows, however quickly it was freed.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc status")
}

/// A JSON value, as far as a test needs one: enough to read `/stats` and
/// the polling answers and to refuse what is not JSON.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    /// Members in the order they came.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses a whole document (RFC 8259); anything else is an error that
    /// says where.
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut parser = JsonParser {
            bytes: text.as_bytes(),
            pos: 0,
        };
        let value = parser.value()?;
        parser.space();
        if parser.pos != parser.bytes.len() {
            return Err(format!("trailing bytes at {}", parser.pos));
        }
        Ok(value)
    }

    /// The value at a path of object keys (`["connections", "total"]`).
    /// Panics, naming the path, if it is not there.
    pub fn at(&self, path: &[&str]) -> &Json {
        let mut value = self;
        for (i, key) in path.iter().enumerate() {
            value = match value {
                Json::Object(members) => members
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v)
                    .unwrap_or_else(|| panic!("no {:?} in {self:?}", &path[..=i])),
                other => panic!("{:?} is not an object: {other:?}", &path[..i]),
            };
        }
        value
    }

    /// The number at `path`, which must be a whole number.
    pub fn count(&self, path: &[&str]) -> u64 {
        match self.at(path) {
            Json::Number(n) if n.fract() == 0.0 && *n >= 0.0 => *n as u64,
            other => panic!("{path:?} is not a count: {other:?}"),
        }
    }

    /// The string at `path`.
    pub fn str(&self, path: &[&str]) -> &str {
        match self.at(path) {
            Json::String(s) => s,
            other => panic!("{path:?} is not a string: {other:?}"),
        }
    }

    /// The keys of the object at `path`, in order.
    pub fn keys(&self, path: &[&str]) -> Vec<&str> {
        match self.at(path) {
            Json::Object(members) => members.iter().map(|(k, _)| k.as_str()).collect(),
            other => panic!("{path:?} is not an object: {other:?}"),
        }
    }
}

struct JsonParser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl JsonParser<'_> {
    fn space(&mut self) {
        while matches!(self.bytes.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        self.space();
        if self.bytes.get(self.pos) == Some(&byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at {}", byte as char, self.pos))
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, String> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(format!("unexpected bytes at {}", self.pos))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.space();
        match self.bytes.get(self.pos) {
            Some(b'{') => {
                self.pos += 1;
                let mut members = Vec::new();
                self.space();
                if self.bytes.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                    return Ok(Json::Object(members));
                }
                loop {
                    self.space();
                    let key = self.string()?;
                    self.expect(b':')?;
                    members.push((key, self.value()?));
                    self.space();
                    match self.bytes.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Json::Object(members));
                        }
                        _ => return Err(format!("expected , or }} at {}", self.pos)),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.space();
                if self.bytes.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value()?);
                    self.space();
                    match self.bytes.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Json::Array(items));
                        }
                        _ => return Err(format!("expected , or ] at {}", self.pos)),
                    }
                }
            }
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.pos;
                while matches!(
                    self.bytes.get(self.pos),
                    Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                ) {
                    self.pos += 1;
                }
                let text = std::str::from_utf8(&self.bytes[start..self.pos]).unwrap();
                text.parse()
                    .map(Json::Number)
                    .map_err(|_| format!("bad number {text:?} at {start}"))
            }
            _ => Err(format!("unexpected bytes at {}", self.pos)),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        if self.bytes.get(self.pos) != Some(&b'"') {
            return Err(format!("expected a string at {}", self.pos));
        }
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&byte) = self.bytes.get(self.pos) else {
                return Err("unterminated string".to_string());
            };
            self.pos += 1;
            match byte {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let escape = *self.bytes.get(self.pos).ok_or("unterminated escape")?;
                    self.pos += 1;
                    let c = match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hex = self.bytes.get(self.pos..self.pos + 4).ok_or("short \\u escape")?;
                            self.pos += 4;
                            let unit = u32::from_str_radix(std::str::from_utf8(hex).unwrap_or("x"), 16)
                                .map_err(|_| format!("bad \\u escape at {}", self.pos))?;
                            // Surrogate pairs are not needed by any answer
                            // duplex gives; one stands for itself.
                            char::from_u32(unit).unwrap_or('\u{FFFD}')
                        }
                        other => return Err(format!("bad escape \\{} at {}", other as char, self.pos)),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return Err(format!("control byte in a string at {}", self.pos - 1)),
                _ => out.push(byte),
            }
        }
    }
}

impl Duplex {
    /// Waits for the process to exit on its own; returns its status.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "duplex did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl RawWs {
    /// Wraps a stream on which the test wrote the handshake itself.
    pub fn from_stream(stream: TcpStream) -> RawWs {
        RawWs {
            stream,
            buf: Vec::new(),
        }
    }
}

/// A child process that takes its descendants with it: started in a
/// process group of its own and marked with an environment variable that
/// every process it starts inherits. Killing it kills the group, then
/// every process that still carries the mark, which finds those that left
/// the group (a browser may start its helpers in a group of their own, `timeout`
/// does the same for its command) or were orphaned when their parent died.
/// Dropping it kills what is left, so nothing outlives the test.
pub struct ProcessTree {
    pid: u32,
    marker: String,
    /// The child's exit status, sent by the thread that waits for it.
    exited: std::sync::mpsc::Receiver<std::process::ExitStatus>,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// A folder of the test's own, removed when dropped, even by a test that
/// fails.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("duplex-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("make a temporary folder");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The environment variable that marks a [`ProcessTree`]'s processes.
const TREE_MARK: &str = "DUPLEX_TEST_PROCESS_TREE";

impl ProcessTree {
    /// Spawns `command` with stdout and stderr captured (read on threads,
    /// so a full pipe never stalls it) and stdin closed.
    pub fn spawn(mut command: Command) -> ProcessTree {
        use std::os::unix::process::CommandExt;
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let marker = format!(
            "{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let mut child = command
            .process_group(0)
            .env(TREE_MARK, &marker)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        let read_all = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                String::from_utf8_lossy(&bytes).into_owned()
            })
        };
        let stdout = read_all(Box::new(child.stdout.take().expect("stdout")));
        let stderr = read_all(Box::new(child.stderr.take().expect("stderr")));
        let pid = child.id();
        let (tx, exited) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            if let Ok(status) = child.wait() {
                let _ = tx.send(status);
            }
        });
        ProcessTree {
            pid,
            marker,
            exited,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// Waits up to `limit` for the child to exit. On time, returns its
    /// status and everything it printed (stdout, stderr), once both pipes
    /// are closed. Past `limit`, kills the whole tree and returns `None`
    /// with what was printed so far.
    pub fn wait(&mut self, limit: Duration) -> (Option<std::process::ExitStatus>, String, String) {
        let status = self.exited.recv_timeout(limit).ok();
        // A descendant that outlived the child holds the pipes open; it
        // has no business running once the child is gone.
        self.kill();
        let stdout = self.stdout.take().map(|t| t.join().unwrap_or_default());
        let stderr = self.stderr.take().map(|t| t.join().unwrap_or_default());
        (status, stdout.unwrap_or_default(), stderr.unwrap_or_default())
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The child's exit status, if it has exited; does not wait.
    pub fn try_status(&self) -> Option<std::process::ExitStatus> {
        self.exited.try_recv().ok()
    }

    /// Kills the child's process group, then every process that carries
    /// this tree's mark, until none is left or [`WAIT`] passes. Returns
    /// the pids killed by their mark (the group is killed blind).
    pub fn kill(&mut self) -> Vec<u32> {
        signal_kill(&[format!("-{}", self.pid)]);
        let mut killed = Vec::new();
        let deadline = Instant::now() + WAIT;
        loop {
            let marked = processes_marked(&format!("{TREE_MARK}={}", self.marker));
            if marked.is_empty() {
                return killed;
            }
            assert!(
                Instant::now() < deadline,
                "processes {marked:?} of a test survived SIGKILL for {WAIT:?}"
            );
            signal_kill(&marked.iter().map(u32::to_string).collect::<Vec<_>>());
            for pid in marked {
                if !killed.contains(&pid) {
                    killed.push(pid);
                }
            }
            // A killed process keeps its mark until the kernel has torn it
            // down; look again shortly.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ProcessTree {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.kill();
        } else {
            // Never panic twice: a failing test still cleans up.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.kill()));
        }
    }
}

/// `kill -KILL -- TARGETS...` (a target `-PGID` is a process group).
fn signal_kill(targets: &[String]) {
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg("--")
        .args(targets)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The live processes whose environment holds `entry` (`NAME=VALUE`). A
/// zombie's environment reads as empty, so only processes still running
/// are found.
fn processes_marked(entry: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == entry.as_bytes()))
        })
        .collect()
}

impl Telnet {
    /// Reads until `needle` arrives; returns what came before it and
    /// drops the needle itself, as a telnet client waiting for a timing
    /// mark throws away the output before it (RFC 860). Panics after
    /// [`WAIT`] or at end of stream.
    pub fn until_bytes(&mut self, needle: &[u8]) -> Vec<u8> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(at) = self.buf.windows(needle.len()).position(|w| w == needle) {
                let before: Vec<u8> = self.buf.drain(..at).collect();
                self.buf.drain(..needle.len());
                return before;
            }
            assert!(
                Instant::now() < deadline,
                "never received {needle:?}; got {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!(
                    "closed before {needle:?}; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!(
                    "waiting for {needle:?}: {e}; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }
}
