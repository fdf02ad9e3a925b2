//! # duplex
//!
//! A raw TCP and WebSocket server on one mio event loop, written to be
//! read. Start with [`server`]'s module page: it explains the loop, and
//! `Server::run` is the recipe everything else hangs from. Then:
//!
//! * [`line`](mod@line): what a telnet client sends, and lines out of it;
//! * [`http`]: reading a request head without being fooled by it;
//! * [`ws`]: RFC 6455 by hand: [`ws::handshake`], [`ws::frame`],
//!   [`ws::decoder`], [`ws::close`];
//! * [`hub`]: the chat that both doors lead to;
//! * [`timer`], [`outq`]: the loop's timers and its bounded output;
//! * [`config`]: every option and limit, with its default and reason;
//! * [`files`]: `--static DIR`, which file a request path may name;
//! * [`forwarded`]: the client behind a reverse proxy (`X-Forwarded-For`);
//! * [`resp`], [`relay`]: rooms across instances through Redis
//!   (`--redis`), sans-IO like the codecs;
//! * [`tls`]: the certificate for the TLS doors (TLS itself is a layer
//!   under each connection, in `server/transport.rs`).
//!
//! The protocol modules are *sans-IO*: bytes in, events out, no sockets
//! and no clocks, so each is tested with byte slices. Only [`server`]
//! touches the operating system.
//!
//! ## The codecs in a few lines
//!
//! Because they are sans-IO, each codec can be tried with a byte string.
//! The opening handshake proves the server read the client's key by
//! hashing it with a fixed GUID (RFC 6455 §1.3, §4.2.2); this is the RFC's
//! own example:
//!
//! ```rust
//! use duplex::ws::handshake::sec_websocket_accept;
//!
//! assert_eq!(
//!     sec_websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="),
//!     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
//! );
//! ```
//!
//! The telnet door's line codec finds lines however they end, and takes
//! telnet commands out of them. Here a line ends with CR LF, the next with
//! CR NUL (a bare CR the telnet way, RFC 854), and before the last one the
//! client pressed Ctrl-C, which telnet sends as `IAC IP IAC DO TIMING-MARK`
//! (`FF F4 FF FD 06`). The codec names both commands, and has the answer
//! to the second ready: `IAC WILL TIMING-MARK` (RFC 860), without which a
//! real telnet client would discard everything the server says next.
//!
//! ```rust
//! use duplex::line::{LineCodec, LineEnd, LineEvent};
//!
//! let mut codec = LineCodec::new(4096);
//! let mut input: &[u8] = b"hello\r\nworld\r\0\xFF\xF4\xFF\xFD\x06ok\n";
//! let (mut lines, mut commands, mut answers) = (Vec::new(), Vec::new(), Vec::new());
//! loop {
//!     let (used, event) = codec.decode(input);
//!     match event {
//!         Some(LineEvent::Line(line, end)) => lines.push((line.to_vec(), end)),
//!         Some(LineEvent::Command { command, answer }) => {
//!             commands.push(command.to_string());
//!             answers.extend(answer.map(|a| a.bytes().to_vec()));
//!         }
//!         Some(LineEvent::TooLong { .. } | LineEvent::SubnegotiationTooLong { .. }) => {
//!             unreachable!("nothing here is long")
//!         }
//!         None => break,
//!     }
//!     input = &input[used..];
//! }
//! assert_eq!(
//!     lines,
//!     [
//!         (b"hello".to_vec(), LineEnd::Cr),
//!         (b"world".to_vec(), LineEnd::Cr),
//!         (b"ok".to_vec(), LineEnd::Lf),
//!     ]
//! );
//! assert_eq!(commands, ["IAC IP", "IAC DO TIMING-MARK"]);
//! assert_eq!(answers, [vec![0xFF, 0xFB, 0x06]]);
//! ```
//!
//! Frames are in [`ws::frame`] and [`ws::decoder`], with RFC 6455 §5.7's
//! examples.

#![warn(missing_docs)]
// One system call needs `unsafe`: reading the kernel's TCP_INFO for the
// page's connection table (`server/tcp_info.rs`, with its safety argument).
// Everywhere else it is refused.
#![deny(unsafe_code)]

pub mod clock;
pub mod config;
pub mod engineio;
pub mod files;
pub mod forwarded;
pub mod hexdump;
pub mod http;
pub mod hub;
pub mod line;
pub mod origin;
pub mod outq;
pub mod random;
pub mod relay;
pub mod resp;
pub mod server;
pub mod socketio;
pub mod timer;
pub mod tls;
pub mod ws;

pub use config::Config;
pub use server::Server;
