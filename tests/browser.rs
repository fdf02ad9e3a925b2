//! The built-in page in a real browser: headless Chromium, driven by
//! `tests/browser/page_test.mjs`, joins the chat through the page's own
//! controls while a telnet client talks to it, runs the echo tester, and
//! takes screenshots (`target/browser/page.png`, `page-mobile.png`).
//!
//! Needs Node, Chromium and playwright-core, which `scripts/install-browser.sh`
//! installs. Without them this test says so and passes, unless
//! `DUPLEX_REQUIRE_BROWSER=1` (set by `scripts/test.sh`, and so in CI) makes
//! their absence a failure.

mod common;

use common::Duplex;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The browser test's own waits are 10 s each; the whole run gets this.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(180);

fn missing_tools(root: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
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
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let missing = missing_tools(&root);
    if !missing.is_empty() {
        let message = format!(
            "browser test needs {}: run scripts/install-browser.sh",
            missing.join(", ")
        );
        if std::env::var("DUPLEX_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("{message}");
        }
        eprintln!("skipped: {message}");
        return;
    }
    let server = Duplex::start(&[]);
    let shots = root.join("target/browser");
    std::fs::create_dir_all(&shots).unwrap();
    let screenshot = shots.join("page.png");
    let mut child = Command::new("node")
        .arg(root.join("tests/browser/page_test.mjs"))
        .args(["--url", &format!("http://{}/", server.http)])
        .args(["--telnet", &server.tcp.to_string()])
        .arg("--screenshot")
        .arg(&screenshot)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the browser test did not finish within {BROWSER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        status.success(),
        "browser test failed:\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log()
    );
    assert!(screenshot.exists(), "no screenshot at {}", screenshot.display());
}
