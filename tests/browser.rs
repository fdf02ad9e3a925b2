//! The built-in page in real browsers, Chromium and Firefox: each, headless
//! and driven by `tests/browser/page_test.mjs`, joins the chat through the
//! page's own controls while a telnet client talks to it, runs the echo
//! tester, every transport, a close with a code and the clock, and takes
//! screenshots (`target/browser/page-BROWSER.png`, `-mobile.png`). Each
//! browser has tests of its own, so a failure says which one broke.
//!
//! Needs Node, Debian's `chromium` and `firefox-esr`, and puppeteer-core,
//! which `scripts/install-browser.sh` installs. Without them these tests fail
//! and say so: a test that passes without testing anything would hide a page
//! that no longer works.
//!
//! Node runs in a process group of its own, and every process it starts
//! (the browser among them) is found and killed when the test ends, on time
//! or not.

mod common;

use common::nginx::Nginx;
use common::{Duplex, ProcessTree, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The browser test's own waits are 10 s each; the whole run gets this.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(180);

/// The browsers the page is checked in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Browser {
    Chromium,
    Firefox,
}

impl Browser {
    /// The name `page_test.mjs --browser` takes.
    fn name(self) -> &'static str {
        match self {
            Browser::Chromium => "chromium",
            Browser::Firefox => "firefox",
        }
    }

    /// Where Debian puts it, or where the environment says.
    fn executable(self) -> String {
        let (variable, debian) = match self {
            Browser::Chromium => ("CHROMIUM_PATH", "/usr/bin/chromium"),
            Browser::Firefox => ("FIREFOX_PATH", "/usr/bin/firefox-esr"),
        };
        std::env::var(variable).unwrap_or_else(|_| debian.to_string())
    }
}

fn missing_tools(root: &Path, browser: Browser) -> Vec<String> {
    let mut missing = Vec::new();
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|out| out.status.success()) {
        missing.push("node".to_string());
    }
    let executable = browser.executable();
    if !Path::new(&executable).exists() {
        missing.push(executable);
    }
    if !root.join("tests/browser/node_modules/puppeteer-core").exists() {
        missing.push("tests/browser/node_modules/puppeteer-core".to_string());
    }
    missing
}

#[test]
fn the_page_chats_with_telnet_and_echoes_in_a_real_browser_chromium() {
    let server = Duplex::start(&[]);
    let url = format!("http://{}/", server.http);
    let said = run_page_in(Browser::Chromium, &server, &url, None, "page");
    assert!(said.contains("ok   Chromium starts headless"), "{said}");
}

/// Firefox's upgrade differs from Chromium's: older releases sent
/// `Connection: keep-alive, Upgrade`, and servers that compared the whole
/// value broke on it (amphp/http-server#70, websocketd#5; that form is
/// checked byte for byte in tests/core.rs). `--hexdump` prints the head
/// duplex received: it must be Firefox's, name the upgrade among its
/// connection options, and have been answered 101.
#[test]
fn the_page_chats_with_telnet_and_echoes_in_a_real_browser_firefox() {
    let server = Duplex::start_with_env(&["--hexdump"], &[("RUST_LOG", "duplex=info")]);
    let url = format!("http://{}/", server.http);
    let said = run_page_in(Browser::Firefox, &server, &url, None, "page-firefox");
    assert!(said.contains("ok   Firefox starts headless"), "{said}");
    let log = server.log();
    let head = request_head(&log, "GET /chat ")
        .unwrap_or_else(|| panic!("--hexdump showed no request head for /chat:\n{log}"));
    println!("the request head duplex received from Firefox (--hexdump):\n{head}");
    assert!(head.contains("Firefox/"), "{head}");
    let connection = head
        .lines()
        .find_map(|l| l.strip_prefix("Connection: "))
        .unwrap_or_else(|| panic!("no Connection header:\n{head}"));
    let options: Vec<String> = connection
        .split(',')
        .map(|o| o.trim().to_ascii_lowercase())
        .collect();
    assert!(options.iter().any(|o| o == "upgrade"), "{head}");
    assert!(
        log.contains("handshake answer:\n    HTTP/1.1 101 Switching Protocols"),
        "{log}"
    );
}

/// The page through nginx, configured as docs/10-reverse-proxy.md says and
/// with its timeouts unchanged: every check passes as it does directly,
/// nginx's own log shows the upgrades, and duplex names the client nginx
/// saw (`::1`) and the proxy it came through.
#[test]
fn the_page_works_through_nginx_in_a_real_browser_firefox() {
    let server = Duplex::start(&["--trust-proxy", "127.0.0.1"]);
    let nginx = Nginx::start(server.http, "75s");
    let url = format!("http://{}/", nginx.addr());
    run_page_in(Browser::Firefox, &server, &url, None, "page-nginx-firefox");
    for endpoint in ["/chat", "/echo"] {
        nginx.wait_access_log(&[&format!("\"GET {endpoint} HTTP/1.1\" 101 "), "Firefox/"]);
    }
    server.wait_log("::1 via 127.0.0.1:");
}

/// The first request head `--hexdump` logged whose request line starts
/// with `start`: the lines after `request head:`, which the logger
/// indents by four spaces, up to the blank one.
fn request_head(log: &str, start: &str) -> Option<String> {
    log.split("request head:\n").skip(1).find_map(|rest| {
        let head: Vec<&str> = rest
            .lines()
            .map_while(|l| l.strip_prefix("    ").filter(|l| !l.is_empty()))
            .collect();
        head.first()?.starts_with(start).then(|| head.join("\n"))
    })
}

/// The page over `https://`, its WebSocket over `wss://`, and Chromium
/// trusting the self-signed certificate through the pin duplex printed,
/// as a learner would (DESIGN §1.4). The telnet member stays on the plain
/// line door: TLS or not, it is one chat.
#[test]
fn the_page_over_https_talks_wss_in_a_real_browser_chromium() {
    https_page(Browser::Chromium, "page-https");
}

/// The same in Firefox, which has no pin flag: it is started accepting
/// the certificate for that run's profile only.
#[test]
fn the_page_over_https_talks_wss_in_a_real_browser_firefox() {
    https_page(Browser::Firefox, "page-https-firefox");
}

fn https_page(browser: Browser, shot: &str) {
    let server = Duplex::start(&["--https", "127.0.0.1:0"]);
    let pin = server.tls_pin();
    let url = format!("https://{}/", server.https.expect("--https is open"));
    run_page_in(browser, &server, &url, Some(&pin), shot);
}

/// One browser at a time: two starting together on a small machine can
/// each miss the script's bound for a launch.
static ONE_BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `page_test.mjs` in `browser` against `url`, screenshots named
/// after `shot`; returns what the script printed.
fn run_page_in(browser: Browser, server: &Duplex, url: &str, pin: Option<&str>, shot: &str) -> String {
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    std::fs::create_dir_all(&shots).unwrap();
    let screenshot = shots.join(format!("{shot}.png"));
    let mobile = shots.join(format!("{shot}-mobile.png"));
    for old in [&screenshot, &mobile] {
        let _ = std::fs::remove_file(old);
    }
    let mut args = vec![
        "--url".to_string(),
        url.to_string(),
        "--telnet".to_string(),
        server.tcp.to_string(),
        "--screenshot".to_string(),
        screenshot.display().to_string(),
    ];
    if let Some(pin) = pin {
        args.extend(["--spki".to_string(), pin.to_string()]);
    }
    let stdout = run_script("page_test.mjs", browser, server, &args);
    for shot in [&screenshot, &mobile] {
        let size = std::fs::metadata(shot).map_or(0, |m| m.len());
        assert!(size > 1000, "no screenshot at {} ({size} bytes)", shot.display());
    }
    stdout
}

/// Runs one of `tests/browser/`'s scripts in `browser`, one browser at a
/// time, and holds it to its own verdict; returns what it printed.
fn run_script(script: &str, browser: Browser, server: &Duplex, args: &[String]) -> String {
    // A test that failed while holding it leaves nothing to protect.
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let missing = missing_tools(&root, browser);
    assert!(
        missing.is_empty(),
        "the browser test in {browser:?} needs {}: run scripts/install-browser.sh (as root, \
         on Debian) to install them; see README.md, \"Test it\"",
        missing.join(", ")
    );
    let mut node = Command::new("node");
    node.arg(root.join("tests/browser").join(script))
        .args(["--browser", browser.name()])
        .args(args);
    let mut tree = ProcessTree::spawn(node);
    let (status, stdout, stderr) = tree.wait(BROWSER_TIMEOUT);
    println!("{stdout}");
    let Some(status) = status else {
        panic!(
            "{script} did not finish within {BROWSER_TIMEOUT:?} in {browser:?}; node and the \
             browser were killed:\n{stdout}\n{stderr}\nserver log:\n{}",
            server.log()
        );
    };
    assert!(
        status.success(),
        "{script} failed in {browser:?} ({status}):\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log()
    );
    assert_every_check_passed(&stdout);
    stdout
}

/// The script's own verdict: every declared check ran and passed.
fn assert_every_check_passed(stdout: &str) {
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("browser: ") && l.contains(" passed, "))
        .unwrap_or_else(|| panic!("no summary line from the browser test:\n{stdout}"));
    assert!(summary.contains(" passed, 0 failed"), "{summary}");
    let declared = stdout
        .lines()
        .find_map(|l| l.strip_prefix("browser: checks declared: "))
        .unwrap_or_else(|| panic!("the browser test did not declare its checks:\n{stdout}"));
    assert!(
        summary.starts_with(&format!("browser: {declared} passed, 0 failed")),
        "{summary} (declared {declared})"
    );
}

/// The classic `1.html` of the tutorials (the `echo-protocol` echo page,
/// the project's own copy in `tests/browser/classic/`), served from a folder
/// with `--static` and run by `classic_test.mjs`: it loads, connects back
/// to `/` with its subprotocol, and has its text and binary echoed.
#[test]
fn the_classic_echo_page_served_from_a_folder_runs_in_a_real_browser_chromium() {
    classic_page(Browser::Chromium);
}

/// The same page in Firefox.
#[test]
fn the_classic_echo_page_served_from_a_folder_runs_in_a_real_browser_firefox() {
    classic_page(Browser::Firefox);
}

fn classic_page(browser: Browser) {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/classic");
    let server = Duplex::start(&["--static", folder.to_str().expect("a UTF-8 path")]);
    let url = format!("http://{}/1.html", server.http);
    run_script("classic_test.mjs", browser, &server, &["--url".to_string(), url]);
}

/// The page's loop panels (`tests/browser/loop_test.mjs`): a telnet line
/// shows as a turn with its token, the connection's state machine is drawn
/// with the kernel's TCP state, and a socket the peer closed leaves the
/// table. Screenshots: `target/browser/loop/loop-panel.png`,
/// `conns-panel.png` and `conns-panel-closed.png`.
#[test]
fn the_loop_panels_watch_a_telnet_session_in_a_real_browser_chromium() {
    loop_panels(Browser::Chromium, "");
}

/// The same panels in Firefox (screenshots in `target/browser/loop-firefox/`).
#[test]
fn the_loop_panels_watch_a_telnet_session_in_a_real_browser_firefox() {
    loop_panels(Browser::Firefox, "-firefox");
}

fn loop_panels(browser: Browser, suffix: &str) {
    let server = Duplex::start(&[]);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shots = root.join("target/browser").join(format!("loop{suffix}"));
    std::fs::create_dir_all(&shots).unwrap();
    let names = ["loop-panel.png", "conns-panel.png", "conns-panel-closed.png"];
    for name in names {
        let _ = std::fs::remove_file(shots.join(name));
    }
    let args = [
        "--url".to_string(),
        format!("http://{}/", server.http),
        "--telnet".to_string(),
        server.tcp.to_string(),
        "--shots".to_string(),
        shots.display().to_string(),
    ];
    run_script("loop_test.mjs", browser, &server, &args);
    for name in names {
        let size = std::fs::metadata(shots.join(name)).map_or(0, |m| m.len());
        assert!(size > 1000, "no screenshot {name} ({size} bytes)");
    }
}

/// The tutorials' socket.io chat page (`tests/browser/socketio/index.html`),
/// laid out with npm's client bundle by `scripts/socketio-chat.sh` as a
/// user would, served with `--static` and run by `socketio_test.mjs`: it
/// connects with `io()`, upgrades to WebSocket, and chats with a telnet user;
/// then it reaches a second server on another origin through CORS, by
/// socket.io's polling and by the HTTP transports. Then the built-in page
/// on socket.io: its frame log decodes each packet.
#[test]
fn the_socketio_tutorial_page_chats_with_telnet_in_a_real_browser_chromium() {
    socketio_page(Browser::Chromium);
}

/// The same in Firefox.
#[test]
fn the_socketio_tutorial_page_chats_with_telnet_in_a_real_browser_firefox() {
    socketio_page(Browser::Firefox);
}

fn socketio_page(browser: Browser) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join("tests/socketio/node_modules/socket.io-client").exists(),
        "the socket.io page test needs tests/socketio/node_modules: run scripts/install-socketio.sh"
    );
    let folder = TempDir::new(&format!("socketio-chat-{}", browser.name()));
    let layout = Command::new(root.join("scripts/socketio-chat.sh"))
        .arg(&folder.0)
        .output()
        .expect("run scripts/socketio-chat.sh");
    assert!(
        layout.status.success(),
        "scripts/socketio-chat.sh failed: {}",
        String::from_utf8_lossy(&layout.stderr)
    );
    let server = Duplex::start(&["--static", folder.0.to_str().expect("a UTF-8 path")]);
    // The built-in page, for its frame log on socket.io.
    let plain = Duplex::start(&[]);
    let args = [
        "--url".to_string(),
        format!("http://{}/", server.http),
        "--telnet".to_string(),
        server.tcp.to_string(),
        "--page".to_string(),
        format!("http://{}/", plain.http),
    ];
    run_script("socketio_test.mjs", browser, &server, &args);
}
