//! `wss://` echo on tokio-tungstenite over tokio-rustls, with the same
//! rustls and provider (ring) as duplex and a self-signed certificate
//! for localhost made at start, as duplex makes one. tungstenite's read
//! buffer is the second argument if given (`tt-echo-tls ADDR 8192`), its
//! default otherwise, as in `tt-echo`.

use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::PrivateKeyDer;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

fn main() {
    let addr = duplex_bench_peers::listen_addr("tt-echo-tls");
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("self-signed certificate");
    let key = PrivateKeyDer::try_from(made.signing_key.serialize_der()).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key)
        .expect("certificate");
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    duplex_bench_peers::run(async move {
        let listener = TcpListener::bind(&addr).await.expect("bind");
        let mut config = WebSocketConfig::default();
        if let Some(size) = std::env::args().nth(2) {
            config = config.read_buffer_size(size.parse().expect("read buffer size in bytes"));
        }
        eprintln!("tt-echo-tls listening on {addr}, read buffer {} bytes", config.read_buffer_size);
        loop {
            if let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, acceptor.clone(), config));
            }
        }
    })
}

async fn serve(socket: TcpStream, acceptor: TlsAcceptor, config: WebSocketConfig) {
    let _ = socket.set_nodelay(true);
    let Ok(stream) = acceptor.accept(socket).await else {
        return;
    };
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    duplex_bench_peers::echo(ws).await;
}
