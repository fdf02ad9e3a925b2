//! The loop's one read point and one write point.
//!
//! Reading: [`Server::on_readable`] reads a socket into the loop's one read
//! buffer until it is drained, and hands each read to the connection's
//! protocol, one step at a time, carrying out the hub's actions between
//! steps.
//!
//! Writing: handlers only ever append to their connection's queue and
//! mark it dirty. [`Server::write`] is the one function that writes to a
//! socket, once per dirty connection at the end of the turn, after which
//! the output limits are checked and a closing connection moves on.

use super::close::{Close, Why};
use super::conn::Connection;
use super::conn::Protocol;
use super::context::{Body, Context, Next};
use super::timers::ConnTimer;
use super::turn::Note;
use super::{Server, READS_PER_TURN};
use mio::Token;
use std::io::{self, Read};

/// An echo written through: a header (a WebSocket frame's, or none), and
/// the payload where it lies (`None`: in the WebSocket decoder's own
/// buffer).
pub(super) struct Through<'a> {
    pub head: &'a [u8],
    pub body: Option<&'a [u8]>,
}

impl Server {
    /// Lends a connection's protocol and a context around it to a handler.
    pub(super) fn split(&mut self, token: Token) -> Option<(&mut Protocol, Context<'_>)> {
        let conn = self.conns.get_mut(token.0)?;
        let cx = Context {
            token,
            serial: conn.serial,
            peer: &mut conn.peer,
            socket: &conn.socket,
            out: &mut conn.out,
            via: &mut conn.via,
            shared: &mut self.shared,
        };
        Some((&mut conn.protocol, cx))
    }

    /// Reads until the socket is drained, or until this connection's share
    /// of the turn is used up.
    ///
    /// A read that returns less than the buffer could hold has emptied the
    /// socket's receive queue, so we stop there instead of paying one more
    /// `read` just to hear `WouldBlock`: with edge triggering, bytes that
    /// arrive later raise a new event. (That halves the system calls of a
    /// request/response exchange.) The exception is an event that also
    /// reported the peer's FIN or an error (`until_closed`): then we read
    /// on until the end of the stream shows itself.
    pub(super) fn on_readable(&mut self, token: Token, until_closed: bool) {
        self.feed_stash(token);
        let mut read_buf = std::mem::take(&mut self.read_buf);
        let buf = read_buf.bytes();
        let mut share_used = true;
        for _ in 0..READS_PER_TURN {
            let Some(conn) = self.conns.get_mut(token.0) else {
                share_used = false;
                break;
            };
            if conn.over_limit || conn.eof || conn.close == Close::Done {
                share_used = false;
                break;
            }
            let mut transport = self.sessions.transport(token, &conn.socket);
            match transport.read(buf) {
                Ok(0) => {
                    conn.eof = true;
                    log::trace!("read: token {} end of stream", token.0);
                    if self.watch.turn.on {
                        self.watch.turn.note(Note::Read { token, bytes: 0 });
                    }
                    self.on_eof(token);
                    share_used = false;
                    break;
                }
                Ok(n) => {
                    let again = transport.read_again();
                    self.count_read(token, &buf[..n]);
                    self.on_input(token, &mut buf[..n]);
                    if n < buf.len() && !until_closed && !again {
                        share_used = false;
                        break;
                    }
                }
                // TLS only: the peer ended TCP without close_notify. What
                // came before it was authenticated and is handled; the
                // end is logged for what it is, and is the end.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    log::info!("{}: {e}", conn.peer);
                    conn.eof = true;
                    self.on_eof(token);
                    share_used = false;
                    break;
                }
                // TLS only: the peer broke TLS (or spoke something else).
                // rustls has queued a fatal alert (RFC 8446 §6.2); the
                // write point sends it, then our FIN. Nothing queued
                // before can follow it: the session is over.
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    log::info!("{}: {e}", conn.peer);
                    conn.out.clear();
                    self.close(token, Why::Tls(e.to_string()));
                    share_used = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    share_used = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.abort(token, Why::Error(format!("read error: {e}")));
                    share_used = false;
                    break;
                }
            }
        }
        // Used up its share without reaching WouldBlock: more may be
        // waiting, and no new event will say so. Come back next turn.
        if share_used {
            self.again.push(token);
        }
        // A TLS handshake answers from inside the read: its records leave
        // at the write point, with everything else this turn.
        if self.sessions.has_records(token) {
            self.mark_dirty(token);
        }
        self.read_buf = read_buf;
    }

    /// A connection whose long poll was answered reads the requests that
    /// were pipelined behind it on its next turn (not from inside the
    /// hub's delivery, which woke it).
    pub(super) fn resume(&mut self, token: Token) {
        if let Some(Protocol::Http(http)) = self.conns.get(token.0).map(|c| &c.protocol) {
            if http.has_stash() {
                self.again.push(token);
            }
        }
    }

    fn feed_stash(&mut self, token: Token) {
        let stash = match self.conns.get_mut(token.0).map(|c| &mut c.protocol) {
            Some(Protocol::Http(http)) => http.take_stash(),
            _ => None,
        };
        if let Some(mut stash) = stash {
            self.on_input(token, &mut stash);
        }
    }

    fn count_read(&mut self, token: Token, bytes: &[u8]) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        let n = bytes.len();
        conn.last_heard = self.shared.stamp;
        let stats = &mut self.shared.stats;
        stats.bytes_in += n as u64;
        // HTTP requests are counted whole, under the transport their path
        // names, once they are parsed.
        if !matches!(conn.protocol, Protocol::Http(_)) {
            stats.via(conn.via).bytes_in += n as u64;
        }
        log::trace!("read: token {} {n} bytes", token.0);
        if self.watch.turn.on {
            self.watch.turn.note(Note::Read { token, bytes: n });
        }
        if self.shared.config.hexdump {
            log::info!(
                "{} -> duplex, {n} bytes:\n{}",
                conn.peer,
                crate::hexdump::hexdump(bytes)
            );
        }
    }

    /// Feeds bytes to the connection's protocol, one step at a time. After
    /// each step the hub's actions are carried out (the one place that
    /// happens for input), and the handler's answer is followed: a step
    /// can change the protocol (an upgrade followed by the first frame in
    /// the same read), so each step asks the connection afresh.
    pub(super) fn on_input(&mut self, token: Token, input: &mut [u8]) {
        let mut pos = 0;
        while pos < input.len() {
            let Some(conn) = self.conns.get(token.0) else {
                return;
            };
            if !conn.close.is_open() {
                // Saying goodbye: whatever still comes is dropped.
                return;
            }
            let watched = match self.watch.turn.on {
                true => Some(Decoding::before(conn, &self.shared.stats)),
                false => None,
            };
            let Some((protocol, mut cx)) = self.split(token) else {
                return;
            };
            let (used, next) = protocol.on_input(&mut cx, &mut input[pos..]);
            if let Some(before) = watched {
                before.note(token, self);
            }
            if let Next::WriteThrough { head, body } = &next {
                let body = match body {
                    Body::Input(range) => Some(&input[pos + range.start..pos + range.end]),
                    Body::Message => None,
                };
                let head = &head.0[..head.1];
                self.write(token, Some(Through { head, body }));
            }
            pos += used;
            self.follow(token, next);
        }
    }

    /// The peer closed its side of the stream.
    fn on_eof(&mut self, token: Token) {
        let Some(conn) = self.conns.get(token.0) else {
            return;
        };
        if !conn.close.is_open() {
            // Already closing: the peer's FIN may be what we waited for.
            self.advance_close(token);
            return;
        }
        let Some((protocol, mut cx)) = self.split(token) else {
            return;
        };
        let next = protocol.on_eof(&mut cx);
        self.follow(token, next);
    }

    pub(super) fn mark_dirty(&mut self, token: Token) {
        if let Some(conn) = self.conns.get_mut(token.0) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(token);
            }
        }
    }

    /// Writes out what this turn queued, connection by connection.
    pub(super) fn flush_dirty(&mut self) {
        // Writing can dirty more connections (a failed one's departure is
        // announced), so take the list, work through it, and look again.
        // The two lists swap rather than being freed, so a busy loop does
        // not allocate them anew each turn.
        let mut batch = std::mem::take(&mut self.spare_tokens);
        while !self.dirty.is_empty() {
            std::mem::swap(&mut batch, &mut self.dirty);
            for &token in &batch {
                if let Some(conn) = self.conns.get_mut(token.0) {
                    conn.dirty = false;
                    self.write(token, None);
                }
            }
            batch.clear();
        }
        self.spare_tokens = batch;
        self.flush_relay();
    }

    /// The one write point: writes a connection's queue until it is empty
    /// or the socket is full, then enforces the output limits and moves a
    /// closing connection on.
    ///
    /// `through` is an echo that still lies where it was read: a large
    /// WebSocket message (a header, and a payload in the read buffer or the
    /// decoder's), or a read of plain telnet lines (no header; the line
    /// echo). When nothing is queued ahead of it, it goes to the socket in
    /// one `writev` straight from where it lies, and only what the socket
    /// did not take is copied into the queue. For 64 KiB messages that
    /// saves a copy of every byte, and for lines the queue's work; with
    /// output already waiting, it is queued behind it, in order.
    pub(super) fn write(&mut self, token: Token, through: Option<Through>) {
        if !self.write_queue(token, through) {
            return;
        }
        // A file being sent (`--static`) refills the queue as it drains.
        self.send_file_chunks(token);
        self.check_output_limits(token);
        self.advance_close(token);
    }

    /// Writes the queue (and `through`) to the socket and counts the
    /// bytes. Returns false if the connection is done or just failed.
    pub(super) fn write_queue(&mut self, token: Token, through: Option<Through>) -> bool {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return false;
        };
        if conn.close == Close::Done {
            return false;
        }
        let Connection {
            peer,
            socket,
            out,
            protocol,
            via,
            ..
        } = conn;
        let stats = &mut self.shared.stats;
        let mut socket = Hexdump {
            transport: self.sessions.transport(token, socket),
            peer,
            on: self.shared.config.hexdump,
            calls: 0,
        };
        let result = match through {
            Some(Through { head, body }) => {
                let body = match (body, &*protocol) {
                    (Some(body), _) => body,
                    (None, Protocol::WebSocket(ws)) => ws.lent_message(),
                    (None, _) => &[],
                };
                Ok(out.write_through(&mut socket, head, body))
            }
            None if out.is_empty() => Ok(0),
            None => out.write_to(&mut socket),
        };
        // Under TLS, records can wait below the queue (a handshake
        // message, an alert, what the socket did not take last time).
        let result = result.and_then(|n| socket.transport.send_records().map(|_| n));
        match result {
            Ok(n) => {
                stats.bytes_out += n as u64;
                stats.via(*via).bytes_out += n as u64;
                if n > 0 {
                    log::trace!("write: token {} {n} bytes, {} left", token.0, out.len());
                }
                if self.watch.turn.on && socket.calls > 0 {
                    let writes = socket.calls;
                    self.watch.turn.note(Note::Wrote {
                        token,
                        bytes: n,
                        writes,
                    });
                }
            }
            Err(e) => {
                self.abort(token, Why::Error(format!("write error: {e}")));
                return false;
            }
        }
        true
    }

    /// Bounded output (DESIGN §2). Over the soft limit the loop stops
    /// reading from this peer, which is what TCP flow control would do; a
    /// peer that stays over it too long, or passes the hard limit, is
    /// closed.
    fn check_output_limits(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        // Both sides of TLS count: the plaintext still queued, and what
        // was sealed into records the socket has not taken yet.
        let pending = conn.out.len() + self.sessions.sealed(token);
        let config = &self.shared.config;
        if pending > config.max_output_hard {
            // DESIGN §2: closed at once, but in words: the queue is cut at
            // a frame or line boundary, and the goodbye (close 1008, an
            // error line) goes out, within `--close-timeout`.
            log::warn!(
                "{}: output over the hard limit ({pending} bytes queued); closing",
                conn.peer
            );
            return self.close(token, Why::OverHardLimit(pending));
        }
        if pending > config.max_output {
            if !conn.over_limit {
                conn.over_limit = true;
                conn.crossings = conn.crossings.wrapping_add(1);
                log::debug!("{}: {pending} bytes queued, reading paused", conn.peer);
                let (at, crossing) = (self.shared.now + config.slow_reader_timeout, conn.crossings);
                self.schedule(token, ConnTimer::SlowReader(crossing), at);
            }
        } else if std::mem::take(&mut conn.over_limit) {
            log::debug!(
                "{}: output drained to {pending} bytes, reading resumed",
                conn.peer
            );
            self.again.push(token);
        }
    }
}

/// The transport as the write point sees it: with `--hexdump`, every byte
/// that went out is shown, labelled with its direction, as reads are
/// (plaintext, under TLS).
struct Hexdump<'a> {
    transport: super::transport::Transport<'a>,
    peer: &'a super::peer::Peer,
    on: bool,
    /// Write calls made through it: how many the turn's narration counts.
    calls: u32,
}

impl Hexdump<'_> {
    fn show(&self, written: &[io::IoSlice], n: usize) {
        let mut bytes = Vec::with_capacity(n);
        for slice in written {
            let take = (n - bytes.len()).min(slice.len());
            bytes.extend_from_slice(&slice[..take]);
        }
        log::info!(
            "duplex -> {}, {n} bytes:\n{}",
            self.peer,
            crate::hexdump::hexdump(&bytes)
        );
    }
}

impl io::Write for Hexdump<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.calls += 1;
        let n = self.transport.write(buf)?;
        if self.on && n > 0 {
            self.show(&[io::IoSlice::new(buf)], n);
        }
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice]) -> io::Result<usize> {
        self.calls += 1;
        let n = self.transport.write_vectored(bufs)?;
        if self.on && n > 0 {
            self.show(bufs, n);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.transport.flush()
    }
}

/// What a protocol step decoded, told by the counters it moved: lines and
/// WebSocket messages count in `messages_in`, HTTP requests in
/// `http_requests`. Taken only while the loop is watched.
struct Decoding {
    unit: &'static str,
    messages: u64,
    requests: u64,
}

impl Decoding {
    #[cold]
    #[inline(never)]
    fn before(conn: &Connection, stats: &super::Stats) -> Decoding {
        let unit = match conn.protocol {
            Protocol::Line(_) | Protocol::LineEcho(_) => "line",
            Protocol::Http(_) => "request",
            Protocol::WebSocket(_) => "message",
            Protocol::EventStream(_) => "",
        };
        Decoding {
            unit,
            messages: stats.messages_in,
            requests: stats.http_requests,
        }
    }

    #[cold]
    #[inline(never)]
    fn note(self, token: Token, server: &mut Server) {
        let stats = &server.shared.stats;
        let count = match self.unit {
            "request" => stats.http_requests - self.requests,
            _ => stats.messages_in - self.messages,
        };
        if count > 0 {
            let unit = self.unit;
            server.watch.turn.note(Note::Decoded { token, count, unit });
        }
    }
}
