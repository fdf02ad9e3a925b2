//! The soak's loop: its clients, how each is opened, what each does with
//! what the server says, and the work the clock brings (lines and echoes
//! due, slow readers whose hold is over, goodbyes that took too long).

use crate::cast::{check_seq, echo_message, parse_seq, send_goodbye, send_line};
use crate::cast::{Churn, ChurnMode, Echo, Job, Member, Plan, Sender, Slow, SlowStep, Step, Wire};
use crate::http_cast::Life;
use crate::http_soak::{Web, HTTP_TOKENS};
use crate::tally::Tally;
use crate::Cli;
use duplex::random::random_u64;
use duplex::ws::close::close_payload;
use duplex::ws::decoder::MessageKind;
use duplex::ws::{CloseCode, Opcode};
use duplex_tools::conn::{self, Conn, Received};
use mio::{Events, Poll, Token};
use slab::Slab;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How often the clock's work is done: sends, holds, deadlines.
const TICK: Duration = Duration::from_millis(5);

/// How long a goodbye (ours or the server's) may wait for the other side.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a connection stands; it only moves forward.
#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// The non-blocking connect is under way.
    Connecting,
    /// The upgrade request is out; reading the `101`.
    Handshake { key: String },
    /// Talking.
    Open,
    /// We said goodbye (close frame or `/quit`); waiting for the server to
    /// close the TCP connection.
    Closing { deadline: Instant },
    /// Finished; freed after this batch of events.
    Done,
}

/// One connection and what the soak knows of it.
pub struct Client {
    conn: Conn,
    wire: Wire,
    phase: Phase,
    job: Job,
    /// The last close frame the server sent: code and reason.
    close: Option<(u16, String)>,
}

/// What one read brought: messages (a telnet line is a text message), and
/// why the connection broke, if it did.
type Messages = (Vec<Received<Vec<u8>>>, Option<String>);

pub struct Soak {
    pub(crate) cli: Cli,
    pub(crate) poll: Poll,
    tcp: SocketAddr,
    pub(crate) http: SocketAddr,
    /// `--cluster`: the second instance's doors; connections alternate.
    peer: Option<(SocketAddr, SocketAddr)>,
    opened: u64,
    pub clients: Slab<Client>,
    /// The HTTP members and their connections (`http_soak.rs`).
    pub web: Web,
    /// Connections to open, in order, at most `--max-pending` at a time.
    queue: VecDeque<Plan>,
    /// Connections in `Connecting` or `Handshake`.
    pending: usize,
    /// Connections finished in this batch, freed after it.
    reap: Vec<usize>,
    pub(crate) read_buf: Vec<u8>,
    /// Senders send, echo clients echo, churn churns.
    pub(crate) load_on: bool,
    /// Each sender's room and how many lines it has sent.
    pub senders: HashMap<String, (String, u64)>,
    /// When [`Soak::tick`] does its round next.
    next_tick: Instant,
    pub t: Tally,
}

impl Soak {
    pub fn new(
        cli: Cli,
        tcp: SocketAddr,
        http: SocketAddr,
        peer: Option<(SocketAddr, SocketAddr)>,
    ) -> io::Result<Soak> {
        let web = Web::new(
            Duration::from_secs_f64(cli.poll_interval),
            cli.http_member_timeout(),
            cli.longpoll_timeout(),
        );
        Ok(Soak {
            web,
            cli,
            poll: Poll::new()?,
            tcp,
            http,
            peer,
            opened: 0,
            clients: Slab::new(),
            queue: VecDeque::new(),
            pending: 0,
            reap: Vec::new(),
            read_buf: vec![0; 256 * 1024],
            load_on: false,
            senders: HashMap::new(),
            next_tick: Instant::now(),
            t: Tally::default(),
        })
    }

    /// One turn: wait for readiness (at most `timeout`), handle every event,
    /// free what finished. Edge-triggered like the server: read and write
    /// until `WouldBlock`.
    pub fn turn(&mut self, events: &mut Events, timeout: Duration) {
        conn::wait(&mut self.poll, events, timeout);
        for event in events.iter() {
            let i = event.token().0;
            if i >= HTTP_TOKENS {
                self.http_event(i - HTTP_TOKENS, event);
                continue;
            }
            let Some(client) = self.clients.get(i) else {
                continue;
            };
            if client.phase == Phase::Connecting {
                self.on_connected(i);
            }
            if event.is_writable() {
                self.flush(i);
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                self.on_readable(i);
            }
        }
        self.reap_finished();
        self.http_reap();
    }

    fn reap_finished(&mut self) {
        for i in std::mem::take(&mut self.reap) {
            if let Some(mut client) = self.clients.try_remove(i) {
                let _ = self.poll.registry().deregister(&mut client.conn.socket);
            }
        }
    }

    /// Marks a connection finished; it is freed (and its socket closed)
    /// after this batch of events.
    fn finish(&mut self, i: usize) {
        let client = &mut self.clients[i];
        if client.phase == Phase::Done {
            return;
        }
        if matches!(client.phase, Phase::Connecting | Phase::Handshake { .. }) {
            self.pending -= 1;
        }
        client.phase = Phase::Done;
        self.reap.push(i);
    }

    /// A connection went away without us asking.
    fn lost(&mut self, i: usize, why: &str) {
        let client = &mut self.clients[i];
        if client.phase == Phase::Done {
            return;
        }
        let kind = client.job.kind(client.wire);
        let close = client.close.clone();
        let opening = matches!(client.phase, Phase::Connecting | Phase::Handshake { .. });
        let closing = matches!(client.phase, Phase::Closing { .. });
        match &mut client.job {
            Job::Member(_) | Job::Echo(_) => {
                if opening {
                    *self.t.connect_failed.entry(kind).or_default() += 1;
                }
                if !closing {
                    self.t.unexpected_closes += 1;
                    self.t
                        .note(format!("{kind} #{i}: {why} (close frame: {close:?})"));
                }
            }
            Job::Slow(slow) if slow.goodbye.is_none() => {
                let outcome = match (&slow.step, close) {
                    (_, Some((code, reason))) => format!("close {code} {reason:?}"),
                    (SlowStep::Draining { .. }, None) => format!("no goodbye ({why})"),
                    (step, None) => format!("lost before draining, in {step:?} ({why})"),
                };
                slow.record(&mut self.t, outcome);
            }
            Job::Slow(_) => {}
            Job::Churn(churn) if closing && churn.mode == ChurnMode::Polite => self.t.churn_polite += 1,
            Job::Churn(_) => {
                self.t.churn_failed += 1;
                self.t.note(format!("{kind} #{i}: {why}"));
            }
        }
        self.finish(i);
    }

    /// Starts a polite goodbye (close 1000 or `/quit`) and gives the server
    /// [`GOODBYE_TIMEOUT`] to close the connection.
    fn say_goodbye(&mut self, i: usize, now: Instant) {
        let client = &mut self.clients[i];
        send_goodbye(client.wire, &mut client.conn);
        client.phase = Phase::Closing {
            deadline: now + GOODBYE_TIMEOUT,
        };
        self.flush(i);
    }

    // -- opening --

    fn open_queued(&mut self) {
        while self.pending < self.cli.max_pending {
            let Some(plan) = self.queue.pop_front() else {
                return;
            };
            // With a cluster, every other connection goes to the second
            // instance.
            self.opened += 1;
            let (tcp, http) = match self.peer {
                Some(peer) if self.opened % 2 == 0 => peer,
                _ => (self.tcp, self.http),
            };
            let addr = match plan.wire {
                Wire::Telnet => tcp,
                Wire::WebSocket => http,
            };
            let entry = self.clients.vacant_entry();
            match Conn::connect(self.poll.registry(), addr, Token(entry.key())) {
                Ok(conn) => {
                    entry.insert(Client {
                        conn,
                        wire: plan.wire,
                        phase: Phase::Connecting,
                        job: plan.job,
                        close: None,
                    });
                    self.pending += 1;
                }
                Err(e) => {
                    let kind = plan.job.kind(plan.wire);
                    *self.t.connect_failed.entry(kind).or_default() += 1;
                    self.t.note(format!("{kind}: connect: {e}"));
                    if plan.job.well_behaved() {
                        self.t.unexpected_closes += 1;
                    }
                }
            }
        }
    }

    fn on_connected(&mut self, i: usize) {
        match self.clients[i].conn.connected() {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => return self.lost(i, &format!("connect: {e}")),
        }
        let client = &mut self.clients[i];
        *self.t.opened.entry(client.job.kind(client.wire)).or_default() += 1;
        let drops_early = client.job.drops_early();
        match client.wire {
            Wire::WebSocket => {
                let (path, protocols) = client.job.endpoint();
                let key = client
                    .conn
                    .send_handshake(&self.http.to_string(), path, protocols);
                client.phase = Phase::Handshake { key };
                self.flush(i);
            }
            // A telnet connection is open as soon as it is connected.
            Wire::Telnet if !drops_early => {
                client.phase = Phase::Open;
                self.pending -= 1;
            }
            Wire::Telnet => {}
        }
        // Before the greeting (telnet), or with the request out and before
        // the `101` (WebSocket).
        if drops_early {
            self.t.churn_dropped_early += 1;
            self.finish(i);
        }
    }

    // -- reading --

    fn on_readable(&mut self, i: usize) {
        let client = &mut self.clients[i];
        if matches!(client.phase, Phase::Connecting | Phase::Done) {
            return;
        }
        // The point of a slow reader: the bytes stay where they are.
        if client.job.is_holding() {
            return;
        }
        let mut buf = std::mem::take(&mut self.read_buf);
        let ended = client.conn.read_to_input(&mut buf).err();
        self.read_buf = buf;
        self.process_input(i);
        match ended {
            Some(why) if self.clients[i].phase != Phase::Done => self.on_eof(i, &why),
            Some(_) => {}
            None => self.flush(i),
        }
    }

    /// Turns the bytes read into messages and handles each.
    fn process_input(&mut self, i: usize) {
        if !self.past_handshake(i) {
            return;
        }
        let client = &mut self.clients[i];
        let (messages, broken) = match client.wire {
            Wire::WebSocket => decode_frames(&mut client.conn),
            Wire::Telnet => (split_lines(&mut client.conn.input), None),
        };
        for message in messages {
            if self.clients[i].phase == Phase::Done {
                return;
            }
            self.on_message(i, message);
        }
        if let Some(why) = broken {
            self.lost(i, &why);
        }
    }

    /// `true` once the connection is past its opening handshake (a telnet
    /// connection has none); reads the server's answer if it is due.
    fn past_handshake(&mut self, i: usize) -> bool {
        let client = &mut self.clients[i];
        let Phase::Handshake { key } = &client.phase else {
            return true;
        };
        let (_, offered) = client.job.endpoint();
        match client.conn.handshake_answer(key, offered) {
            Ok(Some(_)) => {
                client.phase = Phase::Open;
                self.pending -= 1;
                if let Job::Echo(echo) = &mut client.job {
                    echo.next_at = Instant::now();
                    self.t.echo_ready += 1;
                }
                true
            }
            Ok(None) => false,
            Err(e) => {
                self.lost(i, &format!("handshake: {e}"));
                false
            }
        }
    }

    fn on_message(&mut self, i: usize, message: Received<Vec<u8>>) {
        let client = &mut self.clients[i];
        match message {
            // RFC 6455 §5.5.2: a pong carries the ping's payload back.
            Received::Ping(payload) => client.conn.send_frame(Opcode::Pong, &payload),
            Received::Close(code, reason) => self.on_close_frame(i, code, reason),
            Received::Message(kind, data) if matches!(client.job, Job::Echo(_)) => {
                self.check_echo(i, kind, data)
            }
            Received::Message(MessageKind::Text, line) => self.on_line(i, &String::from_utf8_lossy(&line)),
            // Nobody sends binary messages to the chat.
            Received::Message(MessageKind::Binary, _) => {}
        }
    }

    /// The server's close frame: note it, and answer it unless it answers
    /// ours.
    fn on_close_frame(&mut self, i: usize, code: Option<CloseCode>, reason: String) {
        let client = &mut self.clients[i];
        // 1005: "no status code was present" (§7.4.1), never on the wire.
        let number = code.map_or(1005, |c| c.0);
        if let Job::Slow(slow) = &mut client.job {
            slow.record(&mut self.t, format!("close {number} {reason:?}"));
        }
        client.close = Some((number, reason));
        if !matches!(client.phase, Phase::Closing { .. }) {
            // Answer with the same code (§5.5.1) and wait for the server to
            // close the TCP connection.
            let payload = code.map_or(Vec::new(), |c| close_payload(c, ""));
            client.conn.send_frame(Opcode::Close, &payload);
            client.phase = Phase::Closing {
                deadline: Instant::now() + GOODBYE_TIMEOUT,
            };
        }
    }

    fn on_line(&mut self, i: usize, line: &str) {
        match self.clients[i].job {
            Job::Member(_) => self.member_line(i, line),
            Job::Slow(_) => self.slow_line(i, line),
            Job::Churn(_) => self.churn_line(i, line),
            Job::Echo(_) => {}
        }
    }

    /// A member walks into its room (`/join`, then `/nick`), then checks
    /// every `seq` line.
    fn member_line(&mut self, i: usize, line: &str) {
        let client = &mut self.clients[i];
        let Job::Member(member) = &mut client.job else {
            return;
        };
        if line.starts_with('!') {
            self.t.error_lines += 1;
            self.t.note(format!("member {}: {line}", member.name));
            return;
        }
        match member.step {
            Step::Welcome if line.starts_with("* welcome") => {
                send_line(client.wire, &mut client.conn, &format!("/join {}", member.room));
                member.step = Step::Joining;
            }
            Step::Joining if line == format!("* you joined {}", member.room) => {
                send_line(client.wire, &mut client.conn, &format!("/nick {}", member.name));
                member.step = Step::Naming;
            }
            Step::Naming
                if line.starts_with("* guest-")
                    && line.ends_with(&format!(" is now known as {}", member.name)) =>
            {
                member.step = Step::Ready;
                self.t.members_ready += 1;
            }
            Step::Ready | Step::Naming => {
                if let Some(seq) = parse_seq(line) {
                    check_seq(&mut self.t, member, &seq);
                }
            }
            _ => {}
        }
    }

    /// A slow reader joins its flood room and starts holding; once it drains
    /// again, a `!` line is the server's goodbye.
    fn slow_line(&mut self, i: usize, line: &str) {
        let client = &mut self.clients[i];
        let Job::Slow(slow) = &mut client.job else {
            return;
        };
        match slow.step {
            SlowStep::Welcome if line.starts_with("* welcome") => {
                send_line(client.wire, &mut client.conn, &format!("/join {}", slow.room));
                slow.step = SlowStep::Joining;
            }
            SlowStep::Joining if line == format!("* you joined {}", slow.room) => {
                let hold = Duration::from_secs_f64(self.cli.slow_hold);
                slow.step = SlowStep::Holding {
                    until: Instant::now() + hold,
                };
            }
            SlowStep::Draining { .. } if line.starts_with('!') => {
                slow.record(&mut self.t, format!("line {line:?}"));
            }
            _ => {}
        }
    }

    /// A churner, once greeted, joins a room, says its line and leaves the
    /// way its mode says.
    fn churn_line(&mut self, i: usize, line: &str) {
        let client = &mut self.clients[i];
        let Job::Churn(churn) = &client.job else {
            return;
        };
        if !line.starts_with("* welcome") {
            return;
        }
        send_line(client.wire, &mut client.conn, &format!("/join {}", churn.room));
        send_line(client.wire, &mut client.conn, &format!("churn {}", churn.number));
        if churn.mode == ChurnMode::Polite {
            return self.say_goodbye(i, Instant::now());
        }
        self.flush(i);
        self.t.churn_dropped += 1;
        self.finish(i);
    }

    fn check_echo(&mut self, i: usize, kind: MessageKind, data: Vec<u8>) {
        let Job::Echo(echo) = &mut self.clients[i].job else {
            return;
        };
        self.t.echo_received += 1;
        self.t.echo_bytes += data.len() as u64;
        match echo.in_flight.pop_front() {
            Some((sent_kind, sent)) if sent_kind == kind && sent == data => {}
            Some((sent_kind, sent)) => {
                self.t.echo_mismatches += 1;
                let at = sent.iter().zip(&data).position(|(a, b)| a != b);
                self.t.note(format!(
                    "echo #{i}: sent {sent_kind:?} of {} bytes, got {kind:?} of {} (first difference at {at:?})",
                    sent.len(),
                    data.len()
                ));
            }
            None => {
                self.t.echo_mismatches += 1;
                self.t.note(format!(
                    "echo #{i}: an echo of nothing sent ({} bytes)",
                    data.len()
                ));
            }
        }
    }

    /// The server closed the TCP connection, or it broke.
    fn on_eof(&mut self, i: usize, why: &str) {
        let client = &mut self.clients[i];
        if !matches!(client.phase, Phase::Closing { .. }) {
            return self.lost(i, why);
        }
        match &mut client.job {
            Job::Churn(churn) if churn.mode == ChurnMode::Polite => self.t.churn_polite += 1,
            Job::Slow(slow) => slow.record(&mut self.t, "closed by us (run over)".to_string()),
            _ => {}
        }
        self.finish(i);
    }

    // -- writing --

    fn flush(&mut self, i: usize) {
        let client = &mut self.clients[i];
        if matches!(client.phase, Phase::Connecting | Phase::Done) {
            return;
        }
        if let Err(e) = client.conn.flush() {
            self.lost(i, &format!("write: {e}"));
        }
    }

    // -- the clock's work --

    /// Everything that happens because time passed: lines and echoes due,
    /// slow readers whose hold is over, goodbyes that took too long.
    pub fn tick(&mut self, now: Instant) {
        // A turn can be much shorter than this; visiting every connection
        // each time would cost more than the traffic.
        if now < self.next_tick {
            return;
        }
        self.next_tick = now + TICK;
        self.open_queued();
        let keys: Vec<usize> = self.clients.iter().map(|(i, _)| i).collect();
        for i in keys {
            self.tick_client(i, now);
        }
        self.reap_finished();
        self.http_tick(now);
    }

    fn tick_client(&mut self, i: usize, now: Instant) {
        let client = &mut self.clients[i];
        match client.phase {
            Phase::Closing { deadline } if now >= deadline => {
                self.t.close_timeouts += 1;
                let kind = client.job.kind(client.wire);
                self.t
                    .note(format!("{kind} #{i}: no close from the server within 10 s"));
                return self.finish(i);
            }
            Phase::Open => {}
            _ => return,
        }
        match &client.job {
            Job::Member(Member {
                sender: Some(_),
                step: Step::Ready,
                ..
            }) if self.load_on => self.send_seq_lines(i, now),
            Job::Echo(_) if self.load_on => self.send_echoes(i, now),
            Job::Slow(_) => self.tick_slow(i, now),
            _ => {}
        }
    }

    /// A sender's `seq` lines due by `now`.
    fn send_seq_lines(&mut self, i: usize, now: Instant) {
        let client = &mut self.clients[i];
        let Job::Member(Member {
            name,
            room,
            sender: Some(sender),
            ..
        }) = &mut client.job
        else {
            return;
        };
        while now >= sender.next_at {
            let text = sender.next_line(name);
            send_line(client.wire, &mut client.conn, &text);
            self.t.seq_sent += 1;
            if sender.pad > 0 {
                self.t.flood_sent += 1;
            }
            self.senders.insert(name.clone(), (room.clone(), sender.sent));
        }
        self.flush(i);
    }

    /// An echo client's messages due by `now`, at most `--echo-depth` in
    /// flight.
    fn send_echoes(&mut self, i: usize, now: Instant) {
        let client = &mut self.clients[i];
        let Job::Echo(echo) = &mut client.job else {
            return;
        };
        let interval = Duration::from_secs_f64(1.0 / self.cli.echo_rate.max(0.001));
        while now >= echo.next_at && echo.in_flight.len() < self.cli.echo_depth {
            echo.next_at += interval;
            echo.count += 1;
            let (kind, data) = echo_message(i, echo.count);
            client.conn.send_frame(kind.opcode(), &data);
            echo.in_flight.push_back((kind, data));
            self.t.echo_sent += 1;
        }
        // Behind because the server was slow to answer: do not make up for
        // it in a burst.
        if now >= echo.next_at + interval {
            echo.next_at = now;
        }
        self.flush(i);
    }

    /// A slow reader whose hold is over reads again; one the server has not
    /// closed by the end of its draining says so, and leaves.
    fn tick_slow(&mut self, i: usize, now: Instant) {
        let Job::Slow(slow) = &mut self.clients[i].job else {
            return;
        };
        match slow.step {
            SlowStep::Holding { until } if now >= until => {
                slow.step = SlowStep::Draining {
                    deadline: now + GOODBYE_TIMEOUT,
                };
                self.on_readable(i);
            }
            SlowStep::Draining { deadline } if now >= deadline && slow.goodbye.is_none() => {
                // The server let it live: say so, and leave.
                slow.record(&mut self.t, "not closed by the server".to_string());
                self.say_goodbye(i, now);
            }
            _ => {}
        }
    }

    // -- the cast --

    /// Queues the members, the flooders and the echo clients.
    pub fn plan_members(&mut self) {
        let cli = &self.cli;
        for m in 0..cli.members {
            let wire = if cli.telnet_every > 0 && m % cli.telnet_every == cli.telnet_every - 1 {
                Wire::Telnet
            } else {
                Wire::WebSocket
            };
            let is_sender = cli.sender_every > 0 && m % cli.sender_every == 0;
            let sender = is_sender.then(|| sender(cli.send_rate, 0));
            let room = format!("room-{}", m % cli.rooms.max(1));
            let job = Job::Member(member(format!("m{m}"), room, sender));
            self.queue.push_back(Plan { wire, job });
        }
        for f in 0..cli.flood_rooms {
            let flooder = sender(cli.flood_rate, cli.flood_size);
            let mut member = member(format!("flood{f}"), format!("flood-{f}"), Some(flooder));
            member.flooder = true;
            let job = Job::Member(member);
            self.queue.push_back(Plan {
                wire: Wire::WebSocket,
                job,
            });
        }
        for _ in 0..cli.echoes {
            let job = Job::Echo(Echo {
                in_flight: VecDeque::new(),
                next_at: Instant::now(),
                count: 0,
            });
            self.queue.push_back(Plan {
                wire: Wire::WebSocket,
                job,
            });
        }
    }

    pub fn plan_slow(&mut self, n: u64) {
        let wire = if n % 4 == 3 { Wire::Telnet } else { Wire::WebSocket };
        let room = format!("flood-{}", n % self.cli.flood_rooms.max(1) as u64);
        self.t.slow_started += 1;
        self.queue.push_back(Plan {
            wire,
            job: Job::Slow(Slow {
                room,
                step: SlowStep::Welcome,
                goodbye: None,
            }),
        });
    }

    pub fn plan_churn(&mut self, n: u64) {
        let wire = if n % 4 == 3 { Wire::Telnet } else { Wire::WebSocket };
        let mode = match n % 5 {
            0 | 1 => ChurnMode::Polite,
            2 | 3 => ChurnMode::DropAfterLine,
            _ => ChurnMode::DropEarly,
        };
        let room = format!("room-{}", random_u64() % self.cli.rooms.max(1) as u64);
        self.t.churn_started += 1;
        self.queue.push_back(Plan {
            wire,
            job: Job::Churn(Churn {
                mode,
                room,
                number: n,
            }),
        });
    }

    /// Staggers the senders' first lines over one interval, so a second's
    /// lines do not all leave at once.
    pub fn start_senders(&mut self, now: Instant) {
        for (_, client) in self.clients.iter_mut() {
            if let Job::Member(Member {
                sender: Some(sender), ..
            }) = &mut client.job
            {
                let offset = (random_u64() % 1_000_000) as f64 / 1e6;
                sender.next_at = now + sender.interval.mul_f64(offset);
            }
        }
        self.load_on = true;
    }

    // -- the end --

    /// Every member that must see every line of its room: on the telnet
    /// door, over WebSocket, and over HTTP (those that stay and read).
    fn members(&self) -> impl Iterator<Item = &Member> {
        let sockets = self.clients.iter().filter_map(|(_, c)| match &c.job {
            Job::Member(m) => Some(m),
            _ => None,
        });
        let http = self.web.members.iter().filter(|(_, m)| m.counts_lines());
        sockets.chain(http.map(|(_, m)| &m.chat))
    }

    /// Lines sent to each member's room that it has not received yet.
    pub fn lines_outstanding(&self) -> u64 {
        let mut missing = 0;
        for member in self.members().filter(|m| m.step == Step::Ready) {
            for (sender, (room, sent)) in &self.senders {
                if *room == member.room {
                    missing += sent.saturating_sub(member.seen.get(sender).copied().unwrap_or(0));
                }
            }
        }
        missing
    }

    pub fn echoes_outstanding(&self) -> u64 {
        self.clients
            .iter()
            .map(|(_, c)| match &c.job {
                Job::Echo(e) => e.in_flight.len() as u64,
                _ => 0,
            })
            .sum()
    }

    pub fn count_jobs(&self, pick: fn(&Job) -> bool) -> usize {
        self.clients.iter().filter(|(_, c)| pick(&c.job)).count()
    }

    /// Lines each member should have had: per sender, its lines times the
    /// members of its room.
    pub fn seq_expected(&self) -> u64 {
        let mut room_size: HashMap<&str, u64> = HashMap::new();
        for member in self.members().filter(|m| m.step == Step::Ready) {
            *room_size.entry(member.room.as_str()).or_default() += 1;
        }
        self.senders
            .values()
            .map(|(room, sent)| sent * room_size.get(room.as_str()).copied().unwrap_or(0))
            .sum()
    }

    /// The load stops: no new lines, echoes or churners, and the slow
    /// readers still holding drain now.
    pub fn stop_load(&mut self) {
        self.load_on = false;
        self.queue.retain(|plan| !matches!(plan.job, Job::Churn(_)));
        let now = Instant::now();
        for (_, client) in self.clients.iter_mut() {
            if let Job::Slow(Slow {
                step: SlowStep::Holding { until },
                ..
            }) = &mut client.job
            {
                *until = now;
            }
        }
    }

    /// Setup can wait no longer: nothing is left to open, and no member is
    /// still on its way into its room. (Those that are not ready by now did
    /// not make it.)
    pub fn nothing_on_the_way(&self) -> bool {
        self.pending == 0
            && self.queue.is_empty()
            && self.count_jobs(|j| matches!(j, Job::Member(m) if m.step != Step::Ready)) == 0
            && self.web.count(|m| m.chat.step != Step::Ready) == 0
    }

    /// Nothing left to wait for: no slow reader or churner, nothing queued,
    /// every line and every echo in.
    pub fn settled(&self) -> bool {
        self.count_jobs(|j| matches!(j, Job::Slow(_) | Job::Churn(_))) == 0
            && self.web.count(|m| matches!(m.life, Life::Churn { .. })) == 0
            && self.queue.is_empty()
            && self.lines_outstanding() == 0
            && self.echoes_outstanding() == 0
    }

    /// Every connection still open says goodbye politely.
    pub fn close_all(&mut self) {
        let now = Instant::now();
        let keys: Vec<usize> = self.clients.iter().map(|(i, _)| i).collect();
        for i in keys {
            match self.clients[i].phase {
                Phase::Open => self.say_goodbye(i, now),
                Phase::Connecting | Phase::Handshake { .. } => self.finish(i),
                Phase::Closing { .. } | Phase::Done => {}
            }
        }
        self.reap_finished();
        self.http_close_all();
    }

    /// Frees every connection, whatever its phase.
    pub fn drop_all(&mut self) {
        let keys: Vec<usize> = self.clients.iter().map(|(i, _)| i).collect();
        for i in keys {
            self.finish(i);
        }
        self.reap_finished();
        self.http_drop_all();
    }
}

/// A member, not in its room yet.
fn member(name: String, room: String, sender: Option<Sender>) -> Member {
    Member {
        name,
        room,
        step: Step::Welcome,
        sender,
        seen: HashMap::new(),
        flooder: false,
    }
}

/// A sender of `rate` lines a second, padded with `pad` bytes.
fn sender(rate: f64, pad: usize) -> Sender {
    Sender {
        interval: Duration::from_secs_f64(1.0 / rate.max(0.001)),
        next_at: Instant::now(),
        sent: 0,
        pad,
    }
}

/// Decodes the frames in a connection's input.
fn decode_frames(conn: &mut Conn) -> Messages {
    let mut input = std::mem::take(&mut conn.input);
    let mut messages = Vec::new();
    let mut broken = None;
    let mut pos = 0;
    while pos < input.len() {
        match conn.decode(&mut input[pos..], |_, payload| payload.to_vec()) {
            Ok((used, message)) => {
                pos += used;
                messages.extend(message);
            }
            Err(e) => {
                broken = Some(format!("bad frame from the server: {e}"));
                break;
            }
        }
    }
    input.drain(..pos);
    conn.input = input;
    (messages, broken)
}

/// Takes the complete lines out of a telnet connection's input, each as a
/// text message without its line end.
fn split_lines(input: &mut Vec<u8>) -> Vec<Received<Vec<u8>>> {
    let mut lines = Vec::new();
    let mut pos = 0;
    while let Some(nl) = input[pos..].iter().position(|&b| b == b'\n') {
        let line = &input[pos..pos + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        lines.push(Received::Message(MessageKind::Text, line.to_vec()));
        pos += nl + 1;
    }
    input.drain(..pos);
    lines
}
