//! `--line-echo`: the telnet door as a plain line echo service, the
//! classic first server of every tutorial (Node's
//! `net.createServer(s => s.pipe(s))`, but line by line).

use super::close::Why;
use super::context::{Context, Next};
use super::line::{idle, schedule_idle, too_long_notice};
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
    /// Most lines need no rewriting: no telnet command was dropped from
    /// them and they end in LF or CR LF, so their echo is exactly the bytes
    /// that came in. A run of such lines is echoed with one copy of the
    /// input, however many lines it holds; only the others are rebuilt.
    pub fn on_input(&mut self, cx: &mut Context, input: &mut [u8]) -> (usize, Next) {
        let out = &mut *cx.out;
        let mut pos = 0;
        // input[run.start..run.end] is a run of lines that are their own echo.
        let mut run = 0..0;
        let mut lines = 0;
        while pos < input.len() {
            let (used, event) = self.codec.decode(&input[pos..]);
            let raw = &input[pos..pos + used];
            pos += used;
            match event {
                // The rest is part of a line still to come.
                None => break,
                Some(LineEvent::Line(line, end)) => {
                    lines += 1;
                    if is_own_echo(line, end, raw) {
                        run.end = pos;
                        continue;
                    }
                    push_run(out, &input[run]);
                    echo_line(out, line, end);
                }
                Some(LineEvent::Command { command, answer }) => {
                    // The command's bytes are never echoed: the run so far
                    // goes out, then the answer, and a new run starts after
                    // it. A line the command cut is rebuilt (its raw bytes
                    // then start before this read's run).
                    push_run(out, &input[run]);
                    log::debug!("{}: telnet {command}", cx.peer);
                    if let Some(answer) = answer {
                        out.push_bytes(answer.bytes());
                    }
                }
                Some(LineEvent::TooLong { limit }) => {
                    push_run(out, &input[run]);
                    log::info!("{}: line longer than {limit} bytes skipped", cx.peer);
                    echo_line(out, too_long_notice(limit).as_bytes(), LineEnd::Cr);
                }
            }
            run = pos..pos;
        }
        push_run(out, &input[run]);
        log::trace!("{}: echoing {lines} lines", cx.peer);
        cx.stats.messages_in += lines;
        cx.stats.messages_out += lines;
        (input.len(), Next::Continue)
    }

    /// A last line cut short by the peer's FIN is echoed without a line end.
    pub fn on_eof(&mut self, cx: &mut Context) -> Next {
        if let Some(line) = self.codec.finish() {
            cx.shared.stats.messages_out += 1;
            echo_line(cx.out, line, LineEnd::Eof);
        }
        Next::Close(Why::PeerClosed("the connection"))
    }

    pub fn on_timer(&mut self, cx: &mut Context, last_heard: std::time::Instant) -> Next {
        idle(cx, last_heard)
    }
}

/// Are a line's raw bytes exactly its echo? The codec only ever removes
/// bytes: telnet commands, the IAC of an IAC IAC, a swallowed LF or NUL
/// after a CR, and the line end. So if the raw bytes are the line plus
/// exactly the line end the echo would add, nothing else was removed and
/// they are the echo. (A line begun in an earlier read is longer than what
/// this read holds of it, and never matches.)
fn is_own_echo(line: &[u8], end: LineEnd, raw: &[u8]) -> bool {
    matches!(
        (end, raw.get(line.len()..)),
        (LineEnd::Lf, Some([b'\n'])) | (LineEnd::Cr, Some([b'\r', b'\n']))
    )
}

/// Queues a run of lines that are their own echo.
fn push_run(out: &mut OutQueue, run: &[u8]) {
    if !run.is_empty() {
        out.push_bytes(run);
    }
}

/// Queues a line back to its sender. A data byte 255 goes out as IAC IAC,
/// as it came, or the client would read a telnet command (RFC 854).
fn echo_line(out: &mut OutQueue, line: &[u8], end: LineEnd) {
    out.encode_with(|out| crate::line::encode_line(out, line, end));
}
