//! The telnet door: an adapter between the line codec and the hub.

use super::conn::State;
use super::{ConnTimer, Server};
use crate::hub::Transport;
use crate::line::LineEvent;
use mio::Token;

impl Server {
    /// A telnet client connected: it joins the chat and is greeted.
    pub(super) fn line_connected(&mut self, token: Token) {
        self.join_hub(token, Transport::Line);
        if let Some(limit) = self.config.idle_timeout {
            self.schedule(token, ConnTimer::Idle, self.now + limit);
        }
    }

    /// Splits input into lines and hands each to the hub. Returns how many
    /// bytes were used (all of them, unless the connection closed).
    pub(super) fn line_input(&mut self, token: Token, input: &[u8]) -> usize {
        let mut pos = 0;
        while pos < input.len() {
            let Some(conn) = self.conns.get_mut(token.0) else {
                return input.len();
            };
            let State::Line(codec) = &mut conn.state else {
                return input.len();
            };
            let (used, event) = codec.decode(&input[pos..]);
            pos += used;
            match event {
                None => break,
                Some(LineEvent::Line(bytes)) => {
                    self.stats.messages_in += 1;
                    // Telnet sends whatever the terminal's encoding is;
                    // invalid UTF-8 becomes U+FFFD rather than an error.
                    // Valid UTF-8 (the common case) is used where it lies.
                    let text = match std::str::from_utf8(bytes) {
                        Ok(text) => std::borrow::Cow::Borrowed(text),
                        Err(_) => String::from_utf8_lossy(bytes),
                    };
                    if let Some(member) = conn.member {
                        log::debug!("{}: line {:?}", conn.peer, Truncated(&text));
                        self.hub.text(member, &text, std::time::SystemTime::now());
                    }
                    self.deliver();
                }
                Some(LineEvent::TooLong { limit }) => {
                    log::info!("{}: line longer than {limit} bytes skipped", conn.peer);
                    self.send_text(
                        token,
                        &format!("! line too long (limit {limit} bytes); it was skipped"),
                    );
                }
            }
        }
        pos
    }

    /// One line of text from a telnet member.
    pub(super) fn line_text(&mut self, token: Token, text: &str) {
        let Some(member) = self.conns.get(token.0).and_then(|c| c.member) else {
            return;
        };
        log::debug!("{}: line {:?}", self.conns[token.0].peer, Truncated(text));
        self.hub.text(member, text, std::time::SystemTime::now());
        self.deliver();
    }
}

/// Shows at most 80 characters of a line in the log.
pub(super) struct Truncated<'a>(pub &'a str);

impl std::fmt::Debug for Truncated<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let end = self.0.char_indices().nth(80).map_or(self.0.len(), |(i, _)| i);
        if end < self.0.len() {
            write!(f, "{:?}...", &self.0[..end])
        } else {
            write!(f, "{:?}", self.0)
        }
    }
}
