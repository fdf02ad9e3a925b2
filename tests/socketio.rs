//! socket.io at `/socket.io/` (Engine.IO 4, Socket.IO 5), over real
//! sockets: the official client from npm (`tests/socketio/client_test.mjs`),
//! the upgrade by hand byte for byte, and each hostile input in a test of
//! its own, each checking the exact answer and that the session is gone.

mod common;

use common::{
    http_request, read_response, upgrade_request, web_connect, Duplex, ProcessTree, RawWs, Telnet, WAIT,
};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

const POLLING: &str = "/socket.io/?EIO=4&transport=polling";
const WEBSOCKET: &str = "/socket.io/?EIO=4&transport=websocket";

/// `GET` on a fresh connection; status and body.
fn get(addr: SocketAddr, target: &str) -> (u16, String) {
    let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let (status, _, body) = http_request(addr, request.as_bytes());
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// `POST` of `body` on a fresh connection; status and body.
fn post(addr: SocketAddr, target: &str, body: &[u8]) -> (u16, String) {
    let mut request = format!(
        "POST {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let (status, _, body) = http_request(addr, &request);
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A polling handshake: the sid and the open packet's JSON.
fn handshake(addr: SocketAddr) -> (String, serde_json::Value) {
    let (status, body) = get(addr, POLLING);
    assert_eq!(status, 200, "{body}");
    let open = body
        .strip_prefix('0')
        .unwrap_or_else(|| panic!("not an open packet: {body}"));
    let open: serde_json::Value = serde_json::from_str(open).expect("the open packet's JSON");
    (open["sid"].as_str().expect("a sid").to_string(), open)
}

/// A polling session connected to the main namespace, its first answer
/// (`40{"sid":…}` and the welcome) read.
fn connected(addr: SocketAddr) -> String {
    let (sid, _) = handshake(addr);
    assert_eq!(
        post(addr, &format!("{POLLING}&sid={sid}"), b"40"),
        (200, "ok".into())
    );
    let (status, body) = get(addr, &format!("{POLLING}&sid={sid}"));
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("40{\"sid\":\""), "{body}");
    assert!(
        body.contains("\x1e42[\"servermessage\",\"* welcome to duplex"),
        "{body}"
    );
    sid
}

/// The error answer for a sid nobody has (any more).
fn assert_unknown(addr: SocketAddr, sid: &str) {
    let (status, body) = get(addr, &format!("{POLLING}&sid={sid}"));
    assert_eq!(
        (status, body.as_str()),
        (400, r#"{"code":1,"message":"Session ID unknown"}"#)
    );
}

/// A session that starts on WebSocket: the open packet read.
fn ws_session(addr: SocketAddr) -> (RawWs, serde_json::Value) {
    let mut ws = RawWs::connect(addr, WEBSOCKET);
    let open = text(&mut ws);
    let open: serde_json::Value = serde_json::from_str(open.strip_prefix('0').expect("open")).expect("JSON");
    assert_eq!(open["upgrades"], serde_json::json!([]));
    ws.send_frame(true, 0x1, b"40");
    assert!(text(&mut ws).starts_with("40{\"sid\":\""));
    (ws, open)
}

/// The next text frame's payload.
fn text(ws: &mut RawWs) -> String {
    let frame = ws.read_frame().expect("a frame");
    assert_eq!(frame.opcode, 0x1, "{frame:?}");
    String::from_utf8(frame.payload).expect("UTF-8")
}

/// Reads text frames until one satisfies `want`.
fn text_until(ws: &mut RawWs, want: impl Fn(&str) -> bool) -> String {
    loop {
        let t = text(ws);
        if want(&t) {
            return t;
        }
    }
}

#[test]
fn the_official_client_speaks_polling_websocket_and_telnet() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let client = root.join("tests/socketio/node_modules/socket.io-client");
    assert!(
        client.exists(),
        "socket.io-client is not installed: run scripts/install-socketio.sh (it needs node and npm)"
    );
    let server = Duplex::start(&[]);
    let mut node = Command::new("node");
    node.arg(root.join("tests/socketio/client_test.mjs"))
        .args(["--url", &format!("http://{}", server.http)])
        .args(["--telnet", &server.tcp.to_string()]);
    let (status, stdout, stderr) = ProcessTree::spawn(node).wait(WAIT * 6);
    let log = server.log();
    assert!(
        status.is_some_and(|s| s.success()),
        "the socket.io client test failed ({status:?}):\n{stdout}\n{stderr}\nserver log:\n{log}"
    );
    let declared = stdout
        .lines()
        .find_map(|l| l.strip_prefix("socketio: checks declared: "))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .expect("a declared count");
    assert!(declared >= 10, "{stdout}");
    assert!(
        stdout.contains(&format!("socketio: {declared} passed, 0 failed")),
        "{stdout}"
    );
    // It really went both ways: a session upgraded, and one began on WebSocket.
    assert!(log.contains("upgraded to WebSocket"), "{log}");
    assert!(log.contains("opened (WebSocket)"), "{log}");
}

/// The upgrade, byte for byte (EIO §"Upgrade"): the probe is answered on
/// the WebSocket, the parked poll is told `6`, and after `5` the session's
/// lines come over the WebSocket while polling is refused.
#[test]
fn the_upgrade_by_hand() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    let sid = connected(addr);
    // A poll parked while the upgrade happens.
    let mut parked = web_connect(addr);
    write!(parked, "GET {POLLING}&sid={sid} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    server.wait_log("socket.io poll parked");
    let mut ws = RawWs::connect(addr, &format!("{WEBSOCKET}&sid={sid}"));
    ws.send_frame(true, 0x1, b"2probe");
    assert_eq!(text(&mut ws), "3probe");
    let (status, _, body) = read_response(&mut parked);
    assert_eq!((status, body.as_slice()), (200, &b"6"[..]));
    ws.send_frame(true, 0x1, b"5");
    server.wait_log("upgraded to WebSocket");
    let (mut telnet, _) = Telnet::join(server.tcp);
    telnet.say("over the upgrade");
    let line = text_until(&mut ws, |t| t.contains("over the upgrade"));
    assert!(
        line.starts_with("42[\"servermessage\",\"[lobby] guest-") && line.ends_with(": over the upgrade\"]"),
        "{line}"
    );
    ws.send_frame(
        true,
        0x1,
        br#"42["message",{"name":"laney","msg":"from the tutorial"}]"#,
    );
    assert_eq!(
        telnet.until(|l| l.contains("from the tutorial")),
        "[lobby] laney: from the tutorial"
    );
    let (status, body) = get(addr, &format!("{POLLING}&sid={sid}"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("upgraded"), "{body}");
}

/// A client may send its next poll before it reads `3probe` (Firefox does,
/// now and then): that poll is answered at once with `6` too, or the
/// client, waiting for its poll to return before it sends `5`, would wait
/// for the next ping and the upgrade would time out.
#[test]
fn a_poll_sent_during_the_upgrade_is_answered_at_once() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    let sid = connected(addr);
    let target = format!("{POLLING}&sid={sid}");
    let mut ws = RawWs::connect(addr, &format!("{WEBSOCKET}&sid={sid}"));
    ws.send_frame(true, 0x1, b"2probe");
    assert_eq!(text(&mut ws), "3probe");
    // Polls while the upgrade is under way: each returns `6` at once.
    for _ in 0..2 {
        assert_eq!(get(addr, &target), (200, "6".into()));
    }
    ws.send_frame(true, 0x1, b"5");
    server.wait_log("upgraded to WebSocket");
    ws.send_frame(true, 0x1, br#"42["message","/echo upgraded"]"#);
    assert_eq!(
        text_until(&mut ws, |t| t.contains("upgraded")),
        r#"42["servermessage","upgraded"]"#
    );
}

/// Bad queries get the reference server's codes and messages.
#[test]
fn requests_that_name_no_session_get_the_protocols_errors() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    assert_unknown(addr, "no-such-session");
    assert_eq!(
        get(addr, "/socket.io/?EIO=3&transport=polling"),
        (
            400,
            r#"{"code":5,"message":"Unsupported protocol version"}"#.into()
        )
    );
    assert_eq!(
        get(addr, "/socket.io/?EIO=4&transport=flashsocket"),
        (400, r#"{"code":0,"message":"Transport unknown"}"#.into())
    );
    assert_eq!(
        post(addr, POLLING, b"40"),
        (400, r#"{"code":2,"message":"Bad handshake method"}"#.into())
    );
    // A WebSocket for a session nobody has.
    let request = upgrade_request(addr, &format!("{WEBSOCKET}&sid=no-such-session"), "");
    let (_, head) = RawWs::connect_head(addr, &request);
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
}

#[test]
fn a_bad_packet_type_ends_the_session() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    let sid = connected(addr);
    let (status, body) = post(addr, &format!("{POLLING}&sid={sid}"), b"9oops");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("no Engine.IO packet type '9'"), "{body}");
    assert_unknown(addr, &sid);
    // And a bad Socket.IO type inside a message.
    let sid = connected(addr);
    let (status, body) = post(addr, &format!("{POLLING}&sid={sid}"), b"47[]");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("no Socket.IO packet type '7'"), "{body}");
    assert_unknown(addr, &sid);
    // Over WebSocket: the close frame says why.
    let (mut ws, _) = ws_session(addr);
    ws.send_frame(true, 0x1, b"9");
    let (code, reason) = ws.expect_close();
    assert_eq!(code, 1002, "{reason}");
    assert!(reason.contains("packet type '9'"), "{reason}");
}

#[test]
fn an_oversized_payload_ends_the_session() {
    let server = Duplex::start(&["--sio-max-payload", "1KiB"]);
    let addr = server.http;
    let (_, open) = handshake(addr);
    assert_eq!(open["maxPayload"], 1024);
    let sid = connected(addr);
    let line = format!("42[\"message\",\"{}\"]", "x".repeat(2000));
    let (status, body) = post(addr, &format!("{POLLING}&sid={sid}"), line.as_bytes());
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("maxPayload (1024 bytes)"), "{body}");
    assert_unknown(addr, &sid);
    // Over WebSocket: 1009 on the frame header, before its payload.
    let (mut ws, _) = ws_session(addr);
    ws.send_frame(true, 0x1, line.as_bytes());
    let (code, _) = ws.expect_close();
    assert_eq!(code, 1009);
}

#[test]
fn json_nested_ten_thousand_deep_is_refused_before_parsing() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    let sid = connected(addr);
    let deep = format!("42{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (status, body) = post(addr, &format!("{POLLING}&sid={sid}"), deep.as_bytes());
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("JSON nested deeper than 32 levels"), "{body}");
    assert_unknown(addr, &sid);
    let (mut ws, _) = ws_session(addr);
    ws.send_frame(true, 0x1, deep.as_bytes());
    let (code, reason) = ws.expect_close();
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("nested deeper"), "{reason}");
    // The server is fine.
    let (mut telnet, _) = Telnet::join(server.tcp);
    telnet.say("/echo alive");
    assert_eq!(telnet.line(), "alive");
}

#[test]
fn a_sid_is_never_valid_after_close_nor_given_twice() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    let sid = connected(addr);
    // The client's close packet.
    assert_eq!(
        post(addr, &format!("{POLLING}&sid={sid}"), b"1"),
        (200, "ok".into())
    );
    assert_unknown(addr, &sid);
    assert_eq!(
        post(addr, &format!("{POLLING}&sid={sid}"), b"40"),
        (400, r#"{"code":1,"message":"Session ID unknown"}"#.into())
    );
    // A closed WebSocket session's sid is as dead.
    let (ws, open) = ws_session(addr);
    let ws_sid = open["sid"].as_str().unwrap().to_string();
    drop(ws);
    server.wait_log(&format!("socket.io session {ws_sid} closed"));
    assert_unknown(addr, &ws_sid);
    // Fresh sids: 20 characters of base64url, never repeated.
    let mut seen = std::collections::HashSet::new();
    seen.insert(sid);
    seen.insert(ws_sid);
    for _ in 0..50 {
        let (sid, _) = handshake(addr);
        assert_eq!(sid.len(), 20, "{sid}");
        assert!(
            sid.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{sid}"
        );
        assert!(seen.insert(sid.clone()), "{sid} given twice");
    }
}

/// EIO §4: one GET at a time; a second is 400 and ends the session, and
/// the first is answered with the close packet.
#[test]
fn a_second_pending_poll_is_400_and_closes_the_session() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    let sid = connected(addr);
    let mut first = web_connect(addr);
    write!(first, "GET {POLLING}&sid={sid} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    server.wait_log("socket.io poll parked");
    let (status, body) = get(addr, &format!("{POLLING}&sid={sid}"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("a poll is already pending"), "{body}");
    let (status, _, body) = read_response(&mut first);
    assert_eq!((status, body.as_slice()), (200, &b"1"[..]));
    assert_unknown(addr, &sid);
}

/// The heartbeat is the server's: a ping every interval, and a client that
/// does not answer within the timeout is closed, over either transport.
#[test]
fn a_client_that_stops_ponging_is_closed_at_ping_timeout() {
    let server = Duplex::start(&["--sio-ping-interval", "200ms", "--sio-ping-timeout", "300ms"]);
    let addr = server.http;
    let (_, open) = handshake(addr);
    assert_eq!(
        (open["pingInterval"].as_u64(), open["pingTimeout"].as_u64()),
        (Some(200), Some(300))
    );
    // Polling: a pong keeps it, silence ends it.
    let sid = connected(addr);
    let target = format!("{POLLING}&sid={sid}");
    assert_eq!(get(addr, &target), (200, "2".into()));
    assert_eq!(post(addr, &target, b"3"), (200, "ok".into()));
    assert_eq!(get(addr, &target), (200, "2".into()));
    // No pong this time: the parked poll is answered with the close packet.
    assert_eq!(get(addr, &target), (200, "1".into()));
    assert_unknown(addr, &sid);
    // WebSocket: answered pings keep it open; then silence is closed 1001.
    let (mut ws, _) = ws_session(addr);
    for _ in 0..3 {
        assert_eq!(text_until(&mut ws, |t| t == "2"), "2");
        ws.send_frame(true, 0x1, b"3");
    }
    assert_eq!(text_until(&mut ws, |t| t == "2"), "2");
    let (code, reason) = ws.expect_close();
    assert_eq!((code, reason.as_str()), (1001, "no answer to ping"));
}

/// socket.io's `connectTimeout`: a session whose client never CONNECTs is
/// closed, over either transport, and one that did is kept.
#[test]
fn a_session_that_never_connects_is_closed_at_the_connect_timeout() {
    let server = Duplex::start(&["--sio-connect-timeout", "300ms"]);
    let addr = server.http;
    // Polling: the parked poll is answered with the close packet.
    let (sid, _) = handshake(addr);
    assert_eq!(get(addr, &format!("{POLLING}&sid={sid}")), (200, "1".into()));
    assert!(server.log().contains(&format!(
        "socket.io session {sid}: no CONNECT within 300ms; closing"
    )));
    assert_unknown(addr, &sid);
    // WebSocket: closed with the reason.
    let mut ws = RawWs::connect(addr, WEBSOCKET);
    assert!(text(&mut ws).starts_with("0{"));
    let (code, reason) = ws.expect_close();
    assert_eq!(
        (code, reason.as_str()),
        (1008, "no Socket.IO CONNECT within 300ms")
    );
    // A session that CONNECTed outlives the deadline: one opened after it
    // is closed for missing it, and it still chats.
    let (mut joined, _) = ws_session(addr);
    let mut later = RawWs::connect(addr, WEBSOCKET);
    assert!(text(&mut later).starts_with("0{"));
    assert_eq!(later.expect_close().0, 1008);
    let (mut telnet, _) = Telnet::join(server.tcp);
    telnet.say("still here");
    assert!(text_until(&mut joined, |t| t.contains("still here")).starts_with("42[\"servermessage\""));
}

/// engine.io's `upgradeTimeout`: a probe that does not finish the upgrade
/// in time is closed, the session goes on over polling, and may probe
/// again.
#[test]
fn an_upgrade_not_finished_in_time_closes_only_the_probe() {
    let server = Duplex::start(&["--sio-upgrade-timeout", "300ms"]);
    let addr = server.http;
    let sid = connected(addr);
    let mut probe = RawWs::connect(addr, &format!("{WEBSOCKET}&sid={sid}"));
    probe.send_frame(true, 0x1, b"2probe");
    assert_eq!(text(&mut probe), "3probe");
    // No `5`.
    let (code, reason) = probe.expect_close();
    assert_eq!(
        (code, reason.as_str()),
        (1008, "upgrade not finished within 300ms")
    );
    // Polling still carries the session, and owes no `6` for an upgrade
    // that is off.
    let target = format!("{POLLING}&sid={sid}");
    assert_eq!(
        post(addr, &target, br#"42["message","/echo on polling"]"#),
        (200, "ok".into())
    );
    assert_eq!(
        get(addr, &target),
        (200, r#"42["servermessage","on polling"]"#.into())
    );
    // And a second probe may finish it.
    let mut ws = RawWs::connect(addr, &format!("{WEBSOCKET}&sid={sid}"));
    ws.send_frame(true, 0x1, b"2probe");
    assert_eq!(text(&mut ws), "3probe");
    ws.send_frame(true, 0x1, b"5");
    server.wait_log("upgraded to WebSocket");
    ws.send_frame(true, 0x1, br#"42["message","/echo on websocket"]"#);
    assert!(text_until(&mut ws, |t| t.contains("on websocket")).starts_with("42[\"servermessage\""));
}

/// A polling client that stops polling has its packets queued, not held
/// without bound: past `--max-output` its session ends, and its sid is
/// unknown from then on.
#[test]
fn a_polling_client_that_stops_polling_is_ended_at_the_output_limit() {
    let server = Duplex::start(&["--max-output", "16KiB"]);
    let addr = server.http;
    let sid = connected(addr);
    let target = format!("{POLLING}&sid={sid}");
    // 40 replies of 600 bytes (24 KB) for a client that never GETs them.
    let line = "x".repeat(600);
    let packets: Vec<String> = (0..40)
        .map(|_| format!(r#"42["message","/echo {line}"]"#))
        .collect();
    assert_eq!(
        post(addr, &target, packets.join("\x1e").as_bytes()),
        (200, "ok".into())
    );
    server.wait_log(&format!("socket.io session {sid} closed: TooSlow"));
    assert_unknown(addr, &sid);
}

/// A page on another origin that the policy lets act (here a development
/// server on another loopback port) gets the CORS headers on every polling
/// answer, parked ones included, and its preflight is answered; an origin
/// the policy refuses gets 403 and no CORS header.
#[test]
fn polling_from_another_allowed_origin_gets_cors_headers() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    let page = "http://localhost:5173";
    let with_origin = |method: &str, target: &str, origin: &str, body: &[u8]| {
        let mut request = format!(
            "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nOrigin: {origin}\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        let (status, head, body) = http_request(addr, &request);
        (
            status,
            head.to_ascii_lowercase(),
            String::from_utf8_lossy(&body).into_owned(),
        )
    };
    let allowed = format!("access-control-allow-origin: {page}\r\n");
    // The handshake, the CONNECT, and the parked poll's answer.
    let (status, head, body) = with_origin("GET", POLLING, page, b"");
    assert_eq!(status, 200, "{body}");
    assert!(
        head.contains(&allowed) && head.contains("vary: origin\r\n"),
        "{head}"
    );
    let open: serde_json::Value = serde_json::from_str(&body[1..]).expect("the open packet");
    let target = format!("{POLLING}&sid={}", open["sid"].as_str().expect("a sid"));
    let (status, head, body) = with_origin("POST", &target, page, b"40");
    assert_eq!((status, body.as_str()), (200, "ok"));
    assert!(head.contains(&allowed), "{head}");
    let (status, head, body) = with_origin("GET", &target, page, b"");
    assert!(status == 200 && body.starts_with("40{"), "{body}");
    assert!(head.contains(&allowed), "{head}");
    // An error answer carries them too: the page reads why.
    let (status, head, _) = with_origin("GET", &format!("{POLLING}&sid=nobody"), page, b"");
    assert_eq!(status, 400);
    assert!(head.contains(&allowed), "{head}");
    // The preflight a POST with headers of its own is preceded by.
    let preflight = format!(
        "OPTIONS {target} HTTP/1.1\r\nHost: {addr}\r\nOrigin: {page}\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n\r\n"
    );
    let (status, head, _) = http_request(addr, preflight.as_bytes());
    let head = head.to_ascii_lowercase();
    assert_eq!(status, 204, "{head}");
    assert!(head.contains(&allowed), "{head}");
    assert!(
        head.contains("access-control-allow-methods: get, post\r\n"),
        "{head}"
    );
    // An origin the policy refuses: 403, and nothing that lets it read.
    for method in ["GET", "OPTIONS"] {
        let (status, head, body) = with_origin(method, POLLING, "https://evil.example", b"");
        assert_eq!(status, 403, "{method}: {body}");
        assert!(!head.contains("access-control-allow-origin"), "{method}: {head}");
    }
}

/// Binary events are not supported: the close says so.
#[test]
fn a_binary_event_is_refused_with_a_reason() {
    let server = Duplex::start(&[]);
    let (mut ws, _) = ws_session(server.http);
    ws.send_frame(true, 0x1, br#"451-["message",{"_placeholder":true,"num":0}]"#);
    let (code, reason) = ws.expect_close();
    assert_eq!(code, 1003, "{reason}");
    assert!(
        reason.contains("binary Socket.IO events are not supported"),
        "{reason}"
    );
}

/// Events before CONNECT close the session (SIO §"Connection to a
/// namespace": the server "MUST close the connection immediately").
#[test]
fn an_event_before_connect_ends_the_session() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    let (sid, _) = handshake(addr);
    let (status, body) = post(addr, &format!("{POLLING}&sid={sid}"), br#"42["message","hi"]"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("EVENT before CONNECT"), "{body}");
    assert_unknown(addr, &sid);
}

/// Commands work over socket.io as on every door: `/time` pushes a tick a
/// second to the sender alone, and `/quit` says goodbye and ends the
/// session (close 1000 on its WebSocket; its sid is unknown afterwards).
#[test]
fn time_and_quit_over_socketio() {
    let server = Duplex::start(&[]);
    let (mut ws, open) = ws_session(server.http);
    let sid = open["sid"].as_str().unwrap().to_string();
    ws.send_frame(true, 0x1, br#"42["message","/time"]"#);
    text_until(&mut ws, |t| t.contains("* time on"));
    // Two ticks, each an event of its own.
    for _ in 0..2 {
        let tick = text_until(&mut ws, |t| t.starts_with("42[\"servermessage\",\"* time "));
        assert!(tick.ends_with(" UTC\"]"), "{tick}");
    }
    ws.send_frame(true, 0x1, br#"42["message","/quit"]"#);
    text_until(&mut ws, |t| t.contains("* bye, guest-"));
    let (code, reason) = ws.expect_close();
    assert_eq!((code, reason.as_str()), (1000, "bye"));
    assert_unknown(server.http, &sid);
}

/// `GET /stats` and `GET /metrics` count sessions, by whichever carrier.
#[test]
fn the_counters_see_sessions_come_and_go() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    let sessions = || {
        let (status, body) = get(addr, "/stats");
        assert_eq!(status, 200, "{body}");
        let stats: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let (_, metrics) = get(addr, "/metrics");
        let gauge = metrics
            .lines()
            .find_map(|l| l.strip_prefix("duplex_socketio_sessions "))
            .unwrap_or_else(|| panic!("no gauge in {metrics}"))
            .to_string();
        (stats["socketio_sessions"].as_u64(), gauge)
    };
    assert_eq!(sessions(), (Some(0), "0".into()));
    let sid = connected(addr);
    let (ws, _) = ws_session(addr);
    assert_eq!(sessions(), (Some(2), "2".into()));
    assert_eq!(
        post(addr, &format!("{POLLING}&sid={sid}"), b"1"),
        (200, "ok".into())
    );
    drop(ws);
    server.wait_log("closed: CarrierGone");
    assert_eq!(sessions(), (Some(0), "0".into()));
}

/// socket.io's traffic is a transport of its own in `/stats` and
/// `/metrics`: its requests, bytes and lines.
#[test]
fn socketio_traffic_is_counted_as_its_own_transport() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    let socketio = || {
        let (_, body) = get(addr, "/stats");
        let stats: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        stats["transports"]["socketio"].clone()
    };
    assert_eq!(
        socketio(),
        serde_json::json!({"requests": 0, "bytes_in": 0, "bytes_out": 0, "delivered": 0})
    );
    // Polling: the handshake, the CONNECT, the poll with the welcome.
    let sid = connected(addr);
    // WebSocket: the upgrade, then a line said and echoed.
    let (mut ws, _) = ws_session(addr);
    ws.send_frame(true, 0x1, br#"42["message","counted"]"#);
    text_until(&mut ws, |t| t.contains("counted"));
    let counted = socketio();
    assert_eq!(counted["requests"], 4, "{counted}");
    let number = |key: &str| counted[key].as_u64().expect("a count");
    assert!(number("bytes_in") > 200 && number("bytes_out") > 200, "{counted}");
    // The welcome to each, and the line to both.
    assert!(number("delivered") >= 4, "{counted}");
    let (_, metrics) = get(addr, "/metrics");
    assert!(
        metrics.contains("duplex_transport_requests_total{transport=\"socketio\"} 4"),
        "{metrics}"
    );
    drop(sid);
}
