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
//! * [`config`]: every option and limit, with its default and reason.
//!
//! The protocol modules are *sans-IO*: bytes in, events out, no sockets
//! and no clocks, so each is tested with byte slices. Only [`server`]
//! touches the operating system.

#![warn(missing_docs)]

pub mod clock;
pub mod config;
pub mod hexdump;
pub mod http;
pub mod hub;
pub mod line;
pub mod origin;
pub mod outq;
pub mod random;
pub mod server;
pub mod timer;
pub mod ws;

pub use config::Config;
pub use server::Server;
