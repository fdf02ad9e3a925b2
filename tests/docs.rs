//! The docs are tested: every ```sh block of README.md and docs/*.md is run
//! by `scripts/check-docs.sh` against a duplex of its own on free ports, and
//! the output each page shows is checked. This test runs that script with
//! the binary cargo just built (`DUPLEX_BIN`), so nothing is built twice.
//!
//! The script starts a server, and its blocks start servers, curl and
//! python of their own; all of them are killed when the test ends, on time
//! or not.

mod common;

use common::ProcessTree;
use std::process::Command;
use std::time::Duration;

/// The script takes about 20 s; this bound only stops a hung run.
const LIMIT: Duration = Duration::from_secs(180);

/// How many blocks the pages have that the script runs. A run with fewer
/// has lost some (a block whose fence no longer says `sh` is not run, and
/// nothing else would notice); a page that drops a block on purpose
/// lowers this.
const BLOCKS_RUN_AT_LEAST: usize = 28;

#[test]
fn every_shell_block_in_the_docs_runs_and_prints_what_it_shows() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut bash = Command::new("bash");
    bash.arg(format!("{root}/scripts/check-docs.sh"))
        .current_dir(root)
        .env("DUPLEX_BIN", env!("CARGO_BIN_EXE_duplex"));
    let mut script = ProcessTree::spawn(bash);
    let (status, out, err) = script.wait(LIMIT);
    match status {
        Some(status) if status.success() => {}
        Some(status) => panic!("check-docs failed ({status}):\n{out}\n{err}"),
        None => panic!("check-docs did not finish within {LIMIT:?}; it was killed:\n{out}\n{err}"),
    }
    // The script's own count: it found blocks, and every one it did not
    // skip passed.
    let summary = out
        .lines()
        .find(|l| l.starts_with("check-docs: "))
        .unwrap_or_else(|| panic!("no summary from check-docs:\n{out}"));
    assert!(summary.ends_with(", 0 failed"), "{summary}");
    let ok: usize = summary
        .split(", ")
        .find_map(|part| part.strip_suffix(" ok"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no ok count in {summary:?}"));
    assert!(
        ok >= BLOCKS_RUN_AT_LEAST,
        "{ok} doc blocks ran, at least {BLOCKS_RUN_AT_LEAST} expected: {summary}"
    );
}
