//! The server under test, as a child process: started on free ports, asked
//! for its `/stats`, watched, and stopped.

use crate::Cli;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct ServerProcess {
    child: Child,
    pub pid: u32,
    pub tcp: SocketAddr,
    pub http: SocketAddr,
    pub log: PathBuf,
}

/// Starts the server on free loopback ports and reads its one line:
/// `duplex listening tcp=ADDR http=ADDR`.
/// `extra` arguments go last; `instance` names the log of a cluster's
/// instance (`duplex-soak-server-b.log`), empty for a lone server.
pub fn start_server(cli: &Cli, extra: &[String], instance: &str) -> Result<ServerProcess, String> {
    let path = server_path(cli)?;
    let log = match (&cli.server_log, instance) {
        (Some(log), "") => log.clone(),
        (Some(log), name) => log.with_extension(format!("{name}.log")),
        (None, "") => std::env::temp_dir().join("duplex-soak-server.log"),
        (None, name) => std::env::temp_dir().join(format!("duplex-soak-server-{name}.log")),
    };
    let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut command = Command::new(&path);
    command
        .args(["--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .args(["--max-output", &cli.max_output])
        .args(["--slow-reader-timeout", &cli.slow_reader_timeout])
        .args(["--max-connections", &cli.max_connections.to_string()])
        .args(["--close-timeout", &cli.close_timeout])
        .args(["--http-member-timeout", &cli.http_member_timeout])
        .args(["--longpoll-timeout", &cli.longpoll_timeout])
        .args(&cli.server_args)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file);
    if std::env::var_os("RUST_LOG").is_none() {
        // Warnings only: a slow reader closed is one; a connection is not.
        command.env("RUST_LOG", "duplex=warn");
    }
    println!("server: {} (log: {})", describe(&command), log.display());
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", path.display()))?;
    let addrs = child
        .stdout
        .take()
        .ok_or_else(|| "no stdout".to_string())
        .and_then(listening_on);
    match addrs {
        Ok((tcp, http)) => Ok(ServerProcess {
            pid: child.id(),
            child,
            tcp,
            http,
            log,
        }),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

/// `--server`, or the `duplex` next to this program.
fn server_path(cli: &Cli) -> Result<PathBuf, String> {
    if let Some(path) = &cli.server {
        return Ok(path.clone());
    }
    let path = std::env::current_exe()
        .map_err(|e| format!("where am I? {e}"))?
        .with_file_name("duplex");
    // The server is another crate's binary: building the tools alone does
    // not build it.
    if !path.exists() {
        return Err(format!(
            "no server at {}: build it with `cargo build --release`, or name one with --server",
            path.display()
        ));
    }
    Ok(path)
}

/// Reads the server's first line for its two addresses. On another thread,
/// so that waiting for the line has a timeout; the thread then drains
/// stdout until the server exits.
fn listening_on(stdout: ChildStdout) -> Result<(SocketAddr, SocketAddr), String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        for _ in lines {}
    });
    let line = match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Some(Ok(line))) => line,
        other => return Err(format!("the server did not say where it listens: {other:?}")),
    };
    let addr = |key: &str| -> Result<SocketAddr, String> {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(key))
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("no {key}ADDR in {line:?}"))
    };
    Ok((addr("tcp=")?, addr("http=")?))
}

fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

impl ServerProcess {
    /// `None` while the server runs; its exit status once it has stopped.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown ({e})")),
        }
    }

    /// SIGTERM (graceful shutdown), then SIGKILL if it takes over 10 s.
    pub fn stop(&mut self) -> String {
        if let Some(status) = self.exited() {
            return format!("had already exited: {status}");
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return format!("stopped by SIGTERM: {status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        "did not stop within 10 s of SIGTERM; killed".to_string()
    }
}

/// A soak that stops early (a panic, say) still stops its server.
impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Keeps an eye on the server while the loop turns: has it exited?
pub struct Watch {
    last_look: Instant,
    /// How the server exited, if it has.
    pub crashed: Option<String>,
}

impl Watch {
    pub fn new() -> Watch {
        Watch {
            last_look: Instant::now(),
            crashed: None,
        }
    }

    /// `true` while the server runs. It looks at most every 500 ms: the
    /// loop turns far more often than that.
    pub fn alive(&mut self, server: &mut ServerProcess) -> bool {
        if self.crashed.is_none() && self.last_look.elapsed() >= Duration::from_millis(500) {
            self.last_look = Instant::now();
            self.crashed = server.exited();
        }
        self.crashed.is_none()
    }
}

/// `GET /stats` on a blocking socket, every step bounded by `timeout`.
/// Returns the JSON body.
pub fn get_stats(http: SocketAddr, timeout: Duration) -> Result<String, String> {
    let mut stream = std::net::TcpStream::connect_timeout(&http, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let request = format!("GET /stats HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 8192];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
        // The body is one JSON object ending in a newline.
        if answer.ends_with(b"}\n") {
            break;
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").ok_or("no complete answer")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("answered {}", head.lines().next().unwrap_or("")));
    }
    Ok(body.trim().to_string())
}

/// The first number after `"key":` in the stats JSON.
pub fn json_number(json: &str, key: &str) -> Option<u64> {
    let at = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let digits: String = json[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_from_stats() {
        let json = r#"{"connections":{"total":3,"websocket":2},"members":0}"#;
        assert_eq!(json_number(json, "total"), Some(3));
        assert_eq!(json_number(json, "members"), Some(0));
        assert_eq!(json_number(json, "rooms"), None);
    }
}
