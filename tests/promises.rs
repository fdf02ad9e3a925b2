//! Promises that `--help`, the README and DESIGN make and no other test
//! kept: the Host and Origin options, the event stream's keep-alive, the
//! shutdown and close deadlines, a head refused before it ends, history
//! that says what it lost, and a room that a member who stops reading
//! cannot slow down. Real sockets, the real binary.

mod common;

use common::{header_value, http_request, upgrade_request, web_connect, Duplex, Json, RawWs, Telnet, WAIT};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

// ---- Host and Origin ------------------------------------------------------------

#[test]
fn allow_host_serves_the_named_host_and_refuses_others() {
    let server = Duplex::start(&["--allow-host", "chat.example"]);
    // The name, with or without a port, and in any letter case.
    for host in ["chat.example", "chat.example:8080", "Chat.Example"] {
        let request = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let (status, head, body) = http_request(server.http, request.as_bytes());
        assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]), "{host}: {head}");
    }
    // Anything else is still a possible DNS rebinding, refused with a
    // reason that names the host.
    for host in ["other.example", "chat.example.evil", "evil.chat.example"] {
        let request = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let (status, head, body) = http_request(server.http, request.as_bytes());
        assert_eq!(status, 403, "{host}: {head}");
        let body = String::from_utf8_lossy(&body);
        assert!(
            body.contains(&format!("host {host} is not served here")),
            "{body}"
        );
    }
}

#[test]
fn allow_origin_star_accepts_any_origin_for_websocket() {
    let server = Duplex::start(&["--allow-origin", "*"]);
    for origin in ["https://evil.example", "http://anything.test:1234", "null"] {
        let request = upgrade_request(server.http, "/echo", &format!("Origin: {origin}\r\n"));
        let mut ws = RawWs::connect_with(server.http, &request);
        ws.send_frame(true, 0x1, origin.as_bytes());
        let echo = ws.read_frame().expect("the echo");
        assert_eq!((echo.opcode, echo.payload.as_slice()), (0x1, origin.as_bytes()));
    }
    // `*` opens origins, not hosts: the DNS-rebinding guard still holds.
    let request = String::from_utf8(upgrade_request(
        server.http,
        "/echo",
        "Origin: https://evil.example\r\n",
    ))
    .unwrap()
    .replace(&format!("Host: {}", server.http), "Host: evil.example");
    let (status, head, _) = http_request(server.http, request.as_bytes());
    assert_eq!(status, 403, "{head}");
}

// ---- the event stream's keep-alive ------------------------------------------------

/// The interval in `src/server` (`EVENT_STREAM_KEEPALIVE`); it has no
/// option, so this test waits for it in full.
const SSE_KEEPALIVE: Duration = Duration::from_secs(15);

#[test]
fn an_idle_event_stream_gets_a_keep_alive_comment() {
    let server = Duplex::start(&[]);
    let mut stream = TcpStream::connect(server.http).unwrap();
    stream
        .set_read_timeout(Some(SSE_KEEPALIVE + Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET /events?room=quiet HTTP/1.1\r\nHost: {}\r\n\r\n",
        server.http
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200 "), "{line}");
    // Nobody talks in this room. Every line until the comment is the head
    // or the stream's own greeting (its token, its welcome, its arrival).
    let opened = Instant::now();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("no keep-alive within {:?}: {e}", opened.elapsed()));
        assert!(n > 0, "the stream ended");
        if line == ": keep-alive\n" {
            break;
        }
    }
    let waited = opened.elapsed();
    assert!(
        waited >= SSE_KEEPALIVE - Duration::from_secs(1),
        "a keep-alive after {waited:?}, before the stream was idle"
    );
}

// ---- deadlines ------------------------------------------------------------------

#[test]
fn shutdown_timeout_ends_the_server_when_a_peer_never_answers_the_close() {
    let mut server = Duplex::start(&["--shutdown-timeout", "1s"]);
    let mut ws = RawWs::connect(server.http, "/echo");
    ws.send_frame(true, 0x1, b"ready");
    assert_eq!(ws.read_frame().unwrap().payload, b"ready");

    let pid = server.pid().to_string();
    let signalled = Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    // The peer is told first: close 1001, going away (RFC 6455 §7.4.1).
    let (code, _) = ws.expect_close();
    assert_eq!(code, 1001);
    // It never answers. The server gives up on it after the deadline, and
    // exits.
    ws.expect_eof();
    let status = server.wait_exit();
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "{}", server.log());
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "exited {took:?} after SIGTERM with a 1 s shutdown timeout"
    );
}

#[test]
fn close_timeout_cuts_a_peer_that_never_answers_our_close() {
    let server = Duplex::start(&[
        "--ping-interval",
        "200ms",
        "--pong-timeout",
        "200ms",
        "--close-timeout",
        "700ms",
    ]);
    let mut ws = RawWs::connect(server.http, "/echo");
    // The server pings, gets no pong, and starts the close handshake.
    assert_eq!(ws.read_frame().expect("a ping").opcode, 0x9);
    let (code, reason) = ws.expect_close();
    let closed = Instant::now();
    assert_eq!((code, reason.as_str()), (1001, "no answer to ping"));
    // We never answer the close: after --close-timeout the server ends
    // the TCP connection anyway, not before and not much later.
    ws.expect_eof();
    let waited = closed.elapsed();
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(3),
        "TCP closed {waited:?} after the close frame, with a 700 ms close timeout"
    );
}

// ---- a head too large is refused before it ends -------------------------------------

#[test]
fn a_head_past_the_limit_gets_431_before_it_ends() {
    let server = Duplex::start(&[]);
    let mut stream = web_connect(server.http);
    // 9 KiB of head against the 8 KiB limit, and no blank line: the head
    // has not ended, and the answer must not wait for it to.
    let mut head = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Filler: ".to_vec();
    head.resize(9 * 1024, b'a');
    stream.write_all(&head).unwrap();
    let mut answer = Vec::new();
    // Bounded by the stream's read timeout; the server closes after its
    // answer.
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer:?}");
    assert_eq!(
        header_value(&answer, "Connection").as_deref(),
        Some("close"),
        "{answer}"
    );
}

// ---- history that says what it lost ------------------------------------------------

#[test]
fn a_poller_that_falls_behind_the_history_is_told_how_much_it_missed() {
    let server = Duplex::start(&["--history", "3"]);
    let poll = |query: &str| -> Json {
        let request = format!("GET /poll?{query} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let (status, head, body) = http_request(server.http, request.as_bytes());
        assert_eq!(status, 200, "{head}");
        let body = String::from_utf8(body).unwrap();
        Json::parse(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
    };
    let first = poll("room=lobby");
    let token = first.str(&["token"]).to_string();
    let since = first.count(&["next"]);
    assert_eq!(first.count(&["missed"]), 0);

    // Eight lines while the poller is away; the room keeps three.
    let (mut t, name) = Telnet::join(server.tcp);
    for i in 0..8 {
        t.say(&format!("line {i}"));
        assert_eq!(t.line(), format!("[lobby] {name}: line {i}"));
    }
    let back = poll(&format!("token={token}&since={since}"));
    let texts: Vec<&str> = match back.at(&["messages"]) {
        Json::Array(messages) => messages
            .iter()
            .map(|m| match m.at(&["text"]) {
                Json::String(s) => s.as_str(),
                other => panic!("text {other:?}"),
            })
            .collect(),
        other => panic!("messages {other:?}"),
    };
    assert_eq!(
        texts,
        [5, 6, 7].map(|i| format!("[lobby] {name}: line {i}")),
        "the last three lines"
    );
    // Since `since`: the telnet user's arrival and lines 0-4 are gone.
    assert_eq!(back.count(&["missed"]), 6, "{back:?}");
}

// ---- a member who stops reading cannot slow the room -------------------------------

#[test]
fn a_chat_member_who_stops_reading_is_dropped_and_the_room_keeps_its_pace() {
    let server = Duplex::start_with_env(
        &["--max-output", "64KiB", "--slow-reader-timeout", "1s"],
        &[("RUST_LOG", "duplex=info")],
    );
    // The slow member: a WebSocket chat member that reads its greeting
    // and then nothing more.
    let mut slow = RawWs::connect(server.http, "/chat");
    let greeting = String::from_utf8(slow.read_frame().expect("a greeting").payload).unwrap();
    let slow_name = greeting
        .split("your name is ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("{greeting}"))
        .to_string();
    let (mut talker, talker_name) = Telnet::join(server.tcp);
    let (mut listener, _) = Telnet::join(server.tcp);
    talker.until(|l| l.ends_with(" joined lobby") && !l.contains(&talker_name));

    // Lines of 4000 bytes, each waited for by the talker (who hears its own
    // line) and the listener before the next. The slow member's kernel
    // buffers fill, then its queue passes 64 KiB, and a second later it is
    // dropped. Every line must still reach the listener promptly.
    let filler = "x".repeat(3990);
    let mut slowest = Duration::ZERO;
    let mut dropped_after = None;
    let started = Instant::now();
    for i in 0.. {
        assert!(
            started.elapsed() < 3 * WAIT,
            "the slow member was never dropped ({i} lines sent); log:\n{}",
            server.log()
        );
        let text = format!("{i:06} {filler}");
        let sent = Instant::now();
        talker.say(&text);
        let expected = format!("[lobby] {talker_name}: {text}");
        let departure = format!("* {slow_name} disconnected");
        // Both hear the line; the slow member's departure may come first.
        for member in [&mut talker, &mut listener] {
            loop {
                let line = member.line();
                if line == expected {
                    break;
                }
                assert!(line == departure, "line {i}: got {:.80}", line);
                dropped_after.get_or_insert(i);
            }
        }
        slowest = slowest.max(sent.elapsed());
        // A few more lines after the drop show the room goes on.
        if dropped_after.is_some_and(|d| i >= d + 10) {
            break;
        }
    }
    assert!(
        slowest < Duration::from_secs(1),
        "a line took {slowest:?} to cross the room while a member was not reading"
    );

    // The slow member gets its goodbye after whatever the kernel held.
    let (code, reason) = slow.expect_close();
    assert_eq!((code, reason.as_str()), (1008, "too slow: output buffer full"));
    // And the server says why in its log.
    server.wait_log("slow reader: over 65536 bytes of output for 1s");
}
