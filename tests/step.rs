//! `duplex --step` driven through a pipe, as a learner drives it from a
//! terminal: a telnet client connects, says a line, gets its echo, and the
//! narration of each turn is checked line by line.

mod common;

use common::{Telnet, WAIT};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A stepped server: its stdin to type into, its stdout collected.
struct Stepped {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<String>>,
    /// Where in `out` the next wait starts looking.
    seen: usize,
    tcp: SocketAddr,
}

impl Stepped {
    fn start(args: &[&str]) -> Stepped {
        let mut child = Command::new(env!("CARGO_BIN_EXE_duplex"))
            .args(["--step", "--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "duplex=debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start duplex --step");
        let mut stdout = child.stdout.take().expect("stdout");
        let out = Arc::new(Mutex::new(String::new()));
        let sink = out.clone();
        // Raw bytes, not lines: the prompt has no line end.
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let stdin = child.stdin.take();
        let mut stepped = Stepped {
            child,
            stdin,
            out,
            seen: 0,
            tcp: "127.0.0.1:1".parse().unwrap(),
        };
        let line = stepped.wait_for("step=stdin\n");
        let tcp = line
            .split_whitespace()
            .find_map(|field| field.strip_prefix("tcp="))
            .expect("tcp= on the listening line");
        stepped.tcp = tcp.parse().unwrap();
        stepped
    }

    /// Waits until stdout shows `needle` after what was already seen;
    /// returns everything from there up to and including it.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let out = self.out.lock().unwrap().clone();
            if let Some(at) = out[self.seen..].find(needle) {
                let end = self.seen + at + needle.len();
                let said = out[self.seen..end].to_string();
                self.seen = end;
                return said;
            }
            assert!(
                Instant::now() < deadline,
                "stdout never showed {needle:?} after:\n{}",
                &out[self.seen..]
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Types one command and Enter.
    fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// One turn: Enter, then its narration up to the next prompt.
    fn step(&mut self) -> String {
        self.type_line("");
        // Past any prompt printed again while stopped.
        self.wait_for("── turn ");
        let turn = self.wait_for("step (next: turn");
        format!("── turn {turn}")
    }
}

impl Drop for Stepped {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_connect_a_line_and_its_echo_turn_by_turn() {
    let mut server = Stepped::start(&[]);
    server.wait_for("step (next: turn 1)> ");

    // The client connects: the kernel has done the handshake, and the
    // listener's readiness waits for the stopped loop.
    let mut telnet = Telnet::connect(server.tcp);
    let local = telnet.stream.local_addr().unwrap();
    server.wait_for("the line door is readable; it waits for the next turn");
    let turn = server.step();
    let expected = [
        "── turn 1 · 1 event · ",
        "  event   the line door: readable\n",
        &format!("  accept  line door: {local} is token 0\n"),
        "  hub     send to 1 member\n",
        "  write   token 0: ",
    ];
    for line in expected {
        assert!(turn.contains(line), "turn 1 lacks {line:?}:\n{turn}");
    }
    assert!(turn.contains(" bytes in 1 write\n"), "{turn}");
    assert!(telnet.line().contains("welcome to duplex"));

    // A line, and the turn that reads, decodes, answers and writes it.
    telnet.say("/echo hi");
    server.wait_for(&format!("token 0 (Line {local}) is readable"));
    let turn = server.step();
    let expected = [
        "── turn 2 · ",
        &format!("  event   token 0 (Line {local}): readable"),
        "  read    token 0: 10 bytes\n",
        "  decode  token 0: 1 line\n",
        "  hub     send to 1 member\n",
        "  write   token 0: 4 bytes in 1 write\n",
    ];
    let mut at = 0;
    for line in expected {
        let found = turn[at..].find(line);
        assert!(found.is_some(), "turn 2 lacks {line:?} (in this order):\n{turn}");
        at += found.unwrap_or(0);
    }
    assert_eq!(telnet.line(), "hi");

    // `c 0` runs freely until token 0 has an event.
    server.type_line("c 0");
    server.wait_for("step: running until an event on token 0");
    telnet.say("/echo again");
    server.wait_for("step: an event on token 0 after ");
    let turn = server.wait_for("step (next: turn");
    assert!(turn.contains("  read    token 0: 13 bytes\n"), "{turn}");
    assert_eq!(telnet.line(), "again");

    // The peer closes: its FIN, then our close machine, with the kernel's
    // TCP state at each step.
    drop(telnet);
    server.wait_for("token 0 (Line ");
    let turn = server.step();
    for line in [
        "  read    token 0: end of stream (the peer's FIN)\n",
        "  state   token 0: close Open -> Flushing (kernel: CLOSE_WAIT)\n",
        "  state   token 0: close Flushing -> FinSent (kernel: ",
        "  free    token 0: peer closed the connection\n",
    ] {
        assert!(turn.contains(line), "the close lacks {line:?}:\n{turn}");
    }

    // Mistakes get a word, and `q` shuts down gracefully.
    server.type_line("next please");
    server.wait_for("step: unknown command \"next\": Enter, c [TOKEN], q or h");
    server.type_line("q");
    server.wait_for("step: shutting down gracefully");
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "duplex did not exit after q");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_timer_that_came_due_while_stopped_fires_late_and_says_so() {
    let mut server = Stepped::start(&["--idle-timeout", "100ms"]);
    server.wait_for("step (next: turn 1)> ");
    let _telnet = Telnet::connect(server.tcp);
    server.wait_for("the line door is readable");
    server.step();
    // The idle timer is due 100 ms after the accept; the loop stays
    // stopped past that (this wait is the point of the test, not a guess
    // at another process's progress).
    std::thread::sleep(Duration::from_millis(300));
    let mut turn = String::new();
    for _ in 0..5 {
        turn = server.step();
        if turn.contains("Idle") {
            break;
        }
    }
    assert!(
        turn.contains("  timer   token 0 Idle, due ")
            && turn.contains("ago: it came due while the loop was stopped, and fires now"),
        "{turn}"
    );
    assert!(turn.contains("close Open -> Flushing"), "{turn}");
}

#[test]
fn step_refuses_a_stdin_it_cannot_watch() {
    let out = Command::new(env!("CARGO_BIN_EXE_duplex"))
        .args(["--step", "--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .expect("run duplex");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--step reads Enter from stdin, and stdin cannot be watched")
            && stderr.contains("run it in a terminal, or give it a pipe"),
        "{stderr}"
    );
}
