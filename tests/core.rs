//! The core behaviour, over real sockets: the telnet door, the web door's
//! HTTP answers and WebSocket endpoints, the chat across both doors, and a
//! graceful shutdown.

mod common;

use common::{
    header_value, http_request, read_response, upgrade_request, web_connect, ws_connect, ws_until_text,
    Duplex, Json, RawWs, Telnet, WAIT,
};
use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

// ---- the telnet door ------------------------------------------------------

#[test]
fn telnet_greeting_names_both_ends_the_guest_and_the_room() {
    let server = Duplex::start(&[]);
    let mut t = Telnet::connect(server.tcp);
    let greeting = t.line();
    let local = t.stream.local_addr().unwrap();
    assert!(greeting.contains(&format!("server {}", server.tcp)), "{greeting}");
    assert!(greeting.contains(&format!("you are {local}")), "{greeting}");
    assert!(greeting.contains("your name is guest-"), "{greeting}");
    assert!(greeting.contains("room lobby"), "{greeting}");
    assert!(greeting.contains("/help"), "{greeting}");
}

#[test]
fn telnet_line_ends_lf_crlf_cr_crnul_and_split_across_writes() {
    let server = Duplex::start(&[]);
    let (mut t, _) = Telnet::join(server.tcp);
    t.send(b"/echo one\r\n/echo two\n/echo three\r/echo four\r\0/echo five\n");
    for expected in ["one", "two", "three", "four", "five"] {
        assert_eq!(t.line(), expected);
    }
    // A CR LF split over two writes is still one line end: the LF is not
    // read as an empty line, and the next line is intact.
    t.send(b"/echo six\r");
    assert_eq!(t.line(), "six");
    t.send(b"\n/echo seven\r");
    assert_eq!(t.line(), "seven");
    t.send(b"\0/echo eight\n");
    assert_eq!(t.line(), "eight");
}

#[test]
fn telnet_negotiation_is_answered_never_shown() {
    let server = Duplex::start(&[]);
    let (mut t, name) = Telnet::join(server.tcp);
    // IAC WILL ECHO, IAC DO SUPPRESS-GO-AHEAD and a window-size
    // sub-negotiation (IAC SB NAWS 0 80 0 24 IAC SE), RFC 854 and RFC 1073:
    // refused (DONT ECHO, WONT SUPPRESS-GO-AHEAD) ahead of the line, and
    // never part of it.
    t.send(b"/echo a\xFF\xFB\x01b\xFF\xFD\x03c\xFF\xFA\x1F\x00\x50\x00\x18\xFF\xF0d\r\n");
    assert_eq!(t.line_bytes().unwrap(), b"\xFF\xFE\x01\xFF\xFC\x03abcd");
    // Ctrl-C (IAC IP, IAC DO TIMING-MARK) is answered with the timing
    // mark (RFC 860) and leaves the line around it alone.
    t.send(b"/echo a\xFF\xF4\xFF\xFD\x06b\r\n");
    assert_eq!(t.line_bytes().unwrap(), b"\xFF\xFB\x06ab");
    // The same, as a chat line to the room.
    t.send(b"\xFF\xF4\xFF\xFD\x06hello\xFF\xFB\x01\r\n");
    let mut expected = b"\xFF\xFB\x06\xFF\xFE\x01".to_vec();
    expected.extend_from_slice(format!("[lobby] {name}: hello").as_bytes());
    assert_eq!(t.line_bytes().unwrap(), expected);
    // Ctrl-C alone on a line produces nothing visible; the next line does.
    t.send(b"\xFF\xF4\xFF\xFD\x06\r\n/echo after\r\n");
    assert_eq!(t.line_bytes().unwrap(), b"\xFF\xFB\x06after");
}

#[test]
fn telnet_invalid_utf8_becomes_replacement_characters() {
    let server = Duplex::start(&[]);
    let (mut t, name) = Telnet::join(server.tcp);
    t.send(b"/echo a\x80b\xC3(c\r\n");
    assert_eq!(t.line_bytes().unwrap(), "a\u{FFFD}b\u{FFFD}(c".as_bytes());
    t.send(b"caf\xE9\r\n");
    assert_eq!(
        t.line_bytes().unwrap(),
        format!("[lobby] {name}: caf\u{FFFD}").as_bytes()
    );
}

#[test]
fn telnet_over_long_line_is_refused_and_the_connection_stays_usable() {
    let server = Duplex::start(&[]);
    let (mut t, _) = Telnet::join(server.tcp);
    let mut long = vec![b'x'; 5000];
    long.extend_from_slice(b"\r\n/echo still here\r\n");
    t.send(&long);
    assert_eq!(t.line(), "! line too long (limit 4096 bytes); it was skipped");
    assert_eq!(t.line(), "still here");
}

#[test]
fn telnet_max_line_option() {
    let server = Duplex::start(&["--max-line", "16"]);
    let (mut t, _) = Telnet::join(server.tcp);
    t.say("/echo 0123456789abcdef");
    assert_eq!(t.line(), "! line too long (limit 16 bytes); it was skipped");
    t.say("/echo short");
    assert_eq!(t.line(), "short");
}

#[test]
fn telnet_help_echo_unknown_and_quit() {
    let server = Duplex::start(&[]);
    let (mut t, name) = Telnet::join(server.tcp);
    t.say("/help");
    assert_eq!(t.line(), "* commands:");
    let mut help = Vec::new();
    loop {
        let line = t.line();
        let last = line == "* anything else is a message to your room";
        help.push(line);
        if last {
            break;
        }
    }
    for command in [
        "/nick", "/join", "/rooms", "/who", "/echo", "/time", "/stats", "/quit",
    ] {
        assert!(
            help.iter().any(|l| l.contains(command)),
            "/help mentions {command}: {help:?}"
        );
    }
    t.say("/echo  spaced words  ");
    assert_eq!(t.line(), "spaced words");
    t.say("/frobnicate now");
    assert_eq!(t.line(), "! unknown command /frobnicate; try /help");
    t.say("/quit");
    assert_eq!(t.line(), format!("* bye, {name}"));
    assert_eq!(t.until_closed(), Vec::<String>::new());
}

// ---- WebSocket endpoints ------------------------------------------------------

#[test]
fn websocket_echo_text_binary_and_one_mebibyte() {
    let server = Duplex::start(&[]);
    let (mut ws, response) = ws_connect(server.http, "/echo", &[]);
    assert_eq!(response.status(), 101);
    ws.send(Message::text("héllo")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("héllo"));
    ws.send(Message::binary(vec![0u8, 1, 2, 255])).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(vec![0u8, 1, 2, 255]));
    ws.send(Message::text("")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text(""));
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 + i / 251) as u8).collect();
    ws.send(Message::binary(big.clone())).unwrap();
    match ws.read().unwrap() {
        Message::Binary(data) => assert!(data == big, "1 MiB echoed exactly"),
        other => panic!("expected binary, got {other:?}"),
    }
}

#[test]
fn websocket_fragmented_message_with_a_ping_in_between() {
    let server = Duplex::start(&[]);
    let mut ws = RawWs::connect(server.http, "/echo");
    // RFC 6455 §5.4: control frames may be injected between fragments.
    ws.send_frame(false, 0x1, "Hél".as_bytes());
    ws.send_frame(false, 0x0, b"");
    ws.send_frame(true, 0x9, b"mid");
    ws.send_frame(false, 0x0, "lo, wo".as_bytes());
    ws.send_frame(true, 0x0, b"rld");
    let pong = ws.read_frame().unwrap();
    assert_eq!((pong.opcode, pong.payload.as_slice()), (0xA, &b"mid"[..]));
    let echo = ws.read_frame().unwrap();
    assert!(echo.fin && !echo.masked && echo.rsv == 0, "{echo:?}");
    assert_eq!(echo.opcode, 0x1);
    assert_eq!(
        String::from_utf8(echo.payload).unwrap(),
        "Hello, world".replace('e', "é")
    );

    // A binary message in three fragments comes back as one binary message.
    ws.send_frame(false, 0x2, &[1, 2]);
    ws.send_frame(false, 0x0, &[3]);
    ws.send_frame(true, 0x0, &[4, 5]);
    let echo = ws.read_frame().unwrap();
    assert_eq!((echo.fin, echo.opcode), (true, 0x2));
    assert_eq!(echo.payload, [1, 2, 3, 4, 5]);
}

#[test]
fn websocket_ping_gets_pong_with_the_same_payload() {
    let server = Duplex::start(&[]);
    let (mut ws, _) = ws_connect(server.http, "/echo", &[]);
    ws.send(Message::Ping(b"are you there?".to_vec())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Pong(b"are you there?".to_vec()));
    ws.send(Message::Ping(Vec::new())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Pong(Vec::new()));
    let max = vec![0xA5u8; 125];
    ws.send(Message::Ping(max.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Pong(max));
}

#[test]
fn websocket_close_handshake_echoes_the_code_then_closes_tcp() {
    let server = Duplex::start(&[]);
    let (mut ws, _) = ws_connect(server.http, "/echo", &[]);
    ws.close(Some(CloseFrame {
        code: CloseCode::from(4000),
        reason: "done here".into(),
    }))
    .unwrap();
    match ws.read().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 4000),
        other => panic!("expected the server's close, got {other:?}"),
    }
    // RFC 6455 §7.1.1: after the close handshake the server closes TCP.
    let mut rest = Vec::new();
    let n = ws.get_mut().read_to_end(&mut rest).expect("read to EOF");
    assert_eq!(n, 0, "nothing after the close frame: {rest:?}");

    // The same on the wire, byte for byte.
    let mut raw = RawWs::connect(server.http, "/echo");
    let mut payload = 4000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye now");
    raw.send_frame(true, 0x8, &payload);
    let (code, _) = raw.expect_close_then_eof();
    assert_eq!(code, 4000);
}

#[test]
fn subprotocols_selected_per_endpoint_or_omitted() {
    let server = Duplex::start(&[]);
    for (path, offer, chosen) in [
        ("/echo", vec!["echo-protocol"], Some("echo-protocol")),
        ("/", vec!["echo-protocol"], Some("echo-protocol")),
        ("/echo", vec!["x-unknown", "echo-protocol"], Some("echo-protocol")),
        ("/chat", vec!["superchat", "chat"], Some("chat")),
        ("/chat", vec!["echo-protocol"], None),
        ("/echo", vec!["chat"], None),
        ("/clock", vec!["chat"], None),
        ("/echo", vec![], None),
    ] {
        let extra = if offer.is_empty() {
            String::new()
        } else {
            format!("Sec-WebSocket-Protocol: {}\r\n", offer.join(", "))
        };
        let (_ws, head) = RawWs::connect_head(server.http, &upgrade_request(server.http, path, &extra));
        assert!(head.starts_with("HTTP/1.1 101 "), "{path} {offer:?}: {head}");
        assert_eq!(
            header_value(&head, "Sec-WebSocket-Protocol").as_deref(),
            chosen,
            "{path} offering {offer:?}: {head}"
        );
    }
    // And through an independent client, which checks the answer itself.
    let (mut ws, response) = ws_connect(server.http, "/", &["echo-protocol"]);
    assert_eq!(
        response.headers().get("Sec-WebSocket-Protocol").unwrap(),
        "echo-protocol"
    );
    ws.send(Message::text("node style")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("node style"));
}

fn is_timestamp(text: &str) -> bool {
    // YYYY-MM-DD HH:MM:SS UTC
    let b = text.as_bytes();
    text.len() == 23
        && text.ends_with(" UTC")
        && b.iter().enumerate().take(19).all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

/// Seconds since midnight of a `YYYY-MM-DD HH:MM:SS UTC` stamp.
fn seconds_of_day(stamp: &str) -> u32 {
    let time = &stamp[11..19];
    time.split(':')
        .fold(0, |acc, part| acc * 60 + part.parse::<u32>().unwrap())
}

/// Asserts that pushes meant to come "every second" did: each gap between
/// arrivals is about a second (0.5 to 2 s: a loaded machine may be late,
/// but a clock that pushes at once, or twice a second, or every 3 s,
/// fails), and each stamp is one or two seconds after the one before.
fn assert_once_a_second(arrivals: &[(Instant, String)]) {
    for pair in arrivals.windows(2) {
        let ((t0, a), (t1, b)) = (&pair[0], &pair[1]);
        let gap = t1.duration_since(*t0);
        assert!(
            gap >= Duration::from_millis(500) && gap <= Duration::from_secs(2),
            "{gap:?} between {a:?} and {b:?}"
        );
        // Midnight UTC wraps the count; a day has 86,400 seconds.
        let step = (seconds_of_day(b) + 86_400 - seconds_of_day(a)) % 86_400;
        assert!((1..=2).contains(&step), "{a:?} then {b:?}");
    }
}

#[test]
fn clock_pushes_timestamps_once_a_second() {
    let server = Duplex::start(&[]);
    let (mut ws, _) = ws_connect(server.http, "/clock", &[]);
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match ws.read().unwrap() {
            Message::Text(text) => {
                assert!(is_timestamp(&text), "{text:?}");
                seen.push((Instant::now(), text.to_string()));
            }
            other => panic!("expected a timestamp, got {other:?}"),
        }
    }
    assert_once_a_second(&seen);
}

// ---- HTTP refusals and answers ------------------------------------------------

fn refused(head: &str, status: u16) {
    assert!(
        head.starts_with(&format!("HTTP/1.1 {status} ")),
        "expected {status}: {head}"
    );
    assert_eq!(
        header_value(head, "Content-Type").as_deref(),
        Some("text/plain; charset=utf-8"),
        "{head}"
    );
}

#[test]
fn refusal_400_bad_key_missing_host_and_http10_upgrade() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    for key in ["c2hvcnQ=", "not base64!", "dGhlIHNhbXBsZSBub25jZQ"] {
        let request = String::from_utf8(upgrade_request(addr, "/echo", ""))
            .unwrap()
            .replace(common::KEY, key);
        let (status, head, body) = http_request(addr, request.as_bytes());
        assert_eq!(status, 400, "key {key:?}: {head}");
        refused(&head, 400);
        assert_eq!(header_value(&head, "Connection").as_deref(), Some("close"));
        assert!(String::from_utf8_lossy(&body).contains("Sec-WebSocket-Key"));
    }
    let without_key = String::from_utf8(upgrade_request(addr, "/echo", ""))
        .unwrap()
        .replace(&format!("Sec-WebSocket-Key: {}\r\n", common::KEY), "");
    let (status, _, _) = http_request(addr, without_key.as_bytes());
    assert_eq!(status, 400);

    let (status, head, body) = http_request(addr, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(status, 400, "{head}");
    refused(&head, 400);
    assert!(String::from_utf8_lossy(&body).contains("Host"));

    let http10 = String::from_utf8(upgrade_request(addr, "/echo", ""))
        .unwrap()
        .replace("HTTP/1.1", "HTTP/1.0");
    let (status, head, body) = http_request(addr, http10.as_bytes());
    assert_eq!(status, 400, "{head}");
    refused(&head, 400);
    assert!(String::from_utf8_lossy(&body).contains("HTTP/1.1"));
}

#[test]
fn refusal_403_cross_site_origin_and_dns_rebinding() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    let (status, head, body) = http_request(
        addr,
        &upgrade_request(addr, "/chat", "Origin: https://evil.example\r\n"),
    );
    assert_eq!(status, 403, "{head}");
    refused(&head, 403);
    assert!(String::from_utf8_lossy(&body).contains("https://evil.example"));

    // A page opened from disk, and a loopback page on any port, are
    // welcome.
    for origin in [
        "null",
        "http://localhost:3000",
        "http://localhost:9999",
        "http://127.0.0.1:9",
        "http://127.8.9.10",
        "http://[::1]:5000",
    ] {
        let (_, head) = RawWs::connect_head(
            addr,
            &upgrade_request(addr, "/chat", &format!("Origin: {origin}\r\n")),
        );
        assert!(head.starts_with("HTTP/1.1 101 "), "{origin}: {head}");
    }
    // Names that only look like loopback are not.
    for origin in [
        "http://localhost.evil.example",
        "http://127.0.0.1.evil.example",
        "http://evil.example:8080",
        "http://128.0.0.1",
    ] {
        let (status, head, body) = http_request(
            addr,
            &upgrade_request(addr, "/chat", &format!("Origin: {origin}\r\n")),
        );
        assert_eq!(status, 403, "{origin}: {head}");
        assert!(
            String::from_utf8_lossy(&body).contains(origin),
            "{origin}: {body:?}"
        );
    }

    // DNS rebinding: a remote name pointing at 127.0.0.1.
    let (status, head, _) = http_request(addr, b"GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n");
    assert_eq!(status, 403, "{head}");
    refused(&head, 403);
    let rebinding = String::from_utf8(upgrade_request(addr, "/echo", ""))
        .unwrap()
        .replace(&format!("Host: {addr}"), "Host: evil.example:8080");
    let (status, _, _) = http_request(addr, rebinding.as_bytes());
    assert_eq!(status, 403);
}

#[test]
fn same_origin_is_the_host_asked_for_and_nothing_like_it() {
    // A Host other than loopback is only served when allowed (the
    // DNS-rebinding guard); then a page from that very host may connect.
    let server = Duplex::start(&["--allow-host", "chat.example"]);
    let addr = server.http;
    let ask = |origin: &str| {
        let request = format!(
            "GET /chat HTTP/1.1\r\nHost: chat.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n",
            common::KEY
        );
        let (_, head) = RawWs::connect_head(addr, request.as_bytes());
        head
    };
    let head = ask("https://chat.example");
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    for origin in [
        "https://chat.example.evil",
        "https://evil.chat.example",
        "https://chat.example:8443",
        "https://chat.exampl",
    ] {
        let head = ask(origin);
        assert!(head.starts_with("HTTP/1.1 403 "), "{origin}: {head}");
    }
}

#[test]
fn refusal_404_405_426() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    let (status, head, _) = http_request(addr, b"GET /nowhere HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(status, 404, "{head}");
    refused(&head, 404);
    let (status, head, _) = http_request(addr, &upgrade_request(addr, "/nowhere", ""));
    assert_eq!(status, 404, "{head}");

    let (status, head, _) = http_request(
        addr,
        b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(status, 405, "{head}");
    refused(&head, 405);
    let allow = header_value(&head, "Allow").expect("405 carries Allow");
    assert!(allow.contains("GET"), "{allow}");

    let (status, head, _) = http_request(addr, b"GET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(status, 426, "{head}");
    refused(&head, 426);
    assert_eq!(header_value(&head, "Upgrade").as_deref(), Some("websocket"));
    assert_eq!(
        header_value(&head, "Sec-WebSocket-Version").as_deref(),
        Some("13")
    );

    let version8 = String::from_utf8(upgrade_request(addr, "/echo", ""))
        .unwrap()
        .replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8");
    let (status, head, _) = http_request(addr, version8.as_bytes());
    assert_eq!(status, 426, "{head}");
    refused(&head, 426);
    assert_eq!(header_value(&head, "Upgrade").as_deref(), Some("websocket"));
    assert_eq!(
        header_value(&head, "Sec-WebSocket-Version").as_deref(),
        Some("13")
    );
}

#[test]
fn refusal_431_large_head_and_too_many_headers() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    let big = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let (status, head, _) = http_request(addr, big.as_bytes());
    assert_eq!(status, 431, "{head}");
    refused(&head, 431);

    let mut many = String::from("GET / HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..64 {
        many.push_str(&format!("X-{i}: y\r\n"));
    }
    many.push_str("\r\n");
    let (status, head, _) = http_request(addr, many.as_bytes());
    assert_eq!(status, 431, "65 headers: {head}");
    refused(&head, 431);

    // 64 headers exactly is within the limit.
    let mut sixty_four = String::from("GET /healthz HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..63 {
        sixty_four.push_str(&format!("X-{i}: y\r\n"));
    }
    sixty_four.push_str("\r\n");
    let (status, head, _) = http_request(addr, sixty_four.as_bytes());
    assert_eq!(status, 200, "64 headers: {head}");
}

#[test]
fn keep_alive_head_healthz_and_stats() {
    let server = Duplex::start(&[]);
    let mut stream = web_connect(server.http);
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let (status, head, body) = read_response(&mut stream);
    assert_eq!(status, 200, "{head}");
    assert_eq!(body, b"ok\n");
    assert_eq!(header_value(&head, "Connection"), None, "{head}");

    // The same connection serves a second request: /stats as JSON.
    stream
        .write_all(b"GET /stats HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let (status, head, body) = read_response(&mut stream);
    assert_eq!(status, 200, "{head}");
    assert_eq!(
        header_value(&head, "Content-Type").as_deref(),
        Some("application/json")
    );
    let json = String::from_utf8(body).unwrap();
    let stats = Json::parse(&json).unwrap_or_else(|e| panic!("/stats is not JSON ({e}): {json}"));
    // Only this connection is open, and it is an HTTP one.
    assert_eq!(stats.count(&["connections", "total"]), 1, "{json}");
    assert_eq!(stats.count(&["connections", "http"]), 1, "{json}");
    assert_eq!(stats.count(&["connections", "telnet"]), 0, "{json}");
    for kind in ["echo", "chat", "clock"] {
        assert_eq!(stats.count(&["connections", "websocket", kind]), 0, "{json}");
    }

    // HEAD: the length of the page, but no body. The next response on the
    // connection follows the head directly, which proves no body was sent.
    stream
        .write_all(b"HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\nGET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    stream.read_to_end(&mut all).unwrap();
    let all = String::from_utf8_lossy(&all);
    let (head, rest) = all.split_once("\r\n\r\n").expect("a HEAD response");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let length: usize = header_value(head, "Content-Length").unwrap().parse().unwrap();
    assert!(length > 100, "the page's length: {head}");
    assert!(rest.starts_with("HTTP/1.1 200 "), "no body after HEAD: {rest:?}");
    assert!(rest.ends_with("\r\n\r\nok\n"), "{rest:?}");
}

#[test]
fn stats_count_connections_by_kind_messages_and_bytes() {
    let server = Duplex::start(&[]);
    let (mut t, _) = Telnet::join(server.tcp);
    t.say("/echo one");
    assert_eq!(t.line(), "one");
    let (mut echo, _) = ws_connect(server.http, "/echo", &[]);
    echo.send(Message::text("two")).unwrap();
    assert_eq!(echo.read().unwrap(), Message::text("two"));
    let (mut chat, _) = ws_connect(server.http, "/chat", &[]);
    ws_until_text(&mut chat, |l| l.contains("your name is "));
    t.until(|l| l.ends_with(" joined lobby"));

    let (status, head, body) = http_request(
        server.http,
        b"GET /stats HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200, "{head}");
    let json = String::from_utf8(body).unwrap();
    let stats = Json::parse(&json).unwrap_or_else(|e| panic!("/stats is not JSON ({e}): {json}"));
    // DESIGN §1.2: connections by kind, messages and bytes in and out,
    // uptime.
    let kinds = [
        (&["connections", "telnet"][..], 1),
        (&["connections", "http"][..], 1),
        (&["connections", "websocket", "echo"][..], 1),
        (&["connections", "websocket", "chat"][..], 1),
        (&["connections", "websocket", "clock"][..], 0),
    ];
    for (path, expected) in kinds {
        assert_eq!(stats.count(path), expected, "{path:?} in {json}");
    }
    assert_eq!(stats.count(&["connections", "total"]), 4, "{json}");
    assert_eq!(stats.count(&["hub", "members"]), 2, "telnet and chat: {json}");
    // In: the telnet line and the echo frame. Out: the telnet greeting,
    // the telnet echo, the WebSocket echo, the chat greeting, and the
    // chat member's arrival told to the telnet user.
    assert_eq!(stats.count(&["messages", "in"]), 2, "{json}");
    assert_eq!(stats.count(&["messages", "out"]), 5, "{json}");
    assert!(stats.count(&["bytes", "in"]) > 0, "{json}");
    assert!(stats.count(&["bytes", "out"]) > 0, "{json}");
    assert!(stats.count(&["uptime_seconds"]) < 60, "{json}");
    // Without --redis there is no relay to tell of.
    assert!(json.contains("\"relay\":null"), "{json}");
}

// ---- accepted handshake variants ------------------------------------------------

#[test]
fn handshake_header_variants_are_accepted() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    let request = format!(
        "GET /echo HTTP/1.1\r\nHost: {addr}\r\nupgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\
Sec-WebSocket-Key: {}\r\nsec-websocket-version: 13\r\n\r\n",
        common::KEY
    );
    let mut ws = RawWs::connect_with(addr, request.as_bytes());
    ws.send_frame(true, 0x1, b"variant");
    let echo = ws.read_frame().unwrap();
    assert_eq!((echo.opcode, echo.payload.as_slice()), (0x1, &b"variant"[..]));

    for upgrade in ["WEBSOCKET", "websocket", "WebSocket"] {
        let request = String::from_utf8(upgrade_request(addr, "/echo", ""))
            .unwrap()
            .replace("Upgrade: websocket", &format!("Upgrade: {upgrade}"));
        RawWs::connect_with(addr, request.as_bytes());
    }
}

#[test]
fn handshake_and_first_frame_in_one_write() {
    let server = Duplex::start(&[]);
    let mut bytes = upgrade_request(server.http, "/echo", "");
    bytes.extend(common::frame(true, 0x1, b"eager", Some([1, 2, 3, 4])));
    let (mut ws, head) = RawWs::connect_head(server.http, &bytes);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let echo = ws.read_frame().unwrap();
    assert_eq!((echo.opcode, echo.payload.as_slice()), (0x1, &b"eager"[..]));
}

#[test]
fn a_frame_one_byte_per_write() {
    let server = Duplex::start(&[]);
    let mut ws = RawWs::connect(server.http, "/echo");
    let payload: Vec<u8> = (0..300u32).map(|i| b'a' + (i % 26) as u8).collect();
    let frame = common::frame(true, 0x1, &payload, Some([9, 8, 7, 6]));
    for byte in &frame {
        ws.stream.write_all(std::slice::from_ref(byte)).unwrap();
        ws.stream.flush().unwrap();
    }
    let echo = ws.read_frame().unwrap();
    assert_eq!(echo.opcode, 0x1);
    assert_eq!(echo.payload, payload);
}

// ---- the chat across doors ------------------------------------------------------

/// Reads WebSocket chat lines until one matches exactly.
fn ws_expect(ws: &mut tungstenite::WebSocket<std::net::TcpStream>, line: &str) {
    ws_until_text(ws, |t| t == line);
}

fn ws_name(ws: &mut tungstenite::WebSocket<std::net::TcpStream>) -> String {
    let greeting = ws_until_text(ws, |t| t.contains("your name is "));
    assert!(greeting.contains("room lobby"), "{greeting}");
    greeting
        .split("your name is ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap()
        .to_string()
}

#[test]
fn chat_across_telnet_and_websocket() {
    let server = Duplex::start(&[]);
    let (mut a, a_name) = Telnet::join(server.tcp);
    let (mut b, b_name) = Telnet::join(server.tcp);
    assert_eq!(a.line(), format!("* {b_name} joined lobby"));
    let (mut w, response) = ws_connect(server.http, "/chat", &["chat"]);
    assert_eq!(response.headers().get("Sec-WebSocket-Protocol").unwrap(), "chat");
    let w_name = ws_name(&mut w);
    for t in [&mut a, &mut b] {
        assert_eq!(t.line(), format!("* {w_name} joined lobby"));
    }

    // A telnet line reaches the other telnet user, the browser, and the
    // sender itself.
    a.say("hello from telnet");
    let line = format!("[lobby] {a_name}: hello from telnet");
    assert_eq!(a.line(), line);
    assert_eq!(b.line(), line);
    ws_expect(&mut w, &line);

    // A WebSocket text frame is one chat line.
    w.send(Message::text("hello from the page")).unwrap();
    let line = format!("[lobby] {w_name}: hello from the page");
    assert_eq!(a.line(), line);
    assert_eq!(b.line(), line);
    ws_expect(&mut w, &line);

    // Renames are announced to the room.
    b.say("/nick bob");
    let line = format!("* {b_name} is now known as bob");
    assert_eq!(a.line(), line);
    assert_eq!(b.line(), line);
    ws_expect(&mut w, &line);

    // A taken name is refused, whatever its letter case.
    w.send(Message::text("/nick BOB")).unwrap();
    ws_expect(&mut w, "! name taken: BOB");
    a.say("/nick bob");
    assert_eq!(a.line(), "! name taken: bob");

    // /join moves a member: the old room hears it leave.
    w.send(Message::text("/join dev")).unwrap();
    ws_expect(&mut w, "* you joined dev");
    let line = format!("* {w_name} left lobby");
    assert_eq!(a.line(), line);
    assert_eq!(b.line(), line);
    b.say("/join dev");
    assert_eq!(a.line(), "* bob left lobby");
    ws_expect(&mut w, "* bob joined dev");
    assert_eq!(b.line(), "* you joined dev");
    // Rooms are separate: the lobby does not hear dev.
    b.say("only dev hears this");
    let line = "[dev] bob: only dev hears this".to_string();
    assert_eq!(b.line(), line);
    ws_expect(&mut w, &line);
    a.say("/echo marker");
    assert_eq!(a.line(), "marker", "the lobby heard nothing from dev");

    // /who and /rooms.
    b.say("/who");
    assert_eq!(b.line(), format!("* members of dev: {w_name}, bob"));
    b.say("/rooms");
    assert_eq!(b.line(), "* rooms: dev (2), lobby (1)");
}

#[test]
fn disconnect_announced_exactly_once_clean_and_abrupt() {
    let server = Duplex::start(&[]);
    let (mut watcher, _) = Telnet::join(server.tcp);
    let (mut w, _) = ws_connect(server.http, "/chat", &[]);
    let w_name = ws_name(&mut w);
    watcher.until(|l| l == format!("* {w_name} joined lobby"));

    // A clean /quit from telnet.
    let (mut quitter, q_name) = Telnet::join(server.tcp);
    watcher.until(|l| l == format!("* {q_name} joined lobby"));
    quitter.say("/quit");
    assert_eq!(quitter.line(), format!("* bye, {q_name}"));
    assert!(quitter.until_closed().is_empty());
    drop(quitter);
    assert_eq!(watcher.line(), format!("* {q_name} disconnected"));
    ws_expect(&mut w, &format!("* {q_name} disconnected"));

    // An abrupt drop of a telnet connection (no /quit).
    let (dropper, d_name) = Telnet::join(server.tcp);
    watcher.until(|l| l == format!("* {d_name} joined lobby"));
    drop(dropper);
    assert_eq!(watcher.line(), format!("* {d_name} disconnected"));

    // A WebSocket member that closes cleanly, and one that just vanishes.
    let (mut w2, _) = ws_connect(server.http, "/chat", &[]);
    let w2_name = ws_name(&mut w2);
    watcher.until(|l| l == format!("* {w2_name} joined lobby"));
    w2.close(None).unwrap();
    while w2.read().is_ok() {}
    assert_eq!(watcher.line(), format!("* {w2_name} disconnected"));
    let (mut w3, _) = ws_connect(server.http, "/chat", &[]);
    let w3_name = ws_name(&mut w3);
    watcher.until(|l| l == format!("* {w3_name} joined lobby"));
    drop(w3);
    assert_eq!(watcher.line(), format!("* {w3_name} disconnected"));

    // Nothing more: the next line the watcher sees is its own marker, and
    // the WebSocket member saw each departure once too.
    watcher.say("/echo marker");
    assert_eq!(watcher.line(), "marker");
    w.send(Message::text("/echo ws marker")).unwrap();
    let mut departures = Vec::new();
    loop {
        match w.read().unwrap() {
            Message::Text(t) if t == "ws marker" => break,
            Message::Text(t) if t.ends_with(" disconnected") => departures.push(t),
            _ => {}
        }
    }
    assert_eq!(
        departures,
        [
            format!("* {d_name} disconnected"),
            format!("* {w2_name} disconnected"),
            format!("* {w3_name} disconnected"),
        ]
    );
}

#[test]
fn time_ticks_and_stops_when_toggled_off() {
    let server = Duplex::start(&[]);
    let (mut t, _) = Telnet::join(server.tcp);
    t.say("/time");
    assert_eq!(t.line(), "* time on: one tick a second; /time again to stop");
    let mut ticks = Vec::new();
    for _ in 0..3 {
        let tick = t.line();
        let stamp = tick.strip_prefix("* time ").unwrap_or_else(|| panic!("{tick:?}"));
        assert!(is_timestamp(stamp), "{tick:?}");
        ticks.push((Instant::now(), stamp.to_string()));
    }
    assert_once_a_second(&ticks);
    t.say("/time");
    // Ticks already on their way may arrive before the answer.
    t.until(|l| l == "* time off");
    // Absence can only be shown by waiting: a tick is due every second, so
    // 1.5 s of silence shows the clock stopped.
    t.stream
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut buf = [0u8; 256];
    match t.stream.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        Ok(n) => panic!("the clock kept ticking: {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) => panic!("read: {e}"),
    }
    assert!(
        t.buffered().is_empty(),
        "{:?}",
        String::from_utf8_lossy(t.buffered())
    );
    t.stream.set_read_timeout(Some(WAIT)).unwrap();
    t.say("/echo alive");
    assert_eq!(t.line(), "alive");
}

#[test]
fn two_hundred_messages_arrive_in_order_everywhere() {
    let server = Duplex::start(&[]);
    let (mut sender, s_name) = Telnet::join(server.tcp);
    let (mut other, _) = Telnet::join(server.tcp);
    let (mut w, _) = ws_connect(server.http, "/chat", &[]);
    let w_name = ws_name(&mut w);
    sender.until(|l| l == format!("* {w_name} joined lobby"));
    other.until(|l| l == format!("* {w_name} joined lobby"));

    let mut burst = Vec::new();
    for i in 0..200 {
        burst.extend_from_slice(format!("message {i}\r\n").as_bytes());
    }
    sender.send(&burst);
    for i in 0..200 {
        let expected = format!("[lobby] {s_name}: message {i}");
        assert_eq!(sender.line(), expected);
        assert_eq!(other.line(), expected);
        match w.read().unwrap() {
            Message::Text(t) => assert_eq!(t, expected),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn binary_relays_as_binary_to_websocket_and_as_a_notice_to_telnet() {
    let server = Duplex::start(&[]);
    let (mut t, _) = Telnet::join(server.tcp);
    let (mut w1, _) = ws_connect(server.http, "/chat", &[]);
    let w1_name = ws_name(&mut w1);
    let (mut w2, _) = ws_connect(server.http, "/chat", &[]);
    let w2_name = ws_name(&mut w2);
    ws_expect(&mut w1, &format!("* {w2_name} joined lobby"));
    t.until(|l| l == format!("* {w2_name} joined lobby"));

    let data = vec![0u8, 1, 2, 0xFF, 0xFE];
    w1.send(Message::binary(data.clone())).unwrap();
    loop {
        match w2.read().unwrap() {
            Message::Binary(got) => {
                assert_eq!(got, data);
                break;
            }
            Message::Text(text) => assert!(text.starts_with('*'), "{text}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(t.line(), format!("* {w1_name} sent a binary message (5 bytes)"));
}

// ---- graceful shutdown ------------------------------------------------------

#[test]
fn sigterm_says_goodbye_on_both_doors_and_exits_zero() {
    let mut server = Duplex::start(&[]);
    let (mut t, _) = Telnet::join(server.tcp);
    let mut ws = RawWs::connect(server.http, "/echo");
    // Both connections are known to the server before the signal.
    ws.send_frame(true, 0x1, b"ready");
    assert_eq!(ws.read_frame().unwrap().payload, b"ready");
    t.say("/echo ready");
    assert_eq!(t.line(), "ready");

    let pid = server.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert_eq!(t.line(), "* server shutting down; goodbye");
    assert!(t.until_closed().is_empty(), "EOF after the goodbye");
    let (code, _) = ws.expect_close();
    assert_eq!(code, 1001);
    // Answer the close, as a client should; then the server ends TCP.
    ws.send_frame(true, 0x8, &1001u16.to_be_bytes());
    ws.expect_eof();
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", server.log());
}
