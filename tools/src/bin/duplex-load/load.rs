//! The load tool's loop: its connections, their phases, and what it does
//! with each message that comes back. The modes (`modes.rs`) drive it.

use crate::measure::Histogram;
use crate::{Common, Target};
use duplex::ws::Opcode;
use duplex_tools::client::encode_client_frame;
use duplex_tools::conn::{self, Conn, Received};
use mio::{Events, Poll, Token};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a connection stands. It only moves forward, and only through
/// [`Load::set_phase`] (or [`Load::fail`], to `Closed`).
#[derive(Debug, PartialEq, Eq)]
pub enum Phase {
    /// The TCP connect is under way (non-blocking).
    Connecting,
    /// The upgrade request is out; reading the `101`.
    Handshake { key: String },
    /// `/join load-N` is out; waiting for `* you joined`. With
    /// `--socketio`: waiting for Engine.IO's open packet, then for the
    /// answer to Socket.IO's CONNECT.
    Joining,
    /// Sending and receiving messages.
    Open,
    /// Failed or closed; ignored from now on.
    Closed,
}

/// One connection and what the load tool knows of it.
pub struct Client {
    pub conn: Conn,
    pub phase: Phase,
    /// When each message still in flight was queued, oldest first.
    pub in_flight: VecDeque<Instant>,
}

/// What the loop does with each message that comes back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Count it, time it, and (unless paced) send the next one.
    Echo,
    /// Nothing: the connections only sit there.
    Idle,
    /// Note which member got which round.
    Broadcast,
}

/// The one read buffer, shared by every connection. 256 KiB, as the
/// server's: a 64 KiB echo (scenario c) then arrives in one read instead
/// of two reads and a third that hears WouldBlock, and the tool, which
/// saturates its core there, spends its time on load rather than on
/// reading.
const READ_BUFFER: usize = 256 * 1024;

/// Prefix of a broadcast test message: `bcast ROUND padding`.
const ROUND_TAG: &[u8] = b"bcast ";

/// What a socket.io echo comes back as: `42["servermessage","PAYLOAD"]`.
const SIO_ECHO_HEAD: &[u8] = b"42[\"servermessage\",\"";
const SIO_ECHO_TAIL: &[u8] = b"\"]";

/// What one socket.io frame is, to the load tool.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SioFrame {
    /// Engine.IO's open packet (`0{…}`): answer with CONNECT (`40`).
    Open,
    /// Socket.IO's CONNECT answer (`40{…}`): the socket is ready.
    Connected,
    /// Engine.IO's ping (`2`): answer `3`.
    Ping,
    /// An echo of one of ours.
    Echo,
    /// Anything else (a welcome, a room's news): ignored.
    Other,
}

fn sio_frame(payload: &[u8]) -> SioFrame {
    if payload == b"2" {
        SioFrame::Ping
    } else if payload.starts_with(b"40") {
        SioFrame::Connected
    } else if payload.starts_with(b"0") {
        SioFrame::Open
    } else if payload.starts_with(SIO_ECHO_HEAD)
        && payload.ends_with(SIO_ECHO_TAIL)
        // The server's own lines (`* …`, `! …`) are not echoes.
        && !matches!(payload.get(SIO_ECHO_HEAD.len()), Some(b'*' | b'!'))
    {
        SioFrame::Echo
    } else {
        SioFrame::Other
    }
}

pub struct Load {
    poll: Poll,
    target: Target,
    /// For `wss://`: the client configuration, shared by every connection,
    /// and the name sent in SNI.
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    job: Job,
    pub common: Common,
    pub clients: Vec<Client>,
    /// The one read buffer, lent to each read in turn.
    read_buf: Vec<u8>,
    /// Messages ready to send, each a complete frame (or line).
    /// Masks are fresh per frame but the same frames are reused round-robin:
    /// encoding and masking a 64 KiB message every time would make this tool
    /// the bottleneck.
    messages: Vec<Vec<u8>>,
    next_message: usize,
    /// The expected echo length (payload only).
    size: usize,
    pub depth: usize,
    pub join_rooms: bool,
    /// Speak socket.io (Engine.IO 4, Socket.IO 5) over the WebSocket: each
    /// message is `42["message","/echo PAYLOAD"]`, each echo
    /// `42["servermessage","PAYLOAD"]` (duplex's `/echo`, or a Node peer
    /// that does the same).
    pub socketio: bool,
    /// Sends are paced (--rate): echoes do not trigger new messages.
    pub paced: bool,
    /// Connections that reached `Open`, and that failed.
    pub opened: usize,
    pub failed: usize,
    /// Inside the measured window: echoes count.
    pub counting: bool,
    pub echoes: u64,
    pub echo_bytes: u64,
    pub errors: u64,
    pub latency: Histogram,
    /// Broadcast: the current round, when it was sent, and how many members
    /// have it.
    pub round: usize,
    pub round_sent: Instant,
    pub delivered: usize,
    /// Error messages shown so far (the first few are enough).
    shown_errors: usize,
}

impl Load {
    pub fn new(target: Target, job: Job, common: Common) -> Result<Load, String> {
        let tls = match target.tls {
            true => Some((
                duplex_tools::tls::client_config(),
                duplex_tools::tls::server_name(&target.host)?,
            )),
            false => None,
        };
        Ok(Load {
            poll: Poll::new().map_err(|e| format!("poll: {e}"))?,
            tls,
            target,
            job,
            common,
            clients: Vec::new(),
            read_buf: vec![0; READ_BUFFER],
            messages: Vec::new(),
            next_message: 0,
            size: 0,
            depth: 1,
            join_rooms: false,
            socketio: false,
            paced: false,
            opened: 0,
            failed: 0,
            counting: false,
            echoes: 0,
            echo_bytes: 0,
            errors: 0,
            latency: Histogram::new(),
            round: 0,
            round_sent: Instant::now(),
            delivered: 0,
            shown_errors: 0,
        })
    }

    fn is_websocket(&self) -> bool {
        self.target.path.is_some()
    }

    /// Prepares 16 copies of the test message as ready-to-send bytes.
    pub fn prepare_messages(&mut self, size: usize, binary: bool) {
        let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        let opcode = if binary { Opcode::Binary } else { Opcode::Text };
        // With permessage-deflate, every message is compressed once here,
        // from an empty window: valid whether or not the server asked the
        // client to reset its context (RFC 7692 §7.1.1.1).
        let deflated = (self.common.deflate && self.is_websocket()).then(|| {
            duplex::ws::deflate::Deflater::default()
                .compress(15, &payload)
                .to_vec()
        });
        self.size = size;
        self.messages = (0..16)
            .map(|_| {
                let mut bytes = Vec::with_capacity(size + 40);
                if self.socketio {
                    let mut text = b"42[\"message\",\"/echo ".to_vec();
                    text.extend_from_slice(&payload);
                    text.extend_from_slice(b"\"]");
                    encode_client_frame(&mut bytes, true, Opcode::Text, &text);
                } else if let Some(deflated) = &deflated {
                    encode_client_frame(&mut bytes, true, opcode, deflated);
                    // RSV1: this message is compressed (RFC 7692 §6).
                    bytes[0] |= 0x40;
                } else if self.is_websocket() {
                    encode_client_frame(&mut bytes, true, opcode, &payload);
                } else {
                    bytes.extend_from_slice(&payload);
                    bytes.push(b'\n');
                }
                bytes
            })
            .collect();
    }

    // -- the loop --

    /// One turn: wait for readiness (at most `timeout`), then handle every
    /// event. Like the server, edge-triggered: read and write until the
    /// socket says `WouldBlock`.
    pub fn turn(&mut self, events: &mut Events, timeout: Duration) {
        conn::wait(&mut self.poll, events, timeout);
        for event in events.iter() {
            let i = event.token().0;
            if self.clients[i].phase == Phase::Connecting {
                self.on_connected(i);
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                self.on_readable(i);
            }
            if event.is_writable() {
                self.flush(i);
            }
        }
    }

    fn set_phase(&mut self, i: usize, phase: Phase) {
        if phase == Phase::Open {
            self.opened += 1;
        }
        self.clients[i].phase = phase;
    }

    fn fail(&mut self, i: usize, why: &str) {
        let client = &mut self.clients[i];
        if client.phase == Phase::Closed {
            return;
        }
        if client.phase == Phase::Open {
            self.opened -= 1;
        }
        // A failure while measuring is an error of the run; before it, the
        // connection simply did not open.
        if self.counting || client.phase == Phase::Open {
            self.errors += 1;
        }
        self.failed += 1;
        let _ = self.poll.registry().deregister(&mut client.conn.socket);
        client.in_flight.clear();
        client.phase = Phase::Closed;
        if self.shown_errors < 5 {
            self.shown_errors += 1;
            eprintln!("connection {i}: {why}");
        }
    }

    // -- opening --

    /// Opens `n` connections, at most `--max-pending` at a time, and waits
    /// until each is open or has failed.
    pub fn open_all(&mut self, n: usize, events: &mut Events) {
        let deadline = Instant::now() + Duration::from_secs_f64(self.common.connect_timeout);
        while self.opened + self.failed < n && Instant::now() < deadline {
            while self.clients.len() < n
                && self.clients.len() - self.opened - self.failed < self.common.max_pending
            {
                let token = Token(self.clients.len());
                let conn = match &self.tls {
                    Some((config, name)) => Conn::connect_tls(
                        self.poll.registry(),
                        self.target.addr,
                        token,
                        config,
                        name.clone(),
                    ),
                    None => Conn::connect(self.poll.registry(), self.target.addr, token),
                };
                match conn {
                    Ok(conn) => self.clients.push(Client {
                        conn,
                        phase: Phase::Connecting,
                        in_flight: VecDeque::new(),
                    }),
                    Err(e) => {
                        eprintln!("connect: {e}");
                        self.failed += 1;
                        break;
                    }
                }
            }
            self.turn(events, Duration::from_millis(10));
        }
        for i in 0..self.clients.len() {
            if !matches!(self.clients[i].phase, Phase::Open | Phase::Closed) {
                self.fail(i, "not open before --connect-timeout");
            }
        }
    }

    /// The non-blocking connect finished (or failed): say hello.
    fn on_connected(&mut self, i: usize) {
        match self.clients[i].conn.connected() {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => return self.fail(i, &format!("connect: {e}")),
        }
        let conn = &mut self.clients[i].conn;
        conn.offer_deflate = self.common.deflate;
        if let Some(path) = &self.target.path {
            let key = conn.send_handshake(&self.target.host, path, &self.target.offered());
            self.set_phase(i, Phase::Handshake { key });
        } else if self.join_rooms {
            conn.out.extend_from_slice(format!("/join load-{i}\n").as_bytes());
            self.set_phase(i, Phase::Joining);
        } else {
            self.set_phase(i, Phase::Open);
        }
        self.flush(i);
    }

    // -- reading --

    /// Reads until the socket is drained, handling each read where it lands
    /// in the shared buffer: nothing is copied unless a frame or line is
    /// split.
    fn on_readable(&mut self, i: usize) {
        let mut buf = std::mem::take(&mut self.read_buf);
        loop {
            let client = &mut self.clients[i];
            if matches!(client.phase, Phase::Closed | Phase::Connecting) {
                break;
            }
            match client.conn.read(&mut buf) {
                Ok(None) => break,
                Ok(Some(0)) => {
                    self.fail(i, "closed by the server");
                    break;
                }
                Ok(Some(n)) => {
                    self.on_input(i, &mut buf[..n]);
                    // A read that did not fill the buffer emptied the
                    // socket; bytes that arrive later raise a new event
                    // (edge-triggered), so asking again would only hear
                    // WouldBlock. The server does the same.
                    if n < buf.len() && !self.clients[i].conn.read_again() {
                        break;
                    }
                }
                Err(e) => {
                    self.fail(i, &format!("read: {e}"));
                    break;
                }
            }
        }
        self.read_buf = buf;
        // Whatever the input asked for goes out in one write.
        self.flush(i);
    }

    fn on_input(&mut self, i: usize, bytes: &mut [u8]) {
        let websocket = self.is_websocket();
        let client = &mut self.clients[i];
        match &client.phase {
            Phase::Handshake { key } => {
                client.conn.input.extend_from_slice(bytes);
                match client.conn.handshake_answer(key, &self.target.offered()) {
                    Ok(Some(_)) if self.common.deflate && client.conn.deflate.is_none() => {
                        self.fail(i, "the server declined permessage-deflate")
                    }
                    Ok(Some(_)) => {
                        // Frames may follow the head in the same read.
                        let mut rest = std::mem::take(&mut client.conn.input);
                        let next = if self.socketio {
                            Phase::Joining
                        } else {
                            Phase::Open
                        };
                        self.set_phase(i, next);
                        self.on_frames(i, &mut rest);
                    }
                    Ok(None) => {}
                    Err(e) => self.fail(i, &e.to_string()),
                }
            }
            Phase::Open | Phase::Joining if websocket => self.on_frames(i, bytes),
            Phase::Open | Phase::Joining => self.on_lines(i, bytes),
            Phase::Connecting | Phase::Closed => {}
        }
    }

    /// Decodes server frames and acts on each. Of a message only its length
    /// is kept (and for broadcast its round): a payload is never copied.
    fn on_frames(&mut self, i: usize, bytes: &mut [u8]) {
        let want_round = self.job == Job::Broadcast;
        let socketio = self.socketio;
        let mut pos = 0;
        while pos < bytes.len() {
            let decoded = self.clients[i].conn.decode(&mut bytes[pos..], |_, payload| {
                let round = if want_round { round_of(payload) } else { None };
                let sio = if socketio {
                    sio_frame(payload)
                } else {
                    SioFrame::Echo
                };
                (payload.len(), round, sio)
            });
            let (used, received) = match decoded {
                Ok(decoded) => decoded,
                Err(e) => return self.fail(i, &format!("protocol error from the server: {e}")),
            };
            pos += used;
            match received {
                None => {}
                Some(Received::Message(_, (len, round, sio))) => match sio {
                    SioFrame::Echo if self.clients[i].phase == Phase::Open => {
                        let overhead = if socketio {
                            SIO_ECHO_HEAD.len() + SIO_ECHO_TAIL.len()
                        } else {
                            0
                        };
                        self.on_message(i, len - overhead, round)
                    }
                    SioFrame::Open => self.clients[i].conn.send_frame(Opcode::Text, b"40"),
                    SioFrame::Connected if self.clients[i].phase == Phase::Joining => {
                        self.set_phase(i, Phase::Open)
                    }
                    SioFrame::Ping => self.clients[i].conn.send_frame(Opcode::Text, b"3"),
                    _ => {}
                },
                // RFC 6455 §5.5.2: answer with the same payload.
                Some(Received::Ping(payload)) => self.clients[i].conn.send_frame(Opcode::Pong, &payload),
                Some(Received::Close(..)) => return self.fail(i, "the server sent a close frame"),
            }
        }
    }

    /// Splits raw TCP input into lines; each is one echo.
    fn on_lines(&mut self, i: usize, bytes: &[u8]) {
        let conn = &mut self.clients[i].conn;
        conn.input.extend_from_slice(bytes);
        let input = std::mem::take(&mut conn.input);
        let mut start = 0;
        while let Some(newline) = input[start..].iter().position(|&b| b == b'\n') {
            let line = &input[start..start + newline];
            start += newline + 1;
            if self.clients[i].phase == Phase::Joining {
                // The greeting and the room's news come first; ours is
                // the line that says we arrived.
                if line.starts_with(b"* you joined") {
                    self.set_phase(i, Phase::Open);
                }
            } else {
                self.on_message(i, line.len(), None);
            }
        }
        let conn = &mut self.clients[i].conn;
        conn.input = input;
        conn.input.drain(..start);
    }

    fn on_message(&mut self, i: usize, len: usize, round: Option<usize>) {
        match self.job {
            Job::Echo => self.on_echo(i, len),
            Job::Idle => {}
            Job::Broadcast => {
                if round == Some(self.round) {
                    self.delivered += 1;
                    self.latency.record(self.round_sent.elapsed());
                }
            }
        }
    }

    fn on_echo(&mut self, i: usize, len: usize) {
        let Some(sent) = self.clients[i].in_flight.pop_front() else {
            return self.fail(i, "a message nobody asked for");
        };
        // A line may come back decorated (duplex's `[room] name: `).
        let wrong_size = if self.is_websocket() {
            len != self.size
        } else {
            len < self.size
        };
        if wrong_size {
            self.errors += 1;
        }
        if self.counting {
            self.echoes += 1;
            self.echo_bytes += self.size as u64;
            self.latency.record(sent.elapsed());
        }
        if !self.paced {
            self.send_message(i);
        }
    }

    // -- writing --

    /// Queues the next test message on connection `i` (written by `flush`).
    pub fn send_message(&mut self, i: usize) {
        let message = &self.messages[self.next_message];
        self.next_message = (self.next_message + 1) % self.messages.len();
        let client = &mut self.clients[i];
        client.conn.out.extend_from_slice(message);
        client.in_flight.push_back(Instant::now());
    }

    /// Writes what is queued until done or `WouldBlock`; the next writable
    /// event brings us back for the rest.
    pub fn flush(&mut self, i: usize) {
        if let Err(e) = self.clients[i].conn.flush() {
            self.fail(i, &format!("write: {e}"));
        }
    }

    pub fn open_clients(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.clients.len()).filter(|&i| self.clients[i].phase == Phase::Open)
    }
}

/// The round number in a broadcast line: `[room] name: bcast 17 ...`.
fn round_of(payload: &[u8]) -> Option<usize> {
    let at = payload.windows(ROUND_TAG.len()).position(|w| w == ROUND_TAG)? + ROUND_TAG.len();
    let digits = payload[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&payload[at..at + digits]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_socketio_frames_apart() {
        assert!(sio_frame(br#"0{"sid":"x"}"#) == SioFrame::Open);
        assert!(sio_frame(br#"40{"sid":"y"}"#) == SioFrame::Connected);
        assert!(sio_frame(b"2") == SioFrame::Ping);
        assert!(sio_frame(br#"42["servermessage","abc"]"#) == SioFrame::Echo);
        assert!(sio_frame(br#"42["servermessage","* guest-2 joined lobby"]"#) == SioFrame::Other);
        assert!(sio_frame(br#"42["other","abc"]"#) == SioFrame::Other);
    }

    #[test]
    fn finds_the_round() {
        assert_eq!(round_of(b"[lobby] guest-1: bcast 17 xxxx"), Some(17));
        assert_eq!(round_of(b"* guest-2 joined lobby"), None);
    }
}
