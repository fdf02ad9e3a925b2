//! The doors: listening sockets, and what happens to a new connection.
//!
//! Two doors, line and web, each plain and, when asked for, with TLS under
//! it (`--tcps`, `--https`). A TLS door leads to the same protocols as its
//! plain twin: only the connection's transport differs (`transport.rs`).

use super::close::Close;
use super::conn::{Connection, Door, Protocol, Via};
use super::context::Next;
use super::descriptors::out_of_descriptors;
use super::http::Http;
use super::line::LineChat;
use super::line_echo::LineEcho;
use super::timers::{ConnTimer, Timer};
use super::{Server, LINE_LISTENER, LINE_TLS_LISTENER, WEB_LISTENER, WEB_TLS_LISTENER};
use crate::config::Config;
use crate::tls::Certificate;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Poll, Token};
use rustls::ServerConfig;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How long to wait before accepting again after the process ran out of
/// file descriptors (EMFILE): long enough not to spin, short enough that
/// nobody notices.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Whether a door has TLS under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Layer {
    /// Bytes as they come.
    Plain,
    /// TLS: `--tcps`, `--https`.
    Tls,
}

/// The listening sockets. A door is `None` once shutdown has closed it
/// (or, for a TLS door, when it was not asked for).
pub(super) struct Doors {
    line: Option<TcpListener>,
    web: Option<TcpListener>,
    line_tls: Option<TcpListener>,
    web_tls: Option<TcpListener>,
    pub line_addr: SocketAddr,
    pub web_addr: SocketAddr,
    pub line_tls_addr: Option<SocketAddr>,
    pub web_tls_addr: Option<SocketAddr>,
    /// What each TLS door's connections share: the certificate, and for
    /// the web door its ALPN answer.
    line_tls_config: Option<Arc<ServerConfig>>,
    web_tls_config: Option<Arc<ServerConfig>>,
    /// The pin of a certificate made at start, to print.
    pub pin: Option<String>,
    /// Accepting is paused after an error such as ENOMEM.
    paused: bool,
    /// A descriptor kept in reserve for answering when there are no more
    /// (see `descriptors.rs`).
    spare: Option<std::fs::File>,
}

impl Doors {
    pub fn bind(poll: &Poll, config: &Config) -> io::Result<Doors> {
        let line = listen(config.tcp, "the line door", "--tcp")?;
        let web = listen(config.http, "the web door", "--http")?;
        let line_tls = config
            .tcps
            .map(|addr| listen(addr, "the line door over TLS", "--tcps"))
            .transpose()?;
        let web_tls = config
            .https
            .map(|addr| listen(addr, "the web door over TLS", "--https"))
            .transpose()?;
        // The certificate is read (or made) only when a TLS door is open.
        let certificate = match line_tls.is_some() || web_tls.is_some() {
            true => Some(Certificate::load(
                config.tls_cert.as_deref(),
                config.tls_key.as_deref(),
            )?),
            false => None,
        };
        let mut doors = Doors {
            line_addr: line.local_addr()?,
            web_addr: web.local_addr()?,
            line_tls_addr: line_tls.as_ref().map(TcpListener::local_addr).transpose()?,
            web_tls_addr: web_tls.as_ref().map(TcpListener::local_addr).transpose()?,
            line_tls_config: certificate.as_ref().map(|c| c.config.clone()),
            web_tls_config: certificate.as_ref().map(|c| c.with_alpn(&[b"http/1.1"])),
            pin: certificate.and_then(|c| c.pin),
            line: Some(line),
            web: Some(web),
            line_tls,
            web_tls,
            paused: false,
            spare: super::descriptors::spare(),
        };
        let registry = poll.registry();
        for (listener, token) in [
            (&mut doors.line, LINE_LISTENER),
            (&mut doors.web, WEB_LISTENER),
            (&mut doors.line_tls, LINE_TLS_LISTENER),
            (&mut doors.web_tls, WEB_TLS_LISTENER),
        ] {
            if let Some(listener) = listener {
                registry.register(listener, token, Interest::READABLE)?;
            }
        }
        Ok(doors)
    }

    /// Closes every door: nothing new is accepted.
    pub fn close(&mut self, poll: &Poll) {
        let all = [
            self.line.take(),
            self.web.take(),
            self.line_tls.take(),
            self.web_tls.take(),
        ];
        for mut listener in all.into_iter().flatten() {
            let _ = poll.registry().deregister(&mut listener);
        }
    }

    fn listener(&self, door: Door, layer: Layer) -> Option<&TcpListener> {
        match (door, layer) {
            (Door::Line, Layer::Plain) => self.line.as_ref(),
            (Door::Web, Layer::Plain) => self.web.as_ref(),
            (Door::Line, Layer::Tls) => self.line_tls.as_ref(),
            (Door::Web, Layer::Tls) => self.web_tls.as_ref(),
        }
    }

    fn tls_config(&self, door: Door) -> Option<&Arc<ServerConfig>> {
        match door {
            Door::Line => self.line_tls_config.as_ref(),
            Door::Web => self.web_tls_config.as_ref(),
        }
    }
}

impl Server {
    /// Accepts every connection waiting on a listener (edge-triggered: one
    /// event may stand for many).
    pub(super) fn accept_all(&mut self, door: Door, layer: Layer) {
        loop {
            let Some(listener) = self.doors.listener(door, layer) else {
                return;
            };
            match listener.accept() {
                Ok((socket, peer)) => self.on_accept(door, layer, socket, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if out_of_descriptors(&e) && self.doors.spare.is_some() => {
                    self.refuse_with_spare(door, layer);
                }
                Err(e) if is_transient_accept_error(&e) => {
                    // The peer gave up before we accepted (ECONNABORTED) or
                    // similar: that connection is gone, the others are not.
                    log::debug!("accept: {e}");
                }
                Err(e) => {
                    // Out of file descriptors or memory. Accepting again at
                    // once would fail again and spin; pause, then retry.
                    log::error!("accept failed: {e}; pausing accepts for {ACCEPT_BACKOFF:?}");
                    if !self.doors.paused {
                        self.doors.paused = true;
                        let at = self.shared.now + ACCEPT_BACKOFF;
                        self.shared.timers.schedule(at, Timer::ResumeAccept);
                    }
                    return;
                }
            }
        }
    }

    /// Out of descriptors: let go of the spare, accept the waiting client
    /// with it, tell it why it cannot stay, close it, and take the spare
    /// back. Without this the client would wait in the backlog unanswered
    /// while every accept failed.
    fn refuse_with_spare(&mut self, door: Door, layer: Layer) {
        log::warn!("accept: out of file descriptors; refusing with the spare one");
        self.doors.spare = None;
        let listener = self.doors.listener(door, layer);
        if let Some(Ok((socket, peer))) = listener.map(TcpListener::accept) {
            self.refuse(door, layer, socket, peer, "out of file descriptors");
        }
        self.doors.spare = super::descriptors::spare();
    }

    /// The `ResumeAccept` timer: try every door again.
    pub(super) fn resume_accept(&mut self) {
        self.doors.paused = false;
        for layer in [Layer::Plain, Layer::Tls] {
            self.accept_all(Door::Line, layer);
            self.accept_all(Door::Web, layer);
        }
    }

    fn on_accept(&mut self, door: Door, layer: Layer, mut socket: TcpStream, peer: SocketAddr) {
        if self.shutdown.is_some() {
            return self.refuse(door, layer, socket, peer, "shutting down");
        }
        if self.conns.len() >= self.shared.config.max_connections {
            return self.refuse(door, layer, socket, peer, "connection limit reached");
        }
        // Small messages should leave at once rather than wait for more
        // (Nagle's algorithm); the loop batches writes itself.
        if let Err(e) = socket.set_nodelay(true) {
            log::debug!("{peer}: set_nodelay: {e}");
        }
        let protocol = self.first_protocol(door);
        let entry = self.conns.vacant_entry();
        let token = Token(entry.key());
        // Both interests once, for the connection's whole life: with edge
        // triggering a writable event comes only when the socket's send
        // buffer drains after being full, so it costs nothing while idle,
        // and we never need a `reregister` call.
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.poll.registry().register(&mut socket, token, interest) {
            log::error!("{peer}: register: {e}");
            return;
        }
        if let (Layer::Tls, Some(config)) = (layer, self.doors.tls_config(door)) {
            let buffer = self.shared.config.tls_buffer;
            if let Err(e) = self.sessions.open(token, config.clone(), buffer) {
                return log::error!("{peer}: {e}");
            }
        }
        self.next_serial = self.next_serial.wrapping_add(1);
        log::debug!(
            "{peer}: connected to the {} door{} (token {})",
            door.name(),
            if layer == Layer::Tls { " over TLS" } else { "" },
            token.0
        );
        self.shared.stats.connected(&protocol);
        entry.insert(Connection {
            socket,
            peer: super::peer::Peer::Direct(peer),
            serial: self.next_serial,
            protocol,
            close: Close::Open,
            why: None,
            out: crate::outq::OutQueue::new(),
            last_heard: self.shared.stamp,
            over_limit: false,
            crossings: 0,
            dirty: false,
            eof: false,
            via: match door {
                Door::Line => Via::Telnet,
                Door::Web => Via::Other,
            },
        });
        if layer == Layer::Tls {
            // A peer that never finishes its ClientHello (a slowloris on
            // TLS) is closed as one that never finishes its request head.
            let at = self.shared.now + self.shared.config.handshake_timeout;
            self.schedule(token, ConnTimer::TlsHandshake, at);
        }
        self.on_open(token);
    }

    /// What a new connection on `door` speaks first.
    fn first_protocol(&self, door: Door) -> Protocol {
        let config = &self.shared.config;
        match door {
            Door::Line if config.line_echo => Protocol::LineEcho(LineEcho::new(config.max_line)),
            Door::Line => Protocol::Line(LineChat::new(config.max_line)),
            Door::Web => Protocol::Http(Box::new(Http::new(config, self.shared.now))),
        }
    }

    /// A connection has just been accepted: its protocol starts (a telnet
    /// member joins the chat; an HTTP request gets its deadline).
    fn on_open(&mut self, token: Token) {
        let Some((protocol, mut cx)) = self.split(token) else {
            return;
        };
        let next = match protocol {
            Protocol::Line(line) => line.on_open(&mut cx),
            Protocol::LineEcho(echo) => echo.on_open(&mut cx),
            Protocol::Http(_) => {
                let at = cx.now + cx.config.handshake_timeout;
                cx.schedule(ConnTimer::RequestDeadline, at);
                Next::Continue
            }
            Protocol::WebSocket(_) | Protocol::EventStream(_) => Next::Continue,
        };
        self.follow(token, next);
    }

    /// Over the connection limit: say so in the door's language and close.
    /// The listener goes on accepting, so the next one may get in.
    ///
    /// A TLS door closes without a word: its language is TLS, and saying
    /// anything would mean a handshake, the most expensive thing a busy
    /// server could do.
    fn refuse(&mut self, door: Door, layer: Layer, mut socket: TcpStream, peer: SocketAddr, why: &str) {
        log::warn!("{peer}: refused: {why} ({} open)", self.conns.len());
        self.shared.stats.refused += 1;
        if layer == Layer::Tls {
            return;
        }
        let answer = match door {
            Door::Line => format!("! server busy: {why}; try again later\r\n").into_bytes(),
            Door::Web => {
                self.shared
                    .stats
                    .answered(crate::http::Status::SERVICE_UNAVAILABLE);
                let mut out = Vec::new();
                crate::http::Response::refusal(
                    crate::http::Status::SERVICE_UNAVAILABLE,
                    &format!("server busy: {why}"),
                )
                .header("Retry-After", "5")
                .close(true)
                .encode(&mut out);
                out
            }
        };
        // Best effort: a fresh socket's send buffer takes a short answer.
        let _ = socket.write(&answer);
        let _ = socket.shutdown(Shutdown::Write);
    }
}

/// Binds one door. A failure names the door, its address and the option
/// that moves it: "Address already in use" alone does not say which.
fn listen(addr: SocketAddr, door: &str, option: &str) -> io::Result<TcpListener> {
    TcpListener::bind(addr).map_err(|e| {
        let hint = match e.kind() {
            io::ErrorKind::AddrInUse => format!("; is another server running? choose another port with {option} ADDR (port 0 picks a free one)"),
            _ => format!("; choose another address with {option} ADDR"),
        };
        io::Error::new(e.kind(), format!("{door} cannot listen on {addr}: {e}{hint}"))
    })
}

/// Accept errors that concern only the one connection being accepted.
fn is_transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::PermissionDenied
    )
}
