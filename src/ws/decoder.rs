//! From frames to messages: the receiving half of RFC 6455, sans-IO.
//!
//! [`Decoder::decode`] takes whatever bytes the socket gave and returns at
//! most one [`Event`] plus how many bytes it used. Call it again with the
//! rest until it returns no event: by then it has used all the input.
//!
//! Three ideas keep it fast and small:
//!
//! * **In place when possible.** A frame that is entirely in the input is
//!   unmasked where it lies and handed out as a slice of the input: no copy.
//! * **Copy only what must outlive the read.** A header split across reads
//!   waits in a 14-byte array; the payload of a fragmented message, or of a
//!   frame split across reads, is unmasked into the decoder's buffer as it
//!   arrives. Between messages the decoder holds no heap memory at all.
//! * **Refuse early.** Lengths are checked against the limits on the header,
//!   before a byte of payload arrives, and text is checked for UTF-8 as it
//!   arrives, so a bad message fails at its first bad byte (§8.1).
//!
//! RFC 6455 §5.7's masked "Hello", as a server receives it, then the same
//! message sent unmasked, which a server must refuse (§5.1):
//!
//! ```rust
//! use duplex::ws::decoder::MessageKind;
//! use duplex::ws::{CloseCode, Decoder, Event, Limits, ProtocolError, Role};
//!
//! let mut server = Decoder::new(Role::Server, Limits::default());
//! let mut wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
//! let (used, event) = server.decode(&mut wire).unwrap();
//! assert_eq!(used, 11);
//! assert_eq!(event, Some(Event::Message(MessageKind::Text, &b"Hello"[..])));
//!
//! let mut unmasked = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
//! let error = Decoder::new(Role::Server, Limits::default())
//!     .decode(&mut unmasked)
//!     .unwrap_err();
//! assert_eq!(error, ProtocolError::UnmaskedFrame);
//! assert_eq!(error.close_code(), CloseCode::PROTOCOL_ERROR); // 1002
//! ```
//!
//! On the client's side the same message comes unmasked, and §5.7's
//! fragmented "Hello" comes out as one message. Bytes arrive as the
//! network delivers them, here split in the middle of the second frame's
//! header: the decoder keeps what it cannot use yet.
//!
//! ```rust
//! use duplex::ws::decoder::MessageKind;
//! use duplex::ws::{Decoder, Event, Limits, Role};
//!
//! let mut client = Decoder::new(Role::Client, Limits::default());
//! let mut wire = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
//! let (_, event) = client.decode(&mut wire).unwrap();
//! assert_eq!(event, Some(Event::Message(MessageKind::Text, &b"Hello"[..])));
//!
//! // "Hel" (FIN clear), then "lo" as a continuation (FIN set).
//! let mut first = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80];
//! let mut second = [0x02, 0x6c, 0x6f];
//! assert_eq!(client.decode(&mut first).unwrap(), (6, None));
//! let (used, event) = client.decode(&mut second).unwrap();
//! assert_eq!(used, 3);
//! assert_eq!(event, Some(Event::Message(MessageKind::Text, &b"Hello"[..])));
//! ```

use super::close::{parse_close_payload, CloseFrame};
use super::frame::{apply_mask, FrameHeader, Opcode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use super::utf8::Utf8Validator;
use super::ProtocolError;

/// Which end of the connection this decoder sits on; it decides which way
/// masking must go (RFC 6455 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Receives client frames: each must be masked.
    Server,
    /// Receives server frames: none may be masked.
    Client,
}

/// Bounds on what a peer may make us buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message after reassembly, in bytes (close 1009 beyond).
    pub max_message: usize,
    /// Most continuation frames after a message's first frame (close 1008
    /// beyond). Each frame costs a header parse even when empty, so a flood
    /// of empty continuation frames must end somewhere. Counting only the
    /// continuations lets a limit of 65,536 admit a 4 MiB message cut into
    /// 64-byte fragments, as Autobahn's case 9.3.1 sends it (65,536 full
    /// fragments and an empty final one).
    pub max_fragments: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_message: 16 << 20,
            max_fragments: 65_536,
        }
    }
}

/// The two kinds of data message (RFC 6455 §5.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// Valid UTF-8, guaranteed by the decoder.
    Text,
    /// Any bytes; their meaning is the application's business.
    Binary,
}

impl MessageKind {
    /// The opcode that starts a message of this kind.
    pub fn opcode(self) -> Opcode {
        match self {
            MessageKind::Text => Opcode::Text,
            MessageKind::Binary => Opcode::Binary,
        }
    }
}

/// What a peer said, one complete unit at a time.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A whole data message, reassembled from its fragments. A `Text`
    /// payload is valid UTF-8.
    Message(MessageKind, &'a [u8]),
    /// Must be answered with a pong carrying the same payload (§5.5.2).
    Ping(&'a [u8]),
    /// An answer to our ping, or an unsolicited heartbeat (§5.5.3).
    Pong(&'a [u8]),
    /// The peer started or answered the close handshake (§5.5.1). `None`
    /// when the frame carried no status code.
    Close(Option<CloseFrame<'a>>),
}

/// The frame whose payload is arriving.
#[derive(Clone, Copy, Debug)]
struct InFrame {
    header: FrameHeader,
    /// Payload bytes still to come.
    remaining: u64,
    /// Payload bytes already seen: where the mask key stands.
    received: u64,
}

/// Where the payload of a finished event lies, worked out before the event
/// borrows it.
enum Ready {
    MessageInInput(MessageKind, usize, usize),
    MessageInBuffer(MessageKind),
    ControlInInput(Opcode, usize, usize),
    ControlInBuffer(Opcode),
}

/// The receiving state of one WebSocket connection.
#[derive(Debug)]
pub struct Decoder {
    role: Role,
    limits: Limits,
    /// A header split across reads.
    head: [u8; MAX_HEADER_LEN],
    head_len: u8,
    /// The frame being received, once its header is complete.
    frame: Option<InFrame>,
    /// The data message in progress and how many continuation frames it
    /// has had.
    message: Option<(MessageKind, u32)>,
    /// Its payload so far, unmasked, when it could not stay in the input.
    buffer: Vec<u8>,
    utf8: Utf8Validator,
    /// A control frame's payload split across reads (at most 125 bytes).
    control: Vec<u8>,
    /// What the last event lent out, to be emptied on the next call.
    lent: Lent,
}

/// Which of the decoder's buffers the last event borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lent {
    Nothing,
    /// A reassembled message.
    Buffer,
    /// A control frame's payload. The message buffer is untouched: a ping
    /// may arrive between two fragments (§5.4).
    Control,
}

impl Decoder {
    /// A decoder for one connection: `role` says which side must mask
    /// (§5.1), `limits` what the peer may make it buffer.
    pub fn new(role: Role, limits: Limits) -> Decoder {
        Decoder {
            role,
            limits,
            head: [0; MAX_HEADER_LEN],
            head_len: 0,
            frame: None,
            message: None,
            buffer: Vec::new(),
            utf8: Utf8Validator::new(),
            control: Vec::new(),
            lent: Lent::Nothing,
        }
    }

    /// Bytes held for a message or frame not yet complete.
    pub fn buffered(&self) -> usize {
        self.buffer.len() + self.control.len() + usize::from(self.head_len)
    }

    /// The message the last event lent out of the decoder's own buffer (a
    /// fragmented message, or one that arrived over several reads), until
    /// the next call to [`Decoder::decode`]; empty otherwise. Lets a caller
    /// that has let go of the event still write the payload where it lies.
    pub fn lent_message(&self) -> &[u8] {
        match self.lent {
            Lent::Buffer => &self.buffer,
            Lent::Nothing | Lent::Control => &[],
        }
    }

    /// Decodes from `input`, unmasking it in place.
    ///
    /// Returns how many bytes were used and the next event, if one is
    /// complete. `(input.len(), None)` means "all used, send more".
    pub fn decode<'a>(
        &'a mut self,
        input: &'a mut [u8],
    ) -> Result<(usize, Option<Event<'a>>), ProtocolError> {
        // Free the memory rather than keep it: an idle connection should
        // cost no buffer.
        match std::mem::replace(&mut self.lent, Lent::Nothing) {
            Lent::Nothing => {}
            Lent::Buffer => self.buffer = Vec::new(),
            Lent::Control => self.control = Vec::new(),
        }
        let mut pos = 0;
        let ready = loop {
            if self.frame.is_none() {
                match self.read_header(&input[pos..])? {
                    Some(used) => pos += used,
                    None => return Ok((input.len(), None)),
                }
            }
            let Some(frame) = self.frame.as_mut() else {
                continue;
            };
            let available = (input.len() - pos) as u64;
            let opcode = frame.header.opcode;
            let key = frame.header.mask;

            if opcode.is_control() {
                if self.control.is_empty() && available >= frame.remaining {
                    // The whole control frame is here: unmask it in place.
                    let end = pos + frame.remaining as usize;
                    if let Some(key) = key {
                        apply_mask(&mut input[pos..end], key, 0);
                    }
                    self.frame = None;
                    let ready = Ready::ControlInInput(opcode, pos, end);
                    pos = end;
                    break ready;
                }
                let take = available.min(frame.remaining) as usize;
                let start = self.control.len();
                self.control.extend_from_slice(&input[pos..pos + take]);
                if let Some(key) = key {
                    apply_mask(&mut self.control[start..], key, start);
                }
                pos += take;
                frame.remaining -= take as u64;
                if frame.remaining > 0 {
                    return Ok((pos, None));
                }
                self.frame = None;
                break Ready::ControlInBuffer(opcode);
            }

            let Some((kind, _)) = self.message else {
                // begin_frame opened the message; unreachable otherwise.
                return Err(ProtocolError::UnexpectedContinuation);
            };
            let fin = frame.header.fin;
            if fin && self.buffer.is_empty() && frame.received == 0 && available >= frame.remaining {
                // The common case: a whole, unfragmented message in one
                // read. Unmask and check it where it lies.
                let end = pos + frame.remaining as usize;
                let payload = &mut input[pos..end];
                if let Some(key) = key {
                    apply_mask(payload, key, 0);
                }
                if kind == MessageKind::Text {
                    self.utf8.feed(payload).map_err(|_| ProtocolError::InvalidUtf8)?;
                    self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
                }
                self.frame = None;
                self.message = None;
                let ready = Ready::MessageInInput(kind, pos, end);
                pos = end;
                break ready;
            }

            // Part of a message that must outlive this read: copy what is
            // here into the buffer, unmask and check just that part.
            let take = available.min(frame.remaining) as usize;
            let start = self.buffer.len();
            self.buffer.extend_from_slice(&input[pos..pos + take]);
            let piece = &mut self.buffer[start..];
            if let Some(key) = key {
                apply_mask(piece, key, frame.received as usize);
            }
            if kind == MessageKind::Text {
                // RFC 6455 §8.1 and Autobahn's "fail fast": invalid
                // UTF-8 is refused on the read that brings it.
                self.utf8.feed(piece).map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            pos += take;
            frame.received += take as u64;
            frame.remaining -= take as u64;
            if frame.remaining > 0 {
                return Ok((pos, None));
            }
            self.frame = None;
            if fin {
                if kind == MessageKind::Text {
                    self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
                }
                self.message = None;
                break Ready::MessageInBuffer(kind);
            }
            // A fragment ended; the message goes on in the next frame.
        };

        let event = match ready {
            Ready::MessageInInput(kind, start, end) => Event::Message(kind, &input[start..end]),
            Ready::MessageInBuffer(kind) => {
                self.lent = Lent::Buffer;
                Event::Message(kind, &self.buffer)
            }
            Ready::ControlInInput(opcode, start, end) => control_event(opcode, &input[start..end])?,
            Ready::ControlInBuffer(opcode) => {
                self.lent = Lent::Control;
                control_event(opcode, &self.control)?
            }
        };
        Ok((pos, Some(event)))
    }

    /// Completes a frame header from `input` (and any earlier piece).
    /// Returns how many bytes of `input` it used, or `None` when the header
    /// is still incomplete and all of `input` was kept.
    fn read_header(&mut self, input: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let (header, used) = if self.head_len == 0 {
            match FrameHeader::parse(input)? {
                Some(parsed) => parsed,
                None => {
                    // Shorter than 14 bytes, or it would have parsed.
                    self.head[..input.len()].copy_from_slice(input);
                    self.head_len = input.len() as u8;
                    return Ok(None);
                }
            }
        } else {
            let have = usize::from(self.head_len);
            let take = (MAX_HEADER_LEN - have).min(input.len());
            self.head[have..have + take].copy_from_slice(&input[..take]);
            match FrameHeader::parse(&self.head[..have + take])? {
                Some((header, len)) => {
                    self.head_len = 0;
                    (header, len - have)
                }
                None => {
                    self.head_len = (have + take) as u8;
                    return Ok(None);
                }
            }
        };
        self.begin_frame(header)?;
        Ok(Some(used))
    }

    /// Checks a new frame's header against the protocol and the limits,
    /// before any of its payload is read.
    fn begin_frame(&mut self, header: FrameHeader) -> Result<(), ProtocolError> {
        log::trace!(
            "frame in: fin={} opcode={} masked={} len={}",
            u8::from(header.fin),
            header.opcode.name(),
            u8::from(header.mask.is_some()),
            header.payload_len
        );
        // §5.2: "MUST be 0 unless an extension is negotiated".
        if header.rsv != 0 {
            return Err(ProtocolError::ReservedBits(header.rsv));
        }
        match (self.role, header.mask.is_some()) {
            // §5.1: a server MUST close on an unmasked client frame...
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            // ...and a client on a masked server frame.
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        let len = header.payload_len;
        match header.opcode {
            Opcode::Reserved(bits) => return Err(ProtocolError::ReservedOpcode(bits)),
            opcode if opcode.is_control() => {
                // §5.5: control frames are never fragmented and carry at
                // most 125 bytes; they may come between fragments (§5.4).
                if !header.fin {
                    return Err(ProtocolError::FragmentedControl);
                }
                if len > MAX_CONTROL_PAYLOAD as u64 {
                    return Err(ProtocolError::ControlTooLong(len));
                }
            }
            Opcode::Continuation => {
                let Some((_, fragments)) = self.message.as_mut() else {
                    return Err(ProtocolError::UnexpectedContinuation);
                };
                *fragments += 1;
                if *fragments > self.limits.max_fragments {
                    return Err(ProtocolError::TooManyFragments {
                        limit: self.limits.max_fragments,
                    });
                }
            }
            opcode => {
                if self.message.is_some() {
                    return Err(ProtocolError::ExpectedContinuation);
                }
                let kind = if opcode == Opcode::Text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                self.message = Some((kind, 0));
            }
        }
        if !header.opcode.is_control() {
            // Refuse on the header: never wait for (or allocate) a payload
            // that could not be accepted anyway.
            let total = self.buffer.len() as u64 + len;
            if total > self.limits.max_message as u64 {
                return Err(ProtocolError::MessageTooBig {
                    limit: self.limits.max_message,
                });
            }
        }
        self.frame = Some(InFrame {
            header,
            remaining: len,
            received: 0,
        });
        Ok(())
    }
}

fn control_event(opcode: Opcode, payload: &[u8]) -> Result<Event<'_>, ProtocolError> {
    Ok(match opcode {
        Opcode::Ping => Event::Ping(payload),
        Opcode::Pong => Event::Pong(payload),
        _ => Event::Close(parse_close_payload(payload)?),
    })
}

#[cfg(test)]
mod tests {
    use super::super::close::close_payload;
    use super::super::frame::encode_frame;
    use super::super::CloseCode;
    use super::*;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// Owned copies of events, for comparing.
    #[derive(Debug, PartialEq, Eq)]
    enum Owned {
        Message(MessageKind, Vec<u8>),
        Ping(Vec<u8>),
        Pong(Vec<u8>),
        Close(Option<(u16, String)>),
    }

    fn own(event: Event<'_>) -> Owned {
        match event {
            Event::Message(kind, p) => Owned::Message(kind, p.to_vec()),
            Event::Ping(p) => Owned::Ping(p.to_vec()),
            Event::Pong(p) => Owned::Pong(p.to_vec()),
            Event::Close(c) => Owned::Close(c.map(|c| (c.code.0, c.reason.to_string()))),
        }
    }

    /// Feeds `bytes` in pieces of `step` and collects the events.
    fn decode_all(decoder: &mut Decoder, bytes: &[u8], step: usize) -> Result<Vec<Owned>, ProtocolError> {
        let mut out = Vec::new();
        for piece in bytes.chunks(step.max(1)) {
            let mut piece = piece.to_vec();
            let mut pos = 0;
            loop {
                let (used, event) = decoder.decode(&mut piece[pos..])?;
                pos += used;
                match event {
                    Some(event) => out.push(own(event)),
                    None => break,
                }
            }
            assert_eq!(pos, piece.len());
        }
        Ok(out)
    }

    fn server() -> Decoder {
        Decoder::new(Role::Server, Limits::default())
    }

    fn masked(fin: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(&mut out, fin, opcode, payload, Some(KEY));
        out
    }

    #[test]
    fn rfc_masked_hello_in_every_split() {
        let bytes = masked(true, Opcode::Text, b"Hello");
        for step in 1..=bytes.len() {
            let events = decode_all(&mut server(), &bytes, step).unwrap();
            assert_eq!(
                events,
                [Owned::Message(MessageKind::Text, b"Hello".to_vec())],
                "step {step}"
            );
        }
    }

    #[test]
    fn fragments_with_a_ping_between() {
        let mut bytes = masked(false, Opcode::Text, b"Hel");
        bytes.extend(masked(true, Opcode::Ping, b"beat"));
        bytes.extend(masked(true, Opcode::Continuation, b"lo"));
        for step in [1, 2, 5, 100] {
            let events = decode_all(&mut server(), &bytes, step).unwrap();
            assert_eq!(
                events,
                [
                    Owned::Ping(b"beat".to_vec()),
                    Owned::Message(MessageKind::Text, b"Hello".to_vec())
                ]
            );
        }
    }

    #[test]
    fn several_frames_in_one_read_come_out_one_by_one() {
        let mut bytes = masked(true, Opcode::Binary, &[1, 2, 3]);
        bytes.extend(masked(true, Opcode::Text, b"two"));
        bytes.extend(masked(
            true,
            Opcode::Close,
            &close_payload(CloseCode::NORMAL, "bye"),
        ));
        let events = decode_all(&mut server(), &bytes, bytes.len()).unwrap();
        assert_eq!(
            events,
            [
                Owned::Message(MessageKind::Binary, vec![1, 2, 3]),
                Owned::Message(MessageKind::Text, b"two".to_vec()),
                Owned::Close(Some((1000, "bye".into()))),
            ]
        );
    }

    #[test]
    fn protocol_violations() {
        let cases: Vec<(Vec<u8>, ProtocolError)> = vec![
            (vec![0x81, 0x00], ProtocolError::UnmaskedFrame),
            (vec![0xC1, 0x80, 0, 0, 0, 0], ProtocolError::ReservedBits(4)),
            (vec![0x83, 0x80, 0, 0, 0, 0], ProtocolError::ReservedOpcode(3)),
            (vec![0x8B, 0x80, 0, 0, 0, 0], ProtocolError::ReservedOpcode(0xB)),
            (vec![0x09, 0x80, 0, 0, 0, 0], ProtocolError::FragmentedControl),
            (
                vec![0x89, 0xFE, 0x00, 0x7E, 0, 0, 0, 0],
                ProtocolError::ControlTooLong(126),
            ),
            (
                vec![0x80, 0x80, 0, 0, 0, 0],
                ProtocolError::UnexpectedContinuation,
            ),
            (masked(true, Opcode::Close, &[0x03]), ProtocolError::CloseTooShort),
            (
                masked(true, Opcode::Close, &[0x03, 0xED]),
                ProtocolError::InvalidCloseCode(1005),
            ),
            (
                masked(true, Opcode::Close, &[0x03, 0xE8, 0xC0]),
                ProtocolError::InvalidUtf8,
            ),
            (
                masked(true, Opcode::Text, &[0xCE, 0xBA, 0xED, 0xA0, 0x80]),
                ProtocolError::InvalidUtf8,
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                decode_all(&mut server(), &bytes, bytes.len()),
                Err(expected),
                "{bytes:x?}"
            );
        }
        let mut bytes = masked(false, Opcode::Text, b"a");
        bytes.extend(masked(true, Opcode::Binary, b"b"));
        assert_eq!(
            decode_all(&mut server(), &bytes, 100),
            Err(ProtocolError::ExpectedContinuation)
        );
    }

    #[test]
    fn invalid_utf8_fails_before_the_frame_ends() {
        let mut bytes = masked(
            true,
            Opcode::Text,
            &[b'a', b'b', 0xED, 0xA0, 0x80, b'c', b'd', b'e'],
        );
        let mut decoder = server();
        // Header plus "ab" and the first two bytes of a surrogate: caught now.
        let cut = 2 + 4 + 4;
        assert_eq!(decoder.decode(&mut bytes[..cut]), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn limits_are_enforced_on_the_header() {
        let limits = Limits {
            max_message: 10,
            max_fragments: 3,
        };
        // 2^62 bytes announced: refused with only the header in hand.
        let mut huge = vec![0x82, 0xFF, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        let mut d = Decoder::new(Role::Server, limits);
        assert_eq!(
            d.decode(&mut huge),
            Err(ProtocolError::MessageTooBig { limit: 10 })
        );
        // 11 bytes over three fragments.
        let mut bytes = masked(false, Opcode::Binary, &[0; 5]);
        bytes.extend(masked(false, Opcode::Continuation, &[0; 5]));
        bytes.extend(masked(true, Opcode::Continuation, &[0; 1]));
        let mut d = Decoder::new(Role::Server, limits);
        assert_eq!(
            decode_all(&mut d, &bytes, 1000),
            Err(ProtocolError::MessageTooBig { limit: 10 })
        );
        // Empty fragments beyond the count.
        let mut bytes = masked(false, Opcode::Binary, &[]);
        for _ in 0..4 {
            bytes.extend(masked(false, Opcode::Continuation, &[]));
        }
        let mut d = Decoder::new(Role::Server, limits);
        assert_eq!(
            decode_all(&mut d, &bytes, 1000),
            Err(ProtocolError::TooManyFragments { limit: 3 })
        );
    }

    #[test]
    fn client_role_rejects_masked_frames_and_reads_plain_ones() {
        let mut d = Decoder::new(Role::Client, Limits::default());
        assert_eq!(
            decode_all(&mut d, &[0x81, 0x05, b'H', b'e', b'l', b'l', b'o'], 3).unwrap(),
            [Owned::Message(MessageKind::Text, b"Hello".to_vec())]
        );
        let mut d = Decoder::new(Role::Client, Limits::default());
        assert_eq!(
            decode_all(&mut d, &masked(true, Opcode::Text, b"x"), 10),
            Err(ProtocolError::MaskedFrame)
        );
    }

    #[test]
    fn holds_no_buffer_between_messages() {
        let mut d = server();
        let bytes = masked(true, Opcode::Binary, &[7; 300]);
        decode_all(&mut d, &bytes, 50).unwrap();
        let mut empty = [];
        assert_eq!(d.decode(&mut empty).unwrap(), (0, None));
        assert_eq!(d.buffered(), 0);
        assert_eq!(d.buffer.capacity(), 0);
    }
}
