//! What the peer servers share: the listen address from the command
//! line, a single-threaded tokio runtime and tungstenite's echo loop (duplex is single-threaded too,
//! and each server is pinned to one core anyway).

use futures_util::{FutureExt, SinkExt, StreamExt};
use std::future::Future;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;

/// The address to listen on: the first argument, e.g. `127.0.0.1:9001`.
pub fn listen_addr(program: &str) -> String {
    match std::env::args().nth(1) {
        Some(addr) => addr,
        None => {
            eprintln!("usage: {program} HOST:PORT");
            std::process::exit(2);
        }
    }
}

/// Runs `main` on a current-thread runtime.
pub fn run<F: Future<Output = ()>>(main: F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("tokio runtime")
        .block_on(main)
}

/// Echoes every text and binary message, as tungstenite's users write it:
/// each one fed to the sink, with whatever else has already arrived, then
/// one flush.
pub async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut ws: WebSocketStream<S>) {
    while let Some(Ok(message)) = ws.next().await {
        if !(message.is_text() || message.is_binary()) {
            continue;
        }
        if ws.feed(message).await.is_err() {
            return;
        }
        // Take whatever else is already here before flushing.
        while let Some(Some(Ok(message))) = ws.next().now_or_never() {
            if (message.is_text() || message.is_binary()) && ws.feed(message).await.is_err() {
                return;
            }
        }
        if ws.flush().await.is_err() {
            return;
        }
    }
}

/// `Sec-WebSocket-Accept` for a key (RFC 6455 §4.2.2): base64 of the SHA-1
/// of the key and the protocol's GUID.
pub fn accept_key(key: &str) -> String {
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64(&sha1.digest().bytes())
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc_6455_example() {
        assert_eq!(
            super::accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
