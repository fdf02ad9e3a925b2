//! Rough edges a newcomer meets on the first day: the wording of `/stats`
//! and what `--hexdump` shows. Real sockets, the real binary.

mod common;

use common::{Duplex, Telnet};

#[test]
fn stats_counts_in_words_that_agree() {
    let server = Duplex::start(&[]);
    let (mut alone, _) = Telnet::join(server.tcp);
    alone.say("/stats");
    let line = alone.until(|l| l.starts_with("* stats:"));
    assert!(line.starts_with("* stats: 1 connection (telnet 1,"), "{line}");
    assert!(line.contains(", 1 member in 1 room,"), "{line}");
    let (_other, _) = Telnet::join(server.tcp);
    alone.say("/stats");
    let line = alone.until(|l| l.starts_with("* stats:"));
    assert!(line.starts_with("* stats: 2 connections (telnet 2,"), "{line}");
    assert!(line.contains(", 2 members in 1 room,"), "{line}");
}

#[test]
fn hexdump_shows_both_directions_labelled() {
    let server = Duplex::start(&["--hexdump", "--line-echo"]);
    let mut t = Telnet::connect(server.tcp);
    t.say("hi");
    assert_eq!(t.line(), "hi");
    let peer = t.stream.local_addr().unwrap();
    server.wait_log(&format!("duplex -> {peer}, 4 bytes:"));
    let log = server.log();
    let inbound = format!("{peer} -> duplex, 4 bytes:");
    let outbound = format!("duplex -> {peer}, 4 bytes:");
    for label in [&inbound, &outbound] {
        let at = log
            .find(label.as_str())
            .unwrap_or_else(|| panic!("{label} in {log}"));
        let dump = log[at..].lines().nth(1).unwrap_or("");
        assert!(
            dump.contains("68 69 0d 0a") && dump.contains("|hi..|"),
            "{label}: {dump}"
        );
    }
    assert!(log.find(&inbound) < log.find(&outbound), "read before written");
}

#[test]
fn a_door_already_in_use_is_named_with_the_option_that_moves_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for (door, option) in [("line", "--tcp"), ("web", "--http")] {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_duplex"));
        let (tcp, http) = if door == "line" {
            (addr.as_str(), "127.0.0.1:0")
        } else {
            ("127.0.0.1:0", addr.as_str())
        };
        command.args(["--tcp", tcp, "--http", http]);
        let (status, stdout, stderr) = common::ProcessTree::spawn(command).wait(common::WAIT);
        assert_eq!(status.and_then(|s| s.code()), Some(1), "{stdout}{stderr}");
        let said = format!("duplex: the {door} door cannot listen on {addr}:");
        assert!(stderr.starts_with(&said), "{stderr}");
        assert!(stderr.contains("Address already in use"), "{stderr}");
        assert!(
            stderr.contains(&format!("choose another port with {option} ADDR")),
            "{stderr}"
        );
    }
}
