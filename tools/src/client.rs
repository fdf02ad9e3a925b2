//! The client side of RFC 6455, sans-IO like the server's codecs and built
//! from them: the opening handshake from the other end (§4.1) and masked
//! frames out (§5.3). What comes back is read with duplex's own
//! `Decoder` in the client role.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use duplex::http::has_token;
use duplex::random::random_u64;
use duplex::ws::handshake::sec_websocket_accept;
use duplex::ws::{encode_frame, Opcode};

/// A fresh `Sec-WebSocket-Key`: 16 random bytes in base64 (§4.1).
pub fn random_key() -> String {
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&random_u64().to_ne_bytes());
    nonce[8..].copy_from_slice(&random_u64().to_ne_bytes());
    BASE64.encode(nonce)
}

/// A fresh masking key (§5.3).
pub fn random_mask() -> [u8; 4] {
    let bytes = random_u64().to_ne_bytes();
    [bytes[0], bytes[1], bytes[2], bytes[3]]
}

/// The opening handshake request (§4.1), offering `extensions` if given
/// (§9.1; RFC 7692 §5).
pub fn handshake_request(
    host: &str,
    path: &str,
    key: &str,
    protocols: &[&str],
    extensions: Option<&str>,
) -> Vec<u8> {
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if !protocols.is_empty() {
        request.push_str(&format!("Sec-WebSocket-Protocol: {}\r\n", protocols.join(", ")));
    }
    if let Some(extensions) = extensions {
        request.push_str(&format!("Sec-WebSocket-Extensions: {extensions}\r\n"));
    }
    request.push_str("\r\n");
    request.into_bytes()
}

/// Why the server's answer is not a valid `101`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// The answer's head is not complete yet; read more.
    Incomplete,
    /// Another status, with the response's body text if any came along.
    Status(u16, String),
    /// A `101` that breaks §4.1's rules for clients.
    Invalid(&'static str),
}

impl std::fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeFailure::Incomplete => write!(f, "incomplete response"),
            HandshakeFailure::Status(code, body) => write!(f, "server answered {code}: {}", body.trim()),
            HandshakeFailure::Invalid(why) => write!(f, "invalid handshake answer: {why}"),
        }
    }
}

/// A successful handshake answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The subprotocol the server chose, if any.
    pub protocol: Option<String>,
    /// The extensions the server agreed to (`Sec-WebSocket-Extensions`).
    pub extensions: Option<String>,
    /// Bytes of the response head: frames start right after.
    pub head_len: usize,
}

/// Checks the server's answer against §4.1 (client requirements 1–6).
pub fn check_response(bytes: &[u8], key: &str, offered: &[&str]) -> Result<Accepted, HandshakeFailure> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(HandshakeFailure::Incomplete),
        Err(_) => return Err(HandshakeFailure::Invalid("not an HTTP response")),
    };
    let code = response.code.unwrap_or(0);
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    if code != 101 {
        let body = String::from_utf8_lossy(&bytes[head_len..]).into_owned();
        return Err(HandshakeFailure::Status(code, body));
    }
    if !header("upgrade").is_some_and(|v| has_token(v, "websocket")) {
        return Err(HandshakeFailure::Invalid("no Upgrade: websocket"));
    }
    if !header("connection").is_some_and(|v| has_token(v, "upgrade")) {
        return Err(HandshakeFailure::Invalid("no Connection: Upgrade"));
    }
    if header("sec-websocket-accept").map(<[u8]>::trim_ascii) != Some(sec_websocket_accept(key).as_bytes()) {
        return Err(HandshakeFailure::Invalid("wrong Sec-WebSocket-Accept"));
    }
    let protocol = header("sec-websocket-protocol").map(|v| String::from_utf8_lossy(v).trim().to_string());
    if let Some(p) = &protocol {
        if !offered.contains(&p.as_str()) {
            return Err(HandshakeFailure::Invalid("a subprotocol that was not offered"));
        }
    }
    let extensions =
        header("sec-websocket-extensions").map(|v| String::from_utf8_lossy(v).trim().to_string());
    Ok(Accepted {
        protocol,
        extensions,
        head_len,
    })
}

/// Appends one client frame, masked with a fresh key (§5.3).
pub fn encode_client_frame(out: &mut Vec<u8>, fin: bool, opcode: Opcode, payload: &[u8]) {
    encode_frame(out, fin, opcode, payload, Some(random_mask()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_fresh_and_well_formed() {
        let (a, b) = (random_key(), random_key());
        assert_ne!(a, b);
        assert_eq!(BASE64.decode(&a).unwrap().len(), 16);
    }

    #[test]
    fn checks_the_answer() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let good = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n\x81\x00";
        let accepted = check_response(good, key, &["chat"]).unwrap();
        assert_eq!(accepted.protocol.as_deref(), Some("chat"));
        assert_eq!(&good[accepted.head_len..], b"\x81\x00");
        assert_eq!(
            check_response(good, key, &["other"]),
            Err(HandshakeFailure::Invalid("a subprotocol that was not offered"))
        );
        assert_eq!(
            check_response(&good[..20], key, &[]),
            Err(HandshakeFailure::Incomplete)
        );
        let refused = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nno!\n";
        assert!(matches!(
            check_response(refused, key, &[]),
            Err(HandshakeFailure::Status(403, _))
        ));
    }
}
