//! WebSocket echo on tokio-tungstenite with its default configuration, or
//! with the read buffer given as a second argument (`tt-echo ADDR 8192`,
//! the one-line tuning a careful user makes: by default tungstenite fills a
//! 128 KiB read buffer with zeros before every read).
//! Answers are fed into the sink as messages arrive and flushed once no
//! more are ready, so a burst of messages goes out in one write.

use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

fn main() {
    let addr = duplex_bench_peers::listen_addr("tt-echo");
    duplex_bench_peers::run(async move {
        let listener = TcpListener::bind(&addr).await.expect("bind");
        let mut config = WebSocketConfig::default();
        if let Some(size) = std::env::args().nth(2) {
            config = config.read_buffer_size(size.parse().expect("read buffer size in bytes"));
        }
        eprintln!("tt-echo listening on {addr}, read buffer {} bytes", config.read_buffer_size);
        loop {
            if let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, config));
            }
        }
    })
}

async fn serve(socket: TcpStream, config: WebSocketConfig) {
    let _ = socket.set_nodelay(true);
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(socket, Some(config)).await else {
        return;
    };
    duplex_bench_peers::echo(ws).await;
}
