//! `--static DIR` over real sockets: what is served, how, and every hostile
//! path refused, each form in a test of its own.
//!
//! Each test builds its own folder under the system's temp dir:
//!
//! ```text
//! site-N/
//!   secret.txt            outside DIR: no request may reach it
//!   www/                  DIR
//!     index.html  hello.txt  app.js ...
//!     .env  .git/config   dotfiles, hidden
//!     sub/a.txt           a folder without index.html
//!     docs/index.html     a folder with one
//!     out -> ../secret.txt, etc -> /etc        links that lead out
//!     alias.txt -> hello.txt                   a link that stays in
//! ```

mod common;

use common::{header_value, http_request, read_response, web_connect, Duplex, RawWs, WAIT};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::time::Instant;

const SECRET: &str = "the secret outside the static folder";
const HELLO: &str = "hello from a file\n";

/// A site folder, removed when the test ends.
struct Site {
    root: PathBuf,
}

impl Site {
    fn new(name: &str) -> Site {
        let root = std::env::temp_dir().join(format!("duplex-static-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let www = root.join("www");
        for dir in ["sub", "docs", ".git"] {
            std::fs::create_dir_all(www.join(dir)).unwrap();
        }
        std::fs::write(root.join("secret.txt"), SECRET).unwrap();
        std::fs::write(www.join("hello.txt"), HELLO).unwrap();
        std::fs::write(www.join(".env"), SECRET).unwrap();
        std::fs::write(www.join(".git/config"), SECRET).unwrap();
        std::fs::write(www.join("sub/a.txt"), "a\n").unwrap();
        std::fs::write(www.join("docs/index.html"), "<p>docs</p>\n").unwrap();
        symlink("../secret.txt", www.join("out")).unwrap();
        symlink("/etc", www.join("etc")).unwrap();
        symlink("hello.txt", www.join("alias.txt")).unwrap();
        symlink(".env", www.join("env-alias")).unwrap();
        Site { root }
    }

    fn www(&self) -> PathBuf {
        self.root.join("www")
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.www().join(name), bytes).unwrap();
    }

    fn serve(&self, extra: &[&str]) -> Duplex {
        let www = self.www();
        let mut args = vec!["--static", www.to_str().unwrap()];
        args.extend_from_slice(extra);
        Duplex::start(&args)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// `GET target` exactly as written (no client tidies it), one answer.
fn get(http: SocketAddr, target: &str) -> (u16, String, Vec<u8>) {
    request(http, "GET", target, "")
}

fn request(http: SocketAddr, method: &str, target: &str, extra: &str) -> (u16, String, Vec<u8>) {
    let text = format!("{method} {target} HTTP/1.1\r\nHost: {http}\r\n{extra}\r\n");
    http_request(http, text.as_bytes())
}

/// A request must be refused with `status`, and nothing of the secret
/// may come back.
fn refused(target: &str, status: u16) {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let site = Site::new(&format!("refused-{n}"));
    let server = site.serve(&[]);
    let (got, head, body) = get(server.http, target);
    let body = String::from_utf8_lossy(&body);
    assert_eq!(got, status, "{target}: {head}{body}");
    assert!(!body.contains(SECRET), "{target} leaked the secret");
    assert!(!body.contains("root:"), "{target} leaked /etc/passwd");
}

#[test]
fn files_are_served_with_their_types() {
    let site = Site::new("types");
    let files = [
        ("page.html", "text/html; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("site.css", "text/css; charset=utf-8"),
        ("data.json", "application/json"),
        ("logo.svg", "image/svg+xml"),
        ("logo.png", "image/png"),
        ("photo.jpeg", "image/jpeg"),
        ("photo.jpg", "image/jpeg"),
        ("module.wasm", "application/wasm"),
        ("notes.txt", "text/plain; charset=utf-8"),
        ("archive.tar", "application/octet-stream"),
        ("README", "application/octet-stream"),
    ];
    for (name, _) in files {
        site.write(name, name.as_bytes());
    }
    let server = site.serve(&[]);
    for (name, content_type) in files {
        let (status, head, body) = get(server.http, &format!("/{name}"));
        assert_eq!(status, 200, "{name}: {head}");
        assert_eq!(body, name.as_bytes(), "{name}");
        assert_eq!(
            header_value(&head, "Content-Type").as_deref(),
            Some(content_type),
            "{name}"
        );
        assert_eq!(
            header_value(&head, "X-Content-Type-Options").as_deref(),
            Some("nosniff")
        );
    }
    let (status, _, body) = get(server.http, "/sub/a.txt");
    assert_eq!((status, body.as_slice()), (200, &b"a\n"[..]));
    // A name with a space, percent-encoded as a browser sends it.
    site.write("two words.txt", b"spaced");
    let (status, _, body) = get(server.http, "/two%20words.txt");
    assert_eq!((status, body.as_slice()), (200, &b"spaced"[..]));
}

#[test]
fn the_built_in_page_stays_at_root_unless_the_folder_has_an_index() {
    let site = Site::new("root");
    let server = site.serve(&[]);
    let (status, _, body) = get(server.http, "/");
    assert_eq!(status, 200);
    assert!(
        String::from_utf8_lossy(&body).contains("duplex"),
        "the built-in page"
    );
    site.write("index.html", b"<h1>mine</h1>\n");
    let (status, head, body) = get(server.http, "/");
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"<h1>mine</h1>\n"[..]),
        "{head}"
    );
    assert_eq!(
        header_value(&head, "Content-Type").as_deref(),
        Some("text/html; charset=utf-8")
    );
}

#[test]
fn websocket_and_transport_paths_win_over_files_of_the_same_name() {
    let site = Site::new("paths");
    for name in [
        "index.html",
        "stats",
        "healthz",
        "metrics",
        "echo",
        "chat",
        "poll",
        "send",
    ] {
        site.write(name, SECRET.as_bytes());
    }
    let server = site.serve(&[]);
    let (status, head, _) = get(server.http, "/stats");
    assert_eq!(status, 200);
    assert_eq!(
        header_value(&head, "Content-Type").as_deref(),
        Some("application/json")
    );
    assert_eq!(get(server.http, "/healthz").2, b"ok\n");
    assert!(String::from_utf8_lossy(&get(server.http, "/metrics").2).contains("duplex_loop_turns_total"));
    // A plain GET on a WebSocket endpoint still asks for the upgrade.
    assert_eq!(get(server.http, "/echo").0, 426);
    assert_eq!(get(server.http, "/chat").0, 426);
    // `/` upgrades to the echo even though DIR/index.html now serves GET /.
    let mut ws = RawWs::connect(server.http, "/");
    ws.send_frame(true, 0x1, b"still echoing");
    assert_eq!(ws.read_frame().expect("an echo").payload, b"still echoing");
    let mut chat = RawWs::connect(server.http, "/chat");
    assert_eq!(chat.read_frame().expect("a greeting").opcode, 0x1);
    // The chat transports answer as chat transports (the poll hands out
    // a member token), not as the files.
    let (status, _, body) = get(server.http, "/poll");
    assert_eq!(status, 200);
    assert!(!String::from_utf8_lossy(&body).contains(SECRET));
}

#[test]
fn a_folder_without_its_slash_is_redirected_to_it() {
    let site = Site::new("redirect");
    let server = site.serve(&[]);
    let (status, head, _) = get(server.http, "/docs?x=1");
    assert_eq!(status, 301, "{head}");
    assert_eq!(header_value(&head, "Location").as_deref(), Some("/docs/?x=1"));
    let (status, _, body) = get(server.http, "/docs/");
    assert_eq!((status, body.as_slice()), (200, &b"<p>docs</p>\n"[..]));
    // The classic open redirect (serve-static, CVE-2015-1164): `//host`
    // names a folder here, and its Location must not name another host.
    std::fs::create_dir_all(site.www().join("evil.example")).unwrap();
    let (status, head, _) = get(server.http, "//evil.example");
    assert_eq!(status, 301, "{head}");
    assert_eq!(header_value(&head, "Location").as_deref(), Some("/evil.example/"));
}

#[test]
fn folders_are_never_listed() {
    let site = Site::new("listing");
    let server = site.serve(&[]);
    let (status, _, body) = get(server.http, "/sub/");
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("folders are not listed"), "{body}");
    assert!(!body.contains("a.txt"), "the folder's files were named: {body}");
}

#[test]
fn an_etag_that_matches_gets_304() {
    let site = Site::new("etag");
    let server = site.serve(&[]);
    let (status, head, _) = get(server.http, "/hello.txt");
    assert_eq!(status, 200);
    let etag = header_value(&head, "ETag").expect("an ETag");
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let (status, head, body) = request(
        server.http,
        "GET",
        "/hello.txt",
        &format!("If-None-Match: {etag}\r\n"),
    );
    assert_eq!(status, 304, "{head}");
    assert!(body.is_empty());
    assert_eq!(header_value(&head, "ETag").as_deref(), Some(etag.as_str()));
    assert_eq!(header_value(&head, "Content-Length"), None, "{head}");
    // Another tag: the file is sent.
    let (status, _, body) = request(server.http, "GET", "/hello.txt", "If-None-Match: \"other\"\r\n");
    assert_eq!((status, body.as_slice()), (200, HELLO.as_bytes()));
    // The file changes: the old tag no longer matches.
    site.write("hello.txt", b"changed, and longer than before\n");
    let (status, _, body) = request(
        server.http,
        "GET",
        "/hello.txt",
        &format!("If-None-Match: {etag}\r\n"),
    );
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"changed, and longer than before\n"[..])
    );
}

#[test]
fn if_modified_since_gets_304_until_the_file_changes() {
    let site = Site::new("modified");
    let server = site.serve(&[]);
    let (_, head, _) = get(server.http, "/hello.txt");
    let modified = header_value(&head, "Last-Modified").expect("Last-Modified");
    assert!(modified.ends_with(" GMT"), "{modified}");
    let since = format!("If-Modified-Since: {modified}\r\n");
    assert_eq!(request(server.http, "GET", "/hello.txt", &since).0, 304);
    let old = "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n";
    assert_eq!(request(server.http, "GET", "/hello.txt", old).0, 200);
    // A date that is no date is ignored (RFC 9110 §13.1.3).
    assert_eq!(
        request(server.http, "GET", "/hello.txt", "If-Modified-Since: soon\r\n").0,
        200
    );
}

#[test]
fn head_sends_the_head_with_the_length_and_no_body() {
    let site = Site::new("head");
    let server = site.serve(&[]);
    let text = format!(
        "HEAD /hello.txt HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.http
    );
    let answer = common::http_raw(server.http, text.as_bytes());
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(
        header_value(head, "Content-Length"),
        Some(HELLO.len().to_string())
    );
    assert!(body.is_empty(), "HEAD had a body: {body:?}");
}

#[test]
fn other_methods_on_a_file_get_405_with_allow() {
    let site = Site::new("methods");
    let server = site.serve(&[]);
    let (status, head, _) = request(server.http, "POST", "/hello.txt", "Content-Length: 0\r\n");
    assert_eq!(status, 405, "{head}");
    assert_eq!(header_value(&head, "Allow").as_deref(), Some("GET, HEAD"));
}

#[test]
fn a_file_over_the_size_bound_is_refused_with_its_size() {
    let site = Site::new("bound");
    site.write("big.bin", &vec![0; 2000]);
    let server = site.serve(&["--static-max-file", "1000"]);
    let (status, _, body) = get(server.http, "/big.bin");
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("2000 bytes") && body.contains("--static-max-file"),
        "{body}"
    );
    assert_eq!(get(server.http, "/hello.txt").0, 200);
}

#[test]
fn a_missing_folder_stops_the_server_at_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_duplex"))
        .args([
            "--tcp",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--static",
            "/no/such/folder",
        ])
        .output()
        .expect("run duplex");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--static /no/such/folder"), "{err}");
}

// The hostile forms, one test each. The server is asked exactly what a
// hostile client would send: nothing here is normalised by a client first.

#[test]
fn dot_dot_is_refused() {
    refused("/../secret.txt", 403);
}

#[test]
fn dot_dot_after_a_folder_is_refused() {
    refused("/sub/../../secret.txt", 403);
}

#[test]
fn encoded_dot_dot_is_refused() {
    refused("/%2e%2e/secret.txt", 403);
}

#[test]
fn encoded_dot_dot_in_capitals_and_mixed_is_refused() {
    refused("/%2E%2E/secret.txt", 403);
    refused("/.%2E/secret.txt", 403);
    refused("/%2e./secret.txt", 403);
}

#[test]
fn double_encoded_dot_dot_is_decoded_once_only() {
    // `%252e` decodes to the three characters `%2e`: a name, not a dot.
    refused("/%252e%252e/secret.txt", 404);
}

#[test]
fn a_backslash_is_refused() {
    // httparse already refuses a raw backslash in the request line; either
    // way, the answer is 400.
    refused("/..\\secret.txt", 400);
}

#[test]
fn an_encoded_backslash_is_refused() {
    refused("/..%5csecret.txt", 400);
    refused("/..%5Csecret.txt", 400);
}

#[test]
fn an_encoded_nul_is_refused() {
    refused("/hello.txt%00.png", 400);
}

#[test]
fn a_raw_nul_is_refused() {
    let site = Site::new("nul");
    let server = site.serve(&[]);
    let request = format!("GET /hello.txt\0.png HTTP/1.1\r\nHost: {}\r\n\r\n", server.http);
    let (status, _, body) = http_request(server.http, request.as_bytes());
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
}

#[test]
fn an_absolute_path_stays_inside_the_folder() {
    // `//etc/passwd` is the relative `etc/passwd` under DIR, where `etc` is
    // a link to /etc: refused as a link out, never the real file.
    refused("//etc/passwd", 403);
    refused("/etc/passwd", 403);
}

#[test]
fn an_encoded_absolute_path_is_refused() {
    refused("/%2fetc%2fpasswd", 400);
    refused("/%2Fetc/passwd", 400);
}

#[test]
fn an_absolute_form_target_with_dot_dot_is_refused() {
    let site = Site::new("absolute-form");
    let server = site.serve(&[]);
    let target = format!("http://{}/../secret.txt", server.http);
    let (status, _, body) = get(server.http, &target);
    assert_eq!(status, 403);
    assert!(!String::from_utf8_lossy(&body).contains(SECRET));
}

#[test]
fn a_symlink_out_of_the_folder_is_refused() {
    refused("/out", 403);
}

#[test]
fn a_symlink_inside_the_folder_is_followed() {
    let site = Site::new("alias");
    let server = site.serve(&[]);
    let (status, _, body) = get(server.http, "/alias.txt");
    assert_eq!((status, body.as_slice()), (200, HELLO.as_bytes()));
}

#[test]
fn dotfiles_are_hidden() {
    refused("/.env", 404);
    refused("/.git/config", 404);
    refused("/%2eenv", 404);
}

#[test]
fn a_symlink_to_a_dotfile_is_hidden_too() {
    refused("/env-alias", 404);
}

/// Asks for /big.bin on a connection of its own, and reads nothing yet.
fn start_big_get(http: SocketAddr) -> std::net::TcpStream {
    let mut stream = web_connect(http);
    let text = format!("GET /big.bin HTTP/1.1\r\nHost: {http}\r\n\r\n");
    stream.write_all(text.as_bytes()).unwrap();
    stream
}

/// The file a streaming test sends: large enough that it cannot all sit
/// in the sockets' buffers, with every byte telling where it is.
fn patterned(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Reads what is left of a response body until end of stream (bounded by
/// the stream's read timeout).
fn read_to_eof(stream: &mut std::net::TcpStream, into: &mut Vec<u8>) {
    let mut chunk = vec![0; 1 << 16];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => into.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// A response head, and whatever of the body came with it.
fn read_head(stream: &mut std::net::TcpStream) -> (String, Vec<u8>) {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let body = got.split_off(end + 4);
            return (String::from_utf8_lossy(&got).into_owned(), body);
        }
        let n = stream.read(&mut chunk).expect("read a head");
        assert!(n > 0, "closed before the head ended");
        got.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn a_large_file_streams_whole_and_is_never_queued_whole() {
    let site = Site::new("stream");
    let file = patterned(24 << 20);
    site.write("big.bin", &file);
    let server = site.serve(&[]);
    // A reader that takes nothing for now: the server must hold at most a
    // couple of chunks for it, not the file.
    let mut stream = start_big_get(server.http);
    let metrics = format!("GET /metrics HTTP/1.1\r\nHost: {}\r\n\r\n", server.http);
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, _, body) = http_request(server.http, metrics.as_bytes());
        let body = String::from_utf8_lossy(&body);
        let queued: f64 = body
            .lines()
            .find_map(|l| l.strip_prefix("duplex_output_queue_largest_bytes "))
            .and_then(|v| v.parse().ok())
            .expect("the largest-queue gauge");
        assert!(queued <= (256 << 10) as f64, "{queued} bytes queued for one file");
        if queued > 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "the file never started");
    }
    // Now read it all: every byte, in order, and the connection stays
    // usable for the next request.
    let (status, head, body) = read_response(&mut stream);
    assert_eq!(status, 200, "{head}");
    assert!(
        body == file,
        "the body differs from the file ({} bytes)",
        body.len()
    );
    let next = format!("GET /hello.txt HTTP/1.1\r\nHost: {}\r\n\r\n", server.http);
    stream.write_all(next.as_bytes()).unwrap();
    assert_eq!(read_response(&mut stream).2, HELLO.as_bytes());
}

#[test]
fn pipelined_requests_behind_a_file_are_answered_in_order() {
    let site = Site::new("pipeline");
    let file = patterned(3 << 20);
    site.write("big.bin", &file);
    let server = site.serve(&[]);
    let mut stream = web_connect(server.http);
    let one = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", server.http);
    let text = one("/big.bin") + &one("/hello.txt") + &one("/nothing");
    stream.write_all(text.as_bytes()).unwrap();
    assert!(read_response(&mut stream).2 == file);
    assert_eq!(read_response(&mut stream).2, HELLO.as_bytes());
    assert_eq!(read_response(&mut stream).0, 404);
}

#[test]
fn a_client_that_half_closes_still_gets_the_whole_file() {
    let site = Site::new("half-close");
    let file = patterned(2 << 20);
    site.write("big.bin", &file);
    let server = site.serve(&[]);
    let mut stream = start_big_get(server.http);
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let (head, mut body) = read_head(&mut stream);
    read_to_eof(&mut stream, &mut body);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body == file, "got {} of {} bytes", body.len(), file.len());
}

/// Starts a large file to a reader that waits, lets `change` act on the
/// file, then reads: the body must be a true prefix of the original, shorter
/// than its Content-Length, and end with the connection closed.
fn changed_mid_send(name: &str, change: impl FnOnce(&std::path::Path)) {
    let site = Site::new(name);
    let file = patterned(48 << 20);
    site.write("big.bin", &file);
    let server = site.serve(&[]);
    let mut stream = start_big_get(server.http);
    let (head, mut body) = read_head(&mut stream);
    assert_eq!(
        header_value(&head, "Content-Length"),
        Some(file.len().to_string())
    );
    change(&site.www().join("big.bin"));
    read_to_eof(&mut stream, &mut body);
    assert!(body.len() < file.len(), "the whole file came through a change");
    assert!(body == file[..body.len()], "bytes beyond the original were sent");
    server.wait_log("static file: /big.bin: the file");
}

#[test]
fn a_file_that_shrinks_mid_send_closes_the_connection() {
    changed_mid_send("shrink", |path| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
    });
}

#[test]
fn a_file_rewritten_mid_send_closes_the_connection() {
    changed_mid_send("rewrite", |path| {
        // Same length, new bytes at the end: only the time tells.
        let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        use std::io::{Seek, SeekFrom};
        file.seek(SeekFrom::End(-4)).unwrap();
        file.write_all(b"new!").unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(2);
        file.set_modified(later).unwrap();
    });
}

#[test]
fn a_reader_that_takes_nothing_is_closed_as_too_slow() {
    let site = Site::new("slow");
    site.write("big.bin", &patterned(32 << 20));
    let server = site.serve(&["--slow-reader-timeout", "1s"]);
    let mut stream = start_big_get(server.http);
    server.wait_log("took none of a file for 1s");
    // Reading now drains what was in flight, then meets the end: the
    // rest of the file is never sent.
    let (head, mut body) = read_head(&mut stream);
    read_to_eof(&mut stream, &mut body);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.len() < 32 << 20, "the whole file came after the close");
}
