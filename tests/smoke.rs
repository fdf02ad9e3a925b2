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
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(page.contains("<html") || page.contains("<!doctype") || page.contains("<!DOCTYPE"));

    let (mut ws, response) = common::ws_connect(server.http, "/echo", &[]);
    assert_eq!(response.status(), 101);
    ws.send(Message::text("hello")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("hello"));
}
