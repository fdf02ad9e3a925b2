//! A connection's outbound queue: bounded by the loop, batched into as few
//! `write` calls as possible, free when empty.
//!
//! Bytes are kept as a list of chunks. A chunk is either owned by this
//! connection (replies, echoes: consecutive ones are appended to the same
//! chunk) or shared by reference count with other connections (a broadcast
//! frame, encoded once for ten thousand members). One `writev` sends many
//! chunks at once.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::rc::Rc;

/// Most chunks handed to one `writev`; Linux takes up to 1024 (`IOV_MAX`).
const MAX_IOVECS: usize = 64;

/// Buffers of written chunks, kept for the next replies so that the hot
/// path (a message in, an answer out) does not call the allocator twice
/// per message. They belong to the loop, not to a connection: an idle
/// connection still holds nothing. The loop is one thread, so a
/// thread-local list is the loop's list.
mod spare {
    use std::cell::RefCell;

    /// The first capacity of a buffer: a burst of small replies (a dozen
    /// chat lines) fits without regrowing.
    const FIRST_CAPACITY: usize = 512;
    /// The largest buffer kept, and the most bytes kept in all. The bound
    /// is on bytes, not buffers: a turn that answers a hundred connections
    /// needs a hundred buffers back on the next turn, or each one would be
    /// allocated and grown again.
    const LARGEST_KEPT: usize = 16 * 1024;
    const BYTES_KEPT: usize = 1024 * 1024;

    /// Buffers kept however little the last turn took: enough for the
    /// replies of a quiet server without calling the allocator.
    const FEWEST_KEPT: usize = 16;

    struct Spare {
        buffers: Vec<Vec<u8>>,
        /// The capacity of `buffers`, summed.
        bytes: usize,
        /// Buffers taken since the last `trim`.
        taken: usize,
    }

    thread_local! {
        static SPARE: RefCell<Spare> = const {
            RefCell::new(Spare { buffers: Vec::new(), bytes: 0, taken: 0 })
        };
    }

    /// An empty buffer, reused if one is spare.
    pub fn take() -> Vec<u8> {
        SPARE
            .with(|spare| {
                let mut spare = spare.borrow_mut();
                spare.taken += 1;
                let buffer = spare.buffers.pop()?;
                spare.bytes -= buffer.capacity();
                Some(buffer)
            })
            .unwrap_or_else(|| Vec::with_capacity(FIRST_CAPACITY))
    }

    /// Frees the buffers beyond what was taken since the last call. The
    /// loop calls it once a turn, before it sleeps: a steady load takes
    /// back as many buffers as it gave, so nothing changes, but what a
    /// burst left behind (ten thousand handshakes answered in a few turns)
    /// is given back instead of held by a server gone quiet.
    pub fn trim() {
        SPARE.with(|spare| {
            let mut spare = spare.borrow_mut();
            let keep = spare.taken.max(FEWEST_KEPT);
            while spare.buffers.len() > keep {
                if let Some(buffer) = spare.buffers.pop() {
                    spare.bytes -= buffer.capacity();
                }
            }
            spare.taken = 0;
        });
    }

    /// A written buffer, kept if it is small and there is room; freed
    /// otherwise (a large one would hold memory for no one).
    pub fn give_back(mut buffer: Vec<u8>) {
        if buffer.capacity() > LARGEST_KEPT {
            return;
        }
        buffer.clear();
        SPARE.with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.bytes + buffer.capacity() <= BYTES_KEPT {
                spare.bytes += buffer.capacity();
                spare.buffers.push(buffer);
            }
        });
    }
}

enum Chunk {
    Owned(Vec<u8>),
    Shared(Rc<[u8]>),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Shared(s) => s,
        }
    }
}

/// The chunks in order. Most of the time a queue holds one chunk (this
/// turn's replies) or none, so the first lives inline and only a longer
/// queue allocates its list, boxed so that the empty list costs a
/// connection one pointer: a broadcast to ten thousand idle members then
/// costs no list per member, and an idle connection no list header.
#[derive(Default)]
struct Chunks {
    first: Option<Chunk>,
    // The extra allocation clippy warns of is the point: 8 bytes inline
    // instead of the 32 of an empty `VecDeque`, paid only by long queues.
    #[allow(clippy::box_collection)]
    rest: Option<Box<VecDeque<Chunk>>>,
}

impl Chunks {
    fn front(&self) -> Option<&Chunk> {
        self.first.as_ref()
    }

    fn back(&self) -> Option<&Chunk> {
        self.rest
            .as_ref()
            .and_then(|rest| rest.back())
            .or(self.first.as_ref())
    }

    fn back_mut(&mut self) -> Option<&mut Chunk> {
        match self.rest.as_mut().and_then(|rest| rest.back_mut()) {
            Some(chunk) => Some(chunk),
            None => self.first.as_mut(),
        }
    }

    fn push_back(&mut self, chunk: Chunk) {
        if self.first.is_none() {
            self.first = Some(chunk);
        } else {
            self.rest.get_or_insert_with(Box::default).push_back(chunk);
        }
    }

    fn pop_front(&mut self) -> Option<Chunk> {
        let next = self.rest.as_mut().and_then(|rest| rest.pop_front());
        if self.rest.as_ref().is_some_and(|rest| rest.is_empty()) {
            // Give the list's memory back once the burst is over.
            self.rest = None;
        }
        std::mem::replace(&mut self.first, next)
    }

    /// Keeps the front chunk only.
    fn truncate_to_front(&mut self) {
        self.rest = None;
    }

    /// Only the front chunk is queued (or none).
    fn front_only(&self) -> bool {
        self.rest.is_none()
    }

    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.as_ref().map_or(0, |rest| rest.len())
    }

    fn iter(&self) -> impl Iterator<Item = &Chunk> {
        self.first
            .iter()
            .chain(self.rest.iter().flat_map(|rest| rest.iter()))
    }
}

/// Gives back what the spare buffers hold beyond the last turn's needs
/// (see `spare::trim`). The loop calls it once a turn.
pub fn trim_spare_buffers() {
    spare::trim();
}

/// Bytes queued for one connection, oldest first. It does not bound
/// itself: the loop compares [`OutQueue::len`] with `--max-output` (soft)
/// and `--max-output-hard` after each write.
#[derive(Default)]
pub struct OutQueue {
    chunks: Chunks,
    /// Bytes of the front chunk already written.
    offset: usize,
    /// Bytes waiting in all.
    len: usize,
}

impl OutQueue {
    /// An empty queue; it allocates nothing until bytes arrive.
    pub fn new() -> OutQueue {
        OutQueue::default()
    }

    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// How many separate chunks are queued (each costs one `iovec`).
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Nothing left to write: the loop can stop asking for `WRITABLE`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends by letting `encode` write straight into the queue's owned
    /// tail, so a burst of small replies becomes one buffer.
    pub fn encode_with(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        // A chunk the socket has started on is left as it is, so that
        // `clear_unsent` can keep it and drop everything after it.
        let tail_started = self.chunks.front_only() && self.offset > 0;
        if tail_started || !matches!(self.chunks.back(), Some(Chunk::Owned(_))) {
            // A spare buffer: a burst of small replies fits, a large frame
            // reserves what it needs.
            self.chunks.push_back(Chunk::Owned(spare::take()));
        }
        if let Some(Chunk::Owned(tail)) = self.chunks.back_mut() {
            let before = tail.len();
            encode(tail);
            self.len += tail.len() - before;
        }
    }

    /// Queues a copy of `bytes` in this connection's own tail chunk.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        self.encode_with(|out| out.extend_from_slice(bytes));
    }

    /// Writes `head` then `body` straight to the socket when nothing is
    /// queued, and queues what the socket did not take. For large messages
    /// this saves the copy into the queue; with output already waiting, it
    /// queues both (order must be kept). Returns the bytes written; a
    /// socket error is left for the next flush to meet.
    pub fn write_through<W: Write>(&mut self, out: &mut W, head: &[u8], body: &[u8]) -> usize {
        let mut written = 0;
        let was_empty = self.is_empty();
        if was_empty {
            loop {
                let result = if head.is_empty() {
                    out.write(body)
                } else {
                    out.write_vectored(&[IoSlice::new(head), IoSlice::new(body)])
                };
                match result {
                    Ok(n) => written = n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {}
                }
                break;
            }
        }
        let total = head.len() + body.len();
        if written < total {
            // The whole message is queued with the written part marked as
            // sent, so the queue knows a frame is half out: nothing may be
            // dropped from its middle (see `clear_unsent`).
            self.encode_with(|buf| {
                buf.reserve(total);
                buf.extend_from_slice(head);
                buf.extend_from_slice(body);
            });
            if was_empty {
                self.offset = written;
                self.len -= written;
            }
        }
        written
    }

    /// Queues bytes shared with other connections, without copying them.
    pub fn push_shared(&mut self, bytes: Rc<[u8]>) {
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len();
        self.chunks.push_back(Chunk::Shared(bytes));
    }

    /// Writes as much as the socket takes. Returns the bytes written; stops
    /// quietly at `WouldBlock` (the rest waits for the next writable
    /// event), retries `Interrupted`, and passes other errors up.
    pub fn write_to<W: Write>(&mut self, out: &mut W) -> io::Result<usize> {
        let mut written = 0;
        while !self.is_empty() {
            let result = match (&self.chunks.first, self.chunks.front_only()) {
                // The common case, one chunk: a plain write.
                (Some(chunk), true) => out.write(&chunk.bytes()[self.offset..]),
                _ => {
                    let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                    let mut count = 0;
                    for (i, chunk) in self.chunks.iter().take(MAX_IOVECS).enumerate() {
                        let bytes = chunk.bytes();
                        slices[i] = IoSlice::new(if i == 0 { &bytes[self.offset..] } else { bytes });
                        count += 1;
                    }
                    out.write_vectored(&slices[..count])
                }
            };
            match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    written += n;
                    self.consume(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(written)
    }

    /// Drops everything still queued (the peer is gone).
    pub fn clear(&mut self) {
        *self = OutQueue::default();
    }

    /// Drops what has not started to go out, but keeps the rest of a chunk
    /// the socket is in the middle of. Chunks end on frame (and line)
    /// boundaries, so whatever is queued next starts on one: the peer never
    /// sees half a frame followed by the start of another.
    pub fn clear_unsent(&mut self) {
        if self.offset == 0 {
            return self.clear();
        }
        self.chunks.truncate_to_front();
        self.len = self.chunks.front().map_or(0, |c| c.bytes().len() - self.offset);
    }

    fn consume(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            let Some(front) = self.chunks.front() else { break };
            let left = front.bytes().len() - self.offset;
            if n < left {
                self.offset += n;
                return;
            }
            n -= left;
            self.offset = 0;
            // An idle connection holds no buffer: a written chunk leaves
            // the queue at once (and its buffer goes back to the spares).
            if let Some(Chunk::Owned(buffer)) = self.chunks.pop_front() {
                spare::give_back(buffer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `limit` bytes per call, then blocks.
    struct Trickle {
        got: Vec<u8>,
        per_call: usize,
        calls_left: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.calls_left == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.calls_left -= 1;
            self.calls += 1;
            let n = buf.len().min(self.per_call);
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            if self.calls_left == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.calls_left -= 1;
            self.calls += 1;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.per_call - n);
                self.got.extend_from_slice(&b[..take]);
                n += take;
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn dropping_unsent_output_keeps_a_half_written_chunk() {
        let mut q = OutQueue::new();
        q.push_shared(Rc::from(&b"first"[..]));
        q.push_bytes(b"second");
        let mut w = Trickle {
            got: Vec::new(),
            per_call: 2,
            calls_left: 1,
            calls: 0,
        };
        q.write_to(&mut w).unwrap();
        q.clear_unsent();
        assert_eq!(q.len(), 3);
        w.calls_left = 10;
        w.per_call = 100;
        q.write_to(&mut w).unwrap();
        assert_eq!(w.got, b"first");
    }

    #[test]
    fn a_half_written_write_through_is_kept_whole() {
        let mut q = OutQueue::new();
        let mut w = Trickle {
            got: Vec::new(),
            per_call: 4,
            calls_left: 1,
            calls: 0,
        };
        assert_eq!(q.write_through(&mut w, b"hd", b"payload"), 4);
        assert_eq!(q.len(), 5);
        // Behind a queued message, nothing is written at once.
        assert_eq!(q.write_through(&mut w, b"h2", b"next"), 0);
        q.push_bytes(b"tail");
        // The half-sent message survives dropping the rest.
        q.clear_unsent();
        w.calls_left = 10;
        w.per_call = 100;
        q.write_to(&mut w).unwrap();
        assert_eq!(w.got, b"hdpayload");
    }

    #[test]
    fn batches_and_resumes_after_would_block() {
        let mut q = OutQueue::new();
        q.push_bytes(b"hello ");
        q.push_bytes(b"world ");
        let shared: Rc<[u8]> = Rc::from(&b"shared "[..]);
        q.push_shared(shared.clone());
        q.push_bytes(b"tail");
        assert_eq!(q.len(), 23);

        let mut w = Trickle {
            got: Vec::new(),
            per_call: 5,
            calls_left: 2,
            calls: 0,
        };
        assert_eq!(q.write_to(&mut w).unwrap(), 10);
        assert_eq!(q.len(), 13);
        w.calls_left = 100;
        w.per_call = 1000;
        q.write_to(&mut w).unwrap();
        assert_eq!(w.got, b"hello world shared tail");
        assert!(q.is_empty());
        assert!(q.chunks.first.is_none());
        assert!(q.chunks.rest.is_none());
        // Everything after the block went out in one call.
        assert_eq!(w.calls, 3);
    }
}
