//! The chat over short polling, long polling, server-sent events and
//! WebSocket, side by side, over real sockets.

mod common;

use common::{json_field as field, read_response, Duplex, Telnet, WAIT};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Instant;
use tungstenite::Message;

/// A keep-alive HTTP client for the polling transports.
struct Poller {
    stream: TcpStream,
    host: String,
    token: Option<String>,
    next: u64,
    seen: Vec<String>,
}

impl Poller {
    fn new(server: &Duplex) -> Poller {
        let stream = TcpStream::connect(server.http).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        Poller {
            stream,
            host: server.http.to_string(),
            token: None,
            next: 0,
            seen: Vec::new(),
        }
    }

    fn query(&self) -> String {
        let token = self
            .token
            .as_ref()
            .map_or(String::new(), |t| format!("&token={t}"));
        format!("room=lobby&since={}{token}", self.next)
    }

    /// One poll; returns the JSON body.
    fn get(&mut self, path: &str) -> String {
        let request = format!(
            "GET {path}?{} HTTP/1.1\r\nHost: {}\r\n\r\n",
            self.query(),
            self.host
        );
        self.stream.write_all(request.as_bytes()).unwrap();
        let (status, _, body) = read_response(&mut self.stream);
        assert_eq!(status, 200);
        let body = String::from_utf8(body).unwrap();
        self.token = Some(field(&body, "token"));
        self.next = field(&body, "next").parse().unwrap();
        self.seen.extend(texts(&body));
        body
    }

    fn send(&mut self, line: &str) -> (u16, String) {
        let token = self.token.clone().expect("a token from an earlier poll");
        let request = format!(
            "POST /send?token={token} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n{line}",
            self.host,
            line.len()
        );
        self.stream.write_all(request.as_bytes()).unwrap();
        let (status, _, body) = read_response(&mut self.stream);
        (status, String::from_utf8(body).unwrap())
    }
}

/// The `text` of each message in a poll answer.
fn texts(json: &str) -> Vec<String> {
    json.split("\"text\":\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .collect()
}

/// Reads SSE lines until a `data:` line satisfies `pred`.
fn sse_until(reader: &mut BufReader<TcpStream>, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "event never came");
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "event stream closed");
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            if pred(data) {
                return data.to_string();
            }
        }
    }
}

fn open_event_stream(server: &Duplex, extra: &str) -> BufReader<TcpStream> {
    let mut stream = TcpStream::connect(server.http).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "GET /events?room=lobby HTTP/1.1\r\nHost: {}\r\n{extra}\r\n",
        server.http
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    reader
}

#[test]
fn every_transport_sees_the_same_lines_in_the_same_order() {
    let server = Duplex::start(&[]);
    let (mut ws, _) = common::ws_connect(server.http, "/chat", &[]);
    let mut sse = open_event_stream(&server, "");
    sse_until(&mut sse, |d| d.contains("\"token\""));
    let mut long = Poller::new(&server);
    long.get("/poll");
    let mut short = Poller::new(&server);
    short.get("/poll");
    let (mut telnet, name) = Telnet::join(server.tcp);

    let lines: Vec<String> = (0..30).map(|i| format!("line {i}")).collect();
    let expected: Vec<String> = lines.iter().map(|l| format!("[lobby] {name}: {l}")).collect();
    for (i, line) in lines.iter().enumerate() {
        telnet.say(line);
        // Some lines land between two short polls, some while a long poll
        // is parked, some while nobody polls at all.
        if i % 7 == 0 {
            short.get("/poll");
        }
    }

    let mine = |all: &[String]| -> Vec<String> {
        all.iter()
            .filter(|t| t.starts_with(&format!("[lobby] {name}: ")))
            .cloned()
            .collect()
    };
    let deadline = Instant::now() + WAIT;
    while mine(&long.seen).len() < lines.len() {
        assert!(
            Instant::now() < deadline,
            "long poll missed lines: {:?}",
            long.seen
        );
        long.get("/longpoll");
    }
    while mine(&short.seen).len() < lines.len() {
        assert!(
            Instant::now() < deadline,
            "short poll missed lines: {:?}",
            short.seen
        );
        short.get("/poll");
    }
    let mut over_sse = Vec::new();
    while over_sse.len() < lines.len() {
        over_sse.push(sse_until(&mut sse, |d| {
            d.starts_with(&format!("[lobby] {name}: "))
        }));
    }
    let mut over_ws = Vec::new();
    while over_ws.len() < lines.len() {
        if let Message::Text(text) = ws.read().unwrap() {
            if text.starts_with(&format!("[lobby] {name}: ")) {
                over_ws.push(text.to_string());
            }
        }
    }
    let mut over_telnet = Vec::new();
    while over_telnet.len() < lines.len() {
        let line = telnet.line();
        if line.starts_with(&format!("[lobby] {name}: ")) {
            over_telnet.push(line);
        }
    }
    assert_eq!(mine(&long.seen), expected, "long poll");
    assert_eq!(mine(&short.seen), expected, "short poll");
    assert_eq!(over_sse, expected, "server-sent events");
    assert_eq!(over_ws, expected, "WebSocket");
    assert_eq!(over_telnet, expected, "telnet");
}

#[test]
fn a_parked_long_poll_is_answered_when_a_line_arrives() {
    let server = Duplex::start(&[]);
    let (mut telnet, name) = Telnet::join(server.tcp);
    let mut poller = Poller::new(&server);
    poller.get("/poll");
    let request = format!(
        "GET /longpoll?{} HTTP/1.1\r\nHost: {}\r\n\r\n",
        poller.query(),
        poller.host
    );
    poller.stream.write_all(request.as_bytes()).unwrap();
    // The poll is parked once the server knows of one waiting member.
    server.wait_log("GET /longpoll");
    let sent = Instant::now();
    telnet.say("wake up");
    let (status, _, body) = read_response(&mut poller.stream);
    let waited = sent.elapsed();
    assert_eq!(status, 200);
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains(&format!("[lobby] {name}: wake up")), "{body}");
    // Event-driven: far sooner than the 25 s timeout.
    assert!(
        waited < std::time::Duration::from_secs(5),
        "answered after {waited:?}"
    );
}

#[test]
fn an_idle_long_poll_times_out_empty_and_later_requests_wait_their_turn() {
    let server = Duplex::start(&["--longpoll-timeout", "300ms"]);
    let mut poller = Poller::new(&server);
    poller.get("/poll");
    // A long poll and a pipelined /healthz behind it: answered in order.
    let request = format!(
        "GET /longpoll?{} HTTP/1.1\r\nHost: {h}\r\n\r\nGET /healthz HTTP/1.1\r\nHost: {h}\r\n\r\n",
        poller.query(),
        h = poller.host
    );
    poller.stream.write_all(request.as_bytes()).unwrap();
    let (status, _, body) = read_response(&mut poller.stream);
    assert_eq!(status, 200);
    assert!(String::from_utf8(body).unwrap().contains("\"messages\":[]"));
    let (status, _, body) = read_response(&mut poller.stream);
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
}

#[test]
fn send_runs_commands_and_answers_them() {
    let server = Duplex::start(&[]);
    let mut poller = Poller::new(&server);
    poller.get("/poll");
    let (status, body) = poller.send("/nick httpuser");
    assert_eq!(status, 200);
    assert_eq!(field(&body, "name"), "httpuser");
    let (_, body) = poller.send("/join dev");
    assert!(body.contains("* you joined dev"), "{body}");
    assert_eq!(field(&body, "room"), "dev");
    let (_, body) = poller.send("/who");
    assert!(body.contains("* members of dev: httpuser"), "{body}");
    let (_, body) = poller.send("/time");
    assert!(body.contains("! /time"), "{body}");
    // An unknown token is refused, clearly.
    let answer = common::http_raw(
        server.http,
        format!(
            "GET /poll?token=nope HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            server.http
        )
        .as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 410 "), "{answer}");
    // A body over the limit is refused before it is read.
    let answer = common::http_raw(
        server.http,
        format!(
            "POST /send HTTP/1.1\r\nHost: {}\r\nContent-Length: 100000\r\n\r\n",
            server.http
        )
        .as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
}

#[test]
fn http_members_are_announced_and_leave_when_they_stop_polling() {
    let server = Duplex::start(&["--http-member-timeout", "1s"]);
    let (mut telnet, _) = Telnet::join(server.tcp);
    let mut poller = Poller::new(&server);
    poller.get("/poll");
    let joined = telnet.until(|l| l.ends_with("joined lobby"));
    let name = joined
        .trim_start_matches("* ")
        .trim_end_matches(" joined lobby")
        .to_string();
    // It stops polling: after the timeout it is gone, announced once.
    telnet.until(|l| l == format!("* {name} disconnected"));
}

#[test]
fn event_stream_resumes_after_last_event_id() {
    let server = Duplex::start(&[]);
    let (mut telnet, name) = Telnet::join(server.tcp);
    for i in 0..5 {
        telnet.say(&format!("m{i}"));
        telnet.until(|l| l.ends_with(&format!(": m{i}")));
    }
    // A new member's stream starts at its own arrival, not with old lines.
    // A full replay would start with line 1, the telnet user's arrival,
    // which has the same shape: so the name must be this member's own.
    let mut sse = open_event_stream(&server, "");
    let first_name = sse_name(&mut sse);
    let first = sse_until(&mut sse, |d| !d.starts_with('{'));
    assert_eq!(first, format!("* {first_name} joined lobby"));
    // Lines so far: 1 the telnet user's arrival, 2-6 m0-m4, 7 that
    // stream's member. A stream that says it saw line 4 resumes with line
    // 5, m3, and goes on in order from there, to its own arrival, 8.
    let mut sse = open_event_stream(&server, "Last-Event-ID: 4\r\n");
    let second_name = sse_name(&mut sse);
    let resumed: Vec<String> = (0..4)
        .map(|_| sse_until(&mut sse, |d| !d.starts_with('{')))
        .collect();
    assert_eq!(
        resumed,
        [
            format!("[lobby] {name}: m3"),
            format!("[lobby] {name}: m4"),
            format!("* {first_name} joined lobby"),
            format!("* {second_name} joined lobby"),
        ]
    );
}

/// The name in an event stream's welcome (`your name is guest-7,`).
fn sse_name(sse: &mut BufReader<TcpStream>) -> String {
    let welcome = sse_until(sse, |d| d.starts_with("* welcome"));
    welcome
        .split("your name is ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("the welcome names the member: {welcome:?}"))
        .to_string()
}
