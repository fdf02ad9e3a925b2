//! Arbitrary bytes, cut into reads where the input says, through the frame
//! decoder in both roles: it may refuse, never panic, never hold more than
//! its limits.
#![no_main]

use duplex::ws::{Decoder, Limits, Role};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&step, bytes)) = data.split_first() else { return };
    let step = usize::from(step).max(1);
    for role in [Role::Server, Role::Client] {
        let limits = Limits { max_message: 4096, max_fragments: 64 };
        let mut decoder = Decoder::new(role, limits);
        'reads: for piece in bytes.chunks(step) {
            let mut piece = piece.to_vec();
            let mut pos = 0;
            loop {
                match decoder.decode(&mut piece[pos..]) {
                    Ok((used, Some(_))) => pos += used,
                    Ok((_, None)) => break,
                    Err(_) => break 'reads,
                }
            }
            assert!(decoder.buffered() <= 4096 + 125 + 14);
        }
    }
});
