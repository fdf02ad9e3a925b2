//! The chat's HTTP members under the cases that broke them: a long poll
//! parked past the request deadline, an event stream whose member quits,
//! a `/quit` pipelined behind a parked poll, refused requests, and
//! `Connection: close` on every kind of answer. Real sockets throughout.

mod common;

use common::{json_field as field, read_response, Duplex, RawWs, Telnet, WAIT};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn connect(server: &Duplex) -> TcpStream {
    let stream = TcpStream::connect(server.http).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
}

/// A new HTTP member: its token, and the number of the last line it saw.
fn new_member_at(server: &Duplex) -> (String, String) {
    let mut stream = connect(server);
    write!(stream, "GET /poll HTTP/1.1\r\nHost: {}\r\n\r\n", server.http).unwrap();
    let (status, _, body) = read_response(&mut stream);
    assert_eq!(status, 200);
    let body = String::from_utf8(body).unwrap();
    (field(&body, "token"), field(&body, "next"))
}

fn new_member(server: &Duplex) -> String {
    new_member_at(server).0
}

fn post(stream: &mut TcpStream, server: &Duplex, query: &str, extra: &str, body: &[u8]) {
    let head = format!(
        "POST /send?{query} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n{extra}\r\n",
        server.http,
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
}

/// Reads to the end of the stream; panics if the server keeps it open
/// past `WAIT`.
fn read_to_eof(stream: &mut TcpStream) -> String {
    let mut rest = Vec::new();
    stream
        .read_to_end(&mut rest)
        .expect("the server closes the connection");
    String::from_utf8_lossy(&rest).into_owned()
}

#[test]
fn a_long_poll_outlives_the_request_deadline_and_is_answered_empty() {
    let server = Duplex::start(&["--handshake-timeout", "300ms", "--longpoll-timeout", "1200ms"]);
    let (token, next) = new_member_at(&server);
    let mut stream = connect(&server);
    let started = Instant::now();
    let host = server.http;
    write!(
        stream,
        "GET /longpoll?token={token}&since={next} HTTP/1.1\r\nHost: {host}\r\n\r\n"
    )
    .unwrap();
    let (status, _, body) = read_response(&mut stream);
    let waited = started.elapsed();
    assert_eq!(status, 200);
    assert!(String::from_utf8(body).unwrap().contains("\"messages\":[]"));
    assert!(
        waited >= Duration::from_millis(1100),
        "answered after {waited:?}, before the long-poll timeout"
    );
}

#[test]
fn an_event_stream_ends_with_its_member_and_never_serves_the_next() {
    let server = Duplex::start(&[]);
    let token = new_member(&server);
    let mut stream = connect(&server);
    write!(
        stream,
        "GET /events?token={token} HTTP/1.1\r\nHost: {}\r\n\r\n",
        server.http
    )
    .unwrap();
    let mut first = [0u8; 64];
    let n = stream.read(&mut first).unwrap();
    assert!(first[..n].starts_with(b"HTTP/1.1 200"));
    let mut quitter = connect(&server);
    post(&mut quitter, &server, &format!("token={token}"), "", b"/quit");
    let (status, _, _) = read_response(&mut quitter);
    assert_eq!(status, 204);
    // Someone new arrives and takes the freed place in the member table.
    let newcomer = new_member(&server);
    assert_ne!(newcomer, token);
    let rest = read_to_eof(&mut stream);
    assert!(rest.contains("* bye"), "the stream carried the goodbye: {rest}");
    assert!(
        !rest.contains("welcome"),
        "the stream carried a stranger's lines: {rest}"
    );
}

#[test]
fn a_quit_pipelined_behind_a_parked_long_poll_ends_the_member() {
    let server = Duplex::start(&[]);
    let (mut observer, _) = Telnet::join(server.tcp);
    let (token, next) = new_member_at(&server);
    let mut stream = connect(&server);
    let body = b"/quit\nsaid after quitting";
    let request = format!(
        "GET /longpoll?token={token}&since={next} HTTP/1.1\r\nHost: {h}\r\n\r\n\
POST /send?token={token} HTTP/1.1\r\nHost: {h}\r\nContent-Length: {}\r\n\r\n",
        body.len(),
        h = server.http
    );
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    // The telnet member's line wakes the poll; the POST behind it runs.
    observer.say("wake up");
    let (status, _, _) = read_response(&mut stream);
    assert_eq!(status, 200);
    let (status, _, _) = read_response(&mut stream);
    assert_eq!(status, 204, "the /quit answer");
    let left = observer.until(|l| l.contains("disconnected"));
    assert!(left.starts_with("* guest-"), "{left}");
    // A line after the departure proves nothing else was said before it.
    observer.say("/echo done");
    let after = observer.until(|l| l == "done" || l.contains("said after quitting"));
    assert_eq!(after, "done");
}

#[test]
fn a_refused_send_makes_no_member() {
    let server = Duplex::start(&[]);
    let (mut observer, _) = Telnet::join(server.tcp);
    let mut stream = connect(&server);
    post(&mut stream, &server, "room=lobby", "", b"bad \xff utf-8");
    let (status, _, _) = read_response(&mut stream);
    assert_eq!(status, 400);
    observer.say("/who");
    let who = observer.until(|l| l.starts_with("* members of"));
    assert_eq!(who.matches("guest-").count(), 1, "{who}");
}

#[test]
fn connection_close_is_honoured_on_every_chat_answer() {
    let server = Duplex::start(&["--longpoll-timeout", "200ms"]);
    // The 400 for a body that is not UTF-8.
    let mut stream = connect(&server);
    post(&mut stream, &server, "", "Connection: close\r\n", b"\xff");
    let (status, head, _) = read_response(&mut stream);
    assert_eq!(status, 400);
    assert!(head.to_ascii_lowercase().contains("connection: close"), "{head}");
    assert_eq!(read_to_eof(&mut stream), "");
    // The 204 for /quit.
    let token = new_member(&server);
    let mut stream = connect(&server);
    post(
        &mut stream,
        &server,
        &format!("token={token}"),
        "Connection: close\r\n",
        b"/quit",
    );
    let (status, head, _) = read_response(&mut stream);
    assert_eq!(status, 204);
    assert!(head.to_ascii_lowercase().contains("connection: close"), "{head}");
    assert_eq!(read_to_eof(&mut stream), "");
    // A long poll released by its timeout, over HTTP/1.0.
    let token = new_member(&server);
    let mut stream = connect(&server);
    write!(stream, "GET /longpoll?token={token} HTTP/1.0\r\n\r\n").unwrap();
    let (status, head, _) = read_response(&mut stream);
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("connection: close"), "{head}");
    assert_eq!(read_to_eof(&mut stream), "");
}

#[test]
fn members_that_come_and_go_leave_one_sweep_behind() {
    let server = Duplex::start_with_env(&["--http-member-timeout", "10s"], &[("RUST_LOG", "duplex=trace")]);
    let mut stream = connect(&server);
    for _ in 0..200 {
        post(&mut stream, &server, "", "", b"/quit");
        let (status, _, _) = read_response(&mut stream);
        assert_eq!(status, 204);
    }
    // One more request, then read the timer count of the turns after it:
    // every member came and went, so one sweep (and this connection's own
    // request deadline) is all that may be pending.
    write!(stream, "GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.http).unwrap();
    assert_eq!(read_response(&mut stream).0, 200);
    server.wait_log("GET /healthz");
    // The turn that read that request logged how many timers were set.
    let log = server.log();
    let before = &log[..log.rfind("GET /healthz").unwrap_or(0)];
    let turn = before
        .lines()
        .rev()
        .find(|l| l.contains("turn:"))
        .expect("a traced turn");
    let timers: usize = turn
        .split(" connections, ")
        .nth(1)
        .and_then(|t| t.split(' ').next()?.parse().ok())
        .expect("the timer count");
    assert!(
        timers < 20,
        "{timers} timers pending after 200 members came and went: {turn}"
    );
}

#[test]
fn the_hard_output_limit_closes_with_1008_at_a_frame_boundary() {
    let server = Duplex::start(&[
        "--max-output",
        "64KiB",
        "--max-output-hard",
        "256KiB",
        "--slow-reader-timeout",
        "60s",
    ]);
    // A chat member that never reads, in a room where someone floods.
    let mut slow = RawWs::connect(server.http, "/chat");
    let (mut flooder, _) = Telnet::join(server.tcp);
    let mut drain = flooder.stream.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let mut sink = [0u8; 65536];
        while matches!(drain.read(&mut sink), Ok(n) if n > 0) {}
    });
    let line = format!("{}\r\n", "x".repeat(1000));
    for _ in 0..8000 {
        flooder.send(line.as_bytes());
        if server.log().contains("over the hard limit") {
            break;
        }
    }
    server.wait_log("over the hard limit");
    // Every frame before the close is whole, and the close says 1008.
    loop {
        let frame = slow.read_frame().expect("a close frame before the end");
        match frame.opcode {
            0x1 => assert!(std::str::from_utf8(&frame.payload).is_ok()),
            0x8 => {
                assert_eq!(frame.close().0, 1008);
                break;
            }
            other => panic!("unexpected opcode {other}"),
        }
    }
    drop(slow);
    flooder.stream.shutdown(std::net::Shutdown::Both).unwrap();
    reader.join().unwrap();
}

#[test]
fn a_poll_names_its_room_in_any_spelling() {
    let server = Duplex::start(&[]);
    let (token, next) = new_member_at(&server);
    let (mut telnet, _) = Telnet::join(server.tcp);
    telnet.say("one new line");
    telnet.until(|l| l.ends_with("one new line"));
    let mut stream = connect(&server);
    let host = server.http;
    write!(
        stream,
        "GET /poll?token={token}&room=LOBBY&since={next} HTTP/1.1\r\nHost: {host}\r\n\r\n"
    )
    .unwrap();
    let (status, _, body) = read_response(&mut stream);
    assert_eq!(status, 200);
    let body = String::from_utf8(body).unwrap();
    // After `since`, and only after it: the telnet member's arrival and
    // its line, not this member's own arrival again.
    assert_eq!(body.matches("\"id\":").count(), 2, "{body}");
    assert!(body.contains("one new line"), "{body}");
}
