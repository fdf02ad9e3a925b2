//! A `redis-server` of the tools' own, for a cluster of duplex instances
//! (`duplex-soak --cluster`, `duplex-relay-bench`): on a free loopback
//! port, persistence off, in a directory of its own, killed when dropped.
//! `scripts/install-redis.sh` installs it.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child process.
pub struct RedisProcess {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    program: String,
}

impl RedisProcess {
    /// Starts `program` (`redis-server`) on a free port; waits until it
    /// accepts connections.
    pub fn start(program: &str) -> Result<RedisProcess, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let dir = std::env::temp_dir().join(format!("duplex-soak-redis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let child = spawn(program, port, &dir)?;
        let mut redis = RedisProcess {
            child,
            port,
            dir,
            program: program.to_string(),
        };
        redis.wait_ready()?;
        Ok(redis)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("redis-server exited at start: {status}"));
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("redis-server on port {} never accepted", self.port))
    }

    /// Kills Redis and starts it again on the same port, empty.
    pub fn restart(&mut self) -> Result<(), String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.child = spawn(&self.program, self.port, &self.dir)?;
            match self.wait_ready() {
                Ok(()) => return Ok(()),
                // The port may take a moment to be free again.
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

fn spawn(program: &str, port: u16, dir: &std::path::Path) -> Result<Child, String> {
    Command::new(program)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {program} ({e}); scripts/install-redis.sh installs it"))
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl RedisProcess {
    /// The server's process id, for its CPU time.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}
