//! `--line-echo`: the telnet door as a plain line echo service, the
//! classic first server of every tutorial (Node's
//! `net.createServer(s => s.pipe(s))`, but line by line).

use super::close::Why;
use super::context::{Body, Context, Next};
use super::line::{idle, schedule_idle, subnegotiation_notice, too_long_notice};
use crate::line::{LineCodec, LineEnd, LineEvent};
use crate::outq::OutQueue;

/// One echo client: no greeting, no chat, every line back as it came.
#[derive(Debug)]
pub(super) struct LineEcho {
    codec: LineCodec,
}

impl LineEcho {
    pub fn new(max_line: usize) -> LineEcho {
        LineEcho {
            codec: LineCodec::new(max_line),
        }
    }

    /// An echo service says nothing until spoken to.
    pub fn on_open(&mut self, cx: &mut Context) -> Next {
        schedule_idle(cx);
        Next::Continue
    }

    /// Every line goes back to its sender. Uses all the input.
    ///
    /// Most lines need no rewriting: they end in LF or CR LF and hold no
    /// telnet command, so their echo is exactly the bytes that came in.
    /// The codec measures a run of such lines in one pass
    /// ([`LineCodec::plain_lines`]) and the run goes out with one copy,
    /// however many lines it holds; only what stops a run (a command, a CR
    /// NUL or lone CR, a line too long or split across reads) takes the
    /// slow path, one event at a time.
    pub fn on_input(&mut self, cx: &mut Context, input: &mut [u8]) -> (usize, Next) {
        let run = self.codec.plain_lines(input);
        if run.bytes == input.len() && cx.out.is_empty() {
            // The whole read is plain lines and nothing waits ahead of
            // them: their echo is the read itself, written from where it
            // lies (`Server::write`), with no copy into the queue.
            let lines = run.lines as u64;
            log::trace!("{}: echoing {lines} lines", cx.peer);
            cx.message_in(lines);
            cx.message_out(lines);
            let head = ([0; crate::ws::frame::MAX_HEADER_LEN], 0);
            let body = Body::Input(0..run.bytes);
            return (input.len(), Next::WriteThrough { head, body });
        }
        let out = &mut *cx.out;
        let mut pos = 0;
        let mut lines = 0;
        loop {
            let run = self.codec.plain_lines(&input[pos..]);
            if run.bytes > 0 {
                out.push_bytes(&input[pos..pos + run.bytes]);
                lines += run.lines as u64;
                pos += run.bytes;
            }
            if pos == input.len() {
                // The read ended with a whole line: the common case.
                break;
            }
            let (used, event) = self.codec.decode(&input[pos..]);
            pos += used;
            match event {
                // The rest is part of a line still to come.
                None => break,
                Some(LineEvent::Line(line, end)) => {
                    lines += 1;
                    echo_line(out, line, end);
                }
                Some(LineEvent::Command { command, answer }) => {
                    // Never echoed; answered in its place, after the echo
                    // of every line before it (RFC 860 §4).
                    log::debug!("{}: telnet {command}", cx.peer);
                    if let Some(answer) = answer {
                        out.push_bytes(answer.bytes());
                    }
                }
                Some(LineEvent::TooLong { limit }) => {
                    log::info!("{}: line longer than {limit} bytes skipped", cx.peer);
                    echo_line(out, too_long_notice(limit).as_bytes(), LineEnd::Cr);
                }
                Some(LineEvent::SubnegotiationTooLong { option, limit }) => {
                    let notice = subnegotiation_notice(option, limit);
                    log::info!("{}: {notice}", cx.peer);
                    echo_line(out, format!("! {notice}").as_bytes(), LineEnd::Cr);
                }
            }
        }
        log::trace!("{}: echoing {lines} lines", cx.peer);
        cx.message_in(lines);
        cx.message_out(lines);
        (input.len(), Next::Continue)
    }

    /// A last line cut short by the peer's FIN is echoed without a line end.
    pub fn on_eof(&mut self, cx: &mut Context) -> Next {
        if let Some(line) = self.codec.finish() {
            cx.message_out(1);
            echo_line(cx.out, line, LineEnd::Eof);
        }
        Next::Close(Why::PeerClosed("the connection"))
    }

    pub fn on_timer(&mut self, cx: &mut Context, last_heard: std::time::Instant) -> Next {
        idle(cx, last_heard)
    }
}

/// Queues a line back to its sender. A data byte 255 goes out as IAC IAC,
/// as it came, or the client would read a telnet command (RFC 854).
fn echo_line(out: &mut OutQueue, line: &[u8], end: LineEnd) {
    out.encode_with(|out| crate::line::encode_line(out, line, end));
}
