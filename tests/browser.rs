//! The built-in page in a real browser: headless Chromium, driven by
//! `tests/browser/page_test.mjs`, joins the chat through the page's own
//! controls while a telnet client talks to it, runs the echo tester, and
//! takes screenshots (`target/browser/page.png`, `page-mobile.png`).
//!
//! Needs Node, Chromium and playwright-core, which `scripts/install-browser.sh`
//! installs. Without them this test fails and says so: a test that passes
//! without testing anything would hide a page that no longer works.
//!
//! Node runs in a process group of its own, and every process it starts
//! (Chromium among them) is found and killed when the test ends, on time
//! or not.

mod common;

use common::{Duplex, ProcessTree};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The browser test's own waits are 10 s each; the whole run gets this.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(180);

fn missing_tools(root: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|out| out.status.success()) {
        missing.push("node".to_string());
    }
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".to_string());
    if !Path::new(&chromium).exists() {
        missing.push(chromium);
    }
    if !root.join("tests/browser/node_modules/playwright-core").exists() {
        missing.push("tests/browser/node_modules/playwright-core".to_string());
    }
    missing
}

#[test]
fn the_page_chats_with_telnet_and_echoes_in_a_real_browser() {
    let server = Duplex::start(&[]);
    let url = format!("http://{}/", server.http);
    run_page(&server, &url, None, "page");
}

/// The page over `https://`, its WebSocket over `wss://`, and Chromium
/// trusting the self-signed certificate through the pin duplex printed,
/// as a learner would (DESIGN §1.4). The telnet member stays on the plain
/// line door: TLS or not, it is one chat.
#[test]
fn the_page_over_https_talks_wss_in_a_real_browser() {
    let server = Duplex::start(&["--https", "127.0.0.1:0"]);
    let pin = server.printed_pin();
    let url = format!("https://{}/", server.https.expect("--https is open"));
    run_page(&server, &url, Some(&pin), "page-https");
}

/// One Chromium at a time: two starting together on a small machine can
/// each miss the script's 10 s bound for a launch.
static ONE_BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `page_test.mjs` against `url`, screenshots named after `shot`.
fn run_page(server: &Duplex, url: &str, pin: Option<&str>, shot: &str) {
    // A test that failed while holding it leaves nothing to protect.
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let missing = missing_tools(&root);
    assert!(
        missing.is_empty(),
        "the browser test needs {}: run scripts/install-browser.sh (as root, on Debian) \
         to install them; see README.md, \"Test it\"",
        missing.join(", ")
    );
    let shots = root.join("target/browser");
    std::fs::create_dir_all(&shots).unwrap();
    let screenshot = shots.join(format!("{shot}.png"));
    let mobile = shots.join(format!("{shot}-mobile.png"));
    for old in [&screenshot, &mobile] {
        let _ = std::fs::remove_file(old);
    }
    let mut node = Command::new("node");
    node.arg(root.join("tests/browser/page_test.mjs"))
        .args(["--url", url])
        .args(["--telnet", &server.tcp.to_string()])
        .arg("--screenshot")
        .arg(&screenshot);
    if let Some(pin) = pin {
        node.args(["--spki", pin]);
    }
    let mut tree = ProcessTree::spawn(node);
    let (status, stdout, stderr) = tree.wait(BROWSER_TIMEOUT);
    println!("{stdout}");
    let Some(status) = status else {
        panic!(
            "the browser test did not finish within {BROWSER_TIMEOUT:?}; node and Chromium were \
             killed:\n{stdout}\n{stderr}\nserver log:\n{}",
            server.log()
        );
    };
    assert!(
        status.success(),
        "browser test failed ({status}):\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log()
    );
    assert_every_check_passed(&stdout);
    for shot in [&screenshot, &mobile] {
        let size = std::fs::metadata(shot).map_or(0, |m| m.len());
        assert!(size > 1000, "no screenshot at {} ({size} bytes)", shot.display());
    }
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
fn the_classic_echo_page_served_from_a_folder_runs_in_a_real_browser() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let missing = missing_tools(&root);
    assert!(
        missing.is_empty(),
        "the browser test needs {}: run scripts/install-browser.sh",
        missing.join(", ")
    );
    let folder = root.join("tests/browser/classic");
    let server = Duplex::start(&["--static", folder.to_str().expect("a UTF-8 path")]);
    let mut node = Command::new("node");
    node.arg(root.join("tests/browser/classic_test.mjs"))
        .args(["--url", &format!("http://{}/1.html", server.http)]);
    let (status, stdout, stderr) = ProcessTree::spawn(node).wait(BROWSER_TIMEOUT);
    println!("{stdout}");
    assert!(
        status.is_some_and(|s| s.success()),
        "the classic page test failed ({status:?}):\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log()
    );
    assert_every_check_passed(&stdout);
}

/// The tutorials' socket.io chat page (`tests/browser/socketio/index.html`),
/// laid out with npm's client bundle by `scripts/socketio-chat.sh` as a
/// user would, served with `--static` and run by `socketio_test.mjs`: it
/// connects with `io()`, upgrades to WebSocket, and chats with a telnet user.
/// Then the built-in page on socket.io: its frame log decodes each packet.
#[test]
fn the_socketio_tutorial_page_chats_with_telnet_in_a_real_browser() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut missing = missing_tools(&root);
    if !root.join("tests/socketio/node_modules/socket.io-client").exists() {
        missing.push("tests/socketio/node_modules (scripts/install-socketio.sh)".to_string());
    }
    assert!(
        missing.is_empty(),
        "the browser test needs {}: run scripts/install-browser.sh and scripts/install-socketio.sh",
        missing.join(", ")
    );
    let folder = std::env::temp_dir().join(format!("duplex-socketio-chat-{}", std::process::id()));
    let layout = Command::new(root.join("scripts/socketio-chat.sh"))
        .arg(&folder)
        .output()
        .expect("run scripts/socketio-chat.sh");
    assert!(
        layout.status.success(),
        "scripts/socketio-chat.sh failed: {}",
        String::from_utf8_lossy(&layout.stderr)
    );
    let server = Duplex::start(&["--static", folder.to_str().expect("a UTF-8 path")]);
    // The built-in page, for its frame log on socket.io.
    let plain = Duplex::start(&[]);
    let mut node = Command::new("node");
    node.arg(root.join("tests/browser/socketio_test.mjs"))
        .args(["--url", &format!("http://{}/", server.http)])
        .args(["--telnet", &server.tcp.to_string()])
        .args(["--page", &format!("http://{}/", plain.http)]);
    let (status, stdout, stderr) = ProcessTree::spawn(node).wait(BROWSER_TIMEOUT);
    let _ = std::fs::remove_dir_all(&folder);
    println!("{stdout}");
    assert!(
        status.is_some_and(|s| s.success()),
        "the socket.io page test failed ({status:?}):\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log()
    );
    assert_every_check_passed(&stdout);
}
