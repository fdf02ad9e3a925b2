//! Example 2: a TCP client, the other end of example 1.
//!
//! The Node original is `net.Socket`:
//!
//! ```js
//! const client = new net.Socket();
//! client.connect(9001, '127.0.0.1', () => client.write('hello\n'));
//! client.on('data', data => console.log(data.toString()));
//! ```
//!
//! ```text
//! cargo run --example tcp_client [ADDR] [LINE...]   # default 127.0.0.1:9001
//! cargo run --example tcp_client 127.0.0.1:9001 hello world
//! echo hi | cargo run --example tcp_client          # no lines: read stdin
//! ```
//!
//! A client has only one socket to watch, so plain blocking `std::net` is
//! enough: one thread copies our lines to the socket, another copies the
//! socket to stdout. Full duplex: both directions at once, as Node's
//! `client.on('data')` prints while `client.write` sends.

use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9001".to_string());
    let lines: Vec<String> = args.collect();

    // connect() is the three-way handshake: SYN, SYN-ACK, ACK (RFC 9293
    // §3.5). It returns once the connection is established.
    let stream = TcpStream::connect(&addr)?;
    println!(
        "connected to {} from {}",
        stream.peer_addr()?,
        stream.local_addr()?
    );

    // The receiving half: whatever arrives, print it as it comes. TCP is a
    // byte stream, not a message stream: one `read` may return half a line
    // or three lines, so we copy bytes and let the terminal show them.
    let mut reader = stream.try_clone()?;
    let receiver = thread::spawn(move || -> io::Result<()> {
        let mut buf = [0u8; 4096];
        let mut stdout = io::stdout();
        loop {
            match reader.read(&mut buf) {
                // The server closed its side: nothing more will arrive.
                Ok(0) => return Ok(()),
                Ok(n) => {
                    stdout.write_all(&buf[..n])?;
                    stdout.flush()?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    });

    // The sending half: the lines from the command line, or stdin.
    let mut writer = &stream;
    if lines.is_empty() {
        for line in io::stdin().lock().lines() {
            writer.write_all(format!("{}\n", line?).as_bytes())?;
        }
    } else {
        for line in &lines {
            writer.write_all(format!("{line}\n").as_bytes())?;
        }
    }

    // Half-close: send FIN to say "no more from me" but keep reading, so
    // the echo of our last line still reaches us. This is the first half
    // of TCP's four-way close (RFC 9293 §3.6); the server answers with its
    // own FIN once it has echoed everything, and `read` then returns 0.
    stream.shutdown(Shutdown::Write)?;
    match receiver.join() {
        Ok(result) => result,
        Err(_) => Err(io::Error::other("the receiving thread panicked")),
    }
}
