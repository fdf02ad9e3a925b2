//! Example 5: the server speaks first. Every second, each client is sent
//! the time, without being asked.
//!
//! The Node original is the classic timer push, `setInterval` on a
//! WebSocket-Node connection:
//!
//! ```js
//! wsServer.on('request', request => {
//!     const connection = request.accept('echo-protocol', request.origin);
//!     setInterval(() => connection.sendUTF('server time: ' + new Date()), 1000);
//! });
//! ```
//!
//! ```text
//! cargo run --example timer_push [ADDR]    # default 127.0.0.1:9005
//! cargo run --example ws_client ws://127.0.0.1:9005/   # or a browser
//! ```
//!
//! This is what polling cannot do cheaply (`docs/05` measures it): with
//! HTTP the client would ask every second, a few hundred bytes of headers
//! each time; here each push is one frame with a 2-byte header (§5.2).
//!
//! There is no thread and no `sleep`. Node's `setInterval` is a timer in
//! its event loop; ours is `duplex::timer::Timers`, a heap of deadlines
//! whose nearest one becomes the `poll` timeout. `poll` then returns either
//! because a socket is ready or because a timer is due, whichever is first.
//! The connection plumbing is example 3's, in `common/mod.rs`.

mod common;

use common::{Incoming, Server};
use duplex::timer::Timers;
use std::io;
use std::time::{Duration, Instant, SystemTime};

const PERIOD: Duration = Duration::from_secs(1);

/// A due push: the connection's slab key, and its id to be sure the key
/// still names the same connection (keys are reused, ids are not).
struct Push {
    key: usize,
    id: u64,
}

fn main() -> io::Result<()> {
    // `echo-protocol` as in the Node original, so a page written for it
    // (`new WebSocket(url, 'echo-protocol')`) can connect.
    let mut server = Server::bind("127.0.0.1:9005", &["echo-protocol"])?;
    let mut timers: Timers<Push> = Timers::new();
    loop {
        // 1. Sleep until a socket is ready or the next push is due.
        //    With no clients there are no timers: `None`, sleep for ever.
        let timeout = timers.timeout(Instant::now());
        for news in server.turn(timeout)? {
            match news.what {
                // `request.accept(...)` then `setInterval(..., 1000)`: the
                // first push one period after the handshake.
                Incoming::Opened => {
                    eprintln!("client {} connected", news.id);
                    let push = Push {
                        key: news.key,
                        id: news.id,
                    };
                    timers.schedule(Instant::now() + PERIOD, push);
                }
                Incoming::Text(text) => eprintln!("client {} says {text:?}", news.id),
                Incoming::Binary(bytes) => eprintln!("client {} sent {} bytes", news.id, bytes.len()),
                // Node needs `clearInterval` here. We cancel nothing: the
                // timer still fires once, finds the connection gone and is
                // not renewed. Each client has at most one timer pending.
                Incoming::Closed => eprintln!("client {} left", news.id),
            }
        }

        // 2. Run every timer that is due.
        let now = Instant::now();
        while let Some((due, push)) = timers.pop_due(now) {
            let Some(conn) = server.conns.get_mut(push.key) else {
                continue;
            };
            if conn.id != push.id || !conn.is_open() {
                continue; // The connection it was for has gone.
            }
            let time = duplex::clock::format_utc(SystemTime::now());
            conn.send_text(&format!("server time: {time}"));
            // The next push counts from when this one was due, not from
            // now, so pushes do not drift later and later. A loop that fell
            // a whole period behind skips ahead rather than burst.
            let next = if due + PERIOD > now {
                due + PERIOD
            } else {
                now + PERIOD
            };
            timers.schedule(next, push);
        }

        // 3. Write what the timers queued.
        server.flush();
    }
}
