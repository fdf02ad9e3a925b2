//! HTTP/1.1, just enough of it, sans-IO: a request reader that refuses
//! oversized heads before buffering them, the request target and its
//! authority, and a response writer.
//!
//! The web door uses it for the page, `/healthz`, `/stats`, the refusals,
//! and the request that becomes a WebSocket (RFC 6455 §4: the opening
//! handshake *is* an HTTP request).

pub mod chunked;
pub mod date;
pub mod request;
pub mod response;
pub mod target;
pub mod text;

pub use request::{HeadLimits, Request, RequestError, RequestReader, CONTINUE};
pub use response::{Response, Status};
pub use target::{Authority, Target};
pub use text::{json_string, percent_decode};

/// Does a comma-separated header value (`Connection: keep-alive, Upgrade`)
/// contain `token`, ignoring case? (RFC 9110 §5.6.1 lists; §7.6.1, §7.8
/// compare these tokens case-insensitively.)
pub fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens() {
        assert!(super::has_token(b"keep-alive, Upgrade", "upgrade"));
        assert!(super::has_token(b"WebSocket", "websocket"));
        assert!(!super::has_token(b"upgrades", "upgrade"));
        assert!(!super::has_token(b"", "upgrade"));
    }
}
