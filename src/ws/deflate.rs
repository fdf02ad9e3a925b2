//! permessage-deflate (RFC 7692), sans-IO: the offer, the answer, and the
//! two halves of the codec.
//!
//! A browser asks for it in every handshake:
//!
//! ```text
//! Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits
//! ```
//!
//! If the server agrees, each data message may be sent compressed: its
//! payload is the message run through DEFLATE (RFC 1951) and flushed, with
//! the flush's last four bytes `00 00 ff ff` taken off (§7.2.1), and its
//! first frame has RSV1 set (§6). The receiver puts the four bytes back
//! and inflates (§7.2.2).
//!
//! **Context takeover.** By default each side keeps its compression window
//! from one message to the next, so a message can point back into earlier
//! ones. That compresses a stream of similar small messages well, but it
//! ties a compressor (371 KiB here, its window and tables) and an inflater
//! (46 KiB) to every connection for its whole life.
//! The `*_no_context_takeover` parameters (§7.1.1) drop that: every message
//! starts from an empty window.
//!
//! **What duplex answers.** The server always says
//! `server_no_context_takeover`: its messages never refer to earlier
//! ones, so one compressor, reset before each message, serves every
//! connection of the loop ([`Deflater`]). One thread means no lock, and a
//! broadcast to a room is compressed once, the same bytes for every
//! member. It also asks `client_no_context_takeover` (§7.1.1.1 lets a
//! server ask even when the client did not offer it), so one loop-owned
//! [`Inflater`] reads every client too. A server that lets clients keep
//! their context (`--deflate-client-context`) gives each such connection
//! an inflater of its own, made at its first compressed message.
//!
//! ```rust
//! use duplex::ws::deflate::{negotiate, Deflater, Inflater};
//!
//! let (agreement, declined) = negotiate([&b"permessage-deflate; client_max_window_bits"[..]], false);
//! let agreement = agreement.unwrap();
//! assert!(declined.is_empty());
//! assert_eq!(
//!     agreement.response(),
//!     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
//! );
//!
//! let text = "to be or not to be, ".repeat(50);
//! let mut deflater = Deflater::default();
//! let wire = deflater.compress(agreement.server_window_bits, text.as_bytes()).to_vec();
//! assert!(wire.len() < text.len() / 10);
//!
//! let mut inflater = Inflater::new();
//! let mut inflated = Vec::new();
//! inflater.inflate(&wire, &mut inflated, 16 << 20).unwrap();
//! assert_eq!(inflated, text.as_bytes());
//! ```

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::fmt;

/// The extension's registered name (§7, §9).
pub const EXTENSION: &str = "permessage-deflate";

/// What a sync flush ends with, taken off by the sender (§7.2.1) and put
/// back by the receiver (§7.2.2).
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The largest LZ77 window, 32 KiB (RFC 1951 §2; RFC 7692 §7.1.2).
pub const MAX_WINDOW_BITS: u8 = 15;

/// The smallest window zlib can compress with. RFC 7692 allows 8, but zlib
/// quietly uses 9 when asked for 8 (madler/zlib#171), so a server that
/// promised 8 would break its promise: such an offer is declined.
pub const MIN_WINDOW_BITS: u8 = 9;

/// How much the compressor squeezes (zlib's levels, 0–9). Level 1 is the
/// fastest, and the loop compresses for every connection on one thread.
/// Measured here on 4 KiB messages: chat-like JSON went to 152 bytes at
/// level 1 and 140 at the default level 6, in 6 µs against 15; 4 KiB of
/// this repository's Markdown went to 2,633 bytes against 2,012, in 22 µs
/// against 84. A quarter more bytes for a third of the time.
pub const LEVEL: u32 = 1;

/// Output grows in steps of at least this while inflating; the message
/// limit is checked after each step (see [`Inflater::inflate`]).
const INFLATE_STEP: usize = 64 * 1024;

/// What the server and one client agreed on (§7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Agreement {
    /// The window our messages may use: 15, or less if the client asked
    /// with `server_max_window_bits` (§7.1.2.1). Always 9..=15.
    pub server_window_bits: u8,
    /// The client starts each message with an empty window: its messages
    /// are read with the loop's one inflater. `false` only when the server
    /// lets clients keep their context (`--deflate-client-context`).
    pub client_no_context_takeover: bool,
    /// The client asked for `server_max_window_bits`: the answer repeats
    /// it (§7.1.2.1 lets a server answer with the same or a smaller value).
    echo_server_window: bool,
}

impl Agreement {
    /// The `Sec-WebSocket-Extensions` value of the 101 answer.
    ///
    /// `server_no_context_takeover` is always there: the server resets its
    /// compressor before every message (§7.1.1.2 lets it say so unasked).
    /// `client_max_window_bits` never is: the inflater takes any window,
    /// and §7.1.2.2 forbids it in answer to an offer that did not have it.
    pub fn response(&self) -> String {
        let mut text = format!("{EXTENSION}; server_no_context_takeover");
        if self.client_no_context_takeover {
            text.push_str("; client_no_context_takeover");
        }
        if self.echo_server_window {
            text.push_str(&format!("; server_max_window_bits={}", self.server_window_bits));
        }
        text
    }
}

/// Why one `permessage-deflate` offer was declined (§7.1: "a server MUST
/// decline an extension negotiation offer" with a parameter it does not
/// know, a repeated parameter, or a value that is not valid). The
/// connection carries on without the extension; the reason is logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Declined {
    /// A parameter RFC 7692 does not define.
    UnknownParameter(String),
    /// The same parameter twice in one offer.
    Repeated(&'static str),
    /// A value that is not allowed for the parameter.
    BadValue(&'static str, String),
    /// `server_max_window_bits=8`: zlib cannot compress with a 256-byte
    /// window (it uses 512), so the promise could not be kept.
    WindowEight,
    /// The header could not be read as a list of extensions (§9.1).
    Malformed,
}

impl fmt::Display for Declined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Declined::UnknownParameter(name) => write!(f, "unknown parameter {name:?}"),
            Declined::Repeated(name) => write!(f, "{name} given twice"),
            Declined::BadValue(name, value) => write!(f, "{name}={value:?} is not allowed"),
            Declined::WindowEight => write!(f, "server_max_window_bits=8 (zlib's smallest window is 9)"),
            Declined::Malformed => write!(f, "malformed Sec-WebSocket-Extensions"),
        }
    }
}

/// Chooses the first acceptable `permessage-deflate` offer among the
/// values of every `Sec-WebSocket-Extensions` header (§5.1, §7.1). Other
/// extensions are passed over. Returns the agreement, if any, and why each
/// `permessage-deflate` offer before it (or instead of it) was declined.
///
/// `client_context` lets clients keep their compression context; without
/// it the answer asks `client_no_context_takeover` of every client.
///
/// Each header is read once, left to right, with no backtracking: a header
/// of any length costs time in proportion to its length.
pub fn negotiate<'a>(
    headers: impl IntoIterator<Item = &'a [u8]>,
    client_context: bool,
) -> (Option<Agreement>, Vec<Declined>) {
    let mut declined = Vec::new();
    for header in headers {
        let mut reader = Reader {
            bytes: header,
            pos: 0,
        };
        loop {
            let offer = match reader.extension() {
                Ok(Some(offer)) => offer,
                Ok(None) => break,
                Err(()) => {
                    declined.push(Declined::Malformed);
                    break;
                }
            };
            if !offer.name.eq_ignore_ascii_case(EXTENSION.as_bytes()) {
                continue;
            }
            match judge(&offer.params, client_context) {
                Ok(agreement) => return (Some(agreement), declined),
                Err(why) => declined.push(why),
            }
        }
    }
    (None, declined)
}

/// One offer's parameters against §7.1.
fn judge(params: &[(&[u8], Option<Vec<u8>>)], client_context: bool) -> Result<Agreement, Declined> {
    let mut seen = [false; 4];
    let mut agreement = Agreement {
        server_window_bits: MAX_WINDOW_BITS,
        client_no_context_takeover: !client_context,
        echo_server_window: false,
    };
    for (name, value) in params {
        let lower = name.to_ascii_lowercase();
        let (index, field) = match lower.as_slice() {
            b"server_no_context_takeover" => (0, "server_no_context_takeover"),
            b"client_no_context_takeover" => (1, "client_no_context_takeover"),
            b"server_max_window_bits" => (2, "server_max_window_bits"),
            b"client_max_window_bits" => (3, "client_max_window_bits"),
            _ => {
                return Err(Declined::UnknownParameter(
                    String::from_utf8_lossy(name).into_owned(),
                ))
            }
        };
        // §7.1: "a server MUST decline ... if ... an extension parameter
        // ... [appears] more than once".
        if std::mem::replace(&mut seen[index], true) {
            return Err(Declined::Repeated(field));
        }
        let bad = |value: &[u8]| Declined::BadValue(field, String::from_utf8_lossy(value).into_owned());
        match (index, value.as_deref()) {
            // §7.1.1.1, §7.1.1.2: these two have no value.
            (0 | 1, None) => {}
            (0 | 1, Some(value)) => return Err(bad(value)),
            // §7.1.2.1: server_max_window_bits must have one, 8 to 15.
            (2, Some(value)) => {
                let bits = window_bits(value).ok_or_else(|| bad(value))?;
                if bits < MIN_WINDOW_BITS {
                    return Err(Declined::WindowEight);
                }
                agreement.server_window_bits = bits;
                agreement.echo_server_window = true;
            }
            (2, None) => return Err(bad(b"")),
            // §7.1.2.2: client_max_window_bits may have one, 8 to 15. The
            // client then compresses with at most that window, which the
            // inflater (a 15-bit window) reads whatever it is.
            (_, Some(value)) => {
                window_bits(value).ok_or_else(|| bad(value))?;
            }
            (_, None) => {}
        }
        if index == 1 {
            // The client will reset its context anyway.
            agreement.client_no_context_takeover = true;
        }
    }
    Ok(agreement)
}

/// §7.1.2: a window size is 1*DIGIT in 8..=15, with no leading zero.
fn window_bits(value: &[u8]) -> Option<u8> {
    match value {
        [d @ b'8'..=b'9'] => Some(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Some(10 + d - b'0'),
        _ => None,
    }
}

/// One extension of a `Sec-WebSocket-Extensions` list: its name and its
/// parameters, as given.
struct Offer<'a> {
    name: &'a [u8],
    params: Vec<(&'a [u8], Option<Vec<u8>>)>,
}

/// Reads the grammar of RFC 6455 §9.1 from left to right:
///
/// ```text
/// extension-list = 1#extension
/// extension      = extension-token *( ";" extension-param )
/// extension-param = token [ "=" (token | quoted-string) ]
/// ```
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// The next extension, or `None` at the end. Empty list elements (`a,,b`)
    /// are allowed and skipped, as RFC 9110 §5.6.1 asks of a recipient.
    fn extension(&mut self) -> Result<Option<Offer<'a>>, ()> {
        loop {
            self.spaces();
            match self.peek() {
                None => return Ok(None),
                Some(b',') => self.pos += 1,
                Some(_) => break,
            }
        }
        let name = self.token()?;
        let mut params = Vec::new();
        loop {
            self.spaces();
            match self.peek() {
                None => break,
                Some(b',') => {
                    self.pos += 1;
                    break;
                }
                Some(b';') => {
                    self.pos += 1;
                    self.spaces();
                    let param = self.token()?;
                    self.spaces();
                    let value = if self.peek() == Some(b'=') {
                        self.pos += 1;
                        self.spaces();
                        Some(self.value()?)
                    } else {
                        None
                    };
                    params.push((param, value));
                }
                Some(_) => return Err(()),
            }
        }
        Ok(Some(Offer { name, params }))
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// RFC 9110 §5.6.2: `token = 1*tchar`.
    fn token(&mut self) -> Result<&'a [u8], ()> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(());
        }
        Ok(&self.bytes[start..self.pos])
    }

    /// A token or a quoted string (RFC 9110 §5.6.4), unquoted. §7.1 asks
    /// that a quoted value be a token once unquoted; the caller's check of
    /// the value (digits only) sees to that.
    fn value(&mut self) -> Result<Vec<u8>, ()> {
        if self.peek() != Some(b'"') {
            return self.token().map(<[u8]>::to_vec);
        }
        self.pos += 1;
        let mut value = Vec::new();
        loop {
            match self.peek() {
                None => return Err(()),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(value);
                }
                Some(b'\\') => {
                    let escaped = self.bytes.get(self.pos + 1).copied().ok_or(())?;
                    value.push(escaped);
                    self.pos += 2;
                }
                Some(byte) => {
                    value.push(byte);
                    self.pos += 1;
                }
            }
        }
    }
}

/// RFC 9110 §5.6.2's `tchar`.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// The loop's compressors, one per window size actually asked for, each
/// made the first time it is needed and reset before every message (the
/// server never takes its context over, §7.1.1.2). Nearly every client
/// leaves the window at 15, so there is usually one.
///
/// zlib-rs's compressor at level 1 and a 15-bit window holds 371 KiB
/// (counted with a counting allocator); per connection that would be
/// 3.6 GiB for ten thousand. Here it is paid once.
#[derive(Default)]
pub struct Deflater {
    /// By window bits − 9: 9 to 15.
    compressors: [Option<Box<Compress>>; 7],
    /// The last message compressed, without its tail.
    out: Vec<u8>,
    /// How many messages this deflater compressed.
    pub compressions: u64,
}

impl Deflater {
    /// Compresses one message with a window of at most `window_bits`
    /// (clamped to 9..=15), and returns the payload of its first frame
    /// (§7.2.1): DEFLATE blocks ending in a sync flush, its last four
    /// bytes taken off. The bytes are lent until the next call.
    pub fn compress(&mut self, window_bits: u8, message: &[u8]) -> &[u8] {
        let bits = window_bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
        let slot = &mut self.compressors[usize::from(bits - MIN_WINDOW_BITS)];
        let compress = slot.get_or_insert_with(|| {
            Box::new(Compress::new_with_window_bits(
                Compression::new(LEVEL),
                false,
                bits,
            ))
        });
        // §7.1.1.2: every message from an empty window.
        compress.reset();
        self.compressions += 1;
        self.out.clear();
        // Deflate never grows data by more than 5 bytes a 16 KiB block, plus
        // the flush; ask for that much at once and loop only if it was not.
        self.out.reserve(message.len() + message.len() / 1024 + 64);
        let mut used = 0;
        loop {
            let before = compress.total_in();
            // A compressor makes no mistakes on memory it was given: an
            // error here cannot come from the peer, so it is kept out of
            // the output as an empty message, never a panic.
            if compress
                .compress_vec(&message[used..], &mut self.out, FlushCompress::Sync)
                .is_err()
            {
                self.out.clear();
                break;
            }
            used += (compress.total_in() - before) as usize;
            // Done when all input is in and the flush fitted: the output
            // then ends with the sync marker.
            if used == message.len() && self.out.len() < self.out.capacity() {
                break;
            }
            self.out.reserve(self.out.capacity().max(64));
        }
        // §7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the
        // tail end."
        if self.out.ends_with(&TAIL) {
            self.out.truncate(self.out.len() - TAIL.len());
        }
        &self.out
    }

    /// Heap memory held, in bytes, not counting zlib's own tables (which
    /// flate2 does not report): the output buffer kept for reuse.
    pub fn scratch_capacity(&self) -> usize {
        self.out.capacity()
    }

    /// Gives back a large output buffer once a big message is out, so a
    /// single 16 MiB broadcast does not keep 16 MiB for the server's life.
    pub fn trim(&mut self, keep: usize) {
        if self.out.capacity() > keep {
            self.out = Vec::new();
        }
    }
}

/// Why a compressed message could not be inflated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InflateError {
    /// The inflated message would pass the message limit (close 1009).
    TooBig,
    /// Not a valid DEFLATE stream (close 1007, see
    /// [`crate::ws::ProtocolError::CorruptDeflate`]).
    Corrupt,
}

/// A raw DEFLATE inflater with a 32 KiB window, which reads a stream
/// compressed with any window up to that (§7.1.2.2).
///
/// Its cost: zlib-rs allocates the inflate state and the 32 KiB window
/// when it is made, 46 KiB in all (47,552 bytes, counted with a counting
/// allocator), and a message inflated adds nothing to that.
pub struct Inflater {
    decompress: Decompress,
}

impl Default for Inflater {
    fn default() -> Inflater {
        Inflater::new()
    }
}

impl fmt::Debug for Inflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Inflater")
    }
}

impl Inflater {
    /// A new inflater with an empty window.
    pub fn new() -> Inflater {
        Inflater {
            decompress: Decompress::new_with_window_bits(false, MAX_WINDOW_BITS),
        }
    }

    /// Forgets the window: the next message starts afresh
    /// (`client_no_context_takeover`, §7.1.1.1).
    pub fn reset(&mut self) {
        self.decompress.reset(false);
    }

    /// Inflates one message's payload (its frames' payloads joined) into
    /// `out`, which is cleared first (§7.2.2): the payload, then the four
    /// bytes the sender took off.
    ///
    /// Bounded while it runs: `out` grows in steps (doubling, from 64 KiB),
    /// never past `limit + 1` bytes, and the moment it holds more than
    /// `limit` the message is refused with [`InflateError::TooBig`]. A
    /// small payload that would inflate to a gigabyte (a "deflate bomb")
    /// costs at most the limit.
    ///
    /// The window is kept for the next message; a caller whose peer does
    /// not take its context over calls [`Inflater::reset`] after.
    pub fn inflate(&mut self, payload: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), InflateError> {
        out.clear();
        for piece in [payload, &TAIL[..]] {
            if self.feed(piece, out, limit)? == Status::StreamEnd {
                // A final block (BFINAL) ends the stream. What may follow
                // it is what §7.2.1 leaves of an empty stored block (the
                // `00` of RFC 7692 §7.2.3.4's example) and the tail we
                // added; zlib leaves such bytes unused, and so does this.
                // The next message needs a fresh stream, so the window is
                // let go.
                self.reset();
                break;
            }
        }
        Ok(())
    }

    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<Status, InflateError> {
        let mut used = 0;
        loop {
            if out.len() == out.capacity() {
                if out.len() > limit {
                    return Err(InflateError::TooBig);
                }
                // Double, from one step, but never past one byte over the
                // limit: that byte is how going over is seen.
                let want = out.capacity().max(INFLATE_STEP).min(limit + 1 - out.len());
                out.reserve_exact(want);
            }
            let before = self.decompress.total_in();
            let status = self
                .decompress
                .decompress_vec(&input[used..], out, FlushDecompress::Sync)
                .map_err(|_| InflateError::Corrupt)?;
            used += (self.decompress.total_in() - before) as usize;
            if out.len() > limit {
                return Err(InflateError::TooBig);
            }
            match status {
                Status::StreamEnd => return Ok(status),
                // All input taken and room left over: nothing more to come.
                _ if used == input.len() && out.len() < out.capacity() => return Ok(status),
                // No progress with room to spare would loop for ever.
                Status::BufError if out.len() < out.capacity() && used < input.len() => {
                    return Err(InflateError::Corrupt)
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(text: &str) -> (Option<Agreement>, Vec<Declined>) {
        negotiate([text.as_bytes()], false)
    }

    #[test]
    fn chromium_offer_is_accepted_and_answered_with_both_resets() {
        let (agreement, declined) = offer("permessage-deflate; client_max_window_bits");
        assert!(declined.is_empty());
        let agreement = agreement.unwrap();
        assert_eq!(agreement.server_window_bits, 15);
        assert_eq!(
            agreement.response(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
    }

    #[test]
    fn client_context_is_kept_when_allowed_and_not_given_up_by_the_client() {
        let (agreement, _) = negotiate([&b"permessage-deflate"[..]], true);
        let agreement = agreement.unwrap();
        assert!(!agreement.client_no_context_takeover);
        assert_eq!(
            agreement.response(),
            "permessage-deflate; server_no_context_takeover"
        );
        // A client that gives it up itself is read with the shared inflater.
        let (agreement, _) = negotiate([&b"permessage-deflate; client_no_context_takeover"[..]], true);
        assert!(agreement.unwrap().client_no_context_takeover);
    }

    #[test]
    fn autobahn_offers() {
        for (text, bits, response) in [
            (
                "permessage-deflate; client_no_context_takeover; client_max_window_bits",
                15,
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            ),
            (
                "permessage-deflate; client_no_context_takeover; client_max_window_bits; server_max_window_bits=9",
                9,
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9",
            ),
            (
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=15",
                15,
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15",
            ),
            (
                "permessage-deflate; server_max_window_bits=\"10\"",
                10,
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10",
            ),
        ] {
            let (agreement, declined) = offer(text);
            assert!(declined.is_empty(), "{text}: {declined:?}");
            let agreement = agreement.unwrap();
            assert_eq!(agreement.server_window_bits, bits, "{text}");
            assert_eq!(agreement.response(), response, "{text}");
        }
    }

    #[test]
    fn the_first_acceptable_offer_wins() {
        let (agreement, declined) = negotiate(
            [
                &b"x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=8"[..],
                &b"permessage-deflate; server_max_window_bits=12, permessage-deflate"[..],
            ],
            false,
        );
        assert_eq!(declined, [Declined::WindowEight]);
        assert_eq!(agreement.unwrap().server_window_bits, 12);
    }

    #[test]
    fn malformed_offers_are_declined() {
        for (text, why) in [
            (
                "permessage-deflate; foo",
                Declined::UnknownParameter("foo".into()),
            ),
            (
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                Declined::Repeated("server_no_context_takeover"),
            ),
            (
                "permessage-deflate; client_max_window_bits=10; client_max_window_bits",
                Declined::Repeated("client_max_window_bits"),
            ),
            (
                "permessage-deflate; server_max_window_bits=8",
                Declined::WindowEight,
            ),
            (
                "permessage-deflate; server_max_window_bits=16",
                Declined::BadValue("server_max_window_bits", "16".into()),
            ),
            (
                "permessage-deflate; server_max_window_bits=010",
                Declined::BadValue("server_max_window_bits", "010".into()),
            ),
            (
                "permessage-deflate; server_max_window_bits",
                Declined::BadValue("server_max_window_bits", "".into()),
            ),
            (
                "permessage-deflate; client_max_window_bits=7",
                Declined::BadValue("client_max_window_bits", "7".into()),
            ),
            (
                "permessage-deflate; client_no_context_takeover=1",
                Declined::BadValue("client_no_context_takeover", "1".into()),
            ),
            ("permessage-deflate; =1", Declined::Malformed),
            (
                "permessage-deflate; server_max_window_bits=\"10",
                Declined::Malformed,
            ),
            ("permessage-deflate garbage", Declined::Malformed),
        ] {
            assert_eq!(offer(text), (None, vec![why]), "{text}");
        }
        // Not offered at all: nothing to decline.
        assert_eq!(offer("x-webkit-deflate-frame"), (None, vec![]));
        assert_eq!(offer(""), (None, vec![]));
    }

    #[test]
    fn a_long_header_is_read_in_one_pass() {
        let mut text = "permessage-deflate; foo, ".repeat(20_000);
        text.push_str("permessage-deflate");
        let start = std::time::Instant::now();
        let (agreement, declined) = offer(&text);
        assert!(agreement.is_some());
        assert_eq!(declined.len(), 20_000);
        // Quadratic parsing of 500 KB would take minutes.
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn compress_and_inflate_round_trip_at_every_window() {
        let text = "{\"user\":\"guest-7\",\"room\":\"lobby\",\"text\":\"hello\"}".repeat(100);
        let mut deflater = Deflater::default();
        let mut inflater = Inflater::new();
        let mut out = Vec::new();
        for bits in 9..=15 {
            let wire = deflater.compress(bits, text.as_bytes()).to_vec();
            assert!(!wire.ends_with(&TAIL));
            inflater.inflate(&wire, &mut out, 1 << 20).unwrap();
            inflater.reset();
            assert_eq!(out, text.as_bytes(), "window {bits}");
        }
        assert_eq!(deflater.compressions, 7);
    }

    /// RFC 7692 §7.2.3.1: "Hello" compressed, as the RFC shows it.
    #[test]
    fn rfc_hello() {
        let mut out = Vec::new();
        let wire = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        Inflater::new().inflate(&wire, &mut out, 100).unwrap();
        assert_eq!(out, b"Hello");
        // §7.2.3.2: the same, sent again with the context taken over.
        let mut inflater = Inflater::new();
        inflater.inflate(&wire, &mut out, 100).unwrap();
        inflater
            .inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], &mut out, 100)
            .unwrap();
        assert_eq!(out, b"Hello");
        // §7.2.3.4: a block with BFINAL set, then the next message.
        let mut inflater = Inflater::new();
        inflater
            .inflate(&[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00], &mut out, 100)
            .unwrap();
        assert_eq!(out, b"Hello");
        inflater.inflate(&wire, &mut out, 100).unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn a_bomb_is_stopped_at_the_limit() {
        let zeros = vec![0u8; 16 << 20];
        let mut compress = Compress::new_with_window_bits(Compression::best(), false, 15);
        let mut wire = Vec::with_capacity(1 << 20);
        compress
            .compress_vec(&zeros, &mut wire, FlushCompress::Sync)
            .unwrap();
        assert!(wire.len() < 100_000, "{}", wire.len());
        let mut out = Vec::new();
        let limit = 1 << 20;
        assert_eq!(
            Inflater::new().inflate(&wire, &mut out, limit),
            Err(InflateError::TooBig)
        );
        assert!(out.capacity() <= limit + 1, "{}", out.capacity());
        // Exactly at the limit is fine.
        let wire = Deflater::default().compress(15, &zeros[..limit]).to_vec();
        Inflater::new().inflate(&wire, &mut out, limit).unwrap();
        assert_eq!(out.len(), limit);
    }

    #[test]
    fn corrupt_data_is_an_error() {
        let mut out = Vec::new();
        // BTYPE 11 is reserved (RFC 1951 §3.2.3).
        assert_eq!(
            Inflater::new().inflate(&[0xff, 0xff], &mut out, 100),
            Err(InflateError::Corrupt)
        );
        // A stored block whose length and its complement disagree.
        assert_eq!(
            Inflater::new().inflate(&[0x00, 0x05, 0x00, 0x00, 0x00], &mut out, 100),
            Err(InflateError::Corrupt)
        );
    }

    #[test]
    fn a_truncated_stream_yields_what_it_has() {
        // Cut in the middle: inflate gives what it could and waits for more
        // that never comes; the message is what was decodable.
        let text = b"Hello, Hello, Hello, Hello".repeat(10);
        let wire = Deflater::default().compress(15, &text).to_vec();
        let mut out = Vec::new();
        let _ = Inflater::new().inflate(&wire[..wire.len() / 2], &mut out, 1000);
        assert!(out.len() <= text.len());
    }
}
