//! Telnet option negotiation as real clients do it, names and rooms that
//! look alike, and history bounded in bytes, over real sockets.

mod common;

use common::{json_field as field, read_response, Duplex, Telnet, WAIT};
use std::io::Write;
use std::net::TcpStream;

/// What netkit and inetutils telnet send for Ctrl-C in line mode:
/// IAC IP, then IAC DO TIMING-MARK (RFC 854, RFC 860).
const CTRL_C: &[u8] = b"\xFF\xF4\xFF\xFD\x06";
/// IAC WILL TIMING-MARK: the answer the client waits for.
const WILL_TIMING_MARK: &[u8] = b"\xFF\xFB\x06";

#[test]
fn ctrl_c_is_answered_with_a_timing_mark_and_the_session_goes_on() {
    let server = Duplex::start(&[]);
    let (mut telnet, name) = Telnet::join(server.tcp);
    telnet.say("before");
    telnet.send(CTRL_C);
    // Like the real client: everything until the mark is thrown away,
    // and without the mark nothing would ever be shown again.
    let discarded = telnet.until_bytes(WILL_TIMING_MARK);
    // RFC 860: the mark comes after the output for what was sent before it.
    assert!(
        String::from_utf8_lossy(&discarded).contains(&format!("[lobby] {name}: before")),
        "{discarded:?}"
    );
    telnet.say("/who");
    assert_eq!(telnet.line(), format!("* members of lobby: {name}"));
    telnet.say("/quit");
    assert_eq!(telnet.line(), format!("* bye, {name}"));
    assert!(telnet.until_closed().is_empty());
    server.wait_log("telnet IAC DO TIMING-MARK");
}

#[test]
fn requests_are_refused_once_and_refusals_are_not_answered() {
    let server = Duplex::start(&[]);
    let (mut telnet, _) = Telnet::join(server.tcp);
    // DO ECHO, WILL NAWS, then WONT ECHO and DONT NAWS (already off), then
    // Are You There, then a line whose answer marks the end.
    telnet.send(b"\xFF\xFD\x01\xFF\xFB\x1F\xFF\xFC\x01\xFF\xFE\x1F\xFF\xF6/echo done\r\n");
    let answers = telnet.until_bytes(b"done\r\n");
    let mut expected = b"\xFF\xFC\x01\xFF\xFE\x1F".to_vec();
    expected.extend_from_slice(b"* duplex is here\r\n");
    assert_eq!(answers, expected, "got {:?}", String::from_utf8_lossy(&answers));
    server.wait_log("telnet IAC WILL NAWS");
}

#[test]
fn the_line_echo_answers_commands_in_order_and_rebuilds_lines_they_cut() {
    let server = Duplex::start(&["--line-echo"]);
    let mut telnet = Telnet::connect(server.tcp);
    let mut input = b"one\r\n".to_vec();
    input.extend_from_slice(CTRL_C);
    // A NOP in the middle of a line: that line is not its own echo.
    input.extend_from_slice(b"two\r\nx\xFF\xF1y\r\n\xFF\xFFz\r\nthree\n");
    telnet.send(&input);
    let echoed = telnet.until_bytes(b"three\n");
    assert_eq!(
        echoed,
        b"one\r\n\xFF\xFB\x06two\r\nxy\r\n\xFF\xFFz\r\n".to_vec(),
        "got {:?}",
        String::from_utf8_lossy(&echoed)
    );
    // The same, a byte at a time.
    for byte in &input {
        telnet.send(&[*byte]);
    }
    let echoed = telnet.until_bytes(b"three\n");
    assert_eq!(echoed, b"one\r\n\xFF\xFB\x06two\r\nxy\r\n\xFF\xFFz\r\n".to_vec());
}

#[test]
fn names_and_rooms_that_look_alike_are_one_over_telnet() {
    let server = Duplex::start(&[]);
    let (mut a, _) = Telnet::join(server.tcp);
    let (mut b, b_name) = Telnet::join(server.tcp);
    a.until(|l| l == format!("* {b_name} joined lobby"));
    a.say("/nick ÄRGER");
    a.until(|l| l.ends_with("is now known as ÄRGER"));
    b.until(|l| l.ends_with("is now known as ÄRGER"));
    b.say("/nick ärger");
    assert_eq!(b.line(), "! name taken: ärger");
    // Fullwidth letters are the ASCII ones.
    b.say("/nick \u{FF41}\u{FF4C}\u{FF49}\u{FF43}\u{FF45}");
    b.until(|l| l.ends_with("is now known as \u{FF41}\u{FF4C}\u{FF49}\u{FF43}\u{FF45}"));
    a.say("/nick Alice");
    assert_eq!(a.until(|l| l.starts_with('!')), "! name taken: Alice");
    // An invisible name is refused with its reason.
    a.say("/nick \u{3164}");
    let refusal = a.until(|l| l.starts_with('!'));
    assert!(refusal.contains("invisible"), "{refusal}");
    // Joining ROOM puts b where a is, under a's spelling.
    a.say("/join Room");
    assert_eq!(a.until(|l| l.starts_with("* you joined")), "* you joined Room");
    b.say("/join ROOM");
    assert_eq!(b.until(|l| l.starts_with("* you joined")), "* you joined Room");
    a.until(|l| l.ends_with("joined Room"));
    b.say("/who");
    assert_eq!(
        b.until(|l| l.starts_with("* members of")),
        "* members of Room: ÄRGER, \u{FF41}\u{FF4C}\u{FF49}\u{FF43}\u{FF45}"
    );
    // And a bare /echo says how it is used.
    b.say("/echo");
    assert_eq!(b.line(), "! usage: /echo TEXT");
}

/// A chat member over plain HTTP, in a room of its own.
struct Poster {
    stream: TcpStream,
    host: String,
    token: String,
    next: u64,
}

impl Poster {
    /// Joins `room` with a first poll.
    fn join(server: &Duplex, room: &str) -> Poster {
        let stream = TcpStream::connect(server.http).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut poster = Poster {
            stream,
            host: server.http.to_string(),
            token: String::new(),
            next: 0,
        };
        let body = poster.request(&format!(
            "GET /poll?room={room} HTTP/1.1\r\nHost: {}\r\n\r\n",
            poster.host
        ));
        poster.token = field(&body, "token");
        poster.next = field(&body, "next").parse().unwrap();
        poster
    }

    fn request(&mut self, request: &str) -> String {
        self.stream.write_all(request.as_bytes()).unwrap();
        let (status, _, body) = read_response(&mut self.stream);
        let body = String::from_utf8(body).unwrap();
        assert_eq!(status, 200, "{body}");
        body
    }

    fn send(&mut self, lines: &str) {
        let request = format!(
            "POST /send?token={} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n{lines}",
            self.token,
            self.host,
            lines.len()
        );
        self.request(&request);
    }

    /// Polls for what came after the first poll.
    fn poll_since_start(&mut self, room: &str) -> String {
        let request = format!(
            "GET /poll?room={room}&since={}&token={} HTTP/1.1\r\nHost: {}\r\n\r\n",
            self.next, self.token, self.host
        );
        self.request(&request)
    }
}

#[test]
fn history_is_bounded_in_bytes_per_room_and_in_total() {
    const ROOMS: usize = 16;
    const PER_ROOM: usize = 2 << 20;
    const TOTAL_BUDGET: usize = 1 << 20;
    let server = Duplex::start(&["--history-bytes", "128KiB", "--history-total-bytes", "1MiB"]);
    let mut posters: Vec<Poster> = (0..ROOMS)
        .map(|i| Poster::join(&server, &format!("r{i}")))
        .collect();
    // 15 lines of 4000 bytes fit in one 64 KiB body.
    let line = "x".repeat(4000);
    let body: String = (0..15).map(|_| format!("{line}\n")).collect();
    posters[0].send(&body);
    let before = common::peak_rss_kib(server.pid());
    for _ in 0..PER_ROOM / body.len() {
        for poster in &mut posters {
            poster.send(&body);
        }
    }
    let after = common::peak_rss_kib(server.pid());
    eprintln!("peak resident memory: {before} KiB before the flood, {after} KiB after");
    // 32 MiB were said and 1 MiB may be kept: the peak may grow by the
    // budget and the loop's passing buffers, not by what was said.
    let grew = after.saturating_sub(before);
    assert!(
        grew < 8 * (TOTAL_BUDGET as u64 >> 10),
        "peak resident memory grew by {grew} KiB, from {before} KiB"
    );
    // A poller that comes back is told what it missed, and is given no
    // more than its room keeps.
    let answer = posters[3].poll_since_start("r3");
    let missed: u64 = field(&answer, "missed").parse().unwrap();
    assert!(missed > 0, "{}", &answer[..answer.len().min(200)]);
    let kept = answer.matches("\"id\":").count();
    assert!(kept * 4000 <= 128 << 10, "{kept} lines kept");
}
