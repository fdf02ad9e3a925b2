//! WebSocket echo on tokio-tungstenite with its default configuration.
//! Answers are fed into the sink as messages arrive and flushed once no
//! more are ready, so a burst of messages goes out in one write.

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};

fn main() {
    let addr = duplex_bench_peers::listen_addr("tt-echo");
    duplex_bench_peers::run(async move {
        let listener = TcpListener::bind(&addr).await.expect("bind");
        eprintln!("tt-echo listening on {addr}");
        loop {
            if let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket));
            }
        }
    })
}

async fn serve(socket: TcpStream) {
    let _ = socket.set_nodelay(true);
    let Ok(mut ws) = tokio_tungstenite::accept_async(socket).await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        if !(message.is_text() || message.is_binary()) {
            continue;
        }
        if ws.feed(message).await.is_err() {
            return;
        }
        // Take whatever else is already here before flushing.
        while let Some(Some(Ok(message))) = ws.next().now_or_never() {
            if (message.is_text() || message.is_binary()) && ws.feed(message).await.is_err() {
                return;
            }
        }
        if ws.flush().await.is_err() {
            return;
        }
    }
}
