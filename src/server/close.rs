//! The close machine: every way a connection ends, in one place.
//!
//! A connection says goodbye in three steps, and [`Close`] records how far
//! it has got:
//!
//! ```text
//!   Open ──close(why)──▶ Flushing ──queue empty: FIN──▶ FinSent ──peer's FIN──▶ Done
//!     │                     │                              │                     ▲
//!     └─────────────────────┴────abort(why): error, deadline────────────────────┘
//! ```
//!
//! * **Flushing**: our last words (a close frame, an error line, the
//!   answer to a request) are being written. Whatever the peer still sends
//!   is read and dropped.
//! * **FinSent**: our write side is shut, so the peer reads our FIN after
//!   our last byte. We read on until its own FIN. Closing like this, not at
//!   once, keeps the kernel from answering unread bytes with a reset that
//!   could destroy our last words before the peer reads them (RFC 1122
//!   §4.2.2.13).
//! * **Done**: freed at the end of the turn (`Server::reap_closed`).
//!
//! [`Server::close`] turns a reason ([`Why`]) into the goodbye each
//! protocol has for it: close 1000, 1001 or 1008 on a WebSocket, a last
//! line on telnet, nothing more on HTTP.

use super::conn::Protocol;
use super::context::Next;
use super::Server;
use crate::http::Status;
use crate::ws::CloseCode;
use mio::Token;
use std::fmt;
use std::time::Duration;

/// Why a connection ends: logged when it is freed and, where the protocol
/// allows, told to the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Why {
    /// The peer closed: its FIN arrived (while it was doing this).
    PeerClosed(&'static str),
    /// The peer sent a WebSocket close frame, and we answered it.
    PeerCloseFrame(Option<CloseCode>),
    /// We sent a close frame and the peer answered it (RFC 6455 §7.1.2).
    HandshakeComplete,
    /// The member said `/quit`.
    Quit,
    /// The server is shutting down (SIGINT, SIGTERM).
    Shutdown,
    /// A telnet member said nothing for `--idle-timeout`.
    Idle(Duration),
    /// A WebSocket peer did not answer our ping within `--pong-timeout`.
    NoPong(Duration),
    /// Output stayed over `--max-output` for `--slow-reader-timeout`.
    TooSlow,
    /// Output passed `--max-output-hard` (bytes queued).
    OverHardLimit(usize),
    /// The peer broke the WebSocket protocol: closed with this code.
    Violation(CloseCode, String),
    /// An HTTP answer that ends the connection.
    Answered(Status),
    /// Too many bytes pipelined behind a parked long poll.
    TooMuchPipelined,
    /// The HTTP member an event stream served has left.
    MemberLeft,
    /// A read or write failed.
    Error(String),
    /// The peer broke TLS, or spoke something else on a TLS door: rustls's
    /// fatal alert (RFC 8446 §6.2) is the last word, then our FIN.
    Tls(String),
    /// The peer took longer than `--close-timeout` to finish closing.
    CloseTimeout,
    /// A file from `--static` changed, shrank or failed while it went
    /// out: its `Content-Length` cannot be kept.
    FileChanged(String),
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::PeerClosed(what) => write!(f, "peer closed {what}"),
            Why::PeerCloseFrame(Some(code)) => write!(f, "peer closed with {code}"),
            Why::PeerCloseFrame(None) => f.write_str("peer closed without a code"),
            Why::HandshakeComplete => f.write_str("close handshake complete"),
            Why::Quit => f.write_str("said /quit"),
            Why::Shutdown => f.write_str("server shutdown"),
            Why::Idle(limit) => write!(f, "idle for {limit:?}"),
            Why::NoPong(limit) => write!(f, "no answer to ping within {limit:?}"),
            Why::TooSlow => f.write_str("too slow: output buffer full"),
            Why::OverHardLimit(queued) => {
                write!(f, "too slow: output over the hard limit ({queued} bytes queued)")
            }
            Why::Violation(code, text) => write!(f, "{text} ({})", code.0),
            Why::Answered(status) => write!(f, "answered {} {}", status.0, status.1),
            Why::TooMuchPipelined => f.write_str("too much pipelined behind a long poll"),
            Why::MemberLeft => f.write_str("its member left"),
            Why::Error(text) | Why::Tls(text) => f.write_str(text),
            Why::CloseTimeout => f.write_str("close timeout"),
            Why::FileChanged(text) => write!(f, "static file: {text}"),
        }
    }
}

impl Why {
    /// Each reason's name in `GET /metrics` (`duplex_closes_total{reason}`),
    /// in the order of the variants, and one more for a close whose reason
    /// went unrecorded (none should: it would be counted, not lost).
    pub const REASONS: [&'static str; 19] = [
        "peer_closed",
        "peer_close_frame",
        "handshake_complete",
        "quit",
        "shutdown",
        "idle",
        "no_pong",
        "too_slow",
        "over_hard_limit",
        "violation",
        "answered",
        "too_much_pipelined",
        "member_left",
        "error",
        "tls",
        "close_timeout",
        "file_changed",
        "answered_error",
        "unknown",
    ];
    /// The index of "unknown" in `REASONS`.
    pub const UNKNOWN: usize = Self::REASONS.len() - 1;

    /// This reason's place in `REASONS`. An HTTP answer that closed is
    /// split in two: a success, or a refusal (4xx, 5xx).
    pub fn reason_index(&self) -> usize {
        match self {
            Why::PeerClosed(_) => 0,
            Why::PeerCloseFrame(_) => 1,
            Why::HandshakeComplete => 2,
            Why::Quit => 3,
            Why::Shutdown => 4,
            Why::Idle(_) => 5,
            Why::NoPong(_) => 6,
            Why::TooSlow => 7,
            Why::OverHardLimit(_) => 8,
            Why::Violation(..) => 9,
            Why::Answered(status) if status.0 < 400 => 10,
            Why::TooMuchPipelined => 11,
            Why::MemberLeft => 12,
            Why::Error(_) => 13,
            Why::Tls(_) => 14,
            Why::CloseTimeout => 15,
            Why::FileChanged(_) => 16,
            Why::Answered(_) => 17,
        }
    }

    /// The WebSocket close frame this reason sends (RFC 6455 §7.4.1), and
    /// whether to wait for the peer's answer before closing TCP.
    fn close_frame(&self) -> Option<(CloseCode, String, bool)> {
        match self {
            Why::Quit => Some((CloseCode::NORMAL, "bye".into(), true)),
            Why::Shutdown => Some((CloseCode::GOING_AWAY, "server shutting down".into(), true)),
            Why::NoPong(_) => Some((CloseCode::GOING_AWAY, "no answer to ping".into(), true)),
            Why::TooSlow | Why::OverHardLimit(_) => Some((
                CloseCode::POLICY_VIOLATION,
                "too slow: output buffer full".into(),
                false,
            )),
            Why::Violation(code, text) => Some((*code, text.clone(), false)),
            _ => None,
        }
    }

    /// The last line a telnet user reads, if this reason has one.
    fn last_line(&self) -> Option<String> {
        match self {
            Why::Shutdown => Some("* server shutting down; goodbye".into()),
            Why::Idle(limit) => Some(format!("! idle for {limit:?}; goodbye")),
            Why::TooSlow | Why::OverHardLimit(_) => Some("! too slow: output buffer full; goodbye".into()),
            _ => None,
        }
    }

    /// A limit was broken: what is queued will never be read in time.
    fn drops_queue(&self) -> bool {
        matches!(self, Why::TooSlow | Why::OverHardLimit(_))
    }
}

/// How far a connection has got in closing. Moves only forward. The
/// reason is kept beside it, in the connection's `why`, from the moment
/// closing starts: one byte here and an empty box there is all an open
/// connection pays for a machine it uses once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Close {
    /// Reading and writing.
    Open,
    /// Writing our last words; the peer's input is dropped.
    Flushing,
    /// Our FIN is sent; reading until the peer's.
    FinSent,
    /// Over: freed at the end of the turn.
    Done,
}

impl Close {
    /// Still open for business (not closing).
    pub fn is_open(self) -> bool {
        self == Close::Open
    }
}

impl Server {
    /// The one place a connection's close state changes. Transitions only
    /// go forward; each is logged (`RUST_LOG=duplex=trace`). A new reason,
    /// when given, replaces the old: the last one is what ended it.
    fn set_close(&mut self, token: Token, next: Close, why: Option<Why>) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        if next <= conn.close {
            return;
        }
        log::trace!("{}: close {:?} -> {next:?}", conn.peer, conn.close);
        if conn.close.is_open() {
            self.shared.stats.closing_started(&conn.protocol);
        }
        conn.close = next;
        if let Some(why) = why {
            conn.why = Some(Box::new(why));
        }
        if next == Close::Done {
            self.reap.push(token);
        }
    }

    /// Ends a connection for `why`, with the goodbye its protocol has for
    /// that reason. Called again on a closing connection, it does nothing.
    pub(super) fn close(&mut self, token: Token, why: Why) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        if !conn.close.is_open() {
            return;
        }
        if let Protocol::WebSocket(ws) = &conn.protocol {
            // Our close frame is out and its answer awaited: only a broken
            // limit cuts the wait short (the close deadline bounds it).
            if !ws.is_open() && !why.drops_queue() {
                return;
            }
        }
        if why.drops_queue() {
            // At a frame or line boundary: a half-written frame is finished
            // first, or the goodbye would land inside its payload.
            conn.out.clear_unsent();
            if std::mem::take(&mut conn.over_limit) {
                // Reading resumes: the peer's answer or FIN must be heard
                // for the connection to finish closing.
                self.again.push(token);
            }
        }
        if self.say_goodbye(token, &why) {
            // RFC 6455 §7.1.2: the peer answers our close frame, and then
            // we close TCP first (§7.1.1). `--close-timeout` bounds the wait.
            self.leave(token);
            self.mark_dirty(token);
            let at = self.shared.now + self.shared.config.close_timeout;
            self.schedule(token, super::timers::ConnTimer::CloseDeadline, at);
            return;
        }
        self.finish(token, why);
    }

    /// Queues the protocol's last words for `why`. Returns whether the
    /// protocol waits for the peer's answer before closing (a WebSocket
    /// close handshake).
    fn say_goodbye(&mut self, token: Token, why: &Why) -> bool {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return false;
        };
        match &mut conn.protocol {
            Protocol::WebSocket(ws) => match why.close_frame() {
                Some((code, reason, wait)) if ws.is_open() => {
                    ws.send_close(&mut conn.out, &conn.peer, code, &reason);
                    wait
                }
                _ => false,
            },
            Protocol::Line(_) | Protocol::LineEcho(_) => {
                if let Some(line) = why.last_line() {
                    conn.out.encode_with(|out| {
                        out.extend_from_slice(line.as_bytes());
                        out.extend_from_slice(b"\r\n");
                    });
                    self.shared.stats.message_out(conn.via, 1);
                }
                false
            }
            Protocol::Http(_) | Protocol::EventStream(_) => false,
        }
    }

    /// The WebSocket's close handshake finished, or the protocol is over
    /// with nothing more to say: go straight to flushing.
    pub(super) fn finish(&mut self, token: Token, why: Why) {
        self.leave(token);
        self.set_close(token, Close::Flushing, Some(why));
        self.mark_dirty(token);
        let at = self.shared.now + self.shared.config.close_timeout;
        self.schedule(token, super::timers::ConnTimer::CloseDeadline, at);
    }

    /// Ends a connection at once: the socket failed, or a deadline passed.
    /// Nothing more is written.
    pub(super) fn abort(&mut self, token: Token, why: Why) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        log::debug!("{}: closing at once: {why}", conn.peer);
        conn.out.clear();
        // The member leaves the hub when the connection is freed, not here:
        // an abort can happen while the loop is carrying out a broadcast.
        self.release_waiter(token);
        self.set_close(token, Close::Done, Some(why));
    }

    /// After a flush: a closing connection whose last words are out sends
    /// FIN, and one whose peer has closed too is done.
    pub(super) fn advance_close(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        if !conn.out.is_empty() {
            return;
        }
        if conn.close == Close::Flushing {
            // Our last word is out: send FIN (after TLS's close_notify),
            // keep reading until the peer closes too.
            match self.sessions.transport(token, &conn.socket).shutdown_write() {
                Ok(true) => self.set_close(token, Close::FinSent, None),
                // close_notify waits for room in the socket; the next
                // writable event brings us back here.
                Ok(false) => return,
                Err(e) => return self.abort(token, Why::Error(format!("write error: {e}"))),
            }
        }
        let Some(conn) = self.conns.get(token.0) else {
            return;
        };
        if conn.close == Close::FinSent && conn.eof {
            self.set_close(token, Close::Done, None);
        }
    }

    /// Acts on what a handler answered, and carries out what it asked of
    /// the hub, in the order it happened: a new protocol first (so the
    /// hub's welcome is framed for it), then the hub's actions, then a
    /// close (so the answer to a last line goes out before the goodbye).
    pub(super) fn follow(&mut self, token: Token, next: Next) {
        match next {
            // The common case, a message answered: only the hub's actions
            // (if any) remain to carry out.
            Next::Continue | Next::WriteThrough { .. } => {
                self.deliver();
                self.resume(token);
            }
            Next::Become(protocol) => {
                self.become_protocol(token, protocol);
                self.deliver();
            }
            Next::Chat(chat) => {
                self.deliver();
                self.chat_request(token, *chat);
            }
            Next::File(request) => self.serve_file(token, *request),
            Next::Metrics(request) => self.serve_metrics(token, &request),
            next => {
                self.deliver();
                self.apply(token, next);
                self.deliver();
            }
        }
        self.mark_dirty(token);
    }

    /// Acts on what a handler answered, without carrying out the hub's
    /// actions: for handlers called while they are being carried out
    /// (a parked long poll woken by a line).
    pub(super) fn apply(&mut self, token: Token, next: Next) {
        match next {
            Next::Continue | Next::WriteThrough { .. } => {}
            Next::Become(protocol) => self.become_protocol(token, protocol),
            Next::Chat(_) | Next::File(_) | Next::Metrics(_) => {
                log::error!("a request cannot be answered while the hub's actions are carried out")
            }
            Next::Close(why @ (Why::HandshakeComplete | Why::PeerCloseFrame(_))) => self.finish(token, why),
            Next::Close(why) => self.close(token, why),
        }
        self.resume(token);
        self.mark_dirty(token);
    }

    /// The one place a connection's protocol changes (an HTTP request
    /// upgraded to a WebSocket, or turned into an event stream).
    fn become_protocol(&mut self, token: Token, protocol: Protocol) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        let old = std::mem::replace(&mut conn.protocol, protocol);
        log::debug!("{}: {} -> {}", conn.peer, old.name(), conn.protocol.name());
        self.shared.stats.protocol_changed(&old, &conn.protocol);
    }

    /// Frees the connections that finished this turn. Done after all
    /// events are handled, so no handler ever finds its connection gone
    /// mid-way, and tokens stay stable within a turn.
    ///
    /// Each departure is announced and delivered before the next is freed,
    /// so a crowd that drops at once costs one broadcast's memory at a
    /// time, not one per member held together. Writing those announcements
    /// may find more dead peers; they are freed in the same pass.
    pub(super) fn reap_closed(&mut self) {
        while let Some(token) = self.reap.pop() {
            match self.conns.get(token.0) {
                Some(conn) if conn.close == Close::Done => {}
                _ => continue,
            }
            self.leave(token);
            self.deliver();
            let Some(mut conn) = self.conns.try_remove(token.0) else {
                continue;
            };
            let _ = self.poll.registry().deregister(&mut conn.socket);
            self.sessions.close(token);
            let why = conn.why.as_deref().map_or(String::new(), Why::to_string);
            log::debug!("{}: disconnected ({why})", conn.peer);
            self.shared.stats.disconnected(conn.why.as_deref());
        }
        self.flush_dirty();
    }
}
