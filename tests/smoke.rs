//! The first things a newcomer does: telnet in, open the page, echo.

mod common;

use common::{Duplex, Telnet};
use tungstenite::Message;

#[test]
fn telnet_greeting_and_echo() {
    let server = Duplex::start(&[]);
    let mut t = Telnet::connect(server.tcp);
    let greeting = t.line();
    assert!(greeting.contains(&format!("server {}", server.tcp)), "{greeting}");
    assert!(greeting.contains("your name is guest-"), "{greeting}");
    t.say("hello");
    assert!(t.line().ends_with(": hello"));
    t.send(b"/echo plain LF\n");
    assert_eq!(t.line(), "plain LF");
}

#[test]
fn page_and_websocket_echo() {
    let server = Duplex::start(&[]);
    let page = common::http_raw(
        server.http,
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    let (head, body) = page.split_once("\r\n\r\n").expect("a head and a body");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(
        common::header_value(head, "Content-Type").as_deref(),
        Some("text/html; charset=utf-8"),
        "{head}"
    );
    let length: usize = common::header_value(head, "Content-Length")
        .expect("Content-Length")
        .parse()
        .unwrap();
    assert_eq!(length, body.len(), "the whole page arrived");
    assert!(
        body.starts_with("<!doctype html>"),
        "{}",
        &body[..body.len().min(80)]
    );
    assert!(body.contains("<title>duplex"), "the page is duplex's own");

    let (mut ws, response) = common::ws_connect(server.http, "/echo", &[]);
    assert_eq!(response.status(), 101);
    ws.send(Message::text("hello")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("hello"));
}
