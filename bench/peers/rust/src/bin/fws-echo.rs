//! WebSocket echo on fastwebsockets. The crate leaves the HTTP upgrade to
//! the caller (or to hyper); here httparse reads it straight off the
//! socket, then `WebSocket::after_handshake` takes over, with a
//! `FragmentCollector` so fragmented messages are echoed whole.

use fastwebsockets::{FragmentCollector, OpCode, Role, WebSocket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() {
    let addr = duplex_bench_peers::listen_addr("fws-echo");
    duplex_bench_peers::run(async move {
        let listener = TcpListener::bind(&addr).await.expect("bind");
        eprintln!("fws-echo listening on {addr}");
        loop {
            if let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = serve(socket).await;
                });
            }
        }
    })
}

async fn serve(mut socket: TcpStream) -> Option<()> {
    socket.set_nodelay(true).ok()?;
    let mut head = Vec::with_capacity(1024);
    let key = loop {
        if socket.read_buf(&mut head).await.ok()? == 0 || head.len() > 16 * 1024 {
            return None;
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        if let httparse::Status::Complete(_) = request.parse(&head).ok()? {
            let key = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-key"))?;
            break String::from_utf8_lossy(key.value).trim().to_string();
        }
    };
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: {}\r\n\r\n",
        duplex_bench_peers::accept_key(&key)
    );
    socket.write_all(answer.as_bytes()).await.ok()?;

    let mut ws = FragmentCollector::new(WebSocket::after_handshake(socket, Role::Server));
    loop {
        let frame = ws.read_frame().await.ok()?;
        match frame.opcode {
            OpCode::Close => return Some(()),
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await.ok()?,
            _ => {}
        }
    }
}
