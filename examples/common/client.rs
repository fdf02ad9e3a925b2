//! A blocking WebSocket client, for `ws_client.rs`: the opening handshake
//! from the client's side (RFC 6455 §4.1), masked frames out (§5.3), and
//! duplex's own frame decoder, in the client role, for what comes back.
//!
//! It blocks on a plain `std::net::TcpStream`, which suits a program with
//! one connection. duplex's load tool (`tools/`) drives thousands of
//! connections from one mio loop instead, with the same codec.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use duplex::http::has_token;
use duplex::random::random_u64;
use duplex::ws::close::close_payload;
use duplex::ws::decoder::MessageKind;
use duplex::ws::handshake::sec_websocket_accept;
use duplex::ws::{encode_frame, CloseCode, Decoder, Event, Limits, Opcode, Role};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// What the server sent, owned: a message, a control frame, its close.
#[derive(Debug)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// The close frame's code and reason, if it had a code (§5.5.1).
    Close(Option<(CloseCode, String)>),
}

pub struct BlockingClient {
    stream: TcpStream,
    decoder: Decoder,
    /// Read but not decoded yet: frames may arrive with the handshake's
    /// answer, or several in one read.
    pending: Vec<u8>,
    /// The subprotocol the server chose, like the browser's `ws.protocol`.
    pub protocol: Option<String>,
}

impl BlockingClient {
    /// Connects to `addr` (`host:port`), asks for `path` and offers
    /// `protocols`: the browser's `new WebSocket(url, protocols)`.
    pub fn connect(addr: &str, path: &str, protocols: &[&str]) -> io::Result<BlockingClient> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        // §4.1: a fresh key of 16 random bytes. The server proves it read
        // this request by hashing the key into `Sec-WebSocket-Accept`.
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&random_u64().to_ne_bytes());
        nonce[8..].copy_from_slice(&random_u64().to_ne_bytes());
        let key = BASE64.encode(nonce);
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        );
        if !protocols.is_empty() {
            request += &format!("Sec-WebSocket-Protocol: {}\r\n", protocols.join(", "));
        }
        stream.write_all(format!("{request}\r\n").as_bytes())?;

        // Read until the answer's head is complete (a blank line).
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        let head_len = loop {
            if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let n = stream.read(&mut buf)?;
            if n == 0 || answer.len() > 64 * 1024 {
                return Err(refused("no complete answer to the handshake"));
            }
            answer.extend_from_slice(&buf[..n]);
        };
        let protocol = check_answer(&answer[..head_len], &key, protocols)?;
        Ok(BlockingClient {
            stream,
            decoder: Decoder::new(Role::Client, Limits::default()),
            pending: answer.split_off(head_len),
            protocol,
        })
    }

    /// Bounds every wait for the server.
    pub fn set_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)
    }

    pub fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.send(Opcode::Text, text.as_bytes())
    }

    pub fn send_binary(&mut self, data: &[u8]) -> io::Result<()> {
        self.send(Opcode::Binary, data)
    }

    /// Sends one frame, masked with a fresh key: a client must mask every
    /// frame (§5.3), so a proxy cannot be fooled into caching our bytes.
    pub fn send(&mut self, opcode: Opcode, payload: &[u8]) -> io::Result<()> {
        let bytes = random_u64().to_ne_bytes();
        let mask = [bytes[0], bytes[1], bytes[2], bytes[3]];
        let mut frame = Vec::with_capacity(payload.len() + 14);
        encode_frame(&mut frame, true, opcode, payload, Some(mask));
        self.stream.write_all(&frame)
    }

    /// Starts the closing handshake (§7.1.2).
    pub fn close(&mut self, code: CloseCode, reason: &str) -> io::Result<()> {
        self.send(Opcode::Close, &close_payload(code, reason))
    }

    /// Waits for the next message or control frame; `None` once the server
    /// has closed the TCP connection.
    pub fn recv(&mut self) -> io::Result<Option<Message>> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // The decoder keeps a partial frame itself, so every byte
            // handed to it counts as used (`used`).
            let (used, event) = self
                .decoder
                .decode(&mut self.pending)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let message = event.map(owned);
            self.pending.drain(..used);
            if message.is_some() {
                return Ok(message);
            }
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Ok(None);
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
    }
}

/// Checks the answer's head as §4.1 tells a client to: `101`, the upgrade
/// headers, the right accept key, and no subprotocol we did not offer.
/// Returns the subprotocol chosen.
fn check_answer(head: &[u8], key: &str, offered: &[&str]) -> io::Result<Option<String>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    if !matches!(response.parse(head), Ok(httparse::Status::Complete(_))) {
        return Err(refused("not an HTTP response"));
    }
    if response.code != Some(101) {
        return Err(refused(&format!("the server answered {:?}", response.code)));
    }
    let header = |name: &str| {
        let found = response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name));
        found.map(|h| h.value.trim_ascii())
    };
    if !header("upgrade").is_some_and(|v| has_token(v, "websocket"))
        || !header("connection").is_some_and(|v| has_token(v, "upgrade"))
    {
        return Err(refused("no Upgrade: websocket, Connection: Upgrade"));
    }
    if header("sec-websocket-accept") != Some(sec_websocket_accept(key).as_bytes()) {
        return Err(refused("wrong Sec-WebSocket-Accept"));
    }
    let protocol = header("sec-websocket-protocol").map(|v| String::from_utf8_lossy(v).into_owned());
    match protocol {
        Some(p) if !offered.contains(&p.as_str()) => Err(refused("a subprotocol we did not offer")),
        protocol => Ok(protocol),
    }
}

fn refused(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionRefused, why.to_string())
}

fn owned(event: Event<'_>) -> Message {
    match event {
        // The decoder has checked the UTF-8 (§8.1): nothing is replaced.
        Event::Message(MessageKind::Text, p) => Message::Text(String::from_utf8_lossy(p).into_owned()),
        Event::Message(MessageKind::Binary, p) => Message::Binary(p.to_vec()),
        Event::Ping(p) => Message::Ping(p.to_vec()),
        Event::Pong(p) => Message::Pong(p.to_vec()),
        Event::Close(frame) => Message::Close(frame.map(|f| (f.code, f.reason.to_string()))),
        // Only after permessage-deflate was agreed, which this client never
        // offers: its decoder refuses RSV1 instead (1002).
        Event::Compressed(..) => {
            Message::Close(Some((CloseCode::PROTOCOL_ERROR, "no extension agreed".into())))
        }
    }
}
