//! Arbitrary bytes through the telnet line codec, driven both ways: by
//! `decode` alone, and as the line echo drives it, with runs of plain
//! lines (`plain_lines`) taken between steps of `decode`. Both must see
//! the same lines and commands.
#![no_main]

use duplex::line::{LineCodec, LineEvent};
use libfuzzer_sys::fuzz_target;

/// What a codec handed out, owned: a line (text and end), a too-long
/// notice or a command.
#[derive(Debug, PartialEq)]
enum Seen {
    Line(Vec<u8>, bool),
    TooLong,
    SubTooLong(u8),
    Command(String),
}

fn run(step: usize, bytes: &[u8], fast: bool) -> (Vec<Seen>, Option<Vec<u8>>) {
    let mut codec = LineCodec::new(256);
    let mut seen = Vec::new();
    for piece in bytes.chunks(step) {
        let mut pos = 0;
        loop {
            if fast {
                let plain = codec.plain_lines(&piece[pos..]);
                let run = &piece[pos..pos + plain.bytes];
                for line in run.split_inclusive(|&b| b == b'\n') {
                    let (text, cr) = match line {
                        [text @ .., b'\r', b'\n'] => (text, true),
                        [text @ .., b'\n'] => (text, false),
                        _ => panic!("a run holds whole lines only"),
                    };
                    assert!(text.len() <= 256);
                    seen.push(Seen::Line(text.to_vec(), cr));
                }
                pos += plain.bytes;
            }
            let (used, event) = codec.decode(&piece[pos..]);
            pos += used;
            match event {
                Some(LineEvent::Line(line, end)) => {
                    assert!(line.len() <= 256);
                    seen.push(Seen::Line(line.to_vec(), end != duplex::line::LineEnd::Lf));
                }
                Some(LineEvent::TooLong { .. }) => seen.push(Seen::TooLong),
                Some(LineEvent::SubnegotiationTooLong { option, .. }) => seen.push(Seen::SubTooLong(option.0)),
                Some(LineEvent::Command { command, .. }) => seen.push(Seen::Command(command.to_string())),
                None => break,
            }
        }
        assert_eq!(pos, piece.len());
        assert!(codec.buffered() <= 256);
    }
    (seen, codec.finish().map(<[u8]>::to_vec))
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, bytes)) = data.split_first() else { return };
    let step = usize::from(step).max(1);
    assert_eq!(run(step, bytes, true), run(step, bytes, false));
});
