//! Reading one HTTP/1.1 request: the head, then a body framed by
//! `Content-Length` or by the chunked coding ([`super::chunked`]).
//!
//! A head is only passed on once it holds together: a target in a form the
//! method may use and one well-formed authority, from the target or from
//! `Host` (RFC 9112 §3.2; see [`super::target`]). Everything after that,
//! routing and policy, can then trust [`Request::authority`] and
//! [`Request::path`].
//!
//! The reader looks for the blank line that ends the head *before* it asks
//! httparse to parse anything, and it remembers how far it has looked. A
//! peer that trickles its head one byte per read therefore costs one scan
//! of each byte and one parse in all, not a parse per byte. The head is
//! refused as soon as it outgrows the limit, without waiting for its end
//! (414 if the request line alone is that long, else 431), and nothing is
//! buffered at all when a whole request arrives in one read.

use super::chunked::ChunkedDecoder;
use super::target::{Authority, Target};

/// Bounds on a request (see [`crate::config::Config`] for the defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadLimits {
    /// Request line plus headers plus the blank line, in bytes; also the
    /// bound on a chunked body's trailer section.
    pub max_head: usize,
    /// Header lines.
    pub max_headers: usize,
    /// A body, `Content-Length` or chunked (decoded bytes).
    pub max_body: usize,
}

/// Why a request is refused; [`RequestError::status`] names the answer.
/// In the order the reader meets them: the head's size, its syntax, its
/// target and `Host`, the body's framing, `Expect`, then the body itself.
/// The web door answers every one and closes the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// The head grew past `max_head` bytes (RFC 6585 §5: 431).
    HeadTooLarge {
        /// The `max_head` in force, in bytes.
        limit: usize,
    },
    /// The request line alone grew past `max_head` bytes: the target is
    /// longer than this server parses (RFC 9112 §3, RFC 9110 §15.5.15: 414).
    UriTooLong {
        /// The `max_head` in force, in bytes.
        limit: usize,
    },
    /// More than `max_headers` header lines (431).
    TooManyHeaders {
        /// The `max_headers` in force.
        limit: usize,
    },
    /// Not HTTP/1.x syntax at all (400), with httparse's reason.
    Malformed(&'static str),
    /// A request target in no form the method may use (RFC 9112 §3.2),
    /// or with a malformed authority (400).
    BadTarget(&'static str),
    /// `Host` missing from HTTP/1.1, repeated, or not `host[:port]`: RFC
    /// 9112 §3.2 says "A server MUST respond with a 400 (Bad Request)".
    BadHost(&'static str),
    /// CONNECT asks for a tunnel (RFC 9110 §9.3.6), a proxy's job; this
    /// server supports it for no resource (501, RFC 9110 §15.6.2).
    Connect,
    /// A `Content-Length` that is not one decimal number (RFC 9112 §6.3).
    BadContentLength,
    /// Framing that cannot be trusted (RFC 9112 §6.1, §6.3): a
    /// `Transfer-Encoding` whose final coding is not `chunked`, `chunked`
    /// twice, `Transfer-Encoding` beside `Content-Length` (the classic
    /// request smuggling pair), or in HTTP/1.0 (400).
    BadFraming(&'static str),
    /// A transfer coding before `chunked` that this server does not
    /// decode, such as `gzip` (RFC 9112 §6.1: 501).
    UnsupportedTransferCoding,
    /// A body larger than `max_body`, announced by `Content-Length` or by
    /// a chunk's size line (413).
    BodyTooLarge {
        /// The `max_body` in force, in bytes.
        limit: usize,
    },
    /// An `Expect` other than `100-continue` (RFC 9110 §10.1.1: 417).
    ExpectationFailed,
    /// A chunked body that breaks the grammar of RFC 9112 §7.1 (400).
    BadChunk(&'static str),
    /// A chunked body's trailer section grew past `max_head` bytes (431).
    TrailersTooLarge {
        /// The bound in force, in bytes.
        limit: usize,
    },
}

impl RequestError {
    /// The status to answer with: the one place each error meets its code.
    pub fn status(&self) -> super::Status {
        use super::Status;
        match self {
            RequestError::HeadTooLarge { .. }
            | RequestError::TooManyHeaders { .. }
            | RequestError::TrailersTooLarge { .. } => Status::REQUEST_HEADER_FIELDS_TOO_LARGE,
            RequestError::UriTooLong { .. } => Status::URI_TOO_LONG,
            RequestError::Malformed(_)
            | RequestError::BadTarget(_)
            | RequestError::BadHost(_)
            | RequestError::BadContentLength
            | RequestError::BadFraming(_)
            | RequestError::BadChunk(_) => Status::BAD_REQUEST,
            RequestError::Connect | RequestError::UnsupportedTransferCoding => Status::NOT_IMPLEMENTED,
            RequestError::BodyTooLarge { .. } => Status::PAYLOAD_TOO_LARGE,
            RequestError::ExpectationFailed => Status::EXPECTATION_FAILED,
        }
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::HeadTooLarge { limit } => write!(f, "request head larger than {limit} bytes"),
            RequestError::UriTooLong { limit } => {
                write!(
                    f,
                    "request target too long: the request line passes {limit} bytes"
                )
            }
            RequestError::TooManyHeaders { limit } => write!(f, "more than {limit} header lines"),
            RequestError::Malformed(why) => write!(f, "malformed request: {why}"),
            RequestError::BadTarget(why) => write!(f, "invalid request target: {why}"),
            RequestError::BadHost(why) => write!(f, "invalid Host header: {why}"),
            RequestError::Connect => write!(f, "CONNECT asks for a tunnel, and this server is not a proxy"),
            RequestError::BadContentLength => write!(f, "invalid Content-Length"),
            RequestError::BadFraming(why) => write!(f, "ambiguous body framing: {why}"),
            RequestError::UnsupportedTransferCoding => {
                write!(f, "only the chunked transfer coding is supported")
            }
            RequestError::BodyTooLarge { limit } => write!(f, "body larger than {limit} bytes"),
            RequestError::ExpectationFailed => write!(f, "the only expectation met here is 100-continue"),
            RequestError::BadChunk(why) => write!(f, "malformed chunked body: {why}"),
            RequestError::TrailersTooLarge { limit } => {
                write!(f, "chunked trailer section larger than {limit} bytes")
            }
        }
    }
}

/// A parsed request, owning its data so it can outlive the read buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method, case-sensitive as RFC 9110 §9.1 says (`GET`, not `get`).
    pub method: String,
    /// The request target as sent: usually path and query
    /// (`/poll?room=lobby`), or an absolute URI or `*` (see
    /// [`Request::path`]).
    pub target: String,
    /// The minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    /// Header lines in order, names as sent. Values are bytes, not
    /// text: RFC 9110 §5.5 allows octets that are not UTF-8.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body, with any chunked framing removed; empty when there was
    /// none.
    pub body: Vec<u8>,
    /// Bytes of head and body on the wire, for the byte counters.
    pub wire_len: usize,
    /// The server this request names: the target's authority in
    /// absolute-form, which replaces `Host` (RFC 9112 §3.2.2), else the
    /// `Host` header. `None` only for HTTP/1.0 without `Host`.
    pub authority: Option<Authority>,
}

impl Request {
    /// The first header with this name (names are case-insensitive).
    pub fn header<'a>(&'a self, name: &'a str) -> Option<&'a [u8]> {
        self.headers_named(name).next()
    }

    /// Every header with this name, in order (some may repeat, such as
    /// `Sec-WebSocket-Protocol`).
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The path without the query, whatever the target's form: `/poll`
    /// for `/poll?room=dev` and for `http://host/poll?room=dev` alike, `/`
    /// for `http://host`, and `*` for a server-wide OPTIONS.
    pub fn path(&self) -> &str {
        match Target::parse(&self.method, &self.target) {
            Ok(Target::Origin { path, .. } | Target::Absolute { path, .. }) => path,
            Ok(Target::Asterisk) => "*",
            // Not a form the reader lets through; no path to speak of.
            Ok(Target::Authority(_)) | Err(_) => "",
        }
    }

    /// The value of one query parameter, undecoded (`room=lobby`).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        let query = match Target::parse(&self.method, &self.target) {
            Ok(Target::Origin { query, .. } | Target::Absolute { query, .. }) => query?,
            _ => return None,
        };
        query
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }

    /// Does this request ask to keep the connection open afterwards?
    /// HTTP/1.1 does unless it says `Connection: close`; HTTP/1.0 does not
    /// (RFC 9112 §9.3).
    pub fn keep_alive(&self) -> bool {
        let close = self
            .headers_named("connection")
            .any(|v| super::has_token(v, "close"));
        self.version == 1 && !close
    }
}

/// Where a request in progress stands.
#[derive(Debug)]
enum Stage {
    /// Looking for the blank line; `scanned` bytes of `buf` hold no end.
    Head { scanned: usize },
    /// The head is parsed; its body is arriving.
    Body { request: Box<Request>, framing: Framing },
}

/// How the end of a body is found (RFC 9112 §6.3).
#[derive(Debug)]
enum Framing {
    /// `Content-Length`: this many bytes are still to come.
    Length { remaining: usize },
    /// `Transfer-Encoding: chunked`: the decoder finds the end.
    Chunked(ChunkedDecoder),
}

/// Reads requests one after the other from a connection's bytes.
#[derive(Debug)]
pub struct RequestReader {
    limits: HeadLimits,
    /// A head (or body) split across reads. Empty between requests.
    buf: Vec<u8>,
    stage: Stage,
    /// A `100 Continue` is owed (see [`RequestReader::take_interim`]).
    continue_due: bool,
}

/// The interim answer that invites a waiting body (RFC 9110 §15.2.1).
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

impl RequestReader {
    /// A reader waiting for the first request, bounded by `limits`.
    pub fn new(limits: HeadLimits) -> RequestReader {
        RequestReader {
            limits,
            buf: Vec::new(),
            stage: Stage::Head { scanned: 0 },
            continue_due: false,
        }
    }

    /// The bytes of an interim answer the caller should send now, once: a
    /// `100 Continue` when the last [`RequestReader::read`] parsed the head
    /// of a request that says `Expect: 100-continue` and whose body has
    /// not started to arrive. RFC 9110 §10.1.1: such a client may wait for
    /// it before it sends the body. A request refused on its head is
    /// refused by `read` at once instead, and the body never invited.
    pub fn take_interim(&mut self) -> Option<&'static [u8]> {
        std::mem::take(&mut self.continue_due).then_some(CONTINUE)
    }

    /// Has part of a request arrived?
    pub fn in_progress(&self) -> bool {
        !self.buf.is_empty() || matches!(self.stage, Stage::Body { .. })
    }

    /// Feeds bytes. Returns how many were used and the request, once whole.
    /// Bytes after a complete request are left for the next call (pipelined
    /// requests, or the first WebSocket frame after an upgrade).
    pub fn read(&mut self, input: &[u8]) -> Result<(usize, Option<Request>), RequestError> {
        let mut used = 0;
        if let Stage::Head { scanned } = self.stage {
            let head_end;
            if self.buf.is_empty() {
                // Fast path: the whole head is in this read; parse it where
                // it lies.
                match find_head_end(input, 0) {
                    Some(end) if end <= self.limits.max_head => head_end = end,
                    Some(_) => return Err(too_large(input, self.limits.max_head)),
                    None => {
                        if input.len() >= self.limits.max_head {
                            return Err(too_large(input, self.limits.max_head));
                        }
                        self.buf.extend_from_slice(input);
                        self.stage = Stage::Head { scanned: input.len() };
                        return Ok((input.len(), None));
                    }
                }
                let request = parse_head(&input[..head_end], self.limits)?;
                used = head_end;
                self.begin_body(request)?;
            } else {
                let old = self.buf.len();
                let room = self.limits.max_head.saturating_sub(old);
                let take = room.min(input.len());
                self.buf.extend_from_slice(&input[..take]);
                // The blank line may straddle the old and new bytes.
                match find_head_end(&self.buf, scanned.saturating_sub(3)) {
                    Some(end) => head_end = end,
                    None => {
                        if self.buf.len() >= self.limits.max_head {
                            return Err(too_large(&self.buf, self.limits.max_head));
                        }
                        self.stage = Stage::Head {
                            scanned: self.buf.len(),
                        };
                        return Ok((take, None));
                    }
                }
                let request = parse_head(&self.buf[..head_end], self.limits)?;
                used = head_end - old;
                self.buf = Vec::new();
                self.begin_body(request)?;
            }
        }
        let Stage::Body { request, framing } = &mut self.stage else {
            return Ok((used, None));
        };
        let rest = &input[used..];
        let (taken, done) = match framing {
            Framing::Length { remaining } => {
                let take = (*remaining).min(rest.len());
                request.body.extend_from_slice(&rest[..take]);
                *remaining -= take;
                (take, *remaining == 0)
            }
            Framing::Chunked(decoder) => {
                let taken = decoder.decode(rest, &mut request.body)?;
                (taken, decoder.is_done())
            }
        };
        request.wire_len += taken;
        used += taken;
        if taken > 0 {
            // §10.1.1: a server "MAY omit sending a 100 (Continue) response
            // if it has already received some or all of the content".
            self.continue_due = false;
        }
        if !done {
            return Ok((used, None));
        }
        let Stage::Body { request, .. } = std::mem::replace(&mut self.stage, Stage::Head { scanned: 0 })
        else {
            unreachable!("matched Stage::Body just above");
        };
        Ok((used, Some(*request)))
    }

    fn begin_body(&mut self, mut request: Request) -> Result<(), RequestError> {
        request.authority = authority_of(&request)?;
        let framing = framing(&request, self.limits)?;
        let has_body = !matches!(framing, Framing::Length { remaining: 0 });
        // RFC 9110 §7.8: with Upgrade too, "the server MUST send a 100
        // (Continue) response before sending a 101".
        let upgrade = request.header("upgrade").is_some();
        self.continue_due = expects_continue(&request)? && (has_body || upgrade);
        self.stage = Stage::Body {
            request: Box::new(request),
            framing,
        };
        Ok(())
    }
}

/// The head has outgrown `limit`: which limit does that break? If the
/// request line alone is past it, it is the target that is too long
/// (RFC 9112 §3: "A server that receives a request-target longer than any
/// URI it wishes to parse MUST respond with a 414"); else the header
/// fields are (431). Only the first `limit` bytes are looked at, so this
/// is decided without waiting for the line to end.
fn too_large(head: &[u8], limit: usize) -> RequestError {
    let start = &head[..head.len().min(limit)];
    // A method (RFC 9110 §9.1: a token) and its space, then no line end.
    let method = start.iter().position(|&b| b == b' ').map(|space| &start[..space]);
    let request_line = method.is_some_and(|m| !m.is_empty() && m.iter().all(|&b| is_tchar(b)));
    if request_line && !start.contains(&b'\n') {
        RequestError::UriTooLong { limit }
    } else {
        RequestError::HeadTooLarge { limit }
    }
}

/// `tchar`, the characters of a token (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Finds the end of a head: the index just past the empty line that ends
/// it (`\r\n\r\n`, or a bare `\n\n`, which RFC 9112 §2.2 lets a server
/// accept). Starts looking at `from`.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(offset) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let nl = i + offset;
        match buf.get(nl + 1..) {
            Some([b'\n', ..]) => return Some(nl + 2),
            Some([b'\r', b'\n', ..]) => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

fn parse_head(head: &[u8], limits: HeadLimits) -> Result<Request, RequestError> {
    // The caller owns the header array, so the limit is right here.
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(RequestError::Malformed("incomplete head")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(RequestError::TooManyHeaders {
                limit: limits.max_headers,
            })
        }
        Err(e) => return Err(RequestError::Malformed(error_text(e))),
    }
    let (Some(method), Some(target), Some(version)) = (parsed.method, parsed.path, parsed.version) else {
        return Err(RequestError::Malformed("incomplete request line"));
    };
    Ok(Request {
        method: method.to_string(),
        target: target.to_string(),
        version,
        headers: parsed
            .headers
            .iter()
            .map(|h| (h.name.to_string(), h.value.to_vec()))
            .collect(),
        body: Vec::new(),
        wire_len: head.len(),
        authority: None,
    })
}

/// Which server the request names, and whether its target and `Host`
/// hold together (RFC 9112 §3.2, §3.3).
fn authority_of(request: &Request) -> Result<Option<Authority>, RequestError> {
    let target = Target::parse(&request.method, &request.target).map_err(RequestError::BadTarget)?;
    if let Target::Authority(_) = target {
        return Err(RequestError::Connect);
    }
    // §3.2: "A server MUST respond with a 400 (Bad Request) status code to
    // any HTTP/1.1 request message that lacks a Host header field and to
    // any request message that contains more than one Host header field
    // line or a Host header field with an invalid field value."
    let mut hosts = request.headers_named("host").map(<[u8]>::trim_ascii);
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(RequestError::BadHost("more than one (RFC 9112 §3.2)"));
    }
    if host.is_none() && request.version == 1 {
        return Err(RequestError::BadHost(
            "missing, and HTTP/1.1 requires one (RFC 9112 §3.2)",
        ));
    }
    match target {
        Target::Absolute { authority, .. } => {
            // §3.2.2: the server "MUST ignore the received Host header field
            // (if any) and instead use the host information of the
            // request-target". Ignored, but still well-formed (§3.2).
            if let Some(value) = host.filter(|v| !v.is_empty()) {
                Authority::parse(value).map_err(RequestError::BadHost)?;
            }
            Authority::parse(authority.as_bytes())
                .map(Some)
                .map_err(RequestError::BadTarget)
        }
        _ => match host {
            None => Ok(None),
            // §3.2: a client sends an empty Host only when the target URI
            // has no authority, and an http URI without one is invalid
            // (RFC 9110 §4.2.1). Here it is the only place to find one.
            Some([]) => Err(RequestError::BadHost(
                "empty, so the request names no server (RFC 9110 §4.2.1)",
            )),
            Some(value) => Authority::parse(value).map(Some).map_err(RequestError::BadHost),
        },
    }
}

fn error_text(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token in request line",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "unsupported HTTP version",
    }
}

/// How the body's end will be found (RFC 9112 §6.3), refusing every
/// framing that two readers could understand two ways: that is how one
/// request hides inside another (request smuggling).
fn framing(request: &Request, limits: HeadLimits) -> Result<Framing, RequestError> {
    if request.header("transfer-encoding").is_none() {
        let remaining = content_length(request, limits.max_body)?;
        return Ok(Framing::Length { remaining });
    }
    // §6.1: "A server or client that receives an HTTP/1.0 message
    // containing a Transfer-Encoding header field MUST treat the message as
    // if the framing is faulty".
    if request.version == 0 {
        return Err(RequestError::BadFraming(
            "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1)",
        ));
    }
    // §6.1: a server may reject both together, and "MUST close the
    // connection after responding to such a request" either way.
    if request.header("content-length").is_some() {
        return Err(RequestError::BadFraming(
            "both Content-Length and Transfer-Encoding (RFC 9112 §6.1)",
        ));
    }
    // The codings in the order they were applied, across every
    // Transfer-Encoding line (RFC 9110 §5.3 lets a list be split).
    let codings: Vec<&[u8]> = request
        .headers_named("transfer-encoding")
        .flat_map(|value| value.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|coding| !coding.is_empty())
        .collect();
    let chunked = |coding: &&[u8]| coding.eq_ignore_ascii_case(b"chunked");
    match codings.split_last() {
        Some((last, earlier)) if chunked(last) => {
            // §7: "A sender MUST NOT apply the chunked transfer coding
            // more than once to a message body".
            if earlier.iter().any(chunked) {
                return Err(RequestError::BadFraming(
                    "chunked applied more than once (RFC 9112 §7)",
                ));
            }
            // §6.1: a transfer coding the server does not understand
            // "SHOULD" get 501. The body could be read, not understood.
            if !earlier.is_empty() {
                return Err(RequestError::UnsupportedTransferCoding);
            }
            // The trailer section is header fields, so the head's bound.
            Ok(Framing::Chunked(ChunkedDecoder::new(
                limits.max_body,
                limits.max_head,
            )))
        }
        // §6.3: "If a Transfer-Encoding header field is present in a
        // request and the chunked transfer coding is not the final
        // encoding, the message body length cannot be determined reliably;
        // the server MUST respond with the 400 (Bad Request) status code
        // and then close the connection."
        _ => Err(RequestError::BadFraming(
            "chunked must be the final transfer coding (RFC 9112 §6.3)",
        )),
    }
}

/// Does the request wait for `100 Continue` (RFC 9110 §10.1.1)? The only
/// expectation defined is `100-continue` (case-insensitive); any other is
/// one this server cannot meet, answered 417.
fn expects_continue(request: &Request) -> Result<bool, RequestError> {
    // §10.1.1: "A server that receives a 100-continue expectation in an
    // HTTP/1.0 request MUST ignore that expectation." HTTP/1.0 has no 1xx
    // answers and no Expect, so any expectation there is ignored.
    if request.version == 0 {
        return Ok(false);
    }
    let mut expects = false;
    for member in request
        .headers_named("expect")
        .flat_map(|value| value.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|member| !member.is_empty())
    {
        if !member.eq_ignore_ascii_case(b"100-continue") {
            return Err(RequestError::ExpectationFailed);
        }
        expects = true;
    }
    Ok(expects)
}

/// How many body bytes `Content-Length` announces (RFC 9112 §6.3), none
/// when it is absent.
fn content_length(request: &Request, max_body: usize) -> Result<usize, RequestError> {
    let mut lengths = request.headers_named("content-length");
    let Some(first) = lengths.next() else {
        return Ok(0);
    };
    // Several Content-Length headers must agree, or the framing is
    // ambiguous: the classic request smuggling trick.
    if lengths.any(|other| other != first) {
        return Err(RequestError::BadContentLength);
    }
    let text = std::str::from_utf8(first).map_err(|_| RequestError::BadContentLength)?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RequestError::BadContentLength);
    }
    let length: usize = text
        .parse()
        .map_err(|_| RequestError::BodyTooLarge { limit: max_body })?;
    if length > max_body {
        return Err(RequestError::BodyTooLarge { limit: max_body });
    }
    Ok(length)
}

/// A whole request parsed from `text` in one read, for unit tests.
#[cfg(test)]
pub(crate) fn parse_whole(text: &str) -> Request {
    let limits = HeadLimits {
        max_head: 8192,
        max_headers: 64,
        max_body: 0,
    };
    let (_, request) = RequestReader::new(limits)
        .read(text.as_bytes())
        .expect("a valid request");
    request.expect("a whole request")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Status;

    const LIMITS: HeadLimits = HeadLimits {
        max_head: 8192,
        max_headers: 64,
        max_body: 1024,
    };

    const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn rfc_opening_handshake_in_one_read() {
        let mut reader = RequestReader::new(LIMITS);
        let (used, request) = reader.read(UPGRADE).unwrap();
        let request = request.unwrap();
        assert_eq!(used, UPGRADE.len());
        assert_eq!(request.method, "GET");
        assert_eq!(request.path(), "/chat");
        assert_eq!(
            request.header("SEC-WEBSOCKET-KEY"),
            Some(&b"dGhlIHNhbXBsZSBub25jZQ=="[..])
        );
        assert!(!reader.in_progress());
    }

    #[test]
    fn one_byte_at_a_time() {
        let mut reader = RequestReader::new(LIMITS);
        for (i, byte) in UPGRADE.iter().enumerate() {
            let (used, request) = reader.read(std::slice::from_ref(byte)).unwrap();
            assert_eq!(used, 1);
            assert_eq!(request.is_some(), i == UPGRADE.len() - 1);
        }
    }

    #[test]
    fn pipelined_requests_and_trailing_bytes_are_left_over() {
        let mut two = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        two.extend_from_slice(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\nextra");
        let mut reader = RequestReader::new(LIMITS);
        let (used, first) = reader.read(&two).unwrap();
        assert_eq!(first.unwrap().path(), "/a");
        let (used2, second) = reader.read(&two[used..]).unwrap();
        assert_eq!(second.unwrap().path(), "/b");
        assert_eq!(&two[used + used2..], b"extra");
    }

    #[test]
    fn bodies() {
        let mut reader = RequestReader::new(LIMITS);
        let (_, r) = reader
            .read(b"POST /send HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel")
            .unwrap();
        assert!(r.is_none());
        let (used, r) = reader.read(b"loGET").unwrap();
        assert_eq!(used, 2);
        assert_eq!(r.unwrap().body, b"hello");

        for (head, error) in [
            (
                &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n"[..],
                RequestError::BodyTooLarge { limit: 1024 },
            ),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                RequestError::BadContentLength,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                RequestError::BadContentLength,
            ),
        ] {
            assert_eq!(RequestReader::new(LIMITS).read(head), Err(error));
        }
    }

    #[test]
    fn chunked_bodies_in_any_split() {
        // RFC 9112 §7.1: chunks, an extension, a trailer; then the next
        // request, which must be left over.
        let wire = b"POST /send HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
7\r\nhello, \r\n5;x=y\r\nworld\r\n0\r\nChecksum: 1\r\n\r\nGET /next HTTP/1.1\r\n";
        for step in 1..wire.len() {
            let mut reader = RequestReader::new(LIMITS);
            let mut used = 0;
            let mut request = None;
            for piece in wire.chunks(step) {
                let mut pos = 0;
                while pos < piece.len() && request.is_none() {
                    let (n, r) = reader.read(&piece[pos..]).unwrap();
                    pos += n;
                    request = r;
                }
                used += pos;
                if request.is_some() {
                    break;
                }
            }
            let request = request.expect("a whole request");
            assert_eq!(request.body, b"hello, world", "step {step}");
            assert_eq!(request.wire_len, wire.len() - b"GET /next HTTP/1.1\r\n".len());
            assert_eq!(&wire[used..], b"GET /next HTTP/1.1\r\n", "step {step}");
        }
    }

    #[test]
    fn framing_refusals() {
        // RFC 9112 §6.1 and §6.3: every way to make the body's end
        // ambiguous is a 400 (and a close); a coding not known is a 501.
        for (framing, expected) in [
            ("Transfer-Encoding: gzip\r\n", Status::BAD_REQUEST),
            ("Transfer-Encoding: identity\r\n", Status::BAD_REQUEST),
            ("Transfer-Encoding: chunked, gzip\r\n", Status::BAD_REQUEST),
            ("Transfer-Encoding: chunked;x=1\r\n", Status::BAD_REQUEST),
            ("Transfer-Encoding:\r\n", Status::BAD_REQUEST),
            ("Transfer-Encoding: chunked, chunked\r\n", Status::BAD_REQUEST),
            (
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                Status::BAD_REQUEST,
            ),
            (
                "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
                Status::BAD_REQUEST,
            ),
            (
                "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
                Status::BAD_REQUEST,
            ),
            ("Transfer-Encoding: gzip, chunked\r\n", Status::NOT_IMPLEMENTED),
            (
                "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
                Status::NOT_IMPLEMENTED,
            ),
        ] {
            let text = format!("POST / HTTP/1.1\r\nHost: x\r\n{framing}\r\n");
            let error = read_one(text.as_bytes()).expect_err(framing);
            assert_eq!(error.status(), expected, "{framing}: {error}");
        }
        // HTTP/1.0 has no chunked coding (RFC 9112 §6.1).
        let error = read_one(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").unwrap_err();
        assert_eq!(error.status(), Status::BAD_REQUEST);
        // Letter case and a split list are fine.
        let r =
            read_one(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: CHUNKED\r\n\r\n1\r\na\r\n0\r\n\r\n");
        assert_eq!(r.unwrap().body, b"a");
    }

    #[test]
    fn limits() {
        let small = HeadLimits {
            max_head: 64,
            max_headers: 2,
            max_body: 0,
        };
        let mut reader = RequestReader::new(small);
        assert_eq!(
            reader.read(&[b'a'; 100]),
            Err(RequestError::HeadTooLarge { limit: 64 })
        );
        let mut reader = RequestReader::new(small);
        assert!(reader.read(&[b'a'; 40]).unwrap().1.is_none());
        assert_eq!(
            reader.read(&[b'a'; 40]),
            Err(RequestError::HeadTooLarge { limit: 64 })
        );
        // RFC 9112 §3: a request line alone past the limit is a 414, told
        // before the line ends; a long header after a short line is a 431.
        let mut reader = RequestReader::new(small);
        assert!(reader.read(b"GET /aaaaaaaaaaaaaaaaaaaa").unwrap().1.is_none());
        assert_eq!(
            reader.read(&[b'a'; 60]),
            Err(RequestError::UriTooLong { limit: 64 })
        );
        assert_eq!(
            RequestReader::new(small)
                .read(&[b"GET /".as_slice(), &[b'a'; 100], b" HTTP/1.1\r\n\r\n"].concat()),
            Err(RequestError::UriTooLong { limit: 64 })
        );
        assert_eq!(
            RequestReader::new(small).read(&[b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 100]].concat()),
            Err(RequestError::HeadTooLarge { limit: 64 })
        );
        let three = b"GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n";
        assert_eq!(
            RequestReader::new(small).read(three),
            Err(RequestError::TooManyHeaders { limit: 2 })
        );
        assert!(matches!(
            RequestReader::new(LIMITS).read(b"\x16\x03\x01\r\n\r\n"),
            Err(RequestError::Malformed(_))
        ));
    }

    /// One request from one read, or its refusal.
    fn read_one(bytes: &[u8]) -> Result<Request, RequestError> {
        let (_, request) = RequestReader::new(LIMITS).read(bytes)?;
        Ok(request.expect("a whole request"))
    }

    #[test]
    fn targets_and_their_authority() {
        // RFC 9112 §3.2.2's example: the absolute-form target's authority
        // replaces Host, whatever Host says.
        let r = read_one(
            b"GET http://www.example.org/pub/WWW/TheProject.html?x=1 HTTP/1.1\r\nHost: other.example\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.path(), "/pub/WWW/TheProject.html");
        assert_eq!(r.query_param("x"), Some("1"));
        assert_eq!(r.target, "http://www.example.org/pub/WWW/TheProject.html?x=1");
        assert_eq!(r.authority.unwrap().to_string(), "www.example.org");
        // Origin-form: Host names the server.
        let r = read_one(b"GET /where?q=now HTTP/1.1\r\nHost: www.example.org:8080\r\n\r\n").unwrap();
        assert_eq!((r.path(), r.query_param("q")), ("/where", Some("now")));
        let authority = r.authority.unwrap();
        assert_eq!(
            (authority.host.as_str(), authority.port),
            ("www.example.org", Some(8080))
        );
        // §3.2.4's example.
        let r = read_one(b"OPTIONS * HTTP/1.1\r\nHost: www.example.org\r\n\r\n").unwrap();
        assert_eq!(r.path(), "*");
        // HTTP/1.0 may leave Host out.
        let r = read_one(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(r.authority, None);
        // An absolute-form target with an empty Host: the target names the
        // server, so Host has nothing to add.
        assert!(read_one(b"GET http://h/ HTTP/1.1\r\nHost:\r\n\r\n").is_ok());
    }

    #[test]
    fn host_and_target_refusals() {
        for (text, expected) in [
            ("GET / HTTP/1.1\r\n\r\n", Status::BAD_REQUEST),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
                Status::BAD_REQUEST,
            ),
            (
                "GET / HTTP/1.1\r\nhost: a\r\nHOST: b\r\n\r\n",
                Status::BAD_REQUEST,
            ),
            ("GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", Status::BAD_REQUEST),
            ("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", Status::BAD_REQUEST),
            ("GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", Status::BAD_REQUEST),
            ("GET / HTTP/1.1\r\nHost: a:70000\r\n\r\n", Status::BAD_REQUEST),
            ("GET / HTTP/1.1\r\nHost:\r\n\r\n", Status::BAD_REQUEST),
            ("GET / HTTP/1.0\r\nHost: a b\r\n\r\n", Status::BAD_REQUEST),
            // Ignored in absolute-form, but still well-formed (§3.2).
            ("GET http://h/ HTTP/1.1\r\nHost: u@h\r\n\r\n", Status::BAD_REQUEST),
            ("GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", Status::BAD_REQUEST),
            ("GET http://h:x/ HTTP/1.1\r\nHost: h\r\n\r\n", Status::BAD_REQUEST),
            ("GET http:/// HTTP/1.1\r\nHost: h\r\n\r\n", Status::BAD_REQUEST),
            ("GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", Status::BAD_REQUEST),
            ("GET * HTTP/1.1\r\nHost: h\r\n\r\n", Status::BAD_REQUEST),
            ("GET h:80 HTTP/1.1\r\nHost: h\r\n\r\n", Status::BAD_REQUEST),
            (
                "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
                Status::NOT_IMPLEMENTED,
            ),
        ] {
            let error = read_one(text.as_bytes()).expect_err(text);
            assert_eq!(error.status(), expected, "{text}: {error}");
        }
    }

    #[test]
    fn expect_100_continue() {
        // RFC 9110 §10.1.1: the head arrives alone, so the body is invited,
        // once.
        let mut reader = RequestReader::new(LIMITS);
        let head = b"PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-Continue\r\n\r\n";
        assert_eq!(reader.read(head).unwrap(), (head.len(), None));
        assert_eq!(reader.take_interim(), Some(CONTINUE));
        assert_eq!(reader.take_interim(), None);
        assert_eq!(reader.read(b"hello").unwrap().1.unwrap().body, b"hello");
        assert_eq!(reader.take_interim(), None);

        // The same bytes as the response writer makes for 100.
        let mut out = Vec::new();
        super::super::Response::new(Status::CONTINUE).encode(&mut out);
        assert_eq!(out, CONTINUE);

        let interim = |text: &str| {
            let mut reader = RequestReader::new(LIMITS);
            reader.read(text.as_bytes()).map(|_| reader.take_interim())
        };
        // Chunked bodies are invited too.
        assert_eq!(
            interim(
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
            ),
            Ok(Some(CONTINUE))
        );
        // The body came with the head, or there is none: nothing to invite.
        assert_eq!(
            interim("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi"),
            Ok(None)
        );
        assert_eq!(
            interim("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nExpect: 100-continue\r\n\r\n"),
            Ok(None)
        );
        // RFC 9110 §7.8: an Upgrade with 100-continue gets the 100 first.
        assert_eq!(
            interim("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nExpect: 100-continue\r\n\r\n"),
            Ok(Some(CONTINUE))
        );
        // HTTP/1.0: ignored, whatever it says.
        assert_eq!(
            interim("POST / HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue, x-other\r\n\r\n"),
            Ok(None)
        );
        // Anything but 100-continue is an expectation not met: 417.
        for expect in [
            "x-other",
            "100-continue, x-other",
            "100-continue=1",
            "100-continue;q=1",
        ] {
            let text = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: {expect}\r\n\r\n");
            let error = interim(&text).unwrap_err();
            assert_eq!(error.status(), Status::EXPECTATION_FAILED, "{expect}");
        }
        // A body that will be refused is refused at once, not invited.
        assert_eq!(
            interim("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n"),
            Err(RequestError::BodyTooLarge { limit: 1024 })
        );
    }

    #[test]
    fn query_and_keep_alive() {
        let (_, r) = RequestReader::new(LIMITS)
            .read(b"GET /poll?room=dev&since=4 HTTP/1.0\r\n\r\n")
            .unwrap();
        let r = r.unwrap();
        assert_eq!(r.path(), "/poll");
        assert_eq!(r.query_param("room"), Some("dev"));
        assert_eq!(r.query_param("since"), Some("4"));
        assert_eq!(r.query_param("nope"), None);
        assert!(!r.keep_alive());
    }
}
