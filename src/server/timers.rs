//! The loop's timers: what each kind does when it fires.

use super::conn::{self, Endpoint, State};
use super::Door;
use super::{websocket, ConnTimer, Server, Timer, EVENT_STREAM_KEEPALIVE};
use mio::Token;
use std::time::{Duration, Instant, SystemTime};

impl Server {
    pub(super) fn schedule(&mut self, token: Token, kind: ConnTimer, at: Instant) {
        let Some(conn) = self.conns.get(token.0) else {
            return;
        };
        let serial = conn.serial;
        self.timers.schedule(at, Timer::Conn { token, serial, kind });
    }

    pub(super) fn run_timers(&mut self) {
        let now = Instant::now();
        self.now = now;
        while let Some((_, timer)) = self.timers.pop_due(now) {
            match timer {
                Timer::ResumeAccept => {
                    self.accept_paused = false;
                    self.accept_all(Door::Line);
                    self.accept_all(Door::Web);
                }
                Timer::ShutdownDeadline => {}
                Timer::SweepHttpMembers => self.sweep_http_members(),
                Timer::Conn { token, serial, kind } => {
                    // Stale: the connection is gone, or the token now
                    // belongs to a newer one.
                    if self.conns.get(token.0).is_none_or(|c| c.serial != serial) {
                        continue;
                    }
                    log::trace!("timer: token {} {kind:?}", token.0);
                    self.on_timer(token, kind);
                }
            }
        }
    }

    pub(super) fn on_timer(&mut self, token: Token, kind: ConnTimer) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        match kind {
            ConnTimer::RequestDeadline => {
                let State::Http(http) = &conn.state else { return };
                if self.now < http.deadline {
                    let at = http.deadline;
                    self.schedule(token, kind, at);
                } else if http.reader.in_progress() {
                    log::info!(
                        "{}: request head not complete within {:?}",
                        conn.peer,
                        self.config.handshake_timeout
                    );
                    let response = crate::http::Response::refusal(
                        crate::http::Status::REQUEST_TIMEOUT,
                        "the request took too long to arrive",
                    )
                    .close(true);
                    self.respond(token, response);
                } else {
                    // An idle keep-alive connection: closing it is normal.
                    self.begin_closing(token, "idle keep-alive connection".into());
                }
            }
            ConnTimer::Heartbeat => {
                if let State::EventStream(_) = conn.state {
                    // An SSE comment line: ignored by the browser, but it
                    // keeps the connection visibly alive.
                    conn.out.push_bytes(b": keep-alive\n\n");
                    self.mark_dirty(token);
                    self.schedule(token, kind, self.now + EVENT_STREAM_KEEPALIVE);
                } else {
                    websocket::heartbeat(self, token);
                }
            }
            ConnTimer::LongPollDeadline => {
                if let State::Http(http) = &conn.state {
                    if http.parked.as_ref().is_some_and(|p| self.now >= p.deadline) {
                        self.release_parked(token);
                    }
                }
            }
            ConnTimer::Clock(generation) => self.clock_tick(token, generation),
            ConnTimer::CloseDeadline => {
                let reason = match &conn.state {
                    State::Closing(c) => format!("{} (close timeout)", c.reason),
                    _ => "close handshake timed out".to_string(),
                };
                log::debug!("{}: {reason}", conn.peer);
                self.abort(token, &reason);
            }
            ConnTimer::SlowReader => {
                if let Some(since) = conn.over_limit_since {
                    if self.now.duration_since(since) >= self.config.slow_reader_timeout {
                        let pending = conn.out.len();
                        log::warn!(
                            "{}: slow reader: over {} bytes of output for {:?} ({pending} queued); closing",
                            conn.peer,
                            self.config.max_output,
                            self.config.slow_reader_timeout
                        );
                        self.close_for_policy(token, "too slow: output buffer full");
                    }
                }
            }
            ConnTimer::Idle => {
                let Some(limit) = self.config.idle_timeout else {
                    return;
                };
                let due = conn.last_heard + limit;
                if self.now >= due {
                    self.send_text(token, &format!("! idle for {limit:?}; goodbye"));
                    self.begin_closing(token, "idle timeout".into());
                } else {
                    self.schedule(token, kind, due);
                }
            }
        }
    }

    /// Closes a connection that broke a limit, in its own protocol: close
    /// 1008 for a WebSocket, an error line for telnet.
    pub(super) fn close_for_policy(&mut self, token: Token, why: &str) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        // The queue is what is too big; it will never be read in time. A
        // frame already half written is finished, or the close frame
        // behind it would land inside its payload (RFC 6455 §5.2).
        conn.out.clear_unsent();
        // Reading resumes: the peer's answering close frame, or its FIN,
        // must be heard for the connection to finish closing.
        if conn.over_limit_since.take().is_some() {
            self.again.push(token);
        }
        match conn.state {
            State::WebSocket(_) => {
                websocket::send_close(self, token, crate::ws::CloseCode::POLICY_VIOLATION, why);
                self.begin_closing(token, why.to_string());
            }
            State::Line(_) => {
                self.send_text(token, &format!("! {why}; goodbye"));
                self.begin_closing(token, why.to_string());
            }
            _ => self.begin_closing(token, why.to_string()),
        }
    }

    pub(super) fn clock_tick(&mut self, token: Token, generation: u32) {
        let Some(conn) = self.conns.get(token.0) else {
            return;
        };
        let wall = SystemTime::now();
        let again = match (&conn.state, conn.member) {
            (State::WebSocket(ws), _)
                if ws.endpoint == Endpoint::Clock && ws.close == conn::CloseHandshake::Open =>
            {
                self.send_text(token, &crate::clock::format_utc(wall));
                true
            }
            (_, Some(member)) => {
                let again = self.hub.clock_tick(member, generation, wall);
                self.deliver();
                again
            }
            _ => false,
        };
        if again {
            self.schedule(
                token,
                ConnTimer::Clock(generation),
                self.now + Duration::from_secs(1),
            );
        }
    }
}
