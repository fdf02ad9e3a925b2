//! `--line-echo`: the line door as a plain echo service, over real sockets.
//! Every line comes back to its sender as it came, in the client's own
//! line-end dialect, with telnet commands answered and never echoed.

mod common;

use common::{Duplex, Telnet};
use std::io::{Read, Write};
use std::net::Shutdown;

/// Reads exactly `expected.len()` bytes and compares them.
fn expect_bytes(t: &mut Telnet, expected: &[u8]) {
    let mut got = vec![0u8; expected.len()];
    t.stream.read_exact(&mut got).expect("the echo, within the wait");
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected),
        "raw: {got:?}"
    );
}

#[test]
fn no_greeting_and_every_line_end_answered_in_its_own_dialect() {
    let server = Duplex::start(&["--line-echo"]);
    let mut t = Telnet::connect(server.tcp);
    // The first bytes back are the echo: an echo service does not greet.
    t.send(b"first\n");
    expect_bytes(&mut t, b"first\n");
    // LF stays LF; CR LF, CR NUL and a lone CR all come back as the NVT's
    // CR LF (RFC 854).
    t.send(b"one\r\ntwo\nthree\rfour\r\0five\n");
    expect_bytes(&mut t, b"one\r\ntwo\nthree\r\nfour\r\nfive\n");
}

#[test]
fn telnet_commands_are_answered_and_a_literal_255_stays_escaped() {
    let server = Duplex::start(&["--line-echo"]);
    let mut t = Telnet::connect(server.tcp);
    // IAC WILL ECHO, refused with IAC DONT ECHO (RFC 854) ahead of the
    // line's echo, then an escaped 255 (IAC IAC), which must go back
    // escaped or the client would read a command.
    t.send(b"a\xFF\xFB\x01b\xFF\xFFc\r\n");
    expect_bytes(&mut t, b"\xFF\xFE\x01ab\xFF\xFFc\r\n");
}

#[test]
fn lines_split_across_writes_come_back_whole() {
    let server = Duplex::start(&["--line-echo"]);
    let mut t = Telnet::connect(server.tcp);
    t.send(b"hel");
    t.send(b"lo\r");
    expect_bytes(&mut t, b"hello\r\n");
    // The LF that completes that CR LF is not an empty line.
    t.send(b"\nnext\n");
    expect_bytes(&mut t, b"next\n");
}

#[test]
fn many_pipelined_lines_of_every_kind_come_back_in_order() {
    let server = Duplex::start(&["--line-echo"]);
    let mut t = Telnet::connect(server.tcp);
    // Lines that are their own echo mixed with lines that must be
    // rebuilt, so the runs copied whole and the rebuilt lines interleave.
    let mut sent = Vec::new();
    let mut expected = Vec::new();
    for i in 0..5000u32 {
        let text = format!("line {i} {}", "x".repeat((i % 97) as usize));
        sent.extend_from_slice(text.as_bytes());
        expected.extend_from_slice(text.as_bytes());
        match i % 7 {
            0 => {
                sent.extend_from_slice(b"\r\0");
                expected.extend_from_slice(b"\r\n");
            }
            1 => {
                sent.extend_from_slice(b"\xFF\xF1\r\n");
                expected.extend_from_slice(b"\r\n");
            }
            2 | 3 => {
                sent.extend_from_slice(b"\r\n");
                expected.extend_from_slice(b"\r\n");
            }
            _ => {
                sent.push(b'\n');
                expected.push(b'\n');
            }
        }
    }
    // Written from another thread in uneven pieces while this one reads,
    // so neither side's buffers fill up and the pieces split lines.
    let mut writer = t.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        for piece in sent.chunks(1237) {
            writer.write_all(piece).unwrap();
        }
    });
    expect_bytes(&mut t, &expected);
    sender.join().unwrap();
}

#[test]
fn an_over_long_line_gets_an_error_line_and_the_echo_goes_on() {
    let server = Duplex::start(&["--line-echo", "--max-line", "8"]);
    let mut t = Telnet::connect(server.tcp);
    t.send(b"ok\n123456789abc\nstill here\r\n");
    expect_bytes(&mut t, b"ok\n! line too long (limit 8 bytes); it was skipped\r\n");
    // "still here" is 10 bytes: refused too. A short one is echoed.
    expect_bytes(&mut t, b"! line too long (limit 8 bytes); it was skipped\r\n");
    t.send(b"short\n");
    expect_bytes(&mut t, b"short\n");
}

#[test]
fn a_last_line_without_line_end_is_echoed_before_the_close() {
    let server = Duplex::start(&["--line-echo"]);
    let mut t = Telnet::connect(server.tcp);
    t.send(b"done\nbye");
    t.stream.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    t.stream
        .read_to_end(&mut rest)
        .expect("the server closes after the echo");
    assert_eq!(rest, b"done\nbye");
}

#[test]
fn a_client_that_floods_but_never_reads_is_paused_then_closed_on_a_line_boundary() {
    let server = Duplex::start(&[
        "--line-echo",
        "--max-output",
        "64KiB",
        "--slow-reader-timeout",
        "1s",
    ]);
    let mut t = Telnet::connect(server.tcp);
    let mut writer = t.stream.try_clone().unwrap();
    writer.set_write_timeout(Some(common::WAIT)).unwrap();
    // Lines of 99 x's, written until the server gives up on this client.
    // Its echoes pile up unread, so the server stops reading (the writes
    // then block) and, a second later, closes.
    let flood = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for _ in 0..100 {
            lines.extend_from_slice(&[b'x'; 99]);
            lines.push(b'\n');
        }
        let mut sent = 0usize;
        while writer.write_all(&lines).is_ok() {
            sent += lines.len();
        }
        sent
    });
    server.wait_log("slow reader");
    let mut received = Vec::new();
    t.stream
        .read_to_end(&mut received)
        .expect("everything queued, then the goodbye, then the end of the stream");
    t.stream.shutdown(Shutdown::Both).ok();
    let sent = flood.join().unwrap();
    // What was queued but never sent is dropped whole lines at a time: the
    // goodbye follows a complete echo, never half of one.
    let text = String::from_utf8(received).unwrap();
    let (echoes, goodbye) = text
        .rsplit_once('\n')
        .map(|(a, _)| a.rsplit_once('\n').unwrap())
        .unwrap();
    assert_eq!(goodbye, "! too slow: output buffer full; goodbye\r");
    assert!(
        echoes.lines().all(|line| line == "x".repeat(99)),
        "only whole echoes before the goodbye"
    );
    assert!(
        echoes.len() < sent,
        "the server stopped echoing before the client stopped sending"
    );
}
