//! The opening handshake (RFC 6455 §4), server side.
//!
//! A WebSocket starts life as an HTTP/1.1 `GET` with `Upgrade: websocket`.
//! The server proves it understood by hashing the client's
//! `Sec-WebSocket-Key` with a fixed GUID and answering
//! `101 Switching Protocols` with the result in `Sec-WebSocket-Accept`.
//! From the byte after that answer's blank line on, both sides speak frames.
//!
//! Worked by hand with the RFC's own example (§1.3):
//!
//! ```text
//! key                 dGhlIHNhbXBsZSBub25jZQ==
//! + GUID              dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11
//! SHA-1 (20 bytes)    b3 7a 4f 2c c0 62 4f 16 90 f6 46 06 cf 38 59 45 b2 be c6 ea
//! base64              s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
//! ```

use crate::http::{has_token, Request, Response, Status};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

/// The GUID every server appends to the key (§1.3).
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version there is (§4.1, §11.6).
pub const VERSION: &str = "13";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (§4.2.2 step 5.4).
pub fn sec_websocket_accept(key: &str) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(GUID.as_bytes());
    BASE64.encode(sha1.finalize())
}

/// Does this request ask for a WebSocket at all (`Upgrade: websocket`, in
/// any letter case)? If it does, it is held to the rules below; if not, it
/// is a plain HTTP request.
pub fn is_upgrade(request: &Request) -> bool {
    request
        .headers_named("upgrade")
        .any(|v| has_token(v, "websocket"))
}

/// Why an upgrade request is refused, and with which HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// §4.1: "The method of the request MUST be GET".
    MethodNotGet,
    /// §4.1: "the HTTP version MUST be at least 1.1".
    OldHttpVersion,
    /// §4.2.1 item 4: `Connection` must include the `Upgrade` token.
    NoConnectionUpgrade,
    /// §4.2.1 item 5: a key that is not base64 of 16 bytes.
    BadKey,
    /// §4.2.2: a version we do not speak; answered with the one we do.
    UnsupportedVersion,
    /// §11.3.1 and §11.3.5: `Sec-WebSocket-Key` and `Sec-WebSocket-Version`
    /// "MUST NOT appear more than once in an HTTP request". Two keys leave
    /// the accept value ambiguous, so the request is refused, not guessed at.
    Repeated(&'static str),
}

impl HandshakeError {
    /// The HTTP refusal that tells the client what was wrong (§4.2.2).
    pub fn response(&self) -> Response {
        match self {
            HandshakeError::MethodNotGet => {
                Response::refusal(Status::METHOD_NOT_ALLOWED, "a WebSocket upgrade must be a GET")
                    .header("Allow", "GET")
            }
            HandshakeError::OldHttpVersion => {
                Response::refusal(Status::BAD_REQUEST, "a WebSocket upgrade needs HTTP/1.1")
            }
            HandshakeError::NoConnectionUpgrade => {
                Response::refusal(Status::BAD_REQUEST, "the Connection header must include Upgrade")
            }
            HandshakeError::BadKey => Response::refusal(
                Status::BAD_REQUEST,
                "Sec-WebSocket-Key must be the base64 encoding of 16 bytes",
            ),
            HandshakeError::UnsupportedVersion => upgrade_required("only WebSocket version 13 is supported"),
            HandshakeError::Repeated(field) => Response::refusal(
                Status::BAD_REQUEST,
                &format!("{field} must not appear more than once (RFC 6455 §11.3)"),
            ),
        }
    }
}

/// The 426 answer, for a plain request to a WebSocket-only resource and for
/// a handshake in a version we do not speak. RFC 9110 §15.5.22: a 426 "MUST
/// send an Upgrade header field to indicate the required protocol(s)", and
/// §7.8 puts the `Upgrade` connection option beside it; RFC 6455 §4.4 adds
/// the versions the server speaks. `why` becomes the text body.
pub fn upgrade_required(why: &str) -> Response {
    Response::refusal(Status::UPGRADE_REQUIRED, why)
        .upgrade("websocket")
        .header("Sec-WebSocket-Version", VERSION)
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            HandshakeError::MethodNotGet => "upgrade with a method other than GET",
            HandshakeError::OldHttpVersion => "upgrade over HTTP/1.0",
            HandshakeError::NoConnectionUpgrade => "Connection header without Upgrade",
            HandshakeError::BadKey => "bad Sec-WebSocket-Key",
            HandshakeError::UnsupportedVersion => "unsupported Sec-WebSocket-Version",
            HandshakeError::Repeated(field) => return write!(f, "{field} more than once"),
        };
        f.write_str(text)
    }
}

/// Checks an upgrade request against §4.2.1 and returns the key to answer.
/// (Host and Origin are the web door's policy, checked before this.)
pub fn validate(request: &Request) -> Result<String, HandshakeError> {
    if request.method != "GET" {
        return Err(HandshakeError::MethodNotGet);
    }
    if request.version < 1 {
        return Err(HandshakeError::OldHttpVersion);
    }
    if !request
        .headers_named("connection")
        .any(|v| has_token(v, "upgrade"))
    {
        return Err(HandshakeError::NoConnectionUpgrade);
    }
    for field in ["Sec-WebSocket-Key", "Sec-WebSocket-Version"] {
        if request.headers_named(field).nth(1).is_some() {
            return Err(HandshakeError::Repeated(field));
        }
    }
    let version = request.header("sec-websocket-version").map(<[u8]>::trim_ascii);
    if version != Some(VERSION.as_bytes()) {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let key = request
        .header("sec-websocket-key")
        .ok_or(HandshakeError::BadKey)?
        .trim_ascii();
    // §4.1: "a base64-encoded value that, when decoded, is 16 bytes in length".
    match BASE64.decode(key) {
        Ok(nonce) if nonce.len() == 16 => {}
        _ => return Err(HandshakeError::BadKey),
    }
    // base64 is ASCII, so this cannot fail after a successful decode.
    String::from_utf8(key.to_vec()).map_err(|_| HandshakeError::BadKey)
}

/// Picks the subprotocol (§4.2.2 step 5.3, §11.3.4): the first one the
/// client offers that the endpoint speaks, or none, in which case the
/// answer carries no `Sec-WebSocket-Protocol` header at all.
///
/// The header may repeat and each holds a comma-separated list. Walking
/// the offers lazily means a list of ten thousand entries costs no memory.
pub fn select_protocol(request: &Request, supported: &[&'static str]) -> Option<&'static str> {
    request
        .headers_named("sec-websocket-protocol")
        .flat_map(|value| value.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .find_map(|offer| supported.iter().copied().find(|s| s.as_bytes() == offer))
}

/// The `101 Switching Protocols` answer.
pub fn accept_response(key: &str, protocol: Option<&str>) -> Response {
    let mut response = Response::new(Status::SWITCHING_PROTOCOLS)
        .upgrade("websocket")
        .header("Sec-WebSocket-Accept", &sec_websocket_accept(key));
    if let Some(protocol) = protocol {
        response = response.header("Sec-WebSocket-Protocol", protocol);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{HeadLimits, RequestReader};

    fn request(text: &str) -> Request {
        crate::http::request::parse_whole(text)
    }

    const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

    /// RFC 6455 §1.3.
    #[test]
    fn rfc_accept_key() {
        assert_eq!(
            sec_websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn rfc_request_is_accepted() {
        let r = request(RFC_REQUEST);
        assert!(is_upgrade(&r));
        assert_eq!(validate(&r).unwrap(), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(select_protocol(&r, &["superchat", "chat"]), Some("chat"));
        assert_eq!(select_protocol(&r, &["echo-protocol"]), None);

        let mut out = Vec::new();
        accept_response("dGhlIHNhbXBsZSBub25jZQ==", Some("chat")).encode(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
        );
    }

    #[test]
    fn letter_case_and_lists_are_tolerated() {
        let r = request(
            &RFC_REQUEST
                .replace("Upgrade: websocket", "upgrade: WebSocket")
                .replace("Connection: Upgrade", "Connection: keep-alive, Upgrade"),
        );
        assert!(is_upgrade(&r));
        assert!(validate(&r).is_ok());
    }

    #[test]
    fn refusals() {
        let cases = [
            (RFC_REQUEST.replace("GET", "POST"), HandshakeError::MethodNotGet),
            (
                RFC_REQUEST.replace("HTTP/1.1", "HTTP/1.0"),
                HandshakeError::OldHttpVersion,
            ),
            (
                RFC_REQUEST.replace("Connection: Upgrade", "Connection: keep-alive"),
                HandshakeError::NoConnectionUpgrade,
            ),
            (
                RFC_REQUEST.replace("Version: 13", "Version: 8"),
                HandshakeError::UnsupportedVersion,
            ),
            (
                RFC_REQUEST.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
                HandshakeError::BadKey,
            ),
            (
                RFC_REQUEST.replace("dGhlIHNhbXBsZSBub25jZQ==", "not base64!"),
                HandshakeError::BadKey,
            ),
            (
                RFC_REQUEST.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
                HandshakeError::BadKey,
            ),
            // §11.3.1: the key "MUST NOT appear more than once", even twice
            // the same; §11.3.5 says the same of the version.
            (
                RFC_REQUEST.replace(
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-key: x3JJHMbDL1EzLkh9GBhXDw==\r\n",
                ),
                HandshakeError::Repeated("Sec-WebSocket-Key"),
            ),
            (
                RFC_REQUEST.replace(
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                ),
                HandshakeError::Repeated("Sec-WebSocket-Key"),
            ),
            (
                RFC_REQUEST.replace("Version: 13\r\n", "Version: 13\r\nSec-WebSocket-Version: 13\r\n"),
                HandshakeError::Repeated("Sec-WebSocket-Version"),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(validate(&request(&text)), Err(expected.clone()), "{expected}");
        }
        let mut out = Vec::new();
        HandshakeError::UnsupportedVersion.response().encode(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 426 "));
        assert!(text.contains("Sec-WebSocket-Version: 13\r\n"));
        // RFC 9110 §7.8: the Upgrade header comes with its connection option.
        assert!(
            text.contains("Upgrade: websocket\r\nConnection: Upgrade\r\n"),
            "{text}"
        );
    }

    #[test]
    fn ten_thousand_offers_cost_nothing() {
        let offers = vec!["x"; 10_000].join(", ");
        let text = RFC_REQUEST.replace("chat, superchat", &(offers + ", chat"));
        let limits = HeadLimits {
            max_head: 1 << 20,
            max_headers: 64,
            max_body: 0,
        };
        let r = RequestReader::new(limits)
            .read(text.as_bytes())
            .unwrap()
            .1
            .unwrap();
        assert_eq!(select_protocol(&r, &["chat"]), Some("chat"));
    }
}
