//! The seam between the hub and the loop: the hub's actions carried out.
//!
//! The hub never touches a connection. It leaves [`Action`]s in its
//! outbox, and [`Server::deliver`] carries them out: the only function
//! that does. The loop calls it after each step of a connection's input,
//! after each timer, after an accept and after each connection it frees,
//! never from inside a handler. Carrying out an action may make the hub
//! say more (a member's `/quit` closes its connection, and its departure is
//! announced); those actions join the outbox and are carried out by the
//! same loop, after the current batch, so nothing recurses.

use super::close::Why;
use super::compression::{Compression, SharedFrames};
use super::conn::{Framing, Protocol};
use super::context::Link;
use super::timers::ConnTimer;
use super::Server;
use crate::hub::{Action, Outbox, Payload};
use crate::outq::OutQueue;
use crate::ws::Opcode;
use mio::Token;
use std::rc::Rc;
use std::time::Duration;

/// Broadcast chunks a queue may collect within one turn before it is
/// written out at once rather than at the turn's end. Each queued chunk is
/// 32 bytes of list in every member's queue, and a storm (ten thousand
/// telnet users joining one lobby, each arrival announced to all) fills
/// every queue at once: at 32 chunks that high-water mark stayed in the
/// heap as 0.2 kB per connection; at 8 it costs more writes during the
/// storm and nothing after it.
const EAGER_FLUSH_CHUNKS: usize = 8;

impl Server {
    /// Carries out everything the hub has asked for, until it asks no more.
    ///
    /// Then socket.io sessions with output have it moved to their carriers
    /// (`Server::flush_sessions`); ending one may make the hub say more
    /// (a departure), so the two take turns until both are quiet.
    pub(super) fn deliver(&mut self) {
        loop {
            while self.shared.hub.has_actions() {
                let outbox = self.shared.hub.drain();
                for action in &outbox.actions {
                    self.carry_out(action, &outbox);
                }
                self.shared.hub.recycle(outbox);
            }
            self.flush_sessions();
            if !self.shared.hub.has_actions() {
                return;
            }
        }
    }

    fn carry_out(&mut self, action: &Action, outbox: &Outbox<super::context::Link>) {
        if self.watch.turn.on {
            let (name, recipients) = match action {
                Action::Send { recipients, .. } => ("send", recipients.len()),
                Action::StartClock { .. } => ("start a clock", 0),
                Action::Stats { .. } => ("answer /stats", 0),
                Action::Quit { .. } => ("quit", 0),
                Action::Appended { .. } => ("append to history", 0),
                Action::Relay { .. } => ("relay to other instances", 0),
            };
            self.watch.turn.note(super::turn::Note::Hub {
                action: name,
                recipients,
            });
        }
        match action {
            Action::Send { recipients, payload } => {
                self.send(&outbox.recipients[recipients.clone()], payload);
            }
            // A socket.io member's clock is its session's (`engineio.rs`).
            Action::StartClock { member, generation } if self.is_session_member(*member) => {
                self.session_clock(*member, *generation);
            }
            Action::StartClock { member, generation } => {
                if let Some(Link::Conn(token)) = self.shared.hub.link(*member) {
                    let at = self.shared.now + Duration::from_secs(1);
                    self.schedule(token, ConnTimer::Clock(*generation), at);
                }
            }
            Action::Stats { member } => {
                let line = super::stats::line(&self.shared);
                self.shared.hub.reply(*member, &line);
            }
            Action::Quit { member } => match self.shared.hub.link(*member) {
                Some(Link::Conn(token)) => self.close(token, Why::Quit),
                Some(Link::Http(key)) => self.remove_http_member(key, "said /quit"),
                Some(Link::Sio(key)) => self.session_quit(key),
                Some(Link::Remote) | None => {}
            },
            Action::Appended { room, .. } => {
                if !self.shared.waiters.is_empty() {
                    self.wake(Some(room), None);
                }
            }
            Action::Relay {
                member,
                name,
                room,
                what,
            } => {
                if let Some(io) = &mut self.relay {
                    io.relay.on_action(*member, name, room, what);
                }
            }
        }
    }

    /// A payload to each recipient, in its own framing. One recipient: it
    /// is encoded straight into that queue. Two or more: it is encoded
    /// once per framing (one WebSocket frame, one telnet line) and the
    /// same bytes are shared by every queue.
    fn send(&mut self, recipients: &[Link], payload: &Payload) {
        let mut shared = Shared::default();
        for &link in recipients {
            let token = match link {
                Link::Http(key) => {
                    self.http_inbox(key, payload.text());
                    continue;
                }
                Link::Sio(key) => {
                    self.sio_deliver(key, payload.text(), &mut shared.socket_io);
                    continue;
                }
                Link::Conn(token) => token,
                Link::Remote => continue,
            };
            let Some(conn) = self.conns.get_mut(token.0) else {
                continue;
            };
            if !conn.close.is_open() || !conn.protocol.accepts_output() {
                continue;
            }
            let framing = conn.protocol.framing();
            let compression = &mut self.shared.compression;
            if recipients.len() == 1 {
                encode(&mut conn.out, framing, payload, compression);
            } else {
                conn.out.push_shared(shared.bytes(framing, payload, compression));
            }
            self.shared.stats.message_out(conn.via, 1);
            self.shared.stats.via(conn.via).delivered += 1;
            let backlog = conn.out.chunks();
            self.mark_dirty(token);
            if backlog >= EAGER_FLUSH_CHUNKS {
                // Many broadcasts in one turn (a crowd joining or dropping
                // at once) would otherwise pile up in every member's queue
                // until the turn ends: O(members²) memory. Write them now.
                self.write(token, None);
            }
        }
    }

    /// A connection's member leaves the chat (announced once), and a
    /// connection that served an HTTP member lets go of it.
    pub(super) fn leave(&mut self, token: Token) {
        self.release_waiter(token);
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        if let Some(member) = conn.protocol.take_member() {
            self.shared.hub.leave(member);
        }
        if let Some(key) = conn.protocol.take_session() {
            self.session_connection_gone(token, key);
        }
    }

    /// A parked long poll or an event stream is over: the HTTP member it
    /// kept present is on its own again.
    pub(super) fn release_waiter(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        let key = match &mut conn.protocol {
            Protocol::Http(http) => http.unpark().map(|parked| parked.member),
            Protocol::EventStream(stream) => stream.detach(),
            _ => None,
        };
        if let Some(key) = key {
            self.shared.members.detach(key, self.shared.now);
            self.shared.waiters.retain(|&t| t != token);
        }
    }
}

/// The bytes of one payload, encoded at most once per framing: once as a
/// plain frame, once compressed for each window size in use (nearly always
/// one), once as a line.
#[derive(Default)]
struct Shared {
    frame: Option<Rc<[u8]>>,
    deflated: SharedFrames,
    line: Option<Rc<[u8]>>,
    /// The Engine.IO packet `42["servermessage",…]` for socket.io members.
    socket_io: Option<Rc<[u8]>>,
}

impl Shared {
    fn bytes(&mut self, framing: Framing, payload: &Payload, compression: &mut Compression) -> Rc<[u8]> {
        match framing {
            Framing::Frame(Some(bits)) => {
                let (opcode, bytes) = message(payload);
                return self.deflated.get(compression, bits, opcode, bytes);
            }
            Framing::Frame(None) => self.frame.get_or_insert_with(|| {
                let mut bytes = Vec::with_capacity(payload.len() + 10);
                encode_frame(&mut bytes, payload);
                Rc::from(bytes)
            }),
            Framing::Line | Framing::None => self.line.get_or_insert_with(|| {
                let mut bytes = Vec::with_capacity(payload.text().len() + 2);
                encode_line(&mut bytes, payload.text());
                Rc::from(bytes)
            }),
        }
        .clone()
    }
}

/// Encodes a payload into one connection's own queue, in its framing.
pub(super) fn encode(out: &mut OutQueue, framing: Framing, payload: &Payload, compression: &mut Compression) {
    match framing {
        Framing::Frame(Some(bits)) => {
            let (opcode, bytes) = message(payload);
            out.encode_with(|buf| {
                compression.encode(buf, Some(bits), opcode, bytes);
            });
        }
        Framing::Frame(None) => out.encode_with(|buf| encode_frame(buf, payload)),
        Framing::Line | Framing::None => out.encode_with(|buf| encode_line(buf, payload.text())),
    }
}

/// A hub payload as a WebSocket message: text as text, binary as binary.
fn message(payload: &Payload) -> (Opcode, &[u8]) {
    match payload {
        Payload::Text(text) => (Opcode::Text, text.as_bytes()),
        Payload::Binary { data, .. } => (Opcode::Binary, &data[..]),
    }
}

/// A server frame (never masked, RFC 6455 §5.1): text as text, binary as
/// binary.
fn encode_frame(buf: &mut Vec<u8>, payload: &Payload) {
    let (opcode, bytes) = message(payload);
    log::trace!(
        "frame out: fin=1 opcode={} masked=0 len={}",
        opcode.name(),
        bytes.len()
    );
    crate::ws::encode_frame(buf, true, opcode, bytes, None);
}

/// A line with CR LF; a binary message becomes its notice.
fn encode_line(buf: &mut Vec<u8>, text: &str) {
    buf.extend_from_slice(text.as_bytes());
    buf.extend_from_slice(b"\r\n");
}
