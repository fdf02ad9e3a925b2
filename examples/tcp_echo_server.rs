//! Example 1: the smallest honest TCP echo server on mio.
//!
//! The Node original is one line, `net.createServer(s => s.pipe(s)).listen(9001)`.
//! Everything Node hides is spelled out here: one `Poll`, one listener,
//! a slab of connections, and for each connection a bounded queue of bytes
//! read but not yet written back.
//!
//! ```text
//! cargo run --example tcp_echo_server [ADDR]     # default 127.0.0.1:9001
//! telnet 127.0.0.1 9001                          # or: cargo run --example tcp_client
//! ```
//!
//! Unlike mio's own `tcp_server` example, the queue is bounded, a short
//! write is normal, and no accept error ends the server.

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

/// The listener's token. Connections use their slab key as their token,
/// and a slab never hands out `usize::MAX`, so the two cannot collide.
const LISTENER: Token = Token(usize::MAX);

/// At most this many bytes wait to be echoed. A peer that sends and never
/// reads fills it; we then stop reading from it, its bytes pile up in the
/// kernel, the TCP window closes and the peer has to wait. That is the
/// backpressure Node's `pipe` gives for free (its `highWaterMark`).
const MAX_PENDING: usize = 64 * 1024;

struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    /// Read from the peer, not yet written back.
    pending: Vec<u8>,
    /// The peer sent FIN: it will send no more (it may still read).
    peer_done: bool,
}

fn main() -> io::Result<()> {
    let addr = address_arg("127.0.0.1:9001")?;
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(256);
    let mut listener = TcpListener::bind(addr)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    // Port 0 asks the OS for a free port; print the one it chose.
    println!("listening on {}", listener.local_addr()?);

    let mut connections: Slab<Connection> = Slab::new();
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            // A signal woke us up (EINTR): not an error, just poll again.
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // Connections that are finished. They are removed after the whole
        // batch, so a key is never reused while an event for it may follow.
        let mut finished = Vec::new();
        for event in events.iter() {
            match event.token() {
                LISTENER => accept_all(&listener, &poll, &mut connections),
                Token(key) => {
                    // A spurious event, or one for a connection closed
                    // earlier in this batch: `get_mut` finds nothing, or
                    // `drive` finds nothing to do. Both are harmless.
                    let Some(conn) = connections.get_mut(key) else {
                        continue;
                    };
                    match drive(conn) {
                        Ok(true) => {}
                        Ok(false) => finished.push(key),
                        Err(e) => {
                            eprintln!("{}: {e}", conn.peer);
                            finished.push(key);
                        }
                    }
                }
            }
        }
        for key in finished {
            if let Some(mut conn) = connections.try_remove(key) {
                eprintln!("{}: closed", conn.peer);
                let _ = poll.registry().deregister(&mut conn.stream);
            } // Dropping the stream closes the socket.
        }
    }
}

/// Accepts every waiting connection. Readiness is edge-triggered: one
/// event may stand for many connections, and no second event comes for
/// those we leave in the backlog, so keep going until `WouldBlock`.
fn accept_all(listener: &TcpListener, poll: &Poll, connections: &mut Slab<Connection>) {
    loop {
        let (mut stream, peer) = match listener.accept() {
            Ok(pair) => pair,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The client gave up between SYN and accept: only it is gone.
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
            Err(e) => {
                // Out of file descriptors (EMFILE) and the like. Retrying at
                // once would fail again; the next connection's event retries.
                // (duplex itself pauses accepts and retries on a timer.)
                eprintln!("accept: {e}");
                return;
            }
        };
        let entry = connections.vacant_entry();
        // Both interests, once. Edge-triggered WRITABLE fires only when a
        // full send buffer drains, so it costs nothing while we are idle.
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = poll
            .registry()
            .register(&mut stream, Token(entry.key()), interest)
        {
            eprintln!("{peer}: register: {e}");
            continue;
        }
        eprintln!("{peer}: connected");
        entry.insert(Connection {
            stream,
            peer,
            pending: Vec::new(),
            peer_done: false,
        });
    }
}

/// Moves bytes for one connection as far as the socket allows, whatever
/// the event said: readable and writable are hints, the return values of
/// `read` and `write` are the truth. Returns `Ok(false)` when it is done.
fn drive(conn: &mut Connection) -> io::Result<bool> {
    let mut buf = [0u8; 4096];
    loop {
        // 1. Echo what is waiting. `write` may take fewer bytes than we
        //    offer (a short write): the rest stays queued.
        while !conn.pending.is_empty() {
            match conn.stream.write(&conn.pending) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                // An O(n) shift of at most 64 KiB; a ring buffer would
                // avoid it, at the cost of a longer example.
                Ok(n) => drop(conn.pending.drain(..n)),
                // The send buffer is full: a WRITABLE event will come.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if conn.peer_done {
            // After the peer's FIN nothing more will come: once the rest is
            // echoed, close our side too (Node's `allowHalfOpen: false`).
            return Ok(!conn.pending.is_empty());
        }
        // 2. Read, but never more than the queue has room for. A full
        //    queue means the write above blocked, so WRITABLE will wake us
        //    and we resume reading then.
        let room = MAX_PENDING - conn.pending.len();
        if room == 0 {
            return Ok(true);
        }
        let want = room.min(buf.len());
        match conn.stream.read(&mut buf[..want]) {
            // 0 bytes is end of stream: the peer sent FIN (RFC 9293 §3.6).
            Ok(0) => conn.peer_done = true,
            Ok(n) => conn.pending.extend_from_slice(&buf[..n]),
            // Drained: the kernel holds nothing more for us. A READABLE
            // event will come when it does.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The first command-line argument as a socket address, or the default.
fn address_arg(default: &str) -> io::Result<SocketAddr> {
    let text = std::env::args().nth(1).unwrap_or_else(|| default.to_string());
    text.parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("address {text:?}: {e}")))
}
