//! duplex behind Debian's nginx, configured with the very `nginx.conf`
//! that docs/09-reverse-proxy.md shows: the file is read from the page, and
//! only its ports, its paths and `proxy_read_timeout` are changed.
//!
//! nginx listens on `[::1]` and `127.0.0.1` on one port, and duplex trusts
//! only `127.0.0.1` (`--trust-proxy`): nginx reaches duplex from
//! 127.0.0.1, and the test's clients reach nginx from `::1`, so the client
//! duplex reports (`::1`) is told apart from the proxy.
//!
//! nginx runs as the test's user, in the foreground, with a prefix, pid
//! file and logs in a folder of its own, in a process group of its own
//! that is killed when the test ends, however it ends. Without nginx the
//! tests fail and say how to install it (`scripts/install-nginx.sh`).

mod common;

use common::{read_response, ws_until_text, Duplex, Json, ProcessTree, Telnet, WAIT};
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tungstenite::Message;

const NGINX: &str = "/usr/sbin/nginx";

/// nginx's `proxy_read_timeout` as the docs set it (75 s), scaled down so
/// a test waits seconds: above duplex's long-poll hold and ping interval
/// below, as the page says it must be.
const DOCUMENTED_READ_TIMEOUT: &str = "6s";
/// A read timeout below duplex's long-poll hold, as nginx's default 60 s
/// is below a hold of minutes: what goes wrong without the docs' line.
const SHORT_READ_TIMEOUT: &str = "2s";
/// duplex behind it: a long poll held 4 s, a silent WebSocket pinged
/// every second (after 1 s of silence, then once its pong is 1 s old);
/// the names the Host check lets in besides loopback.
const DUPLEX_ARGS: &[&str] = &[
    "--trust-proxy",
    "127.0.0.1",
    "--longpoll-timeout",
    "4s",
    "--ping-interval",
    "1s",
    "--pong-timeout",
    "1s",
    "--allow-host",
    "chat.example.test",
];

/// The `nginx.conf` of docs/09-reverse-proxy.md: the one ```nginx block
/// that is a whole file (it has an `events` block; the others are parts).
fn documented_config() -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/09-reverse-proxy.md"))
        .expect("read docs/09-reverse-proxy.md");
    let whole: Vec<&str> = page
        .split("```nginx\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("\n```").map(|(block, _)| block))
        .filter(|block| block.contains("\nevents {"))
        .collect();
    assert_eq!(
        whole.len(),
        1,
        "docs/09 should show one whole nginx.conf, found {}",
        whole.len()
    );
    format!("{}\n", whole[0])
}

/// Replaces `from` by `to` in `text`, which must contain it exactly once:
/// a page edited out of the template's shape fails here, by name.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    let found = text.matches(from).count();
    assert_eq!(
        found, 1,
        "docs/09's nginx.conf should have {from:?} once, has it {found} times"
    );
    text.replacen(from, to, 1)
}

/// A folder of the test's own, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("duplex-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("make a temporary folder");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// nginx in front of a duplex, killed when dropped.
struct Nginx {
    /// The port nginx listens on, on `[::1]` and `127.0.0.1`.
    port: u16,
    tree: ProcessTree,
    dir: TempDir,
}

impl Nginx {
    /// Starts nginx with the docs' file in front of `upstream`. nginx
    /// needs a port number in its file, so a free one is found by binding
    /// port 0 and letting it go; if another process takes it in between,
    /// nginx says so and the next try picks another.
    fn start(upstream: SocketAddr, read_timeout: &str) -> Nginx {
        assert!(
            Path::new(NGINX).exists(),
            "the nginx test needs {NGINX}: run scripts/install-nginx.sh (as root, on Debian) to install it"
        );
        let mut failures = Vec::new();
        for _ in 0..5 {
            let port = free_port();
            match Nginx::try_start(upstream, read_timeout, port) {
                Ok(nginx) => return nginx,
                Err(why) if why.contains("Address already in use") => failures.push(why),
                Err(why) => panic!("nginx did not start on port {port}:\n{why}"),
            }
        }
        panic!("nginx found no free port in 5 tries:\n{}", failures.join("\n"));
    }

    fn try_start(upstream: SocketAddr, read_timeout: &str, port: u16) -> Result<Nginx, String> {
        let dir = TempDir::new("nginx");
        let at = |name: &str| dir.0.join(name).display().to_string();
        let mut conf = documented_config();
        conf = replace_once(&conf, "pid /run/nginx.pid;", &format!("pid {};", at("nginx.pid")));
        conf = replace_once(
            &conf,
            "error_log /var/log/nginx/error.log;",
            &format!("error_log {};", at("error.log")),
        );
        // nginx's temporary files go where Debian built it to put them
        // (/var/lib/nginx) unless told: here, in the test's folder.
        let temp: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
            .iter()
            .map(|kind| format!(" {kind}_temp_path {};", at(kind)))
            .collect();
        conf = replace_once(
            &conf,
            "access_log /var/log/nginx/access.log;",
            &format!("access_log {};{temp}", at("access.log")),
        );
        conf = replace_once(&conf, "server 127.0.0.1:8080;", &format!("server {upstream};"));
        conf = replace_once(&conf, "listen 80;", &format!("listen [::1]:{port};"));
        conf = replace_once(&conf, "listen [::]:80;", &format!("listen 127.0.0.1:{port};"));
        conf = replace_once(
            &conf,
            "proxy_read_timeout 75s;",
            &format!("proxy_read_timeout {read_timeout};"),
        );
        std::fs::write(at("nginx.conf"), &conf).expect("write nginx.conf");
        let mut command = Command::new(NGINX);
        command
            .args(["-p", &at(""), "-c", &at("nginx.conf"), "-e", &at("error.log")])
            .args(["-g", "daemon off;"]);
        let mut tree = ProcessTree::spawn(command);
        let deadline = Instant::now() + WAIT;
        loop {
            let addr = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
            if TcpStream::connect(addr).is_ok() && TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(Nginx { port, tree, dir });
            }
            if let Some(status) = tree.try_status() {
                let log = std::fs::read_to_string(at("error.log")).unwrap_or_default();
                let (_, out, err) = tree.wait(Duration::ZERO);
                return Err(format!(
                    "nginx exited ({status}):\n{log}{out}{err}\nwith:\n{conf}"
                ));
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(at("error.log")).unwrap_or_default();
                return Err(format!(
                    "nginx did not listen on port {port} within {WAIT:?}:\n{log}"
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Where the test's clients reach nginx.
    fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv6Addr::LOCALHOST, self.port))
    }

    fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("access.log")).unwrap_or_default()
    }

    /// Waits until nginx's access log has a line containing every needle.
    fn wait_access_log(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let log = self.access_log();
            if let Some(line) = log.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "nginx's access log never showed {needles:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.tree.kill();
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).expect("bind [::1]:0");
    listener.local_addr().expect("local address").port()
}

/// duplex and nginx in front of it, with the docs' read timeout.
fn proxied() -> (Duplex, Nginx) {
    let server = Duplex::start(DUPLEX_ARGS);
    let nginx = Nginx::start(server.http, DOCUMENTED_READ_TIMEOUT);
    (server, nginx)
}

/// A request through nginx on a fresh connection.
fn get(nginx: &Nginx, target: &str, extra: &str) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(nginx.addr()).expect("connect to nginx");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let host = nginx.addr();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    read_response(&mut stream)
}

fn stats(nginx: &Nginx, extra: &str) -> Json {
    let (status, head, body) = get(nginx, "/stats", extra);
    assert_eq!(status, 200, "{head}");
    Json::parse(&String::from_utf8_lossy(&body)).expect("JSON")
}

/// A WebSocket through nginx, `extra` lines added to its request; a
/// refused upgrade gives the refusal's status.
fn ws_through(
    nginx: &Nginx,
    path: &str,
    extra: &[(&str, &str)],
) -> Result<tungstenite::WebSocket<TcpStream>, u16> {
    use tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}{path}", nginx.addr())
        .into_client_request()
        .unwrap();
    for (name, value) in extra {
        let name: tungstenite::http::HeaderName = name.parse().unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    let stream = TcpStream::connect(nginx.addr()).expect("connect to nginx");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    match tungstenite::client(request, stream) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("handshake through nginx: {e}"),
    }
}

#[test]
fn websocket_echo_and_chat_go_through_nginx_and_its_log_shows_101() {
    let (server, nginx) = proxied();

    let mut echo = ws_through(&nginx, "/echo", &[]).expect("upgrade /echo through nginx");
    echo.send(Message::text("through nginx ✓")).unwrap();
    assert_eq!(echo.read().unwrap(), Message::text("through nginx ✓"));
    let bytes: Vec<u8> = (0..=255).collect();
    echo.send(Message::binary(bytes.clone())).unwrap();
    assert_eq!(echo.read().unwrap(), Message::binary(bytes));
    echo.close(None).unwrap();
    while echo.read().is_ok() {}

    // The chat: a browser-side member through nginx, a telnet one direct.
    let mut chat = ws_through(&nginx, "/chat", &[("X-Forwarded-For", "203.0.113.9")]).expect("upgrade /chat");
    let greeting = ws_until_text(&mut chat, |t| t.starts_with("* welcome"));
    // The client is ::1, seen by nginx; what it claimed is not believed.
    assert!(greeting.contains("you are ::1 via 127.0.0.1:"), "{greeting}");
    let name = greeting
        .split("your name is ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap()
        .to_string();
    let (mut telnet, telnet_name) = Telnet::join(server.tcp);
    telnet.say("hello through the proxy");
    let seen = ws_until_text(&mut chat, |t| t.contains("hello through the proxy"));
    assert_eq!(seen, format!("[lobby] {telnet_name}: hello through the proxy"));
    chat.send(Message::text("hello from behind nginx")).unwrap();
    let line = telnet.until(|l| l.contains("hello from behind nginx"));
    assert_eq!(line, format!("[lobby] {name}: hello from behind nginx"));
    chat.close(None).unwrap();
    while chat.read().is_ok() {}

    // nginx's own record of the upgrades, written as each WebSocket ended.
    nginx.wait_access_log(&["\"GET /echo HTTP/1.1\" 101 "]);
    nginx.wait_access_log(&["\"GET /chat HTTP/1.1\" 101 "]);
    // duplex's log names the client and the proxy connection.
    server.wait_log("::1 via 127.0.0.1:");
}

#[test]
fn the_client_is_who_nginx_saw_and_a_spoofed_header_is_not_believed() {
    let (server, nginx) = proxied();
    let json = stats(&nginx, "");
    assert_eq!(json.str(&["client"]), "::1");
    let json = stats(&nginx, "X-Forwarded-For: 203.0.113.9\r\n");
    assert_eq!(json.str(&["client"]), "::1", "nginx appended ::1 after the claim");
    assert_eq!(json.count(&["forwarded", "trusted"]), 2);
    // The same claim sent to duplex directly, from 127.0.0.1 (trusted,
    // as the proxy): a client on the proxy's own address is believed,
    // which is why docs/09 says to trust only the proxy.
    let direct = format!(
        "GET /stats HTTP/1.1\r\nHost: {}\r\nX-Forwarded-For: 203.0.113.9\r\nConnection: close\r\n\r\n",
        server.http
    );
    let (_, _, body) = common::http_request(server.http, direct.as_bytes());
    assert_eq!(
        Json::parse(&String::from_utf8_lossy(&body))
            .unwrap()
            .str(&["client"]),
        "203.0.113.9"
    );
}

#[test]
fn a_silent_websocket_outlasts_nginx_read_timeout_through_duplex_pings() {
    let (_server, nginx) = proxied();
    let mut ws = ws_through(&nginx, "/echo", &[]).expect("upgrade /echo");
    // Silent for longer than nginx waits (6 s): only duplex's pings, each
    // answered (tungstenite queues the pong; `flush` sends it).
    ws.get_mut()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let quiet = Duration::from_secs(8);
    let start = Instant::now();
    let mut pings = 0;
    while start.elapsed() < quiet {
        match ws.read() {
            Ok(Message::Ping(_)) => {
                pings += 1;
                ws.flush().expect("send the pong");
            }
            Ok(other) => panic!("a silent WebSocket got {other:?}"),
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!(
                "the WebSocket through nginx ended after {:?} and {pings} pings: {e}\n{}",
                start.elapsed(),
                _server.log()
            ),
        }
    }
    assert!(
        pings >= 4,
        "{pings} pings in {quiet:?} of silence (--ping-interval 1s)"
    );
    ws.get_mut().set_read_timeout(Some(WAIT)).unwrap();
    ws.send(Message::text("still here")).unwrap();
    loop {
        match ws.read().expect("the echo after the silence") {
            Message::Ping(_) => continue,
            message => break assert_eq!(message, Message::text("still here")),
        }
    }
}

#[test]
fn server_sent_events_arrive_one_by_one_and_post_send_goes_through() {
    let (server, nginx) = proxied();
    let (mut telnet, _) = Telnet::join(server.tcp);
    let mut stream = TcpStream::connect(nginx.addr()).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "GET /events?room=lobby HTTP/1.1\r\nHost: {}\r\n\r\n",
        nginx.addr()
    )
    .unwrap();
    let mut events = BufReader::new(stream);
    let mut status = String::new();
    events.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let token_event = sse_data(&mut events, |d| d.contains("\"token\""));
    let token = common::json_field(&token_event, "token");
    // One line, alone: with nginx buffering it would wait for more.
    telnet.say("one event");
    sse_data(&mut events, |d| d.contains("one event"));

    // POST /send through nginx, as the member the stream made.
    let body = "posted through nginx";
    let mut post = TcpStream::connect(nginx.addr()).unwrap();
    post.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        post,
        "POST /send?token={token} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        nginx.addr(),
        body.len()
    )
    .unwrap();
    let (status, head, _) = read_response(&mut post);
    assert!((200..300).contains(&status), "{head}");
    let line = telnet.until(|l| l.contains(body));
    assert!(line.ends_with(&format!(": {body}")), "{line}");
    sse_data(&mut events, |d| d.contains(body));
}

/// Reads event-stream lines until a `data:` line satisfies `pred`.
fn sse_data(reader: &mut BufReader<TcpStream>, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "the event never came through nginx");
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).expect("read the event stream") > 0,
            "event stream closed"
        );
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            if pred(data) {
                return data.to_string();
            }
        }
    }
}

/// `GET /longpoll` with `token` and `since`, on `stream`; returns the
/// status, the time it took and the body.
fn long_poll(stream: &mut TcpStream, host: SocketAddr, query: &str) -> (u16, Duration, String) {
    let start = Instant::now();
    write!(
        stream,
        "GET /longpoll?room=lobby{query} HTTP/1.1\r\nHost: {host}\r\n\r\n"
    )
    .unwrap();
    let (status, _, body) = read_response(stream);
    (
        status,
        start.elapsed(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[test]
fn a_long_poll_outlasts_nginx_read_timeout_only_when_the_timeout_is_above_the_hold() {
    let server = Duplex::start(DUPLEX_ARGS);
    // nginx waiting 2 s in front of a long poll held 4 s: the failure.
    let short = Nginx::start(server.http, SHORT_READ_TIMEOUT);
    // nginx waiting 6 s, above the hold, as docs/09 says.
    let documented = Nginx::start(server.http, DOCUMENTED_READ_TIMEOUT);
    let (mut telnet, telnet_name) = Telnet::join(server.tcp);

    for (nginx, expected) in [(&short, 504), (&documented, 200)] {
        let mut stream = TcpStream::connect(nginx.addr()).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        // The first poll makes the member and returns at once.
        let (status, _, body) = long_poll(&mut stream, nginx.addr(), "");
        assert_eq!(status, 200, "{body}");
        let token = common::json_field(&body, "token");
        let next = common::json_field(&body, "next");
        // Nothing to say: duplex holds the poll for 4 s.
        let (status, took, body) =
            long_poll(&mut stream, nginx.addr(), &format!("&since={next}&token={token}"));
        assert_eq!(status, expected, "after {took:?}: {body}");
        if expected == 504 {
            // nginx gave up at its own timeout, before duplex answered.
            assert!(
                took >= Duration::from_secs(2) && took < Duration::from_secs(4),
                "{took:?}"
            );
            assert!(body.contains("504 Gateway Time-out"), "{body}");
            continue;
        }
        assert!(
            took >= Duration::from_secs(4),
            "held {took:?}, less than --longpoll-timeout"
        );
        // And a line said while the next poll has been waiting longer than
        // the short proxy's timeout reaches it.
        let next = common::json_field(&body, "next");
        let query = format!("&since={next}&token={token}");
        let host = nginx.addr();
        let poller = std::thread::spawn(move || long_poll(&mut stream, host, &query));
        std::thread::sleep(Duration::from_millis(2500));
        telnet.say("worth the wait");
        let (status, took, body) = poller.join().unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(&format!("{telnet_name}: worth the wait")), "{body}");
        assert!(took >= Duration::from_millis(2500), "{took:?}");
    }
}

#[test]
fn host_and_origin_rules_hold_through_nginx() {
    let (_server, nginx) = proxied();
    // A page served through nginx as chat.example.test (given with
    // --allow-host): same origin, so its WebSocket is accepted.
    let page = [
        ("Host", "chat.example.test"),
        ("Origin", "http://chat.example.test"),
    ];
    let mut ws = ws_through(&nginx, "/chat", &page).expect("same-origin upgrade through nginx");
    ws_until_text(&mut ws, |t| t.starts_with("* welcome"));
    // A page on another site, same Host: cross-site, refused.
    let other = [("Host", "chat.example.test"), ("Origin", "http://evil.example")];
    assert_eq!(ws_through(&nginx, "/chat", &other).err(), Some(403));
    // A name duplex was not told about (DNS rebinding), refused.
    let rebinding = [("Host", "evil.example"), ("Origin", "http://evil.example")];
    assert_eq!(ws_through(&nginx, "/chat", &rebinding).err(), Some(403));
    // A plain request naming it too, with duplex's reason.
    let mut stream = TcpStream::connect(nginx.addr()).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
        .write_all(b"GET /stats HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (status, _, body) = read_response(&mut stream);
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--allow-host evil.example"), "{body}");
}
