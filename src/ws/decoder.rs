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
//! * **Copy only what must outlive the read.** A header split across reads,
//!   the payload of a fragmented message, or of a frame split across reads,
//!   goes into one box that the decoder allocates when that first happens;
//!   a frame's payload is unmasked into it as it arrives, into room reserved
//!   once from the length its header announced. Between messages the box
//!   is gone: an idle decoder is four words and holds no heap memory.
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
use super::frame::{
    apply_mask, apply_mask_ascii, FrameHeader, Opcode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, RSV1,
};
use super::utf8::Utf8Validator;
use super::ProtocolError;

/// Most bytes reserved for a frame's payload on the word of its header
/// alone. Up to this, a frame that spans reads is given its whole length
/// at once and never regrown (a 64 KiB message cut in two costs one
/// allocation and one copy). Beyond it the buffer grows as bytes actually
/// arrive: a peer that announces 16 MiB and sends one byte must not make
/// us hold 16 MiB.
const RESERVE_AHEAD: usize = 1 << 20;

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
    /// A whole data message whose first frame had RSV1 set: its payload is
    /// still deflated (RFC 7692 §6), to be inflated by the caller with
    /// [`super::deflate::Inflater`]. Only from a decoder told that the
    /// extension is on ([`Decoder::set_compression`]). A `Text` payload is
    /// not checked for UTF-8 here: the inflated text must be.
    Compressed(MessageKind, &'a [u8]),
}

/// The frame whose payload is arriving over several reads.
#[derive(Clone, Copy, Debug)]
struct InFrame {
    header: FrameHeader,
    /// Payload bytes still to come.
    remaining: u64,
    /// Payload bytes already seen: where the mask key stands.
    received: u64,
}

/// The data message whose frames are arriving.
#[derive(Clone, Copy, Debug)]
struct InMessage {
    kind: MessageKind,
    /// RSV1 was set on its first frame (RFC 7692 §6).
    compressed: bool,
    /// Continuation frames so far (see [`Limits::max_fragments`]).
    continuations: u32,
    /// Where a text message's UTF-8 stands, a character possibly cut
    /// between two fragments (§5.6).
    utf8: Utf8Validator,
}

/// Where the payload of a finished event lies, worked out before the event
/// borrows it.
enum Ready {
    MessageInInput(MessageKind, bool, usize, usize),
    MessageInBuffer(MessageKind, bool),
    ControlInInput(Opcode, usize, usize),
    ControlInBuffer(Opcode),
}

/// The receiving state of one WebSocket connection.
///
/// Idle, between messages, it is four words: the role, the limits, and
/// what the last event lent. Everything about a frame or message that must
/// outlive a read sits in one box ([`Partial`]), allocated when that first
/// happens and freed once the decoder is idle again. A frame that arrives
/// whole in one read, the common case, allocates nothing.
#[derive(Debug)]
pub struct Decoder {
    role: Role,
    /// What the last event lent out, to be let go on the next call.
    lent: Lent,
    /// permessage-deflate is on: RSV1 marks a compressed message (RFC
    /// 7692 §6). One byte, in what was padding.
    compression: bool,
    /// The limits, kept flat rather than as a [`Limits`]: the two one-byte
    /// fields above then fill its padding, 24 bytes in all instead of 32.
    max_fragments: u32,
    max_message: usize,
    partial: Option<Box<Partial>>,
}

/// A header, frame or message cut by the end of a read.
#[derive(Debug)]
struct Partial {
    /// A header split across reads.
    head: [u8; MAX_HEADER_LEN],
    head_len: u8,
    /// The frame being received, once its header is complete.
    frame: Option<InFrame>,
    /// The data message in progress.
    message: Option<InMessage>,
    /// Its payload so far, unmasked; once complete, lent out until the
    /// next call.
    buffer: Vec<u8>,
    /// A control frame's payload split across reads (§5.5: at most 125
    /// bytes, so it lives in the box itself).
    control: [u8; MAX_CONTROL_PAYLOAD],
    control_len: u8,
}

impl Partial {
    fn new() -> Partial {
        Partial {
            head: [0; MAX_HEADER_LEN],
            head_len: 0,
            frame: None,
            message: None,
            buffer: Vec::new(),
            control: [0; MAX_CONTROL_PAYLOAD],
            control_len: 0,
        }
    }

    /// Something is still arriving: a header, a frame or a message.
    fn in_progress(&self) -> bool {
        self.head_len > 0 || self.frame.is_some() || self.message.is_some()
    }

    /// Takes the next piece of the frame in progress from the front of
    /// `input`: unmasks it into the buffer it will be kept in and checks
    /// it. Returns how many bytes it used, and where the event lies if the
    /// piece completed one.
    fn receive(&mut self, input: &[u8], mut frame: InFrame) -> Result<(usize, Option<Ready>), ProtocolError> {
        let take = (input.len() as u64).min(frame.remaining) as usize;
        let opcode = frame.header.opcode;
        let key = frame.header.mask;
        if opcode.is_control() {
            let start = usize::from(self.control_len);
            let piece = &mut self.control[start..start + take];
            piece.copy_from_slice(&input[..take]);
            if let Some(key) = key {
                apply_mask(piece, key, start);
            }
            self.control_len += take as u8;
        } else {
            let Some(message) = self.message.as_mut() else {
                // begin_frame opened the message; unreachable otherwise.
                return Err(ProtocolError::UnexpectedContinuation);
            };
            if frame.received == 0 {
                // The header's length was checked against the message
                // limit, so this is bounded; see RESERVE_AHEAD.
                let announced = usize::try_from(frame.remaining).unwrap_or(usize::MAX);
                self.buffer.reserve(announced.min(RESERVE_AHEAD));
            }
            let start = self.buffer.len();
            self.buffer.extend_from_slice(&input[..take]);
            let piece = &mut self.buffer[start..];
            // RFC 6455 §8.1 and Autobahn's "fail fast": invalid UTF-8 is
            // refused on the read that brings it. (Compressed text is
            // checked once inflated.)
            if message.kind == MessageKind::Text && !message.compressed {
                unmask_text(piece, key, frame.received as usize, &mut message.utf8)?;
            } else if let Some(key) = key {
                apply_mask(piece, key, frame.received as usize);
            }
        }
        frame.received += take as u64;
        frame.remaining -= take as u64;
        if frame.remaining > 0 {
            self.frame = Some(frame);
            return Ok((take, None));
        }
        self.frame = None;
        if opcode.is_control() {
            return Ok((take, Some(Ready::ControlInBuffer(opcode))));
        }
        if !frame.header.fin {
            // A fragment ended; the message goes on in the next frame.
            return Ok((take, None));
        }
        let Some(mut message) = self.message.take() else {
            return Err(ProtocolError::UnexpectedContinuation);
        };
        if message.kind == MessageKind::Text && !message.compressed {
            message.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok((
            take,
            Some(Ready::MessageInBuffer(message.kind, message.compressed)),
        ))
    }
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
            lent: Lent::Nothing,
            compression: false,
            max_fragments: limits.max_fragments,
            max_message: limits.max_message,
            partial: None,
        }
    }

    /// permessage-deflate was agreed in the handshake (RFC 7692): from now
    /// on RSV1 on a message's first frame means "compressed", and the
    /// message comes out as [`Event::Compressed`].
    pub fn set_compression(&mut self, on: bool) {
        self.compression = on;
    }

    /// Bytes held for a message or frame not yet complete (and, until the
    /// next call, for the one the last event lent out).
    pub fn buffered(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| {
            p.buffer.len() + usize::from(p.control_len) + usize::from(p.head_len)
        })
    }

    /// Heap memory the decoder holds, in bytes: zero when it is idle, which
    /// is how an idle connection should be.
    pub fn heap_size(&self) -> usize {
        self.partial
            .as_ref()
            .map_or(0, |p| std::mem::size_of::<Partial>() + p.buffer.capacity())
    }

    /// The message the last event lent out of the decoder's own buffer (a
    /// fragmented message, or one that arrived over several reads), until
    /// the next call to [`Decoder::decode`]; empty otherwise. Lets a caller
    /// that has let go of the event still write the payload where it lies.
    pub fn lent_message(&self) -> &[u8] {
        match (self.lent, &self.partial) {
            (Lent::Buffer, Some(partial)) => &partial.buffer,
            _ => &[],
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
        self.let_go();
        let mut pos = 0;
        let ready = loop {
            // A frame whose payload an earlier read cut short.
            if let Some(partial) = self.partial.as_deref_mut() {
                if let Some(frame) = partial.frame {
                    let (used, ready) = partial.receive(&input[pos..], frame)?;
                    pos += used;
                    match ready {
                        Some(ready) => break ready,
                        None if pos == input.len() => return Ok((pos, None)),
                        None => continue,
                    }
                }
            }
            let Some(header) = self.read_header(input, &mut pos)? else {
                return Ok((input.len(), None));
            };
            let begun = self.begin_frame(&header)?;
            let kind = begun.map(|(kind, _)| kind);
            let compressed = begun.is_some_and(|(_, compressed)| compressed);
            let end = (input.len() - pos) as u64 >= header.payload_len;
            let end = end.then(|| pos + header.payload_len as usize);
            match (kind, end) {
                // The whole control frame is here: unmask it in place.
                (None, Some(end)) => {
                    if let Some(key) = header.mask {
                        apply_mask(&mut input[pos..end], key, 0);
                    }
                    let ready = Ready::ControlInInput(header.opcode, pos, end);
                    pos = end;
                    break ready;
                }
                // The common case: a whole, unfragmented message in one
                // read. Unmask and check it where it lies.
                (Some(kind), Some(end)) if header.fin && header.opcode != Opcode::Continuation => {
                    let payload = &mut input[pos..end];
                    if kind == MessageKind::Text && !compressed {
                        let mut utf8 = Utf8Validator::new();
                        unmask_text(payload, header.mask, 0, &mut utf8)?;
                        utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
                    } else if let Some(key) = header.mask {
                        apply_mask(payload, key, 0);
                    }
                    let ready = Ready::MessageInInput(kind, compressed, pos, end);
                    pos = end;
                    break ready;
                }
                // Part of a message that must outlive this read: from here
                // on its payload is copied into the decoder's buffer.
                _ => {
                    let partial = self.partial.get_or_insert_with(|| Box::new(Partial::new()));
                    if let (Some(kind), None) = (kind, &partial.message) {
                        partial.message = Some(InMessage {
                            kind,
                            compressed,
                            continuations: 0,
                            utf8: Utf8Validator::new(),
                        });
                    }
                    partial.frame = Some(InFrame {
                        header,
                        remaining: header.payload_len,
                        received: 0,
                    });
                }
            }
        };

        let event = match ready {
            Ready::MessageInInput(kind, compressed, start, end) => {
                self.settle();
                message_event(kind, compressed, &input[start..end])
            }
            Ready::ControlInInput(opcode, start, end) => {
                self.settle();
                control_event(opcode, &input[start..end])?
            }
            Ready::MessageInBuffer(kind, compressed) => {
                self.lent = Lent::Buffer;
                message_event(kind, compressed, self.lent_message())
            }
            Ready::ControlInBuffer(opcode) => {
                self.lent = Lent::Control;
                let payload = self
                    .partial
                    .as_ref()
                    .map_or(&[][..], |p| &p.control[..usize::from(p.control_len)]);
                control_event(opcode, payload)?
            }
        };
        Ok((pos, Some(event)))
    }

    /// Lets go of what the last event lent out, and of the box if nothing
    /// else is in it: an idle connection should cost no heap memory.
    fn let_go(&mut self) {
        if let Some(partial) = self.partial.as_deref_mut() {
            match std::mem::replace(&mut self.lent, Lent::Nothing) {
                Lent::Nothing => {}
                Lent::Buffer => partial.buffer = Vec::new(),
                Lent::Control => partial.control_len = 0,
            }
        }
        self.settle();
    }

    /// Frees the box once nothing is in progress or lent out.
    fn settle(&mut self) {
        if self.lent == Lent::Nothing && self.partial.as_ref().is_some_and(|p| !p.in_progress()) {
            self.partial = None;
        }
    }

    /// Reads a frame header from `input` at `pos` (completing any piece an
    /// earlier read left), and moves `pos` past it. `None` when the header
    /// is still incomplete and all of `input` was kept.
    fn read_header(&mut self, input: &[u8], pos: &mut usize) -> Result<Option<FrameHeader>, ProtocolError> {
        let rest = &input[*pos..];
        let split = self.partial.as_ref().is_some_and(|p| p.head_len > 0);
        if !split {
            if let Some((header, used)) = FrameHeader::parse(rest)? {
                *pos += used;
                return Ok(Some(header));
            }
            if rest.is_empty() {
                return Ok(None);
            }
        }
        // A header cut by the end of a read: kept in the box (at most 13
        // bytes, or it would have parsed) until the rest arrives.
        let partial = self.partial.get_or_insert_with(|| Box::new(Partial::new()));
        let have = usize::from(partial.head_len);
        let take = (MAX_HEADER_LEN - have).min(rest.len());
        partial.head[have..have + take].copy_from_slice(&rest[..take]);
        match FrameHeader::parse(&partial.head[..have + take])? {
            Some((header, len)) => {
                partial.head_len = 0;
                *pos += len - have;
                Ok(Some(header))
            }
            None => {
                partial.head_len = (have + take) as u8;
                Ok(None)
            }
        }
    }

    /// Checks a new frame's header against the protocol and the limits,
    /// before any of its payload is read. Returns the kind of message a
    /// data frame belongs to, and whether it is compressed; `None` for a
    /// control frame.
    fn begin_frame(&mut self, header: &FrameHeader) -> Result<Option<(MessageKind, bool)>, ProtocolError> {
        log::trace!(
            "frame in: fin={} rsv1={} opcode={} masked={} len={}",
            u8::from(header.fin),
            u8::from(header.rsv & RSV1 != 0),
            header.opcode.name(),
            u8::from(header.mask.is_some()),
            header.payload_len
        );
        // §5.2: "MUST be 0 unless an extension is negotiated". RSV1 is
        // permessage-deflate's, when it was (RFC 7692 §6).
        let rsv1 = header.rsv == RSV1 && self.compression;
        if header.rsv != 0 && !rsv1 {
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
        let partial = self.partial.as_deref_mut();
        let (message, buffered) = match partial {
            Some(p) => (p.message.as_mut(), p.buffer.len() as u64),
            None => (None, 0),
        };
        let kind = match header.opcode {
            Opcode::Reserved(bits) => return Err(ProtocolError::ReservedOpcode(bits)),
            opcode if opcode.is_control() => {
                // §5.5: control frames are never fragmented and carry at
                // most 125 bytes; they may come between fragments (§5.4).
                if !header.fin {
                    return Err(ProtocolError::FragmentedControl);
                }
                // RFC 7692 §6.1: control frames are never compressed.
                if rsv1 {
                    return Err(ProtocolError::CompressedNotFirst(opcode));
                }
                if len > MAX_CONTROL_PAYLOAD as u64 {
                    return Err(ProtocolError::ControlTooLong(len));
                }
                return Ok(None);
            }
            Opcode::Continuation => {
                let Some(message) = message else {
                    return Err(ProtocolError::UnexpectedContinuation);
                };
                // RFC 7692 §6.1: RSV1 only on a message's first frame.
                if rsv1 {
                    return Err(ProtocolError::CompressedNotFirst(Opcode::Continuation));
                }
                message.continuations += 1;
                if message.continuations > self.max_fragments {
                    return Err(ProtocolError::TooManyFragments {
                        limit: self.max_fragments,
                    });
                }
                (message.kind, message.compressed)
            }
            opcode => {
                if message.is_some() {
                    return Err(ProtocolError::ExpectedContinuation);
                }
                if opcode == Opcode::Text {
                    (MessageKind::Text, rsv1)
                } else {
                    (MessageKind::Binary, rsv1)
                }
            }
        };
        // Refuse on the header: never wait for (or allocate) a payload
        // that could not be accepted anyway.
        if buffered + len > self.max_message as u64 {
            return Err(ProtocolError::MessageTooBig {
                limit: self.max_message,
            });
        }
        Ok(Some(kind))
    }
}

/// Unmasks a piece of a text message (`offset` bytes into its frame) and
/// checks its UTF-8 (§8.1). ASCII is UTF-8 by itself, and the unmasking
/// pass notices whether every byte is ASCII for free, so most text is
/// looked at once, not twice. The validator still sees an ASCII piece when
/// an earlier one ended in the middle of a character.
fn unmask_text(
    piece: &mut [u8],
    key: Option<[u8; 4]>,
    offset: usize,
    utf8: &mut Utf8Validator,
) -> Result<(), ProtocolError> {
    let ascii = match key {
        Some(key) => apply_mask_ascii(piece, key, offset),
        None => false,
    };
    if ascii && utf8.at_boundary() {
        return Ok(());
    }
    utf8.feed(piece).map_err(|_| ProtocolError::InvalidUtf8)
}

/// A finished data message, plain or still compressed.
fn message_event(kind: MessageKind, compressed: bool, payload: &[u8]) -> Event<'_> {
    if compressed {
        Event::Compressed(kind, payload)
    } else {
        Event::Message(kind, payload)
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
        Compressed(MessageKind, Vec<u8>),
    }

    fn own(event: Event<'_>) -> Owned {
        match event {
            Event::Message(kind, p) => Owned::Message(kind, p.to_vec()),
            Event::Ping(p) => Owned::Ping(p.to_vec()),
            Event::Pong(p) => Owned::Pong(p.to_vec()),
            Event::Close(c) => Owned::Close(c.map(|c| (c.code.0, c.reason.to_string()))),
            Event::Compressed(kind, p) => Owned::Compressed(kind, p.to_vec()),
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
        assert_eq!(d.heap_size(), 0);
    }

    /// An idle decoder lives in every open WebSocket: it must stay small,
    /// with what a message in progress needs boxed away.
    #[test]
    fn an_idle_decoder_is_small() {
        assert!(
            std::mem::size_of::<Decoder>() <= 24,
            "{}",
            std::mem::size_of::<Decoder>()
        );
    }

    /// Whole frames within one read, the common case, allocate nothing.
    #[test]
    fn whole_frames_allocate_nothing() {
        let mut bytes = masked(true, Opcode::Text, b"Hello");
        bytes.extend(masked(true, Opcode::Ping, b"beat"));
        bytes.extend(masked(true, Opcode::Binary, &[1; 70_000]));
        let mut d = server();
        let mut pos = 0;
        while pos < bytes.len() {
            let (used, event) = d.decode(&mut bytes[pos..]).unwrap();
            assert!(event.is_some());
            pos += used;
            assert_eq!(d.heap_size(), 0);
        }
    }

    /// A fragmented message, and a frame cut across reads, need the box
    /// while they arrive; once the message is out and let go, it is gone.
    #[test]
    fn the_box_is_freed_once_idle_again() {
        let mut bytes = masked(false, Opcode::Text, b"Hel");
        bytes.extend(masked(true, Opcode::Ping, b"beat"));
        bytes.extend(masked(true, Opcode::Continuation, b"lo"));
        for step in [1, 3, 7, bytes.len()] {
            let mut d = server();
            let events = decode_all(&mut d, &bytes, step).unwrap();
            assert_eq!(
                events.last(),
                Some(&Owned::Message(MessageKind::Text, b"Hello".to_vec()))
            );
            // decode_all called once more after the message: let go.
            assert_eq!((d.buffered(), d.heap_size()), (0, 0), "step {step}");
        }
        // The message stays lent out until the next call.
        let mut d = server();
        let mut first = masked(false, Opcode::Text, b"Hel");
        let mut last = masked(true, Opcode::Continuation, b"lo");
        let len = first.len();
        assert_eq!(d.decode(&mut first).unwrap(), (len, None));
        let (_, event) = d.decode(&mut last).unwrap();
        assert_eq!(event, Some(Event::Message(MessageKind::Text, &b"Hello"[..])));
        assert_eq!(d.lent_message(), b"Hello");
        assert!(d.heap_size() > 0);
        assert_eq!(d.decode(&mut []).unwrap(), (0, None));
        assert_eq!((d.buffered(), d.heap_size(), d.lent_message()), (0, 0, &[][..]));
        // A header cut in two, then a whole frame: freed on the way out.
        let mut d = server();
        let mut frame = masked(true, Opcode::Binary, &[9; 20]);
        assert_eq!(d.decode(&mut frame[..3]).unwrap(), (3, None));
        assert!(d.heap_size() > 0);
        let len = frame.len();
        let (used, event) = d.decode(&mut frame[3..]).unwrap();
        assert_eq!(
            (used, event),
            (len - 3, Some(Event::Message(MessageKind::Binary, &[9; 20][..])))
        );
        assert_eq!(d.heap_size(), 0);
    }

    /// A frame cut across reads is given its announced length once, up to
    /// RESERVE_AHEAD, instead of regrowing as its pieces arrive.
    #[test]
    fn a_split_frame_is_reserved_once() {
        let bytes = masked(true, Opcode::Binary, &[5; 65_536]);
        let mut d = server();
        let cut = bytes.len() - 67;
        let mut first = bytes[..cut].to_vec();
        assert_eq!(d.decode(&mut first).unwrap(), (cut, None));
        let size = d.heap_size();
        assert_eq!(size, std::mem::size_of::<Partial>() + 65_536);
        let mut rest = bytes[cut..].to_vec();
        let (_, event) = d.decode(&mut rest).unwrap();
        assert_eq!(event, Some(Event::Message(MessageKind::Binary, &[5; 65_536][..])));
        assert_eq!(d.heap_size(), size);
        // An announced length beyond RESERVE_AHEAD is not taken on trust.
        let mut d = server();
        let mut head = masked(true, Opcode::Binary, &vec![0; 4 << 20])[..20].to_vec();
        d.decode(&mut head).unwrap();
        assert!(d.heap_size() <= std::mem::size_of::<Partial>() + RESERVE_AHEAD);
    }

    /// A masked frame with RSV bits (`0x40` is RSV1) set in its first byte.
    fn rsv_frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = masked(fin, Opcode::from_bits(opcode), payload);
        out[0] |= rsv;
        out
    }

    fn compressing() -> Decoder {
        let mut d = server();
        d.set_compression(true);
        d
    }

    /// RFC 7692 §6: RSV1 on a message's first frame marks it compressed;
    /// its payload is not UTF-8 and is not checked as such.
    #[test]
    fn rsv1_marks_a_compressed_message_once_agreed() {
        let deflated = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]; // §7.2.3.1
        let whole = rsv_frame(true, 0x40, 0x1, &deflated);
        for step in [1, 3, whole.len()] {
            assert_eq!(
                decode_all(&mut compressing(), &whole, step).unwrap(),
                [Owned::Compressed(MessageKind::Text, deflated.to_vec())],
                "step {step}"
            );
        }
        // In two fragments, a ping between: RSV1 on the first only.
        let mut bytes = rsv_frame(false, 0x40, 0x2, &deflated[..3]);
        bytes.extend(masked(true, Opcode::Ping, b""));
        bytes.extend(masked(true, Opcode::Continuation, &deflated[3..]));
        assert_eq!(
            decode_all(&mut compressing(), &bytes, 100).unwrap(),
            [
                Owned::Ping(vec![]),
                Owned::Compressed(MessageKind::Binary, deflated.to_vec())
            ]
        );
        // Not agreed: RSV1 is a reserved bit like the others (1002).
        assert_eq!(
            decode_all(&mut server(), &whole, 100),
            Err(ProtocolError::ReservedBits(RSV1))
        );
        // RSV2 and RSV3 stay reserved either way.
        let rsv2 = rsv_frame(true, 0x20, 0x1, b"x");
        assert_eq!(
            decode_all(&mut compressing(), &rsv2, 100),
            Err(ProtocolError::ReservedBits(0b010))
        );
    }

    /// RFC 7692 §6.1: never on a continuation or a control frame.
    #[test]
    fn rsv1_elsewhere_is_a_protocol_error() {
        let mut bytes = rsv_frame(false, 0x40, 0x1, b"a");
        bytes.extend(rsv_frame(true, 0x40, 0x0, b"b"));
        let error = decode_all(&mut compressing(), &bytes, 100).unwrap_err();
        assert_eq!(error, ProtocolError::CompressedNotFirst(Opcode::Continuation));
        assert_eq!(error.close_code(), super::super::CloseCode::PROTOCOL_ERROR);
        for opcode in [0x8, 0x9, 0xA] {
            let bytes = rsv_frame(true, 0x40, opcode, b"");
            assert_eq!(
                decode_all(&mut compressing(), &bytes, 100),
                Err(ProtocolError::CompressedNotFirst(Opcode::from_bits(opcode)))
            );
        }
    }

    /// ASCII that follows a character cut between fragments is still
    /// checked: the cut character needs continuation bytes, not ASCII.
    #[test]
    fn ascii_after_a_cut_character_is_invalid() {
        let mut bytes = masked(false, Opcode::Text, &[b'a', 0xCE]);
        bytes.extend(masked(true, Opcode::Continuation, b"bc"));
        assert_eq!(
            decode_all(&mut server(), &bytes, 100),
            Err(ProtocolError::InvalidUtf8)
        );
        let mut bytes = masked(false, Opcode::Text, &[b'a', 0xCE]);
        bytes.extend(masked(true, Opcode::Continuation, &[0xBA, b'c']));
        assert_eq!(
            decode_all(&mut server(), &bytes, 100).unwrap(),
            [Owned::Message(MessageKind::Text, "aκc".as_bytes().to_vec())]
        );
    }
}
