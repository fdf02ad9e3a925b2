//! The two doors: listening sockets, and what happens to a new connection.

use super::close::Close;
use super::conn::{Connection, Door, Protocol, Via};
use super::context::Next;
use super::descriptors::out_of_descriptors;
use super::http::Http;
use super::line::LineChat;
use super::line_echo::LineEcho;
use super::timers::{ConnTimer, Timer};
use super::{Server, LINE_LISTENER, WEB_LISTENER};
use crate::config::Config;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Poll, Token};
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

/// How long to wait before accepting again after the process ran out of
/// file descriptors (EMFILE): long enough not to spin, short enough that
/// nobody notices.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The listening sockets. A door is `None` once shutdown has closed it.
pub(super) struct Doors {
    line: Option<TcpListener>,
    web: Option<TcpListener>,
    pub line_addr: SocketAddr,
    pub web_addr: SocketAddr,
    /// Accepting is paused after an error such as ENOMEM.
    paused: bool,
    /// A descriptor kept in reserve for answering when there are no more
    /// (see `descriptors.rs`).
    spare: Option<std::fs::File>,
}

impl Doors {
    pub fn bind(poll: &Poll, config: &Config) -> io::Result<Doors> {
        let mut line = listen(config.tcp, "the line door", "--tcp")?;
        let mut web = listen(config.http, "the web door", "--http")?;
        let line_addr = line.local_addr()?;
        let web_addr = web.local_addr()?;
        poll.registry()
            .register(&mut line, LINE_LISTENER, Interest::READABLE)?;
        poll.registry()
            .register(&mut web, WEB_LISTENER, Interest::READABLE)?;
        Ok(Doors {
            line: Some(line),
            web: Some(web),
            line_addr,
            web_addr,
            paused: false,
            spare: super::descriptors::spare(),
        })
    }

    /// Closes both doors: nothing new is accepted.
    pub fn close(&mut self, poll: &Poll) {
        for mut listener in [self.line.take(), self.web.take()].into_iter().flatten() {
            let _ = poll.registry().deregister(&mut listener);
        }
    }
}

impl Server {
    /// Accepts every connection waiting on a listener (edge-triggered: one
    /// event may stand for many).
    pub(super) fn accept_all(&mut self, door: Door) {
        loop {
            let listener = match door {
                Door::Line => self.doors.line.as_ref(),
                Door::Web => self.doors.web.as_ref(),
            };
            let Some(listener) = listener else { return };
            match listener.accept() {
                Ok((socket, peer)) => self.on_accept(door, socket, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if out_of_descriptors(&e) && self.doors.spare.is_some() => {
                    self.refuse_with_spare(door);
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
    fn refuse_with_spare(&mut self, door: Door) {
        log::warn!("accept: out of file descriptors; refusing with the spare one");
        self.doors.spare = None;
        let listener = match door {
            Door::Line => self.doors.line.as_ref(),
            Door::Web => self.doors.web.as_ref(),
        };
        if let Some(Ok((socket, peer))) = listener.map(TcpListener::accept) {
            self.refuse(door, socket, peer, "out of file descriptors");
        }
        self.doors.spare = super::descriptors::spare();
    }

    /// The `ResumeAccept` timer: try both doors again.
    pub(super) fn resume_accept(&mut self) {
        self.doors.paused = false;
        self.accept_all(Door::Line);
        self.accept_all(Door::Web);
    }

    fn on_accept(&mut self, door: Door, mut socket: TcpStream, peer: SocketAddr) {
        if self.shutdown.is_some() {
            return self.refuse(door, socket, peer, "shutting down");
        }
        if self.conns.len() >= self.shared.config.max_connections {
            return self.refuse(door, socket, peer, "connection limit reached");
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
        self.next_serial = self.next_serial.wrapping_add(1);
        log::debug!(
            "{peer}: connected to the {} door (token {})",
            door.name(),
            token.0
        );
        self.shared.stats.connected(&protocol);
        entry.insert(Connection {
            socket,
            peer,
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
    fn refuse(&mut self, door: Door, mut socket: TcpStream, peer: SocketAddr, why: &str) {
        log::warn!("{peer}: refused: {why} ({} open)", self.conns.len());
        let answer = match door {
            Door::Line => format!("! server busy: {why}; try again later\r\n").into_bytes(),
            Door::Web => {
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
        self.shared.stats.refused += 1;
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
