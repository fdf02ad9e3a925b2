//! The HTTP/1.1 rules of the web door, over real sockets: Host and request
//! targets (RFC 9112 §3), message framing (§6, §7.1), `Expect` (RFC 9110
//! §10.1.1), the 426 answer (RFC 9110 §7.8, §15.5.22), the handshake's
//! singleton fields (RFC 6455 §11.3), and which pages may post (`Origin`).
//! Each test sends raw bytes and checks the status and the headers that
//! matter, and that a refusal that must close does close.

mod common;

use common::{header_value, http_request, read_response, upgrade_request, web_connect, Duplex, RawWs, WAIT};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

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

/// One request on a fresh connection: the answer's status, head, and body
/// as text.
fn ask(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let (status, head, body) = http_request(addr, request);
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

/// The head of the answer to `request`, an event stream that never ends:
/// read up to the blank line, a byte at a time (each read bounded).
fn event_stream_head(addr: SocketAddr, request: &str) -> String {
    let mut stream = web_connect(addr);
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("the event stream's head");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// `hub.members` from `/stats`.
fn hub_members(addr: SocketAddr) -> u64 {
    let (status, _, body) = ask(addr, b"GET /stats HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(status, 200);
    let needle = "\"hub\":{\"members\":";
    let at = body.find(needle).expect("hub.members in /stats") + needle.len();
    body[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a number")
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

// ---- RFC 9112 §3.2, RFC 9110 §7.2: Host ----------------------------------------

#[test]
fn malformed_host_is_400() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    for (what, host_lines) in [
        ("two Host lines", "Host: localhost\r\nHost: localhost\r\n"),
        ("a list", "Host: localhost, 127.0.0.1\r\n"),
        ("a list without space", "Host: localhost,localhost\r\n"),
        ("userinfo", "Host: user@localhost\r\n"),
        ("port that is not a number", "Host: localhost:http\r\n"),
        ("port out of range", "Host: localhost:65536\r\n"),
        ("port with a sign", "Host: localhost:+80\r\n"),
        ("port without a host", "Host: :8080\r\n"),
        ("empty Host with an origin-form target", "Host: \r\n"),
        ("space inside", "Host: local host\r\n"),
        ("unclosed IPv6 literal", "Host: [::1\r\n"),
        ("missing", ""),
    ] {
        let request = format!("GET /healthz HTTP/1.1\r\n{host_lines}\r\n");
        let mut stream = web_connect(addr);
        stream.write_all(request.as_bytes()).unwrap();
        let (status, head, body) = read_response(&mut stream);
        assert_eq!(status, 400, "{what}: {head}");
        assert!(!body.is_empty(), "{what}: a refusal says why");
        assert_closed(&mut stream);
    }
    // Well-formed Hosts are served: an empty port is allowed by the
    // grammar (RFC 3986 §3.2.3), letter case does not matter, and an
    // IPv6 literal keeps its brackets.
    for host in ["localhost", "LOCALHOST:8080", "127.0.0.1:", "[::1]:8080", "[::1]"] {
        let request = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let (status, head, _) = ask(addr, request.as_bytes());
        assert_eq!(status, 200, "{host}: {head}");
    }
}

// ---- RFC 9112 §3.2.2-3.2.4: the other target forms ----------------------------

#[test]
fn absolute_form_targets_are_served_and_their_authority_is_checked() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    let request = format!("GET http://{addr}/healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let (status, head, body) = ask(addr, request.as_bytes());
    assert_eq!((status, body.as_str()), (200, "ok\n"), "{head}");
    // The scheme is case-insensitive, an empty path is `/`, and a query
    // reaches the handler.
    let request = format!("GET HTTP://{addr} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let (status, head, body) = ask(addr, request.as_bytes());
    assert_eq!(status, 200, "{head}");
    assert!(body.to_ascii_lowercase().contains("<html"), "the page");
    let request = format!("GET http://{addr}/poll?room=abs HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let (status, head, body) = ask(addr, request.as_bytes());
    assert_eq!(status, 200, "{head}");
    assert!(body.contains("\"room\":\"abs\""), "{body}");

    // The target's authority replaces Host, so the Host rules apply to it:
    // a remote name is refused on loopback even with a loopback Host ...
    let request = format!("GET http://evil.example/healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let (status, head, _) = ask(addr, request.as_bytes());
    assert_eq!(status, 403, "{head}");
    // ... and a malformed one is a bad request.
    for target in [
        format!("http://user@{addr}/healthz"),
        format!("http://{}:99999/healthz", addr.ip()),
        "http:///healthz".to_string(),
        "ftp://localhost/healthz".to_string(),
    ] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        let (status, head, _) = ask(addr, request.as_bytes());
        assert_eq!(status, 400, "{target}: {head}");
    }
}

#[test]
fn asterisk_form_and_authority_form() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    let (status, head, _) = ask(addr, b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(status, 200, "{head}");
    let allow = header_value(&head, "Allow").expect("OPTIONS * names the methods");
    for method in ["GET", "HEAD", "POST", "OPTIONS"] {
        assert!(allow.contains(method), "{allow}");
    }
    assert_eq!(
        header_value(&head, "Content-Length").as_deref(),
        Some("0"),
        "{head}"
    );
    // `*` is for OPTIONS only.
    let (status, head, _) = ask(addr, b"GET * HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(status, 400, "{head}");
    // CONNECT asks for a tunnel: duplex is not a proxy.
    let mut stream = web_connect(addr);
    stream
        .write_all(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        .unwrap();
    let (status, head, body) = read_response(&mut stream);
    assert_eq!(status, 501, "{head}");
    assert!(String::from_utf8_lossy(&body).contains("proxy"));
    assert_closed(&mut stream);
    // Authority-form with another method is malformed.
    let (status, head, _) = ask(addr, b"GET localhost:80 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(status, 400, "{head}");
}

// ---- RFC 9112 §3, RFC 9110 §15.5.15: 414 --------------------------------------

#[test]
fn over_long_target_is_414_before_the_head_ends() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    // The request line alone passes the 8 KiB head limit, and nothing
    // after it is sent: the answer must not wait for the rest.
    let mut stream = web_connect(addr);
    let line = format!("GET /{} HTTP/1.1", "a".repeat(9000));
    stream.write_all(line.as_bytes()).unwrap();
    let (status, head, body) = read_response(&mut stream);
    assert_eq!(status, 414, "{head}");
    assert!(String::from_utf8_lossy(&body).contains("8192"), "names the limit");
    assert!(connection_has(&head, "close"), "{head}");
    // Whole, with headers after it, it is still 414, not 431.
    let request = format!("{line}\r\nHost: localhost\r\n\r\n");
    let (status, head, _) = ask(addr, request.as_bytes());
    assert_eq!(status, 414, "{head}");
    // Long headers after a short request line are still 431.
    let request = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let (status, head, _) = ask(addr, request.as_bytes());
    assert_eq!(status, 431, "{head}");
}

// ---- RFC 9110 §10.1.1: Expect ---------------------------------------------------

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    let mut stream = web_connect(addr);
    stream
        .write_all(
            b"POST /send HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n\
Content-Length: 13\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap();
    // The client waits; the server must say go on, with nothing after it.
    let (status, head, body) = read_response(&mut stream);
    assert_eq!(status, 100, "{head}");
    assert_eq!(head, "HTTP/1.1 100 Continue\r\n\r\n");
    assert!(body.is_empty());
    stream.write_all(b"hello, world\n").unwrap();
    let (status, head, body) = read_response(&mut stream);
    assert_eq!(status, 200, "{head}");
    assert!(String::from_utf8_lossy(&body).contains("\"token\""));

    // A body the server would refuse anyway is refused at once, not
    // invited.
    let mut stream = web_connect(addr);
    stream
        .write_all(b"POST /send HTTP/1.1\r\nHost: localhost\r\nContent-Length: 999999999\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    let (status, head, _) = read_response(&mut stream);
    assert_eq!(status, 413, "{head}");

    // An expectation the server cannot meet: 417, and a close, since the
    // body may or may not follow.
    let mut stream = web_connect(addr);
    stream
        .write_all(b"POST /send HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: 100-continue, x-tea=earl-grey\r\n\r\n")
        .unwrap();
    let (status, head, _) = read_response(&mut stream);
    assert_eq!(status, 417, "{head}");
    assert_closed(&mut stream);

    // HTTP/1.0 knows no 1xx: the expectation is ignored (§10.1.1).
    let mut stream = web_connect(addr);
    stream
        .write_all(b"POST /send HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nhi\n")
        .unwrap();
    let (status, head, _) = read_response(&mut stream);
    assert_eq!(status, 200, "{head}");
}

// ---- RFC 9112 §6: framing ---------------------------------------------------------

#[test]
fn transfer_codings_other_than_a_final_chunked_are_400_and_close() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    for (what, framing, expected) in [
        ("gzip", "Transfer-Encoding: gzip\r\n", 400),
        ("identity", "Transfer-Encoding: identity\r\n", 400),
        ("chunked, gzip", "Transfer-Encoding: chunked, gzip\r\n", 400),
        (
            "chunked twice",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            400,
        ),
        (
            "both lengths (request smuggling)",
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            400,
        ),
        (
            "a coding duplex does not know",
            "Transfer-Encoding: gzip, chunked\r\n",
            501,
        ),
    ] {
        let request =
            format!("POST /send HTTP/1.1\r\nHost: localhost\r\n{framing}\r\n5\r\nhello\r\n0\r\n\r\n");
        let mut stream = web_connect(addr);
        stream.write_all(request.as_bytes()).unwrap();
        let (status, head, body) = read_response(&mut stream);
        assert_eq!(status, expected, "{what}: {head}");
        assert!(!body.is_empty(), "{what}: says why");
        assert!(connection_has(&head, "close"), "{what}: {head}");
        assert_closed(&mut stream);
    }
    assert_eq!(hub_members(addr), 0, "no refused request made a member");
}

#[test]
fn chunked_post_send_is_read() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    // A member that listens, and its token.
    let (status, _, body) = ask(addr, b"GET /poll HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(status, 200);
    let token = body
        .split("\"token\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a token")
        .to_string();
    // What `curl -T -` sends: chunks as the input arrives, one with an
    // extension, then an empty trailer section. Sent in pieces, so the
    // reader meets every boundary mid-read.
    let mut stream = web_connect(addr);
    let head = format!(
        "POST /send?token={token} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\
Content-Type: text/plain\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    for piece in [
        &b"7\r\nhello,"[..],
        b" \r\n",
        b"C;note=x\r\nchunked ",
        b"word\r\n",
        b"0\r\nX-Checksum: 1\r\n\r\n",
    ] {
        stream.write_all(piece).unwrap();
        stream.flush().unwrap();
    }
    let (status, head, _) = read_response(&mut stream);
    assert_eq!(status, 200, "{head}");
    // The line reached the room, and the connection still serves.
    let poll = format!("GET /poll?token={token}&since=0 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(poll.as_bytes()).unwrap();
    let (_, _, body) = read_response(&mut stream);
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("hello, chunked word"), "{body}");

    // A chunk that outgrows the body limit is refused on its size line,
    // before its data.
    let server = Duplex::start(&["--max-body", "16"]);
    let mut stream = web_connect(server.http);
    stream
        .write_all(b"POST /send HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n")
        .unwrap();
    let (status, head, _) = read_response(&mut stream);
    assert_eq!(status, 413, "{head}");
    // A size that is not hex is malformed.
    let mut stream = web_connect(server.http);
    stream
        .write_all(b"POST /send HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        .unwrap();
    let (status, head, _) = read_response(&mut stream);
    assert_eq!(status, 400, "{head}");
    assert_closed(&mut stream);
}

// ---- Origin: which pages may act ---------------------------------------------

#[test]
fn a_form_post_from_origin_null_is_403_and_makes_no_member() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    // A sandboxed iframe on any site sends `Origin: null`, and a text/plain
    // form needs no CORS preflight.
    let form = b"POST /send HTTP/1.1\r\nHost: localhost\r\nOrigin: null\r\n\
Content-Type: text/plain\r\nContent-Length: 18\r\n\r\n/nick pwned\nhello\n";
    let mut stream = web_connect(addr);
    stream.write_all(form).unwrap();
    let (status, head, body) = read_response(&mut stream);
    assert_eq!(status, 403, "{head}");
    assert!(String::from_utf8_lossy(&body).contains("--allow-origin null"));
    assert_eq!(hub_members(addr), 0, "the refused post made no member");

    // A WebSocket from a page opened from disk still opens.
    let mut ws = RawWs::connect_with(addr, &upgrade_request(addr, "/echo", "Origin: null\r\n"));
    ws.send_frame(true, 0x1, b"from a file");
    assert_eq!(ws.read_frame().expect("the echo").payload, b"from a file");

    // Asked for, `null` may post.
    let server = Duplex::start(&["--allow-origin", "null"]);
    let (status, head, _) = ask(server.http, form);
    assert_eq!(status, 200, "{head}");
    assert_eq!(hub_members(server.http), 1);
}

/// A GET that makes a member acts too. A page on another site reaches it
/// two ways: a script's fetch, which carries its `Origin`, and a plain
/// `<img src>`, which carries none but is marked
/// `Sec-Fetch-Site: cross-site` by the browser. Each is refused with 403
/// on every path that makes a member, and none is made; the page's own
/// requests and clients that are not browsers still join.
#[test]
fn a_page_on_another_site_may_not_make_a_member_by_get() {
    let server = Duplex::start(&[]);
    let addr = server.http;
    for path in ["/poll", "/longpoll", "/events"] {
        for (how, header) in [
            ("a fetch from another site", "Origin: http://evil.example\r\n"),
            ("an <img> on another site", "Sec-Fetch-Site: cross-site\r\n"),
        ] {
            let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{header}\r\n");
            let (status, head, body) = ask(addr, request.as_bytes());
            assert_eq!(status, 403, "{how} to {path}: {head}");
            assert!(body.contains("may not"), "{how} to {path}: {body}");
        }
    }
    assert_eq!(hub_members(addr), 0, "no refused GET made a member");

    // The page's own poll (same-origin: no Origin, `same-origin`) joins.
    let own = b"GET /poll HTTP/1.1\r\nHost: localhost\r\nSec-Fetch-Site: same-origin\r\n\r\n";
    let (status, head, _) = ask(addr, own);
    assert_eq!(status, 200, "{head}");
    // So does curl, which sends neither header.
    let (status, head, _) = ask(addr, b"GET /poll HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(status, 200, "{head}");
    assert_eq!(hub_members(addr), 2);

    // `--allow-origin '*'` lets every page in, as it says.
    let server = Duplex::start(&["--allow-origin", "*"]);
    let request = b"GET /poll HTTP/1.1\r\nHost: localhost\r\nSec-Fetch-Site: cross-site\r\n\r\n";
    let (status, head, _) = ask(server.http, request);
    assert_eq!(status, 200, "{head}");
}

/// A page on another origin that the policy lets act (a development server
/// on another loopback port, here) must be able to read what it is
/// answered, or it could send and never read: every HTTP transport names
/// its origin in `Access-Control-Allow-Origin` (Fetch §3.2), the parked
/// long poll's answer and the event stream's head included. An origin the
/// policy refuses is named nowhere.
#[test]
fn a_page_on_another_allowed_origin_may_read_every_http_transport() {
    let server = Duplex::start(&["--longpoll-timeout", "300ms"]);
    let addr = server.http;
    let page = "http://localhost:5173";
    let allowed = format!("access-control-allow-origin: {page}\r\n");
    let from_page = |request: String| {
        let (status, head, body) = ask(addr, request.as_bytes());
        (status, head.to_ascii_lowercase(), body)
    };
    let (status, head, body) = from_page(format!(
        "GET /poll HTTP/1.1\r\nHost: localhost\r\nOrigin: {page}\r\n\r\n"
    ));
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains(&allowed) && head.contains("vary: origin\r\n"),
        "{head}"
    );
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let token = json["token"].as_str().expect("a token").to_string();
    let next = json["next"].as_u64().expect("a position");
    // A long poll with nothing new is parked, and answered at its timeout.
    let (status, head, body) = from_page(format!(
        "GET /longpoll?token={token}&since={next} HTTP/1.1\r\nHost: localhost\r\nOrigin: {page}\r\n\r\n"
    ));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"messages\":[]"), "{body}");
    assert!(head.contains(&allowed), "{head}");
    let (status, head, _) = from_page(format!(
        "POST /send?token={token} HTTP/1.1\r\nHost: localhost\r\nOrigin: {page}\r\nContent-Length: 5\r\n\r\nhello"
    ));
    assert_eq!(status, 200, "{head}");
    assert!(head.contains(&allowed), "{head}");
    // The event stream's head.
    let request = format!("GET /events HTTP/1.1\r\nHost: localhost\r\nOrigin: {page}\r\n\r\n");
    let head = event_stream_head(addr, &request).to_ascii_lowercase();
    assert!(
        head.starts_with("http/1.1 200 ") && head.contains(&allowed),
        "{head}"
    );
    // A page the policy refuses is refused, and never named.
    let (status, head, _) =
        from_page("GET /poll HTTP/1.1\r\nHost: localhost\r\nOrigin: http://evil.example\r\n\r\n".into());
    assert_eq!(status, 403);
    assert!(!head.contains("access-control-allow-origin"), "{head}");
    // Nor is anyone when no Origin came: the page's own requests and curl.
    let (_, head, _) = from_page("GET /poll HTTP/1.1\r\nHost: localhost\r\n\r\n".into());
    assert!(!head.contains("access-control-allow-origin"), "{head}");
}

/// RFC 9110 §6.6.1: "An origin server with a clock MUST generate a Date
/// header field in all 2xx (Successful), 3xx (Redirection), and 4xx
/// (Client Error) responses". Each kind of answer the web door makes
/// carries one, an IMF-fixdate within a few seconds of now.
#[test]
fn every_answer_carries_a_date() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/classic");
    let server = Duplex::start(&["--static", folder.to_str().expect("a UTF-8 path")]);
    let addr = server.http;
    let asks: [(&str, u16); 6] = [
        ("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n", 200),
        ("GET /1.html HTTP/1.1\r\nHost: localhost\r\n\r\n", 200),
        ("GET /poll HTTP/1.1\r\nHost: localhost\r\n\r\n", 200),
        ("GET /nothing-here HTTP/1.1\r\nHost: localhost\r\n\r\n", 404),
        (
            "GET /poll HTTP/1.1\r\nHost: localhost\r\nOrigin: http://evil.example\r\n\r\n",
            403,
        ),
        ("GET / HTTP/1.1\r\n\r\n", 400),
    ];
    let mut heads: Vec<(String, String)> = asks
        .iter()
        .map(|(request, want)| {
            let (status, head, _) = ask(addr, request.as_bytes());
            assert_eq!(status, *want, "{request}: {head}");
            (request.to_string(), head)
        })
        .collect();
    // The event stream's head, written apart from the others.
    let head = event_stream_head(addr, "GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n");
    heads.push(("GET /events".into(), head));
    for (request, head) in heads {
        let date = header_value(&head, "date").unwrap_or_else(|| panic!("no Date: {request}: {head}"));
        let at = duplex::http::date::parse(date.as_bytes())
            .unwrap_or_else(|| panic!("not an HTTP date: {date:?}"));
        assert_eq!(duplex::http::date::format(at), date, "not an IMF-fixdate");
        let off = match at.duration_since(std::time::SystemTime::now()) {
            Ok(ahead) => ahead,
            Err(behind) => behind.duration(),
        };
        assert!(off < WAIT, "{request}: Date {date} is {off:?} from now");
    }
}

// ---- A body invited and never sent ----------------------------------------------

#[test]
fn a_stalled_expect_body_still_times_out() {
    // An invited body that never comes is the slowloris case again: the
    // request deadline still ends it.
    let server = Duplex::start(&["--handshake-timeout", "1s"]);
    let mut stream = web_connect(server.http);
    stream
        .write_all(
            b"POST /send HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap();
    let started = Instant::now();
    let (status, _, _) = read_response(&mut stream);
    assert_eq!(status, 100);
    let (status, head, _) = read_response(&mut stream);
    assert_eq!(status, 408, "{head}");
    assert!(started.elapsed() < WAIT);
}
