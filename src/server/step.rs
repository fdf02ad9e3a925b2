//! `--step`: the loop stops before each turn and waits for Enter.
//!
//! The terminal is one more source in the loop's `Poll` (token `STDIN`),
//! beside the sockets and the signal pipe: no second thread reads it. While
//! stopped, the loop sleeps in `poll` for stdin alone, in effect; whatever
//! else becomes ready meanwhile is *held* and shown ("ready while
//! stopped"), then handed to the next turn exactly as `poll` reported it.
//! Readiness is edge-triggered, so an event dropped here would never come
//! again: holding it is the only correct thing to do.
//!
//! Timers are not run while stopped. One that came due meanwhile fires on
//! the next turn, late, as it would in a loop that was slow, and the
//! narration says so.
//!
//! What a learner types, one command a line:
//!
//! ```text
//!   Enter        run one turn and narrate it
//!   c            run freely until a turn with an event on any connection
//!   c TOKEN      run freely until a turn with an event on that token
//!   q            shut down gracefully (as Ctrl-C does)
//!   h            this help
//! ```
//!
//! Enter during a free run stops it. When stdin ends (a pipe closed), the
//! loop runs freely from then on.

use super::turn::counted;
use super::{Ready, Server, SIGNALS, STDIN};
use mio::unix::pipe::Receiver;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;

/// The longest command line kept; a longer one is dropped with a word.
const MAX_COMMAND: usize = 256;

/// What `h` prints, and `--step` once at start.
pub const HELP: &str = "\
step: the loop stops before each turn. Enter runs one turn and tells it.
      c         run freely until a turn with an event on any connection
      c TOKEN   run freely until a turn with an event on that token (c 3)
      q         shut down gracefully, as Ctrl-C does
      h         this help
      Enter during a free run stops it.";

/// One command typed at the step prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Command {
    /// Enter: one turn.
    Step,
    /// `c`, `c TOKEN`: run until an event on that token (any connection
    /// without one).
    Continue(Option<Token>),
    /// `q`: graceful shutdown.
    Quit,
    /// `h`, `?`, `help`.
    Help,
}

/// Reads one command line (without its line end). Sans-IO, so every
/// mistake a learner can make is tested without a terminal.
pub(super) fn parse(line: &str) -> Result<Command, String> {
    let mut words = line.split_whitespace();
    let command = match words.next() {
        None => Command::Step,
        Some("c" | "continue") => match words.next() {
            None => Command::Continue(None),
            Some(token) => match token.parse::<usize>() {
                Ok(n) => Command::Continue(Some(Token(n))),
                Err(_) => {
                    return Err(format!(
                        "c wants a token number, as the narration shows them (c 3), not {token:?}"
                    ))
                }
            },
        },
        Some("q" | "quit") => Command::Quit,
        Some("h" | "help" | "?") => Command::Help,
        Some(other) => return Err(format!("unknown command {other:?}: Enter, c [TOKEN], q or h")),
    };
    match words.next() {
        None => Ok(command),
        Some(extra) => Err(format!("one command a line; {extra:?} is one word too many")),
    }
}

/// Where stepping stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// Stopped before each turn, waiting for a command.
    Stopped,
    /// Running freely until a turn has an event on this token (any
    /// connection: `None`).
    Until(Option<Token>),
    /// Running freely for good: stdin ended, or `q`.
    Free,
}

/// `--step`'s state: the terminal, and the events held while stopped.
pub(super) struct Step {
    stdin: Receiver,
    pub mode: Mode,
    /// Events that arrived while stopped, for the next turn.
    pub held: Vec<Ready>,
    /// Typed and not yet obeyed.
    input: Vec<u8>,
    /// stdin has ended.
    eof: bool,
    /// A command said "go": the next turn must not sleep in `poll`.
    pub go_now: bool,
    /// Turns run during a free run, for the line that ends it.
    pub free_turns: u64,
}

impl Step {
    /// Registers stdin in the loop's `Poll`. epoll cannot watch a regular
    /// file or `/dev/null` (EPERM), and a server started with one of those
    /// as stdin cannot be stepped: it is refused here, in words.
    pub fn open(poll: &Poll) -> io::Result<Step> {
        // A second descriptor for the same terminal or pipe, owned by the
        // receiver, so std's own stdin handle is left as it was.
        let fd = io::stdin().as_fd().try_clone_to_owned()?;
        let mut stdin = Receiver::from(fd);
        poll.registry()
            .register(&mut stdin, STDIN, Interest::READABLE)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "--step reads Enter from stdin, and stdin cannot be watched ({e}): \
                         run it in a terminal, or give it a pipe, not a file or /dev/null"
                    ),
                )
            })?;
        // Edge-triggered: each event means reading until WouldBlock, which
        // a blocking descriptor would never say. Undone on drop.
        stdin.set_nonblocking(true)?;
        Ok(Step {
            stdin,
            mode: Mode::Stopped,
            held: Vec::new(),
            input: Vec::new(),
            eof: false,
            go_now: false,
            free_turns: 0,
        })
    }

    /// Reads what was typed, until stdin is drained.
    pub fn read_input(&mut self) {
        let mut buf = [0u8; 512];
        loop {
            match self.stdin.read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    return;
                }
                Ok(n) => {
                    self.input.extend_from_slice(&buf[..n]);
                    if self.input.len() > MAX_COMMAND && !self.input.contains(&b'\n') {
                        self.input.clear();
                        say(&format!(
                            "step: a line longer than {MAX_COMMAND} bytes was dropped"
                        ));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    say(&format!("step: reading stdin failed ({e}); running freely"));
                    self.eof = true;
                    return;
                }
            }
        }
    }

    /// The next whole line typed, if any.
    pub fn next_line(&mut self) -> Option<String> {
        let end = self.input.iter().position(|&b| b == b'\n')?;
        let line: Vec<u8> = self.input.drain(..=end).collect();
        Some(String::from_utf8_lossy(&line).trim().to_string())
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        // The terminal's descriptor is shared with the shell that started
        // us: leave it blocking, as we found it.
        let _ = self.stdin.set_nonblocking(false);
    }
}

/// Prints one line of `--step`'s own on stdout. A closed stdout is not the
/// loop's problem: the narration is lost, the server goes on.
pub(super) fn say(text: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// The prompt, without a line end.
fn prompt(turn: u64) {
    let mut out = io::stdout().lock();
    let _ = write!(out, "step (next: turn {turn})> ");
    let _ = out.flush();
}

impl Server {
    /// `--step`, before a turn: while stopped, wait for a command. Returns
    /// once the loop may run its next turn.
    pub(super) fn pause(&mut self, events: &mut Events) -> io::Result<()> {
        let mut prompted = false;
        loop {
            let next_turn = self.watch.turn.number + 1;
            let Some(step) = self.watch.step.as_mut() else {
                return Ok(());
            };
            if step.mode != Mode::Stopped {
                return Ok(());
            }
            // What was typed ahead is obeyed first.
            if let Some(line) = step.next_line() {
                if self.obey(&line) {
                    return Ok(());
                }
                prompted = false;
                continue;
            }
            if step.eof {
                step.mode = Mode::Free;
                say("\nstep: stdin ended; the loop runs freely from here");
                let _ = self.poll.registry().deregister(&mut step.stdin);
                return Ok(());
            }
            if !prompted {
                prompt(next_turn);
                prompted = true;
            }
            match self.poll.poll(events, None) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let mut go = false;
            for event in events.iter() {
                let ready = Ready::from(event);
                if ready.token == STDIN {
                    if let Some(step) = self.watch.step.as_mut() {
                        step.read_input();
                    }
                    continue;
                }
                let source = self.source(ready.token);
                let Some(step) = self.watch.step.as_mut() else {
                    return Ok(());
                };
                step.held.push(ready);
                if ready.token == SIGNALS {
                    say("\nstep: a signal arrived; the next turn handles it");
                    go = true;
                } else {
                    let mut line = String::from("\n  meanwhile: ");
                    let (readable, writable) = (ready.readable || ready.closed, ready.writable);
                    super::turn::narrate_held(&mut line, ready.token, &source, readable, writable);
                    say(&line);
                    prompted = false;
                }
            }
            if go {
                if let Some(step) = self.watch.step.as_mut() {
                    step.go_now = true;
                }
                return Ok(());
            }
        }
    }

    /// Carries out one command. Returns whether the loop goes on (a turn
    /// runs next).
    fn obey(&mut self, line: &str) -> bool {
        let command = match parse(line) {
            Ok(command) => command,
            Err(e) => {
                say(&format!("step: {e}"));
                return false;
            }
        };
        let Some(step) = self.watch.step.as_mut() else {
            return true;
        };
        match command {
            Command::Step => {
                step.go_now = true;
                true
            }
            Command::Continue(token) => {
                step.mode = Mode::Until(token);
                step.free_turns = 0;
                match token {
                    Some(token) if !self.conns.contains(token.0) => say(&format!(
                        "step: no connection has token {} now; running until one that does has an event \
                         (Enter stops)",
                        token.0
                    )),
                    Some(token) => say(&format!(
                        "step: running until an event on token {} (Enter stops)",
                        token.0
                    )),
                    None => say("step: running until an event on a connection (Enter stops)"),
                }
                true
            }
            Command::Quit => {
                step.mode = Mode::Free;
                say("step: shutting down gracefully; the loop runs freely to the end");
                self.begin_shutdown();
                true
            }
            Command::Help => {
                say(HELP);
                false
            }
        }
    }

    /// stdin was ready during a turn: a free run stops at the next Enter.
    pub(super) fn on_stdin(&mut self) {
        let Some(step) = self.watch.step.as_mut() else {
            return;
        };
        step.read_input();
        let stop = matches!(step.mode, Mode::Until(_)) && step.next_line().is_some();
        match step.mode {
            Mode::Until(_) if stop => {
                say(&format!(
                    "\nstep: stopped by Enter after {} run freely",
                    counted(step.free_turns as usize, "turn")
                ));
                step.mode = Mode::Stopped;
            }
            // After `q`, or with nothing to stop: typing is ignored.
            Mode::Free => step.input.clear(),
            _ => {}
        }
        if step.eof && step.mode != Mode::Stopped {
            let _ = self.poll.registry().deregister(&mut step.stdin);
        }
    }

    /// After a turn: tell it, if the loop is stopped (or stops here).
    pub(super) fn narrate_turn(&mut self, took: std::time::Duration) {
        let Some(step) = self.watch.step.as_mut() else {
            return;
        };
        let turn = &self.watch.turn;
        match step.mode {
            Mode::Stopped => {}
            Mode::Until(token) if turn.has_event_on(token) => {
                say(&format!(
                    "step: an event on {} after {} run freely; stopped",
                    token.map_or("a connection".to_string(), |t| format!("token {}", t.0)),
                    counted(step.free_turns as usize, "turn")
                ));
                step.mode = Mode::Stopped;
            }
            Mode::Until(_) => {
                step.free_turns += 1;
                return;
            }
            Mode::Free => return,
        }
        let mut out = io::stdout().lock();
        let _ = out.write_all(turn.narrate(took).as_bytes());
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_as_typed() {
        assert_eq!(parse(""), Ok(Command::Step));
        assert_eq!(parse("   "), Ok(Command::Step));
        assert_eq!(parse("c"), Ok(Command::Continue(None)));
        assert_eq!(parse("c 3"), Ok(Command::Continue(Some(Token(3)))));
        assert_eq!(parse(" continue 12 "), Ok(Command::Continue(Some(Token(12)))));
        assert_eq!(parse("q"), Ok(Command::Quit));
        assert_eq!(parse("?"), Ok(Command::Help));
    }

    #[test]
    fn mistakes_are_told_what_would_work() {
        assert_eq!(
            parse("c three"),
            Err("c wants a token number, as the narration shows them (c 3), not \"three\"".into())
        );
        assert_eq!(
            parse("next"),
            Err("unknown command \"next\": Enter, c [TOKEN], q or h".into())
        );
        assert_eq!(
            parse("c 3 4"),
            Err("one command a line; \"4\" is one word too many".into())
        );
        assert!(parse("c -1").is_err());
    }
}
