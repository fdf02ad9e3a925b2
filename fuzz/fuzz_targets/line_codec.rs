//! Arbitrary bytes through the telnet line codec.
#![no_main]

use duplex::line::{LineCodec, LineEvent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&step, bytes)) = data.split_first() else { return };
    let step = usize::from(step).max(1);
    let mut codec = LineCodec::new(256);
    for piece in bytes.chunks(step) {
        let mut pos = 0;
        loop {
            let (used, event) = codec.decode(&piece[pos..]);
            pos += used;
            match event {
                Some(LineEvent::Line(line, _)) => assert!(line.len() <= 256),
                Some(LineEvent::TooLong { .. } | LineEvent::Command { .. }) => {}
                None => break,
            }
        }
        assert!(codec.buffered() <= 256);
    }
    let _ = codec.finish();
});
