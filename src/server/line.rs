//! The telnet door: an adapter between the line codec and the hub, or,
//! with `--line-echo`, a plain line echo service.

use super::conn::State;
use super::{ConnTimer, Server};
use crate::hub::Transport;
use crate::line::{LineEnd, LineEvent};
use crate::outq::OutQueue;
use mio::Token;

impl Server {
    /// A telnet client connected: it joins the chat and is greeted (an
    /// echo service says nothing until spoken to).
    pub(super) fn line_connected(&mut self, token: Token) {
        if !self.config.line_echo {
            self.join_hub(token, Transport::Line);
        }
        if let Some(limit) = self.config.idle_timeout {
            self.schedule(token, ConnTimer::Idle, self.now + limit);
        }
    }

    /// Splits input into lines and hands each to the hub. Returns how many
    /// bytes were used (all of them, unless the connection closed).
    pub(super) fn line_input(&mut self, token: Token, input: &[u8]) -> usize {
        if self.config.line_echo {
            return self.line_echo_input(token, input);
        }
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
                Some(LineEvent::Line(bytes, _)) => {
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
                    self.send_text(token, &too_long_notice(limit));
                }
                Some(LineEvent::Command { command, answer }) => {
                    log::debug!("{}: telnet {command}", conn.peer);
                    // Queued behind the answers to every line before it,
                    // which the hub has delivered already (RFC 860 §4).
                    if let Some(answer) = answer {
                        if conn.accepts_output() {
                            conn.out.push_bytes(answer.bytes());
                        }
                        self.mark_dirty(token);
                    }
                }
            }
        }
        pos
    }

    /// `--line-echo`: every line goes back to its sender. Returns how many
    /// bytes were used (all of them).
    ///
    /// Most lines need no rewriting: no telnet command was dropped from
    /// them and they end in LF or CR LF, so their echo is exactly the bytes
    /// that came in. A run of such lines is echoed with one copy of the
    /// input, however many lines it holds; only the others are rebuilt.
    fn line_echo_input(&mut self, token: Token, input: &[u8]) -> usize {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return input.len();
        };
        let State::Line(codec) = &mut conn.state else {
            return input.len();
        };
        let mut pos = 0;
        // input[run.start..run.end] is a run of lines that are their own echo.
        let mut run = 0..0;
        let mut lines = 0;
        while pos < input.len() {
            let (used, event) = codec.decode(&input[pos..]);
            let raw = &input[pos..pos + used];
            pos += used;
            match event {
                // The rest is part of a line still to come.
                None => break,
                Some(LineEvent::Line(line, end)) => {
                    lines += 1;
                    // The codec only ever removes bytes: telnet commands,
                    // the IAC of an IAC IAC, a swallowed LF or NUL after a
                    // CR, and the line end. So if the raw bytes are the
                    // line plus exactly the line end the echo would add,
                    // nothing else was removed and they are the echo. (A
                    // line begun in an earlier read is longer than what
                    // this read holds of it, and never matches.)
                    let own_echo = matches!(
                        (end, raw.get(line.len()..)),
                        (LineEnd::Lf, Some([b'\n'])) | (LineEnd::Cr, Some([b'\r', b'\n']))
                    );
                    if own_echo {
                        run.end = pos;
                        continue;
                    }
                    push_run(&mut conn.out, &input[run]);
                    echo_line(&mut conn.out, line, end);
                }
                Some(LineEvent::TooLong { limit }) => {
                    push_run(&mut conn.out, &input[run]);
                    log::info!("{}: line longer than {limit} bytes skipped", conn.peer);
                    conn.out.encode_with(|out| {
                        out.extend_from_slice(too_long_notice(limit).as_bytes());
                        out.extend_from_slice(b"\r\n");
                    });
                }
                Some(LineEvent::Command { command, answer }) => {
                    // The command's bytes are not echoed; its answer goes
                    // out after the echoes of the lines before it. A line
                    // that a command interrupted is rebuilt when it ends,
                    // since its raw bytes are no longer all in one read.
                    push_run(&mut conn.out, &input[run]);
                    log::debug!("{}: telnet {command}", conn.peer);
                    if let Some(answer) = answer {
                        conn.out.push_bytes(answer.bytes());
                    }
                }
            }
            run = pos..pos;
        }
        push_run(&mut conn.out, &input[run]);
        log::trace!("{}: echoing {lines} lines", conn.peer);
        self.stats.messages_in += lines;
        self.stats.messages_out += lines;
        if !conn.out.is_empty() && !conn.dirty {
            conn.dirty = true;
            self.dirty.push(token);
        }
        input.len()
    }

    /// A last line cut short by the peer's FIN: echoed without a line end,
    /// or said to the room.
    pub(super) fn last_line(&mut self, token: Token, line: &[u8]) {
        if self.config.line_echo {
            if let Some(conn) = self.conns.get_mut(token.0) {
                self.stats.messages_out += 1;
                echo_line(&mut conn.out, line, LineEnd::Eof);
            }
            self.mark_dirty(token);
        } else {
            self.line_text(token, &String::from_utf8_lossy(line));
        }
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

/// What a telnet client is told when its line passed `--max-line`, in chat
/// and echo alike.
fn too_long_notice(limit: usize) -> String {
    format!("! line too long (limit {limit} bytes); it was skipped")
}

/// Queues a run of lines that are their own echo.
fn push_run(out: &mut OutQueue, run: &[u8]) {
    if !run.is_empty() {
        out.push_bytes(run);
    }
}

/// Queues a line back to its sender, escaped as the codec wants it.
fn echo_line(out: &mut OutQueue, line: &[u8], end: LineEnd) {
    out.encode_with(|out| crate::line::encode_line(out, line, end));
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
