//! `/loop`: the WebSocket endpoint that feeds the page's loop and
//! connection panels. A tungstenite client watches while a telnet client
//! connects, talks and leaves; every update must parse, show that traffic
//! with the right token, leave the observer's own traffic out, and come at
//! most `--loop-rate` times a second.

mod common;

use common::{http_request, ws_connect, Duplex, Json, Telnet, WAIT};
use std::net::TcpStream;
use std::time::Instant;
use tungstenite::{Message, WebSocket};

/// Reads updates until one satisfies `pred`; returns it.
fn update_until(ws: &mut WebSocket<TcpStream>, what: &str, mut pred: impl FnMut(&Json) -> bool) -> Json {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no update showed {what}");
        match ws.read().expect("read an update") {
            Message::Text(text) => {
                let update = Json::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
                assert_eq!(update.str(&["type"]), "loop");
                if pred(&update) {
                    return update;
                }
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn items<'a>(json: &'a Json, key: &str) -> &'a [Json] {
    match json.at(&[key]) {
        Json::Array(items) => items,
        other => panic!("{key} is not an array: {other:?}"),
    }
}

fn num(json: &Json, key: &str) -> u64 {
    json.count(&[key])
}

/// The table's row for `token`, if listed.
fn row(update: &Json, token: u64) -> Option<&Json> {
    items(update, "conns").iter().find(|c| num(c, "t") == token)
}

/// The observer's own token, as the table marks it.
fn own_token(update: &Json) -> u64 {
    let own: Vec<u64> = items(update, "conns")
        .iter()
        .filter(|c| c.at(&["observer"]) == &Json::Bool(true))
        .map(|c| num(c, "t"))
        .collect();
    assert_eq!(own.len(), 1, "one observer marked: {update:?}");
    own[0]
}

#[test]
fn a_telnet_line_shows_as_a_turn_and_its_connection_in_the_table() {
    let server = Duplex::start(&["--loop-rate", "20"]);
    let (mut ws, _) = ws_connect(server.http, "/loop", &[]);
    let first = update_until(&mut ws, "the observer itself", |u| !items(u, "conns").is_empty());
    let own = own_token(&first);
    assert_eq!(num(&first, "observers"), 1);

    let (mut telnet, _) = Telnet::join(server.tcp);
    telnet.say("/echo hello");
    assert_eq!(telnet.line(), "hello");
    // The line's turn: 13 bytes in ("/echo hello\r\n"), one line decoded,
    // 7 bytes out ("hello\r\n") in one write. Every update on the way is
    // kept: the table's row may come in the same one, or before.
    let is_line = |t: &Json| num(t, "in") == 13 && t.str(&["unit"]) == "line";
    let mut seen = Vec::new();
    let update = update_until(&mut ws, "the line's turn", |u| {
        seen.push(u.clone());
        items(u, "turns")
            .iter()
            .any(|turn| items(turn, "tokens").iter().any(is_line))
    });
    let turn = items(&update, "turns")
        .iter()
        .find(|turn| items(turn, "tokens").iter().any(is_line))
        .unwrap();
    let sum = items(turn, "tokens").iter().find(|t| is_line(t)).unwrap();
    let token = num(sum, "t");
    assert_eq!(num(sum, "decoded"), 1);
    assert_eq!((num(sum, "out"), num(sum, "writes")), (7, 1));
    let line = seen
        .iter()
        .find_map(|u| row(u, token))
        .expect("the telnet connection in the table");
    assert_eq!(line.str(&["kind"]), "Line");
    assert_eq!(line.str(&["door"]), "line");
    assert_eq!(line.str(&["close"]), "Open");
    assert_eq!(line.at(&["tls"]), &Json::Bool(false));
    assert_eq!(line.str(&["tcp", "state"]), "ESTABLISHED");
    assert!(num(turn, "events") >= 1);

    // The peer closes: the connection leaves the table, and its departure
    // tells our close steps with the kernel's state at each.
    drop(telnet);
    let update = update_until(&mut ws, "the departure", |u| {
        items(u, "gone").iter().any(|g| num(g, "t") == token)
    });
    assert!(
        row(&update, token).is_none(),
        "a freed connection leaves the table"
    );
    let gone = items(&update, "gone")
        .iter()
        .find(|g| num(g, "t") == token)
        .unwrap();
    assert_eq!(gone.str(&["why"]), "peer closed the connection");
    let trail = items(gone, "trail");
    assert_eq!(trail[0].str(&["to"]), "Flushing");
    assert_eq!(trail[0].str(&["tcp"]), "CLOSE_WAIT");

    // Never the observer's own traffic: no turn names its token.
    let quiet = update_until(&mut ws, "a quiet update", |u| items(u, "turns").is_empty());
    assert!(row(&quiet, own).is_some());
    for update in [&first, &update, &quiet] {
        for turn in items(update, "turns") {
            assert!(
                items(turn, "tokens").iter().all(|t| num(t, "t") != own),
                "the observer's own traffic was reported: {turn:?}"
            );
        }
    }
}

#[test]
fn updates_are_coalesced_and_do_not_feed_themselves() {
    // Two a second at most, however busy: 200 lines produce far fewer
    // updates, and every turn is either sent or counted.
    let server = Duplex::start(&["--loop-rate", "2"]);
    let (mut ws, _) = ws_connect(server.http, "/loop", &[]);
    update_until(&mut ws, "the first update", |_| true);
    let (mut telnet, _) = Telnet::join(server.tcp);
    let started = Instant::now();
    for i in 0..200 {
        telnet.say(&format!("/echo {i}"));
        assert_eq!(telnet.line(), i.to_string());
    }
    // Updates until one shows no turn at all: the busy spell is over.
    let mut updates = 0;
    let mut turns = 0;
    loop {
        let update = update_until(&mut ws, "an update", |_| true);
        updates += 1;
        turns += items(&update, "turns").len() as u64 + update.count(&["left_out", "turns"]);
        if items(&update, "turns").is_empty() && updates > 1 {
            break;
        }
        assert!(updates < 40, "updates never went quiet");
    }
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        (updates as f64) <= 2.0 * seconds + 3.0,
        "{updates} updates in {seconds:.1} s at --loop-rate 2"
    );
    assert!(turns >= 200, "every line's turn is sent or counted: {turns}");
}

#[test]
fn observers_are_bounded() {
    let server = Duplex::start(&["--max-observers", "1"]);
    let (_first, _) = ws_connect(server.http, "/loop", &[]);
    let request = common::upgrade_request(server.http, "/loop", "");
    let (status, _head, body) = http_request(server.http, &request);
    assert_eq!(status, 503);
    assert!(String::from_utf8_lossy(&body).contains("--max-observers 1"));

    let off = Duplex::start(&["--max-observers", "0"]);
    let request = common::upgrade_request(off.http, "/loop", "");
    let (status, _head, body) = http_request(off.http, &request);
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("/loop is off"));
}
