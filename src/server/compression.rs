//! permessage-deflate on the loop: one compressor and one inflater for
//! every connection, and what a message costs to send compressed.
//!
//! The codec is sans-IO in [`crate::ws::deflate`]; this is where the loop
//! keeps its state. Because the loop is one thread, the compressor needs
//! no lock and is never in use by two connections at once: a message is
//! compressed whole, start to end, before the next one is. Every client is
//! told `server_no_context_takeover`, so no message refers to an earlier
//! one, and resetting the one compressor between messages is all that
//! sharing it takes. A broadcast is compressed once, and the same framed
//! bytes go to every member who agreed to the extension with the same
//! window (nearly always 15).
//!
//! Reading works the same way for clients told `client_no_context_takeover`
//! (all of them, unless `--deflate-client-context` is given): a message is
//! inflated whole once its last frame is in, with the loop's one inflater,
//! reset after. A client allowed to keep its context gets an inflater of
//! its own, kept here by connection token (a connection that never sends
//! a compressed message pays nothing), made at its first compressed
//! message and freed with the connection: 46 KiB each.

use super::stats::DeflateStats;
use crate::ws::deflate::{Agreement, Deflater, InflateError, Inflater, MAX_WINDOW_BITS, MIN_WINDOW_BITS};
use crate::ws::frame::{FrameHeader, MAX_HEADER_LEN, RSV1};
use crate::ws::utf8::Utf8Validator;
use crate::ws::{decoder::MessageKind, Opcode, ProtocolError};
use mio::Token;
use std::collections::HashMap;
use std::rc::Rc;

/// Above this, the buffers kept for the next message are let go once a
/// message is done: a single 16 MiB message must not pin 16 MiB.
const KEEP_SCRATCH: usize = 256 * 1024;

/// The loop's compression state.
pub(super) struct Compression {
    /// `--deflate-threshold`: messages shorter than this go uncompressed.
    threshold: usize,
    deflater: Deflater,
    /// For clients that reset their context each message.
    inflater: Inflater,
    /// Clients allowed to keep their context, by token: made lazily.
    own: HashMap<usize, Box<Inflater>>,
    /// Where a message is inflated to; lent out until the next message.
    inflated: Vec<u8>,
    pub stats: DeflateStats,
}

impl Compression {
    pub fn new(threshold: usize) -> Compression {
        Compression {
            threshold,
            deflater: Deflater::default(),
            inflater: Inflater::new(),
            own: HashMap::new(),
            inflated: Vec::new(),
            stats: DeflateStats::default(),
        }
    }

    /// Inflates a compressed message from the connection `token` (RFC 7692
    /// §7.2.2), bounded by `limit` while it runs (1009 beyond it), and
    /// checks that text is UTF-8 (1007). The message is lent out until the
    /// next call; the caller gives the buffer back with
    /// [`Compression::give_back`].
    pub fn inflate(
        &mut self,
        token: Token,
        agreement: Agreement,
        kind: MessageKind,
        payload: &[u8],
        limit: usize,
    ) -> Result<Vec<u8>, ProtocolError> {
        let mut out = std::mem::take(&mut self.inflated);
        let result = if agreement.client_no_context_takeover {
            let result = self.inflater.inflate(payload, &mut out, limit);
            // §7.1.1.1: the next message starts from an empty window.
            self.inflater.reset();
            result
        } else {
            let made = self.own.len();
            let inflater = self.own.entry(token.0).or_insert_with(|| {
                log::debug!(
                    "token {}: an inflater of its own (client keeps its context)",
                    token.0
                );
                Box::new(Inflater::new())
            });
            let result = inflater.inflate(payload, &mut out, limit);
            if self.own.len() > made {
                self.stats.own_inflaters = self.own.len();
            }
            result
        };
        if let Err(error) = result {
            self.give_back(out);
            // The window is unknown after an error; the connection closes.
            self.forget(token);
            return Err(match error {
                InflateError::TooBig => ProtocolError::MessageTooBig { limit },
                InflateError::Corrupt => ProtocolError::CorruptDeflate,
            });
        }
        self.stats.inflated += 1;
        self.stats.inflated_bytes += out.len() as u64;
        self.stats.compressed_in_bytes += payload.len() as u64;
        if kind == MessageKind::Text {
            let mut utf8 = Utf8Validator::new();
            if utf8.feed(&out).and_then(|()| utf8.finish()).is_err() {
                self.give_back(out);
                return Err(ProtocolError::InvalidUtf8);
            }
        }
        Ok(out)
    }

    /// The buffer [`Compression::inflate`] lent, for the next message.
    pub fn give_back(&mut self, mut buffer: Vec<u8>) {
        if buffer.capacity() > KEEP_SCRATCH {
            buffer = Vec::new();
        }
        buffer.clear();
        self.inflated = buffer;
    }

    /// A connection is gone: so is its own inflater, if it had one.
    pub fn forget(&mut self, token: Token) {
        if self.own.remove(&token.0).is_some() {
            self.stats.own_inflaters = self.own.len();
        }
    }

    /// Appends one server frame with a whole message (RFC 6455 §5.2),
    /// compressed when the connection agreed to it (`window_bits` is
    /// `Some`), the message is at least `--deflate-threshold` long, and
    /// compressing saves bytes; RSV1 then says so (RFC 7692 §6). Returns
    /// the compressed payload's length if it was compressed.
    pub fn encode(
        &mut self,
        out: &mut Vec<u8>,
        window_bits: Option<u8>,
        opcode: Opcode,
        payload: &[u8],
    ) -> Option<usize> {
        let deflated = match window_bits {
            Some(bits) if payload.len() >= self.threshold => {
                self.stats.compressions += 1;
                let deflated = self.deflater.compress(bits, payload);
                // Incompressible data (already compressed, random) would
                // grow a little: it goes as it is.
                (deflated.len() < payload.len()).then_some(deflated)
            }
            _ => None,
        };
        let (rsv, body) = match deflated {
            Some(deflated) => (RSV1, deflated),
            None => (0, payload),
        };
        log::trace!(
            "frame out: fin=1 rsv1={} opcode={} masked=0 len={}{}",
            u8::from(rsv == RSV1),
            opcode.name(),
            body.len(),
            if rsv == RSV1 {
                format!(" (inflates to {})", payload.len())
            } else {
                String::new()
            }
        );
        let header = FrameHeader {
            fin: true,
            rsv,
            opcode,
            mask: None,
            payload_len: body.len() as u64,
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let head_len = header.encode(&mut head);
        out.reserve(head_len + body.len());
        out.extend_from_slice(&head[..head_len]);
        out.extend_from_slice(body);
        let compressed = (rsv == RSV1).then_some(body.len());
        if let Some(len) = compressed {
            self.stats.count_sent(payload.len(), len);
        }
        self.deflater.trim(KEEP_SCRATCH);
        compressed
    }
}

/// One broadcast's frames, encoded at most once for each window size
/// (RFC 7692 §7.1.2.1): the same bytes for every member with that window.
#[derive(Default)]
pub(super) struct SharedFrames {
    /// By window bits − 9.
    frames: [Option<Encoded>; (MAX_WINDOW_BITS - MIN_WINDOW_BITS + 1) as usize],
}

/// One frame of a broadcast, and its payload's length if it went
/// compressed (for the bytes-saved counter).
struct Encoded {
    frame: Rc<[u8]>,
    deflated: Option<usize>,
}

impl SharedFrames {
    /// The frame for members with this window, compressed the first time
    /// it is asked for. Every later member counts its bytes saved too.
    pub fn get(
        &mut self,
        compression: &mut Compression,
        bits: u8,
        opcode: Opcode,
        payload: &[u8],
    ) -> Rc<[u8]> {
        let slot = usize::from(bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS) - MIN_WINDOW_BITS);
        if let Some(encoded) = &self.frames[slot] {
            if let Some(len) = encoded.deflated {
                compression.stats.count_sent(payload.len(), len);
            }
            return encoded.frame.clone();
        }
        let mut bytes = Vec::new();
        let deflated = compression.encode(&mut bytes, Some(bits), opcode, payload);
        let frame: Rc<[u8]> = Rc::from(bytes);
        self.frames[slot] = Some(Encoded {
            frame: frame.clone(),
            deflated,
        });
        frame
    }
}
