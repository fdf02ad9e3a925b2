//! RFC 6455, by hand and sans-IO.
//!
//! Nothing in here touches a socket or a clock. Bytes go in, events come
//! out, and every rule of the protocol is checked in one place:
//!
//! * [`handshake`]: the opening handshake, from an HTTP request to the
//!   `101 Switching Protocols` answer (§4).
//! * [`frame`]: one frame header, read and written byte by byte, and the
//!   masking XOR (§5.2, §5.3).
//! * [`decoder`]: frames into messages: fragmentation, control frames in
//!   between, UTF-8 across fragments, limits (§5.4–§5.6, §8.1).
//! * [`close`]: close codes and the close frame's payload (§5.5.1, §7.4).
//! * [`utf8`]: a streaming UTF-8 check that fails on the first bad byte.
//! * [`deflate`]: permessage-deflate (RFC 7692): the offer and answer, a
//!   compressor the whole loop shares, and inflation bounded as it runs.
//!
//! The two halves fit together: what [`encode_frame`] writes, a
//! [`Decoder`] on the other side reads. A client masks (§5.3), so the
//! server's decoder takes the masked frame; the server's answer goes out
//! unmasked to a client's decoder. A ping between them is answered by the
//! application with a pong of the same payload (§5.5.2).
//!
//! ```rust
//! use duplex::ws::decoder::MessageKind;
//! use duplex::ws::{encode_frame, Decoder, Event, Limits, Opcode, Role};
//!
//! // The client says "hi" and pings; the server decodes both.
//! let mut wire = Vec::new();
//! encode_frame(&mut wire, true, Opcode::Text, b"hi", Some([1, 2, 3, 4]));
//! encode_frame(&mut wire, true, Opcode::Ping, b"beat", Some([5, 6, 7, 8]));
//! let mut server = Decoder::new(Role::Server, Limits::default());
//! let (used, event) = server.decode(&mut wire).unwrap();
//! assert_eq!(event, Some(Event::Message(MessageKind::Text, &b"hi"[..])));
//! let (_, event) = server.decode(&mut wire[used..]).unwrap();
//! assert_eq!(event, Some(Event::Ping(&b"beat"[..])));
//!
//! // The server answers with an echo and a pong; the client decodes both.
//! let mut answer = Vec::new();
//! encode_frame(&mut answer, true, Opcode::Text, b"hi", None);
//! encode_frame(&mut answer, true, Opcode::Pong, b"beat", None);
//! let mut client = Decoder::new(Role::Client, Limits::default());
//! let (used, event) = client.decode(&mut answer).unwrap();
//! assert_eq!(event, Some(Event::Message(MessageKind::Text, &b"hi"[..])));
//! let (_, event) = client.decode(&mut answer[used..]).unwrap();
//! assert_eq!(event, Some(Event::Pong(&b"beat"[..])));
//! ```

pub mod close;
pub mod decoder;
pub mod deflate;
pub mod frame;
pub mod handshake;
pub mod utf8;

pub use close::CloseCode;
pub use decoder::{Decoder, Event, Limits, Role};
pub use frame::{apply_mask, encode_frame, FrameHeader, Opcode};

use std::fmt;

/// Everything a peer can do wrong on an open WebSocket connection.
///
/// Each variant maps to the close code we answer with in exactly one place,
/// [`ProtocolError::close_code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// §5.1: "a server MUST close the connection upon receiving a frame that
    /// is not masked".
    UnmaskedFrame,
    /// §5.1: "a client MUST close a connection if it detects a masked frame".
    MaskedFrame,
    /// §5.2: RSV1-3 "MUST be 0 unless an extension is negotiated".
    ReservedBits(u8),
    /// §5.2: "If an unknown opcode is received, the receiving endpoint MUST
    /// _Fail the WebSocket Connection_."
    ReservedOpcode(u8),
    /// §5.5: "Control frames themselves MUST NOT be fragmented."
    FragmentedControl,
    /// §5.5: "All control frames MUST have a payload length of 125 bytes or
    /// less."
    ControlTooLong(u64),
    /// §5.2: "the minimal number of bytes MUST be used to encode the length".
    NonMinimalLength,
    /// §5.2: in a 64-bit length "the most significant bit MUST be 0".
    LengthTopBitSet,
    /// §5.4: a continuation frame with no message to continue.
    UnexpectedContinuation,
    /// §5.4: a new text or binary frame while a fragmented message is still
    /// open.
    ExpectedContinuation,
    /// §8.1: text must be valid UTF-8; checked as bytes arrive (§5.6, §8.1).
    InvalidUtf8,
    /// §5.5.1: a close payload of one byte cannot hold a status code.
    CloseTooShort,
    /// §7.4: a close code that must not appear on the wire or is not
    /// defined.
    InvalidCloseCode(u16),
    /// A message larger than the configured limit (§10.4), refused on the
    /// frame header, before the payload arrives.
    MessageTooBig {
        /// `--max-message`, in bytes (16 MiB by default).
        limit: usize,
    },
    /// A message in more fragments than the configured limit.
    TooManyFragments {
        /// `--max-fragments` (65,536 by default).
        limit: u32,
    },
    /// RFC 7692 §6.1: RSV1 marks a compressed message on its *first*
    /// frame only; "An endpoint MUST NOT set the "Per-Message Compressed"
    /// bit of control frames and non-first fragments of a data message."
    CompressedNotFirst(Opcode),
    /// RFC 7692 §7.2.2: the payload does not inflate (not a valid DEFLATE
    /// stream, RFC 1951). The data is not what the message claimed, so
    /// 1007, as for text that is not UTF-8.
    CorruptDeflate,
}

impl ProtocolError {
    /// The close code that tells the peer what it did (RFC 6455 §7.4.1).
    pub fn close_code(self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::CorruptDeflate => CloseCode::INVALID_PAYLOAD,
            ProtocolError::MessageTooBig { .. } => CloseCode::MESSAGE_TOO_BIG,
            ProtocolError::TooManyFragments { .. } => CloseCode::POLICY_VIOLATION,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::UnmaskedFrame => write!(f, "client frame is not masked"),
            ProtocolError::MaskedFrame => write!(f, "server frame is masked"),
            ProtocolError::ReservedBits(bits) => {
                write!(f, "reserved bits set ({bits:#05b}) with no extension")
            }
            ProtocolError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            ProtocolError::FragmentedControl => write!(f, "fragmented control frame"),
            ProtocolError::ControlTooLong(len) => write!(f, "control frame of {len} bytes (limit 125)"),
            ProtocolError::NonMinimalLength => write!(f, "payload length not in its shortest form"),
            ProtocolError::LengthTopBitSet => write!(f, "64-bit payload length with the top bit set"),
            ProtocolError::UnexpectedContinuation => {
                write!(f, "continuation frame without a message to continue")
            }
            ProtocolError::ExpectedContinuation => write!(f, "new data frame inside a fragmented message"),
            ProtocolError::InvalidUtf8 => write!(f, "invalid UTF-8 in text"),
            ProtocolError::CloseTooShort => write!(f, "close frame with a 1-byte payload"),
            ProtocolError::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            ProtocolError::MessageTooBig { limit } => write!(f, "message larger than {limit} bytes"),
            ProtocolError::TooManyFragments { limit } => write!(f, "message in more than {limit} fragments"),
            ProtocolError::CompressedNotFirst(opcode) => {
                write!(f, "RSV1 (compressed) set on a {} frame", opcode.name())
            }
            ProtocolError::CorruptDeflate => write!(f, "compressed payload does not inflate"),
        }
    }
}

impl std::error::Error for ProtocolError {}
