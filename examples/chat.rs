//! Example 6: a group chat. What one client says, every client hears.
//!
//! The Node original is socket.io's group chat, the one every tutorial
//! builds, and the point it makes is the difference between two calls:
//!
//! ```js
//! io.on('connection', socket => {
//!     socket.on('message', msg => {
//!         io.emit('message', msg);        // broadcast: to everyone connected
//!         socket.emit('message', msg);    // reply: only to the sender
//!     });
//! });
//! ```
//!
//! Here a plain text message is `io.emit` and the `/echo TEXT` command is
//! `socket.emit`:
//!
//! ```text
//! cargo run --example chat [ADDR]          # default 127.0.0.1:9006
//! ```
//!
//! then connect two or more WebSocket clients (browser tabs, `websocat`,
//! ...) and type. Plain WebSocket, no socket.io: socket.io is a protocol
//! of its own on top of this one, with fallbacks to polling (`docs/05`
//! compares the two).
//!
//! A broadcast encodes its frame once and gives every connection a
//! reference-counted pointer to the same bytes (`Rc<[u8]>`): a message to
//! a thousand clients costs one encoding, not a thousand. Server frames
//! are not masked (§5.1), which is what makes this sharing possible.
//! The connection plumbing is example 3's, in `common/mod.rs`.

mod common;

use common::{Incoming, Server};
use duplex::ws::{encode_frame, CloseCode, Opcode};
use std::io;
use std::rc::Rc;

fn main() -> io::Result<()> {
    let mut server = Server::bind("127.0.0.1:9006", &["chat"])?;
    loop {
        for news in server.turn(None)? {
            let name = format!("guest-{}", news.id);
            match news.what {
                Incoming::Opened => {
                    // socket.emit: a welcome for the newcomer alone...
                    if let Some(conn) = server.conns.get_mut(news.key) {
                        conn.send_text(&format!("welcome, {name}; /echo TEXT answers you alone"));
                    }
                    // ...io.emit: the news for everyone, newcomer included.
                    broadcast(&mut server, &format!("* {name} joined"));
                }
                Incoming::Text(text) => match text.strip_prefix("/echo ") {
                    // socket.emit: back to the sender only.
                    Some(rest) => {
                        if let Some(conn) = server.conns.get_mut(news.key) {
                            conn.send_text(&format!("(to you alone) {rest}"));
                        }
                    }
                    // io.emit: to everyone, the sender too.
                    None => broadcast(&mut server, &format!("{name}: {text}")),
                },
                // A chat is text. §7.4.1: 1003 means "a type of data it
                // cannot accept (e.g., an endpoint that understands only
                // text data MAY send this if it receives a binary message)".
                Incoming::Binary(_) => {
                    if let Some(conn) = server.conns.get_mut(news.key) {
                        conn.close(CloseCode::UNSUPPORTED_DATA, "this chat takes text only");
                    }
                }
                Incoming::Closed => broadcast(&mut server, &format!("* {name} left")),
            }
        }
        // Nothing has been written yet: all of this turn's messages leave
        // now, several frames per connection in one `writev`.
        server.flush();
    }
}

/// `io.emit`: one text frame, encoded once, queued for every open client.
fn broadcast(server: &mut Server, text: &str) {
    let mut frame = Vec::with_capacity(text.len() + 4);
    encode_frame(&mut frame, true, Opcode::Text, text.as_bytes(), None);
    let frame: Rc<[u8]> = frame.into();
    eprintln!("{text}");
    // O(clients) per message: fine for a room; duplex's hub does the same
    // per room rather than per server.
    for (_, conn) in server.conns.iter_mut() {
        conn.send_shared(Rc::clone(&frame));
    }
}
