//! Arbitrary bytes as a permessage-deflate client's frames: the decoder
//! with compression on, then the server's bounded inflater on every
//! compressed message, the shared one (reset each message) and one that
//! keeps its window. It may refuse, never panic, and never hold more than
//! the message limit, however far the input would inflate.
#![no_main]

use duplex::ws::deflate::Inflater;
use duplex::ws::{Decoder, Event, Limits, Role};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&step, bytes)) = data.split_first() else { return };
    let step = usize::from(step).max(1);
    let limits = Limits { max_message: LIMIT, max_fragments: 64 };
    let mut decoder = Decoder::new(Role::Server, limits);
    decoder.set_compression(true);
    let (mut shared, mut own) = (Inflater::new(), Inflater::new());
    let mut out = Vec::new();
    'reads: for piece in bytes.chunks(step) {
        let mut piece = piece.to_vec();
        let mut pos = 0;
        loop {
            match decoder.decode(&mut piece[pos..]) {
                Ok((used, Some(Event::Compressed(_, payload)))) => {
                    pos += used;
                    let _ = shared.inflate(payload, &mut out, LIMIT);
                    shared.reset();
                    assert!(out.len() <= LIMIT && out.capacity() <= LIMIT + 1);
                    if own.inflate(payload, &mut out, LIMIT).is_err() {
                        own = Inflater::new();
                    }
                    assert!(out.len() <= LIMIT && out.capacity() <= LIMIT + 1);
                }
                Ok((used, Some(_))) => pos += used,
                Ok((_, None)) => break,
                Err(_) => break 'reads,
            }
        }
    }
});
