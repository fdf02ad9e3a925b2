//! Writing HTTP/1.1 responses.

use std::fmt::Write as _;

/// A status code and its reason phrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(pub u16, pub &'static str);

impl Status {
    pub const SWITCHING_PROTOCOLS: Status = Status(101, "Switching Protocols");
    pub const OK: Status = Status(200, "OK");
    pub const NO_CONTENT: Status = Status(204, "No Content");
    pub const BAD_REQUEST: Status = Status(400, "Bad Request");
    pub const FORBIDDEN: Status = Status(403, "Forbidden");
    pub const NOT_FOUND: Status = Status(404, "Not Found");
    pub const METHOD_NOT_ALLOWED: Status = Status(405, "Method Not Allowed");
    pub const REQUEST_TIMEOUT: Status = Status(408, "Request Timeout");
    pub const GONE: Status = Status(410, "Gone");
    pub const LENGTH_REQUIRED: Status = Status(411, "Length Required");
    pub const PAYLOAD_TOO_LARGE: Status = Status(413, "Content Too Large");
    pub const UPGRADE_REQUIRED: Status = Status(426, "Upgrade Required");
    pub const REQUEST_HEADER_FIELDS_TOO_LARGE: Status = Status(431, "Request Header Fields Too Large");
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
    close: bool,
}

impl Response {
    pub fn new(status: Status) -> Response {
        Response {
            status,
            headers: String::new(),
            body: Vec::new(),
            head_only: false,
            close: false,
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

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn header(mut self, name: &str, value: &str) -> Response {
        let _ = write!(self.headers, "{name}: {value}\r\n");
        self
    }

    pub fn body(mut self, body: Vec<u8>) -> Response {
        self.body = body;
        self
    }

    pub fn head_only(mut self, yes: bool) -> Response {
        self.head_only = yes;
        self
    }

    /// Ends the connection after this response (`Connection: close`).
    pub fn close(mut self, yes: bool) -> Response {
        self.close = yes;
        self
    }

    pub fn closes(&self) -> bool {
        self.close
    }

    /// Serialises the response. A 101 carries no `Content-Length`: what
    /// follows it is WebSocket frames, not a body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut head = String::with_capacity(128 + self.headers.len());
        let _ = write!(head, "HTTP/1.1 {} {}\r\n", self.status.0, self.status.1);
        head.push_str(&self.headers);
        if self.status != Status::SWITCHING_PROTOCOLS {
            let _ = write!(head, "Content-Length: {}\r\n", self.body.len());
            if self.close {
                head.push_str("Connection: close\r\n");
            }
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
