//! Graceful shutdown on SIGINT and SIGTERM.

use super::close::Why;
use super::timers::Timer;
use super::{Server, SIGNALS};
use mio::{Interest, Token};
use std::io;

impl Server {
    /// Turns SIGINT and SIGTERM into a graceful shutdown, delivered through
    /// the same `poll` as everything else.
    pub fn handle_signals(&mut self) -> io::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook_mio::v1_0::Signals::new([SIGINT, SIGTERM])?;
        self.poll
            .registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        self.signals = Some(signals);
        Ok(())
    }

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
        let deadline = self.shared.now + self.shared.config.shutdown_timeout;
        self.shutdown = Some(deadline);
        self.shared.timers.schedule(deadline, Timer::ShutdownDeadline);
        log::info!(
            "shutting down: saying goodbye to {} connections",
            self.conns.len()
        );
        self.doors.close(&self.poll);
        let tokens: Vec<Token> = self.conns.iter().map(|(key, _)| Token(key)).collect();
        for token in tokens {
            self.close(token, Why::Shutdown);
        }
        self.deliver();
        self.flush_dirty();
    }
}
