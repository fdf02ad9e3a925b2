//! Line echo over raw TCP on tokio: every complete line that arrives is
//! sent back, all the lines of one read in one write.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() {
    let addr = duplex_bench_peers::listen_addr("tokio-lines");
    duplex_bench_peers::run(async move {
        let listener = TcpListener::bind(&addr).await.expect("bind");
        eprintln!("tokio-lines listening on {addr}");
        loop {
            if let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket));
            }
        }
    })
}

async fn serve(mut socket: TcpStream) -> std::io::Result<()> {
    socket.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(8 * 1024);
    loop {
        if socket.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        if let Some(last) = buf.iter().rposition(|&b| b == b'\n') {
            socket.write_all(&buf[..=last]).await?;
            buf.drain(..=last);
        }
        if buf.len() > 64 * 1024 {
            return Ok(()); // a line with no end in sight
        }
    }
}
