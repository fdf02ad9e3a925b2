//! Arbitrary bytes as the body of a `POST`, framed by `Content-Length` or
//! chunked, through the request reader in reads cut where the input says,
//! and through the chunked decoder on its own. They may refuse, never
//! panic; a body that comes out is within the limit, is the same through
//! the reader as through the decoder alone, and survives re-encoding.
#![no_main]

use duplex::http::chunked::ChunkedDecoder;
use duplex::http::{HeadLimits, RequestReader};
use libfuzzer_sys::fuzz_target;

const MAX_BODY: usize = 1024;
const MAX_HEAD: usize = 512;

/// The chunked decoder alone, in one piece: the body, or `None`.
fn decode_alone(bytes: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut decoder = ChunkedDecoder::new(MAX_BODY, MAX_HEAD);
    let mut body = Vec::new();
    let used = decoder.decode(bytes, &mut body).ok()?;
    assert!(used <= bytes.len());
    assert!(body.len() <= MAX_BODY);
    decoder.is_done().then_some((body, used))
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, bytes)) = data.split_first() else {
        return;
    };
    let step = usize::from(control >> 2).max(1);
    let chunked = control & 1 == 1;
    let expect = control & 2 == 2;

    let mut wire = b"POST /send HTTP/1.1\r\nHost: localhost\r\n".to_vec();
    if expect {
        wire.extend_from_slice(b"Expect: 100-continue\r\n");
    }
    if chunked {
        wire.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
    } else {
        wire.extend_from_slice(format!("Content-Length: {}\r\n\r\n", bytes.len().min(MAX_BODY)).as_bytes());
    }
    let head_len = wire.len();
    wire.extend_from_slice(bytes);

    let limits = HeadLimits {
        max_head: MAX_HEAD,
        max_headers: 16,
        max_body: MAX_BODY,
    };
    let mut reader = RequestReader::new(limits);
    let mut used = 0;
    let mut request = None;
    'reads: for piece in wire.chunks(step) {
        let mut pos = 0;
        while pos < piece.len() {
            match reader.read(&piece[pos..]) {
                Ok((n, r)) => {
                    assert!(n <= piece.len() - pos);
                    // An interim answer is owed only for a request that
                    // asked for one.
                    if reader.take_interim().is_some() {
                        assert!(expect);
                    }
                    pos += n;
                    if r.is_some() {
                        request = r;
                        used += pos;
                        break 'reads;
                    }
                    assert!(n > 0, "no progress without a request");
                }
                Err(_) => return,
            }
        }
        used += pos;
    }
    let Some(request) = request else { return };
    assert!(request.body.len() <= MAX_BODY);
    assert_eq!(request.wire_len, used);
    if chunked {
        // The reader and the decoder alone agree, byte for byte.
        let (body, body_used) = decode_alone(&wire[head_len..]).expect("the decoder alone ends too");
        assert_eq!(body, request.body);
        assert_eq!(head_len + body_used, used);
        // Re-encoded as one chunk, the body decodes to itself.
        let mut again = format!("{:x}\r\n", body.len()).into_bytes();
        if !body.is_empty() {
            again.extend_from_slice(&body);
            again.extend_from_slice(b"\r\n0\r\n");
        }
        again.extend_from_slice(b"\r\n");
        let (round, round_used) = decode_alone(&again).expect("a re-encoded body decodes");
        assert_eq!(round, body);
        assert_eq!(round_used, again.len());
    } else {
        assert_eq!(request.body, &bytes[..bytes.len().min(MAX_BODY)]);
    }
});
