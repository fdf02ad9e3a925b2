//! Graceful shutdown on SIGINT and SIGTERM.

use super::conn::{self, State};
use super::{websocket, Server, Timer};
use mio::Token;

impl Server {
    pub(super) fn on_signal(&mut self) {
        let Some(signals) = self.signals.as_mut() else {
            return;
        };
        let received: Vec<i32> = signals.pending().collect();
        if !received.is_empty() {
            log::info!("signal {:?} received", received);
            self.begin_shutdown();
        }
    }

    /// Graceful shutdown: stop accepting, say goodbye to everyone in their
    /// own protocol (close 1001, a goodbye line), and give the goodbyes up
    /// to `--shutdown-timeout` to be delivered.
    pub fn begin_shutdown(&mut self) {
        if self.shutdown.is_some() {
            return;
        }
        let deadline = self.now + self.config.shutdown_timeout;
        self.shutdown = Some(deadline);
        self.timers.schedule(deadline, Timer::ShutdownDeadline);
        log::info!(
            "shutting down: saying goodbye to {} connections",
            self.conns.len()
        );
        for mut listener in [self.line_listener.take(), self.web_listener.take()]
            .into_iter()
            .flatten()
        {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let tokens: Vec<Token> = self.conns.iter().map(|(key, _)| Token(key)).collect();
        for token in tokens {
            let Some(conn) = self.conns.get(token.0) else {
                continue;
            };
            match &conn.state {
                State::Line(_) => {
                    self.send_text(token, "* server shutting down; goodbye");
                    self.begin_closing(token, "server shutdown".into());
                }
                State::WebSocket(ws) if ws.close == conn::CloseHandshake::Open => {
                    websocket::send_close(
                        self,
                        token,
                        crate::ws::CloseCode::GOING_AWAY,
                        "server shutting down",
                    );
                }
                State::WebSocket(_) | State::Closing(_) => {}
                State::Http(_) | State::EventStream(_) => self.begin_closing(token, "server shutdown".into()),
            }
        }
        self.flush_dirty();
    }

    pub(super) fn head_limits(&self) -> crate::http::HeadLimits {
        crate::http::HeadLimits {
            max_head: self.config.max_head,
            max_headers: self.config.max_headers,
            max_body: self.config.max_body,
        }
    }
}
