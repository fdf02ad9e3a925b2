//! The HTTP/1.1 rules of the web door, over real sockets: Host and request
//! targets (RFC 9112 §3), message framing (§6, §7.1), `Expect` (RFC 9110
//! §10.1.1), the 426 answer (RFC 9110 §7.8, §15.5.22), the handshake's
//! singleton fields (RFC 6455 §11.3), and which pages may post (`Origin`).
//! Each test sends raw bytes and checks the status and the headers that
//! matter, and that a refusal that must close does close.

mod common;

use common::{header_value, read_response, upgrade_request, web_connect, Duplex, RawWs};
use std::io::{Read, Write};
use std::net::TcpStream;

/// Does a `Connection` header hold `token` (RFC 9110 §7.6.1: a list of
/// case-insensitive options)?
fn connection_has(head: &str, token: &str) -> bool {
    header_value(head, "Connection").is_some_and(|v| duplex::http::has_token(v.as_bytes(), token))
}

/// Asserts the server closes the connection: the next read is the end of
/// the stream (or a reset), within the harness's bounded wait.
fn assert_closed(stream: &mut TcpStream) {
    let mut rest = Vec::new();
    let result = stream.read_to_end(&mut rest);
    assert!(
        result.is_ok() || matches!(&result, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "the server kept the connection open: {result:?}"
    );
    assert!(
        rest.is_empty(),
        "bytes after the refusal: {:?}",
        String::from_utf8_lossy(&rest)
    );
}

// ---- RFC 6455 §11.3: fields that must not repeat ----------------------------

#[test]
fn repeated_sec_websocket_key_or_version_is_400() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    for (what, extra) in [
        ("key", "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"),
        (
            "same key twice",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        ),
        ("version", "Sec-WebSocket-Version: 13\r\n"),
    ] {
        let mut stream = web_connect(addr);
        stream.write_all(&upgrade_request(addr, "/echo", extra)).unwrap();
        let (status, head, body) = read_response(&mut stream);
        assert_eq!(status, 400, "{what}: {head}");
        assert!(
            String::from_utf8_lossy(&body).contains("more than once"),
            "{what}: {}",
            String::from_utf8_lossy(&body)
        );
        assert!(connection_has(&head, "close"), "{what}: {head}");
        assert_closed(&mut stream);
    }
    // The standard handshake still opens.
    RawWs::connect(addr, "/echo");
}

// ---- RFC 9110 §7.8: a 426 names its Upgrade in Connection ------------------

#[test]
fn every_426_carries_connection_upgrade() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    // A plain GET on a WebSocket endpoint: kept alive, so only `Upgrade`.
    let mut stream = web_connect(addr);
    stream
        .write_all(b"GET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let (status, head, _) = read_response(&mut stream);
    assert_eq!(status, 426, "{head}");
    assert_eq!(
        header_value(&head, "Upgrade").as_deref(),
        Some("websocket"),
        "{head}"
    );
    assert!(connection_has(&head, "upgrade"), "{head}");
    assert!(!connection_has(&head, "close"), "{head}");
    assert_eq!(
        head.matches("Connection:").count(),
        1,
        "one Connection line: {head}"
    );
    // The same connection still serves.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut stream).0, 200);

    // A version other than 13: refused and closed, so both options.
    let version8 = String::from_utf8(upgrade_request(addr, "/echo", ""))
        .unwrap()
        .replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8");
    let mut stream = web_connect(addr);
    stream.write_all(version8.as_bytes()).unwrap();
    let (status, head, _) = read_response(&mut stream);
    assert_eq!(status, 426, "{head}");
    assert_eq!(
        header_value(&head, "Upgrade").as_deref(),
        Some("websocket"),
        "{head}"
    );
    assert_eq!(
        header_value(&head, "Sec-WebSocket-Version").as_deref(),
        Some("13"),
        "{head}"
    );
    assert!(connection_has(&head, "upgrade"), "{head}");
    assert!(connection_has(&head, "close"), "{head}");
    assert_eq!(
        head.matches("Connection:").count(),
        1,
        "one Connection line: {head}"
    );
    assert_closed(&mut stream);
}
