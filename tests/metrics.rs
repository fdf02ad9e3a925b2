//! `GET /metrics` read by the Prometheus project's own parser: the Python
//! `prometheus_client` (installed pinned by `scripts/install-metrics-parser.sh`
//! into target/metrics-venv) parses what the server wrote, and the values it
//! understood are held against traffic this test made over real sockets.
//!
//! Without that parser the test fails and says how to install it: a
//! metrics test that passes without parsing anything would hide an
//! exposition Prometheus can no longer read.

mod common;

use common::{header_value, http_request, ProcessTree, RawWs, Telnet, TempDir, WAIT};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// What the parser understood: each family's type, each sample's value,
/// keyed `name label=value,...` with labels sorted.
struct Parsed {
    types: HashMap<String, String>,
    samples: HashMap<String, f64>,
}

impl Parsed {
    fn value(&self, key: &str) -> f64 {
        *self
            .samples
            .get(key)
            .unwrap_or_else(|| panic!("no sample {key:?} in {:?}", self.keys()))
    }

    fn keys(&self) -> Vec<&String> {
        let mut keys: Vec<_> = self.samples.keys().collect();
        keys.sort();
        keys
    }
}

fn python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/metrics-venv/bin/python");
    assert!(
        python.exists(),
        "the /metrics test needs prometheus_client in {}: run scripts/install-metrics-parser.sh",
        python.display()
    );
    python
}

/// Scrapes `/metrics` and has prometheus_client parse it.
fn scrape(http: SocketAddr) -> Parsed {
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {http}\r\n\r\n");
    let (status, head, body) = http_request(http, request.as_bytes());
    assert_eq!(status, 200, "{head}");
    assert_eq!(
        header_value(&head, "Content-Type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let dir = TempDir::new("metrics");
    let file = dir.0.join("metrics.txt");
    std::fs::write(&file, &body).unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let mut command = Command::new(python());
    command.arg(format!("{root}/tests/metrics/parse.py")).arg(&file);
    let (status, out, err) = ProcessTree::spawn(command).wait(WAIT);
    assert!(
        status.is_some_and(|s| s.success()),
        "prometheus_client could not parse /metrics ({status:?}):\n{err}\n{}",
        String::from_utf8_lossy(&body)
    );
    let mut parsed = Parsed {
        types: HashMap::new(),
        samples: HashMap::new(),
    };
    for line in out.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["family", name, kind] => {
                parsed.types.insert(name.to_string(), kind.to_string());
            }
            ["sample", name, labels, value] => {
                let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
                parsed.samples.insert(format!("{name} {labels}"), value);
            }
            _ => panic!("unexpected parser output: {line}"),
        }
    }
    parsed
}

/// Scrapes until `ready` holds: some counters settle a turn or two after
/// the traffic that moves them (a connection is counted closed when it is
/// freed, after its peer's FIN). Each try is a real scrape; the whole wait
/// is bounded.
fn scrape_until(http: SocketAddr, ready: impl Fn(&Parsed) -> bool) -> Parsed {
    let deadline = Instant::now() + WAIT;
    loop {
        let parsed = scrape(http);
        if ready(&parsed) {
            return parsed;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never settled: {:?}",
            parsed.samples
        );
    }
}

#[test]
fn metrics_parse_and_count_the_traffic_this_test_made() {
    let dir = TempDir::new("metrics-static");
    std::fs::write(dir.0.join("hello.txt"), vec![b'x'; 10_000]).unwrap();
    let server = common::Duplex::start(&["--static", dir.0.to_str().unwrap()]);
    let http = server.http;

    // Three chat lines from telnet, each seen back by the sender.
    let (mut telnet, _) = Telnet::join(server.tcp);
    for i in 1..=3 {
        telnet.say(&format!("hello {i}"));
        telnet.until(|l| l.contains(&format!("hello {i}")));
    }
    // Two echoes on /echo, one text and one binary.
    let mut echo = RawWs::connect(http, "/echo");
    echo.send_frame(true, 0x1, b"text");
    assert_eq!(echo.read_frame().expect("echo").payload, b"text");
    echo.send_frame(true, 0x2, &[1, 2, 3]);
    assert_eq!(echo.read_frame().expect("echo").payload, [1, 2, 3]);
    // Refusals: 404 three times (the last closes), 405 once.
    let get = |path: &str, extra: &str| {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {http}\r\n{extra}\r\n");
        http_request(http, request.as_bytes())
    };
    for _ in 0..2 {
        assert_eq!(get("/nothing-here", "").0, 404);
    }
    assert_eq!(get("/nothing-here", "Connection: close\r\n").0, 404);
    let post = format!("POST /stats HTTP/1.1\r\nHost: {http}\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(http_request(http, post.as_bytes()).0, 405);
    // A static file, 10,000 bytes.
    let (status, _, body) = get("/hello.txt", "");
    assert_eq!((status, body.len()), (200, 10_000));
    // A reader that reads nothing: an 8 MiB echo waits in its queue.
    let mut stuck = RawWs::connect(http, "/echo");
    stuck.send_frame(true, 0x2, &vec![7; 8 << 20]);

    let m = scrape_until(http, |m| {
        m.samples
            .get("duplex_output_queue_bytes ")
            .is_some_and(|&v| v > 0.0)
            && m.samples
                .get("duplex_closes_total reason=answered_error")
                .is_some_and(|&v| v >= 1.0)
    });

    // The families are typed as the format says.
    for (name, kind) in [
        ("duplex_connections", "gauge"),
        ("duplex_connections_accepted", "counter"),
        ("duplex_closes", "counter"),
        ("duplex_messages_received", "counter"),
        ("duplex_sent_bytes", "counter"),
        ("duplex_output_queue_bytes", "gauge"),
        ("duplex_loop_turns", "counter"),
        ("duplex_loop_turn_duration_seconds", "histogram"),
    ] {
        assert_eq!(m.types.get(name).map(String::as_str), Some(kind), "{name}");
    }
    // Connections by door and endpoint: the telnet member, two echoes.
    assert_eq!(m.value("duplex_connections door=line,endpoint=chat"), 1.0);
    assert_eq!(m.value("duplex_connections door=web,endpoint=/echo"), 2.0);
    assert_eq!(m.value("duplex_connections door=web,endpoint=/chat"), 0.0);
    assert_eq!(m.value("duplex_connections_accepted_total door=line"), 1.0);
    assert!(m.value("duplex_connections_accepted_total door=web") >= 7.0);
    // Messages by transport: three telnet lines, three echoes (the stuck
    // one was received whole before its echo was queued).
    assert_eq!(m.value("duplex_messages_received_total transport=telnet"), 3.0);
    assert_eq!(m.value("duplex_messages_received_total transport=other"), 3.0);
    assert_eq!(m.value("duplex_messages_sent_total transport=other"), 3.0);
    assert!(m.value("duplex_messages_sent_total transport=telnet") >= 3.0);
    // Bytes: the file went out under "other", the telnet lines came in.
    assert!(m.value("duplex_sent_bytes_total transport=other") >= 10_000.0);
    assert!(m.value("duplex_received_bytes_total transport=telnet") >= 3.0 * 9.0);
    assert!(m.value("duplex_received_bytes_total transport=other") >= (8 << 20) as f64);
    // Refusals by status, and the one that closed by its reason.
    assert_eq!(m.value("duplex_http_refusals_total status=404"), 3.0);
    assert_eq!(m.value("duplex_http_refusals_total status=405"), 1.0);
    assert!(m.value("duplex_closes_total reason=answered_error") >= 1.0);
    // The output queue holds what the stuck reader has not taken.
    let queued = m.value("duplex_output_queue_bytes ");
    let largest = m.value("duplex_output_queue_largest_bytes ");
    assert!(largest > 0.0 && largest <= queued && queued <= (8 << 20) as f64 + 14.0);
    // The histogram: cumulative buckets, +Inf equal to the count, which
    // is the number of turns.
    let bounds = [
        "0.00001", "0.00005", "0.0001", "0.0005", "0.001", "0.005", "0.01", "0.05", "0.1", "0.5", "1", "+Inf",
    ];
    let mut previous = 0.0;
    for le in bounds {
        let n = m.value(&format!("duplex_loop_turn_duration_seconds_bucket le={le}"));
        assert!(n >= previous, "bucket le={le} is {n}, below {previous}");
        previous = n;
    }
    let count = m.value("duplex_loop_turn_duration_seconds_count ");
    assert_eq!(previous, count);
    assert_eq!(count, m.value("duplex_loop_turns_total "));
    assert!(count > 10.0, "{count} turns");
    assert!(m.value("duplex_loop_turn_duration_seconds_sum ") > 0.0);
    // And the loop goes on turning.
    let later = scrape(http);
    assert!(later.value("duplex_loop_turns_total ") > count);
    drop(stuck);
}

#[test]
fn head_metrics_sends_the_head_only() {
    let server = common::Duplex::start(&[]);
    let request = format!(
        "HEAD /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.http
    );
    let answer = common::http_raw(server.http, request.as_bytes());
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    let length: usize = header_value(head, "Content-Length")
        .and_then(|v| v.parse().ok())
        .expect("a length");
    assert!(length > 1000, "{head}");
    assert!(body.is_empty(), "HEAD had a body: {body:?}");
}
