//! permessage-deflate (RFC 7692) over real sockets: the offers a server
//! meets, compressed echoes and broadcasts, and what a hostile client can
//! send: a deflate bomb, corrupt data, RSV1 where it does not belong.
//!
//! Compressed frames are made here with flate2 directly, not with the
//! server's own deflater, and a second implementation (Python
//! `websockets`, installed by scripts/install-python-websockets.sh) talks
//! to the server as a real client.

mod common;

use common::*;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use std::process::Command;

/// Chromium's offer, word for word.
const CHROMIUM_OFFER: &str = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

/// The answer duplex gives an ordinary offer.
const ANSWER: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// A client's raw deflate stream (RFC 7692 §7.2.1): one message, sync
/// flushed, the `00 00 ff ff` taken off. Not reset between calls, so the
/// caller decides whether it keeps its context.
fn deflate(compress: &mut Compress, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    let start = compress.total_in();
    loop {
        let used = (compress.total_in() - start) as usize;
        compress
            .compress_vec(&message[used..], &mut out, FlushCompress::Sync)
            .expect("compress");
        if (compress.total_in() - start) as usize == message.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity());
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn raw_compressor() -> Compress {
    Compress::new_with_window_bits(Compression::default(), false, 15)
}

/// Inflates a server message (§7.2.2), with its tail put back.
fn inflate(payload: &[u8]) -> Vec<u8> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut decompress = Decompress::new_with_window_bits(false, 15);
    let mut out = Vec::with_capacity(payload.len() * 20 + 1024);
    loop {
        decompress
            .decompress_vec(
                &input[decompress.total_in() as usize..],
                &mut out,
                FlushDecompress::Sync,
            )
            .expect("the server's message inflates");
        if decompress.total_in() as usize == input.len() && out.len() < out.capacity() {
            return out;
        }
        out.reserve(out.capacity());
    }
}

/// Connects to `/echo` with an offer; returns the client and the answer's
/// `Sec-WebSocket-Extensions`, if any.
fn connect(server: &Duplex, path: &str, offer: &str) -> (RawWs, Option<String>) {
    let request = upgrade_request(server.http, path, offer);
    let (ws, head) = RawWs::connect_head(server.http, &request);
    assert!(
        head.starts_with("HTTP/1.1 101 "),
        "declining is not refusing: {head}"
    );
    let extensions = header_value(&head, "Sec-WebSocket-Extensions");
    (ws, extensions)
}

/// Sends one masked frame whose first byte is given whole (FIN, RSV, opcode).
fn send_first_byte(ws: &mut RawWs, first: u8, payload: &[u8]) {
    let mut bytes = frame(true, 0, payload, Some([1, 2, 3, 4]));
    bytes[0] = first;
    ws.send_raw(&bytes);
}

/// `GET /stats`, parsed.
fn stats(server: &Duplex) -> Json {
    let request = format!(
        "GET /stats HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.http
    );
    let (status, _, body) = http_request(server.http, request.as_bytes());
    assert_eq!(status, 200);
    Json::parse(&String::from_utf8_lossy(&body)).expect("stats are JSON")
}

fn deflate_stat(server: &Duplex, name: &str) -> u64 {
    stats(server).count(&["permessage_deflate", name])
}

/// Text that compresses well, as chat and JSON do.
fn compressible(len: usize) -> Vec<u8> {
    let line = b"{\"from\":\"guest-7\",\"room\":\"lobby\",\"text\":\"hello, everyone\"}\n";
    line.iter().copied().cycle().take(len).collect()
}

#[test]
fn chromium_offer_is_accepted_and_compressed_messages_echo() {
    let server = Duplex::start(&[]);
    let (mut ws, answer) = connect(&server, "/echo", CHROMIUM_OFFER);
    assert_eq!(answer.as_deref(), Some(ANSWER));
    let mut client = raw_compressor();
    for (opcode, message) in [(0x1, compressible(4096)), (0x2, vec![7u8; 3000])] {
        let payload = deflate(&mut client, &message);
        // The client was asked not to keep its context: reset, as it must.
        client.reset();
        send_first_byte(&mut ws, 0x80 | 0x40 | opcode, &payload);
        let echo = ws.read_frame().expect("an echo");
        assert_eq!(
            (echo.fin, echo.rsv, echo.opcode),
            (true, 0b100, opcode),
            "RSV1 set"
        );
        assert!(echo.payload.len() < message.len() / 4, "{}", echo.payload.len());
        assert_eq!(inflate(&echo.payload), message);
    }
    // Below the threshold (1 KiB) the answer goes plain, even to a
    // compressed message; and a plain message is read as before.
    let payload = deflate(&mut client, b"short");
    client.reset();
    send_first_byte(&mut ws, 0x80 | 0x40 | 0x1, &payload);
    let echo = ws.read_frame().expect("an echo");
    assert_eq!((echo.rsv, echo.payload.as_slice()), (0, &b"short"[..]));
    ws.send_frame(true, 0x1, b"plain");
    let echo = ws.read_frame().expect("an echo");
    assert_eq!((echo.rsv, echo.payload.as_slice()), (0, &b"plain"[..]));
    assert_eq!(deflate_stat(&server, "negotiated"), 1);
    assert_eq!(deflate_stat(&server, "inflated"), 3);
    assert_eq!(deflate_stat(&server, "messages_compressed"), 2);
    assert!(deflate_stat(&server, "bytes_saved") > 5000);
}

#[test]
fn python_websockets_client_echoes_text_and_binary_compressed() {
    let server = Duplex::start(&[]);
    let script = r#"
import asyncio, os, sys
try:
    import websockets
except ImportError:
    sys.exit("python3-websockets is missing: run scripts/install-python-websockets.sh")
async def main(url):
    async with websockets.connect(url, open_timeout=10, close_timeout=10) as ws:
        print("extensions:", ws.response_headers.get("Sec-WebSocket-Extensions"))
        messages = ["hi", "chat line " * 500, b"\x00\x01" * 2000, os.urandom(4000)]
        for message in messages:
            await ws.send(message)
            echo = await asyncio.wait_for(ws.recv(), 10)
            assert echo == message, (type(echo), len(echo), len(message))
        print("echoed", len(messages))
asyncio.run(main(sys.argv[1]))
"#;
    let mut command = Command::new("/usr/bin/python3");
    command.args(["-c", script, &server.ws_url("/echo")]);
    let mut python = ProcessTree::spawn(command);
    let (status, stdout, stderr) = python.wait(WAIT * 3);
    assert!(
        status.is_some_and(|s| s.success()),
        "python websockets client: {status:?}\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(&format!("extensions: {ANSWER}")), "{stdout}");
    assert!(stdout.contains("echoed 4"), "{stdout}");
    // The two compressible messages came and went compressed; the
    // incompressible bytes went back plain, as deflate would have grown them.
    assert!(deflate_stat(&server, "inflated") >= 2);
    assert_eq!(deflate_stat(&server, "messages_compressed"), 2);
}

#[test]
fn a_deflate_bomb_is_closed_with_1009_and_costs_at_most_the_limit() {
    let server = Duplex::start(&[]);
    let (mut ws, answer) = connect(&server, "/echo", CHROMIUM_OFFER);
    assert_eq!(answer.as_deref(), Some(ANSWER));
    // A megabyte of zeros, then the same flush again and again: once the
    // window is all zeros every further megabyte compresses to the same
    // bytes, so 1 GiB is about a thousand copies of one short piece.
    let mut client = raw_compressor();
    let zeros = vec![0u8; 1 << 20];
    // Each flush but the last keeps its `00 00 ff ff`: that empty stored
    // block is what ends one flush's bytes on a byte boundary.
    let flush = [0, 0, 0xff, 0xff];
    let mut payload = deflate(&mut client, &zeros);
    let piece = deflate(&mut client, &zeros);
    assert_eq!(piece, deflate(&mut client, &zeros));
    for _ in 1..1024 {
        payload.extend_from_slice(&flush);
        payload.extend_from_slice(&piece);
    }
    assert!(
        payload.len() < 2 << 20,
        "{} bytes inflate to 1 GiB",
        payload.len()
    );
    let before = peak_rss_kib(server.pid());
    send_first_byte(&mut ws, 0x80 | 0x40 | 0x2, &payload);
    let (code, reason) = ws.expect_close_then_eof();
    assert_eq!(code, 1009, "{reason}");
    let grown = peak_rss_kib(server.pid()).saturating_sub(before);
    assert!(
        grown < 20 << 10,
        "the server grew by {grown} KiB inflating a bomb"
    );
    // The server is unharmed.
    let (mut ws, _) = connect(&server, "/echo", CHROMIUM_OFFER);
    ws.send_frame(true, 0x1, b"still here");
    assert_eq!(ws.read_frame().expect("an echo").payload, b"still here");
}

#[test]
fn corrupt_deflate_data_gets_1007() {
    let server = Duplex::start(&[]);
    // BTYPE 11 is reserved (RFC 1951 §3.2.3); then a stored block whose
    // length and its complement disagree.
    for payload in [&[0xff, 0xff][..], &[0x00, 0x05, 0x00, 0x00, 0x00, b'x']] {
        let (mut ws, _) = connect(&server, "/echo", CHROMIUM_OFFER);
        send_first_byte(&mut ws, 0x80 | 0x40 | 0x1, payload);
        assert_eq!(ws.expect_close_then_eof().0, 1007, "{payload:x?}");
    }
    // Text that inflates to invalid UTF-8 is 1007 too.
    let (mut ws, _) = connect(&server, "/echo", CHROMIUM_OFFER);
    let payload = deflate(&mut raw_compressor(), &[b'a', 0xff, b'b']);
    send_first_byte(&mut ws, 0x80 | 0x40 | 0x1, &payload);
    assert_eq!(ws.expect_close_then_eof().0, 1007);
}

#[test]
fn rsv1_on_a_continuation_or_control_frame_gets_1002() {
    let server = Duplex::start(&[]);
    let payload = deflate(&mut raw_compressor(), &compressible(2000));
    // RFC 7692 §6.1: RSV1 on the first frame only.
    let (mut ws, _) = connect(&server, "/echo", CHROMIUM_OFFER);
    let (first, rest) = payload.split_at(10);
    let mut bytes = frame(false, 0x40 | 0x1, first, Some([1, 2, 3, 4]));
    bytes.extend(frame(true, 0x40, rest, Some([1, 2, 3, 4])));
    ws.send_raw(&bytes);
    let (code, reason) = ws.expect_close_then_eof();
    assert_eq!(code, 1002, "{reason}");
    // Control frames are never compressed.
    for opcode in [0x9, 0xA, 0x8] {
        let (mut ws, _) = connect(&server, "/echo", CHROMIUM_OFFER);
        send_first_byte(&mut ws, 0x80 | 0x40 | opcode, b"");
        assert_eq!(ws.expect_close_then_eof().0, 1002, "opcode {opcode:#x}");
    }
    // A fragmented compressed message, RSV1 on its first frame only, is fine.
    let (mut ws, _) = connect(&server, "/echo", CHROMIUM_OFFER);
    let mut bytes = frame(false, 0x40 | 0x1, first, Some([1, 2, 3, 4]));
    bytes.extend(frame(true, 0x9, b"ping", Some([1, 2, 3, 4])));
    bytes.extend(frame(true, 0x0, rest, Some([1, 2, 3, 4])));
    ws.send_raw(&bytes);
    assert_eq!(ws.read_frame().expect("pong").opcode, 0xA);
    let echo = ws.read_frame().expect("an echo");
    assert_eq!(inflate(&echo.payload), compressible(2000));
    // Without the extension, RSV1 means nothing: 1002 as before.
    let (mut ws, answer) = connect(&server, "/echo", "");
    assert_eq!(answer, None);
    send_first_byte(&mut ws, 0x80 | 0x40 | 0x1, &payload);
    assert_eq!(ws.expect_close_then_eof().0, 1002);
}

#[test]
fn malformed_offers_are_declined_and_the_connection_carries_on() {
    let server = Duplex::start(&[]);
    let offers = [
        "permessage-deflate; foo",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits=10; client_max_window_bits=11",
        "permessage-deflate; server_max_window_bits=8",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=abc",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_no_context_takeover=yes",
        "permessage-deflate; =15",
        "permessage-deflate; server_max_window_bits=\"12",
        "permessage-deflate;;",
    ];
    for offer in offers {
        let (mut ws, answer) = connect(
            &server,
            "/echo",
            &format!("Sec-WebSocket-Extensions: {offer}\r\n"),
        );
        assert_eq!(answer, None, "{offer}");
        let message = compressible(2000);
        ws.send_frame(true, 0x1, &message);
        let echo = ws.read_frame().expect("an echo");
        assert_eq!((echo.rsv, echo.payload), (0, message), "{offer}");
    }
    assert_eq!(deflate_stat(&server, "declined"), offers.len() as u64);
    assert_eq!(deflate_stat(&server, "negotiated"), 0);
    // A declined offer before a good one: the good one is taken (§5.1).
    let (_, answer) = connect(
        &server,
        "/echo",
        "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8, permessage-deflate\r\n",
    );
    assert_eq!(answer.as_deref(), Some(ANSWER));
    // Autobahn's 13.3 offer: a 9-bit window, repeated in the answer.
    let (mut ws, answer) = connect(
        &server,
        "/echo",
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits; server_max_window_bits=9\r\n",
    );
    assert_eq!(
        answer.as_deref(),
        Some(&*format!("{ANSWER}; server_max_window_bits=9"))
    );
    let message = compressible(40_000);
    ws.send_frame(true, 0x1, &message);
    let echo = ws.read_frame().expect("an echo");
    let mut small_window = Decompress::new_with_window_bits(false, 9);
    let mut input = echo.payload.clone();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(message.len() + 1);
    small_window
        .decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .expect("a 9-bit window reads it");
    assert_eq!(out, message);
}

#[test]
fn off_declines_every_offer() {
    let server = Duplex::start(&["--permessage-deflate", "off"]);
    let (mut ws, answer) = connect(&server, "/echo", CHROMIUM_OFFER);
    assert_eq!(answer, None);
    send_first_byte(
        &mut ws,
        0x80 | 0x40 | 0x1,
        &deflate(&mut raw_compressor(), b"hello"),
    );
    assert_eq!(ws.expect_close_then_eof().0, 1002);
    assert!(!stats(&server)
        .at(&["permessage_deflate", "enabled"])
        .eq(&Json::Bool(true)));
}

#[test]
fn a_broadcast_is_compressed_once_for_every_member() {
    let server = Duplex::start(&[]);
    let mut members: Vec<RawWs> = (0..4)
        .map(|_| {
            let (ws, answer) = connect(&server, "/chat", CHROMIUM_OFFER);
            assert_eq!(answer.as_deref(), Some(ANSWER));
            ws
        })
        .collect();
    // Everyone's welcome and arrivals (short: uncompressed) are read first.
    let mut plain = RawWs::connect(server.http, "/chat");
    for ws in members.iter_mut().chain([&mut plain]) {
        ws.send_frame(true, 0x1, b"/echo ready");
        while ws.read_frame().expect("a frame").payload != b"ready" {}
    }
    let before = deflate_stat(&server, "compressions");
    let message: Vec<u8> = b"hello, everyone! ".iter().copied().cycle().take(4096).collect();
    members[0].send_frame(true, 0x1, &message);
    let mut frames = Vec::new();
    for ws in members.iter_mut() {
        let frame = ws.read_frame().expect("the broadcast");
        assert_eq!(frame.rsv, 0b100);
        frames.push(frame.payload);
    }
    // Every compressing member got the very same bytes...
    assert!(frames.windows(2).all(|w| w[0] == w[1]));
    let text = String::from_utf8(inflate(&frames[0])).expect("text");
    assert!(text.contains(std::str::from_utf8(&message).unwrap()), "{text}");
    // ...the member without the extension got it plain...
    let frame = plain.read_frame().expect("the broadcast");
    assert_eq!(frame.rsv, 0);
    assert_eq!(inflate(&frames[0]), frame.payload);
    // ...and the compressor ran once.
    assert_eq!(deflate_stat(&server, "compressions") - before, 1);
}

#[test]
fn a_client_allowed_to_keep_its_context_gets_its_own_inflater_when_it_needs_one() {
    let server = Duplex::start(&["--deflate-client-context"]);
    let (mut ws, answer) = connect(&server, "/echo", CHROMIUM_OFFER);
    assert_eq!(
        answer.as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
    ws.send_frame(true, 0x1, b"plain first");
    assert_eq!(ws.read_frame().expect("an echo").payload, b"plain first");
    assert_eq!(
        deflate_stat(&server, "own_inflaters"),
        0,
        "not made at the handshake"
    );
    // The second message refers back into the first: only an inflater that
    // kept the window reads it.
    let mut client = raw_compressor();
    let message = compressible(3000);
    for round in 0..3 {
        let payload = deflate(&mut client, &message);
        if round > 0 {
            assert!(payload.len() < 40, "round {round}: {} bytes", payload.len());
        }
        send_first_byte(&mut ws, 0x80 | 0x40 | 0x1, &payload);
        assert_eq!(inflate(&ws.read_frame().expect("an echo").payload), message);
    }
    assert_eq!(deflate_stat(&server, "own_inflaters"), 1);
    ws.send_frame(true, 0x8, &[0x03, 0xe8]);
    ws.expect_close_then_eof();
    let deadline = std::time::Instant::now() + WAIT;
    while deflate_stat(&server, "own_inflaters") != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the inflater outlived its connection"
        );
        std::thread::yield_now();
    }
    // A client that gives its context up itself is read with the shared one.
    let (_, answer) = connect(
        &server,
        "/echo",
        "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n",
    );
    assert_eq!(answer.as_deref(), Some(ANSWER));
}
