//! The client side of RFC 6455, built from the same sans-IO pieces as the
//! server: the opening handshake from the other end, masked frames out, and
//! a [`Decoder`] in the client role. The examples, the tests and the load
//! tool use it; [`BlockingClient`] wraps it around a plain
//! `std::net::TcpStream` for programs that can afford to wait.

use crate::http::has_token;
use crate::random::random_u64;
use crate::ws::close::{close_payload, CloseFrame};
use crate::ws::decoder::MessageKind;
use crate::ws::handshake::sec_websocket_accept;
use crate::ws::{encode_frame, CloseCode, Decoder, Event, Limits, Opcode, Role};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A fresh `Sec-WebSocket-Key`: 16 random bytes in base64 (§4.1).
pub fn random_key() -> String {
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&random_u64().to_ne_bytes());
    nonce[8..].copy_from_slice(&random_u64().to_ne_bytes());
    BASE64.encode(nonce)
}

/// A fresh masking key (§5.3).
pub fn random_mask() -> [u8; 4] {
    let bytes = random_u64().to_ne_bytes();
    [bytes[0], bytes[1], bytes[2], bytes[3]]
}

/// The opening handshake request (§4.1).
pub fn handshake_request(host: &str, path: &str, key: &str, protocols: &[&str]) -> Vec<u8> {
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if !protocols.is_empty() {
        request.push_str(&format!("Sec-WebSocket-Protocol: {}\r\n", protocols.join(", ")));
    }
    request.push_str("\r\n");
    request.into_bytes()
}

/// Why the server's answer is not a valid `101`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// The answer's head is not complete yet; read more.
    Incomplete,
    /// Another status, with the response's body text if any came along.
    Status(u16, String),
    /// A `101` that breaks §4.1's rules for clients.
    Invalid(&'static str),
}

impl std::fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeFailure::Incomplete => write!(f, "incomplete response"),
            HandshakeFailure::Status(code, body) => write!(f, "server answered {code}: {}", body.trim()),
            HandshakeFailure::Invalid(why) => write!(f, "invalid handshake answer: {why}"),
        }
    }
}

/// A successful handshake answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The subprotocol the server chose, if any.
    pub protocol: Option<String>,
    /// Bytes of the response head: frames start right after.
    pub head_len: usize,
}

/// Checks the server's answer against §4.1 (client requirements 1–6).
pub fn check_response(bytes: &[u8], key: &str, offered: &[&str]) -> Result<Accepted, HandshakeFailure> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(HandshakeFailure::Incomplete),
        Err(_) => return Err(HandshakeFailure::Invalid("not an HTTP response")),
    };
    let code = response.code.unwrap_or(0);
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    if code != 101 {
        let body = String::from_utf8_lossy(&bytes[head_len..]).into_owned();
        return Err(HandshakeFailure::Status(code, body));
    }
    if !header("upgrade").is_some_and(|v| has_token(v, "websocket")) {
        return Err(HandshakeFailure::Invalid("no Upgrade: websocket"));
    }
    if !header("connection").is_some_and(|v| has_token(v, "upgrade")) {
        return Err(HandshakeFailure::Invalid("no Connection: Upgrade"));
    }
    if header("sec-websocket-accept").map(<[u8]>::trim_ascii) != Some(sec_websocket_accept(key).as_bytes()) {
        return Err(HandshakeFailure::Invalid("wrong Sec-WebSocket-Accept"));
    }
    let protocol = header("sec-websocket-protocol").map(|v| String::from_utf8_lossy(v).trim().to_string());
    if let Some(p) = &protocol {
        if !offered.contains(&p.as_str()) {
            return Err(HandshakeFailure::Invalid("a subprotocol that was not offered"));
        }
    }
    Ok(Accepted { protocol, head_len })
}

/// Appends one client frame, masked with a fresh key (§5.3).
pub fn encode_client_frame(out: &mut Vec<u8>, fin: bool, opcode: Opcode, payload: &[u8]) {
    encode_frame(out, fin, opcode, payload, Some(random_mask()));
}

/// A message or control event, owned, as the blocking client returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A whole text message, reassembled and checked as UTF-8 (§5.6).
    Text(String),
    /// A whole binary message, reassembled (§5.6).
    Binary(Vec<u8>),
    /// A ping and its application data; the caller owes a pong (§5.5.2).
    Ping(Vec<u8>),
    /// A pong, echoing a ping's data or unsolicited (§5.5.3).
    Pong(Vec<u8>),
    /// The server's close frame: code and reason, if it had a code.
    Close(Option<(CloseCode, String)>),
}

/// A WebSocket client over a blocking `TcpStream`: connect, send, receive.
pub struct BlockingClient {
    stream: TcpStream,
    decoder: Decoder,
    /// Read but not yet decoded (bytes after the handshake head, or after
    /// the last event).
    pending: Vec<u8>,
    /// The subprotocol the server chose.
    pub protocol: Option<String>,
}

impl BlockingClient {
    /// Connects to `addr`, asks for `path` and offers `protocols`.
    pub fn connect(addr: impl ToSocketAddrs, path: &str, protocols: &[&str]) -> io::Result<BlockingClient> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        let host = stream.peer_addr()?.to_string();
        let key = random_key();
        (&stream).write_all(&handshake_request(&host, path, &key, protocols))?;
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = (&stream).read(&mut buf)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed during the handshake",
                ));
            }
            head.extend_from_slice(&buf[..n]);
            match check_response(&head, &key, protocols) {
                Ok(accepted) => {
                    let pending = head.split_off(accepted.head_len);
                    return Ok(BlockingClient {
                        stream,
                        decoder: Decoder::new(Role::Client, Limits::default()),
                        pending,
                        protocol: accepted.protocol,
                    });
                }
                Err(HandshakeFailure::Incomplete) if head.len() < 64 * 1024 => continue,
                Err(e) => return Err(io::Error::new(io::ErrorKind::ConnectionRefused, e.to_string())),
            }
        }
    }

    /// Bounds every read, so a silent server cannot hang the caller.
    pub fn set_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)
    }

    /// Sends one text message as a single masked frame.
    pub fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.send(Opcode::Text, text.as_bytes())
    }

    /// Sends one binary message as a single masked frame.
    pub fn send_binary(&mut self, data: &[u8]) -> io::Result<()> {
        self.send(Opcode::Binary, data)
    }

    /// Sends one unfragmented frame of any opcode.
    pub fn send(&mut self, opcode: Opcode, payload: &[u8]) -> io::Result<()> {
        let mut frame = Vec::with_capacity(payload.len() + 14);
        encode_client_frame(&mut frame, true, opcode, payload);
        self.stream.write_all(&frame)
    }

    /// Starts the close handshake.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> io::Result<()> {
        self.send(Opcode::Close, &close_payload(code, reason))
    }

    /// Waits for the next message or control frame. `Ok(None)` means the
    /// server closed the TCP connection.
    pub fn recv(&mut self) -> io::Result<Option<Message>> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if !self.pending.is_empty() {
                let mut input = std::mem::take(&mut self.pending);
                let (used, event) = self
                    .decoder
                    .decode(&mut input)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let message = event.map(owned);
                self.pending = input.split_off(used);
                if let Some(message) = message {
                    return Ok(Some(message));
                }
            }
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Ok(None);
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
    }

    /// The underlying stream, for tests that need raw access.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

fn owned(event: Event<'_>) -> Message {
    match event {
        Event::Message(MessageKind::Text, p) => Message::Text(String::from_utf8_lossy(p).into_owned()),
        Event::Message(MessageKind::Binary, p) => Message::Binary(p.to_vec()),
        Event::Ping(p) => Message::Ping(p.to_vec()),
        Event::Pong(p) => Message::Pong(p.to_vec()),
        Event::Close(frame) => {
            Message::Close(frame.map(|CloseFrame { code, reason }| (code, reason.to_string())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_fresh_and_well_formed() {
        let (a, b) = (random_key(), random_key());
        assert_ne!(a, b);
        assert_eq!(BASE64.decode(&a).unwrap().len(), 16);
    }

    #[test]
    fn checks_the_answer() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let good = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n\x81\x00";
        let accepted = check_response(good, key, &["chat"]).unwrap();
        assert_eq!(accepted.protocol.as_deref(), Some("chat"));
        assert_eq!(&good[accepted.head_len..], b"\x81\x00");
        assert_eq!(
            check_response(good, key, &["other"]),
            Err(HandshakeFailure::Invalid("a subprotocol that was not offered"))
        );
        assert_eq!(
            check_response(&good[..20], key, &[]),
            Err(HandshakeFailure::Incomplete)
        );
        let refused = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nno!\n";
        assert!(matches!(
            check_response(refused, key, &[]),
            Err(HandshakeFailure::Status(403, _))
        ));
    }
}
