//! A WebSocket connection: frames in from the decoder, frames out. The
//! three endpoints are three short functions: [`echo`], [`chat`] and the
//! clock's tick in [`WebSocket::on_timer`].

use super::close::Why;
use super::context::{Body, Context, Link, Next};
use super::peer::Peer;
use super::timers::ConnTimer;
use crate::hub::{MemberId, Transport};
use crate::outq::OutQueue;
use crate::ws::close::{close_payload, CloseFrame};
use crate::ws::decoder::MessageKind;
use crate::ws::frame::MAX_HEADER_LEN;
use crate::ws::{encode_frame, CloseCode, Decoder, Event, FrameHeader, Opcode, ProtocolError};
use std::time::{Duration, Instant, SystemTime};

use super::conn::Endpoint;

/// Echoes at least this large are written straight from where they lie
/// (see `Server::write`); smaller ones are cheaper to copy into the queue
/// and leave with the rest of the turn's output.
const WRITE_THROUGH: usize = 16 * 1024;

/// The close handshake, from our side (RFC 6455 §7). The rest of closing
/// (our FIN, the peer's) is the connection's close machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Handshake {
    /// Messages flow both ways.
    Open,
    /// We sent a close frame and wait for the peer's (§7.1.2); data frames
    /// that still arrive are read and dropped (§5.5.1).
    CloseSent,
}

/// An open WebSocket.
#[derive(Debug)]
pub(super) struct WebSocket {
    pub endpoint: Endpoint,
    decoder: Decoder,
    handshake: Handshake,
    /// We pinged a silent peer and its answer is still due. When it is
    /// due is the heartbeat timer's business: the one pending heartbeat
    /// was set for `--pong-timeout` after the ping.
    ping_sent: bool,
    /// The chat member, on `/chat`, until it leaves.
    pub member: Option<MemberId>,
}

impl WebSocket {
    /// The opening handshake is answered: the endpoint starts. A chat
    /// member joins the hub; a clock says the time at once.
    pub fn open(cx: &mut Context, endpoint: Endpoint) -> WebSocket {
        let limits = crate::ws::Limits {
            max_message: cx.config.max_message,
            max_fragments: cx.config.max_fragments,
        };
        let mut ws = WebSocket {
            endpoint,
            decoder: Decoder::new(crate::ws::Role::Server, limits),
            handshake: Handshake::Open,
            ping_sent: false,
            member: None,
        };
        if !inherits_request_deadline(cx) {
            let at = cx.now + cx.config.ping_interval;
            cx.schedule(ConnTimer::Heartbeat, at);
        }
        match endpoint {
            Endpoint::Echo => {}
            Endpoint::Chat => {
                let (welcome, link) = (cx.welcome(""), Link::Conn(cx.token));
                ws.member = Some(cx.hub.join(link, Transport::WebSocket, &welcome));
            }
            Endpoint::Clock => ws.tick(cx),
        }
        ws
    }

    /// Messages still flow (no close frame sent).
    pub fn is_open(&self) -> bool {
        self.handshake == Handshake::Open
    }

    fn set_handshake(&mut self, peer: &Peer, next: Handshake) {
        set_handshake(&mut self.handshake, peer, next);
    }

    /// The payload the last message lent out of the decoder's buffer.
    pub fn lent_message(&self) -> &[u8] {
        self.decoder.lent_message()
    }

    /// Decodes frames and acts on each. Returns how many bytes were used:
    /// all of them, unless a chat message reached the hub or a large echo
    /// is to be written through, which hand control back to the loop first.
    pub fn on_input(&mut self, cx: &mut Context, input: &mut [u8]) -> (usize, Next) {
        // Anything from the peer proves it is alive.
        self.ping_sent = false;
        // Where the input lies, to tell a payload decoded in place from one
        // reassembled in the decoder's own buffer (see `echo`).
        let input_at = input.as_ptr() as usize..input.as_ptr() as usize + input.len();
        let len = input.len();
        let mut pos = 0;
        while pos < len {
            let open = self.is_open();
            let (used, event) = match self.decoder.decode(&mut input[pos..]) {
                Ok((used, Some(event))) => (used, event),
                Ok((_, None)) => return (len, Next::Continue),
                Err(error) => return (len, violation(cx.peer, error)),
            };
            pos += used;
            let next = match event {
                Event::Message(kind, payload) => {
                    cx.message_in(1);
                    if !open {
                        // §5.5.1: after our close frame, data is dropped.
                        continue;
                    }
                    match (self.endpoint, self.member) {
                        (Endpoint::Echo, _) => echo(cx, kind, payload, &input_at),
                        (Endpoint::Chat, Some(member)) => chat(cx, member, kind, payload),
                        // The clock only talks; what a client says to it
                        // is read and ignored.
                        _ => None,
                    }
                }
                Event::Ping(payload) => {
                    // §5.5.2: answer with a pong of the same payload.
                    if open {
                        encode(cx.out, Opcode::Pong, payload);
                    }
                    None
                }
                Event::Pong(_) => None,
                Event::Close(frame) => return (len, on_close_frame(cx, &mut self.handshake, frame)),
            };
            if let Some(next) = next {
                return (pos, next);
            }
        }
        (pos, Next::Continue)
    }

    /// Starts the close handshake from our side (§7.1.2): the close frame
    /// goes out, and only the peer's answer is waited for.
    pub fn send_close(&mut self, out: &mut OutQueue, peer: &Peer, code: CloseCode, reason: &str) {
        if !self.is_open() {
            return;
        }
        log::debug!("{peer}: sending close {code}: {reason}");
        encode(out, Opcode::Close, &close_payload(code, reason));
        self.set_handshake(peer, Handshake::CloseSent);
    }

    pub fn on_timer(&mut self, cx: &mut Context, timer: ConnTimer, last_heard: Instant) -> Next {
        if !self.is_open() {
            return Next::Continue;
        }
        match (timer, self.endpoint, self.member) {
            (ConnTimer::Heartbeat, _, _) => self.heartbeat(cx, last_heard),
            (ConnTimer::RequestDeadline, _, _) if inherits_request_deadline(cx) => {
                // The first heartbeat (see `inherits_request_deadline`): no
                // ping has been sent, so this pings or arms the next one.
                self.heartbeat(cx, last_heard)
            }
            (ConnTimer::Clock(_), Endpoint::Clock, _) => {
                self.tick(cx);
                Next::Continue
            }
            (ConnTimer::Clock(generation), Endpoint::Chat, Some(member)) => {
                cx.clock_tick(member, generation);
                Next::Continue
            }
            _ => Next::Continue,
        }
    }

    /// `/clock`: the time now, and the next tick in a second.
    fn tick(&mut self, cx: &mut Context) {
        let now = crate::clock::format_utc(SystemTime::now());
        encode(cx.out, Opcode::Text, now.as_bytes());
        cx.message_out(1);
        let at = cx.now + Duration::from_secs(1);
        cx.schedule(ConnTimer::Clock(0), at);
    }

    /// The heartbeat timer: ping a peer that has been silent for
    /// `--ping-interval`; close one that has not answered within
    /// `--pong-timeout`.
    fn heartbeat(&mut self, cx: &mut Context, last_heard: Instant) -> Next {
        let (interval, timeout) = (cx.config.ping_interval, cx.config.pong_timeout);
        if self.ping_sent {
            // Each connection has one heartbeat timer pending at a time, and
            // the one that fires now was set when we pinged.
            log::info!("{}: no pong within {timeout:?}; closing", cx.peer);
            return Next::Close(Why::NoPong(timeout));
        }
        if cx.now >= last_heard + interval {
            self.ping_sent = true;
            log::debug!("{}: silent for {interval:?}; ping", cx.peer);
            encode(cx.out, Opcode::Ping, b"duplex");
            let at = cx.now + timeout;
            cx.schedule(ConnTimer::Heartbeat, at);
        } else {
            cx.schedule(ConnTimer::Heartbeat, last_heard + interval);
        }
        Next::Continue
    }
}

/// Whether the heartbeat starts from the HTTP request deadline that was
/// pending when the connection upgraded, rather than from a timer of its
/// own. That deadline was set at most `--handshake-timeout` before the
/// upgrade, so when the ping interval is at least as long (as by default:
/// 30 s against 10 s) it fires before the first ping could be due. An idle
/// WebSocket then keeps one timer in the heap, not two: the heap holds a
/// timer until it fires, and at 32 bytes an entry, that is an eighth of
/// what an idle connection costs.
fn inherits_request_deadline(cx: &Context) -> bool {
    cx.config.ping_interval >= cx.config.handshake_timeout
}

/// The one place the close handshake changes (logged).
fn set_handshake(handshake: &mut Handshake, peer: &Peer, next: Handshake) {
    log::trace!("{peer}: WebSocket {handshake:?} -> {next:?}");
    *handshake = next;
}

/// The peer's close frame: the answer to ours, or the start of the
/// handshake, which we answer (§5.5.1), echoing its code and reason.
fn on_close_frame(cx: &mut Context, handshake: &mut Handshake, frame: Option<CloseFrame>) -> Next {
    let code = frame.map(|f| f.code);
    log::debug!(
        "{}: close frame received: {}",
        cx.peer,
        code.map_or("no code".to_string(), |c| c.to_string())
    );
    if *handshake == Handshake::CloseSent {
        return Next::Close(Why::HandshakeComplete);
    }
    let payload = frame.map_or(Vec::new(), |f| close_payload(f.code, f.reason));
    encode(cx.out, Opcode::Close, &payload);
    set_handshake(handshake, cx.peer, Handshake::CloseSent);
    // §7.1.1: the server closes the TCP connection first.
    Next::Close(Why::PeerCloseFrame(code))
}

/// `/echo`: every message back as it came, text as text, binary as binary.
/// A large one is written through from where it lies: in the input
/// (whose addresses are `input_at`) when it arrived whole in one read,
/// otherwise in the decoder's buffer.
fn echo(
    cx: &mut Context,
    kind: MessageKind,
    payload: &[u8],
    input_at: &std::ops::Range<usize>,
) -> Option<Next> {
    if payload.len() < WRITE_THROUGH {
        encode(cx.out, kind.opcode(), payload);
        cx.message_out(1);
        return None;
    }
    cx.message_out(1);
    let head = server_header(kind.opcode(), payload.len());
    // Comparing addresses only, never dereferencing: the decoder's buffer
    // is its own allocation, so it cannot overlap the input.
    let at = payload.as_ptr() as usize;
    let body = if input_at.contains(&at) {
        let offset = at - input_at.start;
        Body::Input(offset..offset + payload.len())
    } else {
        Body::Message
    };
    Some(Next::WriteThrough { head, body })
}

/// `/chat`: a text message is a line for the hub, a binary one is relayed
/// to the room as it is.
fn chat(cx: &mut Context, member: MemberId, kind: MessageKind, payload: &[u8]) -> Option<Next> {
    match kind {
        MessageKind::Text => {
            let text = String::from_utf8_lossy(payload);
            cx.hub.text(member, &text, SystemTime::now());
        }
        MessageKind::Binary => cx.hub.binary(member, payload),
    }
    // Back to the loop, so the hub's answer is carried out before the
    // next message.
    Some(Next::Continue)
}

/// The peer broke the protocol: closed with the RFC's code for it.
fn violation(peer: &Peer, error: ProtocolError) -> Next {
    log::info!("{peer}: WebSocket protocol error: {error}");
    Next::Close(Why::Violation(error.close_code(), error.to_string()))
}

/// Appends one server frame (never masked, RFC 6455 §5.1) to a queue.
pub(super) fn encode(out: &mut OutQueue, opcode: Opcode, payload: &[u8]) {
    log::trace!(
        "frame out: fin=1 opcode={} masked=0 len={}",
        opcode.name(),
        payload.len()
    );
    out.encode_with(|buf| encode_frame(buf, true, opcode, payload, None));
}

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
