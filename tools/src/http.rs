//! The client side of plain HTTP/1.1, sans-IO like [`client`](crate::client):
//! requests out, answers in, and server-sent events read from a response
//! that does not end (WHATWG HTML §9.2). Enough for duplex's chat over
//! HTTP: `GET /poll`, `GET /longpoll`, `GET /events` and `POST /send`, on
//! keep-alive connections, one request at a time (no pipelining).

/// An answer head longer than this is not one duplex sends.
pub const MAX_HEAD: usize = 16 * 1024;

/// A request, with `headers` beside `Host`: `body` goes out with its
/// length, so that the connection can carry the next request after it (RFC
/// 9112 §6.2). HTTP/1.1 keeps the connection open unless asked otherwise
/// (§9.3).
pub fn request(method: &str, host: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if method == "POST" {
        out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// An answer's head: its status, its length in bytes, and the headers the
/// client acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Bytes of the head, blank line included: the body starts here.
    pub len: usize,
    /// `Content-Length`; `None` for a response that lasts as long as the
    /// connection (an event stream).
    pub content_length: Option<usize>,
    /// `Connection: close`: the server closes after this answer.
    pub close: bool,
    /// Every header, name in lower case.
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads an answer's head from the start of `bytes`: `Ok(None)` while it
/// is not complete.
pub fn parse_head(bytes: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if bytes.len() > MAX_HEAD => {
            return Err(format!("an answer head over {MAX_HEAD} bytes"))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("not an HTTP answer: {e}")),
    };
    let headers: Vec<(String, String)> = response
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value).trim().to_string();
            (h.name.to_ascii_lowercase(), value)
        })
        .collect();
    let mut head = Head {
        status: response.code.unwrap_or(0),
        len,
        content_length: None,
        close: false,
        headers,
    };
    head.close = head
        .header("connection")
        .is_some_and(|v| duplex::http::has_token(v.as_bytes(), "close"));
    head.content_length = match head.header("content-length") {
        Some(v) => Some(v.parse().map_err(|_| format!("bad Content-Length {v:?}"))?),
        None => None,
    };
    Ok(Some(head))
}

/// Takes one whole answer (head and `Content-Length` body) off the front
/// of `input`. `Ok(None)` while it is not all there; an error for a body
/// over `max_body` or an answer without a length.
pub fn take_answer(input: &mut Vec<u8>, max_body: usize) -> Result<Option<(Head, Vec<u8>)>, String> {
    let Some(head) = parse_head(input)? else {
        return Ok(None);
    };
    // RFC 9110 §6.4.1: these never have a body, whatever the head says.
    let bodiless = head.status == 204 || head.status == 304 || head.status < 200;
    let length = match head.content_length {
        _ if bodiless => 0,
        Some(length) => length,
        None => return Err(format!("a {} answer without Content-Length", head.status)),
    };
    if length > max_body {
        return Err(format!("an answer body of {length} bytes (at most {max_body})"));
    }
    if input.len() < head.len + length {
        return Ok(None);
    }
    let body = input[head.len..head.len + length].to_vec();
    input.drain(..head.len + length);
    Ok(Some((head, body)))
}

/// One server-sent event: its type (`message` unless an `event:` field
/// said otherwise), its `id:` if it had one, and its `data:` lines joined
/// by LF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: String,
    pub id: Option<String>,
    pub data: String,
}

/// Takes the complete events off the front of an event stream's `input`.
/// An event ends at a blank line; a line starting with `:` is a comment
/// (a keep-alive) and a block of only comments is no event. duplex ends
/// lines with LF; a CR before it is dropped.
pub fn take_events(input: &mut Vec<u8>) -> Vec<Event> {
    let mut events = Vec::new();
    let mut pos = 0;
    while let Some(end) = find_blank_line(&input[pos..]) {
        let block = String::from_utf8_lossy(&input[pos..pos + end]);
        events.extend(parse_event(&block));
        pos += end + 2;
    }
    input.drain(..pos);
    events
}

/// Where the first `\n\n` starts.
fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\n\n")
}

/// One event's fields (§9.2.6): each `data:` line is one line of the data.
fn parse_event(block: &str) -> Option<Event> {
    let mut kind = None;
    let mut id = None;
    let mut data: Vec<&str> = Vec::new();
    for line in block.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with(':') {
            continue;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        // One space after the colon is not part of the value.
        let value = value.strip_prefix(' ').unwrap_or(value);
        match name {
            "event" => kind = Some(value),
            "id" => id = Some(value),
            "data" => data.push(value),
            _ => {}
        }
    }
    if kind.is_none() && id.is_none() && data.is_empty() {
        return None;
    }
    Some(Event {
        kind: kind.unwrap_or("message").to_string(),
        id: id.map(str::to_string),
        data: data.join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_says_its_length() {
        let text = String::from_utf8(request("POST", "h:1", "/send?token=t", &[], b"hi\n")).unwrap();
        assert_eq!(
            text,
            "POST /send?token=t HTTP/1.1\r\nHost: h:1\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Length: 3\r\n\r\nhi\n"
        );
        let resume = request("GET", "h:1", "/events", &[("Last-Event-ID", "7")], b"");
        assert!(String::from_utf8(resume)
            .unwrap()
            .ends_with("Host: h:1\r\nLast-Event-ID: 7\r\n\r\n"));
    }

    #[test]
    fn takes_whole_answers_one_at_a_time() {
        let mut input = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 410 Gone\r\nConnection: close\r\nContent-Length: 3\r\n\r\nno"
            .to_vec();
        let (head, body) = take_answer(&mut input, 100).unwrap().unwrap();
        assert_eq!(
            (head.status, body.as_slice(), head.close),
            (200, &b"{}"[..], false)
        );
        assert_eq!(take_answer(&mut input, 100), Ok(None));
        input.push(b'\n');
        let (head, body) = take_answer(&mut input, 100).unwrap().unwrap();
        assert_eq!(
            (head.status, body.as_slice(), head.close),
            (410, &b"no\n"[..], true)
        );
        assert!(input.is_empty());
        let mut gone = b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1".to_vec();
        assert_eq!(take_answer(&mut gone, 100).unwrap().unwrap().1, b"");
        assert_eq!(gone, b"HTTP/1.1");
        let mut big = b"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n".to_vec();
        assert!(take_answer(&mut big, 100).is_err());
    }

    #[test]
    fn reads_events_and_skips_comments() {
        let mut input =
            b"event: member\ndata: {\"a\":1}\n\n: keep-alive\n\nid: 7\ndata: [r] a: b\n\nid: 8\nda".to_vec();
        let events = take_events(&mut input);
        assert_eq!(events.len(), 2);
        assert_eq!(
            (events[0].kind.as_str(), events[0].data.as_str()),
            ("member", "{\"a\":1}")
        );
        assert_eq!(events[1].id.as_deref(), Some("7"));
        assert_eq!(events[1].data, "[r] a: b");
        assert_eq!(input, b"id: 8\nda");
        let mut two = b"data: a\ndata: b\n\n".to_vec();
        assert_eq!(take_events(&mut two)[0].data, "a\nb");
    }
}
