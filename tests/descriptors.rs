//! Out of file descriptors after all: the server's spare descriptor lets
//! a refused client still hear why. In-process, in a test binary of its
//! own, because it exhausts the process's descriptors.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn out_of_descriptors_a_client_is_still_answered() {
    let (tx, rx) = std::sync::mpsc::channel();
    // The server is one thread's (its hub shares bytes with `Rc`): it is
    // made and run on a thread of its own.
    std::thread::spawn(move || {
        let mut config = duplex::Config::ephemeral();
        config.max_connections = 100;
        let mut server = duplex::Server::bind(config).expect("bind");
        tx.send(server.line_addr()).expect("send the address");
        server.run()
    });
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the server is listening");
    // Take every descriptor the process may have...
    let mut hoard = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        hoard.push(file);
        assert!(hoard.len() < 1_000_000, "no descriptor limit to reach");
    }
    // ...but one, for the client's own socket.
    hoard.pop();
    let client = TcpStream::connect(line).expect("connect with the last descriptor");
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    BufReader::new(&client)
        .read_line(&mut answer)
        .expect("an answer before the timeout");
    drop(hoard);
    assert_eq!(
        answer.trim_end(),
        "! server busy: out of file descriptors; try again later"
    );
}
