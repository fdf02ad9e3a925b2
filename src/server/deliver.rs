//! Carrying out what the hub asks: a line to one member or to a room,
//! encoded once per framing and shared, a clock started, a member gone.

use super::conn::{Connection, State};
use super::transports::HTTP_LINK_BASE;
use super::{websocket, ConnTimer, Server, EAGER_FLUSH_CHUNKS};
use crate::hub::{Action, Payload, Transport};
use mio::Token;
use std::rc::Rc;
use std::time::Duration;

impl Server {
    /// Carries out what the hub asked for. A broadcast is encoded once per
    /// framing (one WebSocket frame, one telnet line) and the same bytes
    /// are shared by every recipient's queue.
    ///
    /// Carrying out an action can make the hub say more (a write fails, the
    /// connection is dropped, its member's departure is announced). Those
    /// new actions are not carried out from inside this call but by its own
    /// loop, after the current batch: a crowd dropping at once would
    /// otherwise recurse once per member, each level holding its batch.
    pub(super) fn deliver(&mut self) {
        if self.delivering {
            return;
        }
        self.delivering = true;
        while self.hub.has_actions() {
            let outbox = self.hub.drain();
            self.carry_out(&outbox);
            self.hub.recycle(outbox);
        }
        self.delivering = false;
    }

    pub(super) fn carry_out(&mut self, outbox: &crate::hub::Outbox) {
        for action in &outbox.actions {
            match action {
                Action::Send { recipients, payload } => {
                    let mut frame: Option<Rc<[u8]>> = None;
                    let mut line: Option<Rc<[u8]>> = None;
                    // One recipient: encode straight into its queue. Two
                    // or more: encode once and share the bytes.
                    let shared = recipients.len() > 1;
                    for &link in &outbox.recipients[recipients.clone()] {
                        if link >= HTTP_LINK_BASE {
                            let text = match payload {
                                Payload::Text(text) => text,
                                Payload::Binary { notice, .. } => notice,
                            };
                            self.http_inbox(link - HTTP_LINK_BASE, text);
                            continue;
                        }
                        let token = Token(link);
                        let Some(conn) = self.conns.get_mut(link) else {
                            continue;
                        };
                        if !conn.accepts_output() {
                            continue;
                        }
                        if !shared {
                            encode_payload(conn, payload);
                            self.stats.messages_out += 1;
                            self.stats.via(conn.via).delivered += 1;
                            self.mark_dirty(token);
                            continue;
                        }
                        let bytes = match (&conn.state, payload) {
                            (State::WebSocket(_), Payload::Text(text)) => frame
                                .get_or_insert_with(|| {
                                    websocket::frame_bytes(crate::ws::Opcode::Text, text.as_bytes())
                                })
                                .clone(),
                            (State::WebSocket(_), Payload::Binary { data, .. }) => frame
                                .get_or_insert_with(|| {
                                    websocket::frame_bytes(crate::ws::Opcode::Binary, data)
                                })
                                .clone(),
                            (_, Payload::Text(text)) => line.get_or_insert_with(|| line_bytes(text)).clone(),
                            (_, Payload::Binary { notice, .. }) => {
                                line.get_or_insert_with(|| line_bytes(notice)).clone()
                            }
                        };
                        conn.out.push_shared(bytes);
                        self.stats.messages_out += 1;
                        self.stats.via(conn.via).delivered += 1;
                        let backlog = conn.out.chunks();
                        self.mark_dirty(token);
                        if backlog >= EAGER_FLUSH_CHUNKS {
                            // Many broadcasts in one turn (a crowd joining
                            // or dropping at once) would otherwise pile up
                            // in every member's queue until the turn ends:
                            // O(members²) memory. Write them now instead.
                            self.flush(token);
                        }
                    }
                }
                Action::StartClock { member, generation } => {
                    if let Some(token) = self.token_of(*member) {
                        let at = self.now + Duration::from_secs(1);
                        self.schedule(token, ConnTimer::Clock(*generation), at);
                    }
                }
                Action::Stats { member } => {
                    let line = self.stats_line();
                    self.hub.reply(*member, &line);
                }
                Action::Quit { member } => match self.hub.link(*member) {
                    Some(link) if link >= HTTP_LINK_BASE => {
                        self.remove_http_member(link - HTTP_LINK_BASE, "said /quit");
                    }
                    Some(link) => self.quit(Token(link)),
                    None => {}
                },
                Action::Appended { room, .. } => {
                    if !self.waiters.is_empty() {
                        self.wake(Some(room), None);
                    }
                }
            }
        }
    }

    pub(super) fn token_of(&self, member: crate::hub::MemberId) -> Option<Token> {
        self.hub.link(member).map(Token)
    }

    /// Adds a connection to the chat, greeted and announced.
    pub(super) fn join_hub(&mut self, token: Token, transport: Transport) {
        let Some(conn) = self.conns.get(token.0) else {
            return;
        };
        let welcome = format!("server {}, you are {}", conn.local, conn.peer);
        let member = self.hub.join(token.0, transport, &welcome);
        if let Some(conn) = self.conns.get_mut(token.0) {
            conn.member = Some(member);
        }
        self.deliver();
    }

    /// Takes a connection out of the chat (announced once).
    pub(super) fn leave_hub(&mut self, token: Token) {
        let Some(member) = self.conns.get_mut(token.0).and_then(|c| c.member.take()) else {
            return;
        };
        self.hub.leave(member);
        self.deliver();
    }

    /// The member asked to leave: the goodbye is queued, then we close.
    pub(super) fn quit(&mut self, token: Token) {
        let is_ws = matches!(
            self.conns.get(token.0).map(|c| &c.state),
            Some(State::WebSocket(_))
        );
        if is_ws {
            websocket::send_close(self, token, crate::ws::CloseCode::NORMAL, "bye");
        } else {
            self.begin_closing(token, "said /quit".into());
        }
    }
}

/// Encodes a payload into one connection's own queue, in its framing.
fn encode_payload(conn: &mut Connection, payload: &Payload) {
    use crate::ws::Opcode;
    match (&conn.state, payload) {
        (State::WebSocket(_), Payload::Text(text)) => {
            websocket::encode(&mut conn.out, Opcode::Text, text.as_bytes())
        }
        (State::WebSocket(_), Payload::Binary { data, .. }) => {
            websocket::encode(&mut conn.out, Opcode::Binary, data)
        }
        (_, Payload::Text(text) | Payload::Binary { notice: text, .. }) => conn.out.encode_with(|out| {
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
        }),
    }
}

fn line_bytes(text: &str) -> Rc<[u8]> {
    let mut bytes = Vec::with_capacity(text.len() + 2);
    bytes.extend_from_slice(text.as_bytes());
    bytes.extend_from_slice(b"\r\n");
    Rc::from(bytes)
}
