//! The telnet door: an adapter between the line codec and the hub.

use super::close::Why;
use super::context::{Context, Link, Next};
use super::timers::ConnTimer;
use crate::hub::{MemberId, Transport};
use crate::line::{LineCodec, LineEvent, TelnetOption};
use std::time::{Instant, SystemTime};

/// A telnet member of the chat.
#[derive(Debug)]
pub(super) struct LineChat {
    codec: LineCodec,
    /// Its member in the hub, until it leaves.
    pub member: Option<MemberId>,
}

impl LineChat {
    pub fn new(max_line: usize) -> LineChat {
        LineChat {
            codec: LineCodec::new(max_line),
            member: None,
        }
    }

    /// A telnet client connected: it joins the chat and is greeted.
    pub fn on_open(&mut self, cx: &mut Context) -> Next {
        let (welcome, link) = (cx.welcome(""), Link::Conn(cx.token));
        self.member = Some(cx.hub.join(link, Transport::Line, &welcome));
        schedule_idle(cx);
        Next::Continue
    }

    /// Splits input into lines and hands the first complete one to the
    /// hub. Returns how many bytes were used: up to and including that
    /// line, so the loop carries out the hub's answer before the next.
    pub fn on_input(&mut self, cx: &mut Context, input: &mut [u8]) -> (usize, Next) {
        let mut pos = 0;
        while pos < input.len() {
            let (used, event) = self.codec.decode(&input[pos..]);
            pos += used;
            match event {
                None => break,
                Some(LineEvent::Line(bytes, _)) => {
                    cx.message_in(1);
                    // Telnet sends whatever the terminal's encoding is;
                    // invalid UTF-8 becomes U+FFFD rather than an error.
                    // Valid UTF-8 (the common case) is used where it lies.
                    let text = match std::str::from_utf8(bytes) {
                        Ok(text) => std::borrow::Cow::Borrowed(text),
                        Err(_) => String::from_utf8_lossy(bytes),
                    };
                    if let Some(member) = self.member {
                        say(cx, member, &text);
                    }
                    return (pos, Next::Continue);
                }
                Some(LineEvent::TooLong { limit }) => {
                    log::info!("{}: line longer than {limit} bytes skipped", cx.peer);
                    cx.send_line(&too_long_notice(limit));
                }
                Some(LineEvent::SubnegotiationTooLong { option, limit }) => {
                    let notice = subnegotiation_notice(option, limit);
                    log::info!("{}: {notice}", cx.peer);
                    cx.send_line(&format!("! {notice}"));
                }
                Some(LineEvent::Command { command, answer }) => {
                    // Queued behind the answers to every line before it,
                    // which the loop has delivered already (RFC 860 §4).
                    log::debug!("{}: telnet {command}", cx.peer);
                    if let Some(answer) = answer {
                        cx.out.push_bytes(answer.bytes());
                    }
                }
            }
        }
        (pos, Next::Continue)
    }

    /// The peer closed its side. A last line without a line end still
    /// counts, and its answer is still delivered: the peer may have closed
    /// only its sending half (`nc -N`).
    pub fn on_eof(&mut self, cx: &mut Context) -> Next {
        if let (Some(line), Some(member)) = (self.codec.finish(), self.member) {
            let text = String::from_utf8_lossy(line).into_owned();
            say(cx, member, &text);
        }
        Next::Close(Why::PeerClosed("the connection"))
    }

    pub fn on_timer(&mut self, cx: &mut Context, timer: ConnTimer, last_heard: Instant) -> Next {
        match (timer, self.member) {
            (ConnTimer::Idle, _) => idle(cx, last_heard),
            (ConnTimer::Clock(generation), Some(member)) => {
                cx.clock_tick(member, generation);
                Next::Continue
            }
            _ => Next::Continue,
        }
    }
}

/// One line from a telnet member, to the hub.
fn say(cx: &mut Context, member: MemberId, text: &str) {
    log::debug!("{}: line {:?}", cx.peer, Truncated(text));
    cx.hub.text(member, text, SystemTime::now());
}

/// With `--idle-timeout`, a telnet connection that says nothing that long
/// is closed.
pub(super) fn schedule_idle(cx: &mut Context) {
    if let Some(limit) = cx.config.idle_timeout {
        let at = cx.now + limit;
        cx.schedule(ConnTimer::Idle, at);
    }
}

/// The idle timer: close if the peer has been silent long enough,
/// otherwise look again when it would have been.
pub(super) fn idle(cx: &mut Context, last_heard: Instant) -> Next {
    let Some(limit) = cx.config.idle_timeout else {
        return Next::Continue;
    };
    let due = last_heard + limit;
    if cx.now >= due {
        return Next::Close(Why::Idle(limit));
    }
    cx.schedule(ConnTimer::Idle, due);
    Next::Continue
}

/// What a telnet client is told when its line passed `--max-line`, in chat
/// and echo alike.
pub(super) fn too_long_notice(limit: usize) -> String {
    format!("! line too long (limit {limit} bytes); it was skipped")
}

/// Why typing works again after a stray `IAC SB`.
pub(super) fn subnegotiation_notice(option: TelnetOption, limit: usize) -> String {
    format!("telnet sub-negotiation IAC SB {option} longer than {limit} bytes without IAC SE; ended there")
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
