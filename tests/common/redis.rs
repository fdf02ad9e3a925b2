//! A real `redis-server` for a test: on a free port, persistence off, in a
//! directory of its own, killed when dropped. Installed by
//! `scripts/install-redis.sh`; a test that needs it and cannot find it
//! fails, naming the script.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::WAIT;

pub struct Redis {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl Redis {
    /// Starts `redis-server` on a free port and waits until it answers.
    pub fn start() -> Redis {
        // The kernel picks a free port; it is let go just before Redis
        // binds it. Another process could take it in between: then Redis
        // fails to start, and we try another.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            if let Some(redis) = Redis::start_on(port) {
                return redis;
            }
        }
        panic!("redis-server would not start on a free port");
    }

    fn start_on(port: u16) -> Option<Redis> {
        static STARTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("duplex-redis-{}-{port}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for redis-server");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}); install it with scripts/install-redis.sh")
            });
        let mut redis = Redis { child, port, dir };
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = redis.child.try_wait() {
                return None;
            }
            // Ours, not another test's that took the same port first
            // while this one fails to bind it: the server that answers
            // must be the child started here.
            if redis.process_id() == Some(redis.child.id()) {
                return Some(redis);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {port} never answered PING");
    }

    /// `--redis redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// One command, and the first line of its answer (enough for PING,
    /// XLEN and the like); `None` if Redis does not answer.
    pub fn try_command(&self, args: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(1)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut command = format!("*{}\r\n", args.len());
        for arg in args {
            command += &format!("${}\r\n{arg}\r\n", arg.len());
        }
        stream.write_all(command.as_bytes()).ok()?;
        let mut line = String::new();
        BufReader::new(&mut stream).read_line(&mut line).ok()?;
        Some(line.trim_end().to_string())
    }

    /// The process id of the redis-server answering on this port, from
    /// `INFO server`; `None` if nothing answers.
    fn process_id(&self) -> Option<u32> {
        let mut stream = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(1)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n").ok()?;
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        reader.read_line(&mut head).ok()?;
        // A bulk string: `$LEN`, then LEN bytes and CRLF.
        let len: usize = head.trim_end().strip_prefix('$')?.parse().ok()?;
        let mut info = vec![0; len];
        reader.read_exact(&mut info).ok()?;
        String::from_utf8_lossy(&info)
            .lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .and_then(|pid| pid.trim().parse().ok())
    }

    /// Sends a signal to redis-server (`STOP`, `CONT`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} redis-server");
    }

    /// Kills redis-server and starts a new one on the same port, empty
    /// (no persistence): what a crash and a restart do to a cache.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port = self.port;
        let deadline = Instant::now() + WAIT;
        loop {
            // The port is free again once the old process is gone;
            // binding it may still fail for a moment.
            if let Some(new) = Redis::start_on(port) {
                *self = new;
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server would not restart on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        // A stopped process must be continued to die of SIGTERM; SIGKILL
        // needs no such help.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
