//! nginx in front of duplex, for the tests that need a real reverse proxy
//! (`tests/nginx.rs`, and the page through nginx in `tests/browser.rs`),
//! configured with the very `nginx.conf` that docs/10-reverse-proxy.md
//! shows: the file is read from the page, and only its ports, its paths
//! and `proxy_read_timeout` are changed.
//!
//! nginx listens on `[::1]` and `127.0.0.1` on one port. It runs as the
//! test's user, in the foreground, with a prefix, pid file and logs in a
//! folder of its own, in a process group of its own that is killed when
//! the test ends, however it ends. Without nginx a test fails and says how
//! to install it (`scripts/install-nginx.sh`).

use super::{ProcessTree, TempDir, WAIT};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const NGINX: &str = "/usr/sbin/nginx";

/// The `nginx.conf` of docs/10-reverse-proxy.md: the one ```nginx block
/// that is a whole file (it has an `events` block; the others are parts).
pub fn documented_config() -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/10-reverse-proxy.md"))
        .expect("read docs/10-reverse-proxy.md");
    let whole: Vec<&str> = page
        .split("```nginx\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("\n```").map(|(block, _)| block))
        .filter(|block| block.contains("\nevents {"))
        .collect();
    assert_eq!(
        whole.len(),
        1,
        "docs/10 should show one whole nginx.conf, found {}",
        whole.len()
    );
    format!("{}\n", whole[0])
}

/// Replaces `from` by `to` in `text`, which must contain it exactly once:
/// a page edited out of the template's shape fails here, by name.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    let found = text.matches(from).count();
    assert_eq!(
        found, 1,
        "docs/10's nginx.conf should have {from:?} once, has it {found} times"
    );
    text.replacen(from, to, 1)
}

/// nginx in front of a duplex, killed when dropped.
pub struct Nginx {
    /// The port nginx listens on, on `[::1]` and `127.0.0.1`.
    pub port: u16,
    tree: ProcessTree,
    dir: TempDir,
}

impl Nginx {
    /// Starts nginx with the docs' file in front of `upstream`. nginx
    /// needs a port number in its file, so a free one is found by binding
    /// port 0 and letting it go; if another process takes it in between,
    /// nginx says so and the next try picks another.
    pub fn start(upstream: SocketAddr, read_timeout: &str) -> Nginx {
        assert!(
            Path::new(NGINX).exists(),
            "the nginx test needs {NGINX}: run scripts/install-nginx.sh (as root, on Debian) to install it"
        );
        let mut failures = Vec::new();
        for _ in 0..5 {
            let port = free_port();
            match Nginx::try_start(upstream, read_timeout, port) {
                Ok(nginx) => return nginx,
                Err(why) if why.contains("Address already in use") => failures.push(why),
                Err(why) => panic!("nginx did not start on port {port}:\n{why}"),
            }
        }
        panic!("nginx found no free port in 5 tries:\n{}", failures.join("\n"));
    }

    fn try_start(upstream: SocketAddr, read_timeout: &str, port: u16) -> Result<Nginx, String> {
        let dir = TempDir::new("nginx");
        let at = |name: &str| dir.0.join(name).display().to_string();
        let mut conf = documented_config();
        conf = replace_once(&conf, "pid /run/nginx.pid;", &format!("pid {};", at("nginx.pid")));
        conf = replace_once(
            &conf,
            "error_log /var/log/nginx/error.log;",
            &format!("error_log {};", at("error.log")),
        );
        // nginx's temporary files go where Debian built it to put them
        // (/var/lib/nginx) unless told: here, in the test's folder.
        let temp: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
            .iter()
            .map(|kind| format!(" {kind}_temp_path {};", at(kind)))
            .collect();
        conf = replace_once(
            &conf,
            "access_log /var/log/nginx/access.log;",
            &format!("access_log {};{temp}", at("access.log")),
        );
        conf = replace_once(&conf, "server 127.0.0.1:8080;", &format!("server {upstream};"));
        conf = replace_once(&conf, "listen 80;", &format!("listen [::1]:{port};"));
        conf = replace_once(&conf, "listen [::]:80;", &format!("listen 127.0.0.1:{port};"));
        conf = replace_once(
            &conf,
            "proxy_read_timeout 75s;",
            &format!("proxy_read_timeout {read_timeout};"),
        );
        std::fs::write(at("nginx.conf"), &conf).expect("write nginx.conf");
        let mut command = Command::new(NGINX);
        command
            .args(["-p", &at(""), "-c", &at("nginx.conf"), "-e", &at("error.log")])
            .args(["-g", "daemon off;"]);
        let mut tree = ProcessTree::spawn(command);
        let deadline = Instant::now() + WAIT;
        loop {
            // Ours, not another test's: a connect alone could reach an
            // nginx that took the same port first while this one fails to
            // bind it. nginx writes its pid file only once every `listen`
            // is bound (`ngx_init_cycle`, then `ngx_create_pidfile`), and
            // with `daemon off` the pid is the child's own.
            let pid = std::fs::read_to_string(at("nginx.pid")).unwrap_or_default();
            let ours = pid.trim().parse::<u32>().ok() == Some(tree.pid());
            let addr = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
            if ours && TcpStream::connect(addr).is_ok() && TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(Nginx { port, tree, dir });
            }
            if let Some(status) = tree.try_status() {
                let log = std::fs::read_to_string(at("error.log")).unwrap_or_default();
                let (_, out, err) = tree.wait(Duration::ZERO);
                return Err(format!(
                    "nginx exited ({status}):\n{log}{out}{err}\nwith:\n{conf}"
                ));
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(at("error.log")).unwrap_or_default();
                return Err(format!(
                    "nginx did not listen on port {port} within {WAIT:?}:\n{log}"
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Where the test's clients reach nginx.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv6Addr::LOCALHOST, self.port))
    }

    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("access.log")).unwrap_or_default()
    }

    /// Waits until nginx's access log has a line containing every needle.
    pub fn wait_access_log(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let log = self.access_log();
            if let Some(line) = log.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "nginx's access log never showed {needles:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.tree.kill();
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).expect("bind [::1]:0");
    listener.local_addr().expect("local address").port()
}
