//! The docs are tested: every ```sh block of README.md and docs/*.md is run
//! by `scripts/check-docs.sh` against a duplex of its own on free ports, and
//! the output each page shows is checked. This test runs that script with
//! the binary cargo just built (`DUPLEX_BIN`), so nothing is built twice.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The script takes about 15 s; this bound only stops a hung run.
const LIMIT: Duration = Duration::from_secs(180);

#[test]
fn every_shell_block_in_the_docs_runs_and_prints_what_it_shows() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut child = Command::new("bash")
        .arg(format!("{root}/scripts/check-docs.sh"))
        .current_dir(root)
        .env("DUPLEX_BIN", env!("CARGO_BIN_EXE_duplex"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run scripts/check-docs.sh");
    // Read the output on threads so a full pipe never stalls the script.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for check-docs") {
            break Some(status);
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    match status {
        Some(status) if status.success() => {}
        Some(status) => panic!("check-docs failed ({status}):\n{out}\n{err}"),
        None => panic!("check-docs did not finish within {LIMIT:?}:\n{out}\n{err}"),
    }
}
