//! The WebSocket endpoints: frames in from the decoder, frames out.

use super::conn::{CloseHandshake, Endpoint, State};
use super::{ConnTimer, Server};
use crate::outq::OutQueue;
use crate::ws::close::close_payload;
use crate::ws::decoder::MessageKind;
use crate::ws::frame::MAX_HEADER_LEN;
use crate::ws::{encode_frame, CloseCode, Event, FrameHeader, Opcode};
use mio::Token;
use std::rc::Rc;

/// Appends one server frame (never masked, RFC 6455 §5.1) to a queue.
pub(super) fn encode(out: &mut OutQueue, opcode: Opcode, payload: &[u8]) {
    log::trace!(
        "frame out: fin=1 opcode={} masked=0 len={}",
        opcode.name(),
        payload.len()
    );
    out.encode_with(|buf| encode_frame(buf, true, opcode, payload, None));
}

/// Echoes at least this large are written straight from the read buffer.
const WRITE_THROUGH: usize = 16 * 1024;

/// The header of an unfragmented, unmasked server frame.
fn server_header(opcode: Opcode, len: usize) -> ([u8; MAX_HEADER_LEN], usize) {
    log::trace!("frame out: fin=1 opcode={} masked=0 len={len}", opcode.name());
    let header = FrameHeader {
        fin: true,
        rsv: 0,
        opcode,
        mask: None,
        payload_len: len as u64,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let head_len = header.encode(&mut head);
    (head, head_len)
}

/// One frame as shared bytes, for a broadcast.
pub(super) fn frame_bytes(opcode: Opcode, payload: &[u8]) -> Rc<[u8]> {
    log::trace!(
        "frame out (shared): fin=1 opcode={} masked=0 len={}",
        opcode.name(),
        payload.len()
    );
    let mut buf = Vec::with_capacity(payload.len() + 10);
    encode_frame(&mut buf, true, opcode, payload, None);
    Rc::from(buf)
}

/// What to do once the decoder's event (which borrows the input) is gone.
enum Next {
    Continue,
    /// The peer answered our close, or started the handshake and we
    /// answered: the WebSocket is over.
    Closed(String),
    /// The peer broke the protocol: closed with this code.
    Failed(CloseCode, String),
}

impl Server {
    /// Decodes frames and acts on each. Returns how many bytes were used.
    pub(super) fn ws_input(&mut self, token: Token, input: &mut [u8]) -> usize {
        let mut pos = 0;
        loop {
            let Some(conn) = self.conns.get_mut(token.0) else {
                return input.len();
            };
            let State::WebSocket(ws) = &mut conn.state else {
                return input.len();
            };
            // Anything from the peer proves it is alive.
            ws.ping_sent = None;
            let next = match ws.decoder.decode(&mut input[pos..]) {
                Err(error) => {
                    log::info!("{}: WebSocket protocol error: {error}", conn.peer);
                    Next::Failed(error.close_code(), error.to_string())
                }
                Ok((used, None)) => {
                    debug_assert_eq!(pos + used, input.len());
                    return input.len();
                }
                Ok((used, Some(event))) => {
                    pos += used;
                    let open = ws.close == CloseHandshake::Open;
                    match event {
                        Event::Message(kind, payload) => {
                            self.stats.messages_in += 1;
                            if !open {
                                // §5.5.1: after our close, data is dropped.
                                Next::Continue
                            } else {
                                match ws.endpoint {
                                    Endpoint::Echo if payload.len() >= WRITE_THROUGH => {
                                        // A large echo goes out straight from
                                        // the read buffer: no copy into the
                                        // queue unless the socket is full.
                                        let (head, head_len) = server_header(kind.opcode(), payload.len());
                                        let n = conn.out.write_through(
                                            &mut conn.socket,
                                            &head[..head_len],
                                            payload,
                                        );
                                        self.stats.bytes_out += n as u64;
                                        self.stats.via(conn.via).bytes_out += n as u64;
                                        self.stats.messages_out += 1;
                                        if !conn.dirty {
                                            conn.dirty = true;
                                            self.dirty.push(token);
                                        }
                                    }
                                    Endpoint::Echo => {
                                        encode(&mut conn.out, kind.opcode(), payload);
                                        self.stats.messages_out += 1;
                                        if !conn.dirty {
                                            conn.dirty = true;
                                            self.dirty.push(token);
                                        }
                                    }
                                    Endpoint::Chat => {
                                        if let Some(member) = conn.member {
                                            match kind {
                                                MessageKind::Text => {
                                                    let text = String::from_utf8_lossy(payload);
                                                    self.hub.text(
                                                        member,
                                                        &text,
                                                        std::time::SystemTime::now(),
                                                    );
                                                }
                                                MessageKind::Binary => self.hub.binary(member, payload),
                                            }
                                        }
                                    }
                                    // The clock only talks; what a client
                                    // says to it is read and ignored.
                                    Endpoint::Clock => {}
                                }
                                Next::Continue
                            }
                        }
                        Event::Ping(payload) => {
                            // §5.5.2: answer with a pong of the same payload.
                            if open {
                                encode(&mut conn.out, Opcode::Pong, payload);
                                if !conn.dirty {
                                    conn.dirty = true;
                                    self.dirty.push(token);
                                }
                            }
                            Next::Continue
                        }
                        Event::Pong(_) => Next::Continue,
                        Event::Close(frame) => {
                            let code = frame.map(|f| f.code);
                            log::debug!(
                                "{}: close frame received: {}",
                                conn.peer,
                                code.map_or("no code".to_string(), |c| c.to_string())
                            );
                            if open {
                                // §5.5.1: answer with a close frame, echoing
                                // the code (and here the reason too).
                                let payload = frame.map_or(Vec::new(), |f| close_payload(f.code, f.reason));
                                encode(&mut conn.out, Opcode::Close, &payload);
                                let why = match frame {
                                    Some(f) => format!("peer closed with {}", f.code),
                                    None => "peer closed without a code".to_string(),
                                };
                                Next::Closed(why)
                            } else {
                                Next::Closed("close handshake complete".to_string())
                            }
                        }
                    }
                }
            };
            self.deliver();
            match next {
                Next::Continue => {}
                Next::Closed(why) => {
                    // §7.1.1: the server closes the TCP connection first.
                    self.begin_closing(token, why);
                    return input.len();
                }
                Next::Failed(code, why) => {
                    if let Some(conn) = self.conns.get_mut(token.0) {
                        encode(&mut conn.out, Opcode::Close, &close_payload(code, &why));
                    }
                    self.begin_closing(token, format!("{why} ({})", code.0));
                    return input.len();
                }
            }
            if pos >= input.len() {
                return input.len();
            }
        }
    }

    /// Completes the opening handshake's effects: the endpoint starts.
    pub(super) fn ws_opened(&mut self, token: Token, endpoint: Endpoint) {
        self.schedule(token, ConnTimer::Heartbeat, self.now + self.config.ping_interval);
        match endpoint {
            Endpoint::Echo => {}
            Endpoint::Chat => self.join_hub(token, crate::hub::Transport::WebSocket),
            Endpoint::Clock => {
                self.send_text(token, &crate::clock::format_utc(std::time::SystemTime::now()));
                self.schedule(
                    token,
                    ConnTimer::Clock(0),
                    self.now + std::time::Duration::from_secs(1),
                );
            }
        }
    }
}

/// Starts the close handshake from our side (§7.1.2): send a close frame,
/// then wait for the peer's answer, at most `--close-timeout`.
pub(super) fn send_close(server: &mut Server, token: Token, code: CloseCode, reason: &str) {
    let Some(conn) = server.conns.get_mut(token.0) else {
        return;
    };
    let State::WebSocket(ws) = &mut conn.state else {
        return;
    };
    if ws.close != CloseHandshake::Open {
        return;
    }
    ws.close = CloseHandshake::CloseSent;
    log::debug!("{}: sending close {code}: {reason}", conn.peer);
    encode(&mut conn.out, Opcode::Close, &close_payload(code, reason));
    server.leave_hub(token);
    server.mark_dirty(token);
    server.schedule(
        token,
        ConnTimer::CloseDeadline,
        server.now + server.config.close_timeout,
    );
}

/// The heartbeat timer: ping a peer that has been silent for
/// `--ping-interval`; close one that has not answered within
/// `--pong-timeout`.
pub(super) fn heartbeat(server: &mut Server, token: Token) {
    let now = server.now;
    let (interval, timeout) = (server.config.ping_interval, server.config.pong_timeout);
    let Some(conn) = server.conns.get_mut(token.0) else {
        return;
    };
    let State::WebSocket(ws) = &mut conn.state else {
        return;
    };
    if ws.close != CloseHandshake::Open {
        return;
    }
    match ws.ping_sent {
        Some(sent) if now >= sent + timeout => {
            log::info!("{}: no pong within {timeout:?}; closing", conn.peer);
            send_close(server, token, CloseCode::GOING_AWAY, "no answer to ping");
        }
        Some(sent) => server.schedule(token, ConnTimer::Heartbeat, sent + timeout),
        None if now >= conn.last_heard + interval => {
            ws.ping_sent = Some(now);
            log::debug!("{}: silent for {interval:?}; ping", conn.peer);
            encode(&mut conn.out, Opcode::Ping, b"duplex");
            server.mark_dirty(token);
            server.schedule(token, ConnTimer::Heartbeat, now + timeout);
        }
        None => {
            let at = conn.last_heard + interval;
            server.schedule(token, ConnTimer::Heartbeat, at);
        }
    }
}
