//! `--trust-proxy`: whose `X-Forwarded-For` is believed, over real
//! sockets. The test's connections all come from 127.0.0.1, so "a
//! trusted proxy" is a server started with `--trust-proxy 127.0.0.1`, and
//! "a stranger" one that trusts some other network.
//!
//! What must show the client a trusted proxy names: the greeting (over
//! WebSocket and over plain HTTP), the log lines, and `GET /stats`.

mod common;

use common::{http_request, upgrade_request, Duplex, Json, RawWs};
use std::net::SocketAddr;

/// `GET /stats` with these extra header lines, parsed.
fn stats(addr: SocketAddr, extra: &str) -> Json {
    let request = format!("GET /stats HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n");
    let (status, head, body) = http_request(addr, request.as_bytes());
    assert_eq!(status, 200, "{head}");
    let text = String::from_utf8(body).expect("UTF-8 JSON");
    Json::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The greeting a `/chat` WebSocket gets when its upgrade carries `extra`.
fn chat_greeting(addr: SocketAddr, extra: &str) -> (String, SocketAddr) {
    let mut ws = RawWs::connect_with(addr, &upgrade_request(addr, "/chat", extra));
    let local = ws.stream.local_addr().expect("local address");
    let frame = ws.read_frame().expect("a greeting frame");
    let text = String::from_utf8(frame.payload).expect("text");
    assert!(text.starts_with("* welcome to duplex"), "{text}");
    (text, local)
}

#[test]
fn a_trusted_proxy_names_the_client_in_the_greeting_the_logs_and_stats() {
    let server = Duplex::start(&["--trust-proxy", "127.0.0.1"]);
    // nginx's $proxy_add_x_forwarded_for: what the client claimed, then
    // the address nginx saw.
    let xff = "X-Forwarded-For: 10.6.6.6, 203.0.113.7\r\n";

    let (greeting, local) = chat_greeting(server.http, xff);
    assert!(
        greeting.contains(&format!("you are 203.0.113.7 via {local}")),
        "{greeting}"
    );
    assert!(
        !greeting.contains("10.6.6.6"),
        "the client's own claim is not believed: {greeting}"
    );

    // Over plain HTTP: a poller's welcome is its first line.
    let request = format!(
        "GET /poll HTTP/1.1\r\nHost: {}\r\n{xff}Connection: close\r\n\r\n",
        server.http
    );
    let (status, _, body) = http_request(server.http, request.as_bytes());
    assert_eq!(status, 200);
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("you are 203.0.113.7 via 127.0.0.1:"), "{body}");

    let json = stats(server.http, xff);
    assert_eq!(json.str(&["client"]), "203.0.113.7");
    assert_eq!(json.count(&["forwarded", "trusted"]), 3, "chat, poll, stats");
    assert_eq!(json.count(&["forwarded", "ignored"]), 0);
    assert_eq!(json.count(&["forwarded", "malformed"]), 0);

    // The log names the client, and the proxy connection it came over.
    server.wait_log(&format!("203.0.113.7 via {local}: GET /chat HTTP/1.1"));

    // Without the header the proxy is all there is to show.
    let json = stats(server.http, "");
    assert_eq!(json.str(&["client"]), "127.0.0.1");
    assert_eq!(json.count(&["forwarded", "trusted"]), 3);
}

#[test]
fn a_header_from_a_peer_that_is_not_trusted_is_ignored() {
    // Trusts a network the test is not in: 127.0.0.1 is a stranger.
    let server = Duplex::start(&["--trust-proxy", "10.0.0.0/8"]);
    let spoof = "X-Forwarded-For: 203.0.113.7\r\n";
    let (greeting, local) = chat_greeting(server.http, spoof);
    assert!(greeting.contains(&format!("you are {local},")), "{greeting}");
    assert!(!greeting.contains("203.0.113.7"), "{greeting}");
    let json = stats(server.http, spoof);
    assert_eq!(json.str(&["client"]), "127.0.0.1");
    assert_eq!(json.count(&["forwarded", "ignored"]), 2);
    assert_eq!(json.count(&["forwarded", "trusted"]), 0);
    assert!(!server.log().contains("203.0.113.7"), "{}", server.log());
}

#[test]
fn by_default_no_proxy_is_trusted() {
    let server = Duplex::start(&[]);
    let spoof = "X-Forwarded-For: 203.0.113.7\r\n";
    let (greeting, local) = chat_greeting(server.http, spoof);
    assert!(greeting.contains(&format!("you are {local},")), "{greeting}");
    let json = stats(server.http, spoof);
    assert_eq!(json.str(&["client"]), "127.0.0.1");
    assert_eq!(json.count(&["forwarded", "ignored"]), 2);
}

#[test]
fn a_malformed_entry_is_logged_and_never_believed() {
    let server = Duplex::start(&["--trust-proxy", "127.0.0.1"]);
    // The entry nginx would have added is garbage: the walk stops there,
    // and the address left of it, whoever wrote it, is not read.
    let bad = "X-Forwarded-For: 203.0.113.7, not-an-address\r\n";
    let (greeting, local) = chat_greeting(server.http, bad);
    assert!(
        greeting.contains(&format!("you are 127.0.0.1 via {local},")),
        "{greeting}"
    );
    let json = stats(server.http, bad);
    assert_eq!(json.str(&["client"]), "127.0.0.1");
    assert_eq!(json.count(&["forwarded", "malformed"]), 2);
    server.wait_log(
        "X-Forwarded-For entry \"not-an-address\" is not an address; the client is taken to be 127.0.0.1",
    );
    assert!(!server.log().contains("203.0.113.7"), "{}", server.log());
    // Every other request still works as before.
    let json = stats(server.http, "X-Forwarded-For: [2001:db8::1]:4711\r\n");
    assert_eq!(json.str(&["client"]), "2001:db8::1");
}

#[test]
fn a_bad_trust_proxy_is_refused_at_start_with_what_would_work() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_duplex"))
        .args(["--trust-proxy", "127.0.0.1:8080"])
        .output()
        .expect("run duplex");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without a port (127.0.0.1)"), "{err}");
}

#[test]
fn the_startup_line_names_the_trusted_proxies() {
    let server = Duplex::start(&["--trust-proxy", "127.0.0.1", "--trust-proxy", "fd00::/8"]);
    assert!(
        server.listening.ends_with(" trust-proxy=127.0.0.1,fd00::/8"),
        "{}",
        server.listening
    );
    let plain = Duplex::start(&[]);
    assert!(!plain.listening.contains("trust-proxy"), "{}", plain.listening);
}
