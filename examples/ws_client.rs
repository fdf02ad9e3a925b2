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
//! then closes with 1000. `BlockingClient`, in `common/client.rs`, does the
//! handshake from the client's side (§4.1) and masks every frame it sends
//! (§5.3); it blocks, which is fine for a program with one connection.

mod common;

use common::client::{BlockingClient, Message};
use duplex::ws::{CloseCode, Opcode};
use std::io;
use std::time::Duration;

fn main() -> io::Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9003/".into());
    let (host, path) = split_url(&url)?;

    // The TCP connection, then the opening handshake: a GET with
    // `Upgrade: websocket`, answered by `101 Switching Protocols`.
    let mut ws = BlockingClient::connect(host, path, &["echo-protocol"])?;
    // Every wait is bounded: a silent server cannot hang us for ever.
    ws.set_timeout(Some(Duration::from_secs(10)))?;
    // `ws.protocol` is the browser's `ws.protocol`: what the server chose.
    let protocol = ws.protocol.as_deref().unwrap_or("none");
    println!("open: {url} (subprotocol: {protocol})");

    // A text frame (opcode 0x1): UTF-8, checked by the receiver (§5.6).
    ws.send_text("Hello WebSocket!")?;
    print_next(&mut ws)?;

    // A binary frame (opcode 0x2): any bytes. The browser sends one for
    // `ws.send(arrayBuffer)` or `ws.send(blob)`.
    ws.send_binary(&[0xde, 0xad, 0xbe, 0xef])?;
    print_next(&mut ws)?;

    // A ping (0x9) must come back as a pong (0xA) with the same payload
    // (§5.5.2). Browsers cannot send pings; programs can.
    ws.send(Opcode::Ping, b"are you there?")?;
    print_next(&mut ws)?;

    // The closing handshake (§7): we send a close frame, the server answers
    // with its own, then closes TCP.
    ws.close(CloseCode::NORMAL, "bye")?;
    print_next(&mut ws)?;
    match ws.recv()? {
        None => println!("closed"),
        Some(other) => println!("unexpected after close: {other:?}"),
    }
    Ok(())
}

/// Waits for the next frame and prints it, like `ws.on('message')`.
fn print_next(ws: &mut BlockingClient) -> io::Result<()> {
    match ws.recv()? {
        Some(Message::Text(text)) => println!("text: {text}"),
        Some(Message::Binary(bytes)) => println!("binary: {}", hex(&bytes)),
        Some(Message::Ping(bytes)) => println!("ping: {}", String::from_utf8_lossy(&bytes)),
        Some(Message::Pong(bytes)) => println!("pong: {}", String::from_utf8_lossy(&bytes)),
        Some(Message::Close(Some((code, reason)))) => println!("close: {} {reason}", code.0),
        Some(Message::Close(None)) => println!("close: no status"),
        None => println!("closed"),
    }
    Ok(())
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
