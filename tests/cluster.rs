//! Rooms across instances: two or three real `duplex` processes and a real
//! `redis-server` (installed by scripts/install-redis.sh), every client on
//! a real socket. Redis is stopped, killed and restarted under the
//! instances while members keep talking, and every line must still arrive
//! exactly once, in its sender's order, on every instance.

mod common;

use common::redis::Redis;
use common::{http_request, ws_connect, Duplex, Telnet, WAIT};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::Message;

const DOWN: &str = "* the relay to the other instances is down: chat here goes on, and what is said is passed on when it is back";
const BACK: &str = "* the relay to the other instances is back";

/// An instance named `name` joined to `redis`, with a short presence TTL
/// and timeout so the tests see them pass; returns once it relays.
fn instance(redis: &Redis, name: &str) -> Duplex {
    let url = redis.url();
    let server = Duplex::start(&[
        "--redis",
        &url,
        "--instance",
        name,
        "--redis-ttl",
        "2s",
        "--redis-timeout",
        "1s",
    ]);
    server.wait_log("relaying through duplex:stream");
    server
}

/// Takes lines from `next` until `pred` holds; returns every line taken.
/// Each `next` is itself bounded by [`WAIT`], and so is the whole.
fn collect_until(mut next: impl FnMut() -> String, pred: impl Fn(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "timed out; saw {seen:?}");
        let line = next();
        let done = pred(&line);
        seen.push(line);
        if done {
            return seen;
        }
    }
}

/// Reads telnet lines until `pred` holds; returns every line read.
fn lines_until(t: &mut Telnet, pred: impl Fn(&str) -> bool) -> Vec<String> {
    collect_until(|| t.line(), pred)
}

/// A server-sent events reader: the `data:` of each event, in order.
struct Events {
    stream: TcpStream,
    buf: String,
}

impl Events {
    fn open(server: &Duplex) -> Events {
        let mut stream = TcpStream::connect(server.http).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        write!(stream, "GET /events HTTP/1.1\r\nHost: {}\r\n\r\n", server.http).unwrap();
        Events {
            stream,
            buf: String::new(),
        }
    }

    /// The next event's data.
    fn next(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..end + 2).collect();
                let data: Vec<&str> = event.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
                if !data.is_empty() {
                    return data.join("\n");
                }
                continue;
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).expect("read the event stream");
            assert!(n > 0, "the event stream ended");
            self.buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    }

    fn until(&mut self, pred: impl Fn(&str) -> bool) -> Vec<String> {
        collect_until(|| self.next(), pred)
    }
}

/// The chat lines among `lines` from `sender`, in the order they came.
fn said_by<'a>(lines: &'a [String], sender: &str) -> Vec<&'a str> {
    let prefix = format!("[lobby] {sender}: ");
    lines.iter().filter_map(|l| l.strip_prefix(&prefix)).collect()
}

/// `count` lines `{tag}-0`.. in order, each exactly once.
fn assert_in_order_once(got: &[&str], tag: &str, count: usize, on: &str) {
    let want: Vec<String> = (0..count).map(|i| format!("{tag}-{i}")).collect();
    assert_eq!(got, want, "{tag}'s lines as seen on {on}");
}

#[test]
fn telnet_websocket_and_event_stream_on_three_instances_share_a_room_in_order() {
    let redis = Redis::start();
    let (a, b, c) = (
        instance(&redis, "a"),
        instance(&redis, "b"),
        instance(&redis, "c"),
    );
    let (mut telnet, name) = Telnet::join(a.tcp);
    assert_eq!(name, "guest-1.a");
    let (mut ws, _) = ws_connect(b.http, "/chat", &[]);
    let mut events = Events::open(&c);
    // Each arrival is announced on the other instances, in whichever
    // order they reached Redis.
    let mut arrivals = lines_until(&mut telnet, |l| {
        l.starts_with("* guest-1.") && l.ends_with(" joined lobby")
    });
    arrivals.extend(lines_until(&mut telnet, |l| {
        l.starts_with("* guest-1.") && l.ends_with(" joined lobby")
    }));
    for who in ["b", "c"] {
        assert!(
            arrivals.contains(&format!("* guest-1.{who} joined lobby")),
            "{arrivals:?}"
        );
    }
    let count = 50;
    for i in 0..count {
        telnet.say(&format!("a-{i}"));
        ws.send(Message::text(format!("b-{i}"))).unwrap();
    }
    telnet.say("a-done");
    ws.send(Message::text("b-done")).unwrap();
    // Everyone gets every line once, each sender's in its order.
    let seen = lines_until(&mut telnet, |l| l.ends_with("b-done"));
    let mut on_a = seen;
    if !on_a.iter().any(|l| l.ends_with("a-done")) {
        on_a.extend(lines_until(&mut telnet, |l| l.ends_with("a-done")));
    }
    let mut on_b = Vec::new();
    let deadline = Instant::now() + WAIT;
    while !(on_b.iter().any(|l: &String| l.ends_with("a-done"))
        && on_b.iter().any(|l: &String| l.ends_with("b-done")))
    {
        assert!(Instant::now() < deadline, "B saw {on_b:?}");
        if let Message::Text(text) = ws.read().unwrap() {
            on_b.push(text.to_string());
        }
    }
    let mut on_c = events.until(|l| l.ends_with("a-done"));
    if !on_c.iter().any(|l| l.ends_with("b-done")) {
        on_c.extend(events.until(|l| l.ends_with("b-done")));
    }
    for (on, lines) in [("a", &on_a), ("b", &on_b), ("c", &on_c)] {
        assert_in_order_once(&said_by(lines, "guest-1.a")[..count], "a", count, on);
        assert_in_order_once(&said_by(lines, "guest-1.b")[..count], "b", count, on);
    }
    // /who and /rooms span the three. /who lists a room in the order its
    // members arrived here, and b's and c's arrivals reached Redis in
    // either order (above): compare the names, not their order.
    telnet.say("/who");
    let who = lines_until(&mut telnet, |l| l.starts_with("* members of lobby:"));
    let who = who.last().unwrap().strip_prefix("* members of lobby: ").unwrap();
    let mut names: Vec<&str> = who.split(", ").collect();
    names.sort_unstable();
    assert_eq!(names, ["guest-1.a", "guest-1.b", "guest-1.c"], "{who}");
    telnet.say("/rooms");
    assert_eq!(
        lines_until(&mut telnet, |l| l.starts_with("* rooms:"))
            .last()
            .unwrap(),
        "* rooms: lobby (3)"
    );
    // /stats and /metrics tell of the relay: both links ready, nothing
    // queued, lost or doubled; a's 50 lines (and its arrival) added, b's 50
    // lines (and the others' arrivals) applied.
    let request = format!("GET /stats HTTP/1.1\r\nHost: {}\r\n\r\n", a.http);
    let (_, _, body) = http_request(a.http, request.as_bytes());
    let stats: serde_json::Value = serde_json::from_slice(&body).expect("/stats is JSON");
    let relay = &stats["relay"];
    assert_eq!(relay["instance"], "a", "{relay}");
    assert_eq!(
        (&relay["writer"], &relay["reader"]),
        (&"ready".into(), &"ready".into()),
        "{relay}"
    );
    for quiet in ["queued", "duplicates", "missed", "dropped"] {
        assert_eq!(relay[quiet], 0, "{quiet}: {relay}");
    }
    let count = count as u64;
    let at_least = |what: &str| relay[what].as_u64().is_some_and(|n| n > count);
    assert!(at_least("added") && at_least("applied"), "{relay}");
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {}\r\n\r\n", a.http);
    let (_, _, body) = http_request(a.http, request.as_bytes());
    let metrics = String::from_utf8_lossy(&body);
    let sample = |line: &str| metrics.lines().any(|l| l == line);
    assert!(sample("duplex_relay_link_up{side=\"writer\"} 1"), "{metrics}");
    assert!(sample("duplex_relay_link_up{side=\"reader\"} 1"), "{metrics}");
    // Heartbeats are entries too: by now there may be more than /stats saw.
    let applied = metrics
        .lines()
        .find_map(|l| l.strip_prefix("duplex_relay_entries_total{what=\"applied\"} "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(applied >= relay["applied"].as_u64(), "{metrics}");
}

#[test]
fn names_are_unique_across_instances_whatever_their_case() {
    let redis = Redis::start();
    let (a, b) = (instance(&redis, "a"), instance(&redis, "b"));
    let (mut ta, _) = Telnet::join(a.tcp);
    let (mut tb, _) = Telnet::join(b.tcp);
    lines_until(&mut ta, |l| l == "* guest-1.b joined lobby");
    ta.say("/nick Alice");
    lines_until(&mut tb, |l| l == "* guest-1.a is now known as Alice");
    for taken in ["alice", "ALICE", "\u{FF41}lice"] {
        tb.say(&format!("/nick {taken}"));
        assert_eq!(tb.line(), format!("! name taken: {taken}"));
    }
    // Guest names are an instance's own, and never taken.
    tb.say("/nick guest-1.a");
    assert!(tb.line().ends_with("guest-N names are given, not taken"));
    tb.say("/who");
    let who = tb.line();
    let mut members: Vec<&str> = who
        .strip_prefix("* members of lobby: ")
        .unwrap()
        .split(", ")
        .collect();
    members.sort_unstable();
    assert_eq!(members, ["Alice", "guest-1.b"]);
    // A name let go on A is free on B.
    ta.say("/nick ann");
    lines_until(&mut tb, |l| l == "* Alice is now known as ann");
    tb.say("/nick alice");
    assert_eq!(tb.line(), "* guest-1.b is now known as alice");
    lines_until(&mut ta, |l| l == "* guest-1.b is now known as alice");
}

/// Two instances, a telnet member on each, who know each other.
fn pair(redis: &Redis) -> (Duplex, Duplex, Telnet, Telnet) {
    let (a, b) = (instance(redis, "a"), instance(redis, "b"));
    let (mut ta, _) = Telnet::join(a.tcp);
    let (tb, _) = Telnet::join(b.tcp);
    lines_until(&mut ta, |l| l == "* guest-1.b joined lobby");
    (a, b, ta, tb)
}

/// Sends numbered lines from both members for `span`, one pair every
/// 50 ms; returns how many each sent.
fn talk_for(ta: &mut Telnet, tb: &mut Telnet, span: Duration, start: usize) -> usize {
    let until = Instant::now() + span;
    let mut i = start;
    while Instant::now() < until {
        ta.say(&format!("a-{i}"));
        tb.say(&format!("b-{i}"));
        i += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    i
}

#[test]
fn redis_stopped_for_three_seconds_loses_and_doubles_nothing() {
    let redis = Redis::start();
    let (_a, _b, mut ta, mut tb) = pair(&redis);
    let sent = talk_for(&mut ta, &mut tb, Duration::from_millis(500), 0);
    redis.signal("STOP");
    let sent = talk_for(&mut ta, &mut tb, Duration::from_secs(3), sent);
    redis.signal("CONT");
    let sent = talk_for(&mut ta, &mut tb, Duration::from_millis(500), sent);
    check_everything_arrived(&mut ta, &mut tb, sent, &[DOWN, BACK]);
}

#[test]
fn redis_killed_and_restarted_empty_loses_and_doubles_nothing() {
    let mut redis = Redis::start();
    let (_a, _b, mut ta, mut tb) = pair(&redis);
    let sent = talk_for(&mut ta, &mut tb, Duration::from_millis(500), 0);
    redis.restart();
    let sent = talk_for(&mut ta, &mut tb, Duration::from_millis(1500), sent);
    check_everything_arrived(&mut ta, &mut tb, sent, &[]);
}

/// Says `a-done` on A and `b-done` on B, then reads each member's lines
/// until both arrived: each sender's lines once each and in order, no
/// line missed, and each notice once.
fn check_everything_arrived(ta: &mut Telnet, tb: &mut Telnet, count: usize, notices: &[&str]) {
    ta.say("a-done");
    tb.say("b-done");
    for (t, on) in [(ta, "a"), (tb, "b")] {
        let mut lines = Vec::new();
        let deadline = Instant::now() + WAIT;
        while !(lines.iter().any(|l: &String| l == "[lobby] guest-1.a: a-done")
            && lines.iter().any(|l: &String| l == "[lobby] guest-1.b: b-done"))
        {
            assert!(Instant::now() < deadline, "{on} saw {lines:?}");
            lines.push(t.line());
        }
        assert_in_order_once(&said_by(&lines, "guest-1.a")[..count], "a", count, on);
        assert_in_order_once(&said_by(&lines, "guest-1.b")[..count], "b", count, on);
        let missed: Vec<&String> = lines.iter().filter(|l| l.contains("were lost")).collect();
        assert!(missed.is_empty(), "{on}: {missed:?}");
        for notice in notices {
            let times = lines.iter().filter(|l| l == notice).count();
            assert_eq!(times, 1, "{notice:?} on {on}: {lines:?}");
        }
    }
}

#[test]
fn an_instance_killed_outright_is_announced_as_left_within_the_ttl() {
    let redis = Redis::start();
    let (_a, mut b, mut ta, _tb) = pair(&redis);
    ta.say("/who");
    assert_eq!(
        lines_until(&mut ta, |l| l.starts_with("* members"))
            .last()
            .unwrap(),
        "* members of lobby: guest-1.a, guest-1.b"
    );
    let killed = Instant::now();
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    lines_until(&mut ta, |l| l == "* guest-1.b left (instance b is gone)");
    // The TTL is 2 s; the tick that notices runs every 0.5 s.
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(4), "announced after {took:?}");
    ta.say("/who");
    assert_eq!(ta.line(), "* members of lobby: guest-1.a");
}

#[test]
fn an_instance_shut_down_gracefully_says_its_members_left_at_once() {
    let redis = Redis::start();
    let (_a, mut b, mut ta, _tb) = pair(&redis);
    let status = b.signal_and_wait("TERM");
    assert!(status.success(), "{status:?}");
    // Its member's departure, not the TTL's verdict.
    let seen = lines_until(&mut ta, |l| l.starts_with("* guest-1.b "));
    assert_eq!(seen.last().unwrap(), "* guest-1.b disconnected");
    ta.say("/who");
    assert_eq!(ta.line(), "* members of lobby: guest-1.a");
}
