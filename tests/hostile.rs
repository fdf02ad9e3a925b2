//! Hostile input (DESIGN §2): every protocol violation and every limit,
//! sent over real sockets. Each test checks the exact answer, and then that
//! a well-behaved client on the same server is still served.

mod common;

use common::{
    frame, header_value, http_request, peak_rss_kib, read_response, upgrade_request, web_connect, ws_connect,
    Duplex, RawWs, Telnet, WAIT,
};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};
use tungstenite::Message;

const MASK: Option<[u8; 4]> = Some([0x12, 0x34, 0x56, 0x78]);

/// A telnet echo and a WebSocket echo, both answered.
fn assert_server_healthy(server: &Duplex) {
    let (mut t, _) = Telnet::join(server.tcp);
    t.say("/echo still serving");
    assert_eq!(t.line(), "still serving");
    let (mut ws, _) = ws_connect(server.http, "/echo", &[]);
    ws.send(Message::text("still serving")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("still serving"));
}

/// Waits until the server's log contains one of `needles`; returns it.
fn wait_log_any<'a>(server: &Duplex, needles: &[&'a str]) -> &'a str {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let log = server.log();
        if let Some(found) = needles.iter().find(|n| log.contains(**n)) {
            return found;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "server log never showed any of {needles:?}; log:\n{}",
        server.log()
    );
}

/// Opens `/echo`, sends `bytes` as they are, and returns the server's close
/// code after checking that it then closes the TCP connection.
fn close_code_for(server: &Duplex, bytes: &[u8]) -> (u16, String) {
    let mut ws = RawWs::connect(server.http, "/echo");
    ws.send_raw(bytes);
    ws.expect_close_then_eof()
}

// ---- WebSocket frames --------------------------------------------------------

#[test]
fn unmasked_client_frame_is_1002() {
    let server = Duplex::start(&[]);
    // RFC 6455 §5.1: a server MUST close on an unmasked client frame.
    let (code, _) = close_code_for(&server, &frame(true, 0x1, b"hello", None));
    assert_eq!(code, 1002);
    assert_server_healthy(&server);
}

#[test]
fn reserved_bits_are_1002() {
    let server = Duplex::start(&[]);
    // §5.2: RSV1-3 MUST be 0 unless an extension is negotiated.
    for rsv in [0x40u8, 0x20, 0x10, 0x70] {
        let (code, _) = close_code_for(&server, &frame(true, rsv | 0x1, b"x", MASK));
        assert_eq!(code, 1002, "rsv {rsv:#x}");
    }
    assert_server_healthy(&server);
}

#[test]
fn unknown_opcodes_are_1002() {
    let server = Duplex::start(&[]);
    // §5.2: opcodes 3-7 and B-F are reserved.
    for opcode in [0x3u8, 0x7, 0xB, 0xF] {
        let (code, _) = close_code_for(&server, &frame(true, opcode, b"", MASK));
        assert_eq!(code, 1002, "opcode {opcode:#x}");
    }
    assert_server_healthy(&server);
}

#[test]
fn fragmented_control_frame_is_1002() {
    let server = Duplex::start(&[]);
    // §5.5: control frames MUST NOT be fragmented.
    for opcode in [0x9u8, 0xA, 0x8] {
        let (code, _) = close_code_for(&server, &frame(false, opcode, b"", MASK));
        assert_eq!(code, 1002, "opcode {opcode:#x}");
    }
    assert_server_healthy(&server);
}

#[test]
fn control_frame_over_125_bytes_is_1002() {
    let server = Duplex::start(&[]);
    // §5.5: all control frames MUST have a payload of 125 bytes or less.
    let (code, _) = close_code_for(&server, &frame(true, 0x9, &[0u8; 126], MASK));
    assert_eq!(code, 1002);
    let (code, _) = close_code_for(&server, &frame(true, 0x8, &[0x03, 0xE8].repeat(63), MASK));
    assert_eq!(code, 1002);
    assert_server_healthy(&server);
}

#[test]
fn continuation_without_a_start_is_1002() {
    let server = Duplex::start(&[]);
    // §5.4: a continuation frame with no message to continue.
    let (code, _) = close_code_for(&server, &frame(true, 0x0, b"orphan", MASK));
    assert_eq!(code, 1002);
    // And a new data frame inside an open fragmented message.
    let mut bytes = frame(false, 0x1, b"a", MASK);
    bytes.extend(frame(true, 0x1, b"b", MASK));
    let (code, _) = close_code_for(&server, &bytes);
    assert_eq!(code, 1002);
    assert_server_healthy(&server);
}

#[test]
fn invalid_utf8_in_text_and_in_close_reason_is_1007() {
    let server = Duplex::start(&[]);
    // §8.1: text MUST be valid UTF-8.
    let (code, _) = close_code_for(&server, &frame(true, 0x1, b"caf\xC3", MASK));
    assert_eq!(code, 1007);
    // Split across fragments: the bad byte is in the second fragment.
    let mut bytes = frame(false, 0x1, "café ".as_bytes(), MASK);
    bytes.extend(frame(true, 0x0, b"\xFF", MASK));
    let (code, _) = close_code_for(&server, &bytes);
    assert_eq!(code, 1007);
    // Fail fast: a bad first fragment is refused before the message ends.
    let mut ws = RawWs::connect(server.http, "/echo");
    ws.send_frame(false, 0x1, b"\xED\xA0\x80");
    assert_eq!(ws.expect_close_then_eof().0, 1007);
    // §5.5.1: a close reason is UTF-8 too.
    let (code, _) = close_code_for(&server, &frame(true, 0x8, b"\x03\xE8bad \xFF", MASK));
    assert_eq!(code, 1007);
    assert_server_healthy(&server);
}

#[test]
fn invalid_close_codes_are_1002() {
    let server = Duplex::start(&[]);
    // §7.4.1: 1005 and 1006 never appear on the wire; below 1000 and
    // 5000 and up are not codes at all.
    for bad in [1005u16, 1006, 999, 0, 1004, 1016, 2000, 5000, 65535] {
        let (code, _) = close_code_for(&server, &frame(true, 0x8, &bad.to_be_bytes(), MASK));
        assert_eq!(code, 1002, "close code {bad}");
    }
    // A one-byte close payload cannot hold a code (§5.5.1).
    let (code, _) = close_code_for(&server, &frame(true, 0x8, &[0x03], MASK));
    assert_eq!(code, 1002);
    assert_server_healthy(&server);
}

/// A masked frame header with a 64-bit length and no payload.
fn header_with_length(opcode: u8, length: u64) -> Vec<u8> {
    let mut bytes = vec![0x80 | opcode, 0x80 | 127];
    bytes.extend_from_slice(&length.to_be_bytes());
    bytes.extend_from_slice(&MASK.unwrap());
    bytes
}

#[test]
fn length_with_the_top_bit_set_is_1002() {
    let server = Duplex::start(&[]);
    // §5.2: in a 64-bit length the most significant bit MUST be 0.
    let (code, _) = close_code_for(&server, &header_with_length(0x2, 1 << 63));
    assert_eq!(code, 1002);
    assert_server_healthy(&server);
}

#[test]
fn a_two_to_the_62_length_is_1009_on_the_header() {
    let server = Duplex::start(&[]);
    // Only the header is sent: the answer must not wait for the payload.
    let (code, _) = close_code_for(&server, &header_with_length(0x2, 1 << 62));
    assert_eq!(code, 1009);
    // Just over the default 16 MiB limit, same answer on the header.
    let (code, _) = close_code_for(&server, &header_with_length(0x1, (16 << 20) + 1));
    assert_eq!(code, 1009);
    assert_server_healthy(&server);
}

#[test]
fn message_over_the_limit_across_many_fragments_is_1009() {
    let server = Duplex::start(&["--max-message", "1000"]);
    // 1000 bytes in ten fragments is exactly the limit: echoed.
    let mut ws = RawWs::connect(server.http, "/echo");
    let chunk = [b'a'; 100];
    ws.send_frame(false, 0x2, &chunk);
    for i in 1..10 {
        ws.send_frame(i == 9, 0x0, &chunk);
    }
    let echo = ws.read_frame().unwrap();
    assert_eq!((echo.opcode, echo.payload.len()), (0x2, 1000));
    // 1001 bytes in eleven fragments: refused when the last one's header
    // would take the message over.
    let chunk = [b'b'; 91];
    ws.send_frame(false, 0x1, &chunk);
    for i in 1..11 {
        ws.send_frame(i == 10, 0x0, &chunk);
    }
    assert_eq!(ws.expect_close_then_eof().0, 1009);
    assert_server_healthy(&server);
}

#[test]
fn too_many_continuation_frames_is_1008() {
    let server = Duplex::start(&["--max-fragments", "100"]);
    // A start and 100 continuations: within the limit.
    let mut ws = RawWs::connect(server.http, "/echo");
    let mut bytes = frame(false, 0x1, b"s", MASK);
    for i in 0..100 {
        bytes.extend(frame(i == 99, 0x0, b"c", MASK));
    }
    ws.send_raw(&bytes);
    let echo = ws.read_frame().unwrap();
    assert_eq!(echo.payload.len(), 101);
    // One more continuation is one too many.
    let mut bytes = frame(false, 0x1, b"s", MASK);
    for i in 0..101 {
        bytes.extend(frame(i == 100, 0x0, b"", MASK));
    }
    ws.send_raw(&bytes);
    assert_eq!(ws.expect_close_then_eof().0, 1008);
    assert_server_healthy(&server);
}

#[test]
fn a_million_empty_continuations_are_1008_in_bounded_memory() {
    let server = Duplex::start(&[]);
    assert_server_healthy(&server);
    let before = peak_rss_kib(server.pid());
    let mut ws = RawWs::connect(server.http, "/echo");
    let mut writer = ws.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let mut batch = frame(false, 0x2, b"", MASK);
        let empty = frame(false, 0x0, b"", MASK);
        for _ in 0..10_000 {
            batch.extend_from_slice(&empty);
        }
        // 100 batches of 10,000: a million empty continuation frames. The
        // server may stop reading once it has answered; that ends the flood.
        for _ in 0..100 {
            if writer.write_all(&batch).is_err() {
                return;
            }
            batch = empty.repeat(10_000);
        }
    });
    let (code, _) = ws.expect_close();
    assert_eq!(code, 1008);
    sender.join().unwrap();
    ws.expect_eof();
    // The peak, not the size now: a buffer that grew and was freed after
    // the close would not show in the current size.
    let after = peak_rss_kib(server.pid());
    assert!(
        after < before + 8 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB"
    );
    assert_server_healthy(&server);
}

#[test]
fn bytes_after_the_close_frame_are_ignored() {
    let server = Duplex::start(&[]);
    let mut ws = RawWs::connect(server.http, "/echo");
    // §5.5.1: after sending a close frame, the endpoint sends no more data;
    // whatever a peer sends anyway is not acted on.
    let mut bytes = frame(true, 0x8, b"\x03\xE8done", MASK);
    bytes.extend(frame(true, 0x1, b"ignored", MASK));
    bytes.extend(frame(true, 0x1, b"unmasked and ignored", None));
    bytes.extend_from_slice(b"\xFF\xFF\xFF garbage");
    ws.send_raw(&bytes);
    let close = ws.read_frame().expect("the close answer");
    assert_eq!(close.close().0, 1000, "{close:?}");
    ws.expect_eof();
    assert_server_healthy(&server);
}

// ---- HTTP heads and handshakes ------------------------------------------------

#[test]
fn request_head_of_100_kib_is_431() {
    let server = Duplex::start(&[]);
    let mut request = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Filler: ".to_vec();
    request.resize(100 * 1024, b'a');
    request.extend_from_slice(b"\r\n\r\n");
    let (status, head, _) = http_request(server.http, &request);
    assert_eq!(status, 431, "{head}");
    assert_eq!(header_value(&head, "Connection").as_deref(), Some("close"));
    assert_server_healthy(&server);
}

#[test]
fn ten_thousand_headers_is_431() {
    let server = Duplex::start(&[]);
    let mut request = String::from("GET / HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..10_000 {
        request.push_str(&format!("X-{i}: y\r\n"));
    }
    request.push_str("\r\n");
    let (status, head, _) = http_request(server.http, request.as_bytes());
    assert_eq!(status, 431, "{head}");
    // Within a head size that admits them, the header count still refuses.
    let server2 = Duplex::start(&["--max-head", "1MiB"]);
    let (status, head, body) = http_request(server2.http, request.as_bytes());
    assert_eq!(status, 431, "{head}");
    assert_eq!(body, b"more than 64 header lines\n", "names the limit");
    assert_server_healthy(&server);
    assert_server_healthy(&server2);
}

#[test]
fn one_header_of_one_mebibyte_is_431() {
    let server = Duplex::start(&[]);
    let mut request = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Huge: ".to_vec();
    request.resize(request.len() + (1 << 20), b'z');
    request.extend_from_slice(b"\r\n\r\n");
    let (status, head, _) = http_request(server.http, &request);
    assert_eq!(status, 431, "{head}");
    assert_server_healthy(&server);
}

fn protocol_offers(n: usize) -> String {
    let mut offers: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
    offers.push("echo-protocol".to_string());
    format!("Sec-WebSocket-Protocol: {}\r\n", offers.join(", "))
}

#[test]
fn ten_thousand_subprotocol_offers() {
    let server = Duplex::start(&[]);
    let offers = protocol_offers(10_000);
    let (status, head, _) = http_request(server.http, &upgrade_request(server.http, "/echo", &offers));
    assert_eq!(status, 431, "{head}");
    assert_server_healthy(&server);

    // With limits that admit the head, the answer is a correct 101 that
    // picks the one offer the endpoint speaks.
    let server = Duplex::start(&["--max-head", "1MiB", "--max-headers", "100000"]);
    let mut ws = RawWs::connect_with(server.http, &upgrade_request(server.http, "/echo", &offers));
    ws.send_frame(true, 0x1, b"after 10,000 offers");
    assert_eq!(ws.read_frame().unwrap().payload, b"after 10,000 offers");
    let (_, head) = RawWs::connect_head(server.http, &upgrade_request(server.http, "/echo", &offers));
    assert_eq!(
        header_value(&head, "Sec-WebSocket-Protocol").as_deref(),
        Some("echo-protocol"),
        "{head}"
    );
    // None of 10,000 offers is spoken: no header at all.
    let none = protocol_offers(10_000).replace(", echo-protocol", "");
    let (_, head) = RawWs::connect_head(server.http, &upgrade_request(server.http, "/echo", &none));
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_eq!(header_value(&head, "Sec-WebSocket-Protocol"), None, "{head}");
    assert_server_healthy(&server);
}

#[test]
fn handshake_refusals() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    let standard = String::from_utf8(upgrade_request(addr, "/echo", "")).unwrap();
    // What is sent, the status expected, and headers the answer must carry.
    type Case<'a> = (&'a str, String, u16, &'a [(&'a str, &'a str)]);
    let cases: Vec<Case> = vec![
        (
            "short key",
            standard.replace(common::KEY, "c2hvcnQ="),
            400,
            &[("Connection", "close")],
        ),
        (
            "key that is not base64",
            standard.replace(common::KEY, "!!!!!!!!!!!!!!!!!!!!!!=="),
            400,
            &[],
        ),
        (
            "17-byte key",
            standard.replace(common::KEY, "AAAAAAAAAAAAAAAAAAAAAAA="),
            400,
            &[],
        ),
        (
            "version 8",
            standard.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
            426,
            &[("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")],
        ),
        (
            "no version",
            standard.replace("Sec-WebSocket-Version: 13\r\n", ""),
            426,
            &[("Sec-WebSocket-Version", "13")],
        ),
        (
            "POST upgrade",
            standard.replacen("GET", "POST", 1),
            405,
            &[("Allow", "GET")],
        ),
        (
            "HTTP/1.0 upgrade",
            standard.replace("HTTP/1.1", "HTTP/1.0"),
            400,
            &[],
        ),
        (
            "cross-site origin",
            String::from_utf8(upgrade_request(addr, "/echo", "Origin: https://evil.example\r\n")).unwrap(),
            403,
            &[],
        ),
        (
            "rebinding host",
            standard.replace(&format!("Host: {addr}"), "Host: attacker.example"),
            403,
            &[],
        ),
    ];
    for (what, request, status, headers) in cases {
        let (got, head, body) = http_request(addr, request.as_bytes());
        assert_eq!(got, status, "{what}: {head}");
        assert!(!body.is_empty(), "{what}: a refusal says why");
        for (name, value) in headers {
            assert_eq!(
                header_value(&head, name).as_deref(),
                Some(*value),
                "{what}: {name} in {head}"
            );
        }
        assert_server_healthy(&server);
    }
}

#[test]
fn a_head_trickled_one_byte_per_write_is_answered() {
    let server = Duplex::start(&[]);
    let mut stream = web_connect(server.http);
    let mut request = upgrade_request(server.http, "/echo", "");
    request.extend(frame(true, 0x1, b"trickled", MASK));
    for byte in &request {
        stream.write_all(std::slice::from_ref(byte)).unwrap();
        stream.flush().unwrap();
    }
    let mut ws = RawWs::from_stream(stream);
    let head = ws.read_head();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_eq!(ws.read_frame().unwrap().payload, b"trickled");
    assert_server_healthy(&server);
}

#[test]
fn a_slow_trickle_gets_408_while_others_are_served() {
    let server = Duplex::start(&["--handshake-timeout", "1s"]);
    let start = Instant::now();
    let mut slow = web_connect(server.http);
    // One byte, then wait up to 200 ms for an answer, and so on: five
    // bytes a second. The reads are the pacing, and the first one that
    // gets data sees the 408.
    slow.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let request = upgrade_request(server.http, "/echo", "");
    let mut answer = Vec::new();
    let mut served_meanwhile = false;
    for byte in &request {
        if slow.write_all(std::slice::from_ref(byte)).is_err() {
            break;
        }
        let mut buf = [0u8; 1024];
        match slow.read(&mut buf) {
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read: {e}"),
        }
        if !served_meanwhile {
            // Another client is served while the trickle goes on.
            let (status, _, body) = http_request(
                server.http,
                b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            );
            assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
            served_meanwhile = true;
        }
        assert!(start.elapsed() < WAIT, "no answer to a slow trickle");
    }
    slow.set_read_timeout(Some(WAIT)).unwrap();
    let _ = slow.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer:?}");
    assert!(answer.contains("Connection: close\r\n"), "{answer}");
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "408 after {elapsed:?}"
    );
    assert_server_healthy(&server);
}

#[test]
fn a_silent_web_peer_is_closed_after_the_handshake_timeout() {
    let server = Duplex::start(&["--handshake-timeout", "1s"]);
    let start = Instant::now();
    let mut silent = web_connect(server.http);
    let mut answer = Vec::new();
    silent.read_to_end(&mut answer).expect("closed, not reset");
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "closed after {elapsed:?}"
    );
    // A peer that said nothing is told nothing: there is no request to
    // answer 408 to, and the close says enough.
    assert_eq!(String::from_utf8_lossy(&answer), "");
    assert_server_healthy(&server);
}

// ---- the telnet door ------------------------------------------------------

#[test]
fn a_ten_mebibyte_telnet_line_is_refused_in_bounded_memory() {
    let server = Duplex::start(&[]);
    let (mut t, _) = Telnet::join(server.tcp);
    let before = peak_rss_kib(server.pid());
    let mut line = vec![b'x'; 10 << 20];
    line.extend_from_slice(b"\r\n/echo after\r\n");
    t.send(&line);
    assert_eq!(t.line(), "! line too long (limit 4096 bytes); it was skipped");
    assert_eq!(t.line(), "after");
    let after = peak_rss_kib(server.pid());
    assert!(
        after < before + 4 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB"
    );
    assert_server_healthy(&server);
}

/// `IAC SB` opens a sub-negotiation that only `IAC SE` ends (RFC 855). A
/// peer that never sends the end, by accident (binary bytes piped into
/// `nc`) or on purpose, must not silence itself forever: past the line
/// limit the sub-negotiation is ended, the peer is told, and its next
/// line is read as usual.
#[test]
fn a_sub_negotiation_that_never_ends_is_cut_at_the_line_limit() {
    let server = Duplex::start(&["--max-line", "64"]);
    let (mut t, _) = Telnet::join(server.tcp);
    let mut bytes = b"\xFF\xFA\x1F".to_vec(); // IAC SB NAWS
    bytes.extend_from_slice(&[b'7'; 64]);
    bytes.extend_from_slice(b"\r\n/echo typing works\r\n");
    t.send(&bytes);
    assert_eq!(
        t.line(),
        "! telnet sub-negotiation IAC SB NAWS longer than 64 bytes without IAC SE; ended there"
    );
    assert_eq!(t.line(), "typing works");
    server.wait_log("telnet sub-negotiation IAC SB NAWS longer than 64 bytes");
    assert_server_healthy(&server);
}

#[test]
fn telnet_ctrl_c_bytes() {
    let server = Duplex::start(&[]);
    let (mut t, name) = Telnet::join(server.tcp);
    // IAC IP, IAC DO TIMING-MARK (what telnet sends for Ctrl-C), alone.
    // Answered with IAC WILL TIMING-MARK (RFC 860), ahead of the next line.
    t.send(b"\xFF\xF4\xFF\xFD\x06");
    t.say("/echo after ctrl-c");
    assert_eq!(t.line_bytes().unwrap(), b"\xFF\xFB\x06after ctrl-c");
    // In the middle of a line, and split across writes.
    t.send(b"half\xFF");
    t.send(b"\xF4\xFF\xFD");
    t.send(b"\x06way\r\n");
    let mut expected = b"\xFF\xFB\x06".to_vec();
    expected.extend_from_slice(format!("[lobby] {name}: halfway").as_bytes());
    assert_eq!(t.line_bytes().unwrap(), expected);
    // A raw ETX (what a client in character mode sends) is a control
    // character: shown to nobody as such.
    t.send(b"/echo a\x03b\r\n");
    assert_eq!(t.line_bytes().unwrap(), "a\u{FFFD}b".as_bytes());
    assert_server_healthy(&server);
}

#[test]
fn a_half_closed_telnet_peer_still_gets_its_answer() {
    let server = Duplex::start(&[]);
    let (mut t, name) = Telnet::join(server.tcp);
    t.send(b"hi\n");
    t.stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(t.line(), format!("[lobby] {name}: hi"));
    assert!(t.until_closed().is_empty(), "then EOF");

    // A last line without a line end counts too (`printf 'bye' | nc -N`).
    let (mut t, name) = Telnet::join(server.tcp);
    t.send(b"bye");
    t.stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(t.line(), format!("[lobby] {name}: bye"));
    assert!(t.until_closed().is_empty(), "then EOF");
    assert_server_healthy(&server);
}

// ---- peers that do not read, and peers that vanish --------------------------

#[test]
fn a_peer_that_stops_reading_is_closed_1008() {
    // A close timeout far beyond the test's waits: the connection must
    // finish because the server hears the peer leave, not because it
    // gives up on it.
    let server = Duplex::start(&[
        "--max-output",
        "64KiB",
        "--slow-reader-timeout",
        "1s",
        "--close-timeout",
        "60s",
    ]);
    let mut ws = RawWs::connect(server.http, "/echo");
    let mut writer = ws.stream.try_clone().unwrap();
    // Echo traffic that is never read: the kernel's buffers fill, then the
    // server's queue grows past --max-output and stays there.
    let sender = std::thread::spawn(move || {
        let message = frame(true, 0x2, &vec![0xAB; 1 << 20], MASK);
        for _ in 0..24 {
            if writer.write_all(&message).is_err() {
                return;
            }
        }
    });
    server.wait_log("slow reader");
    // Others are unaffected while the slow reader is stuck.
    assert_server_healthy(&server);
    // Now read: the echoes that made it into the kernel's buffers, then
    // the close frame (the queue behind it was dropped).
    let (code, reason) = ws.expect_close();
    assert_eq!(code, 1008, "{reason}");
    ws.stream.shutdown(Shutdown::Both).unwrap();
    sender.join().unwrap();
    // Reading resumed once the queue was dropped, so the peer's going away
    // is seen at once.
    server.wait_log("disconnected (too slow: output buffer full)");
    assert_server_healthy(&server);
}

#[test]
fn a_peer_that_resets_mid_write() {
    let server = Duplex::start(&[]);
    let mut ws = RawWs::connect(server.http, "/echo");
    ws.send_frame(true, 0x2, &vec![0x5A; 8 << 20]);
    // The echo has started to arrive...
    let mut first = [0u8; 1];
    ws.stream.read_exact(&mut first).unwrap();
    assert_eq!(first[0], 0x82);
    // ...and the peer goes away with most of it unread, so its kernel
    // answers the server with a reset (RFC 1122 §4.2.2.13: a close with
    // received data still pending sends RST).
    drop(ws);
    wait_log_any(
        &server,
        &["closing at once: read error", "closing at once: write error"],
    );
    assert_server_healthy(&server);
}

#[test]
fn the_connection_cap_refuses_politely_and_recovers() {
    let server = Duplex::start(&["--max-connections", "3"]);
    let (mut a, _) = Telnet::join(server.tcp);
    let (_b, _) = Telnet::join(server.tcp);
    let (mut w, _) = ws_connect(server.http, "/echo", &[]);
    w.send(Message::text("in")).unwrap();
    assert_eq!(w.read().unwrap(), Message::text("in"));

    // The refusal comes on connect, before the client says anything.
    let mut fourth = web_connect(server.http);
    let (status, head, body) = read_response(&mut fourth);
    assert_eq!(status, 503, "{head}");
    assert!(header_value(&head, "Retry-After").is_some(), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("busy"));
    let mut fourth = Telnet::connect(server.tcp);
    let refusal = fourth.line();
    assert!(refusal.starts_with("! server busy"), "{refusal}");
    assert!(fourth.until_closed().is_empty());

    // One leaves; a newcomer gets in once the server has noticed.
    a.say("/quit");
    assert!(a.until_closed().iter().any(|l| l.starts_with("* bye")));
    drop(a);
    let deadline = Instant::now() + WAIT;
    let mut newcomer = loop {
        let mut t = Telnet::connect(server.tcp);
        let line = t.line();
        if line.starts_with("* welcome") {
            break t;
        }
        assert!(line.starts_with("! server busy"), "{line}");
        assert!(Instant::now() < deadline, "no room freed after a client left");
        std::thread::sleep(Duration::from_millis(20));
    };
    newcomer.say("/echo in at last");
    assert_eq!(newcomer.line(), "in at last");
    drop(newcomer);
    drop(w);
    drop(_b);
    // The well-behaved pair needs two places; wait for them to free up.
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, _, body) = http_request(
            server.http,
            b"GET /stats HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        );
        // Only the /stats request itself is left.
        if status == 200 && open_connections(&body) == Some(1) {
            break;
        }
        assert!(Instant::now() < deadline, "connections were never freed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_server_healthy(&server);
}

/// `connections.total` from `GET /stats`.
fn open_connections(json: &[u8]) -> Option<u64> {
    let json = common::Json::parse(&String::from_utf8_lossy(json)).ok()?;
    Some(json.count(&["connections", "total"]))
}

#[test]
fn a_crowd_that_drops_at_once_costs_no_more_memory_than_it_had() {
    // Every departure is announced to everyone left: n² lines in all. Held
    // together, 1,500 departures to 1,500 members would take tens of MB;
    // delivered one departure at a time, the peak does not move.
    const CROWD: usize = 1500;
    let server = Duplex::start_with_env(&[], &[("RUST_LOG", "duplex=warn")]);
    let mut crowd = Vec::with_capacity(CROWD);
    for _ in 0..CROWD {
        let stream = TcpStream::connect(server.tcp).expect("connect");
        stream.set_nonblocking(true).unwrap();
        crowd.push(stream);
    }
    // Everyone is in: the last one's greeting has arrived.
    let (mut last, _) = Telnet::join(server.tcp);
    last.say("/who");
    last.until(|l| l.starts_with("* members of lobby:"));
    let before = peak_rss_kib(server.pid());
    // Unread lines wait in their sockets, so each close is a reset.
    drop(crowd);
    let deadline = Instant::now() + WAIT;
    while !crowd_gone(&server) {
        assert!(Instant::now() < deadline, "the crowd was never freed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let after = peak_rss_kib(server.pid());
    assert!(
        after < before + 8 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB"
    );
    assert_server_healthy(&server);
}

/// Only the last member (and the /stats request itself) are left.
fn crowd_gone(server: &Duplex) -> bool {
    let (status, head, body) = http_request(
        server.http,
        b"GET /stats HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200, "{head}");
    open_connections(&body) == Some(2)
}

// ---- heartbeats, idle peers, the origin allow-list, running out of fds -------

#[test]
fn a_silent_websocket_is_pinged_and_closed_when_it_does_not_answer() {
    // Both ways the heartbeat starts: from a timer of its own (a ping
    // interval shorter than the handshake timeout), and from the request
    // deadline still pending at the upgrade (one at least as long).
    for handshake_timeout in ["10s", "150ms"] {
        let server = Duplex::start(&[
            "--ping-interval",
            "300ms",
            "--pong-timeout",
            "300ms",
            "--handshake-timeout",
            handshake_timeout,
        ]);
        let mut ws = RawWs::connect(server.http, "/echo");
        let opened = Instant::now();
        // Silence: the server asks whether we are still there (RFC 6455
        // §5.5.2), not before the ping interval.
        let ping = ws.read_frame().expect("a ping");
        assert_eq!(ping.opcode, 0x9, "{ping:?}");
        let pinged = opened.elapsed();
        assert!(pinged >= Duration::from_millis(250), "pinged after {pinged:?}");
        // We do not answer: a close follows, and then the end of the stream.
        let (code, reason) = ws.expect_close();
        assert_eq!((code, reason.as_str()), (1001, "no answer to ping"));
        let closed = opened.elapsed();
        assert!(closed >= Duration::from_millis(550), "closed after {closed:?}");
        assert_server_healthy(&server);
    }
}

#[test]
fn a_websocket_that_answers_pings_stays_open() {
    let server = Duplex::start(&["--ping-interval", "200ms", "--pong-timeout", "200ms"]);
    let mut ws = RawWs::connect(server.http, "/echo");
    for _ in 0..3 {
        let ping = ws.read_frame().expect("a ping");
        assert_eq!(ping.opcode, 0x9);
        ws.send_frame(true, 0xA, &ping.payload);
    }
    // Three rounds of the heartbeat later, it still echoes.
    ws.send_frame(true, 0x1, b"alive");
    let echo = ws.read_frame().expect("the echo");
    assert_eq!((echo.opcode, echo.payload.as_slice()), (0x1, &b"alive"[..]));
}

#[test]
fn an_idle_telnet_user_is_closed_only_with_idle_timeout() {
    let server = Duplex::start(&["--idle-timeout", "300ms"]);
    let (mut t, _) = Telnet::join(server.tcp);
    let goodbye = t.until(|l| l.starts_with("! idle"));
    assert_eq!(goodbye, "! idle for 300ms; goodbye");
    assert!(t.until_closed().is_empty(), "then EOF");
    assert_server_healthy(&server);
}

#[test]
fn allow_origin_admits_a_named_site_and_only_that_one() {
    let server = Duplex::start(&["--allow-origin", "https://chat.example"]);
    // Origins compare case-insensitively (RFC 6454 §6.2 serialises them in
    // lower case; a hand-written header may not).
    for origin in ["https://chat.example", "HTTPS://Chat.Example"] {
        let allowed = upgrade_request(server.http, "/chat", &format!("Origin: {origin}\r\n"));
        let (_, head) = RawWs::connect_head(server.http, &allowed);
        assert!(head.starts_with("HTTP/1.1 101 "), "{origin}: {head}");
    }
    // Near misses: another scheme, a longer name that starts the same, a
    // subdomain, a name that ends the same, another port.
    for origin in [
        "https://evil.example",
        "http://chat.example",
        "https://chat.example.evil",
        "https://evil.chat.example",
        "https://evilchat.example",
        "https://chat.example:8443",
    ] {
        let other = upgrade_request(server.http, "/chat", &format!("Origin: {origin}\r\n"));
        let (status, head, body) = http_request(server.http, &other);
        assert_eq!(status, 403, "{origin}: {head}");
        assert!(
            String::from_utf8_lossy(&body).contains(&origin.to_ascii_lowercase()),
            "the refusal names {origin}: {body:?}"
        );
    }
}

#[test]
fn a_descriptor_limit_below_the_cap_lowers_the_cap_and_refuses_politely() {
    // A server allowed 32 file descriptors, soft and hard: it cannot raise
    // the limit, so it lowers its connection cap to fit and says so, and
    // the crowd beyond the cap is told, not left waiting in the backlog.
    let mut command = std::process::Command::new("sh");
    command
        .args([
            "-c",
            "ulimit -n 32 && exec \"$0\" --tcp 127.0.0.1:0 --http 127.0.0.1:0",
        ])
        .arg(env!("CARGO_BIN_EXE_duplex"))
        .env("RUST_LOG", "duplex=info");
    let mut server = Duplex::spawn(command);
    server.wait_log("at most 16 connections, not 10000");
    let tcp = server.tcp;
    let mut crowd: Vec<Telnet> = (0..40).map(|_| Telnet::connect(tcp)).collect();
    let (mut welcomed, mut refused) = (0, 0);
    for t in &mut crowd {
        let first = t.line();
        if first.starts_with("* welcome to duplex") {
            welcomed += 1;
        } else {
            assert!(
                first.starts_with("! server busy: connection limit reached"),
                "{first}"
            );
            refused += 1;
        }
    }
    assert_eq!((welcomed, refused), (16, 24));
    // The crowd leaves; once the server has seen them go, a newcomer is
    // served (until then it is told the server is busy, never ignored).
    drop(crowd);
    let deadline = std::time::Instant::now() + common::WAIT;
    loop {
        let first = Telnet::connect(tcp).line();
        if first.starts_with("* welcome to duplex") {
            break;
        }
        assert!(first.starts_with("! server busy"), "{first}");
        assert!(std::time::Instant::now() < deadline, "never served again");
    }
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server is still running"
    );
}

#[test]
fn a_low_soft_descriptor_limit_is_raised_to_fit_the_cap() {
    // A Debian login shell's soft limit, under a higher hard limit: the
    // server raises it, so connections past it are all served.
    let mut command = std::process::Command::new("sh");
    command
        .args([
            "-c",
            "ulimit -Sn 64 && exec \"$0\" --tcp 127.0.0.1:0 --http 127.0.0.1:0 --max-connections 200",
        ])
        .arg(env!("CARGO_BIN_EXE_duplex"))
        .env("RUST_LOG", "duplex=info");
    let server = Duplex::spawn(command);
    let mut crowd: Vec<Telnet> = (0..100).map(|_| Telnet::connect(server.tcp)).collect();
    for t in &mut crowd {
        let first = t.line();
        assert!(first.starts_with("* welcome to duplex"), "{first}");
    }
    assert!(
        !server.log().contains("file descriptors allowed"),
        "{}",
        server.log()
    );
}
