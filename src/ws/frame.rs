//! The WebSocket frame, byte by byte (RFC 6455 §5.2).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! | Masking-key (continued)       |          Payload Data         |
//! +-------------------------------- - - - - - - - - - - - - - - - +
//! ```
//!
//! This module only knows the header and the mask. It never allocates for a
//! payload: [`FrameHeader::parse`] reads a header from the front of a byte
//! slice and says how long it was, [`FrameHeader::encode`] writes one, and
//! [`apply_mask`] XORs a payload in place. Putting frames together into
//! messages is the job of [`super::decoder`].

use super::ProtocolError;

/// The longest header there is: 2 fixed bytes, 8 bytes of extended length,
/// 4 bytes of masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// RSV1 in [`FrameHeader::rsv`]: the "Per-Message Compressed" bit of
/// permessage-deflate (RFC 7692 §6), on a message's first frame.
pub const RSV1: u8 = 0b100;

/// Control frames carry at most 125 bytes and are never fragmented
/// (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The frame's opcode (RFC 6455 §5.2, §11.8).
///
/// Reserved values are representable on purpose: the parser turns four bits
/// into an `Opcode` without judging them, and the decoder rejects
/// `Reserved` in exactly one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    /// 0x0: the next fragment of a message.
    Continuation,
    /// 0x1: the first (or only) frame of a UTF-8 text message.
    Text,
    /// 0x2: the first (or only) frame of a binary message.
    Binary,
    /// 0x8: the close handshake.
    Close,
    /// 0x9: a heartbeat the peer must answer.
    Ping,
    /// 0xA: the answer to a ping, or an unsolicited heartbeat.
    Pong,
    /// 0x3–0x7 (data) and 0xB–0xF (control): no meaning without an
    /// extension, so receiving one fails the connection.
    Reserved(u8),
}

impl Opcode {
    /// Reads the low four bits of the first header byte.
    pub fn from_bits(bits: u8) -> Opcode {
        match bits & 0x0F {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            other => Opcode::Reserved(other),
        }
    }

    /// The four bits this opcode is written as.
    pub fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
            Opcode::Reserved(bits) => bits & 0x0F,
        }
    }

    /// Control frames have the high bit of the opcode set (RFC 6455 §5.5).
    pub fn is_control(self) -> bool {
        self.bits() & 0x8 != 0
    }

    /// A short name for logs: `text`, `binary`, `close`, ...
    pub fn name(self) -> &'static str {
        match self {
            Opcode::Continuation => "continuation",
            Opcode::Text => "text",
            Opcode::Binary => "binary",
            Opcode::Close => "close",
            Opcode::Ping => "ping",
            Opcode::Pong => "pong",
            Opcode::Reserved(_) => "reserved",
        }
    }
}

/// Everything in a frame before its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the final fragment of a message.
    pub fin: bool,
    /// RSV1, RSV2 and RSV3 as the low three bits; non-zero only with an
    /// extension that defines them. duplex knows one: permessage-deflate
    /// sets RSV1 ([`RSV1`]) on a compressed message's first frame.
    pub rsv: u8,
    /// What the frame carries (§5.2); a reserved value is kept as
    /// [`Opcode::Reserved`] and refused by the decoder.
    pub opcode: Opcode,
    /// The masking key. Every frame from a client carries one, no frame
    /// from a server does (RFC 6455 §5.1, §5.3).
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes, from the 7-, 16- or 64-bit length field
    /// (§5.2).
    pub payload_len: u64,
}

impl FrameHeader {
    /// Parses a header from the front of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` ends before the header does (read more
    /// and call again), or the header and how many bytes it took. Only the
    /// rules about the *encoding* are checked here; whether a header is
    /// acceptable in context (masking, RSV bits, opcodes, control frame
    /// sizes) is for the decoder.
    ///
    /// The masked "Hello" of RFC 6455 §5.7: FIN and opcode 1 (`0x81`), the
    /// mask bit and length 5 (`0x85`), then the 4-byte key. The payload
    /// follows the 6 header bytes, still masked.
    ///
    /// ```rust
    /// use duplex::ws::{FrameHeader, Opcode};
    ///
    /// let wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    /// let (header, len) = FrameHeader::parse(&wire).unwrap().unwrap();
    /// assert_eq!(len, 6);
    /// assert_eq!(
    ///     header,
    ///     FrameHeader {
    ///         fin: true,
    ///         rsv: 0,
    ///         opcode: Opcode::Text,
    ///         mask: Some([0x37, 0xfa, 0x21, 0x3d]),
    ///         payload_len: 5,
    ///     }
    /// );
    /// // Three bytes are not a header yet: read more and call again.
    /// assert_eq!(FrameHeader::parse(&wire[..3]), Ok(None));
    /// ```
    pub fn parse(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0x07;
        let opcode = Opcode::from_bits(b0);
        let masked = b1 & 0x80 != 0;
        let (payload_len, mut pos) = match b1 & 0x7F {
            126 => {
                let Some(bytes) = buf.get(2..4) else {
                    return Ok(None);
                };
                let len = u64::from(u16::from_be_bytes([bytes[0], bytes[1]]));
                // RFC 6455 §5.2: "the minimal number of bytes MUST be used to
                // encode the length".
                if len < 126 {
                    return Err(ProtocolError::NonMinimalLength);
                }
                (len, 4)
            }
            127 => {
                let Some(bytes) = buf.get(2..10) else {
                    return Ok(None);
                };
                let mut be = [0u8; 8];
                be.copy_from_slice(bytes);
                let len = u64::from_be_bytes(be);
                // RFC 6455 §5.2: "the most significant bit MUST be 0".
                if len >> 63 != 0 {
                    return Err(ProtocolError::LengthTopBitSet);
                }
                if len <= 0xFFFF {
                    return Err(ProtocolError::NonMinimalLength);
                }
                (len, 10)
            }
            len => (u64::from(len), 2),
        };
        let mask = if masked {
            let Some(bytes) = buf.get(pos..pos + 4) else {
                return Ok(None);
            };
            pos += 4;
            Some([bytes[0], bytes[1], bytes[2], bytes[3]])
        } else {
            None
        };
        let header = FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len,
        };
        Ok(Some((header, pos)))
    }

    /// Writes the header into `out` and returns its length, always the
    /// shortest length encoding (RFC 6455 §5.2).
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0x07) << 4) | self.opcode.bits();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut pos = match self.payload_len {
            len @ 0..=125 => {
                out[1] = mask_bit | len as u8;
                2
            }
            len @ 126..=0xFFFF => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                4
            }
            len => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&len.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[pos..pos + 4].copy_from_slice(&key);
            pos += 4;
        }
        pos
    }

    /// How many bytes [`FrameHeader::encode`] writes for this header.
    pub fn encoded_len(&self) -> usize {
        let len_bytes = match self.payload_len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + len_bytes + if self.mask.is_some() { 4 } else { 0 }
    }
}

/// Appends one complete frame to `out`: header, then the payload, masked
/// when a key is given (clients must mask, RFC 6455 §5.3).
///
/// RFC 6455 §5.7's first two examples, "Hello" as a server sends it
/// (unmasked) and as a client sends it (masked):
///
/// ```rust
/// use duplex::ws::{encode_frame, Opcode};
///
/// let mut out = Vec::new();
/// encode_frame(&mut out, true, Opcode::Text, b"Hello", None);
/// assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
///
/// let mut out = Vec::new();
/// encode_frame(&mut out, true, Opcode::Text, b"Hello", Some([0x37, 0xfa, 0x21, 0x3d]));
/// assert_eq!(
///     out,
///     [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
/// );
/// ```
pub fn encode_frame(out: &mut Vec<u8>, fin: bool, opcode: Opcode, payload: &[u8], mask: Option<[u8; 4]>) {
    let header = FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let head_len = header.encode(&mut head);
    out.reserve(head_len + payload.len());
    out.extend_from_slice(&head[..head_len]);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
}

/// XORs `data` with the masking key, in place (RFC 6455 §5.3):
/// `transformed[i] = original[i] ^ key[i % 4]`.
///
/// `offset` is how many payload bytes came before `data`, so a payload that
/// arrives in pieces is unmasked piece by piece. Masking is its own inverse.
///
/// ```rust
/// use duplex::ws::apply_mask;
///
/// let key = [0x37, 0xfa, 0x21, 0x3d];
/// let mut payload = [0x7f, 0x9f, 0x4d, 0x51, 0x58]; // RFC 6455 §5.7
/// // In two pieces, as it might arrive: the second starts at offset 2.
/// let (first, second) = payload.split_at_mut(2);
/// apply_mask(first, key, 0);
/// apply_mask(second, key, 2);
/// assert_eq!(&payload, b"Hello");
/// ```
///
/// The bulk is done eight bytes at a time: the key repeated twice is one
/// `u64`, and XOR does not care about byte order as long as both sides are
/// read the same way.
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    let (rotated, wide) = rotated_key(key, offset);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    // Whole words are multiples of 4, so the tail starts on key index 0.
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= rotated[i % 4];
    }
}

/// [`apply_mask`], and whether every byte it produced is ASCII.
///
/// A text payload must be UTF-8 (§8.1), and ASCII is UTF-8 by itself.
/// While each unmasked word is still in a register, OR-ing it into an
/// accumulator costs next to nothing, and for ASCII text it saves a second
/// pass over the payload. (Measured on 64 KiB: as fast as `apply_mask`
/// alone, where `apply_mask` followed by `is_ascii` took a third longer.)
///
/// ```rust
/// use duplex::ws::apply_mask;
/// use duplex::ws::frame::apply_mask_ascii;
///
/// let key = [0x37, 0xfa, 0x21, 0x3d];
/// let mut hello = [0x7f, 0x9f, 0x4d, 0x51, 0x58]; // RFC 6455 §5.7
/// assert!(apply_mask_ascii(&mut hello, key, 0));
/// assert_eq!(&hello, b"Hello");
///
/// // "κ" is two bytes above 0x7F; masked as a client sends it, then back.
/// let mut kappa = "κ".as_bytes().to_vec();
/// apply_mask(&mut kappa, key, 0);
/// assert!(!apply_mask_ascii(&mut kappa, key, 0));
/// assert_eq!(kappa, "κ".as_bytes());
/// ```
pub fn apply_mask_ascii(data: &mut [u8], key: [u8; 4], offset: usize) -> bool {
    let (rotated, wide) = rotated_key(key, offset);
    let mut seen = 0u64;
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_ne_bytes(word) ^ wide;
        chunk.copy_from_slice(&word.to_ne_bytes());
        seen |= word;
    }
    let mut tail = 0u8;
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= rotated[i % 4];
        tail |= *byte;
    }
    // ASCII is the bytes whose top bit is clear.
    seen & u64::from_ne_bytes([0x80; 8]) == 0 && tail < 0x80
}

/// The key turned so that its first byte applies to the byte `offset`
/// bytes into the payload, alone and repeated twice as one `u64`.
fn rotated_key(key: [u8; 4], offset: usize) -> ([u8; 4], u64) {
    let shift = offset % 4;
    let rotated = [
        key[shift],
        key[(shift + 1) % 4],
        key[(shift + 2) % 4],
        key[(shift + 3) % 4],
    ];
    let mut wide = [0u8; 8];
    wide[..4].copy_from_slice(&rotated);
    wide[4..].copy_from_slice(&rotated);
    (rotated, u64::from_ne_bytes(wide))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455 §5.7, "A single-frame unmasked text message".
    #[test]
    fn rfc_unmasked_hello() {
        let bytes = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let (header, len) = FrameHeader::parse(&bytes).unwrap().unwrap();
        assert_eq!(len, 2);
        assert!(header.fin);
        assert_eq!(header.opcode, Opcode::Text);
        assert_eq!(header.mask, None);
        assert_eq!(header.payload_len, 5);
        assert_eq!(&bytes[len..], b"Hello");

        let mut out = Vec::new();
        encode_frame(&mut out, true, Opcode::Text, b"Hello", None);
        assert_eq!(out, bytes);
    }

    /// RFC 6455 §5.7, "A single-frame masked text message".
    #[test]
    fn rfc_masked_hello() {
        let mut bytes = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        let (header, len) = FrameHeader::parse(&bytes).unwrap().unwrap();
        assert_eq!(len, 6);
        assert_eq!(header.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        let key = header.mask.unwrap();
        apply_mask(&mut bytes[len..], key, 0);
        assert_eq!(&bytes[len..], b"Hello");

        let mut out = Vec::new();
        encode_frame(&mut out, true, Opcode::Text, b"Hello", Some(key));
        assert_eq!(
            out,
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
    }

    /// RFC 6455 §5.7, "A fragmented unmasked text message".
    #[test]
    fn rfc_fragmented_hello() {
        let first = [0x01, 0x03, 0x48, 0x65, 0x6c];
        let second = [0x80, 0x02, 0x6c, 0x6f];
        let (h1, _) = FrameHeader::parse(&first).unwrap().unwrap();
        let (h2, _) = FrameHeader::parse(&second).unwrap().unwrap();
        assert!(!h1.fin);
        assert_eq!(h1.opcode, Opcode::Text);
        assert!(h2.fin);
        assert_eq!(h2.opcode, Opcode::Continuation);
    }

    /// RFC 6455 §5.7, "Unmasked Ping request and masked Ping response".
    #[test]
    fn rfc_ping_and_pong() {
        let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let (h, _) = FrameHeader::parse(&ping).unwrap().unwrap();
        assert_eq!(h.opcode, Opcode::Ping);
        let mut pong = [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        let (h, len) = FrameHeader::parse(&pong).unwrap().unwrap();
        assert_eq!(h.opcode, Opcode::Pong);
        apply_mask(&mut pong[len..], h.mask.unwrap(), 0);
        assert_eq!(&pong[len..], b"Hello");
    }

    /// RFC 6455 §5.7, "256 bytes binary message in a single unmasked frame"
    /// and "64KiB binary message in a single unmasked frame".
    #[test]
    fn rfc_extended_lengths() {
        let (h, len) = FrameHeader::parse(&[0x82, 0x7E, 0x01, 0x00]).unwrap().unwrap();
        assert_eq!((h.opcode, h.payload_len, len), (Opcode::Binary, 256, 4));
        let bytes = [0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00];
        let (h, len) = FrameHeader::parse(&bytes).unwrap().unwrap();
        assert_eq!((h.payload_len, len), (65536, 10));

        for (payload_len, expect) in [(256u64, &bytes[..0]), (65536, &bytes[..])] {
            let header = FrameHeader {
                fin: true,
                rsv: 0,
                opcode: Opcode::Binary,
                mask: None,
                payload_len,
            };
            let mut out = [0u8; MAX_HEADER_LEN];
            let n = header.encode(&mut out);
            assert_eq!(n, header.encoded_len());
            if !expect.is_empty() {
                assert_eq!(&out[..n], expect);
            } else {
                assert_eq!(&out[..n], &[0x82, 0x7E, 0x01, 0x00]);
            }
        }
    }

    #[test]
    fn partial_headers_ask_for_more() {
        let full = [0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4];
        for cut in 0..full.len() {
            assert_eq!(FrameHeader::parse(&full[..cut]).unwrap(), None, "cut at {cut}");
        }
        let (h, len) = FrameHeader::parse(&full).unwrap().unwrap();
        assert_eq!((len, h.payload_len, h.mask), (14, 65536, Some([1, 2, 3, 4])));
    }

    #[test]
    fn length_encoding_rules() {
        // 64-bit length with the top bit set (RFC 6455 §5.2).
        let top = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(FrameHeader::parse(&top), Err(ProtocolError::LengthTopBitSet));
        // 2^62 is legal to announce; refusing it is the decoder's limit.
        let huge = [0x82, 0x7F, 0x40, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(FrameHeader::parse(&huge).unwrap().unwrap().0.payload_len, 1 << 62);
        // Non-minimal encodings.
        assert_eq!(
            FrameHeader::parse(&[0x82, 0x7E, 0x00, 0x05]),
            Err(ProtocolError::NonMinimalLength)
        );
        assert_eq!(
            FrameHeader::parse(&[0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0x01, 0x00]),
            Err(ProtocolError::NonMinimalLength)
        );
    }

    #[test]
    fn mask_at_every_offset_matches_bytewise() {
        let key = [0xA1, 0xB2, 0xC3, 0xD4];
        let original: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for offset in 0..8 {
            for len in [0, 1, 3, 7, 8, 9, 31, 100] {
                let mut fast = original[..len].to_vec();
                apply_mask(&mut fast, key, offset);
                let slow: Vec<u8> = original[..len]
                    .iter()
                    .enumerate()
                    .map(|(i, b)| b ^ key[(i + offset) % 4])
                    .collect();
                assert_eq!(fast, slow, "offset {offset} len {len}");
            }
        }
    }

    #[test]
    fn mask_and_ascii_check_in_one_pass() {
        let key = [0xA1, 0xB2, 0xC3, 0xD4];
        let ascii: Vec<u8> = (0..100u8).map(|i| b' ' + i % 90).collect();
        for offset in 0..4 {
            for len in [0usize, 1, 7, 8, 9, 31, 100] {
                for high_at in [None, Some(0), Some(len / 2), Some(len.saturating_sub(1))] {
                    let mut plain = ascii[..len].to_vec();
                    if let (Some(at), true) = (high_at, len > 0) {
                        plain[at] = 0xC3;
                    }
                    let mut data = plain.clone();
                    apply_mask(&mut data, key, offset);
                    let is_ascii = apply_mask_ascii(&mut data, key, offset);
                    assert_eq!(data, plain, "offset {offset} len {len}");
                    assert_eq!(
                        is_ascii,
                        plain.is_ascii(),
                        "offset {offset} len {len} {high_at:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn reserved_opcodes_are_representable() {
        for bits in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(Opcode::from_bits(bits), Opcode::Reserved(bits));
            assert_eq!(Opcode::from_bits(bits).bits(), bits);
        }
        assert!(Opcode::Reserved(0xB).is_control());
        assert!(!Opcode::Reserved(0x3).is_control());
    }
}
