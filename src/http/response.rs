//! Writing HTTP/1.1 responses.
//!
//! One rule shapes [`Response::encode`]: `Connection` is a list of options
//! (RFC 9110 §7.6.1), so a response writes it once, with every option it
//! needs. A 426 that also ends the connection says `Connection: Upgrade,
//! close`: the `Upgrade` option that RFC 9110 §7.8 requires beside every
//! `Upgrade` header, and the `close` of RFC 9112 §9.6. Two `Connection`
//! lines would mean the same to a careful reader, but a list written once
//! is what the RFC's examples show and what every client reads right.

use std::fmt::Write as _;

/// A status code and its reason phrase (RFC 9112 §4). The phrase is
/// for humans only: clients act on the number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(pub u16, pub &'static str);

impl Status {
    /// 100: an interim answer, "send your body" (RFC 9110 §15.2.1, §10.1.1).
    pub const CONTINUE: Status = Status(100, "Continue");
    /// 101: the WebSocket handshake succeeded; frames follow (RFC 9110 §15.2.2).
    pub const SWITCHING_PROTOCOLS: Status = Status(101, "Switching Protocols");
    /// 200: here is what you asked for (RFC 9110 §15.3.1).
    pub const OK: Status = Status(200, "OK");
    /// 204: done, and there is no body to send (RFC 9110 §15.3.5).
    pub const NO_CONTENT: Status = Status(204, "No Content");
    /// 301: the resource lives at `Location` (RFC 9110 §15.4.2): a folder
    /// asked for without its trailing slash.
    pub const MOVED_PERMANENTLY: Status = Status(301, "Moved Permanently");
    /// 304: the client's cached copy is still good (RFC 9110 §15.4.5).
    pub const NOT_MODIFIED: Status = Status(304, "Not Modified");
    /// 400: the request is malformed (RFC 9110 §15.5.1).
    pub const BAD_REQUEST: Status = Status(400, "Bad Request");
    /// 403: understood but refused, here a disallowed `Origin` (RFC 9110 §15.5.4).
    pub const FORBIDDEN: Status = Status(403, "Forbidden");
    /// 404: nothing at this path (RFC 9110 §15.5.5).
    pub const NOT_FOUND: Status = Status(404, "Not Found");
    /// 405: the path exists but not for this method; must carry `Allow` (RFC 9110 §15.5.6).
    pub const METHOD_NOT_ALLOWED: Status = Status(405, "Method Not Allowed");
    /// 408: the request head did not arrive in time (RFC 9110 §15.5.9).
    pub const REQUEST_TIMEOUT: Status = Status(408, "Request Timeout");
    /// 410: the member token is unknown or expired, and will not come back (RFC 9110 §15.5.11).
    pub const GONE: Status = Status(410, "Gone");
    /// 413: the body is over the limit; RFC 9110 §15.5.14 renamed it "Content Too Large".
    pub const PAYLOAD_TOO_LARGE: Status = Status(413, "Content Too Large");
    /// 414: the request target is longer than the server parses (RFC 9110 §15.5.15).
    pub const URI_TOO_LONG: Status = Status(414, "URI Too Long");
    /// 417: an `Expect` the server cannot meet (RFC 9110 §15.5.18).
    pub const EXPECTATION_FAILED: Status = Status(417, "Expectation Failed");
    /// 426: this path speaks WebSocket only, or a version we don't (RFC 9110 §15.5.22);
    /// built by [`crate::ws::handshake::upgrade_required`].
    pub const UPGRADE_REQUIRED: Status = Status(426, "Upgrade Required");
    /// 431: the request head is over the limit (RFC 6585 §5).
    pub const REQUEST_HEADER_FIELDS_TOO_LARGE: Status = Status(431, "Request Header Fields Too Large");
    /// 501: a method this server supports for no resource, such as
    /// CONNECT, or a transfer coding it does not know (RFC 9110 §15.6.2).
    pub const NOT_IMPLEMENTED: Status = Status(501, "Not Implemented");
    /// 503: full or shutting down; try again later (RFC 9110 §15.6.4).
    pub const SERVICE_UNAVAILABLE: Status = Status(503, "Service Unavailable");
}

/// A response under construction: status, headers, body.
#[derive(Debug)]
pub struct Response {
    status: Status,
    headers: String,
    body: Vec<u8>,
    /// Send the head only (a `HEAD` request, RFC 9110 §9.3.2).
    head_only: bool,
    /// The protocol named in `Upgrade` (RFC 9110 §7.8), if any.
    upgrade: Option<&'static str>,
    close: bool,
    /// A body the caller sends after the head, of this many bytes (a file
    /// streamed from disk): `Content-Length` says it, `encode` writes the
    /// head only.
    streamed: Option<u64>,
}

impl Response {
    /// An empty response with this status; add headers and a body next.
    pub fn new(status: Status) -> Response {
        Response {
            status,
            headers: String::new(),
            body: Vec::new(),
            head_only: false,
            upgrade: None,
            close: false,
            streamed: None,
        }
    }

    /// A refusal with a short plain-text body that says why.
    pub fn refusal(status: Status, why: &str) -> Response {
        let mut body = String::with_capacity(why.len() + 1);
        body.push_str(why);
        body.push('\n');
        Response::new(status)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(body.into_bytes())
    }

    /// The status this response will send.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Appends a header line. Names and values are written as given:
    /// callers must not pass CR or LF in them. `Connection`, `Upgrade` and
    /// `Content-Length` are the encoder's: use [`Response::close`],
    /// [`Response::upgrade`] and [`Response::body`].
    pub fn header(mut self, name: &str, value: &str) -> Response {
        let _ = write!(self.headers, "{name}: {value}\r\n");
        self
    }

    /// Sets the body; `Content-Length` is computed when encoding.
    pub fn body(mut self, body: Vec<u8>) -> Response {
        self.body = body;
        self
    }

    /// Sends the head but not the body, keeping the body's
    /// `Content-Length` (a `HEAD` request, RFC 9110 §9.3.2).
    pub fn head_only(mut self, yes: bool) -> Response {
        self.head_only = yes;
        self
    }

    /// Announces a body of `len` bytes that the caller sends after the
    /// head (a file, in chunks): `encode` then writes the head only.
    pub fn streamed(mut self, len: u64) -> Response {
        self.streamed = Some(len);
        self
    }

    /// Lets a page on `origin` read this answer (the CORS protocol, Fetch
    /// §3.2.3): `Access-Control-Allow-Origin`, and `Vary: Origin` because
    /// the answer now differs by who asks. Nothing without an origin.
    pub fn allow_origin(self, origin: Option<&str>) -> Response {
        match origin {
            Some(origin) => self
                .header("Access-Control-Allow-Origin", origin)
                .header("Vary", "Origin"),
            None => self,
        }
    }

    /// Ends the connection after this response (`Connection: close`).
    pub fn close(mut self, yes: bool) -> Response {
        self.close = yes;
        self
    }

    /// Names a protocol to switch to: `Upgrade: PROTOCOL` and the
    /// `Upgrade` connection option beside it, which RFC 9110 §7.8 requires
    /// of every sender of `Upgrade` (a 101 that switches, a 426 that asks).
    pub fn upgrade(mut self, protocol: &'static str) -> Response {
        self.upgrade = Some(protocol);
        self
    }

    /// Whether the connection ends after this response.
    pub fn closes(&self) -> bool {
        self.close
    }

    /// Serialises the response: the status line, `Upgrade` and one
    /// `Connection` line with every option, the headers in the order they
    /// were added, then `Content-Length`. The upgrade lines come first, as
    /// in RFC 6455 §1.3's example handshake.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut head = String::with_capacity(128 + self.headers.len());
        let _ = write!(head, "HTTP/1.1 {} {}\r\n", self.status.0, self.status.1);
        if let Some(protocol) = self.upgrade {
            let _ = write!(head, "Upgrade: {protocol}\r\n");
        }
        match (self.upgrade.is_some(), self.close) {
            (true, true) => head.push_str("Connection: Upgrade, close\r\n"),
            (true, false) => head.push_str("Connection: Upgrade\r\n"),
            (false, true) => head.push_str("Connection: close\r\n"),
            (false, false) => {}
        }
        head.push_str(&self.headers);
        // RFC 9110 §8.6: no Content-Length on a 1xx or a 204. A 101 is
        // followed by frames, not a body; a 100 by the final answer. A 304
        // may carry one only if it gives the length of the full file, which
        // says nothing the client needs: none.
        let informational = self.status.0 < 200;
        if !informational && self.status != Status::NO_CONTENT && self.status != Status::NOT_MODIFIED {
            let len = self.streamed.unwrap_or(self.body.len() as u64);
            let _ = write!(head, "Content-Length: {len}\r\n");
        }
        head.push_str("\r\n");
        out.extend_from_slice(head.as_bytes());
        if !self.head_only {
            out.extend_from_slice(&self.body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_head_and_body() {
        let mut out = Vec::new();
        Response::refusal(Status::NOT_FOUND, "no such page")
            .close(true)
            .encode(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.contains("Content-Length: 13\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\nno such page\n"));
    }

    #[test]
    fn upgrade_names_its_connection_option_once() {
        // RFC 9110 §7.8 and §7.6.1: `Upgrade` goes with an `Upgrade`
        // connection option, and a closing answer lists `close` beside it.
        let mut out = Vec::new();
        Response::refusal(Status::UPGRADE_REQUIRED, "WebSocket only")
            .upgrade("websocket")
            .close(true)
            .encode(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\n"
            ),
            "{text}"
        );
        assert_eq!(text.matches("Connection:").count(), 1);

        let mut out = Vec::new();
        Response::new(Status::SWITCHING_PROTOCOLS)
            .upgrade("websocket")
            .encode(&mut out);
        assert_eq!(
            out,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        );
    }

    #[test]
    fn no_length_on_1xx_204_and_304() {
        // RFC 9110 §8.6: "A server MUST NOT send a Content-Length header
        // field in any response with a status code of 1xx or 204", nor in
        // a 304 unless it is the full representation's length.
        for status in [Status::CONTINUE, Status::NO_CONTENT, Status::NOT_MODIFIED] {
            let mut out = Vec::new();
            Response::new(status).encode(&mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(!text.contains("Content-Length"), "{text}");
            assert!(text.ends_with("\r\n\r\n"));
        }
    }

    #[test]
    fn a_streamed_body_is_announced_not_written() {
        let mut out = Vec::new();
        Response::new(Status::OK).streamed(1 << 40).encode(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("Content-Length: 1099511627776\r\n\r\n"), "{text}");
    }

    #[test]
    fn head_only_keeps_the_length() {
        let mut out = Vec::new();
        Response::new(Status::OK)
            .body(b"abc".to_vec())
            .head_only(true)
            .encode(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Content-Length: 3\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }
}
