//! Property tests for the HTTP request reader: what a client serialises,
//! the reader gives back, however the bytes are cut into reads.

use duplex::http::{HeadLimits, Request, RequestReader};
use proptest::prelude::*;

/// One request as a client means it.
#[derive(Clone, Debug)]
struct Sent {
    method: String,
    target: String,
    /// Header lines in order, `Host` among them; the framing header is
    /// added when serialising.
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    /// `None`: `Content-Length`. `Some(sizes)`: chunked, cut at these
    /// sizes (the rest in one last chunk), with an extension on odd chunks.
    chunks: Option<Vec<usize>>,
    /// A trailer line, for a chunked body.
    trailer: bool,
}

impl Sent {
    /// The bytes on the wire, and the header lines the reader should
    /// report (the framing header included, where it was written).
    fn serialise(&self) -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
        let mut headers = self.headers.clone();
        match &self.chunks {
            None => headers.push(("Content-Length".into(), self.body.len().to_string().into_bytes())),
            Some(_) => headers.push(("Transfer-Encoding".into(), b"chunked".to_vec())),
        }
        let mut wire = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        for (name, value) in &headers {
            wire.extend_from_slice(name.as_bytes());
            wire.extend_from_slice(b": ");
            wire.extend_from_slice(value);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"\r\n");
        match &self.chunks {
            None => wire.extend_from_slice(&self.body),
            Some(sizes) => {
                let mut rest: &[u8] = &self.body;
                let mut i = 0;
                for size in sizes.iter().chain(std::iter::once(&usize::MAX)) {
                    let take = (*size).min(rest.len());
                    if take == 0 {
                        continue;
                    }
                    let (chunk, tail) = rest.split_at(take);
                    // Hex in either letter case; an extension now and then.
                    let size = if i % 2 == 0 {
                        format!("{take:x}")
                    } else {
                        format!("{take:X};n=v")
                    };
                    wire.extend_from_slice(size.as_bytes());
                    wire.extend_from_slice(b"\r\n");
                    wire.extend_from_slice(chunk);
                    wire.extend_from_slice(b"\r\n");
                    rest = tail;
                    i += 1;
                }
                wire.extend_from_slice(b"0\r\n");
                if self.trailer {
                    wire.extend_from_slice(b"X-Trailer: t\r\n");
                }
                wire.extend_from_slice(b"\r\n");
            }
        }
        (wire, headers)
    }
}

/// A method token; CONNECT asks for a tunnel and is refused by design.
fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("GET".to_string()),
        Just("POST".to_string()),
        Just("PUT".to_string()),
        "[A-Z][A-Z_-]{0,11}".prop_filter("not CONNECT", |m| m != "CONNECT"),
    ]
}

/// An origin-form or absolute-form target (RFC 9112 §3.2.1, §3.2.2).
fn target() -> impl Strategy<Value = String> {
    let path = "(/[A-Za-z0-9._~!$&'()*+,;=:@%-]{0,12}){1,4}";
    let query = prop::option::of("[A-Za-z0-9=&._~%-]{0,20}");
    (
        any::<bool>(),
        "[a-z]{1,10}(\\.[a-z]{2,5})?(:[0-9]{1,4})?",
        path,
        query,
    )
        .prop_map(|(absolute, authority, path, query)| {
            let mut target = if absolute {
                format!("http://{authority}{path}")
            } else {
                path
            };
            if let Some(query) = query {
                target.push('?');
                target.push_str(&query);
            }
            target
        })
}

/// A field value: visible ASCII and obs-text (RFC 9110 §5.5), with spaces
/// and tabs inside but not at either end, where they are not part of it.
fn value() -> impl Strategy<Value = Vec<u8>> {
    let edge = prop_oneof![0x21u8..=0x7e, 0x80u8..=0xff];
    let inner = prop_oneof![0x21u8..=0x7e, 0x80u8..=0xff, Just(b' '), Just(b'\t')];
    prop_oneof![
        Just(Vec::new()),
        (edge.clone(), prop::collection::vec(inner, 0..40), edge).prop_map(|(first, middle, last)| {
            let mut value = vec![first];
            value.extend(middle);
            value.push(last);
            value
        }),
    ]
}

/// Header lines other than the ones the reader interprets (framing,
/// `Host`, `Expect`), which the request adds itself.
fn headers() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let name = "[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,20}".prop_filter("not interpreted by the reader", |n| {
        !["host", "content-length", "transfer-encoding", "expect"].contains(&n.to_ascii_lowercase().as_str())
    });
    prop::collection::vec((name, value()), 0..12)
}

fn request() -> impl Strategy<Value = Sent> {
    (
        method(),
        target(),
        headers(),
        "[a-z0-9.-]{1,20}(:[0-9]{1,5})?".prop_filter("a port below 65536", |h| {
            h.rsplit_once(':')
                .is_none_or(|(_, p)| p.parse::<u32>().is_ok_and(|p| p < 65536))
        }),
        any::<prop::sample::Index>(),
        prop::collection::vec(any::<u8>(), 0..600),
        prop::option::of(prop::collection::vec(1usize..200, 0..6)),
        any::<bool>(),
    )
        .prop_map(|(method, target, mut headers, host, at, body, chunks, trailer)| {
            // Host goes anywhere among the other lines.
            let at = at.index(headers.len() + 1);
            headers.insert(at, ("Host".to_string(), host.into_bytes()));
            Sent {
                method,
                target,
                headers,
                body,
                chunks,
                trailer,
            }
        })
}

/// Feeds `wire` to a reader in pieces cut at `cuts`; every request that
/// comes out, and the bytes used in all.
fn read_in_pieces(wire: &[u8], cuts: &[usize]) -> (Vec<Request>, usize) {
    let limits = HeadLimits {
        max_head: 64 * 1024,
        max_headers: 64,
        max_body: 64 * 1024,
    };
    let mut reader = RequestReader::new(limits);
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    points.push(wire.len());
    points.sort_unstable();
    let (mut start, mut used, mut requests) = (0, 0, Vec::new());
    for end in points {
        let piece = &wire[start..end];
        start = end;
        let mut pos = 0;
        while pos < piece.len() {
            let (n, request) = reader
                .read(&piece[pos..])
                .unwrap_or_else(|e| panic!("refused: {e}\n{}", String::from_utf8_lossy(wire)));
            assert!(n > 0 || request.is_some(), "no progress");
            pos += n;
            requests.extend(request);
        }
        used += pos;
    }
    (requests, used)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// One to three requests (random method, origin- or absolute-form
    /// target, header lines with obs-text, a `Host` line among them, and a
    /// body framed by `Content-Length` or chunked at random sizes, with
    /// chunk extensions and maybe a trailer), serialised back to back and
    /// fed to one reader in pieces cut at random points, come out in order
    /// with the same method, target, version, header names and values in
    /// order, and body; and the reader uses every byte.
    #[test]
    fn requests_come_out_as_they_were_sent(
        sent in prop::collection::vec(request(), 1..4),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for request in &sent {
            let (bytes, headers) = request.serialise();
            wire.extend_from_slice(&bytes);
            expected.push((request, headers));
        }
        let (requests, used) = read_in_pieces(&wire, &cuts);
        prop_assert_eq!(used, wire.len());
        prop_assert_eq!(requests.len(), sent.len());
        for (got, (want, headers)) in requests.iter().zip(&expected) {
            prop_assert_eq!(&got.method, &want.method);
            prop_assert_eq!(&got.target, &want.target);
            prop_assert_eq!(got.version, 1);
            prop_assert_eq!(&got.headers, headers);
            prop_assert_eq!(&got.body, &want.body);
        }
    }
}
