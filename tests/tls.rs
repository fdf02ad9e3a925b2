//! TLS under both doors, over real sockets: `wss://`, `https://` and the
//! line service over TLS, against a client that shares no code with the
//! server (rustls's client, tungstenite on top), and the hostile cases:
//! garbage, plain HTTP on the TLS port, a stalled handshake, truncation.

mod common;

use common::{Duplex, Telnet, WAIT};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::Message;

type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// A certificate for 127.0.0.1 made for one test, written as PEM files
/// for `--tls-cert` and `--tls-key`, and the client that trusts it.
struct Pki {
    dir: PathBuf,
    client: Arc<ClientConfig>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let dir = std::env::temp_dir().join(format!("duplex-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = made.signing_key.serialize_der();
        std::fs::write(dir.join("cert.pem"), pem("CERTIFICATE", made.cert.der())).unwrap();
        std::fs::write(dir.join("key.pem"), pem("PRIVATE KEY", &key)).unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(made.cert.der().clone()).unwrap();
        Pki {
            dir,
            client: client_config(roots),
        }
    }

    /// The server's arguments: both TLS doors, with this certificate.
    fn args(&self) -> Vec<String> {
        let path = |file: &str| self.dir.join(file).to_string_lossy().into_owned();
        vec![
            "--https".into(),
            "127.0.0.1:0".into(),
            "--tcps".into(),
            "127.0.0.1:0".into(),
            "--tls-cert".into(),
            path("cert.pem"),
            "--tls-key".into(),
            path("key.pem"),
        ]
    }

    fn start(&self, extra: &[&str]) -> Duplex {
        let mut args = self.args();
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Duplex::start(&args)
    }
}

/// DER as PEM (RFC 7468): base64 in lines of 64, between labels.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out + &format!("-----END {label}-----\n")
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn client_config(roots: RootCertStore) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// A TLS connection to `addr`, every read bounded by [`WAIT`]. The
/// handshake happens on the first read or write.
fn tls_connect(config: &Arc<ClientConfig>, addr: SocketAddr) -> TlsStream {
    let socket = TcpStream::connect(addr).expect("connect to a TLS door");
    socket.set_read_timeout(Some(WAIT)).unwrap();
    socket.set_nodelay(true).unwrap();
    let name = ServerName::IpAddress(addr.ip().into());
    let session = ClientConnection::new(config.clone(), name).expect("client session");
    StreamOwned::new(session, socket)
}

/// A `wss://` WebSocket on `path`, tungstenite over rustls.
fn wss_connect(pki: &Pki, server: &Duplex, path: &str) -> tungstenite::WebSocket<TlsStream> {
    let addr = server.https.expect("--https is open");
    let stream = tls_connect(&pki.client, addr);
    let url = format!("wss://{addr}{path}");
    let (ws, response) = tungstenite::client(url.as_str(), stream).expect("wss handshake");
    assert_eq!(response.status(), 101);
    ws
}

/// Reads lines from a TLS stream: the line service over TLS.
struct TlsLines(BufReader<TlsStream>);

impl TlsLines {
    fn connect(pki: &Pki, server: &Duplex) -> TlsLines {
        TlsLines(BufReader::new(tls_connect(
            &pki.client,
            server.tcps.expect("--tcps is open"),
        )))
    }

    fn say(&mut self, line: &str) {
        let stream = self.0.get_mut();
        stream.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        stream.flush().unwrap();
    }

    /// The next line; `None` at a clean end (close_notify, RFC 8446
    /// §6.1). rustls reports an end without it as `UnexpectedEof`.
    fn try_line(&mut self) -> std::io::Result<Option<String>> {
        let mut line = String::new();
        match self.0.read_line(&mut line)? {
            0 => Ok(None),
            _ => Ok(Some(line.trim_end().to_string())),
        }
    }

    fn line(&mut self) -> String {
        self.try_line()
            .expect("a line over TLS")
            .expect("a line before the end")
    }

    fn until(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "no matching line");
            let line = self.line();
            if pred(&line) {
                return line;
            }
        }
    }
}

#[test]
fn the_listening_line_names_the_tls_doors() {
    let pki = Pki::new("listening");
    let server = pki.start(&[]);
    assert!(server.https.is_some_and(|a| a.port() != 0));
    assert!(server.tcps.is_some_and(|a| a.port() != 0));
    // Without TLS doors, no TLS words at all.
    let plain = Duplex::start(&[]);
    assert!(plain.https.is_none() && plain.tcps.is_none());
}

#[test]
fn wss_echoes_text_binary_and_one_mebibyte() {
    let pki = Pki::new("echo");
    let server = pki.start(&[]);
    let mut ws = wss_connect(&pki, &server, "/echo");
    ws.send(Message::text("hello over TLS")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("hello over TLS"));
    ws.send(Message::binary(vec![0u8, 1, 2, 255])).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(vec![0u8, 1, 2, 255]));
    // Many records each way, and more than rustls's 64 KiB buffer: the
    // read loop must drain and the write loop must wait for the socket.
    let big: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
    ws.send(Message::binary(big.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(big));
    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("close over TLS: {e}"),
        }
    }
}

#[test]
fn a_wss_member_and_a_plain_telnet_member_chat() {
    let pki = Pki::new("chat");
    let server = pki.start(&[]);
    let (mut telnet, telnet_name) = Telnet::join(server.tcp);
    let mut ws = wss_connect(&pki, &server, "/chat");
    let welcome = common::ws_until_text(&mut ws, |t| t.contains("your name is"));
    let ws_name = welcome
        .split("your name is ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .expect("a name")
        .to_string();
    telnet.until(|l| l.contains(&ws_name) && l.contains("joined"));
    ws.send(Message::text("hello from wss")).unwrap();
    telnet.until(|l| l.contains("hello from wss"));
    telnet.say("hello from telnet");
    common::ws_until_text(&mut ws, |t| {
        t.contains("hello from telnet") && t.contains(&telnet_name)
    });
}

#[test]
fn the_line_service_over_tls_greets_and_answers() {
    let pki = Pki::new("tcps");
    let server = pki.start(&[]);
    let mut lines = TlsLines::connect(&pki, &server);
    let greeting = lines.line();
    assert!(greeting.contains("your name is"), "{greeting}");
    lines.say("/echo over tls");
    lines.until(|l| l.contains("over tls"));
}

#[test]
fn https_healthz_answers_200_with_the_printed_pin() {
    // No certificate given: one is made, and its pin printed.
    let server = Duplex::start(&["--https", "127.0.0.1:0"]);
    let pin = server.tls_pin();
    let config = pinned_client(&pin);
    let mut stream = tls_connect(&config, server.https.unwrap());
    let host = server.https.unwrap();
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .expect("a whole answer, ended by close_notify");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// A client that trusts exactly the key whose pin was printed: the
/// SHA-256 of the certificate's SubjectPublicKeyInfo, base64.
fn pinned_client(pin: &str) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(Pinned {
        pin: pin.to_string(),
        provider: provider.clone(),
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Arc::new(config)
}

#[derive(Debug)]
struct Pinned {
    pin: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl Pinned {
    /// Whether some DER SEQUENCE inside the certificate hashes to the pin.
    /// The SubjectPublicKeyInfo is one; walking every SEQUENCE header is
    /// simpler than parsing X.509 and as strict for a 256-bit hash.
    fn matches(&self, cert: &[u8]) -> bool {
        use base64::Engine;
        (0..cert.len()).any(|start| {
            let Some(len) = der_sequence_len(&cert[start..]) else {
                return false;
            };
            let digest = ring::digest::digest(&ring::digest::SHA256, &cert[start..start + len]);
            base64::engine::general_purpose::STANDARD.encode(digest.as_ref()) == self.pin
        })
    }
}

/// The whole length of a DER SEQUENCE starting at `der[0]`, if one does.
fn der_sequence_len(der: &[u8]) -> Option<usize> {
    if der.first() != Some(&0x30) {
        return None;
    }
    let (body, header) = match *der.get(1)? {
        n if n < 0x80 => (usize::from(n), 2),
        0x81 => (usize::from(*der.get(2)?), 3),
        0x82 => (usize::from(u16::from_be_bytes([*der.get(2)?, *der.get(3)?])), 4),
        _ => return None,
    };
    (header + body <= der.len()).then_some(header + body)
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if self.matches(end_entity) {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("the key is not the pinned one".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Sends raw bytes to a TLS door and reads what comes back until the
/// server closes (every read bounded).
fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    let started = Instant::now();
    stream
        .read_to_end(&mut answer)
        .expect("the server closes, within the wait");
    assert!(started.elapsed() < WAIT);
    answer
}

/// One TLS alert record and nothing else (RFC 8446 §5.1: content type
/// 21; §6: level, description). Most failures get a fatal one (level 2);
/// for the few rustls sends none for (a handshake message over its size
/// bound), the server's close_notify (level 1, description 0) is the last
/// word.
fn is_one_alert(answer: &[u8]) -> bool {
    answer.len() == 7 && answer[0] == 21 && answer[3..5] == [0, 2]
}

fn is_fatal_alert(answer: &[u8]) -> bool {
    is_one_alert(answer) && answer[5] == 2
}

#[test]
fn garbage_to_a_tls_door_gets_an_alert_and_a_close() {
    let pki = Pki::new("garbage");
    let server = pki.start(&[]);
    for door in [server.https.unwrap(), server.tcps.unwrap()] {
        // Not a TLS record at all: a fatal alert.
        let answer = raw_exchange(door, b"\x00\x01\x02 garbage");
        assert!(is_fatal_alert(&answer), "{answer:?}");
        // A handshake record whose message claims 7 MB.
        let answer = raw_exchange(door, b"\x16\x03\x01\x00\x05hello, this is not a ClientHello");
        assert!(is_one_alert(&answer), "{answer:?}");
    }
    server.wait_log("TLS handshake failed");
    // The plain doors are unharmed.
    let (mut telnet, _) = Telnet::join(server.tcp);
    telnet.say("/echo still here");
    telnet.until(|l| l.contains("still here"));
}

#[test]
fn plain_http_on_the_tls_port_is_named_and_closed() {
    let pki = Pki::new("plainhttp");
    let server = pki.start(&[]);
    let https = server.https.unwrap();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {https}\r\n\r\n");
    let answer = raw_exchange(https, request.as_bytes());
    assert!(is_fatal_alert(&answer), "{answer:?}");
    server.wait_log("plain HTTP on the TLS port");
}

#[test]
fn a_stalled_handshake_is_closed_at_the_deadline() {
    let pki = Pki::new("stalled");
    let server = pki.start(&["--handshake-timeout", "1s"]);
    for door in [server.https.unwrap(), server.tcps.unwrap()] {
        // Half a record header of a ClientHello, then silence.
        let mut stream = TcpStream::connect(door).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(b"\x16\x03").unwrap();
        let started = Instant::now();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(900), "closed after {took:?}");
        assert!(took < WAIT, "not closed within {WAIT:?}");
    }
    server.wait_log("TLS handshake not done within 1s");
}

#[test]
fn a_close_without_close_notify_is_logged_as_a_truncation() {
    let pki = Pki::new("truncation");
    let server = pki.start(&[]);
    let mut lines = TlsLines::connect(&pki, &server);
    lines.line();
    // Drop TCP under TLS: no close_notify.
    let stream = lines.0.into_inner();
    stream.sock.shutdown(std::net::Shutdown::Both).unwrap();
    server.wait_log("closed without close_notify: a truncation");
}

#[test]
fn shutdown_says_goodbye_then_close_notify() {
    let pki = Pki::new("shutdown");
    let mut server = pki.start(&[]);
    let mut lines = TlsLines::connect(&pki, &server);
    lines.line();
    let mut ws = wss_connect(&pki, &server, "/echo");
    ws.send(Message::text("ready")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("ready"));
    let pid = server.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    // Telnet: the goodbye line, then a clean end of TLS.
    lines.until(|l| l.contains("server shutting down"));
    assert!(
        matches!(lines.try_line(), Ok(None)),
        "close_notify after the goodbye"
    );
    // WebSocket: close 1001, answered, then a clean end of TLS.
    match ws.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected close 1001, got {other:?}"),
    }
    loop {
        match ws.read() {
            Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("closing: {e}"),
        }
    }
    let mut rest = [0u8; 16];
    assert_eq!(ws.get_mut().read(&mut rest).expect("close_notify, not a cut"), 0);
    assert!(server.wait_exit().success());
}

#[test]
fn output_limits_hold_over_tls() {
    // An echo that is never read: the server's queue, and what it sealed
    // into records, grow past --max-output and stay there.
    let pki = Pki::new("slow");
    let server = pki.start(&[
        "--max-output",
        "64KiB",
        "--slow-reader-timeout",
        "1s",
        "--close-timeout",
        "1s",
    ]);
    let https = server.https.unwrap();
    let mut stream = tls_connect(&pki.client, https);
    stream
        .write_all(&common::upgrade_request(https, "/echo", ""))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).expect("upgrade answer"), 1);
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    // Writes that block for longer than this mean the server has stopped
    // reading: enough has been sent.
    stream
        .sock
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let message = common::frame(true, 0x2, &vec![0xAB; 1 << 20], Some([1, 2, 3, 4]));
    for _ in 0..32 {
        if stream.write_all(&message).is_err() {
            break;
        }
    }
    server.wait_log("slow reader");
    server.wait_log("sending close 1008 (policy violation): too slow");
    // A peer that reads nothing never takes the rest of the frame the
    // socket was in the middle of, nor the close frame: the close
    // deadline frees the connection.
    let _ = stream.sock.shutdown(std::net::Shutdown::Both);
    server.wait_log("disconnected (");
}

#[test]
fn a_request_sent_with_the_last_handshake_flight_is_answered() {
    // The client's Finished and its request leave in one write, so the
    // server reads both in one go: the request must be handled then,
    // not left inside rustls waiting for an event that never comes
    // (sozu#460).
    let pki = Pki::new("earlydata");
    let server = pki.start(&[]);
    let https = server.https.unwrap();
    let mut socket = TcpStream::connect(https).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let name = ServerName::IpAddress(https.ip().into());
    let mut session = ClientConnection::new(pki.client.clone(), name).unwrap();
    // Written before the handshake: rustls sends it right after Finished.
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {https}\r\nConnection: close\r\n\r\n");
    session.writer().write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no answer");
        while session.wants_write() {
            session.write_tls(&mut socket).unwrap();
        }
        let mut plain = [0u8; 4096];
        match session.reader().read(&mut plain) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&plain[..n]);
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("reading the answer: {e}"),
        }
        if session.read_tls(&mut socket).expect("records from the server") == 0 {
            break;
        }
        session.process_new_packets().expect("a valid TLS stream");
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
