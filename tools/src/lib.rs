//! # duplex-tools
//!
//! What duplex's two tools share. `duplex-load` measures a server (echo
//! rate and latency, memory per idle connection, broadcast delay);
//! `duplex-soak` starts a duplex and checks every line and echo of minutes
//! of mixed traffic. Both are the server's mirror image: one thread, one
//! `mio::Poll`, and duplex's own sans-IO codecs used from the client's side.
//!
//! * [`client`]: the client side of RFC 6455, sans-IO: the opening
//!   handshake and masked frames;
//! * [`conn`]: one client connection on a mio loop: connect, handshake,
//!   write and read until `WouldBlock`, frames decoded;
//! * [`http`]: the client side of plain HTTP/1.1, sans-IO: requests,
//!   answers, and server-sent events;
//! * [`json`]: just enough JSON to read the server's answers;
//! * [`procfs`]: a process's CPU time and memory, read from `/proc`;
//! * [`redis`]: a `redis-server` of their own, for a cluster of instances;
//! * [`tls`]: the client side of TLS, for `wss://`.
//!
//! Each tool keeps its own state machine on top of [`conn::Conn`]: what a
//! connection is for differs, the plumbing does not.

pub mod client;
pub mod conn;
pub mod http;
pub mod json;
pub mod procfs;
pub mod redis;
pub mod tls;
