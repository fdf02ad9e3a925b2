//! The loop's timers: what each kind is for, and who handles it when it
//! fires. All of them live in one heap (`crate::timer::Timers`) whose
//! nearest deadline is `poll`'s timeout.

use super::close::Why;
use super::Server;
use mio::Token;
use std::time::Instant;

/// What a timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Timer {
    /// One connection's timer. It names the connection by token *and*
    /// serial, so it cannot fire on a newer connection that reused the
    /// token. Both in four bytes: an idle connection keeps a timer in
    /// the heap all its life, so the entry's size is part of its cost
    /// (tokens are bounded by the descriptor limit; serials wrap, see
    /// `Connection::serial`).
    Conn {
        token: u32,
        serial: u32,
        kind: ConnTimer,
    },
    /// Accepting was paused after an error such as EMFILE.
    ResumeAccept,
    /// Graceful shutdown has run out of time.
    ShutdownDeadline,
    /// Look for HTTP chat members that stopped polling.
    SweepHttpMembers,
    /// A socket.io session's heartbeat or clock is due (`engineio.rs`).
    Session(super::engineio::SessionKey),
    /// Send the `/loop` observers an update (see `watch.rs`).
    LoopUpdate,
    /// The relay to other instances (`--redis`).
    Relay(super::relay::RelayTimer),
}

/// A connection's own timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ConnTimer {
    /// An HTTP request head must be complete by now.
    RequestDeadline,
    /// Ping a silent WebSocket peer, or give up on one that did not
    /// answer; an event stream's keep-alive comment.
    Heartbeat,
    /// Push the time to a clock subscriber (`/clock`, or `/time` in chat).
    Clock(u32),
    /// A closing connection has had its time.
    CloseDeadline,
    /// Output stayed over the soft limit too long: if it is still over
    /// since the crossing with this number (`Connection::crossings`).
    SlowReader(u32),
    /// A telnet connection with `--idle-timeout`.
    Idle,
    /// A parked long poll is answered empty.
    LongPollDeadline,
    /// A TLS handshake must be done by now (`--handshake-timeout`).
    TlsHandshake,
}

impl ConnTimer {
    /// The timer's name, for the loop's narration.
    pub fn name(self) -> &'static str {
        match self {
            ConnTimer::RequestDeadline => "RequestDeadline",
            ConnTimer::Heartbeat => "Heartbeat",
            ConnTimer::Clock(_) => "Clock",
            ConnTimer::CloseDeadline => "CloseDeadline",
            ConnTimer::SlowReader(_) => "SlowReader",
            ConnTimer::Idle => "Idle",
            ConnTimer::LongPollDeadline => "LongPollDeadline",
            ConnTimer::TlsHandshake => "TlsHandshake",
        }
    }
}

impl Timer {
    /// Connection `token`'s timer of `kind`.
    pub fn conn(token: Token, serial: u32, kind: ConnTimer) -> Timer {
        // Tokens are slab keys, below the descriptor limit (see
        // `descriptors.rs`), so they fit; checked rather than truncated.
        let token = u32::try_from(token.0).unwrap_or(u32::MAX);
        Timer::Conn { token, serial, kind }
    }
}

impl Server {
    /// Sets a timer for a connection, by token and serial.
    pub(super) fn schedule(&mut self, token: Token, kind: ConnTimer, at: Instant) {
        let Some(conn) = self.conns.get(token.0) else {
            return;
        };
        self.shared
            .timers
            .schedule(at, Timer::conn(token, conn.serial, kind));
    }

    /// Step 4: fires every timer that is due, carrying out the hub's
    /// actions after each.
    pub(super) fn run_timers(&mut self) {
        let now = Instant::now();
        self.shared.set_now(now);
        while let Some((at, timer)) = self.shared.timers.pop_due(now) {
            if self.watch.turn.on {
                self.note_timer(timer, now.saturating_duration_since(at));
            }
            match timer {
                Timer::ResumeAccept => self.resume_accept(),
                Timer::ShutdownDeadline => {}
                Timer::SweepHttpMembers => self.sweep_http_members(),
                Timer::Session(key) => self.session_timer(key),
                Timer::LoopUpdate => self.push_loop(),
                Timer::Relay(timer) => self.on_relay_timer(timer),
                Timer::Conn { token, serial, kind } => {
                    let token = Token(token as usize);
                    // Stale: the connection is gone, or the token now
                    // belongs to a newer one.
                    if self.conns.get(token.0).is_none_or(|c| c.serial != serial) {
                        continue;
                    }
                    log::trace!("timer: token {} {kind:?}", token.0);
                    self.on_timer(token, kind);
                }
            }
            self.deliver();
        }
    }

    /// Notes a timer that fired (called only while watched). A stale one
    /// (its connection gone) is left out: it did nothing.
    #[cold]
    #[inline(never)]
    fn note_timer(&mut self, timer: Timer, late: std::time::Duration) {
        let (token, kind) = match timer {
            Timer::Conn { token, serial, kind } => {
                let token = Token(token as usize);
                if self.conns.get(token.0).is_none_or(|c| c.serial != serial) {
                    return;
                }
                (Some(token), kind.name())
            }
            Timer::ResumeAccept => (None, "ResumeAccept"),
            Timer::ShutdownDeadline => (None, "ShutdownDeadline"),
            Timer::SweepHttpMembers => (None, "SweepHttpMembers"),
            Timer::Session(_) => (None, "Session"),
            Timer::Relay(timer) => (None, timer.name()),
            // The observers' own: never shown (see `watch.rs`).
            Timer::LoopUpdate => return,
        };
        self.watch
            .turn
            .note(super::turn::Note::Timer { token, kind, late });
    }

    /// A connection's timer: the close machine's own two, or the
    /// protocol's.
    fn on_timer(&mut self, token: Token, kind: ConnTimer) {
        let Some(conn) = self.conns.get(token.0) else {
            return;
        };
        match kind {
            ConnTimer::CloseDeadline => {
                log::debug!("{}: close timeout", conn.peer);
                self.abort(token, Why::CloseTimeout);
            }
            ConnTimer::SlowReader(crossing) => self.slow_reader(token, crossing),
            ConnTimer::TlsHandshake if self.sessions.is_handshaking(token) => {
                // Nothing can be said to a peer with no keys yet: no alert
                // would make sense of it (RFC 8446 §6.2 has none for
                // "too slow"), so the socket is simply closed.
                let limit = self.shared.config.handshake_timeout;
                log::info!("{}: TLS handshake not done within {limit:?}", conn.peer);
                self.abort(
                    token,
                    Why::Error(format!("TLS handshake not done within {limit:?}")),
                );
            }
            ConnTimer::TlsHandshake => {}
            _ if !conn.close.is_open() => {}
            _ => {
                let last_heard = self.shared.timers.instant(conn.last_heard);
                let Some((protocol, mut cx)) = self.split(token) else {
                    return;
                };
                let next = protocol.on_timer(&mut cx, kind, last_heard);
                self.follow(token, next);
            }
        }
    }

    /// Output went over `--max-output` at `crossing`: if it has stayed over
    /// since, for `--slow-reader-timeout`, the peer is too slow and is
    /// closed. A queue that dipped under the limit and went over again is
    /// a later crossing, with a timer of its own.
    fn slow_reader(&mut self, token: Token, crossing: u32) {
        let Some(conn) = self.conns.get(token.0) else {
            return;
        };
        if !conn.over_limit || conn.crossings != crossing {
            return;
        }
        let config = &self.shared.config;
        log::warn!(
            "{}: slow reader: over {} bytes of output for {:?} ({} queued); closing",
            conn.peer,
            config.max_output,
            config.slow_reader_timeout,
            conn.out.len()
        );
        self.close(token, Why::TooSlow);
    }
}
