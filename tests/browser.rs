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
    verdict(&stdout);
    for shot in [&screenshot, &mobile] {
        let size = std::fs::metadata(shot).map_or(0, |m| m.len());
        assert!(size > 1000, "no screenshot at {} ({size} bytes)", shot.display());
    }
}

/// The script's own verdict: every declared check ran and passed.
fn verdict(stdout: &str) {
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

/// The page's loop panels (`tests/browser/loop_test.mjs`): a telnet line
/// shows as a turn with its token, the connection's state machine is drawn
/// with the kernel's TCP state, and a socket the peer closed leaves the
/// table. Screenshots: `target/browser/loop-panel.png`, `conns-panel.png`
/// and `conns-panel-closed.png`.
#[test]
fn the_loop_panels_watch_a_telnet_session_in_a_real_browser() {
    let server = Duplex::start(&[]);
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let missing = missing_tools(&root);
    assert!(
        missing.is_empty(),
        "the browser test needs {}: run scripts/install-browser.sh",
        missing.join(", ")
    );
    let shots = root.join("target/browser");
    std::fs::create_dir_all(&shots).unwrap();
    let names = ["loop-panel.png", "conns-panel.png", "conns-panel-closed.png"];
    for name in names {
        let _ = std::fs::remove_file(shots.join(name));
    }
    let mut node = Command::new("node");
    node.arg(root.join("tests/browser/loop_test.mjs"))
        .args(["--url", &format!("http://{}/", server.http)])
        .args(["--telnet", &server.tcp.to_string()])
        .arg("--shots")
        .arg(&shots);
    let mut tree = ProcessTree::spawn(node);
    let (status, stdout, stderr) = tree.wait(BROWSER_TIMEOUT);
    println!("{stdout}");
    assert!(
        status.is_some_and(|s| s.success()),
        "loop panel test failed ({status:?}):\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log()
    );
    verdict(&stdout);
    for name in names {
        let size = std::fs::metadata(shots.join(name)).map_or(0, |m| m.len());
        assert!(size > 1000, "no screenshot {name} ({size} bytes)");
    }
}
