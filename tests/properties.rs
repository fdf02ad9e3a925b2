//! Property tests for the sans-IO codecs: whatever the bytes and however
//! they are split, the parsers never panic, and what one side encodes the
//! other decodes unchanged.

use duplex::client::encode_client_frame;
use duplex::http::{HeadLimits, RequestReader};
use duplex::line::{LineCodec, LineEvent};
use duplex::ws::decoder::MessageKind;
use duplex::ws::{Decoder, Event, Limits, Opcode, Role};
use proptest::prelude::*;

/// Feeds `bytes` to a decoder in pieces cut at `cuts`; collects events as
/// owned values, or the first error.
fn decode_in_pieces(
    decoder: &mut Decoder,
    bytes: &[u8],
    cuts: &[usize],
) -> Result<Vec<(u8, Vec<u8>)>, String> {
    let mut events = Vec::new();
    let mut start = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(bytes.len());
    points.sort_unstable();
    for end in points {
        let mut piece = bytes[start..end].to_vec();
        start = end;
        let mut pos = 0;
        loop {
            let (used, event) = decoder.decode(&mut piece[pos..]).map_err(|e| e.to_string())?;
            pos += used;
            match event {
                Some(Event::Message(MessageKind::Text, p)) => events.push((1, p.to_vec())),
                Some(Event::Message(MessageKind::Binary, p)) => events.push((2, p.to_vec())),
                Some(Event::Ping(p)) => events.push((9, p.to_vec())),
                Some(Event::Pong(p)) => events.push((10, p.to_vec())),
                Some(Event::Close(_)) => events.push((8, Vec::new())),
                None => break,
            }
        }
    }
    Ok(events)
}

/// A message: text or binary, its payload, and how to fragment it.
fn message() -> impl Strategy<Value = (bool, Vec<u8>, Vec<usize>, bool)> {
    (
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..3000),
        prop::collection::vec(1usize..700, 0..6),
        any::<bool>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Random messages, fragmented at random sizes with pings between the
    /// fragments, split into reads at random points: each comes out whole
    /// and unchanged, in order.
    #[test]
    fn messages_survive_any_framing_and_any_split(
        messages in prop::collection::vec(message(), 1..8),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for (text, payload, fragments, ping_between) in &messages {
            // Text must be valid UTF-8: use the lossy form of the bytes.
            let payload = if *text { String::from_utf8_lossy(payload).into_owned().into_bytes() } else { payload.clone() };
            let mut rest: &[u8] = &payload;
            let mut first = true;
            for size in fragments {
                if rest.len() <= *size {
                    break;
                }
                // Cut on a character boundary is not required: UTF-8 is
                // checked across fragments.
                let (head, tail) = rest.split_at(*size);
                let opcode = if first { if *text { Opcode::Text } else { Opcode::Binary } } else { Opcode::Continuation };
                encode_client_frame(&mut wire, false, opcode, head);
                if *ping_between {
                    encode_client_frame(&mut wire, true, Opcode::Ping, b"between");
                    expected.push((9, b"between".to_vec()));
                }
                first = false;
                rest = tail;
            }
            let opcode = if first { if *text { Opcode::Text } else { Opcode::Binary } } else { Opcode::Continuation };
            encode_client_frame(&mut wire, true, opcode, rest);
            expected.push((if *text { 1 } else { 2 }, payload.clone()));
        }
        let mut decoder = Decoder::new(Role::Server, Limits::default());
        let events = decode_in_pieces(&mut decoder, &wire, &cuts).unwrap();
        prop_assert_eq!(events, expected);
    }

    /// Arbitrary bytes never panic the frame decoder, in either role.
    #[test]
    fn decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..4000), cuts in prop::collection::vec(any::<usize>(), 0..10)) {
        for role in [Role::Server, Role::Client] {
            let limits = Limits { max_message: 1000, max_fragments: 10 };
            let _ = decode_in_pieces(&mut Decoder::new(role, limits), &bytes, &cuts);
        }
    }

    /// A valid stream with a few bytes flipped: an error or events, never
    /// a panic.
    #[test]
    fn mutated_streams_never_panic(
        payload in prop::collection::vec(any::<u8>(), 0..2000),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut wire = Vec::new();
        encode_client_frame(&mut wire, false, Opcode::Text, b"hello ");
        encode_client_frame(&mut wire, true, Opcode::Ping, b"x");
        encode_client_frame(&mut wire, true, Opcode::Continuation, &payload);
        encode_client_frame(&mut wire, true, Opcode::Close, &[0x03, 0xE8]);
        for (at, value) in flips {
            let i = at % wire.len();
            wire[i] ^= value;
        }
        let _ = decode_in_pieces(&mut Decoder::new(Role::Server, Limits::default()), &wire, &[7, 50, 300]);
    }

    /// Arbitrary bytes never panic the HTTP request reader, however split,
    /// and it never holds more than its head limit.
    #[test]
    fn request_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..3000), step in 1usize..600) {
        let limits = HeadLimits { max_head: 1024, max_headers: 16, max_body: 512 };
        let mut reader = RequestReader::new(limits);
        for piece in bytes.chunks(step) {
            let mut pos = 0;
            while pos < piece.len() {
                match reader.read(&piece[pos..]) {
                    Ok((used, _)) => pos += used,
                    Err(_) => return Ok(()),
                }
            }
        }
    }

    /// Valid requests split anywhere parse the same as in one piece.
    #[test]
    fn requests_parse_the_same_however_split(path in "/[a-z]{0,20}", value in "[ -~]{0,100}", cut in any::<usize>()) {
        let text = format!("GET {path} HTTP/1.1\r\nHost: x\r\nX-Test: {value}\r\n\r\n");
        let limits = HeadLimits { max_head: 8192, max_headers: 64, max_body: 0 };
        let whole = RequestReader::new(limits).read(text.as_bytes()).unwrap().1.unwrap();
        let cut = cut % text.len();
        let mut reader = RequestReader::new(limits);
        let (used, none) = reader.read(&text.as_bytes()[..cut]).unwrap();
        prop_assert!(none.is_none());
        prop_assert_eq!(used, cut);
        let (_, split) = reader.read(&text.as_bytes()[cut..]).unwrap();
        prop_assert_eq!(split.unwrap(), whole);
    }

    /// Arbitrary bytes never panic the line codec, and no line it returns
    /// is longer than the limit or contains a line end or IAC.
    #[test]
    fn line_codec_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..3000), step in 1usize..500) {
        let mut codec = LineCodec::new(100);
        for piece in bytes.chunks(step) {
            let mut pos = 0;
            loop {
                let (used, event) = codec.decode(&piece[pos..]);
                pos += used;
                match event {
                    Some(LineEvent::Line(line, _)) => {
                        prop_assert!(line.len() <= 100);
                        prop_assert!(!line.contains(&b'\n') && !line.contains(&b'\r'));
                    }
                    Some(LineEvent::TooLong { .. } | LineEvent::Command { .. }) => {}
                    None => break,
                }
            }
            prop_assert_eq!(pos, piece.len());
        }
    }
}
