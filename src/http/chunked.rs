//! The chunked transfer coding (RFC 9112 §7.1), decoded sans-IO.
//!
//! A body whose length the sender does not know in advance (`curl -T -`
//! reading a pipe) comes in chunks, each preceded by its size in hex:
//!
//! ```text
//! chunked-body    = *chunk last-chunk trailer-section CRLF
//! chunk           = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-size      = 1*HEXDIG
//! last-chunk      = 1*("0") [ chunk-ext ] CRLF
//! chunk-ext       = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//! trailer-section = *( field-line CRLF )
//!
//! 5\r\nhello\r\n0\r\n\r\n        "hello"
//! ```
//!
//! The decoder is a byte-at-a-time state machine for the framing and a
//! slice copy for the data, so a chunk split across reads anywhere costs
//! nothing extra. Extensions and trailers are skipped (§7.1.1: a recipient
//! "MUST ignore unrecognized chunk extensions"; §7.1.2 lets it discard
//! trailers), but each is bounded. Line ends must be exactly CRLF: where a
//! front end and a back end disagree about a chunk's edges, one request
//! can be smuggled inside another, so there is no leniency to disagree on.

use super::RequestError;

/// Chunk extensions one body may carry in all, in bytes. They are ignored,
/// and no common client sends any; the bound keeps them from costing more
/// than a few pages of scanning.
pub const MAX_EXTENSIONS: usize = 4096;

/// Hex digits in one chunk size, leading zeros included: 16 digits already
/// spell every 64-bit length.
pub const MAX_SIZE_DIGITS: u8 = 16;

/// Where the decoder stands in the chunked grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading the chunk size's hex digits.
    Size { size: usize, digits: u8 },
    /// Whitespace after the size: an extension's `;` must follow (BWS).
    SizeSpace { size: usize },
    /// In a chunk extension, skipped up to its CR.
    Extension { size: usize },
    /// The size line's CR is read; its LF is due.
    SizeLf { size: usize },
    /// Copying chunk data.
    Data { remaining: usize },
    /// The data is all there; its CR is due.
    DataCr,
    /// Its LF is due.
    DataLf,
    /// In the trailer section, `line` bytes into a trailer line (0: at the
    /// start of a line, where a CRLF ends the section).
    Trailer { line: usize },
    /// A trailer line's CR is read; its LF is due.
    TrailerLf { line: usize },
    /// The body is complete.
    Done,
}

/// Decodes one chunked body, bounded by the body and trailer limits.
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: State,
    max_body: usize,
    max_trailers: usize,
    extensions: usize,
    trailers: usize,
}

impl ChunkedDecoder {
    /// A decoder for a body of at most `max_body` decoded bytes and a
    /// trailer section of at most `max_trailers` bytes.
    pub fn new(max_body: usize, max_trailers: usize) -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::Size { size: 0, digits: 0 },
            max_body,
            max_trailers,
            extensions: 0,
            trailers: 0,
        }
    }

    /// Has the last chunk and the trailer section's final CRLF arrived?
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Reads framing from `input` and appends chunk data to `body`.
    /// Returns how many bytes were used: all of `input`, or fewer when the
    /// body ended inside it (what follows is the next request).
    pub fn decode(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<usize, RequestError> {
        let mut pos = 0;
        while pos < input.len() && self.state != State::Done {
            if let State::Data { remaining } = self.state {
                let take = remaining.min(input.len() - pos);
                body.extend_from_slice(&input[pos..pos + take]);
                pos += take;
                self.state = if remaining == take {
                    State::DataCr
                } else {
                    State::Data {
                        remaining: remaining - take,
                    }
                };
                continue;
            }
            self.state = self.step(input[pos], body.len())?;
            pos += 1;
        }
        Ok(pos)
    }

    /// One framing byte: the next state, or why the body is refused.
    fn step(&mut self, byte: u8, decoded: usize) -> Result<State, RequestError> {
        use RequestError::BadChunk;
        Ok(match (self.state, byte) {
            (State::Size { size, digits }, _) if byte.is_ascii_hexdigit() => {
                if digits == MAX_SIZE_DIGITS {
                    return Err(BadChunk("a chunk size of more than 16 hex digits"));
                }
                let digit = usize::from(hex_value(byte));
                // Refuse on the size line, before any of the data comes
                // (as `Content-Length` is refused before its body).
                let room = self.max_body - decoded;
                match size.checked_mul(16).and_then(|s| s.checked_add(digit)) {
                    Some(size) if size <= room => State::Size {
                        size,
                        digits: digits + 1,
                    },
                    _ => return Err(RequestError::BodyTooLarge { limit: self.max_body }),
                }
            }
            // chunk-size = 1*HEXDIG: something must come before the rest.
            (State::Size { digits: 0, .. }, _) => return Err(BadChunk("a chunk size that is not hex")),
            (State::Size { size, .. }, b';') => State::Extension { size },
            (State::Size { size, .. }, b' ' | b'\t') => State::SizeSpace { size },
            (State::Size { size, .. }, b'\r') => State::SizeLf { size },
            (State::Size { .. }, _) => return Err(BadChunk("a chunk size that is not hex")),
            (State::SizeSpace { size }, b' ' | b'\t') => State::SizeSpace { size },
            (State::SizeSpace { size }, b';') => State::Extension { size },
            (State::SizeSpace { .. }, _) => {
                return Err(BadChunk("space after a chunk size, and no extension"))
            }
            (State::Extension { size }, b'\r') => State::SizeLf { size },
            (State::Extension { size }, _) => {
                if byte == b'\n' || (byte < 0x20 && byte != b'\t') || byte == 0x7f {
                    return Err(BadChunk("a control character in a chunk extension"));
                }
                self.extensions += 1;
                if self.extensions > MAX_EXTENSIONS {
                    return Err(BadChunk("chunk extensions longer than 4096 bytes in all"));
                }
                State::Extension { size }
            }
            // last-chunk: a size of zero, then the trailer section.
            (State::SizeLf { size: 0 }, b'\n') => State::Trailer { line: 0 },
            (State::SizeLf { size }, b'\n') => State::Data { remaining: size },
            (State::SizeLf { .. }, _) => return Err(BadChunk("a chunk size line must end with CRLF")),
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataCr, b'\n') => return Err(BadChunk("chunk data must end with CRLF")),
            (State::DataCr, _) => return Err(BadChunk("chunk data longer than its size")),
            (State::DataLf, b'\n') => State::Size { size: 0, digits: 0 },
            (State::DataLf, _) => return Err(BadChunk("chunk data must end with CRLF")),
            (State::Trailer { line } | State::TrailerLf { line }, _) => {
                self.trailers += 1;
                if self.trailers > self.max_trailers {
                    return Err(RequestError::TrailersTooLarge {
                        limit: self.max_trailers,
                    });
                }
                match (self.state, byte) {
                    (State::Trailer { .. }, b'\r') => State::TrailerLf { line },
                    (State::Trailer { .. }, b'\n') => {
                        return Err(BadChunk("a trailer line must end with CRLF"))
                    }
                    (State::Trailer { .. }, _) => State::Trailer { line: line + 1 },
                    // An empty line ends the trailer section, and the body.
                    (_, b'\n') if line == 0 => State::Done,
                    (_, b'\n') => State::Trailer { line: 0 },
                    _ => return Err(BadChunk("a trailer line must end with CRLF")),
                }
            }
            (State::Data { .. } | State::Done, _) => self.state,
        })
    }
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `wire` in pieces of `step` bytes; the body and the bytes
    /// used, or the error.
    fn decode(wire: &[u8], step: usize) -> Result<(Vec<u8>, usize), RequestError> {
        let mut decoder = ChunkedDecoder::new(64, 64);
        let mut body = Vec::new();
        let mut used = 0;
        for piece in wire.chunks(step) {
            used += decoder.decode(piece, &mut body)?;
            if decoder.is_done() {
                return Ok((body, used));
            }
        }
        Err(RequestError::Malformed("test: the body did not end"))
    }

    #[test]
    fn rfc_shapes_in_any_split() {
        // RFC 9112 §7.1's grammar: chunks, an extension, the last chunk
        // with zeros, a trailer, and bytes of the next request after it.
        let wire = b"5\r\nhello\r\n1a;name=\"v;x\"\r\nabcdefghijklmnopqrstuvwxyz\r\n\
000 ; last\r\nExpires: never\r\n\r\nGET /next";
        for step in 1..wire.len() {
            let (body, used) = decode(wire, step).unwrap();
            assert_eq!(body, b"helloabcdefghijklmnopqrstuvwxyz", "step {step}");
            assert_eq!(&wire[used..], b"GET /next", "step {step}");
        }
        assert_eq!(decode(b"0\r\n\r\n", 1).unwrap().0, b"");
        assert_eq!(
            decode(b"A\r\n0123456789\r\n0\r\n\r\n", 3).unwrap().0,
            b"0123456789"
        );
    }

    #[test]
    fn refusals() {
        for (wire, why) in [
            (&b"\r\n"[..], "no size"),
            (b";x\r\n", "no size before an extension"),
            (b"g\r\n", "not hex"),
            (b"-1\r\n", "a sign"),
            (b"0x5\r\n", "a 0x prefix"),
            (b"5 \r\nhello\r\n", "space with no extension"),
            (b"5\nhello\r\n", "bare LF after the size"),
            (b"5\r\nhello\n0\r\n\r\n", "bare LF after the data"),
            (b"5\r\nhello!\r\n", "data longer than its size"),
            (b"5;a\nb\r\n", "LF in an extension"),
            (b"5;\x00\r\n", "NUL in an extension"),
            (b"0\r\nX: y\n\r\n", "bare LF in a trailer"),
            (b"0\r\n\r\r\n", "CR without LF in a trailer"),
            (b"00000000000000001\r\n", "17 digits"),
        ] {
            let result = decode(wire, 1);
            assert!(
                matches!(result, Err(RequestError::BadChunk(_))),
                "{why}: {result:?}"
            );
        }
    }

    #[test]
    fn limits_are_decided_on_the_size_line() {
        // 64 bytes allowed: 0x41 = 65 is refused after its two digits.
        let mut decoder = ChunkedDecoder::new(64, 64);
        let mut body = Vec::new();
        assert_eq!(decoder.decode(b"4", &mut body), Ok(1));
        assert_eq!(
            decoder.decode(b"1", &mut body),
            Err(RequestError::BodyTooLarge { limit: 64 })
        );
        // Across chunks: 40 + 25 > 64.
        let mut wire = b"28\r\n".to_vec();
        wire.extend_from_slice(&[b'x'; 40]);
        wire.extend_from_slice(b"\r\n19\r\n");
        assert_eq!(decode(&wire, 7), Err(RequestError::BodyTooLarge { limit: 64 }));
        // An overflowing size never wraps.
        assert_eq!(
            decode(b"ffffffffffffffff\r\n", 1),
            Err(RequestError::BodyTooLarge { limit: 64 })
        );
        // Trailers and extensions are bounded too.
        let mut trailers = b"0\r\n".to_vec();
        trailers.extend_from_slice(&[b'x'; 70]);
        assert_eq!(
            decode(&trailers, 5),
            Err(RequestError::TrailersTooLarge { limit: 64 })
        );
        let mut extension = b"1;".to_vec();
        extension.extend_from_slice(&[b'e'; MAX_EXTENSIONS + 1]);
        assert!(matches!(decode(&extension, 100), Err(RequestError::BadChunk(_))));
    }
}
