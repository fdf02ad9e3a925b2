//! Example 4: a WebSocket client, the other end of example 3.
//!
//! The Node original, with the `ws` package (the browser's
//! `new WebSocket(url, 'echo-protocol')` is the same API):
//!
//! ```js
//! const ws = new WebSocket('ws://127.0.0.1:9003/', 'echo-protocol');
//! ws.on('open', () => ws.send('Hello WebSocket!'));
//! ws.on('message', m => { console.log('message:', m.toString()); ws.close(1000, 'bye'); });
//! ```
//!
//! ```text
//! cargo run --example ws_client [URL]     # default ws://127.0.0.1:9003/
//! cargo run --example ws_client ws://127.0.0.1:8080/echo
//! ```
//!
//! It sends a text message, a binary message and a ping, prints each answer,
//! then closes with 1000. A server may also talk on its own (a chat greets
//! and relays, a clock ticks): whatever comes is printed as it comes, and
//! each step waits at most two seconds for its own answer. `BlockingClient`, in `common/client.rs`, does the
//! handshake from the client's side (§4.1) and masks every frame it sends
//! (§5.3); it blocks, which is fine for a program with one connection.

mod common;

use common::client::{BlockingClient, Message};
use duplex::ws::{CloseCode, Opcode};
use std::io;
use std::time::{Duration, Instant};

fn main() -> io::Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9003/".into());
    let (host, path) = split_url(&url)?;

    // The TCP connection, then the opening handshake: a GET with
    // `Upgrade: websocket`, answered by `101 Switching Protocols`.
    let mut ws = BlockingClient::connect(host, path, &["echo-protocol"])?;
    // `ws.protocol` is the browser's `ws.protocol`: what the server chose.
    let protocol = ws.protocol.as_deref().unwrap_or("none");
    println!("open: {url} (subprotocol: {protocol})");

    // A text frame (opcode 0x1): UTF-8, checked by the receiver (§5.6).
    ws.send_text("Hello WebSocket!")?;
    if !print_until(
        &mut ws,
        |m| matches!(m, Message::Text(t) if t == "Hello WebSocket!"),
    )? {
        return closed_by_server(&mut ws);
    }

    // A binary frame (opcode 0x2): any bytes. The browser sends one for
    // `ws.send(arrayBuffer)` or `ws.send(blob)`.
    ws.send_binary(&[0xde, 0xad, 0xbe, 0xef])?;
    if !print_until(
        &mut ws,
        |m| matches!(m, Message::Binary(b) if b[..] == [0xde, 0xad, 0xbe, 0xef]),
    )? {
        return closed_by_server(&mut ws);
    }

    // A ping (0x9) must come back as a pong (0xA) with the same payload
    // (§5.5.2). Browsers cannot send pings; programs can.
    ws.send(Opcode::Ping, b"are you there?")?;
    if !print_until(
        &mut ws,
        |m| matches!(m, Message::Pong(p) if p == b"are you there?"),
    )? {
        return closed_by_server(&mut ws);
    }

    // The closing handshake (§7): we send a close frame, the server answers
    // with its own (messages it sent before it still arrive first), then
    // closes TCP. After its close frame a server may send nothing (§5.5.1).
    ws.close(CloseCode::NORMAL, "bye")?;
    print_until(&mut ws, |_| false)?;
    expect_end(&mut ws)
}

/// The server sent a close frame first (§7.1.2, its side of the closing
/// handshake): answer with ours, echoing its code (§5.5.1), then it
/// closes TCP.
fn closed_by_server(ws: &mut BlockingClient) -> io::Result<()> {
    match ws.close(CloseCode::NORMAL, "") {
        Err(e) if gone(&e) => {
            println!("closed");
            Ok(())
        }
        Err(e) => Err(e),
        Ok(()) => expect_end(ws),
    }
}

/// After its close frame a server may send nothing more (§5.5.1): only
/// the end of the TCP stream.
fn expect_end(ws: &mut BlockingClient) -> io::Result<()> {
    ws.set_timeout(Some(Duration::from_secs(2)))?;
    match ws.recv() {
        Ok(None) => println!("closed"),
        // A server that closed before reading all we sent makes its kernel
        // answer with a reset (RFC 1122 §4.2.2.13): closed all the same.
        Err(e) if gone(&e) => println!("closed"),
        Ok(Some(other)) => println!("unexpected after close: {other:?}"),
        Err(e) => return Err(e),
    }
    Ok(())
}

/// The server has already closed the connection.
fn gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}

/// Prints what the server says, like `ws.on('message')`, until the answer
/// to what we just sent arrives (`answers` says which that is) or two
/// seconds pass: every wait is bounded, so a server that never answers
/// cannot hang us. Returns `false` once the server's close frame came.
fn print_until(ws: &mut BlockingClient, answers: impl Fn(&Message) -> bool) -> io::Result<bool> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            println!("(no answer within 2 s)");
            return Ok(true);
        }
        ws.set_timeout(Some(left))?;
        let message = match ws.recv() {
            Ok(Some(message)) => message,
            Ok(None) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed")),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
            Err(e) => return Err(e),
        };
        print(&message);
        if matches!(message, Message::Close(_)) {
            return Ok(false);
        }
        if answers(&message) {
            return Ok(true);
        }
    }
}

/// One message as the Node example would log it.
fn print(message: &Message) {
    match message {
        Message::Text(text) => println!("text: {text}"),
        Message::Binary(bytes) => println!("binary: {}", hex(bytes)),
        Message::Ping(bytes) => println!("ping: {}", String::from_utf8_lossy(bytes)),
        Message::Pong(bytes) => println!("pong: {}", String::from_utf8_lossy(bytes)),
        Message::Close(Some((code, reason))) => println!("close: {} {reason}", code.0),
        Message::Close(None) => println!("close: no status"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `ws://host:port/path` into `host:port` and `/path`. Only `ws://`: this
/// example speaks no TLS, which `wss://` would need (§3, port 443).
fn split_url(url: &str) -> io::Result<(&str, &str)> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{url}: {why}"));
    let rest = url.strip_prefix("ws://").ok_or_else(|| bad("only ws:// URLs"))?;
    let (host, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    if host.contains(':') {
        Ok((host, path))
    } else {
        Err(bad("give the port, e.g. ws://127.0.0.1:9003/"))
    }
}
